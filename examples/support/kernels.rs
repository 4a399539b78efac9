//! Reference passes, wrappers and timing shared by the `throughput` and `storage` examples and
//! the `throughput` bench: what a statistics pass is measured against.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bigbatch::data::{Dataset, Features};
use bigbatch::{Float, Forward, GradStats, LineLoss, Objective};
use ndarray::{Array1, Array2, ArrayRef1, Axis};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// `n × d` dense features uniform in [0, 1) with about `density` of them non-zero (pixel-like
/// data), labels ±1 drawn from a logistic model with a random weight vector.
pub fn logistic_data<F: Float>(n: usize, d: usize, density: f64, seed: u64) -> Dataset<F> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let w_true: Vec<f64> = (0..d).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
    let mut x = Array2::<F>::zeros((n, d));
    let mut y = Array1::<F>::zeros(n);
    for (mut row, target) in x.rows_mut().into_iter().zip(y.iter_mut()) {
        let mut z = 0.0;
        for (v, wt) in row.iter_mut().zip(&w_true) {
            if rng.random::<f64>() < density {
                let value = rng.random::<f64>();
                *v = F::from_f64(value);
                z += value * wt;
            }
        }
        let p = 1.0 / (1.0 + (-z / (d as f64 * density).sqrt()).exp());
        *target = if rng.random::<f64>() < p {
            F::one()
        } else {
            -F::one()
        };
    }
    Dataset::from_dense(x, y).expect("finite generated data")
}

/// `k` distinct indices out of `0..n`, in random order (a sampled batch).
pub fn random_batch(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..k.min(n) {
        let j = i + (rng.random::<u64>() % (n - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(k.min(n));
    all
}

/// Partial sums in [`read_pass`]: enough independent addition chains that the pass waits on
/// memory, not on the latency of an addition.
const READ_LANES: usize = 16;

/// The pure read pass, the yardstick of every statistics pass: the sum of every stored value of
/// the selected rows (and, for sparse rows, of their column indices), reduced into 16
/// independent partial sums (nothing is written back per row), so that its speed is that of
/// reading the rows from memory.
pub fn read_pass<F: Float>(features: &Features<F>, batch: &[usize]) -> F {
    let mut acc = [F::zero(); READ_LANES];
    let mut add = |values: &[F]| {
        let chunks = values.chunks_exact(READ_LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for k in 0..READ_LANES {
                acc[k] += c[k];
            }
        }
        for (k, &v) in tail.iter().enumerate() {
            acc[k] += v;
        }
    };
    match features {
        Features::Dense(m) => {
            for &i in batch {
                let row = m.row(i);
                match row.as_slice() {
                    Some(values) => add(values),
                    None => add(&row.to_vec()),
                }
            }
        }
        Features::Sparse(m) => {
            // A sparse row is its column indices and its values: both are read.
            let mut index_sum = [0usize; READ_LANES];
            for &i in batch {
                let (cols, values) = m.row(i);
                let chunks = cols.chunks_exact(READ_LANES);
                let tail = chunks.remainder();
                for c in chunks {
                    for k in 0..READ_LANES {
                        index_sum[k] = index_sum[k].wrapping_add(c[k]);
                    }
                }
                for (k, &c) in tail.iter().enumerate() {
                    index_sum[k] = index_sum[k].wrapping_add(c);
                }
                add(values);
            }
            std::hint::black_box(index_sum);
        }
    }
    acc.iter().fold(F::zero(), |s, &a| s + a)
}

/// ndarray's own products on the gathered rows `X_B` (gathered before timing): `z = X_B·w`,
/// then `g = X_Bᵀ·r` with `r` = `z` (what a gradient needs, without the loss).
pub fn ndarray_dots<F: Float>(xb: &Array2<F>, w: &Array1<F>) -> Array1<F> {
    let z = xb.dot(w);
    xb.t().dot(&z)
}

/// The rows `batch` of dense features, as one contiguous matrix.
pub fn gather<F: Float>(features: &Features<F>, batch: &[usize]) -> Array2<F> {
    match features {
        Features::Dense(m) => m.select(Axis(0), batch),
        other => other.to_dense().select(Axis(0), batch),
    }
}

/// An objective that forwards only the per-sample methods of `O`: the default batched path
/// of the `Objective` trait.
pub struct PerSample<'a, O>(pub &'a O);

impl<F: Float, O: Objective<F>> Objective<F> for PerSample<'_, O> {
    fn n_samples(&self) -> usize {
        self.0.n_samples()
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        self.0.sample_loss(w, i)
    }
    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) {
        self.0.sample_gradient(w, i, grad)
    }
    fn sample_loss_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) -> F {
        self.0.sample_loss_gradient(w, i, grad)
    }
}

