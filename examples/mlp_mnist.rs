//! A one-hidden-layer network on 10,000 MNIST digits: Big Batch SGD with default settings
//! against plain SGD (batch 32, constant steps on a small grid), test accuracy per epoch.
//!
//! ```text
//! cargo run --release --example mlp_mnist -- [TRAIN.svm.gz TEST.svm.gz] [--epochs E] [--hidden H] [--rules]
//! ```
//!
//! With `--rules`, the big-batch run is repeated with each step rule (L-BFGS, Armijo, Adam,
//! Adadelta, momentum) and with the network preset (`BigBatchSgd::network()`) for 3 seeds of the initial weights, and their test accuracies are
//! printed side by side (median and range).
//!
//! The default files are `../shared/data/mnist10k.train.svm.gz` and
//! `../shared/data/mnist10k.test.svm.gz` (8,004 and 1,996 digits, 784 pixels in [0, 1]).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use bigbatch::data::{Dataset, load_libsvm};
use bigbatch::models::{Activation, Mlp};
use bigbatch::observe::from_fn;
use bigbatch::{
    Adadelta, Adam, Armijo, BigBatchSgd, BigBatchSgdBuilder, GradStats, IterView, Lbfgs, Momentum,
    Objective, StepRule,
};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

fn load(path: &PathBuf) -> Result<Dataset<f32>, Box<dyn std::error::Error>> {
    if !path.exists() {
        return Err(format!(
            "mlp_mnist needs {} (MNIST in LIBSVM format, 784 features, labels 0..9); \
             pass the train and test files as arguments",
            path.display()
        )
        .into());
    }
    Ok(load_libsvm::<f32>(path, Some(784))?.into_dense())
}

/// Plain SGD with a constant step, recording test accuracy at each whole epoch.
fn plain_sgd(net: &Mlp<f32>, test: &Mlp<f32>, alpha: f32, epochs: usize, seed: u64) -> Vec<f64> {
    let n = net.n_samples();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut perm: Vec<usize> = (0..n).collect();
    let mut w = net.initial_weights(seed);
    let mut stats = GradStats::new(net.dim());
    let mut acc = Vec::new();
    for _ in 0..epochs {
        for j in 0..n - 1 {
            let r = rng.random_range(j..n);
            perm.swap(j, r);
        }
        for b in perm.chunks_exact(32) {
            stats.reset();
            net.batch_gradient(&w, b, &mut stats);
            w.scaled_add(-alpha, &stats.gradient());
        }
        if !w.iter().all(|v| v.is_finite()) {
            break;
        }
        acc.push(test.accuracy(&w));
    }
    acc
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut files = Vec::new();
    let (mut epochs, mut hidden, mut rules) = (30usize, 100usize, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rules" => rules = true,
            "--epochs" => epochs = args.next().ok_or("--epochs needs a value")?.parse()?,
            "--hidden" => hidden = args.next().ok_or("--hidden needs a value")?.parse()?,
            _ => files.push(PathBuf::from(a)),
        }
    }
    let shared = PathBuf::from("../shared/data");
    let train_path = files
        .first()
        .cloned()
        .unwrap_or_else(|| shared.join("mnist10k.train.svm.gz"));
    let test_path = files
        .get(1)
        .cloned()
        .unwrap_or_else(|| shared.join("mnist10k.test.svm.gz"));
    let (train, test) = (load(&train_path)?, load(&test_path)?);
    let lambda = 1e-4;
    let net = Mlp::new(train, 10, &[hidden], Activation::Tanh, lambda)?;
    let test_net = Mlp::new(test, 10, &[hidden], Activation::Tanh, lambda)?;
    println!(
        "MLP 784-{hidden}-10 (tanh), λ = {lambda}: {} training and {} test digits, {} parameters",
        net.n_samples(),
        test_net.n_samples(),
        net.dim()
    );

    if rules {
        return compare_rules(&net, &test_net, epochs);
    }

    // Big Batch SGD, default settings; test accuracy whenever a whole epoch is passed.
    let start = Instant::now();
    let mut accuracy = Vec::new();
    let mut next_epoch = 1.0;
    let mut batch_sizes = Vec::new();
    let mut obs = from_fn(|v: &IterView<'_, f32>| {
        while v.record.epochs >= next_epoch {
            accuracy.push(test_net.accuracy(v.w));
            batch_sizes.push(v.record.batch_size);
            next_epoch += 1.0;
        }
        ControlFlow::Continue(())
    });
    let mut optimizer = BigBatchSgd::builder().max_epochs(epochs as f64).build()?;
    let report = optimizer.minimize_with(&net, net.initial_weights(0), &mut obs)?;
    let big_seconds = start.elapsed().as_secs_f64();
    let final_acc = test_net.accuracy(&report.w);
    println!(
        "big batch: {report}\n  {big_seconds:.1} s, final test accuracy {:.2} %",
        100.0 * final_acc
    );

    let start = Instant::now();
    let grid = [0.03f32, 0.1, 0.3];
    let runs: Vec<(f32, Vec<f64>)> = grid
        .iter()
        .map(|&a| (a, plain_sgd(&net, &test_net, a, epochs, 0)))
        .collect();
    let (best_alpha, best) = runs
        .iter()
        .max_by(|a, b| {
            a.1.last()
                .unwrap_or(&0.0)
                .total_cmp(b.1.last().unwrap_or(&0.0))
        })
        .cloned()
        .unwrap_or((0.0, Vec::new()));
    println!(
        "plain SGD, batch 32, α ∈ {grid:?}: {:.1} s; best α = {best_alpha}",
        start.elapsed().as_secs_f64()
    );

    println!(
        "\n{:>6} {:>22} {:>12} {:>18}",
        "epoch", "big batch test acc %", "batch size", "SGD test acc %"
    );
    for e in 0..epochs {
        let bb = accuracy
            .get(e)
            .map_or("-".to_string(), |a| format!("{:.2}", 100.0 * a));
        let bs = batch_sizes
            .get(e)
            .map_or("-".to_string(), |b| b.to_string());
        let sgd = best
            .get(e)
            .map_or("-".to_string(), |a| format!("{:.2}", 100.0 * a));
        println!("{:>6} {bb:>22} {bs:>12} {sgd:>18}", e + 1);
    }
    let first_95 = accuracy.iter().position(|&a| a >= 0.95).map(|e| e + 1);
    match first_95 {
        Some(e) => println!("\nbig batch reached 95 % test accuracy at epoch {e}"),
        None => println!("\nbig batch did not reach 95 % test accuracy in {epochs} epochs"),
    }
    Ok(())
}

