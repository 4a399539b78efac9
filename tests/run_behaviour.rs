//! Determinism, observers, budgets, stopping rules and batch-growth invariants.
mod common;

use std::ops::ControlFlow;

use bigbatch::observe::from_fn;
use bigbatch::*;
use common::*;
use ndarray::Array1;

fn determinism<F: Float>() {
    let p = ridge::<F>(12, 700, 5, 1.0, 0.01);
    let run = |seed: u64, rule: u8| {
        let b = BigBatchSgd::builder().seed(seed).max_epochs(15.0);
        let w0 = Array1::<F>::zeros(5);
        match rule {
            0 => b.build().unwrap().minimize(&p, w0),
            1 => b
                .step(BarzilaiBorwein::new())
                .build()
                .unwrap()
                .minimize(&p, w0),
            _ => b.step(Fixed::new(0.05)).build().unwrap().minimize(&p, w0),
        }
        .unwrap()
    };
    for rule in 0..3 {
        let (a, b) = (run(42, rule), run(42, rule));
        assert_eq!(
            bits(&a),
            bits(&b),
            "rule {rule}: same seed, same report bit for bit"
        );
        let c = run(43, rule);
        assert_ne!(
            bits(&a).0,
            bits(&c).0,
            "rule {rule}: another seed, another path"
        );
    }
    // The same optimizer value reused for a second run starts afresh (memory is reset).
    let mut opt = BigBatchSgd::builder()
        .seed(42)
        .max_epochs(15.0)
        .step(BarzilaiBorwein::new())
        .build()
        .unwrap();
    let first = opt.minimize(&p, Array1::zeros(5)).unwrap();
    let second = opt.minimize(&p, Array1::zeros(5)).unwrap();
    assert_eq!(bits(&first), bits(&second));
}

#[test]
fn same_seed_same_report_f64() {
    determinism::<f64>();
}

#[test]
fn same_seed_same_report_f32() {
    determinism::<f32>();
}

#[test]
fn an_observer_stops_the_run() {
    let p = ridge::<f64>(13, 500, 4, 1.0, 0.01);
    let mut calls = 0;
    let mut stop_at_5 = from_fn(|v: &IterView<'_, f64>| {
        calls += 1;
        if v.record.iteration == 4 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let r = BigBatchSgd::builder()
        .build()
        .unwrap()
        .minimize_with(&p, Array1::zeros(4), &mut stop_at_5)
        .unwrap();
    assert_eq!(r.stop, StopReason::Observer);
    assert_eq!(r.iterations, 5);
    assert_eq!(calls, 5);

    // A pair of observers: the history records everything the stopper saw.
    let mut pair = (
        History::new(),
        from_fn(|v: &IterView<'_, f64>| {
            if v.record.iteration == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }),
    );
    let r = BigBatchSgd::builder()
        .build()
        .unwrap()
        .minimize_with(&p, Array1::zeros(4), &mut pair)
        .unwrap();
    assert_eq!((r.iterations, pair.0.records().len()), (3, 3));
}

#[test]
fn history_records_are_consistent_with_the_report() {
    let p = ridge::<f32>(14, 900, 5, 1.0, 0.01);
    let mut h = History::new();
    let r = BigBatchSgd::builder()
        .seed(9)
        .tolerance(1e-8)
        .build()
        .unwrap()
        .minimize_with(&p, Array1::zeros(5), &mut h)
        .unwrap();
    let rec = h.records();
    assert_eq!(rec.len(), r.iterations);
    for (t, x) in rec.iter().enumerate() {
        assert_eq!(x.iteration, t);
        assert!(
            x.batch_size >= 2 && x.batch_size <= 900,
            "batch within [2, N]"
        );
        assert!((x.epochs - x.grad_evals as f64 / 900.0).abs() < 1e-12);
        assert!(x.step_size > 0.0 && x.loss.is_finite() && x.variance >= 0.0);
        let after = x.loss_after.expect("Armijo evaluates the new point");
        assert!(
            after <= x.loss,
            "it {t}: an accepted step raised the batch loss"
        );
    }
    assert!(
        rec.windows(2).all(|w| w[0].batch_size <= w[1].batch_size),
        "never shrinks"
    );
    assert!(rec.windows(2).all(|w| w[0].grad_evals < w[1].grad_evals));
    assert!(rec.windows(2).all(|w| w[0].loss_evals <= w[1].loss_evals));
    // The final batch was drawn after the last step (that is where the run converged). It
    // started from the statistics the last step's search computed at its first trial if it
    // accepted that trial (the default batches are persistent), and then evaluated only the
    // samples it added.
    assert_eq!(r.stop, StopReason::GradientTolerance);
    let last = rec.last().unwrap();
    let start_cost = if kept_statistics(rec)[rec.len()] {
        r.batch_size - last.batch_size
    } else {
        r.batch_size
    };
    assert_eq!(r.grad_evals, last.grad_evals + start_cost as u64);
    // The report's loss is the full objective at the final iterate: read off the converged
    // batch's statistics if that batch held every sample, one more pass otherwise.
    let final_pass = if r.batch_size == 900 { 0 } else { 900 };
    assert_eq!(r.loss_evals, last.loss_evals + final_pass, "final loss");
    let exact = p.loss64(&to64(&r.w), &p.all());
    assert!(
        (r.loss.as_f64() - exact).abs() <= 1e-5 * exact,
        "{} against {exact}",
        r.loss
    );
    assert!((r.epochs - r.grad_evals as f64 / 900.0).abs() < 1e-12);
}

