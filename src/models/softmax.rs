//! Multinomial logistic regression.

use ndarray::{Array1, ArrayRef1, Zip, s};

use super::curvature::{
    CurvatureValues, ValuesCurvature, mean_plus_ridge, mean_plus_ridge_diagonal,
};
use super::line::{LineValues, ValuesLine};
use super::{batch_mean_loss, class_labels, mean_loss_by_position, merge_chunk, ridge_penalty};
use crate::data::{Dataset, Features};
use crate::error::{Result, check};
use crate::float::Float;
use crate::kernels::dense_class_rows;
use crate::objective::{Curvature, LineLoss, Objective};
use crate::parallel::{accumulate_chunks, fill_chunks, sum_vectors_by_range};
use crate::stats::GradStats;

/// Softmax (multinomial logistic) regression with K classes and one weight vector per class
/// (none fixed to zero):
///
/// ```text
/// f_i(W) = logsumexp_k(x_i·W_k) − x_i·W_{y_i} + (λ/2)‖W‖²
/// ```
///
/// The parameter vector has length `K·d`, class `k`'s weights at `k·d .. (k+1)·d`. Labels are
/// class ids `0..K`. The log-sum-exp is shifted by the largest logit, so logits of any size
/// are safe.
///
/// # Example
/// ```
/// use bigbatch::{BigBatchSgd, data::datasets, models::Softmax};
/// use ndarray::Array1;
///
/// let digits = datasets::digits::<f64>().with_bias();
/// let model = Softmax::new(digits, 10, 1e-3)?;
/// let report = BigBatchSgd::builder().max_epochs(10.0).build()?.minimize(&model, Array1::zeros(10 * 65))?;
/// assert!(model.accuracy(&report.w) > 0.9);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Softmax<F = f64> {
    features: Features<F>,
    labels: Vec<usize>,
    row_norms_sq: Array1<f64>,
    n_classes: usize,
    lambda: F,
}

impl<F: Float> Softmax<F> {
    /// The model on `data` (targets are class ids `0..n_classes`), with regularization
    /// `lambda ≥ 0`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) for `n_classes < 2` or a bad `lambda`;
    /// [`Error::EmptyObjective`](crate::Error::EmptyObjective) for no samples or features; [`Error::InvalidData`](crate::Error::InvalidData) naming the
    /// first sample whose label is not a class id below `n_classes`.
    pub fn new(data: Dataset<F>, n_classes: usize, lambda: f64) -> Result<Self> {
        check::non_negative("lambda", lambda)?;
        let labels = class_labels(&data, n_classes)?;
        let features = data.features().clone();
        let row_norms_sq = features.row_norms_sq_wide();
        Ok(Softmax {
            features,
            labels,
            row_norms_sq,
            n_classes,
            lambda: F::from_f64(lambda),
        })
    }

    /// The number of classes K.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }
    /// The number of features d (the parameter vector has length K·d).
    pub fn n_features(&self) -> usize {
        self.features.n_cols()
    }
    /// The class labels.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The fraction of samples whose largest logit is their label's.
    ///
    /// # Panics
    /// If `w` does not have length `dim()`.
    pub fn accuracy(&self, w: &ArrayRef1<F>) -> f64 {
        let mut z = vec![F::zero(); self.n_classes];
        let right = (0..self.labels.len())
            .filter(|&i| {
                self.logits(w, i, &mut z);
                super::argmax(z.iter().copied()) == self.labels[i]
            })
            .count();
        right as f64 / self.labels.len() as f64
    }

    /// `z_k = x_i·W_k` for every class.
    #[inline]
    fn logits(&self, w: &ArrayRef1<F>, i: usize, z: &mut [F]) {
        let d = self.n_features();
        for (k, zk) in z.iter_mut().enumerate() {
            *zk = self.features.row_dot(i, &w.slice(s![k * d..(k + 1) * d]));
        }
    }

    /// Turns the logits into the residual `p − e_y` in place; returns the loss
    /// `logsumexp(z) − z_y` and `‖p − e_y‖²` (in `f64`).
    #[inline]
    fn residual(z: &mut [F], y: usize) -> (F, f64) {
        let max = z.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
        let sum: F = z.iter().map(|&v| (v - max).exp()).sum();
        let lse = max + sum.ln();
        let loss = lse - z[y];
        let mut norm = 0.0;
        for (k, v) in z.iter_mut().enumerate() {
            let p = (*v - lse).exp();
            *v = if k == y { p - F::one() } else { p };
            let c = v.as_f64();
            norm += c * c;
        }
        (loss, norm)
    }
}

