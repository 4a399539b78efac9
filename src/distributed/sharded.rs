//! [`Sharded`]: the whole finite sum, seen from a worker that holds part of it.

use ndarray::{ArrayRef1, ArrayView1};

use super::{Workers, agree};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::objective::{Curvature, LineLoss, Objective};
use crate::stats::GradStats;

/// Which worker holds which samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// Sample `i` is held by worker `i mod P`, as its local sample `i div P` (what
    /// [`load_libsvm_shard`](super::load_libsvm_shard) reads from one file).
    Strided,
    /// Worker `r` holds a contiguous block of samples, after those of workers `0..r`, in order:
    /// for instance a file per worker, each read with
    /// [`load_libsvm`](crate::data::load_libsvm) (with the same `n_features` everywhere)
    /// and its result passed through [`agree`](super::agree), so that a worker that cannot
    /// read its file stops every worker.
    Blocks,
}

/// A worker's view of a finite sum whose samples are spread over several workers: an
/// [`Objective`] over all `N` samples, built from the worker's local model.
///
/// Its batched methods are collective: every worker calls them with the same global indices
/// (a run does), each evaluates the indices it holds with its local model's batched path, and
/// the parts are merged exactly, in rank order, on every worker. The per-sample methods are
/// collective too (the worker holding the sample computes it, and every worker receives it).
///
/// # Example
/// ```
/// use bigbatch::distributed::{Layout, Sharded, ThreadRanks, Workers};
/// use bigbatch::{BigBatchSgd, data::datasets, models::Logistic};
/// use ndarray::Array1;
///
/// let data = datasets::heart_scale::<f64>().with_bias();
/// let reports = ThreadRanks::run(2, |w| {
///     // Each worker keeps every second sample (in practice it would load only those).
///     let mine: Vec<usize> = (w.rank()..data.n_samples()).step_by(w.size()).collect();
///     let local = Logistic::new(data.select(&mine), 1e-3);
///     // Every worker agrees on whether every local model could be built.
///     let objective = Sharded::from_local(local, &w, Layout::Strided)?;
///     BigBatchSgd::builder().seed(1).build()?.minimize(&objective, Array1::zeros(14))
/// });
/// let (a, b) = (reports[0].as_ref().unwrap(), reports[1].as_ref().unwrap());
/// assert_eq!(a.w, b.w, "every worker ends with the same iterate");
/// let whole = BigBatchSgd::builder().seed(1).build()?
///     .minimize(&Logistic::new(data.clone(), 1e-3)?, Array1::zeros(14))?;
/// assert!((a.loss - whole.loss).abs() < 1e-6 * whole.loss);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug)]
pub struct Sharded<O, W> {
    local: O,
    workers: W,
    layout: Layout,
    /// Layout::Blocks: the first global index of every worker, and `N` at the end.
    offsets: Vec<usize>,
    n_total: usize,
    dim: usize,
}

impl<O, W: Workers> Sharded<O, W> {
    /// Wraps this worker's local model (a collective call: every worker makes it).
    ///
    /// # Errors
    /// On every worker: [`Error::Rank`] if the workers' models do not have the same dimension,
    /// or, with [`Layout::Strided`], if a worker does not hold the number of samples the
    /// layout gives it.
    pub fn new<F: Float>(local: O, workers: W, layout: Layout) -> Result<Self>
    where
        O: Objective<F>,
    {
        let (n, dim) = (local.n_samples(), local.dim());
        let all = workers.all_gather(&[n as f64, dim as f64]);
        let counts: Vec<usize> = all.chunks(2).map(|c| c[0] as usize).collect();
        let p = counts.len();
        let n_total: usize = counts.iter().sum();
        let mut offsets = vec![0];
        for c in &counts {
            offsets.push(offsets[offsets.len() - 1] + c);
        }
        let (me, first_dim) = (workers.rank(), all[1] as usize);
        let mine = if dim != first_dim {
            Err(Error::DimensionMismatch {
                what: "model dimension (against worker 0's)",
                expected: first_dim,
                got: dim,
            })
        } else if layout == Layout::Strided && n != strided_count(n_total, p, me) {
            Err(Error::InvalidData {
                what: format!(
                    "a strided layout of {n_total} samples over {p} workers gives worker {me} {} samples, not {n}",
                    strided_count(n_total, p, me)
                ),
            })
        } else {
            Ok(())
        };
        agree(&workers, mine)?;
        Ok(Sharded {
            local,
            workers,
            layout,
            offsets,
            n_total,
            dim,
        })
    }

