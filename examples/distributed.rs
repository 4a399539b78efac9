//! Big Batch SGD over the processes of an MPI job (cargo feature `mpi`): each process loads
//! every P-th sample of one LIBSVM file, and all of them run the same optimizer on the whole
//! finite sum.
//!
//! ```text
//! cargo build --release --features mpi --example distributed
//! mpirun -n 2 target/release/examples/distributed --data ../shared/data/fashion-mnist-tops.train.svm.gz --features 784 --dense
//! mpirun -n 3 --oversubscribe target/release/examples/distributed --check      # the bundled adult file
//! ```
//!
//! Prints, from worker 0: the loading time, statistics passes per second on a batch of up to
//! 10,000 samples, the bytes each worker sends per merge, the whole run (default settings,
//! logistic regression with a bias, λ = 1e-4) and its time, and whether every worker holds
//! the same report. `--check` then has worker 0 run the same optimizer on the whole file in
//! one process and compare, and runs the distributed optimizer a second time, which must give
//! the same report bit for bit; a failed check is exit code 1 on every worker.
//!
//! Options: `--data FILE` (default: the crate's `data/adult.svm.gz`), `--features D` (default
//! 108), `--dense` (dense rows, better for images), `--epochs E` (default 20), `--lambda L`,
//! `--panic-on RANK` (that worker panics after its third step: the job must abort, not hang).

use std::ops::ControlFlow;
use std::process::ExitCode;
use std::time::Instant;

use bigbatch::data::load_libsvm;
use bigbatch::distributed::{Layout, MpiWorkers, Sharded, Workers, load_libsvm_shard, mpi};
use bigbatch::models::Logistic;
use bigbatch::observe::from_fn;
use bigbatch::{BigBatchSgd, GradStats, IterView, Objective, Report, parallel};
use ndarray::Array1;

