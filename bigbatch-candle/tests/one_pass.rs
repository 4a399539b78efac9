//! Per-sample gradient norms from one backward pass: equal to one backward pass per sample for
//! dense and convolutional layers; the batch statistics equal those of per-sample gradients
//! pushed one by one, and agree with the micro-batch estimate; a run reaches a known optimum;
//! networks the tape does not cover are refused by name.

use bigbatch::{
    BatchObjective, BigBatchSgd, Error as BbError, GradStats, Groups, MicroBatched, Objective,
    StopReason,
};
use bigbatch_candle::{CandleModel, Error, OnePass, Tape, init, per_sample};
use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder, VarMap, loss};
use ndarray::Array1;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

type Res<T> = Result<T, Box<dyn std::error::Error>>;
/// A network: inputs to logits.
type NetFn = Box<dyn Fn(&Tensor) -> candle_core::Result<Tensor>>;

/// `n` seeded values uniform in [−1, 1).
fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// `n` seeded labels in 0..k.
fn classes(n: usize, k: u32, seed: u64) -> Vec<u32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(0..k)).collect()
}

/// The architectures of the tests, built on a tape.
enum Arch {
    /// dense 6 → 5 (tanh) → 3 without bias.
    Dense,
    /// dense 4 → 3 on inputs with 5 positions `(n, 5, 4)`, averaged over the positions, → 3.
    Positions,
    /// conv 2 → 3, 3×3, stride 2, padding 1 (ReLU) → conv 3 → 4, 2×2, dilation 2, no bias →
    /// dense → 3, on `(n, 2, 9, 9)` images.
    Conv,
}

struct Fixture {
    varmap: VarMap,
    tape: Tape,
    x: Tensor,
    y: Tensor,
    net: NetFn,
}

const N: usize = 40;

fn fixture(arch: Arch) -> Res<Fixture> {
    let dev = Device::Cpu;
    let (varmap, tape) = (VarMap::new(), Tape::new());
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let (x, net): (Tensor, NetFn) = match arch {
        Arch::Dense => {
            let l1 = per_sample::linear(6, 5, vb.pp("l1"), &tape)?;
            let l2 = per_sample::linear_no_bias(5, 3, vb.pp("l2"), &tape)?;
            let x = Tensor::from_vec(uniform(N * 6, 1), (N, 6), &dev)?;
            (x, Box::new(move |x| l2.forward(&l1.forward(x)?.tanh()?)))
        }
        Arch::Positions => {
            let l1 = per_sample::linear(4, 3, vb.pp("l1"), &tape)?;
            let l2 = per_sample::linear(3, 3, vb.pp("l2"), &tape)?;
            let x = Tensor::from_vec(uniform(N * 20, 2), (N, 5, 4), &dev)?;
            (
                x,
                Box::new(move |x| l2.forward(&l1.forward(x)?.tanh()?.mean(1)?)),
            )
        }
        Arch::Conv => {
            let c1 = Conv2dConfig {
                stride: 2,
                padding: 1,
                ..Default::default()
            };
            let c2 = Conv2dConfig {
                dilation: 2,
                ..Default::default()
            };
            let k1 = per_sample::conv2d(2, 3, 3, c1, vb.pp("c1"), &tape)?; // 9 → 5
            let k2 = per_sample::conv2d_no_bias(3, 4, 2, c2, vb.pp("c2"), &tape)?; // 5 → 3
            let l = per_sample::linear(36, 3, vb.pp("fc"), &tape)?;
            let x = Tensor::from_vec(uniform(N * 162, 3), (N, 2, 9, 9), &dev)?;
            (
                x,
                Box::new(move |x| {
                    let h = k2.forward(&k1.forward(x)?.relu()?)?.tanh()?;
                    l.forward(&h.flatten_from(1)?)
                }),
            )
        }
    };
    init::initialize(&varmap, 5)?;
    let y = Tensor::from_vec(classes(N, 3, 4), N, &dev)?;
    Ok(Fixture {
        varmap,
        tape,
        x,
        y,
        net,
    })
}

