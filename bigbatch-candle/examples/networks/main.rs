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
//! A big-batch method is `preset` (`BigBatchSgd::network()`: fresh batches from 32 samples,
//! θ = 2, Adadelta steps), `preset+RULE` (the same with the rule `armijo` (the paper's: enlarged
//! only when the batch grows), `lbfgs`, `adam` or `momentum` at its defaults), `default` (`BigBatchSgd::builder()`: L-BFGS on a persistent
//! batch, θ = 1) or `paper` (`BigBatchSgd::paper()`), each evaluated in one pass with per-sample
//! gradient norms (`CandleModel::one_pass`); modifiers `+theta=T`, `+batch=K`, `+lr=A` (the
//! rule's step size) change a setting, `+unbiased` tests against the unbiased signal
//! (`unbiased_signal(true)`), `+gain` scales the steps of Adadelta or Adam by the gain ratio
//! of the batch (a pilot, `gain.rs`), and `+groups=G` evaluates in G micro-batches instead
//! (`MicroBatched`; the rows of the comparison named `…+groups=8` were measured so). A
//! baseline is `sgd:LR`, `adam:LR`, `adadelta:LR` or `sfadamw:LR` (Candle's SGD and AdamW
//! without weight decay, Adadelta with ρ = 0.9, and Schedule-Free AdamW, `sfadamw.rs`, evaluated
//! at its average; on batches of 32 in a fresh order every epoch, constant learning rate LR).
//! `--method grid` is the whole comparison: the preset (in one pass and in 8 micro-batches) for
//! `--seeds` seeds (default 3), every other big-batch method for `--rule-seeds` (default 1),
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
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bigbatch::observe::from_fn;
use bigbatch::{
    Adadelta, Adam, Armijo, BigBatchOptimizer, BigBatchSgd, BigBatchSgdBuilder, Groups, IterView,
    Lbfgs, Momentum, Objective, StepIncrease, StepRule,
};
use bigbatch_candle::{CandleModel, idx};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, VarBuilder, VarMap, loss};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

mod gain;
mod net;
mod sfadamw;
mod timing;
use bigbatch_candle::init::initialize;
use gain::Gained;
use net::Net;
use sfadamw::ScheduleFreeAdamW;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The epochs after which a run is evaluated.
const CHECKPOINTS: [f64; 8] = [1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0];
/// The learning rates each baseline is tried at.
const SGD_RATES: [f64; 5] = [0.01, 0.03, 0.1, 0.3, 1.0];
const ADAM_RATES: [f64; 5] = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2];
const ADADELTA_RATES: [f64; 5] = [0.1, 0.3, 1.0, 3.0, 10.0];
/// Baselines' batch size.
const BATCH: usize = 32;

struct Task {
    name: &'static str,
    cnn: bool,
    x: Tensor,
    y: Tensor,
    test: (Tensor, Tensor),
}

impl Task {
    fn load(name: &str, data: Option<&str>, train: Option<usize>) -> Res<Task> {
        let dev = Device::Cpu;
        let tensors = |images: &[f32], labels: &[u32], n: usize| -> Res<(Tensor, Tensor)> {
            Ok((
                Tensor::from_slice(&images[..n * 784], (n, 784), &dev)?,
                Tensor::from_slice(&labels[..n], n, &dev)?,
            ))
        };
        let (name, cnn, default_train) = match name {
            "cnn" => ("cnn", true, 3000),
            "mlp" => ("mlp", false, usize::MAX),
            "mnist" => ("mnist", false, usize::MAX),
            other => return Err(format!("unknown task {other} (cnn, mlp or mnist)").into()),
        };
        let n_train = train.unwrap_or(default_train);
        let ((x, y), test) = if name == "mnist" {
            let dir = PathBuf::from(data.unwrap_or("../shared/data"));
            let read = |split: &str| -> Res<(Vec<f32>, Vec<u32>)> {
                let path = dir.join(format!("mnist10k.{split}.svm.gz"));
                if !path.exists() {
                    return Err(format!(
                        "the mnist task needs {} (MNIST in LIBSVM format, labels 0..9); \
                         pass its directory with --data",
                        path.display()
                    )
                    .into());
                }
                let d = bigbatch::data::load_libsvm::<f32>(&path, Some(784))?.into_dense();
                let bigbatch::data::Features::Dense(x) = d.features() else {
                    return Err("dense features expected".into());
                };
                let labels = d.targets().iter().map(|&t| t as u32).collect();
                Ok((x.iter().copied().collect(), labels))
            };
            let (xs, ys) = read("train")?;
            let (ts, tl) = read("test")?;
            let n = ys.len().min(n_train);
            (tensors(&xs, &ys, n)?, tensors(&ts, &tl, tl.len())?)
        } else {
            let dir = data.unwrap_or("../shared/data/fashion-mnist");
            let train = idx::read_split(dir, "train")?;
            let test = idx::read_split(dir, "t10k")?;
            let n = train.n.min(n_train);
            (
                tensors(&train.images, &train.labels, n)?,
                tensors(&test.images, &test.labels, test.n)?,
            )
        };
        Ok(Task {
            name,
            cnn,
            x,
            y,
            test,
        })
    }

