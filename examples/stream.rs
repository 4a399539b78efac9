//! Learning from a stream: Big Batch SGD on samples that arrive, against Polyak-averaged SGD.
//!
//! ```text
//! cargo run --release --example stream                      # both parts, default settings
//! cargo run --release --example stream -- --generated [--dim 20] [--sigma 1] [--samples 1000000]
//! cargo run --release --example stream -- --file PATH --features D [--passes 2] [--shuffle 10000]
//! ```
//!
//! **Generated**: least squares on `y = x·w* + σε`, `x ~ N(0, I_d)` and `ε ~ N(0, 1)`, drawn
//! for ever; the expected risk is minimized at `w*` and its excess there is exactly
//! `‖w − w*‖²/2`. The big-batch run uses `BigBatchSgd::stream()` with a budget of `--samples`;
//! after every step the excess risk is printed against the samples read `T`, and the slope of
//! `log excess` against `log T` is fitted over the last two decades. Beside it, SGD with one
//! sample per step, a constant step `α` and the Polyak–Ruppert average of its iterates, for a
//! grid of `α` (`α·d` from 1/64 to 1): its excess at the budget, and the best `α` in hindsight.
//!
//! **File**: a LIBSVM file (plain or gzip; default the embedded `adult`, 108 features) read as a
//! stream for logistic regression (λ = 1e-4, a bias feature appended), against the same problem
//! loaded in memory with the same settings: time per sample evaluated for each, the time of
//! decompression and parsing alone (one pass over the file), the largest number of samples the
//! stream held against the file's, and the full loss each reaches.
//!
//! Options: `--theta T`, `--unbiased`, `--smoothing B` and `--step fixed:A|armijo|lbfgs|adadelta`
//! change the big-batch run's test and step rule; `--seed S`.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::time::Instant;

use bigbatch::data::{Dataset, Features, load_libsvm};
use bigbatch::models::{LeastSquares, Logistic};
use bigbatch::observe::from_fn;
use bigbatch::stream::{self, LibsvmStream, SampleStream};
use bigbatch::{
    Adadelta, Armijo, BigBatchSgd, BigBatchSgdBuilder, Fixed, IterView, Lbfgs, Objective, StepRule,
};
use ndarray::{Array1, Array2};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

struct Options {
    generated: bool,
    file: Option<String>,
    features: usize,
    passes: usize,
    shuffle: usize,
    dim: usize,
    sigma: f64,
    samples: u64,
    theta: Option<f64>,
    unbiased: Option<bool>,
    smoothing: Option<f64>,
    step: String,
    seed: u64,
    seeds: u64,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        generated: false,
        file: None,
        features: 108,
        passes: 2,
        shuffle: 10_000,
        dim: 20,
        sigma: 1.0,
        samples: 1_000_000,
        theta: None,
        unbiased: None,
        smoothing: None,
        step: "preset".into(),
        seed: 1,
        seeds: 5,
    };
    let mut args = std::env::args().skip(1);
    let mut file_part = false;
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--generated" => o.generated = true,
            "--file" => {
                o.file = Some(value()?);
                file_part = true;
            }
            "--features" => o.features = value()?.parse().map_err(|e| format!("{e}"))?,
            "--passes" => o.passes = value()?.parse().map_err(|e| format!("{e}"))?,
            "--shuffle" => o.shuffle = value()?.parse().map_err(|e| format!("{e}"))?,
            "--dim" => o.dim = value()?.parse().map_err(|e| format!("{e}"))?,
            "--sigma" => o.sigma = value()?.parse().map_err(|e| format!("{e}"))?,
            "--samples" => {
                o.samples = value()?.parse::<f64>().map_err(|e| format!("{e}"))? as u64;
            }
            "--theta" => o.theta = Some(value()?.parse().map_err(|e| format!("{e}"))?),
            "--unbiased" => o.unbiased = Some(true),
            "--biased" => o.unbiased = Some(false),
            "--smoothing" => o.smoothing = Some(value()?.parse().map_err(|e| format!("{e}"))?),
            "--step" => o.step = value()?,
            "--seed" => o.seed = value()?.parse().map_err(|e| format!("{e}"))?,
            "--seeds" => o.seeds = value()?.parse().map_err(|e| format!("{e}"))?,
            _ => return Err(format!("unknown option {a}")),
        }
    }
    if !o.generated && !file_part {
        o.generated = true;
        file_part = true;
    }
    if !file_part {
        o.file = None;
    } else if o.file.is_none() {
        o.file = Some(String::new());
    }
    Ok(o)
}

