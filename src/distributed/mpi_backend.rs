//! Workers that are the processes of an MPI job (cargo feature `mpi`).

use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};

use super::Workers;

/// The exit code of a job aborted by a panic.
const PANIC_EXIT_CODE: i32 = 101;

static ABORT_ON_PANIC: std::sync::Once = std::sync::Once::new();

/// The processes of an MPI job (OpenMPI or MPICH), through the `mpi` crate.
///
/// A process that panics ends the whole job: [`new`](Self::new) installs a panic hook that,
/// after the usual message, calls `MPI_Abort` on the world communicator, so the other processes
/// do not wait for it in a collective call. OpenMPI's `mpirun` then prints that `MPI_ABORT` was
/// invoked on that rank, kills every process of the job and exits non-zero (CI checks this with
/// `examples/distributed.rs --panic-on RANK` under a time limit). A process that exits without
/// a panic after an error that only it met leaves the others waiting: put every fallible local
/// step through [`agree`](super::agree) (or build the objective with
/// [`Sharded::from_local`](super::Sharded::from_local)), or call [`abort`](Self::abort).
///
/// ```no_run
/// use bigbatch::distributed::{MpiWorkers, Workers, mpi};
/// let universe = mpi::initialize().expect("MPI is initialized once");
/// let workers = MpiWorkers::new(universe.world());
/// println!("worker {} of {}", workers.rank(), workers.size());
/// ```
pub struct MpiWorkers {
    comm: SimpleCommunicator,
    rank: usize,
    size: usize,
}

impl std::fmt::Debug for MpiWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiWorkers")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl MpiWorkers {
    /// The workers of a communicator (usually `universe.world()`).
    ///
    /// Installs the panic hook that aborts the job (once per process; the hook that was in
    /// place runs first).
    pub fn new(comm: SimpleCommunicator) -> Self {
        let rank = usize::try_from(comm.rank()).unwrap_or(0);
        let size = usize::try_from(comm.size()).unwrap_or(1);
        ABORT_ON_PANIC.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                previous(info);
                eprintln!("worker {rank} panicked: aborting the MPI job");
                SimpleCommunicator::world().abort(PANIC_EXIT_CODE);
            }));
        });
        MpiWorkers { comm, rank, size }
    }
    /// Ends the whole job at once with `code` (`MPI_Abort`): for an error met by this process
    /// alone, outside [`agree`](super::agree), that the others would otherwise wait for.
    pub fn abort(&self, code: i32) -> ! {
        self.comm.abort(code)
    }
    /// The communicator.
    pub fn communicator(&self) -> &SimpleCommunicator {
        &self.comm
    }
}

impl Workers for MpiWorkers {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_gather(&self, mine: &[f64]) -> Vec<f64> {
        let mut all = vec![0.0; mine.len() * self.size];
        self.comm.all_gather_into(mine, &mut all[..]);
        all
    }
}
