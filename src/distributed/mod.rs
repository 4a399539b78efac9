//! Data-parallel runs: the data split across workers (threads of one process, or the
//! processes of an MPI job), every worker running the same loop.
//!
//! Each worker holds a shard of the samples and wraps its local model in a [`Sharded`]
//! objective, which the optimizer sees as the whole finite sum. Every worker draws the same
//! batches (the same seed gives the same global indices everywhere); each evaluates the
//! samples of the batch it holds, with its model's fast path, and the batch statistics of all
//! workers are merged exactly, in rank order, so that every worker holds the same statistics,
//! takes the same step and ends with the same [`Report`](crate::Report). The loop and the
//! step rules do not know whether they run on one worker or many.
//!
//! ```text
//! rank r:  B_r = {i ∈ B : i held by r}      (count n_r, mean g_r, spread M2_r, loss sum L_r)
//! all:     all-gather (n_r, G_r, M2_r, L_r, g_r) for r = 0..P, merged with Chan's formula in rank order
//! ```
//!
//! A merge sends `dim + 5` numbers from each worker, whatever the batch size. What holds:
//! - the same seed and number of workers give the same report, bit for bit, with any number of
//!   threads per worker;
//! - against a run on one worker, the statistics agree to rounding (the per-sample sums are
//!   grouped differently), so runs agree to rounding step by step and may drift apart by
//!   rounding over many iterations, as runs on two machines with different BLAS would.
//!
//! Failures are collective: a worker that cannot load its shard makes every worker return
//! [`Error::Rank`] naming it, and a non-finite value met by one worker is
//! part of the merged statistics, so every worker stops with the same
//! [`Error::NonFinite`] at the same iteration. A fallible local step of the worker's own (building
//! its model, say) must go through [`agree`] so that the others learn of its failure;
//! [`Sharded::from_local`] does that for the model. A worker that panics does not leave the
//! others waiting either: with [`ThreadRanks`] they fail at once and the panic reaches the
//! caller; under MPI the panic aborts the job (see `MpiWorkers`).
//!
//! Backends: [`Single`] (one worker, no communication), [`ThreadRanks`] (workers as threads of
//! one process, for tests and for trying the layout), and with the cargo feature `mpi`,
//! `MpiWorkers` (the processes of an MPI job).

mod load;
#[cfg(feature = "mpi")]
mod mpi_backend;
mod sharded;
mod threads;

/// The MPI bindings the `mpi` feature builds on (the `mpi` crate), for `mpi::initialize()`.
#[cfg(feature = "mpi")]
pub use ::mpi;
pub use load::load_libsvm_shard;
#[cfg(feature = "mpi")]
pub use mpi_backend::MpiWorkers;
pub use sharded::{Layout, Sharded};
pub use threads::ThreadRanks;

use crate::error::{Error, Result};

/// The workers that hold the data: this worker's rank, their number, and the one collective
/// operation a run needs.
///
/// Every worker must make the same sequence of calls (a run does: the loop is deterministic
/// given the merged statistics).
pub trait Workers {
    /// This worker's rank, in `0..size()`.
    fn rank(&self) -> usize;
    /// The number of workers.
    fn size(&self) -> usize;
    /// Every worker's `mine`, concatenated in rank order. All workers pass slices of the same
    /// length.
    fn all_gather(&self, mine: &[f64]) -> Vec<f64>;
}

impl<W: Workers + ?Sized> Workers for &W {
    fn rank(&self) -> usize {
        (**self).rank()
    }
    fn size(&self) -> usize {
        (**self).size()
    }
    fn all_gather(&self, mine: &[f64]) -> Vec<f64> {
        (**self).all_gather(mine)
    }
}

/// One worker, no communication.
#[derive(Debug, Clone, Copy, Default)]
pub struct Single;

impl Workers for Single {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_gather(&self, mine: &[f64]) -> Vec<f64> {
        mine.to_vec()
    }
}

/// The longest message of a failed worker passed to the others, in bytes.
const MESSAGE_BYTES: usize = 1024;

/// Makes every worker agree on the outcome of something each did on its own (loading its
/// shard, building its model): `Ok` on every worker if it succeeded on every worker;
/// otherwise, on every worker, [`Error::Rank`] naming the first worker that failed and its
/// error message.
///
/// # Errors
/// [`Error::Rank`], the same on every worker.
pub fn agree<T, W: Workers + ?Sized>(workers: &W, mine: Result<T>) -> Result<T> {
    let mut buf = vec![0.0; 2 + MESSAGE_BYTES];
    if let Err(e) = &mine {
        let text = e.to_string();
        let mut end = text.len().min(MESSAGE_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        buf[0] = 1.0;
        buf[1] = end as f64;
        for (b, &byte) in buf[2..].iter_mut().zip(text.as_bytes()[..end].iter()) {
            *b = f64::from(byte);
        }
    }
    let all = workers.all_gather(&buf);
    let failed = all
        .chunks(buf.len())
        .enumerate()
        .find(|(_, part)| part[0] > 0.5);
    match failed {
        None => mine,
        Some((rank, part)) => {
            let len = part[1] as usize;
            let bytes: Vec<u8> = part[2..2 + len].iter().map(|&b| b as u8).collect();
            Err(Error::Rank {
                rank,
                message: String::from_utf8_lossy(&bytes).into_owned(),
            })
        }
    }
}
