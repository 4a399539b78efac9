//! Observers stop a run, histories agree with the report, progress prints on schedule.

use std::ops::ControlFlow;

use crate::common::*;
use bigbatch::observe::from_fn;
use bigbatch::*;
use ndarray::Array1;

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
    let n = h.records().len();
    let taken = h.into_records();
    assert_eq!((taken.len(), taken[n - 1].iteration), (n, n - 1));
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
