//! The optimization loop: [`BigBatchOptimizer`] and its implementation [`BigBatchSgd`].
//!
//! - `config`: how batches are chosen and grow, when a run stops, and the optimizer itself;
//! - `builder`: its builder;
//! - `state`: the state of a run between iterations;
//! - `driver`: one iteration (draw a batch that passes, stop or step) and the loop around it.

use ndarray::Array1;

use crate::error::Result;
use crate::float::Float;
use crate::objective::Objective;
use crate::observe::Observer;
use crate::report::{IterRecord, Report};

mod builder;
mod config;
mod drawing;
mod driver;
mod state;

pub use builder::BigBatchSgdBuilder;
pub use config::{BatchMode, BigBatchSgd, GrowthRule, StopRule};
#[cfg(feature = "serde")]
pub(crate) use driver::AfterStep;
pub use state::RunState;

/// The result of one iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Outcome<F> {
    /// A step was taken.
    Stepped(IterRecord<F>),
    /// The batch passed the test with a gradient below the tolerance; no step was taken.
    Converged,
    /// The batch held every sample and the step left the iterate unchanged in floating point:
    /// every further iteration would repeat it.
    Stalled,
    /// The budget of gradient evaluations cannot pay for the batch this iteration needs (to
    /// draw it, or to grow it until it passes the test); no step was taken.
    OutOfBudget,
    /// The budget of loss evaluations cannot pay for the next one the iteration needs (a
    /// line-search trial, or the batch loss); no step was taken.
    OutOfLossBudget,
}

mod sealed {
    pub trait Sealed {}
    impl<S> Sealed for super::BigBatchSgd<S> {}
}

/// An optimizer that draws big batches and steps on them.
///
/// The trait is sealed: [`BigBatchSgd`] is its implementation, and the loop is written once,
/// there. What varies plugs into that loop instead: the update rule ([`StepRule`](crate::StepRule)),
/// the model ([`Objective`]) and what watches the run ([`Observer`]). The trait is what code
/// generic over optimizers, and the loop driven by hand ([`start`](Self::start) and
/// [`iterate`](Self::iterate)), are written against.
pub trait BigBatchOptimizer<F: Float>: sealed::Sealed {
    /// Checks the objective and the starting point, resets all memory of earlier runs, and
    /// returns the state of a new run.
    ///
    /// # Errors
    /// [`Error::EmptyObjective`](crate::Error::EmptyObjective),
    /// [`Error::DimensionMismatch`](crate::Error::DimensionMismatch) or
    /// [`Error::NonFiniteInput`](crate::Error::NonFiniteInput).
    fn start<O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        w0: Array1<F>,
    ) -> Result<RunState<F>>;

    /// One iteration: draw a batch that passes the big-batch test at the current iterate,
    /// stop if its gradient is below the tolerance, otherwise take a step.
    ///
    /// # Errors
    /// [`Error::NonFinite`](crate::Error::NonFinite) or
    /// [`Error::LineSearchFailed`](crate::Error::LineSearchFailed); the run state keeps the
    /// last good iterate ([`RunState::last_good`]).
    fn iterate<O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        run: &mut RunState<F>,
    ) -> Result<Outcome<F>>;

    /// The tolerances and budgets.
    fn stop_rule(&self) -> &StopRule;

    /// Minimizes `objective` from `w0` (which is consumed, never modified in place).
    ///
    /// # Errors
    /// See [`minimize_with`](Self::minimize_with).
    fn minimize<O: Objective<F> + ?Sized>(
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
    fn minimize_with<O: Objective<F> + ?Sized, Ob: Observer<F> + ?Sized>(
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
    fn resume_with<O: Objective<F> + ?Sized, Ob: Observer<F> + ?Sized>(
        &mut self,
        objective: &O,
        run: RunState<F>,
        observer: &mut Ob,
    ) -> Result<Report<F>>;
}
