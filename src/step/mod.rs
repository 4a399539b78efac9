//! Step rules: how far (and, for some rules, in which direction) to move once a big batch
//! has been drawn.
//!
//! Each iteration the optimizer draws a batch that passes the big-batch test, fills a
//! direction with `−g_B`, and asks its [`StepRule`] for a [`Step`]. The rule may keep the
//! direction or overwrite it (a quasi-Newton or momentum rule would), and returns a step
//! size α; the optimizer then moves `w ← w + α·d`. A rule sees the batch through a
//! [`StepContext`], whose evaluation methods count every per-sample loss and gradient they
//! cost.
//!
//! | rule | step size | extra cost per iteration |
//! |---|---|---|
//! | [`Fixed`] | a constant α | none |
//! | [`Armijo`] | backtracking on the batch loss, carried over and enlarged before each search | batch losses at trial points |
//! | [`Lbfgs`] (default) | direction `−H g_B` from curvature pairs on identical samples, unit step, Armijo | trial losses, and with fresh batches the batch's gradients at the previous iterate |
//! | [`BarzilaiBorwein`] | `‖g‖²/((‖g‖² + noise)ν)` with the secant curvature ν on the same batch, then Armijo | trial losses, and with fresh batches the batch's gradients at the previous iterate |
//!
//! With [`BatchMode::Persistent`](crate::BatchMode::Persistent) batches (the default) the
//! next iteration starts by evaluating the same batch at the new iterate. The line search
//! therefore computes the batch's full statistics (gradient, variance and loss in one pass) at
//! its first trial ([`LineSearch::keep_first_trial`]); when that trial is accepted, the next
//! iteration starts from those statistics. Such a step costs one statistics pass, not a loss
//! pass and a statistics pass; with L-BFGS, whose unit step is usually accepted at once, that
//! is most iterations (on by default for L-BFGS and Barzilai–Borwein, off for Armijo).

/// The setters of a rule's [`LineSearch`] (a field `search`), with the rule's default `c`.
macro_rules! line_search_setters {
    ($c_default:literal, $keep_default:literal) => {
        #[doc = concat!("c, the sufficient-decrease constant of the Armijo search, in (0, 1). Default ", stringify!($c_default), ".")]
        #[must_use]
        pub fn sufficient_decrease(mut self, c: f64) -> Self {
            self.search.sufficient_decrease = c;
            self
        }
        /// β, the factor a rejected step is multiplied by, in (0, 1). Default 0.5.
        #[must_use]
        pub fn shrink(mut self, beta: f64) -> Self {
            self.search.shrink = beta;
            self
        }
        /// The most reductions in one search (≥ 1). Default 60.
        #[must_use]
        pub fn max_backtracks(mut self, n: usize) -> Self {
            self.search.max_backtracks = n;
            self
        }
        /// The smallest step tried before the search gives up (≥ 0, ≤ the initial step).
        /// Default 1e-12.
        #[must_use]
        pub fn min_step(mut self, step: f64) -> Self {
            self.search.min_step = step;
            self
        }
        #[doc = concat!("Whether the search computes the batch's full statistics at its first trial, so that with [`BatchMode::Persistent`](crate::BatchMode::Persistent) batches the next iteration starts from them when that trial is accepted (see [`LineSearch::keep_first_trial`]). Default ", stringify!($keep_default), ".")]
        #[must_use]
        pub fn keep_first_trial(mut self, on: bool) -> Self {
            self.search.keep_first_trial = on;
            self
        }
        /// The line-search parameters.
        pub fn line_search(&self) -> &LineSearch {
            &self.search
        }
    };
}

mod armijo;
mod barzilai_borwein;
mod fixed;
mod lbfgs;

pub use armijo::{Armijo, StepIncrease};
pub use barzilai_borwein::BarzilaiBorwein;
pub use fixed::Fixed;
pub use lbfgs::Lbfgs;

use ndarray::{Array1, ArrayRef1, Zip};

use crate::error::{Error, Result, check};
use crate::float::Float;
use crate::objective::Objective;
use crate::stats::GradStats;

