//! What a step rule sees of an iteration, and the line search every rule shares.

use ndarray::{Array1, ArrayRef1, Zip};

use super::{LineSearch, Step};
use crate::error::{Error, Result};
use crate::evaluator::Evaluator;
use crate::float::Float;
use crate::objective::Objective;
use crate::stats::GradStats;

/// How a line search evaluates its first trial point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirstTrial {
    /// The batch loss only.
    Loss,
    /// The batch's full statistics where the next iteration can start from them (see
    /// [`StepContext::stats_along`]); worth it when the first trial is usually accepted, since
    /// a rejected one costs a batch of gradients for nothing.
    Statistics,
}

/// What a [`StepRule`](super::StepRule) sees of the current iteration.
#[derive(Debug)]
pub struct StepContext<'a, F: Float, O: ?Sized> {
    pub(crate) objective: &'a O,
    pub(crate) w: &'a Array1<F>,
    pub(crate) batch: &'a [usize],
    pub(crate) gradient: &'a Array1<F>,
    pub(crate) loss: F,
    /// Whether `loss` came from one evaluation of the whole batch (not from statistics merged
    /// over growth rounds), and so is the number [`Objective::batch_loss`] gives at `w`.
    pub(crate) loss_one_pass: bool,
    pub(crate) noise: f64,
    pub(crate) batch_grew: bool,
    /// Whether the previous batch's statistics at `w` are known (persistent batches, after
    /// the first iteration).
    pub(crate) has_previous: bool,
    pub(crate) iteration: usize,
    pub(crate) n_samples: usize,
    pub(crate) direction: &'a mut Array1<F>,
    pub(crate) eval: &'a mut Evaluator<F>,
}

