//! The Armijo line search every rule shares: its parameters ([`LineSearch`]) and the search
//! itself, which evaluates its trial points through the run's evaluator.

use ndarray::Array1;

use super::Step;
use crate::error::{Error, Result, check};
use crate::evaluator::Evaluator;
use crate::float::Float;
use crate::objective::{LineLoss, Objective};
use crate::stats::GradStats;

/// What the first trial of a line search is expected to be worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FirstTrial {
    /// Usually rejected: evaluate its batch loss only (the default).
    #[default]
    Loss,
    /// Usually accepted: the run evaluates the batch's full statistics there when the next
    /// iteration can start from them (persistent batches whose statistics carry losses, within
    /// the budget), so that an accepted step costs one statistics pass instead of a loss pass
    /// and a statistics pass; otherwise its loss. A rejected one costs a batch of gradients
    /// for nothing.
    Statistics,
}

/// Parameters of the Armijo backtracking search shared by the step rules.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LineSearch {
    /// c in `ℓ_B(w + αd) ≤ ℓ_B(w) + c α g·d`, in (0, 1). Default 0.1.
    pub sufficient_decrease: f64,
    /// β, the factor a rejected step is multiplied by, in (0, 1). Default 0.5.
    pub shrink: f64,
    /// The most reductions in one search before it fails (≥ 1). Default 60.
    pub max_backtracks: usize,
    /// The smallest step size tried (≥ 0). Default 1e-12.
    pub min_step: f64,
    /// What the first trial is expected to be worth. Default [`FirstTrial::Loss`];
    /// [`Lbfgs`](super::Lbfgs) and [`BarzilaiBorwein`](super::BarzilaiBorwein) use
    /// [`FirstTrial::Statistics`].
    #[cfg_attr(feature = "serde", serde(default))]
    pub first_trial: FirstTrial,
}

impl Default for LineSearch {
    fn default() -> Self {
        LineSearch {
            sufficient_decrease: 0.1,
            shrink: 0.5,
            max_backtracks: 60,
            min_step: 1e-12,
            first_trial: FirstTrial::Loss,
        }
    }
}

impl LineSearch {
    pub(crate) fn validate(&self) -> Result<()> {
        check::open_unit("sufficient_decrease", self.sufficient_decrease)?;
        check::open_unit("shrink", self.shrink)?;
        check::nonzero_count("max_backtracks", self.max_backtracks)?;
        check::non_negative("min_step", self.min_step)
    }
}

/// Where a line search's trial points are evaluated: the objective and its line object, the
/// run's evaluator (which counts every evaluation, keeps the budget and keeps statistics
/// with the point they belong to), the iterate and its batch.
pub(crate) struct Trials<'a, F: Float, O: ?Sized> {
    pub(crate) objective: &'a O,
    pub(crate) along: Option<&'a mut (dyn LineLoss<F> + 'a)>,
    /// The objective's Hessian-vector products, if it has them.
    pub(crate) hessian: Option<super::Hessian<'a, F>>,
    pub(crate) eval: &'a mut Evaluator<F>,
    pub(crate) w: &'a Array1<F>,
    pub(crate) batch: &'a [usize],
    /// The batch loss at `w`.
    pub(crate) loss: F,
}

impl<F: Float, O: Objective<F> + ?Sized> Trials<'_, F, O> {
    /// Aims at `w + alpha·d`; whether that point is `w` itself, bit for bit.
    fn aim(&mut self, d: &Array1<F>, alpha: F) -> bool {
        self.eval.set_trial(self.w, d, alpha);
        self.eval.trial_is(self.w)
    }

    /// The batch loss at the trial point: with its statistics when `first` says they are
    /// worth it and the evaluator can keep them. `None` out of loss budget.
    fn loss_at_trial(&mut self, first: Option<FirstTrial>) -> Option<F> {
        let along = self.along.as_deref_mut();
        if first == Some(FirstTrial::Statistics) {
            self.eval.trial_stats(self.objective, along, self.batch)
        } else {
            self.eval.trial_loss(self.objective, along, self.batch)
        }
    }

    /// The batch loss at `w` by a loss pass. `None` out of loss budget.
    fn loss_pass_at_w(&mut self) -> Option<F> {
        self.eval.loss(self.objective, self.w, self.batch)
    }

    /// Replaces `stats` by the batch statistics at `point`; false, evaluating nothing, when
    /// the budget cannot pay for them.
    pub(crate) fn stats_at(&mut self, point: &Array1<F>, stats: &mut GradStats<F>) -> bool {
        self.eval
            .stats_into(self.objective, point, self.batch, stats)
    }

    /// The statistics of the batch at `w`.
    pub(crate) fn stats(&self) -> &GradStats<F> {
        self.eval.stats()
    }
}

/// One Armijo search along `d` (see [`StepContext::backtrack`](super::StepContext::backtrack)
/// for the rule).
pub(crate) struct Backtracking<'s, F> {
    search: &'s LineSearch,
    iteration: usize,
    slope: F,
    /// The loss at `w` the trials are compared with, and whether it came from one pass.
    f0: F,
    f0_one_pass: bool,
    allowance: F,
    /// The evaluator's trial counts when the search started.
    before: (usize, usize),
}

