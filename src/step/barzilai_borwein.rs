use ndarray::{Array1, Zip};

use super::armijo::validate_bounds;
use super::{FirstTrial, LineSearch, Step, StepContext, StepRule};
use crate::error::Result;
use crate::float::Float;
use crate::objective::Objective;

/// A step from the curvature along the last move, measured on the current batch
/// (Barzilai–Borwein secant), corrected for the gradient noise, smoothed, and safeguarded by
/// Armijo backtracking.
///
/// ```text
/// s = w_t − w_{t−1},   y = g_{B_t}(w_t) − g_{B_t}(w_{t−1}),   ν = s·y / s·s
/// α̂ = ‖g_B‖²/(‖g_B‖² + noise) / ν               noise = φ V_B / n (0 for a full batch)
/// α ← (1 − ω) α + ω α̂,  ω = n/N                 (ω = 1 without smoothing or with a full batch)
/// α ← clamp(α, α_min, α_max), then Armijo backtracking from α on B_t
/// ```
///
/// Both gradients of `y` come from the same samples. With fresh batches that costs `|B_t|`
/// more gradient evaluations at `w_{t−1}` (counted in the budget); with
/// [`BatchMode::Persistent`](crate::BatchMode::Persistent) the previous batch's gradients at
/// both iterates are already known and the pair is free. When ν is not positive and
/// finite (non-convex regions, a zero move) the step is not updated and Armijo alone
/// decides. The first iteration has no previous point and uses the initial step with Armijo.
///
/// Defaults: initial step 1, α_min = 1e-12, α_max = 1e6, smoothing on, Armijo with
/// c = 0.1, β = 0.5 and at most 60 backtracks.
///
/// # Example
/// ```
/// use bigbatch::{BarzilaiBorwein, BigBatchSgd};
/// let rule = BarzilaiBorwein::new().max_step(10.0).smoothing(false);
/// let _optimizer = BigBatchSgd::builder().step(rule).theta(0.5).build()?;
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BarzilaiBorwein {
    initial_step: f64,
    max_step: f64,
    smoothing: bool,
    search: LineSearch,
    alpha: f64,
    /// The previous iterate and the batch gradient there (in `f64`, exact for either float
    /// type).
    prev: Option<(Array1<f64>, Array1<f64>)>,
}

impl Default for BarzilaiBorwein {
    fn default() -> Self {
        BarzilaiBorwein {
            initial_step: 1.0,
            max_step: 1e6,
            smoothing: true,
            search: LineSearch {
                first_trial: FirstTrial::Statistics,
                ..LineSearch::default()
            },
            alpha: 1.0,
            prev: None,
        }
    }
}

impl BarzilaiBorwein {
    /// The rule with its defaults.
    pub fn new() -> Self {
        Self::default()
    }
    line_search_setters!(0.1);
    /// The step of the first iteration (> 0). Default 1.
    #[must_use]
    pub fn initial_step(mut self, step: f64) -> Self {
        self.initial_step = step;
        self.alpha = step;
        self
    }
    /// α_max, the largest step (≥ the initial step). Default 1e6.
    #[must_use]
    pub fn max_step(mut self, step: f64) -> Self {
        self.max_step = step;
        self
    }
    /// Blend the new estimate into the old step with weight `n/N` (default on); off, the
    /// estimate replaces the step. Turn it off for streaming data, where `n/N` is about 0.
    #[must_use]
    pub fn smoothing(mut self, on: bool) -> Self {
        self.smoothing = on;
        self
    }

    /// The curvature estimate `ν = s·y / s·s` and its step estimate, if ν is usable.
    fn estimate<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        ctx: &mut StepContext<'_, F, O>,
    ) -> Result<Option<f64>> {
        let Some((prev_w, prev_g)) = self.prev.as_ref() else {
            return Ok(None);
        };
        // Both gradients on identical samples: free with persistent batches.
        let Some(y) = ctx.gradient_change(prev_w, prev_g)? else {
            // The budget cannot pay for the pair: no new estimate.
            return Ok(None);
        };
        let (mut ss, mut sy) = (0.0, 0.0);
        Zip::from(ctx.w())
            .and(prev_w)
            .and(&y)
            .for_each(|&w, &wp, &y| {
                let s = (w - F::from_f64(wp)).as_f64();
                ss += s * s;
                sy += s * y;
            });
        let nu = sy / ss;
        if ss <= 0.0 || !nu.is_finite() || nu <= 0.0 {
            return Ok(None);
        }
        let g2 = ctx.stats().grad_norm_sq();
        let factor = noise_factor(ctx.noise(), g2);
        Ok(Some(factor / nu))
    }
}

/// The noise correction of the step estimate: `‖∇ℓ‖²/E‖g_B‖²`, estimated by
/// `‖g_B‖²/(‖g_B‖² + noise)`.
///
/// The textbook plug-in `1 − noise/‖g_B‖²` (an unbiased estimate of the numerator over the
/// denominator) is only bounded below by `1 − θ²` on a batch that passed the test, which is 0
/// at the default θ = 1: right after the batch grows the estimate collapses to a fraction of
/// `1/ν`, and with a step carried over and smoothed by `n/N` it takes many iterations to
/// recover. Taking `‖g_B‖²` itself as the signal gives `1/(1 + noise/‖g_B‖²)`, which agrees
/// with `1 − noise/‖g_B‖²` to first order in the noise ratio and never falls below
/// `1/(1 + θ²)` (½ at θ = 1) on a passing batch. Zero when there is no signal.
fn noise_factor(noise: f64, g2: f64) -> f64 {
    if g2 > 0.0 { g2 / (g2 + noise) } else { 0.0 }
}

impl StepRule for BarzilaiBorwein {
    fn validate(&self) -> Result<()> {
        self.search.validate()?;
        validate_bounds(self.initial_step, self.search.min_step, self.max_step)
    }

    fn reset(&mut self) {
        self.alpha = self.initial_step;
        self.prev = None;
    }

    fn step<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        ctx: &mut StepContext<'_, F, O>,
    ) -> Result<Step<F>> {
        if let Some(estimate) = self.estimate(ctx)? {
            let weight = if !self.smoothing || ctx.is_full_batch() {
                1.0
            } else {
                ctx.batch().len() as f64 / ctx.n_samples() as f64
            };
            self.alpha = (1.0 - weight) * self.alpha + weight * estimate;
        }
        self.alpha = self.alpha.clamp(self.search.min_step, self.max_step);
        let step = ctx.backtrack(F::from_f64(self.alpha), &self.search)?;
        // A search that could not resolve a decrease makes no step; the next search starts
        // again from the initial step instead of from zero.
        self.alpha = if step.step_size > F::zero() {
            step.step_size.as_f64()
        } else {
            self.initial_step
        };
        match self.prev.as_mut() {
            Some((w, g)) => {
                w.zip_mut_with(ctx.w(), |a, &b| *a = b.as_f64());
                g.assign(ctx.stats().mean());
            }
            None => self.prev = Some((ctx.w().mapv(F::as_f64), ctx.stats().mean().clone())),
        }
        Ok(step)
    }
}
