//! The averaged test follows the noise scale, the gain ratio scales steps as its formula says,
//! and the network preset's batch grows.
use crate::common::*;
use bigbatch::observe::History;
use bigbatch::*;
use ndarray::{Array1, Array2, ArrayRef1};
use rand_distr::{Distribution, StandardNormal};

/// `ℓ_i(w) = a_i · w`: per-sample gradients `a_i` that do not depend on `w`, with mean `μ`
/// (`‖μ‖ = 1`) and per-coordinate variance `s²`, so that the noise scale is `tr Σ/‖μ‖² = d s²`
/// wherever the run goes.
struct Stationary<F> {
    a: Array2<F>,
}

impl<F: Float> Stationary<F> {
    fn new(seed: u64, n: usize, d: usize, noise_scale: f64) -> Self {
        let mut r = rng(seed);
        let s = (noise_scale / d as f64).sqrt();
        let mu = 1.0 / (d as f64).sqrt();
        let a = Array2::from_shape_fn((n, d), |_| {
            let z: f64 = StandardNormal.sample(&mut r);
            F::from_f64(mu + s * z)
        });
        Stationary { a }
    }
    /// The noise scale of the data as drawn: `tr Σ / ‖ā‖²`.
    fn noise_scale(&self) -> f64 {
        let n = self.a.nrows() as f64;
        let a = self.a.mapv(|v| v.as_f64());
        let mean = a.sum_axis(ndarray::Axis(0)) / n;
        let trace = a
            .rows()
            .into_iter()
            .map(|row| (&row - &mean).mapv(|v| v * v).sum())
            .sum::<f64>()
            / (n - 1.0);
        trace / mean.dot(&mean)
    }
}

impl<F: Float> Objective<F> for Stationary<F> {
    fn n_samples(&self) -> usize {
        self.a.nrows()
    }
    fn dim(&self) -> usize {
        self.a.ncols()
    }
    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        self.a.row(i).dot(w)
    }
    fn sample_gradient(&self, _w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) {
        grad.assign(&self.a.row(i));
    }
}

/// The batch sizes of `iterations` fresh batches of the unbiased test at θ = 2.
fn sizes<F: Float>(p: &Stationary<F>, smoothing: f64, iterations: usize) -> Vec<usize> {
    let mut h = History::new();
    BigBatchSgd::builder()
        .batch_mode(BatchMode::Fresh)
        .initial_batch(10)
        .theta(2.0)
        .unbiased_signal(true)
        .smoothing(smoothing)
        .max_iterations(iterations)
        .tolerance(0.0)
        .seed(5)
        .step(Fixed::new(1e-3))
        .build()
        .unwrap()
        .minimize_with(p, Array1::zeros(p.dim()), &mut h)
        .unwrap();
    h.records().iter().map(|r| r.batch_size).collect()
}

