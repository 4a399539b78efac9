//! How long the default optimizer takes to reach given relative suboptimalities on L2-regularized
//! logistic regression: the crate's half of `benches/scikit_learn.py`, which runs scikit-learn on
//! the same data and problem back to back with it.
//!
//! ```text
//! cargo run --release --example time_to_gap -- --data ../shared/data/fashion-mnist-tops.train.svm.gz \
//!     --features 784 --lambda 1e-4 --gaps 8e-4,8e-8 [--fstar F] [--f32] [--max-epochs 400]
//! ```
//!
//! The objective is `(1/N) Σ log(1 + exp(−y_i x_i·w)) + (λ/2)‖w‖²` with a bias feature appended
//! (regularized like the others), dense rows. `f*` is computed by full-batch L-BFGS to a
//! gradient norm of 1e-12 unless `--fstar` gives it (the script passes the lowest value either
//! library found). The run uses the default settings with no tolerance and stops when every gap
//! is reached or after `--max-epochs` epochs. After every iteration the full objective at the
//! iterate is evaluated with the clock stopped; the times printed are those of the optimizer
//! alone. `--f32` stores the data and runs in single precision (the objective is still evaluated
//! in `f64` at the rounded iterate).
//!
//! Output: one line `load_seconds S` (reading the file in f64), one line `fstar F`, then one line per gap:
//! `gap G seconds T epochs E reached R` (R: the relative suboptimality reached, or `none`).

mod support;

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use bigbatch::data::{Dataset, load_libsvm};
use bigbatch::models::Logistic;
use bigbatch::observe::from_fn;
use bigbatch::{BigBatchSgd, Float, IterView, Objective};
use ndarray::Array1;

struct Options {
    data: String,
    features: usize,
    lambda: f64,
    gaps: Vec<f64>,
    fstar: Option<f64>,
    reference_only: bool,
    f32: bool,
    max_epochs: f64,
}

fn parse() -> Result<Options, String> {
    let (mut data, mut features) = (None, None);
    let mut o = Options {
        data: String::new(),
        features: 0,
        lambda: 1e-4,
        gaps: vec![8e-4, 8e-8],
        fstar: None,
        reference_only: false,
        f32: false,
        max_epochs: 400.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--f32" || flag == "--reference-only" {
            o.f32 |= flag == "--f32";
            o.reference_only |= flag == "--reference-only";
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--data" => data = Some(value),
            "--features" => features = Some(value.parse().map_err(|e| bad(&e))?),
            "--lambda" => o.lambda = value.parse().map_err(|e| bad(&e))?,
            "--fstar" => o.fstar = Some(value.parse().map_err(|e| bad(&e))?),
            "--max-epochs" => o.max_epochs = value.parse().map_err(|e| bad(&e))?,
            "--gaps" => {
                o.gaps = value
                    .split(',')
                    .map(|g| g.trim().parse::<f64>().map_err(|e| bad(&e)))
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    o.data = data.ok_or("--data FILE is needed (LIBSVM, plain or gzip)")?;
    o.features = features.ok_or("--features D is needed (the file's feature count)")?;
    if o.gaps.iter().any(|g| g.is_nan() || *g <= 0.0) {
        return Err("--gaps: every gap must be positive".into());
    }
    Ok(o)
}

fn main() {
    let outcome = parse().and_then(|o| {
        if o.f32 {
            run::<f32>(&o)
        } else {
            run::<f64>(&o)
        }
        .map_err(|e| e.to_string())
    });
    if let Err(e) = outcome {
        eprintln!("time_to_gap: {e}");
        std::process::exit(1);
    }
}

fn run<F: Float>(o: &Options) -> Result<(), bigbatch::Error> {
    let start = Instant::now();
    let data = load_libsvm::<f64>(&o.data, Some(o.features))?
        .into_dense()
        .with_bias();
    println!("load_seconds {:.3}", start.elapsed().as_secs_f64());
    // The run's data in its own precision (a copy for f64, rounded once for f32); the
    // objective in f64, for f* and the gaps, whatever the run's precision.
    let x = data.features().to_dense().mapv(F::from_f64);
    let model = Logistic::new(
        Dataset::from_dense(x, data.targets().mapv(F::from_f64))?,
        o.lambda,
    )?;
    let exact = Logistic::<f64>::new(data, o.lambda)?;
    let all: Vec<usize> = (0..exact.n_samples()).collect();
    let fstar = match o.fstar {
        Some(f) => f,
        None => support::reference_optimum(&exact, 5_000).1,
    };
    println!("fstar {fstar:.17e}");
    if o.reference_only {
        return Ok(());
    }

    let mut reached: Vec<Option<(f64, f64, f64)>> = vec![None; o.gaps.len()];
    let mut paused = Duration::ZERO;
    let mut best = f64::INFINITY;
    let clock = Instant::now();
    let mut observer = from_fn(|v: &IterView<'_, F>| {
        let pause = Instant::now();
        let w = v.w.mapv(|x| x.as_f64());
        let gap = (exact.batch_loss(&w, &all) - fstar) / fstar.abs();
        best = best.min(gap);
        let now = (clock.elapsed() - paused).as_secs_f64();
        for (slot, &target) in reached.iter_mut().zip(&o.gaps) {
            if slot.is_none() && gap <= target {
                *slot = Some((now, v.record.epochs, gap));
            }
        }
        paused += pause.elapsed();
        if reached.iter().all(Option::is_some) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let report = BigBatchSgd::builder()
        .tolerance(0.0)
        .max_epochs(o.max_epochs)
        .build()?
        .minimize_with(&model, Array1::zeros(model.dim()), &mut observer)?;
    eprintln!("{report}");
    for (gap, hit) in o.gaps.iter().zip(&reached) {
        match hit {
            Some((seconds, epochs, at)) => {
                println!("gap {gap:e} seconds {seconds:.3} epochs {epochs:.2} reached {at:.3e}")
            }
            None => println!("gap {gap:e} seconds none epochs none reached none (best {best:.3e})"),
        }
    }
    Ok(())
}
