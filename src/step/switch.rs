use super::{Step, StepContext, StepRule};
use crate::error::Result;
use crate::float::Float;
use crate::objective::Objective;

/// One rule while the batch is a sample, another once it holds every sample: for instance
/// L-BFGS on the growing batch and Newton-CG on the whole data set, where the gradient is
/// exact and Newton's method converges fastest.
///
/// The second rule takes over at the first iteration whose batch is whole and keeps the run
/// from then on (a batch does not shrink back under
/// [`BatchMode::Persistent`](crate::BatchMode::Persistent); with fresh batches the rule
/// follows the batch of each iteration). Both are reset when a run starts.
///
/// # Example
/// ```
/// use bigbatch::{BigBatchSgd, Lbfgs, NewtonCg, Switch, data::datasets, models::Logistic};
/// use ndarray::Array1;
///
/// let model = Logistic::new(datasets::heart_scale::<f64>().with_bias(), 1e-3)?;
/// let rule = Switch::new(Lbfgs::new(), NewtonCg::new().hessian_fraction(1.0));
/// let mut opt = BigBatchSgd::builder().step(rule).tolerance(1e-14).build()?;
/// let report = opt.minimize(&model, Array1::zeros(14))?;
/// assert!(report.grad_norm_sq < 1e-14, "{report}");
/// assert!(opt.step_rule().whole().products() > 0, "Newton steps on the whole data set");
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Switch<A, B> {
    sampled: A,
    whole: B,
}

impl<A, B> Switch<A, B> {
    /// `sampled` while the batch is a sample, `whole` once it holds every sample.
    pub fn new(sampled: A, whole: B) -> Self {
        Switch { sampled, whole }
    }
    /// The rule of the sampled batches.
    pub fn sampled(&self) -> &A {
        &self.sampled
    }
    /// The rule of the whole data set.
    pub fn whole(&self) -> &B {
        &self.whole
    }
}

impl<A: StepRule, B: StepRule> StepRule for Switch<A, B> {
    fn validate(&self) -> Result<()> {
        self.sampled.validate()?;
        self.whole.validate()
    }

    fn reset(&mut self) {
        self.sampled.reset();
        self.whole.reset();
    }

    fn step<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        ctx: &mut StepContext<'_, F, O>,
    ) -> Result<Step<F>> {
        if ctx.is_full_batch() {
            self.whole.step(ctx)
        } else {
            self.sampled.step(ctx)
        }
    }
}
