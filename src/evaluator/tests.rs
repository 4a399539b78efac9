//! The evaluator's bookkeeping: adoption of trial statistics, lines, counting.

use super::*;
use ndarray::{ArrayRef1, array};

/// `f_i(w) = (w₀ − a_i)²/2`.
struct Mean(Vec<f64>);
impl Objective for Mean {
    fn n_samples(&self) -> usize {
        self.0.len()
    }
    fn dim(&self) -> usize {
        1
    }
    fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 {
        0.5 * (w[0] - self.0[i]).powi(2)
    }
    fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) {
        g[0] = w[0] - self.0[i];
    }
}

#[test]
fn trial_statistics_are_adopted_only_at_their_own_point() {
    let data = Mean(vec![1.0, 2.0, 4.0, 8.0]);
    let batch = [0, 2, 3];
    let (w, d) = (array![0.0], array![1.0]);
    let mut eval = Evaluator::new(1);
    eval.prepare(u64::MAX, u64::MAX);
    eval.add(&data, &w, &batch).unwrap();
    eval.keep_trials(true);
    // A trial with statistics at w + 0.5 d, then the move elsewhere: nothing is kept.
    eval.set_trial(&w, &d, 0.5);
    let loss = eval.trial_stats(&data, None, &batch).unwrap();
    assert_eq!(
        loss.to_bits(),
        data.batch_loss(&array![0.5], &batch).to_bits()
    );
    eval.adopt(&array![0.25]);
    assert!(eval.valid_stats().is_none());
    // The same trial, then the move onto it: its statistics become the batch's.
    eval.set_trial(&w, &d, 0.5);
    eval.trial_stats(&data, None, &batch);
    eval.adopt(&array![0.5]);
    let stats = eval.valid_stats().expect("adopted");
    assert!((stats.mean()[0] - (0.5 - (1.0 + 4.0 + 8.0) / 3.0)).abs() < 1e-15);
    assert_eq!(stats.count(), 3);
    // A later loss-only trial at the same point forgets the statistics computed there.
    eval.set_trial(&w, &d, 0.5);
    eval.trial_stats(&data, None, &batch);
    eval.set_trial(&w, &d, 0.5);
    eval.trial_loss(&data, None, &batch);
    eval.adopt(&array![0.5]);
    assert!(eval.valid_stats().is_none());
    // Every evaluation was counted: 3 batches of gradients at w and at the trials, ...
    assert_eq!(eval.grad_evals(), 4 * 3);
    // ... and one loss pass.
    assert_eq!(eval.loss_evals(), 3);
}

/// As `Mean`, with losses along a line from `w₀ − a_i` and `d₀`, counting preparations.
struct LineMean(Mean, std::cell::Cell<usize>);
impl Objective for LineMean {
    fn n_samples(&self) -> usize {
        self.0.n_samples()
    }
    fn dim(&self) -> usize {
        1
    }
    fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 {
        self.0.sample_loss(w, i)
    }
    fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) {
        self.0.sample_gradient(w, i, g)
    }
    fn line(&self) -> Option<Box<dyn LineLoss<f64> + '_>> {
        Some(Box::new(MeanLine {
            data: self,
            values: Vec::new(),
        }))
    }
}

/// The residuals `w₀ − a_i` and the slope `d₀` of each sample.
struct MeanLine<'a> {
    data: &'a LineMean,
    values: Vec<f64>,
}

impl MeanLine<'_> {
    fn fill(&mut self, w: &ArrayRef1<f64>, d: &ArrayRef1<f64>, batch: &[usize]) {
        let a = &self.data.0.0;
        self.values.clear();
        self.values
            .extend(batch.iter().flat_map(|&i| [w[0] - a[i], d[0]]));
    }
}

