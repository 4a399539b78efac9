//! Batch sizes and the sampling of batch indices.

use rand::{Rng, RngExt};

/// The batch size after one growth step: `K + max(1, ⌈rate·K⌉)`, capped at `n_total`.
///
/// The ceiling forgives the rounding error of `rate·K` (so `0.1 · 30` grows by 3, not 4).
pub(crate) fn grown_size(k: usize, rate: f64, n_total: usize) -> usize {
    let x = rate * k as f64;
    let nearest = x.round();
    let inc = if (x - nearest).abs() <= 1e-9 * nearest.max(1.0) {
        nearest
    } else {
        x.ceil()
    };
    // `inc` is finite and ≥ 0 for validated `rate`; the cast saturates anyway.
    let inc = (inc as usize).max(1);
    k.saturating_add(inc).min(n_total)
}

/// Draws batches of distinct indices from `0..n` by a partial Fisher–Yates shuffle of one
/// permutation, kept across draws.
///
/// [`draw`](Self::draw) starts a fresh batch (an independent uniform draw without
/// replacement); [`extend`](Self::extend) adds new indices, distinct from those already in
/// the batch. Both cost O(new indices) and never allocate.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct Sampler {
    perm: Vec<usize>,
    len: usize,
    /// On a stream: the next index no batch has held yet. Batches are then runs of consecutive
    /// indices, each sample in at most one batch, and `perm` holds only the current batch.
    #[cfg_attr(feature = "serde", serde(default))]
    next: Option<usize>,
}

impl Sampler {
    pub(crate) fn new(n: usize) -> Self {
        Sampler {
            perm: (0..n).collect(),
            len: 0,
            next: None,
        }
    }

    /// The sampler of a stream: every batch is new samples, in the order the stream gives them.
    pub(crate) fn sequential() -> Self {
        Sampler {
            perm: Vec::new(),
            len: 0,
            next: Some(0),
        }
    }

    /// Starts a new batch of `k` (capped at `n`) indices.
    pub(crate) fn draw<R: Rng + ?Sized>(&mut self, k: usize, rng: &mut R) -> &[usize] {
        self.len = 0;
        if self.next.is_some() {
            self.perm.clear();
        }
        self.extend(k, rng)
    }

    /// Grows the batch to `k` (capped at `n`) indices; returns only the new ones.
    pub(crate) fn extend<R: Rng + ?Sized>(&mut self, k: usize, rng: &mut R) -> &[usize] {
        if let Some(next) = self.next.as_mut() {
            let start = self.len;
            let add = k.saturating_sub(start);
            self.perm.extend(*next..*next + add);
            *next += add;
            self.len = self.perm.len();
            return &self.perm[start..];
        }
        let n = self.perm.len();
        let k = k.min(n);
        let start = self.len;
        if k == n {
            // Every index is taken: no random numbers needed.
            self.len = n;
        } else {
            for j in start..k {
                let r = rng.random_range(j..n);
                self.perm.swap(j, r);
            }
            self.len = self.len.max(k);
        }
        &self.perm[start.min(self.len)..self.len]
    }

