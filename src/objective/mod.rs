//! The finite-sum objective a user optimizes.

use ndarray::{Array1, ArrayRef1};

use crate::float::Float;
use crate::stats::GradStats;

mod batch;
mod curvature;
mod forward;
mod line;
pub use batch::{BatchObjective, Groups, MicroBatched};
pub use curvature::Curvature;
pub use forward::{Forward, Forwarded};
pub use line::LineLoss;

/// A finite-sum objective `ℓ(w) = (1/N) Σ_{i<N} f_i(w)`.
///
/// Implement the four required methods for a model; the batched methods have correct
/// per-sample defaults, and a model with a faster way to compute them (a matrix product for
/// a linear model, say) overrides them. Every batched quantity is a **mean** over the batch,
/// so that step sizes do not depend on the batch size.
///
/// All methods take `&self`: the optimizer owns the random numbers and chooses the indices.
/// The optimizer never calls a method with an index `≥ n_samples()` or a `w` whose length is
/// not `dim()`. Methods do not fail; a NaN or an infinity they return at the iterate (in a batch
/// gradient, loss or variance) stops the run with [`Error::NonFinite`](crate::Error::NonFinite)
/// and the last finite iterate. At a line search's trial point it counts as a step too long
/// (an overflow far from the iterate is legitimate) and the search shrinks the step; a search
/// whose trials are all non-finite stops the run with the same error.
///
/// # Example
/// A one-parameter model `f_i(w) = (w − a_i)²/2`, whose optimum is the mean of the `a_i`:
/// ```
/// use bigbatch::{BigBatchSgd, Objective};
/// use ndarray::{ArrayRef1, array};
///
/// struct Mean(Vec<f64>);
///
/// impl Objective for Mean {
///     fn n_samples(&self) -> usize { self.0.len() }
///     fn dim(&self) -> usize { 1 }
///     fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 {
///         0.5 * (w[0] - self.0[i]).powi(2)
///     }
///     fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, grad: &mut ArrayRef1<f64>) {
///         grad[0] = w[0] - self.0[i];
///     }
/// }
///
/// let data = Mean((0..100).map(|i| i as f64).collect());
/// let report = BigBatchSgd::builder().build()?.minimize(&data, array![0.0])?;
/// assert!((report.w[0] - 49.5).abs() < 1e-4);
/// # Ok::<(), bigbatch::Error>(())
/// ```
pub trait Objective<F: Float = f64> {
    /// The number of samples `N` (at least 1).
    fn n_samples(&self) -> usize;

    /// The number of parameters (at least 1).
    fn dim(&self) -> usize;

    /// The loss `f_i(w)` of sample `i`.
    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F;

    /// Overwrites `grad` with `∇f_i(w)`, the gradient of sample `i`.
    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>);

    /// Overwrites `grad` with `∇f_i(w)` and returns `f_i(w)`.
    ///
    /// The default calls [`sample_gradient`](Self::sample_gradient) and
    /// [`sample_loss`](Self::sample_loss); override it when the two share work (they
    /// usually do), and the batched default below gets the loss for free.
    fn sample_loss_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) -> F {
        self.sample_gradient(w, i, grad);
        self.sample_loss(w, i)
    }

    /// The mean loss `ℓ_B(w) = (1/|B|) Σ_{i∈B} f_i(w)` over the indices in `batch`
    /// (zero for an empty batch).
    ///
    /// The default sums in `f64`, so that the mean is as accurate as the per-sample losses:
    /// line searches compare batch losses that differ by little.
    fn batch_loss(&self, w: &ArrayRef1<F>, batch: &[usize]) -> F {
        if batch.is_empty() {
            return F::zero();
        }
        let sum: f64 = batch.iter().map(|&i| self.sample_loss(w, i).as_f64()).sum();
        F::from_f64(sum / batch.len() as f64)
    }

    /// The optional capability of batch losses along a line `w + t·d` for a line search that
    /// tries several steps on the same batch: an object that keeps what those losses need (a
    /// linear model keeps `x_i·w` and `x_i·d` of each sample, from one read of each row, and a
    /// trial then reads no data). The default has none, and the search evaluates
    /// [`batch_loss`](Self::batch_loss) at each trial point.
    ///
    /// The optimizer asks once per run and keeps the object for the run's lines. See
    /// [`LineLoss`] for an example.
    fn line(&self) -> Option<Box<dyn LineLoss<F> + '_>> {
        None
    }

    /// The optional capability of products with the Hessian of a batch loss, for second-order
    /// step rules ([`NewtonCg`](crate::NewtonCg)): an object that keeps what the products at
    /// one point need. The default has none. Every bundled model but [`Mlp`](crate::models::Mlp)
    /// has it.
    ///
    /// The optimizer asks once per run and keeps the object for the run. See [`Curvature`] for
    /// an example.
    fn curvature(&self) -> Option<Box<dyn Curvature<F> + '_>> {
        None
    }

    /// Adds the per-sample gradients (and, if it can, the losses) of the samples in `batch`
    /// to `stats`.
    ///
    /// `stats` may already hold other samples of the same batch, at the same `w`: a batch
    /// that grows adds only its new samples. The default evaluates
    /// [`sample_loss_gradient`](Self::sample_loss_gradient) for each index into one scratch
    /// vector and [`push`](GradStats::push_with_loss)es it. An override must leave `stats`
    /// as if every sample had been pushed; it may build partial statistics, for instance with
    /// [`GradStats::from_sums`], and [`merge`](GradStats::merge) them in. Pushing the losses
    /// is optional: without them the optimizer calls [`batch_loss`](Self::batch_loss) when it
    /// needs the batch loss.
    fn batch_gradient(&self, w: &ArrayRef1<F>, batch: &[usize], stats: &mut GradStats<F>) {
        let mut grad = Array1::zeros(self.dim());
        for &i in batch {
            // Robust to implementations that add into `grad` instead of overwriting it.
            grad.fill(F::zero());
            let loss = self.sample_loss_gradient(w, i, &mut grad);
            stats.push_with_loss(&grad, loss);
        }
    }
}

/// A reference is the objective it refers to.
impl<F: Float, O: Objective<F> + ?Sized> Objective<F> for &O {
    fn n_samples(&self) -> usize {
        (**self).n_samples()
    }
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        (**self).sample_loss(w, i)
    }
    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) {
        (**self).sample_gradient(w, i, grad)
    }
    fn sample_loss_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) -> F {
        (**self).sample_loss_gradient(w, i, grad)
    }
    fn batch_loss(&self, w: &ArrayRef1<F>, batch: &[usize]) -> F {
        (**self).batch_loss(w, batch)
    }
    fn batch_gradient(&self, w: &ArrayRef1<F>, batch: &[usize], stats: &mut GradStats<F>) {
        (**self).batch_gradient(w, batch, stats)
    }
    fn line(&self) -> Option<Box<dyn LineLoss<F> + '_>> {
        (**self).line()
    }
    fn curvature(&self) -> Option<Box<dyn Curvature<F> + '_>> {
        (**self).curvature()
    }
}
