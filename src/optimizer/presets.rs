//! The presets: the default configuration, its Newton tail, the paper's, and the one for
//! networks. Each is a
//! builder, so every setter still applies.

use super::builder::BigBatchSgdBuilder;
use super::config::{BatchMode, BigBatchSgd, GrowthRule, StopCriteria};
use crate::stats::BatchTest;
use crate::step::{Adadelta, Armijo, GainScaled, Lbfgs, NewtonCg, StepIncrease, Switch};

impl BigBatchSgd {
    /// A builder with every parameter at its default (see [`BigBatchSgdBuilder`]): L-BFGS
    /// directions on a persistent batch that grows by 10 % when the test fails.
    ///
    /// This configuration is not the paper's; it is the one that measured best (see the
    /// crate's README for the figures): with the paper's steep-descent steps, about a hundred
    /// steps in twenty epochs trail a hand-tuned small-batch SGD by one to two orders of
    /// magnitude on ill-conditioned problems, while curvature pairs on the same samples, free
    /// with a persistent batch, close that gap. [`BigBatchSgd::paper`] gives the paper's.
    pub fn builder() -> BigBatchSgdBuilder {
        BigBatchSgdBuilder::from(BigBatchSgd {
            test: BatchTest::default(),
            initial_batch: 10,
            growth: 0.1,
            growth_rule: GrowthRule::Fraction,
            batch_mode: BatchMode::Persistent,
            seed: 0,
            stop: StopCriteria::default(),
            schedule: None,
            averaging: None,
            interpolation: 0.0,
            step: Lbfgs::default(),
        })
    }

    /// A builder for the paper's configuration: a fresh batch every iteration, growth by 10 %,
    /// steps along `−g_B` with Armijo backtracking (c = 0.1) that enlarges the step only when
    /// the batch grew. Every setter still applies (`.step(BarzilaiBorwein::new())` gives the
    /// paper's adaptive-step variant).
    ///
    /// # Example
    /// ```
    /// use bigbatch::{BatchMode, BigBatchSgd};
    /// let opt = BigBatchSgd::paper().theta(1.0).build()?;
    /// assert_eq!(opt.batch_mode(), BatchMode::Fresh);
    /// # Ok::<(), bigbatch::Error>(())
    /// ```
    pub fn paper() -> BigBatchSgdBuilder<Armijo> {
        BigBatchSgd::builder()
            .batch_mode(BatchMode::Fresh)
            .growth_rule(GrowthRule::Fraction)
            .step(Armijo::new().increase(StepIncrease::OnBatchGrowth))
    }

    /// A builder for the default configuration with Newton's method on the whole data set: L-BFGS
    /// on the persistent batch while it grows, then, once it holds every sample,
    /// [`NewtonCg`] steps with the exact Hessian of the data set (`hessian_fraction(1.0)`,
    /// [`Switch`]). For objectives
    /// with Hessian-vector products ([`Objective::curvature`](crate::Objective::curvature):
    /// every bundled model but the network) and for an optimum wanted to many digits: the tail
    /// converges quadratically where L-BFGS converges linearly. A Newton step costs a pass for
    /// the gradient, one for the curvature and one per product (at most the dimension), so
    /// on a problem of a few dozen parameters L-BFGS reaches the same gap in fewer epochs; the
    /// preset pays where the dimension is in the hundreds or more (`docs/BENCHMARKS.md`).
    /// On an objective without
    /// curvature the run stops with [`Error::Unsupported`](crate::Error::Unsupported) once the
    /// batch is whole, with the iterate reached. Until the batch is whole the run is the
    /// default run, step for step.
    ///
    /// # Example
    /// ```
    /// use bigbatch::{BigBatchSgd, data::datasets, models::Logistic};
    /// use ndarray::Array1;
    ///
    /// let model = Logistic::new(datasets::heart_scale::<f64>().with_bias(), 1e-4)?;
    /// let mut opt = BigBatchSgd::newton().tolerance(1e-18).build()?;
    /// let report = opt.minimize(&model, Array1::zeros(14))?;
    /// assert!(report.grad_norm_sq <= 1e-18, "{report}");
    /// assert!(opt.step_rule().whole().products() > 0);
    /// # Ok::<(), bigbatch::Error>(())
    /// ```
    pub fn newton() -> BigBatchSgdBuilder<Switch<Lbfgs, NewtonCg>> {
        BigBatchSgd::builder().step(Switch::new(
            Lbfgs::default(),
            NewtonCg::default().hessian_fraction(1.0),
        ))
    }

