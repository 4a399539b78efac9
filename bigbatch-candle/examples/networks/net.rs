//! The networks of the comparison, shared with the adapter's gradient-check test
//! (`tests/networks.rs`): a small convolutional network and a one-hidden-layer perceptron.
//!
//! Their layers are the adapter's `per_sample` wrappers of Candle's, recording on the network's
//! tape: off (the baselines, the evaluations), they run as Candle's layers do; on, during a
//! one-pass evaluation, they record what the per-sample gradient norms need.
//!
//! The convolutional network pools with [`bigbatch_candle::max_pool2d`], not Candle's
//! `Tensor::max_pool2d`, whose backward pass is wrong in Candle 0.11 (see
//! `bigbatch_candle::pool`).

use bigbatch_candle::per_sample::{Conv2d, Dense, conv2d, linear};
use bigbatch_candle::{Tape, max_pool2d};
use candle_core::{D, DType, Module, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder, loss};

/// A network of the comparison: two 5×5 convolutions (8 and 16 channels, ReLU, 2×2 max
/// pooling) then dense 256 → 64 → 10 with ReLU (`cnn`), or dense 784 → 100 → 10 with tanh.
pub struct Net {
    convs: Option<(Conv2d, Conv2d)>,
    fc1: Dense,
    fc2: Dense,
    tape: Tape,
}

impl Net {
    pub fn new(vb: VarBuilder, cnn: bool) -> candle_core::Result<Self> {
        let tape = Tape::new();
        if !cnn {
            return Ok(Net {
                convs: None,
                fc1: linear(784, 100, vb.pp("fc1"), &tape)?,
                fc2: linear(100, 10, vb.pp("fc2"), &tape)?,
                tape,
            });
        }
        let cfg = Conv2dConfig::default();
        Ok(Net {
            convs: Some((
                conv2d(1, 8, 5, cfg, vb.pp("c1"), &tape)?,
                conv2d(8, 16, 5, cfg, vb.pp("c2"), &tape)?,
            )),
            fc1: linear(256, 64, vb.pp("fc1"), &tape)?,
            fc2: linear(64, 10, vb.pp("fc2"), &tape)?,
            tape,
        })
    }

    /// The tape the layers record on.
    #[allow(dead_code)] // the gradient-check test does not use it
    pub fn tape(&self) -> &Tape {
        &self.tape
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
