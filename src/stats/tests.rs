//! Unit tests of the batch statistics and the test.
use super::*;
use crate::float::Float;
use ndarray::Array1;
use ndarray::{Array2, array};
use rand::{Rng, SeedableRng, rngs::Xoshiro256PlusPlus};

/// Two-pass reference in f64: mean, then Σ‖v − mean‖².
fn two_pass(rows: &Array2<f64>) -> (Array1<f64>, f64) {
    let mean = rows.mean_axis(ndarray::Axis(0)).unwrap();
    let m2 = rows
        .rows()
        .into_iter()
        .map(|r| (&r - &mean).mapv(|x| x * x).sum())
        .sum();
    (mean, m2)
}

fn uniform(rng: &mut Xoshiro256PlusPlus) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5
}

fn random_rows(seed: u64, n: usize, d: usize, offset: f64, spread: f64) -> Array2<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| offset + spread * uniform(&mut rng))
}

fn push_all<F: Float>(rows: &Array2<f64>) -> GradStats<F> {
    let mut s = GradStats::new(rows.ncols());
    for r in rows.rows() {
        s.push(&r.mapv(F::from_f64));
    }
    s
}

fn check_against_two_pass<F: Float>(rows: &Array2<f64>, rel_tol: f64) {
    let (mean, m2) = two_pass(&rows.mapv(|x| F::from_f64(x).as_f64()));
    let s = push_all::<F>(rows);
    for (a, b) in s.mean().iter().zip(mean.iter()) {
        assert!(
            (a.as_f64() - b).abs() <= rel_tol * b.abs().max(1e-300),
            "{a} vs {b}"
        );
    }
    let got = s.sum_sq_dev().as_f64();
    assert!((got - m2).abs() <= rel_tol * m2, "m2 {got} vs {m2}");
    let v = s.variance().as_f64();
    assert!((v - m2 / (rows.nrows() - 1) as f64).abs() <= rel_tol * v);
}

#[test]
fn welford_matches_two_pass() {
    let rows = random_rows(1, 500, 7, 0.0, 2.0);
    check_against_two_pass::<f64>(&rows, 1e-12);
    // f32 gradients, accumulated in f64: as accurate as f64 on the same values.
    check_against_two_pass::<f32>(&rows, 1e-12);
}

#[test]
fn welford_is_stable_when_the_mean_dwarfs_the_spread() {
    // Mean 1e4, spread 1e-3: ‖m‖²/(V/n) ≈ 1e17; the sums form cancels completely here.
    let rows = random_rows(2, 1000, 5, 1e4, 1e-3);
    check_against_two_pass::<f64>(&rows, 1e-6);
    // f32 data: mean 1e2, spread 1e-2 (ratio 1e10, far past f32's 1e7 precision); the
    // f64 accumulator keeps the spread of the f32 values.
    let rows32 = random_rows(3, 1000, 5, 1e2, 1e-2);
    check_against_two_pass::<f32>(&rows32, 1e-6);
    // The naive formula loses everything on the first case:
    let s = push_all::<f64>(&rows);
    let sq: f64 = rows.iter().map(|x| x * x).sum();
    let naive = GradStats::<f64>::from_sums(1000, rows.sum_axis(ndarray::Axis(0)), sq, None);
    let rel_err = (naive.sum_sq_dev() - s.sum_sq_dev()).abs() / s.sum_sq_dev();
    assert!(
        rel_err > 0.01,
        "expected the sums shortcut to cancel, rel err {rel_err}"
    );
}

fn merge_equals_one_pass<F: Float>(tol: f64) {
    let rows = random_rows(4, 301, 6, 3.0, 5.0);
    let all = push_all::<F>(&rows);
    for cut in [0, 1, 2, 150, 300, 301] {
        let mut a = push_all::<F>(&rows.slice(ndarray::s![..cut, ..]).to_owned());
        let b = push_all::<F>(&rows.slice(ndarray::s![cut.., ..]).to_owned());
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        for (x, y) in a.mean().iter().zip(all.mean().iter()) {
            assert!(
                (*x - *y).abs().as_f64() <= tol * y.abs().as_f64(),
                "cut {cut}"
            );
        }
        let (m2a, m2) = (a.sum_sq_dev().as_f64(), all.sum_sq_dev().as_f64());
        assert!((m2a - m2).abs() <= tol * m2, "cut {cut}: {m2a} vs {m2}");
    }
    // Many small chunks merged in order.
    let mut acc = GradStats::<F>::new(6);
    for chunk in rows.axis_chunks_iter(ndarray::Axis(0), 7) {
        acc.merge(&push_all::<F>(&chunk.to_owned()));
    }
    assert!(
        (acc.sum_sq_dev().as_f64() - all.sum_sq_dev().as_f64()).abs()
            <= tol * all.sum_sq_dev().as_f64()
    );
}

#[test]
fn strided_and_contiguous_pushes_agree() {
    let rows = random_rows(6, 50, 9, 1.0, 3.0);
    let contiguous = push_all::<f64>(&rows);
    let wide = rows.t().to_owned();
    let mut strided = GradStats::<f64>::new(9);
    for j in 0..50 {
        strided.push(&wide.column(j));
    }
    assert_eq!(strided.count(), 50);
    for (a, b) in strided.mean().iter().zip(contiguous.mean()) {
        assert!((a - b).abs() <= 1e-14 * b.abs().max(1.0));
    }
    assert!(
        (strided.sum_sq_dev() - contiguous.sum_sq_dev()).abs() <= 1e-12 * contiguous.sum_sq_dev()
    );
}

