//! What the norm test does at a stationary point, measured against its documented rate.

use crate::common::*;
use bigbatch::*;
use ndarray::Array1;

/// The stopping docs state that at a stationary point the θ = 1 test passes by chance with
/// probability about `P(χ²_d/d ≥ 1)`: 0.32 for d = 1, approaching ½ for large d. Measured on
/// Gaussian per-sample gradients of mean zero (4000 seeded batches of 100 each).
#[test]
fn the_theta_one_test_passes_by_chance_as_documented() {
    use rand_distr::{Distribution, StandardNormal};
    let test = BatchTest::default();
    let mut r = rng(77);
    for (d, expected) in [(1usize, 0.32), (50, 0.47)] {
        let trials = 4000;
        let mut passed = 0;
        for _ in 0..trials {
            let mut stats = GradStats::<f64>::new(d);
            for _ in 0..100 {
                let g: Array1<f64> = (0..d).map(|_| StandardNormal.sample(&mut r)).collect();
                stats.push(&g);
            }
            passed += usize::from(test.passes(&stats, 1_000_000));
        }
        let rate = passed as f64 / trials as f64;
        // Three standard errors of a rate near ½ over 4000 trials: 0.024.
        assert!((rate - expected).abs() < 0.03, "d = {d}: pass rate {rate}");
    }
}
