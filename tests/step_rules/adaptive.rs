//! Adam, Adadelta and heavy-ball momentum on big batches reach the optimum of a problem whose
//! optimum is known, in f32 and f64, and resume exactly from a checkpoint.
use crate::common::*;
use bigbatch::data::datasets;
use bigbatch::*;
use ndarray::Array1;

/// The distance to the optimum after a run with `rule`, relative to the optimum's norm.
fn relative_error<F: Float, S: StepRule>(rule: S, epochs: f64) -> (f64, Report<F>) {
    let p = ridge::<F>(31, 1000, 5, 0.5, 1e-2);
    let optimum = p.optimum();
    let report = BigBatchSgd::builder()
        .seed(8)
        .max_epochs(epochs)
        .tolerance(0.0)
        .step(rule)
        .build()
        .unwrap()
        .minimize(&p, Array1::zeros(5))
        .unwrap();
    let err = max_abs_diff(&report.w, &optimum) / optimum.mapv(f64::abs).sum();
    (err, report)
}

fn each_rule_reaches_the_optimum<F: Float>() {
    let tol = if F::epsilon().as_f64() > 1e-10 {
        1e-4
    } else {
        1e-6
    };
    // Adadelta's step scale follows the size of its recent steps and never shrinks on its own:
    // on a full batch it circles the optimum at a distance of about 1e-3 (relative) here,
    // and gets no closer with more epochs (7e-3 after 3000).
    type Run<F> = (&'static str, (f64, Report<F>), f64);
    let runs: [Run<F>; 4] = [
        (
            "adam",
            relative_error(Adam::new().step_size(0.02), 300.0),
            tol,
        ),
        ("adadelta", relative_error(Adadelta::new(), 300.0), 5e-3),
        (
            "momentum",
            relative_error(Momentum::new().step_size(0.05), 300.0),
            tol,
        ),
        (
            "momentum μ=0.5",
            relative_error(Momentum::new().step_size(0.2).momentum(0.5), 300.0),
            tol,
        ),
    ];
    for (name, (err, report), tol) in runs {
        eprintln!(
            "{name} ({}): relative error {err:.1e}, {report}",
            std::any::type_name::<F>()
        );
        assert!(err < tol, "{name}: {err:e}, {report}");
    }
}

#[test]
fn each_rule_reaches_the_optimum_f64() {
    each_rule_reaches_the_optimum::<f64>();
}

#[test]
fn each_rule_reaches_the_optimum_f32() {
    each_rule_reaches_the_optimum::<f32>();
}

#[test]
fn parameters_out_of_range_are_named() {
    fn name<S: std::fmt::Debug>(r: Result<BigBatchSgd<S>>) -> &'static str {
        match r {
            Err(Error::InvalidParameter { name, .. }) => name,
            other => panic!("{other:?}"),
        }
    }
    let b = BigBatchSgd::builder;
    assert_eq!(
        name(b().step(Adam::new().step_size(0.0)).build()),
        "step_size"
    );
    assert_eq!(name(b().step(Adam::new().betas(1.0, 0.9)).build()), "beta1");
    assert_eq!(
        name(b().step(Adam::new().betas(0.9, -0.1)).build()),
        "beta2"
    );
    assert_eq!(
        name(b().step(Adam::new().epsilon(f64::NAN)).build()),
        "epsilon"
    );
    assert_eq!(name(b().step(Adadelta::new().rho(1.0)).build()), "rho");
    assert_eq!(
        name(b().step(Adadelta::new().epsilon(0.0)).build()),
        "epsilon"
    );
    assert_eq!(
        name(b().step(Momentum::new().step_size(-1.0)).build()),
        "step_size"
    );
    assert_eq!(
        name(
            b().step(Momentum::new().step_size(0.1).momentum(1.0))
                .build()
        ),
        "momentum"
    );
}

/// The rule's memory starts empty in every run: a second run of the same optimizer gives the
/// first run's report.
fn twice<S: StepRule>(rule: S) -> (Report<f64>, Report<f64>) {
    let p = ridge::<f64>(32, 400, 4, 0.5, 1e-2);
    let mut o = BigBatchSgd::builder().step(rule).build().unwrap();
    let a = o.minimize(&p, Array1::zeros(4)).unwrap();
    (a, o.minimize(&p, Array1::zeros(4)).unwrap())
}

#[test]
fn every_run_starts_with_an_empty_memory() {
    let runs = [
        twice(Adam::new()),
        twice(Adadelta::new()),
        twice(Momentum::default()),
    ];
    for (rule, (a, b)) in runs.iter().enumerate() {
        assert_eq!(bits(a), bits(b), "rule {rule}");
        assert!(a.iterations > 3);
    }
}

/// The network preset, unchanged: on a problem with a known optimum it gets there (its step
/// only shrinks between batch growths, and its batches grow as the gradient signal fades), and
/// it trains a one-hidden-layer network on the bundled digits.
fn the_network_preset_trains<F: Float>() {
    let p = ridge::<F>(31, 1000, 5, 0.5, 1e-2);
    let optimum = p.optimum();
    let report = BigBatchSgd::network()
        .seed(3)
        .max_epochs(100.0)
        .build()
        .unwrap()
        .minimize(&p, Array1::zeros(5))
        .unwrap();
    let err = max_abs_diff(&report.w, &optimum) / optimum.mapv(f64::abs).sum();
    assert!(err < 1e-3, "ridge: relative error {err:.2e}, {report}");

    let net = bigbatch::models::Mlp::new(
        datasets::digits::<F>(),
        10,
        &[16],
        bigbatch::models::Activation::Tanh,
        1e-4,
    )
    .unwrap();
    let report = BigBatchSgd::network()
        .max_epochs(10.0)
        .build()
        .unwrap()
        .minimize(&net, net.initial_weights(1))
        .unwrap();
    let accuracy = net.accuracy(&report.w);
    assert!(
        accuracy > 0.95,
        "digits: training accuracy {accuracy}, {report}"
    );
}

#[test]
fn the_network_preset_trains_f32() {
    the_network_preset_trains::<f32>();
}

#[test]
fn the_network_preset_trains_f64() {
    the_network_preset_trains::<f64>();
}