/// The step a [`StepRule`] proposes: the optimizer moves `w ← w + alpha·d`, with `d` the
/// direction left in the [`StepContext`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step<F> {
    /// The step size α (finite and ≥ 0).
    pub alpha: F,
    /// How many times a line search shrank the step.
    pub backtracks: usize,
    /// The batch loss at the new point, if the rule evaluated it.
    pub loss_after: Option<F>,
}

/// Chooses the step of each iteration.
///
/// Implement it for a new update rule: the rule keeps its own memory across iterations
/// (a previous iterate, curvature pairs, moment estimates), is reset at the start of every
/// run, and sees the current batch through the [`StepContext`]. A rule owns its memory
/// (`'static`): an observer can then copy the optimizer mid-run, to save a checkpoint.
pub trait StepRule<F: Float>: Validate + 'static {
    /// Forgets everything learned in an earlier run (called when a run starts).
    fn reset(&mut self);

    /// Proposes the step for this iteration, optionally overwriting the direction.
    ///
    /// # Errors
    /// [`Error::LineSearchFailed`] when no acceptable step is found, or
    /// [`Error::NonFinite`] when a quantity the rule needs is not finite.
    fn step<O: Objective<F> + ?Sized>(
        &mut self,
        ctx: &mut StepContext<'_, F, O>,
    ) -> Result<Step<F>>;
}

/// Parameter checking, separate from [`StepRule`] because a rule's parameters do not depend
/// on the float type it will run in.
pub trait Validate {
    /// Checks the parameters; called by the optimizer's `build()`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the parameter and its allowed range.
    fn validate(&self) -> Result<()>;
}

/// What a [`StepRule`] sees of the current iteration.
#[derive(Debug)]
pub struct StepContext<'a, F: Float, O: ?Sized> {
    pub(crate) objective: &'a O,
    pub(crate) w: &'a Array1<F>,
    pub(crate) batch: &'a [usize],
    pub(crate) stats: &'a GradStats<F>,
    pub(crate) gradient: &'a Array1<F>,
    pub(crate) loss: F,
    /// Whether `loss` came from one evaluation of the whole batch (not from statistics merged
    /// over growth rounds), and so is the number [`Objective::batch_loss`] gives at `w`.
    pub(crate) loss_one_pass: bool,
    pub(crate) noise: f64,
    pub(crate) batch_grew: bool,
    pub(crate) previous_batch: Option<&'a GradStats<F>>,
    pub(crate) iteration: usize,
    pub(crate) n_samples: usize,
    pub(crate) direction: &'a mut Array1<F>,
    pub(crate) trial: &'a mut Array1<F>,
    /// Where [`StepContext::stats_along`] leaves the statistics at a trial point, when the
    /// next iteration can start from them (persistent batches whose statistics carry losses).
    pub(crate) kept: Option<&'a mut GradStats<F>>,
    /// Whether `kept` holds the statistics at the point now in `trial`.
    pub(crate) kept_valid: bool,
    pub(crate) grad_evals: &'a mut u64,
    /// The run's budget of per-sample gradient evaluations.
    pub(crate) grad_limit: u64,
    pub(crate) loss_evals: &'a mut u64,
}

impl<'a, F: Float, O: Objective<F> + ?Sized> StepContext<'a, F, O> {
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
        self.stats
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
        self.previous_batch
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
    /// The directional derivative `g_B·d` of the batch loss along the direction.
    pub fn slope(&self) -> F {
        self.gradient.dot(&*self.direction)
    }

    /// Per-sample gradient evaluations the run's budget still allows.
    pub fn remaining_grad_evals(&self) -> u64 {
        self.grad_limit.saturating_sub(*self.grad_evals)
    }

    /// Whether the budget can pay for one evaluation of the batch's gradients.
    fn can_afford_batch(&self) -> bool {
        self.batch.len() as u64 <= self.remaining_grad_evals()
    }

    /// The batch loss `ℓ_B(w + alpha·d)`; counts `|B|` loss evaluations.
    pub fn loss_along(&mut self, alpha: F) -> F {
        fill_trial(self.trial, self.w, self.direction, alpha);
        self.kept_valid = false;
        *self.loss_evals += self.batch.len() as u64;
        self.objective.batch_loss(&*self.trial, self.batch)
    }

