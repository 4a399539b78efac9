//! Batch statistics: the mean gradient, the spread of the per-sample gradients around it, and
//! the mean loss, accumulated in O(dim) memory; and the big-batch test built on them.
//!
//! ```text
//! g_B = (1/n) Σ_{i∈B} ∇f_i(w)                       mean gradient
//! V_B = (1/(n−1)) Σ_{i∈B} ‖∇f_i(w) − g_B‖²          variance estimate (trace of the covariance)
//! ℓ_B = (1/n) Σ_{i∈B} f_i(w)                        mean loss
//! ```
//!
//! Samples are added one at a time with Welford's update ([`GradStats::push`]), and two
//! accumulators over disjoint samples combine exactly with Chan's formula
//! ([`GradStats::merge`]); neither stores a per-sample gradient. Fast model code that produces
//! `Σ∇f_i` and `Σ‖∇f_i‖²` directly can use [`GradStats::from_sums`].

use std::marker::PhantomData;

use ndarray::{Array1, ArrayRef1, Zip};

use crate::error::{Result, check};
use crate::float::Float;

/// Running mean gradient, sum of squared deviations and loss of a batch.
///
/// Everything is accumulated in `f64`, whatever the float type `F` of the gradients pushed:
/// near a regularized optimum the mean data gradient can be large while the spread of the
/// per-sample gradients is small, which is exactly where the big-batch test decides, and `f32`
/// accumulators lose the spread there. [`mean`](Self::mean) is the `f64` mean;
/// [`gradient`](Self::gradient) rounds it to `F`.
///
/// # Example
/// ```
/// use bigbatch::GradStats;
/// use ndarray::array;
///
/// let mut s = GradStats::<f64>::new(2);
/// s.push(&array![1.0, 0.0]);
/// s.push(&array![3.0, 2.0]);
/// assert_eq!(s.count(), 2);
/// assert_eq!(s.mean(), &array![2.0, 1.0]);
/// // deviations (−1, −1) and (1, 1): Σ‖·‖² = 4, V = 4 / (2 − 1)
/// assert_eq!(s.variance(), 4.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GradStats<F> {
    count: usize,
    mean: Array1<f64>,
    m2: f64,
    // Losses are summed in f64: line searches compare batch losses that differ by little.
    loss_sum: f64,
    loss_count: usize,
    #[cfg_attr(feature = "serde", serde(skip))]
    float: PhantomData<F>,
}

impl<F> Default for GradStats<F> {
    /// An empty accumulator for gradients of length 0.
    fn default() -> Self {
        GradStats {
            count: 0,
            mean: Array1::zeros(0),
            m2: 0.0,
            loss_sum: 0.0,
            loss_count: 0,
            float: PhantomData,
        }
    }
}

impl<F: Float> GradStats<F> {
    /// An empty accumulator for gradients of length `dim`.
    pub fn new(dim: usize) -> Self {
        GradStats {
            count: 0,
            mean: Array1::zeros(dim),
            m2: 0.0,
            loss_sum: 0.0,
            loss_count: 0,
            float: PhantomData,
        }
    }

    /// Builds the statistics of `count` samples from their sums, given in `f64` (accumulate
    /// `f32` gradients in `f64`: see the type's docs).
    ///
    /// ```text
    /// mean = grad_sum / count
    /// m2   = max(0, Σ‖∇f_i‖² − count·‖mean‖²)
    /// ```
    ///
    /// This shortcut loses relative precision in `m2` when `‖mean‖²` dwarfs the spread
    /// `m2 / count` (the two terms cancel: the relative error is about `1e-16 · ‖mean‖²·count/m2`
    /// with `f64` sums); it is clamped at zero. Use it on chunks of a few hundred samples and
    /// combine the chunks with [`merge`](Self::merge), which is exact.
    ///
    /// # Panics
    /// If `count` is zero while a sum is non-zero.
    #[track_caller]
    pub fn from_sums(
        count: usize,
        grad_sum: Array1<f64>,
        sq_norm_sum: f64,
        loss_sum: Option<f64>,
    ) -> Self {
        if count == 0 {
            assert!(
                grad_sum.iter().all(|&x| x == 0.0) && sq_norm_sum == 0.0,
                "GradStats::from_sums: non-zero sums over zero samples"
            );
            return GradStats::new(grad_sum.len());
        }
        let inv = 1.0 / count as f64;
        let mean = grad_sum.mapv(|x| x * inv);
        let m2 = (sq_norm_sum - count as f64 * mean.dot(&mean)).max(0.0);
        GradStats {
            count,
            mean,
            m2,
            loss_sum: loss_sum.unwrap_or(0.0),
            loss_count: if loss_sum.is_some() { count } else { 0 },
            float: PhantomData,
        }
    }