impl<F: Float, O: Objective<F> + ?Sized> StepContext<'_, F, O> {
    /// The objective.
    pub fn objective(&self) -> &O {
        self.objective
    }
    /// The current iterate `w`.
    pub fn w(&self) -> &Array1<F> {
        self.w
    }
    /// The indices of the batch, which passed the big-batch test at `w`.
    pub fn batch(&self) -> &[usize] {
        self.batch
    }
    /// The batch statistics at `w`.
    pub fn stats(&self) -> &GradStats<F> {
        self.eval.stats()
    }
    /// The batch gradient `g_B(w)`, rounded to `F` (the statistics keep it in `f64`:
    /// [`GradStats::mean`]).
    pub fn gradient(&self) -> &Array1<F> {
        self.gradient
    }
    /// The batch loss `ℓ_B(w)`.
    pub fn loss(&self) -> F {
        self.loss
    }
    /// The estimated squared error of the batch gradient, `φ V_B / n` (zero for a full batch).
    pub fn noise(&self) -> f64 {
        self.noise
    }
    /// Whether the batch grew during this iteration.
    pub fn batch_grew(&self) -> bool {
        self.batch_grew
    }
    /// With [`BatchMode::Persistent`](crate::BatchMode::Persistent) and after the first
    /// iteration: the statistics at the current `w` of the previous iteration's batch (a
    /// prefix of this one, evaluated anyway), so that `g_{B_{t−1}}(w_t) − g_{B_{t−1}}(w_{t−1})`
    /// is a curvature pair on identical samples at no extra cost. `None` otherwise.
    pub fn previous_batch_stats(&self) -> Option<&GradStats<F>> {
        self.has_previous.then(|| self.eval.previous())
    }
    /// The iteration (0-based).
    pub fn iteration(&self) -> usize {
        self.iteration
    }
    /// The number of samples `N` of the objective.
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }
    /// Whether the batch holds every sample (its gradient is exact).
    pub fn is_full_batch(&self) -> bool {
        self.batch.len() >= self.n_samples
    }
    /// The search direction `d`; `−g_B` unless the rule changed it.
    pub fn direction(&self) -> &Array1<F> {
        self.direction
    }
    /// The search direction, to overwrite.
    pub fn direction_mut(&mut self) -> &mut Array1<F> {
        self.direction
    }
    /// Sets the search direction from `f64` values, rounded to `F` (rules keep their memory
    /// in `f64`).
    ///
    /// # Panics
    /// If `d` does not have the direction's length.
    pub fn set_direction(&mut self, d: &ArrayRef1<f64>) {
        Zip::from(&mut *self.direction)
            .and(d)
            .for_each(|x, &v| *x = F::from_f64(v));
    }
    /// The directional derivative `g_B·d` of the batch loss along the direction.
    pub fn slope(&self) -> F {
        self.gradient.dot(&*self.direction)
    }
    /// Per-sample gradient evaluations the run's budget still allows.
    pub fn remaining_grad_evals(&self) -> u64 {
        self.eval.remaining()
    }

    /// The batch loss `ℓ_B(w + alpha·d)`; counts `|B|` loss evaluations. Once the run's
    /// budget of loss evaluations cannot pay for them it evaluates nothing and returns +∞, and
    /// the run stops after this iteration with
    /// [`StopReason::LossBudget`](crate::StopReason::LossBudget).
    pub fn loss_along(&mut self, alpha: F) -> F {
        self.eval.set_trial(self.w, self.direction, alpha);
        self.eval
            .trial_loss(self.objective, self.batch)
            .unwrap_or_else(F::infinity)
    }

    /// The batch loss `ℓ_B(w + alpha·d)`, computed together with the batch's gradient
    /// statistics there when the next iteration can start from them: with
    /// [`BatchMode::Persistent`](crate::BatchMode::Persistent) batches, when the objective's
    /// batched gradient reports losses (every bundled model does, and so does the default
    /// per-sample path), and while the budget can pay for a batch of gradients (counted).
    /// Otherwise as [`loss_along`](Self::loss_along).
    ///
    /// The statistics are kept with the point they belong to: if the step the rule returns
    /// lands exactly on this point, the next iteration starts from them, so an accepted trial
    /// costs one statistics pass instead of a loss pass and a statistics pass. A rejected
    /// trial costs its gradients for nothing. Out of loss budget, as
    /// [`loss_along`](Self::loss_along).
    pub fn stats_along(&mut self, alpha: F) -> F {
        self.eval.set_trial(self.w, self.direction, alpha);
        self.eval
            .trial_stats(self.objective, self.batch)
            .unwrap_or_else(F::infinity)
    }

    /// The batch loss at any point; counts `|B|` loss evaluations. Out of loss budget, as
    /// [`loss_along`](Self::loss_along).
    pub fn loss_at(&mut self, point: &ArrayRef1<F>) -> F {
        self.eval
            .loss(self.objective, point, self.batch)
            .unwrap_or_else(F::infinity)
    }

    /// Replaces `stats` by the batch statistics at `point` and returns true, counting `|B|`
    /// gradient evaluations; returns false, evaluating nothing, when the run's budget cannot
    /// pay for them ([`remaining_grad_evals`](Self::remaining_grad_evals)).
    pub fn stats_at(&mut self, point: &ArrayRef1<F>, stats: &mut GradStats<F>) -> bool {
        self.eval
            .stats_into(self.objective, point, self.batch, stats)
    }

    /// The change of the batch gradient since the previous iterate `w_prev`, measured on
    /// identical samples: `y = g_{B'}(w) − g_{B'}(w_prev)`, where `prev_gradient` is the
    /// gradient of the previous batch at `w_prev`. With persistent batches `B'` is the
    /// previous batch, whose gradient at `w` is known, and the pair is free; with fresh
    /// batches `B'` is the current batch, evaluated at `w_prev` (`|B|` gradient evaluations).
    /// `None` when the budget cannot pay for that evaluation.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if the gradient at `w_prev` is not finite.
    pub fn gradient_change(
        &mut self,
        w_prev: &Array1<f64>,
        prev_gradient: &Array1<f64>,
    ) -> Result<Option<Array1<f64>>> {
        if let Some(previous) = self.previous_batch_stats() {
            return Ok(Some(previous.mean() - prev_gradient));
        }
        let point = w_prev.mapv(F::from_f64);
        let mut at_prev = GradStats::new(point.len());
        if !self.stats_at(&point, &mut at_prev) {
            return Ok(None);
        }
        if !at_prev.is_finite() {
            return Err(Error::non_finite(
                "gradient at the previous iterate",
                self.iteration,
            ));
        }
        Ok(Some(self.stats().mean() - at_prev.mean()))
    }

    /// Backtracking from `alpha` until the batch loss decreases enough (Armijo's rule):
    ///
    /// ```text
    /// accept α  ⇔  ℓ_B(w + α d) ≤ ℓ_B(w) + c · α · g_B·d
    ///              or  (c · α · |g_B·d| ≤ ε_F  and  ℓ_B(w + α d) ≤ ℓ_B(w))
    /// ε_F = 10 · machine epsilon of F · |ℓ_B(w)|;   otherwise α ← β α
    /// ```
    ///
    /// `ε_F` is the rounding error of a computed loss. Once the required decrease falls below
    /// it (in `f32` this happens long before the gradient is small), the comparison would only
    /// measure rounding noise and the search would shrink the step chasing it; then a step that
    /// does not increase the loss is accepted, and the (more precise) gradient keeps guiding the
    /// run. A step that increases the loss is never accepted, and a trial whose loss is not
    /// finite (an overflow at a step far too long) is shrunk like any other, ten times more,
    /// and counted ([`Report::non_finite_trials`](crate::Report::non_finite_trials)). In that regime `ℓ_B(w)` and the trial's loss are
    /// computed by the same code path: when the loss at `w` came from statistics merged over
    /// growth rounds (rounded differently from a loss pass), it is evaluated once more with
    /// [`Objective::batch_loss`] before a trial is refused for exceeding it.
    ///
    /// The first trial is evaluated as `first` says: its loss, or (with
    /// [`FirstTrial::Statistics`]) through [`stats_along`](Self::stats_along), so that the next
    /// iteration starts from its statistics if it is accepted.
    ///
    /// The search returns a step size of 0 (no step) when a trial point equals `w` bit for
    /// bit, or when it runs out (after `max_backtracks` reductions, or below `min_step`) while
    /// the decrease asked of its last trial is below `ε_F`: the precision of the loss is
    /// exhausted rather than the model at fault. The optimizer then grows the batch, or, on
    /// the full batch, stops with [`StopReason::NoProgress`](crate::StopReason::NoProgress); a
    /// rule that carries its step over restarts from its initial step.
    ///
    /// When the run's budget of loss evaluations cannot pay for the next trial, the search
    /// returns a step size of 0 and the run stops with
    /// [`StopReason::LossBudget`](crate::StopReason::LossBudget) (or, if every trial it made
    /// was non-finite, with [`Error::NonFinite`]).
    ///
    /// # Errors
    /// [`Error::NonFinite`] when the search ends without a step and every trial it evaluated
    /// had a loss that was not finite: the model is not finite along the direction however
    /// short the step, so no precision or batch can help. [`Error::LineSearchFailed`] when the
    /// search runs out while the loss could resolve the decrease it asked for, or when `d` is
    /// not a descent direction.
    pub fn backtrack(
        &mut self,
        alpha: F,
        search: &LineSearch,
        first: FirstTrial,
    ) -> Result<Step<F>> {
        let iteration = self.iteration;
        let fail = move |backtracks| Error::LineSearchFailed {
            iteration,
            backtracks,
            last_iterate: Vec::new(),
        };
        let slope = self.slope();
        if slope.is_nan() || slope >= F::zero() {
            return Err(fail(0));
        }
        let c = F::from_f64(search.sufficient_decrease);
        let beta = F::from_f64(search.shrink);
        let min_step = F::from_f64(search.min_step);
        let mut f0 = self.loss;
        let mut f0_one_pass = self.loss_one_pass;
        let allowance = rounding_allowance(f0);
        let no_step = |backtracks, f0| {
            Step::new(F::zero())
                .with_backtracks(backtracks)
                .with_loss_after(f0)
        };
        // A search that ends without a step after trials that were all non-finite is the
        // model's fault, not the precision's.
        let (trials_before, non_finite_before) = self.eval.trials();
        let all_non_finite = |eval: &Evaluator<F>| {
            let (t, nf) = eval.trials();
            t > trials_before && t - trials_before == nf - non_finite_before
        };
        let non_finite =
            || Error::non_finite("loss at every trial point of the line search", iteration);
        let mut alpha = alpha;
        let mut backtracks = 0;
        loop {
            self.eval.set_trial(self.w, self.direction, alpha);
            if self.eval.trial_is(self.w) {
                // Shorter steps cannot move `w` either.
                if all_non_finite(self.eval) {
                    return Err(non_finite());
                }
                return Ok(no_step(backtracks, f0));
            }
            let f = if backtracks == 0 && first == FirstTrial::Statistics {
                self.eval.trial_stats(self.objective, self.batch)
            } else {
                self.eval.trial_loss(self.objective, self.batch)
            };
            // Out of loss budget: no step, and the run stops; if every trial so far was
            // non-finite, that is what the run met.
            let Some(f) = f else {
                if all_non_finite(self.eval) {
                    return Err(non_finite());
                }
                return Ok(no_step(backtracks, f0));
            };
            let required = c * alpha * slope;
            let below_rounding = -required <= allowance;
            if below_rounding && f > f0 && f - f0 <= allowance && !f0_one_pass {
                // Compare like with like: the loss at `w` by the trial's own code path.
                let Some(again) = self.eval.loss(self.objective, self.w, self.batch) else {
                    return Ok(no_step(backtracks, f0));
                };
                f0 = again;
                f0_one_pass = true;
            }
            let sufficient = f <= f0 + required;
            let unresolvable = below_rounding && f <= f0;
            if f.is_finite() && (sufficient || unresolvable) {
                return Ok(Step::new(alpha)
                    .with_backtracks(backtracks)
                    .with_loss_after(f));
            }
            if backtracks == search.max_backtracks || alpha * beta < min_step {
                if all_non_finite(self.eval) {
                    return Err(non_finite());
                }
                if below_rounding {
                    // Every decrease asked of the last trials was below the rounding of the
                    // loss: the precision is exhausted, the model is not at fault. No step.
                    return Ok(no_step(backtracks, f0));
                }
                return Err(fail(backtracks));
            }
            // A non-finite trial says little about how far the finite region reaches: shrink
            // faster, so that a model that is non-finite along the whole direction costs a
            // few trials, not a search down to the last bit of `w`.
            alpha *= if f.is_finite() {
                beta
            } else {
                beta * F::from_f64(NON_FINITE_SHRINK)
            };
            backtracks += 1;
        }
    }
}

/// The extra factor by which a search shrinks its step after a non-finite trial.
const NON_FINITE_SHRINK: f64 = 0.1;

/// The rounding error `ε_F = 10 · ε_F · |f0|` of a batch loss `f0`, below which the Armijo
/// test cannot resolve a decrease (see [`StepContext::backtrack`]).
pub(crate) fn rounding_allowance<F: Float>(f0: F) -> F {
    F::from_f64(10.0) * F::epsilon() * f0.abs()
}
