//! Newton-CG on big batches: the exact Newton step (on the batch, or on its subsample), fast
//! convergence on the whole batch, products counted against the budget, the switch from L-BFGS,
//! and the errors.
use std::ops::ControlFlow;

use crate::common::*;
use bigbatch::data::Dataset;
use bigbatch::models::Logistic;
use bigbatch::observe::from_fn;
use bigbatch::*;
use ndarray::{Array1, Array2};

/// Logistic data with ±1 labels from a linear rule with noise of the size of its signal
/// (the classes overlap), columns of growing scale.
fn logistic_data(seed: u64, n: usize, d: usize, spread: f64) -> (Array2<f64>, Array1<f64>) {
    let (_, z, _) = linear_data(seed, n, d, spread, 0.0);
    let signal = (z.dot(&z) / n as f64).sqrt();
    let (x, z, _) = linear_data(seed, n, d, spread, signal);
    let y = z.mapv(|v| if v > 0.0 { 1.0 } else { -1.0 });
    (x, y)
}

fn model<F: Float>(x: &Array2<f64>, y: &Array1<f64>, lambda: f64) -> Logistic<F> {
    Logistic::new(
        Dataset::from_dense(x.mapv(F::from_f64), y.mapv(F::from_f64)).unwrap(),
        lambda,
    )
    .unwrap()
}

/// `−H⁻¹g` at `w = 0` for the rows `rows` (the Hessian) and all rows (the gradient): there
/// `φ' = −y/2` and `φ'' = 1/4` for every sample.
fn newton_step_at_zero(
    x: &Array2<f64>,
    y: &Array1<f64>,
    lambda: f64,
    rows: &[usize],
) -> Array1<f64> {
    let (n, d) = x.dim();
    let mut g = Array1::<f64>::zeros(d);
    for i in 0..n {
        g.scaled_add(-0.5 * y[i] / n as f64, &x.row(i));
    }
    let mut h = Array2::<f64>::eye(d) * lambda;
    for &i in rows {
        let r = x.row(i);
        for a in 0..d {
            for b in 0..d {
                h[[a, b]] += 0.25 * r[a] * r[b] / rows.len() as f64;
            }
        }
    }
    -cholesky_solve(&h, &g)
}

/// One step from 0 on the whole batch is the Newton step, with the Hessian of the batch or of
/// every second sample (the subsample is spread evenly over the batch, which on the whole
/// data set is in storage order).
fn the_first_step_is_newtons<F: Float>(tol: f64) {
    let (n, d, lambda) = (400, 5, 1e-2);
    let (x, y) = logistic_data(3, n, d, 2.0);
    let m = model::<F>(&x, &y, lambda);
    let every: Vec<usize> = (0..n).collect();
    let even: Vec<usize> = (0..n).step_by(2).collect();
    for (fraction, rows) in [(1.0, &every), (0.5, &even)] {
        let rule = NewtonCg::new()
            .hessian_fraction(fraction)
            .min_hessian_samples(1)
            .forcing(1e-9);
        let mut opt = BigBatchSgd::builder()
            .step(rule)
            .initial_batch(n)
            .max_iterations(1)
            .tolerance(0.0)
            .build()
            .unwrap();
        let report = opt.minimize(&m, Array1::zeros(d)).unwrap();
        let expected = newton_step_at_zero(&x, &y, lambda, rows);
        let err = max_abs_diff(&report.w, &expected);
        let scale = expected.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        assert!(
            err <= tol * scale,
            "fraction {fraction}: {err:e} off {expected}"
        );
        // CG ends within the dimension; the preparation and every product are counted.
        let products = opt.step_rule().products();
        assert!((1..=d as u64).contains(&products), "{products}");
        // The batch at w, the curvature, and the statistics at the accepted trial point.
        let s = rows.len() as u64;
        assert_eq!(
            report.grad_evals,
            2 * n as u64 + s * (1 + products),
            "{report}"
        );
    }
}

#[test]
fn the_first_step_is_newtons_f64() {
    the_first_step_is_newtons::<f64>(1e-8);
}

#[test]
fn the_first_step_is_newtons_f32() {
    the_first_step_is_newtons::<f32>(1e-4);
}

/// On the whole batch, Newton-CG reaches a small gradient in a handful of steps, each
/// reducing the gradient norm to (a constant times) its power 3/2 once it is small (the forcing
/// term `√‖g‖` asks CG for that), where full-batch L-BFGS needs many more iterations.
fn converges_superlinearly<F: Float>(target: f64, max_steps: usize) {
    let (n, d) = (2000, 30);
    let (x, y) = logistic_data(8, n, d, 5.0);
    let m = model::<F>(&x, &y, 1e-4);
    let mut norms = Vec::new();
    let mut obs = from_fn(|v: &IterView<'_, F>| {
        norms.push(v.record.grad_norm_sq.as_f64());
        ControlFlow::Continue(())
    });
    let report = BigBatchSgd::builder()
        .step(NewtonCg::new().hessian_fraction(1.0))
        .initial_batch(n)
        .tolerance(target)
        .build()
        .unwrap()
        .minimize_with(&m, Array1::zeros(d), &mut obs)
        .unwrap();
    assert_eq!(report.stop, StopReason::GradientTolerance, "{report}");
    assert!(report.iterations <= max_steps, "{report}: {norms:?}");
    let lbfgs = BigBatchSgd::builder()
        .initial_batch(n)
        .tolerance(target)
        .build()
        .unwrap()
        .minimize(&m, Array1::zeros(d))
        .unwrap();
    assert!(
        lbfgs.iterations > 2 * report.iterations,
        "{lbfgs} against {report}"
    );
    if std::mem::size_of::<F>() == 8 {
        // Superlinear: from a gradient norm² below 1e-6, each step raises it to the power 3/2.
        for pair in norms.windows(2).filter(|p| p[0] < 1e-6) {
            assert!(pair[1] <= 10.0 * pair[0] * pair[0].sqrt(), "{norms:?}");
        }
    }
}