    /// Whether [`stats_along`](Self::stats_along) computes the batch's gradient statistics
    /// at its trial point, for the next iteration to start from. True with
    /// [`BatchMode::Persistent`](crate::BatchMode::Persistent) when the objective's batched
    /// gradient reports losses (every bundled model does, and so does the default
    /// per-sample path), and while the budget can pay for a batch of gradients.
    pub fn keeps_trial_stats(&self) -> bool {
        self.kept.is_some() && self.can_afford_batch()
    }

    /// The batch loss `ℓ_B(w + alpha·d)`, computed together with the batch's gradient
    /// statistics when [`keeps_trial_stats`](Self::keeps_trial_stats) (counting `|B|`
    /// gradient evaluations), otherwise as [`loss_along`](Self::loss_along) does.
    ///
    /// With persistent batches the next iteration starts by evaluating this same batch at
    /// the new iterate. If the step the rule returns lands exactly on the last point passed
    /// here, the next iteration starts from these statistics instead, so an accepted trial
    /// costs one statistics pass instead of a loss pass and a statistics pass. Use it for
    /// the trial most likely to be accepted ([`backtrack`](Self::backtrack) uses it for its
    /// first); a rejected trial costs its gradients for nothing.
    pub fn stats_along(&mut self, alpha: F) -> F {
        if !self.keeps_trial_stats() {
            return self.loss_along(alpha);
        }
        let Some(kept) = self.kept.as_deref_mut() else {
            return self.loss_along(alpha);
        };
        fill_trial(self.trial, self.w, self.direction, alpha);
        let n = self.batch.len();
        kept.reset();
        *self.grad_evals += n as u64;
        self.objective
            .batch_gradient(&*self.trial, self.batch, kept);
        // A batched gradient that adds the wrong samples is reported by the next iteration,
        // which then evaluates the batch itself.
        self.kept_valid = kept.count() == n;
        match kept.loss() {
            Some(loss) if self.kept_valid => loss,
            _ => {
                *self.loss_evals += n as u64;
                self.objective.batch_loss(&*self.trial, self.batch)
            }
        }
    }

    /// The batch loss at any point; counts `|B|` loss evaluations.
    pub fn loss_at(&mut self, point: &ArrayRef1<F>) -> F {
        *self.loss_evals += self.batch.len() as u64;
        self.objective.batch_loss(point, self.batch)
    }

    /// Replaces `stats` by the batch statistics at `point` and returns true, counting `|B|`
    /// gradient evaluations; returns false, evaluating nothing, when the run's budget cannot
    /// pay for them ([`remaining_grad_evals`](Self::remaining_grad_evals)).
    pub fn stats_at(&mut self, point: &ArrayRef1<F>, stats: &mut GradStats<F>) -> bool {
        if !self.can_afford_batch() {
            return false;
        }
        stats.reset();
        *self.grad_evals += self.batch.len() as u64;
        self.objective.batch_gradient(point, self.batch, stats);
        true
    }

