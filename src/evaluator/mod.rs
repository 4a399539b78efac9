//! Where a run evaluates its objective: every per-sample evaluation is counted here, the
//! budget is kept here, and the statistics of the batch are held here together with the point
//! they belong to.

use ndarray::{Array1, Zip};

use crate::error::{Error, Result};
use crate::float::Float;
use crate::objective::{LineLoss, Objective};
use crate::stats::GradStats;

mod groups;
mod held;
mod line;
use held::Held;
use line::Line;

/// The batch statistics of a run and the evaluations that produced them.
///
/// It holds the statistics of the current batch at the current iterate, and (within an
/// iteration) the statistics of the previous batch at the current iterate and of the batch at
/// one trial point. The trial's statistics are keyed by the point itself: when the driver
/// moves to a new iterate, it [`adopts`](Self::adopt) them only if that iterate is the trial
/// point, bit for bit, so reusing them is correct by construction.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "F: serde::Serialize",
        deserialize = "F: serde::Deserialize<'de>"
    ))
)]
pub(crate) struct Evaluator<F> {
    grad_evals: u64,
    loss_evals: u64,
    /// Line-search trials whose batch loss was not finite.
    #[cfg_attr(feature = "serde", serde(default))]
    non_finite_trials: u64,
    /// The batch's statistics at the current iterate: after a batch is drawn, after a step onto
    /// a trial point whose statistics were computed, and after a step that left the iterate
    /// unchanged. A persistent batch then evaluates only the samples it does not have yet.
    stats: GradStats<F>,
    stats_valid: bool,
    /// The loss at the current iterate of a batch of this many samples, when a line search
    /// computed it there: the step landed on its trial point.
    #[cfg_attr(feature = "serde", serde(default))]
    loss_at_w: Option<(usize, F)>,
    /// Work space of one iteration, rebuilt by [`prepare`](Self::prepare).
    #[cfg_attr(feature = "serde", serde(skip))]
    scratch: Scratch<F>,
}

/// What the evaluator needs only within one iteration.
#[derive(Debug, Clone)]
struct Scratch<F> {
    /// The budget of per-sample gradient evaluations.
    grad_limit: u64,
    /// The budget of per-sample loss evaluations.
    loss_limit: u64,
    /// Whether an evaluation of losses was refused because the budget could not pay for it.
    loss_budget_hit: bool,
    /// Whether samples joined statistics that already held others in this iteration: the
    /// batch loss they carry is then a merge of parts, not one evaluation of the whole batch.
    merged: bool,
    /// Trials evaluated in this iteration, and how many of them had a loss that was not finite.
    trials: usize,
    trials_non_finite: usize,
    /// Whether statistics at a trial point may be computed for the next iteration to start
    /// from (persistent batches whose statistics carry losses).
    keep_trials: bool,
    /// The statistics of the previous iteration's batch at the current iterate, once the
    /// batch grew.
    previous: Held<GradStats<F>>,
    /// The last trial point, and the batch statistics there if they were computed.
    trial_point: Array1<F>,
    trial_stats: Held<GradStats<F>>,
    /// The batch loss at the trial point and the batch's size, if computed.
    trial_loss: Option<(usize, F)>,
    /// The line the trial points lie on.
    line: Line<F>,
    groups: groups::Groups, // the batch's groups, for the inner-product test
}

impl<F: Float> Scratch<F> {
    fn new(dim: usize) -> Self {
        Scratch {
            previous: Held::new(GradStats::new(dim)),
            trial_point: Array1::zeros(dim),
            trial_stats: Held::new(GradStats::new(dim)),
            line: Line::new(dim),
            ..Scratch::default()
        }
    }
}

impl<F> Default for Scratch<F> {
    fn default() -> Self {
        Scratch {
            grad_limit: u64::MAX,
            loss_limit: u64::MAX,
            loss_budget_hit: false,
            merged: false,
            trials: 0,
            trials_non_finite: 0,
            keep_trials: false,
            previous: Held::default(),
            trial_point: Array1::from_vec(Vec::new()),
            trial_stats: Held::default(),
            trial_loss: None,
            line: Line::default(),
            groups: groups::Groups::default(),
        }
    }
}