/// In expectation the unbiased test asks for `n ≥ B_noise/θ²`. Batch by batch, every chance
/// failure lifts the batch for good, so it ends well above that; on averages over iterations
/// the batch stays near it.
fn the_averaged_test_follows_the_noise_scale<F: Float>() {
    let p = Stationary::<F>::new(3, 100_000, 50, 400.0);
    let required = p.noise_scale() / 4.0;
    assert!((90.0..110.0).contains(&required), "{required}");
    let averaged = sizes(&p, 0.9, 400);
    let alone = sizes(&p, 0.0, 400);
    // After the first averages, the batch starts each iteration at the size they ask for:
    // its median over the run is about B_noise/θ², and it moves both ways.
    let mut settled = averaged[50..].to_vec();
    settled.sort_unstable();
    let median = settled[settled.len() / 2] as f64;
    assert!(
        (0.8 * required..=1.25 * required).contains(&median),
        "averaged: median batch {median}, B_noise/θ² = {required:.0}"
    );
    assert!(averaged.windows(2).any(|w| w[1] < w[0]), "never shrank");
    let last_alone = *alone.last().unwrap() as f64;
    assert!(
        last_alone > 1.5 * median,
        "alone: final batch {last_alone}, averaged median {median}"
    );
    assert!(alone.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn the_averaged_test_follows_the_noise_scale_f64() {
    the_averaged_test_follows_the_noise_scale::<f64>();
}

#[test]
fn the_averaged_test_follows_the_noise_scale_f32() {
    the_averaged_test_follows_the_noise_scale::<f32>();
}

#[test]
fn smoothing_zero_is_the_batch_alone_and_bad_values_are_refused() {
    let p = Stationary::<f64>::new(4, 5_000, 10, 100.0);
    let run = |b: BigBatchSgdBuilder<Fixed>| {
        b.batch_mode(BatchMode::Fresh)
            .max_iterations(50)
            .tolerance(0.0)
            .build()
            .unwrap()
            .minimize(&p, Array1::zeros(10))
            .unwrap()
    };
    let b = || BigBatchSgd::builder().step(Fixed::new(1e-3));
    assert_eq!(bits(&run(b())), bits(&run(b().smoothing(0.0))));
    for bad in [-0.1, 1.0, 2.0, f64::NAN] {
        match b().smoothing(bad).build() {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "smoothing"),
            other => panic!("smoothing {bad}: {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn the_gain_ratio_follows_its_formula() {
    let g = GainScaled::new(Adadelta::new());
    // The reference batch gains nothing; nor does a batch without noise.
    assert_eq!(g.ratio(32, 5.0, 1.0), 1.0);
    assert_eq!(g.ratio(320, 0.0, 1.0), 1.0);
    // All noise (‖g_B‖² = V/n): the ratio is n/b0, its square root with power 1/2.
    assert!((g.ratio(320, 10.0, 10.0 / 320.0) - 10.0).abs() < 1e-12);
    let sqrt = GainScaled::new(Adadelta::new()).power(0.5);
    assert!((sqrt.ratio(320, 10.0, 10.0 / 320.0) - 10f64.sqrt()).abs() < 1e-12);
    // Between: (V/b0 + G²)/(V/n + G²) with G² = ‖g_B‖² − V/n.
    let (n, v, g2) = (128, 64.0, 1.0);
    let signal = g2 - v / n as f64;
    let expected = (v / 32.0 + signal) / (v / n as f64 + signal);
    assert!((g.ratio(n, v, g2) - expected).abs() < 1e-12);
    // Smaller batches than the reference are not slowed; non-finite estimates change nothing.
    assert_eq!(g.ratio(8, 5.0, 1.0), 1.0);
    assert_eq!(g.ratio(64, f64::NAN, 1.0), 1.0);
    assert_eq!(g.ratio(64, f64::INFINITY, 1.0), 1.0);
    // Bad settings are named.
    for (rule, name) in [
        (GainScaled::new(Adadelta::new()).power(0.0), "power"),
        (GainScaled::new(Adadelta::new()).power(f64::NAN), "power"),
        (
            GainScaled::new(Adadelta::new()).reference_batch(0),
            "reference_batch",
        ),
    ] {
        match BigBatchSgd::builder().step(rule).build() {
            Err(Error::InvalidParameter { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{name}: {:?}", other.map(|_| ())),
        }
    }
}

/// One step of the scaled rule is the inner rule's step times the ratio of the batch: on the
/// stationary problem, whose gradient does not depend on `w`, with a fixed step.
fn a_scaled_step_is_the_inner_step_times_the_ratio<F: Float>() {
    let p = Stationary::<F>::new(6, 20_000, 8, 2_000.0);
    let one = |scaled: bool| {
        let b = BigBatchSgd::builder()
            .batch_mode(BatchMode::Fresh)
            .initial_batch(64)
            .max_iterations(1)
            .tolerance(0.0)
            .seed(2);
        let mut h = History::new();
        let w0 = Array1::zeros(8);
        let report = if scaled {
            let rule = GainScaled::new(Fixed::new(0.01)).reference_batch(16);
            b.step(rule).build().unwrap().minimize_with(&p, w0, &mut h)
        } else {
            b.step(Fixed::new(0.01))
                .build()
                .unwrap()
                .minimize_with(&p, w0, &mut h)
        };
        (report.unwrap().w.mapv(|v| v.as_f64()), h.records()[0])
    };
    let ((plain, rec), (scaled, _)) = (one(false), one(true));
    let n = rec.batch_size;
    let ratio = GainScaled::new(Fixed::new(0.01)).reference_batch(16).ratio(
        n,
        rec.variance.as_f64(),
        rec.grad_norm_sq.as_f64(),
    );
    assert!(
        ratio > 1.5,
        "the batch of {n} is noisy enough to gain: {ratio}"
    );
    let tol = F::epsilon().as_f64() * 100.0;
    for (s, p) in scaled.iter().zip(&plain) {
        assert!(
            (s - ratio * p).abs() <= tol * (ratio * p).abs().max(1.0),
            "{s} vs {ratio} × {p}"
        );
    }
}

#[test]
fn a_scaled_step_is_the_inner_step_times_the_ratio_f64() {
    a_scaled_step_is_the_inner_step_times_the_ratio::<f64>();
}

#[test]
fn a_scaled_step_is_the_inner_step_times_the_ratio_f32() {
    a_scaled_step_is_the_inner_step_times_the_ratio::<f32>();
}

/// The network preset is the method it names: its batch grows, by at least 8 times its first
/// size, where the noise outgrows the signal (near the optimum of a noisy regression), and it
/// still stays far below the whole data set early on.
fn the_network_preset_grows_its_batch<F: Float>() {
    let p = ridge::<F>(18, 20_000, 5, 3.0, 1e-3);
    let mut h = History::new();
    let report = BigBatchSgd::network()
        .max_epochs(30.0)
        .build()
        .unwrap()
        .minimize_with(&p, Array1::zeros(5), &mut h)
        .unwrap();
    let sizes: Vec<usize> = h.records().iter().map(|r| r.batch_size).collect();
    let first = BigBatchSgd::network().build().unwrap().initial_batch();
    assert_eq!(sizes[0], first);
    assert!(*sizes.last().unwrap() >= 8 * first, "{report}");
    assert!(sizes[sizes.len() / 10] < 20_000, "{report}");
    let optimum = p.optimum();
    let err = max_abs_diff(&report.w, &optimum) / optimum.mapv(f64::abs).sum();
    assert!(err < 1e-2, "relative error {err:.2e}, {report}");
}

#[test]
fn the_network_preset_grows_its_batch_f64() {
    the_network_preset_grows_its_batch::<f64>();
}

#[test]
fn the_network_preset_grows_its_batch_f32() {
    the_network_preset_grows_its_batch::<f32>();
}
