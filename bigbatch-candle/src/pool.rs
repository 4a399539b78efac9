//! Max pooling whose gradient is right: a replacement for Candle's `Tensor::max_pool2d`.
//!
//! # Why not Candle's own
//! In Candle 0.11.1 the backward pass of `Tensor::max_pool2d` (`Op::MaxPool2D` in
//! candle-core's `src/backprop.rs`) builds a mask of the cells equal to their window's maximum,
//! takes the window mean of that mask (the share `m/k²` of cells that tie for the maximum) and
//! multiplies the upstream gradient by it, where it should divide by the number of maxima `m`.
//! With 2×2 windows a window with one maximum passes a quarter of its gradient, and a window
//! whose four cells tie (the zero backgrounds of images after a ReLU) passes four times too much
//! in all. The upsampling it uses also sends the gradient of an odd-sized input (11 pooled to 5)
//! to the wrong cells. A network trained through it trains on wrong gradients, silently.
//!
//! The smallest reproduction, 2×2 pooling of a 4×4 input with distinct values:
//!
//! ```text
//! x = [ 1  2  3  4 ]     max_pool2d(x, 2) = [  6  8 ]
//!     [ 5  6  7  8 ]                        [ 14 16 ]
//!     [ 9 10 11 12 ]
//!     [13 14 15 16 ]     ∂ sum(max_pool2d(x, 2)) / ∂x
//!                          expected: 1 at 6, 8, 14 and 16, 0 elsewhere
//!                          Candle 0.11.1: 0.25 at 6, 8, 14 and 16, 0 elsewhere
//! ```
//!
//! The test `candles_max_pool_backward_is_still_wrong` in `tests/pool.rs` checks exactly this;
//! it fails once Candle's op is correct, and then this module can go.
//!
//! # What this op does
//! [`max_pool2d`] pools `(n, c, h, w)` tensors over `kh × kw` windows with stride equal to the
//! window (the only case Candle's backward supports), dropping trailing rows and columns that
//! do not fill a window, as Candle's forward pass does (`h_out = ⌊h/kh⌋`). Its backward pass sends
//! each window's gradient to one cell: its first maximum in row-major order, as PyTorch and
//! TensorFlow do (the result is a valid subgradient at ties, and the exact gradient elsewhere).
//! A window holding a NaN pools to NaN, and its gradient goes to that cell, so a NaN is never
//! hidden by pooling.
//!
//! On the CPU both passes are one loop each, over `f32`, `f64`, `f16` and `bf16`. On other
//! devices it is composed of Candle tensor operations (an argmax per window and a mask), with
//! the same values and gradients for finite inputs.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, D, Layout, Shape, Tensor, ToUsize2, WithDType, bail};

/// Max pooling over `kernel` windows (`2`, or `(kh, kw)`) with stride equal to the window, for
/// `(n, c, h, w)` tensors: Candle's `x.max_pool2d(kernel)` with a correct backward pass (see the
/// [module docs](self) for the Candle bug it replaces).
///
/// ```
/// use bigbatch_candle::max_pool2d;
/// use candle_core::{Device, Tensor, Var};
///
/// # fn main() -> candle_core::Result<()> {
/// let x = Var::from_vec((1..=16).map(|v| v as f32).collect::<Vec<_>>(), (1, 1, 4, 4), &Device::Cpu)?;
/// let y = max_pool2d(x.as_tensor(), 2)?;
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, [6.0, 8.0, 14.0, 16.0]);
/// let grads = y.sum_all()?.backward()?;
/// let g = grads.get(x.as_tensor()).expect("x has a gradient").flatten_all()?.to_vec1::<f32>()?;
/// assert_eq!(g.iter().sum::<f32>(), 4.0); // one unit of gradient per window, on its maximum
/// assert_eq!((g[5], g[7], g[13], g[15]), (1.0, 1.0, 1.0, 1.0));
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// If `x` is not 4-dimensional, a window dimension is 0 or larger than the input's, or (on the
/// CPU) its type is not a float type.
pub fn max_pool2d<K: ToUsize2>(x: &Tensor, kernel: K) -> candle_core::Result<Tensor> {
    let kernel = kernel.to_usize2();
    let (_, _, h, w) = x.dims4()?;
    if kernel.0 == 0 || kernel.1 == 0 || kernel.0 > h || kernel.1 > w {
        bail!("max_pool2d: a {kernel:?} window does not fit an input of {h}×{w}");
    }
    if x.device().is_cpu() {
        x.apply_op1(MaxPool { kernel })
    } else {
        by_tensor_ops(x, kernel)
    }
}

