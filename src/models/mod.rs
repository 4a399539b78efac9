//! Bundled models, each an [`Objective`](crate::Objective) for `f32` and `f64` on dense or
//! sparse data, with a batched path that never builds a per-sample gradient vector.
//!
//! Every model's loss is the mean over samples plus `(λ/2)‖w‖²`. There is no implicit
//! intercept: add a constant feature with [`Dataset::with_bias`](crate::data::Dataset::with_bias);
//! its weight is regularized like every other.
//!
//! | model | per-sample loss `f_i(w)` (before `+ (λ/2)‖w‖²`) | targets |
//! |---|---|---|
//! | [`LeastSquares`] | `(x_i·w − y_i)²/2` | real |
//! | [`Logistic`] | `log(1 + exp(−y_i x_i·w))` | ±1 or 0/1 |
//! | [`Huber`] | `h_δ(x_i·w − y_i)`, `h_δ(r) = r²/2` for `|r| ≤ δ`, else `δ(|r| − δ/2)` | real |
//! | [`Softmax`] | `logsumexp_k(x_i·W_k) − x_i·W_{y_i}`, one weight vector per class | 0..K−1 |
//! | [`Mlp`] | softmax cross-entropy of a 1- or 2-hidden-layer network (tanh or ReLU) | 0..K−1 |
//!
//! # Fast batched statistics
//! For a linear model the gradient of sample `i` is `φ'(z_i) x_i + λw` with `z_i = x_i·w`,
//! so one read of each row gives the loss, `Σ φ'(z_i) x_i` and, with `‖x_i‖²` cached at
//! construction, `Σ‖∇f_i‖²`-type sums; the softmax model does the same with the
//! class-probability residual `p_i − e_{y_i}`, since `‖(p − e_y) ⊗ x‖² = ‖p − e_y‖²‖x‖²`.
//! Rows are processed in chunks of 256 whose statistics are merged exactly along a fixed tree,
//! in parallel with the `rayon` feature (see [`parallel`](crate::parallel)). The spread within
//! a chunk is taken from sums (`Σ‖g_i‖² − m‖ḡ‖²`), which loses relative precision only when the
//! mean gradient dwarfs the spread, that is, when the big-batch test passes by a wide margin, so
//! the decision of the test does not suffer from it.

mod curvature;
mod line;
mod linear;
mod mlp;
mod softmax;

pub use linear::{
    Huber, HuberLoss, LeastSquares, Linear, LogLoss, Logistic, ScalarLoss, SquaredLoss,
};
pub use mlp::{Activation, Mlp};
pub use softmax::Softmax;

use ndarray::{Array1, ArrayRef1, Zip};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::stats::GradStats;

/// `(λ/2)‖w‖²`.
/// The index of the largest of `scores` (the first one on ties): a predicted class.
pub(crate) fn argmax<F: PartialOrd + Copy>(scores: impl IntoIterator<Item = F>) -> usize {
    let mut best = (0, None);
    for (k, v) in scores.into_iter().enumerate() {
        if best.1.is_none_or(|b| v > b) {
            best = (k, Some(v));
        }
    }
    best.0
}

pub(crate) fn ridge_penalty<F: Float>(lambda: F, w: &ArrayRef1<F>) -> F {
    F::from_f64(0.5) * lambda * w.dot(w)
}

/// Refuses a data set with no samples or no features.
pub(crate) fn check_not_empty<F: Float>(data: &Dataset<F>) -> Result<()> {
    if data.n_samples() == 0 || data.n_features() == 0 {
        return Err(Error::EmptyObjective {
            n_samples: data.n_samples(),
            dim: data.n_features(),
        });
    }
    Ok(())
}

/// The targets as class ids `0..n_classes`, or an error naming the first sample that is not.
pub(crate) fn class_labels<F: Float>(data: &Dataset<F>, n_classes: usize) -> Result<Vec<usize>> {
    if n_classes < 2 {
        return Err(Error::invalid("n_classes", n_classes, "at least 2"));
    }
    check_not_empty(data)?;
    data.targets()
        .iter()
        .enumerate()
        .map(|(i, &y)| {
            let y = y.as_f64();
            if y < 0.0 || y.fract() != 0.0 || y >= n_classes as f64 {
                Err(Error::InvalidData {
                    what: format!("label {y} of sample {i} is not a class id in 0..{n_classes}"),
                })
            } else {
                Ok(y as usize)
            }
        })
        .collect()
}

/// Merges a chunk of `count` samples whose per-sample gradients are `d_i + λw`, given
/// `Σ d_i` (in `sum`, which is overwritten), `Σ‖d_i‖²` and the sum of the data losses
/// `Σ f_i − (λ/2)‖w‖²`, all accumulated in `f64`. The shift `λw` moves the mean but not the
/// spread.
pub(crate) fn merge_chunk<F: Float>(
    stats: &mut GradStats<F>,
    count: usize,
    sum: &mut Array1<f64>,
    sq_norm_sum: f64,
    data_loss_sum: f64,
    lambda: F,
    w: &ArrayRef1<F>,
) {
    let m = count as f64;
    let m2 = (sq_norm_sum - sum.dot(sum) / m).max(0.0);
    let lambda = lambda.as_f64();
    Zip::from(&mut *sum)
        .and(w)
        .for_each(|s, &w| *s = *s / m + lambda * w.as_f64());
    stats.merge_parts(
        count,
        sum,
        m2,
        Some(chunk_loss(data_loss_sum, count, w, lambda)),
    );
}

/// The loss sum of a chunk of `count` samples, `Σ f_i = data_loss_sum + count·(λ/2)‖w‖²`: the
/// one formula behind both a chunk's statistics and a batch loss, so that the loss of a batch
/// is the same number whichever of the two computed it.
pub(crate) fn chunk_loss<F: Float>(
    data_loss_sum: f64,
    count: usize,
    w: &ArrayRef1<F>,
    lambda: f64,
) -> f64 {
    let penalty = 0.5 * lambda * F::wide_dot(w, w);
    data_loss_sum + penalty * count as f64
}

/// The mean loss of `batch` from per-chunk data-loss sums, added along the same tree and with
/// the same per-chunk penalty as [`merge_chunk`]: bit for bit the loss that the batch's
/// statistics report at the same point.
pub(crate) fn batch_mean_loss<F: Float>(
    batch: &[usize],
    w: &ArrayRef1<F>,
    lambda: F,
    chunk_data_loss: impl Fn(&[usize]) -> f64 + Sync,
) -> F {
    mean_loss_by_position(batch.len(), w, lambda, |r| chunk_data_loss(&batch[r]))
}

/// As [`batch_mean_loss`], with each chunk given by its positions `range` in a batch of `n`
/// samples (for losses computed from values stored per position, as along a line).
pub(crate) fn mean_loss_by_position<F: Float>(
    n: usize,
    w: &ArrayRef1<F>,
    lambda: F,
    chunk_data_loss: impl Fn(std::ops::Range<usize>) -> f64 + Sync,
) -> F {
    if n == 0 {
        return F::zero();
    }
    let lambda = lambda.as_f64();
    let sum = crate::parallel::sum_ranges(n, |r| {
        let count = r.len();
        chunk_loss(chunk_data_loss(r), count, w, lambda)
    });
    F::from_f64(sum / n as f64)
}
