//! Every network of the comparison (`examples/networks`) passes the gradient check: in `f64`
//! to `F64_TOLERANCE`, and through `CandleModel` in `f32` to `F32_TOLERANCE`; with Candle's
//! own max pooling the convolutional network fails it.

#[allow(dead_code)]
#[path = "../examples/networks/net.rs"]
mod net;

use std::collections::BTreeMap;

use bigbatch_candle::CandleModel;
use bigbatch_candle::check::{F32_TOLERANCE, F64_TOLERANCE, GradCheck, check_gradients};
use bigbatch_candle::init::initialize;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap, loss};
use net::Net;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

type Res = Result<(), Box<dyn std::error::Error>>;

/// `n` images like Fashion-MNIST's: a zero background (whole pooling windows tie there after
/// the first ReLU) around a random object, and random labels.
fn images(n: usize, seed: u64, dev: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut x = vec![0f32; n * 784];
    for image in x.chunks_mut(784) {
        for (p, v) in image.iter_mut().enumerate() {
            let (i, j) = (p / 28, p % 28);
            if (6..22).contains(&i) && (8..20).contains(&j) {
                *v = rng.random::<f32>();
            }
        }
    }
    let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..10u32)).collect();
    Ok((
        Tensor::from_vec(x, (n, 784), dev)?,
        Tensor::from_vec(y, n, dev)?,
    ))
}

fn vars_by_name(varmap: &VarMap) -> Vec<Var> {
    let all = varmap.data().lock().expect("variables").clone();
    let sorted: BTreeMap<String, Var> = all.into_iter().collect();
    sorted.into_values().collect()
}

fn network(cnn: bool, dtype: DType, dev: &Device) -> candle_core::Result<(VarMap, Net)> {
    let varmap = VarMap::new();
    let net = Net::new(VarBuilder::from_varmap(&varmap, dtype, dev), cnn)?;
    initialize(&varmap, 7).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    Ok((varmap, net))
}

#[test]
fn every_network_of_the_comparison_passes_the_check_in_f64() -> Res {
    let dev = Device::Cpu;
    let (x, y) = images(12, 1, &dev)?;
    let x = x.to_dtype(DType::F64)?;
    // `mlp` and `mnist` share the perceptron.
    for cnn in [true, false] {
        let (varmap, net) = network(cnn, DType::F64, &dev)?;
        let loss = || loss::cross_entropy(&net.forward(&x)?, &y);
        let report = check_gradients(&vars_by_name(&varmap), loss, &GradCheck::default())?;
        eprintln!(
            "f64, cnn {cnn}: worst relative error {:.2e}",
            report.worst()
        );
        assert!(
            report.worst() < F64_TOLERANCE,
            "cnn {cnn}: worst {:.2e}\n{report}",
            report.worst()
        );
    }
    Ok(())
}

#[test]
fn the_convolutional_network_fails_the_check_with_candles_pooling() -> Res {
    let dev = Device::Cpu;
    let (x, y) = images(12, 1, &dev)?;
    let x = x.to_dtype(DType::F64)?;
    let (varmap, net) = network(true, DType::F64, &dev)?;
    let loss = || loss::cross_entropy(&net.forward_pooling_with(&x, |t| t.max_pool2d(2))?, &y);
    let report = check_gradients(&vars_by_name(&varmap), loss, &GradCheck::default())?;
    // The convolutions sit behind the pooling, the dense layers do not.
    eprintln!(
        "f64, cnn with Candle's pooling: worst relative error {:.2e}",
        report.worst()
    );
    assert!(report.worst() > 0.1, "{report}");
    Ok(())
}

#[test]
fn every_network_passes_the_f32_check_through_the_model() -> Res {
    let dev = Device::Cpu;
    let (x, y) = images(40, 2, &dev)?;
    for cnn in [true, false] {
        let (varmap, net) = network(cnn, DType::F32, &dev)?;
        let model = CandleModel::from_varmap(&varmap, 40, |idx: &Tensor| {
            loss::cross_entropy(
                &net.forward(&x.index_select(idx, 0)?)?,
                &y.index_select(idx, 0)?,
            )
        })?;
        let w = model.parameters()?;
        let batch: Vec<usize> = (0..40).step_by(3).collect();
        let report = model.check_gradients(&w, &batch, &GradCheck::default().seed(3))?;
        eprintln!(
            "f32, cnn {cnn}: worst relative error {:.2e}",
            report.worst()
        );
        assert!(
            report.worst() < F32_TOLERANCE,
            "cnn {cnn}: worst {:.2e}\n{report}",
            report.worst()
        );
        assert_eq!(
            model.parameters()?,
            w,
            "the check leaves the variables at w"
        );
    }
    Ok(())
}
