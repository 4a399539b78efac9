//! The configuration of a run: how batches are chosen and grow, when the run stops, and the
//! optimizer that holds them with its step rule.

use crate::error::{Result, check};
use crate::stats::BatchTest;
use crate::step::Lbfgs;

/// How each iteration's batch is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum BatchMode {
    /// A fresh uniform draw (without replacement) every iteration, as in the paper.
    Fresh,
    /// The first `K` samples of one shuffle of the data, drawn at the start of the run: a batch
    /// grows by extending the prefix, and an iteration that does not grow reuses its batch.
    /// The gradient of the previous batch at the new iterate is then part of the new batch's
    /// statistics, so a step rule gets curvature pairs on identical samples for free
    /// ([`StepContext::previous_batch_stats`](crate::StepContext::previous_batch_stats)). Once `K = N` this is plain full-batch
    /// optimization. The default.
    #[default]
    Persistent,
}

/// How much a batch that fails the big-batch test grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum GrowthRule {
    /// By the fraction ρ: `K ← K + max(1, ⌈ρK⌉)` (the paper's rule). The default, chosen on
    /// the reference problems (the crate's README gives the comparison).
    #[default]
    Fraction,
    /// Straight to the size the current estimates ask for (Byrd et al. 2012), at least by the
    /// fraction: `K ← max(K + max(1, ⌈ρK⌉), ⌈φV_B/(θ²‖g_B‖²)⌉)`.
    ToRequired,
}

/// A fixed schedule of batch sizes in place of the big-batch test: the batch is the first
/// size times `factor` to the number of whole periods of `every` epochs used so far (of
/// `every` samples on a stream), capped at `N`:
///
/// ```text
/// |B| = ⌈K₀ · factor^⌊epochs / every⌋⌉
/// ```
///
/// This is AdaBatch's schedule (Devarakonda, Naumov & Garland 2017, who double the batch on
/// a fixed epoch schedule), the simplest adaptive-batch baseline; pair it with
/// [`BatchScaled`](crate::BatchScaled) for their step, which grows with the batch so that the
/// step per sample stays the same. The test is not consulted: batches neither grow within an
/// iteration nor pass or fail, and the gradient tolerance applies to batches no test has
/// checked (a tolerance of 0 and a budget make a schedule's run what it is in the
/// literature). It works with both batch modes and on a stream.
///
/// # Example
/// ```
/// use bigbatch::{BatchMode, BatchSchedule, BatchScaled, BigBatchSgd, Fixed};
/// // AdaBatch: double the batch every 4 epochs from 32, and the step with it.
/// let opt = BigBatchSgd::builder()
///     .batch_mode(BatchMode::Fresh)
///     .initial_batch(32)
///     .schedule(BatchSchedule::new(2.0, 4.0))
///     .step(BatchScaled::new(Fixed::new(0.05)).reference_batch(32))
///     .build()?;
/// assert_eq!(opt.schedule().unwrap().size(32, 9.0, 1_000_000), 128);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BatchSchedule {
    factor: f64,
    every: f64,
}

impl BatchSchedule {
    /// The batch multiplied by `factor` (> 1) every `every` (> 0) epochs, or samples on a
    /// stream.
    pub fn new(factor: f64, every: f64) -> Self {
        BatchSchedule { factor, every }
    }
    /// The factor.
    pub fn factor(&self) -> f64 {
        self.factor
    }
    /// The period, in epochs (samples on a stream).
    pub fn every(&self) -> f64 {
        self.every
    }
    /// The batch size after `progress` epochs (samples on a stream) from a first size `k0`,
    /// capped at `n`.
    pub fn size(&self, k0: usize, progress: f64, n: usize) -> usize {
        let stages = (progress / self.every).floor();
        let k = (k0 as f64 * self.factor.powf(stages)).ceil();
        if k >= n as f64 {
            n
        } else {
            (k as usize).max(k0.min(n))
        }
    }
    pub(crate) fn validate(&self) -> Result<()> {
        if !(self.factor.is_finite() && self.factor > 1.0) {
            return Err(crate::Error::invalid(
                "schedule factor",
                self.factor,
                "finite and greater than 1",
            ));
        }
        if !(self.every.is_finite() && self.every > 0.0) {
            return Err(crate::Error::invalid(
                "schedule period",
                self.every,
                "finite and positive",
            ));
        }
        Ok(())
    }
}

