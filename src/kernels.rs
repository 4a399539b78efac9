//! Inner loops on contiguous rows, written so that the compiler vectorizes them: independent
//! partial sums in a fixed order (the result does not depend on anything but the inputs).

use multiversion::multiversion;

use crate::float::Float;

/// Lanes of partial sums in [`dot`].
const LANES: usize = 8;

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

/// The dense half of a linear model's statistics pass over the rows `chunk` of the row-major
/// matrix `x` (rows of `w.len()` values): `z_i = x_i·w` as [`dot`] computes it, `c_i =
/// slope(i, z_i)`, and `sum += Σ c_i x_i` accumulated in `f64`, each row read from memory once
/// (rows go two at a time: one sweep takes the products of the next two rows while the
/// previous two, still in cache, are added in). With `line =
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
    let n = w.len();
    let row = |i: usize| &x[i * n..(i + 1) * n];
    let sum = &mut sum[..n];
    let (dir, mut pairs) = match line {
        Some((dir, out)) => (&dir[..n], Some(out)),
        None => (w, None),
    };
    // Rows two at a time: one sweep takes the products of the next two rows (two streams from
    // memory at once) and adds the previous two, still in cache, to `sum` in row order.
    let mut prev: [(usize, f64); 2] = [(0, 0.0); 2];
    let mut held = 0;
    let mut start = 0;
    while start < chunk.len() {
        let new = &chunk[start..(start + 2).min(chunk.len())];
        let line = pairs.is_some();
        let q = |k: usize| (row(prev[k].0), prev[k].1);
        let products = match (new, held) {
            ([a, b], 2) => sweep2(line, [row(*a), row(*b)], w, dir, sum, [q(0), q(1)]),
            ([a, b], 0) => sweep2(line, [row(*a), row(*b)], w, dir, sum, []),
            ([a], 2) => pad(sweep2(line, [row(*a)], w, dir, sum, [q(0), q(1)])),
            ([a], 0) => pad(sweep2(line, [row(*a)], w, dir, sum, [])),
            _ => unreachable!("one or two new rows, after zero or two"),
        };
        held = 0;
        for (&i, &(z, s)) in new.iter().zip(&products) {
            if let Some(out) = pairs.as_deref_mut() {
                let k = 2 * (start + held);
                out[k] = z;
                out[k + 1] = s;
            }
            prev[held] = (i, slope(i, z));
            held += 1;
        }
        start += new.len();
    }
    for &(p, c) in &prev[..held] {
        add_row(sum, row(p), c);
    }
}

/// The products of one row in the shape of two (the second unused).
#[inline(always)]
fn pad<F: Float>(one: [(F, F); 1]) -> [(F, F); 2] {
    [one[0], (F::zero(), F::zero())]
}

/// [`sweep`], with or without the products along `d`.
#[inline(always)]
fn sweep2<F: Float, const R: usize, const P: usize>(
    line: bool,
    next: [&[F]; R],
    w: &[F],
    d: &[F],
    out: &mut [f64],
    prev: [(&[F], f64); P],
) -> [(F, F); R] {
    if line {
        sweep::<F, R, P, true>(next, w, d, out, prev)
    } else {
        sweep::<F, R, P, false>(next, w, d, out, prev)
    }
}