    fn n(&self) -> usize {
        self.x.dim(0).unwrap_or(0)
    }
}

/// One line of results.
struct Row {
    epoch: f64,
    test_acc: f64,
    train_loss: f64,
    seconds: f64,
    batch: usize,
}

/// The CSV writer: one line per checkpoint of a run.
struct Out {
    file: File,
}

impl Out {
    const HEADER: &str = "task,method,lr,seed,epoch,test_acc,train_loss,seconds,batch,status";

    fn open(path: &str) -> Res<Out> {
        let fresh = !Path::new(path).exists();
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        if fresh {
            writeln!(file, "{}", Self::HEADER)?;
        }
        Ok(Out { file })
    }

    fn write(&mut self, run: &Run, row: &Row, status: &str) -> Res<()> {
        writeln!(
            self.file,
            "{},{},{},{},{:.4},{:.6},{:.6},{:.3},{},{status}",
            run.task,
            run.method,
            run.lr,
            run.seed,
            row.epoch,
            row.test_acc,
            row.train_loss,
            row.seconds,
            row.batch
        )?;
        self.file.flush()?;
        Ok(())
    }
}

/// What a run is.
struct Run {
    task: &'static str,
    method: String,
    lr: f64,
    seed: u64,
}

/// How a big batch is evaluated: one pass with per-sample norms, or micro-batches.
#[derive(Clone, Copy)]
enum Eval {
    OnePass,
    Groups(Groups),
}

fn big_batch<S: StepRule>(
    builder: BigBatchSgdBuilder<S>,
    eval: Eval,
    task: &Task,
    run: &Run,
    epochs: f64,
    out: &mut Out,
) -> Res<()> {
    let varmap = VarMap::new();
    let net = Net::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        task.cnn,
    )?;
    initialize(&varmap, run.seed)?;
    let model = CandleModel::from_varmap(&varmap, task.n(), |idx: &Tensor| {
        let logits = net.forward(&task.x.index_select(idx, 0)?)?;
        loss::cross_entropy(&logits, &task.y.index_select(idx, 0)?)
    })?;
    match eval {
        Eval::OnePass => {
            let objective = model.one_pass(net.tape())?;
            train(
                builder,
                &objective,
                objective.model(),
                &net,
                task,
                run,
                epochs,
                out,
            )
        }
        Eval::Groups(g) => {
            let objective = model.micro_batched(g)?;
            train(
                builder,
                &objective,
                objective.model(),
                &net,
                task,
                run,
                epochs,
                out,
            )
        }
    }
}

