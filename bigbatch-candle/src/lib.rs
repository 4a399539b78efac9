//! [Candle](https://github.com/huggingface/candle) networks as objectives of
//! [`bigbatch`]: the network's variables are the optimizer's parameter vector, and a closure
//! that returns the mean loss of a set of samples is the finite sum.
//!
//! Candle, like every deep-learning framework, computes the mean gradient of a batch with one
//! backward pass, not per-sample gradients. [`CandleModel`] is therefore a
//! [`BatchObjective`], run through [`MicroBatched`]: each batch is evaluated in groups (one
//! backward pass each), and the big-batch test estimates the gradient noise from the spread of
//! the group means (see [`bigbatch::GradStats::push_group`]).
//!
//! # Example
//! ```
//! use bigbatch::{BigBatchOptimizer, BigBatchSgd, Groups};
//! use bigbatch_candle::CandleModel;
//! use candle_core::{DType, Device, Module, Tensor};
//! use candle_nn::{VarBuilder, VarMap, linear};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // y = 2x₀ − x₁ + 0.5 on 400 points, fitted by a linear layer.
//! let dev = Device::Cpu;
//! let x: Vec<f32> = (0..800).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
//! let y: Vec<f32> = x.chunks(2).map(|p| 2.0 * p[0] - p[1] + 0.5).collect();
//! let (x, y) = (Tensor::from_vec(x, (400, 2), &dev)?, Tensor::from_vec(y, (400, 1), &dev)?);
//!
//! let varmap = VarMap::new();
//! let layer = linear(2, 1, VarBuilder::from_varmap(&varmap, DType::F32, &dev).pp("fit"))?;
//! let model = CandleModel::from_varmap(&varmap, 400, |idx: &Tensor| {
//!     let (xb, yb) = (x.index_select(idx, 0)?, y.index_select(idx, 0)?);
//!     layer.forward(&xb)?.sub(&yb)?.sqr()?.mean_all()
//! })?;
//! let objective = model.micro_batched(Groups::default())?;
//! let w0 = objective.model().parameters()?;
//! let report = BigBatchSgd::builder().build()?.minimize(&objective, w0)?;
//! objective.model().set_parameters(&report.w)?; // the layer now holds the fit
//! let w = layer.weight().flatten_all()?.to_vec1::<f32>()?;
//! assert!((w[0] - 2.0).abs() < 1e-3 && (w[1] + 1.0).abs() < 1e-3, "{w:?}");
//! # Ok(())
//! # }
//! ```

pub mod check;
pub mod idx;
pub mod pool;

pub use pool::max_pool2d;

/// The README's code blocks, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

use std::sync::Mutex;

use bigbatch::{BatchObjective, Groups, MicroBatched};
use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;
use ndarray::{Array1, ArrayRef1};

/// What can go wrong in the adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Candle failed (a shape, a device, a file).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// The optimizer refused something.
    #[error(transparent)]
    BigBatch(#[from] bigbatch::Error),
    /// The model cannot be optimized as given.
    #[error("invalid model: {0}")]
    Model(String),
}

/// A Candle network as a [`BatchObjective`]: its variables, flattened in a fixed order into
/// the optimizer's `f32` parameter vector, and a closure `loss(indices)` that returns the
/// mean loss of the samples whose indices (a `u32` tensor on the variables' device) it is
/// given, computed with the variables' current values.
///
/// Every evaluation writes the optimizer's point into the variables, runs the closure, and (for
/// gradients) one backward pass. A closure that fails (a shape error, say) gives a NaN loss,
/// which the optimizer reports as [`bigbatch::Error::NonFinite`] with the last good iterate;
/// [`last_error`](Self::last_error) keeps Candle's message.
pub struct CandleModel<L> {
    vars: Vec<Var>,
    offsets: Vec<usize>,
    n_samples: usize,
    loss: L,
    error: Mutex<Option<String>>,
}

impl<L> std::fmt::Debug for CandleModel<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleModel")
            .field("variables", &self.vars.len())
            .field("dim", &self.offsets.last())
            .field("n_samples", &self.n_samples)
            .finish_non_exhaustive()
    }
}

impl<L: Fn(&Tensor) -> candle_core::Result<Tensor>> CandleModel<L> {
    /// The model of the variables `vars` (in this order) over `n_samples` samples.
    ///
    /// # Errors
    /// [`Error::Model`] if there are no samples or no variables, or a variable is not `f32`.
    pub fn new(vars: Vec<Var>, n_samples: usize, loss: L) -> Result<Self, Error> {
        if n_samples == 0 || vars.is_empty() {
            return Err(Error::Model(format!(
                "{n_samples} samples and {} variables (both must be at least 1)",
                vars.len()
            )));
        }
        let mut offsets = vec![0];
        for (k, v) in vars.iter().enumerate() {
            if v.dtype() != DType::F32 {
                return Err(Error::Model(format!(
                    "variable {k} is {:?}; the adapter optimizes f32 variables",
                    v.dtype()
                )));
            }
            offsets.push(offsets[k] + v.elem_count());
        }
        Ok(CandleModel {
            vars,
            offsets,
            n_samples,
            loss,
            error: Mutex::new(None),
        })
    }

