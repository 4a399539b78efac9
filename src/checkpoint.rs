//! Checkpoint and resume (cargo feature `serde`).
//!
//! A [`Checkpoint`] holds the optimizer (its configuration and its step rule's memory, such as
//! L-BFGS curvature pairs) and the [`RunState`] (iterate, counters, batch size, the random
//! number generator's state and the sampler's permutation). Restored and resumed with
//! [`BigBatchSgd::resume_with`], it continues the run exactly: the report equals the one
//! the uninterrupted run would have given, bit for bit.
//!
//! A checkpoint can be taken between iterations of a loop driven by hand
//! ([`start`](crate::BigBatchSgd::start) and [`iterate`](crate::BigBatchSgd::iterate)),
//! or by the loop itself: [`BigBatchSgd::minimize_checkpointed`] saves one every `k` iterations
//! ([`SaveEvery`]), beside whatever observer watches the run. Observers see plain data; saving
//! is the loop's business.
//!
//! The file records a format version; a checkpoint of another version, or one that describes
//! an impossible run, is refused on loading with [`Error::Checkpoint`].
//!
//! # Example
//! ```
//! use bigbatch::{BigBatchSgd, Checkpoint, Lbfgs, Objective};
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
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use ndarray::Array1;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::objective::Objective;
use crate::optimizer::{AfterStep, BigBatchSgd, RunState};
use crate::report::observe::Observer;
use crate::report::{Report, StopReason};
use crate::step::StepRule;

/// The version of the checkpoint format this build writes and reads.
const FORMAT: u32 = 3;

/// The whole state of a run: the optimizer with its step rule's memory, and the run state.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint<F, S> {
    format: u32,
    optimizer: BigBatchSgd<S>,
    run: RunState<F>,
}

/// Only the format version, read before the rest.
#[derive(serde::Deserialize)]
struct Header {
    format: Option<u32>,
}

impl<F, S> Checkpoint<F, S>
where
    F: Float + Serialize + DeserializeOwned,
    S: Clone + Serialize + DeserializeOwned,
{
    /// A checkpoint of `optimizer` and `run` (both copied).
    pub fn new(optimizer: &BigBatchSgd<S>, run: &RunState<F>) -> Self {
        Checkpoint {
            format: FORMAT,
            optimizer: optimizer.clone(),
            run: run.clone(),
        }
    }

    /// The optimizer: configuration and step-rule memory.
    pub fn optimizer(&self) -> &BigBatchSgd<S> {
        &self.optimizer
    }

    /// The run: iterate, counters, batch size, random numbers, sampler, batch statistics.
    pub fn run(&self) -> &RunState<F> {
        &self.run
    }

    /// Writes the checkpoint as JSON to `path`, atomically: to a temporary file in the same
    /// folder, flushed to disk, then renamed over `path`. A crash while writing leaves the old
    /// checkpoint intact. Floats are written so that they read back exactly.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file if it cannot be written or renamed.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let Some(name) = path.file_name() else {
            return Err(Error::Checkpoint {
                path: path.display().to_string(),
                message: "not a file name".into(),
            });
        };
        let mut tmp_name = name.to_os_string();
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let written = (|| -> std::io::Result<()> {
            let mut out = BufWriter::new(File::create(&tmp)?);
            serde_json::to_writer(&mut out, self)?;
            out.flush()?;
            out.get_ref().sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(path, e)
        })
    }

    /// Reads a checkpoint written by [`save`](Self::save), and checks that it describes a run
    /// that can continue.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file if it cannot be read; [`Error::Checkpoint`] if it is not
    /// a checkpoint of this format version, float type and step rule type, or is inconsistent.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let refuse = |message: String| Error::Checkpoint {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let header: Header = serde_json::from_str(&text).map_err(|e| refuse(e.to_string()))?;
        if header.format != Some(FORMAT) {
            return Err(refuse(format!(
                "format version {}, this build reads version {FORMAT}",
                header
                    .format
                    .map_or_else(|| "unknown".to_string(), |v| v.to_string())
            )));
        }
        let checkpoint: Self = serde_json::from_str(&text).map_err(|e| refuse(e.to_string()))?;
        checkpoint.run.check_consistent().map_err(refuse)?;
        Ok(checkpoint)
    }

    /// The optimizer and the run state, ready for
    /// [`resume_with`](crate::BigBatchSgd::resume_with).
    pub fn into_parts(self) -> (BigBatchSgd<S>, RunState<F>) {
        (self.optimizer, self.run)
    }
}

