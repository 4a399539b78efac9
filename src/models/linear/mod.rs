//! Linear models `f_i(w) = φ(x_i·w, y_i) + (λ/2)‖w‖²`.

mod curvature;
mod line;
mod losses;

pub use losses::{HuberLoss, LogLoss, ScalarLoss, SquaredLoss};

use ndarray::{Array1, ArrayRef1, ArrayView1, Zip};

use super::curvature::ValuesCurvature;
use super::line::ValuesLine;
use super::{batch_mean_loss, check_not_empty, merge_chunk, ridge_penalty};
use crate::data::{Dataset, Features};
use crate::error::{Error, Result, check};
use crate::float::Float;
use crate::kernels::{dense_line, dense_rows};
use crate::objective::{Curvature, LineLoss, Objective};
use crate::parallel::accumulate_chunks;
use crate::stats::GradStats;

/// A linear model with loss `φ`: `ℓ(w) = (1/N) Σ φ(x_i·w, y_i) + (λ/2)‖w‖²`.
///
/// Use it through its aliases [`LeastSquares`], [`Logistic`] and [`Huber`].
#[derive(Debug, Clone)]
pub struct Linear<F, L> {
    features: Features<F>,
    targets: Array1<F>,
    /// `‖x_i‖²`, in `f64` (an `f32` rounding here would swamp the spread near an optimum).
    row_norms_sq: Array1<f64>,
    lambda: F,
    loss: L,
}

/// Ridge regression: `f_i(w) = (x_i·w − y_i)²/2 + (λ/2)‖w‖²`.
///
/// # Example
/// ```
/// use bigbatch::{BigBatchSgd, data::Dataset, models::LeastSquares};
/// use ndarray::{Array1, Array2};
///
/// let x = Array2::from_shape_fn((500, 3), |(i, j)| ((i * (j + 2)) as f64 * 0.37).sin());
/// let y = x.dot(&ndarray::array![1.0, -2.0, 0.5]);
/// let model = LeastSquares::new(Dataset::from_dense(x, y)?, 0.0)?;
/// let report = BigBatchSgd::builder().tolerance(1e-20).build()?.minimize(&model, Array1::zeros(3))?;
/// assert!((report.w[1] + 2.0).abs() < 1e-6);
/// # Ok::<(), bigbatch::Error>(())
/// ```
pub type LeastSquares<F = f64> = Linear<F, SquaredLoss>;

/// L2-regularized logistic regression: `f_i(w) = log(1 + exp(−y_i x_i·w)) + (λ/2)‖w‖²`, labels
/// ±1 (or 0/1, read as −1/+1).
///
/// # Example
/// ```
/// use bigbatch::{BigBatchSgd, data::datasets, models::Logistic};
/// use ndarray::Array1;
///
/// let model = Logistic::new(datasets::heart_scale::<f64>().with_bias(), 1e-2)?;
/// let report = BigBatchSgd::builder().build()?.minimize(&model, Array1::zeros(14))?;
/// assert!(model.accuracy(&report.w) > 0.8);
/// # Ok::<(), bigbatch::Error>(())
/// ```
pub type Logistic<F = f64> = Linear<F, LogLoss>;

/// Huber regression: `f_i(w) = h_δ(x_i·w − y_i) + (λ/2)‖w‖²`, robust to outlying targets.
pub type Huber<F = f64> = Linear<F, HuberLoss>;

impl<F: Float> Linear<F, SquaredLoss> {
    /// Ridge regression on `data` with regularization `lambda ≥ 0`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a bad `lambda`; [`Error::EmptyObjective`] for no samples
    /// or no features.
    pub fn new(data: Dataset<F>, lambda: f64) -> Result<Self> {
        Linear::with_loss(data, lambda, SquaredLoss)
    }
}

impl<F: Float> Linear<F, LogLoss> {
    /// Logistic regression on `data` (labels ±1 or 0/1) with regularization `lambda ≥ 0`.
    ///
    /// # Errors
    /// As [`Linear::with_loss`]; [`Error::InvalidData`] names the first label that is not ±1
    /// or 0/1.
    pub fn new(data: Dataset<F>, lambda: f64) -> Result<Self> {
        Linear::with_loss(data, lambda, LogLoss)
    }

    /// The fraction of samples whose label has the sign of `x_i·w` (0 counts as −1).
    ///
    /// # Panics
    /// If `w` does not have length `dim()`.
    pub fn accuracy(&self, w: &ArrayRef1<F>) -> f64 {
        let right = (0..self.targets.len())
            .filter(|&i| (self.features.row_dot(i, w) > F::zero()) == (self.targets[i] > F::zero()))
            .count();
        right as f64 / self.targets.len() as f64
    }
}

