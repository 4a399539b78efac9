//! The entry points of a run: minimize, or start, iterate and resume by hand.

use ndarray::Array1;

use super::driver::Capabilities;
use super::{BigBatchSgd, Outcome, RunState};
use crate::error::Result;
use crate::float::Float;
use crate::objective::Objective;
use crate::report::Report;
use crate::report::observe::Observer;
use crate::step::StepRule;

/// The loop is written once, here and in the driver; what varies plugs into it: the update
/// rule ([`StepRule`]), the model ([`Objective`]) and what watches the run ([`Observer`]).
impl<S: StepRule> BigBatchSgd<S> {
    /// Checks the objective and the starting point, resets all memory of earlier runs, and
    /// returns the state of a new run.
    ///
    /// # Errors
    /// [`Error::EmptyObjective`](crate::Error::EmptyObjective),
    /// [`Error::DimensionMismatch`](crate::Error::DimensionMismatch) or
    /// [`Error::NonFiniteInput`](crate::Error::NonFiniteInput).
    pub fn start<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        w0: Array1<F>,
    ) -> Result<RunState<F>> {
        self.start_run(objective, w0)
    }

    /// One iteration: draw a batch that passes the big-batch test at the current iterate,
    /// stop if its gradient is below the tolerance, otherwise take a step.
    ///
    /// # Errors
    /// [`Error::NonFinite`](crate::Error::NonFinite) or
    /// [`Error::LineSearchFailed`](crate::Error::LineSearchFailed); the run state keeps the
    /// last good iterate ([`RunState::last_good`]).
    ///
    /// The objective's line and curvature objects ([`Objective::line`],
    /// [`Objective::curvature`]) live for this one iteration; the loop of
    /// [`resume_with`](Self::resume_with) keeps them for the whole run.
    pub fn iterate<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        run: &mut RunState<F>,
    ) -> Result<Outcome<F>> {
        let mut kept = Capabilities::of(objective);
        self.step_once(objective, &mut kept, run, None)
    }

    /// Minimizes `objective` from `w0` (which is consumed, never modified in place).
    ///
    /// # Errors
    /// See [`minimize_with`](Self::minimize_with).
    pub fn minimize<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        w0: Array1<F>,
    ) -> Result<Report<F>> {
        self.minimize_with(objective, w0, &mut ())
    }

    /// Minimizes `objective` from `w0`, handing every iteration to `observer`.
    ///
    /// Running out of a budget, or an observer stopping the run, is a
    /// [`StopReason`](crate::StopReason) in the returned [`Report`], not an error. The report's
    /// `loss` is the full objective at the final iterate: one pass of loss evaluations, unless
    /// the run last evaluated every sample there (a full batch that converged, or the accepted
    /// first trial of a full-batch line search).
    ///
    /// # Errors
    /// Bad input ([`Error::EmptyObjective`](crate::Error::EmptyObjective),
    /// [`Error::DimensionMismatch`](crate::Error::DimensionMismatch),
    /// [`Error::NonFiniteInput`](crate::Error::NonFiniteInput)) before the run starts;
    /// [`Error::NonFinite`](crate::Error::NonFinite) or
    /// [`Error::LineSearchFailed`](crate::Error::LineSearchFailed) during it, carrying the last
    /// finite iterate.
    pub fn minimize_with<F: Float, O: Objective<F> + ?Sized, Ob: Observer<F> + ?Sized>(
        &mut self,
        objective: &O,
        w0: Array1<F>,
        observer: &mut Ob,
    ) -> Result<Report<F>> {
        let run = self.start(objective, w0)?;
        self.resume_with(objective, run, observer)
    }

    /// Continues a run from its state (as [`start`](Self::start) returned it, as
    /// [`iterate`](Self::iterate) left it, or restored from a checkpoint) until a stopping rule
    /// fires, handing every iteration to `observer`. The optimizer keeps its step rule's memory:
    /// resuming with the optimizer and the state of an interrupted run gives the report the
    /// uninterrupted run would have given, bit for bit.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`](crate::Error::DimensionMismatch) if `objective` does not
    /// have the run's number of samples and dimension; otherwise as
    /// [`minimize_with`](Self::minimize_with).
    pub fn resume_with<F: Float, O: Objective<F> + ?Sized, Ob: Observer<F> + ?Sized>(
        &mut self,
        objective: &O,
        run: RunState<F>,
        observer: &mut Ob,
    ) -> Result<Report<F>> {
        self.drive(objective, run, observer, &mut (), None)
    }
}