    /// Empties the accumulator, keeping its allocation.
    pub fn reset(&mut self) {
        self.count = 0;
        self.mean.fill(0.0);
        self.m2 = 0.0;
        self.loss_sum = 0.0;
        self.loss_count = 0;
    }

    /// Adds one per-sample gradient (Welford's update, in `f64`).
    ///
    /// ```text
    /// n ← n + 1;  Δ = v − m;  m ← m + Δ/n;  m2 ← m2 + ⟨Δ, v − m⟩
    /// ```
    ///
    /// # Panics
    /// If `grad` does not have the accumulator's length.
    #[track_caller]
    pub fn push(&mut self, grad: &ArrayRef1<F>) {
        assert_eq!(
            grad.len(),
            self.mean.len(),
            "GradStats::push: gradient length"
        );
        self.count += 1;
        let inv = 1.0 / self.count as f64;
        let m2 = match (self.mean.as_slice_mut(), grad.as_slice()) {
            (Some(mean), Some(grad)) => welford_slices(mean, grad, inv),
            (_, _) => {
                let mut m2 = 0.0;
                Zip::from(&mut self.mean).and(grad).for_each(|m, &v| {
                    let v = v.as_f64();
                    let delta = v - *m;
                    *m += delta * inv;
                    m2 += delta * (v - *m);
                });
                m2
            }
        };
        self.m2 += m2;
    }

    /// Adds one per-sample gradient together with that sample's loss.
    ///
    /// # Panics
    /// If `grad` does not have the accumulator's length.
    #[track_caller]
    pub fn push_with_loss(&mut self, grad: &ArrayRef1<F>, loss: F) {
        self.push(grad);
        self.loss_sum += loss.as_f64();
        self.loss_count += 1;
    }

