//! How long the default optimizer takes to reach given relative suboptimalities on L2-regularized
//! logistic regression: the crate's half of `benches/scikit_learn.py`, which runs scikit-learn on
//! the same data and problem back to back with it.
//!
//! ```text
//! cargo run --release --example time_to_gap -- --data ../shared/data/fashion-mnist-tops.train.svm.gz \
//!     --features 784 --lambda 1e-4 --gaps 8e-4,8e-8 [--fstar F] [--f32] [--max-epochs 400] \
//!     [--step lbfgs|newton|tail|newton-tail] [--hessian-fraction 0.1] [--cg-iterations 20]
//! ```
//!
//! The objective is `(1/N) Σ log(1 + exp(−y_i x_i·w)) + (λ/2)‖w‖²` with a bias feature appended
//! (regularized like the others), rows stored as `load_libsvm` chooses for the file (dense
//! Fashion-MNIST tops, sparse adult). `--step newton` runs the [`NewtonCg`] rule in place of the
//! default L-BFGS (its Hessian on a tenth of the batch, or `--hessian-fraction`); `--step tail`
//! is the `BigBatchSgd::newton()` preset (L-BFGS while the batch grows, then Newton-CG with the
//! whole batch's Hessian), with those flags applied to its Newton rule; `--step newton-tail`
//! takes the default `NewtonCg` while the batch grows and the preset's once it is whole. `f*` is computed by full-batch L-BFGS to a
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

use bigbatch::data::load_libsvm;
use bigbatch::models::Logistic;
use bigbatch::observe::from_fn;
use bigbatch::{BigBatchSgd, Float, IterView, Lbfgs, NewtonCg, Objective, Switch};
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
    newton: bool,
    hessian_fraction: Option<f64>,
    cg_iterations: Option<usize>,
    tail: bool,
    newton_tail: bool,
    precondition: bool,
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
        newton: false,
        hessian_fraction: None,
        cg_iterations: None,
        tail: false,
        newton_tail: false,
        precondition: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--precondition" {
            o.precondition = true;
            continue;
        }
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
            "--cg-iterations" => o.cg_iterations = Some(value.parse().map_err(|e| bad(&e))?),
            "--hessian-fraction" => o.hessian_fraction = Some(value.parse().map_err(|e| bad(&e))?),
            "--step" => {
                (o.newton, o.tail) = match value.as_str() {
                    "lbfgs" => (false, false),
                    "newton" => (true, false),
                    "tail" => (true, true),
                    "newton-tail" => {
                        o.newton_tail = true;
                        (true, true)
                    }
                    _ => return Err(bad(&"the rules are lbfgs, newton, tail and newton-tail")),
                }
            }
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
    let data = load_libsvm::<f64>(&o.data, Some(o.features))?.with_bias();
    println!("load_seconds {:.3}", start.elapsed().as_secs_f64());
    // The run's data in its own precision (read again, rounded once for f32); the objective
    // in f64, for f* and the gaps, whatever the run's precision.
    let model = Logistic::new(
        load_libsvm::<F>(&o.data, Some(o.features))?.with_bias(),
        o.lambda,
    )?;
    eprintln!(
        "rows stored {}",
        if model.features().is_dense() {
            "dense"
        } else {
            "sparse"
        }
    );
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
    let builder = BigBatchSgd::builder()
        .tolerance(0.0)
        .max_epochs(o.max_epochs);
    let w0 = Array1::zeros(model.dim());
    let report = if o.newton {
        // The Newton rule of the preset takes the whole batch's Hessian; alone it takes a tenth.
        let mut rule = NewtonCg::new();
        if o.tail {
            rule = rule.hessian_fraction(1.0);
        }
        if let Some(f) = o.hessian_fraction {
            rule = rule.hessian_fraction(f);
        }
        if let Some(n) = o.cg_iterations {
            rule = rule.max_cg_iterations(n);
        }
        rule = rule.precondition(o.precondition);
        if o.newton_tail {
            let sampled = NewtonCg::new();
            let mut opt = builder.step(Switch::new(sampled, rule)).build()?;
            let report = opt.minimize_with(&model, w0, &mut observer)?;
            let s = opt.step_rule();
            eprintln!(
                "hessian products {} + {}",
                s.sampled().products(),
                s.whole().products()
            );
            report
        } else if o.tail {
            let mut opt = builder.step(Switch::new(Lbfgs::new(), rule)).build()?;
            let report = opt.minimize_with(&model, w0, &mut observer)?;
            eprintln!("hessian products {}", opt.step_rule().whole().products());
            report
        } else {
            let mut opt = builder.step(rule).build()?;
            let report = opt.minimize_with(&model, w0, &mut observer)?;
            eprintln!("hessian products {}", opt.step_rule().products());
            report
        }
    } else {
        builder.build()?.minimize_with(&model, w0, &mut observer)?
    };
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
