//! Faults injected on purpose: a model that is NaN beyond a point, that turns NaN or infinite
//! after a number of evaluations, or that panics; through the per-sample path, the batch-only
//! path (micro-batches) and sharded over 1 to 3 thread workers; under every step rule, both
//! batch modes, f32 and f64. Every run must end within a time bound and within its budgets,
//! with the truthful error or stop reason and a finite last iterate, the same on every worker.
#![allow(clippy::needless_range_loop)] // small fixed-size rows, indexed as the formulas read

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use bigbatch::distributed::{Layout, Sharded, ThreadRanks, Workers};
use bigbatch::{
    Adadelta, Adam, Armijo, BarzilaiBorwein, BatchMode, BatchObjective, BigBatchSgd,
    BigBatchSgdBuilder, Error, Fixed, Float, Groups, Lbfgs, MicroBatched, Momentum, Objective,
    Report, StepRule, StopReason,
};
use ndarray::{Array1, ArrayRef1};

const N: usize = 240;
const DIM: usize = 3;
const EPOCHS: f64 = 5.0;
const LOSS_BUDGET: f64 = 10.0;
/// Where the region fault begins: the model is NaN for `w[0] > LIMIT`; its optimum is at 2.
const LIMIT: f64 = 1.0;
/// Wall time a faulty run may take, however it ends.
const TIME_BOUND: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// NaN loss and gradient wherever `w[0] > LIMIT`.
    NanBeyond,
    /// After this many per-sample evaluations, every value is this one.
    ValueAfter(u64, f64),
    /// After this many per-sample evaluations, a panic.
    PanicAfter(u64),
}

/// Least squares `f_i(w) = (x_i·w − y_i)²/2` with `y_i = x_i·(2, −1, 0.5)` plus noise, and a
/// fault.
struct Faulty {
    x: Vec<[f64; DIM]>,
    y: Vec<f64>,
    fault: Option<Fault>,
    evals: AtomicU64,
}

impl Faulty {
    /// Samples `first..first + n` of the data (a worker's block), with `fault`.
    fn new(first: usize, n: usize, fault: Option<Fault>) -> Self {
        let x: Vec<[f64; DIM]> = (first..first + n)
            .map(|i| {
                let t = i as f64;
                [
                    (t * 0.37).sin(),
                    (t * 0.11).cos(),
                    ((i * 7919) % 97) as f64 / 97.0,
                ]
            })
            .collect();
        let y = x
            .iter()
            .enumerate()
            .map(|(k, r)| 2.0 * r[0] - r[1] + 0.5 * r[2] + 0.3 * ((first + k) as f64 * 1.7).sin())
            .collect();
        Faulty {
            x,
            y,
            fault,
            evals: AtomicU64::new(0),
        }
    }

    fn evals(&self) -> u64 {
        self.evals.load(Ordering::Relaxed)
    }

    /// The fault's value at `w` for the next `k` evaluations, if it strikes.
    fn strike<F: Float>(&self, w: &ArrayRef1<F>, k: usize) -> Option<F> {
        let before = self.evals.fetch_add(k as u64, Ordering::Relaxed);
        match self.fault? {
            Fault::NanBeyond => (w[0].as_f64() > LIMIT).then(F::nan),
            Fault::ValueAfter(after, v) => (before + k as u64 > after).then(|| F::from_f64(v)),
            Fault::PanicAfter(after) => {
                assert!(
                    before + k as u64 <= after,
                    "a fault injected after {after} evaluations"
                );
                None
            }
        }
    }

    fn residual<F: Float>(&self, w: &ArrayRef1<F>, i: usize) -> f64 {
        (0..DIM).map(|j| self.x[i][j] * w[j].as_f64()).sum::<f64>() - self.y[i]
    }
}

impl<F: Float> Objective<F> for Faulty {
    fn n_samples(&self) -> usize {
        self.x.len()
    }
    fn dim(&self) -> usize {
        DIM
    }
    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        if let Some(v) = self.strike(w, 1) {
            return v;
        }
        F::from_f64(0.5 * self.residual(w, i).powi(2))
    }
    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) {
        // One evaluation, one strike of the fault.
        self.sample_loss_gradient(w, i, grad);
    }
    fn sample_loss_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) -> F {
        if let Some(v) = self.strike(w, 1) {
            grad.fill(v);
            return v;
        }
        let r = self.residual(w, i);
        for j in 0..DIM {
            grad[j] = F::from_f64(r * self.x[i][j]);
        }
        F::from_f64(0.5 * r * r)
    }
}

