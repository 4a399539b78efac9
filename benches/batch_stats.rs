//! Cost of the batch statistics on the default per-sample path: `Objective::batch_gradient`
//! (one `sample_loss_gradient` per index, Welford push into `GradStats`), beside the bare
//! Welford push of precomputed gradients and a Chan merge, on least squares.
//!
//! `cargo bench --bench batch_stats`

use std::hint::black_box;

use bigbatch::{GradStats, Objective};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{Array1, Array2, ArrayRef1};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};

/// Least squares written per sample only (no batched override): the default path.
struct PerSample {
    x: Array2<f64>,
    y: Array1<f64>,
}

impl Objective for PerSample {
    fn n_samples(&self) -> usize {
        self.y.len()
    }
    fn dim(&self) -> usize {
        self.x.ncols()
    }
    fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 {
        let r = self.x.row(i).dot(w) - self.y[i];
        0.5 * r * r
    }
    fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, grad: &mut ArrayRef1<f64>) {
        self.sample_loss_gradient(w, i, grad);
    }
    fn sample_loss_gradient(&self, w: &ArrayRef1<f64>, i: usize, grad: &mut ArrayRef1<f64>) -> f64 {
        let row = self.x.row(i);
        let r = row.dot(w) - self.y[i];
        grad.assign(&row);
        *grad *= r;
        0.5 * r * r
    }
}

fn uniform(rng: &mut Xoshiro256PlusPlus) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5
}

fn problem(n: usize, d: usize) -> PerSample {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let x = Array2::from_shape_fn((n, d), |_| uniform(&mut rng));
    let y = Array1::from_shape_fn(n, |_| uniform(&mut rng));
    PerSample { x, y }
}

fn batch_gradient(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_gradient_default_path");
    group.sample_size(20);
    for d in [10, 100] {
        let p = problem(10_000, d);
        let w = Array1::from_elem(d, 0.1);
        for n in [100, 1_000, 10_000] {
            // Every 7th row, as a sampled batch would touch scattered rows.
            let batch: Vec<usize> = (0..n).map(|k| (k * 7) % 10_000).collect();
            let mut stats = GradStats::new(d);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(format!("d{d}"), n), &batch, |b, batch| {
                b.iter(|| {
                    stats.reset();
                    p.batch_gradient(black_box(&w), black_box(batch), &mut stats);
                    black_box(stats.variance())
                })
            });
        }
    }
    group.finish();
}

fn welford_and_merge(c: &mut Criterion) {
    let mut group = c.benchmark_group("grad_stats");
    for d in [10, 100, 1000] {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let grads = Array2::from_shape_fn((1000, d), |_| uniform(&mut rng));
        group.throughput(Throughput::Elements(1000));
        group.bench_with_input(BenchmarkId::new("push_1000", d), &grads, |b, grads| {
            let mut stats = GradStats::new(d);
            b.iter(|| {
                stats.reset();
                for row in grads.rows() {
                    stats.push(&row);
                }
                black_box(stats.variance())
            })
        });
        let mut half = GradStats::new(d);
        for row in grads.rows() {
            half.push(&row);
        }
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("merge", d), &half, |b, half| {
            b.iter(|| {
                let mut acc = half.clone();
                acc.merge(black_box(half));
                black_box(acc.variance())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, batch_gradient, welford_and_merge);
criterion_main!(benches);
