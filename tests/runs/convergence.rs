//! Convergence to known optima, for every step rule, in f32 and f64.
use std::ops::ControlFlow;

use crate::common::*;
use bigbatch::observe::from_fn;
use bigbatch::*;
use ndarray::Array1;

/// Noiseless least squares (`y = X w*`, λ = 0): every rule must recover `w*`.
fn recovers_generating_weights<F: Float>(tolerance: f64, max_err: f64) {
    let (x, y, w_true) = linear_data(7, 800, 5, 1.0, 0.0);
    let p = Ridge::<F>::new(x, y, 0.0);
    let (_, l) = p.curvature_bounds();
    let theta = 1.0;
    let check = |name: &str, r: Report<F>| {
        let err = max_abs_diff(&r.w, &w_true);
        assert_eq!(r.stop, StopReason::GradientTolerance, "{name}: {r}");
        assert!(
            err <= max_err,
            "{name}: |w − w*|∞ = {err:e} > {max_err:e} ({r})"
        );
    };
    let w0 = Array1::<F>::zeros(5);
    let base = || {
        BigBatchSgd::builder()
            .theta(theta)
            .seed(11)
            .tolerance(tolerance)
            .max_epochs(500.0)
    };
    let fixed = Fixed::new(1.0 / (l * (1.0 + theta * theta)));
    check(
        "fixed",
        base()
            .step(fixed)
            .build()
            .unwrap()
            .minimize(&p, w0.clone())
            .unwrap(),
    );
    check(
        "armijo",
        base()
            .step(Armijo::new())
            .build()
            .unwrap()
            .minimize(&p, w0.clone())
            .unwrap(),
    );
    check(
        "armijo, the paper's preset",
        BigBatchSgd::paper()
            .theta(theta)
            .seed(11)
            .tolerance(tolerance)
            .max_epochs(500.0)
            .build()
            .unwrap()
            .minimize(&p, w0.clone())
            .unwrap(),
    );
    check(
        "l-bfgs (default)",
        base().build().unwrap().minimize(&p, w0.clone()).unwrap(),
    );
    check(
        "bb",
        base()
            .step(BarzilaiBorwein::new())
            .build()
            .unwrap()
            .minimize(&p, w0)
            .unwrap(),
    );
}

#[test]
fn noiseless_least_squares_recovers_weights_f64() {
    recovers_generating_weights::<f64>(1e-24, 1e-9);
}

#[test]
fn noiseless_least_squares_recovers_weights_f32() {
    recovers_generating_weights::<f32>(1e-9, 1e-3);
}

/// Strongly convex ridge with the theory step `1/(L(1+θ²))`: the full-objective gap must
/// shrink at least at the rate `1 − μ/(L(1+θ²))` (in expectation; a constant factor of slack
/// covers one seeded run), and all the way down, not only at the start.
fn linear_convergence<F: Float>(floor: f64) {
    let p = ridge::<F>(3, 1500, 5, 0.5, 0.05);
    let (mu, l) = p.curvature_bounds();
    let w_star = p.optimum();
    let all = p.all();
    let f_star = p.loss64(w_star.as_slice().unwrap(), &all);
    for theta in [0.5, 1.0] {
        let rate = 1.0 - mu / (l * (1.0 + theta * theta));
        let w0 = Array1::<F>::zeros(5);
        let gap0 = p.loss64(&to64(&w0), &all) - f_star;
        let mut gaps = vec![gap0];
        let mut obs = from_fn(|v: &IterView<'_, F>| {
            gaps.push(p.loss64(&to64(v.w), &all) - f_star);
            ControlFlow::Continue(())
        });
        let mut opt = BigBatchSgd::builder()
            .theta(theta)
            .step(Fixed::new(1.0 / (l * (1.0 + theta * theta))))
            .tolerance(0.0)
            .max_epochs(f64::INFINITY)
            .max_iterations(120)
            .seed(5)
            .build()
            .unwrap();
        let report = opt.minimize_with(&p, w0, &mut obs).unwrap();
        // 120 steps, or fewer if a full-batch step stopped changing the iterate (f32).
        match report.stop {
            StopReason::IterationBudget => assert_eq!(gaps.len(), 121),
            StopReason::NoProgress => {
                assert!(gaps[gaps.len() - 1] < floor, "stalled early: {report}")
            }
            other => panic!("unexpected stop {other}"),
        }
        for (t, gap) in gaps.iter().enumerate() {
            if gap0 * rate.powi(t as i32) < floor {
                break;
            }
            let bound = 10.0 * gap0 * rate.powi(t as i32);
            assert!(
                *gap <= bound,
                "θ={theta} t={t}: gap {gap:e} > 10·ρ^t·gap0 = {bound:e}"
            );
        }
        // It does converge: well below the start after 120 iterations.
        let last = *gaps.last().unwrap();
        assert!(
            last < 1e-6 * gap0 || last < floor,
            "θ={theta}: final gap {last:e}"
        );
    }
}

