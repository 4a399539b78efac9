//! The paper's convex experiments: ridge, logistic and Huber regression, Big Batch SGD with
//! each step rule against the baselines it is compared with (plain SGD with the best constant
//! step and the best 1/t schedule on a grid, picked in hindsight, and full-batch gradient
//! descent). Prints relative suboptimality `(f − f*)/f*` against epochs, with `f*` computed to
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
//! `--sgd-batch B` (32), `--out DIR` (`target/paper_convex`). A bias feature is appended.

mod support;

use std::path::PathBuf;
use std::time::Instant;

use bigbatch::data::{Dataset, Features, load_libsvm};
use bigbatch::models::{Huber, LeastSquares, Logistic};
use bigbatch::{BarzilaiBorwein, BigBatchSgd, Fixed, Objective, datasets};
use support::{Curve, big_batch_curve, plot, reference_optimum, tuned_sgd};

struct Options {
    data: Option<PathBuf>,
    features: Option<usize>,
    models: Vec<String>,
    lambda: f64,
    delta: f64,
    epochs: f64,
    seed: u64,
    sgd_batch: usize,
    out: PathBuf,
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
        sgd_batch: 32,
        out: PathBuf::from("target/paper_convex"),
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
            "--sgd-batch" => o.sgd_batch = num(value()?)? as usize,
            "--out" => o.out = PathBuf::from(value()?),
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
    let builder = || {
        BigBatchSgd::builder()
            .seed(o.seed)
            .max_epochs(o.epochs)
            .tolerance(0.0)
    };
    let mut curves = Vec::new();
    let mut timed = |label: &str, f: &mut dyn FnMut() -> Result<Vec<Curve>, bigbatch::Error>| {
        let t = Instant::now();
        let c = f()?;
        println!("  {label:<30} {:6.2} s", t.elapsed().as_secs_f64());
        curves.extend(c);
        Ok::<(), bigbatch::Error>(())
    };
    timed("big batch, Armijo", &mut || {
        Ok(vec![big_batch_curve(
            "big batch Armijo",
            model,
            &mut builder().build()?,
            f_star,
        )?])
    })?;
    timed("big batch, Barzilai-Borwein", &mut || {
        Ok(vec![big_batch_curve(
            "big batch BB",
            model,
            &mut builder().step(BarzilaiBorwein::new()).build()?,
            f_star,
        )?])
    })?;
    let fixed = 1.0 / (2.0 * l_bound);
    timed("big batch, fixed 1/(2L)", &mut || {
        Ok(vec![big_batch_curve(
            "big batch fixed",
            model,
            &mut builder().step(Fixed::new(fixed)).build()?,
            f_star,
        )?])
    })?;
    timed("gradient descent (Armijo)", &mut || {
        Ok(vec![big_batch_curve(
            "gradient descent",
            model,
            &mut builder().initial_batch(n).build()?,
            f_star,
        )?])
    })?;
    let grid: Vec<f64> = (-2..=4).map(|k| 4f64.powi(k) / l_bound).collect();
    timed("plain SGD, 2 × 7 step sizes", &mut || {
        Ok(tuned_sgd(
            model,
            &grid,
            o.sgd_batch,
            o.epochs,
            o.seed,
            f_star,
        ))
    })?;

    let marks: Vec<f64> = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0]
        .into_iter()
        .filter(|&e| e <= o.epochs)
        .collect();
    print!("\n  {:<30}", "relative suboptimality at epoch");
    for e in &marks {
        print!(" {e:>9}");
    }
    println!();
    for c in &curves {
        print!("  {:<30}", c.label);
        for &e in &marks {
            match c.at(e) {
                Some(v) => print!(" {v:>9.2e}"),
                None => print!(" {:>9}", "-"),
            }
        }
        println!();
    }
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