/// One big-batch run of `objective`, whose variables `model` holds, with the checkpoints'
/// measurements written to `out`.
#[allow(clippy::too_many_arguments)]
fn train<S: StepRule, O: Objective<f32>, L: Fn(&Tensor) -> candle_core::Result<Tensor>>(
    builder: BigBatchSgdBuilder<S>,
    objective: &O,
    model: &CandleModel<L>,
    net: &Net,
    task: &Task,
    run: &Run,
    epochs: f64,
    out: &mut Out,
) -> Res<()> {
    let w0 = model.parameters()?;
    let start = Instant::now();
    let mut evaluating = 0.0;
    let mut next = 0;
    let mut failure: Option<String> = None;
    let trace = std::env::var_os("NETWORKS_TRACE").is_some();
    let mut observer = from_fn(|v: &IterView<'_, f32>| {
        if trace {
            println!("{:?}", v.record);
        }
        while next < CHECKPOINTS.len() && v.record.epochs >= CHECKPOINTS[next] {
            let seconds = start.elapsed().as_secs_f64() - evaluating;
            let t = Instant::now();
            let measured = (|| -> Res<(f64, f64)> {
                let (test, train) = model.at(v.w, || -> candle_core::Result<_> {
                    Ok((
                        net.measure(&task.test.0, &task.test.1)?,
                        net.measure(&task.x, &task.y)?,
                    ))
                })??;
                Ok((test.0, train.1))
            })()
            .map_err(|e| e.to_string());
            evaluating += t.elapsed().as_secs_f64();
            let row = match measured {
                Ok((test_acc, train_loss)) => Row {
                    epoch: v.record.epochs,
                    test_acc,
                    train_loss,
                    seconds,
                    batch: v.record.batch_size,
                },
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            };
            if let Err(e) = out.write(run, &row, "ok") {
                failure = Some(e.to_string());
                return ControlFlow::Break(());
            }
            println!(
                "  {} {} seed {} epoch {:.2}: test {:.2} %, train loss {:.4}, batch {}, {:.1} s",
                run.task,
                run.method,
                run.seed,
                row.epoch,
                100.0 * row.test_acc,
                row.train_loss,
                row.batch,
                row.seconds
            );
            next += 1;
        }
        ControlFlow::Continue(())
    });
    let result = builder
        .max_epochs(epochs)
        .seed(run.seed)
        .build()?
        .minimize_with(objective, w0, &mut observer);
    if let Some(e) = failure {
        return Err(e.into());
    }
    match result {
        Ok(report) => {
            println!("  {}: {report}", run.method);
            // The final iterate, when the budget ran out a little short of the last checkpoint.
            if next < CHECKPOINTS.len() && report.epochs > CHECKPOINTS[next] - 1.0 {
                model.set_parameters(&report.w)?;
                let (test_acc, _) = net.measure(&task.test.0, &task.test.1)?;
                let (_, train_loss) = net.measure(&task.x, &task.y)?;
                let row = Row {
                    epoch: report.epochs,
                    test_acc,
                    train_loss,
                    seconds: start.elapsed().as_secs_f64() - evaluating,
                    batch: report.batch_size,
                };
                out.write(run, &row, "final")?;
            }
        }
        Err(e) => {
            println!("  {}: FAILED: {e}", run.method);
            let row = Row {
                epoch: f64::NAN,
                test_acc: f64::NAN,
                train_loss: f64::NAN,
                seconds: start.elapsed().as_secs_f64() - evaluating,
                batch: 0,
            };
            out.write(run, &row, "failed")?;
        }
    }
    Ok(())
}

/// Adadelta on Candle variables (Zeiler 2012, as in common frameworks: the accumulated steps
/// are taken before the learning rate).
struct CandleAdadelta {
    vars: Vec<Var>,
    g2: Vec<Tensor>,
    dx2: Vec<Tensor>,
    lr: f64,
}

impl CandleAdadelta {
    const RHO: f64 = 0.9;
    const EPS: f64 = 1e-6;

    fn new(vars: Vec<Var>, lr: f64) -> candle_core::Result<Self> {
        let zeros = |v: &Var| v.zeros_like();
        let g2 = vars.iter().map(zeros).collect::<candle_core::Result<_>>()?;
        let dx2 = vars.iter().map(zeros).collect::<candle_core::Result<_>>()?;
        Ok(CandleAdadelta { vars, g2, dx2, lr })
    }

    fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        let (rho, eps) = (Self::RHO, Self::EPS);
        for (k, var) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            self.g2[k] = ((&self.g2[k] * rho)? + (g.sqr()? * (1.0 - rho))?)?;
            let d = ((&self.dx2[k] + eps)?.sqrt()? / (&self.g2[k] + eps)?.sqrt()?)?.mul(g)?;
            self.dx2[k] = ((&self.dx2[k] * rho)? + (d.sqr()? * (1.0 - rho))?)?;
            var.set(&var.as_tensor().sub(&(d * self.lr)?)?)?;
        }
        Ok(())
    }
}