    /// Adds the statistics of a disjoint set of samples (Chan's parallel formula; exact).
    ///
    /// ```text
    /// n = n_a + n_b;  Δ = m_b − m_a;  m = m_a + Δ·n_b/n;  m2 = m2_a + m2_b + ‖Δ‖²·n_a·n_b/n
    /// ```
    ///
    /// # Panics
    /// If the two accumulators have different lengths.
    #[track_caller]
    pub fn merge(&mut self, other: &GradStats<F>) {
        assert_eq!(
            other.mean.len(),
            self.mean.len(),
            "GradStats::merge: gradient length"
        );
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.clone_from(other);
            return;
        }
        self.merge_parts(other.count, &other.mean, other.m2, None);
        self.loss_sum += other.loss_sum;
        self.loss_count += other.loss_count;
    }

    /// Adds the statistics of `count` samples given as their mean, their sum of squared
    /// deviations `m2` and, optionally, the sum of their losses (Chan's formula, as
    /// [`merge`](Self::merge), without building a second accumulator). All in `f64`.
    ///
    /// # Panics
    /// If `mean` does not have the accumulator's length.
    #[track_caller]
    pub fn merge_parts(
        &mut self,
        count: usize,
        mean: &ArrayRef1<f64>,
        m2: f64,
        loss_sum: Option<f64>,
    ) {
        assert_eq!(
            mean.len(),
            self.mean.len(),
            "GradStats::merge_parts: gradient length"
        );
        if count == 0 {
            return;
        }
        let na = self.count as f64;
        let nb = count as f64;
        let wb = nb / (na + nb);
        let mut delta_sq = 0.0;
        Zip::from(&mut self.mean).and(mean).for_each(|ma, &mb| {
            let delta = mb - *ma;
            delta_sq += delta * delta;
            *ma += delta * wb;
        });
        self.m2 += m2 + delta_sq * (na * wb);
        self.count += count;
        if let Some(l) = loss_sum {
            self.loss_sum += l;
            self.loss_count += count;
        }
    }

    /// Number of samples added.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Length of the gradients.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The mean gradient `g_B` in `f64` (zero when empty).
    pub fn mean(&self) -> &Array1<f64> {
        &self.mean
    }

    /// The mean gradient `g_B` rounded to `F` (a new vector).
    pub fn gradient(&self) -> Array1<F> {
        self.mean.mapv(F::from_f64)
    }

    /// `‖g_B‖²`, in `f64`.
    pub fn grad_norm_sq(&self) -> f64 {
        self.mean.dot(&self.mean)
    }

    /// The sum of squared deviations `Σ‖∇f_i − g_B‖²`.
    pub fn sum_sq_dev(&self) -> f64 {
        self.m2
    }

    /// The unbiased variance estimate `V_B = Σ‖∇f_i − g_B‖² / (n − 1)`; zero for fewer than
    /// two samples (the spread of one sample cannot be estimated: see [`BatchTest::passes`]).
    pub fn variance(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            self.m2 / (self.count - 1) as f64
        }
    }

    /// The mean loss `ℓ_B`, if every sample was added with its loss (summed in `f64`, rounded
    /// once to `F`).
    pub fn loss(&self) -> Option<F> {
        (self.count > 0 && self.loss_count == self.count)
            .then(|| F::from_f64(self.loss_sum / self.count as f64))
    }

    /// Whether the mean, the sum of squared deviations and the loss sum are all finite.
    pub fn is_finite(&self) -> bool {
        self.mean.iter().all(|x| x.is_finite()) && self.m2.is_finite() && self.loss_sum.is_finite()
    }
}

