use super::{LineSearch, Step, StepContext, StepRule};
use crate::error::{Error, Result, check};
use crate::float::Float;
use crate::objective::Objective;

/// When [`Armijo`] enlarges the step it carries over from the last iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StepIncrease {
    /// Only in iterations whose batch grew: a more accurate gradient allows a longer step
    /// again (the rule of the paper's reference implementations). Once the batch holds every
    /// sample it never grows again, so the step can then only shrink.
    OnBatchGrowth,
    /// Before every line search (the default): the step can recover after a region of high
    /// curvature, at the cost of about one more batch-loss evaluation per iteration. Chosen
    /// against `OnBatchGrowth` on the reference problems (the crate's README gives the
    /// comparison).
    #[default]
    EveryIteration,
    /// Never: the step only shrinks.
    Never,
}

/// Armijo backtracking on the batch loss, the step carried from one iteration to the next.
///
/// ```text
/// α ← min(α_max, γα)          every iteration, or only when the batch grew (`StepIncrease`)
/// α ← βα                      until ℓ_B(w − α g_B) ≤ ℓ_B(w) − c α ‖g_B‖²
/// ```
///
/// The search uses the same batch `B` whose gradient was drawn, and costs only batch losses
/// at trial points. Defaults: initial step 1, c = 0.1, β = 0.5, γ = 2 every iteration,
/// α_max = 1e6, α_min = 1e-12, 60 backtracks at most. Only losses are evaluated at trial
/// points: the first trial is the enlarged step, often rejected, and gradients computed there
/// would be wasted.
///
/// # Example
/// ```
/// use bigbatch::{Armijo, BigBatchSgd, StepIncrease};
/// let rule = Armijo::new().initial_step(0.5).sufficient_decrease(1e-4).increase(StepIncrease::OnBatchGrowth);
/// let opt = BigBatchSgd::builder().step(rule).build()?;
/// assert_eq!(opt.step_rule().line_search().sufficient_decrease, 1e-4);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Armijo {
    initial_step: f64,
    increase_factor: f64,
    max_step: f64,
    increase: StepIncrease,
    search: LineSearch,
    alpha: f64,
}

impl Default for Armijo {
    fn default() -> Self {
        Armijo {
            initial_step: 1.0,
            increase_factor: 2.0,
            max_step: 1e6,
            increase: StepIncrease::EveryIteration,
            search: LineSearch::default(),
            alpha: 1.0,
        }
    }
}

impl Armijo {
    /// The rule with its defaults.
    pub fn new() -> Self {
        Self::default()
    }
    line_search_setters!(0.1);
    /// The step tried first in a run (> 0). Default 1.
    #[must_use]
    pub fn initial_step(mut self, step: f64) -> Self {
        self.initial_step = step;
        self.alpha = step;
        self
    }
    /// γ, the factor the step is enlarged by (≥ 1); [`increase`](Self::increase) says when.
    /// Default 2.
    #[must_use]
    pub fn increase_factor(mut self, gamma: f64) -> Self {
        self.increase_factor = gamma;
        self
    }
    /// When to enlarge the step. Default [`StepIncrease::EveryIteration`].
    #[must_use]
    pub fn increase(mut self, increase: StepIncrease) -> Self {
        self.increase = increase;
        self
    }
    /// The largest step (≥ the initial step). Default 1e6.
    #[must_use]
    pub fn max_step(mut self, step: f64) -> Self {
        self.max_step = step;
        self
    }
}

/// Checks the step bounds shared by [`Armijo`] and the Barzilai–Borwein rule.
pub(crate) fn validate_bounds(initial: f64, min: f64, max: f64) -> Result<()> {
    check::positive("initial_step", initial)?;
    check::positive("max_step", max)?;
    if min > initial {
        return Err(Error::invalid("min_step", min, "≤ initial_step"));
    }
    if max < initial {
        return Err(Error::invalid("max_step", max, "≥ initial_step"));
    }
    Ok(())
}

impl StepRule for Armijo {
    fn validate(&self) -> Result<()> {
        self.search.validate()?;
        validate_bounds(self.initial_step, self.search.min_step, self.max_step)?;
        check::at_least_one("increase_factor", self.increase_factor)
    }

    fn reset(&mut self) {
        self.alpha = self.initial_step;
    }

    fn step<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        ctx: &mut StepContext<'_, F, O>,
    ) -> Result<Step<F>> {
        let enlarge = match self.increase {
            StepIncrease::OnBatchGrowth => ctx.batch_grew(),
            StepIncrease::EveryIteration => true,
            StepIncrease::Never => false,
        };
        if enlarge {
            self.alpha = (self.alpha * self.increase_factor).min(self.max_step);
        }
        let step = ctx.backtrack(F::from_f64(self.alpha), &self.search)?;
        // A search that could not resolve a decrease makes no step; the next search starts
        // again from the initial step (enlarging zero would give zero forever).
        self.alpha = if step.step_size > F::zero() {
            step.step_size.as_f64()
        } else {
            self.initial_step
        };
        Ok(step)
    }
}