#[test]
fn progress_prints_a_line_every_k_iterations() {
    let p = ridge::<f64>(15, 300, 3, 1.0, 0.01);
    let mut progress = Progress::with_writer(5, Vec::new());
    let r = BigBatchSgd::paper()
        .max_iterations(23)
        .tolerance(0.0)
        .build()
        .unwrap()
        .minimize_with(&p, Array1::zeros(3), &mut progress)
        .unwrap();
    assert_eq!(r.iterations, 23);
    let text = String::from_utf8(progress.into_inner()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1 + 5,
        "header and iterations 0, 5, 10, 15, 20:\n{text}"
    );
    assert!(lines[0].contains("batch") && lines[0].contains("step"));
    assert!(lines[5].trim_start().starts_with("20 "));
}

#[test]
fn budgets_stop_the_run_without_error() {
    let p = ridge::<f64>(16, 1000, 5, 1.0, 0.01);
    let r = BigBatchSgd::builder()
        .tolerance(0.0)
        .max_epochs(3.0)
        .build()
        .unwrap()
        .minimize(&p, Array1::zeros(5))
        .unwrap();
    assert_eq!(r.stop, StopReason::EpochBudget);
    // A hard budget: never past it, and stopped with less than one batch of it left.
    assert!(r.grad_evals <= 3000 && r.grad_evals + 1000 > 3000, "{r}");
    let r = BigBatchSgd::builder()
        .tolerance(0.0)
        .max_iterations(7)
        .build()
        .unwrap()
        .minimize(&p, Array1::zeros(5))
        .unwrap();
    assert_eq!((r.stop, r.iterations), (StopReason::IterationBudget, 7));
}

#[test]
fn relative_tolerance_stops_relative_to_the_first_batch() {
    let p = ridge::<f64>(17, 1000, 5, 1.0, 0.01);
    let mut h = History::new();
    let r = BigBatchSgd::builder()
        .tolerance(0.0)
        .relative_tolerance(1e-6)
        .seed(1)
        .build()
        .unwrap()
        .minimize_with(&p, Array1::zeros(5), &mut h)
        .unwrap();
    assert_eq!(r.stop, StopReason::GradientTolerance);
    let g0 = h.records()[0].grad_norm_sq;
    assert!(r.grad_norm_sq <= 1e-6 * g0);
    assert!(
        h.records().iter().all(|x| x.grad_norm_sq > 1e-6 * g0),
        "stopped at the first one below"
    );
}

#[test]
fn noise_makes_the_batch_grow_and_a_clean_signal_keeps_it_small() {
    // Far from the optimum the signal dominates: θ = 1 passes with small batches at first.
    // Near the optimum of a noisy problem the gradient is mostly noise: batches reach N.
    let noisy = ridge::<f64>(18, 3000, 5, 3.0, 0.001);
    let mut h = History::new();
    BigBatchSgd::builder()
        .tolerance(1e-14)
        .max_epochs(200.0)
        .build()
        .unwrap()
        .minimize_with(&noisy, Array1::zeros(5), &mut h)
        .unwrap();
    let sizes: Vec<usize> = h.records().iter().map(|r| r.batch_size).collect();
    assert!(sizes[0] <= 20, "starts small: {sizes:?}");
    assert_eq!(*sizes.last().unwrap(), 3000, "ends as the whole data set");
    // A smaller θ asks for bigger batches at the same point.
    let sizes_at = |theta: f64| {
        let mut h = History::new();
        BigBatchSgd::builder()
            .theta(theta)
            .max_iterations(1)
            .build()
            .unwrap()
            .minimize_with(&noisy, Array1::from_elem(5, 0.9), &mut h)
            .unwrap();
        h.records()[0].batch_size
    };
    assert!(
        sizes_at(0.3) > sizes_at(1.0),
        "θ=0.3: {} vs θ=1: {}",
        sizes_at(0.3),
        sizes_at(1.0)
    );
    // Noiseless: per-sample gradients all point the same way near the optimum; no growth needed.
    let (x, y, _) = linear_data(19, 3000, 5, 1.0, 0.0);
    let clean = Ridge::<f64>::new(x, y, 0.0);
    let mut h = History::new();
    BigBatchSgd::builder()
        .tolerance(1e-20)
        .build()
        .unwrap()
        .minimize_with(&clean, Array1::zeros(5), &mut h)
        .unwrap();
    let max = h.records().iter().map(|r| r.batch_size).max().unwrap();
    assert!(max < 3000, "noiseless problem needed the full batch");
}

