//! Throughput of the batch statistics passes, against the limit of reading the rows.
//!
//! ```text
//! cargo bench --bench throughput                  # everything (a few minutes)
//! cargo bench --bench throughput -- stats/logistic/dense/f64
//! ```
//!
//! Groups:
//! - `stats/{model}/{dense|sparse}/{f64|f32}`: one statistics pass (mean gradient, variance,
//!   loss) of a sampled batch of 100 rows up to the whole generated set (60,000 × 784), one
//!   thread. The logistic groups also have, on the same rows in the same run, the pure read
//!   pass (`read`: every stored value of the selected rows summed into 16 partial sums, a pass
//!   limited by memory) and, for dense rows, ndarray's own products (`ndarray_dots`: `X_B·w`
//!   then `X_Bᵀ·r` on the rows gathered beforehand).
//! - `per_sample_path`: the default per-sample path of the `Objective` trait against the
//!   model's fast path on the same batch of 10,000 rows.
//! - `threads`: one statistics pass with 1 and 2 threads.
//! - `whole_run`: a run to a fixed tolerance on generated logistic data, per step rule.

#[path = "../examples/support/kernels.rs"]
mod kernels;

use std::hint::black_box;
use std::time::Duration;

use bigbatch::data::{Dataset, Features};
use bigbatch::models::{Huber, LeastSquares, Logistic, Softmax};
use bigbatch::parallel::Threads;
use bigbatch::{Armijo, BarzilaiBorwein, BigBatchSgd, Fixed, Float, GradStats, Objective};
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use kernels::{PerSample, gather, logistic_data, ndarray_dots, random_batch, read_pass};
use ndarray::Array1;

const ROWS: usize = 60_000;
const COLS: usize = 784;
const SIZES: [usize; 4] = [100, 1_000, 10_000, ROWS];

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

fn weights<F: Float>(d: usize) -> Array1<F> {
    Array1::from_shape_fn(d, |j| F::from_f64(0.01 * ((j % 7) as f64 - 3.0)))
}

/// Softmax over 10 classes, labels from the ±1 targets and the first feature.
fn softmax_data<F: Float>(data: &Dataset<F>) -> Dataset<F> {
    let classes: Array1<F> = (0..data.n_samples())
        .map(|i| F::from_f64(((i * 7 + usize::from(data.targets()[i] > F::zero())) % 10) as f64))
        .collect();
    Dataset::new(data.features().clone(), classes).unwrap()
}

fn stats_pass<F: Float, O: Objective<F> + Sync>(
    c: &mut Criterion,
    name: &str,
    model: &O,
    references: Option<&Dataset<F>>,
) {
    let mut group = c.benchmark_group(name);
    configure(&mut group);
    let w = weights::<F>(model.dim());
    let mut stats = GradStats::<F>::new(model.dim());
    let one = Threads::new(1).unwrap();
    for size in SIZES {
        let batch = random_batch(model.n_samples(), size, 7);
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::new("stats", size), &batch, |b, batch| {
            b.iter(|| {
                one.install(|| {
                    stats.reset();
                    model.batch_gradient(black_box(&w), black_box(batch), &mut stats);
                    black_box(stats.variance())
                })
            })
        });
        if let Some(data) = references {
            group.bench_with_input(BenchmarkId::new("read", size), &batch, |b, batch| {
                b.iter(|| one.install(|| black_box(read_pass(data.features(), black_box(batch)))))
            });
            if matches!(data.features(), Features::Sparse(_)) {
                continue;
            }
            let xb = gather(data.features(), &batch);
            let wd = weights::<F>(data.n_features());
            group.bench_with_input(BenchmarkId::new("ndarray_dots", size), &xb, |b, xb| {
                b.iter(|| one.install(|| black_box(ndarray_dots(black_box(xb), &wd))))
            });
        }
    }
    group.finish();
}

fn models<F: Float>(c: &mut Criterion) {
    let ty = std::any::type_name::<F>();
    let dense = logistic_data::<F>(ROWS, COLS, 0.5, 1);
    let sparse = logistic_data::<F>(ROWS, COLS, 0.1, 2).into_sparse();
    for (layout, data) in [("dense", &dense), ("sparse", &sparse)] {
        let logistic = Logistic::new(data.clone(), 1e-4).unwrap();
        stats_pass(
            c,
            &format!("stats/logistic/{layout}/{ty}"),
            &logistic,
            Some(data),
        );
        let ls = LeastSquares::new(data.clone(), 1e-4).unwrap();
        stats_pass(c, &format!("stats/least_squares/{layout}/{ty}"), &ls, None);
        let huber = Huber::new(data.clone(), 1.0, 1e-4).unwrap();
        stats_pass(c, &format!("stats/huber/{layout}/{ty}"), &huber, None);
        let softmax = Softmax::new(softmax_data(data), 10, 1e-4).unwrap();
        stats_pass(c, &format!("stats/softmax10/{layout}/{ty}"), &softmax, None);
    }
}

