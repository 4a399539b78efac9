//! The fingerprint of the optimizer's behaviour: 136 runs (the bundled models on the embedded
//! data, every step rule, both batch modes, f32 and f64, two seeds), each reduced to a hash of
//! its report and of every iteration record, floats as bits. A change that must not alter
//! behaviour (a refactor, a new option that is off by default) leaves every line the same.
//!
//! ```text
//! cargo run --release --example fingerprint > before.txt
//! # ... change the code ...
//! cargo run --release --example fingerprint > after.txt && diff before.txt after.txt
//! ```
//!
//! Each line names the run and gives its hash, stop reason, iterations and final loss; the last
//! line hashes them all.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use bigbatch::data::Dataset;
use bigbatch::models::{Huber, LeastSquares, Logistic, Softmax};
use bigbatch::{
    Adadelta, Adam, Armijo, BarzilaiBorwein, BatchMode, BigBatchSgd, BigBatchSgdBuilder, Fixed,
    Float, History, IterRecord, Lbfgs, Momentum, Objective, Report, StepRule, data::datasets,
};
use ndarray::Array1;

/// A report and its records, floats as bits.
fn hash_run<F: Float>(report: &Report<F>, records: &[IterRecord<F>]) -> u64 {
    let mut h = DefaultHasher::new();
    let bits = |x: F| x.as_f64().to_bits();
    for x in &report.w {
        bits(*x).hash(&mut h);
    }
    (
        bits(report.loss),
        report.iterations,
        report.grad_evals,
        report.loss_evals,
        report.batch_size,
        bits(report.grad_norm_sq),
        format!("{:?}", report.stop),
    )
        .hash(&mut h);
    for r in records {
        (
            r.iteration,
            r.epochs.to_bits(),
            r.batch_size,
            r.growth_rounds,
            bits(r.loss),
            r.loss_after.map(bits),
            bits(r.grad_norm_sq),
            bits(r.variance),
            bits(r.step_size),
            r.backtracks,
            r.grad_evals,
            r.loss_evals,
        )
            .hash(&mut h);
    }
    h.finish()
}

fn run<F, O, S>(name: &str, builder: BigBatchSgdBuilder<S>, model: &O, lines: &mut Vec<String>)
where
    F: Float,
    O: Objective<F>,
    S: StepRule,
{
    run_for(name, 8.0, builder, model, lines);
}

/// A run with a budget of `epochs`.
fn run_for<F, O, S>(
    name: &str,
    epochs: f64,
    builder: BigBatchSgdBuilder<S>,
    model: &O,
    lines: &mut Vec<String>,
) where
    F: Float,
    O: Objective<F>,
    S: StepRule,
{
    let mut opt = match builder.max_epochs(epochs).build() {
        Ok(opt) => opt,
        Err(e) => panic!("{name}: {e}"),
    };
    let mut history = History::new();
    let w0 = Array1::zeros(model.dim());
    let line = match opt.minimize_with(model, w0, &mut history) {
        Ok(report) => format!(
            "{name}: {:016x} {:?} {} iterations, loss {:.6e}, {:.2} epochs, {:.2} data passes",
            hash_run(&report, history.records()),
            report.stop,
            report.iterations,
            report.loss.as_f64(),
            report.epochs,
            report.data_passes
        ),
        Err(e) => format!("{name}: error {e}"),
    };
    println!("{line}");
    lines.push(line);
}

/// Every configuration on one model, for two seeds.
fn configurations<F: Float, O: Objective<F>>(problem: &str, model: &O, lines: &mut Vec<String>) {
    let ty = std::any::type_name::<F>();
    for seed in [0, 1] {
        let name = |c: &str| format!("{problem} {ty} {c} seed {seed}");
        let b = || BigBatchSgd::builder().seed(seed);
        run(&name("default"), b(), model, lines);
        run(
            &name("paper"),
            BigBatchSgd::paper().seed(seed),
            model,
            lines,
        );
        run(
            &name("network"),
            BigBatchSgd::network().seed(seed),
            model,
            lines,
        );
        run(
            &name("bb fresh"),
            b().batch_mode(BatchMode::Fresh)
                .step(BarzilaiBorwein::new()),
            model,
            lines,
        );
        run(
            &name("armijo persistent theta 0.5"),
            b().theta(0.5).step(Armijo::new()),
            model,
            lines,
        );
        run(
            &name("lbfgs fresh"),
            b().batch_mode(BatchMode::Fresh).step(Lbfgs::new()),
            model,
            lines,
        );
    }
    // One seed each of the rules with a rate, and of the default to its end.
    let name = |c: &str| format!("{problem} {ty} {c} seed 0");
    let b = BigBatchSgd::builder;
    run_for(&name("default to the end"), 300.0, b(), model, lines);
    run(&name("fixed"), b().step(Fixed::new(0.05)), model, lines);
    run(
        &name("adam fresh"),
        b().batch_mode(BatchMode::Fresh).step(Adam::new()),
        model,
        lines,
    );
    run(
        &name("momentum"),
        b().step(Momentum::new().step_size(0.01)),
        model,
        lines,
    );
    run(
        &name("adadelta persistent"),
        b().step(Adadelta::new()),
        model,
        lines,
    );
}

fn problems<F: Float>(lines: &mut Vec<String>) -> Result<(), bigbatch::Error> {
    let heart: Dataset<F> = datasets::heart_scale::<F>().with_bias();
    configurations(
        "heart logistic",
        &Logistic::new(heart.clone(), 1e-3)?,
        lines,
    );
    configurations(
        "heart ridge",
        &LeastSquares::new(heart.clone(), 1e-3)?,
        lines,
    );
    configurations("heart huber", &Huber::new(heart, 1.0, 1e-3)?, lines);
    let digits: Dataset<F> = datasets::digits::<F>().with_bias();
    let classes = digits
        .targets()
        .iter()
        .map(|t| t.as_f64() as usize + 1)
        .max()
        .unwrap_or(1);
    configurations(
        "digits softmax",
        &Softmax::new(digits, classes, 1e-3)?,
        lines,
    );
    Ok(())
}

fn main() -> Result<(), bigbatch::Error> {
    let mut lines = Vec::new();
    problems::<f64>(&mut lines)?;
    problems::<f32>(&mut lines)?;
    let mut h = DefaultHasher::new();
    lines.hash(&mut h);
    println!("{} runs, fingerprint {:016x}", lines.len(), h.finish());
    Ok(())
}