impl<F: Float> BatchObjective<F> for Faulty {
    fn n_samples(&self) -> usize {
        self.x.len()
    }
    fn dim(&self) -> usize {
        DIM
    }
    fn loss(&self, w: &ArrayRef1<F>, indices: &[usize]) -> F {
        if let Some(v) = self.strike(w, indices.len()) {
            return v;
        }
        let sum: f64 = indices
            .iter()
            .map(|&i| 0.5 * self.residual(w, i).powi(2))
            .sum();
        F::from_f64(sum / indices.len() as f64)
    }
    fn loss_and_gradient(&self, w: &ArrayRef1<F>, indices: &[usize], grad: &mut ArrayRef1<F>) -> F {
        if let Some(v) = self.strike(w, indices.len()) {
            grad.fill(v);
            return v;
        }
        let mut g = [0.0; DIM];
        let mut loss = 0.0;
        for &i in indices {
            let r = self.residual(w, i);
            loss += 0.5 * r * r;
            for j in 0..DIM {
                g[j] += r * self.x[i][j] / indices.len() as f64;
            }
        }
        for j in 0..DIM {
            grad[j] = F::from_f64(g[j]);
        }
        F::from_f64(loss / indices.len() as f64)
    }
}

/// The rules under test, by name.
const RULES: [&str; 7] = [
    "lbfgs", "armijo", "bb", "fixed", "adam", "adadelta", "momentum",
];

/// Minimizes `o` from zero with the rule named `rule`, in `mode`, within the test's budgets.
fn minimize<F: Float, O: Objective<F> + ?Sized>(
    rule: &str,
    mode: BatchMode,
    o: &O,
) -> bigbatch::Result<Report<F>> {
    fn go<F: Float, O: Objective<F> + ?Sized, S: StepRule>(
        b: BigBatchSgdBuilder<S>,
        o: &O,
    ) -> bigbatch::Result<Report<F>> {
        b.build()?.minimize(o, Array1::zeros(DIM))
    }
    let b = BigBatchSgd::builder()
        .batch_mode(mode)
        .max_epochs(EPOCHS)
        .loss_budget(LOSS_BUDGET)
        .tolerance(0.0)
        .seed(3);
    match rule {
        "lbfgs" => go(b.step(Lbfgs::new()), o),
        "armijo" => go(b.step(Armijo::new()), o),
        "bb" => go(b.step(BarzilaiBorwein::new()), o),
        "fixed" => go(b.step(Fixed::new(0.5)), o),
        "adam" => go(b.step(Adam::new().step_size(0.1)), o),
        "adadelta" => go(b.step(Adadelta::new()), o),
        "momentum" => go(b.step(Momentum::new().step_size(0.2)), o),
        other => panic!("unknown rule {other}"),
    }
}

/// How a faulty run ended: its result, or a panic.
type Ended<F> = std::thread::Result<bigbatch::Result<Report<F>>>;

/// Runs `f` on a thread and waits at most `TIME_BOUND` for it.
fn bounded<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::Result<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
    });
    rx.recv_timeout(TIME_BOUND)
        .unwrap_or_else(|_| panic!("{what}: no end within {TIME_BOUND:?}"))
}

/// The most per-sample evaluations (gradients and losses) a run of `n` samples may make.
fn evaluation_bound(n: usize) -> u64 {
    let n = n as f64;
    (EPOCHS * n + LOSS_BUDGET * EPOCHS * n + n) as u64
}

