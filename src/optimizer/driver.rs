//! One iteration of Big Batch SGD, in three steps (draw a batch that passes the test; stop or
//! ask the step rule for a step; apply it and record it), and the loop that repeats it.

use std::ops::ControlFlow;

use ndarray::{Array1, Zip};

use super::config::{BatchMode, BigBatchSgd, GrowthRule};
use super::state::RunState;
use super::{BigBatchOptimizer, Outcome, StopRule};
use crate::batch::grown_size;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::objective::Objective;
use crate::observe::{IterView, Observer};
use crate::report::{IterRecord, Report, StopReason};
use crate::step::{Step, StepContext, StepRule};

/// What the loop does after each step besides handing it to the observer: saving a
/// checkpoint (with the `serde` feature). `Break` ends the run with the reason given.
pub(crate) trait AfterStep<F, S> {
    fn after_step(
        &mut self,
        optimizer: &BigBatchSgd<S>,
        run: &RunState<F>,
    ) -> ControlFlow<StopReason>;
}

impl<F, S> AfterStep<F, S> for () {
    fn after_step(&mut self, _: &BigBatchSgd<S>, _: &RunState<F>) -> ControlFlow<StopReason> {
        ControlFlow::Continue(())
    }
}

/// What drawing and growing one iteration's batch did.
#[derive(Debug, Clone, Copy, Default)]
struct Drawn {
    /// Growth rounds after the test failed.
    growth_rounds: usize,
    /// Whether the batch is larger than the previous iteration's (growth of any kind).
    grew: bool,
    /// Whether the batch loss in the statistics came from one evaluation of the whole batch,
    /// so that it is the very number `Objective::batch_loss` gives for the bundled models.
    one_pass: bool,
}

impl<S: StepRule> BigBatchSgd<S> {
    /// Runs from `run` until a stopping rule fires: the loop of
    /// [`resume_with`](BigBatchOptimizer::resume_with), with `after` called after each step.
    pub(crate) fn drive<F, O, Ob, A>(
        &mut self,
        objective: &O,
        mut run: RunState<F>,
        observer: &mut Ob,
        after: &mut A,
    ) -> Result<Report<F>>
    where
        F: Float,
        O: Objective<F> + ?Sized,
        Ob: Observer<F> + ?Sized,
        A: AfterStep<F, S> + ?Sized,
    {
        run.check_fits(objective.n_samples(), objective.dim())?;
        let stop = loop {
            if run.iteration >= self.stop.max_iterations {
                break StopReason::IterationBudget;
            }
            if run.grad_evals() >= self.stop.grad_limit(run.n_samples) {
                break StopReason::EpochBudget;
            }
            let record = match self.iterate(objective, &mut run) {
                Ok(Outcome::Stepped(record)) => record,
                Ok(Outcome::Converged) => break StopReason::GradientTolerance,
                Ok(Outcome::Stalled) => break StopReason::NoProgress,
                Ok(Outcome::OutOfBudget) => break StopReason::EpochBudget,
                Err(e) => return Err(e.with_iterate(&run.last_good)),
            };
            // The state after the step is saved before an observer can stop the run.
            if let ControlFlow::Break(reason) = after.after_step(self, &run) {
                break reason;
            }
            let view = IterView {
                record: &record,
                w: &run.w,
                batch: run.sampler.batch(),
            };
            if observer.on_iter(&view).is_break() {
                break StopReason::Observer;
            }
        };
        let loss = final_loss(objective, &mut run)?;
        Ok(Report {
            epochs: run.epochs(),
            data_passes: run.data_passes(),
            loss,
            iterations: run.iteration,
            grad_evals: run.grad_evals(),
            loss_evals: run.loss_evals(),
            batch_size: run.batch_size,
            grad_norm_sq: F::from_f64(run.last_grad_norm_sq),
            stop,
            w: run.w,
        })
    }