impl<F: Float> Evaluator<F> {
    pub(crate) fn new(dim: usize) -> Self {
        Evaluator {
            grad_evals: 0,
            loss_evals: 0,
            non_finite_trials: 0,
            stats: GradStats::new(dim),
            stats_valid: false,
            loss_at_w: None,
            scratch: Scratch::new(dim),
        }
    }

    /// Starts an iteration: sizes the work space (after a checkpoint is loaded) and sets the
    /// budgets; what an earlier iteration left in it is forgotten.
    pub(crate) fn prepare(&mut self, grad_limit: u64, loss_limit: u64) {
        let dim = self.stats.dim();
        if self.scratch.trial_point.len() != dim {
            self.scratch = Scratch::new(dim);
        }
        self.scratch.grad_limit = grad_limit;
        self.scratch.loss_limit = loss_limit;
        self.scratch.loss_budget_hit = false;
        self.scratch.merged = false;
        self.scratch.trials = 0;
        self.scratch.trials_non_finite = 0;
        self.scratch.keep_trials = false;
        self.scratch.previous.forget();
        self.scratch.trial_stats.forget();
        self.scratch.trial_loss = None;
        self.scratch.line.forget();
    }

    pub(crate) fn grad_evals(&self) -> u64 {
        self.grad_evals
    }
    pub(crate) fn loss_evals(&self) -> u64 {
        self.loss_evals
    }
    pub(crate) fn non_finite_trials(&self) -> u64 {
        self.non_finite_trials
    }
    /// Trials evaluated in this iteration, and how many of them had a non-finite loss.
    pub(crate) fn trials(&self) -> (usize, usize) {
        (self.scratch.trials, self.scratch.trials_non_finite)
    }
    /// Whether the budget can pay for `n` loss evaluations; if not, the refusal is remembered
    /// ([`loss_budget_hit`](Self::loss_budget_hit)) and the run ends after this iteration.
    pub(crate) fn afford_losses(&mut self, n: usize) -> bool {
        let ok = self.loss_evals.saturating_add(n as u64) <= self.scratch.loss_limit;
        self.scratch.loss_budget_hit |= !ok;
        ok
    }
    /// Counts `n` gradient evaluations of another kind (Hessian-vector products) and returns
    /// true; false, counting nothing, if the budget cannot pay for them.
    pub(crate) fn charge_grads(&mut self, n: usize) -> bool {
        if n as u64 > self.remaining() {
            return false;
        }
        self.grad_evals += n as u64;
        true
    }
    /// Whether this iteration wanted loss evaluations the budget could not pay for.
    pub(crate) fn loss_budget_hit(&self) -> bool {
        self.scratch.loss_budget_hit
    }
    /// Per-sample gradient evaluations the budget still allows.
    pub(crate) fn remaining(&self) -> u64 {
        self.scratch.grad_limit.saturating_sub(self.grad_evals)
    }
    pub(crate) fn stats(&self) -> &GradStats<F> {
        &self.stats
    }
    /// The loss at the current iterate of a batch of `n` samples, if a line search computed it
    /// there (for the bundled models, the number [`Objective::batch_loss`] gives for that batch).
    pub(crate) fn loss_at_w(&self, n: usize) -> Option<F> {
        self.loss_at_w
            .filter(|&(m, _)| m == n)
            .map(|(_, loss)| loss)
    }
    /// The batch statistics at the current iterate, if they are known.
    pub(crate) fn valid_stats(&self) -> Option<&GradStats<F>> {
        self.stats_valid.then_some(&self.stats)
    }
    /// The statistics of the previous iteration's batch at the current iterate: those kept
    /// when the batch grew, otherwise the batch's own (it did not grow).
    pub(crate) fn previous(&self) -> &GradStats<F> {
        self.scratch.previous.get().unwrap_or(&self.stats)
    }

    /// Forgets the batch statistics: a fresh batch is about to be drawn.
    pub(crate) fn clear(&mut self) {
        self.stats.reset();
        self.stats_valid = false;
        self.scratch.groups.clear();
    }

