//! Per-sample gradient norms from one backward pass.
//!
//! A framework's backward pass gives the mean gradient of a batch. The big-batch test needs, in
//! addition, the spread of the per-sample gradients, and that only through one number: the sum
//! of their squared norms `Σ_i ‖∇f_i‖²` (with the mean, it gives the variance with `n − 1`
//! degrees of freedom). For the layers that carry most networks' parameters, that sum is
//! available from quantities the backward pass computes anyway (Goodfellow 2015, "Efficient
//! per-example gradient computations"; BackPACK computes the same for PyTorch):
//!
//! - **Dense**, `z_i = W a_i + b` on a sample's input `a_i`: the sample's gradients are
//!   `δ_i a_iᵀ` and `δ_i`, with `δ_i = ∂f_i/∂z_i`, so
//!   `‖∇_W f_i‖² + ‖∇_b f_i‖² = ‖δ_i‖² (‖a_i‖² + 1)`. On inputs with positions
//!   (`(n, t, in)`: the layer applied to each of `t` rows) the gradient is `Δ_iᵀ A_i`, whose norm
//!   is computed as a product of the two `(t, ·)` matrices.
//! - **2-D convolution**: the gradient of the kernel is `Σ_p δ_{i,p} u_{i,p}ᵀ` over the output
//!   positions `p`, with `u_{i,p}` the input patch seen at `p`; the adapter unfolds the input into
//!   its patches `U_i` and takes `‖Δ_iᵀ U_i‖²` with one batched product (what the backward pass
//!   spends on the kernel's gradient), and the bias's `‖Σ_p δ_{i,p}‖²`.
//!
//! Candle keeps the gradients of variables only, so `δ` is the gradient of a zero variable (a
//! *probe*) added to the layer's output; for a mean loss its rows are `δ_i / n`.
//!
//! [`Dense`] and [`Conv2d`] wrap Candle's layers and record, while a [`Tape`] records, their
//! input and probe. [`OnePass`](crate::OnePass) runs the forward pass with the tape on, one
//! backward pass, and sums the layers' norms.
//!
//! # What is covered
//! - Dense layers (with or without bias), on inputs `(n, in)` or `(n, …, in)`.
//! - 2-D convolutions with any stride, padding and dilation, with or without bias, in one group.
//! - Anything without parameters is free: activations, pooling, reshapes, dropout with a seeded
//!   mask, the loss.
//! - Not covered: layers that couple the samples of a batch (batch normalization: a sample's
//!   gradient then depends on the others, and the per-sample variance is not defined by one
//!   pass), a layer whose parameters are used twice in one forward pass (shared weights: the
//!   sample's gradient is the sum of both uses and its norm is not the sum of their norms),
//!   grouped convolutions, embeddings and any other layer with parameters. A network with any of
//!   them keeps [`MicroBatched`](bigbatch::MicroBatched) ([`CandleModel::micro_batched`]); a
//!   [`OnePass`](crate::OnePass) model refuses it when it is built, naming the variable.
//!
//! [`CandleModel::micro_batched`]: crate::CandleModel::micro_batched

use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::{Module, Tensor, TensorId, Var};
use candle_nn::{Conv2dConfig, VarBuilder};

/// Records, while on, what the per-sample gradient norms of the layers built on it need: each
/// layer's input and a zero variable added to its output. Off (as built), the layers run as
/// Candle's own, at the same cost.
///
/// A tape is cheap to clone (a shared handle): the layers and the model hold clones of one
/// tape.
#[derive(Debug, Clone, Default)]
pub struct Tape {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    recording: bool,
    records: Vec<Record>,
}

/// One layer's pass, recorded.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) kind: Kind,
    pub(crate) input: Tensor,
    pub(crate) probe: Var,
    pub(crate) params: Vec<TensorId>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Dense { bias: bool },
    Conv2d { cfg: Geometry, bias: bool },
}

/// A convolution's geometry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub(crate) padding: usize,
    pub(crate) stride: usize,
    pub(crate) dilation: usize,
    pub(crate) kh: usize,
    pub(crate) kw: usize,
}

impl Tape {
    /// A tape that is off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the layers record.
    pub fn is_recording(&self) -> bool {
        self.lock().recording
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in a forward pass leaves the records incomplete, never inconsistent: the next
        // recording starts from an empty list.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts recording (dropping what an earlier, interrupted pass left); the recording stops
    /// when the guard is dropped or [`Recording::finish`]ed.
    pub(crate) fn record(&self) -> Recording<'_> {
        let mut inner = self.lock();
        inner.records.clear();
        inner.recording = true;
        Recording { tape: self }
    }

    /// The layer's output `z`, with a probe added when the tape records.
    fn pass(
        &self,
        kind: Kind,
        input: &Tensor,
        z: Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let mut inner = self.lock();
        if !inner.recording {
            return Ok(z);
        }
        let probe = Var::zeros(z.shape(), z.dtype(), z.device())?;
        let z = z.add(probe.as_tensor())?;
        let mut params = vec![weight.id()];
        params.extend(bias.map(Tensor::id));
        inner.records.push(Record {
            kind,
            input: input.detach(),
            probe,
            params,
        });
        Ok(z)
    }
}

