//! [`BatchTest`]: the big-batch signal-to-noise test.

use super::{GradStats, InnerProductTest};
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
///   at θ = 2), and the batch practically never grows. Validation therefore refuses θ > 1 with
///   the biased signal ([`Error::InvalidParameter`](crate::Error::InvalidParameter) for
///   `theta`): such a test is a fixed batch size in disguise.
///
/// The unbiased form (`unbiased_signal`) compares the noise with `‖g_B‖² − V_B/n`, whose
/// expectation is `‖∇ℓ‖²`, and passes in expectation when `n ≥ B_noise/θ²`: the batch grows with
/// the noise scale for every θ.
///
/// # Averaged estimates
/// A fresh batch of a few dozen samples estimates `tr Σ` and `‖∇ℓ‖²` roughly, and the batch
/// never shrinks: every chance failure raises its size for good, so that it follows the largest
/// of the fluctuations rather than the noise scale (measured on networks, the unbiased test
/// grew the batch to about the noise scale whatever θ, from 8 to 32). With `smoothing` β > 0
/// the test compares, as AdaptDL estimates the noise scale, exponential averages over the
/// iterations, each corrected for its start (`Σ_t β^(T−t) x_t / Σ_t β^(T−t)`):
///
/// ```text
/// PASS  ⇔  φ · V̄ / n  ≤  θ² S̄,   V̄ the average of V_B, S̄ that of ‖g_B‖² (or of ‖g_B‖² − φV_B/n)
/// ```
///
/// where the current batch's estimates enter with weight 1 − β as it grows, and the estimates
/// of the batch that passed join the averages once per iteration. The test then asks, in
/// expectation, for `n ≥ B_noise/θ²` (unbiased signal) with the noise scale of the last
/// `1/(1 − β)` iterations. With fresh batches, each iteration's batch starts at the size the
/// averages ask for (never below the first batch size), so the batch follows the noise scale
/// down as well as up, and grows within the iteration while the test fails.
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
    /// β in [0, 1): compare exponential averages over iterations (weight β on the past) of the
    /// per-sample variance and of the signal instead of the batch's own estimates. Default 0
    /// (each batch alone). See [the type's docs](BatchTest#averaged-estimates).
    #[cfg_attr(feature = "serde", serde(default))]
    pub smoothing: f64,
    /// The inner-product test (with its orthogonality test) in place of the norm test, on
    /// fresh batches; see [`InnerProductTest`]. Default none.
    #[cfg_attr(feature = "serde", serde(default))]
    pub inner_product: Option<InnerProductTest>,
}

impl Default for BatchTest {
    fn default() -> Self {
        BatchTest {
            theta: 1.0,
            finite_population_correction: false,
            unbiased_signal: false,
            smoothing: 0.0,
            inner_product: None,
        }
    }
}

impl BatchTest {
    /// Checks θ and the smoothing: θ finite and positive, and at most 1 with the biased signal, where a larger θ
    /// makes a test that passes in expectation for every batch (see the type's docs).
    pub(crate) fn validate(&self) -> Result<()> {
        check::positive("theta", self.theta)?;
        check::unit_from_zero("smoothing", self.smoothing)?;
        if let Some(ip) = &self.inner_product {
            ip.validate()?;
            if self.smoothing != 0.0 || self.unbiased_signal {
                return Err(crate::Error::invalid(
                    "inner_product",
                    "with smoothing or unbiased_signal",
                    "on its own: the inner-product test has neither form",
                ));
            }
        }
        if !self.unbiased_signal && self.theta > 1.0 {
            return Err(crate::Error::invalid(
                "theta",
                self.theta,
                "≤ 1 with the biased signal, where a larger θ passes every batch in expectation \
                 (for θ > 1 set unbiased_signal(true))",
            ));
        }
        Ok(())
    }

    /// The noise estimate `φ V_B / n`, the expected squared error of `g_B` (in `f64`); zero
    /// when the batch holds all `n_total` samples.
    pub fn noise<F: Float>(&self, stats: &GradStats<F>, n_total: usize) -> f64 {
        let n = stats.count();
        if n >= n_total {
            return 0.0;
        }
        self.phi(n, n_total) * stats.variance() / n as f64
    }

