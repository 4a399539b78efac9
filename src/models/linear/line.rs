//! The losses of a linear model along a line: `x_i·w` and `x_i·d` of each sample of the batch.

use ndarray::ArrayRef1;

use super::{Linear, ScalarLoss};
use crate::float::Float;
use crate::models::line::LineValues;
use crate::models::mean_loss_by_position;
use crate::parallel::{accumulate_chunks_filling, fill_chunks};
use crate::stats::GradStats;

impl<F: Float, L: ScalarLoss> LineValues<F> for Linear<F, L> {
    /// `x_i·w` and `x_i·d` of every sample of the batch, from one read of each row.
    fn fill_line(&self, w: &ArrayRef1<F>, d: &ArrayRef1<F>, batch: &[usize], line: &mut Vec<F>) {
        line.clear();
        line.resize(2 * batch.len(), F::zero());
        fill_chunks(batch, line, 2, &|chunk: &[usize], part: &mut [F]| {
            self.chunk_line(w, d, chunk, part)
        });
    }

    /// `(1/|B|) Σ φ(z_i + α s_i, y_i) + (λ/2)‖point‖²` from the stored `z_i = x_i·w` and
    /// `s_i = x_i·d`, summed along the same tree as [`batch_loss`](Self::batch_loss): at
    /// `alpha = 0` the very number `batch_loss(w)` gives.
    fn loss_on_line(&self, line: &[F], batch: &[usize], alpha: F, point: &ArrayRef1<F>) -> F {
        mean_loss_by_position(batch.len(), point, self.lambda, |r| {
            batch[r.clone()]
                .iter()
                .zip(line[2 * r.start..2 * r.end].chunks_exact(2))
                .map(|(&i, zs)| {
                    self.loss
                        .value(zs[0] + alpha * zs[1], self.targets[i])
                        .as_f64()
                })
                .sum()
        })
    }

    /// The statistics pass, with `x_i·d` of each row taken while the row is in cache.
    fn gradient_and_line(
        &self,
        w: &ArrayRef1<F>,
        d: &ArrayRef1<F>,
        batch: &[usize],
        stats: &mut GradStats<F>,
        line: &mut Vec<F>,
    ) -> bool {
        let contiguous;
        let d = match d.as_slice() {
            Some(d) => d,
            None => {
                contiguous = d.to_vec();
                &contiguous
            }
        };
        line.clear();
        line.resize(2 * batch.len(), F::zero());
        accumulate_chunks_filling(batch, stats, line, 2, |chunk, part, out| {
            self.chunk_stats(w, chunk, part, Some((d, out)));
        });
        true
    }
}
