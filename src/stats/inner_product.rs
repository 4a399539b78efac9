//! The inner-product test and its orthogonality test (Bollapragada, Byrd & Nocedal 2018).

use super::{BatchTest, GradStats};
use crate::error::{Error, Result};
use crate::float::Float;

/// The inner-product test, in place of the norm test, with the orthogonality test beside it
/// (Bollapragada, Byrd & Nocedal 2018, "Adaptive sampling strategies for stochastic
/// optimization"):
///
/// ```text
/// inner product:  φ · Var_i(∇f_i·g_B) / n  ≤  θ² ‖g_B‖⁴
/// orthogonality:  φ · V⊥ / n  ≤  ν² ‖g_B‖²,   V⊥ = V_B − Var_i(∇f_i·g_B)/‖g_B‖²
/// ```
///
/// The first asks that the batch direction make an acute angle with the true gradient (the
/// batch may be smaller than the norm test asks where the noise is mostly along `g_B`); the
/// second, that the part of the noise orthogonal to `g_B` be bounded too, so that a direction
/// right in sign but wrong in length does not pass. θ is the [`BatchTest`]'s; ν is
/// `orthogonality` (the paper's tan 80° ≈ 5.84; `None` leaves it out).
///
/// # How the variance of the inner products is estimated, and what it costs
/// `Var_i(∇f_i·g_B)` needs each sample's gradient against the batch gradient, which is known
/// only once the batch is. The batch is evaluated in `groups` parts (16 by default) whose mean
/// gradients are kept, each of `dim` values; once the batch is complete the variance follows
/// from the groups' inner products with `g_B`:
///
/// ```text
/// Var ≈ Σ_k b_k (ḡ_k·g_B − ‖g_B‖²)² / (G − 1)     G groups of sizes b_k and means ḡ_k
/// ```
///
/// unbiased for any group sizes, as [`GradStats::push_group`]'s estimate of `V_B` is. So every
/// objective has it: per-sample, batch-only ([`MicroBatched`](crate::MicroBatched)) and sharded,
/// with no change to the model and no second pass: a batch costs the same evaluations as under
/// the norm test, in `G` calls instead of one, and `2G·dim` values of memory (a batch that grows
/// adds groups; beyond `2G` neighbouring groups merge). The estimate has `G − 1` degrees of
/// freedom, not `n − 1`: with 16 groups it is within about ±35 % (one standard deviation).
/// `V_B` is the per-sample variance of the batch, exact.
///
/// # What it tests, in expectation
/// As the biased norm test does ([`BatchTest`]), these tests compare the noise with estimates
/// that contain it. At a stationary point, where `g_B` is noise of size `tr Σ/n`, the inner
/// product test reads about `tr Σ·λ/n² ≤ θ² (tr Σ/n)²`, with `λ` the noise's variance along
/// `g_B` (`tr Σ/d` if it is isotropic), and passes for `θ² ≥ λ/tr Σ`, so `θ ≥ 1/√d`; the
/// orthogonality test passes there for `ν ≥ 1`. At the paper's values (θ = 0.9, ν = 5.84) the
/// batch therefore stops growing near the optimum, and the runs of `paper_convex` show how far
/// from it.
///
/// Fresh batches only ([`BatchMode::Fresh`](crate::BatchMode::Fresh), and streams): a
/// persistent batch carries its statistics across iterations whole, without groups.
///
/// # Example
/// ```
/// use bigbatch::{BigBatchSgd, InnerProductTest};
/// let opt = BigBatchSgd::paper()
///     .theta(0.9)
///     .inner_product(InnerProductTest::new().orthogonality(5.84))
///     .build()?;
/// assert_eq!(opt.batch_test().inner_product.unwrap().groups, 16);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InnerProductTest {
    /// ν > 0 of the orthogonality test, or `None` for the inner-product test alone. Default
    /// none.
    pub orthogonality: Option<f64>,
    /// The groups a batch is evaluated in (at least 2). Default 16.
    pub groups: usize,
}

impl Default for InnerProductTest {
    fn default() -> Self {
        InnerProductTest {
            orthogonality: None,
            groups: 16,
        }
    }
}

impl InnerProductTest {
    /// The inner-product test alone, in 16 groups.
    pub fn new() -> Self {
        InnerProductTest::default()
    }
    /// With the orthogonality test at `nu` (> 0).
    pub fn orthogonality(mut self, nu: f64) -> Self {
        self.orthogonality = Some(nu);
        self
    }
    /// Evaluates a batch in `groups` (≥ 2) groups.
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.groups < 2 {
            return Err(Error::invalid("groups", self.groups, "at least 2"));
        }
        if let Some(nu) = self.orthogonality {
            crate::error::check::positive("orthogonality", nu)?;
        }
        Ok(())
    }

    /// Whether a batch with statistics `stats` and inner-product variance `projected` (`None`
    /// for fewer than two groups) passes, under the norm test's θ and correction `phi`.
    pub(crate) fn passes<F: Float>(
        &self,
        test: &BatchTest,
        stats: &GradStats<F>,
        projected: Option<f64>,
        phi: f64,
    ) -> bool {
        let (Some(var_p), n) = (projected, stats.count() as f64) else {
            return false;
        };
        let g2 = stats.grad_norm_sq();
        if g2.is_nan() || g2 <= 0.0 {
            return false;
        }
        let inner = phi * var_p / n <= test.theta * test.theta * g2 * g2;
        let orthogonal = self.orthogonality.is_none_or(|nu| {
            let v_orth = (stats.variance() - var_p / g2).max(0.0);
            phi * v_orth / n <= nu * nu * g2
        });
        inner && orthogonal
    }

    /// The smallest batch at which the current estimates pass, `⌈φ·max(Var/(θ²‖g_B‖⁴),
    /// V⊥/(ν²‖g_B‖²))⌉` (without the correction's dependence on `n`).
    pub(crate) fn required_size<F: Float>(
        &self,
        test: &BatchTest,
        stats: &GradStats<F>,
        projected: Option<f64>,
    ) -> Option<f64> {
        let var_p = projected?;
        let g2 = stats.grad_norm_sq();
        let inner = var_p / (test.theta * test.theta * g2 * g2);
        let orthogonal = self.orthogonality.map_or(0.0, |nu| {
            (stats.variance() - var_p / g2).max(0.0) / (nu * nu * g2)
        });
        let k = inner.max(orthogonal);
        k.is_finite().then_some(k)
    }
}