/// When a run stops: tolerances on the gradient of a batch that passed the big-batch test,
/// and budgets.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StopCriteria {
    /// Stop when `‖g_B‖² ≤ tolerance`. Default 1e-10.
    pub tolerance: f64,
    /// Stop when `‖g_B‖² ≤ relative_tolerance · ‖g_{B_0}‖²`, relative to the first batch.
    /// Default 0 (off).
    pub relative_tolerance: f64,
    /// A hard budget of `⌊max_epochs · N⌋` per-sample gradient evaluations: growth is capped
    /// by what is left, and an iteration that cannot fit is not started. Default 100.
    pub max_epochs: f64,
    /// Stop after this many iterations. Default 100 000.
    pub max_iterations: usize,
    /// A hard budget of per-sample loss evaluations (line-search trials, and batch losses a
    /// model does not return with its gradients), as a multiple of the gradient budget: at most
    /// `⌊loss_budget · max_epochs · N⌋`. A run whose next loss evaluation would exceed it stops
    /// at its current iterate with [`StopReason::LossBudget`](crate::StopReason::LossBudget).
    /// The report's final loss (one pass, when the run does not know it already) is outside
    /// it, so a run never makes more than `(1 + loss_budget) · max_epochs + 1` data passes.
    /// Default 10 (runs of the reference problems spend at most about 2).
    #[cfg_attr(feature = "serde", serde(default = "default_loss_budget"))]
    pub loss_budget: f64,
    /// A hard budget of per-sample gradient evaluations in samples, beside the one in epochs:
    /// the run makes at most `min(⌊max_epochs · N⌋, max_samples)` of them. The budget of a run
    /// on a stream ([`minimize_stream`](crate::BigBatchSgd::minimize_stream)), which has no
    /// `N`, and required there. Default `u64::MAX` (none).
    #[cfg_attr(feature = "serde", serde(default = "default_max_samples"))]
    pub max_samples: u64,
}

#[cfg(feature = "serde")]
fn default_max_samples() -> u64 {
    u64::MAX
}

#[cfg(feature = "serde")]
fn default_loss_budget() -> f64 {
    StopCriteria::default().loss_budget
}

impl Default for StopCriteria {
    fn default() -> Self {
        StopCriteria {
            tolerance: 1e-10,
            relative_tolerance: 0.0,
            max_epochs: 100.0,
            max_iterations: 100_000,
            loss_budget: 10.0,
            max_samples: u64::MAX,
        }
    }
}

impl StopCriteria {
    pub(crate) fn validate(&self) -> Result<()> {
        check::non_negative("tolerance", self.tolerance)?;
        check::unit_from_zero("relative_tolerance", self.relative_tolerance)?;
        check::positive_or_infinite("max_epochs", self.max_epochs)?;
        check::nonzero_count("max_iterations", self.max_iterations)?;
        check::positive_or_infinite("loss_budget", self.loss_budget)?;
        if self.max_samples == 0 {
            return Err(crate::Error::invalid("max_samples", 0, "at least 1"));
        }
        Ok(())
    }

    /// The most per-sample gradient evaluations a run may make,
    /// `min(⌊max_epochs · N⌋, max_samples)`; `max_samples` on a stream (`n_samples` of
    /// [`UNBOUNDED`](crate::stream::UNBOUNDED)).
    pub fn grad_limit(&self, n_samples: usize) -> u64 {
        if n_samples == crate::stream::UNBOUNDED {
            return self.max_samples;
        }
        saturating_count(self.max_epochs * n_samples as f64).min(self.max_samples)
    }

    /// The most per-sample loss evaluations a run may make (the final loss aside),
    /// `⌊loss_budget · max_epochs · N⌋`, and at most `⌊loss_budget · max_samples⌋`.
    pub fn loss_limit(&self, n_samples: usize) -> u64 {
        let by_samples = saturating_count(self.loss_budget * self.max_samples as f64);
        if n_samples == crate::stream::UNBOUNDED {
            return by_samples;
        }
        saturating_count(self.loss_budget * self.max_epochs * n_samples as f64).min(by_samples)
    }

    /// Whether `g2 = ‖g_B‖²` of a passing batch is small enough to stop.
    pub(crate) fn converged(&self, g2: f64, g2_first: f64) -> bool {
        g2 <= self.tolerance || g2 <= self.relative_tolerance * g2_first
    }
}

