//! The builder of [`BigBatchSgd`].

use crate::error::{Error, Result, check};
use crate::step::{Lbfgs, StepRule};

use super::config::{BatchMode, BatchSchedule, BigBatchSgd, GrowthRule};

/// Builds a [`BigBatchSgd`]; every setter is infallible and [`build`](Self::build) checks
/// them all.
///
/// | setter | meaning | default |
/// |---|---|---|
/// | `theta` | θ > 0 of the test `V_B/n ≤ θ²‖g_B‖²`; ≤ 1 unless `unbiased_signal` | 1 |
/// | `initial_batch` | batch size of the first iteration, ≥ 2 (capped at N) | 10 |
/// | `growth` | ρ > 0: a failed test adds `max(1, ⌈ρK⌉)` samples | 0.1 |
/// | `growth_rule` | [`GrowthRule`]: by the fraction, or to the size the test asks for | `Fraction` |
/// | `batch_mode` | [`BatchMode`]: a fresh draw each iteration, or prefixes of one shuffle | `Persistent` |
/// | `finite_population_correction` | noise × (1 − n/N) | off |
/// | `unbiased_signal` | test against `θ²/(1+θ²)‖g_B‖²` | off |
/// | `smoothing` | β in [0, 1): test averages over iterations | 0 (off) |
/// | `tolerance` | stop when `‖g_B‖² ≤ ε` on a passing batch | 1e-10 |
/// | `relative_tolerance` | stop when `‖g_B‖² ≤ r‖g_{B_0}‖²`, r in [0, 1) | 0 (off) |
/// | `max_epochs` | budget of gradient evaluations / N, > 0 | 100 |
/// | `max_iterations` | budget of steps, ≥ 1 | 100 000 |
/// | `schedule` | a [`BatchSchedule`] in place of the test | none |
/// | `max_samples` | budget of gradient evaluations, ≥ 1 (required on a stream) | none |
/// | `average_iterates` | horizon `h` of the average of the iterates, epochs | off |
/// | `interpolate` | β in [0, 1): gradients at `(1 − β)·iterate + β·average` | 0 |
/// | `seed` | seed of the sampling | 0 |
/// | `step` | the [`StepRule`] | [`Lbfgs`] |
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct BigBatchSgdBuilder<S = Lbfgs> {
    inner: BigBatchSgd<S>,
}

impl<S> From<BigBatchSgd<S>> for BigBatchSgdBuilder<S> {
    /// A builder starting from the configuration (and step rule) of an optimizer.
    fn from(inner: BigBatchSgd<S>) -> Self {
        BigBatchSgdBuilder { inner }
    }
}

