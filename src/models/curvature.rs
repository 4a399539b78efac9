//! The curvature object of the bundled models: values per sample of the batch (second
//! derivatives, class probabilities), kept from one read of each row, from which every
//! Hessian-vector product follows in one more read.

use ndarray::ArrayRef1;

use crate::float::Float;
use crate::objective::Curvature;

/// A model whose Hessian-vector products on a batch follow from values it computes per sample.
pub(crate) trait CurvatureValues<F: Float> {
    /// Fills `values` for the Hessian of `batch` at `w`.
    fn fill_curvature(&self, w: &ArrayRef1<F>, batch: &[usize], values: &mut Vec<F>);
    /// Overwrites `out` with `H_B v` (the mean over `batch`, regularization included) from
    /// `values`.
    fn product_from(&self, values: &[F], batch: &[usize], v: &ArrayRef1<F>, out: &mut [f64]);
    /// Overwrites `out` with the diagonal of `H_B` (the mean over `batch`, regularization
    /// included) from `values`.
    fn diagonal_from(&self, values: &[F], batch: &[usize], out: &mut [f64]);
}

/// The [`Curvature`] of a model with [`CurvatureValues`]: the batch and the values, reused from
/// point to point.
pub(crate) struct ValuesCurvature<'a, M, F> {
    model: &'a M,
    batch: Vec<usize>,
    values: Vec<F>,
}

impl<'a, M, F> ValuesCurvature<'a, M, F> {
    pub(crate) fn new(model: &'a M) -> Self {
        ValuesCurvature {
            model,
            batch: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl<F: Float, M: CurvatureValues<F>> Curvature<F> for ValuesCurvature<'_, M, F> {
    fn prepare(&mut self, w: &ArrayRef1<F>, batch: &[usize]) {
        self.batch.clear();
        self.batch.extend_from_slice(batch);
        self.model.fill_curvature(w, batch, &mut self.values);
    }

    fn product(&mut self, v: &ArrayRef1<F>, out: &mut ArrayRef1<f64>) {
        match out.as_slice_mut() {
            Some(out) => self.model.product_from(&self.values, &self.batch, v, out),
            None => {
                let mut contiguous = vec![0.0; out.len()];
                self.model
                    .product_from(&self.values, &self.batch, v, &mut contiguous);
                out.iter_mut().zip(contiguous).for_each(|(o, c)| *o = c);
            }
        }
    }

    fn diagonal(&mut self, out: &mut ArrayRef1<f64>) -> bool {
        match out.as_slice_mut() {
            Some(out) => self.model.diagonal_from(&self.values, &self.batch, out),
            None => {
                let mut contiguous = vec![0.0; out.len()];
                self.model
                    .diagonal_from(&self.values, &self.batch, &mut contiguous);
                out.iter_mut().zip(contiguous).for_each(|(o, c)| *o = c);
            }
        }
        true
    }
}

/// `out ← out/n + λ`: a sum of `n` per-sample diagonals turned into the mean, with the
/// regularization's added.
pub(crate) fn mean_plus_ridge_diagonal<F: Float>(out: &mut [f64], n: usize, lambda: F) {
    let (lambda, n) = (lambda.as_f64(), n as f64);
    out.iter_mut().for_each(|o| *o = *o / n + lambda);
}

/// `out ← out/n + λv`: a sum of `n` per-sample products turned into the mean, with the
/// regularization's Hessian `λI` added.
pub(crate) fn mean_plus_ridge<F: Float>(out: &mut [f64], n: usize, lambda: F, v: &ArrayRef1<F>) {
    let lambda = lambda.as_f64();
    let n = n as f64;
    out.iter_mut()
        .zip(v.iter())
        .for_each(|(o, &v)| *o = *o / n + lambda * v.as_f64());
}