    /// Draws this iteration's batch and grows it until it passes the test; `None` if the
    /// budget runs out first.
    fn draw_passing<F: Float, O: Objective<F> + ?Sized>(
        &self,
        objective: &O,
        run: &mut RunState<F>,
    ) -> Result<Option<Drawn>> {
        let Some(mut drawn) = self.draw(objective, run)? else {
            return Ok(None);
        };
        Ok(self.grow(objective, run, &mut drawn)?.then_some(drawn))
    }

    /// Whether the gradient of the batch that passed is small enough to stop.
    fn converged<F: Float>(&self, run: &mut RunState<F>) -> Result<bool> {
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
    fn confirm<F: Float, O: Objective<F> + ?Sized>(
        &self,
        objective: &O,
        run: &mut RunState<F>,
        drawn: &mut Drawn,
    ) -> Result<Option<bool>> {
        let (k, n) = (run.batch_size, run.n_samples);
        if self.batch_mode != BatchMode::Persistent || run.iteration == 0 || k >= n {
            return Ok(Some(true));
        }
        let extra = k.min(n - k);
        if extra as u64 > run.eval.remaining() {
            return Ok(None);
        }
        let fitted = run.eval.stats().mean().clone();
        run.eval.keep_previous();
        run.batch_size = k + extra;
        let new = run.sampler.prefix(k + extra);
        run.eval.add(objective, &run.w, new)?;
        run.eval.check(run.iteration)?;
        drawn.growth_rounds += 1;
        drawn.grew = true;
        drawn.one_pass = false;
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
        Ok(Some(self.stop.converged(g2_unseen, first)))
    }

    /// Draws the batch of this iteration at the current iterate (a fresh draw, or the
    /// persistent prefix, evaluating only the samples whose statistics at `w` are not known);
    /// `None` if the budget cannot pay for it.
    fn draw<F: Float, O: Objective<F> + ?Sized>(
        &self,
        objective: &O,
        run: &mut RunState<F>,
    ) -> Result<Option<Drawn>> {
        let size = run.batch_size;
        let remaining = run.eval.remaining();
        let mut drawn = Drawn {
            grew: std::mem::take(&mut run.forced_growth),
            one_pass: true,
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
                    drawn.one_pass = false;
                }
                run.eval.add(objective, &run.w, new)?;
            }
        } else {
            if size as u64 > remaining {
                return Ok(None);
            }
            run.eval.clear();
            let batch = run.sampler.draw(size, &mut run.rng);
            run.eval.add(objective, &run.w, batch)?;
        }
        run.eval.check(run.iteration)?;
        Ok(Some(drawn))
    }

    /// Grows the batch at the same iterate until it passes the test (only new samples are
    /// evaluated), within the budget; `false` if the budget runs out first.
    fn grow<F: Float, O: Objective<F> + ?Sized>(
        &self,
        objective: &O,
        run: &mut RunState<F>,
        drawn: &mut Drawn,
    ) -> Result<bool> {
        let n_total = run.n_samples;
        let persistent = self.batch_mode == BatchMode::Persistent;
        while run.batch_size < n_total && !self.test.passes(run.eval.stats(), n_total) {
            let mut next = grown_size(run.batch_size, self.growth, n_total);
            if self.growth_rule == GrowthRule::ToRequired {
                next = next
                    .max(self.test.required_size(run.eval.stats(), n_total))
                    .min(n_total);
            }
            // The budget caps the growth: the batch takes what is left of it.
            let remaining = usize::try_from(run.eval.remaining()).unwrap_or(usize::MAX);
            next = next.min(run.batch_size.saturating_add(remaining));
            if next <= run.batch_size {
                return Ok(false);
            }
            if persistent {
                run.eval.keep_previous();
            }
            run.batch_size = next;
            let new = if persistent {
                run.sampler.prefix(next)
            } else {
                run.sampler.extend(next, &mut run.rng)
            };
            run.eval.add(objective, &run.w, new)?;
            run.eval.check(run.iteration)?;
            drawn.growth_rounds += 1;
            drawn.grew = true;
            drawn.one_pass = false;
        }
        Ok(true)
    }

    /// The step rule's step from the current iterate: the direction starts as `−g_B`.
    fn propose<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        run: &mut RunState<F>,
        drawn: &Drawn,
        loss: F,
        loss_one_pass: bool,
    ) -> Result<Step<F>> {
        let persistent = self.batch_mode == BatchMode::Persistent;
        Zip::from(&mut run.work.gradient)
            .and(&mut run.work.direction)
            .and(run.eval.stats().mean())
            .for_each(|g, d, &m| {
                *g = F::from_f64(m);
                *d = -*g;
            });
        run.eval
            .keep_trials(persistent && run.eval.stats().loss().is_some());
        let mut ctx = StepContext {
            objective,
            w: &run.w,
            batch: run.sampler.batch(),
            gradient: &run.work.gradient,
            loss,
            loss_one_pass,
            noise: self.test.noise(run.eval.stats(), run.n_samples),
            batch_grew: drawn.grew,
            has_previous: persistent && run.iteration > 0,
            iteration: run.iteration,
            n_samples: run.n_samples,
            direction: &mut run.work.direction,
            eval: &mut run.eval,
        };
        let step = self.step.step(&mut ctx)?;
        if step.step_size.is_finite() && step.step_size >= F::zero() {
            Ok(step)
        } else {
            Err(Error::non_finite("step size", run.iteration))
        }
    }

    /// Moves to `w + αd` and records the iteration. A step that leaves `w` unchanged grows the
    /// batch for the next iteration (it would otherwise repeat itself), or ends the run at the
    /// full batch.
    fn apply<F: Float>(
        &self,
        run: &mut RunState<F>,
        drawn: &Drawn,
        loss: F,
        step: Step<F>,
    ) -> Result<Outcome<F>> {
        let (n_total, it) = (run.n_samples, run.iteration);
        move_to(
            &mut run.work.next,
            &run.w,
            &run.work.direction,
            step.step_size,
        );
        if run.work.next.iter().any(|x| !x.is_finite()) {
            return Err(Error::non_finite("iterate", it));
        }
        let record = IterRecord {
            iteration: it,
            epochs: run.epochs(),
            batch_size: run.batch_size,
            growth_rounds: drawn.growth_rounds,
            loss,
            loss_after: step.loss_after,
            grad_norm_sq: F::from_f64(run.last_grad_norm_sq),
            variance: F::from_f64(run.eval.stats().variance()),
            step_size: step.step_size,
            backtracks: step.backtracks,
            grad_evals: run.grad_evals(),
            loss_evals: run.loss_evals(),
        };
        // Exact comparison on purpose: the question is whether the step changed any bit.
        #[allow(clippy::float_cmp)]
        let unchanged = run.work.next == run.w;
        if unchanged {
            if run.sampler.batch().len() >= n_total {
                return Ok(Outcome::Stalled);
            }
            // The same batch at the same `w` would give the same step again: grow the batch
            // (its statistics at `w` stay valid, so a persistent batch adds only new samples).
            run.batch_size = grown_size(run.batch_size, self.growth, n_total);
            run.forced_growth = true;
        } else {
            run.eval.adopt(&run.work.next);
            std::mem::swap(&mut run.w, &mut run.work.next);
        }
        run.iteration += 1;
        Ok(Outcome::Stepped(record))
    }
}

