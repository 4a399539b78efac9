//! [`CandleModel`]: a network's variables and its loss as a [`BatchObjective`].

use std::sync::Mutex;

use bigbatch::{BatchObjective, Groups, MicroBatched};
use candle_core::backprop::GradStore;
use candle_core::{DType, Storage, Tensor, Var};
use candle_nn::VarMap;
use ndarray::{Array1, ArrayRef1};

use crate::{Error, check};

/// The group count of the network preset's micro-batches
/// ([`BigBatchSgd::network`](bigbatch::BigBatchSgd::network) with
/// [`CandleModel::micro_batched`]): 8 groups, of single samples in the preset's first batch of 8,
/// chosen on the comparison's networks (the crate's README). A network that
/// [`OnePass`](crate::OnePass) covers needs no groups.
pub const NETWORK_GROUPS: Groups = Groups::Count(8);

/// A Candle network as a [`BatchObjective`]: its variables, flattened in a fixed order into
/// the optimizer's `f32` parameter vector, and a closure `loss(indices)` that returns the
/// mean loss of the samples whose indices (a `u32` tensor on the variables' device) it is
/// given, computed with the variables' current values.
///
/// An evaluation writes the optimizer's point into the variables when they do not hold it
/// already (once per point, however many groups or chunks are evaluated there), runs the
/// closure, and (for gradients) one backward pass. A closure that fails (a shape error, say)
/// gives a NaN loss, which the optimizer reports as [`bigbatch::Error::NonFinite`] with the
/// last good iterate; [`last_error`](Self::last_error) keeps Candle's message.
///
/// During a run the variables hold the point of the last evaluation, which is a trial point or
/// a sample of a batch, not necessarily the iterate: an observer that evaluates the network
/// itself does it through [`at`](Self::at).
pub struct CandleModel<L> {
    vars: Vec<Var>,
    names: Vec<String>,
    offsets: Vec<usize>,
    n_samples: usize,
    pub(crate) loss: L,
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
        let names = (0..vars.len()).map(|k| format!("variable {k}")).collect();
        Self::named(vars, names, n_samples, loss)
    }

    fn named(vars: Vec<Var>, names: Vec<String>, n_samples: usize, loss: L) -> Result<Self, Error> {
        if n_samples == 0 || vars.is_empty() {
            return Err(Error::Model(format!(
                "{n_samples} samples and {} variables (both must be at least 1)",
                vars.len()
            )));
        }
        if n_samples > u32::MAX as usize {
            return Err(Error::Model(format!(
                "{n_samples} samples: indices are passed as u32, at most {}",
                u32::MAX
            )));
        }
        let mut offsets = vec![0];
        for (k, v) in vars.iter().enumerate() {
            if v.dtype() != DType::F32 {
                return Err(Error::Model(format!(
                    "{} is {:?}; the adapter optimizes f32 variables",
                    names[k],
                    v.dtype()
                )));
            }
            offsets.push(offsets[k] + v.elem_count());
        }
        Ok(CandleModel {
            vars,
            names,
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
        // Sorted by name: the same network gives the same layout of parameters.
        let named = crate::init::sorted_vars(varmap)?;
        let (names, vars) = named.into_iter().unzip();
        Self::named(vars, names, n_samples, loss)
    }

    /// Evaluates in `groups` of samples for the big-batch test: the objective to minimize.
    /// [`NETWORK_GROUPS`] is the network preset's.
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
        match w.as_slice() {
            Some(w) => self.write(w)?,
            None => self.write(&w.to_vec())?,
        }
        Ok(())
    }

    /// Writes `w` into the variables and runs `f`: what an observer does to evaluate the network
    /// at the iterate `v.w` (the variables hold whatever point was evaluated last).
    ///
    /// In an observer: `model.at(v.w, || net.accuracy(&test_x, &test_y))`.
    ///
    /// ```
    /// use bigbatch_candle::CandleModel;
    /// use candle_core::{DType, Device, Tensor, Var};
    /// use ndarray::array;
    ///
    /// let v = Var::zeros(2, DType::F32, &Device::Cpu)?;
    /// let t = v.as_tensor().clone();
    /// let model = CandleModel::new(vec![v], 1, move |_: &Tensor| t.sum_all())?;
    /// let seen = model.at(&array![1.5, -2.0], || model.parameters())??;
    /// assert_eq!(seen, array![1.5, -2.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`set_parameters`](Self::set_parameters).
    pub fn at<R>(&self, w: &ArrayRef1<f32>, f: impl FnOnce() -> R) -> Result<R, Error> {
        self.set_parameters(w)?;
        Ok(f())
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
        let idx = self.indices(indices)?;
        check::check_gradients(&self.vars, || (self.loss)(&idx), opts)
    }

    /// Candle's message for the last evaluation that failed, if one did.
    pub fn last_error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }

    pub(crate) fn vars(&self) -> &[Var] {
        &self.vars
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    pub(crate) fn dim_total(&self) -> usize {
        self.offsets[self.vars.len()]
    }

    pub(crate) fn samples(&self) -> usize {
        self.n_samples
    }

    /// Writes the parts of `w` into the variables that do not hold them already.
    pub(crate) fn write(&self, w: &[f32]) -> candle_core::Result<()> {
        for (k, v) in self.vars.iter().enumerate() {
            let part = &w[self.offsets[k]..self.offsets[k + 1]];
            if holds(v.as_tensor(), part) {
                continue;
            }
            v.set(&Tensor::from_slice(part, v.shape(), v.device())?)?;
        }
        Ok(())
    }

    /// The indices as the closure's `u32` tensor.
    pub(crate) fn indices(&self, indices: &[usize]) -> candle_core::Result<Tensor> {
        let idx: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        Tensor::from_vec(idx, indices.len(), self.vars[0].device())
    }

    /// The mean loss of `indices` at the variables' values, as a tensor (for a backward pass).
    pub(crate) fn loss_tensor(&self, indices: &[usize]) -> candle_core::Result<Tensor> {
        (self.loss)(&self.indices(indices)?)
    }

    /// Copies the gradients of the variables in `grads` into `out` (zero for a variable the loss
    /// does not depend on), converting each element with `conv`: read in place from the CPU's
    /// storage, without a temporary vector.
    pub(crate) fn read_gradients<T: Copy>(
        &self,
        grads: &GradStore,
        out: &mut [T],
        zero: T,
        conv: impl Fn(f32) -> T,
    ) -> candle_core::Result<()> {
        for (k, v) in self.vars.iter().enumerate() {
            let out = &mut out[self.offsets[k]..self.offsets[k + 1]];
            match grads.get(v.as_tensor()) {
                Some(g) => copy_out(g, out, &conv)?,
                None => out.fill(zero),
            }
        }
        Ok(())
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
        let loss = self.loss_tensor(indices)?;
        let value = loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        if let Some(grad) = grad {
            let grads = loss.backward()?;
            match grad.as_slice_mut() {
                Some(out) => self.read_gradients(&grads, out, 0.0, |x| x)?,
                None => {
                    let mut out = vec![0.0; grad.len()];
                    self.read_gradients(&grads, &mut out, 0.0, |x| x)?;
                    grad.iter_mut().zip(out).for_each(|(o, x)| *o = x);
                }
            }
        }
        Ok(value)
    }

    /// A failed evaluation: NaN, and the message kept.
    pub(crate) fn failed(&self, e: impl std::fmt::Display) -> f32 {
        if let Ok(mut slot) = self.error.lock() {
            *slot = Some(e.to_string());
        }
        f32::NAN
    }
}

