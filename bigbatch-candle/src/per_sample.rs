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

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::{DType, Module, Storage, Tensor, TensorId, Var, backprop::GradStore};
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
    kind: Kind,
    input: Tensor,
    probe: Var,
    params: Vec<TensorId>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Dense { bias: bool },
    Conv2d { cfg: Geometry, bias: bool },
}

/// A convolution's geometry.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    padding: usize,
    stride: usize,
    dilation: usize,
    kh: usize,
    kw: usize,
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
/// [`linear`](candle_nn::linear) makes them, recording on `tape`.
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

/// A 2-D convolution with bias, as Candle's [`conv2d`](candle_nn::conv2d), recording on `tape`.
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

/// The parameters the records cover, each once.
///
/// # Errors
/// A message naming the problem if a layer's parameters were used twice.
pub(crate) fn covered(records: &[Record]) -> Result<HashSet<TensorId>, String> {
    let mut seen = HashSet::new();
    for (k, r) in records.iter().enumerate() {
        for &id in &r.params {
            if !seen.insert(id) {
                return Err(format!(
                    "the parameters of recorded layer {k} were used twice in one forward pass \
                     (shared weights): their per-sample norms are not covered"
                ));
            }
        }
    }
    Ok(seen)
}

/// The per-sample squared gradient norms `‖∇f_i‖²` of the `n` samples of a pass over the
/// recorded layers, for a loss that is the mean of the samples' losses (the probes' gradients
/// are `δ_i / n`). A layer whose output did not reach the loss adds nothing.
pub(crate) fn sq_norms(
    records: &[Record],
    grads: &GradStore,
    n: usize,
) -> candle_core::Result<Vec<f64>> {
    let mut total = vec![0.0f64; n];
    for r in records {
        let Some(gz) = grads.get(r.probe.as_tensor()) else {
            continue;
        };
        if r.input.dim(0)? != n || gz.dim(0)? != n {
            return Err(candle_core::Error::Msg(format!(
                "a recorded layer's input has {} rows for {n} samples: the first dimension \
                 must be the sample",
                r.input.dim(0)?
            )));
        }
        if let Kind::Dense { bias } = r.kind {
            // Inputs (n, in): ‖δ_i‖²(‖a_i‖² + 1) from the two tensors read in place.
            if let (Some(d2), Some(a2)) = (row_sq_sums(gz), row_sq_sums(&r.input)) {
                let b = if bias { 1.0 } else { 0.0 };
                for ((t, d), a) in total.iter_mut().zip(d2).zip(a2) {
                    *t += d * (a + b);
                }
                continue;
            }
        }
        let part = match r.kind {
            Kind::Dense { bias } => dense(&r.input, gz, bias)?,
            Kind::Conv2d { cfg, bias } => conv(&r.input, gz, cfg, bias)?,
        };
        let part = part.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        for (t, p) in total.iter_mut().zip(part) {
            *t += p;
        }
    }
    let scale = (n * n) as f64;
    total.iter_mut().for_each(|t| *t *= scale);
    Ok(total)
}

/// The sum of squares of each row of a 2-D `f32` tensor in the CPU's memory, contiguous, read
/// in place and summed in `f64`; `None` for any other tensor.
fn row_sq_sums(t: &Tensor) -> Option<Vec<f64>> {
    let (rows, cols) = t.dims2().ok()?;
    let (storage, layout) = t.storage_and_layout();
    let (Storage::Cpu(cpu), Some((start, end))) = (&*storage, layout.contiguous_offsets()) else {
        return None;
    };
    let s = &cpu.as_slice::<f32>().ok()?[start..end];
    if cols == 0 {
        return Some(vec![0.0; rows]);
    }
    Some(
        s.chunks_exact(cols)
            .map(|row| {
                // Four partial sums: the additions do not wait on each other.
                let mut acc = [0.0f64; 4];
                let quads = row.chunks_exact(4);
                let tail: f64 = quads
                    .remainder()
                    .iter()
                    .map(|&v| f64::from(v).powi(2))
                    .sum();
                for q in quads {
                    for (a, &v) in acc.iter_mut().zip(q) {
                        *a += f64::from(v) * f64::from(v);
                    }
                }
                (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
            })
            .collect(),
    )
}

/// `‖∇_W‖² + ‖∇_b‖²` of each sample of a dense layer (scaled by `1/n²`), shape `(n,)`.
fn dense(a: &Tensor, gz: &Tensor, bias: bool) -> candle_core::Result<Tensor> {
    let n = a.dim(0)?;
    if a.rank() == 2 {
        let d2 = gz.sqr()?.sum(1)?;
        let mut a2 = a.to_dtype(gz.dtype())?.sqr()?.sum(1)?;
        if bias {
            a2 = (a2 + 1.0)?;
        }
        return d2.mul(&a2);
    }
    // Positions: (n, t, in) and (n, t, out).
    let a = a
        .to_dtype(gz.dtype())?
        .reshape((n, (), a.dim(candle_core::D::Minus1)?))?;
    let gz = gz.reshape((n, (), gz.dim(candle_core::D::Minus1)?))?;
    let w = gz.t()?.contiguous()?.matmul(&a.contiguous()?)?; // (n, out, in)
    let mut s = w.sqr()?.sum((1, 2))?;
    if bias {
        s = (s + gz.sum(1)?.sqr()?.sum(1)?)?;
    }
    Ok(s)
}

/// `‖∇_K‖² + ‖∇_b‖²` of each sample of a convolution (scaled by `1/n²`), shape `(n,)`.
fn conv(x: &Tensor, gz: &Tensor, g: Geometry, bias: bool) -> candle_core::Result<Tensor> {
    let (n, oc, oh, ow) = gz.dims4()?;
    let u = unfold(x, g, oh, ow)?.to_dtype(gz.dtype())?; // (n, P, c·kh·kw)
    let d = gz.reshape((n, oc, oh * ow))?;
    let k = d.matmul(&u)?; // (n, oc, c·kh·kw)
    let mut s = k.sqr()?.sum((1, 2))?;
    if bias {
        s = (s + d.sum(2)?.sqr()?.sum(1)?)?;
    }
    Ok(s)
}

/// The input patches of a convolution, `(n, oh·ow, c·kh·kw)` in the kernel's order (channel,
/// row, column), zero where the padding is; built on the host in `f32`.
fn unfold(x: &Tensor, g: Geometry, oh: usize, ow: usize) -> candle_core::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let xs = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let ckk = c * g.kh * g.kw;
    let mut u = vec![0.0f32; n * oh * ow * ckk];
    for (i, ui) in u.chunks_exact_mut(oh * ow * ckk).enumerate() {
        let xi = &xs[i * c * h * w..(i + 1) * c * h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let row = &mut ui[(oy * ow + ox) * ckk..(oy * ow + ox + 1) * ckk];
                for ch in 0..c {
                    for ky in 0..g.kh {
                        let y = (oy * g.stride + ky * g.dilation).wrapping_sub(g.padding);
                        if y >= h {
                            continue;
                        }
                        let base = (ch * g.kh + ky) * g.kw;
                        for kx in 0..g.kw {
                            let xx = (ox * g.stride + kx * g.dilation).wrapping_sub(g.padding);
                            if xx < w {
                                row[base + kx] = xi[(ch * h + y) * w + xx];
                            }
                        }
                    }
                }
            }
        }
    }
    Tensor::from_vec(u, (n, oh * ow, ckk), x.device())
}
