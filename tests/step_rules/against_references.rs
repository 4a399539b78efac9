//! Step rules against independent f64 recomputations: the full-batch run is gradient descent,
//! the Armijo condition holds on the batch, the Barzilai–Borwein step is 1/curvature.
use std::ops::ControlFlow;

use crate::common::*;
use bigbatch::observe::from_fn;
use bigbatch::*;
use ndarray::{Array1, ArrayRef1};

/// One observed step: iterate before, iterate after, the batch, and the record.
struct Seen<F> {
    before: Vec<f64>,
    after: Vec<f64>,
    batch: Vec<usize>,
    record: IterRecord<F>,
}

fn observe_run<F: Float, S: StepRule, O: Objective<F>>(
    opt: &mut BigBatchSgd<S>,
    objective: &O,
    w0: Array1<F>,
) -> (Report<F>, Vec<Seen<F>>) {
    let mut seen = Vec::new();
    let mut prev = to64(&w0);
    let mut obs = from_fn(|v: &IterView<'_, F>| {
        let after = to64(v.w);
        seen.push(Seen {
            before: prev.clone(),
            after: after.clone(),
            batch: v.batch.to_vec(),
            record: *v.record,
        });
        prev = after;
        ControlFlow::Continue(())
    });
    let report = opt.minimize_with(objective, w0, &mut obs).unwrap();
    (report, seen)
}

/// Whether two squared norms agree: relative error `rel` on the norms, plus the absolute
/// rounding `10 ε_F` of a mean of per-sample gradients of size about 1.
fn norms_agree<F: Float>(sq_a: f64, sq_b: f64, rel: f64) -> bool {
    let (a, b) = (sq_a.sqrt(), sq_b.sqrt());
    (a - b).abs() <= rel * b + 10.0 * F::epsilon().as_f64()
}

/// Once the batch reaches N, each step is exactly `w − α∇ℓ(w)` (gradient descent).
fn full_batch_is_gradient_descent<F: Float>(rel_tol: f64) {
    let p = ridge::<F>(8, 60, 4, 1.0, 0.1);
    let (_, l) = p.curvature_bounds();
    let all = p.all();
    for armijo in [false, true] {
        // θ = 0.05 demands a nearly exact gradient: the batch grows to N within a few steps.
        let base = BigBatchSgd::paper()
            .theta(0.05)
            .seed(4)
            .max_iterations(40)
            .tolerance(0.0);
        let (_, seen) = if armijo {
            observe_run(&mut base.build().unwrap(), &p, Array1::zeros(4))
        } else {
            observe_run(
                &mut base.step(Fixed::new(1.0 / l)).build().unwrap(),
                &p,
                Array1::zeros(4),
            )
        };
        let first_full = seen
            .iter()
            .position(|s| s.record.batch_size == 60)
            .expect("batch reached N");
        assert!(first_full < 20, "reached N only at iteration {first_full}");
        let mut checked = 0;
        for s in &seen[first_full..] {
            assert_eq!(s.record.batch_size, 60, "the batch never shrinks");
            assert_eq!(s.batch.len(), 60);
            let g = p.grad64(&s.before, &all);
            let alpha = s.record.step_size.as_f64();
            let scale = s.before.iter().map(|x| x.abs()).fold(1e-30, f64::max);
            for j in 0..4 {
                let expect = s.before[j] - alpha * g[j];
                let move_size = (alpha * g[j]).abs().max(scale * 1e-3);
                assert!(
                    (s.after[j] - expect).abs() <= rel_tol * move_size,
                    "armijo={armijo} it {}: w[{j}] {} vs GD {expect}",
                    s.record.iteration,
                    s.after[j]
                );
            }
            // The recorded ‖g‖² is the full gradient's.
            let g2: f64 = g.iter().map(|x| x * x).sum();
            assert!(norms_agree::<F>(
                s.record.grad_norm_sq.as_f64(),
                g2,
                1e3 * rel_tol
            ));
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} full-batch steps");
    }
}

#[test]
fn full_batch_run_matches_gradient_descent_f64() {
    full_batch_is_gradient_descent::<f64>(1e-9);
}

#[test]
fn full_batch_run_matches_gradient_descent_f32() {
    full_batch_is_gradient_descent::<f32>(2e-3);
}