    /// Whether the trial point last written equals `w` bit for bit (the step is below the
    /// resolution of the iterate).
    fn trial_is_w(&self) -> bool {
        self.trial
            .iter()
            .zip(self.w.iter())
            .all(|(t, w)| t.as_f64().to_bits() == w.as_f64().to_bits())
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
    /// finite is shrunk like any other. In that regime `ℓ_B(w)` and the trial's loss are
    /// computed by the same code path: when the loss at `w` came from statistics merged over
    /// growth rounds (rounded differently from a loss pass), it is evaluated once more with
    /// [`Objective::batch_loss`] before a trial is refused for exceeding it.
    ///
    /// With persistent batches and [`LineSearch::keep_first_trial`], the first trial is
    /// evaluated with [`stats_along`](Self::stats_along): if it is accepted, the next
    /// iteration starts from its statistics.
    ///
    /// The search returns α = 0 (no step) when a trial point equals `w` bit for bit, or when
    /// it runs out (after `max_backtracks` reductions, or below `min_step`) while the decrease
    /// asked of its last trial is below `ε_F`: the precision of the loss is exhausted rather
    /// than the model at fault. The optimizer then grows the batch, or, on the full batch,
    /// stops with [`StopReason::NoProgress`](crate::StopReason::NoProgress); a rule that
    /// carries its step over restarts from its initial step.
    ///
    /// # Errors
    /// [`Error::LineSearchFailed`] when the search runs out while the loss could resolve the
    /// decrease it asked for, or when `d` is not a descent direction.
    pub fn backtrack(&mut self, alpha: F, search: &LineSearch) -> Result<Step<F>> {
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
        let c = F::lit(search.sufficient_decrease);
        let beta = F::lit(search.shrink);
        let min_step = F::lit(search.min_step);
        let mut f0 = self.loss;
        let mut f0_one_pass = self.loss_one_pass;
        let allowance = rounding_allowance(f0);
        let no_step = |backtracks, f0| Step {
            alpha: F::zero(),
            backtracks,
            loss_after: Some(f0),
        };
        let mut alpha = alpha;
        let mut backtracks = 0;
        loop {
            fill_trial(self.trial, self.w, self.direction, alpha);
            if self.trial_is_w() {
                // Shorter steps cannot move `w` either.
                self.kept_valid = false;
                return Ok(no_step(backtracks, f0));
            }
            // With persistent batches the first trial's statistics are kept for the next
            // iteration. It is the trial most often accepted: on generated logistic data
            // (60,000 × 784) keeping it saved more than keeping the trial the previous search
            // accepted would have, for every rule.
            let f = if backtracks == 0 && search.keep_first_trial {
                self.stats_along(alpha)
            } else {
                self.loss_along(alpha)
            };
            let required = c * alpha * slope;
            let below_rounding = -required <= allowance;
            if below_rounding && f > f0 && f - f0 <= allowance && !f0_one_pass {
                // Compare like with like: the loss at `w` by the trial's own code path.
                let w = self.w;
                f0 = self.loss_at(w);
                f0_one_pass = true;
            }
            let sufficient = f <= f0 + required;
            let unresolvable = below_rounding && f <= f0;
            if f.is_finite() && (sufficient || unresolvable) {
                return Ok(Step {
                    alpha,
                    backtracks,
                    loss_after: Some(f),
                });
            }
            if backtracks == search.max_backtracks || alpha * beta < min_step {
                if below_rounding {
                    // Every decrease asked of the last trials was below the rounding of the
                    // loss: the precision is exhausted, the model is not at fault. No step.
                    return Ok(no_step(backtracks, f0));
                }
                return Err(fail(backtracks));
            }
            alpha *= beta;
            backtracks += 1;
        }
    }
}

/// Writes the trial point `w + alpha·d`.
fn fill_trial<F: Float>(trial: &mut Array1<F>, w: &Array1<F>, d: &Array1<F>, alpha: F) {
    Zip::from(trial)
        .and(w)
        .and(d)
        .for_each(|t, &w, &d| *t = w + alpha * d);
}

/// The rounding error `ε_F = 10 · ε_F · |f0|` of a batch loss `f0`, below which the Armijo
/// test cannot resolve a decrease (see [`StepContext::backtrack`]).
pub fn rounding_allowance<F: Float>(f0: F) -> F {
    F::lit(10.0) * F::epsilon() * f0.abs()
}

/// Parameters of the Armijo backtracking search shared by the step rules.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LineSearch {
    /// c in `ℓ_B(w + αd) ≤ ℓ_B(w) + c α g·d`, in (0, 1). Default 0.1.
    pub sufficient_decrease: f64,
    /// β, the factor a rejected step is multiplied by, in (0, 1). Default 0.5.
    pub shrink: f64,
    /// The most reductions in one search before it fails (≥ 1). Default 60.
    pub max_backtracks: usize,
    /// The smallest step tried (≥ 0). Default 1e-12.
    pub min_step: f64,
    /// Whether the first trial is evaluated with [`StepContext::stats_along`]: gradient,
    /// variance and loss in one pass, which the next iteration starts from when the trial is
    /// accepted and batches are [`Persistent`](crate::BatchMode::Persistent). Worth it when
    /// the first trial is usually accepted (L-BFGS's unit step, Barzilai–Borwein's step); a
    /// rejected first trial costs a batch of gradients, counted in the epochs. Default true
    /// (false for [`Armijo`], which enlarges its step before each search).
    pub keep_first_trial: bool,
}

impl Default for LineSearch {
    fn default() -> Self {
        LineSearch {
            sufficient_decrease: 0.1,
            shrink: 0.5,
            max_backtracks: 60,
            min_step: 1e-12,
            keep_first_trial: true,
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
