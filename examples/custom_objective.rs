//! Implement `Objective` for your own model and minimize it with each step rule.
//!
//! The model is ridge regression written by hand, `f_i(w) = (x_i·w − y_i)²/2 + (λ/2)‖w‖²`,
//! because its optimum has a closed form: the example can print how far each run ends from
//! it. Run with
//!
//! ```text
//! cargo run --release --example custom_objective
//! ```

use bigbatch::{
    BarzilaiBorwein, BigBatchSgd, BigBatchSgdBuilder, Fixed, History, Objective, Report, StepRule,
};
use ndarray::{Array1, Array2, ArrayRef1, Axis};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, StandardNormal};

/// The user's model: rows of features, targets, and a regularization weight.
struct Ridge {
    x: Array2<f64>,
    y: Array1<f64>,
    lambda: f64,
}

impl Objective for Ridge {
    fn n_samples(&self) -> usize {
        self.y.len()
    }

    fn dim(&self) -> usize {
        self.x.ncols()
    }

    fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 {
        let r = self.x.row(i).dot(w) - self.y[i];
        0.5 * r * r + 0.5 * self.lambda * w.dot(w)
    }

    fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, grad: &mut ArrayRef1<f64>) {
        self.sample_loss_gradient(w, i, grad);
    }

    /// The loss and the gradient share the residual: computing them together halves the
    /// work of the default batched path.
    fn sample_loss_gradient(&self, w: &ArrayRef1<f64>, i: usize, grad: &mut ArrayRef1<f64>) -> f64 {
        let row = self.x.row(i);
        let r = row.dot(w) - self.y[i];
        grad.assign(&row);
        *grad *= r;
        grad.scaled_add(self.lambda, w);
        0.5 * r * r + 0.5 * self.lambda * w.dot(w)
    }
}

/// Correlated Gaussian features (`x_j = z_j + 0.5 z_(j−1)`, scales growing with j),
/// targets from fixed weights plus noise.
fn make_data(n: usize, d: usize, noise: f64, seed: u64) -> (Array2<f64>, Array1<f64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let z = Array2::from_shape_fn((n, d), |_| -> f64 { StandardNormal.sample(&mut rng) });
    let x = Array2::from_shape_fn((n, d), |(i, j)| {
        let scale = 1.0 + 2.0 * j as f64 / d as f64;
        scale * (z[[i, j]] + if j > 0 { 0.5 * z[[i, j - 1]] } else { 0.0 })
    });
    let w_true = Array1::from_shape_fn(d, |j| if j % 2 == 0 { 1.0 } else { -0.5 });
    let eps = Array1::from_shape_fn(n, |_| {
        let e: f64 = StandardNormal.sample(&mut rng);
        noise * e
    });
    let y = x.dot(&w_true) + eps;
    (x, y)
}

/// The exact minimizer: solve `(XᵀX/N + λI) w = Xᵀy/N` by Cholesky.
fn exact_optimum(p: &Ridge) -> Array1<f64> {
    let n = p.y.len() as f64;
    let mut a = p.x.t().dot(&p.x) / n;
    a.diag_mut().mapv_inplace(|v| v + p.lambda);
    let b = p.x.t().dot(&p.y) / n;
    let d = b.len();
    let mut l = Array2::<f64>::zeros((d, d));
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum();
            l[[i, j]] = if i == j {
                (a[[i, i]] - s).sqrt()
            } else {
                (a[[i, j]] - s) / l[[j, j]]
            };
        }
    }
    let mut z = Array1::<f64>::zeros(d);
    for i in 0..d {
        z[i] = (b[i] - (0..i).map(|k| l[[i, k]] * z[k]).sum::<f64>()) / l[[i, i]];
    }
    let mut w = Array1::<f64>::zeros(d);
    for i in (0..d).rev() {
        w[i] = (z[i] - (i + 1..d).map(|k| l[[k, i]] * w[k]).sum::<f64>()) / l[[i, i]];
    }
    w
}

/// The extreme eigenvalues of the Hessian `XᵀX/N + λI`, by power iteration (for the printout).
fn extreme_eigenvalues(p: &Ridge) -> (f64, f64) {
    let n = p.y.len() as f64;
    let mut h = p.x.t().dot(&p.x) / n;
    h.diag_mut().mapv_inplace(|v| v + p.lambda);
    let power = |m: &Array2<f64>| {
        let mut v = Array1::from_elem(m.nrows(), 1.0);
        let mut value = 0.0;
        for _ in 0..2000 {
            let next = m.dot(&v);
            value = next.dot(&v) / v.dot(&v);
            v = &next / next.dot(&next).sqrt();
        }
        value
    };
    let hi = power(&h);
    let shifted = Array2::from_diag(&Array1::from_elem(h.nrows(), hi)) - &h;
    (hi - power(&shifted), hi)
}

