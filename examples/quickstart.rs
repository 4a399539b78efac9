//! Logistic regression on the census-income data embedded in the crate, with default settings:
//! no step size, no schedule, no batch size to choose.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```

use std::time::Instant;

use bigbatch::models::Logistic;
use bigbatch::{BigBatchSgd, Progress, data::datasets};
use ndarray::Array1;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // UCI Adult: 32,561 people, 108 features, label +1 if income > 50K. Hold out 20 %.
    let data = datasets::adult::<f64>().with_bias();
    let (train, test) = data.split(0.2, 1)?;
    println!(
        "adult: {} training and {} test samples, {} features (with bias)",
        train.n_samples(),
        test.n_samples(),
        train.n_features()
    );
    let model = Logistic::new(train, 1e-4)?;
    let test_model = Logistic::new(test, 1e-4)?;

    // Defaults: θ = 1, initial batch 10, 10 % growth, L-BFGS directions on a persistent batch.
    // A budget of 20 epochs: at most 20·N per-sample gradient evaluations.
    let mut optimizer = BigBatchSgd::builder().max_epochs(20.0).build()?;
    let mut progress = Progress::new(10);
    let start = Instant::now();
    let report = optimizer.minimize_with(
        &model,
        Array1::zeros(model.features().n_cols()),
        &mut progress,
    )?;
    let seconds = start.elapsed().as_secs_f64();

    println!("\n{report}");
    println!("training loss {:.6}, in {seconds:.2} s", report.loss);
    println!(
        "accuracy: training {:.2} %, test {:.2} %",
        100.0 * model.accuracy(&report.w),
        100.0 * test_model.accuracy(&report.w)
    );
    Ok(())
}
