//! The curvature of a linear model: `φ''(x_i·w, y_i)` of each sample of the batch.

use ndarray::{ArrayRef1, ArrayViewMut1};

use super::{Linear, ScalarLoss};
use crate::float::Float;
use crate::kernels::{add_row, dot};
use crate::models::curvature::{CurvatureValues, mean_plus_ridge, mean_plus_ridge_diagonal};
use crate::parallel::{fill_chunks, sum_vectors_by_range};

impl<F: Float, L: ScalarLoss> CurvatureValues<F> for Linear<F, L> {
    /// `φ''(x_i·w, y_i)` of every sample of the batch, from one read of each row.
    fn fill_curvature(&self, w: &ArrayRef1<F>, batch: &[usize], values: &mut Vec<F>) {
        values.clear();
        values.resize(batch.len(), F::zero());
        fill_chunks(batch, values, 1, &|chunk: &[usize], part: &mut [F]| {
            for (&i, h) in chunk.iter().zip(part.iter_mut()) {
                let z = self.features.row_dot(i, w);
                *h = self
                    .loss
                    .second_derivative(z, self.targets[i])
                    .unwrap_or(F::zero());
            }
        });
    }

    /// `Σ φ''_i (x_i·v) x_i` chunk by chunk in `f64`, added along the fixed tree, then the
    /// mean plus `λv`. Rows with `φ''_i = 0` (Huber's outliers) are not read.
    fn product_from(&self, values: &[F], batch: &[usize], v: &ArrayRef1<F>, out: &mut [f64]) {
        let dense = self.dense_matrix().zip(v.as_slice());
        let d = self.features.n_cols();
        sum_vectors_by_range(batch.len(), out, |r, part| {
            for (&i, &h) in batch[r.clone()].iter().zip(&values[r]) {
                if h == F::zero() {
                    continue;
                }
                match dense {
                    Some((x, vs)) => {
                        let row = &x[i * d..(i + 1) * d];
                        add_row(part, row, (h * dot(row, vs)).as_f64());
                    }
                    None => {
                        let c = (h * self.features.row_dot(i, v)).as_f64();
                        self.features
                            .add_row_to_wide(i, c, &mut ArrayViewMut1::from(&mut *part));
                    }
                }
            }
        });
        mean_plus_ridge(out, batch.len(), self.lambda, v);
    }

    /// `Σ φ''_i x_ij²` chunk by chunk in `f64`, then the mean plus `λ`.
    fn diagonal_from(&self, values: &[F], batch: &[usize], out: &mut [f64]) {
        sum_vectors_by_range(batch.len(), out, |r, part| {
            for (&i, &h) in batch[r.clone()].iter().zip(&values[r]) {
                if h != F::zero() {
                    self.features.add_row_squares_to_wide(i, h.as_f64(), part);
                }
            }
        });
        mean_plus_ridge_diagonal(out, batch.len(), self.lambda);
    }
}
