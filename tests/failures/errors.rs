//! Bad input gets a typed error naming what is wrong; a run that meets a NaN stops with the
//! last good iterate.
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::*;
use bigbatch::observe::from_fn;
use bigbatch::*;
use ndarray::{Array1, ArrayRef1, array};

fn param_error<S: StepRule>(b: BigBatchSgdBuilder<S>) -> &'static str {
    match b.build() {
        Err(Error::InvalidParameter { name, .. }) => name,
        other => panic!("expected InvalidParameter, got {:?}", other.map(|_| ())),
    }
}

/// Above 1 the biased test passes in expectation for every batch: it is refused, and the
/// unbiased form, whose batch grows with the noise scale for every θ, is accepted.
#[test]
fn theta_above_one_needs_the_unbiased_signal() {
    let b = BigBatchSgd::builder;
    for theta in [1.0 + 1e-9, 2.0, 10.0] {
        assert_eq!(param_error(b().theta(theta)), "theta", "theta = {theta}");
        let msg = b().theta(theta).build().unwrap_err().to_string();
        assert!(msg.contains("unbiased_signal"), "{msg}");
        assert!(b().theta(theta).unbiased_signal(true).build().is_ok());
    }
    assert!(b().theta(1.0).build().is_ok());
    assert!(b().theta(0.5).build().is_ok());
}

#[test]
fn each_invalid_parameter_is_named() {
    let b = BigBatchSgd::builder;
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(param_error(b().theta(bad)), "theta", "theta = {bad}");
        assert_eq!(param_error(b().growth(bad)), "growth", "growth = {bad}");
        assert_eq!(
            param_error(b().step(Fixed::new(bad))),
            "step_size",
            "fixed step = {bad}"
        );
        assert_eq!(
            param_error(b().step(Armijo::new().initial_step(bad))),
            "initial_step"
        );
        assert_eq!(
            param_error(b().step(BarzilaiBorwein::new().initial_step(bad))),
            "initial_step"
        );
    }
    for k in [0, 1] {
        assert_eq!(param_error(b().initial_batch(k)), "initial_batch");
    }
    for bad in [-1e-9, f64::NAN, f64::INFINITY] {
        assert_eq!(
            param_error(b().tolerance(bad)),
            "tolerance",
            "tolerance = {bad}"
        );
    }
    for bad in [-0.1, 1.0, 2.0, f64::NAN] {
        assert_eq!(
            param_error(b().relative_tolerance(bad)),
            "relative_tolerance"
        );
    }
    for bad in [0.0, -3.0, f64::NAN] {
        assert_eq!(param_error(b().max_epochs(bad)), "max_epochs");
    }
    assert_eq!(param_error(b().max_iterations(0)), "max_iterations");
    for bad in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
        assert_eq!(
            param_error(b().step(Armijo::new().sufficient_decrease(bad))),
            "sufficient_decrease"
        );
        assert_eq!(param_error(b().step(Armijo::new().shrink(bad))), "shrink");
        assert_eq!(
            param_error(b().step(BarzilaiBorwein::new().sufficient_decrease(bad))),
            "sufficient_decrease"
        );
        assert_eq!(
            param_error(b().step(BarzilaiBorwein::new().shrink(bad))),
            "shrink"
        );
    }
    assert_eq!(
        param_error(b().step(Armijo::new().increase_factor(0.5))),
        "increase_factor"
    );
    assert_eq!(
        param_error(b().step(Armijo::new().max_backtracks(0))),
        "max_backtracks"
    );
    assert_eq!(
        param_error(b().step(BarzilaiBorwein::new().max_backtracks(0))),
        "max_backtracks"
    );
    // Step bounds inverted or out of range.
    assert_eq!(
        param_error(b().step(Armijo::new().initial_step(2.0).max_step(1.0))),
        "max_step"
    );
    assert_eq!(
        param_error(b().step(Armijo::new().min_step(2.0))),
        "min_step"
    );
    assert_eq!(
        param_error(b().step(Armijo::new().min_step(-1.0))),
        "min_step"
    );
    assert_eq!(
        param_error(b().step(BarzilaiBorwein::new().max_step(0.5))),
        "max_step"
    );
    assert_eq!(
        param_error(b().step(BarzilaiBorwein::new().min_step(f64::NAN))),
        "min_step"
    );
    // The message names the parameter and the allowed range.
    let msg = b().theta(-1.0).build().unwrap_err().to_string();
    assert!(
        msg.contains("theta") && msg.contains("-1") && msg.contains("> 0"),
        "{msg}"
    );
    // Valid edge values are accepted.
    assert!(
        b().tolerance(0.0)
            .max_epochs(f64::INFINITY)
            .initial_batch(2)
            .growth(1e-9)
            .build()
            .is_ok()
    );
}

