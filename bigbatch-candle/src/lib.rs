//! [Candle](https://github.com/huggingface/candle) networks as objectives of
//! [`bigbatch`]: the network's variables are the optimizer's parameter vector, and a closure
//! that returns the mean loss of a set of samples is the finite sum.
//!
//! Candle, like every deep-learning framework, computes the mean gradient of a batch with one
//! backward pass, not per-sample gradients. The big-batch test needs the spread of the
//! per-sample gradients as well, and there are two ways to have it:
//!
//! - **One pass** ([`OnePass`], [`CandleModel::one_pass`]): build the layers with parameters
//!   from [`per_sample`] (dense layers and 2-D convolutions, wrapping Candle's), which record on
//!   a [`Tape`] what the per-sample gradient norms need. A batch then costs one forward and one
//!   backward pass, plus the norms, and its variance has `n − 1` degrees of freedom.
//! - **Micro-batches** ([`MicroBatched`](bigbatch::MicroBatched),
//!   [`CandleModel::micro_batched`]): any network; each batch is evaluated in groups (one
//!   backward pass each), and the spread is estimated between the group means
//!   ([`bigbatch::GradStats::push_group`]), with one degree of freedom less than the group count
//!   ([`NETWORK_GROUPS`] is the network preset's).
//!
//! [`init::initialize`] draws the variables from a seed (Candle's CPU generator cannot be
//! seeded), [`data`] turns a core-crate data set into tensors, [`max_pool2d`] pools with
//! correct gradients, and [`check`] compares a network's gradients with finite differences.
//!
//! # Example
//! A linear layer fitted to `y = 2x₀ − x₁ + 0.5` with one pass per batch:
//! ```
//! use bigbatch::{BigBatchSgd};
//! use bigbatch_candle::{CandleModel, Tape, init, per_sample};
//! use candle_core::{DType, Device, Module, Tensor};
//! use candle_nn::{VarBuilder, VarMap};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dev = Device::Cpu;
//! let x: Vec<f32> = (0..800).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
//! let y: Vec<f32> = x.chunks(2).map(|p| 2.0 * p[0] - p[1] + 0.5).collect();
//! let (x, y) = (Tensor::from_vec(x, (400, 2), &dev)?, Tensor::from_vec(y, (400, 1), &dev)?);
//!
//! let (varmap, tape) = (VarMap::new(), Tape::new());
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
//! let layer = per_sample::linear(2, 1, vb.pp("fit"), &tape)?;
//! init::initialize(&varmap, 0)?; // the same start on every run
//! let model = CandleModel::from_varmap(&varmap, 400, |idx: &Tensor| {
//!     let (xb, yb) = (x.index_select(idx, 0)?, y.index_select(idx, 0)?);
//!     layer.forward(&xb)?.sub(&yb)?.sqr()?.mean_all()
//! })?
//! .one_pass(&tape)?;
//! let w0 = model.model().parameters()?;
//! let report = BigBatchSgd::builder().build()?.minimize(&model, w0)?;
//! model.model().set_parameters(&report.w)?; // the layer now holds the fit
//! let w = layer.inner().weight().flatten_all()?.to_vec1::<f32>()?;
//! assert!((w[0] - 2.0).abs() < 1e-3 && (w[1] + 1.0).abs() < 1e-3, "{w:?}");
//! # Ok(())
//! # }
//! ```

pub mod check;
pub mod data;
pub mod idx;
pub mod init;
mod model;
mod norms;
mod one_pass;
pub mod per_sample;
pub mod pool;

pub use model::{CandleModel, NETWORK_GROUPS};
pub use one_pass::OnePass;
pub use per_sample::Tape;
pub use pool::max_pool2d;

/// The README's code blocks, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// What can go wrong in the adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Candle failed (a shape, a device, a file).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// The optimizer refused something.
    #[error(transparent)]
    BigBatch(#[from] bigbatch::Error),
    /// The model cannot be optimized as given.
    #[error("invalid model: {0}")]
    Model(String),
}
