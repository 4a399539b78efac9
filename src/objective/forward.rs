//! Objectives that wrap another and forward to it.

use ndarray::ArrayRef1;

use super::{Curvature, LineLoss, Objective};
use crate::float::Float;
use crate::stats::GradStats;

/// A wrapper of another objective that forwards every method to it unless it overrides the
/// method here; [`Forwarded`]`(wrapper)` is then the objective. A wrapper that counts, times
/// or logs some calls cannot forget to forward the others.
///
/// Its methods are [`Objective`]'s, with the same contracts. (A blanket implementation of
/// [`Objective`] for every `Forward` type would collide with the implementations for generic
/// types such as the bundled models and `&O`, hence the newtype.)
///
/// # Example
/// A wrapper that counts the samples of its batch gradients and forwards everything else:
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use bigbatch::data::Dataset;
/// use bigbatch::models::LeastSquares;
/// use bigbatch::{Forward, Forwarded, GradStats, Objective};
/// use ndarray::{ArrayRef1, array};
///
/// struct Counted<O> {
///     inner: O,
///     samples: AtomicUsize,
/// }
///
/// impl<O: Objective> Forward<f64> for Counted<O> {
///     type Inner = O;
///     fn inner(&self) -> &O {
///         &self.inner
///     }
///     fn batch_gradient(&self, w: &ArrayRef1<f64>, batch: &[usize], stats: &mut GradStats<f64>) {
///         self.samples.fetch_add(batch.len(), Ordering::Relaxed);
///         self.inner.batch_gradient(w, batch, stats);
///     }
/// }
///
/// let model = LeastSquares::new(Dataset::from_dense(array![[1.0], [2.0]], array![1.0, 2.0])?, 0.0)?;
/// let counted = Forwarded(Counted { inner: model, samples: AtomicUsize::new(0) });
/// let mut stats = GradStats::new(1);
/// counted.batch_gradient(&array![0.0], &[0, 1], &mut stats);
/// assert_eq!(counted.0.samples.load(Ordering::Relaxed), 2);
/// assert_eq!(counted.n_samples(), 2);
/// # Ok::<(), bigbatch::Error>(())
/// ```
pub trait Forward<F: Float> {
    /// The wrapped objective.
    type Inner: Objective<F> + ?Sized;

    /// The wrapped objective.
    fn inner(&self) -> &Self::Inner;

    /// [`Objective::n_samples`].
    fn n_samples(&self) -> usize {
        self.inner().n_samples()
    }
    /// [`Objective::dim`].
    fn dim(&self) -> usize {
        self.inner().dim()
    }
    /// [`Objective::sample_loss`].
    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        self.inner().sample_loss(w, i)
    }
    /// [`Objective::sample_gradient`].
    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) {
        self.inner().sample_gradient(w, i, grad)
    }
    /// [`Objective::sample_loss_gradient`].
    fn sample_loss_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) -> F {
        self.inner().sample_loss_gradient(w, i, grad)
    }
    /// [`Objective::batch_loss`].
    fn batch_loss(&self, w: &ArrayRef1<F>, batch: &[usize]) -> F {
        self.inner().batch_loss(w, batch)
    }
    /// [`Objective::batch_gradient`].
    fn batch_gradient(&self, w: &ArrayRef1<F>, batch: &[usize], stats: &mut GradStats<F>) {
        self.inner().batch_gradient(w, batch, stats)
    }
    /// [`Objective::line`].
    fn line(&self) -> Option<Box<dyn LineLoss<F> + '_>> {
        self.inner().line()
    }
    /// [`Objective::curvature`].
    fn curvature(&self) -> Option<Box<dyn Curvature<F> + '_>> {
        self.inner().curvature()
    }
}

/// The objective a [`Forward`] wrapper defines: every method of `W`'s, forwarded or
/// overridden.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forwarded<W>(pub W);

impl<F: Float, W: Forward<F>> Objective<F> for Forwarded<W> {
    fn n_samples(&self) -> usize {
        Forward::n_samples(&self.0)
    }
    fn dim(&self) -> usize {
        Forward::dim(&self.0)
    }
    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        Forward::sample_loss(&self.0, w, i)
    }
    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) {
        Forward::sample_gradient(&self.0, w, i, grad)
    }
    fn sample_loss_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) -> F {
        Forward::sample_loss_gradient(&self.0, w, i, grad)
    }
    fn batch_loss(&self, w: &ArrayRef1<F>, batch: &[usize]) -> F {
        Forward::batch_loss(&self.0, w, batch)
    }
    fn batch_gradient(&self, w: &ArrayRef1<F>, batch: &[usize], stats: &mut GradStats<F>) {
        Forward::batch_gradient(&self.0, w, batch, stats)
    }
    fn line(&self) -> Option<Box<dyn LineLoss<F> + '_>> {
        Forward::line(&self.0)
    }
    fn curvature(&self) -> Option<Box<dyn Curvature<F> + '_>> {
        Forward::curvature(&self.0)
    }
}