    /// Keeps the batch statistics as those of the previous batch, before the batch grows
    /// (once per iteration).
    pub(crate) fn keep_previous(&mut self) {
        if self.scratch.previous.get().is_none() {
            self.scratch.previous.refill().clone_from(&self.stats);
            self.scratch.previous.hold();
        }
    }

    /// Adds the samples `new` at `w` to the batch statistics, counting them, and checks that
    /// the objective added exactly those samples.
    pub(crate) fn add<O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        w: &Array1<F>,
        new: &[usize],
    ) -> Result<()> {
        let before = self.stats.count();
        self.scratch.merged |= before > 0;
        objective.batch_gradient(w, new, &mut self.stats);
        self.grad_evals += new.len() as u64;
        if self.stats.count() != before + new.len() {
            return Err(Error::DimensionMismatch {
                what: "samples added by Objective::batch_gradient",
                expected: before + new.len(),
                got: self.stats.count(),
            });
        }
        self.stats_valid = true;
        Ok(())
    }

    /// Checks that the batch statistics are finite.
    pub(crate) fn check(&self, iteration: usize) -> Result<()> {
        check_stats(&self.stats, iteration)
    }

    /// The batch loss at the current iterate `w`: from the statistics if they carry it,
    /// otherwise from a loss pass over `batch`; `None` if the budget of loss evaluations cannot
    /// pay for that pass.
    pub(crate) fn loss_at_iterate<O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        w: &Array1<F>,
        batch: &[usize],
    ) -> Option<F> {
        match self.stats.loss() {
            Some(loss) => Some(loss),
            None => self.loss(objective, w, batch),
        }
    }

    /// Whether the batch loss [`loss_at_iterate`](Self::loss_at_iterate) gives came from one
    /// evaluation of the whole batch (not from statistics merged over growth rounds), and so
    /// is the number [`Objective::batch_loss`] gives there for the bundled models.
    pub(crate) fn loss_in_one_pass(&self) -> bool {
        self.stats.loss().is_none() || !self.scratch.merged
    }

    /// The loss of `batch` at `point`, counting `|batch|` loss evaluations; `None`, evaluating
    /// nothing, if the budget of loss evaluations cannot pay for them.
    pub(crate) fn loss<O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        point: &ndarray::ArrayRef1<F>,
        batch: &[usize],
    ) -> Option<F> {
        if !self.afford_losses(batch.len()) {
            return None;
        }
        self.loss_evals += batch.len() as u64;
        Some(objective.batch_loss(point, batch))
    }

    /// The loss of `batch` at `point` outside the budget, counting `|batch|` loss evaluations:
    /// the report's final loss.
    pub(crate) fn final_loss<O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        point: &ndarray::ArrayRef1<F>,
        batch: &[usize],
    ) -> F {
        self.loss_evals += batch.len() as u64;
        objective.batch_loss(point, batch)
    }

    /// Counts a trial and whether its loss was finite.
    fn count_trial(&mut self, loss: F) {
        self.scratch.trials += 1;
        if !loss.is_finite() {
            self.scratch.trials_non_finite += 1;
            self.non_finite_trials += 1;
        }
    }

    /// Replaces `stats` by the statistics of `batch` at `point` and returns true, counting
    /// `|batch|` gradient evaluations; false, evaluating nothing, if the budget cannot pay.
    pub(crate) fn stats_into<O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        point: &ndarray::ArrayRef1<F>,
        batch: &[usize],
        stats: &mut GradStats<F>,
    ) -> bool {
        if batch.len() as u64 > self.remaining() {
            return false;
        }
        stats.reset();
        self.grad_evals += batch.len() as u64;
        objective.batch_gradient(point, batch, stats);
        true
    }

    /// Allows statistics at trial points to be kept for the next iteration (persistent
    /// batches whose statistics carry losses).
    pub(crate) fn keep_trials(&mut self, on: bool) {
        self.scratch.keep_trials = on;
    }

    /// Writes the trial point `w + alpha·d`; what was known at the previous trial point is
    /// forgotten, and what was prepared for the losses along the line is kept if the line is
    /// the same.
    pub(crate) fn set_trial(&mut self, w: &Array1<F>, d: &Array1<F>, alpha: F) {
        let s = &mut self.scratch;
        s.trial_stats.forget();
        s.trial_loss = None;
        Zip::from(&mut s.trial_point)
            .and(w)
            .and(d)
            .for_each(|t, &w, &d| *t = w + alpha * d);
        s.line.aim(w, d, alpha);
    }

    /// Whether the last trial point equals `w` bit for bit.
    pub(crate) fn trial_is(&self, w: &Array1<F>) -> bool {
        same_bits(&self.scratch.trial_point, w)
    }

    /// The batch loss at the last trial point, counting `|batch|` loss evaluations: from the
    /// losses along the line when the objective prepares them (the first trial on a line
    /// prepares it, with one read of the batch; the others read no data), otherwise from
    /// [`Objective::batch_loss`]. `None`, evaluating nothing, if the budget of loss evaluations
    /// cannot pay for them.
    pub(crate) fn trial_loss<'l, O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        along: Option<&mut (dyn LineLoss<F> + 'l)>,
        batch: &[usize],
    ) -> Option<F> {
        if !self.afford_losses(batch.len()) {
            return None;
        }
        self.loss_evals += batch.len() as u64;
        let s = &mut self.scratch;
        let loss = s.line.loss(objective, along, batch, &s.trial_point);
        s.trial_loss = Some((batch.len(), loss));
        self.count_trial(loss);
        Some(loss)
    }

    /// The batch loss at the last trial point, computed with the batch's full statistics there
    /// when they can be kept and the budget pays for them (and, if it is the first evaluation
    /// on this line, preparing the line object there: [`LineLoss::prepare_with_gradient`]);
    /// otherwise as [`trial_loss`](Self::trial_loss).
    pub(crate) fn trial_stats<'l, O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        mut along: Option<&mut (dyn LineLoss<F> + 'l)>,
        batch: &[usize],
    ) -> Option<F> {
        let n = batch.len();
        if !self.scratch.keep_trials || n as u64 > self.remaining() {
            return self.trial_loss(objective, along, batch);
        }
        let s = &mut self.scratch;
        let stats = s.trial_stats.refill();
        stats.reset();
        self.grad_evals += n as u64;
        s.line.stats(
            objective,
            along.as_deref_mut(),
            batch,
            &s.trial_point,
            stats,
        );
        // A batched gradient that adds the wrong samples is not kept; the next iteration then
        // evaluates the batch itself, and reports the mismatch.
        if stats.count() == n {
            s.trial_stats.hold();
        }
        match s.trial_stats.get().and_then(GradStats::loss) {
            Some(loss) => {
                self.count_trial(loss);
                Some(loss)
            }
            _ => self.trial_loss(objective, along, batch),
        }
    }

    /// The run moved to `w`: the batch statistics are those of the trial point if `w` is that
    /// point (bit for bit) and they were computed, and unknown otherwise.
    pub(crate) fn adopt(&mut self, w: &Array1<F>) {
        let s = &mut self.scratch;
        let at_trial = same_bits(&s.trial_point, w);
        self.stats_valid = s.trial_stats.get().is_some() && at_trial;
        if self.stats_valid {
            std::mem::swap(&mut self.stats, s.trial_stats.refill());
        }
        self.loss_at_w = s.trial_loss.filter(|_| at_trial);
        s.trial_stats.forget();
        s.trial_loss = None;
    }
}

/// Whether two points are equal bit for bit.
pub(super) fn same_bits<F: Float>(a: &Array1<F>, b: &Array1<F>) -> bool {
    a.iter()
        .zip(b.iter())
        .all(|(x, y)| x.as_f64().to_bits() == y.as_f64().to_bits())
}

/// Checks that batch statistics are finite.
fn check_stats<F: Float>(stats: &GradStats<F>, iteration: usize) -> Result<()> {
    if !crate::kernels::all_finite(stats.mean()) {
        return Err(Error::non_finite("gradient", iteration));
    }
    if !stats.sum_sq_dev().is_finite() {
        return Err(Error::non_finite("variance", iteration));
    }
    if stats.loss().is_some_and(|l| !l.is_finite()) {
        return Err(Error::non_finite("loss", iteration));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
