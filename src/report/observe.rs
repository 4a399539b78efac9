//! Watching a run: a record per iteration, handed to an [`Observer`] that may stop the run.

use std::io::Write;
use std::ops::ControlFlow;

use ndarray::Array1;

use crate::float::Float;
use crate::report::IterRecord;

/// An iteration as an [`Observer`] sees it: its record, the new iterate and the batch.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct IterView<'a, F> {
    /// The record of the iteration.
    pub record: &'a IterRecord<F>,
    /// The iterate after the step: with
    /// [`interpolate`](crate::BigBatchSgdBuilder::interpolate), the point of the next
    /// gradients, between the iterate the steps move and the average.
    pub w: &'a Array1<F>,
    /// The indices of the batch the step was computed on.
    pub batch: &'a [usize],
    /// The average of the iterates so far, with
    /// [`average_iterates`](crate::BigBatchSgdBuilder::average_iterates); `None` without.
    pub average: Option<&'a Array1<F>>,
}

/// Receives every iteration of a run and may stop it.
///
/// Implemented by `()` (does nothing), [`History`], [`Progress`], closures wrapped by
/// [`from_fn`], and pairs `(A, B)` of observers (both see every iteration; the run stops if
/// either asks).
pub trait Observer<F> {
    /// Called after every step; return `ControlFlow::Break(())` to stop the run, which then
    /// ends with [`StopReason::Observer`](crate::StopReason::Observer).
    fn on_iter(&mut self, view: &IterView<'_, F>) -> ControlFlow<()>;
}

impl<F> Observer<F> for () {
    fn on_iter(&mut self, _: &IterView<'_, F>) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

impl<F, A: Observer<F>, B: Observer<F>> Observer<F> for (A, B) {
    fn on_iter(&mut self, view: &IterView<'_, F>) -> ControlFlow<()> {
        let a = self.0.on_iter(view);
        let b = self.1.on_iter(view);
        if a.is_break() || b.is_break() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

impl<F, O: Observer<F> + ?Sized> Observer<F> for &mut O {
    fn on_iter(&mut self, view: &IterView<'_, F>) -> ControlFlow<()> {
        (**self).on_iter(view)
    }
}

/// Keeps the record of every iteration.
///
/// # Example
/// ```
/// # use bigbatch::{BigBatchSgd, Objective};
/// # use ndarray::{ArrayRef1, array};
/// # struct Mean(Vec<f64>);
/// # impl Objective for Mean {
/// #     fn n_samples(&self) -> usize { self.0.len() }
/// #     fn dim(&self) -> usize { 1 }
/// #     fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 { 0.5 * (w[0] - self.0[i]).powi(2) }
/// #     fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) { g[0] = w[0] - self.0[i]; }
/// # }
/// # let data = Mean((0..100).map(f64::from).collect());
/// use bigbatch::History;
/// let mut history = History::new();
/// let report = BigBatchSgd::builder().build()?.minimize_with(&data, array![0.0], &mut history)?;
/// assert_eq!(history.records().len(), report.iterations);
/// let sizes: Vec<usize> = history.records().iter().map(|r| r.batch_size).collect();
/// assert!(sizes.windows(2).all(|p| p[0] <= p[1]), "batches never shrink");
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History<F> {
    records: Vec<IterRecord<F>>,
}

impl<F> History<F> {
    /// An empty history.
    pub fn new() -> Self {
        History {
            records: Vec::new(),
        }
    }
    /// The records, one per iteration, in order.
    pub fn records(&self) -> &[IterRecord<F>] {
        &self.records
    }
    /// Takes the records out.
    pub fn into_records(self) -> Vec<IterRecord<F>> {
        self.records
    }
}

impl<F: Copy> Observer<F> for History<F> {
    fn on_iter(&mut self, view: &IterView<'_, F>) -> ControlFlow<()> {
        self.records.push(*view.record);
        ControlFlow::Continue(())
    }
}

/// An observer made from a closure; see [`from_fn`].
pub struct FromFn<C>(C);

impl<C> std::fmt::Debug for FromFn<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FromFn(..)")
    }
}

/// Wraps a closure `FnMut(&IterView<F>) -> ControlFlow<()>` as an [`Observer`].
///
/// # Example
/// ```
/// # use bigbatch::{BigBatchSgd, Objective, StopReason};
/// # use ndarray::{ArrayRef1, array};
/// # struct Mean(Vec<f64>);
/// # impl Objective for Mean {
/// #     fn n_samples(&self) -> usize { self.0.len() }
/// #     fn dim(&self) -> usize { 1 }
/// #     fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 { 0.5 * (w[0] - self.0[i]).powi(2) }
/// #     fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) { g[0] = w[0] - self.0[i]; }
/// # }
/// # let data = Mean((0..100).map(f64::from).collect());
/// use std::ops::ControlFlow;
/// use bigbatch::observe::from_fn;
/// // Stop as soon as the batch loss falls below 900.
/// let mut stop = from_fn(|v: &bigbatch::IterView<'_, f64>| {
///     if v.record.loss_after.is_some_and(|l| l < 900.0) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
/// });
/// let report = BigBatchSgd::builder().build()?.minimize_with(&data, array![0.0], &mut stop)?;
/// assert_eq!(report.stop, StopReason::Observer);
/// # Ok::<(), bigbatch::Error>(())
/// ```
pub fn from_fn<F, C: FnMut(&IterView<'_, F>) -> ControlFlow<()>>(closure: C) -> FromFn<C> {
    FromFn(closure)
}

impl<F, C: FnMut(&IterView<'_, F>) -> ControlFlow<()>> Observer<F> for FromFn<C> {
    fn on_iter(&mut self, view: &IterView<'_, F>) -> ControlFlow<()> {
        (self.0)(view)
    }
}

/// Prints a line of progress every `every` iterations (iteration, epochs, batch size, step,
/// batch loss, ‖g_B‖²) to a writer, standard output by default.
pub struct Progress<W = std::io::Stdout> {
    every: usize,
    out: W,
    header: bool,
}

impl<W> std::fmt::Debug for Progress<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// Prints every `every` iterations (at least 1) to standard output.
    pub fn new(every: usize) -> Self {
        Progress::with_writer(every, std::io::stdout())
    }
}

impl<W: Write> Progress<W> {
    /// Prints every `every` iterations (at least 1) to `out`.
    pub fn with_writer(every: usize, out: W) -> Self {
        Progress {
            every: every.max(1),
            out,
            header: false,
        }
    }
    /// The writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<F: Float, W: Write> Observer<F> for Progress<W> {
    fn on_iter(&mut self, view: &IterView<'_, F>) -> ControlFlow<()> {
        let r = view.record;
        if r.iteration % self.every != 0 {
            return ControlFlow::Continue(());
        }
        // A failing writer (a closed pipe) must not stop the optimization.
        if !self.header {
            self.header = true;
            let _ = writeln!(
                self.out,
                "{:>8} {:>9} {:>9} {:>11} {:>13} {:>11}",
                "iter", "epochs", "batch", "step", "batch loss", "|g|^2"
            );
        }
        let _ = writeln!(
            self.out,
            "{:>8} {:>9.3} {:>9} {:>11.3e} {:>13.6e} {:>11.3e}",
            r.iteration, r.epochs, r.batch_size, r.step_size, r.loss, r.grad_norm_sq
        );
        ControlFlow::Continue(())
    }
}
