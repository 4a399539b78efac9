//! Shared by the examples that compare methods: a high-precision reference optimum, plain
//! SGD baselines, recording relative suboptimality against epochs, and SVG plots.
#![allow(dead_code)] // each example uses a different part

use std::ops::ControlFlow;
use std::path::Path;

use bigbatch::observe::from_fn;
use bigbatch::{
    BatchMode, BatchScaled, BatchSchedule, BigBatchSgd, Fixed, GradStats, IterView, Objective,
    StepRule,
};
use ndarray::Array1;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// Full objective and gradient at `w`, through the model's batched path.
pub fn full_loss_grad<O: Objective<f64>>(
    o: &O,
    w: &Array1<f64>,
    all: &[usize],
) -> (f64, Array1<f64>) {
    let mut stats = GradStats::new(o.dim());
    o.batch_gradient(w, all, &mut stats);
    let loss = stats.loss().unwrap_or_else(|| o.batch_loss(w, all));
    (loss, stats.mean().clone())
}

/// The minimizer to high precision by full-batch L-BFGS (memory 20, Armijo backtracking):
/// returns `(w*, f*, ‖∇ℓ(w*)‖)`.
pub fn reference_optimum<O: Objective<f64>>(o: &O, max_iters: usize) -> (Array1<f64>, f64, f64) {
    let all: Vec<usize> = (0..o.n_samples()).collect();
    let mut w = Array1::zeros(o.dim());
    let (mut f, mut g) = full_loss_grad(o, &w, &all);
    let mut pairs: Vec<(Array1<f64>, Array1<f64>, f64)> = Vec::new();
    for _ in 0..max_iters {
        if g.dot(&g).sqrt() <= 1e-12 * f.abs().max(1.0) {
            break;
        }
        // Two-loop recursion.
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(pairs.len());
        for (s, y, rho) in pairs.iter().rev() {
            let a = rho * s.dot(&q);
            q.scaled_add(-a, y);
            alphas.push(a);
        }
        if let Some((s, y, _)) = pairs.last() {
            q *= s.dot(y) / y.dot(y);
        }
        for ((s, y, rho), a) in pairs.iter().zip(alphas.iter().rev()) {
            let b = rho * y.dot(&q);
            q.scaled_add(a - b, s);
        }
        let mut d = -q;
        if d.dot(&g) >= 0.0 {
            d = -g.clone();
            pairs.clear();
        }
        let slope = d.dot(&g);
        let mut step = 1.0;
        let (mut f_new, mut g_new, mut w_new);
        loop {
            w_new = &w + &(&d * step);
            (f_new, g_new) = full_loss_grad(o, &w_new, &all);
            if f_new <= f + 1e-4 * step * slope || step < 1e-20 {
                break;
            }
            step *= 0.5;
        }
        if f_new > f {
            break; // no decrease at the precision of f64: done
        }
        let s = &w_new - &w;
        let y = &g_new - &g;
        let sy = s.dot(&y);
        if sy > 1e-12 * s.dot(&s) {
            pairs.push((s, y, 1.0 / sy));
            if pairs.len() > 20 {
                pairs.remove(0);
            }
        }
        let done = f - f_new <= 1e-16 * f.abs();
        (w, f, g) = (w_new, f_new, g_new);
        if done && g.dot(&g).sqrt() <= 1e-8 {
            break;
        }
    }
    let gn = g.dot(&g).sqrt();
    (w, f, gn)
}

/// One method's trace: (epochs, relative suboptimality, batch size) points.
#[derive(Debug, Clone)]
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64, usize)>,
}

impl Curve {
    /// The relative suboptimality reached by `epoch` (the last point at or before it).
    pub fn at(&self, epoch: f64) -> Option<f64> {
        self.points
            .iter()
            .take_while(|p| p.0 <= epoch + 1e-9)
            .last()
            .map(|p| p.1)
    }
    /// The last recorded relative suboptimality.
    pub fn last(&self) -> f64 {
        self.points.last().map_or(f64::NAN, |p| p.1)
    }
}

/// A big-batch run, recording the full objective after every step.
pub fn big_batch_curve<O: Objective<f64>, S: StepRule>(
    label: &str,
    o: &O,
    optimizer: &mut BigBatchSgd<S>,
    f_star: f64,
) -> Result<Curve, bigbatch::Error> {
    let all: Vec<usize> = (0..o.n_samples()).collect();
    let w0 = Array1::zeros(o.dim());
    let f0 = o.batch_loss(&w0, &all);
    let mut points = vec![(0.0, (f0 - f_star) / f_star, 0)];
    let mut obs = from_fn(|v: &IterView<'_, f64>| {
        let f = o.batch_loss(v.w, &all);
        points.push((v.record.epochs, (f - f_star) / f_star, v.record.batch_size));
        ControlFlow::Continue(())
    });
    optimizer.minimize_with(o, w0, &mut obs)?;
    Ok(Curve {
        label: label.to_string(),
        points,
    })
}