#[test]
fn tiny_and_degenerate_data_sets() {
    // One sample: plain gradient descent on it, exact from the start.
    let (x, y, _) = linear_data(20, 1, 3, 1.0, 0.0);
    let one = Ridge::<f64>::new(x, y, 0.5);
    let r = BigBatchSgd::builder()
        .build()
        .unwrap()
        .minimize(&one, Array1::zeros(3))
        .unwrap();
    assert_eq!((r.batch_size, r.stop), (1, StopReason::GradientTolerance));
    assert!(max_abs_diff(&r.w, &one.optimum()) < 1e-5);
    // Initial batch larger than N: clamped, exact gradient descent.
    let small = ridge::<f32>(21, 5, 2, 1.0, 0.1);
    let r = BigBatchSgd::builder()
        .initial_batch(100)
        .build()
        .unwrap()
        .minimize(&small, Array1::zeros(2))
        .unwrap();
    assert_eq!(r.batch_size, 5);
    assert!(max_abs_diff(&r.w, &small.optimum()) < 1e-3, "{r}");
    // Already at the optimum of a noiseless problem: stops at once with zero gradient.
    let (x, y, w) = linear_data(22, 50, 3, 1.0, 0.0);
    let exact = Ridge::<f64>::new(x, y, 0.0);
    let r = BigBatchSgd::builder()
        .tolerance(1e-20)
        .build()
        .unwrap()
        .minimize(&exact, w)
        .unwrap();
    assert_eq!((r.iterations, r.stop), (0, StopReason::GradientTolerance));
}

#[test]
fn public_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<BigBatchSgd>();
    assert_send_sync::<BigBatchSgd<BarzilaiBorwein>>();
    assert_send_sync::<BigBatchSgd<Fixed>>();
    assert_send_sync::<Report<f64>>();
    assert_send_sync::<RunState<f32>>();
    assert_send_sync::<GradStats<f64>>();
    assert_send_sync::<History<f64>>();
    assert_send_sync::<Error>();
    assert_send_sync::<BigBatchSgd<Lbfgs>>();
    assert_send_sync::<BigBatchSgd<Armijo>>();
    assert_send_sync::<bigbatch::data::Dataset<f32>>();
    assert_send_sync::<bigbatch::data::CsrMatrix<f64>>();
    assert_send_sync::<bigbatch::models::LeastSquares<f32>>();
    assert_send_sync::<bigbatch::models::Logistic<f64>>();
    assert_send_sync::<bigbatch::models::Huber<f64>>();
    assert_send_sync::<bigbatch::models::Softmax<f32>>();
    assert_send_sync::<bigbatch::models::Mlp<f64>>();
}

/// The same objective, except that its batched gradient reports no losses: the optimizer
/// then evaluates batch losses separately, and cannot start an iteration from the
/// statistics a line search computed at its accepted trial.
struct NoLosses<O>(O);

