//! What the fuzz targets check, shared with a seeded smoke test (`tests/fuzz_smoke.rs`) so that
//! CI runs the same checks without a fuzzer: arbitrary input may be refused with a typed error,
//! but never panics, and what is accepted keeps its invariants.
#![allow(dead_code)] // each includer uses part of it

use bigbatch::data::{Dataset, Features, parse_libsvm, parse_libsvm_gz};
use bigbatch::models::{Huber, LeastSquares, Logistic, Softmax};
use bigbatch::{
    Armijo, BarzilaiBorwein, BatchMode, BigBatchSgd, BigBatchSgdBuilder, Error, Fixed, GrowthRule,
    Lbfgs, Objective, StepRule,
};
use ndarray::{Array1, Array2};

/// The LIBSVM reader on arbitrary bytes, as text and as gzip, with and without a feature count.
pub fn libsvm(bytes: &[u8]) {
    for n_features in [None, Some(7)] {
        match parse_libsvm::<f64, _>(bytes, "fuzz", n_features) {
            Ok(data) => check_dataset(&data, n_features),
            Err(Error::Parse { line, .. }) => assert!(line >= 1),
            Err(Error::InvalidData { .. } | Error::Io { .. }) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    match parse_libsvm_gz::<f32>(bytes, "fuzz.gz", None) {
        Ok(data) => check_dataset(&data, None),
        Err(Error::Parse { .. } | Error::InvalidData { .. } | Error::Io { .. }) => {}
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

fn check_dataset<F: bigbatch::Float>(data: &Dataset<F>, n_features: Option<usize>) {
    assert!(data.n_samples() >= 1);
    if let Some(d) = n_features {
        assert_eq!(data.n_features(), d);
    }
    assert!(data.targets().iter().all(|y| y.is_finite()));
    if let Features::Sparse(m) = data.features() {
        for i in 0..m.n_rows() {
            let (cols, vals) = m.row(i);
            assert!(cols.windows(2).all(|c| c[0] < c[1]), "increasing columns");
            assert!(cols.iter().all(|&c| c < m.n_cols()));
            assert!(vals.iter().all(|v| v.is_finite() && !v.is_zero()));
        }
    }
}

/// Reads bytes as small numbers, with a few extreme values mixed in.
struct Bytes<'a>(&'a [u8], usize);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.0.get(self.1).copied().unwrap_or(0);
        self.1 += 1;
        b
    }
    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }
    fn value(&mut self) -> f64 {
        match self.byte() {
            250 => 1e30,
            251 => -1e30,
            252 => 1e-30,
            253 => 1e15,
            254 => -1e15,
            b => (f64::from(b) - 125.0) / 31.0,
        }
    }
}

/// A whole run on a problem and a configuration built from the bytes: it ends with a report
/// or a typed run-time error carrying a finite iterate, and never panics.
pub fn run(bytes: &[u8]) {
    let mut b = Bytes(bytes, 0);
    let n = 1 + b.below(40);
    let d = 1 + b.below(4);
    let model = b.below(4);
    let rule = b.below(5);
    let x = Array2::from_shape_fn((n, d), |_| b.value());
    let y: Array1<f64> = (0..n).map(|_| b.value()).collect();
    let sparse = b.below(2) == 1;
    // θ > 1 only with the unbiased signal (the biased test is refused there).
    let theta = 0.05 + f64::from(b.byte()) / 64.0;
    let builder = BigBatchSgd::builder()
        .theta(theta)
        .unbiased_signal(theta > 1.0)
        .initial_batch(2 + b.below(20))
        .growth(0.01 + f64::from(b.byte()) / 128.0)
        .growth_rule(if b.below(2) == 0 {
            GrowthRule::Fraction
        } else {
            GrowthRule::ToRequired
        })
        .batch_mode(if b.below(2) == 0 {
            BatchMode::Fresh
        } else {
            BatchMode::Persistent
        })
        .finite_population_correction(b.below(2) == 0)
        .tolerance(if b.below(2) == 0 { 0.0 } else { 1e-8 })
        .max_epochs(0.5 + f64::from(b.byte()) / 32.0)
        .max_iterations(1 + b.below(60))
        .seed(u64::from(b.byte()))
        .smoothing(0.3 * (b.below(4) as f64));
    let alpha = 10f64.powf(f64::from(b.byte()) / 32.0 - 6.0);
    let data = match Dataset::from_dense(x, y.clone()) {
        Ok(data) if sparse => data.into_sparse(),
        Ok(data) => data,
        Err(e) => panic!("finite data refused: {e:?}"),
    };
    let lambda = f64::from(b.byte() % 4) * 1e-2;
    match model {
        0 => with_rule(
            rule,
            alpha,
            builder,
            &LeastSquares::new(data, lambda).unwrap(),
        ),
        1 => {
            let labels = y.mapv(|v| if v > 0.0 { 1.0 } else { -1.0 });
            let data = Dataset::new(data.features().clone(), labels).unwrap();
            with_rule(rule, alpha, builder, &Logistic::new(data, lambda).unwrap());
        }
        2 => with_rule(
            rule,
            alpha,
            builder,
            &Huber::new(data, 0.5, lambda).unwrap(),
        ),
        _ => {
            let labels = y.mapv(|v| (v.abs() as usize % 3) as f64);
            let data = Dataset::new(data.features().clone(), labels).unwrap();
            with_rule(
                rule,
                alpha,
                builder,
                &Softmax::new(data, 3, lambda).unwrap(),
            );
        }
    }
}

fn with_rule<O: Objective<f64>>(rule: usize, alpha: f64, b: BigBatchSgdBuilder, objective: &O) {
    match rule {
        0 => check(b.build().unwrap(), objective),
        1 => check(b.step(Armijo::new()).build().unwrap(), objective),
        2 => check(b.step(BarzilaiBorwein::new()).build().unwrap(), objective),
        3 => check(b.step(Lbfgs::new().memory(1)).build().unwrap(), objective),
        _ => check(b.step(Fixed::new(alpha)).build().unwrap(), objective),
    }
}

fn check<S: StepRule, O: Objective<f64>>(mut opt: BigBatchSgd<S>, objective: &O) {
    let w0 = Array1::zeros(objective.dim());
    let limit = opt.stop_criteria().grad_limit(objective.n_samples());
    match opt.minimize(objective, w0) {
        Ok(r) => {
            assert!(r.w.iter().all(|v| v.is_finite()) && r.loss.is_finite());
            assert!(r.batch_size <= objective.n_samples());
            assert!(r.grad_evals <= limit, "budget {limit} exceeded: {r}");
        }
        Err(e @ (Error::NonFinite { .. } | Error::LineSearchFailed { .. })) => {
            assert!(
                e.last_iterate::<f64>()
                    .unwrap()
                    .iter()
                    .all(|v| v.is_finite())
            );
        }
        Err(e) => panic!("unexpected error {e:?}"),
    }
}
