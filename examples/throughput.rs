//! How fast a batch statistics pass is, against the limit set by reading the rows.
//!
//! ```text
//! cargo run --release --example throughput                      # generated 60,000 × 784
//! cargo run --release --example throughput -- --data FILE --features D [--f32]
//! ```
//!
//! Prints, for dense logistic regression, the time of one statistics pass (mean gradient,
//! variance and loss of a batch) beside a pure read pass over the same rows (every stored value
//! summed into 16 partial sums: a pass limited by memory, the yardstick of every ratio) and
//! ndarray's own `X_B·w` and `X_Bᵀ·r` on the same rows gathered beforehand; the per-sample
//! default path of the `Objective` trait; one thread against two; and the share of a whole
//! run's time spent in the statistics and loss passes. Ratios are measured in one run, so
//! they hold on a busy machine better than bare times do.
//!
//! Options: `--data FILE` (LIBSVM, plain or gzip) with `--features D`; `--rows N`,
//! `--cols D` and `--density P` for the generated data (default 60000, 784, 0.5);
//! `--batch K` (default 10000); `--repeats R` (default 11); `--epochs E` for the whole run
//! (default 10); `--f32` to store the data and run in single precision.

#[path = "support/kernels.rs"]
mod kernels;

use std::hint::black_box;
use std::time::Instant;

use bigbatch::data::{Dataset, load_libsvm};
use bigbatch::models::Logistic;
use bigbatch::{BigBatchSgd, Float, Forwarded, GradStats, Objective, parallel};
use kernels::{
    PerSample, Timed, gather, logistic_data, median_seconds, ndarray_dots, random_batch, read_pass,
};
use ndarray::Array1;

struct Options {
    data: Option<String>,
    features: Option<usize>,
    rows: usize,
    cols: usize,
    density: f64,
    batch: usize,
    repeats: usize,
    epochs: f64,
    f32: bool,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        data: None,
        features: None,
        rows: 60_000,
        cols: 784,
        density: 0.5,
        batch: 10_000,
        repeats: 11,
        epochs: 10.0,
        f32: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--f32" {
            o.f32 = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--data" => o.data = Some(value),
            "--features" => o.features = Some(value.parse().map_err(|e| bad(&e))?),
            "--rows" => o.rows = value.parse().map_err(|e| bad(&e))?,
            "--cols" => o.cols = value.parse().map_err(|e| bad(&e))?,
            "--density" => o.density = value.parse().map_err(|e| bad(&e))?,
            "--batch" => o.batch = value.parse().map_err(|e| bad(&e))?,
            "--repeats" => o.repeats = value.parse().map_err(|e| bad(&e))?,
            "--epochs" => o.epochs = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if o.data.is_some() != o.features.is_some() {
        return Err("--data and --features go together".into());
    }
    if o.repeats == 0 || o.batch < 2 || o.rows < 2 || o.cols == 0 {
        return Err("--repeats ≥ 1, --batch ≥ 2, --rows ≥ 2 and --cols ≥ 1".into());
    }
    Ok(o)
}

fn main() {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("throughput: {e}");
            std::process::exit(2);
        }
    };
    let outcome = if options.f32 {
        run::<f32>(&options)
    } else {
        run::<f64>(&options)
    };
    if let Err(e) = outcome {
        eprintln!("throughput: {e}");
        std::process::exit(1);
    }
}

