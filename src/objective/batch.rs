//! Models that give only the mean loss and gradient of a set of samples (a deep-learning
//! framework's forward and backward pass), and the adapter that runs them with the big-batch
//! test: [`MicroBatched`].

use ndarray::{Array1, ArrayRef1};

use crate::error::{Error, Result, check};
use crate::float::Float;
use crate::objective::Objective;
use crate::stats::GradStats;

/// A finite sum `ℓ(w) = (1/N) Σ f_i(w)` known through the mean loss and mean gradient of sets of
/// samples: what a deep-learning framework computes with one forward and one backward pass,
/// when per-sample gradients would cost a backward pass each.
///
/// Wrap it in [`MicroBatched`] to optimize it: the batch is then evaluated in groups, and the
/// spread of the per-sample gradients is estimated from the spread of the group means.
pub trait BatchObjective<F: Float = f64> {
    /// The number of samples `N`.
    fn n_samples(&self) -> usize;
    /// The number of parameters.
    fn dim(&self) -> usize;
    /// The mean loss of the samples `indices` (never empty) at `w`.
    fn loss(&self, w: &ArrayRef1<F>, indices: &[usize]) -> F;
    /// The mean loss of the samples `indices` (never empty) at `w`, with their mean gradient
    /// written to `grad`.
    fn loss_and_gradient(&self, w: &ArrayRef1<F>, indices: &[usize], grad: &mut ArrayRef1<F>) -> F;
}

/// How [`MicroBatched`] cuts a batch into groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Groups {
    /// Into this many groups (≥ 2) of nearly equal size, or groups of one sample when the
    /// batch is smaller. More groups estimate the spread better and cost more passes.
    Count(usize),
    /// Into groups of this many samples (≥ 1), the last one possibly smaller.
    Size(usize),
}

impl Default for Groups {
    /// 16 groups: the variance estimate then has 15 degrees of freedom (a relative standard
    /// error of about √(2/15) ≈ 0.37), at 16 backward passes per evaluation.
    fn default() -> Self {
        Groups::Count(16)
    }
}

impl Groups {
    /// The sizes of the groups of a batch of `n` samples.
    fn sizes(self, n: usize) -> impl Iterator<Item = usize> {
        let (count, size) = match self {
            Groups::Count(g) => {
                let g = g.clamp(1, n.max(1));
                (g, 0)
            }
            Groups::Size(b) => {
                let b = b.max(1);
                (n.div_ceil(b), b)
            }
        };
        (0..count).map(move |k| {
            if size > 0 {
                size.min(n - k * size)
            } else {
                n / count + usize::from(k < n % count)
            }
        })
    }
}

/// A [`BatchObjective`] as an [`Objective`]: a batch is evaluated as groups of samples (one
/// mean gradient each), and its statistics keep the groups' means
/// ([`GradStats::push_group`]): the mean gradient of the batch is exact, and the variance
/// estimate `Σ b_k‖g_k − ḡ‖²/(G − 1)` is unbiased for the per-sample variance.
///
/// The batch's loss is the mean of the groups' losses weighted by their sizes; a single sample's
/// loss and gradient are those of a group of one.
///
/// # Example
/// ```
/// use bigbatch::{BatchObjective, BigBatchSgd, Groups, MicroBatched};
/// use ndarray::{ArrayRef1, array};
///
/// /// The mean of the values: f_i(w) = (w − y_i)²/2, known only by batch means.
/// struct Mean(Vec<f64>);
/// impl BatchObjective for Mean {
///     fn n_samples(&self) -> usize { self.0.len() }
///     fn dim(&self) -> usize { 1 }
///     fn loss(&self, w: &ArrayRef1<f64>, ix: &[usize]) -> f64 {
///         ix.iter().map(|&i| 0.5 * (w[0] - self.0[i]).powi(2)).sum::<f64>() / ix.len() as f64
///     }
///     fn loss_and_gradient(&self, w: &ArrayRef1<f64>, ix: &[usize], g: &mut ArrayRef1<f64>) -> f64 {
///         g[0] = ix.iter().map(|&i| w[0] - self.0[i]).sum::<f64>() / ix.len() as f64;
///         self.loss(w, ix)
///     }
/// }
///
/// let data = MicroBatched::new(Mean((0..1000).map(|i| (i % 10) as f64).collect()), Groups::Count(8))?;
/// let report = BigBatchSgd::builder().build()?.minimize(&data, array![0.0])?;
/// assert!((report.w[0] - 4.5).abs() < 1e-4, "{report}");
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MicroBatched<M> {
    model: M,
    groups: Groups,
}

impl<M> MicroBatched<M> {
    /// The model, evaluated in `groups`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) for `Groups::Count` below 2
    /// or `Groups::Size` of 0.
    pub fn new(model: M, groups: Groups) -> Result<Self> {
        match groups {
            Groups::Count(g) if g < 2 => return Err(Error::invalid("groups", g, "at least 2")),
            Groups::Count(_) => {}
            Groups::Size(b) => check::nonzero_count("group size", b)?,
        }
        Ok(MicroBatched { model, groups })
    }
    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }
    /// How batches are cut into groups.
    pub fn groups(&self) -> Groups {
        self.groups
    }
}

impl<F: Float, M: BatchObjective<F>> Objective<F> for MicroBatched<M> {
    fn n_samples(&self) -> usize {
        self.model.n_samples()
    }
    fn dim(&self) -> usize {
        self.model.dim()
    }
    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        self.model.loss(w, &[i])
    }
    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) {
        self.model.loss_and_gradient(w, &[i], grad);
    }
    fn sample_loss_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) -> F {
        self.model.loss_and_gradient(w, &[i], grad)
    }
    fn batch_loss(&self, w: &ArrayRef1<F>, batch: &[usize]) -> F {
        self.model.loss(w, batch)
    }
    fn batch_gradient(&self, w: &ArrayRef1<F>, batch: &[usize], stats: &mut GradStats<F>) {
        // One gradient and one f64 copy of it, reused by every group.
        let mut grad = Array1::zeros(self.model.dim());
        let mut mean = Array1::<f64>::zeros(self.model.dim());
        let mut at = 0;
        for size in self.groups.sizes(batch.len()) {
            let group = &batch[at..at + size];
            at += size;
            let loss = self.model.loss_and_gradient(w, group, &mut grad);
            mean.zip_mut_with(&grad, |m, &g| *m = g.as_f64());
            stats.push_group(size, &mean, Some(loss.as_f64() * size as f64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Groups;

    #[test]
    fn groups_cover_the_batch() {
        for n in [1, 2, 7, 16, 17, 100] {
            for g in [
                Groups::Count(2),
                Groups::Count(16),
                Groups::Size(1),
                Groups::Size(5),
            ] {
                let sizes: Vec<usize> = g.sizes(n).collect();
                assert_eq!(sizes.iter().sum::<usize>(), n, "{g:?}, n = {n}");
                assert!(sizes.iter().all(|&s| s > 0), "{g:?}, n = {n}: {sizes:?}");
                if let Groups::Count(c) = g {
                    assert_eq!(sizes.len(), c.min(n));
                    assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
                }
            }
        }
    }
}
