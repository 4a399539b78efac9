use ndarray::Array1;

use super::{FirstTrial, LineSearch, Step, StepContext, StepRule};
use crate::error::{Error, Result, check};
use crate::float::Float;
use crate::objective::Objective;

/// Newton-CG steps on big batches (sub-sampled Newton): the gradient of the batch that passed
/// the test, the Hessian of a subsample of it, conjugate gradients stopped by a forcing term,
/// and an Armijo search from the unit step.
///
/// ```text
/// S = m samples of the batch, spread evenly over it;  m = max(min_samples, ⌈fraction·|B|⌉)
/// solve H_S d = −g_B by CG from d = 0, until ‖H_S d + g_B‖ ≤ min(η, √‖g_B‖)·‖g_B‖
///       or min(max_iterations, dim) products; a direction p with pᵀH_S p ≤ 0 ends CG
///       (negative curvature: d = the first CG direction, −g_B, if it is the first)
/// α = 1, halved until ℓ_B(w + αd) ≤ ℓ_B(w) + c α g_B·d       (c = 1e-4)
/// ```
///
/// The objective must have Hessian-vector products ([`Objective::curvature`]; every bundled
/// model but the network has them), or the run stops at its first step with
/// [`Error::Unsupported`]. Each product reads the subsample once and is counted as `m`
/// gradient evaluations, and so is the preparation (`m` more), so the epochs of a report
/// include the cost of the curvature. If the search fails along the Newton direction it is
/// retried once along `−g_B`. The rule keeps no memory across iterations beyond counts, so
/// its checkpoint is small.
///
/// The Hessian's subsample sets the cost of a step: with the whole batch and a tight forcing
/// term the step is the exact Newton step on the batch, and the run converges superlinearly
/// once the batch is whole, but each step then costs up to `dim` passes over the data; a
/// smaller subsample makes each product cheaper and the convergence linear, with a rate set by
/// how well the subsample's curvature stands for the batch's (Byrd, Chin, Neveitt & Nocedal
/// 2011). On the convex reference problems of `docs/BENCHMARKS.md` a tenth of the batch
/// measured better than the whole batch at 5, 10 and 20 epochs on each of the five it was
/// tried on, and better than the default L-BFGS at 20 epochs on five of six (at 10 on four, at
/// 5 on two); to a gap of 1e-14 the whole batch after L-BFGS measured best
/// ([`BigBatchSgd::newton`](crate::BigBatchSgd::newton)).
/// 100 products measured better than 20 or 30, and Jacobi preconditioning
/// ([`precondition`](Self::precondition)) took more passes, not fewer, on both data sets it
/// was tried on. Defaults: fraction 0.1, at least 100 samples, η = 0.5, 100 products, no
/// preconditioner, c = 1e-4, β = 0.5, 60 backtracks.
///
/// # Example
/// ```
/// use bigbatch::{BigBatchSgd, NewtonCg, data::datasets, models::Logistic};
/// use ndarray::Array1;
///
/// let model = Logistic::new(datasets::heart_scale::<f64>().with_bias(), 1e-3)?;
/// let mut opt = BigBatchSgd::builder().step(NewtonCg::new()).tolerance(1e-8).build()?;
/// let report = opt.minimize(&model, Array1::zeros(14))?;
/// assert!(report.grad_norm_sq < 1e-8, "{report}");
/// assert!(opt.step_rule().products() > 0);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NewtonCg {
    fraction: f64,
    min_samples: usize,
    forcing: f64,
    max_iterations: usize,
    precondition: bool,
    search: LineSearch,
    /// Hessian-vector products in the run so far, and in the last step.
    products: u64,
    last_products: usize,
    /// Steps whose CG met negative (or zero) curvature.
    negative_curvature: u64,
}

impl Default for NewtonCg {
    fn default() -> Self {
        NewtonCg {
            fraction: 0.1,
            min_samples: 100,
            forcing: 0.5,
            max_iterations: 100,
            precondition: false,
            search: LineSearch {
                sufficient_decrease: 1e-4,
                first_trial: FirstTrial::Statistics,
                ..LineSearch::default()
            },
            products: 0,
            last_products: 0,
            negative_curvature: 0,
        }
    }
}

