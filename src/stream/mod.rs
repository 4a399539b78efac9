//! Big batches on a stream of samples: on-line learning, and data larger than memory.
//!
//! A [`SampleStream`] hands out samples in order, a read at a time; nothing is known of how
//! many there are. [`BigBatchSgd::minimize_stream`](crate::BigBatchSgd::minimize_stream) runs
//! the method on it unchanged: each iteration reads a fresh batch, grows it with new samples
//! until it passes the big-batch test, and steps. Every sample is read once and enters one
//! batch, so each batch is an independent sample of the distribution the stream draws from,
//! and what the run minimizes is the **expected risk** `E f(w; ξ)`, not a finite sum.
//!
//! - **Memory** is bounded by the largest batch: only the current batch's models are held,
//!   and the samples of a batch are dropped when the next batch's first samples arrive (the
//!   first eighth of it, for a batch of more than 1024 samples: at most an eighth of a batch
//!   more).
//! - **The budget** is in samples ([`max_samples`](crate::BigBatchSgdBuilder::max_samples),
//!   required: a stream has no epochs). A run also stops when the stream ends
//!   ([`StopReason::StreamEnded`](crate::StopReason::StreamEnded)).
//! - **The stop on the gradient** has the meaning it has on a fresh batch of a finite sum, for
//!   the expected risk: a batch that passed the test at θ < 1 and meets the tolerance bounds
//!   `‖∇E f‖²` by `ε/(1 − θ)²`, to the test's statistical confidence (see
//!   [`StopReason::GradientTolerance`](crate::StopReason::GradientTolerance)). There is no
//!   finite-population correction (the population is infinite) and no full batch.
//! - **What works on it**: every step rule that needs no persistent batch and no Hessian
//!   (fixed, Armijo, Adadelta, Adam, Barzilai–Borwein, L-BFGS on fresh batches); batches are
//!   [`BatchMode::Fresh`], and a persistent batch is refused.
//!   Line searches evaluate trial losses on the batch held in memory. A model's losses along
//!   lines and Hessian products are not used (each batch is a new model).
//! - **The report's loss** is the mean loss at the final iterate of the samples held at the
//!   end (the last batch read): an estimate of the risk there, biased low by as much as the
//!   last step fitted that batch. Its `epochs` and `data_passes` are 0; `grad_evals` counts
//!   samples.
//!
//! A read returns a chunk of samples ([`SampleStream::Chunk`]); the run builds a model on it
//! with a closure the caller gives (for the bundled models, a [`Dataset`](crate::data::Dataset)
//! and a constructor). [`from_fn`] makes a stream of a generator (a simulator, a sensor),
//! and [`LibsvmStream`] reads a LIBSVM file, plain or gzip, a chunk at a time, with passes and
//! a shuffle buffer for files read more than once.
//!
//! # Example
//! Ridge regression on samples `y = x·w* + noise` drawn for ever, with a budget of 200 000
//! samples:
//! ```
//! use bigbatch::{BigBatchSgd, data::Dataset, models::LeastSquares, stream};
//! use ndarray::{Array1, Array2};
//! use rand::RngExt;
//!
//! let w_star = [1.0, -2.0, 0.5];
//! let mut source = stream::from_fn(|k, rng| {
//!     let x = Array2::from_shape_fn((k, 3), |_| rng.random::<f64>() - 0.5);
//!     let noise = Array1::from_shape_fn(k, |_| 0.1 * (rng.random::<f64>() - 0.5));
//!     let y = x.dot(&Array1::from(w_star.to_vec())) + noise;
//!     Ok(Some(Dataset::from_dense(x, y)?))
//! });
//! let mut optimizer = BigBatchSgd::builder()
//!     .batch_mode(bigbatch::BatchMode::Fresh)
//!     .max_samples(200_000)
//!     .build()?;
//! let report = optimizer.minimize_stream(
//!     &mut source,
//!     |chunk| LeastSquares::new(chunk, 0.0),
//!     Array1::zeros(3),
//! )?;
//! assert!(report.grad_evals <= 200_000);
//! assert!((report.w[1] + 2.0).abs() < 0.05, "{}", report.w);
//! # Ok::<(), bigbatch::Error>(())
//! ```

