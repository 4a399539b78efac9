//! Checkpoint and resume (feature `serde`): a run saved to a file mid-way, read back and
//! resumed gives the report of the uninterrupted run, bit for bit.
#![cfg(feature = "serde")]
mod common;

use bigbatch::*;
use common::*;
use ndarray::Array1;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::ops::ControlFlow;

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("bigbatch-ck-{}-{name}.json", std::process::id()))
}

fn resumed_equals_uninterrupted<F, S, O>(
    name: &str,
    builder: impl Fn() -> BigBatchSgdBuilder<S>,
    p: &O,
) where
    F: Float + Serialize + DeserializeOwned,
    O: Objective<F>,
    S: StepRule + Clone + Serialize + DeserializeOwned,
{
    let w0 = Array1::<F>::zeros(p.dim());
    let whole = builder().build().unwrap().minimize(p, w0.clone()).unwrap();
    assert!(whole.iterations > 5, "{name}: {whole}");

    let mut opt = builder().build().unwrap();
    let mut run = opt.start(p, w0.clone()).unwrap();
    for _ in 0..3 {
        assert!(
            matches!(opt.iterate(p, &mut run).unwrap(), Outcome::Stepped(_)),
            "{name}"
        );
    }
    // Tests run in parallel: one file per configuration and float type.
    let path = temp_path(&format!("{name}-{}", std::any::type_name::<F>()).replace(' ', "-"));
    Checkpoint::new(&opt, &run).save(&path).unwrap();
    drop((opt, run));
    let (mut opt, run) = Checkpoint::<F, S>::load(&path).unwrap().into_parts();
    std::fs::remove_file(&path).unwrap();
    let resumed = opt.resume_with(p, run, &mut ()).unwrap();
    assert_eq!(
        bits(&resumed),
        bits(&whole),
        "{name}: resumed {resumed} vs whole {whole}"
    );

    // Saved by the loop, stopped by an observer after the fourth step: the file holds the
    // state after that step, and resuming it finishes the run exactly.
    let path = temp_path(&format!("{name}-cut-{}", std::any::type_name::<F>()).replace(' ', "-"));
    let mut saver = SaveEvery::new(&path, 1);
    let mut interrupt = observe::from_fn(|v: &IterView<'_, F>| {
        if v.record.iteration == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let cut = builder()
        .build()
        .unwrap()
        .minimize_checkpointed(p, w0.clone(), &mut interrupt, &mut saver)
        .unwrap();
    assert_eq!(
        (cut.stop, cut.iterations, saver.saved()),
        (StopReason::Observer, 4, 4),
        "{name}"
    );
    let (mut opt, run) = Checkpoint::<F, S>::load(&path).unwrap().into_parts();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(run.iteration(), 4);
    let resumed = opt.resume_with(p, run, &mut ()).unwrap();
    assert_eq!(
        bits(&resumed),
        bits(&whole),
        "{name}: after an observer's stop"
    );

    // Saving every 4 iterations during a whole run changes nothing, and the last file resumes
    // to the same report.
    let path = temp_path(&format!("{name}-every-{}", std::any::type_name::<F>()).replace(' ', "-"));
    let mut saver = SaveEvery::new(&path, 4);
    let saved_run = builder()
        .build()
        .unwrap()
        .minimize_checkpointed(p, w0, &mut (), &mut saver)
        .unwrap();
    assert!(saver.error().is_none(), "{name}: {:?}", saver.error());
    assert_eq!(bits(&saved_run), bits(&whole), "{name}: observed");
    assert_eq!(saver.saved(), whole.iterations / 4, "{name}");
    let (mut opt, run) = Checkpoint::<F, S>::load(&path).unwrap().into_parts();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(run.iteration(), 4 * saver.saved(), "{name}");
    let resumed = opt.resume_with(p, run, &mut ()).unwrap();
    assert_eq!(
        bits(&resumed),
        bits(&whole),
        "{name}: from SaveEvery's file"
    );
}

fn all_configurations<F: Float + Serialize + DeserializeOwned>() {
    let p = ridge::<F>(50, 1500, 6, 2.0, 1e-3);
    let base = || {
        BigBatchSgd::builder()
            .seed(9)
            .max_epochs(12.0)
            .tolerance(0.0)
    };
    resumed_equals_uninterrupted("lbfgs persistent", base, &p);
    resumed_equals_uninterrupted("lbfgs fresh", || base().batch_mode(BatchMode::Fresh), &p);
    resumed_equals_uninterrupted(
        "paper",
        || BigBatchSgd::paper().seed(9).max_epochs(12.0).tolerance(0.0),
        &p,
    );
    resumed_equals_uninterrupted("armijo", || base().step(Armijo::new()), &p);
    resumed_equals_uninterrupted("adam", || base().step(Adam::new().step_size(0.01)), &p);
    resumed_equals_uninterrupted("adadelta", || base().step(Adadelta::new()), &p);
    resumed_equals_uninterrupted(
        "momentum",
        || base().step(Momentum::new().step_size(0.02)),
        &p,
    );
    resumed_equals_uninterrupted("bb persistent", || base().step(BarzilaiBorwein::new()), &p);
    resumed_equals_uninterrupted(
        "bb fresh",
        || {
            base()
                .batch_mode(BatchMode::Fresh)
                .step(BarzilaiBorwein::new())
        },
        &p,
    );
    resumed_equals_uninterrupted(
        "fixed",
        || {
            base()
                .step(Fixed::new(0.05))
                .growth_rule(GrowthRule::ToRequired)
        },
        &p,
    );
    // Newton-CG on the whole batch after L-BFGS, on a bundled model (it has curvature).
    let (x, y, _) = linear_data(51, 1500, 6, 1.0, 2.0);
    let logistic = bigbatch::models::Logistic::new(
        bigbatch::data::Dataset::from_dense(
            x.mapv(F::from_f64),
            y.mapv(|v| F::from_f64(if v > 0.0 { 1.0 } else { -1.0 })),
        )
        .unwrap(),
        1e-3,
    )
    .unwrap();
    resumed_equals_uninterrupted(
        "newton",
        || {
            BigBatchSgd::newton()
                .seed(9)
                .max_epochs(40.0)
                .tolerance(0.0)
        },
        &logistic,
    );
    // The network preset: the test's averages over iterations, the average of the iterates and
    // the fast iterate of its interpolated gradients travel with the run state.
    resumed_equals_uninterrupted(
        "network",
        || {
            BigBatchSgd::network()
                .seed(9)
                .max_epochs(12.0)
                .tolerance(0.0)
        },
        &p,
    );
}

#[test]
fn a_resumed_run_equals_the_uninterrupted_one_f64() {
    all_configurations::<f64>();
}

#[test]
fn a_resumed_run_equals_the_uninterrupted_one_f32() {
    all_configurations::<f32>();
}

#[test]
fn saving_replaces_the_old_file_and_leaves_no_temporary() {
    let p = ridge::<f64>(51, 300, 3, 1.0, 1e-3);
    let mut opt = BigBatchSgd::builder().build().unwrap();
    let mut run = opt.start(&p, Array1::zeros(3)).unwrap();
    let path = temp_path("replace");
    Checkpoint::new(&opt, &run).save(&path).unwrap();
    opt.iterate(&p, &mut run).unwrap();
    Checkpoint::new(&opt, &run).save(&path).unwrap();
    let loaded: Checkpoint<f64, Lbfgs> = Checkpoint::load(&path).unwrap();
    assert_eq!(loaded.run().iteration(), 1, "the newer checkpoint");
    let dir = path.parent().unwrap();
    let stem = path.file_name().unwrap().to_string_lossy().to_string();
    let leftovers = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{stem}.tmp"))
        })
        .count();
    assert_eq!(leftovers, 0);
    // A corrupt or truncated file is an error naming it, not a panic.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    match Checkpoint::<f64, Lbfgs>::load(&path) {
        Err(Error::Checkpoint { path: named, .. }) => assert!(named.contains("bigbatch-ck-")),
        other => panic!("{:?}", other.map(|_| ())),
    }
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        Checkpoint::<f64, Lbfgs>::load(&path),
        Err(Error::Io { .. })
    ));
    // Saving into a folder that does not exist fails cleanly.
    let bad = dir.join("no-such-folder-bigbatch").join("ck.json");
    assert!(matches!(
        Checkpoint::new(&opt, &run).save(&bad),
        Err(Error::Io { .. })
    ));
}