impl LineLoss<f64> for MeanLine<'_> {
    fn prepare(&mut self, w: &ArrayRef1<f64>, d: &ArrayRef1<f64>, batch: &[usize]) {
        self.data.1.set(self.data.1.get() + 1);
        self.fill(w, d, batch);
    }
    fn loss(&self, t: f64, _: &ArrayRef1<f64>) -> f64 {
        let sum: f64 = self
            .values
            .chunks(2)
            .map(|p| 0.5 * (p[0] + t * p[1]).powi(2))
            .sum();
        2.0 * sum / self.values.len() as f64
    }
    fn prepare_with_gradient(
        &mut self,
        w: &ArrayRef1<f64>,
        d: &ArrayRef1<f64>,
        batch: &[usize],
        stats: &mut GradStats<f64>,
    ) -> bool {
        self.data.batch_gradient(w, batch, stats);
        self.fill(w, d, batch);
        true
    }
}

#[test]
fn a_line_is_prepared_once_for_all_its_trials() {
    let data = LineMean(Mean(vec![1.0, 2.0, 4.0, 8.0]), std::cell::Cell::new(0));
    let batch = [0, 1, 3];
    let (w, d, d2) = (array![0.0], array![1.0], array![2.0]);
    let mut along = data.line().expect("a line object");
    let mut eval = Evaluator::new(1);
    eval.prepare(u64::MAX, u64::MAX);
    let trial =
        |eval: &mut Evaluator<f64>, along: &mut dyn LineLoss<f64>, d: &Array1<f64>, alpha: f64| {
            eval.set_trial(&w, d, alpha);
            let loss = eval.trial_loss(&data, Some(along), &batch).unwrap();
            let direct = data.batch_loss(&(&w + &(d * alpha)), &batch);
            assert!(
                (loss - direct).abs() <= 1e-15 * direct,
                "{loss} vs {direct}"
            );
        };
    for alpha in [1.0, 0.5, 0.25] {
        trial(&mut eval, along.as_mut(), &d, alpha);
    }
    assert_eq!(data.1.get(), 1, "three trials on one line");
    trial(&mut eval, along.as_mut(), &d2, 0.5);
    assert_eq!(data.1.get(), 2, "another direction, another line");
    eval.prepare(u64::MAX, u64::MAX);
    trial(&mut eval, along.as_mut(), &d2, 0.5);
    assert_eq!(data.1.get(), 3, "a new iteration forgets the line");
    assert_eq!(eval.loss_evals(), 5 * 3, "every trial counts its losses");

    // A first trial with statistics leaves the line, taken at its own point, for the
    // shorter steps: no preparation, and the losses where they belong.
    eval.prepare(u64::MAX, u64::MAX);
    eval.add(&data, &w, &batch).unwrap();
    eval.keep_trials(true);
    eval.set_trial(&w, &d, 1.0);
    eval.trial_stats(&data, Some(along.as_mut()), &batch);
    for alpha in [0.5, 0.25] {
        trial(&mut eval, along.as_mut(), &d, alpha);
    }
    assert_eq!(data.1.get(), 3, "the statistics pass prepared the line");
}

#[test]
fn trials_keep_no_statistics_unless_allowed_and_paid_for() {
    let data = Mean(vec![1.0, 2.0, 4.0, 8.0]);
    let batch = [0, 1, 2, 3];
    let (w, d) = (array![0.0], array![1.0]);
    for (keep, limit) in [(false, u64::MAX), (true, 7)] {
        let mut eval = Evaluator::new(1);
        eval.prepare(limit, u64::MAX);
        eval.add(&data, &w, &batch).unwrap();
        eval.keep_trials(keep);
        eval.set_trial(&w, &d, 1.0);
        eval.trial_stats(&data, None, &batch);
        eval.adopt(&array![1.0]);
        assert!(eval.valid_stats().is_none(), "keep {keep}, limit {limit}");
        assert_eq!((eval.grad_evals(), eval.loss_evals()), (4, 4));
    }
}