    /// Wraps this worker's local model as its constructor returned it, success or error (a
    /// collective call: every worker makes it). The workers first agree on the outcome, so a
    /// worker whose model could not be built stops every worker with [`Error::Rank`], and none
    /// is left waiting; then as [`new`](Self::new). The right way to build the objective of a
    /// distributed run:
    ///
    /// ```
    /// use bigbatch::distributed::{Layout, Sharded, ThreadRanks, Workers};
    /// use bigbatch::{Error, data::datasets, models::Logistic};
    ///
    /// let data = datasets::heart_scale::<f64>();
    /// let results = ThreadRanks::run(3, |w| {
    ///     let mine: Vec<usize> = (w.rank()..data.n_samples()).step_by(w.size()).collect();
    ///     // Worker 1's model is invalid (a negative λ): every worker learns it.
    ///     let lambda = if w.rank() == 1 { -1.0 } else { 1e-3 };
    ///     Sharded::from_local(Logistic::new(data.select(&mine), lambda), &w, Layout::Strided)
    ///         .map(|_| ())
    /// });
    /// assert!(results.iter().all(|r| matches!(r, Err(Error::Rank { rank: 1, .. }))));
    /// ```
    ///
    /// # Errors
    /// [`Error::Rank`] on every worker, naming the first worker whose `local` is an error;
    /// otherwise as [`new`](Self::new).
    pub fn from_local<F: Float>(local: Result<O>, workers: W, layout: Layout) -> Result<Self>
    where
        O: Objective<F>,
    {
        let local = agree(&workers, local)?;
        Self::new(local, workers, layout)
    }

    /// The local model.
    pub fn local(&self) -> &O {
        &self.local
    }
    /// The workers.
    pub fn workers(&self) -> &W {
        &self.workers
    }

    /// The worker holding global sample `i`, and its local index there.
    fn locate(&self, i: usize) -> (usize, usize) {
        match self.layout {
            Layout::Strided => {
                let p = self.workers.size();
                (i % p, i / p)
            }
            Layout::Blocks => {
                let r = self.offsets.partition_point(|&o| o <= i) - 1;
                (r, i - self.offsets[r])
            }
        }
    }

    /// The local indices of the samples of `batch` this worker holds, in batch order.
    fn local_part(&self, batch: &[usize]) -> Vec<usize> {
        let me = self.workers.rank();
        batch
            .iter()
            .filter_map(|&i| {
                let (r, j) = self.locate(i);
                (r == me).then_some(j)
            })
            .collect()
    }
}

/// How many of `n` samples worker `r` of `p` holds with [`Layout::Strided`].
fn strided_count(n: usize, p: usize, r: usize) -> usize {
    n / p + usize::from(r < n % p)
}

/// Numbers sent per worker and merge besides the mean: count, groups, M2, loss sum, loss
/// count.
const HEAD: usize = 5;

