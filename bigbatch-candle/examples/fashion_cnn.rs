//! A small convolutional network on Fashion-MNIST (10 classes), trained with Big Batch SGD
//! through the Candle adapter, against plain SGD with Candle's own optimizer.
//!
//! ```text
//! cargo run --release -p bigbatch-candle --example fashion_cnn -- [DIR] [--epochs E] [--limit N]
//!     [--rule lbfgs|adam|adadelta|armijo] [--groups G] [--sgd LR] [--mlp]
//! ```
//!
//! `DIR` holds the four original IDX files (default `../shared/data/fashion-mnist`; Debian's
//! package `dataset-fashion-mnist` installs them). The network: two 5×5 convolutions (8 and 16
//! channels) each followed by ReLU and 2×2 max pooling, then dense layers 256 → 64 → 10
//! (`--mlp`: dense 784 → 100 → 10 instead). Prints the test accuracy after every epoch, the
//! time, and with `--sgd LR` the same for plain SGD (batch 32, step LR) from the same weights.

use std::ops::ControlFlow;
use std::time::Instant;

use bigbatch::observe::from_fn;
use bigbatch::{
    Adadelta, Adam, Armijo, BigBatchOptimizer, BigBatchSgd, Groups, IterView, Lbfgs, StepRule,
};
use bigbatch_candle::{CandleModel, idx};
use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Conv2dConfig, Optimizer, VarBuilder, VarMap, conv2d, linear, loss};

struct Net {
    convs: Option<(candle_nn::Conv2d, candle_nn::Conv2d)>,
    fc1: candle_nn::Linear,
    fc2: candle_nn::Linear,
}

impl Net {
    fn new(vb: VarBuilder, mlp: bool) -> candle_core::Result<Self> {
        if mlp {
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
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        let h = match &self.convs {
            None => x.clone(),
            Some((c1, c2)) => {
                let x = x.reshape((n, 1, 28, 28))?;
                let x = c1.forward(&x)?.relu()?.max_pool2d(2)?; // 8 × 12 × 12
                let x = c2.forward(&x)?.relu()?.max_pool2d(2)?; // 16 × 4 × 4
                x.flatten_from(1)?
            }
        };
        let h = if self.convs.is_none() {
            self.fc1.forward(&h)?.tanh()?
        } else {
            self.fc1.forward(&h)?.relu()?
        };
        self.fc2.forward(&h)
    }

    /// Test accuracy, in chunks of 1000 images.
    fn accuracy(&self, x: &Tensor, y: &Tensor) -> candle_core::Result<f64> {
        let n = x.dim(0)?;
        let mut right = 0.0;
        for start in (0..n).step_by(1000) {
            let len = 1000.min(n - start);
            let pred = self.forward(&x.narrow(0, start, len)?)?.argmax(D::Minus1)?;
            let eq = pred
                .eq(&y.narrow(0, start, len)?)?
                .to_dtype(DType::F32)?
                .sum_all()?;
            right += f64::from(eq.to_scalar::<f32>()?);
        }
        Ok(right / n as f64)
    }
}

struct Options {
    dir: String,
    epochs: usize,
    limit: Option<usize>,
    rule: String,
    groups: usize,
    sgd: Option<f64>,
    mlp: bool,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        dir: "../shared/data/fashion-mnist".into(),
        epochs: 5,
        limit: None,
        rule: "lbfgs".into(),
        groups: 16,
        sgd: None,
        mlp: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--epochs" => o.epochs = value("--epochs")?.parse().map_err(|e| format!("{e}"))?,
            "--limit" => o.limit = Some(value("--limit")?.parse().map_err(|e| format!("{e}"))?),
            "--rule" => o.rule = value("--rule")?,
            "--groups" => o.groups = value("--groups")?.parse().map_err(|e| format!("{e}"))?,
            "--sgd" => o.sgd = Some(value("--sgd")?.parse().map_err(|e| format!("{e}"))?),
            "--mlp" => o.mlp = true,
            _ if !a.starts_with("--") => o.dir = a,
            _ => return Err(format!("unknown option {a}")),
        }
    }
    Ok(o)
}

fn tensors(
    split: &idx::Split,
    limit: Option<usize>,
    dev: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let n = limit.map_or(split.n, |l| l.min(split.n));
    let x = Tensor::from_slice(&split.images[..n * 784], (n, 784), dev)?;
    let y = Tensor::from_slice(&split.labels[..n], n, dev)?;
    Ok((x, y))
}

