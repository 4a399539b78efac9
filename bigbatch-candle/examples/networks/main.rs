//! The network experiments: a small convolutional network on Fashion-MNIST, a perceptron on
//! Fashion-MNIST and on MNIST, trained with big batches (the network preset and each step rule)
//! and with plain SGD, Adam and Adadelta at constant learning rates, through Candle.
//!
//! ```text
//! cargo run --release -p bigbatch-candle --example networks -- [--task cnn|mlp|mnist]
//!     [--method M]... [--seeds S] [--seed-from K] [--rule-seeds S] [--epochs E] [--train N]
//!     [--data DIR] [--out FILE.csv]
//! cargo run --release -p bigbatch-candle --example networks -- --report FILE.csv [--svg DIR]
//! cargo run --release -p bigbatch-candle --example networks -- --task T --timing REPS
//! ```
//!
//! A big-batch method is `preset` (`BigBatchSgd::network()`: fresh batches from 8 samples,
//! the unbiased test at θ = 1.4 on averaged estimates, Adadelta steps scaled by the square
//! root of the gain ratio, gradients between the iterate and its average), `preset+RULE` (the same batches with the rule `adadelta` (unscaled),
//! `armijo` (the paper's: enlarged only when the batch grows), `lbfgs`, `adam` or `momentum` at
//! its defaults), `default` (`BigBatchSgd::builder()`: L-BFGS on a persistent batch, θ = 1) or `paper` (`BigBatchSgd::paper()`), each evaluated in one pass with per-sample
//! gradient norms (`CandleModel::one_pass`); modifiers `+theta=T`, `+batch=K`, `+lr=A` (the
//! rule's step size), `+smooth=B` (the test's averaging β), `+avg=H` (the horizon of the
//! averaged iterates, epochs), `+interp=B` (the gradients' interpolation towards the average)
//! change a setting, `+unbiased` tests
//! against the unbiased signal (`unbiased_signal(true)`), `+gain=P` scales the steps of
//! Adadelta or Adam by the gain ratio of the batch to the power P (`GainScaled`; `+gain` is
//! P = 1; on the preset's own rule it sets the power), and `+groups=G` evaluates in G
//! micro-batches instead
//! (`MicroBatched`; the rows of the comparison named `…+groups=8` were measured so). A
//! baseline is `sgd:LR`, `adam:LR`, `adadelta:LR` or `sfadamw:LR` (Candle's SGD and AdamW
//! without weight decay, Adadelta with ρ = 0.9, and Schedule-Free AdamW, `sfadamw.rs`, evaluated
//! at its average; on batches of 32 in a fresh order every epoch, constant learning rate LR),
//! or `adabatch:LR` (AdaBatch: SGD steps on fresh batches from 32, the batch doubled every 5
//! epochs and the rate with it, through the core's `BatchSchedule` and `BatchScaled`).
//! `--method grid` is the whole comparison: the preset (in one pass and in 8 micro-batches) for
//! `--seeds` seeds (default 3), every other big-batch method for `--rule-seeds` (default 3),
//! each baseline at 5 learning rates and Schedule-Free AdamW at its default 0.0025; `--seed-from
//! K` skips a method's seeds below K. Every run starts from weights drawn with its seed
//! (baselines: seed 0) and
//! records, after epochs 1, 2, 3, 5, 7, 10, 15 and 20 (an epoch is N per-sample gradients,
//! micro-batches included), the test accuracy, the mean training loss on the whole training
//! set and the training time (evaluations excluded), one CSV line each, appended to `--out`
//! (default `networks.csv`) as they come. `examples/networks.sh` runs the README's comparison.
//! With `NETWORKS_TRACE` set, a big-batch run prints the record of every iteration.
//!
//! Tasks: `cnn`, two 5×5 convolutions (8 and 16 channels, ReLU, 2×2 max pooling) then dense
//! 256 → 64 → 10, on the first `--train` (default 3,000) Fashion-MNIST training images and all
//! 10,000 test images; `mlp`, dense 784 → 100 → 10 with tanh on all 60,000 / 10,000
//! Fashion-MNIST images; `mnist`, the same perceptron on `mnist10k` (8,004 / 1,996 digits).
//! `--data` is the directory of the four Fashion-MNIST IDX files (default
//! `../shared/data/fashion-mnist`; Debian's `dataset-fashion-mnist` installs them) or, for
//! `mnist`, of `mnist10k.{train,test}.svm.gz` (default `../shared/data`).
//!
//! `--timing REPS` times one epoch of batches of 32 through each part of an evaluation (forward,
//! backward, per-sample norms, batch statistics, micro-batches, the preset's whole loop) and
//! Candle's AdamW on the same batches, best of REPS, and prints the table (`timing.rs`).
//!
//! `--report` reads such a CSV and prints the comparison table (Markdown): each baseline at the
//! learning rate that did best at each epoch count, in hindsight; the median (and range) over
//! seeds of each big-batch method; and with `--svg DIR` draws test accuracy and training loss
//! against epochs, one SVG per task and measure.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bigbatch::observe::from_fn;
use bigbatch::{
    Adadelta, Adam, Armijo, BatchMode, BatchScaled, BatchSchedule, BigBatchSgd, BigBatchSgdBuilder,
    Fixed, GainScaled, Groups, IterView, Lbfgs, Momentum, Objective, StepIncrease, StepRule,
};
use bigbatch_candle::{CandleModel, idx};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, VarBuilder, VarMap, loss};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