/// An objective with a chosen number of samples and dimension.
struct Shape(usize, usize);
impl Objective for Shape {
    fn n_samples(&self) -> usize {
        self.0
    }
    fn dim(&self) -> usize {
        self.1
    }
    fn sample_loss(&self, w: &ArrayRef1<f64>, _: usize) -> f64 {
        w.dot(w)
    }
    fn sample_gradient(&self, w: &ArrayRef1<f64>, _: usize, g: &mut ArrayRef1<f64>) {
        g.assign(&(w * 2.0));
    }
}

#[test]
fn bad_objectives_and_starting_points() {
    let mut opt = BigBatchSgd::builder().build().unwrap();
    assert!(matches!(
        opt.minimize(&Shape(0, 3), Array1::zeros(3)).unwrap_err(),
        Error::EmptyObjective {
            n_samples: 0,
            dim: 3
        }
    ));
    assert!(matches!(
        opt.minimize(&Shape(5, 0), Array1::zeros(0)).unwrap_err(),
        Error::EmptyObjective {
            n_samples: 5,
            dim: 0
        }
    ));
    assert!(matches!(
        opt.minimize(&Shape(5, 3), Array1::zeros(4)).unwrap_err(),
        Error::DimensionMismatch {
            what: "w0",
            expected: 3,
            got: 4
        }
    ));
    match opt
        .minimize(&Shape(5, 3), array![0.0, f64::NAN, 1.0])
        .unwrap_err()
    {
        Error::NonFiniteInput {
            what: "w0",
            index: 1,
            value,
        } => assert!(value.is_nan()),
        e => panic!("{e:?}"),
    }
    match opt
        .minimize(&Shape(5, 3), array![0.0, 1.0, f64::NEG_INFINITY])
        .unwrap_err()
    {
        Error::NonFiniteInput {
            what: "w0",
            index: 2,
            ..
        } => {}
        e => panic!("{e:?}"),
    }
    // After the errors the same optimizer still works.
    let r = opt.minimize(&Shape(5, 3), array![1.0, -1.0, 0.5]).unwrap();
    assert!(r.w.iter().all(|x| x.abs() < 1e-4));
}

/// Ridge whose per-sample gradients and losses turn NaN once `calls` evaluations have
/// happened.
struct Poisoned<F> {
    inner: Ridge<F>,
    budget: usize,
    calls: AtomicUsize,
}

impl<F: Float> Objective<F> for Poisoned<F> {
    fn n_samples(&self) -> usize {
        self.inner.n_samples()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        self.inner.sample_loss(w, i)
    }
    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, g: &mut ArrayRef1<F>) {
        self.inner.sample_gradient(w, i, g);
        if self.calls.fetch_add(1, Ordering::Relaxed) >= self.budget {
            g[0] = F::nan();
        }
    }
}

fn nan_gives_last_good_iterate<F: Float, S: StepRule>(opt: &mut BigBatchSgd<S>) {
    let p = Poisoned {
        inner: ridge::<F>(30, 500, 4, 1.0, 0.01),
        budget: 3000,
        calls: AtomicUsize::new(0),
    };
    let w0 = Array1::<F>::from_elem(4, F::from_f64(0.25));
    // The iterates seen by the observer: w0, then the iterate after each step.
    let mut iterates = vec![w0.clone()];
    let mut obs = from_fn(|v: &IterView<'_, F>| {
        iterates.push(v.w.clone());
        ControlFlow::Continue(())
    });
    let err = opt.minimize_with(&p, w0.clone(), &mut obs).unwrap_err();
    let Error::NonFinite {
        what, iteration, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    // The newest iterate is `iterates[len − 1]`. If the batch gradient there was NaN, the last
    // good iterate is the one before; if only a step rule's extra evaluation at the previous
    // iterate was (Barzilai–Borwein), the newest one was evaluated finite and is the last good.
    let expected_index = match *what {
        "gradient" => iterates.len() - 2,
        "gradient at the previous iterate" => iterates.len() - 1,
        other => panic!("unexpected quantity {other}"),
    };
    assert_eq!(*iteration, iterates.len() - 1);
    assert!(*iteration >= 2, "the poison should strike mid-run");
    let last = err.last_iterate::<F>().unwrap();
    let expected = &iterates[expected_index];
    assert_eq!(
        to64(&last),
        to64(expected),
        "exact, including after the f64 round trip"
    );
    assert!(last.iter().all(|x| x.is_finite()));
    let msg = err.to_string();
    assert!(
        msg.contains(*what) && msg.contains(&format!("iteration {iteration}")),
        "{msg}"
    );
}