impl<F: Float> Linear<F, HuberLoss> {
    /// Huber regression on `data` with threshold `delta > 0` and regularization `lambda ≥ 0`.
    ///
    /// # Errors
    /// As [`Linear::with_loss`], and [`Error::InvalidParameter`] for a bad `delta`.
    pub fn new(data: Dataset<F>, delta: f64, lambda: f64) -> Result<Self> {
        check::positive("delta", delta)?;
        Linear::with_loss(data, lambda, HuberLoss { delta })
    }
}

impl<F: Float, L: ScalarLoss> Linear<F, L> {
    /// A linear model with any [`ScalarLoss`].
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a negative or non-finite `lambda`;
    /// [`Error::EmptyObjective`] for no samples or no features; [`Error::InvalidData`] for a
    /// target the loss does not accept, naming the sample.
    pub fn with_loss(data: Dataset<F>, lambda: f64, loss: L) -> Result<Self> {
        check::non_negative("lambda", lambda)?;
        check_not_empty(&data)?;
        let mut targets = data.targets().clone();
        for (i, t) in targets.iter_mut().enumerate() {
            let y = t.as_f64();
            let prepared = loss
                .prepare_target(y)
                .map_err(|allowed| Error::InvalidData {
                    what: format!("target {y} of sample {i}: {allowed}"),
                })?;
            *t = F::from_f64(prepared);
        }
        // Rows contiguous in memory, for the dense kernels.
        let features = match data.features() {
            Features::Dense(m) if !m.is_standard_layout() => {
                Features::Dense(m.as_standard_layout().into_owned())
            }
            other => other.clone(),
        };
        let row_norms_sq = features.row_norms_sq_wide();
        Ok(Linear {
            features,
            targets,
            row_norms_sq,
            lambda: F::from_f64(lambda),
            loss,
        })
    }

    /// The features.
    pub fn features(&self) -> &Features<F> {
        &self.features
    }
    /// The targets, as the loss uses them (logistic labels as ±1).
    pub fn targets(&self) -> &Array1<F> {
        &self.targets
    }
    /// The regularization weight λ.
    pub fn lambda(&self) -> F {
        self.lambda
    }
    /// The predictions `x_i·w` of every sample.
    ///
    /// # Panics
    /// If `w` does not have length `dim()`.
    pub fn predict(&self, w: &ArrayRef1<F>) -> Array1<F> {
        (0..self.targets.len())
            .map(|i| self.features.row_dot(i, w))
            .collect()
    }
}

impl<F: Float, L: ScalarLoss> Linear<F, L> {
    /// `(Σ φ'_i²‖x_i‖², Σ φ_i)` of the rows `chunk`, adding `Σ φ'_i x_i` to `sum` (all in
    /// `f64`).
    fn any_chunk(&self, w: &ArrayRef1<F>, chunk: &[usize], sum: &mut Array1<f64>) -> (f64, f64) {
        let (mut sq, mut loss) = (0.0, 0.0);
        for &i in chunk {
            let (value, slope) = self
                .loss
                .value_and_derivative(self.features.row_dot(i, w), self.targets[i]);
            let slope = slope.as_f64();
            self.features.add_row_to_wide(i, slope, sum);
            sq += slope * slope * self.row_norms_sq[i];
            loss += value.as_f64();
        }
        (sq, loss)
    }

    /// As [`any_chunk`](Self::any_chunk) on dense rows stored contiguously in `x`: each row is
    /// read from memory once, in a sweep that computes its dot product and adds the previous
    /// row (still in cache) to `sum`.
    fn dense_chunk(
        &self,
        x: &[F],
        w: &[F],
        chunk: &[usize],
        sum: &mut [f64],
        line: Option<(&[F], &mut [F])>,
    ) -> (f64, f64) {
        let (mut sq, mut loss) = (0.0, 0.0);
        dense_rows(x, w, chunk, sum, line, |i, z| {
            let (value, slope) = self.loss.value_and_derivative(z, self.targets[i]);
            let slope = slope.as_f64();
            sq += slope * slope * self.row_norms_sq[i];
            loss += value.as_f64();
            slope
        });
        (sq, loss)
    }

