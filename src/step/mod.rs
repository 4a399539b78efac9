//! Step rules: how far (and, for some rules, in which direction) to move once a big batch
//! has been drawn.
//!
//! Each iteration the optimizer draws a batch that passes the big-batch test, fills a
//! direction with `−g_B`, and asks its [`StepRule`] for a [`Step`]. The rule may keep the
//! direction or overwrite it (a quasi-Newton or momentum rule would), and returns a step
//! size α; the optimizer then moves `w ← w + α·d`. A rule sees the batch through a
//! [`StepContext`], whose evaluation methods count every per-sample loss and gradient they
//! cost.
//!
//! | rule | direction and step | extra cost per iteration |
//! |---|---|---|
//! | [`Lbfgs`] (default) | `d = −H g_B` from the last 100 curvature pairs, each measured on identical samples; unit step, Armijo (c = 1e-4) | none with persistent batches; the batch's gradients at the previous iterate with fresh ones |
//! | [`Armijo`] | `−g_B`, backtracking on the batch loss (c = 0.1) from the last step, doubled before each search | batch losses at trial points |
//! | [`BarzilaiBorwein`] | `−g_B`, step `‖g_B‖²/((‖g_B‖² + noise)ν)` with ν the secant curvature on the same batch, smoothed by `n/N`, then Armijo | none with persistent batches; the batch's gradients at the previous iterate with fresh ones |
//! | [`Fixed`] | `−g_B`, a constant α; theory: `1/(L(1+θ²))` | none |
//! | [`Adam`] | `−m̂/(√v̂ + ε)` from running moments of `g_B`, a constant α (1e-3) | none |
//! | [`Adadelta`] | `−√(E[Δ²] + ε)/√(E[g²] + ε) ⊙ g_B`, no learning rate (the paper's network rule) | none |
//! | [`Momentum`] | heavy ball, `v ← μv + g_B`, `w ← w − αv`, a constant α | none |
//! | [`GainScaled`] | another rule's direction lengthened by the batch's gain ratio, to a power | none |
//! | [`BatchScaled`] | another rule's direction times `(n/b0)^p`: the linear scaling rule of AdaBatch's schedule at `p = 1` | none |
//! | [`NewtonCg`] | `d ≈ −H_S⁻¹ g_B` by CG, `H_S` the Hessian of a tenth of the batch; unit step, Armijo (c = 1e-4) | a pass over the subsample per Hessian-vector product (at most `min(100, dim)`), one to prepare |
//! | [`Switch`] | one rule while the batch is a sample, another once it is whole (the [`newton`](crate::BigBatchSgd::newton) preset: L-BFGS, then Newton-CG) | that of the rule in use |
//!
//! With [`BatchMode::Persistent`](crate::BatchMode::Persistent) batches (the default) the
//! next iteration starts by evaluating the same batch at the new iterate. A rule whose first
//! trial is usually accepted therefore asks for the batch's full statistics there (gradient,
//! variance and loss in one pass, [`FirstTrial::Statistics`]); when the step lands on that
//! point, the next iteration starts from those statistics. Such a step costs one statistics
//! pass, not a loss pass and a statistics pass. L-BFGS (whose unit step is usually accepted at
//! once) and Barzilai–Borwein do this; Armijo, which enlarges its step before each search,
//! evaluates only losses.

/// The setters of a rule's [`LineSearch`] (a field `search`), with the rule's default `c`.
macro_rules! line_search_setters {
    ($c_default:literal) => {
        #[doc = concat!("c, the sufficient-decrease constant of the Armijo search, in (0, 1). Default ", stringify!($c_default), ".")]
        #[must_use]
        pub fn sufficient_decrease(mut self, c: f64) -> Self {
            self.search.sufficient_decrease = c;
            self
        }
        /// β, the factor a rejected step is multiplied by, in (0, 1). Default 0.5.
        #[must_use]
        pub fn shrink(mut self, beta: f64) -> Self {
            self.search.shrink = beta;
            self
        }
        /// The most reductions in one search (≥ 1). Default 60.
        #[must_use]
        pub fn max_backtracks(mut self, n: usize) -> Self {
            self.search.max_backtracks = n;
            self
        }
        /// The smallest step size tried before the search gives up (≥ 0, ≤ the initial
        /// step size). Default 1e-12.
        #[must_use]
        pub fn min_step(mut self, step: f64) -> Self {
            self.search.min_step = step;
            self
        }
        /// What the search's first trial is expected to be worth
        /// ([`FirstTrial`](crate::FirstTrial)).
        #[must_use]
        pub fn first_trial(mut self, first: $crate::FirstTrial) -> Self {
            self.search.first_trial = first;
            self
        }
        /// The line-search parameters.
        pub fn line_search(&self) -> &LineSearch {
            &self.search
        }
    };
}

mod adaptive;
mod armijo;
mod barzilai_borwein;
mod batch_scaled;
mod context;
mod fixed;
mod gain;
mod hessian;
mod lbfgs;
mod newton;
mod search;
mod switch;