fn models_f64(c: &mut Criterion) {
    models::<f64>(c);
}

fn models_f32(c: &mut Criterion) {
    models::<f32>(c);
}

fn per_sample_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_sample_path");
    configure(&mut group);
    for (layout, data) in [
        ("dense", logistic_data::<f64>(ROWS, COLS, 0.5, 1)),
        (
            "sparse",
            logistic_data::<f64>(ROWS, COLS, 0.1, 2).into_sparse(),
        ),
    ] {
        let model = Logistic::new(data, 1e-4).unwrap();
        let plain = PerSample(&model);
        let w = weights::<f64>(COLS);
        let batch = random_batch(ROWS, 10_000, 7);
        let mut stats = GradStats::new(COLS);
        let one = Threads::new(1).unwrap();
        group.throughput(Throughput::Elements(batch.len() as u64));
        group.bench_function(BenchmarkId::new("fast", layout), |b| {
            b.iter(|| {
                one.install(|| {
                    stats.reset();
                    model.batch_gradient(&w, black_box(&batch), &mut stats);
                    black_box(stats.variance())
                })
            })
        });
        group.bench_function(BenchmarkId::new("per_sample", layout), |b| {
            b.iter(|| {
                stats.reset();
                plain.batch_gradient(&w, black_box(&batch), &mut stats);
                black_box(stats.variance())
            })
        });
    }
    group.finish();
}

fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("threads");
    configure(&mut group);
    let model = Logistic::new(logistic_data::<f64>(ROWS, COLS, 0.5, 1), 1e-4).unwrap();
    let w = weights::<f64>(COLS);
    let mut stats = GradStats::new(COLS);
    for size in [1_000, 10_000, ROWS] {
        let batch = random_batch(ROWS, size, 7);
        group.throughput(Throughput::Elements(size as u64));
        for n in [1, 2] {
            let pool = Threads::new(n).unwrap();
            group.bench_with_input(
                BenchmarkId::new(format!("{n}_threads"), size),
                &batch,
                |b, batch| {
                    b.iter(|| {
                        pool.install(|| {
                            stats.reset();
                            model.batch_gradient(&w, black_box(batch), &mut stats);
                            black_box(stats.variance())
                        })
                    })
                },
            );
        }
    }
    group.finish();
}

fn whole_run(c: &mut Criterion) {
    let mut group = c.benchmark_group("whole_run");
    configure(&mut group);
    let model = Logistic::new(logistic_data::<f64>(20_000, 100, 0.5, 3), 1e-3).unwrap();
    let w0 = Array1::zeros(100);
    let base = || {
        BigBatchSgd::builder()
            .seed(1)
            .tolerance(1e-8)
            .max_epochs(50.0)
    };
    group.bench_function("lbfgs_default", |b| {
        b.iter(|| {
            base()
                .build()
                .unwrap()
                .minimize(&model, w0.clone())
                .unwrap()
        })
    });
    group.bench_function("paper_armijo", |b| {
        b.iter(|| {
            BigBatchSgd::paper()
                .seed(1)
                .tolerance(1e-8)
                .max_epochs(50.0)
                .build()
                .unwrap()
                .minimize(&model, w0.clone())
                .unwrap()
        })
    });
    group.bench_function("armijo_persistent", |b| {
        b.iter(|| {
            base()
                .step(Armijo::new())
                .build()
                .unwrap()
                .minimize(&model, w0.clone())
                .unwrap()
        })
    });
    group.bench_function("barzilai_borwein", |b| {
        b.iter(|| {
            base()
                .step(BarzilaiBorwein::new())
                .build()
                .unwrap()
                .minimize(&model, w0.clone())
                .unwrap()
        })
    });
    group.bench_function("fixed", |b| {
        b.iter(|| {
            base()
                .step(Fixed::new(1.0))
                .build()
                .unwrap()
                .minimize(&model, w0.clone())
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    models_f64,
    models_f32,
    per_sample_path,
    threads,
    whole_run
);
criterion_main!(benches);