impl Fixture {
    fn model(&self) -> Res<CandleModel<impl Fn(&Tensor) -> candle_core::Result<Tensor> + '_>> {
        Ok(CandleModel::from_varmap(
            &self.varmap,
            N,
            |idx: &Tensor| {
                let logits = (self.net)(&self.x.index_select(idx, 0)?)?;
                loss::cross_entropy(&logits, &self.y.index_select(idx, 0)?)
            },
        )?)
    }
}

/// Each sample's gradient from its own backward pass.
fn per_sample_gradients<M: BatchObjective<f32>>(
    model: &M,
    w: &Array1<f32>,
    idx: &[usize],
) -> Vec<Array1<f32>> {
    idx.iter()
        .map(|&i| {
            let mut g = Array1::zeros(model.dim());
            model.loss_and_gradient(w, &[i], &mut g);
            g
        })
        .collect()
}

fn norms_match_one_backward_pass_per_sample(arch: Arch) -> Res<()> {
    let f = fixture(arch)?;
    let model = f.model()?;
    let w = model.parameters()?;
    let slow: Vec<f64> = per_sample_gradients(&model, &w, &(0..N).collect::<Vec<_>>())
        .iter()
        .map(|g| g.iter().map(|&x| f64::from(x) * f64::from(x)).sum())
        .collect();
    let one_pass = model.one_pass(&f.tape)?;
    let idx: Vec<usize> = (0..N).collect();
    let fast = one_pass.per_sample_sq_norms(&w, &idx)?;
    let mut worst = 0.0f64;
    for (a, b) in fast.iter().zip(&slow) {
        worst = worst.max((a - b).abs() / b.max(1e-30));
    }
    assert!(worst < 1e-5, "worst relative error {worst:.2e}");
    // A subset, in another order, gives the same samples' norms.
    let sub = [7usize, 3, 31, 3];
    let part = one_pass.per_sample_sq_norms(&w, &sub)?;
    for (k, &i) in sub.iter().enumerate() {
        assert!((part[k] - slow[i]).abs() <= 1e-5 * slow[i], "sample {i}");
    }
    Ok(())
}

#[test]
fn dense_norms_match_one_backward_pass_per_sample() -> Res<()> {
    norms_match_one_backward_pass_per_sample(Arch::Dense)
}

#[test]
fn dense_norms_over_positions_match_one_backward_pass_per_sample() -> Res<()> {
    norms_match_one_backward_pass_per_sample(Arch::Positions)
}

#[test]
fn convolution_norms_match_one_backward_pass_per_sample() -> Res<()> {
    norms_match_one_backward_pass_per_sample(Arch::Conv)
}

/// The statistics a chunked one-pass evaluation builds equal those of the per-sample gradients
/// pushed one by one (the slow reference), and a grown batch (its new samples added) equals the
/// whole batch evaluated at once.
#[test]
fn batch_statistics_equal_per_sample_gradients_pushed_one_by_one() -> Res<()> {
    let f = fixture(Arch::Conv)?;
    let model = f.model()?;
    let w = model.parameters()?;
    let idx: Vec<usize> = (0..N).rev().collect();
    let mut slow = GradStats::<f32>::new(model.dim());
    for g in per_sample_gradients(&model, &w, &idx) {
        slow.push(&g);
    }
    let one_pass = model.one_pass(&f.tape)?.chunk_size(16)?;
    let mut fast = GradStats::<f32>::new(one_pass.dim());
    one_pass.batch_gradient(&w, &idx[..25], &mut fast);
    one_pass.batch_gradient(&w, &idx[25..], &mut fast);
    assert_eq!((fast.count(), fast.groups()), (N, N));
    let diff = (fast.mean() - slow.mean()).mapv(|x| x * x).sum().sqrt();
    assert!(
        diff < 1e-5 * slow.grad_norm_sq().sqrt(),
        "mean off by {diff:e}"
    );
    let rel = (fast.variance() - slow.variance()).abs() / slow.variance();
    assert!(
        rel < 1e-4,
        "variance {} vs {}",
        fast.variance(),
        slow.variance()
    );
    let loss = one_pass.batch_loss(&w, &idx);
    assert!((fast.loss().unwrap() - loss).abs() < 1e-6 * loss.abs());
    Ok(())
}

