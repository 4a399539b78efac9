//! Variance from the mean gradients of groups of samples (`GradStats::push_group`): equal to
//! the per-sample estimate for groups of one, unbiased for any group sizes, and a big-batch
//! test that passes as often.
use crate::common::*;
use bigbatch::models::LeastSquares;
use bigbatch::*;
use ndarray::{Array1, Array2};
use rand::seq::SliceRandom;

/// Least squares on generated data, its per-sample gradients at `w`, as rows: `w` at
/// `offset` from the coefficients that generated the data (closer means more noise against
/// the signal).
fn per_sample<F: Float>(
    seed: u64,
    n: usize,
    d: usize,
    offset: f64,
) -> (LeastSquares<F>, Array2<f64>) {
    let (x, y, truth) = linear_data(seed, n, d, 1.0, 0.5);
    let data =
        bigbatch::data::Dataset::from_dense(x.mapv(F::from_f64), y.mapv(F::from_f64)).unwrap();
    let model = LeastSquares::new(data, 1e-3).unwrap();
    let w: Array1<F> = (0..d)
        .map(|j| F::from_f64(truth[j] + offset * (j as f64 - 2.0)))
        .collect();
    let mut grads = Array2::zeros((n, d));
    let mut g = Array1::zeros(d);
    for i in 0..n {
        model.sample_gradient(&w, i, &mut g);
        grads.row_mut(i).assign(&g.mapv(F::as_f64));
    }
    (model, grads)
}

/// The statistics of `batch` from groups of the given sizes (in batch order).
fn grouped<F: Float>(grads: &Array2<f64>, batch: &[usize], sizes: &[usize]) -> GradStats<F> {
    let mut s = GradStats::new(grads.ncols());
    let mut at = 0;
    for &b in sizes {
        let rows = &batch[at..at + b];
        let mean = rows
            .iter()
            .fold(Array1::zeros(grads.ncols()), |acc, &i| acc + grads.row(i))
            / b as f64;
        s.push_group(b, &mean, None);
        at += b;
    }
    assert_eq!(at, batch.len());
    s
}

fn per_sample_stats<F: Float>(grads: &Array2<f64>, batch: &[usize]) -> GradStats<F> {
    let mut s = GradStats::new(grads.ncols());
    for &i in batch {
        s.push(&grads.row(i).mapv(F::from_f64));
    }
    s
}

fn groups_of_one_give_the_per_sample_estimate<F: Float>() {
    let (_, grads) = per_sample::<F>(1, 300, 7, 0.3);
    let batch: Vec<usize> = (0..300).step_by(3).collect();
    let ones = vec![1; batch.len()];
    let a = grouped::<F>(&grads, &batch, &ones);
    let b = per_sample_stats::<F>(&grads, &batch);
    assert_eq!((a.count(), a.groups()), (b.count(), b.groups()));
    let rel = (a.variance() - b.variance()).abs() / b.variance();
    assert!(rel < 1e-12, "{rel:e}");
    let diff = (a.mean() - b.mean()).mapv(f64::abs).sum();
    assert!(diff < 1e-12 * b.mean().mapv(f64::abs).sum());
}

#[test]
fn groups_of_one_give_the_per_sample_estimate_f64() {
    groups_of_one_give_the_per_sample_estimate::<f64>();
}

#[test]
fn groups_of_one_give_the_per_sample_estimate_f32() {
    groups_of_one_give_the_per_sample_estimate::<f32>();
}

/// Over many random batches split into groups of unequal sizes, the grouped estimate averages
/// to the per-sample one. The per-draw ratio grouped/per-sample has a spread set by the 5
/// degrees of freedom of 6 groups; its mean over 4000 draws is within 3 standard errors of 1.
#[test]
fn the_grouped_estimate_is_unbiased_for_unequal_groups() {
    let (_, grads) = per_sample::<f64>(2, 2000, 6, 0.3);
    let mut r = rng(3);
    let mut all: Vec<usize> = (0..2000).collect();
    let sizes = [1, 3, 7, 20, 40, 49]; // 120 samples in 6 groups
    let draws = 4000;
    let ratios: Vec<f64> = (0..draws)
        .map(|_| {
            all.shuffle(&mut r);
            let batch = &all[..120];
            let g = grouped::<f64>(&grads, batch, &sizes).variance();
            let p = per_sample_stats::<f64>(&grads, batch).variance();
            g / p
        })
        .collect();
    let mean = ratios.iter().sum::<f64>() / draws as f64;
    let sd = (ratios.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (draws - 1) as f64).sqrt();
    let se = sd / (draws as f64).sqrt();
    eprintln!("grouped / per-sample variance: mean {mean:.4}, sd {sd:.3}, se {se:.4}");
    assert!((mean - 1.0).abs() <= 3.0 * se, "mean ratio {mean} ± {se}");
    // And the estimate really comes from the groups: it varies from draw to draw far more than
    // the per-sample one would.
    assert!(sd > 0.2, "{sd}");
}