impl<S> BigBatchSgdBuilder<S> {
    /// θ, the tolerated noise-to-signal ratio of the batch gradient (> 0). Smaller θ means
    /// bigger batches and more accurate steps. Default 1. Above 1 only with
    /// [`unbiased_signal`](Self::unbiased_signal): the biased test passes every batch in
    /// expectation there, and [`build`](Self::build) refuses it.
    pub fn theta(mut self, theta: f64) -> Self {
        self.inner.test.theta = theta;
        self
    }
    /// The batch size of the first iteration (≥ 2; capped at N). Default 10.
    pub fn initial_batch(mut self, k: usize) -> Self {
        self.inner.initial_batch = k;
        self
    }
    /// ρ, the fraction by which a batch that fails the test grows (> 0; at least one sample is
    /// added). Default 0.1.
    pub fn growth(mut self, rho: f64) -> Self {
        self.inner.growth = rho;
        self
    }
    /// The inner-product test (with its orthogonality test) in place of the norm test, at the
    /// test's θ, on fresh batches ([`InnerProductTest`](crate::InnerProductTest)). Default none.
    pub fn inner_product(mut self, test: crate::InnerProductTest) -> Self {
        self.inner.test.inner_product = Some(test);
        self
    }
    /// Averages the iterates: after a step on a batch of `n` samples the average moves towards
    /// the new iterate by `1 − exp(−n/(h·N))`, an exponential average over about the last `h`
    /// epochs of samples (`h` samples on a stream; `h` > 0 and finite). Observers see it
    /// ([`IterView::average`](crate::IterView::average)) and the report returns it as `w`,
    /// with its loss, and the last iterate beside it. A constant step on noisy gradients leaves
    /// the iterate oscillating about the optimum; the average removes much of that without a
    /// schedule. Default off.
    pub fn average_iterates(mut self, horizon: f64) -> Self {
        self.inner.averaging = Some(horizon);
        self
    }
    /// With averaged iterates, evaluates the gradients at `y = (1 − β) z + β x`, between the
    /// iterate `z` that the steps move and the average `x` of the `z`s: the interpolation of
    /// schedule-free methods (Defazio et al. 2024), with the exponential average of
    /// [`average_iterates`](Self::average_iterates) in place of their uniform one. A step
    /// computed at `y` moves `z`; `y` is the point observers see as `w` and the report as
    /// `last_iterate`, and the report returns `x`. β in [0, 1), and above 0 only with
    /// averaged iterates; default 0, where the gradients are evaluated at `z` itself. It suits
    /// rules that set a direction and its length ([`Adadelta`](crate::Adadelta),
    /// [`Adam`](crate::Adam), [`Fixed`](crate::Fixed)): a line search tests its trial points
    /// from `y`, while the step moves `z`, so the accepted decrease is not the one taken.
    pub fn interpolate(mut self, beta: f64) -> Self {
        self.inner.interpolation = beta;
        self
    }
    /// A fixed schedule of batch sizes in place of the big-batch test ([`BatchSchedule`]: the
    /// AdaBatch baseline). Default none: the test decides.
    pub fn schedule(mut self, schedule: BatchSchedule) -> Self {
        self.inner.schedule = Some(schedule);
        self
    }
    /// How a batch that fails the test grows. Default [`GrowthRule::Fraction`].
    pub fn growth_rule(mut self, rule: GrowthRule) -> Self {
        self.inner.growth_rule = rule;
        self
    }
    /// How batches are chosen. Default [`BatchMode::Persistent`].
    pub fn batch_mode(mut self, mode: BatchMode) -> Self {
        self.inner.batch_mode = mode;
        self
    }
    /// Multiplies the noise estimate by `1 − n/N`, the finite-population correction for
    /// sampling without replacement. Default off.
    pub fn finite_population_correction(mut self, on: bool) -> Self {
        self.inner.test.finite_population_correction = on;
        self
    }
    /// Compares the noise with `θ²/(1+θ²)‖g_B‖²`, which corrects `‖g_B‖²` for its expected
    /// excess over `‖∇ℓ‖²`. Default off.
    pub fn unbiased_signal(mut self, on: bool) -> Self {
        self.inner.test.unbiased_signal = on;
        self
    }
    /// β in [0, 1): the test compares exponential averages over iterations of the variance
    /// and the signal, weight β on the past, instead of each batch's own estimates, and fresh
    /// batches start at the size the averages ask for (see
    /// [`BatchTest`](crate::BatchTest#averaged-estimates)). Default 0.
    pub fn smoothing(mut self, beta: f64) -> Self {
        self.inner.test.smoothing = beta;
        self
    }
    /// ε ≥ 0: stop when a batch that passed the test has `‖g_B‖² ≤ ε`. Default 1e-10.
    pub fn tolerance(mut self, eps: f64) -> Self {
        self.inner.stop.tolerance = eps;
        self
    }
    /// r in [0, 1): stop when `‖g_B‖² ≤ r‖g_{B_0}‖²`, relative to the first batch. Default 0.
    pub fn relative_tolerance(mut self, r: f64) -> Self {
        self.inner.stop.relative_tolerance = r;
        self
    }
    /// The budget in epochs, per-sample gradient evaluations / N (> 0; may be infinite).
    ///
    /// A hard limit: a run never evaluates more than `⌊max_epochs · N⌋` per-sample gradients.
    /// The last growth of a batch is capped by what is left, an iteration whose batch the budget
    /// cannot pay for is not started, and a step rule's extra gradients (kept trial statistics,
    /// curvature pairs on fresh batches) are skipped when they would not fit. Loss evaluations
    /// (line-search trials, batch losses, the final loss) have a budget of their own, a
    /// multiple of this one ([`loss_budget`](Self::loss_budget));
    /// [`Report::data_passes`](crate::Report::data_passes) counts both. Default 100.
    pub fn max_epochs(mut self, epochs: f64) -> Self {
        self.inner.stop.max_epochs = epochs;
        self
    }
    /// A budget of per-sample gradient evaluations in samples (at least 1), beside the one in
    /// epochs; required for a run on a stream. Default none.
    pub fn max_samples(mut self, samples: u64) -> Self {
        self.inner.stop.max_samples = samples;
        self
    }
    /// The budget of per-sample loss evaluations as a multiple of the gradient budget (> 0, or
    /// infinite): a run makes at most `⌊factor · max_epochs · N⌋` of them besides its final
    /// loss, and stops with [`StopReason::LossBudget`](crate::StopReason::LossBudget) when the
    /// next would exceed that. Default 10.
    pub fn loss_budget(mut self, factor: f64) -> Self {
        self.inner.stop.loss_budget = factor;
        self
    }
    /// The budget of iterations (≥ 1). Default 100 000.
    pub fn max_iterations(mut self, n: usize) -> Self {
        self.inner.stop.max_iterations = n;
        self
    }
    /// The seed of the batch sampling; the same seed gives the same run, bit for bit.
    /// Default 0.
    pub fn seed(mut self, seed: u64) -> Self {
        self.inner.seed = seed;
        self
    }
    /// The step rule. Default [`Lbfgs`].
    pub fn step<T>(self, step: T) -> BigBatchSgdBuilder<T> {
        let BigBatchSgd {
            test,
            initial_batch,
            growth,
            growth_rule,
            batch_mode,
            seed,
            stop,
            schedule,
            averaging,
            interpolation,
            step: _,
        } = self.inner;
        BigBatchSgdBuilder {
            inner: BigBatchSgd {
                test,
                initial_batch,
                growth,
                growth_rule,
                batch_mode,
                seed,
                stop,
                schedule,
                averaging,
                interpolation,
                step,
            },
        }
    }

    /// Checks every parameter and builds the optimizer.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first parameter out of range.
    pub fn build(self) -> Result<BigBatchSgd<S>>
    where
        S: StepRule,
    {
        let opt = self.inner;
        opt.test.validate()?;
        if opt.initial_batch < 2 {
            return Err(Error::invalid(
                "initial_batch",
                opt.initial_batch,
                "at least 2",
            ));
        }
        check::positive("growth", opt.growth)?;
        if let Some(schedule) = &opt.schedule {
            schedule.validate()?;
        }
        if let Some(h) = opt.averaging {
            check::positive("average_iterates", h)?;
        }
        check::unit_from_zero("interpolate", opt.interpolation)?;
        if opt.interpolation > 0.0 && opt.averaging.is_none() {
            return Err(Error::invalid(
                "interpolate",
                opt.interpolation,
                "0 without average_iterates: the gradients lie between the iterate and its average",
            ));
        }
        if opt.test.inner_product.is_some() && opt.batch_mode != BatchMode::Fresh {
            return Err(Error::invalid(
                "inner_product",
                "with a persistent batch",
                "on fresh batches: a persistent batch's statistics are kept whole",
            ));
        }
        opt.stop.validate()?;
        opt.step.validate()?;
        Ok(opt)
    }
}
