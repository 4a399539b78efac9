//! Stopping rules: the relative tolerance, a report loss that is the full objective, and a
//! fitted persistent batch that is not mistaken for convergence.

use crate::batches::observed;
use crate::common::*;
use bigbatch::*;
use ndarray::Array1;

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
