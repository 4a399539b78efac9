//! [`GradStats`]: the running statistics of a batch.

use std::marker::PhantomData;

use ndarray::{Array1, ArrayRef1, Zip};

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
    /// The independent gradients the spread was measured over: one per sample, or one per
    /// group of samples whose mean gradient alone is known (see [`push_group`](Self::push_group)).
    groups: usize,
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
            groups: 0,
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
            groups: 0,
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
            groups: count,
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
        self.groups = 0;
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
        self.groups += 1;
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
        self.merge_grouped(other.count, other.groups, &other.mean, other.m2, None);
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
        self.merge_grouped(count, count, mean, m2, loss_sum);
    }

    /// Adds a group of `count` samples known only by their mean gradient `mean` (and,
    /// optionally, the sum of their losses): what a model that computes the mean gradient of a
    /// set of samples, but not per-sample gradients, can give. The spread is then measured
    /// between groups, and each group counts as one independent gradient:
    ///
    /// ```text
    /// V = Σ_k b_k ‖g_k − ḡ‖² / (G − 1)      G groups of sizes b_k and means g_k, ḡ their mean
    /// ```
    ///
    /// which estimates the per-sample variance without bias for any group sizes; groups of
    /// one sample give the per-sample estimate exactly. Groups merge with samples and with other
    /// accumulators like any other part (Chan's formula).
    ///
    /// # Panics
    /// If `mean` does not have the accumulator's length.
    #[track_caller]
    pub fn push_group(&mut self, count: usize, mean: &ArrayRef1<f64>, loss_sum: Option<f64>) {
        self.merge_grouped(count, usize::from(count > 0), mean, 0.0, loss_sum);
    }

    /// Chan's formula for a part of `count` samples measured as `groups` independent gradients.
    #[track_caller]
    pub(crate) fn merge_grouped(
        &mut self,
        count: usize,
        groups: usize,
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
        if self.count == 0 {
            // The first part: the general update with na = 0 (weight 1 on the part, no
            // deviation term), without the sum of squared deltas that it multiplies by zero.
            Zip::from(&mut self.mean)
                .and(mean)
                .for_each(|ma, &mb| *ma = 0.0 + mb);
            self.m2 += m2;
            self.count = count;
            self.groups += groups;
            if let Some(l) = loss_sum {
                self.loss_sum += l;
                self.loss_count += count;
            }
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
        self.groups += groups;
        if let Some(l) = loss_sum {
            self.loss_sum += l;
            self.loss_count += count;
        }
    }

    /// Number of samples added.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The number of independent gradients the spread was measured over: the number of
    /// samples, unless groups of samples were added by their mean ([`push_group`](Self::push_group)).
    pub fn groups(&self) -> usize {
        self.groups
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

    /// The unbiased variance estimate `V_B = Σ‖∇f_i − g_B‖² / (n − 1)` of the per-sample
    /// gradients (between groups, `Σ b_k‖g_k − g_B‖² / (G − 1)`, when groups were added:
    /// [`push_group`](Self::push_group)); zero for fewer than two independent gradients (their
    /// spread cannot be estimated: see [`BatchTest::passes`](crate::BatchTest::passes)).
    pub fn variance(&self) -> f64 {
        if self.groups < 2 {
            0.0
        } else {
            self.m2 / (self.groups - 1) as f64
        }
    }

    /// The mean loss `ℓ_B`, if every sample was added with its loss (summed in `f64`, rounded
    /// once to `F`).
    pub fn loss(&self) -> Option<F> {
        (self.count > 0 && self.loss_count == self.count)
            .then(|| F::from_f64(self.loss_sum / self.count as f64))
    }

    /// The sum of the losses added, and how many samples came with one.
    pub(crate) fn loss_parts(&self) -> (f64, usize) {
        (self.loss_sum, self.loss_count)
    }

    /// Whether the mean, the sum of squared deviations and the loss sum are all finite.
    pub fn is_finite(&self) -> bool {
        crate::kernels::all_finite(&self.mean) && self.m2.is_finite() && self.loss_sum.is_finite()
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
