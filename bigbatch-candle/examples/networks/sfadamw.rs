//! Schedule-Free AdamW (Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky 2024) on Candle
//! variables, which Candle does not have, at its published defaults: learning rate 0.0025,
//! β = (0.9, 0.999), ε = 1e-8, no weight decay, no warm-up, uniform weights (r = 0) scaled by
//! the largest learning rate so far squared.
//!
//! ```text
//! γ_k = lr·√(1 − β₂^(k+1)),  w_k = max_{j≤k} γ_j²,  c_k = w_k / Σ_{j≤k} w_j
//! v ← β₂v + (1 − β₂)g²          (g the gradient at y)
//! z ← z − γ_k g / (√v + ε)
//! x ← (1 − c_k)x + c_k z       (the average: the point evaluated)
//! y ← β₁x + (1 − β₁)z          (the point the gradient is taken at: the variables)
//! ```

use candle_core::{Tensor, Var};

/// The optimizer's state; the variables hold `y` between steps.
pub struct ScheduleFreeAdamW {
    vars: Vec<Var>,
    z: Vec<Tensor>,
    x: Vec<Tensor>,
    v: Vec<Tensor>,
    lr: f64,
    k: i32,
    lr_max: f64,
    weight_sum: f64,
}

impl ScheduleFreeAdamW {
    pub const DEFAULT_LR: f64 = 0.0025;
    const BETA1: f64 = 0.9;
    const BETA2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    pub fn new(vars: Vec<Var>, lr: f64) -> candle_core::Result<Self> {
        // Detached: the state must not keep the history of the operations that made it.
        let copy = |v: &Var| Ok(v.as_tensor().copy()?.detach());
        let z = vars.iter().map(copy).collect::<candle_core::Result<_>>()?;
        let x = vars.iter().map(copy).collect::<candle_core::Result<_>>()?;
        let v = vars
            .iter()
            .map(|v| Ok(v.zeros_like()?.detach()))
            .collect::<candle_core::Result<_>>()?;
        Ok(ScheduleFreeAdamW {
            vars,
            z,
            x,
            v,
            lr,
            k: 0,
            lr_max: 0.0,
            weight_sum: 0.0,
        })
    }

    pub fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        let gamma = self.lr * (1.0 - Self::BETA2.powi(self.k + 1)).sqrt();
        self.lr_max = self.lr_max.max(gamma);
        let weight = self.lr_max * self.lr_max;
        self.weight_sum += weight;
        let c = weight / self.weight_sum;
        for (i, var) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let g = g.detach();
            self.v[i] = ((&self.v[i] * Self::BETA2)? + (g.sqr()? * (1.0 - Self::BETA2))?)?.detach();
            let denom = (self.v[i].sqrt()? + Self::EPS)?;
            self.z[i] = (&self.z[i] - (g.div(&denom)? * gamma)?)?.detach();
            self.x[i] = ((&self.x[i] * (1.0 - c))? + (&self.z[i] * c)?)?.detach();
            let y = ((&self.x[i] * Self::BETA1)? + (&self.z[i] * (1.0 - Self::BETA1))?)?;
            var.set(&y)?;
        }
        self.k += 1;
        Ok(())
    }

    /// Runs `f` with the variables at the average `x` (the point Schedule-Free evaluates), and
    /// puts `y` back.
    pub fn at_average<R>(
        &self,
        f: impl FnOnce() -> candle_core::Result<R>,
    ) -> candle_core::Result<R> {
        let y: Vec<Tensor> = self
            .vars
            .iter()
            .map(|v| Ok(v.as_tensor().copy()?.detach()))
            .collect::<candle_core::Result<_>>()?;
        for (v, x) in self.vars.iter().zip(&self.x) {
            v.set(x)?;
        }
        let out = f();
        for (v, y) in self.vars.iter().zip(&y) {
            v.set(y)?;
        }
        out
    }
}