fn baseline(task: &Task, run: &Run, epochs: f64, out: &mut Out) -> Res<()> {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let net = Net::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), task.cnn)?;
    initialize(&varmap, run.seed)?;
    let vars = varmap.all_vars();
    let kind = run.method.as_str();
    let mut sgd = candle_nn::SGD::new(vars.clone(), run.lr)?;
    let mut adam = candle_nn::AdamW::new(
        vars.clone(),
        candle_nn::ParamsAdamW {
            lr: run.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut adadelta = CandleAdadelta::new(vars.clone(), run.lr)?;
    let mut sf = ScheduleFreeAdamW::new(vars, run.lr)?;
    let n = task.n();
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(run.seed ^ 0x5eed);
    let (mut seconds, mut next) = (0.0, 0);
    for epoch in 1..=epochs.ceil() as usize {
        let t = Instant::now();
        for j in 0..n - 1 {
            order.swap(j, rng.random_range(j..n));
        }
        for chunk in order.chunks(BATCH) {
            let idx = Tensor::from_slice(chunk, chunk.len(), &dev)?;
            let logits = net.forward(&task.x.index_select(&idx, 0)?)?;
            let l = loss::cross_entropy(&logits, &task.y.index_select(&idx, 0)?)?;
            match kind {
                "sgd" => sgd.backward_step(&l)?,
                "adam" => adam.backward_step(&l)?,
                "sfadamw" => sf.backward_step(&l)?,
                _ => adadelta.backward_step(&l)?,
            }
        }
        seconds += t.elapsed().as_secs_f64();
        if next < CHECKPOINTS.len() && epoch as f64 >= CHECKPOINTS[next] {
            next += 1;
            let measure = || -> candle_core::Result<_> {
                Ok((
                    net.measure(&task.test.0, &task.test.1)?.0,
                    net.measure(&task.x, &task.y)?.1,
                ))
            };
            // Schedule-Free is evaluated at its average.
            let (test_acc, train_loss) = if kind == "sfadamw" {
                sf.at_average(measure)?
            } else {
                measure()?
            };
            let row = Row {
                epoch: epoch as f64,
                test_acc,
                train_loss,
                seconds,
                batch: BATCH,
            };
            let diverged = !train_loss.is_finite();
            out.write(run, &row, if diverged { "diverged" } else { "ok" })?;
            println!(
                "  {} {}:{} epoch {epoch}: test {:.2} %, train loss {:.4}, {:.1} s",
                run.task,
                kind,
                run.lr,
                100.0 * test_acc,
                train_loss,
                seconds
            );
            if diverged {
                break;
            }
        }
    }
    Ok(())
}

fn run_method(task: &Task, method: &str, seed: u64, epochs: f64, out: &mut Out) -> Res<()> {
    let mut run = Run {
        task: task.name,
        method: method.to_string(),
        lr: 0.0,
        seed,
    };
    if let Some((kind, lr)) = method.split_once(':') {
        if !matches!(kind, "sgd" | "adam" | "adadelta" | "sfadamw") {
            return Err(format!("unknown baseline {kind} (sgd, adam, adadelta or sfadamw)").into());
        }
        run.method = kind.to_string();
        run.lr = lr.parse().map_err(|e| format!("learning rate {lr}: {e}"))?;
        return baseline(task, &run, epochs, out);
    }
    // `preset`, `preset+RULE`, `default` or `paper`, then modifiers `+key=value`.
    let mut parts = method.split('+');
    let base = parts.next().unwrap_or_default();
    let mut rule = "";
    let (mut theta, mut batch, mut lr, mut eval) = (None, None, None, Eval::OnePass);
    let (mut unbiased, mut gain) = (false, false);
    for m in parts {
        let Some((key, value)) = m.split_once('=') else {
            if m == "unbiased" {
                unbiased = true;
            } else if m == "gain" {
                gain = true;
            } else {
                rule = m;
            }
            continue;
        };
        let v: f64 = value.parse().map_err(|e| format!("modifier {m}: {e}"))?;
        match key {
            "theta" => theta = Some(v),
            "batch" => batch = Some(v as usize),
            "lr" => lr = Some(v),
            "groups" => eval = Eval::Groups(Groups::Count(v as usize)),
            _ => return Err(format!("unknown modifier {key} (theta, batch, lr, groups)").into()),
        }
    }
    // Each base with its own rule, which `+RULE` replaces (Adadelta holds the place).
    let (b, base_rule) = match base {
        "preset" => (BigBatchSgd::network(), "adadelta"),
        "default" => (BigBatchSgd::builder().step(Adadelta::new()), "lbfgs"),
        "paper" => (BigBatchSgd::paper().step(Adadelta::new()), "armijo"),
        other => return Err(format!("unknown method {other} (preset, paper or default)").into()),
    };
    if rule.is_empty() {
        rule = base_rule;
    }
    let b = match (theta, batch) {
        (Some(t), Some(k)) => b.theta(t).initial_batch(k),
        (Some(t), None) => b.theta(t),
        (None, Some(k)) => b.initial_batch(k),
        (None, None) => b,
    };
    let b = b.unbiased_signal(unbiased);
    if gain && !matches!(rule, "adadelta" | "adam") {
        return Err(format!("+gain applies to the adadelta and adam rules, not {rule}").into());
    }
    let g = eval;
    match rule {
        // The paper's Armijo rule: backtracking, enlarged only when the batch grows.
        "armijo" => {
            let rule = Armijo::new().increase(StepIncrease::OnBatchGrowth);
            big_batch(b.step(rule), g, task, &run, epochs, out)
        }
        "lbfgs" => big_batch(b.step(Lbfgs::new()), g, task, &run, epochs, out),
        "adam" => {
            let rule = lr.map_or(Adam::new(), |a| Adam::new().step_size(a));
            if gain {
                let b0 = b.clone().build()?.initial_batch();
                return big_batch(
                    b.step(Gained { inner: rule, b0 }),
                    g,
                    task,
                    &run,
                    epochs,
                    out,
                );
            }
            big_batch(b.step(rule), g, task, &run, epochs, out)
        }
        "adadelta" => {
            let rule = lr.map_or(Adadelta::new(), |a| Adadelta::new().step_size(a));
            if gain {
                let b0 = b.clone().build()?.initial_batch();
                return big_batch(
                    b.step(Gained { inner: rule, b0 }),
                    g,
                    task,
                    &run,
                    epochs,
                    out,
                );
            }
            big_batch(b.step(rule), g, task, &run, epochs, out)
        }
        "momentum" => {
            let rule = lr.map_or(Momentum::default(), Momentum::new);
            big_batch(b.step(rule), g, task, &run, epochs, out)
        }
        other => Err(format!("unknown rule {other}").into()),
    }
}

/// Every run of the comparison: (method, seed): the preset for `seeds` seeds in one pass and in
/// 8 micro-batches, the other
/// big-batch methods for `rule_seeds`, each baseline at its 5 learning rates (seed 0).
fn grid(seeds: u64, rule_seeds: u64) -> Vec<(String, u64)> {
    let mut runs: Vec<(String, u64)> = (0..seeds).map(|s| ("preset".to_string(), s)).collect();
    runs.extend((0..seeds).map(|s| ("preset+groups=8".to_string(), s)));
    for m in [
        "preset+armijo",
        "preset+lbfgs",
        "preset+adam",
        "preset+momentum",
        "default",
        "paper",
    ] {
        runs.extend((0..rule_seeds).map(|s| (m.to_string(), s)));
    }
    for (kind, rates) in [
        ("sgd", SGD_RATES),
        ("adam", ADAM_RATES),
        ("adadelta", ADADELTA_RATES),
    ] {
        runs.extend(rates.iter().map(|lr| (format!("{kind}:{lr}"), 0)));
    }
    // Schedule-Free AdamW at its published defaults only: the untuned alternative.
    runs.push((format!("sfadamw:{}", ScheduleFreeAdamW::DEFAULT_LR), 0));
    runs
}

// ---------------------------------------------------------------------------------------------
// The report.

#[derive(Clone)]
struct Line {
    task: String,
    method: String,
    lr: f64,
    seed: u64,
    epoch: f64,
    test_acc: f64,
    train_loss: f64,
    seconds: f64,
    status: String,
}

fn read_csv(path: &str) -> Res<Vec<Line>> {
    let file = File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut lines = Vec::new();
    for (k, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if k == 0 || line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 10 {
            return Err(format!("{path}:{}: {} fields, expected 10", k + 1, f.len()).into());
        }
        let num = |i: usize| -> Res<f64> {
            f[i].parse::<f64>()
                .map_err(|e| format!("{path}:{}: field {}: {e}", k + 1, i + 1).into())
        };
        lines.push(Line {
            task: f[0].into(),
            method: f[1].into(),
            lr: num(2)?,
            seed: num(3)? as u64,
            epoch: num(4)?,
            test_acc: num(5)?,
            train_loss: num(6)?,
            seconds: num(7)?,
            status: f[9].into(),
        });
    }
    Ok(lines)
}

/// One curve: a method's runs, keyed by seed (or learning rate), each a list of checkpoints.
type Curves = BTreeMap<String, Vec<Line>>;
/// A plotted curve: (epoch, test accuracy, training loss).
type Curve = Vec<(f64, f64, f64)>;

/// The issue's targets for one task: the preset's median against the best baseline run at
/// each epoch count (any optimizer, any rate), its training loss at 20 epochs against the
/// lowest, and its time per epoch against Candle's Adam loop.
fn targets(methods: &BTreeMap<String, Curves>) {
    let is_baseline = |runs: &Curves| runs.values().next().is_some_and(|r| r[0].lr > 0.0);
    let baselines: Vec<&Vec<Line>> = methods
        .values()
        .filter(|r| is_baseline(r))
        .flat_map(|r| r.values())
        .collect();
    let Some(preset) = methods.get("preset") else {
        return;
    };
    let per_epoch = |runs: &mut dyn Iterator<Item = &Vec<Line>>| {
        median(
            runs.filter_map(|r| r.iter().rfind(|l| l.status == "ok" || l.status == "final"))
                .map(|l| l.seconds / l.epoch)
                .collect(),
        )
    };
    print!("\ntargets: preset median − best baseline, test accuracy:");
    for e in [5.0, 10.0, 20.0] {
        let best = baselines
            .iter()
            .filter_map(|r| at(r, e))
            .map(|l| l.test_acc)
            .fold(f64::NAN, f64::max);
        let mine = median(
            preset
                .values()
                .filter_map(|r| at(r, e))
                .map(|l| l.test_acc)
                .collect(),
        );
        if let Some(m) = mine {
            print!(" {e} ep. {:+.2} pp", 100.0 * (m - best));
        }
    }
    let lowest = baselines
        .iter()
        .filter_map(|r| at(r, 20.0))
        .map(|l| l.train_loss)
        .fold(f64::NAN, f64::min);
    let loss = median(
        preset
            .values()
            .filter_map(|r| at(r, 20.0))
            .map(|l| l.train_loss)
            .collect(),
    );
    if let Some(l) = loss {
        print!("; training loss at 20 ep. {:.2}× the lowest", l / lowest);
    }
    let adam = methods.get("adam").and_then(|r| per_epoch(&mut r.values()));
    if let (Some(a), Some(p)) = (adam, per_epoch(&mut preset.values())) {
        print!("; time per epoch {:.2}× Adam's", p / a);
    }
    println!();
}

/// The checkpoint of a run at `epoch`: the first at or after it, or the final iterate of a run
/// whose budget ran out up to an epoch short of it.
fn at(run: &[Line], epoch: f64) -> Option<&Line> {
    run.iter().find(|l| {
        let from = if l.status == "final" { 1.0 } else { 0.0 };
        matches!(l.status.as_str(), "ok" | "final")
            && l.epoch >= epoch - from
            && l.epoch < epoch + 0.9
    })
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    })
}