#[test]
fn nan_gradient_gives_non_finite_with_last_good_iterate() {
    nan_gives_last_good_iterate::<f64, _>(&mut BigBatchSgd::builder().build().unwrap());
    nan_gives_last_good_iterate::<f32, _>(&mut BigBatchSgd::builder().build().unwrap());
    nan_gives_last_good_iterate::<f32, _>(&mut BigBatchSgd::paper().build().unwrap());
    nan_gives_last_good_iterate::<f64, _>(
        &mut BigBatchSgd::paper().step(Fixed::new(0.1)).build().unwrap(),
    );
    nan_gives_last_good_iterate::<f32, _>(
        &mut BigBatchSgd::paper()
            .step(BarzilaiBorwein::new())
            .build()
            .unwrap(),
    );
    nan_gives_last_good_iterate::<f64, _>(
        &mut BigBatchSgd::builder()
            .step(BarzilaiBorwein::new())
            .build()
            .unwrap(),
    );
    let fresh_lbfgs = BigBatchSgd::builder()
        .batch_mode(BatchMode::Fresh)
        .build()
        .unwrap();
    nan_gives_last_good_iterate::<f64, _>(&mut { fresh_lbfgs });
}

#[test]
fn nan_at_the_first_evaluation_hands_back_w0() {
    let p = Poisoned {
        inner: ridge::<f64>(31, 100, 3, 1.0, 0.01),
        budget: 0,
        calls: AtomicUsize::new(0),
    };
    let w0 = array![0.5, -1.5, 2.0];
    let err = BigBatchSgd::builder()
        .build()
        .unwrap()
        .minimize(&p, w0.clone())
        .unwrap_err();
    assert!(matches!(
        err,
        Error::NonFinite {
            what: "gradient",
            iteration: 0,
            ..
        }
    ));
    assert_eq!(err.last_iterate::<f64>().unwrap(), w0);
}

/// A loss that overflows away from the origin: a fixed step too large for it diverges, and
/// the run must stop with an error rather than return infinities.
#[test]
fn divergence_is_an_error_not_a_nan_report() {
    let p = ridge::<f32>(32, 200, 3, 1.0, 0.0);
    let err = BigBatchSgd::builder()
        .step(Fixed::new(50.0))
        .build()
        .unwrap()
        .minimize(&p, Array1::zeros(3))
        .unwrap_err();
    let Error::NonFinite { what, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        ["gradient", "loss", "variance", "iterate", "gradient norm"].contains(what),
        "{what}"
    );
    assert!(
        err.last_iterate::<f32>()
            .unwrap()
            .iter()
            .all(|x| x.is_finite())
    );
}

/// A loss that is flat in floating point while its gradient is not (a broken model): the
/// line search fails with a typed error instead of looping.
#[test]
fn a_line_search_that_cannot_decrease_fails_with_an_error() {
    struct Liar;
    impl Objective for Liar {
        fn n_samples(&self) -> usize {
            10
        }
        fn dim(&self) -> usize {
            2
        }
        fn sample_loss(&self, w: &ArrayRef1<f64>, _: usize) -> f64 {
            // Increases along the reported descent direction.
            1.0 + w[0].abs() + w[1].abs()
        }
        fn sample_gradient(&self, _: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) {
            g[0] = 1.0 + i as f64 * 1e-3;
            g[1] = -1.0;
        }
    }
    let w0 = array![0.0, 0.0];
    let err = BigBatchSgd::builder()
        .step(Armijo::new().max_backtracks(20))
        .build()
        .unwrap()
        .minimize(&Liar, w0.clone())
        .unwrap_err();
    match &err {
        Error::LineSearchFailed {
            iteration: 0,
            backtracks,
            ..
        } => assert!(*backtracks <= 20),
        e => panic!("{e:?}"),
    }
    assert_eq!(err.last_iterate::<f64>().unwrap(), w0);
}

/// An override of `batch_gradient` that forgets samples is reported, not looped on.
#[test]
fn a_batch_gradient_that_drops_samples_is_reported() {
    struct Forgetful;
    impl Objective for Forgetful {
        fn n_samples(&self) -> usize {
            50
        }
        fn dim(&self) -> usize {
            1
        }
        fn sample_loss(&self, _: &ArrayRef1<f64>, _: usize) -> f64 {
            0.0
        }
        fn sample_gradient(&self, _: &ArrayRef1<f64>, _: usize, g: &mut ArrayRef1<f64>) {
            g[0] = 1.0;
        }
        fn batch_gradient(&self, _: &ArrayRef1<f64>, _: &[usize], _: &mut GradStats<f64>) {}
    }
    let err = BigBatchSgd::builder()
        .build()
        .unwrap()
        .minimize(&Forgetful, array![0.0])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DimensionMismatch {
                expected: 10,
                got: 0,
                ..
            }
        ),
        "{err:?}"
    );
}