/// The tape recording, until dropped.
pub(crate) struct Recording<'a> {
    tape: &'a Tape,
}

impl Recording<'_> {
    /// Stops recording and hands over the records.
    pub(crate) fn finish(self) -> Vec<Record> {
        let mut inner = self.tape.lock();
        inner.recording = false;
        std::mem::take(&mut inner.records)
    }
}

impl Drop for Recording<'_> {
    fn drop(&mut self) {
        self.tape.lock().recording = false;
    }
}

/// A dense layer (Candle's [`Linear`](candle_nn::Linear)) that records on a [`Tape`].
#[derive(Debug, Clone)]
pub struct Dense {
    layer: candle_nn::Linear,
    tape: Tape,
}

impl Dense {
    /// Wraps `layer`, recording on `tape`.
    pub fn new(layer: candle_nn::Linear, tape: &Tape) -> Self {
        Dense {
            layer,
            tape: tape.clone(),
        }
    }

    /// Candle's layer.
    pub fn inner(&self) -> &candle_nn::Linear {
        &self.layer
    }
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let z = self.layer.forward(x)?;
        let bias = self.layer.bias();
        let kind = Kind::Dense {
            bias: bias.is_some(),
        };
        self.tape.pass(kind, x, z, self.layer.weight(), bias)
    }
}

/// A 2-D convolution (Candle's [`Conv2d`](candle_nn::Conv2d)) that records on a [`Tape`].
#[derive(Debug, Clone)]
pub struct Conv2d {
    layer: candle_nn::Conv2d,
    geometry: Geometry,
    tape: Tape,
}

impl Conv2d {
    /// Wraps `layer`, recording on `tape`.
    ///
    /// # Errors
    /// A convolution in more than one group is not covered (see the [module docs](self)).
    pub fn new(layer: candle_nn::Conv2d, tape: &Tape) -> candle_core::Result<Self> {
        let cfg = *layer.config();
        if cfg.groups != 1 {
            return Err(candle_core::Error::Msg(format!(
                "per-sample norms of a convolution in {} groups are not covered; \
                 evaluate the network in micro-batches",
                cfg.groups
            )));
        }
        let dims = layer.weight().dims4()?;
        Ok(Conv2d {
            geometry: Geometry {
                padding: cfg.padding,
                stride: cfg.stride,
                dilation: cfg.dilation,
                kh: dims.2,
                kw: dims.3,
            },
            layer,
            tape: tape.clone(),
        })
    }

    /// Candle's layer.
    pub fn inner(&self) -> &candle_nn::Conv2d {
        &self.layer
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let z = self.layer.forward(x)?;
        let bias = self.layer.bias();
        let kind = Kind::Conv2d {
            cfg: self.geometry,
            bias: bias.is_some(),
        };
        self.tape.pass(kind, x, z, self.layer.weight(), bias)
    }
}

/// A dense layer `in → out` with bias, its variables made by `vb` as Candle's
/// [`linear`](candle_nn::linear()) makes them, recording on `tape`.
///
/// # Errors
/// As Candle's constructor.
pub fn linear(
    in_dim: usize,
    out_dim: usize,
    vb: VarBuilder,
    tape: &Tape,
) -> candle_core::Result<Dense> {
    Ok(Dense::new(candle_nn::linear(in_dim, out_dim, vb)?, tape))
}

/// A dense layer without bias, as Candle's [`linear_no_bias`](candle_nn::linear_no_bias).
///
/// # Errors
/// As Candle's constructor.
pub fn linear_no_bias(
    in_dim: usize,
    out_dim: usize,
    vb: VarBuilder,
    tape: &Tape,
) -> candle_core::Result<Dense> {
    Ok(Dense::new(
        candle_nn::linear_no_bias(in_dim, out_dim, vb)?,
        tape,
    ))
}

/// A 2-D convolution with bias, as Candle's [`conv2d`](candle_nn::conv2d()), recording on `tape`.
///
/// # Errors
/// As Candle's constructor, and [`Conv2d::new`].
pub fn conv2d(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    cfg: Conv2dConfig,
    vb: VarBuilder,
    tape: &Tape,
) -> candle_core::Result<Conv2d> {
    Conv2d::new(
        candle_nn::conv2d(in_channels, out_channels, kernel, cfg, vb)?,
        tape,
    )
}

/// A 2-D convolution without bias, as Candle's [`conv2d_no_bias`](candle_nn::conv2d_no_bias).
///
/// # Errors
/// As Candle's constructor, and [`Conv2d::new`].
pub fn conv2d_no_bias(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    cfg: Conv2dConfig,
    vb: VarBuilder,
    tape: &Tape,
) -> candle_core::Result<Conv2d> {
    Conv2d::new(
        candle_nn::conv2d_no_bias(in_channels, out_channels, kernel, cfg, vb)?,
        tape,
    )
}

pub(crate) use crate::norms::{covered, sq_norms};
