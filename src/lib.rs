//! Big Batch SGD: stochastic optimization of finite sums with adaptive batch sizes,
//! automatic step sizes and automatic stopping.
//!
//! Plain SGD needs a hand-tuned step size and decay schedule because its gradient estimates
//! stay noisy. Big Batch SGD instead grows the batch until the batch gradient is accurate
//! relative to its own size:
//!
//! ```text
//! V_B / |B|  ≤  θ² ‖g_B‖²        V_B: variance of the per-sample gradients in the batch
//! ```
//!
//! With that signal-to-noise ratio held, steps can be chosen the way deterministic
//! optimizers choose them (Armijo backtracking on the batch loss, or a Barzilai–Borwein
//! curvature estimate), no decay schedule is needed, and the run can stop when the gradient of
//! a passing batch is small, because that gradient can be trusted. Batches start small, grow as
//! the iterate nears the optimum, and end as the whole data set if the run goes on long enough.
//!
//! # Quick start
//! Implement [`Objective`] (a loss and a gradient per sample) and call
//! [`minimize`](BigBatchSgd::minimize):
//! ```
//! use bigbatch::{BigBatchSgd, Objective};
//! use ndarray::{ArrayRef1, array};
//!
//! /// Least squares through the origin: f_i(w) = (w·x_i − y_i)² / 2, with y = 3 x₀ − x₁.
//! struct Fit { x: Vec<[f64; 2]>, y: Vec<f64> }
//!
//! impl Objective for Fit {
//!     fn n_samples(&self) -> usize { self.y.len() }
//!     fn dim(&self) -> usize { 2 }
//!     fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 {
//!         let r = w[0] * self.x[i][0] + w[1] * self.x[i][1] - self.y[i];
//!         0.5 * r * r
//!     }
//!     fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, grad: &mut ArrayRef1<f64>) {
//!         let r = w[0] * self.x[i][0] + w[1] * self.x[i][1] - self.y[i];
//!         grad[0] = r * self.x[i][0];
//!         grad[1] = r * self.x[i][1];
//!     }
//! }
//!
//! let x: Vec<[f64; 2]> = (0..1000).map(|i| [(i as f64 * 0.37).sin(), (i as f64 * 0.11).cos()]).collect();
//! let y = x.iter().map(|x| 3.0 * x[0] - x[1]).collect();
//! let fit = Fit { x, y };
//!
//! let mut optimizer = BigBatchSgd::builder().seed(1).build()?;
//! let report = optimizer.minimize(&fit, array![0.0, 0.0])?;
//! println!("{report}");
//! assert!((report.w[0] - 3.0).abs() < 1e-4 && (report.w[1] + 1.0).abs() < 1e-4);
//! # Ok::<(), bigbatch::Error>(())
//! ```
//!
//! A model that gives only the mean loss and gradient of a set of samples (a deep-learning
//! framework's forward and backward pass) implements [`BatchObjective`] instead and runs
//! through [`MicroBatched`], which estimates the gradient noise from groups of samples.
//!
//! # Bundled models and data
//! [`models`] has least squares, logistic, Huber and softmax regression and a small
//! multi-layer perceptron, for `f32` and `f64` on dense or sparse features, each with batch
//! statistics computed in one pass over the rows. [`data`] reads LIBSVM files (plain or gzip)
//! and [`data::datasets`] holds three small real data sets compiled into the crate:
//! ```
//! use bigbatch::{BigBatchSgd, data::datasets, models::Logistic};
//! use ndarray::Array1;
//!
//! let (train, test) = datasets::heart_scale::<f64>().with_bias().split(0.25, 0)?;
//! let model = Logistic::new(train, 1e-3)?;
//! let report = BigBatchSgd::builder().build()?.minimize(&model, Array1::zeros(14))?;
//! let accuracy = Logistic::new(test, 1e-3)?.accuracy(&report.w);
//! assert!(accuracy > 0.75, "{accuracy}");
//! # Ok::<(), bigbatch::Error>(())
//! ```
//!
//! # Step rules and configurations
//! The step rules, what each does and what it costs, are in one table in the [`step`] module.
//!
//! [`BigBatchSgd::builder`] starts from L-BFGS on a persistent batch (prefixes of one shuffle,
//! [`BatchMode::Persistent`]) growing by 10 % when the test fails: the configuration that
//! measured best on real data ([`GrowthRule::ToRequired`] jumps to the size the test asks for
//! instead).
//! [`BigBatchSgd::paper`] gives the paper's: fresh batches, 10 % growth, Armijo steps along
//! `−g_B`. New update rules implement [`StepRule`]: a rule may replace the
//! direction as well as choose the length. [`InnerProductTest`] replaces the norm test on
//! fresh batches, and [`BatchSchedule`] replaces the test by AdaBatch's fixed schedule.
//!
//! # Watching and stopping
//! [`minimize_with`](BigBatchSgd::minimize_with) hands an [`IterRecord`] per
//! iteration to an [`Observer`]: [`History`] keeps them, [`Progress`] prints them, and
//! [`observe::from_fn`] turns a closure into one that can stop the run. Runs end when a
//! passing batch's `‖g_B‖²` reaches the tolerance or a budget runs out ([`StopReason`]).
//! Errors ([`Error`]) are typed, and those raised during a run carry the last finite iterate.
//!
//! # Checkpoint and resume
//! With the cargo feature `serde`, a `Checkpoint` saves the optimizer and a [`RunState`]
//! atomically as JSON (between iterations of a loop driven by hand, or every `k` iterations
//! with `BigBatchSgd::minimize_checkpointed`), and [`BigBatchSgd::resume_with`]
//! continues the run exactly.
//!
//! # Multi-core evaluation
//! With the cargo feature `rayon` (on by default) the bundled models evaluate a batch in chunks
//! of 256 rows on every core and merge them along a fixed tree ([`parallel`]), so the result
//! does not depend on the number of threads. Set it per computation with
//! `parallel::Threads::new(n)?.install(|| ...)`, or for the process with `RAYON_NUM_THREADS`.
//!
//! # Streams
//! [`stream`] runs the method on samples that arrive instead of a finite sum in memory
//! ([`BigBatchSgd::minimize_stream`]): a generator ([`stream::from_fn`]) or a LIBSVM file read
//! a chunk at a time ([`stream::LibsvmStream`]), each batch new samples, memory bounded by the
//! largest batch, and [`BigBatchSgd::stream`] the configuration for it.
//!
//! # More than one machine
//! [`distributed`] splits the samples across workers: threads of one process
//! ([`distributed::ThreadRanks`]) or, with the cargo feature `mpi`, the processes of an MPI
//! job. Each wraps its shard's model in a [`distributed::Sharded`] objective; every worker
//! runs the same loop on the whole finite sum and ends with the same report.
//!
//! # Determinism
//! The optimizer owns its random numbers (`Xoshiro256PlusPlus`, seeded by
//! [`seed`](BigBatchSgdBuilder::seed)): the same seed, objective and `w0` give the same
//! [`Report`], bit for bit, whatever the number of threads.
//!
//! # References
//! - S. De, A. Yadav, D. Jacobs, T. Goldstein. *Automated Inference with Adaptive Batches.*
//!   AISTATS 2017, PMLR 54:1504–1513; first titled *Big Batch SGD: Automated Inference
//!   using Adaptive Batch Sizes*, arXiv:1610.05792.
//! - J. Barzilai, J. M. Borwein. *Two-point step size gradient methods.* IMA J. Numer.
//!   Anal. 8 (1988).
//! - L. Armijo. *Minimization of functions having Lipschitz continuous first partial
//!   derivatives.* Pacific J. Math. 16 (1966).
//! - R. Byrd, G. Chin, J. Nocedal, Y. Wu. *Sample size selection in optimization methods for
//!   machine learning.* Math. Program. 134 (2012).