fn report(path: &str, svg: Option<&str>) -> Res<()> {
    let lines = read_csv(path)?;
    let mut tasks: BTreeMap<String, BTreeMap<String, Curves>> = BTreeMap::new();
    for l in &lines {
        let key = if l.lr > 0.0 {
            format!("{}", l.lr)
        } else {
            format!("{}", l.seed)
        };
        tasks
            .entry(l.task.clone())
            .or_default()
            .entry(l.method.clone())
            .or_default()
            .entry(key)
            .or_default()
            .push(l.clone());
    }
    let marks = [5.0, 10.0, 20.0];
    for (task, methods) in &tasks {
        println!("\n### {task}\n");
        println!("| method | test acc. 5 ep. | 10 ep. | 20 ep. | train loss 20 ep. | s / epoch |");
        println!("|---|---:|---:|---:|---:|---:|");
        let mut plotted: Vec<(String, Curve)> = Vec::new();
        for (method, runs) in methods {
            let baseline = runs.values().next().is_some_and(|r| r[0].lr > 0.0);
            let mut cells = Vec::new();
            if baseline {
                // The best learning rate at each epoch count, in hindsight.
                for &e in &marks {
                    let best = runs
                        .iter()
                        .filter_map(|(lr, r)| at(r, e).map(|l| (l.test_acc, lr)))
                        .max_by(|a, b| a.0.total_cmp(&b.0));
                    cells.push(best.map_or("–".into(), |(a, lr)| {
                        format!("{:.2} (lr {lr})", 100.0 * a)
                    }));
                }
                let best_loss = runs
                    .iter()
                    .filter_map(|(lr, r)| at(r, 20.0).map(|l| (l.train_loss, lr)))
                    .filter(|l| l.0.is_finite())
                    .min_by(|a, b| a.0.total_cmp(&b.0));
                cells.push(best_loss.map_or("–".into(), |(l, lr)| format!("{l:.4} (lr {lr})")));
                // The run best at 20 epochs is the one plotted and timed.
                let best_run = runs
                    .values()
                    .filter(|r| at(r, 20.0).is_some())
                    .max_by(|a, b| {
                        let acc = |r: &Vec<Line>| at(r, 20.0).map_or(0.0, |l| l.test_acc);
                        acc(a).total_cmp(&acc(b))
                    });
                if let Some(r) = best_run {
                    let last = r.last().expect("non-empty");
                    cells.push(format!("{:.1}", last.seconds / last.epoch));
                    plotted.push((
                        format!("{method} (lr {})", r[0].lr),
                        r.iter()
                            .filter(|l| l.status != "failed" && l.status != "diverged")
                            .map(|l| (l.epoch, l.test_acc, l.train_loss))
                            .collect(),
                    ));
                } else {
                    cells.push("–".into());
                }
            } else {
                let seeds = runs.len();
                for &e in &marks {
                    let acc: Vec<f64> = runs
                        .values()
                        .filter_map(|r| at(r, e))
                        .map(|l| l.test_acc)
                        .collect();
                    let (lo, hi) = acc
                        .iter()
                        .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
                    cells.push(median(acc.clone()).map_or("–".into(), |m| {
                        format!("{:.2} ({:.2}–{:.2})", 100.0 * m, 100.0 * lo, 100.0 * hi)
                    }));
                }
                let loss: Vec<f64> = runs
                    .values()
                    .filter_map(|r| at(r, 20.0))
                    .map(|l| l.train_loss)
                    .collect();
                cells.push(median(loss).map_or("–".into(), |m| format!("{m:.4}")));
                let per_epoch: Vec<f64> = runs
                    .values()
                    .filter_map(|r| r.iter().rfind(|l| l.status == "ok" || l.status == "final"))
                    .map(|l| l.seconds / l.epoch)
                    .collect();
                cells.push(median(per_epoch).map_or("–".into(), |m| format!("{m:.1}")));
                let failed = runs
                    .values()
                    .flatten()
                    .filter(|l| l.status == "failed")
                    .count();
                let plural = if seeds == 1 { "" } else { "s" };
                let label = if failed > 0 {
                    format!("{method}, {seeds} seed{plural}, {failed} FAILED")
                } else {
                    format!("{method}, {seeds} seed{plural}")
                };
                // The median curve over seeds, checkpoint by checkpoint.
                let first = runs.values().next().expect("a run");
                let curve = first
                    .iter()
                    .filter(|l| l.status != "failed" && l.status != "diverged")
                    .filter_map(|l| {
                        let mark = CHECKPOINTS
                            .iter()
                            .copied()
                            .find(|&c| l.epoch < c + 0.9 && l.epoch >= c - 1.0)?;
                        let pts: Vec<&Line> = runs.values().filter_map(|r| at(r, mark)).collect();
                        Some((
                            mark,
                            median(pts.iter().map(|l| l.test_acc).collect())?,
                            median(pts.iter().map(|l| l.train_loss).collect())?,
                        ))
                    })
                    .collect();
                plotted.push((format!("{method} (median of {seeds})"), curve));
                println!("| {label} | {} |", cells.join(" | "));
                continue;
            }
            println!(
                "| {method}, best of {} rates | {} |",
                runs.len(),
                cells.join(" | ")
            );
        }
        targets(methods);
        if let Some(dir) = svg {
            std::fs::create_dir_all(dir)?;
            for (measure, log) in [("test_accuracy", false), ("train_loss", true)] {
                let series: Vec<(String, Vec<(f64, f64)>)> = plotted
                    .iter()
                    .map(|(name, pts)| {
                        let p = pts
                            .iter()
                            .map(|&(e, a, l)| (e, if log { l } else { 100.0 * a }))
                            .collect();
                        (name.clone(), p)
                    })
                    .collect();
                let file = Path::new(dir).join(format!("{task}_{measure}.svg"));
                let title = format!("{task}: {}", measure.replace('_', " "));
                std::fs::write(&file, plot(&title, &series, log))?;
                println!("\n(wrote {})", file.display());
            }
        }
    }
    Ok(())
}