/// The stream preset with the options' changes.
fn configure<S: StepRule>(o: &Options, b: BigBatchSgdBuilder<S>) -> BigBatchSgdBuilder<S> {
    let mut b = b.seed(o.seed);
    if let Some(t) = o.theta {
        b = b.theta(t);
    }
    if let Some(u) = o.unbiased {
        b = b.unbiased_signal(u);
    }
    if let Some(s) = o.smoothing {
        b = b.smoothing(s);
    }
    b
}

/// Runs `run` with the step rule the options name.
fn with_step<R>(o: &Options, run: impl StepRun<R>) -> Result<R, bigbatch::Error> {
    let base = BigBatchSgd::stream();
    let step = o.step.as_str();
    if step == "preset" {
        return run.go(configure(o, base));
    }
    let b = base;
    match step {
        "lbfgs" => run.go(configure(o, b.step(Lbfgs::new()))),
        "armijo" => run.go(configure(o, b.step(Armijo::new()))),
        "adadelta" => run.go(configure(o, b.step(Adadelta::new()))),
        s if s.starts_with("fixed:") => {
            let alpha: f64 = s[6..].parse().map_err(|_| bigbatch::Error::InvalidData {
                what: format!("step {s}"),
            })?;
            run.go(configure(o, b.step(Fixed::new(alpha))))
        }
        s => Err(bigbatch::Error::InvalidData {
            what: format!("unknown step rule {s}"),
        }),
    }
}

trait StepRun<R> {
    fn go<S: StepRule>(self, builder: BigBatchSgdBuilder<S>) -> Result<R, bigbatch::Error>;
}

/// Draws `k` samples of the generated problem.
fn draw(
    w_star: &Array1<f64>,
    sigma: f64,
    k: usize,
    rng: &mut dyn Rng,
) -> (Array2<f64>, Array1<f64>) {
    let x = Array2::from_shape_fn((k, w_star.len()), |_| StandardNormal.sample(&mut *rng));
    let y = x.dot(w_star)
        + Array1::from_shape_fn(k, |_| {
            let e: f64 = StandardNormal.sample(&mut *rng);
            sigma * e
        });
    (x, y)
}

fn excess(w: &Array1<f64>, w_star: &Array1<f64>) -> f64 {
    0.5 * (w - w_star).mapv(|v| v * v).sum()
}

/// The least-squares slope of `log y` against `log x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + x.ln() / n, b + y.ln() / n)
    });
    let (sxy, sxx) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        let dx = x.ln() - mx;
        (a + dx * (y.ln() - my), b + dx * dx)
    });
    sxy / sxx
}

struct Generated<'a> {
    o: &'a Options,
    w_star: &'a Array1<f64>,
}

impl StepRun<(Vec<(f64, f64)>, bigbatch::Report<f64>)> for Generated<'_> {
    fn go<S: StepRule>(
        self,
        builder: BigBatchSgdBuilder<S>,
    ) -> Result<(Vec<(f64, f64)>, bigbatch::Report<f64>), bigbatch::Error> {
        let (o, w_star) = (self.o, self.w_star);
        let read = Cell::new(0u64);
        let mut curve = Vec::new();
        let mut observer = from_fn(|v: &IterView<'_, f64>| {
            curve.push((read.get() as f64, excess(&v.w.to_owned(), w_star)));
            ControlFlow::Continue(())
        });
        let source = stream::from_fn(|k: usize, rng: &mut dyn Rng| {
            let (x, y) = draw(w_star, o.sigma, k, rng);
            Ok(Some(Dataset::from_dense(x, y)?))
        });
        let report = builder
            .max_samples(o.samples)
            .build()?
            .minimize_stream_with(
                source,
                |c: Dataset<f64>| {
                    read.set(read.get() + c.n_samples() as u64);
                    LeastSquares::new(c, 0.0)
                },
                Array1::zeros(w_star.len()),
                &mut observer,
            )?;
        Ok((curve, report))
    }
}

