//! Chunked, deterministic (and with the `rayon` feature, multi-core) batch evaluation.
//!
//! A batch is cut into chunks of [`CHUNK`] indices, a size that does not depend on the number
//! of threads. Each chunk's statistics are computed on their own, and the chunks are combined
//! along a fixed binary tree over the chunk positions (the left half of the chunks, then the
//! right half, recursively), with exact merges ([`GradStats::merge`]). The tree, and hence
//! every bit of the result, depends only on the batch: a run gives the same report with 1, 2
//! or 16 threads, and with the `rayon` feature turned off.
//!
//! With the `rayon` feature (on by default) the two halves of each node are evaluated with
//! `rayon::join`, in the current rayon thread pool: rayon's global pool (every core, or
//! `RAYON_NUM_THREADS`), or a pool of [`Threads`] set up for a computation
//! ([`Threads::install`], [`with_threads`]).
//!
//! The bundled models evaluate their batches through [`accumulate_chunks`] and [`sum_chunks`];
//! a user's [`Objective`](crate::Objective) can do the same in its own `batch_gradient`.

use crate::float::Float;
use crate::stats::GradStats;

/// Indices per chunk: the unit of work, whatever the number of threads.
pub const CHUNK: usize = 256;

#[cfg(feature = "rayon")]
fn join<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    rayon::join(a, b)
}

#[cfg(not(feature = "rayon"))]
fn join<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    (a(), b())
}

/// Splits `items` into the two halves of a tree node: the first `⌊chunks/2⌋` chunks, and the
/// rest. `None` for a single chunk (a leaf).
fn halves<T>(items: &[T]) -> Option<(&[T], &[T])> {
    split_point(items.len()).map(|mid| items.split_at(mid))
}

/// Where a tree node of `len` items splits: after the first `⌊chunks/2⌋` chunks; `None` for a
/// single chunk (a leaf).
fn split_point(len: usize) -> Option<usize> {
    let chunks = len.div_ceil(CHUNK);
    (chunks > 1).then_some(chunks / 2 * CHUNK)
}

/// Adds the statistics of the samples in `batch` to `stats`: `chunk_stats(chunk, empty)` fills
/// an empty accumulator (of dimension `stats.dim()`) with the statistics of one chunk of at
/// most [`CHUNK`] indices; the chunks are combined along the fixed tree described in the
/// [module docs](self), in parallel with the `rayon` feature.
///
/// # Example
/// The batched path of a one-parameter model `f_i(w) = (w − a_i)²/2`, whose per-sample
/// gradients are `w − a_i`:
/// ```
/// use bigbatch::{GradStats, Objective, parallel};
/// use ndarray::{ArrayRef1, array};
///
/// struct Mean(Vec<f64>);
/// impl Objective for Mean {
///     fn n_samples(&self) -> usize { self.0.len() }
///     fn dim(&self) -> usize { 1 }
///     fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 { 0.5 * (w[0] - self.0[i]).powi(2) }
///     fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) { g[0] = w[0] - self.0[i]; }
///     fn batch_gradient(&self, w: &ArrayRef1<f64>, batch: &[usize], stats: &mut GradStats<f64>) {
///         parallel::accumulate_chunks(batch, stats, |chunk, part| {
///             for &i in chunk {
///                 part.push_with_loss(&array![w[0] - self.0[i]], self.sample_loss(w, i));
///             }
///         });
///     }
/// }
///
/// let data = Mean((0..1000).map(f64::from).collect());
/// let batch: Vec<usize> = (0..1000).collect();
/// let mut stats = GradStats::new(1);
/// data.batch_gradient(&array![0.0], &batch, &mut stats);
/// assert_eq!(stats.count(), 1000);
/// assert!((stats.mean()[0] + 499.5).abs() < 1e-9);
/// ```
pub fn accumulate_chunks<F, C>(batch: &[usize], stats: &mut GradStats<F>, chunk_stats: C)
where
    F: Float,
    C: Fn(&[usize], &mut GradStats<F>) + Sync,
{
    accumulate_chunks_filling(batch, stats, &mut [], 0, |chunk, part, _: &mut [()]| {
        chunk_stats(chunk, part)
    });
}