/// The batch loss at the current iterate, from the statistics if they carry it (and whether
/// it came from one evaluation of the whole batch), otherwise from a loss pass.
fn batch_loss<F: Float, O: Objective<F> + ?Sized>(
    objective: &O,
    run: &mut RunState<F>,
    drawn: &Drawn,
) -> Result<(F, bool)> {
    let (loss, one_pass) = match run.eval.stats().loss() {
        Some(loss) => (loss, drawn.one_pass),
        None => (run.eval.loss(objective, &run.w, run.sampler.batch()), true),
    };
    if loss.is_finite() {
        Ok((loss, one_pass))
    } else {
        Err(Error::non_finite("loss", run.iteration))
    }
}

/// Writes `w + alpha·d` into `next`.
fn move_to<F: Float>(next: &mut Array1<F>, w: &Array1<F>, d: &Array1<F>, alpha: F) {
    Zip::from(next)
        .and(w)
        .and(d)
        .for_each(|x, &w, &d| *x = w + alpha * d);
}

/// The full objective at the final iterate: known already if the statistics of every sample
/// there are (a full batch drawn there, or kept from the accepted first trial of a full-batch
/// line search) or if a full-batch line search computed the loss there; otherwise one loss
/// pass.
fn final_loss<F: Float, O: Objective<F> + ?Sized>(
    objective: &O,
    run: &mut RunState<F>,
) -> Result<F> {
    let known = run
        .eval
        .valid_stats()
        .filter(|stats| stats.count() == run.n_samples)
        .and_then(|stats| stats.loss())
        .or_else(|| run.eval.loss_at_w(run.n_samples));
    let loss = match known {
        Some(loss) => loss,
        None => {
            let all: Vec<usize> = (0..run.n_samples).collect();
            run.eval.loss(objective, &run.w, &all)
        }
    };
    if loss.is_finite() {
        Ok(loss)
    } else {
        Err(
            Error::non_finite("loss at the final iterate", run.iteration)
                .with_iterate(&run.last_good),
        )
    }
}

