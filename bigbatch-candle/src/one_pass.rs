//! [`OnePass`]: a network whose batches are evaluated with one forward and one backward pass,
//! with the per-sample gradient norms of its layers (see [`per_sample`](crate::per_sample)).

use std::sync::Mutex;

use bigbatch::{GradStats, Objective};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use ndarray::{Array1, ArrayRef1};

use crate::per_sample::{self, Record, Tape};
use crate::{CandleModel, Error};

/// A [`CandleModel`] whose layers record on a [`Tape`], as an [`Objective`]: a batch is
/// evaluated in chunks of at most [`chunk_size`](Self::chunk_size) samples, each with one
/// forward and one backward pass, which give the chunk's mean gradient, its mean loss and the
/// sum of its per-sample squared gradient norms `Σ‖∇f_i‖²`. The chunk's statistics are then
/// those of its samples pushed one by one: the mean gradient, and the spread
/// `Σ‖∇f_i − g‖² = Σ‖∇f_i‖² − n‖g‖²` with `n − 1` degrees of freedom (where
/// [`MicroBatched`](bigbatch::MicroBatched) has one less than its group count). They merge
/// with other chunks, a grown batch's new samples and other workers' parts exactly, like every
/// other objective's.
///
/// The closure must return the **mean** over the given samples of per-sample losses, each
/// depending on its own sample only (no batch normalization; see the
/// [covered layers](crate::per_sample#what-is-covered)), and build every layer with
/// parameters from [`per_sample`](crate::per_sample) on the model's tape.
/// [`CandleModel::one_pass`] checks the coverage on two samples and names a variable that is
/// not covered.
///
/// The spread is a difference of two sums computed in `f32` by the network: it loses relative
/// precision when the mean gradient's norm dwarfs the spread (`n‖g‖² ≫ Σ‖∇f_i − g‖²`), which on
/// networks, whose per-sample gradients are noisy, it does not; it is clamped at zero.
pub struct OnePass<L> {
    model: CandleModel<L>,
    tape: Tape,
    chunk: usize,
    mean: Mutex<Array1<f64>>,
}

impl<L> std::fmt::Debug for OnePass<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnePass")
            .field("model", &self.model)
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

impl<L: Fn(&Tensor) -> candle_core::Result<Tensor>> CandleModel<L> {
    /// Evaluates batches with one backward pass and per-sample gradient norms from the layers
    /// recording on `tape`: the objective to minimize, for a network whose layers
    /// [`per_sample`](crate::per_sample) covers.
    ///
    /// # Errors
    /// [`Error::Model`] if a variable with a gradient is in no recorded layer, a recorded layer
    /// has parameters that are not the model's variables or is used twice in one pass, or the
    /// closure fails, on the first two samples at the variables' current values.
    pub fn one_pass(self, tape: &Tape) -> Result<OnePass<L>, Error> {
        let dim = self.dim_total();
        let model = OnePass {
            model: self,
            tape: tape.clone(),
            chunk: bigbatch::parallel::CHUNK,
            mean: Mutex::new(Array1::zeros(dim)),
        };
        let probe: Vec<usize> = (0..model.model.samples().min(2)).collect();
        let mut mean = vec![0.0; dim];
        model
            .pass(&probe, &mut mean)
            .map_err(|e| Error::Model(format!("one-pass evaluation: {e}")))?;
        Ok(model)
    }
}

impl<L: Fn(&Tensor) -> candle_core::Result<Tensor>> OnePass<L> {
    /// Evaluates batches in chunks of at most `size` samples (default
    /// [`bigbatch::parallel::CHUNK`]): a bound on the memory of one forward pass.
    ///
    /// # Errors
    /// [`Error::Model`] for a size of zero.
    pub fn chunk_size(mut self, size: usize) -> Result<Self, Error> {
        if size == 0 {
            return Err(Error::Model("a chunk size of 0".into()));
        }
        self.chunk = size;
        Ok(self)
    }

    /// The model: its variables, [`parameters`](CandleModel::parameters),
    /// [`at`](CandleModel::at).
    pub fn model(&self) -> &CandleModel<L> {
        &self.model
    }

    /// The per-sample squared gradient norms `‖∇f_i‖²` of the samples `indices` at `w`, from
    /// one backward pass: what the statistics of a batch are built from.
    ///
    /// # Errors
    /// As [`CandleModel::set_parameters`], and [`Error::Model`] if the pass fails.
    pub fn per_sample_sq_norms(
        &self,
        w: &ArrayRef1<f32>,
        indices: &[usize],
    ) -> Result<Vec<f64>, Error> {
        self.model.set_parameters(w)?;
        let rec = self.tape.record();
        let loss = self.model.loss_tensor(indices)?;
        let records = rec.finish();
        let grads = loss.backward()?;
        self.covered(&records, &grads).map_err(Error::Model)?;
        Ok(per_sample::sq_norms(&records, &grads, indices.len())?)
    }