/// `Σ range_sum(range)` over the chunks of the positions `0..len`, cut and added along the same
/// tree as [`sum_chunks`] on a slice of `len` items: for callers that need the positions of a
/// chunk, not only its items.
pub(crate) fn sum_ranges<C>(len: usize, range_sum: C) -> f64
where
    C: Fn(std::ops::Range<usize>) -> f64 + Sync,
{
    fn tree<C: Fn(std::ops::Range<usize>) -> f64 + Sync>(r: std::ops::Range<usize>, f: &C) -> f64 {
        match split_point(r.len()) {
            None => f(r),
            Some(half) => {
                let mid = r.start + half;
                let (a, b) = join(|| tree(r.start..mid, f), || tree(mid..r.end, f));
                a + b
            }
        }
    }
    if len == 0 {
        return 0.0;
    }
    tree(0..len, &range_sum)
}

/// Fills `out`, `per` values for each of `items` in order, chunk by chunk (`fill(chunk, part)`
/// writes the values of one chunk of at most [`CHUNK`] items), in parallel with the `rayon`
/// feature. Each value depends on its own item only, so the result does not depend on the
/// number of threads.
///
/// # Panics
/// If `out.len() != per · items.len()`.
pub(crate) fn fill_chunks<T, V, C>(items: &[T], out: &mut [V], per: usize, fill: &C)
where
    T: Sync,
    V: Send,
    C: Fn(&[T], &mut [V]) + Sync,
{
    assert_eq!(out.len(), per * items.len(), "fill_chunks: output length");
    match halves(items) {
        None => fill(items, out),
        Some((left, right)) => {
            let (a, b) = out.split_at_mut(left.len() * per);
            join(
                || fill_chunks(left, a, per, fill),
                || fill_chunks(right, b, per, fill),
            );
        }
    }
}

/// As [`accumulate_chunks`], with `per` values for each index of `batch` written to `out` along
/// the way: `chunk_stats(chunk, empty, part)` fills the statistics of one chunk and the values
/// of its indices. The statistics are merged along the same tree, so they are the same bits
/// as [`accumulate_chunks`] gives with the same per-chunk statistics.
///
/// # Panics
/// If `out.len() != per · batch.len()`.
pub(crate) fn accumulate_chunks_filling<F, V, C>(
    batch: &[usize],
    stats: &mut GradStats<F>,
    out: &mut [V],
    per: usize,
    chunk_stats: C,
) where
    F: Float,
    V: Send,
    C: Fn(&[usize], &mut GradStats<F>, &mut [V]) + Sync,
{
    fn tree<F, V, C>(batch: &[usize], dim: usize, out: &mut [V], per: usize, f: &C) -> GradStats<F>
    where
        F: Float,
        V: Send,
        C: Fn(&[usize], &mut GradStats<F>, &mut [V]) + Sync,
    {
        match halves(batch) {
            None => {
                let mut stats = GradStats::new(dim);
                f(batch, &mut stats, out);
                stats
            }
            Some((left, right)) => {
                let (out_left, out_right) = out.split_at_mut(left.len() * per);
                let (mut a, b) = join(
                    || tree(left, dim, out_left, per, f),
                    || tree(right, dim, out_right, per, f),
                );
                a.merge(&b);
                a
            }
        }
    }
    assert_eq!(
        out.len(),
        per * batch.len(),
        "accumulate_chunks_filling: output length"
    );
    if batch.is_empty() {
        return;
    }
    let part = tree(batch, stats.dim(), out, per, &chunk_stats);
    stats.merge(&part);
}

/// Overwrites `out` with `Σ range_sum(range)` over the chunks of the positions `0..len`: each
/// chunk's vector is written into zeros of `out.len()` by `range_sum(range, part)`, and the
/// vectors are added along the same tree as [`sum_ranges`], so the rounding does not depend on
/// the number of threads.
pub(crate) fn sum_vectors_by_range<C>(len: usize, out: &mut [f64], range_sum: C)
where
    C: Fn(std::ops::Range<usize>, &mut [f64]) + Sync,
{
    fn tree<C>(r: std::ops::Range<usize>, dim: usize, f: &C) -> Vec<f64>
    where
        C: Fn(std::ops::Range<usize>, &mut [f64]) + Sync,
    {
        match split_point(r.len()) {
            None => {
                let mut part = vec![0.0; dim];
                f(r, &mut part);
                part
            }
            Some(half) => {
                let mid = r.start + half;
                let (mut a, b) = join(|| tree(r.start..mid, dim, f), || tree(mid..r.end, dim, f));
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            }
        }
    }
    if len == 0 {
        out.fill(0.0);
        return;
    }
    out.copy_from_slice(&tree(0..len, out.len(), &range_sum));
}