/// Polyak-averaged SGD on the generated problem: one sample per step, step `alpha`, the
/// average of all iterates; its excess risk after `samples` samples.
fn averaged_sgd(o: &Options, w_star: &Array1<f64>, alpha: f64, seed: u64) -> f64 {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut w = Array1::<f64>::zeros(o.dim);
    let mut avg = Array1::<f64>::zeros(o.dim);
    let mut t = 0u64;
    while t < o.samples {
        let k = 4096.min((o.samples - t) as usize);
        let (x, y) = draw(w_star, o.sigma, k, &mut rng);
        for i in 0..k {
            let xi = x.row(i);
            let r = xi.dot(&w) - y[i];
            w.scaled_add(-alpha * r, &xi);
            t += 1;
            let c = 1.0 / t as f64;
            ndarray::Zip::from(&mut avg)
                .and(&w)
                .for_each(|a, &w| *a += c * (w - *a));
        }
    }
    excess(&avg, w_star)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn generated(o: &Options) -> Result<(), bigbatch::Error> {
    println!(
        "generated least squares: d = {}, sigma = {}, budget {} samples, {} seeds; \
         sigma^2 d / (2T) at the budget = {:.3e}",
        o.dim,
        o.sigma,
        o.samples,
        o.seeds,
        o.sigma * o.sigma * o.dim as f64 / (2.0 * o.samples as f64)
    );
    // The excess risk of each seed's run on a grid of T, 10 points a decade from 1000: the
    // excess of the last iterate made by then (a step function of T).
    let decades = (o.samples as f64 / 1000.0).log10();
    let grid: Vec<f64> = (0..=(10.0 * decades).floor() as i32)
        .map(|k| 1000.0 * 10f64.powf(k as f64 / 10.0))
        .collect();
    let mut at_grid = vec![0.0; grid.len()];
    let alphas: Vec<f64> = (0..=6)
        .map(|k| 1.0 / (2f64.powi(k) * o.dim as f64))
        .collect();
    let mut sgd = vec![Vec::new(); alphas.len()];
    let mut big = Vec::new();
    let (mut steps, mut batches, mut seconds) = (Vec::new(), Vec::new(), 0.0);
    for seed in 0..o.seeds {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5eed);
        let w_star = Array1::from_shape_fn(o.dim, |_| StandardNormal.sample(&mut rng));
        let start = Instant::now();
        let seeded = Options {
            seed: o.seed + seed,
            step: o.step.clone(),
            file: None,
            ..*o
        };
        let (curve, report) = with_step(
            &seeded,
            Generated {
                o: &seeded,
                w_star: &w_star,
            },
        )?;
        seconds += start.elapsed().as_secs_f64();
        if seed == 0 {
            println!("big batch ({}), seed 0: {report}", o.step);
        }
        for (g, acc) in grid.iter().zip(&mut at_grid) {
            let e = curve
                .iter()
                .take_while(|(t, _)| t <= g)
                .last()
                .map_or(excess(&Array1::zeros(o.dim), &w_star), |&(_, e)| e);
            *acc += e / o.seeds as f64;
        }
        big.push(excess(&report.w, &w_star));
        steps.push(report.iterations as f64);
        batches.push(report.batch_size as f64);
        for (alpha, out) in alphas.iter().zip(&mut sgd) {
            out.push(averaged_sgd(o, &w_star, *alpha, 1000 + seed));
        }
    }
    println!("  samples T   mean excess risk of the big-batch run");
    for (g, e) in grid.iter().zip(&at_grid).step_by(5) {
        println!("  {g:>9.0}   {e:.3e}");
    }
    let tail: Vec<(f64, f64)> = grid
        .iter()
        .copied()
        .zip(at_grid.iter().copied())
        .filter(|&(t, _)| t >= o.samples as f64 / 100.0 - 0.5)
        .collect();
    println!(
        "  slope of log mean excess against log T over T in [{:.0}, {}]: {:.3}",
        o.samples as f64 / 100.0,
        o.samples,
        slope(&tail)
    );
    println!(
        "  median over seeds at the budget: excess {:.3e}, {:.0} steps, final batch {:.0}; {:.2} s a run",
        median(big.clone()),
        median(steps),
        median(batches),
        seconds / o.seeds as f64
    );
    println!(
        "Polyak-averaged SGD, batch 1, {} samples (median over seeds):",
        o.samples
    );
    let mut best = (0, f64::INFINITY);
    for (k, (alpha, runs)) in alphas.iter().zip(&sgd).enumerate() {
        let m = median(runs.clone());
        println!("  alpha*d = {:<8.4} excess {m:.3e}", alpha * o.dim as f64);
        if m < best.1 {
            best = (k, m);
        }
    }
    let ratios: Vec<f64> = big.iter().zip(&sgd[best.0]).map(|(b, s)| b / s).collect();
    println!(
        "  best in hindsight alpha*d = {:.4}; big batch / averaged SGD at the budget: median {:.2} (seeds {:?})",
        alphas[best.0] * o.dim as f64,
        median(ratios.clone()),
        ratios
            .iter()
            .map(|r| (r * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
    Ok(())
}

/// The resident set's high-water mark of this process, in bytes (Linux), if known.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

struct File<'a> {
    o: &'a Options,
    path: &'a str,
    samples: u64,
}

/// What the stream run gave: its report, seconds, rows read and the largest batch.
type FileRun = (bigbatch::Report<f64>, f64, u64, usize);

impl StepRun<FileRun> for File<'_> {
    fn go<S: StepRule>(self, builder: BigBatchSgdBuilder<S>) -> Result<FileRun, bigbatch::Error> {
        let read = Cell::new(0u64);
        let mut largest = 0;
        let mut observer = from_fn(|v: &IterView<'_, f64>| {
            largest = largest.max(v.record.batch_size);
            ControlFlow::Continue(())
        });
        let stream = LibsvmStream::<f64>::open(self.path, self.o.features)?
            .passes(self.o.passes)
            .shuffle_buffer(self.o.shuffle)
            .with_bias();
        let start = Instant::now();
        let report = builder
            .max_samples(self.samples)
            .build()?
            .minimize_stream_with(
                stream,
                |c: Dataset<f64>| {
                    read.set(read.get() + c.n_samples() as u64);
                    Logistic::new(c, 1e-4)
                },
                Array1::zeros(self.o.features + 1),
                &mut observer,
            )?;
        let seconds = start.elapsed().as_secs_f64();
        let largest = largest.max(report.batch_size);
        Ok((report, seconds, read.get(), largest))
    }
}

