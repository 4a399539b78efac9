//! Inner loops on contiguous rows, written so that the compiler vectorizes them: independent
//! partial sums in a fixed order (the result does not depend on anything but the inputs).

use crate::float::Float;

/// Lanes of partial sums in [`dot`].
const LANES: usize = 8;

/// `Σ_j a_j b_j` over the common length, with eight partial sums added pairwise at the end.
#[inline]
pub(crate) fn dot<F: Float>(a: &[F], b: &[F]) -> F {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [F::zero(); LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: F = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .fold(F::zero(), |s, (&x, &y)| s + x * y);
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// One sweep that returns `dot(next, w)` (bit for bit as [`dot`]) and adds `c · prev` to
/// `out`, which accumulates in `f64` whatever the data's type: a row streamed from memory for
/// its dot product while the previous row, still in cache, is added in.
#[inline]
pub(crate) fn dot_and_add<F: Float>(next: &[F], w: &[F], out: &mut [f64], prev: &[F], c: f64) -> F {
    let n = out.len().min(w.len());
    let (next, w, out, prev) = (&next[..n], &w[..n], &mut out[..n], &prev[..n]);
    let mut acc = [F::zero(); LANES];
    let (cx, cw, cp) = (
        next.chunks_exact(LANES),
        w.chunks_exact(LANES),
        prev.chunks_exact(LANES),
    );
    let tail: F = cx
        .remainder()
        .iter()
        .zip(cw.remainder())
        .fold(F::zero(), |s, (&x, &y)| s + x * y);
    let split = n - n % LANES;
    let (out_main, out_tail) = out.split_at_mut(split);
    for (o, &p) in out_tail.iter_mut().zip(&prev[split..]) {
        *o += c * p.as_f64();
    }
    for (((x, y), o), p) in cx.zip(cw).zip(out_main.chunks_exact_mut(LANES)).zip(cp) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
            o[k] += c * p[k].as_f64();
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `out += c r`, accumulated in `f64`.
#[inline]
pub(crate) fn add_row<F: Float>(out: &mut [f64], row: &[F], c: f64) {
    let n = out.len();
    let row = &row[..n];
    for j in 0..n {
        out[j] += c * row[j].as_f64();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_agree_with_plain_loops() {
        for n in [0, 1, 7, 8, 9, 31, 100] {
            let a: Vec<f64> = (0..n).map(|j| (j as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n).map(|j| (j as f64 * 0.11).cos()).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(
                (dot(&a, &b) - plain).abs() <= 1e-12 * (1.0 + plain.abs()),
                "n = {n}"
            );
            let mut out = vec![1.0; n];
            add_row(&mut out, &b, 6.0);
            let mut fused = out.clone();
            assert_eq!(
                dot_and_add(&b, &a, &mut fused, &a, 2.0).to_bits(),
                dot(&b, &a).to_bits()
            );
            for j in 0..n {
                assert!((fused[j] - out[j] - 2.0 * a[j]).abs() < 1e-12);
            }
            for j in 0..n {
                let expected = 1.0 + 6.0 * b[j];
                assert!((out[j] - expected).abs() < 1e-12, "n = {n}, j = {j}");
            }
        }
    }
}
