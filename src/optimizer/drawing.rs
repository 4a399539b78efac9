//! The batch of an iteration: drawn at the current iterate, grown until it passes the
//! big-batch test, and, before a run stops on it, checked against samples it has not seen.

use ndarray::Zip;

use super::config::{BatchMode, BigBatchSgd, GrowthRule};
use super::state::RunState;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::objective::Objective;
use crate::optimizer::grown_size;
use crate::step::StepRule;
use crate::stream::{Feed, supplied};

/// What drawing and growing one iteration's batch did.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Drawn {
    /// Growth rounds after the test failed.
    pub(super) growth_rounds: usize,
    /// Whether the batch is larger than the previous iteration's (growth of any kind).
    pub(super) grew: bool,
    /// On a stream: the budget ran out while the batch grew, and the iteration steps on the
    /// batch as it is, untested (a last step, on more samples than any batch before, since a
    /// fresh batch starts at the size the last one ended at).
    pub(super) cut_short: bool,
}

/// What the check of a small persistent batch against unseen samples found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Confirmed {
    /// The gradient is small there too (or there is nothing to check): the run converged.
    Converged,
    /// The unseen samples disagree; they joined the batch, which must pass the test again.
    Disagreed,
    /// The budget cannot pay for the unseen samples.
    OutOfBudget,
}

/// How growing a batch until it passes the test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Grown {
    Passed,
    OutOfBudget,
}

impl<S: StepRule> BigBatchSgd<S> {
    /// Draws this iteration's batch and grows it until it passes the test; `None` if the
    /// budget runs out first.
    pub(super) fn draw_passing<F: Float, O: Objective<F> + ?Sized>(
        &self,
        objective: &O,
        run: &mut RunState<F>,
        feed: Feed<'_>,
    ) -> Result<Option<Drawn>> {
        let Some(mut drawn) = self.draw(objective, run, feed)? else {
            return Ok(None);
        };
        if self.schedule.is_some() {
            return Ok(Some(drawn));
        }
        Ok(match self.grow(objective, run, &mut drawn, feed)? {
            Grown::Passed => Some(drawn),
            // On a stream the samples the budget paid for are the scarce resource: the last
            // batch, cut short by the budget, still makes a step.
            Grown::OutOfBudget if feed.is_some_and(|f| !f.ended()) => {
                drawn.cut_short = true;
                Some(drawn)
            }
            Grown::OutOfBudget => None,
        })
    }

    /// Whether the gradient of the batch that passed is small enough to stop.
    pub(super) fn converged<F: Float>(&self, run: &mut RunState<F>) -> Result<bool> {
        let g2 = run.eval.stats().grad_norm_sq();
        if !g2.is_finite() {
            return Err(Error::non_finite("gradient norm", run.iteration));
        }
        run.last_grad_norm_sq = g2;
        let first = *run.first_grad_norm_sq.get_or_insert(g2);
        let converged = self.stop.converged(g2, first);
        if converged {
            run.last_good.assign(&run.w);
        }
        Ok(converged)
    }

    /// Whether a gradient small enough to stop holds beyond the batch; `None` if the budget
    /// cannot pay for the check.
    ///
    /// A fresh batch, or the first, is a random sample at `w`. A persistent batch that has been
    /// stepped on is not: the iterate was fitted to its samples, and their gradient understates
    /// that of the rest (a model with more parameters than the batch has samples can fit them
    /// exactly, gradient and variance alike, and pass the test with a batch of ten). So before
    /// stopping on a persistent batch smaller than N, as many samples as it holds that the run
    /// has not drawn yet (the next ones of its shuffle) are evaluated at `w`, and their own mean
    /// gradient must meet the tolerance too. If it does not, they join the batch (which
    /// doubles) and the iteration goes on.
    pub(super) fn confirm<F: Float, O: Objective<F> + ?Sized>(
        &self,
        objective: &O,
        run: &mut RunState<F>,
        drawn: &mut Drawn,
        feed: Feed<'_>,
    ) -> Result<Confirmed> {
        let (k, n) = (run.batch_size, run.n_samples);
        if self.batch_mode != BatchMode::Persistent || run.iteration == 0 || k >= n {
            return Ok(Confirmed::Converged);
        }
        let extra = k.min(n - k);
        if extra as u64 > run.eval.remaining() {
            return Ok(Confirmed::OutOfBudget);
        }
        let fitted = run.eval.stats().mean().clone();
        if !self.enlarge(objective, run, drawn, k + extra, feed)? {
            return Ok(Confirmed::OutOfBudget);
        }
        // The mean gradient of the new samples alone, from the means before and after.
        let (kf, ef) = (k as f64, extra as f64);
        let g2_unseen =
            Zip::from(run.eval.stats().mean())
                .and(&fitted)
                .fold(0.0, |acc, &all, &old| {
                    let m = ((kf + ef) * all - kf * old) / ef;
                    acc + m * m
                });
        if !g2_unseen.is_finite() {
            return Err(Error::non_finite("gradient norm", run.iteration));
        }
        let first = run.first_grad_norm_sq.unwrap_or(g2_unseen);
        Ok(if self.stop.converged(g2_unseen, first) {
            Confirmed::Converged
        } else {
            Confirmed::Disagreed
        })
    }