#[test]
fn converges_superlinearly_f64() {
    converges_superlinearly::<f64>(1e-16, 10);
}

#[test]
fn converges_fast_f32() {
    converges_superlinearly::<f32>(1e-10, 15);
}

/// The preset is the default run until the batch is whole (the same records, bit for bit),
/// and Newton-CG from then on.
#[test]
fn the_newton_preset_switches_once_the_batch_is_whole() {
    let (n, d) = (3000, 20);
    let (x, y) = logistic_data(5, n, d, 10.0);
    let m = model::<f64>(&x, &y, 1e-4);
    let records = |newton: bool| {
        let mut out: Vec<IterRecord<f64>> = Vec::new();
        let mut obs = from_fn(|v: &IterView<'_, f64>| {
            out.push(*v.record);
            ControlFlow::Continue(())
        });
        let w0 = Array1::zeros(d);
        let products = if newton {
            let mut opt = BigBatchSgd::newton()
                .seed(4)
                .tolerance(1e-20)
                .build()
                .unwrap();
            opt.minimize_with(&m, w0, &mut obs).unwrap();
            opt.step_rule().whole().products()
        } else {
            let mut opt = BigBatchSgd::builder()
                .seed(4)
                .tolerance(1e-20)
                .build()
                .unwrap();
            opt.minimize_with(&m, w0, &mut obs).unwrap();
            0
        };
        (out, products)
    };
    let (default, _) = records(false);
    let (newton, products) = records(true);
    let whole = newton
        .iter()
        .position(|r| r.batch_size == n)
        .expect("the batch became whole");
    assert!(whole > 3, "the batch grew over several iterations first");
    assert_eq!(
        format!("{:?}", &newton[..whole]),
        format!("{:?}", &default[..whole]),
        "the same run until the batch is whole"
    );
    assert!(products > 0);
    assert!(
        newton.len() < default.len(),
        "{} against {}",
        newton.len(),
        default.len()
    );
}

/// Hessian products are gradient evaluations: an epoch budget bounds them too.
#[test]
fn the_epoch_budget_bounds_the_products() {
    let (n, d) = (1000, 40);
    let (x, y) = logistic_data(6, n, d, 30.0);
    let m = model::<f64>(&x, &y, 1e-5);
    for epochs in [0.5, 2.0, 7.0] {
        let report = BigBatchSgd::builder()
            .step(NewtonCg::new())
            .initial_batch(n)
            .tolerance(0.0)
            .max_epochs(epochs)
            .build()
            .unwrap()
            .minimize(&m, Array1::zeros(d))
            .unwrap();
        assert!(
            report.grad_evals as f64 <= epochs * n as f64,
            "{epochs}: {report}"
        );
    }
}

/// Without Hessian products the rule stops with a typed error and the iterate reached; the
/// preset does so once the batch is whole, after the L-BFGS steps.
#[test]
fn an_objective_without_curvature_is_refused_with_the_iterate() {
    let p = ridge::<f64>(2, 500, 4, 0.5, 1e-3);
    let w0 = Array1::from_elem(4, 0.25);
    let err = BigBatchSgd::builder()
        .step(NewtonCg::new())
        .build()
        .unwrap()
        .minimize(&p, w0.clone())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unsupported {
                rule: "NewtonCg",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.last_iterate::<f64>().unwrap(), w0);
    let err = BigBatchSgd::newton()
        .build()
        .unwrap()
        .minimize(&p, w0.clone())
        .unwrap_err();
    let w = err.last_iterate::<f64>().expect("the iterate reached");
    let all = p.all();
    assert!(p.loss64(&to64(&w), &all) < p.loss64(&to64(&w0), &all));
}

#[test]
fn bad_parameters_are_refused() {
    let bad = [
        NewtonCg::new().hessian_fraction(0.0),
        NewtonCg::new().hessian_fraction(1.5),
        NewtonCg::new().hessian_fraction(f64::NAN),
        NewtonCg::new().min_hessian_samples(0),
        NewtonCg::new().forcing(1.0),
        NewtonCg::new().forcing(0.0),
        NewtonCg::new().max_cg_iterations(0),
        NewtonCg::new().shrink(1.0),
    ];
    for rule in bad {
        let err = BigBatchSgd::builder()
            .step(rule.clone())
            .build()
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { .. }),
            "{rule:?}: {err}"
        );
        let err = BigBatchSgd::builder()
            .step(Switch::new(Lbfgs::new(), rule))
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidParameter { .. }));
    }
}
