//! A gradient check for a network: the gradient of Candle's backward pass against central
//! differences of the loss, along random directions, variable by variable.
//!
//! For each variable `v` and a few unit directions `u` of its shape (the other variables held
//! fixed), the check compares the directional derivative the backward pass gives,
//! `a = ∇_v f · u`, with the central difference `n = (f(v + h u) − f(v − h u)) / 2h`, and
//! reports the worst relative error `|a − n| / max(|a|, |n|)` of each variable. The first
//! direction is the variable's gradient `ĝ = g/‖g‖` itself, the others `ĝ + r` normalized, for a
//! random unit `r`: along them the derivative is of the order of `‖g‖` (along a random direction
//! alone it would be about `‖g‖/√dim`, lost in the rounding of an `f32` loss), and the random part
//! still probes every component, so a gradient wrong in scale or in direction shows. The step is
//! `h = ∛ε · max(1, max |v|)` for the machine epsilon ε of the variable's type, which balances
//! the truncation error of the difference (O(h²)) against the rounding of the loss (O(ε/h)).
//!
//! What to expect: a correct network built in `f64` passes at about 1e-9 (the comparison's
//! networks measured 1.4e-9 and 2.4e-10; a step that crosses a ReLU kink is the exception, rare
//! with steps this short); in `f32` the check resolves only a few percent (see
//! [`F32_TOLERANCE`]). A wrong backward pass
//! shows as errors of order 1 on the variables it feeds, as Candle's max pooling did (see
//! [`max_pool2d`](crate::max_pool2d)).

use candle_core::{DType, Tensor, Var};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::Error;

/// The relative error below which a network built in `f64` passes the check.
pub const F64_TOLERANCE: f64 = 1e-4;
/// The relative error below which a network built in `f32` passes the check. Central
/// differences of an `f32` loss need steps long enough to cross ReLU kinks and swaps of pooling
/// maxima, so they resolve a directional derivative only to a few percent: on the comparison's
/// convolutional network the worst error over its variables measured 0.019 to 0.026 for three
/// initialisations (0.0003 on its perceptron). A gradient wrong by a factor, as Candle's max
/// pooling makes it, shows errors of 0.5 and more.
pub const F32_TOLERANCE: f64 = 0.1;

/// How the check runs.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct GradCheck {
    /// Directions per variable: the gradient's own, then random ones leaning on it. Default 3.
    pub directions: usize,
    /// The seed of the directions. Default 0.
    pub seed: u64,
    /// The difference step relative to `max(1, max |v|)`; `None` for `∛ε` of the variable's
    /// type. Default `None`.
    pub step: Option<f64>,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            directions: 3,
            seed: 0,
            step: None,
        }
    }
}

impl GradCheck {
    /// With `k` directions per variable.
    #[must_use]
    pub fn directions(mut self, k: usize) -> Self {
        self.directions = k;
        self
    }
    /// With the seed of the directions.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// The check of one variable.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VarCheck {
    /// The variable's position in the list checked.
    pub index: usize,
    /// Its shape.
    pub dims: Vec<usize>,
    /// The worst relative error over the directions.
    pub worst_relative_error: f64,
    /// The directional derivative from the backward pass, for that direction.
    pub analytic: f64,
    /// The central difference, for that direction.
    pub numeric: f64,
}

/// The result of a gradient check: one [`VarCheck`] per variable, in the order given.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GradCheckReport {
    /// Each variable's check.
    pub vars: Vec<VarCheck>,
}

impl GradCheckReport {
    /// The worst relative error over all variables.
    pub fn worst(&self) -> f64 {
        self.vars
            .iter()
            .map(|v| v.worst_relative_error)
            .fold(0.0, f64::max)
    }
}

impl std::fmt::Display for GradCheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for v in &self.vars {
            writeln!(
                f,
                "variable {} {:?}: worst relative error {:.2e} (backward {:.6e}, difference {:.6e})",
                v.index, v.dims, v.worst_relative_error, v.analytic, v.numeric
            )?;
        }
        Ok(())
    }
}

