//! One iteration of Big Batch SGD, in three steps (draw a batch that passes the test; stop or
//! ask the step rule for a step; apply it and record it), and the loop that repeats it.

use std::ops::ControlFlow;

use ndarray::{Array1, Zip};

use super::Outcome;
use super::averaging::{interpolate, update_average};
use super::config::{BatchMode, BigBatchSgd};
use super::drawing::{Confirmed, Drawn, Grown};
use super::state::RunState;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::objective::{Curvature, LineLoss, Objective};
use crate::optimizer::grown_size;
use crate::report::observe::{IterView, Observer};
use crate::report::{IterRecord, Report, StopReason};
use crate::step::{Hessian, Step, StepContext, StepRule, Trials};
use crate::stream::Feed;

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

impl<S: StepRule> BigBatchSgd<S> {
    /// Runs from `run` until a stopping rule fires: the loop of
    /// [`resume_with`](BigBatchSgd::resume_with), with `after` called after each step.
    pub(crate) fn drive<F, O, Ob, A>(
        &mut self,
        objective: &O,
        mut run: RunState<F>,
        observer: &mut Ob,
        after: &mut A,
        feed: Feed<'_>,
    ) -> Result<Report<F>>
    where
        F: Float,
        O: Objective<F> + ?Sized,
        Ob: Observer<F> + ?Sized,
        A: AfterStep<F, S> + ?Sized,
    {
        run.check_fits(objective.n_samples(), objective.dim())?;
        // The objective's losses along lines and its curvature, kept for the whole run.
        let mut kept = Capabilities::of(objective);
        let stop = loop {
            if run.iteration >= self.stop.max_iterations {
                break StopReason::IterationBudget;
            }
            if run.grad_evals() >= self.stop.grad_limit(run.n_samples) {
                break StopReason::EpochBudget;
            }
            let record = match self.step_once(objective, &mut kept, &mut run, feed) {
                Ok(Outcome::Stepped(record)) => record,
                Ok(Outcome::Converged) => break StopReason::GradientTolerance,
                Ok(Outcome::Stalled) => break StopReason::NoProgress,
                Ok(Outcome::OutOfBudget) if feed.is_some_and(|f| f.ended()) => {
                    break StopReason::StreamEnded;
                }
                Ok(Outcome::OutOfBudget) => break StopReason::EpochBudget,
                Ok(Outcome::OutOfLossBudget) => break StopReason::LossBudget,
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
                average: run.average.as_ref(),
            };
            if observer.on_iter(&view).is_break() {
                break StopReason::Observer;
            }
        };
        let average = run.average.take();
        let loss = final_loss(objective, &mut run, feed, average.as_ref())?;
        let last_iterate = average.as_ref().map(|_| run.w.clone());
        Ok(Report {
            epochs: run.epochs(),
            data_passes: run.data_passes(),
            loss,
            iterations: run.iteration,
            grad_evals: run.grad_evals(),
            loss_evals: run.loss_evals(),
            batch_size: run.batch_size,
            grad_norm_sq: F::from_f64(run.last_grad_norm_sq),
            non_finite_trials: run.eval.non_finite_trials(),
            stop,
            last_iterate,
            w: average.unwrap_or(run.w),
        })
    }

    /// The step rule's step from the current iterate: the direction starts as `−g_B`.
    fn propose<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        kept: &mut Capabilities<'_, F>,
        run: &mut RunState<F>,
        drawn: &Drawn,
        loss: F,
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
            gradient: &run.work.gradient,
            noise: self.test.noise(run.eval.stats(), run.n_samples),
            batch_grew: drawn.grew,
            has_previous: persistent && run.iteration > 0,
            iteration: run.iteration,
            n_samples: run.n_samples,
            direction: &mut run.work.direction,
            trials: Trials {
                objective,
                along: kept.along.as_deref_mut().map(shorten),
                hessian: kept
                    .curvature
                    .as_deref_mut()
                    .map(|c| Hessian::new(shorten_curvature(c))),
                eval: &mut run.eval,
                w: &run.w,
                batch: run.sampler.batch(),
                loss,
            },
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
        let interpolated = self.averaging.filter(|_| self.interpolation > 0.0);
        let from = match (interpolated, &run.fast) {
            (Some(_), Some(z)) => z,
            _ => &run.w,
        };
        move_to(
            &mut run.work.next,
            from,
            &run.work.direction,
            step.step_size,
        );
        if !crate::kernels::all_finite(&run.work.next) {
            return Err(Error::non_finite("iterate", it));
        }
        if let Some(h) = interpolated {
            interpolate(run, h, self.interpolation);
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
            non_finite_trials: run.eval.trials().1,
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
        if let (Some(h), None) = (self.averaging, interpolated) {
            update_average(run, h, record.batch_size);
        }
        run.iteration += 1;
        Ok(Outcome::Stepped(record))
    }
}

/// The batch loss at the current iterate, checked to be finite; `None` if the budget of loss
/// evaluations cannot pay for it.
fn batch_loss<F: Float, O: Objective<F> + ?Sized>(
    objective: &O,
    run: &mut RunState<F>,
) -> Result<Option<F>> {
    match run
        .eval
        .loss_at_iterate(objective, &run.w, run.sampler.batch())
    {
        Some(loss) if !loss.is_finite() => Err(Error::non_finite("loss", run.iteration)),
        loss => Ok(loss),
    }
}

