//! [`GainScaled`]: a step rule's direction lengthened by the gain ratio of the batch.

use super::{Step, StepContext, StepRule};
use crate::error::{Result, check};
use crate::float::Float;
use crate::objective::Objective;

/// Another rule's direction times the gain ratio of the batch against a reference batch size
/// `b0`, the size the inner rule's own step suits (AdaScale's rule, Johnson et al. 2020):
///
/// ```text
/// r = ((V_B/b0 + G²) / (V_B/n + G²))^p,   G² = max(0, ‖g_B‖² − V_B/n),   r ≥ 1
/// ```
///
/// with `V_B` the batch's per-sample variance, `n` its size and `p` the power. The ratio is
/// the expected squared error of a batch of `b0` over that of this batch, both with the
/// signal added: 1 for `n = b0`, up to `n/b0` where the noise dominates the signal, and near 1
/// where the signal dominates (a larger batch then gains nothing). It is the factor by which
/// the best step of SGD grows with the batch, `ε(n)/ε(b0)` with `ε(B) = ε_max/(1 + B_noise/B)`
/// (McCandlish et al. 2018), so that a batch grown by the big-batch test moves the iterate
/// further rather than spending its samples on the same step.
///
/// The inner rule's memory sees its own unscaled direction, so that the step of a rule that
/// remembers its steps (Adadelta) is not scaled again on the next iteration.
///
/// # Example
/// ```
/// use bigbatch::{Adadelta, BigBatchSgd, GainScaled};
/// let opt = BigBatchSgd::builder().step(GainScaled::new(Adadelta::new())).build()?;
/// assert_eq!(opt.step_rule().reference_batch_size(), 32);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GainScaled<R> {
    inner: R,
    reference_batch: usize,
    power: f64,
}

impl<R> GainScaled<R> {
    /// `inner` scaled against a reference batch of 32 samples, power 1.
    pub fn new(inner: R) -> Self {
        GainScaled {
            inner,
            reference_batch: 32,
            power: 1.0,
        }
    }
    /// The batch size `b0` the inner rule's step suits (≥ 1). Default 32.
    pub fn reference_batch(mut self, b0: usize) -> Self {
        self.reference_batch = b0;
        self
    }
    /// The power `p` > 0 of the ratio: 1 is SGD's rule, 1/2 the square-root rule proposed
    /// for adaptive methods. Default 1.
    pub fn power(mut self, p: f64) -> Self {
        self.power = p;
        self
    }
    /// The reference batch size `b0`.
    pub fn reference_batch_size(&self) -> usize {
        self.reference_batch
    }
    /// The power `p`.
    pub fn power_of_ratio(&self) -> f64 {
        self.power
    }
    /// The inner rule.
    pub fn inner(&self) -> &R {
        &self.inner
    }
    /// The gain ratio for a batch of `n` samples with per-sample variance `v` and squared
    /// gradient norm `g2` (1 where the estimates are not finite).
    pub fn ratio(&self, n: usize, v: f64, g2: f64) -> f64 {
        let n = n.max(1) as f64;
        let signal = (g2 - v / n).max(0.0);
        let denominator = v / n + signal;
        let r = (v / self.reference_batch as f64 + signal) / denominator;
        if r.is_finite() {
            r.max(1.0).powf(self.power)
        } else {
            1.0
        }
    }
}

impl<R: StepRule> StepRule for GainScaled<R> {
    fn validate(&self) -> Result<()> {
        check::nonzero_count("reference_batch", self.reference_batch)?;
        check::positive("power", self.power)?;
        self.inner.validate()
    }
    fn reset(&mut self) {
        self.inner.reset();
    }
    fn step<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        ctx: &mut StepContext<'_, F, O>,
    ) -> Result<Step<F>> {
        let step = self.inner.step(ctx)?;
        let stats = ctx.stats();
        let r = self.ratio(stats.count(), stats.variance(), stats.grad_norm_sq());
        let r = F::from_f64(r);
        ctx.direction_mut().mapv_inplace(|d| d * r);
        Ok(step)
    }
}
