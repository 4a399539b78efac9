//! Workers as threads of one process.

use std::sync::{Arc, Barrier, Mutex, PoisonError};

use super::Workers;

/// Workers that are threads of one process, exchanging buffers through shared memory: the
/// logic of a data-parallel run, checked without MPI.
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
    slots: Mutex<Vec<Vec<f64>>>,
    barrier: Barrier,
}

impl ThreadRanks {
    /// Runs `work` on `ranks` threads (at least 1), each with its own worker handle, and
    /// returns their results in rank order.
    ///
    /// # Panics
    /// If a worker panics (the panic is passed on).
    pub fn run<T: Send>(ranks: usize, work: impl Fn(ThreadRanks) -> T + Sync) -> Vec<T> {
        let ranks = ranks.max(1);
        let shared = Arc::new(Shared {
            slots: Mutex::new(vec![Vec::new(); ranks]),
            barrier: Barrier::new(ranks),
        });
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..ranks)
                .map(|rank| {
                    let worker = ThreadRanks {
                        rank,
                        shared: Arc::clone(&shared),
                    };
                    let work = &work;
                    scope.spawn(move || work(worker))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }
}

impl Workers for ThreadRanks {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
    fn all_gather(&self, mine: &[f64]) -> Vec<f64> {
        let lock = || {
            self.shared
                .slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        lock()[self.rank] = mine.to_vec();
        self.shared.barrier.wait();
        let all = lock().concat();
        // Nobody writes the next round before everyone has read this one.
        self.shared.barrier.wait();
        all
    }
}
