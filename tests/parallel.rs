//! Multi-core evaluation (feature `rayon`): a run gives the same report, bit for bit, with 1,
//! 2 or 16 threads, for every bundled model in f32 and f64; chunked statistics agree with one
//! sequential pass.
#![cfg(feature = "rayon")]
mod common;

use bigbatch::data::Dataset;
use bigbatch::models::{Activation, Huber, LeastSquares, Logistic, Mlp, Softmax};
use bigbatch::*;
use common::*;
use ndarray::{Array1, Array2};
use rand::RngExt;

/// `n × d` features in [−1, 1), with targets: class ids in 0..3 from the sign pattern of
/// the first two features, so that every model has labels it accepts.
fn data<F: Float>(seed: u64, n: usize, d: usize, sparse: bool) -> (Dataset<F>, Dataset<F>) {
    let mut r = rng(seed);
    let x = Array2::from_shape_fn((n, d), |_| {
        let v: f64 = r.random::<f64>() * 2.0 - 1.0;
        if sparse && v.abs() < 0.6 { 0.0 } else { v }
    });
    let class = x
        .rows()
        .into_iter()
        .map(|row| (usize::from(row[0] > 0.0) + usize::from(row[1] > 0.3)) as f64)
        .collect::<Array1<f64>>();
    let sign = class.mapv(|c| if c > 0.5 { 1.0 } else { -1.0 });
    let cast = |a: &Array2<f64>| a.mapv(F::from_f64);
    let mut reg = Dataset::from_dense(cast(&x), sign.mapv(F::from_f64)).unwrap();
    let mut cls = Dataset::from_dense(cast(&x), class.mapv(F::from_f64)).unwrap();
    if sparse {
        reg = reg.into_sparse();
        cls = cls.into_sparse();
    }
    (reg, cls)
}

fn same_with_any_threads<F: Float, O: Objective<F> + Sync>(name: &str, model: &O, w0: Array1<F>) {
    let run = |threads| {
        parallel::with_threads(threads, || {
            assert_eq!(parallel::current_threads(), threads);
            BigBatchSgd::builder()
                .seed(5)
                .max_epochs(4.0)
                .tolerance(0.0)
                .build()
                .unwrap()
                .minimize(model, w0.clone())
                .unwrap()
        })
        .unwrap()
    };
    let one = run(1);
    assert!(one.iterations > 3, "{name}: {one}");
    assert!(
        one.batch_size > parallel::CHUNK,
        "{name}: batches span several chunks ({one})"
    );
    for threads in [2, 16] {
        let many = run(threads);
        assert_eq!(bits(&many), bits(&one), "{name}: {threads} threads");
    }
}

fn every_model<F: Float>() {
    for sparse in [false, true] {
        let (reg, cls) = data::<F>(3, 2000, 12, sparse);
        let tag = |m: &str| {
            format!(
                "{m} {} {}",
                if sparse { "sparse" } else { "dense" },
                std::any::type_name::<F>()
            )
        };
        let d = reg.n_features();
        same_with_any_threads(
            &tag("logistic"),
            &Logistic::new(reg.clone(), 1e-3).unwrap(),
            Array1::zeros(d),
        );
        same_with_any_threads(
            &tag("least squares"),
            &LeastSquares::new(reg.clone(), 1e-3).unwrap(),
            Array1::zeros(d),
        );
        same_with_any_threads(
            &tag("huber"),
            &Huber::new(reg, 0.5, 1e-3).unwrap(),
            Array1::zeros(d),
        );
        let softmax = Softmax::new(cls.clone(), 3, 1e-3).unwrap();
        same_with_any_threads(&tag("softmax"), &softmax, Array1::zeros(softmax.dim()));
        let mlp = Mlp::new(cls, 3, &[8], Activation::Tanh, 1e-4).unwrap();
        same_with_any_threads(&tag("mlp"), &mlp, mlp.initial_weights(1));
    }
}

#[test]
fn a_run_is_bit_identical_with_1_2_or_16_threads_f64() {
    every_model::<f64>();
}

#[test]
fn a_run_is_bit_identical_with_1_2_or_16_threads_f32() {
    every_model::<f32>();
}

/// Chunked, tree-merged statistics of a large batch (many chunks, a ragged last one) against
/// one sequential Welford pass over the per-sample gradients, and the batch loss against a
/// sequential f64 sum.
fn chunked_agrees_with_one_pass<F: Float>(tol: f64) {
    let (reg, _) = data::<F>(4, 3000, 9, false);
    let model = Logistic::new(reg, 1e-2).unwrap();
    let w = Array1::from_shape_fn(9, |j| F::from_f64(0.3 - 0.1 * j as f64));
    let batch: Vec<usize> = (0..2777).map(|k| (k * 13) % 3000).collect();
    let mut fast = GradStats::new(9);
    model.batch_gradient(&w, &batch, &mut fast);
    let mut slow = GradStats::new(9);
    let mut g = Array1::zeros(9);
    let mut loss = 0.0;
    for &i in &batch {
        let l = model.sample_loss_gradient(&w, i, &mut g);
        slow.push(&g);
        loss += l.as_f64();
    }
    assert_eq!(fast.count(), slow.count());
    let scale = slow
        .mean()
        .iter()
        .map(|x| x.as_f64().abs())
        .fold(1e-3, f64::max);
    for (a, b) in fast.mean().iter().zip(slow.mean()) {
        assert!((a.as_f64() - b.as_f64()).abs() <= tol * scale, "{a} vs {b}");
    }
    let (vf, vs) = (fast.variance().as_f64(), slow.variance().as_f64());
    assert!((vf - vs).abs() <= tol * vs, "variance {vf} vs {vs}");
    let mean_loss = loss / batch.len() as f64;
    let fast_loss = model.batch_loss(&w, &batch).as_f64();
    assert!(
        (fast_loss - mean_loss).abs() <= tol * mean_loss,
        "{fast_loss} vs {mean_loss}"
    );
    assert!((fast.loss().unwrap().as_f64() - mean_loss).abs() <= tol * mean_loss);
}

#[test]
fn chunked_statistics_agree_with_one_sequential_pass() {
    chunked_agrees_with_one_pass::<f64>(1e-11);
    chunked_agrees_with_one_pass::<f32>(1e-4);
}

#[test]
fn zero_threads_is_refused() {
    assert!(matches!(
        parallel::with_threads(0, || ()),
        Err(Error::InvalidParameter {
            name: "threads",
            ..
        })
    ));
}