#[test]
fn linear_convergence_fixed_step_f64() {
    linear_convergence::<f64>(1e-13);
}

#[test]
fn linear_convergence_fixed_step_f32() {
    linear_convergence::<f32>(1e-5);
}

/// Noisy ridge, default settings: each rule stops by the tolerance near the true optimum.
fn noisy_ridge_default_settings<F: Float>(tolerance: f64, max_rel_gap: f64) {
    let p = ridge::<F>(21, 1000, 6, 1.0, 0.01);
    let w_star = p.optimum();
    let f_star = p.loss64(w_star.as_slice().unwrap(), &p.all());
    let w0 = Array1::<F>::zeros(6);
    let base = || BigBatchSgd::builder().tolerance(tolerance).seed(2);
    let reports = [
        (
            "armijo",
            base()
                .step(Armijo::new())
                .build()
                .unwrap()
                .minimize(&p, w0.clone())
                .unwrap(),
        ),
        (
            "l-bfgs (default)",
            base().build().unwrap().minimize(&p, w0.clone()).unwrap(),
        ),
        (
            "bb",
            base()
                .step(BarzilaiBorwein::new())
                .build()
                .unwrap()
                .minimize(&p, w0.clone())
                .unwrap(),
        ),
    ];
    for (name, r) in reports {
        let gap = (r.loss.as_f64() - f_star) / f_star;
        assert_eq!(r.stop, StopReason::GradientTolerance, "{name}: {r}");
        assert!(gap.abs() <= max_rel_gap, "{name}: relative gap {gap:e}");
        // The reported loss is the full objective at the reported iterate.
        let direct = p.loss64(&to64(&r.w), &p.all());
        assert!((r.loss.as_f64() - direct).abs() <= 1e-4 * direct, "{name}");
    }
}

#[test]
fn noisy_ridge_default_settings_f64() {
    noisy_ridge_default_settings::<f64>(1e-12, 1e-9);
}

#[test]
fn noisy_ridge_default_settings_f32() {
    noisy_ridge_default_settings::<f32>(1e-8, 1e-4);
}

/// The average of the iterates follows its formula, observers see it, and the report returns
/// it with its loss and the last iterate beside it.
fn the_average_of_the_iterates<F: Float>() {
    let p = ridge::<F>(12, 2000, 4, 1.0, 1e-2);
    let h = 0.5;
    let mut seen: Vec<(Array1<F>, usize, Array1<F>)> = Vec::new();
    let mut observer = from_fn(|v: &IterView<'_, F>| {
        let avg = v.average.expect("averaging is on").clone();
        seen.push((v.w.clone(), v.record.batch_size, avg));
        ControlFlow::Continue(())
    });
    let report = BigBatchSgd::paper()
        .average_iterates(h)
        .seed(3)
        .max_epochs(8.0)
        .tolerance(0.0)
        .build()
        .unwrap()
        .minimize_with(&p, Array1::zeros(4), &mut observer)
        .unwrap();
    // Recomputed from the iterates, with the same operations: the same bits.
    let mut avg: Option<Array1<F>> = None;
    for (w, n, seen_avg) in &seen {
        let weight = F::from_f64(1.0 - (-(*n as f64) / (h * 2000.0)).exp());
        avg = Some(match avg {
            None => w.clone(),
            Some(mut a) => {
                ndarray::Zip::from(&mut a)
                    .and(w)
                    .for_each(|a, &w| *a += weight * (w - *a));
                a
            }
        });
        assert_eq!(avg.as_ref().unwrap(), seen_avg);
    }
    assert_eq!(
        &report.w,
        avg.as_ref().unwrap(),
        "the report returns the average"
    );
    assert_eq!(report.last_iterate.as_ref(), Some(&seen.last().unwrap().0));
    let all: Vec<usize> = (0..2000).collect();
    assert_eq!(
        report.loss.as_f64().to_bits(),
        p.batch_loss(&report.w, &all).as_f64().to_bits(),
        "the loss is the average's"
    );
    // Off by default: nothing averaged, nothing beside the iterate.
    let mut none = true;
    let mut observer = from_fn(|v: &IterView<'_, F>| {
        none &= v.average.is_none();
        ControlFlow::Continue(())
    });
    let plain = BigBatchSgd::paper()
        .seed(3)
        .max_epochs(8.0)
        .build()
        .unwrap()
        .minimize_with(&p, Array1::zeros(4), &mut observer)
        .unwrap();
    assert!(none && plain.last_iterate.is_none());
}

#[test]
fn the_average_of_the_iterates_f64_and_f32() {
    the_average_of_the_iterates::<f64>();
    the_average_of_the_iterates::<f32>();
}