struct Options {
    data: String,
    features: usize,
    dense: bool,
    epochs: f64,
    lambda: f64,
    check: bool,
    panic_on: Option<usize>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        data: concat!(env!("CARGO_MANIFEST_DIR"), "/data/adult.svm.gz").into(),
        features: 108,
        dense: false,
        epochs: 20.0,
        lambda: 1e-4,
        check: false,
        panic_on: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--dense" => o.dense = true,
            "--check" => o.check = true,
            "--data" | "--features" | "--epochs" | "--lambda" | "--panic-on" => {
                let value = args.next().ok_or(format!("{flag} needs a value"))?;
                let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
                match flag.as_str() {
                    "--data" => o.data = value,
                    "--features" => o.features = value.parse().map_err(|e| bad(&e))?,
                    "--epochs" => o.epochs = value.parse().map_err(|e| bad(&e))?,
                    "--panic-on" => o.panic_on = Some(value.parse().map_err(|e| bad(&e))?),
                    _ => o.lambda = value.parse().map_err(|e| bad(&e))?,
                }
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

/// A report's numbers as bits, folded into one number that two runs share iff they agree.
fn fingerprint(r: &Report<f64>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64;
    let mut add = |x: u64| h = (h ^ x).wrapping_mul(0x0100_0000_01b3);
    r.w.iter().for_each(|x| add(x.to_bits()));
    add(r.loss.to_bits());
    add(r.grad_norm_sq.to_bits());
    add(r.iterations as u64);
    add(r.grad_evals);
    add(r.loss_evals);
    h
}

fn run(o: &Options, workers: &MpiWorkers) -> bigbatch::Result<bool> {
    let (rank, p) = (workers.rank(), workers.size());
    let say = |line: String| {
        if rank == 0 {
            println!("{line}");
        }
    };
    let start = Instant::now();
    let mut shard = load_libsvm_shard::<f64, _>(&o.data, Some(o.features), workers)?.with_bias();
    if o.dense {
        shard = shard.into_dense();
    }
    // The local model through `from_local`: a worker whose model cannot be built stops every
    // worker, none is left waiting.
    let objective = Sharded::from_local(Logistic::new(shard, o.lambda), workers, Layout::Strided)?;
    let loaded = start.elapsed().as_secs_f64();
    let (n, d) = (objective.n_samples(), objective.dim());
    say(format!(
        "{p} workers, {} threads each: {n} samples × {d} features, this worker's shard of {} loaded in {loaded:.2} s",
        parallel::current_threads(),
        objective.local().n_samples()
    ));

    // Statistics passes on a fixed batch.
    let batch: Vec<usize> = (0..n.min(10_000)).map(|i| (i * 7919) % n).collect();
    let w = Array1::from_elem(d, 0.01);
    let mut stats = GradStats::new(d);
    let mut pass = || {
        stats.reset();
        objective.batch_gradient(&w, &batch, &mut stats);
    };
    pass();
    // The median of 5 blocks of 10 passes.
    let mut rates: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            (0..10).for_each(|_| pass());
            10.0 / t.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    let per_second = rates[2];
    say(format!(
        "statistics passes on a batch of {}: {per_second:.1} per second; each worker sends {} bytes per merge",
        batch.len(),
        (d + 5) * 8
    ));

    let optimizer = || BigBatchSgd::builder().max_epochs(o.epochs).build();
    let t = Instant::now();
    // With `--panic-on RANK`, that worker panics after its third step (a fault injected on
    // purpose: the job must end, not hang).
    let mut fault = from_fn(|view: &IterView<'_, f64>| {
        if o.panic_on == Some(rank) && view.record.iteration == 2 {
            panic!("worker {rank}: a fault injected by --panic-on");
        }
        ControlFlow::Continue(())
    });
    let report = optimizer()?.minimize_with(&objective, Array1::zeros(d), &mut fault)?;
    let seconds = t.elapsed().as_secs_f64();
    say(format!(
        "{report}\nthe run took {seconds:.2} s (loading excluded)"
    ));
    let mine = fingerprint(&report);
    let all = workers.all_gather(&[f64::from_bits(mine)]);
    let same = all.iter().all(|x| x.to_bits() == mine);
    say(format!(
        "every worker holds the same report: {}",
        if same { "yes" } else { "NO" }
    ));
    let mut ok = same;
    if o.check {
        let again = optimizer()?.minimize(&objective, Array1::zeros(d))?;
        let repeated = fingerprint(&again) == mine;
        say(format!(
            "a second run gives the same report bit for bit: {repeated}"
        ));
        ok &= repeated;
        // Worker 0 runs the same optimizer on the whole file, in one process; the others wait
        // for its verdict (an error there is a failed check, not a worker left waiting).
        let verdict = if rank == 0 {
            single_process_agrees(o, &report, seconds).unwrap_or_else(|e| {
                println!("the one-process run failed: {e}");
                false
            })
        } else {
            true
        };
        let verdict = f64::from(u8::from(verdict));
        let verdicts = workers.all_gather(&[verdict]);
        ok &= verdicts[0] > 0.5;
    }
    Ok(ok)
}

/// Runs the optimizer on the whole file in this process; whether it agrees with the
/// distributed run's `report` to rounding.
fn single_process_agrees(
    o: &Options,
    report: &Report<f64>,
    seconds: f64,
) -> bigbatch::Result<bool> {
    let mut whole = load_libsvm::<f64>(&o.data, Some(o.features))?.with_bias();
    if o.dense {
        whole = whole.into_dense();
    }
    let model = Logistic::new(whole, o.lambda)?;
    let t = Instant::now();
    let single = BigBatchSgd::builder()
        .max_epochs(o.epochs)
        .build()?
        .minimize(&model, Array1::zeros(model.dim()))?;
    let single_seconds = t.elapsed().as_secs_f64();
    let rel = (report.loss - single.loss).abs() / single.loss;
    println!(
        "one process: {single}\n  in {single_seconds:.2} s: the workers took {:.2}× its time; final losses differ by {rel:.1e} (relative)",
        seconds / single_seconds
    );
    let agrees = rel <= 1e-9 && report.grad_evals == single.grad_evals;
    if !agrees {
        println!("the runs disagree beyond rounding");
    }
    Ok(agrees)
}

fn main() -> ExitCode {
    let Some(universe) = mpi::initialize() else {
        eprintln!("MPI could not be initialized");
        return ExitCode::FAILURE;
    };
    let workers = MpiWorkers::new(universe.world());
    let outcome = options()
        .map_err(|e| e.to_string())
        .and_then(|o| run(&o, &workers).map_err(|e| e.to_string()));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("worker {}: {e}", workers.rank());
            ExitCode::FAILURE
        }
    }
}
