//! The crate's error type.

use ndarray::Array1;

use crate::float::Float;

/// Everything that can go wrong in the crate.
///
/// Errors raised during a run carry the last good iterate (`last_iterate`): the last iterate
/// at which the batch loss and gradient were finite, or `w0` if the very first evaluation
/// failed. It is stored as `f64`
/// so that the type does not depend on the float type of the run: widening `f32` to `f64` is
/// exact, and [`Error::last_iterate`] narrows it back without loss.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration parameter is outside its allowed range.
    #[error("invalid parameter `{name}` = {value}: must be {allowed}")]
    InvalidParameter {
        /// The parameter's name, as its builder setter is called.
        name: &'static str,
        /// The rejected value, as text.
        value: String,
        /// The allowed range, in words.
        allowed: &'static str,
    },

    /// An array has the wrong length.
    #[error("dimension mismatch in {what}: expected length {expected}, got {got}")]
    DimensionMismatch {
        /// Which array (for example `"w0"`).
        what: &'static str,
        /// The length the objective asks for.
        expected: usize,
        /// The length that was passed.
        got: usize,
    },

    /// The objective has no samples or no parameters.
    #[error("empty objective: {n_samples} samples and dimension {dim} (both must be at least 1)")]
    EmptyObjective {
        /// `Objective::n_samples()`.
        n_samples: usize,
        /// `Objective::dim()`.
        dim: usize,
    },

    /// A file could not be read or written.
    #[error("cannot read or write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system or the decoder said (shared, so that the error can be
        /// cloned).
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },

    /// A worker of a data-parallel run failed (see
    /// [`distributed`](crate::distributed)): every worker returns this same error.
    #[error("worker {rank} failed: {message}")]
    Rank {
        /// The first worker (in rank order) that failed.
        rank: usize,
        /// Its error.
        message: String,
    },

    /// A file was read but is not a checkpoint this build can resume from (cargo feature
    /// `serde`): malformed or truncated, of another format version, of another float or step
    /// rule type, or describing an impossible run.
    #[error("{path} is not a usable checkpoint: {message}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },

    /// A line of a data file is malformed.
    #[error("{file}, line {line}: {reason}")]
    Parse {
        /// The file (or the name given to the reader).
        file: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong, quoting the offending text.
        reason: String,
    },

    /// Data handed to a model or a data set is not acceptable.
    #[error("invalid data: {what}")]
    InvalidData {
        /// What is wrong and where (for example a label outside the classes, at sample 17).
        what: String,
    },

    /// An input array holds a NaN or an infinity.
    #[error("non-finite value {value} in {what} at index {index}")]
    NonFiniteInput {
        /// Which input (for example `"w0"`).
        what: &'static str,
        /// The index of the first offending entry.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// A quantity computed during a run is NaN or infinite; the run stopped.
    #[error(
        "non-finite {what} at iteration {iteration}; the run stopped and kept the last finite iterate"
    )]
    NonFinite {
        /// Which quantity: `"loss"`, `"gradient"`, `"variance"`, `"step size"`, `"iterate"`, ...
        what: &'static str,
        /// The iteration at which it appeared (0-based).
        iteration: usize,
        /// The last iterate at which the batch loss and gradient were finite (`w0` if the first
        /// evaluation failed), widened to `f64`.
        last_iterate: Vec<f64>,
    },

    /// Backtracking found no step that decreases the batch loss enough.
    #[error(
        "line search failed at iteration {iteration} after {backtracks} backtracks \
         (no sufficient decrease of the batch loss; the gradient may be below what the \
         precision of the loss can resolve: consider a larger `tolerance`)"
    )]
    LineSearchFailed {
        /// The iteration at which it happened (0-based).
        iteration: usize,
        /// How many times the step was shrunk.
        backtracks: usize,
        /// The iterate at which the search started (its loss and gradient were finite),
        /// widened to `f64`.
        last_iterate: Vec<f64>,
    },

    /// The step rule needs a capability the objective does not have (a Newton rule needs
    /// [`Objective::curvature`](crate::Objective::curvature)); the run stopped before its
    /// first step.
    #[error("the step rule {rule} needs {needs}, which the objective does not provide")]
    Unsupported {
        /// The step rule.
        rule: &'static str,
        /// What it needs.
        needs: &'static str,
        /// The iterate the run stopped at, widened to `f64`.
        last_iterate: Vec<f64>,
    },

    /// Reading a stream, or building the model of what it read, failed during a run
    /// ([`minimize_stream`](crate::BigBatchSgd::minimize_stream)); `source` says why.
    #[error("the stream failed after {samples_read} samples: {source}")]
    StreamFailed {
        /// The samples read before the failure.
        samples_read: usize,
        /// What failed: the stream's or the model's error, or an
        /// [`Error::InvalidData`] or [`Error::DimensionMismatch`] for a read that returned more
        /// samples than asked for or a model of another dimension.
        #[source]
        source: Box<Error>,
        /// The iterate the run stopped at, widened to `f64`.
        last_iterate: Vec<f64>,
    },

    /// A thread pool for batch evaluation could not be started.
    #[error("cannot start a pool of {threads} threads: {message}")]
    Threads {
        /// The number of threads asked for.
        threads: usize,
        /// What the thread pool builder said.
        message: String,
    },
}