    /// Shuffles the whole permutation (Fisher–Yates) and empties the batch: afterwards
    /// [`prefix`](Self::prefix) takes batches as growing prefixes of this one shuffle.
    pub(crate) fn shuffle<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        let n = self.perm.len();
        for j in 0..n.saturating_sub(1) {
            let r = rng.random_range(j..n);
            self.perm.swap(j, r);
        }
        self.len = 0;
    }

    /// Sets the batch to the first `k` (capped at `n`) entries of the permutation; returns the
    /// entries added since the last call (all of them after a shrink, which the optimizer
    /// never asks for).
    pub(crate) fn prefix(&mut self, k: usize) -> &[usize] {
        let k = k.min(self.perm.len());
        let start = if k >= self.len { self.len } else { 0 };
        self.len = k;
        &self.perm[start..k]
    }

    /// The current batch.
    /// Puts a batch that holds every sample in storage order: the same set, read from memory
    /// front to back by every later pass over it. A no-op for a partial batch (whose order is
    /// the draw) and for one already in order.
    pub(crate) fn order_if_full(&mut self) {
        if self.next.is_none() && self.len == self.perm.len() && !self.perm.is_sorted() {
            self.perm.sort_unstable();
        }
    }

    pub(crate) fn batch(&self) -> &[usize] {
        &self.perm[..self.len]
    }

    /// Whether the sampler holds a permutation of `0..n` and a batch within it (a check of a
    /// sampler read from a checkpoint).
    #[cfg(feature = "serde")]
    pub(crate) fn is_permutation_of(&self, n: usize) -> bool {
        let mut seen = vec![false; n];
        self.next.is_none()
            && self.perm.len() == n
            && self.len <= n
            && self
                .perm
                .iter()
                .all(|&i| i < n && !std::mem::replace(&mut seen[i], true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::Xoshiro256PlusPlus};

    #[test]
    fn growth_arithmetic_and_cap() {
        assert_eq!(grown_size(10, 0.1, 1000), 11);
        assert_eq!(
            grown_size(30, 0.1, 1000),
            33,
            "0.1·30 is 3 despite rounding"
        );
        assert_eq!(grown_size(31, 0.1, 1000), 35, "⌈3.1⌉ = 4");
        assert_eq!(grown_size(2, 0.1, 1000), 3, "at least one sample");
        assert_eq!(grown_size(100, 0.5, 1000), 150);
        assert_eq!(grown_size(100, 2.0, 1000), 300);
        assert_eq!(grown_size(990, 0.1, 1000), 1000, "capped at N");
        assert_eq!(grown_size(1000, 0.1, 1000), 1000);
        assert_eq!(grown_size(usize::MAX - 1, 1.0, usize::MAX), usize::MAX);
        // Repeated growth from 10 by 10 %: 11, 13 (⌈1.1⌉ = 2), 15, 17, 19, 21, 24, ...
        let mut k = 10;
        let mut seq = vec![];
        for _ in 0..7 {
            k = grown_size(k, 0.1, 1000);
            seq.push(k);
        }
        assert_eq!(seq, vec![11, 13, 15, 17, 19, 21, 24]);
    }

    #[test]
    fn batches_are_distinct_and_grow_without_repeats() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let mut s = Sampler::new(50);
        for _ in 0..20 {
            s.draw(7, &mut rng);
            let new = s.extend(20, &mut rng).len();
            assert_eq!(new, 13);
            let mut b = s.batch().to_vec();
            assert_eq!(b.len(), 20);
            b.sort_unstable();
            b.dedup();
            assert_eq!(b.len(), 20, "no index repeats inside a batch");
            assert!(b.iter().all(|&i| i < 50));
        }
        assert_eq!(s.extend(80, &mut rng).len(), 30, "capped at n");
        assert_eq!(s.extend(80, &mut rng).len(), 0);
        let mut all = s.batch().to_vec();
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn only_a_full_batch_is_put_in_storage_order() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let mut s = Sampler::new(30);
        s.shuffle(&mut rng);
        s.prefix(12);
        let partial = s.batch().to_vec();
        s.order_if_full();
        assert_eq!(s.batch(), &partial[..], "a partial batch keeps its order");
        let rest = s.prefix(30).to_vec();
        assert_eq!(rest.len(), 18);
        s.order_if_full();
        assert_eq!(s.batch(), &(0..30).collect::<Vec<_>>()[..]);
        assert_eq!(s.prefix(30).len(), 0, "nothing new once full");
    }

    #[test]
    fn prefixes_of_one_shuffle_grow_without_repeats() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut s = Sampler::new(40);
        s.shuffle(&mut rng);
        let first = s.prefix(5).to_vec();
        assert_eq!(first.len(), 5);
        assert_eq!(s.prefix(5).len(), 0, "same prefix: nothing new");
        let more = s.prefix(12).to_vec();
        assert_eq!(more.len(), 7);
        assert_eq!(&s.batch()[..5], &first[..], "a prefix keeps its samples");
        let mut all = s.prefix(100).to_vec();
        all.extend_from_slice(&first);
        all.extend_from_slice(&more);
        all.sort_unstable();
        assert_eq!(
            all,
            (0..40).collect::<Vec<_>>(),
            "one shuffle of every index"
        );
        assert_ne!(s.batch(), &(0..40).collect::<Vec<_>>()[..], "shuffled");
    }

    #[test]
    fn a_stream_hands_out_each_index_once() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut s = Sampler::sequential();
        assert_eq!(s.draw(3, &mut rng), &[0, 1, 2]);
        assert_eq!(s.extend(5, &mut rng), &[3, 4]);
        assert_eq!(s.batch(), &[0, 1, 2, 3, 4]);
        assert_eq!(s.draw(2, &mut rng), &[5, 6], "a new batch is new samples");
        assert_eq!(s.batch(), &[5, 6]);
        assert_eq!(s.extend(2, &mut rng).len(), 0);
        s.order_if_full();
        assert_eq!(s.batch(), &[5, 6]);
    }

    #[test]
    fn draws_are_roughly_uniform() {
        // Each of 10 indices should appear in a batch of 3 with probability 0.3.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let mut s = Sampler::new(10);
        let mut hits = [0usize; 10];
        let trials = 20_000;
        for _ in 0..trials {
            for &i in s.draw(3, &mut rng) {
                hits[i] += 1;
            }
        }
        for h in hits {
            let p = h as f64 / trials as f64;
            assert!((p - 0.3).abs() < 0.015, "frequency {p}");
        }
    }
}