/// Saves a [`Checkpoint`] to one file every `every` iterations, replacing the previous one
/// atomically, during [`BigBatchSgd::minimize_checkpointed`] or
/// [`BigBatchSgd::resume_checkpointed`].
///
/// If a checkpoint cannot be saved (the disk is full, the folder is gone), the run stops
/// ([`StopReason::CheckpointFailed`]) rather than go on unprotected, and
/// [`error`](Self::error) says why; the report still holds the iterate reached.
///
/// # Example
/// ```
/// use bigbatch::checkpoint::SaveEvery;
/// use bigbatch::{BigBatchSgd, Checkpoint, Lbfgs, Objective};
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
/// let mut saver = SaveEvery::new(&path, 2);
/// let mut optimizer = BigBatchSgd::builder().build()?;
/// let report = optimizer.minimize_checkpointed(&data, array![0.0], &mut (), &mut saver)?;
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
#[derive(Debug)]
pub struct SaveEvery {
    path: PathBuf,
    every: usize,
    saved: usize,
    error: Option<Error>,
}

impl SaveEvery {
    /// Saves to `path` after every `every`-th iteration (`every` of 0 counts as 1).
    pub fn new(path: impl Into<PathBuf>, every: usize) -> Self {
        SaveEvery {
            path: path.into(),
            every: every.max(1),
            saved: 0,
            error: None,
        }
    }
    /// How many checkpoints were written.
    pub fn saved(&self) -> usize {
        self.saved
    }
    /// Why the run was stopped, if a checkpoint could not be written.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }
    /// Takes the error out.
    pub fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }
}

impl<F, S> AfterStep<F, S> for SaveEvery
where
    F: Float + Serialize + DeserializeOwned,
    S: Clone + Serialize + DeserializeOwned,
{
    fn after_step(
        &mut self,
        optimizer: &BigBatchSgd<S>,
        run: &RunState<F>,
    ) -> ControlFlow<StopReason> {
        if run.iteration() % self.every != 0 {
            return ControlFlow::Continue(());
        }
        match Checkpoint::new(optimizer, run).save(&self.path) {
            Ok(()) => {
                self.saved += 1;
                ControlFlow::Continue(())
            }
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(StopReason::CheckpointFailed)
            }
        }
    }
}

impl<S: StepRule + Clone + Serialize + DeserializeOwned> BigBatchSgd<S> {
    /// As [`minimize_with`](BigBatchSgd::minimize_with), saving a checkpoint with
    /// `saver` every `k` iterations.
    ///
    /// # Errors
    /// As [`minimize_with`](BigBatchSgd::minimize_with); a checkpoint that cannot be
    /// saved is not an error but a stop ([`StopReason::CheckpointFailed`]).
    pub fn minimize_checkpointed<F, O, Ob>(
        &mut self,
        objective: &O,
        w0: Array1<F>,
        observer: &mut Ob,
        saver: &mut SaveEvery,
    ) -> Result<Report<F>>
    where
        F: Float + Serialize + DeserializeOwned,
        O: Objective<F> + ?Sized,
        Ob: Observer<F> + ?Sized,
    {
        let run = self.start(objective, w0)?;
        self.resume_checkpointed(objective, run, observer, saver)
    }

    /// As [`resume_with`](BigBatchSgd::resume_with), saving a checkpoint with `saver`
    /// every `k` iterations.
    ///
    /// # Errors
    /// As [`resume_with`](BigBatchSgd::resume_with).
    pub fn resume_checkpointed<F, O, Ob>(
        &mut self,
        objective: &O,
        run: RunState<F>,
        observer: &mut Ob,
        saver: &mut SaveEvery,
    ) -> Result<Report<F>>
    where
        F: Float + Serialize + DeserializeOwned,
        O: Objective<F> + ?Sized,
        Ob: Observer<F> + ?Sized,
    {
        self.drive(objective, run, observer, saver, None)
    }
}