    /// The model of every variable of `varmap`, in the order of their names.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_varmap(varmap: &VarMap, n_samples: usize, loss: L) -> Result<Self, Error> {
        let mut named: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .map_err(|_| Error::Model("the VarMap's lock is poisoned".into()))?
            .iter()
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        Self::new(named.into_iter().map(|(_, v)| v).collect(), n_samples, loss)
    }

    /// Evaluates in `groups` of samples for the big-batch test: the objective to minimize.
    ///
    /// # Errors
    /// As [`MicroBatched::new`].
    pub fn micro_batched(self, groups: Groups) -> Result<MicroBatched<Self>, Error> {
        Ok(MicroBatched::new(self, groups)?)
    }

    /// The variables' current values, flattened: the starting point of a run.
    ///
    /// # Errors
    /// [`Error::Candle`] if a variable cannot be read.
    pub fn parameters(&self) -> Result<Array1<f32>, Error> {
        let mut w = Vec::with_capacity(self.dim_total());
        for v in &self.vars {
            w.extend(v.as_tensor().flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(Array1::from(w))
    }

    /// Writes `w` into the variables (after a run: `report.w`).
    ///
    /// # Errors
    /// [`Error::Model`] if `w` does not have the model's length; [`Error::Candle`] if a
    /// variable cannot be written.
    pub fn set_parameters(&self, w: &ArrayRef1<f32>) -> Result<(), Error> {
        if w.len() != self.dim_total() {
            return Err(Error::Model(format!(
                "{} parameters given for a model of {}",
                w.len(),
                self.dim_total()
            )));
        }
        // A contiguous vector is read in place; any other is copied once.
        let copy;
        let w = match w.as_slice() {
            Some(w) => w,
            None => {
                copy = w.to_vec();
                &copy
            }
        };
        for (k, v) in self.vars.iter().enumerate() {
            let part = &w[self.offsets[k]..self.offsets[k + 1]];
            v.set(&Tensor::from_slice(part, v.shape(), v.device())?)?;
        }
        Ok(())
    }

    /// Checks the network's gradient at `w` on the samples `indices` against central
    /// differences (see [`check`]); the variables hold `w` afterwards. The variables are `f32`,
    /// so the check resolves the gradient to about [`check::F32_TOLERANCE`]; for a tighter
    /// check build the network in `f64` and call [`check::check_gradients`].
    ///
    /// # Errors
    /// As [`set_parameters`](Self::set_parameters) and [`check::check_gradients`].
    pub fn check_gradients(
        &self,
        w: &ArrayRef1<f32>,
        indices: &[usize],
        opts: &check::GradCheck,
    ) -> Result<check::GradCheckReport, Error> {
        self.set_parameters(w)?;
        let idx: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        let idx = Tensor::from_vec(idx, indices.len(), self.vars[0].device())?;
        check::check_gradients(&self.vars, || (self.loss)(&idx), opts)
    }

    /// Candle's message for the last evaluation that failed, if one did.
    pub fn last_error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }

    fn dim_total(&self) -> usize {
        self.offsets[self.vars.len()]
    }

    /// The loss of `indices` at `w`, and with `grad` its gradient.
    fn evaluate(
        &self,
        w: &ArrayRef1<f32>,
        indices: &[usize],
        grad: Option<&mut ArrayRef1<f32>>,
    ) -> candle_core::Result<f32> {
        self.set_parameters(w).map_err(|e| match e {
            Error::Candle(e) => e,
            other => candle_core::Error::Msg(other.to_string()),
        })?;
        let idx: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        let device = self.vars[0].device();
        let idx = Tensor::from_vec(idx, indices.len(), device)?;
        let loss = (self.loss)(&idx)?;
        let value = loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        if let Some(grad) = grad {
            let grads = loss.backward()?;
            for (k, v) in self.vars.iter().enumerate() {
                let mut out = grad.slice_mut(ndarray::s![self.offsets[k]..self.offsets[k + 1]]);
                match grads.get(v.as_tensor()) {
                    Some(g) => {
                        let g = g.flatten_all()?.to_vec1::<f32>()?;
                        match out.as_slice_mut() {
                            Some(out) => out.copy_from_slice(&g),
                            None => out.iter_mut().zip(g).for_each(|(o, x)| *o = x),
                        }
                    }
                    // A variable the loss does not depend on.
                    None => out.fill(0.0),
                }
            }
        }
        Ok(value)
    }

    /// A failed evaluation: NaN, and the message kept.
    fn failed(&self, e: candle_core::Error) -> f32 {
        if let Ok(mut slot) = self.error.lock() {
            *slot = Some(e.to_string());
        }
        f32::NAN
    }
}

impl<L: Fn(&Tensor) -> candle_core::Result<Tensor>> BatchObjective<f32> for CandleModel<L> {
    fn n_samples(&self) -> usize {
        self.n_samples
    }
    fn dim(&self) -> usize {
        self.dim_total()
    }
    fn loss(&self, w: &ArrayRef1<f32>, indices: &[usize]) -> f32 {
        self.evaluate(w, indices, None)
            .unwrap_or_else(|e| self.failed(e))
    }
    fn loss_and_gradient(
        &self,
        w: &ArrayRef1<f32>,
        indices: &[usize],
        grad: &mut ArrayRef1<f32>,
    ) -> f32 {
        match self.evaluate(w, indices, Some(&mut *grad)) {
            Ok(loss) => loss,
            Err(e) => {
                grad.fill(f32::NAN);
                self.failed(e)
            }
        }
    }
}