/// Whether a run that made `evals` evaluations ended as `fault` demands; a message if not.
fn judge<F: Float>(what: &str, fault: Fault, evals: u64, ended: &Ended<F>) {
    let finite = |w: &[f64]| w.iter().all(|x| x.is_finite());
    let struck = match fault {
        Fault::ValueAfter(after, _) | Fault::PanicAfter(after) => evals > after,
        Fault::NanBeyond => true,
    };
    if !struck {
        // The run ended before the fault: it must simply be a truthful, finite run.
        let r = match ended {
            Ok(Ok(r)) => r,
            other => panic!("{what}: the fault never struck, yet {other:?}"),
        };
        assert!(
            r.w.iter().all(|x| x.is_finite()) && r.non_finite_trials == 0,
            "{what}: {r}"
        );
        return;
    }
    match (fault, ended) {
        (Fault::PanicAfter(_), Err(_)) => {}
        (Fault::PanicAfter(_), Ok(r)) => panic!("{what}: the panic was swallowed: {r:?}"),
        (_, Err(_)) => panic!("{what}: panicked"),
        (Fault::ValueAfter(..), Ok(Err(e @ Error::NonFinite { .. }))) => {
            let w: Vec<f64> = e.last_iterate::<f64>().expect("an iterate").to_vec();
            assert!(finite(&w), "{what}: last iterate {w:?}");
        }
        (Fault::ValueAfter(..), Ok(other)) => {
            panic!("{what}: a model non-finite everywhere must end with NonFinite, got {other:?}")
        }
        (Fault::NanBeyond, Ok(Err(e @ Error::NonFinite { .. }))) => {
            let w: Vec<f64> = e.last_iterate::<f64>().expect("an iterate").to_vec();
            assert!(finite(&w) && w[0] <= LIMIT, "{what}: last iterate {w:?}");
        }
        (Fault::NanBeyond, Ok(Ok(r))) => {
            // Truthful only if a budget ran out; the run never reached the optimum at 2.
            assert!(
                matches!(
                    r.stop,
                    StopReason::EpochBudget | StopReason::LossBudget | StopReason::IterationBudget
                ),
                "{what}: ended Ok with {:?}: {r}",
                r.stop
            );
            assert!(r.w.iter().all(|x| x.is_finite()) && r.w[0].as_f64() <= LIMIT);
        }
        (Fault::NanBeyond, Ok(Err(e))) => panic!("{what}: {e}"),
    }
}

fn faults() -> [Fault; 4] {
    [
        Fault::NanBeyond,
        Fault::ValueAfter(N as u64, f64::NAN),
        Fault::ValueAfter(2 * N as u64, f64::INFINITY),
        Fault::PanicAfter(N as u64 / 2 * 3),
    ]
}

fn per_sample_and_batch_only<F: Float + Send + 'static>() {
    for rule in RULES {
        for mode in [BatchMode::Fresh, BatchMode::Persistent] {
            for fault in faults() {
                for batch_only in [false, true] {
                    let what = format!(
                        "{} {rule} {mode:?} {fault:?} {}",
                        std::any::type_name::<F>(),
                        if batch_only {
                            "batch-only"
                        } else {
                            "per-sample"
                        }
                    );
                    let rule = rule.to_string();
                    let (ended, evals) = bounded(&what, move || {
                        let model = Faulty::new(0, N, Some(fault));
                        if batch_only {
                            let o = MicroBatched::new(model, Groups::Count(4)).expect("groups");
                            let r: Ended<F> =
                                catch_unwind(AssertUnwindSafe(|| minimize(&rule, mode, &o)));
                            (r, o.model().evals())
                        } else {
                            let r: Ended<F> =
                                catch_unwind(AssertUnwindSafe(|| minimize(&rule, mode, &model)));
                            (r, model.evals())
                        }
                    })
                    .unwrap_or_else(|_| panic!("{what}: the test thread died"));
                    judge(&what, fault, evals, &ended);
                    assert!(
                        evals <= evaluation_bound(N),
                        "{what}: {evals} evaluations, over the bound {}",
                        evaluation_bound(N)
                    );
                }
            }
        }
    }
}

#[test]
fn every_fault_ends_truthfully_per_sample_and_batch_only_f64() {
    per_sample_and_batch_only::<f64>();
}

#[test]
fn every_fault_ends_truthfully_per_sample_and_batch_only_f32() {
    per_sample_and_batch_only::<f32>();
}

