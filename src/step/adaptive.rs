//! Update rules that scale each coordinate by its own gradient history (Adam, Adadelta) or
//! carry a velocity (heavy-ball momentum): the rules networks are usually trained with, here
//! applied to big batches, whose gradients the big-batch test keeps accurate.

use ndarray::{Array1, Zip};

use super::{Step, StepContext, StepRule};
use crate::error::{Result, check};
use crate::float::Float;
use crate::objective::Objective;

/// Sizes a rule's memory to the problem at its first step.
fn sized(v: &mut Array1<f64>, dim: usize) {
    if v.len() != dim {
        *v = Array1::zeros(dim);
    }
}

/// Adam (Kingma & Ba 2015) on the batch gradient:
///
/// ```text
/// m ← β₁m + (1 − β₁)g,   v ← β₂v + (1 − β₂)g²,   t ← t + 1
/// w ← w − α · m̂ / (√v̂ + ε),   m̂ = m/(1 − β₁ᵗ),  v̂ = v/(1 − β₂ᵗ)      (per coordinate)
/// ```
///
/// Defaults: α = 1e-3, β₁ = 0.9, β₂ = 0.999, ε = 1e-8. The moments are kept in `f64` and are
/// part of a checkpoint.
///
/// # Example
/// ```
/// use bigbatch::{Adam, BigBatchSgd};
/// let optimizer = BigBatchSgd::builder().step(Adam::new().step_size(0.01)).build()?;
/// assert_eq!(optimizer.step_rule(), &Adam::new().step_size(0.01));
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Adam {
    step_size: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    m: Array1<f64>,
    v: Array1<f64>,
    t: i32,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            step_size: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: Array1::zeros(0),
            v: Array1::zeros(0),
            t: 0,
        }
    }
}

impl Adam {
    /// The rule with its defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// α, the step size (> 0). Default 1e-3.
    #[must_use]
    pub fn step_size(mut self, alpha: f64) -> Self {
        self.step_size = alpha;
        self
    }
    /// β₁ and β₂, the decay rates of the moments, in [0, 1). Default 0.9 and 0.999.
    #[must_use]
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }
    /// ε, added to `√v̂` (> 0). Default 1e-8.
    #[must_use]
    pub fn epsilon(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
}

impl StepRule for Adam {
    fn validate(&self) -> Result<()> {
        check::positive("step_size", self.step_size)?;
        check::unit_from_zero("beta1", self.beta1)?;
        check::unit_from_zero("beta2", self.beta2)?;
        check::positive("epsilon", self.eps)
    }

    fn reset(&mut self) {
        self.m = Array1::zeros(0);
        self.v = Array1::zeros(0);
        self.t = 0;
    }

    fn step<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        ctx: &mut StepContext<'_, F, O>,
    ) -> Result<Step<F>> {
        let g = ctx.trials.eval.stats().mean();
        sized(&mut self.m, g.len());
        sized(&mut self.v, g.len());
        self.t = self.t.saturating_add(1);
        let (b1, b2) = (self.beta1, self.beta2);
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        let mut d = Array1::zeros(g.len());
        Zip::from(&mut d)
            .and(&mut self.m)
            .and(&mut self.v)
            .and(g)
            .for_each(|d, m, v, &g| {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *d = -(*m / c1) / ((*v / c2).sqrt() + self.eps);
            });
        ctx.set_direction(&d);
        Ok(Step::new(F::from_f64(self.step_size)))
    }
}

/// Adadelta (Zeiler 2012) on the batch gradient, the update the paper runs on big batches for
/// its networks:
///
/// ```text
/// E[g²] ← ρE[g²] + (1 − ρ)g²
/// Δ = −√(E[Δ²] + ε) / √(E[g²] + ε) · g,   E[Δ²] ← ρE[Δ²] + (1 − ρ)Δ²
/// w ← w + α·Δ                                                    (per coordinate)
/// ```
///
/// Adadelta has no learning rate of its own: the ratio of the two running averages sets the
/// scale of each coordinate's step. That scale follows the size of the recent steps and does
/// not shrink on its own, so on a full batch Adadelta circles the optimum rather than
/// converging to it (within about 1e-3 relative on the ridge problem of the crate's tests);
/// it is a rule for networks, where the noise and the model's size matter more than the last
/// digits. Defaults: ρ = 0.95, ε = 1e-6, α = 1. The running averages are kept in `f64` and are
/// part of a checkpoint.
///
/// # Example
/// ```
/// use bigbatch::{Adadelta, BigBatchSgd};
/// let optimizer = BigBatchSgd::builder().step(Adadelta::new().rho(0.9)).build()?;
/// assert!(BigBatchSgd::builder().step(Adadelta::new().rho(1.0)).build().is_err());
/// # drop(optimizer);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Adadelta {
    rho: f64,
    eps: f64,
    step_size: f64,
    g2: Array1<f64>,
    dx2: Array1<f64>,
}