/// The bytes the rows and targets of `data` take in memory.
fn decoded_bytes(data: &Dataset<f64>) -> usize {
    let rows = match data.features() {
        Features::Dense(x) => x.len() * 8,
        Features::Sparse(c) => c.nnz() * 16 + (c.n_rows() + 1) * 8,
    };
    rows + data.n_samples() * 8
}

fn file(o: &Options) -> Result<(), bigbatch::Error> {
    let path = match o.file.as_deref() {
        Some("") | None => concat!(env!("CARGO_MANIFEST_DIR"), "/data/adult.svm.gz").to_string(),
        Some(p) => p.to_string(),
    };
    let io = |e| bigbatch::Error::InvalidData {
        what: format!("{path}: {e}"),
    };
    // Decompression alone (for a gzip file; reading, for a plain one), counting the lines.
    let start = Instant::now();
    let mut text: Box<dyn Read> = {
        let mut f = BufReader::new(std::fs::File::open(&path).map_err(io)?);
        if f.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::MultiGzDecoder::new(f))
        } else {
            Box::new(f)
        }
    };
    let (mut lines, mut buf) = (0u64, vec![0u8; 1 << 16]);
    loop {
        let n = text.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let inflate_seconds = start.elapsed().as_secs_f64();
    // The stream run, first: the resident memory it leaves is its own.
    let budget = o.passes as u64 * lines;
    let (report, seconds, read, largest) = with_step(
        o,
        File {
            o,
            path: &path,
            samples: budget,
        },
    )?;
    let rss_stream = peak_rss();
    // Decompression and parsing: one pass over the file as a stream.
    let start = Instant::now();
    let mut s = LibsvmStream::<f64>::open(&path, o.features)?;
    let mut rows = 0;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    while let Some(c) = s.read(4096, &mut rng)? {
        rows += c.n_samples();
    }
    let parse_seconds = start.elapsed().as_secs_f64();
    // The same problem in memory.
    let start = Instant::now();
    let whole = load_libsvm::<f64>(&path, Some(o.features))?.with_bias();
    let load_seconds = start.elapsed().as_secs_f64();
    let decoded = decoded_bytes(&whole);
    let row_bytes = decoded as f64 / whole.n_samples() as f64;
    let model = Logistic::new(whole, 1e-4)?;
    let start = Instant::now();
    let in_memory = configure(o, BigBatchSgd::stream())
        .max_samples(budget)
        .build()?
        .minimize(&model, Array1::zeros(o.features + 1))?;
    let memory_seconds = start.elapsed().as_secs_f64();
    let rss_memory = peak_rss();
    let all: Vec<usize> = (0..model.n_samples()).collect();
    println!(
        "{path}: {rows} rows, {:.1} MB decoded in memory; budget {budget} samples ({} passes)",
        decoded as f64 / 1e6,
        o.passes
    );
    println!(
        "  one pass: decompression {inflate_seconds:.3} s, decompression and parsing {parse_seconds:.3} s \
         ({:.2} us a row, {:.0} % of it decompression)",
        1e6 * parse_seconds / rows as f64,
        100.0 * inflate_seconds / parse_seconds
    );
    let per = |s: f64, r: &bigbatch::Report<f64>| 1e6 * s / (r.grad_evals + r.loss_evals) as f64;
    println!(
        "  stream:    {read} rows read, {seconds:.3} s, {:.3} us per sample evaluated, loss {:.6}, {} steps, final batch {}: {}",
        per(seconds, &report),
        model.batch_loss(&report.w, &all),
        report.iterations,
        report.batch_size,
        report.stop
    );
    println!(
        "  in memory: {memory_seconds:.3} s, {:.3} us per sample evaluated, loss {:.6}, {} steps, final batch {}",
        per(memory_seconds, &in_memory),
        model.batch_loss(&in_memory.w, &all),
        in_memory.iterations,
        in_memory.batch_size
    );
    println!(
        "  time per sample evaluated, stream / in memory: {:.2}; the whole run, stream / (load and run in memory): {:.2} ({load_seconds:.3} s to load)",
        per(seconds, &report) / per(memory_seconds, &in_memory),
        seconds / (load_seconds + memory_seconds)
    );
    println!(
        "  largest batch held by the stream: {largest} rows, {:.1} MB, {:.3} of the decoded file",
        largest as f64 * row_bytes / 1e6,
        largest as f64 * row_bytes / decoded as f64
    );
    if let (Some(a), Some(b)) = (rss_stream, rss_memory) {
        println!(
            "  peak resident memory: {:.1} MB after the stream run ({:.3} of the decoded file), {:.1} MB after the in-memory run",
            a as f64 / 1e6,
            a as f64 / decoded as f64,
            b as f64 / 1e6
        );
    }
    Ok(())
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let result = (|| {
        if o.generated {
            generated(&o)?;
        }
        if o.file.is_some() {
            file(&o)?;
        }
        Ok::<(), bigbatch::Error>(())
    })();
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
