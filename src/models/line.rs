//! The line object of the bundled models: values per sample of the batch, kept from one read
//! of each row, from which the losses at every step along the line follow.

use ndarray::ArrayRef1;

use crate::float::Float;
use crate::objective::LineLoss;
use crate::stats::GradStats;

/// A model whose losses along a line follow from values it computes per sample of the batch.
pub(crate) trait LineValues<F: Float> {
    /// Fills `values` for the line through `w` in direction `d` on `batch`.
    fn fill_line(&self, w: &ArrayRef1<F>, d: &ArrayRef1<F>, batch: &[usize], values: &mut Vec<F>);
    /// The mean loss of `batch` at `point = w + t·d` from `values`.
    fn loss_on_line(&self, values: &[F], batch: &[usize], t: F, point: &ArrayRef1<F>) -> F;
    /// The batch statistics at `w` with the line's values from the same pass, if the model
    /// has such a pass.
    fn gradient_and_line(
        &self,
        w: &ArrayRef1<F>,
        d: &ArrayRef1<F>,
        batch: &[usize],
        stats: &mut GradStats<F>,
        values: &mut Vec<F>,
    ) -> bool {
        let _ = (w, d, batch, stats, values);
        false
    }
}

/// The [`LineLoss`] of a model with [`LineValues`]: the batch and the values, reused from line
/// to line.
pub(crate) struct ValuesLine<'a, M, F> {
    model: &'a M,
    batch: Vec<usize>,
    values: Vec<F>,
}

impl<'a, M, F> ValuesLine<'a, M, F> {
    pub(crate) fn new(model: &'a M) -> Self {
        ValuesLine {
            model,
            batch: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl<F: Float, M: LineValues<F>> LineLoss<F> for ValuesLine<'_, M, F> {
    fn prepare(&mut self, w: &ArrayRef1<F>, d: &ArrayRef1<F>, batch: &[usize]) {
        self.batch.clear();
        self.batch.extend_from_slice(batch);
        self.model.fill_line(w, d, batch, &mut self.values);
    }

    fn loss(&self, t: F, point: &ArrayRef1<F>) -> F {
        self.model.loss_on_line(&self.values, &self.batch, t, point)
    }

    fn prepare_with_gradient(
        &mut self,
        w: &ArrayRef1<F>,
        d: &ArrayRef1<F>,
        batch: &[usize],
        stats: &mut GradStats<F>,
    ) -> bool {
        let done = self
            .model
            .gradient_and_line(w, d, batch, stats, &mut self.values);
        if done {
            self.batch.clear();
            self.batch.extend_from_slice(batch);
        }
        done
    }
}