impl<F: Float, S: StepRule> BigBatchOptimizer<F> for BigBatchSgd<S> {
    fn start<O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        w0: Array1<F>,
    ) -> Result<RunState<F>> {
        let (n, dim) = (objective.n_samples(), objective.dim());
        if n == 0 || dim == 0 {
            return Err(Error::EmptyObjective { n_samples: n, dim });
        }
        if w0.len() != dim {
            return Err(Error::DimensionMismatch {
                what: "w0",
                expected: dim,
                got: w0.len(),
            });
        }
        if let Some((index, value)) = w0.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(Error::NonFiniteInput {
                what: "w0",
                index,
                value: value.as_f64(),
            });
        }
        self.step.reset();
        let mut run = RunState::new(w0, n, self.initial_batch, self.seed);
        if self.batch_mode == BatchMode::Persistent {
            run.sampler.shuffle(&mut run.rng);
        }
        Ok(run)
    }

    fn iterate<O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        run: &mut RunState<F>,
    ) -> Result<Outcome<F>> {
        run.prepare(self.stop.grad_limit(run.n_samples));
        // A batch that passes the test at `w`, within the budget.
        let Some(mut drawn) = self.draw_passing(objective, run)? else {
            return Ok(Outcome::OutOfBudget);
        };
        // Stop, or propose a step.
        loop {
            // Every sample: the line search and the next iterations read the rows in order,
            // which memory serves faster than a shuffle (the set, and so every statistic, is
            // the same; only the order of the sums changes).
            run.sampler.order_if_full();
            if !self.converged(run)? {
                break;
            }
            match self.confirm(objective, run, &mut drawn)? {
                Some(true) => return Ok(Outcome::Converged),
                // The unseen samples disagree and joined the batch, which must pass the
                // test again before a step.
                Some(false) if self.grow(objective, run, &mut drawn)? => {}
                _ => return Ok(Outcome::OutOfBudget),
            }
        }
        let (loss, one_pass) = batch_loss(objective, run, &drawn)?;
        run.last_good.assign(&run.w);
        let step = self.propose(objective, run, &drawn, loss, one_pass)?;
        // Apply it and record it.
        self.apply(run, &drawn, loss, step)
    }

    fn stop_rule(&self) -> &StopRule {
        &self.stop
    }

    fn resume_with<O: Objective<F> + ?Sized, Ob: Observer<F> + ?Sized>(
        &mut self,
        objective: &O,
        run: RunState<F>,
        observer: &mut Ob,
    ) -> Result<Report<F>> {
        self.drive(objective, run, observer, &mut ())
    }
}