/// Every accepted Armijo step satisfies the sufficient-decrease condition on its own batch,
/// recomputed in f64 (up to the documented rounding allowance of the loss).
fn check_armijo<F: Float>(name: &str, p: &Ridge<F>, c: f64, seen: &[Seen<F>]) {
    assert!(seen.len() >= 5, "{name}: {} steps", seen.len());
    for s in seen {
        let f0 = p.loss64(&s.before, &s.batch);
        let f1 = p.loss64(&s.after, &s.batch);
        let g = p.grad64(&s.before, &s.batch);
        let g2: f64 = g.iter().map(|x| x * x).sum();
        let alpha = s.record.step_size.as_f64();
        let allowance = 12.0 * F::epsilon().as_f64() * f0.abs() + 1e-300;
        assert!(
            f1 <= f0 - c * alpha * g2 + allowance,
            "{name} it {}: ℓ_B(w+) = {f1} > {f0} − {c}·{alpha}·{g2}",
            s.record.iteration
        );
        // The recorded batch loss and gradient are those of this batch.
        assert!((s.record.loss.as_f64() - f0).abs() <= 1e-5 * f0.abs().max(1e-12) + allowance);
        assert!(
            norms_agree::<F>(s.record.grad_norm_sq.as_f64(), g2, 1e-3),
            "{name} it {}",
            s.record.iteration
        );
    }
}

fn armijo_condition_holds<F: Float>() {
    let p = ridge::<F>(9, 400, 5, 1.0, 0.01);
    let w0 = || Array1::<F>::zeros(5);
    let b = || BigBatchSgd::builder().seed(1);
    let (_, seen) = observe_run(&mut b().step(Armijo::new()).build().unwrap(), &p, w0());
    check_armijo("armijo", &p, 0.1, &seen);
    let (_, seen) = observe_run(&mut BigBatchSgd::paper().seed(1).build().unwrap(), &p, w0());
    check_armijo("armijo, the paper's preset", &p, 0.1, &seen);
    let rule = Armijo::new()
        .increase(StepIncrease::OnBatchGrowth)
        .sufficient_decrease(0.3);
    let (_, seen) = observe_run(&mut b().step(rule).build().unwrap(), &p, w0());
    check_armijo("armijo, c = 0.3, increase on batch growth", &p, 0.3, &seen);
    let (_, seen) = observe_run(
        &mut b().step(BarzilaiBorwein::new()).build().unwrap(),
        &p,
        w0(),
    );
    check_armijo("bb", &p, 0.1, &seen);
}

#[test]
fn armijo_condition_holds_after_every_step_f64() {
    armijo_condition_holds::<f64>();
}

#[test]
fn armijo_condition_holds_after_every_step_f32() {
    armijo_condition_holds::<f32>();
}

/// Separable quadratic `f_i(w) = ½ Σ_j D_j (w_j − a_ij)²`; `∇ℓ(w) = D ⊙ (w − ā)`.
struct Quadratic<F> {
    d: Vec<F>,
    a: Vec<Vec<F>>,
}

impl<F: Float> Objective<F> for Quadratic<F> {
    fn n_samples(&self) -> usize {
        self.a.len()
    }
    fn dim(&self) -> usize {
        self.d.len()
    }
    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        let mut s = F::zero();
        for j in 0..self.d.len() {
            let r = w[j] - self.a[i][j];
            s += F::from_f64(0.5) * self.d[j] * r * r;
        }
        s
    }
    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) {
        for j in 0..self.d.len() {
            grad[j] = self.d[j] * (w[j] - self.a[i][j]);
        }
    }
}

/// With full batches the Barzilai–Borwein step is `s·s / s·y = 1/ν`, the inverse curvature
/// along the last move, and costs one extra batch of gradients per iteration.
fn bb_step_is_inverse_curvature<F: Float>(rel_tol: f64, tolerance: f64) {
    let n = 40;
    let diag = [1.0, 1.3, 1.7, 2.0];
    let q = Quadratic::<F> {
        d: diag.iter().map(|&x| F::from_f64(x)).collect(),
        a: (0..n)
            .map(|i| {
                (0..4)
                    .map(|j| F::from_f64(((i * 7 + j * 3) % 11) as f64 - 5.0))
                    .collect()
            })
            .collect(),
    };
    for mode in [BatchMode::Fresh, BatchMode::Persistent] {
        let mut opt = BigBatchSgd::builder()
            .batch_mode(mode)
            .initial_batch(n)
            .step(BarzilaiBorwein::new())
            .tolerance(tolerance)
            .max_iterations(12)
            .build()
            .unwrap();
        bb_run_is_inverse_curvature(&mut opt, &q, &diag, n, mode, rel_tol);
    }
}

