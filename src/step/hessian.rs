//! Hessian-vector products on a subsample of the batch: the verbs of a second-order rule.

use ndarray::{Array1, ArrayRef1, Zip};

use super::StepContext;
use crate::float::Float;
use crate::objective::{Curvature, Objective};

/// The objective's curvature object for one iteration, and the subsample it is prepared on.
pub(crate) struct Hessian<'a, F> {
    pub(crate) object: &'a mut (dyn Curvature<F> + 'a),
    /// The subsample of the last preparation in this iteration (empty before one).
    samples: Vec<usize>,
    /// The vector of the product, rounded to `F`.
    v: Array1<F>,
}

impl<'a, F: Float> Hessian<'a, F> {
    pub(crate) fn new(object: &'a mut (dyn Curvature<F> + 'a)) -> Self {
        Hessian {
            object,
            samples: Vec::new(),
            v: Array1::zeros(0),
        }
    }
}

/// `m` of the `n` positions `0..n`, spread evenly: `⌊k·n/m⌋` for `k < m` (all of them for
/// `m ≥ n`).
fn spread(n: usize, m: usize) -> impl Iterator<Item = usize> {
    let m = m.min(n);
    (0..m).map(move |k| ((k as u128 * n as u128) / m as u128) as usize)
}

impl<F: Float, O: Objective<F> + ?Sized> StepContext<'_, F, O> {
    /// Whether the objective has products with the Hessian of a batch loss
    /// ([`Objective::curvature`]).
    pub fn has_curvature(&self) -> bool {
        self.trials.hessian.is_some()
    }

    /// Prepares products with `H_S(w)`, the Hessian of the mean loss at `w` over `size`
    /// samples of the batch spread evenly over it (the whole batch for `size ≥ |B|`, at least
    /// one sample), and returns true; the preparation is counted as `|S|` gradient evaluations
    /// (a linear model reads each row once). False, evaluating nothing, when the objective has
    /// no curvature or the budget cannot pay.
    pub fn prepare_hessian(&mut self, size: usize) -> bool {
        let batch = self.trials.batch;
        let Some(hessian) = self.trials.hessian.as_mut() else {
            return false;
        };
        let size = size.clamp(1, batch.len());
        if !self.trials.eval.charge_grads(size) {
            return false;
        }
        hessian.samples.clear();
        hessian
            .samples
            .extend(spread(batch.len(), size).map(|p| batch[p]));
        hessian.object.prepare(self.trials.w, &hessian.samples);
        true
    }

    /// The number of samples the Hessian is prepared on in this iteration (0 before
    /// [`prepare_hessian`](Self::prepare_hessian)).
    pub fn hessian_samples(&self) -> usize {
        self.trials.hessian.as_ref().map_or(0, |h| h.samples.len())
    }

    /// Overwrites `out` with `H_S v` for the prepared subsample (with `v` rounded to the run's
    /// float type) and returns true, counting `|S|` gradient evaluations. False, evaluating
    /// nothing, before a preparation in this iteration or when the budget cannot pay.
    ///
    /// # Panics
    /// If `v` or `out` does not have the problem's dimension.
    pub fn hessian_product(&mut self, v: &ArrayRef1<f64>, out: &mut ArrayRef1<f64>) -> bool {
        let Some(hessian) = self.trials.hessian.as_mut() else {
            return false;
        };
        let size = hessian.samples.len();
        if size == 0 || !self.trials.eval.charge_grads(size) {
            return false;
        }
        assert_eq!(v.len(), self.trials.w.len(), "hessian_product: length of v");
        if hessian.v.len() != v.len() {
            hessian.v = Array1::zeros(v.len());
        }
        Zip::from(&mut hessian.v)
            .and(v)
            .for_each(|x, &v| *x = F::from_f64(v));
        hessian.object.product(&hessian.v, out);
        true
    }
}

impl<F: Float, O: Objective<F> + ?Sized> StepContext<'_, F, O> {
    /// Overwrites `out` with the diagonal of `H_S` for the prepared subsample and returns true,
    /// counting `|S|` gradient evaluations. False, evaluating nothing, before a preparation in
    /// this iteration, when the budget cannot pay, or when the objective's curvature has no
    /// diagonal ([`Curvature::diagonal`]).
    ///
    /// # Panics
    /// If `out` does not have the problem's dimension.
    pub fn hessian_diagonal(&mut self, out: &mut ArrayRef1<f64>) -> bool {
        let Some(hessian) = self.trials.hessian.as_mut() else {
            return false;
        };
        let size = hessian.samples.len();
        if size == 0 || size as u64 > self.trials.eval.remaining() {
            return false;
        }
        let has = hessian.object.diagonal(out);
        if has {
            self.trials.eval.charge_grads(size);
        }
        has
    }
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_picks_distinct_positions_over_the_whole_range() {
        for (n, m) in [(1, 1), (10, 3), (10, 10), (10, 20), (1000, 7), (257, 256)] {
            let picked: Vec<usize> = spread(n, m).collect();
            assert_eq!(picked.len(), m.min(n));
            assert!(
                picked.windows(2).all(|p| p[0] < p[1]),
                "{n} {m}: {picked:?}"
            );
            assert!(picked.iter().all(|&p| p < n));
            assert_eq!(picked[0], 0);
            // The last pick is within one stride of the end.
            assert!(n - picked[picked.len() - 1] <= n.div_ceil(m.min(n)));
        }
    }
}