/// A unit direction: the gradient's own (`first`), or the gradient's plus a random one,
/// normalized (a random one alone if the gradient is zero).
fn direction(
    rng: &mut Xoshiro256PlusPlus,
    grad: &Tensor,
    grad_norm: f64,
    first: bool,
) -> candle_core::Result<Tensor> {
    let unit = |t: Tensor| -> candle_core::Result<Tensor> {
        let norm = t.sqr()?.sum_all()?.to_scalar::<f64>()?.sqrt();
        t.affine(1.0 / norm.max(f64::MIN_POSITIVE), 0.0)
    };
    let along = if grad_norm > 0.0 {
        Some(grad.affine(1.0 / grad_norm, 0.0)?)
    } else {
        None
    };
    match along {
        Some(g) if first => Ok(g),
        along => {
            let r: Vec<f64> = (0..grad.elem_count())
                .map(|_| rng.random::<f64>() - 0.5)
                .collect();
            let r = unit(Tensor::from_vec(r, grad.shape(), grad.device())?)?;
            unit(match along {
                Some(g) => (g + r)?,
                None => r,
            })
        }
    }
}

/// Checks the gradient of `loss` (a closure that computes a scalar loss from the current values
/// of `vars`) against central differences, variable by variable (see the [module docs](self)).
/// The variables hold their values again when it returns.
///
/// # Example
/// ```
/// use bigbatch_candle::check::{GradCheck, F64_TOLERANCE, check_gradients};
/// use candle_core::{DType, Device, Tensor, Var};
///
/// # fn main() -> Result<(), bigbatch_candle::Error> {
/// let dev = Device::Cpu;
/// let w = Var::from_vec(vec![0.5f64, -1.0, 2.0], 3, &dev)?;
/// let x = Tensor::new(&[1.0f64, 2.0, 3.0], &dev)?;
/// let loss = || (w.as_tensor() * &x)?.tanh()?.sum_all();
/// let report = check_gradients(&[w.clone()], loss, &GradCheck::default())?;
/// assert!(report.worst() < F64_TOLERANCE, "{report}");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::Candle`] if the loss cannot be computed, [`Error::Model`] if it is not a finite
/// scalar or `vars` holds a variable of an integer type.
pub fn check_gradients<L>(vars: &[Var], loss: L, opts: &GradCheck) -> Result<GradCheckReport, Error>
where
    L: Fn() -> candle_core::Result<Tensor>,
{
    let value = |l: candle_core::Result<Tensor>| -> Result<f64, Error> {
        let l = l?;
        if l.elem_count() != 1 {
            return Err(Error::Model(format!(
                "the loss has shape {:?}; a gradient check needs a scalar",
                l.dims()
            )));
        }
        let v = l.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?[0];
        if v.is_finite() {
            Ok(v)
        } else {
            Err(Error::Model(format!("the loss is {v}")))
        }
    };
    let at = loss()?;
    value(Ok(at.clone()))?;
    let grads = at.backward()?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(opts.seed);
    let mut out = Vec::with_capacity(vars.len());
    for (index, var) in vars.iter().enumerate() {
        let eps = match var.dtype() {
            DType::F64 => f64::EPSILON,
            DType::F32 => f64::from(f32::EPSILON),
            DType::F16 | DType::BF16 => 1e-3,
            other => {
                return Err(Error::Model(format!(
                    "variable {index} is {other:?}; only float variables have gradients"
                )));
            }
        };
        let original = var.as_tensor().copy()?;
        let scale = original
            .to_dtype(DType::F64)?
            .abs()?
            .max_all()?
            .to_scalar::<f64>()?
            .max(1.0);
        let h = opts.step.unwrap_or(eps.cbrt()) * scale;
        let grad = match grads.get(var.as_tensor()) {
            Some(g) => g.to_dtype(DType::F64)?,
            None => original.to_dtype(DType::F64)?.zeros_like()?,
        };
        let mut worst = VarCheck {
            index,
            dims: var.dims().to_vec(),
            worst_relative_error: 0.0,
            analytic: 0.0,
            numeric: 0.0,
        };
        let grad_norm = grad.sqr()?.sum_all()?.to_scalar::<f64>()?.sqrt();
        for d in 0..opts.directions.max(1) {
            let u = direction(&mut rng, &grad, grad_norm, d == 0)?;
            let analytic = (&grad * &u)?.sum_all()?.to_scalar::<f64>()?;
            let step = u.affine(h, 0.0)?.to_dtype(var.dtype())?;
            var.set(&(&original + &step)?)?;
            let plus = value(loss());
            var.set(&(&original - &step)?)?;
            let minus = value(loss());
            var.set(&original)?;
            let numeric = (plus? - minus?) / (2.0 * h);
            let denom = analytic.abs().max(numeric.abs());
            let error = if denom > 0.0 {
                (analytic - numeric).abs() / denom
            } else {
                0.0
            };
            if error >= worst.worst_relative_error {
                worst.worst_relative_error = error;
                worst.analytic = analytic;
                worst.numeric = numeric;
            }
        }
        out.push(worst);
    }
    Ok(GradCheckReport { vars: out })
}