    /// The statistics of the rows `chunk` at `w`, merged into `part`; with `line = Some((d,
    /// out))` also `x_i·w` and `x_i·d` of each row, in pairs, in `out`.
    fn chunk_stats(
        &self,
        w: &ArrayRef1<F>,
        chunk: &[usize],
        part: &mut GradStats<F>,
        line: Option<(&[F], &mut [F])>,
    ) {
        let mut sum = Array1::<f64>::zeros(w.len());
        let dense = self.dense_matrix().zip(w.as_slice());
        let (sq, loss) = match (dense, sum.as_slice_mut()) {
            (Some((x, ws)), Some(s)) => self.dense_chunk(x, ws, chunk, s, line),
            _ => {
                if let Some((d, out)) = line {
                    self.chunk_line(w, &ArrayView1::from(d), chunk, out);
                }
                self.any_chunk(w, chunk, &mut sum)
            }
        };
        merge_chunk(part, chunk.len(), &mut sum, sq, loss, self.lambda, w);
    }

    /// `x_i·w` and `x_i·d` of the rows `chunk`, in pairs, in `out`.
    fn chunk_line(&self, w: &ArrayRef1<F>, d: &ArrayRef1<F>, chunk: &[usize], out: &mut [F]) {
        match (self.dense_matrix(), w.as_slice(), d.as_slice()) {
            (Some(x), Some(ws), Some(ds)) => dense_line(x, ws, ds, chunk, out),
            _ => {
                for (&i, pair) in chunk.iter().zip(out.chunks_exact_mut(2)) {
                    pair[0] = self.features.row_dot(i, w);
                    pair[1] = self.features.row_dot(i, d);
                }
            }
        }
    }

    /// The dense rows, one after the other, when they are stored so.
    fn dense_matrix(&self) -> Option<&[F]> {
        match &self.features {
            Features::Dense(m) => m.as_slice(),
            Features::Sparse(_) => None,
        }
    }

    /// The data-loss sum `Σ φ(x_i·w, y_i)` of the rows `chunk`.
    fn chunk_data_loss(&self, w: &ArrayRef1<F>, chunk: &[usize]) -> f64 {
        chunk
            .iter()
            .map(|&i| {
                self.loss
                    .value(self.features.row_dot(i, w), self.targets[i])
                    .as_f64()
            })
            .sum()
    }
}

impl<F: Float, L: ScalarLoss> Objective<F> for Linear<F, L> {
    /// Losses along a line from values kept per sample of the batch: `x_i·w` and `x_i·d`, from
    /// one read of each row.
    fn line(&self) -> Option<Box<dyn LineLoss<F> + '_>> {
        Some(Box::new(ValuesLine::new(self)))
    }

    /// `H v = (1/|B|) Σ φ''(x_i·w, y_i)(x_i·v) x_i + λv` from `φ''` kept per sample of the
    /// batch: one read of each row to prepare, one per product. `None` if the loss has no
    /// [`second_derivative`](ScalarLoss::second_derivative).
    fn curvature(&self) -> Option<Box<dyn Curvature<F> + '_>> {
        self.loss
            .second_derivative(F::zero(), self.targets[0])
            .map(|_| Box::new(ValuesCurvature::new(self)) as Box<dyn Curvature<F> + '_>)
    }

    fn n_samples(&self) -> usize {
        self.targets.len()
    }

    fn dim(&self) -> usize {
        self.features.n_cols()
    }

    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        self.loss
            .value(self.features.row_dot(i, w), self.targets[i])
            + ridge_penalty(self.lambda, w)
    }

    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) {
        self.sample_loss_gradient(w, i, grad);
    }

    fn sample_loss_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) -> F {
        let (value, slope) = self
            .loss
            .value_and_derivative(self.features.row_dot(i, w), self.targets[i]);
        Zip::from(&mut *grad)
            .and(w)
            .for_each(|g, &w| *g = self.lambda * w);
        self.features.add_row_to(i, slope, grad);
        value + ridge_penalty(self.lambda, w)
    }

    /// Summed in `f64` chunk by chunk, exactly as [`batch_gradient`](Self::batch_gradient)
    /// sums the losses it reports: the same batch at the same point has the same loss either way.
    fn batch_loss(&self, w: &ArrayRef1<F>, batch: &[usize]) -> F {
        batch_mean_loss(batch, w, self.lambda, |chunk| {
            self.chunk_data_loss(w, chunk)
        })
    }

    /// One read of each row: `z_i = x_i·w`, then `Σ φ'_i x_i`, `Σ φ'_i²‖x_i‖²` and `Σ φ_i` per
    /// chunk of rows, merged into `stats` (see the [module docs](crate::models)); chunks in
    /// parallel with the `rayon` feature ([`parallel`](crate::parallel)).
    fn batch_gradient(&self, w: &ArrayRef1<F>, batch: &[usize], stats: &mut GradStats<F>) {
        accumulate_chunks(batch, stats, |chunk, part| {
            self.chunk_stats(w, chunk, part, None);
        });
    }
}
