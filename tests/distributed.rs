//! Data-parallel runs with workers as threads (`distributed::ThreadRanks`): every worker ends
//! with the same report, the same number of workers gives the same report bit for bit, the
//! merged statistics agree with one worker's to rounding, and failures reach every worker.
mod common;

use bigbatch::data::{Dataset, load_libsvm};
use bigbatch::distributed::{Layout, Sharded, ThreadRanks, Workers, agree, load_libsvm_shard};
use bigbatch::models::Logistic;
use bigbatch::*;
use common::*;
use ndarray::{Array1, Array2, ArrayRef1};
use rand::RngExt;

/// `n × d` features and ±1 labels from a noisy linear rule.
fn data<F: Float>(seed: u64, n: usize, d: usize) -> Dataset<F> {
    let mut r = rng(seed);
    let x = Array2::from_shape_fn((n, d), |_| F::from_f64(r.random::<f64>() * 2.0 - 1.0));
    let y: Array1<F> = x
        .rows()
        .into_iter()
        .map(|row| {
            let z: f64 = row
                .iter()
                .enumerate()
                .map(|(j, a)| a.as_f64() * (j as f64 - 2.0))
                .sum();
            F::from_f64(if z + 0.7 * (r.random::<f64>() - 0.5) > 0.0 {
                1.0
            } else {
                -1.0
            })
        })
        .collect();
    Dataset::from_dense(x, y).unwrap()
}

/// The samples worker `rank` of `p` holds in `layout`.
fn shard_of(n: usize, rank: usize, p: usize, layout: Layout) -> Vec<usize> {
    match layout {
        Layout::Strided => (rank..n).step_by(p).collect(),
        _ => (rank * n / p..(rank + 1) * n / p).collect(),
    }
}

/// Runs `op` on `threads` threads (one without the `rayon` feature).
fn on_threads<R: Send>(threads: usize, op: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "rayon")]
    return parallel::with_threads(threads, op).unwrap();
    #[cfg(not(feature = "rayon"))]
    {
        let _ = threads;
        op()
    }
}

fn builder() -> BigBatchSgdBuilder {
    BigBatchSgd::builder()
        .seed(4)
        .max_epochs(15.0)
        .tolerance(0.0)
}

/// Runs the default optimizer over `p` workers; every worker's report.
fn sharded_reports<F: Float + Send + Sync>(
    data: &Dataset<F>,
    p: usize,
    layout: Layout,
    threads: usize,
) -> Vec<Report<F>> {
    ThreadRanks::run(p, |w| {
        let mine = shard_of(data.n_samples(), w.rank(), p, layout);
        let local = Logistic::new(data.select(&mine), 1e-3).unwrap();
        let objective = Sharded::new(local, &w, layout).unwrap();
        on_threads(threads, || {
            builder()
                .build()
                .unwrap()
                .minimize(&objective, Array1::zeros(data.n_features()))
        })
        .unwrap()
    })
}

fn same_report_everywhere_and_every_time<F: Float + Send + Sync>() {
    let data = data::<F>(1, 1500, 6);
    let whole = builder()
        .build()
        .unwrap()
        .minimize(
            &Logistic::new(data.clone(), 1e-3).unwrap(),
            Array1::zeros(6),
        )
        .unwrap();
    for p in [1, 2, 3] {
        for layout in [Layout::Strided, Layout::Blocks] {
            let reports = sharded_reports(&data, p, layout, 1);
            for r in &reports {
                assert_eq!(
                    bits(r),
                    bits(&reports[0]),
                    "p = {p}, {layout:?}: a worker differs"
                );
            }
            let again = sharded_reports(&data, p, layout, 2);
            assert_eq!(
                bits(&again[0]),
                bits(&reports[0]),
                "p = {p}, {layout:?}: rerun with 2 threads"
            );
            // Against one worker: the same run up to rounding.
            let r = &reports[0];
            let rel = (r.loss - whole.loss).abs().as_f64() / whole.loss.as_f64();
            let tol = if F::epsilon().as_f64() > 1e-10 {
                1e-5
            } else {
                1e-10
            };
            assert!(
                rel <= tol,
                "p = {p}, {layout:?}: loss {} against {} ({rel:e})",
                r.loss,
                whole.loss
            );
            assert_eq!(r.grad_evals, whole.grad_evals, "p = {p}, {layout:?}");
            if p == 1 {
                assert_eq!(bits(r), bits(&whole), "one worker is the plain run");
            }
        }
    }
}

#[test]
fn every_worker_holds_the_same_report_and_reruns_are_bit_identical_f64() {
    same_report_everywhere_and_every_time::<f64>();
}

#[test]
fn every_worker_holds_the_same_report_and_reruns_are_bit_identical_f32() {
    same_report_everywhere_and_every_time::<f32>();
}

