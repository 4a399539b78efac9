//! L-BFGS directions and the persistent batch: convergence, the prefix property, the cost of
//! curvature pairs, determinism.
use std::ops::ControlFlow;

use crate::common::*;
use bigbatch::observe::from_fn;
use bigbatch::*;
use ndarray::Array1;

fn lbfgs(mode: BatchMode) -> BigBatchSgdBuilder<Lbfgs> {
    BigBatchSgd::builder()
        .step(Lbfgs::new())
        .batch_mode(mode)
        .growth_rule(GrowthRule::ToRequired)
}

/// Iterations until the relative suboptimality `(f − f*)/f*` is at most 1e-10.
fn iterations_to<S: StepRule>(mut opt: BigBatchSgd<S>, p: &Ridge<f64>, f_star: f64) -> usize {
    let all = p.all();
    let mut reached = None;
    let mut obs = from_fn(|v: &IterView<'_, f64>| {
        if (p.loss64(&to64(v.w), &all) - f_star) / f_star <= 1e-10 {
            reached = Some(v.record.iteration + 1);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    opt.minimize_with(p, Array1::zeros(p.dim()), &mut obs)
        .unwrap();
    reached.expect("reached a relative suboptimality of 1e-10")
}

fn full_batch<S>(b: BigBatchSgdBuilder<S>, n: usize) -> BigBatchSgdBuilder<S> {
    b.initial_batch(n)
        .tolerance(0.0)
        .max_iterations(20_000)
        .max_epochs(f64::INFINITY)
}

/// Full batches on an ill-conditioned strongly convex quadratic: L-BFGS reaches the optimum
/// (relative suboptimality 1e-10) in far fewer iterations than gradient descent with Armijo
/// steps.
#[test]
fn full_batch_lbfgs_beats_gradient_descent_by_far() {
    let (x, y, _) = linear_data(40, 400, 8, 12.0, 1.0); // column scales 1 .. 13
    let p = Ridge::<f64>::new(x, y, 1e-3);
    let (mu, l) = p.curvature_bounds();
    assert!(l / mu > 50.0, "condition number {}", l / mu);
    let w_star = p.optimum();
    let f_star = p.loss64(w_star.as_slice().unwrap(), &p.all());
    let lbfgs_its = iterations_to(
        full_batch(lbfgs(BatchMode::Persistent), 400)
            .build()
            .unwrap(),
        &p,
        f_star,
    );
    let gd = BigBatchSgd::builder().step(Armijo::new());
    let gd_its = iterations_to(full_batch(gd, 400).build().unwrap(), &p, f_star);
    assert!(
        gd_its >= 10 * lbfgs_its,
        "L-BFGS {lbfgs_its} iterations, gradient descent {gd_its}"
    );
}

/// Noiseless least squares: both batch modes recover the generating weights, in f32 and f64.
fn recovers<F: Float>(tolerance: f64, max_err: f64) {
    let (x, y, w_true) = linear_data(41, 600, 5, 1.0, 0.0);
    let p = Ridge::<F>::new(x, y, 0.0);
    for mode in [BatchMode::Persistent, BatchMode::Fresh] {
        let r = lbfgs(mode)
            .tolerance(tolerance)
            .build()
            .unwrap()
            .minimize(&p, Array1::zeros(5))
            .unwrap();
        assert_eq!(r.stop, StopReason::GradientTolerance, "{mode:?}: {r}");
        assert!(max_abs_diff(&r.w, &w_true) <= max_err, "{mode:?}: {r}");
    }
}

#[test]
fn lbfgs_recovers_generating_weights_f64() {
    recovers::<f64>(1e-24, 1e-9);
}

#[test]
fn lbfgs_recovers_generating_weights_f32() {
    recovers::<f32>(1e-9, 1e-3);
}

/// The persistent batch is a growing prefix of one shuffle: each batch extends the last and
/// never repeats an index; once it holds every sample it is read in storage order.
#[test]
fn persistent_batches_are_prefixes_of_one_shuffle() {
    let p = ridge::<f64>(42, 1500, 5, 2.0, 1e-3);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut obs = from_fn(|v: &IterView<'_, f64>| {
        batches.push(v.batch.to_vec());
        ControlFlow::Continue(())
    });
    lbfgs(BatchMode::Persistent)
        .tolerance(1e-14)
        .build()
        .unwrap()
        .minimize_with(&p, Array1::zeros(5), &mut obs)
        .unwrap();
    assert!(batches.len() > 5);
    let all: Vec<usize> = (0..1500).collect();
    for pair in batches.windows(2) {
        assert!(pair[1].len() >= pair[0].len());
        if pair[1].len() < 1500 {
            assert_eq!(
                &pair[1][..pair[0].len()],
                &pair[0][..],
                "a batch extends the previous one"
            );
            let mut sorted = pair[1].clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), pair[1].len(), "no index repeats");
            assert_ne!(
                sorted, pair[1],
                "a partial batch is in the order of its draw"
            );
        } else {
            assert_eq!(pair[1], all, "the full batch is in storage order");
        }
    }
    assert_eq!(
        batches.last().unwrap().len(),
        1500,
        "this run reached the full batch"
    );
    // The fresh mode redraws: consecutive batches differ.
    let mut fresh: Vec<Vec<usize>> = Vec::new();
    let mut obs = from_fn(|v: &IterView<'_, f64>| {
        fresh.push(v.batch.to_vec());
        ControlFlow::Continue(())
    });
    lbfgs(BatchMode::Fresh)
        .max_iterations(5)
        .build()
        .unwrap()
        .minimize_with(&p, Array1::zeros(5), &mut obs)
        .unwrap();
    assert!(
        fresh
            .windows(2)
            .any(|w| w[1][..w[0].len().min(w[1].len())] != w[0][..w[0].len().min(w[1].len())])
    );
}

