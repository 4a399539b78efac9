//! Seeded random loops over small problems and valid configurations: every run terminates
//! within its budget, never panics, keeps its batch within [min(2, N), N] and never shrinks it,
//! and reports exactly the evaluations the objective performed. Errors, when a random fixed
//! step diverges, are typed and carry a finite iterate.
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::common::rng;
use bigbatch::data::Dataset;
use bigbatch::models::{Huber, LeastSquares, Logistic, Softmax};
use bigbatch::observe::from_fn;
use bigbatch::*;
use ndarray::{Array1, Array2, ArrayRef1};
use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;

/// Counts the per-sample gradients and losses the optimizer asks for.
struct Counting<O> {
    inner: O,
    grads: AtomicU64,
    losses: AtomicU64,
}

impl<F: Float, O: Objective<F>> Objective<F> for Counting<O> {
    fn n_samples(&self) -> usize {
        self.inner.n_samples()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        self.losses.fetch_add(1, Ordering::Relaxed);
        self.inner.sample_loss(w, i)
    }
    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, g: &mut ArrayRef1<F>) {
        self.grads.fetch_add(1, Ordering::Relaxed);
        self.inner.sample_gradient(w, i, g)
    }
    fn batch_loss(&self, w: &ArrayRef1<F>, batch: &[usize]) -> F {
        self.losses.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.inner.batch_loss(w, batch)
    }
    fn batch_gradient(&self, w: &ArrayRef1<F>, batch: &[usize], stats: &mut GradStats<F>) {
        self.grads.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.inner.batch_gradient(w, batch, stats)
    }
}

fn counting<O>(inner: O) -> Counting<O> {
    Counting {
        inner,
        grads: AtomicU64::new(0),
        losses: AtomicU64::new(0),
    }
}

fn random_data<F: Float>(
    r: &mut Xoshiro256PlusPlus,
    n: usize,
    d: usize,
    targets: impl Fn(f64, &mut Xoshiro256PlusPlus) -> f64,
) -> Dataset<F> {
    let x = Array2::from_shape_fn((n, d), |_| {
        if r.random_bool(0.3) {
            0.0
        } else {
            r.random::<f64>() * 4.0 - 2.0
        }
    });
    let w: Vec<f64> = (0..d).map(|_| r.random::<f64>() * 2.0 - 1.0).collect();
    let y = Array1::from_iter(x.rows().into_iter().map(|row| {
        let z: f64 = row.iter().zip(&w).map(|(a, b)| a * b).sum();
        targets(z, r)
    }));
    let data = Dataset::from_dense(x.mapv(F::from_f64), y.mapv(F::from_f64)).unwrap();
    if r.random_bool(0.5) {
        data.into_sparse()
    } else {
        data
    }
}

/// One random configuration, applied to any step rule.
struct Config {
    theta: f64,
    initial_batch: usize,
    growth: f64,
    growth_rule: GrowthRule,
    mode: BatchMode,
    fpc: bool,
    unbiased: bool,
    tolerance: f64,
    max_epochs: f64,
    max_iterations: usize,
    seed: u64,
}

impl Config {
    fn random(r: &mut Xoshiro256PlusPlus) -> Self {
        Config {
            theta: 0.1 + r.random::<f64>() * 2.0,
            initial_batch: r.random_range(2..60),
            growth: 0.01 + r.random::<f64>(),
            growth_rule: if r.random_bool(0.5) {
                GrowthRule::Fraction
            } else {
                GrowthRule::ToRequired
            },
            mode: if r.random_bool(0.5) {
                BatchMode::Fresh
            } else {
                BatchMode::Persistent
            },
            fpc: r.random_bool(0.3),
            unbiased: r.random_bool(0.3),
            tolerance: if r.random_bool(0.5) {
                0.0
            } else {
                10f64.powf(-2.0 - 10.0 * r.random::<f64>())
            },
            max_epochs: 0.2 + r.random::<f64>() * 8.0,
            max_iterations: r.random_range(1..150),
            seed: r.random(),
        }
    }
    fn apply<S>(&self, b: BigBatchSgdBuilder<S>) -> BigBatchSgdBuilder<S> {
        // θ > 1 is valid only with the unbiased signal.
        let theta = if self.unbiased {
            self.theta
        } else {
            self.theta.min(1.0)
        };
        b.theta(theta)
            .initial_batch(self.initial_batch)
            .growth(self.growth)
            .growth_rule(self.growth_rule)
            .batch_mode(self.mode)
            .finite_population_correction(self.fpc)
            .unbiased_signal(self.unbiased)
            .tolerance(self.tolerance)
            .max_epochs(self.max_epochs)
            .max_iterations(self.max_iterations)
            .seed(self.seed)
    }
}