impl<F: Float, O: Objective<F>, W: Workers> Objective<F> for Sharded<O, W> {
    fn n_samples(&self) -> usize {
        self.n_total
    }
    fn dim(&self) -> usize {
        self.dim
    }

    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        let (r, j) = self.locate(i);
        let mine = if r == self.workers.rank() {
            self.local.sample_loss(w, j).as_f64()
        } else {
            0.0
        };
        F::from_f64(self.workers.all_gather(&[mine])[r])
    }

    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) {
        let (r, j) = self.locate(i);
        let mut mine = vec![0.0; self.dim];
        if r == self.workers.rank() {
            self.local.sample_gradient(w, j, grad);
            mine.iter_mut()
                .zip(grad.iter())
                .for_each(|(m, g)| *m = g.as_f64());
        }
        let all = self.workers.all_gather(&mine);
        let theirs = &all[r * self.dim..(r + 1) * self.dim];
        grad.iter_mut()
            .zip(theirs)
            .for_each(|(g, &v)| *g = F::from_f64(v));
    }

    /// The loss and gradient from the worker holding sample `i`, in one exchange.
    fn sample_loss_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) -> F {
        let (r, j) = self.locate(i);
        let mut mine = vec![0.0; 1 + self.dim];
        if r == self.workers.rank() {
            mine[0] = self.local.sample_loss_gradient(w, j, grad).as_f64();
            mine[1..]
                .iter_mut()
                .zip(grad.iter())
                .for_each(|(m, g)| *m = g.as_f64());
        }
        let all = self.workers.all_gather(&mine);
        let theirs = &all[r * (1 + self.dim)..(r + 1) * (1 + self.dim)];
        grad.iter_mut()
            .zip(&theirs[1..])
            .for_each(|(g, &v)| *g = F::from_f64(v));
        F::from_f64(theirs[0])
    }

    fn batch_loss(&self, w: &ArrayRef1<F>, batch: &[usize]) -> F {
        let local = self.local_part(batch);
        let mean = if local.is_empty() {
            0.0
        } else {
            self.local.batch_loss(w, &local).as_f64()
        };
        self.merge_means(local.len(), mean)
    }

    fn batch_gradient(&self, w: &ArrayRef1<F>, batch: &[usize], stats: &mut GradStats<F>) {
        let local = self.local_part(batch);
        let mut part = GradStats::new(self.dim);
        if !local.is_empty() {
            self.local.batch_gradient(w, &local, &mut part);
        }
        self.merge_workers(&part, stats);
    }

    /// Each worker keeps the line of its own samples of the batch; the objective has lines if
    /// every worker's has (a collective call, as every method here is).
    fn line(&self) -> Option<Box<dyn LineLoss<F> + '_>> {
        let inner = self.local.line();
        if !self.all_ready(inner.is_some()) {
            return None;
        }
        Some(Box::new(ShardedLine {
            sharded: self,
            inner: inner?,
            local: Vec::new(),
        }))
    }

    /// Each worker keeps the curvature of its own samples of the batch; the objective has
    /// curvature if every worker's has (a collective call).
    fn curvature(&self) -> Option<Box<dyn Curvature<F> + '_>> {
        let inner = self.local.curvature();
        if !self.all_ready(inner.is_some()) {
            return None;
        }
        Some(Box::new(ShardedCurvature {
            sharded: self,
            inner: inner?,
            local: Vec::new(),
        }))
    }
}

/// The curvature of a [`Sharded`] objective: this worker's curvature on its samples of the
/// batch.
struct ShardedCurvature<'a, F, O, W> {
    sharded: &'a Sharded<O, W>,
    inner: Box<dyn Curvature<F> + 'a>,
    local: Vec<usize>,
}

impl<F: Float, O: Objective<F>, W: Workers> Curvature<F> for ShardedCurvature<'_, F, O, W> {
    fn prepare(&mut self, w: &ArrayRef1<F>, batch: &[usize]) {
        self.local = self.sharded.local_part(batch);
        if !self.local.is_empty() {
            self.inner.prepare(w, &self.local);
        }
    }

    /// The workers' products, each the mean over its samples, averaged with their counts as
    /// weights, in rank order.
    fn product(&mut self, v: &ArrayRef1<F>, out: &mut ArrayRef1<f64>) {
        let dim = self.sharded.dim;
        let mut mine = vec![0.0; 1 + dim];
        mine[0] = self.local.len() as f64;
        if !self.local.is_empty() {
            self.inner
                .product(v, &mut ndarray::ArrayViewMut1::from(&mut mine[1..]));
        }
        out.fill(0.0);
        let mut count = 0.0;
        for theirs in self.sharded.workers.all_gather(&mine).chunks(1 + dim) {
            count += theirs[0];
            out.iter_mut()
                .zip(&theirs[1..])
                .for_each(|(o, &t)| *o += theirs[0] * t);
        }
        out.mapv_inplace(|o| o / count);
    }

    /// The workers' diagonals, averaged as the products are; none unless every worker's
    /// curvature has one.
    fn diagonal(&mut self, out: &mut ArrayRef1<f64>) -> bool {
        let dim = self.sharded.dim;
        let mut mine = vec![0.0; 2 + dim];
        mine[0] = self.local.len() as f64;
        let has = self.local.is_empty()
            || self
                .inner
                .diagonal(&mut ndarray::ArrayViewMut1::from(&mut mine[2..]));
        mine[1] = if has { 1.0 } else { 0.0 };
        let all = self.sharded.workers.all_gather(&mine);
        if all.chunks(2 + dim).any(|theirs| theirs[1] < 0.5) {
            return false;
        }
        out.fill(0.0);
        let mut count = 0.0;
        for theirs in all.chunks(2 + dim) {
            count += theirs[0];
            out.iter_mut()
                .zip(&theirs[2..])
                .for_each(|(o, &t)| *o += theirs[0] * t);
        }
        out.mapv_inplace(|o| o / count);
        true
    }
}