/// How one trial ended the search, if it did.
enum Verdict<F> {
    Accept(F),
    NoStep,
    Shrink(F),
}

impl<'s, F: Float> Backtracking<'s, F> {
    pub(crate) fn new<O: Objective<F> + ?Sized>(
        search: &'s LineSearch,
        trials: &Trials<'_, F, O>,
        slope: F,
        iteration: usize,
    ) -> Self {
        Backtracking {
            search,
            iteration,
            slope,
            f0: trials.loss,
            f0_one_pass: trials.eval.loss_in_one_pass(),
            allowance: rounding_allowance(trials.loss),
            before: trials.eval.trials(),
        }
    }

    /// Searches from `alpha` along `d`.
    pub(crate) fn run<O: Objective<F> + ?Sized>(
        mut self,
        trials: &mut Trials<'_, F, O>,
        d: &Array1<F>,
        alpha: F,
    ) -> Result<Step<F>> {
        if self.slope.is_nan() || self.slope >= F::zero() {
            return Err(self.fail(0));
        }
        let (mut alpha, mut backtracks) = (alpha, 0);
        loop {
            if trials.aim(d, alpha) {
                // Shorter steps cannot move `w` either.
                return self.no_step(trials.eval, backtracks);
            }
            let first = (backtracks == 0).then_some(self.search.first_trial);
            // Out of loss budget: no step, and the run stops.
            let Some(f) = trials.loss_at_trial(first) else {
                return self.no_step(trials.eval, backtracks);
            };
            match self.judge(trials, alpha, f, backtracks)? {
                Verdict::Accept(f) => {
                    return Ok(Step::new(alpha)
                        .with_backtracks(backtracks)
                        .with_loss_after(f));
                }
                Verdict::NoStep => return self.no_step(trials.eval, backtracks),
                Verdict::Shrink(factor) => alpha *= factor,
            }
            backtracks += 1;
        }
    }

    /// Whether the trial at `alpha` with loss `f` is accepted, ends the search without a
    /// step, or is shrunk (and by which factor).
    fn judge<O: Objective<F> + ?Sized>(
        &mut self,
        trials: &mut Trials<'_, F, O>,
        alpha: F,
        f: F,
        backtracks: usize,
    ) -> Result<Verdict<F>> {
        let search = self.search;
        let required = F::from_f64(search.sufficient_decrease) * alpha * self.slope;
        let below_rounding = -required <= self.allowance;
        if below_rounding && f > self.f0 && f - self.f0 <= self.allowance && !self.f0_one_pass {
            // Compare like with like: the loss at `w` by the trial's own code path.
            let Some(again) = trials.loss_pass_at_w() else {
                return Ok(Verdict::NoStep);
            };
            self.f0 = again;
            self.f0_one_pass = true;
        }
        let sufficient = f <= self.f0 + required;
        let unresolvable = below_rounding && f <= self.f0;
        if f.is_finite() && (sufficient || unresolvable) {
            return Ok(Verdict::Accept(f));
        }
        let beta = F::from_f64(search.shrink);
        if backtracks == search.max_backtracks || alpha * beta < F::from_f64(search.min_step) {
            if self.all_non_finite(trials.eval) {
                return Err(self.non_finite());
            }
            if below_rounding {
                // Every decrease asked of the last trials was below the rounding of the
                // loss: the precision is exhausted, the model is not at fault. No step.
                return Ok(Verdict::NoStep);
            }
            return Err(self.fail(backtracks));
        }
        // A non-finite trial says little about how far the finite region reaches: shrink
        // faster, so that a model that is non-finite along the whole direction costs a few
        // trials, not a search down to the last bit of `w`.
        Ok(Verdict::Shrink(if f.is_finite() {
            beta
        } else {
            beta * F::from_f64(NON_FINITE_SHRINK)
        }))
    }

    /// No step; an error instead if every trial of the search was non-finite (the model's
    /// fault, not the precision's).
    fn no_step(&self, eval: &Evaluator<F>, backtracks: usize) -> Result<Step<F>> {
        if self.all_non_finite(eval) {
            return Err(self.non_finite());
        }
        Ok(Step::new(F::zero())
            .with_backtracks(backtracks)
            .with_loss_after(self.f0))
    }

    fn all_non_finite(&self, eval: &Evaluator<F>) -> bool {
        let (t, nf) = eval.trials();
        let (t0, nf0) = self.before;
        t > t0 && t - t0 == nf - nf0
    }

    fn non_finite(&self) -> Error {
        Error::non_finite(
            "loss at every trial point of the line search",
            self.iteration,
        )
    }

    fn fail(&self, backtracks: usize) -> Error {
        Error::LineSearchFailed {
            iteration: self.iteration,
            backtracks,
            last_iterate: Vec::new(),
        }
    }
}

/// The extra factor by which a search shrinks its step after a non-finite trial.
const NON_FINITE_SHRINK: f64 = 0.1;

/// The rounding error `ε_F = 10 · ε_F · |f0|` of a batch loss `f0`, below which the Armijo
/// test cannot resolve a decrease (see [`StepContext::backtrack`](super::StepContext::backtrack)).
fn rounding_allowance<F: Float>(f0: F) -> F {
    F::from_f64(10.0) * F::epsilon() * f0.abs()
}
