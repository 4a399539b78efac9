use std::collections::VecDeque;

use ndarray::Array1;

use super::{FirstTrial, LineSearch, Step, StepContext, StepRule};
use crate::error::{Result, check};
use crate::float::Float;
use crate::objective::Objective;

/// One curvature pair `(s, y)` with `ρ = 1/(s·y)`.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Pair {
    s: Array1<f64>,
    y: Array1<f64>,
    rho: f64,
}

/// Limited-memory BFGS directions on big batches, with an Armijo search from a unit step.
///
/// ```text
/// d = −H g_B                 two-loop recursion over the last m pairs, H_0 = (s·y / y·y) I
/// s = w_t − w_{t−1},  y = g_B(w_t) − g_B(w_{t−1})       both gradients on the same samples
/// pair kept only if s·y > ε‖s‖²;  d ← −g_B (memory cleared) if d is not a descent direction
/// α = 1, halved until ℓ_B(w + αd) ≤ ℓ_B(w) + c α g_B·d       (c = 1e-4)
/// ```
///
/// With [`BatchMode::Persistent`](crate::BatchMode::Persistent) the two gradients of a pair
/// come from the previous batch, evaluated at the new iterate as part of the new batch, and
/// cost nothing extra; with fresh batches the current batch is also evaluated at the previous
/// iterate (`|B|` more gradient evaluations, counted). Once the batch holds every sample the
/// method is full-batch L-BFGS. If the search fails along `d`, the memory is cleared and the
/// search is retried once along `−g_B`.
///
/// The memory is kept in `f64` whatever the float type of the run: `2·m` vectors of the
/// problem's dimension (1.6 kB per parameter at the default m = 100), and the recursion costs
/// about `4·m·dim` operations per iteration, small beside a pass over a batch of a linear model
/// (for a network with millions of parameters, choose a smaller `m`). Defaults: memory 100,
/// c = 1e-4, β = 0.5, 60 backtracks, ε = 1e-10.
///
/// # Example
/// ```
/// use bigbatch::{BatchMode, BigBatchSgd, GrowthRule, Lbfgs};
/// let opt = BigBatchSgd::builder()
///     .step(Lbfgs::new().memory(30))
///     .batch_mode(BatchMode::Persistent)
///     .growth_rule(GrowthRule::ToRequired)
///     .build()?;
/// assert_eq!(opt.step_rule().pairs_held(), 0);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Lbfgs {
    memory: usize,
    initial_step: f64,
    curvature_eps: f64,
    search: LineSearch,
    pairs: VecDeque<Pair>,
    prev: Option<(Array1<f64>, Array1<f64>)>,
}

impl Default for Lbfgs {
    fn default() -> Self {
        Lbfgs {
            memory: 100,
            initial_step: 1.0,
            curvature_eps: 1e-10,
            search: LineSearch {
                sufficient_decrease: 1e-4,
                first_trial: FirstTrial::Statistics,
                ..LineSearch::default()
            },
            pairs: VecDeque::new(),
            prev: None,
        }
    }
}

impl Lbfgs {
    /// The rule with its defaults.
    pub fn new() -> Self {
        Self::default()
    }
    line_search_setters!(1e-4);
    /// How many curvature pairs to keep (≥ 1). Default 100.
    #[must_use]
    pub fn memory(mut self, m: usize) -> Self {
        self.memory = m;
        self
    }
    /// The step each search starts from (> 0). Default 1.
    #[must_use]
    pub fn initial_step(mut self, step: f64) -> Self {
        self.initial_step = step;
        self
    }
    /// ε: a pair is kept only if `s·y > ε‖s‖²` (≥ 0). Default 1e-10.
    #[must_use]
    pub fn curvature_threshold(mut self, eps: f64) -> Self {
        self.curvature_eps = eps;
        self
    }
    /// The number of curvature pairs held now.
    pub fn pairs_held(&self) -> usize {
        self.pairs.len()
    }

