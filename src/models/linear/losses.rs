//! The losses `φ(z, y)` of the linear models.

use crate::float::Float;

/// The loss `φ(z, y)` of a linear model as a function of the prediction `z = x·w`.
pub trait ScalarLoss: Clone + std::fmt::Debug + Send + Sync {
    /// `φ(z, y)`.
    fn value<F: Float>(&self, z: F, y: F) -> F;
    /// `(φ(z, y), ∂φ/∂z)`.
    fn value_and_derivative<F: Float>(&self, z: F, y: F) -> (F, F);
    /// `∂²φ/∂z²`, if the loss has it (for every `z` or for none: a loss whose second
    /// derivative is undefined at a kink returns the one-sided value there). The default has
    /// none, and the model then has no [`curvature`](crate::Objective::curvature).
    fn second_derivative<F: Float>(&self, z: F, y: F) -> Option<F> {
        let _ = (z, y);
        None
    }
    /// Checks a target and returns the value the loss works with (e.g. 0 → −1), or why not.
    ///
    /// # Errors
    /// A description of the allowed targets.
    fn prepare_target(&self, y: f64) -> std::result::Result<f64, &'static str> {
        Ok(y)
    }
}

/// `φ(z, y) = (z − y)²/2`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SquaredLoss;

impl ScalarLoss for SquaredLoss {
    #[inline]
    fn value<F: Float>(&self, z: F, y: F) -> F {
        let r = z - y;
        F::from_f64(0.5) * r * r
    }
    #[inline]
    fn value_and_derivative<F: Float>(&self, z: F, y: F) -> (F, F) {
        let r = z - y;
        (F::from_f64(0.5) * r * r, r)
    }
    #[inline]
    fn second_derivative<F: Float>(&self, _z: F, _y: F) -> Option<F> {
        Some(F::one())
    }
}

/// `φ(z, y) = log(1 + exp(−yz))` for labels y = ±1, computed without overflow for any margin.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LogLoss;

/// `log(1 + exp(t))`, exact for large |t|.
#[inline]
fn softplus<F: Float>(t: F) -> F {
    t.max(F::zero()) + (-t.abs()).exp().ln_1p()
}

/// `1/(1 + exp(−t))` without overflow.
#[inline]
fn sigmoid<F: Float>(t: F) -> F {
    if t >= F::zero() {
        F::one() / (F::one() + (-t).exp())
    } else {
        let e = t.exp();
        e / (F::one() + e)
    }
}

impl ScalarLoss for LogLoss {
    #[inline]
    fn value<F: Float>(&self, z: F, y: F) -> F {
        softplus(-y * z)
    }
    #[inline]
    fn value_and_derivative<F: Float>(&self, z: F, y: F) -> (F, F) {
        let t = -y * z;
        (softplus(t), -y * sigmoid(t))
    }
    /// `σ(t)(1 − σ(t))` with `t = −yz` (labels ±1), computed as `σ(t)σ(−t)` without
    /// cancellation.
    #[inline]
    fn second_derivative<F: Float>(&self, z: F, y: F) -> Option<F> {
        let t = -y * z;
        Some(sigmoid(t) * sigmoid(-t))
    }
    fn prepare_target(&self, y: f64) -> std::result::Result<f64, &'static str> {
        match y {
            1.0 => Ok(1.0),
            -1.0 | 0.0 => Ok(-1.0),
            _ => Err("labels must be ±1 or 0/1"),
        }
    }
}

/// Huber's loss of the residual `r = z − y` with threshold δ: `r²/2` for `|r| ≤ δ`, else
/// `δ(|r| − δ/2)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HuberLoss {
    /// The threshold δ > 0.
    pub delta: f64,
}

impl ScalarLoss for HuberLoss {
    #[inline]
    fn value<F: Float>(&self, z: F, y: F) -> F {
        self.value_and_derivative(z, y).0
    }
    #[inline]
    fn value_and_derivative<F: Float>(&self, z: F, y: F) -> (F, F) {
        let delta = F::from_f64(self.delta);
        let r = z - y;
        if r.abs() <= delta {
            (F::from_f64(0.5) * r * r, r)
        } else {
            (
                delta * (r.abs() - F::from_f64(0.5) * delta),
                delta * r.signum(),
            )
        }
    }
    /// 1 for `|r| ≤ δ`, else 0 (the inner value at the kinks `|r| = δ`).
    #[inline]
    fn second_derivative<F: Float>(&self, z: F, y: F) -> Option<F> {
        let inside = (z - y).abs() <= F::from_f64(self.delta);
        Some(if inside { F::one() } else { F::zero() })
    }
}