impl NewtonCg {
    /// The rule with its defaults.
    pub fn new() -> Self {
        Self::default()
    }
    line_search_setters!(1e-4);
    /// The fraction of the batch whose Hessian the products use, in (0, 1]. Default 0.1.
    #[must_use]
    pub fn hessian_fraction(mut self, fraction: f64) -> Self {
        self.fraction = fraction;
        self
    }
    /// The fewest samples the Hessian uses (all of the batch if it is smaller; ≥ 1). Default
    /// 100.
    #[must_use]
    pub fn min_hessian_samples(mut self, m: usize) -> Self {
        self.min_samples = m;
        self
    }
    /// η, the largest forcing term, in (0, 1): CG stops once the residual is below
    /// `min(η, √‖g_B‖)·‖g_B‖`. Default 0.5.
    #[must_use]
    pub fn forcing(mut self, eta: f64) -> Self {
        self.forcing = eta;
        self
    }
    /// The most Hessian-vector products per step (≥ 1). Default 100.
    #[must_use]
    pub fn max_cg_iterations(mut self, n: usize) -> Self {
        self.max_iterations = n;
        self
    }
    /// Whether CG is preconditioned by the diagonal of the subsample's Hessian (Jacobi), where
    /// the objective's curvature has one ([`Curvature::diagonal`](crate::Curvature::diagonal));
    /// the diagonal costs one product. Default false.
    #[must_use]
    pub fn precondition(mut self, on: bool) -> Self {
        self.precondition = on;
        self
    }
    /// The Hessian-vector products of the run so far.
    pub fn products(&self) -> u64 {
        self.products
    }
    /// The Hessian-vector products of the last step.
    pub fn last_products(&self) -> usize {
        self.last_products
    }
    /// The steps whose conjugate gradients met a direction of negative or zero curvature.
    pub fn negative_curvature_steps(&self) -> u64 {
        self.negative_curvature
    }

    /// The number of Hessian samples for a batch of `n`.
    fn subsample(&self, n: usize) -> usize {
        let by_fraction = (self.fraction * n as f64).ceil() as usize;
        by_fraction.max(self.min_samples).min(n)
    }

    /// An approximate solution of `H d = −g` by conjugate gradients, preconditioned by the
    /// positive diagonal `m` if given, with `product(p, out)` writing `H p` (false when the
    /// budget cannot pay, which ends CG where it is). Returns the direction, the products used,
    /// and whether negative curvature ended CG.
    fn solve(
        &self,
        g: &Array1<f64>,
        m: Option<&Array1<f64>>,
        mut product: impl FnMut(&Array1<f64>, &mut Array1<f64>) -> bool,
    ) -> (Array1<f64>, usize, bool) {
        let precondition = |r: &Array1<f64>| match m {
            Some(m) => r / m,
            None => r.clone(),
        };
        let g_norm = g.dot(g).sqrt();
        let tolerance = self.forcing.min(g_norm.sqrt()) * g_norm;
        let mut d = Array1::zeros(g.len());
        let mut r = g.clone();
        let mut y = precondition(&r);
        let mut p = -&y;
        let mut hp = Array1::zeros(g.len());
        let mut ry = r.dot(&y);
        let mut used = 0;
        // In exact arithmetic CG ends within `dim` products; beyond them it only stirs rounding.
        let max_iterations = self.max_iterations.min(g.len());
        while used < max_iterations {
            if !product(&p, &mut hp) {
                break;
            }
            used += 1;
            let curvature = p.dot(&hp);
            if !(curvature > 0.0 && curvature.is_finite()) {
                if used == 1 {
                    d.assign(&p);
                }
                return (d, used, true);
            }
            let alpha = ry / curvature;
            d.scaled_add(alpha, &p);
            r.scaled_add(alpha, &hp);
            if r.dot(&r).sqrt() <= tolerance {
                break;
            }
            y = precondition(&r);
            let ry_next = r.dot(&y);
            p *= ry_next / ry;
            p -= &y;
            ry = ry_next;
        }
        if used == 0 {
            d.assign(&-&y);
        }
        (d, used, false)
    }
}

