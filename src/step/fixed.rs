use super::{Step, StepContext, StepRule};
use crate::error::{Result, check};
use crate::float::Float;
use crate::objective::Objective;

/// A constant step size α: `w ← w − α g_B`.
///
/// With `L` the Lipschitz constant of `∇ℓ`, `α = 1/(L(1+θ²))` gives an expected decrease of
/// at least `‖∇ℓ‖²/(2L(1+θ²))` per iteration, and a linear rate under the
/// Polyak–Łojasiewicz condition; any `α < 2/(L(1+θ²))` decreases the loss in expectation.
/// No decay is needed: the growing batch keeps the gradient error below `θ‖∇ℓ‖`.
///
/// # Example
/// ```
/// use bigbatch::{BigBatchSgd, Fixed};
/// let opt = BigBatchSgd::builder().step(Fixed::new(0.1)).build()?;
/// assert_eq!(opt.step_rule().step_size(), 0.1);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Fixed {
    step: f64,
}

impl Fixed {
    /// The rule with step size `step_size` (finite and > 0, checked by `build()`).
    pub fn new(step_size: f64) -> Self {
        Fixed { step: step_size }
    }

    /// The step size.
    pub fn step_size(&self) -> f64 {
        self.step
    }
}

impl StepRule for Fixed {
    fn validate(&self) -> Result<()> {
        check::positive("step_size", self.step)
    }

    fn reset(&mut self) {}

    fn step<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        _ctx: &mut StepContext<'_, F, O>,
    ) -> Result<Step<F>> {
        Ok(Step::new(F::from_f64(self.step)))
    }
}
