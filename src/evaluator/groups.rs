//! A batch evaluated in groups whose mean gradients are kept: the variance of the per-sample
//! gradients' inner products with the batch gradient, for the inner-product test.

use ndarray::{Array1, Zip};

use super::Evaluator;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::objective::Objective;
use crate::stats::GradStats;

/// The mean gradients of the groups of the batch, each with its size, and the size of the
/// groups new samples form.
#[derive(Debug, Clone, Default)]
pub(super) struct Groups {
    pub(super) means: Vec<(usize, Array1<f64>)>,
    size: usize,
}

impl Groups {
    pub(super) fn clear(&mut self) {
        self.means.clear();
        self.size = 0;
    }

    /// Merges neighbouring groups while there are more than `2·target` (their weighted mean is
    /// the merged group's mean), doubling the size of new groups.
    fn compact(&mut self, target: usize) {
        while self.means.len() > 2 * target {
            let old = std::mem::take(&mut self.means);
            let mut it = old.into_iter();
            while let Some((na, mut a)) = it.next() {
                match it.next() {
                    Some((nb, b)) => {
                        let wb = nb as f64 / (na + nb) as f64;
                        Zip::from(&mut a)
                            .and(&b)
                            .for_each(|x, &y| *x += (y - *x) * wb);
                        self.means.push((na + nb, a));
                    }
                    None => self.means.push((na, a)),
                }
            }
            self.size *= 2;
        }
    }
}

impl<F: Float> Evaluator<F> {
    /// [`add`](Self::add), with the samples evaluated in groups whose mean gradients are kept:
    /// the first samples of a batch in `target` groups, later ones in groups of the same size.
    pub(crate) fn add_grouped<O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        w: &Array1<F>,
        new: &[usize],
        target: usize,
    ) -> Result<()> {
        let groups = &mut self.scratch.groups;
        if groups.means.is_empty() {
            groups.size = new.len().div_ceil(target.max(1)).max(1);
        }
        let mut part = GradStats::new(self.stats.dim());
        for chunk in new.chunks(groups.size) {
            part.reset();
            objective.batch_gradient(w, chunk, &mut part);
            self.grad_evals += chunk.len() as u64;
            if part.count() != chunk.len() {
                return Err(Error::DimensionMismatch {
                    what: "samples added by Objective::batch_gradient",
                    expected: chunk.len(),
                    got: part.count(),
                });
            }
            self.scratch.merged |= self.stats.count() > 0;
            self.stats.merge(&part);
            groups.means.push((chunk.len(), part.mean().clone()));
        }
        groups.compact(target);
        self.stats_valid = true;
        Ok(())
    }

    /// `Σ_k b_k (ḡ_k·g_B − ‖g_B‖²)² / (G − 1)` over the groups of the batch, an unbiased
    /// estimate of the variance of `∇f_i·g_B`; `None` for fewer than two groups.
    pub(crate) fn projected_variance(&self) -> Option<f64> {
        let means = &self.scratch.groups.means;
        if means.len() < 2 {
            return None;
        }
        let g = self.stats.mean();
        let g2 = g.dot(g);
        let sum: f64 = means
            .iter()
            .map(|(b, m)| {
                let d = m.dot(g) - g2;
                *b as f64 * d * d
            })
            .sum();
        Some(sum / (means.len() - 1) as f64)
    }
}