/// What an objective offers beyond its methods, asked for once per run: losses along lines
/// ([`Objective::line`]) and Hessian-vector products ([`Objective::curvature`]).
pub(super) struct Capabilities<'o, F> {
    along: Option<Box<dyn LineLoss<F> + 'o>>,
    curvature: Option<Box<dyn Curvature<F> + 'o>>,
}

impl<'o, F: Float> Capabilities<'o, F> {
    pub(super) fn of<O: Objective<F> + ?Sized>(objective: &'o O) -> Self {
        Capabilities {
            along: objective.line(),
            curvature: objective.curvature(),
        }
    }
}

/// A line object borrowed for as long as it lives at most.
fn shorten<'a, 'o: 'a, F>(along: &'a mut (dyn LineLoss<F> + 'o)) -> &'a mut (dyn LineLoss<F> + 'a) {
    along
}

/// A curvature object borrowed for as long as it lives at most.
fn shorten_curvature<'a, 'o: 'a, F>(
    curvature: &'a mut (dyn Curvature<F> + 'o),
) -> &'a mut (dyn Curvature<F> + 'a) {
    curvature
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
/// pass. On a stream, the mean loss there of the samples it holds (the last batch read). At
/// the `average` of the iterates, if the run keeps one, always one pass.
fn final_loss<F: Float, O: Objective<F> + ?Sized>(
    objective: &O,
    run: &mut RunState<F>,
    feed: Feed<'_>,
    average: Option<&Array1<F>>,
) -> Result<F> {
    let held = feed.map(|f| f.held());
    let n = held.as_ref().map_or(run.n_samples, |h| h.len());
    let known = run
        .eval
        .valid_stats()
        .filter(|stats| stats.count() == n && average.is_none())
        .and_then(|stats| stats.loss())
        .or_else(|| {
            run.eval
                .loss_at_w(n)
                .filter(|_| held.is_none() && average.is_none())
        });
    let loss = match known {
        Some(loss) => loss,
        None => {
            let all: Vec<usize> = held.unwrap_or(0..run.n_samples).collect();
            run.eval
                .final_loss(objective, average.unwrap_or(&run.w), &all)
        }
    };
    if loss.is_finite() {
        Ok(loss)
    } else {
        let what = if average.is_some() {
            "loss at the average of the iterates"
        } else {
            "loss at the final iterate"
        };
        Err(Error::non_finite(what, run.iteration).with_iterate(&run.last_good))
    }
}

/// Checks that a starting point is finite.
pub(crate) fn check_start<F: Float>(w0: &Array1<F>) -> Result<()> {
    match w0.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        Some((index, value)) => Err(Error::NonFiniteInput {
            what: "w0",
            index,
            value: value.as_f64(),
        }),
        None => Ok(()),
    }
}

impl<S: StepRule> BigBatchSgd<S> {
    pub(super) fn start_run<F: Float, O: Objective<F> + ?Sized>(
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
        check_start(&w0)?;
        self.step.reset();
        let mut run = RunState::new(w0, n, self.initial_batch, self.seed);
        if self.batch_mode == BatchMode::Persistent {
            run.sampler.shuffle(&mut run.rng);
        }
        Ok(run)
    }

    /// One iteration, with the run's line and curvature objects.
    pub(super) fn step_once<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        objective: &O,
        kept: &mut Capabilities<'_, F>,
        run: &mut RunState<F>,
        feed: Feed<'_>,
    ) -> Result<Outcome<F>> {
        let n = run.n_samples;
        run.prepare(self.stop.grad_limit(n), self.stop.loss_limit(n));
        // A batch that passes the test at `w`, within the budget.
        let Some(mut drawn) = self.draw_passing(objective, run, feed)? else {
            return Ok(Outcome::OutOfBudget);
        };
        // Stop, or propose a step.
        while !drawn.cut_short {
            // Every sample: the line search and the next iterations read the rows in order,
            // which memory serves faster than a shuffle (the set, and so every statistic, is
            // the same; only the order of the sums changes).
            run.sampler.order_if_full();
            if !self.converged(run)? {
                break;
            }
            match self.confirm(objective, run, &mut drawn, feed)? {
                Confirmed::Converged => return Ok(Outcome::Converged),
                Confirmed::OutOfBudget => return Ok(Outcome::OutOfBudget),
                // The unseen samples disagree and joined the batch, which must pass the
                // test again before a step.
                Confirmed::Disagreed => {
                    if self.grow(objective, run, &mut drawn, feed)? == Grown::OutOfBudget {
                        return Ok(Outcome::OutOfBudget);
                    }
                }
            }
        }
        if drawn.cut_short {
            run.last_grad_norm_sq = run.eval.stats().grad_norm_sq();
        } else {
            // The batch that passed joins the test's averages.
            self.test
                .record(run.eval.stats(), n, &mut run.noise_average);
        }
        let Some(loss) = batch_loss(objective, run)? else {
            return Ok(Outcome::OutOfLossBudget);
        };
        run.last_good.assign(&run.w);
        let step = self.propose(objective, kept, run, &drawn, loss)?;
        if run.eval.loss_budget_hit() {
            // The rule wanted a loss the budget could not pay for: stop where the run is.
            return Ok(Outcome::OutOfLossBudget);
        }
        // Apply it and record it.
        self.apply(run, &drawn, loss, step)
    }
}