fn merged_statistics_agree_with_one_worker<F: Float + Send + Sync>() {
    let data = data::<F>(2, 700, 5);
    let whole = Logistic::new(data.clone(), 1e-2).unwrap();
    let w: Array1<F> = (0..5).map(|j| F::from_f64(0.1 * j as f64 - 0.2)).collect();
    let batch: Vec<usize> = (0..700).filter(|i| i % 7 != 3).rev().collect();
    let mut reference = GradStats::new(5);
    whole.batch_gradient(&w, &batch, &mut reference);
    let loss = whole.batch_loss(&w, &batch).as_f64();
    let d: Array1<F> = (0..5).map(|j| F::from_f64(0.3 - 0.1 * j as f64)).collect();
    let a = F::from_f64(0.75);
    let point = &w + &d.mapv(|x| a * x);
    let direct = whole.batch_loss(&point, &batch).as_f64();
    for p in [2, 3, 5] {
        let parts = ThreadRanks::run(p, |ws| {
            let mine = shard_of(700, ws.rank(), p, Layout::Strided);
            let local = Logistic::new(data.select(&mine), 1e-2).unwrap();
            let o = Sharded::new(local, &ws, Layout::Strided).unwrap();
            let mut s = GradStats::new(5);
            o.batch_gradient(&w, &batch, &mut s);
            // Losses along a line: prepared by every worker, from the statistics pass too.
            let mut line = o.line().expect("every worker's model has lines");
            line.prepare(&w, &d, &batch);
            let along = line.loss(a, &point).as_f64();
            let mut with_line = GradStats::new(5);
            assert!(line.prepare_with_gradient(&w, &d, &batch, &mut with_line));
            assert_eq!(
                with_line.mean(),
                s.mean(),
                "p = {p}: statistics with the line"
            );
            let along_fused = line.loss(a, &point).as_f64();
            assert_eq!(along.to_bits(), along_fused.to_bits(), "p = {p}");
            (s, o.batch_loss(&w, &batch).as_f64(), o.n_samples(), along)
        });
        let tol = 1e-12;
        for (s, l, n, along) in &parts {
            assert!(
                (along - direct).abs() <= 8.0 * F::epsilon().as_f64() * direct,
                "p = {p}: loss along the line {along} against {direct}"
            );
            assert_eq!((s.count(), *n), (batch.len(), 700));
            let dm = (s.mean() - reference.mean()).mapv(f64::abs).sum();
            assert!(
                dm <= tol * reference.mean().mapv(f64::abs).sum(),
                "p = {p}: mean {dm:e}"
            );
            let dv = (s.sum_sq_dev() - reference.sum_sq_dev()).abs();
            assert!(dv <= tol * reference.sum_sq_dev(), "p = {p}: spread {dv:e}");
            let ds = (s.loss().unwrap().as_f64() - reference.loss().unwrap().as_f64()).abs();
            let f_eps = F::epsilon().as_f64();
            assert!(ds <= 4.0 * f_eps * loss, "p = {p}: stats loss {ds:e}");
            assert!(
                (l - loss).abs() <= 4.0 * f_eps * loss,
                "p = {p}: batch loss"
            );
            assert_eq!(s.mean(), parts[0].0.mean(), "p = {p}: workers differ");
        }
    }
}

#[test]
fn merged_statistics_agree_with_one_worker_f64() {
    merged_statistics_agree_with_one_worker::<f64>();
}

#[test]
fn merged_statistics_agree_with_one_worker_f32() {
    merged_statistics_agree_with_one_worker::<f32>();
}

#[test]
fn per_sample_methods_come_from_the_worker_holding_the_sample() {
    let data = data::<f64>(3, 50, 3);
    let whole = Logistic::new(data.clone(), 0.0).unwrap();
    let w = ndarray::array![0.3, -0.2, 0.5];
    let got = ThreadRanks::run(3, |ws| {
        let mine = shard_of(50, ws.rank(), 3, Layout::Blocks);
        let o = Sharded::new(
            Logistic::new(data.select(&mine), 0.0).unwrap(),
            &ws,
            Layout::Blocks,
        )
        .unwrap();
        let mut g = Array1::zeros(3);
        o.sample_gradient(&w, 37, &mut g);
        let mut both = Array1::zeros(3);
        let loss = o.sample_loss_gradient(&w, 41, &mut both);
        (o.sample_loss(&w, 17), g, loss, both)
    });
    let mut g = Array1::zeros(3);
    whole.sample_gradient(&w, 37, &mut g);
    let mut both = Array1::zeros(3);
    let loss = whole.sample_loss_gradient(&w, 41, &mut both);
    for (l, gr, l2, gr2) in got {
        assert_eq!(l.to_bits(), whole.sample_loss(&w, 17).to_bits());
        assert_eq!(gr, g);
        assert_eq!(
            l2.to_bits(),
            loss.to_bits(),
            "loss and gradient in one exchange"
        );
        assert_eq!(gr2, both);
    }
}

