//! Inner loops on contiguous rows, written so that the compiler vectorizes them: independent
//! partial sums in a fixed order (the result does not depend on anything but the inputs).

use multiversion::multiversion;

use crate::float::Float;

/// Lanes of partial sums in [`dot`].
pub(crate) const LANES: usize = 8;

/// `((a₀ + a₄) + (a₁ + a₅)) + ((a₂ + a₆) + (a₃ + a₇))`, the fixed order in which the partial
/// sums of a product are added.
///
/// Never inlined: where the compiler sees this order next to the loop that fills the lanes, it
/// arranges the lanes to suit it and no longer keeps them in one vector register (measured: the
/// loop then runs on 2-lane registers with shuffles even where AVX-512 is available). Behind a
/// call, the loop keeps the lanes in whole vectors; the arithmetic is the same.
#[inline(never)]
pub(crate) fn sum_lanes<F: Float>(acc: [F; LANES]) -> F {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `Σ_j a_j b_j` over the common length, with eight partial sums added pairwise at the end.
#[inline(always)]
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
    sum_lanes(acc) + tail
}

/// One sweep that returns `dot(next, w)` (bit for bit as [`dot`]) and adds `c · prev` to
/// `out`, which accumulates in `f64` whatever the data's type: a row streamed from memory for
/// its dot product while the previous row, still in cache, is added in.
#[inline(always)]
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
    sum_lanes(acc) + tail
}

/// As [`dot_and_add`], with `dot(next, d)` too, from the same sweep: `(next·w, next·d)`, each
/// bit for bit as [`dot`] computes it.
#[inline(always)]
pub(crate) fn dot2_and_add<F: Float>(
    next: &[F],
    w: &[F],
    d: &[F],
    out: &mut [f64],
    prev: &[F],
    c: f64,
) -> (F, F) {
    let n = out.len().min(w.len()).min(d.len());
    let (next, w, d, out, prev) = (&next[..n], &w[..n], &d[..n], &mut out[..n], &prev[..n]);
    let (mut acc_w, mut acc_d) = ([F::zero(); LANES], [F::zero(); LANES]);
    let split = n - n % LANES;
    let tail = |v: &[F]| {
        next[split..]
            .iter()
            .zip(&v[split..])
            .fold(F::zero(), |s, (&x, &y)| s + x * y)
    };
    let (tail_w, tail_d) = (tail(w), tail(d));
    let (out_main, out_tail) = out.split_at_mut(split);
    for (o, &p) in out_tail.iter_mut().zip(&prev[split..]) {
        *o += c * p.as_f64();
    }
    let rows = next
        .chunks_exact(LANES)
        .zip(w.chunks_exact(LANES))
        .zip(d.chunks_exact(LANES));
    for (((x, y), e), (o, p)) in rows.zip(
        out_main
            .chunks_exact_mut(LANES)
            .zip(prev.chunks_exact(LANES)),
    ) {
        for k in 0..LANES {
            acc_w[k] += x[k] * y[k];
            acc_d[k] += x[k] * e[k];
            o[k] += c * p[k].as_f64();
        }
    }
    (sum_lanes(acc_w) + tail_w, sum_lanes(acc_d) + tail_d)
}

/// The dense half of a linear model's statistics pass over the rows `chunk` of the row-major
/// matrix `x` (rows of `w.len()` values): `z_i = x_i·w` as [`dot`] computes it, `c_i =
/// slope(i, z_i)`, and `sum += Σ c_i x_i` accumulated in `f64`, each row read from memory once
/// (its product is taken while the previous row, still in cache, is added in). With `line =
/// Some((d, out))`, also writes `x_i·w` and `x_i·d` of each row, in pairs, to `out`
/// ([`dense_line`]'s values, bit for bit).
///
/// Compiled for the baseline and for wider vector units, chosen when the CPU runs it (AVX,
/// AVX2, AVX-512). Every version performs the same operations in the same order, and none
/// fuses a multiply and an add (Rust never contracts them), so the results are the same bits on
/// every x86-64 CPU: only the speed differs.
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx2+fma+avx",
    "x86_64+avx2+fma+avx",
    "x86_64+avx"
))]
pub(crate) fn dense_rows<F: Float>(
    x: &[F],
    w: &[F],
    chunk: &[usize],
    sum: &mut [f64],
    line: Option<(&[F], &mut [F])>,
    mut slope: impl FnMut(usize, F) -> f64,
) {
    let d = w.len();
    let row = |i: usize| &x[i * d..(i + 1) * d];
    let mut pending: Option<(usize, f64)> = None;
    let (dir, mut pairs) = match line {
        Some((dir, out)) => (dir, Some(out.chunks_exact_mut(2))),
        None => (w, None),
    };
    for &i in chunk {
        let z = match (pairs.as_mut().and_then(Iterator::next), pending) {
            (None, Some((p, c))) => dot_and_add(row(i), w, sum, row(p), c),
            (None, None) => dot(row(i), w),
            (Some(pair), pending) => {
                let (z, s) = match pending {
                    Some((p, c)) => dot2_and_add(row(i), w, dir, sum, row(p), c),
                    None => (dot(row(i), w), dot(row(i), dir)),
                };
                pair[0] = z;
                pair[1] = s;
                z
            }
        };
        pending = Some((i, slope(i, z)));
    }
    if let Some((p, c)) = pending {
        add_row(sum, row(p), c);
    }
}

/// `x_i·w` and `x_i·d` (each as [`dot`] computes it) of the rows `chunk` of the row-major
/// matrix `x`, written in pairs to `out`: the line of a linear model's line search. Dispatched
/// as [`dense_rows`] is, with the same bits on every CPU.
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx2+fma+avx",
    "x86_64+avx2+fma+avx",
    "x86_64+avx"
))]
pub(crate) fn dense_line<F: Float>(x: &[F], w: &[F], d: &[F], chunk: &[usize], out: &mut [F]) {
    let n = w.len();
    for (&i, pair) in chunk.iter().zip(out.chunks_exact_mut(2)) {
        let row = &x[i * n..(i + 1) * n];
        pair[0] = dot(row, w);
        pair[1] = dot(row, d);
    }
}

/// `out += c r`, accumulated in `f64`.
#[inline(always)]
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
