//! The per-sample squared gradient norms of the layers a [`Tape`](crate::Tape) recorded (see
//! [`per_sample`](crate::per_sample) for the formulas).

use std::collections::HashSet;

use candle_core::{DType, Storage, Tensor, TensorId, backprop::GradStore};

use crate::per_sample::{Geometry, Kind, Record};

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
