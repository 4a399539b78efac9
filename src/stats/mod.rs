//! Batch statistics: the mean gradient, the spread of the per-sample gradients around it, and
//! the mean loss, accumulated in O(dim) memory; and the big-batch test built on them.
//!
//! ```text
//! g_B = (1/n) Σ_{i∈B} ∇f_i(w)                       mean gradient
//! V_B = (1/(n−1)) Σ_{i∈B} ‖∇f_i(w) − g_B‖²          variance estimate (trace of the covariance)
//! ℓ_B = (1/n) Σ_{i∈B} f_i(w)                        mean loss
//! ```
//!
//! Samples are added one at a time with Welford's update ([`GradStats::push`]), and two
//! accumulators over disjoint samples combine exactly with Chan's formula
//! ([`GradStats::merge`]); neither stores a per-sample gradient. Fast model code that produces
//! `Σ∇f_i` and `Σ‖∇f_i‖²` directly can use [`GradStats::from_sums`].

mod grad_stats;
mod inner_product;
mod test;
#[cfg(test)]
mod tests;

pub use grad_stats::GradStats;
pub use inner_product::InnerProductTest;
pub use test::BatchTest;
pub(crate) use test::NoiseAverage;