/// Plain SGD: shuffled passes in batches of `batch`, step `alpha0` (constant) or
/// `alpha0/(1 + epoch)` (1/t decay); the full objective every quarter epoch. `None` if it
/// diverged.
pub fn plain_sgd<O: Objective<f64>>(
    o: &O,
    alpha0: f64,
    decay: bool,
    batch: usize,
    epochs: f64,
    seed: u64,
    f_star: f64,
) -> Option<Curve> {
    let n = o.n_samples();
    let all: Vec<usize> = (0..n).collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut perm: Vec<usize> = (0..n).collect();
    let mut w = Array1::<f64>::zeros(o.dim());
    let mut stats = GradStats::new(o.dim());
    let f0 = o.batch_loss(&w, &all);
    let mut points = vec![(0.0, (f0 - f_star) / f_star, batch)];
    let (mut evals, mut next_mark) = (0usize, 0.25);
    let mut pos = n;
    while (evals as f64) < epochs * n as f64 {
        if pos + batch > n {
            for j in 0..n - 1 {
                let r = rng.random_range(j..n);
                perm.swap(j, r);
            }
            pos = 0;
        }
        let idx = &perm[pos..pos + batch];
        pos += batch;
        stats.reset();
        o.batch_gradient(&w, idx, &mut stats);
        evals += batch;
        let epoch = evals as f64 / n as f64;
        let alpha = if decay {
            alpha0 / (1.0 + epoch)
        } else {
            alpha0
        };
        w.scaled_add(-alpha, stats.mean());
        if !w.iter().all(|x| x.is_finite()) {
            return None;
        }
        if epoch >= next_mark - 1e-12 {
            let f = o.batch_loss(&w, &all);
            if !f.is_finite() || f > 1e6 * f0.max(1.0) {
                return None;
            }
            points.push((epoch, (f - f_star) / f_star, batch));
            next_mark += 0.25;
        }
    }
    let kind = if decay { "1/t" } else { "const" };
    Some(Curve {
        label: format!("SGD {kind} α={alpha0:.3e}"),
        points,
    })
}

/// The best-in-hindsight plain SGD over a grid of initial steps (lowest final suboptimality),
/// constant and 1/t separately.
pub fn tuned_sgd<O: Objective<f64>>(
    o: &O,
    grid: &[f64],
    batch: usize,
    epochs: f64,
    seed: u64,
    f_star: f64,
) -> Vec<Curve> {
    [false, true]
        .iter()
        .filter_map(|&decay| {
            grid.iter()
                .filter_map(|&a| plain_sgd(o, a, decay, batch, epochs, seed, f_star))
                .min_by(|a, b| a.last().total_cmp(&b.last()))
                .map(|mut c| {
                    c.label = format!("tuned {}", c.label);
                    c
                })
        })
        .collect()
}

/// AdaBatch (Devarakonda et al. 2017) on the crate's schedule: fresh batches of `batch`
/// doubled every `epochs / 5` epochs, a constant step scaled with the batch (`BatchScaled`,
/// the ratio of step to batch held), the best initial step of `grid` in hindsight; the full
/// objective every quarter epoch. `None` if every step diverged.
pub fn tuned_adabatch<O: Objective<f64>>(
    o: &O,
    grid: &[f64],
    batch: usize,
    epochs: f64,
    seed: u64,
    f_star: f64,
) -> Option<Curve> {
    let n = o.n_samples();
    let all: Vec<usize> = (0..n).collect();
    grid.iter()
        .filter_map(|&alpha| {
            let w0 = Array1::zeros(o.dim());
            let f0 = o.batch_loss(&w0, &all);
            let mut points = vec![(0.0, (f0 - f_star) / f_star, batch)];
            let mut next_mark = 0.25;
            let mut diverged = false;
            let mut obs = from_fn(|v: &IterView<'_, f64>| {
                if v.record.epochs >= next_mark - 1e-12 {
                    let f = o.batch_loss(v.w, &all);
                    if !f.is_finite() || f > 1e6 * f0.max(1.0) {
                        diverged = true;
                        return ControlFlow::Break(());
                    }
                    points.push((v.record.epochs, (f - f_star) / f_star, v.record.batch_size));
                    while next_mark <= v.record.epochs + 1e-12 {
                        next_mark += 0.25;
                    }
                }
                ControlFlow::Continue(())
            });
            let mut opt = BigBatchSgd::builder()
                .batch_mode(BatchMode::Fresh)
                .initial_batch(batch)
                .schedule(BatchSchedule::new(2.0, epochs / 5.0))
                .step(BatchScaled::new(Fixed::new(alpha)).reference_batch(batch))
                .tolerance(0.0)
                .max_epochs(epochs)
                .seed(seed)
                .build()
                .ok()?;
            let ok = opt.minimize_with(o, w0, &mut obs).is_ok();
            (ok && !diverged).then(|| Curve {
                label: format!("tuned AdaBatch α={alpha:.3e}"),
                points,
            })
        })
        .min_by(|a, b| a.last().total_cmp(&b.last()))
}

/// Writes a line plot of `curves` (x = epochs; y = relative suboptimality on a log scale, or
/// the batch size as a fraction of N) as SVG.
pub fn plot(
    path: &Path,
    title: &str,
    curves: &[Curve],
    batch_fraction_of: Option<usize>,
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let y = |p: &(f64, f64, usize)| match batch_fraction_of {
        Some(n) => p.2 as f64 / n as f64,
        None => p.1.max(1e-16),
    };
    let x_max = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .fold(1e-9, f64::max);
    let series = curves
        .iter()
        .filter(|c| batch_fraction_of.is_none() || c.label.starts_with("big batch"));
    let (lo, hi) = series
        .clone()
        .flat_map(|c| c.points.iter().map(y))
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = if lo.is_finite() {
        (lo * 0.5, hi * 2.0)
    } else {
        (1e-16, 1.0)
    };
    let y_desc = if batch_fraction_of.is_some() {
        "batch size / N"
    } else {
        "(f - f*) / f*"
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("epochs")
        .y_desc(y_desc)
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()?;
    for (k, c) in series.enumerate() {
        let color = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(
                c.points.iter().map(|p| (p.0, y(p))),
                color.stroke_width(2),
            ))?
            .label(c.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