/// The big-batch test decides as often with groups of 8 as with per-sample gradients: over
/// 3000 draws of batches near the size where it starts to pass, the two pass rates differ by
/// less than 3 standard errors of their difference.
#[test]
fn the_test_passes_as_often_with_groups() {
    let (_, grads) = per_sample::<f64>(4, 3000, 5, 0.05);
    // θ = ½: at θ = 1 the test passes by chance even on pure noise (see StopReason).
    let mut test = BatchTest::default();
    test.theta = 0.5;
    let mut r = rng(5);
    let mut all: Vec<usize> = (0..3000).collect();
    // Find a batch size where the per-sample test passes about half the time.
    let rate =
        |k: usize, groups: bool, r: &mut rand::rngs::Xoshiro256PlusPlus, all: &mut Vec<usize>| {
            let draws = 3000;
            let passed = (0..draws)
                .filter(|_| {
                    all.shuffle(r);
                    let batch = &all[..k];
                    let s: GradStats<f64> = if groups {
                        grouped(&grads, batch, &[k / 8; 8])
                    } else {
                        per_sample_stats(&grads, batch)
                    };
                    test.passes(&s, 3000)
                })
                .count();
            passed as f64 / draws as f64
        };
    let k = (1..=60)
        .map(|m| 16 * m)
        .find(|&k| rate(k, false, &mut r, &mut all) >= 0.3)
        .expect("a batch size that passes");
    assert!(k > 16, "the test should not pass at once");
    let p = rate(k, false, &mut r, &mut all);
    let q = rate(k, true, &mut r, &mut all);
    let se = (p * (1.0 - p) / 3000.0 + q * (1.0 - q) / 3000.0).sqrt();
    eprintln!(
        "batch {k}: per-sample pass rate {p:.3}, groups of {} {q:.3} (se {se:.3})",
        k / 8
    );
    assert!(p < 0.8, "the rates compared should be far from 1: {p}");
    assert!((p - q).abs() <= 3.0 * se, "{p} against {q}");
}

/// A bundled model seen only through batch means, as a framework would show it.
pub(crate) struct MeansOnly<O>(pub(crate) O);

impl<F: Float, O: Objective<F>> BatchObjective<F> for MeansOnly<O> {
    fn n_samples(&self) -> usize {
        self.0.n_samples()
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn loss(&self, w: &ndarray::ArrayRef1<F>, indices: &[usize]) -> F {
        self.0.batch_loss(w, indices)
    }
    fn loss_and_gradient(
        &self,
        w: &ndarray::ArrayRef1<F>,
        indices: &[usize],
        grad: &mut ndarray::ArrayRef1<F>,
    ) -> F {
        let mut s = GradStats::new(self.0.dim());
        self.0.batch_gradient(w, indices, &mut s);
        grad.assign(&s.gradient());
        s.loss().unwrap()
    }
}

fn a_batch_only_model_reaches_the_optimum<F: Float>() {
    let (x, y, _) = linear_data(6, 2000, 5, 1.0, 0.3);
    let lambda = 1e-3;
    let xtx = x.t().dot(&x) / 2000.0 + Array2::<f64>::eye(5) * lambda;
    let optimum = cholesky_solve(&xtx, &(x.t().dot(&y) / 2000.0));
    let data =
        bigbatch::data::Dataset::from_dense(x.mapv(F::from_f64), y.mapv(F::from_f64)).unwrap();
    let model = LeastSquares::new(data, lambda).unwrap();
    for groups in [Groups::Count(2), Groups::Count(16), Groups::Size(3)] {
        let objective = MicroBatched::new(MeansOnly(&model), groups).unwrap();
        let report = BigBatchSgd::builder()
            .seed(2)
            .tolerance(if F::epsilon().as_f64() > 1e-10 {
                1e-9
            } else {
                1e-16
            })
            .build()
            .unwrap()
            .minimize(&objective, Array1::zeros(5))
            .unwrap();
        let err = max_abs_diff(&report.w, &optimum);
        let tol = if F::epsilon().as_f64() > 1e-10 {
            1e-3
        } else {
            1e-7
        };
        assert!(err < tol, "{groups:?}: {err:e}, {report}");
    }
    assert!(MicroBatched::new(MeansOnly(&model), Groups::Count(1)).is_err());
    assert!(MicroBatched::new(MeansOnly(&model), Groups::Size(0)).is_err());
}

#[test]
fn a_batch_only_model_reaches_the_optimum_f64() {
    a_batch_only_model_reaches_the_optimum::<f64>();
}

#[test]
fn a_batch_only_model_reaches_the_optimum_f32() {
    a_batch_only_model_reaches_the_optimum::<f32>();
}
