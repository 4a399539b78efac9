//! Shared test problems with known answers, and slow f64 references.
#![allow(dead_code)] // each test binary uses a different part of this module

use bigbatch::{Float, Objective};
use ndarray::{Array1, Array2, ArrayRef1, Axis};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, StandardNormal};

/// Everything a report says, floats as bits: two runs agree iff these are equal.
pub type ReportBits = (
    Vec<u64>,
    u64,
    usize,
    u64,
    u64,
    usize,
    u64,
    bigbatch::StopReason,
);

pub fn bits<F: Float>(r: &bigbatch::Report<F>) -> ReportBits {
    (
        r.w.iter().map(|x| x.as_f64().to_bits()).collect(),
        r.loss.as_f64().to_bits(),
        r.iterations,
        r.grad_evals,
        r.loss_evals,
        r.batch_size,
        r.grad_norm_sq.as_f64().to_bits(),
        r.stop,
    )
}

pub fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// Ridge least squares, written per sample the plain way:
/// `f_i(w) = (x_i·w − y_i)²/2 + (λ/2)‖w‖²`.
#[derive(Debug, Clone)]
pub struct Ridge<F> {
    pub x: Array2<F>,
    pub y: Array1<F>,
    pub lambda: F,
    /// f64 copies for the references.
    x64: Array2<f64>,
    y64: Array1<f64>,
    lambda64: f64,
}

impl<F: Float> Ridge<F> {
    pub fn new(x: Array2<f64>, y: Array1<f64>, lambda: f64) -> Self {
        Ridge {
            x: x.mapv(F::from_f64),
            y: y.mapv(F::from_f64),
            lambda: F::from_f64(lambda),
            // The references see exactly the values the objective sees.
            x64: x.mapv(|v| F::from_f64(v).as_f64()),
            y64: y.mapv(|v| F::from_f64(v).as_f64()),
            lambda64: F::from_f64(lambda).as_f64(),
        }
    }

    /// Mean loss over `batch` at `w`, in f64.
    pub fn loss64(&self, w: &[f64], batch: &[usize]) -> f64 {
        let w = Array1::from(w.to_vec());
        let reg = 0.5 * self.lambda64 * w.dot(&w);
        let sum: f64 = batch
            .iter()
            .map(|&i| {
                let r = self.x64.row(i).dot(&w) - self.y64[i];
                0.5 * r * r + reg
            })
            .sum();
        sum / batch.len() as f64
    }

    /// Mean gradient over `batch` at `w`, in f64.
    pub fn grad64(&self, w: &[f64], batch: &[usize]) -> Array1<f64> {
        let w = Array1::from(w.to_vec());
        let mut g = Array1::zeros(w.len());
        for &i in batch {
            let r = self.x64.row(i).dot(&w) - self.y64[i];
            g.scaled_add(r, &self.x64.row(i));
        }
        g /= batch.len() as f64;
        g.scaled_add(self.lambda64, &w);
        g
    }

    /// `V_B`: the variance of the per-sample gradients over `batch` at `w`, two-pass, in f64.
    pub fn variance64(&self, w: &[f64], batch: &[usize]) -> f64 {
        let mean = self.grad64(w, batch);
        let wv = Array1::from(w.to_vec());
        let m2: f64 = batch
            .iter()
            .map(|&i| {
                let r = self.x64.row(i).dot(&wv) - self.y64[i];
                let g = &self.x64.row(i) * r + &wv * self.lambda64;
                (&g - &mean).mapv(|v| v * v).sum()
            })
            .sum();
        m2 / (batch.len() - 1) as f64
    }

    pub fn all(&self) -> Vec<usize> {
        (0..self.y.len()).collect()
    }

    /// Hessian `XᵀX/N + λI`.
    pub fn hessian(&self) -> Array2<f64> {
        let n = self.x64.nrows() as f64;
        let mut h = self.x64.t().dot(&self.x64) / n;
        for j in 0..h.nrows() {
            h[[j, j]] += self.lambda64;
        }
        h
    }

    /// The minimizer, from the normal equations.
    pub fn optimum(&self) -> Array1<f64> {
        let n = self.x64.nrows() as f64;
        let rhs = self.x64.t().dot(&self.y64) / n;
        cholesky_solve(&self.hessian(), &rhs)
    }

    /// (μ, L): the extreme eigenvalues of the Hessian.
    pub fn curvature_bounds(&self) -> (f64, f64) {
        let eig = jacobi_eigenvalues(&self.hessian());
        let min = eig.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = eig.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    }
}