/// A line plot of `series` (epochs on x), with a legend; `log`: logarithmic y.
fn plot(title: &str, series: &[(String, Vec<(f64, f64)>)], log: bool) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 440.0, 70.0, 250.0, 40.0, 50.0);
    let ty = |v: f64| if log { v.max(1e-12).log10() } else { v };
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| ty(p.1)))
        .filter(|v| v.is_finite())
        .collect();
    let (mut y0, mut y1) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    if !log {
        // Accuracy: the upper part of the range, where the methods differ.
        let sorted = median(ys.clone()).unwrap_or(y0);
        y0 = y0.max(sorted - 2.0 * (y1 - sorted).max(1.0));
    }
    let pad = 0.05 * (y1 - y0).max(1e-9);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let x1 = CHECKPOINTS[CHECKPOINTS.len() - 1];
    let px = |x: f64| left + (w - left - right) * x / x1;
    // Points below the range (the first epochs of slow runs) sit on the lower axis.
    let py = |y: f64| top + (h - top - bottom) * (1.0 - ((ty(y) - y0) / (y1 - y0)).clamp(0.0, 1.0));
    let colours = [
        "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
        "#1f78b4",
    ];
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="{w}" height="{h}" fill="white"/><text x="{left}" y="24" font-size="15">{title}</text>"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        w - left - right,
        h - top - bottom
    );
    for e in [0.0, 5.0, 10.0, 15.0, 20.0] {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{e}</text>"#,
            px(e),
            h - bottom + 16.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">epochs</text>"#,
        px(x1 / 2.0),
        h - 12.0
    );
    for k in 0..=5 {
        let v = y0 + (y1 - y0) * f64::from(k) / 5.0;
        let label = if log {
            format!("{:.3}", 10f64.powf(v))
        } else {
            format!("{v:.1}")
        };
        let y = top + (h - top - bottom) * (1.0 - f64::from(k) / 5.0);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"##,
            w - right,
            left - 6.0,
            y + 4.0
        );
    }
    for (k, (name, pts)) in series.iter().enumerate() {
        let c = colours[k % colours.len()];
        let path: Vec<String> = pts
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="{}"/>"#,
            path.join(" "),
            if name.starts_with("preset ") { 4 } else { 2 }
        );
        let ly = top + 16.0 * k as f64 + 8.0;
        let _ = writeln!(
            s,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="3"/><text x="{}" y="{}">{name}</text>"#,
            w - right + 10.0,
            w - right + 30.0,
            w - right + 36.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

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
        rule_seeds: 1,
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