    /// Adds the pair from the previous iterate to the current one, if it has positive
    /// curvature (and the budget can pay for it, with fresh batches).
    fn update_memory<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        ctx: &mut StepContext<'_, F, O>,
    ) -> Result<()> {
        let Some((prev_w, prev_g)) = self.prev.as_ref() else {
            return Ok(());
        };
        if let Some(y) = ctx.gradient_change(prev_w, prev_g)? {
            let s = ctx.w().mapv(F::as_f64) - prev_w;
            self.push(s, y);
        }
        Ok(())
    }

    fn push(&mut self, s: Array1<f64>, y: Array1<f64>) {
        let sy = s.dot(&y);
        let ss = s.dot(&s);
        if sy.is_finite() && sy > self.curvature_eps * ss && ss > 0.0 {
            self.pairs.push_back(Pair {
                s,
                y,
                rho: 1.0 / sy,
            });
            while self.pairs.len() > self.memory {
                self.pairs.pop_front();
            }
        }
    }

    /// `−H g` by the two-loop recursion.
    fn direction(&self, g: &Array1<f64>) -> Array1<f64> {
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(self.pairs.len());
        for p in self.pairs.iter().rev() {
            let a = p.rho * p.s.dot(&q);
            q.scaled_add(-a, &p.y);
            alphas.push(a);
        }
        if let Some(p) = self.pairs.back() {
            q *= 1.0 / (p.rho * p.y.dot(&p.y));
        }
        for (p, a) in self.pairs.iter().zip(alphas.iter().rev()) {
            let b = p.rho * p.y.dot(&q);
            q.scaled_add(a - b, &p.s);
        }
        -q
    }
}

impl StepRule for Lbfgs {
    fn validate(&self) -> Result<()> {
        check::nonzero_count("memory", self.memory)?;
        check::positive("initial_step", self.initial_step)?;
        check::non_negative("curvature_threshold", self.curvature_eps)?;
        self.search.validate()
    }

    fn reset(&mut self) {
        self.pairs.clear();
        self.prev = None;
    }

    fn step<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        ctx: &mut StepContext<'_, F, O>,
    ) -> Result<Step<F>> {
        self.update_memory(ctx)?;
        let g = ctx.stats().mean().clone();
        let d = self.direction(&g);
        let slope = g.dot(&d);
        let quasi_newton = !self.pairs.is_empty()
            && slope.is_finite()
            && slope < 0.0
            && d.iter().all(|x| x.is_finite());
        if quasi_newton {
            ctx.set_direction(&d);
        } else {
            self.pairs.clear();
        }
        let start = F::from_f64(self.initial_step);
        let step = match ctx.backtrack(start, &self.search) {
            Ok(step) => step,
            Err(_) if quasi_newton => {
                // The quasi-Newton model misled the search: forget it and try steepest descent.
                self.pairs.clear();
                let minus_g = -ctx.stats().mean();
                ctx.set_direction(&minus_g);
                ctx.backtrack(start, &self.search)?
            }
            Err(e) => return Err(e),
        };
        self.prev = Some((ctx.w().mapv(F::as_f64), g));
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{RngExt, SeedableRng};

    fn random_vec(rng: &mut Xoshiro256PlusPlus, d: usize) -> Array1<f64> {
        (0..d).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
    }

    #[test]
    fn the_two_loop_direction_is_a_descent_direction() {
        // With positive-curvature pairs, H is positive definite: g·(−Hg) < 0 for every g ≠ 0.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        for trial in 0..200 {
            let d = 2 + trial % 9;
            let mut rule = Lbfgs::new().memory(1 + trial % 6);
            for _ in 0..8 {
                let s = random_vec(&mut rng, d);
                // y = A s for a random symmetric positive definite A = I + B Bᵀ/d.
                let b = random_vec(&mut rng, d);
                let y = &s + &(&b * (b.dot(&s) / d as f64));
                rule.push(s, y);
            }
            assert!(rule.pairs_held() <= rule.memory);
            let g = random_vec(&mut rng, d);
            let dir = rule.direction(&g);
            assert!(g.dot(&dir) < 0.0, "trial {trial}: g·d = {}", g.dot(&dir));
        }
    }

    #[test]
    fn pairs_without_positive_curvature_are_skipped_and_memory_is_bounded() {
        let mut rule = Lbfgs::new().memory(2);
        rule.push(ndarray::array![1.0, 0.0], ndarray::array![-1.0, 0.0]);
        rule.push(ndarray::array![0.0, 0.0], ndarray::array![1.0, 0.0]);
        assert_eq!(rule.pairs_held(), 0);
        for k in 1..5 {
            rule.push(
                ndarray::array![k as f64, 1.0],
                ndarray::array![k as f64, 2.0],
            );
        }
        assert_eq!(rule.pairs_held(), 2);
        // With one exact pair of a quadratic, H maps y back to s along that pair.
        let mut one = Lbfgs::new();
        one.push(ndarray::array![1.0, 0.0], ndarray::array![4.0, 0.0]);
        let d = one.direction(&ndarray::array![4.0, 0.0]);
        assert!((d[0] + 1.0).abs() < 1e-15 && d[1].abs() < 1e-15, "{d}");
    }
}