/// Welford's update of the `f64` `mean` by `grad` with weight `inv = 1/n`; returns
/// `⟨Δ, v − m⟩`.
///
/// Four independent partial sums let the compiler vectorize the loop (a single running sum
/// is a serial dependency); their order is fixed, so the result is deterministic.
#[inline]
fn welford_slices<F: Float>(mean: &mut [f64], grad: &[F], inv: f64) -> f64 {
    let mut acc = [0.0; 4];
    let mut mean_chunks = mean.chunks_exact_mut(4);
    let mut grad_chunks = grad.chunks_exact(4);
    for (m, v) in (&mut mean_chunks).zip(&mut grad_chunks) {
        for k in 0..4 {
            let v = v[k].as_f64();
            let delta = v - m[k];
            m[k] += delta * inv;
            acc[k] += delta * (v - m[k]);
        }
    }
    let mut tail = 0.0;
    for (m, &v) in mean_chunks
        .into_remainder()
        .iter_mut()
        .zip(grad_chunks.remainder())
    {
        let v = v.as_f64();
        let delta = v - *m;
        *m += delta * inv;
        tail += delta * (v - *m);
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// The big-batch signal-to-noise test.
///
/// ```text
/// PASS  ⇔  φ · V_B / n  ≤  θ² ‖g_B‖²          (or ≤ θ²/(1+θ²) ‖g_B‖² with `unbiased_signal`)
/// φ = 1, or 1 − n/N with the finite-population correction
/// ```
///
/// A batch holding every sample (`n = N`) always passes: its gradient is exact.
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// false for a smaller batch of fewer than two samples (whose spread is unknown).
    pub fn passes<F: Float>(&self, stats: &GradStats<F>, n_total: usize) -> bool {
        let n = stats.count();
        if n >= n_total {
            return true;
        }
        if n < 2 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};
    use rand::{Rng, SeedableRng, rngs::Xoshiro256PlusPlus};

    /// Two-pass reference in f64: mean, then Σ‖v − mean‖².
    fn two_pass(rows: &Array2<f64>) -> (Array1<f64>, f64) {
        let mean = rows.mean_axis(ndarray::Axis(0)).unwrap();
        let m2 = rows
            .rows()
            .into_iter()
            .map(|r| (&r - &mean).mapv(|x| x * x).sum())
            .sum();
        (mean, m2)
    }

    fn uniform(rng: &mut Xoshiro256PlusPlus) -> f64 {
        (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }

    fn random_rows(seed: u64, n: usize, d: usize, offset: f64, spread: f64) -> Array2<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        Array2::from_shape_fn((n, d), |_| offset + spread * uniform(&mut rng))
    }

    fn push_all<F: Float>(rows: &Array2<f64>) -> GradStats<F> {
        let mut s = GradStats::new(rows.ncols());
        for r in rows.rows() {
            s.push(&r.mapv(F::from_f64));
        }
        s
    }

    fn check_against_two_pass<F: Float>(rows: &Array2<f64>, rel_tol: f64) {
        let (mean, m2) = two_pass(&rows.mapv(|x| F::from_f64(x).as_f64()));
        let s = push_all::<F>(rows);
        for (a, b) in s.mean().iter().zip(mean.iter()) {
            assert!(
                (a.as_f64() - b).abs() <= rel_tol * b.abs().max(1e-300),
                "{a} vs {b}"
            );
        }
        let got = s.sum_sq_dev().as_f64();
        assert!((got - m2).abs() <= rel_tol * m2, "m2 {got} vs {m2}");
        let v = s.variance().as_f64();
        assert!((v - m2 / (rows.nrows() - 1) as f64).abs() <= rel_tol * v);
    }

    #[test]
    fn welford_matches_two_pass() {
        let rows = random_rows(1, 500, 7, 0.0, 2.0);
        check_against_two_pass::<f64>(&rows, 1e-12);
        // f32 gradients, accumulated in f64: as accurate as f64 on the same values.
        check_against_two_pass::<f32>(&rows, 1e-12);
    }

    #[test]
    fn welford_is_stable_when_the_mean_dwarfs_the_spread() {
        // Mean 1e4, spread 1e-3: ‖m‖²/(V/n) ≈ 1e17; the sums form cancels completely here.
        let rows = random_rows(2, 1000, 5, 1e4, 1e-3);
        check_against_two_pass::<f64>(&rows, 1e-6);
        // f32 data: mean 1e2, spread 1e-2 (ratio 1e10, far past f32's 1e7 precision); the
        // f64 accumulator keeps the spread of the f32 values.
        let rows32 = random_rows(3, 1000, 5, 1e2, 1e-2);
        check_against_two_pass::<f32>(&rows32, 1e-6);
        // The naive formula loses everything on the first case:
        let s = push_all::<f64>(&rows);
        let sq: f64 = rows.iter().map(|x| x * x).sum();
        let naive = GradStats::<f64>::from_sums(1000, rows.sum_axis(ndarray::Axis(0)), sq, None);
        let rel_err = (naive.sum_sq_dev() - s.sum_sq_dev()).abs() / s.sum_sq_dev();
        assert!(
            rel_err > 0.01,
            "expected the sums shortcut to cancel, rel err {rel_err}"
        );
    }

    fn merge_equals_one_pass<F: Float>(tol: f64) {
        let rows = random_rows(4, 301, 6, 3.0, 5.0);
        let all = push_all::<F>(&rows);
        for cut in [0, 1, 2, 150, 300, 301] {
            let mut a = push_all::<F>(&rows.slice(ndarray::s![..cut, ..]).to_owned());
            let b = push_all::<F>(&rows.slice(ndarray::s![cut.., ..]).to_owned());
            a.merge(&b);
            assert_eq!(a.count(), all.count());
            for (x, y) in a.mean().iter().zip(all.mean().iter()) {
                assert!(
                    (*x - *y).abs().as_f64() <= tol * y.abs().as_f64(),
                    "cut {cut}"
                );
            }
            let (m2a, m2) = (a.sum_sq_dev().as_f64(), all.sum_sq_dev().as_f64());
            assert!((m2a - m2).abs() <= tol * m2, "cut {cut}: {m2a} vs {m2}");
        }
        // Many small chunks merged in order.
        let mut acc = GradStats::<F>::new(6);
        for chunk in rows.axis_chunks_iter(ndarray::Axis(0), 7) {
            acc.merge(&push_all::<F>(&chunk.to_owned()));
        }
        assert!(
            (acc.sum_sq_dev().as_f64() - all.sum_sq_dev().as_f64()).abs()
                <= tol * all.sum_sq_dev().as_f64()
        );
    }

    #[test]
    fn strided_and_contiguous_pushes_agree() {
        let rows = random_rows(6, 50, 9, 1.0, 3.0);
        let contiguous = push_all::<f64>(&rows);
        let wide = rows.t().to_owned();
        let mut strided = GradStats::<f64>::new(9);
        for j in 0..50 {
            strided.push(&wide.column(j));
        }
        assert_eq!(strided.count(), 50);
        for (a, b) in strided.mean().iter().zip(contiguous.mean()) {
            assert!((a - b).abs() <= 1e-14 * b.abs().max(1.0));
        }
        assert!(
            (strided.sum_sq_dev() - contiguous.sum_sq_dev()).abs()
                <= 1e-12 * contiguous.sum_sq_dev()
        );
    }

    #[test]
    fn merge_parts_equals_merge() {
        let rows = random_rows(7, 40, 3, 2.0, 1.0);
        let a = push_all::<f64>(&rows.slice(ndarray::s![..15, ..]).to_owned());
        let b = push_all::<f64>(&rows.slice(ndarray::s![15.., ..]).to_owned());
        let mut via_merge = a.clone();
        via_merge.merge(&b);
        let mut via_parts = a.clone();
        via_parts.merge_parts(b.count(), b.mean(), b.sum_sq_dev(), None);
        assert_eq!(via_parts.count(), 40);
        assert!(
            (via_parts.sum_sq_dev() - via_merge.sum_sq_dev()).abs()
                < 1e-12 * via_merge.sum_sq_dev()
        );
        assert!(
            (via_parts.mean() - via_merge.mean())
                .iter()
                .all(|d| d.abs() < 1e-14)
        );
        let mut empty = GradStats::<f64>::new(3);
        empty.merge_parts(b.count(), b.mean(), b.sum_sq_dev(), Some(1.5));
        assert_eq!(empty.loss(), Some(1.5 / 25.0));
        assert!((empty.variance() - b.variance()).abs() < 1e-14);
    }

    #[test]
    fn merging_equals_one_pass() {
        merge_equals_one_pass::<f64>(1e-12);
        merge_equals_one_pass::<f32>(1e-12);
    }

    #[test]
    fn from_sums_agrees_when_well_conditioned_and_clamps() {
        let rows = random_rows(5, 64, 4, 0.1, 1.0);
        let s = push_all::<f64>(&rows);
        let sq: f64 = rows.iter().map(|x| x * x).sum();
        let f = GradStats::<f64>::from_sums(64, rows.sum_axis(ndarray::Axis(0)), sq, Some(6.4));
        assert!((f.sum_sq_dev() - s.sum_sq_dev()).abs() < 1e-10 * s.sum_sq_dev());
        assert_eq!(f.loss(), Some(0.1));
        // Identical samples: the true m2 is 0 and the shortcut must not go negative.
        let same =
            GradStats::<f32>::from_sums(3, array![0.3 * 3.0, 0.7 * 3.0], 3.0 * (0.09 + 0.49), None);
        assert!(same.sum_sq_dev() >= 0.0);
        assert_eq!(
            GradStats::<f64>::from_sums(0, Array1::zeros(2), 0.0, None).count(),
            0
        );
    }

    #[test]
    fn loss_is_known_only_if_every_sample_had_one() {
        let mut s = GradStats::<f64>::new(1);
        assert_eq!(s.loss(), None);
        s.push_with_loss(&array![1.0], 2.0);
        s.push_with_loss(&array![1.0], 4.0);
        assert_eq!(s.loss(), Some(3.0));
        let mut t = GradStats::<f64>::new(1);
        t.push(&array![0.0]);
        s.merge(&t);
        assert_eq!(s.loss(), None);
        s.reset();
        assert_eq!((s.count(), s.loss(), s.variance()), (0, None, 0.0));
    }

    fn two_samples<F: Float>(a: [f64; 2], b: [f64; 2]) -> GradStats<F> {
        let mut s = GradStats::new(2);
        s.push(&array![F::from_f64(a[0]), F::from_f64(a[1])]);
        s.push(&array![F::from_f64(b[0]), F::from_f64(b[1])]);
        s
    }

    fn boundary<F: Float>() {
        // g = (1, 0), deviations ±(0.5, 0): m2 = 0.5, V = 0.5, V/n = 0.25 = θ²‖g‖² at θ = 0.5.
        let s = two_samples::<F>([0.5, 0.0], [1.5, 0.0]);
        let at = |theta: f64| BatchTest {
            theta,
            ..BatchTest::default()
        };
        assert!(at(0.5).passes(&s, 100), "equality passes");
        assert!(!at(0.5 * (1.0 - 1e-3)).passes(&s, 100), "just below fails");
        assert!(at(0.5 * (1.0 + 1e-3)).passes(&s, 100));
        // The same two samples are the whole data set: exact, so it passes at any θ.
        assert!(at(1e-6).passes(&s, 2));
        // Finite-population correction φ = 1 − 2/4 halves the noise: passes at θ = 0.5/√2.
        let fpc = BatchTest {
            theta: 0.5 / 2f64.sqrt() * (1.0 + 1e-3),
            finite_population_correction: true,
            ..BatchTest::default()
        };
        assert!(fpc.passes(&s, 4));
        // Unbiased signal: noise ≤ θ²/(1+θ²)‖g‖²; at θ = 0.5 that is 0.2 < 0.25, so fails.
        let ub = BatchTest {
            theta: 0.5,
            unbiased_signal: true,
            ..BatchTest::default()
        };
        assert!(!ub.passes(&s, 100));
        // Required size: V/(θ²‖g‖²) = 0.5/(0.01) = 50 at θ = 0.1.
        assert_eq!(at(0.1).required_size(&s, 1000), 50);
        assert_eq!(at(0.1).required_size(&s, 20), 20);
    }

    #[test]
    fn batch_test_at_its_boundary() {
        boundary::<f64>();
        boundary::<f32>();
    }

    #[test]
    fn degenerate_batches() {
        let mut one = GradStats::<f64>::new(1);
        one.push(&array![1.0]);
        let t = BatchTest::default();
        assert!(!t.passes(&one, 10), "one sample of many: spread unknown");
        assert!(t.passes(&one, 1), "the whole data set");
        // Zero gradient and zero spread pass (the stopping rule then fires).
        let zero = two_samples::<f64>([0.0, 0.0], [0.0, 0.0]);
        assert!(t.passes(&zero, 10));
        assert_eq!(t.required_size(&zero, 10), 0);
        // Zero mean with spread fails, and asks for the whole data set.
        let cancel = two_samples::<f64>([1.0, 0.0], [-1.0, 0.0]);
        assert!(!t.passes(&cancel, 10));
        assert_eq!(t.required_size(&cancel, 10), 10);
    }
}
