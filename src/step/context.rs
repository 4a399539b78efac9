//! What a step rule sees of an iteration, and the verbs it has.

use ndarray::{Array1, ArrayRef1, Zip};

use super::search::{Backtracking, Trials};
use super::{LineSearch, Step};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::objective::Objective;
use crate::stats::GradStats;

#[cfg(doc)]
use super::FirstTrial;

/// What a [`StepRule`](super::StepRule) sees of the current iteration: the iterate, the batch
/// that passed the test and its statistics there, and the search direction, which starts as
/// `−g_B`. Its verbs ([`gradient_change`](Self::gradient_change) and
/// [`backtrack`](Self::backtrack)) evaluate the objective; every evaluation they cost is
/// counted against the run's budget.
pub struct StepContext<'a, F: Float, O: ?Sized> {
    /// The batch gradient rounded to `F`, for the slope `g_B·d`.
    pub(crate) gradient: &'a Array1<F>,
    pub(crate) noise: f64,
    pub(crate) batch_grew: bool,
    /// Whether the previous batch's statistics at `w` are known (persistent batches, after
    /// the first iteration).
    pub(crate) has_previous: bool,
    pub(crate) iteration: usize,
    pub(crate) n_samples: usize,
    pub(crate) direction: &'a mut Array1<F>,
    pub(crate) trials: Trials<'a, F, O>,
}

impl<F: Float, O: ?Sized> std::fmt::Debug for StepContext<'_, F, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepContext")
            .field("iteration", &self.iteration)
            .field("batch", &self.trials.batch.len())
            .field("loss", &self.trials.loss)
            .field("noise", &self.noise)
            .finish_non_exhaustive()
    }
}

impl<F: Float, O: Objective<F> + ?Sized> StepContext<'_, F, O> {
    /// The current iterate `w`.
    pub fn w(&self) -> &Array1<F> {
        self.trials.w
    }
    /// The indices of the batch, which passed the big-batch test at `w`.
    pub fn batch(&self) -> &[usize] {
        self.trials.batch
    }
    /// The batch statistics at `w`; the batch gradient `g_B(w)` is their
    /// [`mean`](GradStats::mean), in `f64`.
    pub fn stats(&self) -> &GradStats<F> {
        self.trials.stats()
    }
    /// The batch loss `ℓ_B(w)`.
    pub fn loss(&self) -> F {
        self.trials.loss
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
        self.has_previous.then(|| self.trials.eval.previous())
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
        self.trials.batch.len() >= self.n_samples
    }
    /// The search direction `d`; `−g_B` unless the rule changed it.
    pub fn direction(&self) -> &Array1<F> {
        self.direction
    }
    /// The search direction, to change in place.
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
        if !self.trials.stats_at(&point, &mut at_prev) {
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
    /// The first trial is evaluated as the search's [`first_trial`](LineSearch::first_trial)
    /// expects: its loss, or with [`FirstTrial::Statistics`] the batch's full statistics there
    /// when the run can start the next iteration from them.
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
    pub fn backtrack(&mut self, alpha: F, search: &LineSearch) -> Result<Step<F>> {
        let slope = self.slope();
        Backtracking::new(search, &self.trials, slope, self.iteration).run(
            &mut self.trials,
            self.direction,
            alpha,
        )
    }
}
