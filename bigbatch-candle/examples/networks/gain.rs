//! A pilot of steps that lengthen with the batch: any step rule's direction scaled by the gain
//! ratio of AdaScale (Johnson et al. 2020) relative to the first batch size `b0`,
//!
//! ```text
//! r = (V/b0 + G²) / (V/B + G²),   G² = max(0, ‖g_B‖² − V/B)
//! ```
//!
//! with `V` the batch's per-sample variance estimate and `B` its size: 1 at `B = b0`, up to
//! `B/b0` where the noise dominates the signal. The inner rule's own memory sees its unscaled
//! direction (Adadelta's average of the steps taken would otherwise grow the next step by the
//! same factor, and the one after by its square).

use bigbatch::step::{Step, StepContext};
use bigbatch::{Float, Objective, Result, StepRule};

/// `inner`'s direction times the gain ratio.
#[derive(Debug, Clone)]
pub struct Gained<R> {
    pub inner: R,
    pub b0: usize,
}

impl<R: StepRule> StepRule for Gained<R> {
    fn validate(&self) -> Result<()> {
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
        let (v, b) = (stats.variance(), stats.count().max(1) as f64);
        let g2 = (stats.grad_norm_sq() - v / b).max(0.0);
        let denominator = v / b + g2;
        let r = if denominator > 0.0 {
            ((v / self.b0 as f64 + g2) / denominator).max(1.0)
        } else {
            1.0
        };
        let r = F::from_f64(r);
        ctx.direction_mut().mapv_inplace(|d| d * r);
        Ok(step)
    }
}