#[test]
fn merge_parts_equals_merge() {
    let rows = random_rows(7, 40, 3, 2.0, 1.0);
    let a = push_all::<f64>(&rows.slice(ndarray::s![..15, ..]).to_owned());
    let b = push_all::<f64>(&rows.slice(ndarray::s![15.., ..]).to_owned());
    let mut via_merge = a.clone();
    via_merge.merge(&b);
    let mut via_parts = a.clone();
    via_parts.merge_parts(b.count(), b.mean(), b.sum_sq_dev(), None);
    assert_eq!(via_parts.count(), 40);
    assert!(
        (via_parts.sum_sq_dev() - via_merge.sum_sq_dev()).abs() < 1e-12 * via_merge.sum_sq_dev()
    );
    assert!(
        (via_parts.mean() - via_merge.mean())
            .iter()
            .all(|d| d.abs() < 1e-14)
    );
    let mut empty = GradStats::<f64>::new(3);
    empty.merge_parts(b.count(), b.mean(), b.sum_sq_dev(), Some(1.5));
    assert_eq!(empty.loss(), Some(1.5 / 25.0));
    assert!((empty.variance() - b.variance()).abs() < 1e-14);
}

#[test]
fn merging_equals_one_pass() {
    merge_equals_one_pass::<f64>(1e-12);
    merge_equals_one_pass::<f32>(1e-12);
}

#[test]
fn from_sums_agrees_when_well_conditioned_and_clamps() {
    let rows = random_rows(5, 64, 4, 0.1, 1.0);
    let s = push_all::<f64>(&rows);
    let sq: f64 = rows.iter().map(|x| x * x).sum();
    let f = GradStats::<f64>::from_sums(64, rows.sum_axis(ndarray::Axis(0)), sq, Some(6.4));
    assert!((f.sum_sq_dev() - s.sum_sq_dev()).abs() < 1e-10 * s.sum_sq_dev());
    assert_eq!(f.loss(), Some(0.1));
    // Identical samples: the true m2 is 0 and the shortcut must not go negative.
    let same =
        GradStats::<f32>::from_sums(3, array![0.3 * 3.0, 0.7 * 3.0], 3.0 * (0.09 + 0.49), None);
    assert!(same.sum_sq_dev() >= 0.0);
    assert_eq!(
        GradStats::<f64>::from_sums(0, Array1::zeros(2), 0.0, None).count(),
        0
    );
}

#[test]
fn loss_is_known_only_if_every_sample_had_one() {
    let mut s = GradStats::<f64>::new(1);
    assert_eq!(s.loss(), None);
    s.push_with_loss(&array![1.0], 2.0);
    s.push_with_loss(&array![1.0], 4.0);
    assert_eq!(s.loss(), Some(3.0));
    let mut t = GradStats::<f64>::new(1);
    t.push(&array![0.0]);
    s.merge(&t);
    assert_eq!(s.loss(), None);
    s.reset();
    assert_eq!((s.count(), s.loss(), s.variance()), (0, None, 0.0));
}

fn two_samples<F: Float>(a: [f64; 2], b: [f64; 2]) -> GradStats<F> {
    let mut s = GradStats::new(2);
    s.push(&array![F::from_f64(a[0]), F::from_f64(a[1])]);
    s.push(&array![F::from_f64(b[0]), F::from_f64(b[1])]);
    s
}

fn boundary<F: Float>() {
    // g = (1, 0), deviations ±(0.5, 0): m2 = 0.5, V = 0.5, V/n = 0.25 = θ²‖g‖² at θ = 0.5.
    let s = two_samples::<F>([0.5, 0.0], [1.5, 0.0]);
    let at = |theta: f64| BatchTest {
        theta,
        ..BatchTest::default()
    };
    assert!(at(0.5).passes(&s, 100), "equality passes");
    assert!(!at(0.5 * (1.0 - 1e-3)).passes(&s, 100), "just below fails");
    assert!(at(0.5 * (1.0 + 1e-3)).passes(&s, 100));
    // The same two samples are the whole data set: exact, so it passes at any θ.
    assert!(at(1e-6).passes(&s, 2));
    // Finite-population correction φ = 1 − 2/4 halves the noise: passes at θ = 0.5/√2.
    let fpc = BatchTest {
        theta: 0.5 / 2f64.sqrt() * (1.0 + 1e-3),
        finite_population_correction: true,
        ..BatchTest::default()
    };
    assert!(fpc.passes(&s, 4));
    // Unbiased signal: noise ≤ θ²/(1+θ²)‖g‖²; at θ = 0.5 that is 0.2 < 0.25, so fails.
    let ub = BatchTest {
        theta: 0.5,
        unbiased_signal: true,
        ..BatchTest::default()
    };
    assert!(!ub.passes(&s, 100));
    // Required size: V/(θ²‖g‖²) = 0.5/(0.01) = 50 at θ = 0.1.
    assert_eq!(at(0.1).required_size(&s, 1000), 50);
    assert_eq!(at(0.1).required_size(&s, 20), 20);
}

#[test]
fn batch_test_at_its_boundary() {
    boundary::<f64>();
    boundary::<f32>();
}

#[test]
fn degenerate_batches() {
    let mut one = GradStats::<f64>::new(1);
    one.push(&array![1.0]);
    let t = BatchTest::default();
    assert!(!t.passes(&one, 10), "one sample of many: spread unknown");
    assert!(t.passes(&one, 1), "the whole data set");
    // Zero gradient and zero spread pass (the stopping rule then fires).
    let zero = two_samples::<f64>([0.0, 0.0], [0.0, 0.0]);
    assert!(t.passes(&zero, 10));
    assert_eq!(t.required_size(&zero, 10), 0);
    // Zero mean with spread fails, and asks for the whole data set.
    let cancel = two_samples::<f64>([1.0, 0.0], [-1.0, 0.0]);
    assert!(!t.passes(&cancel, 10));
    assert_eq!(t.required_size(&cancel, 10), 10);
}