use std::cell::RefCell;
use std::marker::PhantomData;
use std::ops::Range;

use ndarray::{Array1, ArrayRef1};
use rand::Rng;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::objective::Objective;
use crate::optimizer::{BatchMode, BigBatchSgd, RunState};
use crate::report::Report;
use crate::report::observe::Observer;
use crate::stats::GradStats;
use crate::step::StepRule;

mod libsvm;
pub use libsvm::LibsvmStream;

/// Reads of a new batch of at most this many samples are not split.
const SMALL_READ: usize = 1024;

/// The number of samples of a stream, as the run's objective reports it: there is no `N`.
pub const UNBOUNDED: usize = usize::MAX;

/// Samples that arrive in order, a read at a time (a generator, a reader of records, a file too
/// large for memory).
///
/// The optimizer asks for the samples it needs and no more: a new batch, then the samples a
/// batch grows by. A stream may return fewer than it is asked for (a record boundary, the end of
/// a pass); the optimizer asks again for the rest.
pub trait SampleStream {
    /// What a read returns: samples a model is built on (a [`Dataset`](crate::data::Dataset)
    /// for the bundled streams and models).
    type Chunk;

    /// Reads at most `k ≥ 1` of the next samples; `Ok(None)` once the stream has ended (and
    /// from then on). `rng` is the run's random numbers, for a stream that draws or shuffles:
    /// with it, the same seed gives the same run.
    ///
    /// # Errors
    /// Whatever reading the samples can fail with; the run stops with the error and its last
    /// good iterate.
    fn read(&mut self, k: usize, rng: &mut dyn Rng) -> Result<Option<Self::Chunk>>;
}

impl<S: SampleStream + ?Sized> SampleStream for &mut S {
    type Chunk = S::Chunk;
    fn read(&mut self, k: usize, rng: &mut dyn Rng) -> Result<Option<Self::Chunk>> {
        (**self).read(k, rng)
    }
}

/// A stream of a function `f(k, rng)` that returns at most `k` new samples, or `None` at the
/// end: see the [module](self) example.
pub fn from_fn<C, G>(generate: G) -> FromFn<G>
where
    G: FnMut(usize, &mut dyn Rng) -> Result<Option<C>>,
{
    FromFn(generate)
}

/// The stream of [`from_fn`].
#[derive(Debug, Clone)]
pub struct FromFn<G>(G);

impl<C, G> SampleStream for FromFn<G>
where
    G: FnMut(usize, &mut dyn Rng) -> Result<Option<C>>,
{
    type Chunk = C;
    fn read(&mut self, k: usize, rng: &mut dyn Rng) -> Result<Option<C>> {
        (self.0)(k, rng)
    }
}

/// How the driver asks a stream for samples before it evaluates them; `None` for an objective
/// held in memory.
pub(crate) type Feed<'a> = Option<&'a dyn Supply>;

/// The driver's side of a stream.
pub(crate) trait Supply {
    /// Reads the samples of `new` (the next indices of the stream, in order); with `fresh`, they
    /// start a new batch and the held samples may go. False if the stream ended first.
    fn supply(&self, new: &[usize], fresh: bool, rng: &mut dyn Rng) -> Result<bool>;
    /// Whether the stream has ended.
    fn ended(&self) -> bool;
    /// The indices of the samples held.
    fn held(&self) -> Range<usize>;
}

/// Whether the samples of `new` can be evaluated (always, without a stream).
pub(crate) fn supplied(
    feed: Feed<'_>,
    new: &[usize],
    fresh: bool,
    rng: &mut dyn Rng,
) -> Result<bool> {
    feed.map_or(Ok(true), |f| f.supply(new, fresh, rng))
}

/// A stream as the run's objective: sample `i` is the `i`-th the stream gave, and those of the
/// current batch are held, as the models built on the chunks they came in.
struct Streamed<F, St, M, O> {
    dim: usize,
    held: RefCell<Held<St, M, O>>,
    float: PhantomData<fn() -> F>,
}