/// The line of a [`Sharded`] objective: this worker's line on its samples of the batch.
struct ShardedLine<'a, F, O, W> {
    sharded: &'a Sharded<O, W>,
    inner: Box<dyn LineLoss<F> + 'a>,
    local: Vec<usize>,
}

impl<F: Float, O: Objective<F>, W: Workers> LineLoss<F> for ShardedLine<'_, F, O, W> {
    fn prepare(&mut self, w: &ArrayRef1<F>, d: &ArrayRef1<F>, batch: &[usize]) {
        self.local = self.sharded.local_part(batch);
        self.inner.prepare(w, d, &self.local);
    }

    /// The local losses along the line, merged as the batch losses of [`Sharded`] merge.
    fn loss(&self, t: F, point: &ArrayRef1<F>) -> F {
        let mean = if self.local.is_empty() {
            0.0
        } else {
            self.inner.loss(t, point).as_f64()
        };
        self.sharded.merge_means(self.local.len(), mean)
    }

    /// Done if every worker's line did it; a worker whose line did not computes its
    /// statistics on its own.
    fn prepare_with_gradient(
        &mut self,
        w: &ArrayRef1<F>,
        d: &ArrayRef1<F>,
        batch: &[usize],
        stats: &mut GradStats<F>,
    ) -> bool {
        self.local = self.sharded.local_part(batch);
        let mut part = GradStats::new(self.sharded.dim);
        let done = self
            .inner
            .prepare_with_gradient(w, d, &self.local, &mut part);
        if !done {
            // A line that did not take the pass added nothing to `part`.
            self.sharded.local.batch_gradient(w, &self.local, &mut part);
        }
        self.sharded.merge_workers(&part, stats);
        self.sharded.all_ready(done)
    }
}

impl<O, W: Workers> Sharded<O, W> {
    /// Whether every worker's `ready` is true.
    fn all_ready(&self, ready: bool) -> bool {
        let all = self.workers.all_gather(&[if ready { 1.0 } else { 0.0 }]);
        all.iter().all(|&r| r > 0.5)
    }

    /// The mean over the workers' samples of the workers' means of `count` samples each, in
    /// rank order.
    fn merge_means<F: Float>(&self, count: usize, mean: f64) -> F {
        let all = self.workers.all_gather(&[count as f64, mean]);
        let (mut count, mut sum) = (0.0, 0.0);
        for part in all.chunks(2) {
            count += part[0];
            sum += part[0] * part[1];
        }
        F::from_f64(sum / count)
    }

    /// Merges every worker's statistics `part` into `stats`, in rank order.
    fn merge_workers<F: Float>(&self, part: &GradStats<F>, stats: &mut GradStats<F>) {
        let (loss_sum, loss_count) = part.loss_parts();
        let mut mine = Vec::with_capacity(HEAD + self.dim);
        mine.extend([
            part.count() as f64,
            part.groups() as f64,
            part.sum_sq_dev(),
            loss_sum,
            loss_count as f64,
        ]);
        mine.extend(part.mean().iter());
        for theirs in self.workers.all_gather(&mine).chunks(HEAD + self.dim) {
            let count = theirs[0] as usize;
            let with_loss = theirs[4] as usize == count;
            stats.merge_grouped(
                count,
                theirs[1] as usize,
                &ArrayView1::from(&theirs[HEAD..]),
                theirs[2],
                with_loss.then_some(theirs[3]),
            );
        }
    }
}