fn run<F: Float>(o: &Options) -> Result<(), bigbatch::Error> {
    let (data, name): (Dataset<F>, String) = match (&o.data, o.features) {
        (Some(path), Some(d)) => (load_libsvm::<F>(path, Some(d))?.into_dense(), path.clone()),
        _ => (
            logistic_data(o.rows, o.cols, o.density, 1),
            format!("generated {} × {}, density {}", o.rows, o.cols, o.density),
        ),
    };
    let (n, d) = (data.n_samples(), data.n_features());
    let model = Logistic::new(data, 1e-4)?;
    let bytes = std::mem::size_of::<F>();
    println!(
        "dense logistic regression on {name}: {n} rows, {d} features, {}; {} cores here",
        std::any::type_name::<F>(),
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );

    // One batch, as the optimizer would draw it.
    let k = o.batch.min(n);
    let batch = random_batch(n, k, 7);
    let w = Array1::from_shape_fn(d, |j| F::from_f64(0.01 * ((j % 7) as f64 - 3.0)));
    let xb = gather(model.features(), &batch);
    let direction = Array1::from_shape_fn(d, |j| F::from_f64(0.001 * ((j % 5) as f64 - 2.0)));

    let mut stats = GradStats::<F>::new(d);
    let per_sample_model = PerSample(&model);
    let (read, dots, stats_1, stats_line, prepare, along, per_sample) =
        parallel::with_threads(1, || {
            let read = median_seconds(o.repeats, || {
                black_box(read_pass(model.features(), &batch));
            });
            let dots = median_seconds(o.repeats, || {
                black_box(ndarray_dots(&xb, &w));
            });
            let stats_1 = median_seconds(o.repeats, || {
                stats.reset();
                model.batch_gradient(&w, &batch, &mut stats);
                black_box(stats.variance());
            });
            let mut line = model.line().expect("linear models have lines");
            let stats_line = median_seconds(o.repeats, || {
                stats.reset();
                line.prepare_with_gradient(&w, &direction, &batch, &mut stats);
                black_box(stats.variance());
            });
            let prepare = median_seconds(o.repeats, || {
                line.prepare(&w, &direction, &batch);
            });
            let along = median_seconds(o.repeats, || {
                black_box(line.loss(F::from_f64(0.5), &w));
            });
            let per_sample = median_seconds(o.repeats.min(3), || {
                stats.reset();
                per_sample_model.batch_gradient(&w, &batch, &mut stats);
                black_box(stats.variance());
            });
            (read, dots, stats_1, stats_line, prepare, along, per_sample)
        })?;
    let stats_2 = parallel::with_threads(2, || {
        median_seconds(o.repeats, || {
            stats.reset();
            model.batch_gradient(&w, &batch, &mut stats);
            black_box(stats.variance());
        })
    })?;

    let gbs = |s: f64| (k * d * bytes) as f64 / s / 1e9;
    println!(
        "\nbatch of {k} rows ({:.1} MB of features), median of {} runs:\n",
        (k * d * bytes) as f64 / 1e6,
        o.repeats
    );
    println!(
        "{:<40} {:>10} {:>14} {:>8} {:>14}",
        "pass", "ms", "samples/s", "GB/s", "× read pass"
    );
    for (label, s) in [
        ("read pass: Σ x_ij, 16 sums (1 thread)", read),
        ("ndarray X_B·w + X_Bᵀ·r (1 thread)", dots),
        ("statistics pass (1 thread)", stats_1),
        ("  + x_i·d for a line search (1 thread)", stats_line),
        ("line x_i·w, x_i·d alone (1 thread)", prepare),
        ("a loss along the line (1 thread)", along),
        ("statistics pass (2 threads)", stats_2),
        ("per-sample default path (1 thread)", per_sample),
    ] {
        println!(
            "{label:<40} {:>10.3} {:>14.3e} {:>8.2} {:>14.2}",
            s * 1e3,
            k as f64 / s,
            gbs(s),
            s / read
        );
    }
    println!(
        "\nstatistics pass against ndarray's two products: {:.2}×; fast path against the \
         per-sample path: {:.1}× faster; 2 threads against 1: {:.2}×",
        stats_1 / dots,
        per_sample / stats_1,
        stats_1 / stats_2
    );

    // Every row, in storage order (the whole-data passes near the end of a run).
    let all: Vec<usize> = (0..n).collect();
    let (read_all, stats_all) = parallel::with_threads(1, || {
        let r = median_seconds(o.repeats, || {
            black_box(read_pass(model.features(), &all));
        });
        let s = median_seconds(o.repeats, || {
            stats.reset();
            model.batch_gradient(&w, &all, &mut stats);
            black_box(stats.variance());
        });
        (r, s)
    })?;
    let bytes_all = (n * d * bytes) as f64;
    println!(
        "\nall {n} rows in order (1 thread): read pass {:.2} GB/s, statistics pass {:.2} GB/s, \
         {:.2}× the read pass",
        bytes_all / read_all / 1e9,
        bytes_all / stats_all / 1e9,
        stats_all / read_all
    );

    // Batch sizes from 100 to all rows.
    println!(
        "\n{:>8} {:>16} {:>16} {:>12}",
        "batch", "pass / read", "2 thr speed-up", "samples/s"
    );
    let mut size = 100;
    loop {
        let size_now = size.min(n);
        let b = random_batch(n, size_now, 11);
        let reps = (o.repeats * 10_000 / size_now).clamp(o.repeats, 200);
        let (r, s1) = parallel::with_threads(1, || {
            let r = median_seconds(reps, || {
                black_box(read_pass(model.features(), &b));
            });
            let s1 = median_seconds(reps, || {
                stats.reset();
                model.batch_gradient(&w, &b, &mut stats);
                black_box(stats.variance());
            });
            (r, s1)
        })?;
        let s2 = parallel::with_threads(2, || {
            median_seconds(reps, || {
                stats.reset();
                model.batch_gradient(&w, &b, &mut stats);
                black_box(stats.variance());
            })
        })?;
        println!(
            "{size_now:>8} {:>16.2} {:>16.2} {:>12.3e}",
            s1 / r,
            s1 / s2,
            size_now as f64 / s2
        );
        if size_now == n {
            break;
        }
        size *= 10;
    }

    // A whole run with the default settings: where does the time go?
    let timed = Forwarded(Timed::new(&model));
    let start = Instant::now();
    let report = BigBatchSgd::builder()
        .max_epochs(o.epochs)
        .tolerance(0.0)
        .build()?
        .minimize(&timed, Array1::zeros(d))?;
    let total = start.elapsed().as_secs_f64();
    let (g, l) = (
        timed.0.in_gradient().as_secs_f64(),
        timed.0.in_loss().as_secs_f64(),
    );
    println!(
        "\nwhole run, default settings, {} epochs budget, {} threads: {report}",
        o.epochs,
        parallel::current_threads()
    );
    println!(
        "{total:.2} s in all: statistics passes {:.1} %, loss passes (line searches, final \
         loss) {:.1} %, everything else {:.1} %",
        100.0 * g / total,
        100.0 * l / total,
        100.0 * (total - g - l) / total
    );
    Ok(())
}