/// One big-batch run with `rule` from the initial weights of `seed`: the final test accuracy
/// and the time it took.
fn with_rule<S: StepRule>(
    net: &Mlp<f32>,
    test: &Mlp<f32>,
    builder: BigBatchSgdBuilder<S>,
    epochs: usize,
    seed: u64,
) -> Result<(f64, f64), bigbatch::Error> {
    let start = Instant::now();
    let report = builder
        .max_epochs(epochs as f64)
        .seed(seed)
        .build()?
        .minimize(net, net.initial_weights(seed))?;
    Ok((test.accuracy(&report.w), start.elapsed().as_secs_f64()))
}

/// Every step rule on the same network, 3 seeds each.
fn compare_rules(
    net: &Mlp<f32>,
    test: &Mlp<f32>,
    epochs: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "\n{:>26} {:>16} {:>22} {:>10}",
        "rule (big batch)", "median acc %", "range %", "median s"
    );
    let seeds = [0u64, 1, 2];
    let names = [
        "L-BFGS (default)",
        "Armijo",
        "Adam α=1e-3",
        "Adadelta",
        "momentum α=0.1 μ=0.9",
        "network preset (Adadelta)",
    ];
    for (k, name) in names.iter().enumerate() {
        let mut acc = Vec::new();
        let mut secs = Vec::new();
        for &seed in &seeds {
            let b = BigBatchSgd::builder();
            let (a, s) = match k {
                0 => with_rule(net, test, b.step(Lbfgs::new()), epochs, seed)?,
                1 => with_rule(net, test, b.step(Armijo::new()), epochs, seed)?,
                2 => with_rule(net, test, b.step(Adam::new()), epochs, seed)?,
                3 => with_rule(net, test, b.step(Adadelta::new()), epochs, seed)?,
                4 => with_rule(
                    net,
                    test,
                    b.step(Momentum::new().step_size(0.1)),
                    epochs,
                    seed,
                )?,
                _ => with_rule(net, test, BigBatchSgd::network(), epochs, seed)?,
            };
            acc.push(100.0 * a);
            secs.push(s);
        }
        acc.sort_by(f64::total_cmp);
        secs.sort_by(f64::total_cmp);
        println!(
            "{name:>26} {:>16.2} {:>22} {:>10.1}",
            acc[1],
            format!("{:.2}–{:.2}", acc[0], acc[2]),
            secs[1]
        );
    }
    Ok(())
}