impl<F: Float> Objective<F> for Softmax<F> {
    /// Losses along a line from values kept per sample of the batch: the logits and their
    /// changes along the direction, from one read of each row.
    fn line(&self) -> Option<Box<dyn LineLoss<F> + '_>> {
        Some(Box::new(ValuesLine::new(self)))
    }

    /// `H v = (1/|B|) Σ ((diag(p_i) − p_i p_iᵀ) u_i) ⊗ x_i + λv` with `u_i = (x_i·V_k)_k`, from
    /// the class probabilities `p_i` kept per sample of the batch: one read of each row to
    /// prepare, one per product.
    fn curvature(&self) -> Option<Box<dyn Curvature<F> + '_>> {
        Some(Box::new(ValuesCurvature::new(self)))
    }

    fn n_samples(&self) -> usize {
        self.labels.len()
    }

    fn dim(&self) -> usize {
        self.n_classes * self.n_features()
    }

    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        let mut z = vec![F::zero(); self.n_classes];
        self.logits(w, i, &mut z);
        Self::residual(&mut z, self.labels[i]).0 + ridge_penalty(self.lambda, w)
    }

    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) {
        self.sample_loss_gradient(w, i, grad);
    }

    fn sample_loss_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) -> F {
        let d = self.n_features();
        let mut z = vec![F::zero(); self.n_classes];
        self.logits(w, i, &mut z);
        let (loss, _) = Self::residual(&mut z, self.labels[i]);
        Zip::from(&mut *grad)
            .and(w)
            .for_each(|g, &w| *g = self.lambda * w);
        for (k, &c) in z.iter().enumerate() {
            self.features
                .add_row_to(i, c, &mut grad.slice_mut(s![k * d..(k + 1) * d]));
        }
        loss + ridge_penalty(self.lambda, w)
    }

    /// Summed in `f64` chunk by chunk, exactly as [`batch_gradient`](Self::batch_gradient)
    /// sums the losses it reports.
    fn batch_loss(&self, w: &ArrayRef1<F>, batch: &[usize]) -> F {
        batch_mean_loss(batch, w, self.lambda, |chunk| {
            let mut z = vec![F::zero(); self.n_classes];
            chunk
                .iter()
                .map(|&i| {
                    self.logits(w, i, &mut z);
                    Self::residual(&mut z, self.labels[i]).0.as_f64()
                })
                .sum()
        })
    }

    /// One pass over the rows per chunk: logits, the residual `c = p − e_y`, then
    /// `Σ c ⊗ x_i` and `Σ ‖c‖²‖x_i‖²` (in `f64`), merged exactly into `stats`; chunks in
    /// parallel with the `rayon` feature ([`parallel`](crate::parallel)).
    fn batch_gradient(&self, w: &ArrayRef1<F>, batch: &[usize], stats: &mut GradStats<F>) {
        let d = self.n_features();
        let dense = match (&self.features, w.as_slice()) {
            (Features::Dense(m), Some(w)) => m.as_slice().map(|x| (x, w)),
            _ => None,
        };
        accumulate_chunks(batch, stats, |chunk, part| {
            let mut sum = Array1::<f64>::zeros(w.len());
            let mut z = vec![F::zero(); self.n_classes];
            let (mut sq, mut loss) = (0.0, 0.0);
            let mut add = |i: usize, z: &mut [F]| {
                let (value, norm) = Self::residual(z, self.labels[i]);
                sq += norm * self.row_norms_sq[i];
                loss += value.as_f64();
            };
            match (dense, sum.as_slice_mut()) {
                (Some((x, ws)), Some(s)) => dense_class_rows(x, ws, chunk, s, &mut z, add),
                _ => {
                    for &i in chunk {
                        self.logits(w, i, &mut z);
                        add(i, &mut z);
                        for (k, &c) in z.iter().enumerate() {
                            self.features.add_row_to_wide(
                                i,
                                c.as_f64(),
                                &mut sum.slice_mut(s![k * d..(k + 1) * d]),
                            );
                        }
                    }
                }
            }
            merge_chunk(part, chunk.len(), &mut sum, sq, loss, self.lambda, w);
        });
    }
}