fn big_batch<S: StepRule>(
    rule: S,
    model: &bigbatch::MicroBatched<CandleModel<impl Fn(&Tensor) -> candle_core::Result<Tensor>>>,
    net: &Net,
    test: &(Tensor, Tensor),
    epochs: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut next = 1.0;
    let mut failure = None;
    let mut observer = from_fn(|v: &IterView<'_, f32>| {
        while v.record.epochs >= next {
            let acc = model
                .model()
                .set_parameters(v.w)
                .map_err(|e| e.to_string())
                .and_then(|()| net.accuracy(&test.0, &test.1).map_err(|e| e.to_string()));
            match acc {
                Ok(a) => println!(
                    "  epoch {next:>3}: test accuracy {:.2} %, batch {}, {:.1} s",
                    100.0 * a,
                    v.record.batch_size,
                    start.elapsed().as_secs_f64()
                ),
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            }
            next += 1.0;
        }
        ControlFlow::Continue(())
    });
    let w0 = model.model().parameters()?;
    let report = BigBatchSgd::builder()
        .max_epochs(epochs as f64)
        .step(rule)
        .build()?
        .minimize_with(model, w0, &mut observer)?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    model.model().set_parameters(&report.w)?;
    println!(
        "big batch: {report}\n  final test accuracy {:.2} %, {:.1} s",
        100.0 * net.accuracy(&test.0, &test.1)?,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = options()?;
    let dev = Device::Cpu;
    let train = idx::read_split(&o.dir, "train")?;
    let test = idx::read_split(&o.dir, "t10k")?;
    let (x, y) = tensors(&train, o.limit, &dev)?;
    let test = tensors(&test, None, &dev)?;
    let n = x.dim(0)?;

    let varmap = VarMap::new();
    let net = Net::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), o.mlp)?;
    let w0 = {
        let model = CandleModel::from_varmap(&varmap, n, |_: &Tensor| Tensor::new(0f32, &dev))?;
        model.parameters()?
    };
    println!(
        "{} on {n} Fashion-MNIST images ({} parameters), test on {}; rule {}, {} groups, {} epochs",
        if o.mlp {
            "MLP 784-100-10"
        } else {
            "CNN conv5x5(8)-pool-conv5x5(16)-pool-256-64-10"
        },
        w0.len(),
        test.0.dim(0)?,
        o.rule,
        o.groups,
        o.epochs
    );
    let model = CandleModel::from_varmap(&varmap, n, |idx: &Tensor| {
        let logits = net.forward(&x.index_select(idx, 0)?)?;
        loss::cross_entropy(&logits, &y.index_select(idx, 0)?)
    })?
    .micro_batched(Groups::Count(o.groups))?;
    match o.rule.as_str() {
        "lbfgs" => big_batch(Lbfgs::new(), &model, &net, &test, o.epochs)?,
        "adam" => big_batch(Adam::new(), &model, &net, &test, o.epochs)?,
        "adadelta" => big_batch(Adadelta::new(), &model, &net, &test, o.epochs)?,
        "armijo" => big_batch(Armijo::new(), &model, &net, &test, o.epochs)?,
        other => return Err(format!("unknown rule {other}").into()),
    }

    if let Some(lr) = o.sgd {
        // Plain SGD from the same initial weights: batches of 32 in a fresh order each epoch.
        model.model().set_parameters(&w0)?;
        let mut sgd = candle_nn::SGD::new(varmap.all_vars(), lr)?;
        let start = Instant::now();
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for epoch in 1..=o.epochs {
            for i in (1..order.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                order.swap(i, (state % (i as u64 + 1)) as usize);
            }
            for chunk in order.chunks(32) {
                let idx = Tensor::from_slice(chunk, chunk.len(), &dev)?;
                let logits = net.forward(&x.index_select(&idx, 0)?)?;
                let l = loss::cross_entropy(&logits, &y.index_select(&idx, 0)?)?;
                sgd.backward_step(&l)?;
            }
            println!(
                "  SGD epoch {epoch:>3}: test accuracy {:.2} %, {:.1} s",
                100.0 * net.accuracy(&test.0, &test.1)?,
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