impl StepRule for NewtonCg {
    fn validate(&self) -> Result<()> {
        check::unit_to_one("hessian_fraction", self.fraction)?;
        check::nonzero_count("min_hessian_samples", self.min_samples)?;
        check::open_unit("forcing", self.forcing)?;
        check::nonzero_count("max_cg_iterations", self.max_iterations)?;
        self.search.validate()
    }

    fn reset(&mut self) {
        self.products = 0;
        self.last_products = 0;
        self.negative_curvature = 0;
    }

    fn step<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        ctx: &mut StepContext<'_, F, O>,
    ) -> Result<Step<F>> {
        if !ctx.has_curvature() {
            return Err(Error::Unsupported {
                rule: "NewtonCg",
                needs: "Hessian-vector products (Objective::curvature)",
                last_iterate: Vec::new(),
            });
        }
        let g = ctx.stats().mean().clone();
        let (d, used, negative) = if ctx.prepare_hessian(self.subsample(ctx.batch().len())) {
            let mut diagonal = Array1::zeros(g.len());
            let m = (self.precondition
                && ctx.hessian_diagonal(&mut diagonal)
                && diagonal.iter().all(|&x| x > 0.0 && x.is_finite()))
            .then_some(&diagonal);
            self.solve(&g, m, |p, out| ctx.hessian_product(p, out))
        } else {
            (-&g, 0, false)
        };
        self.last_products = used;
        self.products += used as u64;
        self.negative_curvature += u64::from(negative);
        let slope = g.dot(&d);
        let newton =
            used > 0 && slope.is_finite() && slope < 0.0 && d.iter().all(|x| x.is_finite());
        if newton {
            ctx.set_direction(&d);
        }
        match ctx.backtrack(F::one(), &self.search) {
            Err(_) if newton => {
                // The subsample's curvature misled the search: try steepest descent.
                ctx.set_direction(&-&g);
                ctx.backtrack(F::one(), &self.search)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};

    /// CG with a tight forcing term solves a positive definite system; it stops at the first
    /// direction of negative curvature.
    #[test]
    fn conjugate_gradients_solve_and_detect_negative_curvature() {
        let a: Array2<f64> = array![[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]];
        let g = array![1.0, -2.0, 0.5];
        let rule = NewtonCg::new().forcing(1e-12).max_cg_iterations(10);
        for m in [None, Some(array![4.0, 3.0, 2.0])] {
            let (d, used, negative) = rule.solve(&g, m.as_ref(), |p, out| {
                out.assign(&a.dot(p));
                true
            });
            assert!(!negative && used <= 4, "{used}");
            let residual = a.dot(&d) + &g;
            assert!(residual.dot(&residual).sqrt() < 1e-12, "{residual}");
        }
        // The diagonal of a diagonal matrix is its exact preconditioner: one product.
        let diag = array![5.0, 0.1, 2.0];
        let (d, used, _) = rule.solve(&g, Some(&diag), |p, out| {
            out.assign(&(&diag * p));
            true
        });
        assert_eq!(used, 1);
        assert!((&(&diag * &d) + &g).iter().all(|r| r.abs() < 1e-14));
        let indefinite: Array2<f64> = array![[1.0, 0.0], [0.0, -1.0]];
        let (d, used, negative) = rule.solve(&array![0.0, 1.0], None, |p, out| {
            out.assign(&indefinite.dot(p));
            true
        });
        assert!(negative && used == 1);
        assert_eq!(d, array![0.0, -1.0], "steepest descent at once");
        // Out of budget before the first product: steepest descent.
        let (d, used, _) = rule.solve(&g, None, |_, _| false);
        assert_eq!((used, d), (0, -&g));
    }
}
