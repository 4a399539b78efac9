//! The line `w + αd` a line search's trial points lie on, and whether the objective's line
//! object ([`Objective::line`]) holds the losses along it.

use ndarray::Array1;

use super::same_bits;
use crate::float::Float;
use crate::objective::{LineLoss, Objective};
use crate::stats::GradStats;

/// A line within one iteration: its base point and direction, the step of the current trial
/// along it, and whether the objective's line object was prepared on it.
#[derive(Debug, Clone)]
pub(super) struct Line<F> {
    w: Array1<F>,
    dir: Array1<F>,
    /// The step of the current trial point.
    alpha: Option<F>,
    /// The step at which the line object was prepared (`None`: at `w` itself).
    anchor: Option<F>,
    /// Whether the line object holds this line.
    state: Prepared,
}

/// What the objective's line object holds of the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prepared {
    /// Not asked yet on this line.
    NotAsked,
    /// Prepared: the trials read their losses from it.
    Ready,
    /// Asked, and not prepared (no line object, or a statistics pass that could not fill it):
    /// the trials evaluate the batch loss.
    Unavailable,
}

impl<F> Default for Line<F> {
    fn default() -> Self {
        Line {
            w: Array1::from_vec(Vec::new()),
            dir: Array1::from_vec(Vec::new()),
            alpha: None,
            anchor: None,
            state: Prepared::NotAsked,
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
        self.state = Prepared::NotAsked;
        self.anchor = None;
    }

    /// Points at the trial `w + alpha·d`; what was prepared is kept if the line is this one
    /// (bit for bit), forgotten otherwise.
    pub(super) fn aim(&mut self, w: &Array1<F>, d: &Array1<F>, alpha: F) {
        self.alpha = Some(alpha);
        if !(self.state != Prepared::NotAsked && same_bits(&self.w, w) && same_bits(&self.dir, d)) {
            self.forget();
            self.w.assign(w);
            self.dir.assign(d);
        }
    }

    /// The batch loss at the trial `point`: from the line object when the objective has one
    /// (the first trial on a line prepares it, with one read of the batch; the others read no
    /// data), otherwise from [`Objective::batch_loss`].
    pub(super) fn loss<'l, O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        mut along: Option<&mut (dyn LineLoss<F> + 'l)>,
        batch: &[usize],
        point: &Array1<F>,
    ) -> F {
        if self.state == Prepared::NotAsked {
            self.state = Prepared::Unavailable;
            if let Some(along) = along.as_deref_mut() {
                along.prepare(&self.w, &self.dir, batch);
                self.state = Prepared::Ready;
            }
        }
        match (self.alpha, along) {
            (Some(alpha), Some(along)) if self.state == Prepared::Ready => {
                let from_anchor = self.anchor.map_or(alpha, |a| alpha - a);
                along.loss(from_anchor, point)
            }
            _ => objective.batch_loss(point, batch),
        }
    }

    /// Adds the batch statistics at the trial `point` to `stats`. The first evaluation on the
    /// line also prepares the line object there when it can
    /// ([`LineLoss::prepare_with_gradient`]), for the shorter steps if this one is rejected.
    pub(super) fn stats<'l, O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        along: Option<&mut (dyn LineLoss<F> + 'l)>,
        batch: &[usize],
        point: &Array1<F>,
        stats: &mut GradStats<F>,
    ) {
        if self.state != Prepared::NotAsked {
            objective.batch_gradient(point, batch, stats);
            return;
        }
        self.anchor = self.alpha;
        let fused =
            along.is_some_and(|along| along.prepare_with_gradient(point, &self.dir, batch, stats));
        self.state = if fused {
            Prepared::Ready
        } else {
            objective.batch_gradient(point, batch, stats);
            Prepared::Unavailable
        };
    }
}