/// `Σ chunk_sum(chunk)` over the chunks of `items`, added along the same fixed tree as
/// [`accumulate_chunks`] (so the rounding does not depend on the number of threads).
pub fn sum_chunks<T, C>(items: &[T], chunk_sum: C) -> f64
where
    T: Sync,
    C: Fn(&[T]) -> f64 + Sync,
{
    sum_ranges(items.len(), |r| chunk_sum(&items[r]))
}

/// A pool of threads for batch evaluation (feature `rayon`): computations run inside
/// [`install`](Self::install) evaluate their batches on its threads. Build it once and reuse it;
/// [`with_threads`] builds one for a single computation.
///
/// # Example
/// ```
/// use bigbatch::{BigBatchSgd, data::datasets, models::Logistic, parallel::Threads};
/// use ndarray::Array1;
///
/// let model = Logistic::new(datasets::heart_scale::<f64>().with_bias(), 1e-2)?;
/// let two = Threads::new(2)?;
/// let report = two.install(|| BigBatchSgd::builder().build()?.minimize(&model, Array1::zeros(14)))?;
/// assert!(model.accuracy(&report.w) > 0.8);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[cfg(feature = "rayon")]
#[derive(Debug)]
pub struct Threads {
    pool: rayon::ThreadPool,
}

#[cfg(feature = "rayon")]
impl Threads {
    /// A pool of `threads` threads.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) for `threads == 0`;
    /// [`Error::Threads`](crate::Error::Threads) if the threads cannot be started.
    pub fn new(threads: usize) -> crate::Result<Self> {
        if threads == 0 {
            return Err(crate::Error::invalid("threads", threads, "at least 1"));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("bigbatch-{i}"))
            .build()
            .map_err(|e| crate::Error::Threads {
                threads,
                message: e.to_string(),
            })?;
        Ok(Threads { pool })
    }

    /// Runs `op` on this pool (the calling thread waits for it); batch evaluations inside use
    /// the pool's threads. The result does not depend on the number of threads.
    pub fn install<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        self.pool.install(op)
    }

    /// The number of threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }
}

/// Runs `op` in a new pool of `threads` threads ([`Threads`]): the batch evaluations of the
/// bundled models inside it use that many cores. The result does not depend on `threads`.
///
/// Outside of such a pool, rayon's global pool is used (every core, unless the environment
/// variable `RAYON_NUM_THREADS` says otherwise).
///
/// # Errors
/// As [`Threads::new`].
///
/// # Example
/// ```
/// use bigbatch::{BigBatchSgd, data::datasets, models::Logistic, parallel};
/// use ndarray::Array1;
///
/// let model = Logistic::new(datasets::adult::<f64>().with_bias(), 1e-4)?;
/// let w0 = Array1::zeros(model.features().n_cols());
/// let one = parallel::with_threads(1, || BigBatchSgd::builder().build()?.minimize(&model, w0.clone()))??;
/// let two = parallel::with_threads(2, || BigBatchSgd::builder().build()?.minimize(&model, w0.clone()))??;
/// assert_eq!(one.w, two.w);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[cfg(feature = "rayon")]
pub fn with_threads<R: Send>(threads: usize, op: impl FnOnce() -> R + Send) -> crate::Result<R> {
    Ok(Threads::new(threads)?.install(op))
}

/// The number of threads batch evaluations use here: that of the current rayon pool, or 1
/// without the `rayon` feature.
pub fn current_threads() -> usize {
    #[cfg(feature = "rayon")]
    {
        rayon::current_num_threads()
    }
    #[cfg(not(feature = "rayon"))]
    {
        1
    }
}
