//! [`BatchScaled`]: a step rule's direction lengthened in proportion to the batch (the linear
//! scaling rule).

use super::{Step, StepContext, StepRule};
use crate::error::{Result, check};
use crate::float::Float;
use crate::objective::Objective;

/// Another rule's direction times `(n/b0)^p`, for a batch of `n` samples against a reference
/// batch of `b0`: the linear scaling rule at `p = 1` (the step grows with the batch, so that
/// the step per sample stays the same), which AdaBatch (Devarakonda, Naumov & Garland 2017)
/// applies each time its schedule multiplies the batch.
///
/// It is the limit of [`GainScaled`](super::GainScaled) where the noise dominates the signal,
/// and unlike it it does not look at the batch's statistics: a fixed schedule of steps for a
/// fixed schedule of batches ([`BatchSchedule`](crate::BatchSchedule)). Meant for a constant
/// step ([`Fixed`](super::Fixed)); a line search's step is its own, and scaling it past the
/// search makes it another step. The inner rule's memory sees its own unscaled direction.
///
/// # Example
/// ```
/// use bigbatch::{BatchScaled, BigBatchSgd, Fixed};
/// let opt = BigBatchSgd::builder()
///     .step(BatchScaled::new(Fixed::new(0.1)).reference_batch(32))
///     .build()?;
/// assert_eq!(opt.step_rule().factor(128), 4.0);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BatchScaled<R> {
    inner: R,
    reference_batch: usize,
    power: f64,
}

impl<R> BatchScaled<R> {
    /// `inner` scaled against a reference batch of 32 samples, power 1.
    pub fn new(inner: R) -> Self {
        BatchScaled {
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
    /// The power `p ≥ 0`: 1 is the linear scaling rule, 1/2 the square-root rule, 0 no
    /// scaling. Default 1.
    pub fn power(mut self, p: f64) -> Self {
        self.power = p;
        self
    }
    /// The inner rule.
    pub fn inner(&self) -> &R {
        &self.inner
    }
    /// The factor `(n/b0)^p` for a batch of `n` samples.
    pub fn factor(&self, n: usize) -> f64 {
        (n as f64 / self.reference_batch as f64).powf(self.power)
    }
}

impl<R: StepRule> StepRule for BatchScaled<R> {
    fn validate(&self) -> Result<()> {
        check::nonzero_count("reference_batch", self.reference_batch)?;
        check::non_negative("power", self.power)?;
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
        let r = F::from_f64(self.factor(ctx.batch().len()));
        ctx.direction_mut().mapv_inplace(|d| d * r);
        Ok(step)
    }
}
