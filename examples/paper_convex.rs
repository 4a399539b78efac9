//! The paper's convex experiments: ridge, logistic and Huber regression, Big Batch SGD with
//! each step rule against the baselines it is compared with (plain SGD with the best constant
//! step and the best 1/t schedule on a grid, picked in hindsight, AdaBatch's schedule with the
//! best step of the same grid, and full-batch gradient descent). Prints relative suboptimality `(f − f*)/f*` against epochs, with `f*` computed to
//! high precision, and writes SVG plots.
//!
//! ```text
//! cargo run --release --example paper_convex                  # embedded adult, all three models
//! cargo run --release --example paper_convex -- \
//!     --data ../shared/data/diamonds.svm.gz --features 26 --model ridge --lambda 1e-4
//! ```
//!
//! Options: `--data PATH` (LIBSVM, plain or gzip; default: the embedded `adult`), `--features D`
//! (the feature count of the file), `--model logistic|ridge|huber|all` (default `all`),
//! `--lambda λ` (1e-4), `--delta δ` (Huber threshold, 1), `--epochs E` (20), `--seed S` (0),
//! `--seeds K` (1: with more, every method runs with seeds S..S+K and the table gives the
//! median and the worst),
//! `--sgd-batch B` (32), `--out DIR` (`target/paper_convex`), `--only WORDS` (repeatable: only
//! the methods whose label contains one of them). A bias feature is appended.

mod support;

use std::path::PathBuf;
use std::time::Instant;

use bigbatch::data::{Dataset, Features, load_libsvm};
use bigbatch::models::{Huber, LeastSquares, Logistic};
use bigbatch::{
    Armijo, BarzilaiBorwein, BigBatchSgd, Fixed, GrowthRule, InnerProductTest, NewtonCg, Objective,
    data::datasets,
};
use support::{Curve, big_batch_curve, plot, reference_optimum, tuned_adabatch, tuned_sgd};

struct Options {
    data: Option<PathBuf>,
    features: Option<usize>,
    models: Vec<String>,
    lambda: f64,
    delta: f64,
    epochs: f64,
    seed: u64,
    seeds: u64,
    sgd_batch: usize,
    out: PathBuf,
    only: Vec<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        data: None,
        features: None,
        models: vec!["logistic".into(), "ridge".into(), "huber".into()],
        lambda: 1e-4,
        delta: 1.0,
        epochs: 20.0,
        seed: 0,
        seeds: 1,
        sgd_batch: 32,
        out: PathBuf::from("target/paper_convex"),
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| {
            v.parse::<f64>()
                .map_err(|_| format!("{flag}: `{v}` is not a number"))
        };
        match flag.as_str() {
            "--data" => o.data = Some(PathBuf::from(value()?)),
            "--features" => o.features = Some(num(value()?)? as usize),
            "--model" => {
                let m = value()?;
                o.models = if m == "all" {
                    o.models.clone()
                } else {
                    vec![m]
                };
            }
            "--lambda" => o.lambda = num(value()?)?,
            "--delta" => o.delta = num(value()?)?,
            "--epochs" => o.epochs = num(value()?)?,
            "--seed" => o.seed = num(value()?)? as u64,
            "--seeds" => o.seeds = (num(value()?)? as u64).max(1),
            "--sgd-batch" => o.sgd_batch = num(value()?)? as usize,
            "--out" => o.out = PathBuf::from(value()?),
            "--only" => o.only.push(value()?),
            "-h" | "--help" => {
                return Err("see the options at the top of examples/paper_convex.rs".into());
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if let Some(m) = o
        .models
        .iter()
        .find(|m| !["logistic", "ridge", "huber"].contains(&m.as_str()))
    {
        return Err(format!(
            "unknown model `{m}` (logistic, ridge, huber or all)"
        ));
    }
    Ok(o)
}

/// Dense storage when at least a quarter of the entries are non-zero.
fn best_storage(data: Dataset<f64>) -> Dataset<f64> {
    let dense = match data.features() {
        Features::Sparse(m) => m.nnz() * 4 >= m.n_rows() * m.n_cols(),
        Features::Dense(_) => true,
    };
    if dense { data.into_dense() } else { data }
}

/// An upper bound on the smoothness constant: `curvature · mean‖x_i‖² + λ`.
fn smoothness_bound(data: &Dataset<f64>, curvature: f64, lambda: f64) -> f64 {
    curvature * data.features().row_norms_sq().mean().unwrap_or(1.0) + lambda
}

/// The statistic of several seeds' curves at one epoch: (median, worst).
fn median_worst(curves: &[Curve], epoch: f64) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = curves.iter().filter_map(|c| c.at(epoch)).collect();
    if v.len() < curves.len() || v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        0.5 * (v[v.len() / 2 - 1] + v[v.len() / 2])
    };
    Some((median, v[v.len() - 1]))
}