struct Held<St, M, O> {
    stream: St,
    model: M,
    /// The models of the held chunks, each with the index of its first sample.
    chunks: Vec<(usize, O)>,
    /// One past the index of the last sample read.
    end: usize,
    ended: bool,
}

impl<St, M, O> Held<St, M, O> {
    /// The model holding sample `i`, and the index of its first sample.
    fn chunk_of<F: Float>(&self, i: usize) -> (usize, &O)
    where
        O: Objective<F>,
    {
        let c = self.chunks.partition_point(|(start, _)| *start <= i);
        // The optimizer only evaluates samples of the batch it holds.
        assert!(c > 0, "sample {i} of the stream is no longer held");
        let (start, model) = &self.chunks[c - 1];
        (*start, model)
    }
}

impl<F: Float, St, M, O: Objective<F>> Streamed<F, St, M, O> {
    /// Calls `f` with each model that holds samples of `batch` and their indices in it.
    fn parts(&self, batch: &[usize], mut f: impl FnMut(&O, &[usize])) {
        let held = self.held.borrow();
        let mut local = Vec::with_capacity(batch.len());
        let mut rest = batch;
        while let Some(&first) = rest.first() {
            let (start, model) = held.chunk_of(first);
            let end = start + model.n_samples();
            let take = rest
                .iter()
                .position(|&i| i < start || i >= end)
                .unwrap_or(rest.len());
            local.clear();
            local.extend(rest[..take].iter().map(|&i| i - start));
            f(model, &local);
            rest = &rest[take..];
        }
    }
}

impl<F, St, M, O> Objective<F> for Streamed<F, St, M, O>
where
    F: Float,
    O: Objective<F>,
{
    fn n_samples(&self) -> usize {
        UNBOUNDED
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        let held = self.held.borrow();
        let (start, model) = held.chunk_of(i);
        model.sample_loss(w, i - start)
    }
    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) {
        let held = self.held.borrow();
        let (start, model) = held.chunk_of(i);
        model.sample_gradient(w, i - start, grad);
    }
    fn sample_loss_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) -> F {
        let held = self.held.borrow();
        let (start, model) = held.chunk_of(i);
        model.sample_loss_gradient(w, i - start, grad)
    }
    fn batch_loss(&self, w: &ArrayRef1<F>, batch: &[usize]) -> F {
        if batch.is_empty() {
            return F::zero();
        }
        let mut sum = 0.0;
        self.parts(batch, |model, local| {
            sum += model.batch_loss(w, local).as_f64() * local.len() as f64;
        });
        F::from_f64(sum / batch.len() as f64)
    }
    fn batch_gradient(&self, w: &ArrayRef1<F>, batch: &[usize], stats: &mut GradStats<F>) {
        self.parts(batch, |model, local| model.batch_gradient(w, local, stats));
    }
}

impl<F, St, M, O> Supply for Streamed<F, St, M, O>
where
    F: Float,
    St: SampleStream,
    M: FnMut(St::Chunk) -> Result<O>,
    O: Objective<F>,
{
    fn supply(&self, new: &[usize], fresh: bool, rng: &mut dyn Rng) -> Result<bool> {
        self.read(new, fresh, rng).map_err(|e| Error::StreamFailed {
            samples_read: self.held.borrow().end,
            source: Box::new(e),
            last_iterate: Vec::new(),
        })
    }
    fn ended(&self) -> bool {
        self.held.borrow().ended
    }
    fn held(&self) -> Range<usize> {
        let held = self.held.borrow();
        held.chunks.first().map_or(held.end, |(start, _)| *start)..held.end
    }
}