/// Whether the `f32` tensor `t` holds `values` (read in place on the CPU; elsewhere, `false`).
fn holds(t: &Tensor, values: &[f32]) -> bool {
    let (storage, layout) = t.storage_and_layout();
    let (Storage::Cpu(cpu), Some((start, end))) = (&*storage, layout.contiguous_offsets()) else {
        return false;
    };
    match cpu.as_slice::<f32>() {
        // Bit patterns: a NaN written stays written, and −0 is not +0. Blocks of 16 compared
        // without an exit inside (which the compiler vectorizes), the first differing one ends
        // the comparison.
        Ok(s) => {
            let s = &s[start..end];
            s.len() == values.len()
                && s.chunks(16).zip(values.chunks(16)).all(|(a, b)| {
                    a.iter()
                        .zip(b)
                        .fold(true, |same, (x, y)| same & (x.to_bits() == y.to_bits()))
                })
        }
        Err(_) => false,
    }
}

/// Copies the `f32` tensor `g` into `out` through `conv`.
fn copy_out<T>(g: &Tensor, out: &mut [T], conv: &impl Fn(f32) -> T) -> candle_core::Result<()> {
    {
        let (storage, layout) = g.storage_and_layout();
        if let (Storage::Cpu(cpu), Some((start, end))) = (&*storage, layout.contiguous_offsets()) {
            if let Ok(s) = cpu.as_slice::<f32>() {
                if end - start == out.len() {
                    out.iter_mut()
                        .zip(&s[start..end])
                        .for_each(|(o, &x)| *o = conv(x));
                    return Ok(());
                }
            }
        }
    }
    let v = g.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    out.iter_mut().zip(v).for_each(|(o, x)| *o = conv(x));
    Ok(())
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