/// An objective that forwards everything to `O` and adds up the time spent in its batched
/// methods (the statistics passes, and the losses of line searches: loss passes, and the
/// losses along a line with their preparation).
pub struct Timed<'a, O> {
    pub inner: &'a O,
    gradient_ns: AtomicU64,
    loss_ns: AtomicU64,
}

impl<'a, O> Timed<'a, O> {
    pub fn new(inner: &'a O) -> Self {
        Timed {
            inner,
            gradient_ns: AtomicU64::new(0),
            loss_ns: AtomicU64::new(0),
        }
    }
    /// Time spent in `batch_gradient`.
    pub fn in_gradient(&self) -> Duration {
        Duration::from_nanos(self.gradient_ns.load(Ordering::Relaxed))
    }
    /// Time spent in `batch_loss`.
    pub fn in_loss(&self) -> Duration {
        Duration::from_nanos(self.loss_ns.load(Ordering::Relaxed))
    }
}

fn add(counter: &AtomicU64, since: Instant) {
    counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

impl<F: Float, O: Objective<F>> Forward<F> for Timed<'_, O> {
    type Inner = O;
    fn inner(&self) -> &O {
        self.inner
    }
    fn batch_loss(&self, w: &ArrayRef1<F>, batch: &[usize]) -> F {
        let t = Instant::now();
        let loss = self.inner.batch_loss(w, batch);
        add(&self.loss_ns, t);
        loss
    }
    fn batch_gradient(&self, w: &ArrayRef1<F>, batch: &[usize], stats: &mut GradStats<F>) {
        let t = Instant::now();
        self.inner.batch_gradient(w, batch, stats);
        add(&self.gradient_ns, t);
    }
    fn line(&self) -> Option<Box<dyn LineLoss<F> + '_>> {
        let inner = self.inner.line()?;
        Some(Box::new(TimedLine { timed: self, inner }))
    }
}

/// The line object of a [`Timed`] objective: its preparation and losses count as loss time,
/// its statistics pass as gradient time.
struct TimedLine<'a, F, O> {
    timed: &'a Timed<'a, O>,
    inner: Box<dyn LineLoss<F> + 'a>,
}

impl<F: Float, O> LineLoss<F> for TimedLine<'_, F, O> {
    fn prepare(&mut self, w: &ArrayRef1<F>, d: &ArrayRef1<F>, batch: &[usize]) {
        let t = Instant::now();
        self.inner.prepare(w, d, batch);
        add(&self.timed.loss_ns, t);
    }
    fn loss(&self, step: F, point: &ArrayRef1<F>) -> F {
        let t = Instant::now();
        let loss = self.inner.loss(step, point);
        add(&self.timed.loss_ns, t);
        loss
    }
    fn prepare_with_gradient(
        &mut self,
        w: &ArrayRef1<F>,
        d: &ArrayRef1<F>,
        batch: &[usize],
        stats: &mut GradStats<F>,
    ) -> bool {
        let t = Instant::now();
        let done = self.inner.prepare_with_gradient(w, d, batch, stats);
        add(&self.timed.gradient_ns, t);
        done
    }
}

/// The median time of `repeats` runs of `op`, in seconds (after one warm-up run).
pub fn median_seconds(repeats: usize, mut op: impl FnMut()) -> f64 {
    op();
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            op();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