pub use adaptive::{Adadelta, Adam, Momentum};
pub use armijo::{Armijo, StepIncrease};
pub use barzilai_borwein::BarzilaiBorwein;
pub use batch_scaled::BatchScaled;
pub use context::StepContext;
pub use fixed::Fixed;
pub use gain::GainScaled;
pub(crate) use hessian::Hessian;
pub use lbfgs::Lbfgs;
pub use newton::NewtonCg;
pub(crate) use search::Trials;
pub use search::{FirstTrial, LineSearch};
pub use switch::Switch;

use crate::error::Result;
use crate::float::Float;
use crate::objective::Objective;

/// The step a [`StepRule`] proposes: the optimizer moves `w ← w + step_size·d`, with `d` the
/// direction left in the [`StepContext`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Step<F> {
    /// The step size α (finite and ≥ 0).
    pub step_size: F,
    /// How many times a line search shrank the step.
    pub backtracks: usize,
    /// The batch loss at the new point, if the rule evaluated it.
    pub loss_after: Option<F>,
}

impl<F> Step<F> {
    /// A step of size `step_size`, found without backtracking and without evaluating the loss
    /// at the new point.
    pub fn new(step_size: F) -> Self {
        Step {
            step_size,
            backtracks: 0,
            loss_after: None,
        }
    }
    /// The number of times a line search shrank the step.
    #[must_use]
    pub fn with_backtracks(mut self, backtracks: usize) -> Self {
        self.backtracks = backtracks;
        self
    }
    /// The batch loss at the new point.
    #[must_use]
    pub fn with_loss_after(mut self, loss: F) -> Self {
        self.loss_after = Some(loss);
        self
    }
}

/// Chooses the step of each iteration.
///
/// Implement it for a new update rule: the rule keeps its own memory across iterations
/// (a previous iterate, curvature pairs, moment estimates), is reset at the start of every
/// run, and sees the current batch through the [`StepContext`]. A rule works for `f32` and
/// `f64` runs alike (it can keep its memory in `f64`); its parameters do not depend on the
/// float type, so [`validate`](Self::validate) is checked when the optimizer is built.
///
/// # Example
/// Steps of a given length along `−g_B`, shortened by Armijo backtracking on the batch:
/// ```
/// use bigbatch::{
///     BigBatchSgd, Error, Float, LineSearch, Objective, Result,
///     Step, StepContext, StepRule,
/// };
/// use ndarray::{ArrayRef1, array};
///
/// #[derive(Debug, Clone)]
/// struct Normalized {
///     length: f64,
///     search: LineSearch,
/// }
///
/// impl StepRule for Normalized {
///     fn validate(&self) -> Result<()> {
///         if self.length.is_finite() && self.length > 0.0 {
///             Ok(())
///         } else {
///             Err(Error::InvalidParameter {
///                 name: "length",
///                 value: self.length.to_string(),
///                 allowed: "finite and > 0",
///             })
///         }
///     }
///     fn reset(&mut self) {}
///     fn step<F: Float, O: Objective<F> + ?Sized>(
///         &mut self,
///         ctx: &mut StepContext<'_, F, O>,
///     ) -> Result<Step<F>> {
///         let norm = ctx.stats().grad_norm_sq().sqrt();
///         let alpha = F::from_f64(self.length / norm.max(f64::MIN_POSITIVE));
///         ctx.backtrack(alpha, &self.search)
///     }
/// }
///
/// # struct Mean(Vec<f64>);
/// # impl Objective for Mean {
/// #     fn n_samples(&self) -> usize { self.0.len() }
/// #     fn dim(&self) -> usize { 1 }
/// #     fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 { 0.5 * (w[0] - self.0[i]).powi(2) }
/// #     fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) { g[0] = w[0] - self.0[i]; }
/// # }
/// # let data = Mean((0..100).map(f64::from).collect());
/// let rule = Normalized { length: 10.0, search: LineSearch::default() };
/// let report = BigBatchSgd::builder().step(rule).build()?.minimize(&data, array![0.0])?;
/// assert!((report.w[0] - 49.5).abs() < 1e-3, "{report}");
/// // Its parameters are checked like those of the bundled rules.
/// let bad = Normalized { length: -1.0, search: LineSearch::default() };
/// assert!(BigBatchSgd::builder().step(bad).build().is_err());
/// # Ok::<(), bigbatch::Error>(())
/// ```
pub trait StepRule {
    /// Checks the parameters; called by the optimizer's `build()`. The default accepts all.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) naming the parameter and
    /// its allowed range.
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// Forgets everything learned in an earlier run (called when a run starts).
    fn reset(&mut self);

    /// Proposes the step for this iteration, optionally overwriting the direction.
    ///
    /// # Errors
    /// [`Error::LineSearchFailed`](crate::Error::LineSearchFailed) when no acceptable step is
    /// found, or [`Error::NonFinite`](crate::Error::NonFinite) when a quantity the rule needs
    /// is not finite.
    fn step<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        ctx: &mut StepContext<'_, F, O>,
    ) -> Result<Step<F>>;
}