// `deny`, not `forbid`: ndarray's `s!` macro expands to an `allow(unsafe_code)`.
#![deny(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![deny(clippy::float_cmp)]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "serde")]
pub mod checkpoint;
pub mod data;
pub mod distributed;
mod error;
mod evaluator;
mod float;
mod kernels;
pub mod models;
mod objective;
mod optimizer;
pub mod parallel;
mod report;
pub use report::observe;
mod stats;
pub mod step;
pub mod stream;

#[cfg(feature = "serde")]
pub use checkpoint::{Checkpoint, SaveEvery};
pub use error::{Error, Result};
pub use float::Float;
pub use objective::{BatchObjective, Groups, MicroBatched};
pub use objective::{Curvature, Forward, Forwarded, LineLoss, Objective};
pub use observe::{History, IterView, Observer, Progress};
pub use optimizer::{
    BatchMode, BatchSchedule, BigBatchSgd, BigBatchSgdBuilder, GrowthRule, Outcome, RunState,
    StopCriteria,
};
pub use report::{IterRecord, Report, StopReason};
pub use stats::{BatchTest, GradStats, InnerProductTest};
pub use step::{
    Adadelta, Adam, Armijo, BarzilaiBorwein, BatchScaled, FirstTrial, Fixed, GainScaled, Lbfgs,
    LineSearch, Momentum, NewtonCg, Step, StepContext, StepIncrease, StepRule, Switch,
};

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