    /// One forward and backward pass over `indices` at the variables' values: the mean
    /// gradient into `mean`, and `(Σ losses, Σ‖∇f_i − g‖²)`.
    fn pass(&self, indices: &[usize], mean: &mut [f64]) -> Result<(f64, f64), String> {
        let rec = self.tape.record();
        let loss = self.model.loss_tensor(indices).map_err(|e| e.to_string())?;
        let records = rec.finish();
        let mut run = || -> candle_core::Result<Result<(f64, f64), String>> {
            let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            let grads = loss.backward()?;
            if let Err(e) = self.covered(&records, &grads) {
                return Ok(Err(e));
            }
            self.model.read_gradients(&grads, mean, 0.0, f64::from)?;
            let mean_sq = sum_sq(mean);
            let n = indices.len();
            let sq: f64 = per_sample::sq_norms(&records, &grads, n)?.iter().sum();
            Ok(Ok((value * n as f64, (sq - n as f64 * mean_sq).max(0.0))))
        };
        run().map_err(|e| e.to_string())?
    }

    /// Whether the records cover exactly the variables that have gradients.
    fn covered(&self, records: &[Record], grads: &GradStore) -> Result<(), String> {
        let covered = per_sample::covered(records)?;
        let vars = self.model.vars();
        for (v, name) in vars.iter().zip(self.model.names()) {
            if grads.get(v.as_tensor()).is_some() && !covered.contains(&v.id()) {
                return Err(format!(
                    "{name} has a gradient but is in no layer recorded on the model's tape: \
                     build its layer with bigbatch_candle::per_sample on that tape, or evaluate \
                     the network in micro-batches (CandleModel::micro_batched)"
                ));
            }
        }
        if covered.len() > vars.iter().filter(|v| covered.contains(&v.id())).count() {
            return Err(
                "a recorded layer has parameters that are not the model's variables: \
                        their gradients would count in the per-sample norms"
                    .into(),
            );
        }
        Ok(())
    }

    fn loss_of(&self, w: &ArrayRef1<f32>, batch: &[usize]) -> candle_core::Result<f32> {
        self.model
            .set_parameters(w)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let mut sum = 0.0f64;
        for chunk in batch.chunks(self.chunk) {
            let l = self.model.loss_tensor(chunk)?;
            sum += l.to_dtype(DType::F64)?.to_scalar::<f64>()? * chunk.len() as f64;
        }
        Ok((sum / batch.len() as f64) as f32)
    }
}

impl<L: Fn(&Tensor) -> candle_core::Result<Tensor>> Objective<f32> for OnePass<L> {
    fn n_samples(&self) -> usize {
        self.model.samples()
    }
    fn dim(&self) -> usize {
        self.model.dim_total()
    }
    fn sample_loss(&self, w: &ArrayRef1<f32>, i: usize) -> f32 {
        bigbatch::BatchObjective::loss(&self.model, w, &[i])
    }
    fn sample_gradient(&self, w: &ArrayRef1<f32>, i: usize, grad: &mut ArrayRef1<f32>) {
        bigbatch::BatchObjective::loss_and_gradient(&self.model, w, &[i], grad);
    }
    fn sample_loss_gradient(&self, w: &ArrayRef1<f32>, i: usize, grad: &mut ArrayRef1<f32>) -> f32 {
        bigbatch::BatchObjective::loss_and_gradient(&self.model, w, &[i], grad)
    }
    fn batch_loss(&self, w: &ArrayRef1<f32>, batch: &[usize]) -> f32 {
        self.loss_of(w, batch)
            .unwrap_or_else(|e| self.model.failed(e))
    }
    fn batch_gradient(&self, w: &ArrayRef1<f32>, batch: &[usize], stats: &mut GradStats<f32>) {
        let mut mean = self.mean.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = self.model.set_parameters(w) {
            self.model.failed(e);
            mean.fill(f64::NAN);
            stats.merge_parts(batch.len(), &mean, f64::NAN, Some(f64::NAN));
            return;
        }
        for chunk in batch.chunks(self.chunk) {
            let out = mean.as_slice_mut().expect("a new vector is contiguous");
            match self.pass(chunk, out) {
                Ok((loss_sum, m2)) => stats.merge_parts(chunk.len(), &mean, m2, Some(loss_sum)),
                Err(e) => {
                    self.model.failed(e);
                    mean.fill(f64::NAN);
                    stats.merge_parts(chunk.len(), &mean, f64::NAN, Some(f64::NAN));
                }
            }
        }
    }
}

/// `Σ x²` in eight interleaved partial sums (which the compiler vectorizes, where one running
/// sum waits on each addition), added in a fixed order: the same bits on every run.
fn sum_sq(x: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = x.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|v| v * v).sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v * v;
        }
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}