#[test]
fn the_average_removes_the_noise_a_constant_step_leaves() {
    // Batches of 16 that never grow and a constant step: the iterate wanders at a noise
    // floor about the optimum, and its average over the last epoch sits much closer.
    let p = ridge::<f64>(13, 4000, 5, 2.0, 1e-2);
    let optimum = p.optimum();
    let report = BigBatchSgd::builder()
        .batch_mode(BatchMode::Fresh)
        .initial_batch(16)
        .schedule(BatchSchedule::new(2.0, 1e9))
        .step(Fixed::new(0.1))
        .average_iterates(1.0)
        .tolerance(0.0)
        .max_epochs(20.0)
        .build()
        .unwrap()
        .minimize(&p, Array1::zeros(5))
        .unwrap();
    let last = max_abs_diff(report.last_iterate.as_ref().unwrap(), &optimum);
    let averaged = max_abs_diff(&report.w, &optimum);
    assert!(
        averaged < last / 3.0,
        "average {averaged} against last {last}"
    );
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = BigBatchSgd::builder()
            .average_iterates(bad)
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidParameter {
                name: "average_iterates",
                ..
            }
        ));
    }
}

/// With `interpolate(β)` the steps move a fast iterate `z`, the average follows `z`, and the
/// gradients are evaluated at `(1 − β) z + β x`: the run agrees with that recursion written out
/// (full batches and a fixed step, so that every gradient is known), and the report returns
/// the average.
fn interpolated_gradients<F: Float>(tol: f64) {
    let (n, d, h, beta, eta) = (300, 4, 0.5, 0.6, 0.2);
    let p = ridge::<F>(21, n, d, 1.0, 1e-2);
    let mut seen: Vec<(Array1<F>, Array1<F>)> = Vec::new();
    let mut observer = from_fn(|v: &IterView<'_, F>| {
        seen.push((v.w.clone(), v.average.expect("averaging is on").clone()));
        ControlFlow::Continue(())
    });
    let report = BigBatchSgd::builder()
        .initial_batch(n)
        .step(Fixed::new(eta))
        .average_iterates(h)
        .interpolate(beta)
        .tolerance(0.0)
        .max_iterations(25)
        .build()
        .unwrap()
        .minimize_with(&p, Array1::zeros(d), &mut observer)
        .unwrap();
    assert_eq!(seen.len(), 25);
    // The recursion in f64 from the model's per-sample gradients.
    let weight = 1.0 - (-1.0 / h).exp();
    let (mut z, mut y) = (vec![0.0; d], vec![0.0; d]);
    let mut x: Option<Vec<f64>> = None;
    let mut grad = Array1::<F>::zeros(d);
    for (k, (w, avg)) in seen.iter().enumerate() {
        let yf = Array1::from_iter(y.iter().map(|&v| F::from_f64(v)));
        let mut g = vec![0.0; d];
        for i in 0..n {
            p.sample_gradient(&yf, i, &mut grad);
            for (gj, &v) in g.iter_mut().zip(&grad) {
                *gj += v.as_f64() / n as f64;
            }
        }
        for (zj, gj) in z.iter_mut().zip(&g) {
            *zj -= eta * gj;
        }
        let xs = match x.take() {
            None => z.clone(),
            Some(a) => a
                .iter()
                .zip(&z)
                .map(|(a, z)| a + weight * (z - a))
                .collect(),
        };
        y = z
            .iter()
            .zip(&xs)
            .map(|(z, a)| (1.0 - beta) * z + beta * a)
            .collect();
        let scale = 1.0 + y.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for j in 0..d {
            assert!(
                (w[j].as_f64() - y[j]).abs() <= tol * scale
                    && (avg[j].as_f64() - xs[j]).abs() <= tol * scale,
                "iteration {k}, coordinate {j}: point {} against {}, average {} against {}",
                w[j],
                y[j],
                avg[j],
                xs[j]
            );
        }
        x = Some(xs);
    }
    assert_eq!(
        &report.w,
        &seen.last().unwrap().1,
        "the report returns the average"
    );
    assert_eq!(report.last_iterate.as_ref(), Some(&seen.last().unwrap().0));
}

#[test]
fn interpolated_gradients_f64_and_f32() {
    interpolated_gradients::<f64>(1e-10);
    interpolated_gradients::<f32>(1e-4);
}

#[test]
fn interpolation_needs_an_average_and_a_fraction() {
    for bad in [-0.1, 1.0, f64::NAN] {
        let err = BigBatchSgd::builder()
            .average_iterates(1.0)
            .interpolate(bad)
            .build()
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidParameter {
                    name: "interpolate",
                    ..
                }
            ),
            "{bad}: {err}"
        );
    }
    let err = BigBatchSgd::builder().interpolate(0.5).build().unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidParameter {
                name: "interpolate",
                ..
            }
        ),
        "{err}"
    );
}
