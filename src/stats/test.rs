//! [`BatchTest`]: the big-batch signal-to-noise test.

use super::GradStats;
use crate::error::{Result, check};
use crate::float::Float;

/// The big-batch signal-to-noise test.
///
/// ```text
/// PASS  ⇔  φ · V_B / n  ≤  θ² ‖g_B‖²          (or ≤ θ²/(1+θ²) ‖g_B‖² with `unbiased_signal`)
/// φ = 1, or 1 − n/N with the finite-population correction
/// ```
///
/// A batch holding every sample (`n = N`) always passes: its gradient is exact.
///
/// # What the test tests, in expectation
/// For a batch of `n` samples drawn from per-sample gradients of mean `∇ℓ` and total variance
/// `tr Σ`, `E V_B = tr Σ` and `E‖g_B‖² = ‖∇ℓ‖² + tr Σ/n` (sampling with replacement; `φ`
/// scales the noise term without it). The biased form `V_B/n ≤ θ²‖g_B‖²` therefore passes in
/// expectation when
///
/// ```text
/// (1 − θ²) · tr Σ / n  ≤  θ² ‖∇ℓ‖²
/// ```
///
/// - For **θ < 1** it asks for `n ≥ (1 − θ²)/θ² · tr Σ/‖∇ℓ‖²`: a batch that grows with the noise
///   scale `B_noise = tr Σ/‖∇ℓ‖²`.
/// - For **θ = 1** the condition holds for every batch: the test fails only by chance, when the
///   estimates fluctuate (near a stationary point, where `‖∇ℓ‖²` is small against `tr Σ/n`, about
///   half the time), and the batch grows by those chances.
/// - For **θ > 1** it holds for every batch with room to spare: even at a stationary point
///   (`E‖g_B‖² = tr Σ/n`) only a variance estimate about θ² times too large fails it (four times
///   at θ = 2), and the batch practically never grows.
///
/// The unbiased form (`unbiased_signal`) compares the noise with `‖g_B‖² − V_B/n`, whose
/// expectation is `‖∇ℓ‖²`, and passes in expectation when `n ≥ B_noise/θ²`: the batch grows with
/// the noise scale for every θ.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BatchTest {
    /// θ > 0: the tolerated noise-to-signal ratio of the batch gradient. Default 1.
    pub theta: f64,
    /// Multiply the noise by `1 − n/N` (sampling without replacement). Default off.
    pub finite_population_correction: bool,
    /// Subtract the expected noise from the signal `‖g_B‖²` before comparing. Default off.
    pub unbiased_signal: bool,
}

impl Default for BatchTest {
    fn default() -> Self {
        BatchTest {
            theta: 1.0,
            finite_population_correction: false,
            unbiased_signal: false,
        }
    }
}

impl BatchTest {
    /// Checks θ.
    pub(crate) fn validate(&self) -> Result<()> {
        check::positive("theta", self.theta)
    }

    /// The noise estimate `φ V_B / n`, the expected squared error of `g_B` (in `f64`); zero
    /// when the batch holds all `n_total` samples.
    pub fn noise<F: Float>(&self, stats: &GradStats<F>, n_total: usize) -> f64 {
        let n = stats.count();
        if n >= n_total {
            return 0.0;
        }
        let phi = if self.finite_population_correction {
            1.0 - n as f64 / n_total as f64
        } else {
            1.0
        };
        phi * stats.variance() / n as f64
    }

    /// The factor `c` in the test `noise ≤ c ‖g_B‖²`: θ², or θ²/(1+θ²).
    fn signal_factor(&self) -> f64 {
        let t2 = self.theta * self.theta;
        if self.unbiased_signal {
            t2 / (1.0 + t2)
        } else {
            t2
        }
    }

    /// Whether the batch passes the test; always true for a batch of all `n_total` samples, and
    /// false for a smaller batch of fewer than two samples or groups (whose spread is unknown).
    pub fn passes<F: Float>(&self, stats: &GradStats<F>, n_total: usize) -> bool {
        let n = stats.count();
        if n >= n_total {
            return true;
        }
        if stats.groups() < 2 {
            return false;
        }
        self.noise(stats, n_total) <= self.signal_factor() * stats.grad_norm_sq()
    }

    /// The batch size at which the current estimates would pass (Byrd et al.'s rule),
    /// `⌈φ V_B / (c ‖g_B‖²)⌉`, capped at `n_total`: zero when there is no noise, `n_total` when
    /// there is noise but no signal.
    pub fn required_size<F: Float>(&self, stats: &GradStats<F>, n_total: usize) -> usize {
        let n = stats.count();
        if n >= n_total {
            return n_total;
        }
        let signal = self.signal_factor() * stats.grad_norm_sq();
        let noise_sum = self.noise(stats, n_total) * n as f64;
        if noise_sum <= 0.0 {
            return 0;
        }
        let k = noise_sum / signal;
        if k.is_finite() {
            (k.ceil().max(0.0) as usize).min(n_total)
        } else {
            n_total
        }
    }
}
