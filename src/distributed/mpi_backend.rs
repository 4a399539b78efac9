//! Workers that are the processes of an MPI job (cargo feature `mpi`).

use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};

use super::Workers;

/// The processes of an MPI job (OpenMPI or MPICH), through the `mpi` crate.
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
    pub fn new(comm: SimpleCommunicator) -> Self {
        let rank = usize::try_from(comm.rank()).unwrap_or(0);
        let size = usize::try_from(comm.size()).unwrap_or(1);
        MpiWorkers { comm, rank, size }
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
