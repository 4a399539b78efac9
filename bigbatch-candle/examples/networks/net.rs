//! The networks of the comparison, shared with the adapter's gradient-check test
//! (`tests/networks.rs`): a small convolutional network and a one-hidden-layer perceptron.
//!
//! The convolutional network pools with [`bigbatch_candle::max_pool2d`], not Candle's
//! `Tensor::max_pool2d`, whose backward pass is wrong in Candle 0.11 (see
//! `bigbatch_candle::pool`).

use std::collections::BTreeMap;

use bigbatch_candle::max_pool2d;
use candle_core::{D, DType, Module, Tensor, Var};
use candle_nn::{Conv2dConfig, VarBuilder, VarMap, conv2d, linear, loss};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// A network of the comparison: two 5×5 convolutions (8 and 16 channels, ReLU, 2×2 max
/// pooling) then dense 256 → 64 → 10 with ReLU (`cnn`), or dense 784 → 100 → 10 with tanh.
pub struct Net {
    convs: Option<(candle_nn::Conv2d, candle_nn::Conv2d)>,
    fc1: candle_nn::Linear,
    fc2: candle_nn::Linear,
}

impl Net {
    pub fn new(vb: VarBuilder, cnn: bool) -> candle_core::Result<Self> {
        if !cnn {
            return Ok(Net {
                convs: None,
                fc1: linear(784, 100, vb.pp("fc1"))?,
                fc2: linear(100, 10, vb.pp("fc2"))?,
            });
        }
        let cfg = Conv2dConfig::default();
        Ok(Net {
            convs: Some((
                conv2d(1, 8, 5, cfg, vb.pp("c1"))?,
                conv2d(8, 16, 5, cfg, vb.pp("c2"))?,
            )),
            fc1: linear(256, 64, vb.pp("fc1"))?,
            fc2: linear(64, 10, vb.pp("fc2"))?,
        })
    }

    /// Logits of images `(n, 784)`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_pooling_with(x, |x| max_pool2d(x, 2))
    }

    /// Logits of images `(n, 784)`, pooling with `pool` (for the test that shows what a wrong
    /// pooling gradient does to the check).
    pub fn forward_pooling_with(
        &self,
        x: &Tensor,
        pool: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
    ) -> candle_core::Result<Tensor> {
        match &self.convs {
            None => self.fc2.forward(&self.fc1.forward(x)?.tanh()?),
            Some((c1, c2)) => {
                let x = x.reshape((x.dim(0)?, 1, 28, 28))?;
                let x = pool(&c1.forward(&x)?.relu()?)?; // 8 × 12 × 12
                let x = pool(&c2.forward(&x)?.relu()?)?; // 16 × 4 × 4
                self.fc2
                    .forward(&self.fc1.forward(&x.flatten_from(1)?)?.relu()?)
            }
        }
    }

    /// Accuracy and mean cross-entropy on `(x, y)`, in chunks of 1000 images.
    pub fn measure(&self, x: &Tensor, y: &Tensor) -> candle_core::Result<(f64, f64)> {
        let n = x.dim(0)?;
        let (mut right, mut total) = (0.0, 0.0);
        for start in (0..n).step_by(1000) {
            let len = 1000.min(n - start);
            let (xb, yb) = (x.narrow(0, start, len)?, y.narrow(0, start, len)?);
            let logits = self.forward(&xb)?;
            let eq = logits.argmax(D::Minus1)?.eq(&yb)?.to_dtype(DType::F32)?;
            right += f64::from(eq.sum_all()?.to_scalar::<f32>()?);
            let l = loss::cross_entropy(&logits, &yb)?.to_scalar::<f32>()?;
            total += f64::from(l) * len as f64;
        }
        Ok((right / n as f64, total / n as f64))
    }
}

/// Draws every variable uniformly in `±1/√fan_in` (the usual default of dense and
/// convolutional layers), with the seed, in the order of the variables' names (drawn in `f32`
/// and converted to the variables' type).
pub fn initialize(varmap: &VarMap, seed: u64) -> candle_core::Result<()> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let vars = varmap.data().lock().expect("variables").clone();
    let vars: BTreeMap<String, Var> = vars.into_iter().collect();
    for (name, var) in &vars {
        let layer = name.rsplit_once('.').map_or(name.as_str(), |(l, _)| l);
        let weight = &vars[&format!("{layer}.weight")];
        let fan_in = weight.elem_count() / weight.dims()[0];
        let bound = 1.0 / (fan_in as f32).sqrt();
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}
