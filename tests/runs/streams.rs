//! Runs on a stream of samples: convergence to the expected-risk minimizer, memory bounded by
//! the batch, budgets and the end of a stream, determinism, refusals and faults, and the
//! LIBSVM file read as a stream against the file read whole.

use std::cell::Cell;
use std::rc::Rc;

use bigbatch::data::{Dataset, load_libsvm};
use bigbatch::models::{LeastSquares, Logistic};
use bigbatch::stream::{self, LibsvmStream, SampleStream};
use bigbatch::{
    Adadelta, Armijo, BatchMode, BigBatchSgd, Error, Fixed, Float, Lbfgs, NewtonCg, Objective,
    StopReason,
};
use ndarray::{Array1, Array2};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::common::bits;

/// Samples `y = x·w* + σ·ε` with `x` and `ε` standard normal, drawn with the run's random
/// numbers; `limit` samples in all, or for ever. The expected ridge risk
/// `E (x·w − y)²/2 + (λ/2)‖w‖²` is minimized at `w*/(1 + λ)`.
fn linear<F: Float>(
    w_star: &[f64],
    sigma: f64,
    limit: Option<usize>,
) -> impl SampleStream<Chunk = Dataset<F>> + use<F> {
    let w_star = Array1::from(w_star.to_vec());
    let mut left = limit.unwrap_or(usize::MAX);
    stream::from_fn(move |k: usize, rng: &mut dyn Rng| {
        let k = k.min(left);
        if k == 0 {
            return Ok(None);
        }
        left -= k;
        let d = w_star.len();
        let x = Array2::from_shape_fn((k, d), |_| StandardNormal.sample(&mut *rng));
        let noise = Array1::from_shape_fn(k, |_| {
            let e: f64 = StandardNormal.sample(&mut *rng);
            sigma * e
        });
        let y = x.dot(&w_star) + noise;
        Ok(Some(Dataset::from_dense(
            x.mapv(F::from_f64),
            y.mapv(F::from_f64),
        )?))
    })
}

/// The stream preset, seeded.
fn fresh() -> bigbatch::BigBatchSgdBuilder<Armijo> {
    BigBatchSgd::stream().seed(3)
}

const W_STAR: [f64; 4] = [1.0, -2.0, 0.5, 3.0];

/// `opt` on the linear stream of `W_STAR`, unregularized, from zero.
fn on_the_line<S: bigbatch::StepRule>(
    mut opt: BigBatchSgd<S>,
) -> bigbatch::Result<bigbatch::Report<f64>> {
    opt.minimize_stream(
        linear::<f64>(&W_STAR, 1.0, None),
        |c| LeastSquares::new(c, 0.0),
        Array1::zeros(4),
    )
}