fn bb_run_is_inverse_curvature<F: Float>(
    opt: &mut BigBatchSgd<BarzilaiBorwein>,
    q: &Quadratic<F>,
    diag: &[f64; 4],
    n: usize,
    mode: BatchMode,
    rel_tol: f64,
) {
    let (_, seen) = observe_run(opt, q, Array1::from_elem(4, F::from_f64(10.0)));
    assert!(seen.len() >= 6, "{} steps", seen.len());
    let records: Vec<_> = seen.iter().map(|s| s.record).collect();
    let kept = kept_statistics(&records);
    for (t, s) in seen.iter().enumerate() {
        let evals_this_iteration = s.record.grad_evals
            - if t == 0 {
                0
            } else {
                seen[t - 1].record.grad_evals
            };
        // Fresh batches: the batch at w_t and at w_(t-1). Persistent: the pair is free, the
        // line search computes the batch statistics at its first trial, and the batch at w_t
        // is free when the previous iteration accepted that trial.
        let persistent = mode == BatchMode::Persistent;
        let start = if persistent && kept[t] { 0 } else { n };
        let pair = if t > 0 && !persistent { n } else { 0 };
        let trial = if persistent { n } else { 0 };
        assert_eq!(
            evals_this_iteration,
            (start + pair + trial) as u64,
            "{mode:?} it {t}"
        );
        if t == 0 {
            continue;
        }
        let (mut ss, mut sy) = (0.0, 0.0);
        for ((now, then), curvature) in s.before.iter().zip(&seen[t - 1].before).zip(diag) {
            let step = now - then;
            ss += step * step;
            sy += step * curvature * step;
        }
        let expected = ss / sy;
        let got = s.record.step_size.as_f64();
        assert_eq!(
            s.record.backtracks, 0,
            "curvature in [1, 2]: Armijo accepts 1/ν"
        );
        assert!(
            (got - expected).abs() <= rel_tol * expected,
            "t={t}: α {got} vs 1/ν {expected}"
        );
    }
}

#[test]
fn barzilai_borwein_step_is_inverse_curvature_f64() {
    bb_step_is_inverse_curvature::<f64>(1e-10, 1e-12);
}

#[test]
fn barzilai_borwein_step_is_inverse_curvature_f32() {
    // Stop before the loss change falls below f32's rounding, where the line search no longer
    // resolves decreases (loss ≈ 100, ulp ≈ 1e-5).
    bb_step_is_inverse_curvature::<f32>(1e-3, 1e-4);
}

/// On partial batches (smoothing off) the Barzilai–Borwein step is the full formula
/// `‖g_B‖²/(‖g_B‖² + V_B/n) / ν`, with ν from the same batch at both iterates; recomputed here
/// in f64 with a two-pass variance.
fn bb_step_is_noise_corrected<F: Float>(rel_tol: f64) {
    for mode in [BatchMode::Fresh, BatchMode::Persistent] {
        bb_noise_corrected_in::<F>(mode, rel_tol);
    }
}

fn bb_noise_corrected_in<F: Float>(mode: BatchMode, rel_tol: f64) {
    let p = ridge::<F>(33, 2000, 5, 2.0, 0.01);
    let rule = BarzilaiBorwein::new().smoothing(false);
    let mut opt = BigBatchSgd::builder()
        .batch_mode(mode)
        .initial_batch(20)
        .step(rule)
        .max_iterations(25)
        .seed(6)
        .build()
        .unwrap();
    let (_, seen) = observe_run(&mut opt, &p, Array1::zeros(5));
    let mut checked = 0;
    let mut corrected = 0;
    for t in 1..seen.len() {
        let s = &seen[t];
        let n = s.batch.len();
        if s.record.backtracks > 0 || n == 2000 {
            continue;
        }
        // The curvature pair's samples: the current batch (fresh) or the previous one
        // (persistent), at both iterates.
        let pair_batch = if mode == BatchMode::Fresh {
            &s.batch
        } else {
            &seen[t - 1].batch
        };
        let g = p.grad64(&s.before, &s.batch);
        let y_now = p.grad64(&s.before, pair_batch);
        let y_prev = p.grad64(&seen[t - 1].before, pair_batch);
        let (mut ss, mut sy) = (0.0, 0.0);
        for j in 0..5 {
            let step = s.before[j] - seen[t - 1].before[j];
            ss += step * step;
            sy += step * (y_now[j] - y_prev[j]);
        }
        let nu = sy / ss;
        let g2 = g.dot(&g);
        let factor = g2 / (g2 + p.variance64(&s.before, &s.batch) / n as f64);
        let expected = (factor / nu).clamp(1e-12, 1e6);
        let got = s.record.step_size.as_f64();
        assert!(
            (got - expected).abs() <= rel_tol * expected,
            "t={t}: α {got} vs {expected} (factor {factor})"
        );
        // Bounded below by 1/(1 + θ²) = ½ on a batch that passed the test at θ = 1.
        assert!(factor >= 0.5 - 1e-12, "t={t}: factor {factor}");
        checked += 1;
        if factor < 0.95 {
            corrected += 1;
        }
    }
    assert!(
        checked >= 5 && corrected >= 3,
        "checked {checked}, with a real correction {corrected}"
    );
}