    /// `φ`: 1, or `1 − n/N` with the finite-population correction.
    fn phi(&self, n: usize, n_total: usize) -> f64 {
        if self.finite_population_correction {
            1.0 - n as f64 / n_total as f64
        } else {
            1.0
        }
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

    /// The signal the test compares the noise with: `‖g_B‖²`, or `‖g_B‖² − φV_B/n` with the
    /// unbiased signal.
    fn signal<F: Float>(&self, stats: &GradStats<F>, n_total: usize) -> f64 {
        let g2 = stats.grad_norm_sq();
        if self.unbiased_signal {
            g2 - self.noise(stats, n_total)
        } else {
            g2
        }
    }

    /// The averages with the batch's estimates joined at weight `1 − β`.
    fn averaged<F: Float>(
        &self,
        stats: &GradStats<F>,
        n_total: usize,
        past: &NoiseAverage,
    ) -> NoiseAverage {
        let b = self.smoothing;
        NoiseAverage {
            variance: b * past.variance + (1.0 - b) * stats.variance(),
            signal: b * past.signal + (1.0 - b) * self.signal(stats, n_total),
            weight: b * past.weight + (1.0 - b),
        }
    }

    /// [`passes_averaged`](Self::passes_averaged), or the inner-product test with the variance
    /// of the inner products `projected` where it replaces the norm test.
    pub(crate) fn passes_any<F: Float>(
        &self,
        stats: &GradStats<F>,
        n_total: usize,
        past: &NoiseAverage,
        projected: Option<f64>,
    ) -> bool {
        let Some(ip) = &self.inner_product else {
            return self.passes_averaged(stats, n_total, past);
        };
        let n = stats.count();
        n >= n_total || ip.passes(self, stats, projected, self.phi(n, n_total))
    }

    /// [`passes`](Self::passes), or with `smoothing` > 0 the test of the averages `past` with
    /// this batch's estimates joined.
    pub(crate) fn passes_averaged<F: Float>(
        &self,
        stats: &GradStats<F>,
        n_total: usize,
        past: &NoiseAverage,
    ) -> bool {
        if self.smoothing == 0.0 {
            return self.passes(stats, n_total);
        }
        let n = stats.count();
        if n >= n_total {
            return true;
        }
        if stats.groups() < 2 {
            return false;
        }
        let avg = self.averaged(stats, n_total, past);
        let phi = self.phi(n, n_total);
        // Both averages carry the same start correction, which cancels.
        phi * avg.variance / n as f64 <= self.theta * self.theta * avg.signal
    }

    /// With `smoothing` > 0, the size of batch at which the averages pass, `⌈V̄/(θ²S̄)⌉` (with
    /// the finite-population correction `⌈V̄/(θ²S̄ + V̄/N)⌉`), capped at `n_total`; `None`
    /// before the first average or with `smoothing` 0.
    pub(crate) fn averaged_size(&self, past: &NoiseAverage, n_total: usize) -> Option<usize> {
        if self.smoothing == 0.0 || past.weight == 0.0 {
            return None;
        }
        let signal = self.theta * self.theta * past.signal;
        let signal = if self.finite_population_correction {
            signal + past.variance / n_total as f64
        } else {
            signal
        };
        if past.variance <= 0.0 {
            return Some(0);
        }
        let k = past.variance / signal;
        Some(if k.is_finite() && k > 0.0 {
            (k.ceil() as usize).min(n_total)
        } else {
            n_total
        })
    }

    /// Joins the estimates of the batch that passed to the averages (nothing when `smoothing`
    /// is 0); non-finite estimates leave them as they were.
    pub(crate) fn record<F: Float>(
        &self,
        stats: &GradStats<F>,
        n_total: usize,
        past: &mut NoiseAverage,
    ) {
        if self.smoothing == 0.0 {
            return;
        }
        let avg = self.averaged(stats, n_total, past);
        if avg.variance.is_finite() && avg.signal.is_finite() {
            *past = avg;
        }
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

/// Exponential averages over iterations of the per-sample variance and of the signal, with
/// the sum of their weights (which corrects both for the start).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct NoiseAverage {
    variance: f64,
    signal: f64,
    weight: f64,
}
