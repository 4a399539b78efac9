//! The optimization loop: [`BigBatchSgd`] and the state of a run.
//!
//! - `config`: how batches are chosen and grow, when a run stops, and the optimizer itself;
//! - `builder`: its builder, and `presets` the configurations it starts from;
//! - `state`: the state of a run between iterations;
//! - `run`: the public entry points (`minimize`, `start`, `iterate`, `resume_with`);
//! - `driver`: one iteration (draw a batch that passes, stop or step) and the loop around it;
//! - `averaging`: the average of the iterates and the gradients interpolated towards it.

use crate::report::IterRecord;

mod averaging;
mod builder;
mod config;
mod drawing;
mod driver;
mod presets;
mod run;
mod sampling;
mod state;

pub use builder::BigBatchSgdBuilder;
pub use config::{BatchMode, BatchSchedule, BigBatchSgd, GrowthRule, StopCriteria};
#[cfg(feature = "serde")]
pub(crate) use driver::AfterStep;
pub(crate) use driver::check_start;
pub(crate) use sampling::{Sampler, grown_size};
pub use state::RunState;

/// The result of one iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Outcome<F> {
    /// A step was taken.
    Stepped(IterRecord<F>),
    /// The batch passed the test with a gradient below the tolerance; no step was taken.
    Converged,
    /// The batch held every sample and the step left the iterate unchanged in floating point:
    /// every further iteration would repeat it.
    Stalled,
    /// The budget of gradient evaluations cannot pay for the batch this iteration needs (to
    /// draw it, or to grow it until it passes the test); no step was taken.
    OutOfBudget,
    /// The budget of loss evaluations cannot pay for the next one the iteration needs (a
    /// line-search trial, or the batch loss); no step was taken.
    OutOfLossBudget,
}
