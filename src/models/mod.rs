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
//! Rows are processed in chunks of 256 whose statistics are merged exactly. The spread within
//! a chunk is taken from sums (`Σ‖g_i‖² − m‖ḡ‖²`), which loses relative precision only when the
//! mean gradient dwarfs the spread, that is, when the big-batch test passes by a wide margin, so
//! the decision of the test does not suffer from it.

mod linear;
mod mlp;
mod softmax;

pub use linear::{
    Huber, HuberLoss, LeastSquares, Linear, LogLoss, Logistic, ScalarLoss, SquaredLoss,
};
pub use mlp::{Activation, Mlp};
pub use softmax::Softmax;

/// Rows per chunk of the batched statistics.
pub(crate) const CHUNK: usize = 256;