impl<F, St, M, O> Streamed<F, St, M, O>
where
    F: Float,
    St: SampleStream,
    M: FnMut(St::Chunk) -> Result<O>,
    O: Objective<F>,
{
    /// [`Supply::supply`], with the errors of the stream and the models as they are.
    fn read(&self, new: &[usize], fresh: bool, rng: &mut dyn Rng) -> Result<bool> {
        let mut held = self.held.borrow_mut();
        let held = &mut *held;
        debug_assert!(new.first().is_none_or(|&i| i == held.end));
        let mut need = new.len();
        let mut fresh = fresh;
        while need > 0 {
            if held.ended {
                return Ok(false);
            }
            // While the last batch is held, the new one arrives in eighths: memory holds at
            // most an eighth of a batch (or `SMALL_READ` samples) beyond one batch.
            let ask = if fresh {
                need.min(need.div_ceil(8).max(SMALL_READ))
            } else {
                need
            };
            let Some(chunk) = held.stream.read(ask, rng)? else {
                held.ended = true;
                return Ok(false);
            };
            if fresh {
                // The new batch's first samples are here: the last batch's can go.
                held.chunks.clear();
                fresh = false;
            }
            let model = (held.model)(chunk)?;
            let got = model.n_samples();
            if got == 0 || got > ask {
                return Err(Error::InvalidData {
                    what: format!(
                        "a read of the stream asked for at most {ask} samples returned {got}"
                    ),
                });
            }
            if model.dim() != self.dim {
                return Err(Error::DimensionMismatch {
                    what: "the model of a read of the stream",
                    expected: self.dim,
                    got: model.dim(),
                });
            }
            held.chunks.push((held.end, model));
            held.end += got;
            need -= got;
        }
        Ok(true)
    }
}

impl<S: StepRule> BigBatchSgd<S> {
    /// Minimizes the expected risk of the samples of `stream` from `w0`: each batch is new
    /// samples, and `model` builds the objective of each chunk the stream returns. See the
    /// [`stream`](crate::stream) module.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] before the run if the batch mode is not
    /// [`BatchMode::Fresh`] or there is no [`max_samples`](crate::StopCriteria::max_samples)
    /// budget, [`Error::NonFiniteInput`] for a bad `w0`; during the run, the errors of
    /// [`minimize_with`](Self::minimize_with), and [`Error::StreamFailed`] with the error the
    /// stream or `model` returned, or with an [`Error::DimensionMismatch`] or
    /// [`Error::InvalidData`] for a read whose model has a dimension other than `w0`'s or more
    /// samples than were asked for. Each carries the last good iterate.
    pub fn minimize_stream<F, St, M, O>(
        &mut self,
        stream: St,
        model: M,
        w0: Array1<F>,
    ) -> Result<Report<F>>
    where
        F: Float,
        St: SampleStream,
        M: FnMut(St::Chunk) -> Result<O>,
        O: Objective<F>,
    {
        self.minimize_stream_with(stream, model, w0, &mut ())
    }

    /// [`minimize_stream`](Self::minimize_stream), handing every iteration to `observer`.
    ///
    /// # Errors
    /// As [`minimize_stream`](Self::minimize_stream).
    pub fn minimize_stream_with<F, St, M, O, Ob>(
        &mut self,
        stream: St,
        model: M,
        w0: Array1<F>,
        observer: &mut Ob,
    ) -> Result<Report<F>>
    where
        F: Float,
        St: SampleStream,
        M: FnMut(St::Chunk) -> Result<O>,
        O: Objective<F>,
        Ob: Observer<F> + ?Sized,
    {
        if self.batch_mode != BatchMode::Fresh {
            return Err(Error::invalid(
                "batch_mode",
                format!("{:?}", self.batch_mode),
                "Fresh on a stream (each sample is read once)",
            ));
        }
        if self.stop.max_samples == u64::MAX {
            return Err(Error::invalid(
                "max_samples",
                "none",
                "a budget in samples: a run on a stream needs one",
            ));
        }
        if w0.is_empty() {
            return Err(Error::EmptyObjective {
                n_samples: UNBOUNDED,
                dim: 0,
            });
        }
        crate::optimizer::check_start(&w0)?;
        let objective = Streamed {
            dim: w0.len(),
            held: RefCell::new(Held {
                stream,
                model,
                chunks: Vec::new(),
                end: 0,
                ended: false,
            }),
            float: PhantomData,
        };
        self.step.reset();
        let run = RunState::streaming(w0, self.initial_batch, self.seed);
        self.drive(&objective, run, observer, &mut (), Some(&objective))
    }
}