/// A model whose gradient turns NaN at one sample, on one worker.
struct Poisoned<O> {
    inner: O,
    at: Option<usize>,
}

impl<O: Objective> Objective for Poisoned<O> {
    fn n_samples(&self) -> usize {
        self.inner.n_samples()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 {
        self.inner.sample_loss(w, i)
    }
    fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) {
        self.inner.sample_gradient(w, i, g);
        if Some(i) == self.at {
            g[0] = f64::NAN;
        }
    }
}

#[test]
fn a_non_finite_value_on_one_worker_stops_every_worker_with_the_same_error() {
    let data = data::<f64>(5, 400, 4);
    let results = ThreadRanks::run(3, |ws| {
        let mine = shard_of(400, ws.rank(), 3, Layout::Strided);
        let local = Poisoned {
            inner: Logistic::new(data.select(&mine), 1e-3).unwrap(),
            at: (ws.rank() == 1).then_some(20),
        };
        let o = Sharded::new(local, &ws, Layout::Strided).unwrap();
        builder().build().unwrap().minimize(&o, Array1::zeros(4))
    });
    let errors: Vec<String> = results
        .iter()
        .map(|r| match r {
            Err(e @ Error::NonFinite { .. }) => e.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(errors.iter().all(|e| e == &errors[0]), "{errors:?}");
    let lasts: Vec<_> = results
        .iter()
        .map(|r| r.as_ref().unwrap_err().last_iterate::<f64>())
        .collect();
    assert!(lasts.iter().all(|l| l == &lasts[0] && l.is_some()));
}

#[test]
fn a_failure_on_one_worker_is_the_same_error_on_every_worker() {
    let outcomes = ThreadRanks::run(4, |ws| {
        let mine = if ws.rank() == 2 {
            Err(Error::InvalidData {
                what: "worker two's shard is broken".into(),
            })
        } else {
            Ok(ws.rank())
        };
        agree(&ws, mine)
    });
    for o in outcomes {
        match o {
            Err(Error::Rank { rank, message }) => {
                assert_eq!(rank, 2);
                assert!(
                    message.contains("worker two's shard is broken"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // Models of different dimensions are refused on every worker.
    let data = data::<f64>(6, 60, 3);
    let refused = ThreadRanks::run(2, |ws| {
        let d = if ws.rank() == 0 {
            data.clone()
        } else {
            data.clone().with_bias()
        };
        Sharded::new(Logistic::new(d, 0.0).unwrap(), &ws, Layout::Blocks).map(|_| ())
    });
    assert!(
        refused
            .iter()
            .all(|r| matches!(r, Err(Error::Rank { rank: 1, .. }))),
        "{refused:?}"
    );
    // So is a strided layout whose shards do not have the counts it implies.
    let refused = ThreadRanks::run(2, |ws| {
        let mine: Vec<usize> = if ws.rank() == 0 {
            (0..40).collect()
        } else {
            (40..60).collect()
        };
        Sharded::new(
            Logistic::new(data.select(&mine), 0.0).unwrap(),
            &ws,
            Layout::Strided,
        )
        .map(|_| ())
    });
    assert!(
        refused
            .iter()
            .all(|r| matches!(r, Err(Error::Rank { rank: 0, .. }))),
        "{refused:?}"
    );
}

#[test]
fn shards_of_a_file_are_its_strided_rows_and_a_bad_line_is_named_everywhere() {
    let dir = std::env::temp_dir().join(format!("bigbatch-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rows.svm");
    let mut text = String::from("# a comment line\n");
    for i in 0..11 {
        text.push_str(&format!(
            "{} 1:{} {}:0.5\n\n",
            if i % 2 == 0 { 1 } else { -1 },
            i + 1,
            2 + i % 4
        ));
    }
    std::fs::write(&path, &text).unwrap();
    let whole = load_libsvm::<f64>(&path, None).unwrap();
    let shards = ThreadRanks::run(3, |ws| {
        load_libsvm_shard::<f64, _>(&path, None, &ws).unwrap()
    });
    for (r, shard) in shards.iter().enumerate() {
        let rows: Vec<usize> = (r..11).step_by(3).collect();
        assert_eq!(shard, &whole.select(&rows), "worker {r}");
        assert_eq!(shard.n_features(), 5, "the widest row of the whole file");
        assert!(
            shard.features().is_dense(),
            "the file is 40 % dense: every shard is too"
        );
    }
    // Line 2 + 2·7 = 16 holds sample 7, which worker 1 of 3 reads.
    std::fs::write(&path, text.replacen("1:8 ", "1:x ", 1)).unwrap();
    let failed = ThreadRanks::run(3, |ws| load_libsvm_shard::<f32, _>(&path, None, &ws));
    for f in failed {
        match f {
            Err(Error::Rank { rank: 1, message }) => {
                assert!(
                    message.contains("rows.svm") && message.contains("line 16"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
    // A missing file is refused on every worker, naming the first.
    let missing = ThreadRanks::run(2, |ws| {
        load_libsvm_shard::<f64, _>(dir.join("none.svm"), None, &ws)
    });
    assert!(
        missing
            .iter()
            .all(|m| matches!(m, Err(Error::Rank { rank: 0, .. })))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Hessian-vector products of a sharded objective are the whole objective's up to rounding
/// (and a Newton run over workers is the run on one worker, every worker holding the same
/// report).
fn sharded_curvature_agrees<F: Float + Send + Sync>(tol: f64) {
    let data = data::<F>(3, 900, 6);
    let whole = Logistic::new(data.clone(), 1e-2).unwrap();
    let w: Array1<F> = (0..6).map(|j| F::from_f64(0.2 - 0.1 * j as f64)).collect();
    let v: Array1<F> = (0..6).map(|j| F::from_f64(0.5 - 0.15 * j as f64)).collect();
    let batch: Vec<usize> = (0..900).filter(|i| i % 5 != 1).rev().collect();
    let mut reference = Array1::<f64>::zeros(6);
    let mut diag_ref = Array1::<f64>::zeros(6);
    {
        let mut h = whole.curvature().unwrap();
        h.prepare(&w, &batch);
        h.product(&v, &mut reference);
        assert!(h.diagonal(&mut diag_ref));
    }
    let run = || {
        BigBatchSgd::newton()
            .seed(2)
            .tolerance(1e-14)
            .max_epochs(200.0)
            .build()
            .unwrap()
    };
    let alone = run().minimize(&whole, Array1::zeros(6)).unwrap();
    for layout in [Layout::Strided, Layout::Blocks] {
        let results = ThreadRanks::run(3, |ws| {
            let mine = shard_of(900, ws.rank(), 3, layout);
            let local = Logistic::new(data.select(&mine), 1e-2).unwrap();
            let objective = Sharded::new(local, &ws, layout).unwrap();
            let mut out = Array1::<f64>::zeros(6);
            let mut diag = Array1::<f64>::zeros(6);
            let mut h = objective.curvature().unwrap();
            h.prepare(&w, &batch);
            h.product(&v, &mut out);
            assert!(h.diagonal(&mut diag));
            drop(h);
            let report = run().minimize(&objective, Array1::zeros(6)).unwrap();
            (out, diag, report)
        });
        for (out, diag, report) in &results {
            for (a, b) in out.iter().zip(&reference).chain(diag.iter().zip(&diag_ref)) {
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                    "{layout:?}: {a} vs {b}"
                );
            }
            assert_eq!(
                bits(report),
                bits(&results[0].2),
                "{layout:?}: a worker differs"
            );
            let rel = (report.loss - alone.loss).abs().as_f64() / alone.loss.as_f64();
            assert!(rel <= tol, "{layout:?}: {report} against {alone}");
            assert_eq!(report.grad_evals, alone.grad_evals, "{layout:?}");
        }
    }
}

#[test]
fn sharded_hessian_products_and_newton_runs_agree_with_one_worker_f64() {
    sharded_curvature_agrees::<f64>(1e-12);
}

#[test]
fn sharded_hessian_products_and_newton_runs_agree_with_one_worker_f32() {
    sharded_curvature_agrees::<f32>(1e-5);
}

#[test]
fn the_inner_product_test_on_a_sharded_objective() {
    let data = data::<f64>(2, 1500, 6);
    let ip = InnerProductTest::new().orthogonality(3.0);
    let opt = || {
        BigBatchSgd::paper()
            .theta(0.5)
            .inner_product(ip)
            .seed(3)
            .max_epochs(10.0)
            .tolerance(0.0)
            .build()
            .unwrap()
    };
    let whole = opt()
        .minimize(
            &Logistic::new(data.clone(), 1e-3).unwrap(),
            Array1::zeros(6),
        )
        .unwrap();
    let reports = ThreadRanks::run(2, |w| {
        let mine = shard_of(data.n_samples(), w.rank(), 2, Layout::Strided);
        let local = Logistic::new(data.select(&mine), 1e-3).unwrap();
        let objective = Sharded::new(local, &w, Layout::Strided).unwrap();
        opt().minimize(&objective, Array1::zeros(6))
    });
    let reports: Vec<_> = reports.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(bits(&reports[0]), bits(&reports[1]), "the workers agree");
    let rel = (reports[0].loss - whole.loss).abs() / whole.loss;
    assert!(
        rel < 1e-3,
        "sharded {} against whole {}",
        reports[0].loss,
        whole.loss
    );
    assert!(reports[0].batch_size > 100, "{}", reports[0]);
}