/// `f_i(w) = (w − a_i)²/2` in two dimensions, for the inner products' variance.
struct Mean2(Vec<[f64; 2]>);
impl Objective for Mean2 {
    fn n_samples(&self) -> usize {
        self.0.len()
    }
    fn dim(&self) -> usize {
        2
    }
    fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 {
        let a = self.0[i];
        0.5 * ((w[0] - a[0]).powi(2) + (w[1] - a[1]).powi(2))
    }
    fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) {
        g[0] = w[0] - self.0[i][0];
        g[1] = w[1] - self.0[i][1];
    }
}

/// The sample variance of `∇f_i·g_B` over `batch`, directly.
fn direct_projected_variance(data: &Mean2, w: &Array1<f64>, batch: &[usize]) -> f64 {
    let grads: Vec<[f64; 2]> = batch
        .iter()
        .map(|&i| [w[0] - data.0[i][0], w[1] - data.0[i][1]])
        .collect();
    let n = grads.len() as f64;
    let g = [
        grads.iter().map(|v| v[0]).sum::<f64>() / n,
        grads.iter().map(|v| v[1]).sum::<f64>() / n,
    ];
    let p: Vec<f64> = grads.iter().map(|v| v[0] * g[0] + v[1] * g[1]).collect();
    let mean = p.iter().sum::<f64>() / n;
    p.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
}

#[test]
fn grouped_evaluation_gives_the_batch_and_the_variance_of_its_inner_products() {
    use rand::{RngExt, SeedableRng, rngs::Xoshiro256PlusPlus};
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
    let data = Mean2(
        (0..4000)
            .map(|_| [rng.random::<f64>() * 3.0, rng.random::<f64>() - 0.5])
            .collect(),
    );
    let w = array![2.0, 1.0];
    // Groups of one sample: the per-sample variance exactly, and the same batch statistics.
    let batch: Vec<usize> = (0..12).collect();
    let mut eval = Evaluator::new(2);
    eval.prepare(u64::MAX, u64::MAX);
    eval.add_grouped(&data, &w, &batch[..8], 16).unwrap();
    eval.add_grouped(&data, &w, &batch[8..], 16).unwrap();
    let direct = direct_projected_variance(&data, &w, &batch);
    let grouped = eval.projected_variance().unwrap();
    assert!(
        (grouped - direct).abs() <= 1e-12 * direct,
        "{grouped} vs {direct}"
    );
    let mut whole = Evaluator::new(2);
    whole.prepare(u64::MAX, u64::MAX);
    whole.add(&data, &w, &batch).unwrap();
    assert_eq!(eval.stats().count(), 12);
    assert!((eval.stats().variance() - whole.stats().variance()).abs() < 1e-12);
    assert_eq!(eval.grad_evals(), 12);
    // Larger groups, merged as the batch grows: unbiased over many batches.
    let (mut sum_grouped, mut sum_direct, trials) = (0.0, 0.0, 400);
    for t in 0..trials {
        let start = (t * 7) % 3000;
        let batch: Vec<usize> = (start..start + 500).collect();
        let mut eval = Evaluator::new(2);
        eval.prepare(u64::MAX, u64::MAX);
        eval.add_grouped(&data, &w, &batch[..200], 8).unwrap();
        for piece in batch[200..].chunks(60) {
            eval.add_grouped(&data, &w, piece, 8).unwrap();
        }
        assert!(eval.scratch.groups.means.len() <= 16);
        assert_eq!(eval.stats().count(), 500);
        sum_grouped += eval.projected_variance().unwrap();
        sum_direct += direct_projected_variance(&data, &w, &batch);
    }
    let ratio = sum_grouped / sum_direct;
    assert!(
        (ratio - 1.0).abs() < 0.06,
        "mean of the grouped estimates / direct: {ratio}"
    );
    // A fresh batch forgets the groups.
    eval.clear();
    assert!(eval.projected_variance().is_none());
}
