//! Which storage of the rows makes a statistics pass faster: dense or sparse, by density.
//!
//! ```text
//! cargo run --release --example storage                        # generated 20,000 × 784
//! cargo run --release --example storage -- --data FILE --features D
//! ```
//!
//! For logistic regression (least squares for a file whose labels are not classes) on generated rows at densities from 2 % to 60 % (or on the rows
//! of a LIBSVM file), in f64 and f32 with one thread, prints the time of one statistics pass
//! over a shuffled batch of every row with the rows stored sparse, over the same pass with the
//! rows stored dense, and the storage [`load_libsvm`] chooses for that density. Ratios are
//! measured side by side in one run; the threshold behind the choice
//! ([`bigbatch::data::dense_threshold`]) is checked against this table.

#[path = "support/kernels.rs"]
mod kernels;

use std::hint::black_box;

use bigbatch::data::{Dataset, dense_threshold, load_libsvm};
use bigbatch::models::{LeastSquares, Logistic};
use bigbatch::{Float, GradStats, Objective};
use kernels::{logistic_data, median_seconds, random_batch};
use ndarray::Array1;

/// One statistics pass over `batch`, median of `repeats`: logistic regression when the labels
/// are classes, least squares otherwise.
fn pass<F: Float>(data: Dataset<F>, batch: &[usize], repeats: usize) -> f64 {
    match Logistic::new(data.clone(), 1e-4) {
        Ok(model) => timed(&model, batch, repeats),
        Err(_) => timed(
            &LeastSquares::new(data, 1e-4).expect("finite data"),
            batch,
            repeats,
        ),
    }
}

fn timed<F: Float, O: Objective<F>>(model: &O, batch: &[usize], repeats: usize) -> f64 {
    let w = Array1::<F>::from_elem(model.dim(), F::from_f64(0.01));
    let mut stats = GradStats::new(model.dim());
    median_seconds(repeats, || {
        stats.reset();
        model.batch_gradient(&w, batch, &mut stats);
        black_box(&stats);
    })
}

fn row<F: Float>(label: &str, data: Dataset<F>, repeats: usize) {
    let n = data.n_samples();
    let density = data.features().density();
    let batch = random_batch(n, n, 7);
    let sparse = pass(data.clone().into_sparse(), &batch, repeats);
    let dense = pass(data.into_dense(), &batch, repeats);
    let chosen = if density >= dense_threshold::<F>() {
        "dense"
    } else {
        "sparse"
    };
    println!(
        "{label:>10} {:>4} {:>8.1}% {:>11.2} {:>11.2} {:>13.2} {chosen:>8}",
        std::any::type_name::<F>(),
        100.0 * density,
        sparse * 1e3,
        dense * 1e3,
        sparse / dense,
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let repeats = 7;
    println!(
        "{:>10} {:>4} {:>9} {:>11} {:>11} {:>13} {:>8}",
        "data", "type", "density", "sparse ms", "dense ms", "sparse/dense", "chosen"
    );
    if let Some(path) = flag("--data") {
        let features = flag("--features").map(|d| d.parse()).transpose()?;
        let name = std::path::Path::new(&path)
            .file_name()
            .map_or("file".into(), |s| s.to_string_lossy().into_owned());
        let short: String = name.chars().take(10).collect();
        row::<f64>(&short, load_libsvm::<f64>(&path, features)?, repeats);
        row::<f32>(&short, load_libsvm::<f32>(&path, features)?, repeats);
        return Ok(());
    }
    for density in [0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6] {
        row::<f64>(
            "generated",
            logistic_data::<f64>(20_000, 784, density, 3),
            repeats,
        );
        row::<f32>(
            "generated",
            logistic_data::<f32>(20_000, 784, density, 3),
            repeats,
        );
    }
    Ok(())
}