/// The fault on the last worker's samples only; every worker must end the same way.
fn sharded<F: Float + Send + 'static>() {
    for workers in 1..=3usize {
        for rule in ["lbfgs", "armijo", "adadelta"] {
            for mode in [BatchMode::Fresh, BatchMode::Persistent] {
                for fault in faults() {
                    let what = format!(
                        "{} {workers} workers {rule} {mode:?} {fault:?}",
                        std::any::type_name::<F>()
                    );
                    let rule = rule.to_string();
                    let ended = bounded(&what, move || {
                        ThreadRanks::run(workers, |w| {
                            let block = N / workers;
                            let first = w.rank() * block;
                            let n = if w.rank() + 1 == workers {
                                N - first
                            } else {
                                block
                            };
                            let mine = (w.rank() + 1 == workers).then_some(fault);
                            let local = Faulty::new(first, n, mine);
                            let objective = Sharded::from_local::<F>(Ok(local), &w, Layout::Blocks)
                                .expect("shards");
                            let r: bigbatch::Result<Report<F>> = minimize(&rule, mode, &objective);
                            (r, objective.local().evals())
                        })
                    });
                    match ended {
                        Err(_) => assert!(
                            matches!(fault, Fault::PanicAfter(_)),
                            "{what}: a worker panicked"
                        ),
                        Ok(all) => {
                            let total: u64 = all.iter().map(|(_, e)| e).sum();
                            assert!(total <= evaluation_bound(N), "{what}: {total} evaluations");
                            let first = format!("{:?}", all[0].0);
                            for (r, _) in &all {
                                assert_eq!(format!("{r:?}"), first, "{what}: workers disagree");
                            }
                            // The fault's own counter is the last worker's.
                            let faulty = all[workers - 1].1;
                            let (r, _) = all.into_iter().next().expect("a worker");
                            judge(&what, fault, faulty, &Ok(r));
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn every_fault_ends_truthfully_and_alike_on_thread_workers_f64() {
    sharded::<f64>();
}

#[test]
fn every_fault_ends_truthfully_and_alike_on_thread_workers_f32() {
    sharded::<f32>();
}

#[test]
fn a_worker_that_returns_early_fails_the_others_instead_of_hanging() {
    // Worker 1 skips the collective call the others make (an error it met alone, returned
    // outside `agree`).
    let ended = bounded("early return", || {
        ThreadRanks::run(3, |w| {
            if w.rank() == 1 {
                return 0.0;
            }
            w.all_gather(&[1.0]).iter().sum::<f64>()
        })
    });
    let payload = ended.expect_err("the others must not wait for ever");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("worker 1 returned"), "{message}");
}

#[test]
fn a_panicking_worker_reaches_the_caller_with_its_own_message() {
    let ended = bounded("panic", || {
        ThreadRanks::run(3, |w| {
            if w.rank() == 2 {
                panic!("the model of worker 2 failed");
            }
            w.all_gather(&[1.0]);
            w.all_gather(&[2.0]).len()
        })
    });
    let payload = ended.expect_err("the panic must reach the caller");
    let message = payload.downcast_ref::<&str>().copied().unwrap_or_default();
    assert_eq!(message, "the model of worker 2 failed");
}

#[test]
fn a_worker_whose_model_cannot_be_built_stops_every_worker() {
    let results = bounded("invalid model", || {
        ThreadRanks::run(3, |w| {
            let local = if w.rank() == 1 {
                Err(Error::InvalidData {
                    what: "worker 1's shard".into(),
                })
            } else {
                Ok(Faulty::new(w.rank() * 80, 80, None))
            };
            Sharded::from_local::<f64>(local, &w, Layout::Blocks).map(|_| ())
        })
    })
    .expect("no panic");
    for r in results {
        assert!(matches!(r, Err(Error::Rank { rank: 1, .. })), "{r:?}");
    }
}

#[test]
fn loss_evaluations_are_bounded_by_their_budget() {
    // Armijo on a model whose loss is NaN beyond a point spends line searches there; with a
    // small loss budget the run stops at it, truthfully.
    let model = Faulty::new(0, N, Some(Fault::NanBeyond));
    let mut opt = BigBatchSgd::paper()
        .max_epochs(50.0)
        .loss_budget(0.5)
        .tolerance(0.0)
        .build()
        .expect("valid");
    match opt.minimize(&model, Array1::<f64>::zeros(DIM)) {
        Ok(r) => {
            assert!(
                r.loss_evals <= (0.5 * 50.0 * N as f64) as u64 + N as u64,
                "{r}"
            );
            assert_eq!(r.stop, StopReason::LossBudget, "{r}");
        }
        Err(Error::NonFinite { .. }) => {}
        Err(e) => panic!("{e}"),
    }
    assert!(model.evals() <= ((50.0 + 25.0) * N as f64) as u64 + N as u64);
    // A budget of loss evaluations must be positive.
    assert!(BigBatchSgd::builder().loss_budget(0.0).build().is_err());
    assert!(
        BigBatchSgd::builder()
            .loss_budget(f64::NAN)
            .build()
            .is_err()
    );
}
