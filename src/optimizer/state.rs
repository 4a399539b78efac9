//! The state of a run between iterations.

use ndarray::Array1;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use crate::error::{Error, Result};
use crate::evaluator::Evaluator;
use crate::float::Float;
use crate::optimizer::Sampler;
use crate::stats::NoiseAverage;

/// The state of a run between iterations: the iterate, the counters, the random numbers, the
/// batch and its statistics. Work buffers are not part of it (nor of a checkpoint).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "F: serde::Serialize",
        deserialize = "F: serde::Deserialize<'de>"
    ))
)]
pub struct RunState<F> {
    pub(crate) w: Array1<F>,
    pub(crate) n_samples: usize,
    pub(crate) iteration: usize,
    pub(crate) batch_size: usize,
    pub(crate) first_grad_norm_sq: Option<f64>,
    pub(crate) last_grad_norm_sq: f64,
    pub(crate) rng: Xoshiro256PlusPlus,
    pub(crate) sampler: Sampler,
    /// The counters, and the batch statistics at `w` when they are known.
    pub(crate) eval: Evaluator<F>,
    /// Whether the batch was grown after a step that left the iterate unchanged (which would
    /// otherwise repeat itself on the same batch).
    pub(crate) forced_growth: bool,
    /// The averages of the test's estimates over iterations (with `smoothing` > 0).
    #[cfg_attr(feature = "serde", serde(default))]
    pub(crate) noise_average: NoiseAverage,
    /// The average of the iterates (with `average_iterates`), once a step was taken.
    #[cfg_attr(feature = "serde", serde(default))]
    pub(crate) average: Option<Array1<F>>,
    /// The iterate that the steps move, where gradients are evaluated between it and the
    /// average (with `interpolate`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub(crate) fast: Option<Array1<F>>,
    pub(crate) last_good: Array1<F>,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) work: Work<F>,
}

/// The buffers of one iteration.
#[derive(Debug, Clone)]
pub(crate) struct Work<F> {
    /// The batch gradient rounded to `F`.
    pub(crate) gradient: Array1<F>,
    pub(crate) direction: Array1<F>,
    pub(crate) next: Array1<F>,
}

impl<F> Default for Work<F> {
    fn default() -> Self {
        Work {
            gradient: Array1::from_vec(Vec::new()),
            direction: Array1::from_vec(Vec::new()),
            next: Array1::from_vec(Vec::new()),
        }
    }
}

impl<F: Float> RunState<F> {
    pub(crate) fn new(w: Array1<F>, n_samples: usize, batch_size: usize, seed: u64) -> Self {
        RunState {
            n_samples,
            iteration: 0,
            batch_size: batch_size.min(n_samples),
            first_grad_norm_sq: None,
            last_grad_norm_sq: 0.0,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            sampler: Sampler::new(n_samples),
            eval: Evaluator::new(w.len()),
            forced_growth: false,
            noise_average: NoiseAverage::default(),
            average: None,
            fast: None,
            last_good: w.clone(),
            work: Work::default(),
            w,
        }
    }

    /// The state of a new run on a stream, whose batches are new samples in the order read.
    pub(crate) fn streaming(w: Array1<F>, batch_size: usize, seed: u64) -> Self {
        let mut run = RunState::new(w, 0, 0, seed);
        run.n_samples = crate::stream::UNBOUNDED;
        run.batch_size = batch_size;
        run.sampler = Sampler::sequential();
        run
    }

    /// Sizes the work buffers (after a checkpoint is loaded) and starts an iteration with the
    /// budgets `grad_limit` and `loss_limit`.
    pub(crate) fn prepare(&mut self, grad_limit: u64, loss_limit: u64) {
        let dim = self.w.len();
        if self.work.gradient.len() != dim {
            self.work = Work {
                gradient: Array1::zeros(dim),
                direction: Array1::zeros(dim),
                next: Array1::zeros(dim),
            };
        }
        self.eval.prepare(grad_limit, loss_limit);
    }

    /// Checks that the run can continue on an objective of `n_samples` samples and dimension
    /// `dim`.
    pub(crate) fn check_fits(&self, n_samples: usize, dim: usize) -> Result<()> {
        if n_samples != self.n_samples {
            return Err(Error::DimensionMismatch {
                what: "objective samples (against the run state)",
                expected: self.n_samples,
                got: n_samples,
            });
        }
        if dim != self.w.len() {
            return Err(Error::DimensionMismatch {
                what: "objective dimension (against the run state)",
                expected: self.w.len(),
                got: dim,
            });
        }
        Ok(())
    }

    /// Checks that a state read from elsewhere (a checkpoint) is one a run can continue from;
    /// says what is wrong otherwise.
    #[cfg(feature = "serde")]
    pub(crate) fn check_consistent(&self) -> std::result::Result<(), String> {
        let (n, dim) = (self.n_samples, self.w.len());
        if n == 0 || dim == 0 {
            return Err(format!("{n} samples and dimension {dim}"));
        }
        if self.last_good.len() != dim || self.eval.stats().dim() != dim {
            return Err(format!(
                "the iterate has dimension {dim}, the last good iterate {} and the batch statistics {}",
                self.last_good.len(),
                self.eval.stats().dim()
            ));
        }
        if !self.sampler.is_permutation_of(n) {
            return Err(format!(
                "the sampler does not hold a permutation of {n} samples"
            ));
        }
        if self.batch_size == 0 || self.batch_size > n || self.eval.stats().count() > n {
            return Err(format!(
                "a batch of {} samples ({} with statistics) out of {n}",
                self.batch_size,
                self.eval.stats().count()
            ));
        }
        let finite = |w: &Array1<F>| w.iter().all(|x| x.is_finite());
        if !finite(&self.w) || !finite(&self.last_good) {
            return Err("the iterate is not finite".into());
        }
        Ok(())
    }

    /// The current iterate.
    pub fn w(&self) -> &Array1<F> {
        &self.w
    }
    /// Steps taken so far.
    pub fn iteration(&self) -> usize {
        self.iteration
    }
    /// Per-sample gradient evaluations so far.
    pub fn grad_evals(&self) -> u64 {
        self.eval.grad_evals()
    }
    /// Per-sample loss evaluations so far.
    pub fn loss_evals(&self) -> u64 {
        self.eval.loss_evals()
    }
    /// Epochs used so far: `grad_evals / N` (0 on a stream, which has no `N`).
    pub fn epochs(&self) -> f64 {
        self.per_sample(self.grad_evals())
    }
    /// Passes over the data so far, gradient and loss evaluations alike:
    /// `(grad_evals + loss_evals) / N` (0 on a stream).
    pub fn data_passes(&self) -> f64 {
        self.per_sample(self.grad_evals() + self.loss_evals())
    }
    fn per_sample(&self, count: u64) -> f64 {
        if self.n_samples == crate::stream::UNBOUNDED {
            0.0
        } else {
            count as f64 / self.n_samples as f64
        }
    }
    /// The average of the iterates so far (with
    /// [`average_iterates`](crate::BigBatchSgdBuilder::average_iterates), after the first step).
    pub fn average(&self) -> Option<&Array1<F>> {
        self.average.as_ref()
    }
    /// The batch size the next iteration starts from.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
    /// The last iterate at which the batch loss and gradient were finite (`w0` before the
    /// first evaluation): what a failed run hands back.
    pub fn last_good(&self) -> &Array1<F> {
        &self.last_good
    }
    /// The indices of the last batch drawn.
    pub fn batch(&self) -> &[usize] {
        self.sampler.batch()
    }
}
