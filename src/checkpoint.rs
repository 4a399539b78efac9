//! Checkpoint and resume (cargo feature `serde`).
//!
//! A [`Checkpoint`] holds the optimizer (its configuration and its step rule's memory, such as
//! L-BFGS curvature pairs) and the [`RunState`] (iterate, counters, batch size, the random
//! number generator's state and the sampler's permutation). Restored and resumed with
//! [`BigBatchOptimizer::resume_with`](crate::BigBatchOptimizer::resume_with), it continues the run exactly: the report equals the one
//! the uninterrupted run would have given, bit for bit.
//!
//! A checkpoint can be taken between iterations of a loop driven by hand
//! ([`start`](crate::BigBatchOptimizer::start) and [`iterate`](crate::BigBatchOptimizer::iterate)),
//! or from an observer during [`minimize_with`](crate::BigBatchOptimizer::minimize_with):
//! [`SaveEvery`] saves every `k` iterations, and [`IterView::checkpoint`] copies the state for
//! an observer of one's own.
//!
//! # Example
//! ```
//! use bigbatch::{BigBatchOptimizer, BigBatchSgd, Checkpoint, Lbfgs, Objective};
//! use ndarray::{ArrayRef1, array};
//!
//! # struct Mean(Vec<f64>);
//! # impl Objective for Mean {
//! #     fn n_samples(&self) -> usize { self.0.len() }
//! #     fn dim(&self) -> usize { 1 }
//! #     fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 { 0.5 * (w[0] - self.0[i]).powi(2) }
//! #     fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) { g[0] = w[0] - self.0[i]; }
//! # }
//! # let data = Mean((0..100).map(f64::from).collect());
//! let mut optimizer = BigBatchSgd::builder().seed(3).build()?;
//! // Drive the loop by hand for two iterations, then save.
//! let mut run = optimizer.start(&data, array![0.0])?;
//! for _ in 0..2 {
//!     optimizer.iterate(&data, &mut run)?;
//! }
//! let path = std::env::temp_dir().join(format!("bigbatch-doc-{}.json", std::process::id()));
//! Checkpoint::new(&optimizer, &run).save(&path)?;
//!
//! // Later, perhaps in another process:
//! let (mut optimizer, run) = Checkpoint::<f64, Lbfgs>::load(&path)?.into_parts();
//! let report = optimizer.resume_with(&data, run, &mut ())?;
//! assert!((report.w[0] - 49.5).abs() < 1e-4);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), bigbatch::Error>(())
//! ```

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use std::marker::PhantomData;
use std::ops::ControlFlow;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::observe::{IterView, Observer};
use crate::optimizer::{BigBatchSgd, RunState};

/// The whole state of a run: the optimizer with its step rule's memory, and the run state.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint<F, S> {
    /// The optimizer: configuration and step-rule memory.
    pub optimizer: BigBatchSgd<S>,
    /// The run: iterate, counters, batch size, random numbers, sampler.
    pub run: RunState<F>,
}

fn io_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: what.to_string(),
    }
}

impl<F: Clone + Serialize + DeserializeOwned, S: Clone + Serialize + DeserializeOwned>
    Checkpoint<F, S>
{
    /// A checkpoint of `optimizer` and `run` (both copied).
    pub fn new(optimizer: &BigBatchSgd<S>, run: &RunState<F>) -> Self {
        Checkpoint {
            optimizer: optimizer.clone(),
            run: run.clone(),
        }
    }

    /// Writes the checkpoint as JSON to `path`, atomically: to a temporary file in the same
    /// folder, flushed to disk, then renamed over `path`. A crash while writing leaves the old
    /// checkpoint intact. Floats are written so that they read back exactly.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file if it cannot be written or renamed.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let name = path
            .file_name()
            .ok_or_else(|| io_error(path, "not a file name"))?;
        let mut tmp_name = name.to_os_string();
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let written = (|| -> std::result::Result<(), Box<dyn std::error::Error>> {
            let mut out = BufWriter::new(File::create(&tmp)?);
            serde_json::to_writer(&mut out, self)?;
            out.flush()?;
            out.get_ref().sync_all()?;
            Ok(())
        })();
        if let Err(e) = written.and_then(|()| Ok(std::fs::rename(&tmp, path)?)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_error(path, e));
        }
        Ok(())
    }

    /// Reads a checkpoint written by [`save`](Self::save).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file if it cannot be read or is not a checkpoint of this type.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        serde_json::from_reader(BufReader::new(file)).map_err(|e| io_error(path, e))
    }

    /// The optimizer and the run state, ready for
    /// [`resume_with`](crate::BigBatchOptimizer::resume_with).
    pub fn into_parts(self) -> (BigBatchSgd<S>, RunState<F>) {
        (self.optimizer, self.run)
    }
}

