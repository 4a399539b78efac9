//! Budgets are hard limits for every rule and batch mode, and a step that leaves the iterate
//! unchanged is never repeated on the same batch.

use std::ops::ControlFlow;

use crate::common::*;
use bigbatch::data::Dataset;
use bigbatch::models::Logistic;
use bigbatch::observe::from_fn;
use bigbatch::*;
use ndarray::{Array1, Array2};
use rand::RngExt;

/// Logistic regression on generated data (`n × d`, labels from a noisy linear rule).
fn logistic<F: Float>(seed: u64, n: usize, d: usize, lambda: f64) -> Logistic<F> {
    let mut r = rng(seed);
    let x = Array2::from_shape_fn((n, d), |_| F::from_f64(r.random::<f64>() * 2.0 - 1.0));
    let truth: Vec<f64> = (0..d).map(|j| (j as f64 * 0.7).sin() * 3.0).collect();
    let y: Array1<F> = x
        .rows()
        .into_iter()
        .map(|row| {
            let z: f64 = row.iter().zip(&truth).map(|(a, b)| a.as_f64() * b).sum();
            let noisy = z + 0.5 * (r.random::<f64>() * 2.0 - 1.0);
            F::from_f64(if noisy > 0.0 { 1.0 } else { -1.0 })
        })
        .collect();
    Logistic::new(Dataset::from_dense(x, y).unwrap(), lambda).unwrap()
}

/// The run with one of the rules, chosen by index, under a builder's common settings.
fn run_rule<F: Float, Ob: Observer<F>>(
    rule: usize,
    mode: BatchMode,
    configure: impl Fn(BigBatchSgdBuilder) -> BigBatchSgdBuilder,
    model: &Logistic<F>,
    observer: &mut Ob,
) -> (String, Result<Report<F>>) {
    let base = configure(
        BigBatchSgd::builder()
            .batch_mode(mode)
            .seed(rule as u64 + 3),
    );
    let w0 = Array1::zeros(model.dim());
    match rule {
        0 => (
            "lbfgs".into(),
            base.build().unwrap().minimize_with(model, w0, observer),
        ),
        1 => (
            "armijo".into(),
            base.step(Armijo::new())
                .build()
                .unwrap()
                .minimize_with(model, w0, observer),
        ),
        2 => (
            "armijo on growth".into(),
            base.step(Armijo::new().increase(StepIncrease::OnBatchGrowth))
                .build()
                .unwrap()
                .minimize_with(model, w0, observer),
        ),
        3 => (
            "bb".into(),
            base.step(BarzilaiBorwein::new())
                .build()
                .unwrap()
                .minimize_with(model, w0, observer),
        ),
        _ => (
            "fixed".into(),
            base.step(Fixed::new(0.5))
                .build()
                .unwrap()
                .minimize_with(model, w0, observer),
        ),
    }
}

const RULES: usize = 5;
const MODES: [BatchMode; 2] = [BatchMode::Persistent, BatchMode::Fresh];

fn budget_is_hard<F: Float>() {
    let n = 700;
    let model = logistic::<F>(1, n, 8, 1e-3);
    for rule in 0..RULES {
        for mode in MODES {
            for budget in [0.013, 0.5, 1.0, 2.37, 6.0] {
                let limit = (budget * n as f64).floor() as u64;
                let configure = |b: BigBatchSgdBuilder| b.max_epochs(budget).tolerance(0.0);
                let (name, r) = run_rule(rule, mode, configure, &model, &mut ());
                let r = r.unwrap_or_else(|e| panic!("{name} {mode:?} {budget}: {e}"));
                let case = format!("{name} {mode:?} budget {budget}: {r}");
                assert!(r.grad_evals <= limit, "{case}: limit {limit}");
                assert!(r.epochs <= budget, "{case}");
                if r.stop == StopReason::EpochBudget {
                    // Stopped with less than one batch of the budget left.
                    assert!(
                        r.grad_evals + r.batch_size as u64 > limit,
                        "{case}: limit {limit}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_epoch_budget_is_never_exceeded_f64() {
    budget_is_hard::<f64>();
}

#[test]
fn the_epoch_budget_is_never_exceeded_f32() {
    budget_is_hard::<f32>();
}

/// With a tolerance of 0 a run goes on until the floating-point precision is exhausted. It
/// must then end with `NoProgress` on the full batch (or within its budget, having moved),
/// and a step that left `w` unchanged must be followed by a larger batch, never repeated.
fn zero_steps_never_repeat<F: Float>() {
    let model = logistic::<F>(2, 2000, 20, 1e-3);
    for rule in 0..RULES {
        for mode in MODES {
            let mut last: Option<(bool, usize)> = None;
            let mut zero_steps = 0;
            let mut repeated = Vec::new();
            let mut obs = from_fn(|v: &IterView<'_, F>| {
                let zero = v.record.step_size.as_f64() == 0.0;
                if let Some((true, size)) = last {
                    if v.record.batch_size <= size {
                        repeated.push(v.record.iteration);
                    }
                }
                zero_steps += usize::from(zero);
                last = Some((zero, v.record.batch_size));
                ControlFlow::Continue(())
            });
            let configure = |b: BigBatchSgdBuilder| b.max_epochs(300.0).tolerance(0.0);
            let (name, r) = run_rule(rule, mode, configure, &model, &mut obs);
            let r = r.unwrap_or_else(|e| panic!("{name} {mode:?}: {e}"));
            let case = format!("{name} {mode:?} {}: {r}", std::any::type_name::<F>());
            assert!(
                repeated.is_empty(),
                "{case}: zero steps repeated at {repeated:?}"
            );
            assert!(r.grad_evals <= 300 * 2000, "{case}");
            match r.stop {
                StopReason::NoProgress => assert_eq!(r.batch_size, 2000, "{case}"),
                StopReason::EpochBudget => assert!(r.iterations > zero_steps, "{case}"),
                other => panic!("{case}: stopped by {other:?}"),
            }
        }
    }
}

#[test]
fn zero_steps_grow_the_batch_or_end_the_run_f32() {
    zero_steps_never_repeat::<f32>();
}

#[test]
fn zero_steps_grow_the_batch_or_end_the_run_f64() {
    zero_steps_never_repeat::<f64>();
}

/// The measured trap: f32 logistic regression with Armijo and a tolerance of 0 spent its
/// whole 300-epoch budget repeating zero steps on the full batch (306 iterations). Now a zero
/// step on the full batch ends the run, so every iteration it records moved the iterate.
#[test]
fn armijo_in_f32_never_spends_its_budget_on_zero_steps() {
    let model = logistic::<f32>(3, 2000, 20, 1e-3);
    let mut history = History::new();
    let configure = |b: BigBatchSgdBuilder| b.max_epochs(300.0).tolerance(0.0);
    let (_, r) = run_rule(1, BatchMode::Persistent, configure, &model, &mut history);
    let r = r.unwrap();
    let zero_at_full = history
        .records()
        .iter()
        .filter(|x| x.batch_size == 2000 && x.step_size == 0.0)
        .count();
    eprintln!("armijo f32, tolerance 0, 300 epochs: {r}");
    assert_eq!(zero_at_full, 0, "{r}");
    assert!(
        r.stop == StopReason::NoProgress || r.stop == StopReason::EpochBudget,
        "{r}"
    );
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