/// Over 100 seeded batches of 32 at one point, the mean of the micro-batch estimates (8 groups,
/// 7 degrees of freedom each, unbiased) agrees with the mean of the one-pass estimates (31
/// each) within 20 %, about 3 standard errors of the micro-batch mean; the one-pass estimates
/// spread less.
#[test]
fn variance_agrees_with_the_micro_batch_estimate_and_spreads_less() -> Res<()> {
    let f = fixture(Arch::Dense)?;
    let w = f.model()?.parameters()?;
    let one_pass = f.model()?.one_pass(&f.tape)?;
    let micro = MicroBatched::new(f.model()?, Groups::Count(8))?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let batch: Vec<usize> = (0..32).map(|_| rng.random_range(0..N)).collect();
        let mut s1 = GradStats::<f32>::new(one_pass.dim());
        one_pass.batch_gradient(&w, &batch, &mut s1);
        let mut s2 = GradStats::<f32>::new(one_pass.dim());
        micro.batch_gradient(&w, &batch, &mut s2);
        let diff = (s1.mean() - s2.mean()).mapv(|x| x * x).sum().sqrt();
        assert!(diff < 1e-5 * s1.grad_norm_sq().sqrt().max(1e-3));
        a.push(s1.variance());
        b.push(s2.variance());
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let sd = |v: &[f64]| {
        let m = mean(v);
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    };
    let (ma, mb) = (mean(&a), mean(&b));
    assert!(
        (ma - mb).abs() < 0.2 * ma,
        "one pass {ma:.4e}, micro-batches {mb:.4e}"
    );
    assert!(sd(&a) < sd(&b), "spread {:.3e} vs {:.3e}", sd(&a), sd(&b));
    Ok(())
}

/// Least squares on a linear layer, `y = x·(1, −2, 0.5) + 0.25` exactly: the run reaches the
/// known weights and stops on its gradient tolerance.
#[test]
fn a_linear_layer_reaches_the_known_optimum() -> Res<()> {
    let dev = Device::Cpu;
    let n = 600;
    let xs = uniform(3 * n, 11);
    let ys: Vec<f32> = xs
        .chunks(3)
        .map(|p| p[0] - 2.0 * p[1] + 0.5 * p[2] + 0.25)
        .collect();
    let x = Tensor::from_vec(xs, (n, 3), &dev)?;
    let y = Tensor::from_vec(ys, (n, 1), &dev)?;
    let (varmap, tape) = (VarMap::new(), Tape::new());
    let layer = per_sample::linear(
        3,
        1,
        VarBuilder::from_varmap(&varmap, DType::F32, &dev).pp("fit"),
        &tape,
    )?;
    init::initialize(&varmap, 1)?;
    let model = CandleModel::from_varmap(&varmap, n, |idx: &Tensor| {
        let r = layer.forward(&x.index_select(idx, 0)?)?;
        r.sub(&y.index_select(idx, 0)?)?.sqr()?.mean_all()
    })?
    .one_pass(&tape)?;
    let w0 = model.model().parameters()?;
    let report = BigBatchSgd::builder().build()?.minimize(&model, w0)?;
    assert_eq!(report.stop, StopReason::GradientTolerance, "{report}");
    // Variables in name order: fit.bias, then fit.weight.
    let expect = [0.25f32, 1.0, -2.0, 0.5];
    for (k, e) in expect.iter().enumerate() {
        assert!(
            (report.w[k] - e).abs() < 1e-3,
            "{k}: {} vs {e}",
            report.w[k]
        );
    }
    Ok(())
}

