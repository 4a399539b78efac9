//! What a run reports: a record per iteration, and the result at its end.

pub mod observe;

use std::fmt;

use ndarray::Array1;

use crate::float::Float;

/// Why a run stopped (successfully).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// A batch that passed the big-batch test had `‖g_B‖²` at or below the tolerance ε
    /// (absolute or relative).
    ///
    /// What that says about the true gradient `∇ℓ`: on the full batch, `‖∇ℓ‖² ≤ ε` exactly.
    /// On a smaller batch the test estimates both sides from the batch itself, so the bound is
    /// statistical: if the batch meets the condition it tests, `‖g_B − ∇ℓ‖ ≤ θ‖∇ℓ‖`, then
    /// `‖∇ℓ‖ ≤ ‖g_B‖/(1 − θ)`, i.e. `‖∇ℓ‖² ≤ ε/(1 − θ)²` for θ < 1 (4ε at θ = ½). At θ = 1
    /// (the default) there is no such bound: at a stationary point `g_B` is pure noise, and the
    /// test compares two estimates of the same noise, which passes by chance with probability
    /// about `P(χ²_d/d ≥ 1)`: 0.32 for one parameter, approaching ½ for many. Set θ < 1 when the
    /// stop itself must certify the gradient, or check the final iterate on the full batch.
    ///
    /// A persistent batch ([`BatchMode::Persistent`](crate::BatchMode::Persistent)) that has
    /// been stepped on is not a random sample at the iterate, which was fitted to it: before
    /// stopping there, as many samples the run has not drawn are evaluated at the iterate, and
    /// their own mean gradient must meet the tolerance too.
    GradientTolerance,
    /// The budget of gradient evaluations, `⌊max_epochs · N⌋` and `max_samples`, is used up or
    /// cannot pay for the next batch: the run never evaluates more than that.
    EpochBudget,
    /// The budget of iterations was used up.
    IterationBudget,
    /// The budget of loss evaluations, `⌊loss_budget · max_epochs · N⌋`, could not pay for the
    /// next one (a line-search trial, or a batch loss): the run stopped at its current iterate.
    LossBudget,
    /// An observer asked to stop.
    Observer,
    /// The batch held every sample and the step no longer changed the iterate in floating
    /// point: the run reached the precision of the float type before the tolerance.
    NoProgress,
    /// A checkpoint could not be saved (cargo feature `serde`): the run stopped rather than go
    /// on unprotected, and the saver holds the error.
    CheckpointFailed,
    /// The stream ([`minimize_stream`](crate::BigBatchSgd::minimize_stream)) ended before it
    /// could supply the next batch (or the samples it had to grow by): the run stopped at its
    /// current iterate, and the samples read since its last step were not evaluated.
    StreamEnded,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::GradientTolerance => "gradient tolerance reached",
            StopReason::EpochBudget => "epoch budget used up",
            StopReason::IterationBudget => "iteration budget used up",
            StopReason::LossBudget => "loss-evaluation budget used up",
            StopReason::Observer => "stopped by an observer",
            StopReason::NoProgress => "no progress at this floating-point precision",
            StopReason::CheckpointFailed => "a checkpoint could not be saved",
            StopReason::StreamEnded => "the stream ended",
        })
    }
}

/// What happened in one iteration (one step).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct IterRecord<F> {
    /// The iteration (0-based).
    pub iteration: usize,
    /// Epochs used so far: per-sample gradient evaluations / N.
    pub epochs: f64,
    /// The size of the batch the step was taken on.
    pub batch_size: usize,
    /// How many times the batch grew in this iteration before it passed the test.
    pub growth_rounds: usize,
    /// The batch loss `ℓ_B` at the iterate before the step.
    pub loss: F,
    /// The batch loss at the new iterate, when the step rule evaluated it.
    pub loss_after: Option<F>,
    /// `‖g_B‖²`, the squared norm of the batch gradient.
    pub grad_norm_sq: F,
    /// `V_B`, the variance estimate of the per-sample gradients.
    pub variance: F,
    /// The step size α.
    pub step_size: F,
    /// How many times the line search shrank the step.
    pub backtracks: usize,
    /// Per-sample gradient evaluations so far.
    pub grad_evals: u64,
    /// Per-sample loss evaluations so far (line searches, and batch losses a model did not
    /// return with its gradients).
    pub loss_evals: u64,
    /// Line-search trials of this iteration whose batch loss was NaN or infinite (the search
    /// shrank the step past them, as past a step too long).
    pub non_finite_trials: usize,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Report<F> {
    /// The final iterate; with
    /// [`average_iterates`](crate::BigBatchSgdBuilder::average_iterates), the average of the
    /// iterates (the last one is `last_iterate`).
    pub w: Array1<F>,
    /// The full objective `ℓ(w)` at `w` (one pass of loss evaluations, counted
    /// in `loss_evals`).
    pub loss: F,
    /// With [`average_iterates`](crate::BigBatchSgdBuilder::average_iterates), the last
    /// iterate, which `w` averages (with [`interpolate`](crate::BigBatchSgdBuilder::interpolate),
    /// the last point of the gradients); `None` without.
    pub last_iterate: Option<Array1<F>>,
    /// The number of steps taken.
    pub iterations: usize,
    /// Per-sample gradient evaluations (batch draws, growth, and any a step rule needed).
    pub grad_evals: u64,
    /// Per-sample loss evaluations (line-search trials, batch losses a model did not return
    /// with its gradients, and the final loss). They are not part of the epoch budget. A trial
    /// evaluated along a prepared line ([`Objective::line`](crate::Objective::line))
    /// counts its losses like any other, though it reads no data.
    pub loss_evals: u64,
    /// Epochs used: `grad_evals / N`, never more than the budget `max_epochs`.
    pub epochs: f64,
    /// Evaluations in units of the data set, gradients and losses alike:
    /// `(grad_evals + loss_evals) / N` (an upper bound on the passes that read the data).
    pub data_passes: f64,
    /// The batch size at the end.
    pub batch_size: usize,
    /// `‖g_B‖²` of the last batch drawn (at the final iterate when the run converged).
    pub grad_norm_sq: F,
    /// Line-search trials whose batch loss was NaN or infinite, over the run: each was treated
    /// as a step too long and shrunk. A search all of whose trials were non-finite ends the run
    /// with [`Error::NonFinite`](crate::Error::NonFinite) instead.
    pub non_finite_trials: u64,
    /// Why the run stopped.
    pub stop: StopReason,
}

impl<F: Float> fmt::Display for Report<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: loss {:.6e}, |g_B|^2 {:.3e}, {} iterations, {:.2} epochs, {:.2} data passes ({} gradient and {} loss evaluations), final batch {}{}",
            self.stop,
            self.loss,
            self.grad_norm_sq,
            self.iterations,
            self.epochs,
            self.data_passes,
            self.grad_evals,
            self.loss_evals,
            self.batch_size,
            match self.non_finite_trials {
                0 => String::new(),
                k => format!(", {k} line-search trials with a non-finite loss"),
            }
        )
    }
}