    /// Draws the batch of this iteration at the current iterate (a fresh draw, or the
    /// persistent prefix, evaluating only the samples whose statistics at `w` are not known);
    /// `None` if the budget cannot pay for it or the stream has ended.
    fn draw<F: Float, O: Objective<F> + ?Sized>(
        &self,
        objective: &O,
        run: &mut RunState<F>,
        feed: Feed<'_>,
    ) -> Result<Option<Drawn>> {
        if let Some(schedule) = &self.schedule {
            // A schedule sets the size, and no test changes it.
            let progress = if run.n_samples == crate::stream::UNBOUNDED {
                run.grad_evals() as f64
            } else {
                run.epochs()
            };
            let k = schedule.size(self.initial_batch, progress, run.n_samples);
            run.batch_size = run.batch_size.max(k);
        } else if self.batch_mode == BatchMode::Fresh {
            // With averaged estimates, a fresh batch starts at the size the averages ask for
            // (at least the first size): the batch follows the noise scale both ways, and a
            // chance failure does not raise it for good.
            if let Some(k) = self.test.averaged_size(&run.noise_average, run.n_samples) {
                run.batch_size = k.max(self.initial_batch).min(run.n_samples);
            }
        }
        let size = run.batch_size;
        let remaining = run.eval.remaining();
        let drawn = Drawn {
            grew: std::mem::take(&mut run.forced_growth),
            ..Drawn::default()
        };
        if self.batch_mode == BatchMode::Persistent {
            let known = run.eval.valid_stats().map_or(0, |s| s.count().min(size));
            if (size - known) as u64 > remaining {
                return Ok(None);
            }
            if known == 0 {
                run.eval.clear();
            }
            run.sampler.prefix(known);
            let new = run.sampler.prefix(size);
            if !new.is_empty() {
                if known > 0 {
                    // The batch grew after a step that left `w` unchanged: keep the previous
                    // batch's statistics, and evaluate only the new samples.
                    run.eval.keep_previous();
                }
                run.eval.add(objective, &run.w, new)?;
            }
        } else {
            if size as u64 > remaining {
                return Ok(None);
            }
            run.eval.clear();
            let batch = run.sampler.draw(size, &mut run.rng);
            if !supplied(feed, batch, true, &mut run.rng)? {
                return Ok(None);
            }
            self.evaluate(objective, &mut run.eval, &run.w, batch)?;
        }
        run.eval.check(run.iteration)?;
        Ok(Some(drawn))
    }

    /// Grows the batch at the same iterate until it passes the test (only new samples are
    /// evaluated), within the budget and what the stream holds.
    pub(super) fn grow<F: Float, O: Objective<F> + ?Sized>(
        &self,
        objective: &O,
        run: &mut RunState<F>,
        drawn: &mut Drawn,
        feed: Feed<'_>,
    ) -> Result<Grown> {
        let n_total = run.n_samples;
        while run.batch_size < n_total
            && !self.test.passes_any(
                run.eval.stats(),
                n_total,
                &run.noise_average,
                run.eval.projected_variance(),
            )
        {
            let mut next = grown_size(run.batch_size, self.growth, n_total);
            if self.growth_rule == GrowthRule::ToRequired {
                let required = match &self.test.inner_product {
                    None => self.test.required_size(run.eval.stats(), n_total),
                    Some(ip) => ip
                        .required_size(&self.test, run.eval.stats(), run.eval.projected_variance())
                        .map_or(n_total, |k| k.ceil().min(n_total as f64) as usize),
                };
                next = next.max(required).min(n_total);
            }
            // The budget caps the growth: the batch takes what is left of it.
            let remaining = usize::try_from(run.eval.remaining()).unwrap_or(usize::MAX);
            next = next.min(run.batch_size.saturating_add(remaining));
            if next <= run.batch_size {
                return Ok(Grown::OutOfBudget);
            }
            if !self.enlarge(objective, run, drawn, next, feed)? {
                return Ok(Grown::OutOfBudget);
            }
        }
        Ok(Grown::Passed)
    }

    /// Evaluates the samples `new` at `w` into the batch statistics: in groups for the
    /// inner-product test, at once otherwise.
    fn evaluate<F: Float, O: Objective<F> + ?Sized>(
        &self,
        objective: &O,
        eval: &mut crate::evaluator::Evaluator<F>,
        w: &ndarray::Array1<F>,
        new: &[usize],
    ) -> Result<()> {
        match &self.test.inner_product {
            Some(ip) => eval.add_grouped(objective, w, new, ip.groups),
            None => eval.add(objective, w, new),
        }
    }

    /// Grows the batch to `size` samples at the same iterate, evaluating only the new ones
    /// (the next of the shuffle for a persistent batch, a draw from the rest for a fresh one,
    /// the next samples of a stream); false if the stream ended first.
    fn enlarge<F: Float, O: Objective<F> + ?Sized>(
        &self,
        objective: &O,
        run: &mut RunState<F>,
        drawn: &mut Drawn,
        size: usize,
        feed: Feed<'_>,
    ) -> Result<bool> {
        run.batch_size = size;
        let new = if self.batch_mode == BatchMode::Persistent {
            run.eval.keep_previous();
            run.sampler.prefix(size)
        } else {
            run.sampler.extend(size, &mut run.rng)
        };
        if !supplied(feed, new, false, &mut run.rng)? {
            return Ok(false);
        }
        self.evaluate(objective, &mut run.eval, &run.w, new)?;
        run.eval.check(run.iteration)?;
        drawn.growth_rounds += 1;
        drawn.grew = true;
        Ok(true)
    }
}