/// `⌊x⌋` as a count, saturating at `u64::MAX`.
fn saturating_count(x: f64) -> u64 {
    let limit = x.floor();
    if limit >= u64::MAX as f64 {
        u64::MAX
    } else {
        limit as u64
    }
}

/// Big Batch SGD: each iteration draws a batch, grows it until its gradient passes the
/// signal-to-noise test, and steps with the step rule `S`.
///
/// ```text
/// draw B of size K at w (without replacement)
/// while |B| < N and φ·V_B/|B| > θ²‖g_B‖²:   K ← K + max(1, ⌈ρK⌉); add K − |B| new samples to B
/// stop if ‖g_B‖² ≤ ε;  otherwise w ← w + α d   (d = −g_B unless the step rule changes it)
/// ```
///
/// The batch size never shrinks and is capped at N, after which every iteration is
/// full-batch gradient descent with the chosen step rule. Built by [`BigBatchSgd::builder`].
///
/// # Example
/// ```
/// use bigbatch::{BarzilaiBorwein, BigBatchSgd, Objective};
/// use ndarray::{ArrayRef1, array};
///
/// /// Least squares on the line: f_i(w) = (w₀ + w₁ t_i − y_i)² / 2.
/// struct Line { t: Vec<f64>, y: Vec<f64> }
/// impl Objective for Line {
///     fn n_samples(&self) -> usize { self.t.len() }
///     fn dim(&self) -> usize { 2 }
///     fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 {
///         0.5 * (w[0] + w[1] * self.t[i] - self.y[i]).powi(2)
///     }
///     fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) {
///         let r = w[0] + w[1] * self.t[i] - self.y[i];
///         g[0] = r;
///         g[1] = r * self.t[i];
///     }
/// }
///
/// let t: Vec<f64> = (0..200).map(|i| i as f64 / 200.0).collect();
/// let y = t.iter().map(|t| 1.0 - 2.0 * t).collect();
/// let line = Line { t, y };
/// let mut opt = BigBatchSgd::builder().step(BarzilaiBorwein::new()).seed(7).build()?;
/// let report = opt.minimize(&line, array![0.0, 0.0])?;
/// assert!((report.w[0] - 1.0).abs() < 1e-3 && (report.w[1] + 2.0).abs() < 1e-3);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BigBatchSgd<S = Lbfgs> {
    pub(crate) test: BatchTest,
    pub(crate) initial_batch: usize,
    pub(crate) growth: f64,
    pub(crate) growth_rule: GrowthRule,
    pub(crate) batch_mode: BatchMode,
    pub(crate) seed: u64,
    pub(crate) stop: StopCriteria,
    #[cfg_attr(feature = "serde", serde(default))]
    pub(crate) schedule: Option<BatchSchedule>,
    /// The horizon of the average of the iterates, in epochs (samples on a stream).
    #[cfg_attr(feature = "serde", serde(default))]
    pub(crate) averaging: Option<f64>,
    /// The interpolation β of gradients between the fast iterate and the average (with
    /// `averaging`); 0 evaluates them at the iterate that the steps move.
    #[cfg_attr(feature = "serde", serde(default))]
    pub(crate) interpolation: f64,
    pub(crate) step: S,
}

impl<S> BigBatchSgd<S> {
    /// The big-batch test.
    pub fn batch_test(&self) -> &BatchTest {
        &self.test
    }
    /// The batch size of the first iteration.
    pub fn initial_batch(&self) -> usize {
        self.initial_batch
    }
    /// The growth fraction ρ.
    pub fn growth(&self) -> f64 {
        self.growth
    }
    /// How a failed test grows the batch.
    pub fn growth_rule(&self) -> GrowthRule {
        self.growth_rule
    }
    /// How batches are chosen.
    pub fn batch_mode(&self) -> BatchMode {
        self.batch_mode
    }
    /// The seed of the random numbers.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// The tolerances and budgets.
    pub fn stop_criteria(&self) -> &StopCriteria {
        &self.stop
    }
    /// The horizon of the average of the iterates, if they are averaged.
    pub fn averaging(&self) -> Option<f64> {
        self.averaging
    }
    /// The interpolation of the gradients' point between the fast iterate and the average.
    pub fn interpolation(&self) -> f64 {
        self.interpolation
    }
    /// The schedule of batch sizes that replaces the test, if any.
    pub fn schedule(&self) -> Option<&BatchSchedule> {
        self.schedule.as_ref()
    }
    /// The step rule (with its memory of the last run).
    pub fn step_rule(&self) -> &S {
        &self.step
    }
}
