//! Products with the Hessian of a batch loss: the optional capability of
//! [`Objective::curvature`].

use ndarray::ArrayRef1;

use crate::float::Float;

#[cfg(doc)]
use super::Objective;

/// What an objective keeps to multiply vectors by the Hessian of a batch's mean loss,
/// `H_B(w) = (1/|B|) Σ_{i∈B} ∇²f_i(w)`: the optional capability of [`Objective::curvature`],
/// which second-order step rules ([`NewtonCg`](crate::NewtonCg)) use.
///
/// The object owns its state. A rule [`prepare`](Self::prepare)s it once at a point and on a
/// batch (a linear model keeps the second derivative `φ''(x_i·w, y_i)` of each sample, from
/// one read of each row) and then asks for as many [`product`](Self::product)s as it needs
/// (a linear model reads each row of the batch once per product). The products take
/// `&mut self`, so that an implementation may also defer work from the preparation to the
/// first product.
///
/// # Example
/// The one-parameter model `f_i(w) = c_i (w − a_i)²/2`, whose Hessian is the mean of the `c_i`
/// over the batch whatever `w`:
/// ```
/// use bigbatch::{Curvature, Objective};
/// use ndarray::{ArrayRef1, array};
///
/// struct Weighted { a: Vec<f64>, c: Vec<f64> }
///
/// struct WeightedCurvature<'a> { data: &'a Weighted, mean_c: f64 }
///
/// impl Curvature<f64> for WeightedCurvature<'_> {
///     fn prepare(&mut self, _w: &ArrayRef1<f64>, batch: &[usize]) {
///         let sum: f64 = batch.iter().map(|&i| self.data.c[i]).sum();
///         self.mean_c = sum / batch.len() as f64;
///     }
///     fn product(&mut self, v: &ArrayRef1<f64>, out: &mut ArrayRef1<f64>) {
///         out[0] = self.mean_c * v[0];
///     }
/// }
///
/// impl Objective for Weighted {
///     fn n_samples(&self) -> usize { self.a.len() }
///     fn dim(&self) -> usize { 1 }
///     fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 {
///         0.5 * self.c[i] * (w[0] - self.a[i]).powi(2)
///     }
///     fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) {
///         g[0] = self.c[i] * (w[0] - self.a[i]);
///     }
///     fn curvature(&self) -> Option<Box<dyn Curvature<f64> + '_>> {
///         Some(Box::new(WeightedCurvature { data: self, mean_c: 0.0 }))
///     }
/// }
///
/// let data = Weighted { a: vec![1.0, 2.0, 3.0], c: vec![1.0, 2.0, 6.0] };
/// let mut h = data.curvature().expect("Weighted has curvature");
/// h.prepare(&array![0.0], &[0, 2]);
/// let mut out = array![0.0];
/// h.product(&array![2.0], &mut out);
/// assert_eq!(out[0], 7.0);
/// ```
pub trait Curvature<F: Float> {
    /// Takes what products with the Hessian of the mean loss of `batch` at `w` need. What an
    /// earlier preparation kept is forgotten. `batch` is never empty.
    fn prepare(&mut self, w: &ArrayRef1<F>, batch: &[usize]);

    /// Overwrites `out` with `H_B(w) v` for the `w` and `batch` of the last preparation, the
    /// regularization included, accumulated in `f64`. The optimizer never calls it before a
    /// preparation.
    fn product(&mut self, v: &ArrayRef1<F>, out: &mut ArrayRef1<f64>);

    /// Overwrites `out` with the diagonal of `H_B(w)` for the last preparation and returns
    /// true; the default has no diagonal and returns false. A rule uses it to precondition its
    /// conjugate gradients (Jacobi), which matters where the features' scales or frequencies
    /// differ; the optimizer counts it as one product.
    fn diagonal(&mut self, out: &mut ArrayRef1<f64>) -> bool {
        let _ = out;
        false
    }
}