/// One line of the summary: rule, why it stopped, epochs, relative gap, distance to w*.
type Summary = (String, String, f64, f64, f64);

fn run<S: StepRule>(
    name: &str,
    builder: BigBatchSgdBuilder<S>,
    problem: &Ridge,
    f_star: f64,
    w_star: &Array1<f64>,
) -> Result<Summary, bigbatch::Error> {
    // Stop when ‖g_B‖ ≤ 1e-4 on a batch that passed the test, or after 100 epochs.
    let mut optimizer = builder
        .seed(2024)
        .tolerance(1e-8)
        .max_epochs(100.0)
        .build()?;
    let mut history = History::new();
    let report: Report<f64> =
        optimizer.minimize_with(problem, Array1::zeros(problem.dim()), &mut history)?;
    let gap = (report.loss - f_star) / f_star;
    let dist = (&report.w - w_star)
        .mapv(f64::abs)
        .fold(0.0, |m: f64, &v| m.max(v));
    println!("\n{name}");
    println!("  {report}");
    println!("  relative gap (f − f*)/f* = {gap:.3e},  max |w − w*| = {dist:.3e}");
    // How the batch grew: the iteration at which it first reached a few sizes.
    let n = problem.n_samples();
    let records = history.records();
    print!("  loss, epochs and batch size along the run:");
    let marks = records.len().clamp(1, 8);
    for k in 0..marks {
        let r = &records[(k * records.len()) / marks];
        print!(
            "\n    it {:>4}  epoch {:>7.3}  batch {:>6} ({:>5.1}% of N)  batch loss {:.6e}  step {:.3e}",
            r.iteration,
            r.epochs,
            r.batch_size,
            100.0 * r.batch_size as f64 / n as f64,
            r.loss,
            r.step_size
        );
    }
    println!();
    Ok((
        name.to_string(),
        report.stop.to_string(),
        report.epochs,
        gap,
        dist,
    ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (n, d, lambda) = (20_000, 20, 1e-3);
    let (x, y) = make_data(n, d, 0.5, 7);
    let problem = Ridge { x, y, lambda };
    let w_star = exact_optimum(&problem);
    let all: Vec<usize> = (0..n).collect();
    let f_star = problem.batch_loss(&w_star, &all);
    println!("ridge regression: N = {n}, d = {d}, λ = {lambda}; optimum f* = {f_star:.12e}");

    // The fixed step needs the smoothness constant L; mean ‖x_i‖² + λ bounds it from above
    // (the trace of XᵀX/N is at least its largest eigenvalue), and costs one pass.
    let l_bound = problem
        .x
        .map_axis(Axis(1), |r| r.dot(&r))
        .mean()
        .unwrap_or(0.0)
        + lambda;
    // For the printout and the exact-L run: a user rarely has these.
    let (lo, hi) = extreme_eigenvalues(&problem);
    println!(
        "curvature: eigenvalues of the Hessian in [{lo:.3}, {hi:.3}], condition number {:.0}",
        hi / lo
    );
    let theta: f64 = 1.0;
    let fixed = 1.0 / (l_bound * (1.0 + theta * theta));

    // The default (L-BFGS on a persistent batch), then the paper's configuration with each of
    // its step rules.
    let paper = BigBatchSgd::paper;
    let exact_fixed = 1.0 / (hi * (1.0 + theta * theta));
    let summary = [
        run(
            "default: L-BFGS, persistent batch",
            BigBatchSgd::builder(),
            &problem,
            f_star,
            &w_star,
        )?,
        run("paper: Armijo", paper(), &problem, f_star, &w_star)?,
        run(
            "paper: Barzilai-Borwein",
            paper().step(BarzilaiBorwein::new()),
            &problem,
            f_star,
            &w_star,
        )?,
        run(
            &format!("paper: Fixed {fixed:.3e} (L ≤ {l_bound:.1})"),
            paper().step(Fixed::new(fixed)),
            &problem,
            f_star,
            &w_star,
        )?,
        // The same rule with the exact L (the largest eigenvalue): the theory's step.
        run(
            &format!("paper: Fixed {exact_fixed:.3e} (L = {hi:.2})"),
            paper().step(Fixed::new(exact_fixed)),
            &problem,
            f_star,
            &w_star,
        )?,
    ];
    println!(
        "\n{:<38} {:<28} {:>7} {:>12} {:>12}",
        "step rule", "stopped by", "epochs", "(f-f*)/f*", "max|w-w*|"
    );
    for (name, stop, epochs, gap, dist) in summary {
        println!("{name:<38} {stop:<28} {epochs:>7.2} {gap:>12.3e} {dist:>12.3e}");
    }
    Ok(())
}