/// The pooling op of the CPU.
#[derive(Debug, Clone, Copy)]
struct MaxPool {
    kernel: (usize, usize),
}

/// Its backward pass: `(x, upstream gradient) → gradient of x`.
#[derive(Debug, Clone, Copy)]
struct MaxPoolBackward {
    kernel: (usize, usize),
}

/// The strided view of one `(n, c, h, w)` argument.
struct View<'a, T> {
    data: &'a [T],
    start: usize,
    stride: [usize; 4],
}

impl<'a, T: Copy> View<'a, T> {
    fn new(data: &'a [T], layout: &Layout) -> candle_core::Result<Self> {
        let s = layout.stride();
        if s.len() != 4 {
            bail!(
                "max_pool2d: expected a 4-dimensional tensor, got {:?}",
                layout.dims()
            );
        }
        Ok(View {
            data,
            start: layout.start_offset(),
            stride: [s[0], s[1], s[2], s[3]],
        })
    }
    fn at(&self, b: usize, c: usize, i: usize, j: usize) -> T {
        let s = &self.stride;
        self.data[self.start + b * s[0] + c * s[1] + i * s[2] + j * s[3]]
    }
}

/// Where the maximum of the window at `(i0, j0)` of plane `(b, c)` is: its first maximum in
/// row-major order, or its first NaN.
fn window_max<T: WithDType>(
    x: &View<T>,
    (b, c): (usize, usize),
    (i0, j0): (usize, usize),
    (kh, kw): (usize, usize),
) -> (usize, usize, T) {
    let mut best = (i0, j0, x.at(b, c, i0, j0));
    for i in i0..i0 + kh {
        for j in j0..j0 + kw {
            let v = x.at(b, c, i, j);
            let v_is_nan = v.partial_cmp(&v).is_none();
            let best_is_nan = best.2.partial_cmp(&best.2).is_none();
            if !best_is_nan && (v_is_nan || v > best.2) {
                best = (i, j, v);
            }
        }
    }
    best
}

fn forward<T: WithDType>(
    x: &[T],
    layout: &Layout,
    kernel: (usize, usize),
) -> candle_core::Result<(Vec<T>, Shape)> {
    let (n, c, h, w) = layout.shape().dims4()?;
    let (ho, wo) = (h / kernel.0, w / kernel.1);
    let x = View::new(x, layout)?;
    let mut out = Vec::with_capacity(n * c * ho * wo);
    for b in 0..n {
        for ch in 0..c {
            for i in 0..ho {
                for j in 0..wo {
                    let (_, _, v) = window_max(&x, (b, ch), (i * kernel.0, j * kernel.1), kernel);
                    out.push(v);
                }
            }
        }
    }
    Ok((out, Shape::from((n, c, ho, wo))))
}

fn backward<T: WithDType>(
    x: &[T],
    x_layout: &Layout,
    grad: &[T],
    grad_layout: &Layout,
    kernel: (usize, usize),
) -> candle_core::Result<(Vec<T>, Shape)> {
    let (n, c, h, w) = x_layout.shape().dims4()?;
    let (ho, wo) = (h / kernel.0, w / kernel.1);
    if grad_layout.shape().dims4()? != (n, c, ho, wo) {
        bail!(
            "max_pool2d backward: a gradient of shape {:?} for an output of ({n}, {c}, {ho}, {wo})",
            grad_layout.dims()
        );
    }
    let (x, grad) = (View::new(x, x_layout)?, View::new(grad, grad_layout)?);
    let mut out = vec![T::zero(); n * c * h * w];
    for b in 0..n {
        for ch in 0..c {
            let plane = &mut out[(b * c + ch) * h * w..][..h * w];
            for i in 0..ho {
                for j in 0..wo {
                    let (mi, mj, _) = window_max(&x, (b, ch), (i * kernel.0, j * kernel.1), kernel);
                    plane[mi * w + mj] += grad.at(b, ch, i, j);
                }
            }
        }
    }
    Ok((out, Shape::from((n, c, h, w))))
}

