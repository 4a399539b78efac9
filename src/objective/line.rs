//! Batch losses along a line: the optional capability of [`Objective::line`].

use ndarray::ArrayRef1;

use crate::float::Float;
use crate::stats::GradStats;

#[cfg(doc)]
use super::Objective;

/// What an objective keeps to evaluate the losses of one batch along a line `w + t·d` without
/// reading the batch again: the optional capability of [`Objective::line`].
///
/// The object owns its state. A line search [`prepare`](Self::prepare)s it once per line (or
/// takes it from the gradient pass at a trial point, with
/// [`prepare_with_gradient`](Self::prepare_with_gradient)) and then asks for the
/// [`loss`](Self::loss) at each trial step.
///
/// # Example
/// The one-parameter model `f_i(w) = (w − a_i)²/2`: along `w + t·d` the residual of sample
/// `i` is `(w − a_i) + t·d`, so the line keeps the residuals at `w` and the slope `d`.
/// ```
/// use bigbatch::{LineLoss, Objective};
/// use ndarray::{ArrayRef1, array};
///
/// struct Mean(Vec<f64>);
///
/// struct MeanLine<'a> {
///     data: &'a Mean,
///     residuals: Vec<f64>,
///     slope: f64,
/// }
///
/// impl LineLoss<f64> for MeanLine<'_> {
///     fn prepare(&mut self, w: &ArrayRef1<f64>, d: &ArrayRef1<f64>, batch: &[usize]) {
///         self.residuals.clear();
///         self.residuals.extend(batch.iter().map(|&i| w[0] - self.data.0[i]));
///         self.slope = d[0];
///     }
///     fn loss(&self, t: f64, _point: &ArrayRef1<f64>) -> f64 {
///         let sum: f64 = self.residuals.iter().map(|r| 0.5 * (r + t * self.slope).powi(2)).sum();
///         sum / self.residuals.len() as f64
///     }
/// }
///
/// impl Objective for Mean {
///     fn n_samples(&self) -> usize { self.0.len() }
///     fn dim(&self) -> usize { 1 }
///     fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 { 0.5 * (w[0] - self.0[i]).powi(2) }
///     fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) { g[0] = w[0] - self.0[i]; }
///     fn line(&self) -> Option<Box<dyn LineLoss<f64> + '_>> {
///         Some(Box::new(MeanLine { data: self, residuals: Vec::new(), slope: 0.0 }))
///     }
/// }
///
/// let data = Mean(vec![1.0, 2.0, 6.0]);
/// let (w, d, batch) = (array![0.0], array![1.0], [0, 2]);
/// let mut line = data.line().expect("Mean has losses along lines");
/// line.prepare(&w, &d, &batch);
/// let along = line.loss(0.5, &array![0.5]);
/// assert!((along - data.batch_loss(&array![0.5], &batch)).abs() < 1e-15);
/// ```
pub trait LineLoss<F: Float> {
    /// Takes what the losses of the samples of `batch` along the line through `w` in
    /// direction `d` need (typically one read of the batch). What an earlier line kept is
    /// forgotten.
    fn prepare(&mut self, w: &ArrayRef1<F>, d: &ArrayRef1<F>, batch: &[usize]);

    /// The mean loss of the prepared batch at `point = w + t·d`, for the `w` and `d` of the
    /// last preparation. It should agree with [`Objective::batch_loss`] at `point` up to
    /// rounding, and be exactly the loss at `w` for `t = 0`. The optimizer never calls it
    /// before a preparation.
    fn loss(&self, t: F, point: &ArrayRef1<F>) -> F;

    /// Adds the batch statistics at `w` to `stats`, exactly as
    /// [`Objective::batch_gradient`] would, and prepares the line through `w` in direction `d`
    /// from the same pass; returns whether it did. The default does neither and returns false:
    /// the optimizer then computes the statistics with [`Objective::batch_gradient`] and
    /// evaluates the other trials on this line with [`Objective::batch_loss`].
    ///
    /// A line search whose first trial computes the statistics there (they become the next
    /// iteration's if the step is accepted) calls it, so that a rejected first trial leaves the
    /// losses along the line for the shorter steps: a linear model adds `x_i·d` to the
    /// products it takes of each row anyway.
    fn prepare_with_gradient(
        &mut self,
        w: &ArrayRef1<F>,
        d: &ArrayRef1<F>,
        batch: &[usize],
        stats: &mut GradStats<F>,
    ) -> bool {
        let _ = (w, d, batch, stats);
        false
    }
}
