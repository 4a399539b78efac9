//! Workers as threads of one process.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::Workers;

/// Workers that are threads of one process, exchanging buffers through shared memory: the
/// logic of a data-parallel run, checked without MPI.
///
/// Failures reach every worker: if a worker panics, or returns while the others wait for it
/// in [`all_gather`](Workers::all_gather) (it skipped a collective call the others made), every
/// worker waiting or arriving there panics too, at once, and [`run`](Self::run) passes the
/// first panic on to the caller. No worker waits for ever.
///
/// # Example
/// ```
/// use bigbatch::distributed::{ThreadRanks, Workers};
/// let sums = ThreadRanks::run(3, |w| {
///     let all = w.all_gather(&[w.rank() as f64]);
///     all.iter().sum::<f64>()
/// });
/// assert_eq!(sums, vec![3.0, 3.0, 3.0]);
/// ```
#[derive(Debug, Clone)]
pub struct ThreadRanks {
    rank: usize,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    size: usize,
    state: Mutex<Round>,
    changed: Condvar,
}

/// The collective call in progress.
#[derive(Debug, Default)]
struct Round {
    /// How many rounds have completed.
    generation: u64,
    /// Each worker's part of the current round.
    slots: Vec<Vec<f64>>,
    arrived: usize,
    /// The result of the last completed round.
    result: Arc<Vec<f64>>,
    /// A worker that will make no more calls, and why: it panicked (`true`) or returned.
    gone: Option<(usize, bool)>,
}

/// The panic of a worker that was abandoned by another.
#[derive(Debug)]
struct Abandoned(String);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Round> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ThreadRanks {
    /// Runs `work` on `ranks` threads (at least 1), each with its own worker handle, and
    /// returns their results in rank order.
    ///
    /// # Panics
    /// If a worker panics: the first worker's panic is passed on, once every worker has
    /// stopped (those that waited for it in a collective call panic too). If a worker returns
    /// while others wait for it in a collective call: a panic that names it.
    pub fn run<T: Send>(ranks: usize, work: impl Fn(ThreadRanks) -> T + Sync) -> Vec<T> {
        let ranks = ranks.max(1);
        let shared = Arc::new(Shared {
            size: ranks,
            state: Mutex::new(Round {
                slots: vec![Vec::new(); ranks],
                ..Round::default()
            }),
            changed: Condvar::new(),
        });
        let outcomes: Vec<std::thread::Result<T>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..ranks)
                .map(|rank| {
                    let worker = ThreadRanks {
                        rank,
                        shared: Arc::clone(&shared),
                    };
                    let (work, shared) = (&work, Arc::clone(&shared));
                    scope.spawn(move || {
                        let outcome = catch_unwind(AssertUnwindSafe(|| work(worker)));
                        let mut round = shared.lock();
                        if round.gone.is_none() {
                            round.gone = Some((rank, outcome.is_err()));
                        }
                        drop(round);
                        shared.changed.notify_all();
                        outcome
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| Err(e)))
                .collect()
        });
        // The first panic of a worker's own, before those it caused.
        let mut abandoned: Option<Box<dyn Any + Send>> = None;
        let mut results = Vec::with_capacity(ranks);
        for outcome in outcomes {
            match outcome {
                Ok(value) => results.push(value),
                Err(payload) if payload.is::<Abandoned>() => {
                    abandoned.get_or_insert(payload);
                }
                Err(payload) => resume_unwind(payload),
            }
        }
        if let Some(payload) = abandoned {
            let message = payload
                .downcast::<Abandoned>()
                .map_or_else(|_| String::new(), |a| a.0);
            panic!("{message}");
        }
        results
    }
}

impl Workers for ThreadRanks {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.size
    }
    /// # Panics
    /// If another worker panicked or returned before it made this call (see [`ThreadRanks`]).
    fn all_gather(&self, mine: &[f64]) -> Vec<f64> {
        let shared = &self.shared;
        let mut round = shared.lock();
        let generation = round.generation;
        round.slots[self.rank] = mine.to_vec();
        round.arrived += 1;
        if round.arrived == shared.size {
            round.result = Arc::new(round.slots.concat());
            round.arrived = 0;
            round.generation += 1;
            let result = Arc::clone(&round.result);
            drop(round);
            shared.changed.notify_all();
            return result.to_vec();
        }
        loop {
            if round.generation != generation {
                // A round completes only once every worker has arrived, so the result is still
                // this round's.
                return round.result.to_vec();
            }
            if let Some((rank, panicked)) = round.gone {
                let what = if panicked { "panicked" } else { "returned" };
                let me = self.rank;
                drop(round);
                // Unwound without the panic hook: the message that counts is the first
                // worker's, which the hook has printed.
                resume_unwind(Box::new(Abandoned(format!(
                    "worker {rank} {what} while worker {me} waited for it in all_gather \
                     (every worker must make the same collective calls; a fallible local step \
                     goes through distributed::agree)"
                ))));
            }
            round = shared
                .changed
                .wait(round)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}