impl candle_core::CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "bigbatch-max-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let k = self.kernel;
        Ok(match s {
            CpuStorage::F32(x) => owned(forward(x, l, k)?),
            CpuStorage::F64(x) => owned(forward(x, l, k)?),
            CpuStorage::F16(x) => owned(forward(x, l, k)?),
            CpuStorage::BF16(x) => owned(forward(x, l, k)?),
            other => bail!("max_pool2d: {:?} is not a float type", other.dtype()),
        })
    }

    fn bwd(&self, x: &Tensor, _: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let kernel = self.kernel;
        Ok(Some(x.apply_op2_no_bwd(grad, &MaxPoolBackward { kernel })?))
    }
}

impl candle_core::CustomOp2 for MaxPoolBackward {
    fn name(&self) -> &'static str {
        "bigbatch-max-pool2d-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let k = self.kernel;
        Ok(match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(g)) => owned(backward(x, l1, g, l2, k)?),
            (CpuStorage::F64(x), CpuStorage::F64(g)) => owned(backward(x, l1, g, l2, k)?),
            (CpuStorage::F16(x), CpuStorage::F16(g)) => owned(backward(x, l1, g, l2, k)?),
            (CpuStorage::BF16(x), CpuStorage::BF16(g)) => owned(backward(x, l1, g, l2, k)?),
            (a, b) => bail!(
                "max_pool2d backward: an input of {:?} and a gradient of {:?}",
                a.dtype(),
                b.dtype()
            ),
        })
    }
}

fn owned<T: WithDType>((data, shape): (Vec<T>, Shape)) -> (CpuStorage, Shape) {
    (T::to_cpu_storage_owned(data), shape)
}

/// The same pooling from Candle's tensor operations, for devices other than the CPU: the
/// windows as a last axis, a one-hot mask of each window's first maximum (its argmax, no
/// gradient), and the masked sum, whose gradient is the mask.
pub(crate) fn by_tensor_ops(x: &Tensor, (kh, kw): (usize, usize)) -> candle_core::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (ho, wo) = (h / kh, w / kw);
    let windows = x
        .narrow(2, 0, ho * kh)?
        .narrow(3, 0, wo * kw)?
        .reshape((n, c, ho, kh, wo, kw))?
        .permute((0, 1, 2, 4, 3, 5))?
        .reshape((n, c, ho, wo, kh * kw))?;
    let first_max = windows.detach().argmax_keepdim(D::Minus1)?;
    let cells =
        Tensor::arange(0u32, (kh * kw) as u32, x.device())?.reshape((1, 1, 1, 1, kh * kw))?;
    let mask = cells.broadcast_eq(&first_max)?;
    let zeros = windows.zeros_like()?;
    mask.where_cond(&windows, &zeros)?.sum(D::Minus1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The composition used off the CPU gives the CPU op's values and gradients.
    #[test]
    fn the_portable_composition_agrees_with_the_cpu_op() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (shape, kernel) in [((2, 3, 8, 8), (2, 2)), ((1, 2, 11, 9), (2, 3))] {
            let n = shape.0 * shape.1 * shape.2 * shape.3;
            // Distinct values in a scrambled order, and a block of ties.
            let mut v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1009) as f32 / 100.0).collect();
            v[..16].fill(0.0);
            let x = Var::from_vec(v, shape, &dev)?;
            let weights = Tensor::arange(0f32, (n / (kernel.0 * kernel.1)) as f32, &dev)?;
            let apply = |y: Tensor| -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
                let flat = y.flatten_all()?;
                let w = weights.narrow(0, 0, flat.elem_count())?;
                let g = (&flat * &w)?.sum_all()?.backward()?;
                let g = g.get(x.as_tensor()).expect("a gradient").flatten_all()?;
                Ok((flat.to_vec1()?, g.to_vec1()?))
            };
            let cpu = apply(max_pool2d(x.as_tensor(), kernel)?)?;
            let portable = apply(by_tensor_ops(x.as_tensor(), kernel)?)?;
            assert_eq!(cpu, portable, "{shape:?} {kernel:?}");
        }
        Ok(())
    }
}