impl<F: Float, O: Objective<F>> Objective<F> for NoLosses<O> {
    fn n_samples(&self) -> usize {
        self.0.n_samples()
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn sample_loss(&self, w: &ndarray::ArrayRef1<F>, i: usize) -> F {
        self.0.sample_loss(w, i)
    }
    fn sample_gradient(
        &self,
        w: &ndarray::ArrayRef1<F>,
        i: usize,
        grad: &mut ndarray::ArrayRef1<F>,
    ) {
        self.0.sample_gradient(w, i, grad);
    }
    fn batch_gradient(&self, w: &ndarray::ArrayRef1<F>, batch: &[usize], stats: &mut GradStats<F>) {
        let mut grad = Array1::zeros(self.dim());
        for &i in batch {
            self.0.sample_gradient(w, i, &mut grad);
            stats.push(&grad);
        }
    }
}

/// A run from zeros with `builder`, and the records of its iterations.
fn observed<F: Float, S: StepRule, O: Objective<F> + ?Sized>(
    builder: BigBatchSgdBuilder<S>,
    objective: &O,
) -> (Report<F>, History<F>) {
    let mut h = History::new();
    let r = builder
        .build()
        .unwrap()
        .minimize_with(objective, Array1::zeros(objective.dim()), &mut h)
        .unwrap();
    (r, h)
}

/// Starting an iteration from the statistics the last line search computed at its accepted
/// trial (persistent batches) changes no iterate, bit for bit: it only saves a pass over the
/// batch. Checked against the same objective without batched losses, where nothing is kept,
/// for every searching rule (Armijo with and without keeping its first trial), with and
/// without batch growth.
fn kept_trial_statistics_change_nothing<F: Float>() {
    let p = ridge::<F>(21, 1200, 6, 1.5, 0.01);
    let runs = |rule: u8, initial: usize| {
        let run = |objective: &dyn Objective<F>| {
            let b = BigBatchSgd::builder()
                .seed(3)
                .initial_batch(initial)
                .tolerance(1e-10)
                .max_iterations(60)
                .max_epochs(f64::INFINITY);
            match rule {
                0 => observed(b, objective),
                1 => observed(b.step(Lbfgs::new().memory(1)), objective),
                3 => observed(b.step(Armijo::new()), objective),
                _ => observed(b.step(BarzilaiBorwein::new()), objective),
            }
        };
        (run(&p), run(&NoLosses(&p)))
    };
    for rule in 0..4 {
        for initial in [10, 1200] {
            let case = format!("rule {rule}, initial batch {initial}");
            let ((kept, hk), (plain, hp)) = runs(rule, initial);
            let steps = |h: &History<F>| {
                h.records()
                    .iter()
                    .map(|r| (r.batch_size, r.step_size.as_f64().to_bits(), r.backtracks))
                    .collect::<Vec<_>>()
            };
            assert_eq!(steps(&hk), steps(&hp), "{case}");
            let (a, b) = (bits(&kept), bits(&plain));
            assert_eq!(
                (&a.0, a.2, a.5, a.6, a.7),
                (&b.0, b.2, b.5, b.6, b.7),
                "{case}"
            );
            assert!(kept.iterations > 5, "{case}: {kept}");
            if rule == 3 {
                // Armijo keeps nothing by default: every iteration evaluates its whole batch,
                // and no trial costs gradients.
                assert_eq!(kept.grad_evals, plain.grad_evals, "{case}");
                let mut prev = 0;
                for r in hk.records() {
                    assert_eq!(r.grad_evals - prev, r.batch_size as u64, "{case}");
                    prev = r.grad_evals;
                }
            } else {
                let saved = kept_statistics(hk.records()).iter().filter(|&&k| k).count();
                // L-BFGS and Barzilai–Borwein usually accept their first trial (measured: 7 of
                // 9 to 28 of 29 iterations here); Armijo, which enlarges its step before each
                // search, often does not (0 of 36 to 13 of 60).
                if rule != 1 {
                    assert!(2 * saved >= kept.iterations, "{case}: {saved} kept");
                }
            }
            let total = |r: &Report<F>| r.grad_evals + r.loss_evals;
            assert!(total(&kept) < total(&plain), "{case}: {kept} vs {plain}");
        }
    }
}

#[test]
fn kept_trial_statistics_change_nothing_f32() {
    kept_trial_statistics_change_nothing::<f32>();
}

#[test]
fn kept_trial_statistics_change_nothing_f64() {
    kept_trial_statistics_change_nothing::<f64>();
}

/// The report's loss is the full objective at the final iterate, whether it was read off
/// statistics the run had computed there over every sample (a full batch that converged, the
/// kept first trial of a full-batch search), the loss a full-batch line search computed there,
/// or evaluated by one more pass.
fn report_loss_is_the_full_objective<F: Float>(rel: f64) {
    let p = ridge::<F>(23, 500, 4, 1.0, 0.01);
    let check = |r: &Report<F>, passes: u64, case: &str, before: u64| {
        let exact = p.loss64(&to64(&r.w), &p.all());
        assert!(
            (r.loss.as_f64() - exact).abs() <= rel * exact,
            "{case}: {} against {exact}",
            r.loss
        );
        assert_eq!(r.loss_evals - before, passes * 500, "{case}");
    };
    let last_loss_evals = |h: &History<F>| h.records().last().map_or(0, |x| x.loss_evals);
    let run = |initial: usize, tolerance: f64, max_iterations: usize| {
        observed(
            BigBatchSgd::builder()
                .initial_batch(initial)
                .tolerance(tolerance)
                .max_iterations(max_iterations),
            &p,
        )
    };
    // Converged on the full batch: no extra pass.
    let (r, h) = run(500, 1e-6, 100_000);
    assert_eq!(r.stop, StopReason::GradientTolerance);
    check(&r, 0, "converged", last_loss_evals(&h));
    // Stopped by a budget right after a full-batch step whose first trial was accepted.
    let (r, h) = run(500, 0.0, 4);
    assert_eq!(r.stop, StopReason::IterationBudget);
    assert_eq!(h.records().last().unwrap().backtracks, 0);
    check(&r, 0, "kept trial", last_loss_evals(&h));
    // Stopped by the epoch budget after a full-batch step whose trial the budget could not pay
    // gradients for: the search's loss at the final iterate is the objective, no extra pass.
    let (r, h) = observed(
        BigBatchSgd::builder()
            .initial_batch(500)
            .tolerance(0.0)
            .max_epochs(3.5),
        &p,
    );
    assert_eq!(r.stop, StopReason::EpochBudget);
    let last = h.records().last().unwrap();
    assert_eq!((last.batch_size, last.backtracks), (500, 0));
    assert!(
        r.grad_evals <= 1750 && last.loss_evals >= 500,
        "a loss-only trial"
    );
    check(&r, 0, "loss-only trial", last_loss_evals(&h));
    // Stopped by a budget on a partial batch: one pass.
    let (r, h) = run(20, 0.0, 2);
    check(&r, 1, "partial batch", last_loss_evals(&h));
}

#[test]
fn report_loss_is_the_full_objective_f32() {
    report_loss_is_the_full_objective::<f32>(1e-5);
}

#[test]
fn report_loss_is_the_full_objective_f64() {
    report_loss_is_the_full_objective::<f64>(1e-12);
}

/// `ℓ_i(w) = ½(w_i − t_i)²`: each sample owns a coordinate, so a step fits the samples of its
/// batch exactly (gradient and variance vanish on them) and leaves the others where they were.
struct OwnCoordinate<F>(Array1<F>);

impl<F: Float> Objective<F> for OwnCoordinate<F> {
    fn n_samples(&self) -> usize {
        self.0.len()
    }
    fn dim(&self) -> usize {
        self.0.len()
    }
    fn sample_loss(&self, w: &ndarray::ArrayRef1<F>, i: usize) -> F {
        let r = w[i] - self.0[i];
        F::from_f64(0.5) * r * r
    }
    fn sample_gradient(
        &self,
        w: &ndarray::ArrayRef1<F>,
        i: usize,
        grad: &mut ndarray::ArrayRef1<F>,
    ) {
        grad.fill(F::zero());
        grad[i] = w[i] - self.0[i];
    }
}

/// A persistent batch the iterate has been fitted to passes the test with a vanishing
/// gradient; the run must not stop there, but only where the unseen samples agree: here, at
/// the optimum of every sample.
fn a_fitted_persistent_batch_does_not_stop_the_run<F: Float>() {
    let n = 200;
    let targets: Array1<F> = (0..n).map(|i| F::from_f64(1.0 + (i % 7) as f64)).collect();
    let objective = OwnCoordinate(targets.clone());
    let report = BigBatchSgd::builder()
        .theta(1.0)
        .build()
        .unwrap()
        .minimize(&objective, Array1::zeros(n))
        .unwrap();
    assert_eq!(report.stop, StopReason::GradientTolerance, "{report}");
    // Every coordinate reached its target, not only those of the first batches.
    let worst = report
        .w
        .iter()
        .zip(&targets)
        .map(|(w, t)| (*w - *t).as_f64().abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-3, "{report}: largest error {worst}");
    assert!(report.loss.as_f64() < 1e-6, "{report}");
}

#[test]
fn a_fitted_persistent_batch_does_not_stop_the_run_f32() {
    a_fitted_persistent_batch_does_not_stop_the_run::<f32>();
}

#[test]
fn a_fitted_persistent_batch_does_not_stop_the_run_f64() {
    a_fitted_persistent_batch_does_not_stop_the_run::<f64>();
}