#[test]
fn a_layer_the_tape_does_not_see_is_refused_by_name() -> Res<()> {
    let dev = Device::Cpu;
    let (varmap, tape) = (VarMap::new(), Tape::new());
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let seen = per_sample::linear(4, 3, vb.pp("seen"), &tape)?;
    let hidden = candle_nn::linear(3, 2, vb.pp("hidden"))?;
    let x = Tensor::from_vec(uniform(40, 1), (10, 4), &dev)?;
    let model = CandleModel::from_varmap(&varmap, 10, |idx: &Tensor| {
        let h = seen.forward(&x.index_select(idx, 0)?)?;
        hidden.forward(&h)?.sqr()?.mean_all()
    })?;
    let err = model.one_pass(&tape).unwrap_err();
    assert!(matches!(err, Error::Model(_)), "{err}");
    assert!(err.to_string().contains("hidden."), "{err}");
    Ok(())
}

#[test]
fn a_layer_used_twice_is_refused() -> Res<()> {
    let dev = Device::Cpu;
    let (varmap, tape) = (VarMap::new(), Tape::new());
    let shared = per_sample::linear(
        3,
        3,
        VarBuilder::from_varmap(&varmap, DType::F32, &dev),
        &tape,
    )?;
    let x = Tensor::from_vec(uniform(30, 1), (10, 3), &dev)?;
    let model = CandleModel::from_varmap(&varmap, 10, |idx: &Tensor| {
        let h = shared.forward(&x.index_select(idx, 0)?)?;
        shared.forward(&h)?.sqr()?.mean_all()
    })?;
    let err = model.one_pass(&tape).unwrap_err();
    assert!(err.to_string().contains("used twice"), "{err}");
    Ok(())
}

/// A closure that starts failing mid-run: the run ends with the non-finite error and the last
/// good iterate, and the model keeps Candle's message.
#[test]
fn a_failing_pass_ends_the_run_with_a_typed_error() -> Res<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let f = fixture(Arch::Dense)?;
    let calls = AtomicUsize::new(0);
    let model = CandleModel::from_varmap(&f.varmap, N, |idx: &Tensor| {
        if calls.fetch_add(1, Ordering::Relaxed) >= 6 {
            return Err(candle_core::Error::Msg("the data went away".into()));
        }
        let logits = (f.net)(&f.x.index_select(idx, 0)?)?;
        loss::cross_entropy(&logits, &f.y.index_select(idx, 0)?)
    })?
    .one_pass(&f.tape)?;
    let w0 = model.model().parameters()?;
    let err = BigBatchSgd::network()
        .initial_batch(8)
        .build()?
        .minimize(&model, w0.clone())
        .unwrap_err();
    match err {
        BbError::NonFinite { last_iterate, .. } => {
            assert_eq!(last_iterate.len(), w0.len());
            assert!(last_iterate.iter().all(|x| x.is_finite()));
        }
        other => panic!("{other}"),
    }
    assert!(
        model
            .model()
            .last_error()
            .unwrap()
            .contains("the data went away")
    );
    assert!(!f.tape.is_recording());
    Ok(())
}

/// The observer's helper evaluates at the iterate, whatever point was evaluated last.
#[test]
fn at_evaluates_the_network_at_the_given_point() -> Res<()> {
    let f = fixture(Arch::Dense)?;
    let model: OnePass<_> = f.model()?.one_pass(&f.tape)?;
    let w = model.model().parameters()?;
    let logits = |_: ()| -> candle_core::Result<Vec<u32>> {
        (f.net)(&f.x)?.argmax(D::Minus1)?.to_vec1::<u32>()
    };
    let before = logits(())?;
    let elsewhere = w.mapv(|x| x + 0.5);
    model.batch_loss(&elsewhere, &[0, 1, 2]);
    let again = model.model().at(&w, || logits(()))??;
    assert_eq!(before, again);
    Ok(())
}