impl<F: Clone> IterView<'_, F> {
    /// A checkpoint of the run as it is after this iteration, if the optimizer driving it is a
    /// [`BigBatchSgd<S>`] (with this step rule type `S`); `None` otherwise.
    pub fn checkpoint<S: Clone + 'static>(&self) -> Option<Checkpoint<F, S>> {
        let optimizer = self.optimizer?.downcast_ref::<BigBatchSgd<S>>()?;
        Some(Checkpoint {
            optimizer: optimizer.clone(),
            run: self.run.clone(),
        })
    }
}

/// An observer that saves a [`Checkpoint`] to one file every `every` iterations, replacing
/// the previous one atomically, during
/// [`minimize_with`](crate::BigBatchOptimizer::minimize_with).
///
/// `S` is the step rule type of the [`BigBatchSgd`] being run. If a checkpoint cannot be saved
/// (the disk is full, the folder is gone), or the optimizer is not a `BigBatchSgd<S>`, the run
/// stops ([`StopReason::Observer`](crate::StopReason::Observer)) rather than go on unprotected,
/// and [`error`](Self::error) says why; the report still holds the iterate reached.
///
/// # Example
/// ```
/// use bigbatch::checkpoint::SaveEvery;
/// use bigbatch::{BigBatchOptimizer, BigBatchSgd, Checkpoint, Lbfgs, Objective};
/// use ndarray::{ArrayRef1, array};
///
/// # struct Mean(Vec<f64>);
/// # impl Objective for Mean {
/// #     fn n_samples(&self) -> usize { self.0.len() }
/// #     fn dim(&self) -> usize { 1 }
/// #     fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 { 0.5 * (w[0] - self.0[i]).powi(2) }
/// #     fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) { g[0] = w[0] - self.0[i]; }
/// # }
/// # let data = Mean((0..100).map(f64::from).collect());
/// let path = std::env::temp_dir().join(format!("bigbatch-every-{}.json", std::process::id()));
/// let mut saver = SaveEvery::<Lbfgs>::new(&path, 2);
/// let report = BigBatchSgd::builder().build()?.minimize_with(&data, array![0.0], &mut saver)?;
/// assert!(saver.error().is_none());
/// assert_eq!(saver.saved(), report.iterations / 2);
/// assert!(saver.saved() > 0);
/// // After a crash, the run would go on from the last saved iteration:
/// let (mut optimizer, run) = Checkpoint::<f64, Lbfgs>::load(&path)?.into_parts();
/// assert_eq!(run.iteration() % 2, 0);
/// let resumed = optimizer.resume_with(&data, run, &mut ())?;
/// assert_eq!(resumed.w, report.w);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), bigbatch::Error>(())
/// ```
pub struct SaveEvery<S> {
    path: PathBuf,
    every: usize,
    saved: usize,
    error: Option<Error>,
    rule: PhantomData<fn() -> S>,
}

impl<S> std::fmt::Debug for SaveEvery<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaveEvery")
            .field("path", &self.path)
            .field("every", &self.every)
            .field("saved", &self.saved)
            .field("error", &self.error)
            .finish()
    }
}

impl<S> SaveEvery<S> {
    /// Saves to `path` after every `every`-th iteration (`every` of 0 counts as 1).
    pub fn new(path: impl Into<PathBuf>, every: usize) -> Self {
        SaveEvery {
            path: path.into(),
            every: every.max(1),
            saved: 0,
            error: None,
            rule: PhantomData,
        }
    }
    /// How many checkpoints were written.
    pub fn saved(&self) -> usize {
        self.saved
    }
    /// Why the run was stopped, if a checkpoint could not be taken or written.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }
    /// Takes the error out.
    pub fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }
}

impl<F, S> Observer<F> for SaveEvery<S>
where
    F: Clone + Serialize + DeserializeOwned,
    S: Clone + Serialize + DeserializeOwned + 'static,
{
    fn on_iter(&mut self, view: &IterView<'_, F>) -> ControlFlow<()> {
        if (view.record.iteration + 1) % self.every != 0 {
            return ControlFlow::Continue(());
        }
        let Some(checkpoint) = view.checkpoint::<S>() else {
            self.error = Some(io_error(
                &self.path,
                format!(
                    "the optimizer is not a BigBatchSgd<{}>",
                    std::any::type_name::<S>()
                ),
            ));
            return ControlFlow::Break(());
        };
        match checkpoint.save(&self.path) {
            Ok(()) => {
                self.saved += 1;
                ControlFlow::Continue(())
            }
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }
}