impl Error {
    /// The last good iterate carried by a run-time error, narrowed back to `F` (exactly).
    ///
    /// `None` for errors raised before a run starts.
    ///
    /// # Example
    /// ```
    /// use bigbatch::Error;
    /// let e = Error::NonFinite { what: "loss", iteration: 3, last_iterate: vec![1.5, -2.0] };
    /// let w = e.last_iterate::<f32>().unwrap();
    /// assert_eq!(w.to_vec(), vec![1.5f32, -2.0]);
    /// ```
    pub fn last_iterate<F: Float>(&self) -> Option<Array1<F>> {
        match self {
            Error::NonFinite { last_iterate, .. }
            | Error::LineSearchFailed { last_iterate, .. }
            | Error::Unsupported { last_iterate, .. }
            | Error::StreamFailed { last_iterate, .. } => {
                Some(last_iterate.iter().map(|&x| F::from_f64(x)).collect())
            }
            _ => None,
        }
    }

    /// Fills the carried iterate of a run-time error if it is still empty.
    pub(crate) fn with_iterate<F: Float>(mut self, w: &Array1<F>) -> Self {
        if let Error::NonFinite { last_iterate, .. }
        | Error::LineSearchFailed { last_iterate, .. }
        | Error::Unsupported { last_iterate, .. }
        | Error::StreamFailed { last_iterate, .. } = &mut self
        {
            if last_iterate.is_empty() {
                *last_iterate = w.iter().map(|x| x.as_f64()).collect();
            }
        }
        self
    }

    /// An [`Error::InvalidParameter`] for `name`.
    /// An I/O error on the file `path`.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.display().to_string(),
            source: std::sync::Arc::new(source),
        }
    }

    /// A non-finite quantity met during a run; the driver adds the last good iterate.
    pub(crate) fn non_finite(what: &'static str, iteration: usize) -> Self {
        Error::NonFinite {
            what,
            iteration,
            last_iterate: Vec::new(),
        }
    }

    pub(crate) fn invalid(
        name: &'static str,
        value: impl std::fmt::Display,
        allowed: &'static str,
    ) -> Self {
        Error::InvalidParameter {
            name,
            value: value.to_string(),
            allowed,
        }
    }
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks of parameter values, each naming the parameter in its error.
pub(crate) mod check {
    use super::{Error, Result};

    fn ok_if(ok: bool, name: &'static str, value: f64, allowed: &'static str) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(name, value, allowed))
        }
    }
    /// Finite and > 0.
    pub(crate) fn positive(name: &'static str, value: f64) -> Result<()> {
        ok_if(
            value.is_finite() && value > 0.0,
            name,
            value,
            "finite and > 0",
        )
    }
    /// Finite and ≥ 0.
    pub(crate) fn non_negative(name: &'static str, value: f64) -> Result<()> {
        ok_if(
            value.is_finite() && value >= 0.0,
            name,
            value,
            "finite and ≥ 0",
        )
    }
    /// In the open interval (0, 1).
    pub(crate) fn open_unit(name: &'static str, value: f64) -> Result<()> {
        ok_if(value > 0.0 && value < 1.0, name, value, "in (0, 1)")
    }
    /// In (0, 1].
    pub(crate) fn unit_to_one(name: &'static str, value: f64) -> Result<()> {
        ok_if(value > 0.0 && value <= 1.0, name, value, "in (0, 1]")
    }
    /// In [0, 1).
    pub(crate) fn unit_from_zero(name: &'static str, value: f64) -> Result<()> {
        ok_if((0.0..1.0).contains(&value), name, value, "in [0, 1)")
    }
    /// Finite and ≥ 1.
    pub(crate) fn at_least_one(name: &'static str, value: f64) -> Result<()> {
        ok_if(
            value.is_finite() && value >= 1.0,
            name,
            value,
            "finite and ≥ 1",
        )
    }
    /// > 0, possibly infinite (not NaN).
    pub(crate) fn positive_or_infinite(name: &'static str, value: f64) -> Result<()> {
        ok_if(value > 0.0, name, value, "> 0 (may be infinite)")
    }
    /// A count of at least 1.
    pub(crate) fn nonzero_count(name: &'static str, value: usize) -> Result<()> {
        if value == 0 {
            Err(Error::invalid(name, 0, "at least 1"))
        } else {
            Ok(())
        }
    }
}