fn distance<F: Float>(w: &Array1<F>, target: &[f64]) -> f64 {
    w.iter()
        .zip(target)
        .map(|(a, b)| (a.as_f64() - b).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn converges_to_the_expected_risk_minimizer<F: Float>(tol: f64) {
    let lambda = 0.25;
    let target: Vec<f64> = W_STAR.iter().map(|w| w / (1.0 + lambda)).collect();
    let start = distance(&Array1::<f64>::zeros(4), &target);
    fn run<F: Float, S: bigbatch::StepRule>(
        opt: Result<BigBatchSgd<S>, Error>,
        lambda: f64,
    ) -> bigbatch::Report<F> {
        opt.unwrap()
            .minimize_stream(
                linear::<F>(&W_STAR, 1.0, None),
                |c| LeastSquares::new(c, lambda),
                Array1::zeros(4),
            )
            .unwrap()
    }
    let budget = 300_000;
    for (name, report) in [
        (
            "preset",
            run::<F, _>(fresh().max_samples(budget).build(), lambda),
        ),
        (
            "lbfgs",
            run(
                fresh().step(Lbfgs::new()).max_samples(budget).build(),
                lambda,
            ),
        ),
        (
            "fixed",
            run(
                fresh().step(Fixed::new(0.5)).max_samples(budget).build(),
                lambda,
            ),
        ),
    ] {
        let d = distance(&report.w, &target);
        assert!(
            d < tol,
            "{name}: {d} from the minimizer (start {start}): {report}"
        );
        assert!(report.grad_evals <= budget, "{name}: within the budget");
        assert!(report.loss.is_finite());
        assert_eq!(report.epochs, 0.0, "a stream has no epochs");
    }
}

#[test]
fn a_stream_converges_to_the_expected_risk_minimizer() {
    converges_to_the_expected_risk_minimizer::<f64>(0.03);
    converges_to_the_expected_risk_minimizer::<f32>(0.03);
}

#[test]
fn memory_holds_one_batch() {
    struct Tracked {
        inner: LeastSquares<f64>,
        n: usize,
        live: Rc<Cell<(usize, usize)>>,
    }
    impl Drop for Tracked {
        fn drop(&mut self) {
            let (now, peak) = self.live.get();
            self.live.set((now - self.n, peak));
        }
    }
    impl bigbatch::Forward<f64> for Tracked {
        type Inner = LeastSquares<f64>;
        fn inner(&self) -> &LeastSquares<f64> {
            &self.inner
        }
    }
    let live = Rc::new(Cell::new((0usize, 0usize)));
    let mut largest = 0;
    let mut observer = bigbatch::observe::from_fn(|view: &bigbatch::IterView<'_, f64>| {
        largest = largest.max(view.record.batch_size);
        std::ops::ControlFlow::Continue(())
    });
    let report = fresh()
        .max_samples(200_000)
        .build()
        .unwrap()
        .minimize_stream_with(
            linear::<f64>(&W_STAR, 1.0, None),
            |c| {
                let inner = LeastSquares::new(c, 0.0)?;
                let n = inner.n_samples();
                let (now, peak) = live.get();
                live.set((now + n, peak.max(now + n)));
                Ok(bigbatch::Forwarded(Tracked {
                    inner,
                    n,
                    live: live.clone(),
                }))
            },
            Array1::zeros(4),
            &mut observer,
        )
        .unwrap();
    let largest = largest.max(report.batch_size);
    let peak = live.get().1;
    assert!(
        peak <= largest + largest / 8 + 1024,
        "at most one batch held, and an eighth: {peak} samples, largest batch {largest}"
    );
    assert!(report.grad_evals > 2 * peak as u64, "{report}");
    assert_eq!(live.get().0, 0, "every model dropped after the run");
}

#[test]
fn budgets_and_the_end_of_a_stream() {
    // An infinite stream stops on the budget in samples.
    let report = fresh()
        .tolerance(0.0)
        .max_samples(20_000)
        .build()
        .map(on_the_line)
        .unwrap()
        .unwrap();
    assert_eq!(report.stop, StopReason::EpochBudget);
    assert!(report.grad_evals <= 20_000 && report.grad_evals > 10_000);
    // A finite one stops when it ends, having read every sample it had. Gradients at a line
    // search's trial points count too: gradient evaluations exceed the samples read.
    let read = Cell::new(0);
    let report = fresh()
        .tolerance(0.0)
        .max_samples(u64::MAX - 1)
        .build()
        .unwrap()
        .minimize_stream(
            linear::<f64>(&W_STAR, 1.0, Some(5_000)),
            |c| {
                read.set(read.get() + c.n_samples());
                LeastSquares::new(c, 0.0)
            },
            Array1::zeros(4),
        )
        .unwrap();
    assert_eq!(report.stop, StopReason::StreamEnded, "{report}");
    assert_eq!(read.get(), 5_000);
    assert!(report.grad_evals >= 2_000, "{report}");
    assert!(report.loss.is_finite() && report.iterations > 5);
    assert!(distance(&report.w, &W_STAR) < 0.2, "{report}");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed| {
        let report = fresh()
            .seed(seed)
            .max_samples(50_000)
            .build()
            .unwrap()
            .minimize_stream(
                linear::<f64>(&W_STAR, 1.0, None),
                |c| LeastSquares::new(c, 0.1),
                Array1::zeros(4),
            )
            .unwrap();
        bits(&report)
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[cfg(feature = "rayon")]
#[test]
fn the_same_run_with_any_number_of_threads() {
    let threads = |n| {
        bigbatch::parallel::with_threads(n, || {
            bits(
                &fresh()
                    .max_samples(50_000)
                    .build()
                    .unwrap()
                    .minimize_stream(
                        linear::<f32>(&W_STAR, 1.0, None),
                        |c| LeastSquares::new(c, 0.1),
                        Array1::zeros(4),
                    )
                    .unwrap(),
            )
        })
        .unwrap()
    };
    assert_eq!(threads(1), threads(2));
}

#[test]
fn step_rules_on_a_stream() {
    for report in [
        fresh()
            .step(Fixed::new(0.5))
            .max_samples(100_000)
            .build()
            .map(on_the_line)
            .unwrap(),
        fresh()
            .step(bigbatch::BarzilaiBorwein::new())
            .max_samples(100_000)
            .build()
            .map(on_the_line)
            .unwrap(),
        fresh()
            .step(Adadelta::new())
            .max_samples(100_000)
            .build()
            .map(on_the_line)
            .unwrap(),
    ] {
        // Adadelta's step does not grow with the batch: it ends at its own noise floor.
        let report = report.unwrap();
        assert!(distance(&report.w, &W_STAR) < 0.25, "{report}");
    }
    // A rule that needs Hessian products says so.
    let err = fresh()
        .step(NewtonCg::new())
        .max_samples(10_000)
        .build()
        .map(on_the_line)
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
}

#[test]
fn refusals_and_faults() {
    let model = |c| LeastSquares::<f64>::new(c, 0.0);
    let stream = || linear::<f64>(&W_STAR, 1.0, None);
    let w0 = || Array1::zeros(4);
    // A persistent batch, and no budget in samples.
    let err = BigBatchSgd::builder()
        .max_samples(1000)
        .build()
        .unwrap()
        .minimize_stream(stream(), model, w0())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidParameter {
                name: "batch_mode",
                ..
            }
        ),
        "{err}"
    );
    let err = fresh()
        .build()
        .unwrap()
        .minimize_stream(stream(), model, w0())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidParameter {
                name: "max_samples",
                ..
            }
        ),
        "{err}"
    );
    let err = fresh().max_samples(0).build().unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidParameter {
            name: "max_samples",
            ..
        }
    ));
    // A starting point the stream's models do not fit.
    let err = fresh()
        .max_samples(1000)
        .build()
        .unwrap()
        .minimize_stream(stream(), model, Array1::zeros(3))
        .unwrap_err();
    let Error::StreamFailed { source, .. } = &err else {
        panic!("{err}");
    };
    assert!(
        matches!(
            **source,
            Error::DimensionMismatch {
                expected: 3,
                got: 4,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.last_iterate::<f64>().unwrap().to_vec(), vec![0.0; 3]);
    let err = fresh()
        .max_samples(1000)
        .build()
        .unwrap()
        .minimize_stream(stream(), model, ndarray::array![0.0, f64::NAN, 0.0, 0.0])
        .unwrap_err();
    assert!(
        matches!(err, Error::NonFiniteInput { index: 1, .. }),
        "{err}"
    );
    // A stream that returns more than it was asked for, or fails mid-run: the error, with the
    // last good iterate.
    let mut reads = 0;
    let greedy = stream::from_fn(|k: usize, rng: &mut dyn Rng| {
        reads += 1;
        let k = if reads > 40 { k + 1 } else { k };
        let mut inner = linear::<f64>(&W_STAR, 1.0, None);
        inner.read(k, rng)
    });
    let err = fresh()
        .max_samples(100_000)
        .build()
        .unwrap()
        .minimize_stream(greedy, model, w0())
        .unwrap_err();
    assert!(
        matches!(&err, Error::StreamFailed { source, .. } if matches!(**source, Error::InvalidData { .. })),
        "{err}"
    );
    assert!(
        err.last_iterate::<f64>()
            .is_some_and(|w| w.iter().any(|&x| x != 0.0))
    );
    let mut reads = 0;
    let failing = stream::from_fn(|k: usize, rng: &mut dyn Rng| {
        reads += 1;
        if reads > 8 {
            return Err(Error::InvalidData {
                what: "the sensor went away".into(),
            });
        }
        linear::<f64>(&W_STAR, 1.0, None).read(k, rng)
    });
    let err = fresh()
        .max_samples(100_000)
        .build()
        .unwrap()
        .minimize_stream(failing, model, w0())
        .unwrap_err();
    assert!(err.to_string().contains("sensor"), "{err}");
    assert!(err.last_iterate::<f64>().is_some());
}

/// Every chunk of a stream, concatenated as dense rows with their targets.
fn drain(mut s: LibsvmStream<f64>, k: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut rng = crate::common::rng(1);
    let (mut rows, mut targets) = (Vec::new(), Vec::new());
    while let Some(chunk) = s.read(k, &mut rng).unwrap() {
        assert!(chunk.n_samples() <= k);
        let x = chunk.features().to_dense();
        rows.extend(x.rows().into_iter().map(|r| r.to_vec()));
        targets.extend(chunk.targets().iter().copied());
    }
    (rows, targets)
}

#[test]
fn a_file_read_as_a_stream_is_the_file() {
    let dir = std::env::temp_dir().join(format!("bigbatch-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text: String = (0..257)
        .map(|i| format!("{} 1:{} {}:{}\n", i % 2, i, 2 + i % 3, 0.5 * i as f64))
        .collect();
    let plain = dir.join("rows.svm");
    std::fs::write(&plain, &text).unwrap();
    let gz = dir.join("rows.svm.gz");
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap();
    }
    let whole = load_libsvm::<f64>(&plain, Some(4)).unwrap();
    let expected: Vec<Vec<f64>> = whole
        .features()
        .to_dense()
        .rows()
        .into_iter()
        .map(|r| r.to_vec())
        .collect();
    for path in [&plain, &gz] {
        let (rows, targets) = drain(LibsvmStream::open(path, 4).unwrap(), 10);
        assert_eq!(rows, expected, "file order");
        assert_eq!(targets, whole.targets().to_vec());
        // Passes read the file again; a shuffle buffer returns each row once per pass.
        let s = LibsvmStream::open(path, 4)
            .unwrap()
            .passes(2)
            .shuffle_buffer(50);
        let (rows, _) = drain(s, 33);
        assert_eq!(rows.len(), 2 * 257);
        assert_ne!(&rows[..257], &expected[..], "shuffled");
        for pass in rows.chunks(257) {
            let mut a: Vec<_> = pass.iter().map(|r| r[0] as usize).collect();
            a.sort_unstable();
            assert_eq!(a, (0..257).collect::<Vec<_>>(), "each row once in a pass");
        }
        // No row moves ahead of its place by more than the buffer.
        let first: Vec<usize> = rows[..257].iter().map(|r| r[0] as usize).collect();
        assert!(first.iter().enumerate().all(|(pos, &i)| i <= pos + 50));
    }
    // Bad input is named.
    std::fs::write(&plain, "1 1:0.5\n1 9:1\n").unwrap();
    let mut s = LibsvmStream::<f64>::open(&plain, 4).unwrap();
    let err = s.read(10, &mut crate::common::rng(0)).unwrap_err();
    assert!(matches!(err, Error::Parse { line: 2, .. }), "{err}");
    assert!(LibsvmStream::<f64>::open(dir.join("missing.svm"), 4).is_err());
    assert!(LibsvmStream::<f64>::open(&gz, 0).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_real_file_as_a_stream_trains_as_the_file_does() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/adult.svm.gz");
    let whole = load_libsvm::<f64>(&path, Some(108)).unwrap();
    let model = Logistic::new(whole.clone().with_bias(), 1e-4).unwrap();
    let in_memory = fresh()
        .max_epochs(2.0)
        .build()
        .unwrap()
        .minimize(&model, Array1::zeros(109))
        .unwrap();
    let streamed = fresh()
        .max_samples(2 * whole.n_samples() as u64)
        .build()
        .unwrap()
        .minimize_stream(
            LibsvmStream::<f64>::open(&path, 108)
                .unwrap()
                .passes(2)
                .shuffle_buffer(10_000),
            |c: Dataset<f64>| Logistic::new(c.with_bias(), 1e-4),
            Array1::zeros(109),
        )
        .unwrap();
    let full = |w: &Array1<f64>| model.batch_loss(w, &(0..whole.n_samples()).collect::<Vec<_>>());
    let (a, b) = (full(&in_memory.w), full(&streamed.w));
    assert!(b < a * 1.02, "streamed {b} against in memory {a}");
}

#[test]
fn the_stream_preset_grows_its_batch_and_its_excess_risk_falls_like_one_over_t() {
    // Excess risk of least squares with x ~ N(0, I): ‖w − w*‖²/2.
    let read = Cell::new(0u64);
    let mut curve = Vec::new();
    let mut observer = bigbatch::observe::from_fn(|v: &bigbatch::IterView<'_, f64>| {
        let e = 0.5 * distance(&v.w.to_owned(), &W_STAR).powi(2);
        curve.push((read.get(), e, v.record.batch_size));
        std::ops::ControlFlow::Continue(())
    });
    let opt = fresh().max_samples(400_000).build().unwrap();
    assert_eq!(opt.batch_mode(), BatchMode::Fresh);
    let first = opt.initial_batch();
    let report = BigBatchSgd::stream()
        .seed(11)
        .max_samples(400_000)
        .build()
        .unwrap()
        .minimize_stream_with(
            linear::<f64>(&W_STAR, 1.0, None),
            |c| {
                read.set(read.get() + c.n_samples() as u64);
                LeastSquares::new(c, 0.0)
            },
            Array1::zeros(4),
            &mut observer,
        )
        .unwrap();
    let &(t_end, e_end, b_end) = curve.last().unwrap();
    assert!(
        b_end >= 100 * first,
        "the batch grew from {first} to {b_end}: {report}"
    );
    // The excess of the last iterate made by T/20, against the end.
    let (_, e_early, _) = *curve.iter().rfind(|(t, _, _)| *t <= t_end / 20).unwrap();
    assert!(
        e_end < e_early / 5.0,
        "excess {e_early:.3e} at T/20 and {e_end:.3e} at T = {t_end}"
    );
    // Batch by batch, the batch never shrinks far below the last (it starts at its size).
    assert!(curve.windows(2).all(|w| w[1].2 * 2 >= w[0].2));
}

#[test]
fn a_schedule_on_a_stream_counts_samples() {
    let schedule = bigbatch::BatchSchedule::new(2.0, 20_000.0);
    let mut sizes = Vec::new();
    let mut observer = bigbatch::observe::from_fn(|v: &bigbatch::IterView<'_, f64>| {
        sizes.push((v.record.batch_size, v.record.grad_evals));
        std::ops::ControlFlow::Continue(())
    });
    let report = fresh()
        .initial_batch(50)
        .schedule(schedule)
        .step(Fixed::new(0.5))
        .tolerance(0.0)
        .max_samples(150_000)
        .build()
        .unwrap()
        .minimize_stream_with(
            linear::<f64>(&W_STAR, 1.0, None),
            |c| LeastSquares::new(c, 0.0),
            Array1::zeros(4),
            &mut observer,
        )
        .unwrap();
    let mut before = 0;
    for &(size, after) in &sizes {
        assert_eq!(
            size,
            schedule.size(50, before as f64, bigbatch::stream::UNBOUNDED)
        );
        before = after;
    }
    assert_eq!(sizes.last().unwrap().0, 50 * 2usize.pow(7));
    assert!(distance(&report.w, &W_STAR) < 0.05, "{report}");
}