#[test]
fn barzilai_borwein_step_is_noise_corrected_f64() {
    bb_step_is_noise_corrected::<f64>(1e-8);
}

#[test]
fn barzilai_borwein_step_is_noise_corrected_f32() {
    bb_step_is_noise_corrected::<f32>(2e-2);
}

/// Armijo enlarges the carried step exactly in the iterations whose batch grew.
#[test]
fn armijo_enlarges_the_step_only_when_the_batch_grows() {
    let p = ridge::<f64>(10, 2000, 5, 2.0, 0.01);
    let rule = Armijo::new().increase(StepIncrease::OnBatchGrowth);
    let mut opt = BigBatchSgd::builder().seed(3).step(rule).build().unwrap();
    let (_, seen) = observe_run(&mut opt, &p, Array1::zeros(5));
    let mut grew_and_doubled = 0;
    for pair in seen.windows(2) {
        let (a, b) = (&pair[0].record, &pair[1].record);
        let ratio = b.step_size / a.step_size;
        let expected_before_search = if b.growth_rounds > 0 { 2.0 } else { 1.0 };
        // After the search: the enlarged step, halved `backtracks` times.
        let expected = expected_before_search * 0.5f64.powi(b.backtracks as i32);
        assert!(
            (ratio - expected).abs() <= 1e-12 * expected,
            "it {}: ratio {ratio} vs {expected}",
            b.iteration
        );
        if b.growth_rounds > 0 && b.backtracks == 0 {
            grew_and_doubled += 1;
        }
    }
    assert!(grew_and_doubled >= 1);
}

/// By default Armijo doubles the carried step before every search.
#[test]
fn armijo_enlarges_the_step_every_iteration_by_default() {
    let p = ridge::<f64>(10, 2000, 5, 2.0, 0.01);
    let (_, seen) = observe_run(
        &mut BigBatchSgd::builder()
            .seed(3)
            .step(Armijo::new())
            .build()
            .unwrap(),
        &p,
        Array1::zeros(5),
    );
    assert!(seen.len() > 10);
    for pair in seen.windows(2) {
        let (a, b) = (&pair[0].record, &pair[1].record);
        let expected = 2.0 * 0.5f64.powi(b.backtracks as i32);
        assert!(
            (b.step_size / a.step_size - expected).abs() <= 1e-12 * expected,
            "it {}",
            b.iteration
        );
    }
}

/// A Barzilai–Borwein run on a non-convex objective (negative curvature along some moves)
/// skips the update there and still decreases the loss with Armijo.
#[test]
fn barzilai_borwein_survives_negative_curvature() {
    // f_i(w) = cos(w·a_i) + 0.05‖w‖²: curvature changes sign.
    struct Wavy(Vec<[f64; 2]>);
    impl Objective for Wavy {
        fn n_samples(&self) -> usize {
            self.0.len()
        }
        fn dim(&self) -> usize {
            2
        }
        fn sample_loss(&self, w: &ArrayRef1<f64>, i: usize) -> f64 {
            let a = self.0[i];
            (w[0] * a[0] + w[1] * a[1]).cos() + 0.05 * (w[0] * w[0] + w[1] * w[1])
        }
        fn sample_gradient(&self, w: &ArrayRef1<f64>, i: usize, g: &mut ArrayRef1<f64>) {
            let a = self.0[i];
            let s = -(w[0] * a[0] + w[1] * a[1]).sin();
            g[0] = s * a[0] + 0.1 * w[0];
            g[1] = s * a[1] + 0.1 * w[1];
        }
    }
    let data = Wavy(
        (0..300)
            .map(|i| [1.0 + (i % 7) as f64 * 0.1, 0.5 - (i % 5) as f64 * 0.2])
            .collect(),
    );
    let all: Vec<usize> = (0..300).collect();
    let w0 = ndarray::array![0.3, -0.2];
    let f0 = data.batch_loss(&w0, &all);
    let report = BigBatchSgd::builder()
        .step(BarzilaiBorwein::new())
        .seed(2)
        .build()
        .unwrap()
        .minimize(&data, w0)
        .unwrap();
    assert!(report.loss < f0 - 0.1, "{report} (start {f0})");
    assert_eq!(report.stop, StopReason::GradientTolerance, "{report}");
}