mod methods;
mod net;
mod plot;
mod report;
mod sfadamw;
mod task;
mod timing;
mod training;
use bigbatch_candle::init::initialize;
use methods::*;
use net::Net;
use plot::plot;
use report::*;
use sfadamw::ScheduleFreeAdamW;
use task::*;
use training::*;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The epochs after which a run is evaluated.
const CHECKPOINTS: [f64; 8] = [1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0];
/// The learning rates each baseline is tried at.
const SGD_RATES: [f64; 5] = [0.01, 0.03, 0.1, 0.3, 1.0];
const ADAM_RATES: [f64; 5] = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2];
const ADADELTA_RATES: [f64; 5] = [0.1, 0.3, 1.0, 3.0, 10.0];
/// Baselines' batch size.
const BATCH: usize = 32;
/// AdaBatch doubles its batch (and its rate) every this many epochs: at 5, 10 and 15 of the
/// comparison's 20, as the paper doubles it every 20 of 100.
const ADABATCH_PERIOD: f64 = 5.0;

struct Options {
    task: String,
    methods: Vec<String>,
    seeds: u64,
    seed_from: u64,
    rule_seeds: u64,
    epochs: f64,
    train: Option<usize>,
    data: Option<String>,
    out: String,
    report: Option<String>,
    svg: Option<String>,
    timing: Option<usize>,
}

fn options() -> Res<Options> {
    let mut o = Options {
        task: "cnn".into(),
        methods: Vec::new(),
        seeds: 3,
        seed_from: 0,
        rule_seeds: 3,
        epochs: 20.0,
        train: None,
        data: None,
        out: "networks.csv".into(),
        report: None,
        svg: None,
        timing: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--task" => o.task = value()?,
            "--method" => o.methods.push(value()?),
            "--seeds" => o.seeds = value()?.parse()?,
            "--rule-seeds" => o.rule_seeds = value()?.parse()?,
            "--seed-from" => o.seed_from = value()?.parse()?,
            "--epochs" => o.epochs = value()?.parse()?,
            "--train" => o.train = Some(value()?.parse()?),
            "--data" => o.data = Some(value()?),
            "--out" => o.out = value()?,
            "--report" => o.report = Some(value()?),
            "--svg" => o.svg = Some(value()?),
            "--timing" => o.timing = Some(value()?.parse()?),
            _ => return Err(format!("unknown option {a}").into()),
        }
    }
    if o.epochs <= 0.0 || o.epochs.is_nan() {
        return Err(format!("--epochs {} must be positive", o.epochs).into());
    }
    Ok(o)
}

fn main() -> Res<()> {
    let o = options()?;
    if let Some(path) = &o.report {
        return report(path, o.svg.as_deref());
    }
    let task = Task::load(&o.task, o.data.as_deref(), o.train)?;
    if let Some(reps) = o.timing {
        return timing::timing(&task, reps.max(1));
    }
    println!(
        "task {}: {} training images, {} test images, {} epochs",
        task.name,
        task.n(),
        task.test.0.dim(0)?,
        o.epochs
    );
    let mut runs = Vec::new();
    if o.methods.is_empty() {
        runs.push(("preset".to_string(), 0));
    }
    for m in &o.methods {
        if m == "grid" {
            runs.extend(grid(o.seeds, o.rule_seeds));
        } else if m.contains(':') {
            runs.push((m.clone(), 0));
        } else {
            runs.extend((o.seed_from..o.seeds).map(|s| (m.clone(), s)));
        }
    }
    let mut out = Out::open(&o.out)?;
    let start = Instant::now();
    for (method, seed) in runs {
        run_method(&task, &method, seed, o.epochs, &mut out)?;
    }
    println!(
        "done in {:.0} s; results in {}",
        start.elapsed().as_secs_f64(),
        o.out
    );
    Ok(())
}