type Method<'a, O> = (
    &'a str,
    Box<dyn Fn(&O, u64, f64) -> Result<Vec<Curve>, bigbatch::Error> + 'a>,
);

fn run_model<O: Objective<f64>>(
    name: &str,
    model: &O,
    l_bound: f64,
    o: &Options,
    tag: &str,
) -> Result<Vec<Curve>, Box<dyn std::error::Error>> {
    let n = model.n_samples();
    let start = Instant::now();
    let (_, f_star, grad_norm) = reference_optimum(model, 3000);
    println!(
        "\n## {name} on {tag}: N = {n}, d = {}, λ = {}; f* = {f_star:.12e} (‖∇ℓ‖ = {grad_norm:.1e}, {:.1} s)",
        model.dim(),
        o.lambda,
        start.elapsed().as_secs_f64()
    );
    let epochs = o.epochs;
    let builder = move |seed: u64| {
        BigBatchSgd::builder()
            .seed(seed)
            .max_epochs(epochs)
            .tolerance(0.0)
    };
    let fixed = 1.0 / (2.0 * l_bound);
    let grid: Vec<f64> = (-2..=4).map(|k| 4f64.powi(k) / l_bound).collect();
    let grid_adabatch = grid.clone();
    let sgd_batch = o.sgd_batch;
    let methods: Vec<Method<'_, O>> = vec![
        (
            "big batch L-BFGS (default)",
            Box::new(move |m, seed, f| {
                Ok(vec![big_batch_curve(
                    "big batch L-BFGS",
                    m,
                    &mut builder(seed).build()?,
                    f,
                )?])
            }),
        ),
        (
            "big batch L-BFGS, unbiased averaged test",
            Box::new(move |m, seed, f| {
                let mut opt = builder(seed).unbiased_signal(true).smoothing(0.9).build()?;
                Ok(vec![big_batch_curve(
                    "big batch L-BFGS unbiased averaged",
                    m,
                    &mut opt,
                    f,
                )?])
            }),
        ),
        (
            "big batch L-BFGS, averaged test",
            Box::new(move |m, seed, f| {
                let mut opt = builder(seed).smoothing(0.9).build()?;
                Ok(vec![big_batch_curve(
                    "big batch L-BFGS averaged",
                    m,
                    &mut opt,
                    f,
                )?])
            }),
        ),
        (
            "big batch L-BFGS, jump growth",
            Box::new(move |m, seed, f| {
                let mut opt = builder(seed).growth_rule(GrowthRule::ToRequired).build()?;
                Ok(vec![big_batch_curve(
                    "big batch L-BFGS jump",
                    m,
                    &mut opt,
                    f,
                )?])
            }),
        ),
        (
            "big batch, the newton preset",
            Box::new(move |m, seed, f| {
                let mut opt = BigBatchSgd::newton()
                    .seed(seed)
                    .max_epochs(epochs)
                    .tolerance(0.0)
                    .build()?;
                Ok(vec![big_batch_curve(
                    "big batch newton preset",
                    m,
                    &mut opt,
                    f,
                )?])
            }),
        ),
        (
            "big batch Newton-CG (Hessian on a tenth of the batch)",
            Box::new(move |m, seed, f| {
                let mut opt = builder(seed).step(NewtonCg::new()).build()?;
                Ok(vec![big_batch_curve(
                    "big batch Newton-CG",
                    m,
                    &mut opt,
                    f,
                )?])
            }),
        ),
        (
            "big batch Newton-CG, Hessian of the whole batch",
            Box::new(move |m, seed, f| {
                let rule = NewtonCg::new().hessian_fraction(1.0);
                let mut opt = builder(seed).step(rule).build()?;
                Ok(vec![big_batch_curve(
                    "big batch Newton-CG whole",
                    m,
                    &mut opt,
                    f,
                )?])
            }),
        ),
        (
            "big batch, the stream preset",
            Box::new(move |m, seed, f| {
                let mut opt = BigBatchSgd::stream()
                    .seed(seed)
                    .max_epochs(epochs)
                    .tolerance(0.0)
                    .build()?;
                Ok(vec![big_batch_curve(
                    "big batch stream preset",
                    m,
                    &mut opt,
                    f,
                )?])
            }),
        ),
        (
            "big batch, inner-product test (the paper's preset)",
            Box::new(move |m, seed, f| {
                let mut opt = BigBatchSgd::paper()
                    .seed(seed)
                    .max_epochs(epochs)
                    .tolerance(0.0)
                    .theta(0.9)
                    .inner_product(InnerProductTest::new())
                    .build()?;
                Ok(vec![big_batch_curve(
                    "big batch inner product",
                    m,
                    &mut opt,
                    f,
                )?])
            }),
        ),
        (
            "big batch, inner-product and orthogonality tests (the paper's preset)",
            Box::new(move |m, seed, f| {
                let mut opt = BigBatchSgd::paper()
                    .seed(seed)
                    .max_epochs(epochs)
                    .tolerance(0.0)
                    .theta(0.9)
                    .inner_product(InnerProductTest::new().orthogonality(5.84))
                    .build()?;
                Ok(vec![big_batch_curve(
                    "big batch inner product + orthogonality",
                    m,
                    &mut opt,
                    f,
                )?])
            }),
        ),
        (
            "big batch, the paper's preset",
            Box::new(move |m, seed, f| {
                let mut opt = BigBatchSgd::paper()
                    .seed(seed)
                    .max_epochs(epochs)
                    .tolerance(0.0)
                    .build()?;
                Ok(vec![big_batch_curve(
                    "big batch paper (Armijo)",
                    m,
                    &mut opt,
                    f,
                )?])
            }),
        ),
        (
            "big batch, Armijo",
            Box::new(move |m, seed, f| {
                Ok(vec![big_batch_curve(
                    "big batch Armijo",
                    m,
                    &mut builder(seed).step(Armijo::new()).build()?,
                    f,
                )?])
            }),
        ),
        (
            "big batch, Barzilai-Borwein",
            Box::new(move |m, seed, f| {
                let mut opt = BigBatchSgd::paper()
                    .seed(seed)
                    .max_epochs(epochs)
                    .tolerance(0.0)
                    .step(BarzilaiBorwein::new())
                    .build()?;
                Ok(vec![big_batch_curve("big batch BB", m, &mut opt, f)?])
            }),
        ),
        (
            "big batch, fixed 1/(2L)",
            Box::new(move |m, seed, f| {
                let mut opt = BigBatchSgd::paper()
                    .seed(seed)
                    .max_epochs(epochs)
                    .tolerance(0.0)
                    .step(Fixed::new(fixed))
                    .build()?;
                Ok(vec![big_batch_curve("big batch fixed", m, &mut opt, f)?])
            }),
        ),
        (
            "gradient descent (Armijo)",
            Box::new(move |m, seed, f| {
                let mut opt = builder(seed).step(Armijo::new()).initial_batch(n).build()?;
                Ok(vec![big_batch_curve("gradient descent", m, &mut opt, f)?])
            }),
        ),
        (
            "plain SGD, 2 × 7 step sizes",
            Box::new(move |m, seed, f| Ok(tuned_sgd(m, &grid, sgd_batch, epochs, seed, f))),
        ),
        (
            "AdaBatch schedule, 7 step sizes",
            Box::new(move |m, seed, f| {
                Ok(
                    tuned_adabatch(m, &grid_adabatch, sgd_batch, epochs, seed, f)
                        .into_iter()
                        .collect(),
                )
            }),
        ),
    ];
    // curves[k][s]: curve k (a method may give several) of seed s.
    let mut by_label: Vec<(String, Vec<Curve>)> = Vec::new();
    let chosen =
        |label: &str| o.only.is_empty() || o.only.iter().any(|w| label.contains(w.as_str()));
    for (label, run) in methods.iter().filter(|(label, _)| chosen(label)) {
        let t = Instant::now();
        for seed in 0..o.seeds {
            for c in run(model, o.seed + seed, f_star)? {
                let key = c.label.split(" α=").next().unwrap_or(&c.label).to_string();
                match by_label.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, v)) => v.push(c),
                    None => by_label.push((key, vec![c])),
                }
            }
        }
        println!(
            "  {label:<34} {:6.2} s per seed",
            t.elapsed().as_secs_f64() / o.seeds as f64
        );
    }

    let marks: Vec<f64> = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0]
        .into_iter()
        .filter(|&e| e <= o.epochs)
        .collect();
    let what = if o.seeds > 1 {
        format!("median (worst) of {} seeds", o.seeds)
    } else {
        "relative suboptimality".to_string()
    };
    print!("\n  {:<30}", format!("epoch: {what}"));
    for e in &marks {
        print!(" {:>19}", e);
    }
    println!();
    for (label, curves) in &by_label {
        print!("  {label:<30}");
        for &e in &marks {
            match median_worst(curves, e) {
                Some((med, worst)) if o.seeds > 1 => {
                    print!(" {:>19}", format!("{med:.2e} ({worst:.2e})"))
                }
                Some((med, _)) => print!(" {med:>19.2e}"),
                None => print!(" {:>19}", "-"),
            }
        }
        println!();
    }
    // Plots show the first seed.
    let curves: Vec<Curve> = by_label.iter().map(|(_, v)| v[0].clone()).collect();
    std::fs::create_dir_all(&o.out)?;
    let stem = format!("{tag}_{name}_lambda{}", o.lambda);
    let sub = o.out.join(format!("{stem}_suboptimality.svg"));
    plot(
        &sub,
        &format!("{name}, {tag}, λ = {}: relative suboptimality", o.lambda),
        &curves,
        None,
    )?;
    let batch = o.out.join(format!("{stem}_batch.svg"));
    plot(
        &batch,
        &format!("{name}, {tag}: batch size of the big batch runs"),
        &curves,
        Some(n),
    )?;
    println!("  plots: {} and {}", sub.display(), batch.display());
    Ok(curves)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = parse_args().map_err(|e| format!("paper_convex: {e}"))?;
    let (data, tag) = match &o.data {
        Some(path) => {
            let tag = path
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or("data")
                .split('.')
                .next()
                .unwrap_or("data");
            (load_libsvm::<f64>(path, o.features)?, tag.to_string())
        }
        None => (datasets::adult::<f64>(), "adult".to_string()),
    };
    let data = best_storage(data.with_bias());
    for m in &o.models {
        match m.as_str() {
            "logistic" => {
                let l = smoothness_bound(&data, 0.25, o.lambda);
                run_model(
                    "logistic",
                    &Logistic::new(data.clone(), o.lambda)?,
                    l,
                    &o,
                    &tag,
                )?;
            }
            "ridge" => {
                let l = smoothness_bound(&data, 1.0, o.lambda);
                run_model(
                    "ridge",
                    &LeastSquares::new(data.clone(), o.lambda)?,
                    l,
                    &o,
                    &tag,
                )?;
            }
            _ => {
                let l = smoothness_bound(&data, 1.0, o.lambda);
                run_model(
                    "huber",
                    &Huber::new(data.clone(), o.delta, o.lambda)?,
                    l,
                    &o,
                    &tag,
                )?;
            }
        }
    }
    Ok(())
}