/// One sweep over `R` new rows and `P` previous rows with their coefficients: returns `(row·w,
/// row·d)` of each new row (`row·d` only if `LINE`), each bit for bit as [`dot`] computes it,
/// and adds `c · row` of each previous row to `out`, in the order of `prev`, element by element
/// in a register.
#[inline(always)]
fn sweep<F: Float, const R: usize, const P: usize, const LINE: bool>(
    next: [&[F]; R],
    w: &[F],
    d: &[F],
    out: &mut [f64],
    prev: [(&[F], f64); P],
) -> [(F, F); R] {
    let n = out.len();
    let split = n - n % LANES;
    let mut acc_w = [[F::zero(); LANES]; R];
    let mut acc_d = [[F::zero(); LANES]; R];
    let mut j = 0;
    while j < split {
        let (y, e) = (&w[j..j + LANES], &d[j..j + LANES]);
        for r in 0..R {
            let x = &next[r][j..j + LANES];
            for k in 0..LANES {
                acc_w[r][k] += x[k] * y[k];
            }
            if LINE {
                for k in 0..LANES {
                    acc_d[r][k] += x[k] * e[k];
                }
            }
        }
        if P > 0 {
            let o = &mut out[j..j + LANES];
            let mut v = [0.0; LANES];
            v.copy_from_slice(o);
            for (q, c) in prev {
                let q = &q[j..j + LANES];
                for k in 0..LANES {
                    v[k] += c * q[k].as_f64();
                }
            }
            o.copy_from_slice(&v);
        }
        j += LANES;
    }
    for (q, c) in prev {
        for (o, &v) in out[split..].iter_mut().zip(&q[split..n]) {
            *o += c * v.as_f64();
        }
    }
    let tail = |x: &[F], v: &[F]| {
        x[split..n]
            .iter()
            .zip(&v[split..n])
            .fold(F::zero(), |s, (&a, &b)| s + a * b)
    };
    let mut products = [(F::zero(), F::zero()); R];
    for r in 0..R {
        let z = sum_lanes(acc_w[r]) + tail(next[r], w);
        let s = if LINE {
            sum_lanes(acc_d[r]) + tail(next[r], d)
        } else {
            F::zero()
        };
        products[r] = (z, s);
    }
    products
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

/// The dense half of a multi-class model's statistics pass (weights `w` in `classes` blocks of
/// the row length): for each row of `chunk`, its products with every block (each as [`dot`]
/// computes it) in `z`, then `residual(i, z)` overwrites `z` with the coefficients, and
/// `sum`'s blocks get `c_k · row` added (as [`add_row`] adds it), the row still in cache.
/// Dispatched as [`dense_rows`] is, with the same bits on every CPU.
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx2+fma+avx",
    "x86_64+avx2+fma+avx",
    "x86_64+avx"
))]
pub(crate) fn dense_class_rows<F: Float>(
    x: &[F],
    w: &[F],
    chunk: &[usize],
    sum: &mut [f64],
    z: &mut [F],
    mut residual: impl FnMut(usize, &mut [F]),
) {
    let classes = z.len();
    let d = w.len() / classes.max(1);
    for &i in chunk {
        let row = &x[i * d..(i + 1) * d];
        for (k, zk) in z.iter_mut().enumerate() {
            *zk = dot(row, &w[k * d..(k + 1) * d]);
        }
        residual(i, z);
        for (k, &c) in z.iter().enumerate() {
            add_row(&mut sum[k * d..(k + 1) * d], row, c.as_f64());
        }
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

    /// A non-finite value anywhere (in a block of lanes or in the tail), in f32 and f64.
    #[test]
    fn all_finite_finds_every_non_finite_element() {
        fn check<F: Float>() {
            for n in [0usize, 1, 7, 8, 9, 30] {
                let x = ndarray::Array1::from_shape_fn(n, |i| F::from_f64(i as f64 - 3.5));
                assert!(all_finite(&x), "n = {n}");
                for i in 0..n {
                    for bad in [F::nan(), F::infinity(), F::neg_infinity()] {
                        let mut y = x.clone();
                        y[i] = bad;
                        assert!(!all_finite(&y), "n = {n}, element {i} = {bad:?}");
                    }
                }
            }
            let big = ndarray::Array1::from_elem(20, F::max_value());
            assert!(all_finite(&big));
            // Not contiguous: every other element.
            let mut z = ndarray::Array1::from_elem(10, F::one());
            z[3] = F::nan();
            assert!(!all_finite(&z.slice(ndarray::s![1..;2])));
            assert!(all_finite(&z.slice(ndarray::s![0..;2])));
        }
        check::<f32>();
        check::<f64>();
    }

    /// The multiversioned kernel gives the bits of the formula written out element by element.
    #[test]
    fn adadelta_kernel_matches_the_formula() {
        let n = 37;
        let g: Vec<f64> = (0..n).map(|i| ((i * 7 % 11) as f64 - 5.0) * 0.3).collect();
        let (rho, eps, alpha) = (0.9, 1e-6, 0.7);
        let (mut g2, mut dx2) = (vec![0.1; n], vec![0.02; n]);
        let mut d = vec![0.0f32; n];
        let (mut g2r, mut dx2r) = (g2.clone(), dx2.clone());
        adadelta(&mut d, &mut g2, &mut dx2, &g, (rho, eps, alpha));
        for i in 0..n {
            g2r[i] = rho * g2r[i] + (1.0 - rho) * g[i] * g[i];
            let step = -((dx2r[i] + eps).sqrt() / (g2r[i] + eps).sqrt()) * g[i];
            dx2r[i] = rho * dx2r[i] + (1.0 - rho) * (alpha * step) * (alpha * step);
            assert_eq!(d[i].to_bits(), (step as f32).to_bits(), "{i}");
            assert_eq!(
                (g2[i].to_bits(), dx2[i].to_bits()),
                (g2r[i].to_bits(), dx2r[i].to_bits())
            );
        }
    }

    /// The dense statistics sweep gives the bits of the plain sequence: `dot` of each row, its
    /// coefficient, then `add_row` of each row in order.
    #[test]
    fn dense_rows_is_the_plain_sequence_bit_for_bit() {
        for (n, rows) in [(0, 3), (1, 1), (7, 2), (8, 5), (19, 6), (64, 7)] {
            let x: Vec<f64> = (0..n * 9)
                .map(|j| ((j * 37 % 101) as f64 - 50.0) / 7.0)
                .collect();
            let w: Vec<f64> = (0..n).map(|j| (j as f64 * 0.3).sin()).collect();
            let d: Vec<f64> = (0..n).map(|j| (j as f64 * 0.7).cos()).collect();
            let chunk: Vec<usize> = [4, 0, 8, 3, 3, 7, 1].into_iter().take(rows).collect();
            let coefficient = |i: usize, z: f64| z * 0.5 + i as f64;
            let row = |i: usize| &x[i * n..(i + 1) * n];
            let mut plain = vec![0.25; n];
            let mut plain_line = Vec::new();
            for &i in &chunk {
                let z = dot(row(i), &w);
                plain_line.extend([z, dot(row(i), &d)]);
                add_row(&mut plain, row(i), coefficient(i, z));
            }
            for with_line in [false, true] {
                let mut sum = vec![0.25; n];
                let mut line = vec![0.0; 2 * chunk.len()];
                let mut seen = Vec::new();
                let out = with_line.then_some((&d[..], &mut line[..]));
                dense_rows(&x, &w, &chunk, &mut sum, out, |i, z| {
                    seen.push(i);
                    coefficient(i, z)
                });
                assert_eq!(seen, chunk, "coefficients asked in row order");
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&sum), bits(&plain), "n = {n}, {rows} rows");
                if with_line {
                    assert_eq!(bits(&line), bits(&plain_line), "n = {n}, {rows} rows: line");
                }
            }
        }
    }

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
            for j in 0..n {
                let expected = 1.0 + 6.0 * b[j];
                assert!((out[j] - expected).abs() < 1e-12, "n = {n}, j = {j}");
            }
        }
    }
}