/// Every per-sample gradient is counted: the persistent mode's pairs cost nothing extra, the
/// fresh mode's cost one more batch per iteration. With persistent batches the line search
/// computes the batch statistics at its first trial (counted), and when that trial is accepted
/// the next iteration starts from them instead of evaluating its batch again.
#[test]
fn pair_gradients_are_counted() {
    let p = ridge::<f64>(43, 2000, 5, 2.0, 1e-3);
    for mode in [BatchMode::Persistent, BatchMode::Fresh] {
        let persistent = mode == BatchMode::Persistent;
        let mut h = History::new();
        lbfgs(mode)
            .max_iterations(30)
            .tolerance(0.0)
            .build()
            .unwrap()
            .minimize_with(&p, Array1::zeros(5), &mut h)
            .unwrap();
        let rec = h.records();
        let mut prev_evals = 0;
        let mut prev_size = 10;
        let mut reused = 0;
        let kept = kept_statistics(rec);
        for (r, &started_kept) in rec.iter().zip(&kept) {
            let spent = r.grad_evals - prev_evals;
            // The batch the iteration started with (free if the previous step landed on a
            // trial whose statistics were kept), grown to its final size.
            let started_kept = persistent && started_kept;
            reused += usize::from(started_kept);
            let batch_cost = if started_kept {
                (r.batch_size - prev_size) as u64
            } else {
                r.batch_size as u64
            };
            let pair_cost = if mode == BatchMode::Fresh && r.iteration > 0 {
                r.batch_size as u64
            } else {
                0
            };
            let trial_cost = if persistent { r.batch_size as u64 } else { 0 };
            assert_eq!(
                spent,
                batch_cost + pair_cost + trial_cost,
                "{mode:?} it {} (batch {prev_size} → {})",
                r.iteration,
                r.batch_size
            );
            prev_evals = r.grad_evals;
            prev_size = r.batch_size;
        }
        if persistent {
            assert!(reused >= rec.len() / 2, "{reused} of {} reused", rec.len());
        }
    }
}

fn same_seed_same_bits<F: Float>() {
    let p = ridge::<F>(44, 900, 6, 2.0, 1e-3);
    for mode in [BatchMode::Persistent, BatchMode::Fresh] {
        let run = |seed| {
            lbfgs(mode)
                .seed(seed)
                .max_epochs(10.0)
                .build()
                .unwrap()
                .minimize(&p, Array1::zeros(6))
                .unwrap()
        };
        let bits = |r: &Report<F>| r.w.iter().map(|x| x.as_f64().to_bits()).collect::<Vec<_>>();
        let (a, b, c) = (run(5), run(5), run(6));
        assert_eq!(bits(&a), bits(&b), "{mode:?}");
        assert_eq!(
            (a.grad_evals, a.loss_evals, a.iterations),
            (b.grad_evals, b.loss_evals, b.iterations)
        );
        assert_ne!(bits(&a), bits(&c), "{mode:?}: another seed");
    }
}

#[test]
fn lbfgs_runs_are_deterministic_f64() {
    same_seed_same_bits::<f64>();
}

#[test]
fn lbfgs_runs_are_deterministic_f32() {
    same_seed_same_bits::<f32>();
}

#[test]
fn lbfgs_parameters_are_checked() {
    let b = || BigBatchSgd::builder();
    let name = |r: Result<BigBatchSgd<Lbfgs>>| match r {
        Err(Error::InvalidParameter { name, .. }) => name,
        other => panic!("{:?}", other.map(|_| ())),
    };
    assert_eq!(name(b().step(Lbfgs::new().memory(0)).build()), "memory");
    assert_eq!(
        name(b().step(Lbfgs::new().initial_step(0.0)).build()),
        "initial_step"
    );
    assert_eq!(
        name(b().step(Lbfgs::new().sufficient_decrease(1.0)).build()),
        "sufficient_decrease"
    );
    assert_eq!(
        name(b().step(Lbfgs::new().curvature_threshold(-1.0)).build()),
        "curvature_threshold"
    );
    assert_eq!(
        name(b().step(Lbfgs::new().max_backtracks(0)).build()),
        "max_backtracks"
    );
}