impl Default for Adadelta {
    fn default() -> Self {
        Adadelta {
            rho: 0.95,
            eps: 1e-6,
            step_size: 1.0,
            g2: Array1::zeros(0),
            dx2: Array1::zeros(0),
        }
    }
}

impl Adadelta {
    /// The rule with its defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// ρ, the decay rate of the running averages, in [0, 1). Default 0.95.
    #[must_use]
    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }
    /// ε, which starts the steps and keeps the ratio finite (> 0). Default 1e-6.
    #[must_use]
    pub fn epsilon(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    /// α, a factor on every step (> 0). Default 1.
    #[must_use]
    pub fn step_size(mut self, alpha: f64) -> Self {
        self.step_size = alpha;
        self
    }
}

impl StepRule for Adadelta {
    fn validate(&self) -> Result<()> {
        check::unit_from_zero("rho", self.rho)?;
        check::positive("epsilon", self.eps)?;
        check::positive("step_size", self.step_size)
    }

    fn reset(&mut self) {
        self.g2 = Array1::zeros(0);
        self.dx2 = Array1::zeros(0);
    }

    fn step<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        ctx: &mut StepContext<'_, F, O>,
    ) -> Result<Step<F>> {
        // The stats and the direction are distinct fields of the context: the direction is
        // written in place, rounded to `F` as `set_direction` rounds it.
        let g = ctx.trials.eval.stats().mean();
        sized(&mut self.g2, g.len());
        sized(&mut self.dx2, g.len());
        let (rho, eps, alpha) = (self.rho, self.eps, self.step_size);
        // Over plain slices (every vector here is owned, hence contiguous).
        let slices = (
            ctx.direction.as_slice_mut(),
            self.g2.as_slice_mut(),
            self.dx2.as_slice_mut(),
            g.as_slice(),
        );
        let (Some(ds), Some(g2s), Some(dx2s), Some(gs)) = slices else {
            unreachable!("owned vectors are contiguous")
        };
        assert_eq!(ds.len(), gs.len(), "Adadelta: direction length");
        crate::kernels::adadelta(ds, g2s, dx2s, gs, (rho, eps, alpha));
        Ok(Step::new(F::from_f64(alpha)))
    }
}

/// Heavy-ball momentum on the batch gradient:
///
/// ```text
/// v ← μv + g,   w ← w − α v
/// ```
///
/// Defaults: α = 0.01, μ = 0.9. The velocity is kept in `f64` and is part of a checkpoint. The
/// step size must suit the problem (as for plain SGD, `α < 2(1 + μ)/L` on a quadratic of
/// curvature at most `L`); the rules that choose their own step ([`Lbfgs`](super::Lbfgs),
/// [`Armijo`](super::Armijo), [`Adadelta`]) need no such choice.
///
/// # Example
/// ```
/// use bigbatch::{BigBatchSgd, Momentum};
/// let optimizer = BigBatchSgd::builder().step(Momentum::new().step_size(0.05).momentum(0.8)).build()?;
/// assert_eq!(optimizer.step_rule(), &Momentum::new().step_size(0.05).momentum(0.8));
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Momentum {
    step_size: f64,
    momentum: f64,
    velocity: Array1<f64>,
}

impl Momentum {
    /// The rule with its defaults: step size 0.01 and momentum 0.9.
    pub fn new() -> Self {
        Momentum {
            step_size: 0.01,
            momentum: 0.9,
            velocity: Array1::zeros(0),
        }
    }
    /// α, the constant step size (> 0). Default 0.01.
    #[must_use]
    pub fn step_size(mut self, alpha: f64) -> Self {
        self.step_size = alpha;
        self
    }
    /// μ, the fraction of the velocity kept, in [0, 1). Default 0.9.
    #[must_use]
    pub fn momentum(mut self, mu: f64) -> Self {
        self.momentum = mu;
        self
    }
}

impl Default for Momentum {
    fn default() -> Self {
        Momentum::new()
    }
}

impl StepRule for Momentum {
    fn validate(&self) -> Result<()> {
        check::positive("step_size", self.step_size)?;
        check::unit_from_zero("momentum", self.momentum)
    }

    fn reset(&mut self) {
        self.velocity = Array1::zeros(0);
    }

    fn step<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        ctx: &mut StepContext<'_, F, O>,
    ) -> Result<Step<F>> {
        let g = ctx.trials.eval.stats().mean();
        sized(&mut self.velocity, g.len());
        let mu = self.momentum;
        Zip::from(&mut self.velocity)
            .and(g)
            .for_each(|v, &g| *v = mu * *v + g);
        let d = self.velocity.mapv(|v| -v);
        ctx.set_direction(&d);
        Ok(Step::new(F::from_f64(self.step_size)))
    }
}