impl<F: Float> LineValues<F> for Softmax<F> {
    /// The logits `x_i·W_k` and their changes `x_i·D_k` along the direction, `2K` values per
    /// sample, from one read of each row.
    fn fill_line(&self, w: &ArrayRef1<F>, d: &ArrayRef1<F>, batch: &[usize], line: &mut Vec<F>) {
        let k = self.n_classes;
        line.clear();
        line.resize(2 * k * batch.len(), F::zero());
        fill_chunks(batch, line, 2 * k, &|chunk: &[usize], part: &mut [F]| {
            for (&i, values) in chunk.iter().zip(part.chunks_exact_mut(2 * k)) {
                let (z, s) = values.split_at_mut(k);
                self.logits(w, i, z);
                self.logits(d, i, s);
            }
        });
    }

    /// The mean loss at the logits `z + α s`, summed along the same tree as
    /// [`batch_loss`](Self::batch_loss): at `alpha = 0` the very number `batch_loss(w)` gives.
    fn loss_on_line(&self, line: &[F], batch: &[usize], alpha: F, point: &ArrayRef1<F>) -> F {
        let k = self.n_classes;
        mean_loss_by_position(batch.len(), point, self.lambda, |r| {
            let mut z = vec![F::zero(); k];
            let values = &line[2 * k * r.start..2 * k * r.end];
            batch[r]
                .iter()
                .zip(values.chunks_exact(2 * k))
                .map(|(&i, v)| {
                    for (j, zj) in z.iter_mut().enumerate() {
                        *zj = v[j] + alpha * v[k + j];
                    }
                    Self::residual(&mut z, self.labels[i]).0.as_f64()
                })
                .sum()
        })
    }
}

impl<F: Float> CurvatureValues<F> for Softmax<F> {
    /// The class probabilities `p_i` of every sample of the batch, `K` values per sample, from
    /// one read of each row.
    fn fill_curvature(&self, w: &ArrayRef1<F>, batch: &[usize], values: &mut Vec<F>) {
        let k = self.n_classes;
        values.clear();
        values.resize(k * batch.len(), F::zero());
        fill_chunks(batch, values, k, &|chunk: &[usize], part: &mut [F]| {
            for (&i, p) in chunk.iter().zip(part.chunks_exact_mut(k)) {
                self.logits(w, i, p);
                let max = p.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
                let mut sum = F::zero();
                for v in p.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                p.iter_mut().for_each(|v| *v /= sum);
            }
        });
    }

    /// `Σ (p ⊙ u − p (p·u)) ⊗ x_i` chunk by chunk in `f64`, added along the fixed tree, then
    /// the mean plus `λv`.
    fn product_from(&self, values: &[F], batch: &[usize], v: &ArrayRef1<F>, out: &mut [f64]) {
        let (k, d) = (self.n_classes, self.n_features());
        sum_vectors_by_range(batch.len(), out, |r, part| {
            let mut u = vec![F::zero(); k];
            let values = &values[k * r.start..k * r.end];
            for (&i, p) in batch[r].iter().zip(values.chunks_exact(k)) {
                self.logits(v, i, &mut u);
                let pu: f64 = p.iter().zip(&u).map(|(&p, &u)| (p * u).as_f64()).sum();
                for (class, (&p, &u)) in p.iter().zip(&u).enumerate() {
                    let (p, u) = (p.as_f64(), u.as_f64());
                    self.features.add_row_to_wide(
                        i,
                        p * (u - pu),
                        &mut ndarray::ArrayViewMut1::from(&mut part[class * d..(class + 1) * d]),
                    );
                }
            }
        });
        mean_plus_ridge(out, batch.len(), self.lambda, v);
    }

    /// `Σ p_k(1 − p_k) x_ij²` for class `k` and feature `j`, chunk by chunk in `f64`, then the
    /// mean plus `λ`.
    fn diagonal_from(&self, values: &[F], batch: &[usize], out: &mut [f64]) {
        let (k, d) = (self.n_classes, self.n_features());
        sum_vectors_by_range(batch.len(), out, |r, part| {
            let values = &values[k * r.start..k * r.end];
            for (&i, p) in batch[r].iter().zip(values.chunks_exact(k)) {
                for (class, &p) in p.iter().enumerate() {
                    let p = p.as_f64();
                    self.features.add_row_squares_to_wide(
                        i,
                        p * (1.0 - p),
                        &mut part[class * d..(class + 1) * d],
                    );
                }
            }
        });
        mean_plus_ridge_diagonal(out, batch.len(), self.lambda);
    }
}