    /// A builder for neural networks: a fresh batch every iteration, starting at 8 samples;
    /// the unbiased test at θ = 1.4 on estimates averaged over iterations (β = 0.9), so that the
    /// batch follows the noise scale `B_noise = tr Σ/‖∇ℓ‖²` as about `B_noise/2`; [`Adadelta`]
    /// steps (the paper's rule for networks, no learning rate) lengthened by the square root of
    /// the batch's gain ratio against 32 samples ([`GainScaled`], power 1/2); and the iterates
    /// averaged over the last quarter epoch
    /// ([`average_iterates`](BigBatchSgdBuilder::average_iterates)`(0.25)`), with the gradients
    /// evaluated between the iterate and that average
    /// ([`interpolate`](BigBatchSgdBuilder::interpolate)`(0.3)`). The report returns the
    /// average and observers see it. Every setter still applies.
    ///
    /// - **The batch grows with the noise.** Early in training the signal dominates and the
    ///   batch stays near its first 8 samples; as the gradient fades against the per-sample
    ///   spread the averages ask for more samples, and each fresh batch starts at that size
    ///   (see [`BatchTest`](crate::BatchTest#averaged-estimates)). Tested batch by batch
    ///   instead, every chance failure raised the batch for good, to about the noise scale
    ///   whatever θ. On the three networks of the comparison the final batch was 10 to 70
    ///   times the first after 20 epochs, in a quarter to a half of the steps of batches of 32.
    /// - **Its steps grow with the batch.** A batch `n` times less noisy than 32 samples
    ///   takes a step up to `√(n/32)` times Adadelta's (batches below 32 take Adadelta's own):
    ///   the square root keeps part of what a larger batch buys as less noise in the iterate.
    ///   With powers of 3/4 and 1 the networks gained up to a point at 5 epochs, but a noisy
    ///   ridge regression stayed about 1 % from its optimum after 300 epochs, its batch held
    ///   at a few thousand of its 20,000 samples; with the square root the batch reaches the
    ///   whole set and the iterate the optimum.
    /// - **It returns an average.** Adadelta's steps leave the iterate wandering about the
    ///   optimum at a noise floor; the average of the last quarter epoch of iterates, each
    ///   weighted by its batch, sits nearer, and gradients taken 30 % of the way towards it
    ///   (the schedule-free interpolation) let the average lead the steps.
    /// - **Why these settings** (the `bigbatch-candle` crate's comparison on three networks,
    ///   `docs/BENCHMARKS.md`): θ = 1.4 from 8 samples grew the batch at least eightfold on every
    ///   task, where θ = 2 from 32 left it at 32 on the convolutional network; θ = 1 cost two
    ///   points at 5 epochs there. Fresh batches, because a network fits a persistent batch
    ///   and generalizes worse; Adadelta, whose per-coordinate scale suited both convolutional
    ///   and dense networks better than line searches along `−g_B`, L-BFGS, Adam or momentum.
    ///
    /// The preset expects per-sample statistics, as every [`Objective`](crate::Objective)
    /// gives: `bigbatch-candle`'s one-pass model computes them for a network's dense and
    /// convolutional layers from one backward pass. A model known only by batch means runs
    /// through [`MicroBatched`](crate::MicroBatched) in 8 groups (`bigbatch_candle::NETWORK_GROUPS`),
    /// which estimate the noise of the first batches of 8 from single samples.
    ///
    /// # Example
    /// ```
    /// use bigbatch::{BatchMode, BigBatchSgd};
    /// let opt = BigBatchSgd::network().max_epochs(20.0).build()?;
    /// assert_eq!((opt.batch_mode(), opt.initial_batch()), (BatchMode::Fresh, 8));
    /// let test = opt.batch_test();
    /// assert_eq!((test.theta, test.unbiased_signal, test.smoothing), (1.4, true, 0.9));
    /// assert_eq!(opt.step_rule().power_of_ratio(), 0.5);
    /// assert_eq!((opt.averaging(), opt.interpolation()), (Some(0.25), 0.3));
    /// # Ok::<(), bigbatch::Error>(())
    /// ```
    pub fn network() -> BigBatchSgdBuilder<GainScaled<Adadelta>> {
        BigBatchSgd::builder()
            .batch_mode(BatchMode::Fresh)
            .initial_batch(8)
            .theta(1.4)
            .unbiased_signal(true)
            .smoothing(0.9)
            .average_iterates(0.25)
            .interpolate(0.3)
            .step(
                GainScaled::new(Adadelta::new())
                    .reference_batch(32)
                    .power(0.5),
            )
    }

    /// Big batches on a stream of samples ([`minimize_stream`](BigBatchSgd::minimize_stream)),
    /// or fresh batches of a finite sum: each batch is new samples, grown until its gradient's
    /// noise is a quarter of its signal, with an Armijo line search on it.
    ///
    /// - **The test**: the unbiased signal at θ = ½. On fresh batches the biased test at
    ///   θ = 1 (the default's) passes in expectation for every batch and the batch does not
    ///   grow; this one asks for `n ≥ 4 B_noise`, and since a step on such a batch leaves a
    ///   gradient about as large as the batch's noise, each batch is about four times the
    ///   last: the batch grows geometrically with the samples read, and the excess risk falls
    ///   like `1/T` with a constant step rule and no schedule.
    /// - **The step**: Armijo backtracking on the batch. A line search on a batch that passed
    ///   needs no step size; L-BFGS on fresh batches evaluates gradients at its trial points,
    ///   and so spends two gradient evaluations per sample.
    /// - **Why these settings** (`cargo run --release --example stream`, `docs/BENCHMARKS.md`):
    ///   on generated least squares the unbiased test at θ = ½ was the closest to
    ///   Polyak-averaged SGD with the best step in hindsight at 10⁶ samples (median 1.5× its
    ///   excess risk over 10 seeds, against 1.7× to 2.4× for biased tests at θ = 0.4 to 0.6),
    ///   with Armijo steps ahead of L-BFGS (5×) and Adadelta.
    ///
    /// # Example
    /// ```
    /// use bigbatch::{BatchMode, BigBatchSgd};
    /// let opt = BigBatchSgd::stream().max_samples(1_000_000).build()?;
    /// assert_eq!(opt.batch_mode(), BatchMode::Fresh);
    /// let test = opt.batch_test();
    /// assert_eq!((test.theta, test.unbiased_signal), (0.5, true));
    /// # Ok::<(), bigbatch::Error>(())
    /// ```
    pub fn stream() -> BigBatchSgdBuilder<Armijo> {
        BigBatchSgd::builder()
            .batch_mode(BatchMode::Fresh)
            .theta(0.5)
            .unbiased_signal(true)
            .step(Armijo::new())
    }
}