fn check_run<F: Float, O: Objective<F>, S: StepRule>(
    case: &str,
    c: &Config,
    opt: &mut BigBatchSgd<S>,
    model: O,
) {
    let n = model.n_samples();
    let objective = counting(model);
    let mut sizes: Vec<usize> = Vec::new();
    let mut last_evals = (0u64, 0u64);
    let mut obs = from_fn(|v: &IterView<'_, F>| {
        sizes.push(v.record.batch_size);
        // An iteration that starts from the statistics of the last accepted trial and does
        // not grow its batch may compute no gradient, but it evaluates something.
        assert!(
            v.record.grad_evals >= last_evals.0
                && v.record.grad_evals + v.record.loss_evals > last_evals.0 + last_evals.1,
            "{case}: evaluations grow"
        );
        last_evals = (v.record.grad_evals, v.record.loss_evals);
        assert_eq!(v.batch.len(), v.record.batch_size, "{case}");
        ControlFlow::Continue(())
    });
    let w0 = Array1::<F>::zeros(objective.dim());
    match opt.minimize_with(&objective, w0, &mut obs) {
        Ok(r) => {
            assert!(r.iterations <= c.max_iterations, "{case}: {r}");
            assert_eq!(r.iterations, sizes.len(), "{case}");
            // The epoch budget is a hard limit on gradient evaluations; a run stopped by it
            // had less than one batch (at most N samples) of it left.
            let limit = (c.max_epochs * n as f64).floor() as u64;
            assert!(r.grad_evals <= limit, "{case}: {r} (limit {limit})");
            if r.stop == StopReason::EpochBudget {
                assert!(
                    r.grad_evals + n as u64 > limit,
                    "{case}: {r} (limit {limit})"
                );
            }
            assert!(
                (r.data_passes * n as f64 - (r.grad_evals + r.loss_evals) as f64).abs() < 1e-6,
                "{case}: data passes"
            );
            assert!(
                r.w.iter().all(|x| x.is_finite()) && r.loss.is_finite(),
                "{case}: {r}"
            );
            assert_eq!(
                r.grad_evals,
                objective.grads.load(Ordering::Relaxed),
                "{case}: gradient count"
            );
            assert_eq!(
                r.loss_evals,
                objective.losses.load(Ordering::Relaxed),
                "{case}: loss count"
            );
            assert!(
                r.batch_size <= n && r.batch_size >= 2.min(n),
                "{case}: final batch {}",
                r.batch_size
            );
        }
        Err(e) => {
            assert!(
                matches!(e, Error::NonFinite { .. } | Error::LineSearchFailed { .. }),
                "{case}: {e:?}"
            );
            assert!(
                e.last_iterate::<F>().unwrap().iter().all(|x| x.is_finite()),
                "{case}"
            );
        }
    }
    assert!(
        sizes.windows(2).all(|w| w[0] <= w[1]),
        "{case}: the batch never shrinks: {sizes:?}"
    );
    assert!(
        sizes.iter().all(|&k| k <= n && k >= 2.min(n)),
        "{case}: batch within [2, N]: {sizes:?}"
    );
}

fn random_runs<F: Float>(cases: u64) {
    for case_seed in 0..cases {
        let r = &mut rng(1000 + case_seed);
        let n = if r.random_bool(0.1) {
            r.random_range(1..4)
        } else {
            r.random_range(4..300)
        };
        let d = r.random_range(1..7);
        let c = Config::random(r);
        let model_kind = r.random_range(0..4);
        let rule_kind = r.random_range(0..4);
        let keep = r.random_bool(0.5);
        let case = format!(
            "case {case_seed}: n={n} d={d} model {model_kind} rule {rule_kind} keep {keep}"
        );
        macro_rules! with_rule {
            ($model:expr) => {{
                let model = $model;
                match rule_kind {
                    0 => check_run(&case, &c, &mut c.apply(BigBatchSgd::builder()).build().unwrap(), model),
                    1 => check_run(&case, &c, &mut c.apply(BigBatchSgd::builder().step(Armijo::new())).build().unwrap(), model),
                    2 if keep => check_run(&case, &c, &mut c.apply(BigBatchSgd::builder().step(BarzilaiBorwein::new())).build().unwrap(), model),
                    2 => check_run(&case, &c, &mut c.apply(BigBatchSgd::builder().step(Lbfgs::new().memory(2))).build().unwrap(), model),
                    _ => {
                        let alpha = 10f64.powf(-3.0 + 3.5 * r.random::<f64>()); // up to 3: may diverge
                        check_run(&case, &c, &mut c.apply(BigBatchSgd::builder().step(Fixed::new(alpha))).build().unwrap(), model)
                    }
                }
            }};
        }
        let lambda = if r.random_bool(0.5) { 0.0 } else { 1e-3 };
        match model_kind {
            0 => with_rule!(
                LeastSquares::new(
                    random_data::<F>(r, n, d, |z, r| z + r.random::<f64>() - 0.5),
                    lambda
                )
                .unwrap()
            ),
            1 => with_rule!(
                Logistic::new(
                    random_data::<F>(r, n, d, |z, r| if z + r.random::<f64>() - 0.5 > 0.0 {
                        1.0
                    } else {
                        -1.0
                    }),
                    lambda
                )
                .unwrap()
            ),
            2 => with_rule!(
                Huber::new(
                    random_data::<F>(r, n, d, |z, r| z + 3.0 * (r.random::<f64>() - 0.5)),
                    0.5,
                    lambda
                )
                .unwrap()
            ),
            _ => with_rule!(
                Softmax::new(
                    random_data::<F>(r, n, d, |z, _| ((z.abs() * 2.0) as usize % 3) as f64),
                    3,
                    lambda
                )
                .unwrap()
            ),
        }
    }
}

#[test]
fn random_problems_and_configurations_f64() {
    random_runs::<f64>(120);
}

#[test]
fn random_problems_and_configurations_f32() {
    random_runs::<f32>(120);
}