#[test]
fn resuming_against_another_objective_is_refused() {
    let p = ridge::<f64>(52, 300, 3, 1.0, 1e-3);
    let other = ridge::<f64>(52, 200, 3, 1.0, 1e-3);
    let wider = ridge::<f64>(52, 300, 4, 1.0, 1e-3);
    let mut opt = BigBatchSgd::builder().build().unwrap();
    let run = opt.start(&p, Array1::zeros(3)).unwrap();
    assert!(matches!(
        opt.resume_with(&other, run.clone(), &mut ()),
        Err(Error::DimensionMismatch {
            expected: 300,
            got: 200,
            ..
        })
    ));
    assert!(matches!(
        opt.resume_with(&wider, run, &mut ()),
        Err(Error::DimensionMismatch {
            expected: 3,
            got: 4,
            ..
        })
    ));
}

#[test]
fn a_checkpoint_that_cannot_be_written_stops_the_run_with_the_reason() {
    let p = ridge::<f64>(53, 400, 3, 1.0, 1e-3);
    let bad = std::env::temp_dir()
        .join("no-such-folder-bigbatch-every")
        .join("ck.json");
    let mut saver = SaveEvery::new(&bad, 2);
    let report = BigBatchSgd::builder()
        .tolerance(0.0)
        .build()
        .unwrap()
        .minimize_checkpointed(&p, Array1::zeros(3), &mut (), &mut saver)
        .unwrap();
    assert_eq!(
        (report.stop, report.iterations),
        (StopReason::CheckpointFailed, 2)
    );
    assert!(report.w.iter().all(|x| x.is_finite()));
    match saver.error() {
        Some(Error::Io { path, source }) => {
            assert!(path.contains("no-such-folder-bigbatch-every"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(saver.take_error(), Some(Error::Io { .. })));
    assert!(saver.error().is_none(), "taken out");
    assert_eq!(saver.saved(), 0);
}

#[test]
fn a_checkpoint_of_another_type_version_or_run_is_refused_by_name() {
    let p = ridge::<f64>(54, 300, 3, 1.0, 1e-3);
    let mut opt = BigBatchSgd::builder().build().unwrap();
    let mut run = opt.start(&p, Array1::zeros(3)).unwrap();
    opt.iterate(&p, &mut run).unwrap();
    let path = temp_path("refused");
    Checkpoint::new(&opt, &run).save(&path).unwrap();
    let refused = |path: &std::path::Path, wanted: &str| match Checkpoint::<f64, Armijo>::load(path)
    {
        Err(e @ Error::Checkpoint { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains("bigbatch-ck-") && message.contains(wanted),
                "{message}"
            );
        }
        other => panic!("{:?}", other.map(|_| ())),
    };
    // Another step rule type.
    refused(&path, "");
    let text = std::fs::read_to_string(&path).unwrap();
    // Another format version.
    let at = text.find("\"format\":").expect("a format field") + "\"format\":".len();
    let digits = text[at..].find(|c: char| !c.is_ascii_digit()).unwrap();
    std::fs::write(&path, format!("{}1{}", &text[..at], &text[at + digits..])).unwrap();
    refused(&path, "format version 1");
    // A run whose sampler is not a permutation of its samples.
    let loaded = |text: String| {
        std::fs::write(&path, text).unwrap();
        Checkpoint::<f64, Lbfgs>::load(&path).map(|_| ())
    };
    assert!(loaded(text.clone()).is_ok());
    let bad = text.replacen("\"n_samples\":300", "\"n_samples\":299", 1);
    assert_ne!(bad, text);
    match loaded(bad) {
        Err(e @ Error::Checkpoint { .. }) => assert!(e.to_string().contains("permutation"), "{e}"),
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(&path).unwrap();
}