/// Whether every element of `x` is finite: `x · 0` is zero for a finite element and NaN for an
/// infinite or NaN one, summed in eight lanes without an early exit (which the compiler
/// vectorizes, where a test per element with an exit does not).
pub(crate) fn all_finite<F: Float>(x: &ndarray::ArrayRef1<F>) -> bool {
    let Some(s) = x.as_slice() else {
        return x.iter().all(|v| v.is_finite());
    };
    let mut acc = [F::zero(); LANES];
    let chunks = s.chunks_exact(LANES);
    let tail = chunks.remainder().iter().all(|v| v.is_finite());
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v * F::zero();
        }
    }
    tail && sum_lanes(acc).is_finite()
}

/// Adadelta's update of its running averages `g2` (of `g²`) and `dx2` (of the steps taken),
/// and its direction `d = −√(dx2 + ε)/√(g2 + ε)·g` rounded to `F`; element by element, so the
/// same bits on every target (the wider ones only take more elements per instruction: square
/// roots and divisions dominate).
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx2+fma+avx",
    "x86_64+avx2+fma+avx",
    "x86_64+avx"
))]
pub(crate) fn adadelta<F: Float>(
    d: &mut [F],
    g2: &mut [f64],
    dx2: &mut [f64],
    g: &[f64],
    (rho, eps, alpha): (f64, f64, f64),
) {
    for (((d, g2), dx2), &g) in d.iter_mut().zip(g2).zip(dx2).zip(g) {
        *g2 = rho * *g2 + (1.0 - rho) * g * g;
        let step = -((*dx2 + eps).sqrt() / (*g2 + eps).sqrt()) * g;
        *d = F::from_f64(step);
        // The running average of the steps actually taken.
        let taken = alpha * step;
        *dx2 = rho * *dx2 + (1.0 - rho) * taken * taken;
    }
}