impl<F: Float> Objective<F> for Ridge<F> {
    fn n_samples(&self) -> usize {
        self.y.len()
    }
    fn dim(&self) -> usize {
        self.x.ncols()
    }
    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        let r = self.x.row(i).dot(w) - self.y[i];
        F::from_f64(0.5) * (r * r + self.lambda * w.dot(w))
    }
    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) {
        let r = self.x.row(i).dot(w) - self.y[i];
        grad.assign(&self.x.row(i));
        *grad *= r;
        grad.scaled_add(self.lambda, w);
    }
}

/// Gaussian features with column `j` scaled by `1 + j·spread/d`, targets `X w* + noise·ε`.
/// Returns the f64 data and `w*`.
pub fn linear_data(
    seed: u64,
    n: usize,
    d: usize,
    spread: f64,
    noise: f64,
) -> (Array2<f64>, Array1<f64>, Array1<f64>) {
    let mut r = rng(seed);
    let mut normal = || -> f64 { StandardNormal.sample(&mut r) };
    let x = Array2::from_shape_fn((n, d), |(_, j)| {
        (1.0 + j as f64 * spread / d as f64) * normal()
    });
    let w_true = Array1::from_shape_fn(d, |j| 1.0 - 0.5 * j as f64);
    let eps = Array1::from_shape_fn(n, |_| noise * normal());
    let y = x.dot(&w_true) + eps;
    (x, y, w_true)
}

pub fn ridge<F: Float>(seed: u64, n: usize, d: usize, noise: f64, lambda: f64) -> Ridge<F> {
    let (x, y, _) = linear_data(seed, n, d, 1.0, noise);
    Ridge::new(x, y, lambda)
}

/// Solves `A x = b` for symmetric positive definite `A` (Cholesky).
pub fn cholesky_solve(a: &Array2<f64>, b: &Array1<f64>) -> Array1<f64> {
    let n = a.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum();
            if i == j {
                l[[i, i]] = (a[[i, i]] - s).sqrt();
            } else {
                l[[i, j]] = (a[[i, j]] - s) / l[[j, j]];
            }
        }
    }
    let mut z = Array1::<f64>::zeros(n);
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[[i, k]] * z[k]).sum();
        z[i] = (b[i] - s) / l[[i, i]];
    }
    let mut x = Array1::<f64>::zeros(n);
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[[k, i]] * x[k]).sum();
        x[i] = (z[i] - s) / l[[i, i]];
    }
    x
}

/// Eigenvalues of a small symmetric matrix (cyclic Jacobi rotations).
pub fn jacobi_eigenvalues(a: &Array2<f64>) -> Vec<f64> {
    let n = a.nrows();
    let mut a = a.clone();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .filter(|(i, j)| i != j)
            .map(|(i, j)| a[[i, j]].powi(2))
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[[p, q]].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[[q, q]] - a[[p, p]]) / (2.0 * a[[p, q]]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[[k, p]], a[[k, q]]);
                    a[[k, p]] = c * akp - s * akq;
                    a[[k, q]] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[[p, k]], a[[q, k]]);
                    a[[p, k]] = c * apk - s * aqk;
                    a[[q, k]] = s * apk + c * aqk;
                }
            }
        }
    }
    a.diag().to_vec()
}

/// `max_j |a_j − b_j|`.
pub fn max_abs_diff<F: Float>(a: &Array1<F>, b: &Array1<f64>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x.as_f64() - y).abs())
        .fold(0.0, f64::max)
}

pub fn to64<F: Float>(w: &ArrayRef1<F>) -> Vec<f64> {
    w.iter().map(|x| x.as_f64()).collect()
}

/// Column means, to sanity-check generated data.
pub fn col_means(x: &Array2<f64>) -> Array1<f64> {
    x.mean_axis(Axis(0)).unwrap()
}

/// Where a run with persistent batches and a searching step rule evaluated batch statistics,
/// from its records: entry `t` says whether iteration `t` started from the statistics its
/// predecessor's line search computed at its first trial (it does when that trial was
/// accepted) instead of evaluating its batch. One more entry follows the last record: the
/// iteration after it, the one that stopped the run. Every search computes the statistics at
/// its first trial.
pub fn kept_statistics<F>(records: &[bigbatch::IterRecord<F>]) -> Vec<bool> {
    std::iter::once(false)
        .chain(records.iter().map(|r| r.backtracks == 0))
        .collect()
}
