//! The line `w + αd` a line search's trial points lie on, and what the objective prepared for
//! the losses along it ([`Objective::prepare_line`]).

use ndarray::Array1;

use super::same_bits;
use crate::float::Float;
use crate::objective::Objective;
use crate::stats::GradStats;

/// A line within one iteration: its base point and direction, the step of the current trial
/// along it, and the objective's values along it once asked for.
#[derive(Debug, Clone)]
pub(super) struct Line<F> {
    w: Array1<F>,
    dir: Array1<F>,
    /// The step of the current trial point.
    alpha: Option<F>,
    /// The step at which the values were taken (`None`: at `w` itself).
    anchor: Option<F>,
    values: Vec<F>,
    /// Whether the objective was asked for the values on this line, and whether it gave them.
    asked: bool,
    ready: bool,
}

impl<F> Default for Line<F> {
    fn default() -> Self {
        Line {
            w: Array1::from_vec(Vec::new()),
            dir: Array1::from_vec(Vec::new()),
            alpha: None,
            anchor: None,
            values: Vec::new(),
            asked: false,
            ready: false,
        }
    }
}

impl<F: Float> Line<F> {
    pub(super) fn new(dim: usize) -> Self {
        Line {
            w: Array1::zeros(dim),
            dir: Array1::zeros(dim),
            ..Line::default()
        }
    }

    /// Forgets what was prepared: a new iteration, with a new batch or a new `w`.
    pub(super) fn forget(&mut self) {
        self.asked = false;
        self.ready = false;
        self.anchor = None;
    }

    /// Points at the trial `w + alpha·d`; what was prepared is kept if the line is this one
    /// (bit for bit), forgotten otherwise.
    pub(super) fn aim(&mut self, w: &Array1<F>, d: &Array1<F>, alpha: F) {
        self.alpha = Some(alpha);
        if !(self.asked && same_bits(&self.w, w) && same_bits(&self.dir, d)) {
            self.forget();
            self.w.assign(w);
            self.dir.assign(d);
        }
    }

    /// The batch loss at the trial `point`: from the values along the line when the objective
    /// prepares them (the first trial on a line prepares them, with one read of the batch; the
    /// others read no data), otherwise from [`Objective::batch_loss`].
    pub(super) fn loss<O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        batch: &[usize],
        point: &Array1<F>,
    ) -> F {
        if !self.asked {
            self.asked = true;
            self.ready = objective.prepare_line(&self.w, &self.dir, batch, &mut self.values);
        }
        match self.alpha {
            Some(alpha) if self.ready => {
                let from_anchor = self.anchor.map_or(alpha, |a| alpha - a);
                objective.line_loss(&self.values, batch, from_anchor, point)
            }
            _ => objective.batch_loss(point, batch),
        }
    }

    /// Adds the batch statistics at the trial `point` to `stats`. The first evaluation on the
    /// line also takes the values along it there ([`Objective::batch_gradient_line`]), which
    /// serve the shorter steps if this one is rejected.
    pub(super) fn stats<O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        batch: &[usize],
        point: &Array1<F>,
        stats: &mut GradStats<F>,
    ) {
        if self.asked {
            objective.batch_gradient(point, batch, stats);
        } else {
            self.asked = true;
            self.ready =
                objective.batch_gradient_line(point, &self.dir, batch, stats, &mut self.values);
            self.anchor = self.alpha;
        }
    }
}
