//! Bundled models: the fast batched path agrees with the plain per-sample path, gradients
//! agree with central finite differences, extreme inputs stay finite, bad labels are refused.
mod common;

use bigbatch::data::Dataset;
use bigbatch::models::{Activation, Huber, LeastSquares, Logistic, Mlp, Softmax};
use bigbatch::*;
use common::*;
use ndarray::{Array1, Array2, ArrayRef1, array};
use rand::RngExt;

/// Forwards only the per-sample methods, so the batched ones are the trait's defaults.
struct PerSampleOnly<'a, O>(&'a O);

impl<F: Float, O: Objective<F>> Objective<F> for PerSampleOnly<'_, O> {
    fn n_samples(&self) -> usize {
        self.0.n_samples()
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        self.0.sample_loss(w, i)
    }
    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, g: &mut ArrayRef1<F>) {
        self.0.sample_gradient(w, i, g)
    }
}

/// Sparse-ish features (about 40 % zeros) with a few large rows; targets by `target(i, row)`.
fn features(seed: u64, n: usize, d: usize) -> Array2<f64> {
    let mut r = rng(seed);
    Array2::from_shape_fn((n, d), |(i, _)| {
        if r.random_bool(0.4) {
            0.0
        } else {
            let scale = if i % 50 == 0 { 4.0 } else { 1.0 };
            scale * (r.random::<f64>() - 0.5) * 2.0
        }
    })
}

fn datasets<F: Float>(x: &Array2<f64>, y: &Array1<f64>) -> [Dataset<F>; 2] {
    let dense = Dataset::from_dense(x.mapv(F::from_f64), y.mapv(F::from_f64)).unwrap();
    [dense.clone(), dense.into_sparse()]
}

/// Fast vs default batched statistics and loss on random batches (sizes crossing the chunk
/// boundary), at a random point.
fn fast_equals_plain<F: Float, O: Objective<F> + Sync>(name: &str, model: &O, tol: f64) {
    let mut r = rng(99);
    let n = model.n_samples();
    let w: Array1<F> = (0..model.dim())
        .map(|_| F::from_f64(r.random::<f64>() - 0.5))
        .collect();
    for size in [1, 2, 37, 256, 257, 700] {
        let batch: Vec<usize> = (0..size).map(|_| r.random_range(0..n)).collect();
        let (mut fast, mut plain) = (GradStats::new(model.dim()), GradStats::new(model.dim()));
        model.batch_gradient(&w, &batch, &mut fast);
        PerSampleOnly(model).batch_gradient(&w, &batch, &mut plain);
        assert_eq!(fast.count(), size, "{name}");
        let scale = plain
            .mean()
            .iter()
            .fold(1.0f64, |m, v| m.max(v.as_f64().abs()));
        let diff = max_abs_diff(fast.mean(), plain.mean());
        assert!(
            diff <= tol * scale,
            "{name} n={size}: mean differs by {diff:e}"
        );
        let (vf, vp) = (fast.sum_sq_dev().as_f64(), plain.sum_sq_dev().as_f64());
        assert!(
            (vf - vp).abs() <= tol * vp.max(scale * scale),
            "{name} n={size}: m2 {vf:e} vs {vp:e}"
        );
        let (lf, lp) = (
            fast.loss().unwrap().as_f64(),
            plain.loss().unwrap().as_f64(),
        );
        assert!(
            (lf - lp).abs() <= tol * lp.abs().max(1.0),
            "{name} n={size}: loss {lf} vs {lp}"
        );
        let (bf, bp) = (
            model.batch_loss(&w, &batch).as_f64(),
            PerSampleOnly(model).batch_loss(&w, &batch).as_f64(),
        );
        assert!(
            (bf - bp).abs() <= tol * bp.abs().max(1.0),
            "{name}: batch_loss"
        );
        // One code path: the batch loss and the loss the statistics report are the same
        // number, bit for bit, so that a line search compares like with like.
        assert_eq!(bf.to_bits(), lf.to_bits(), "{name} n={size}: {bf} vs {lf}");
        losses_along_a_line(name, model, &w, &batch, tol);
    }
}

fn bits_of<F: Float>(x: &[F]) -> Vec<u64> {
    x.iter().map(|&v| v.as_f64().to_bits()).collect()
}

/// `op` on `threads` threads (with the `rayon` feature; on the caller's thread without it).
fn in_threads<R: Send>(threads: usize, op: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "rayon")]
    return parallel::with_threads(threads, op).unwrap();
    #[cfg(not(feature = "rayon"))]
    {
        let _ = threads;
        op()
    }
}

/// The losses along a line, where a model prepares them: exactly the batch loss at `w` for a
/// step of 0, the batch loss at `w + αd` up to rounding for other steps, and the same bits
/// with any number of threads. The per-sample default prepares nothing.
fn losses_along_a_line<F: Float, O: Objective<F> + Sync>(
    name: &str,
    model: &O,
    w: &Array1<F>,
    batch: &[usize],
    tol: f64,
) {
    let mut r = rng(batch.len() as u64);
    let d: Array1<F> = (0..model.dim())
        .map(|_| F::from_f64(r.random::<f64>() - 0.5))
        .collect();
    assert!(PerSampleOnly(model).line().is_none());
    let Some(mut line) = model.line() else {
        return;
    };
    line.prepare(w, &d, batch);
    let steps = [0.0, 1.0, 0.37, 1e-3, -0.5, 4.0];
    let points: Vec<(F, Array1<F>)> = steps
        .iter()
        .map(|&alpha| {
            let a = F::from_f64(alpha);
            (a, w + &d.mapv(|x| a * x))
        })
        .collect();
    let losses = |line: &dyn LineLoss<F>| -> Vec<u64> {
        points
            .iter()
            .map(|(a, point)| line.loss(*a, point).as_f64().to_bits())
            .collect()
    };
    let one_thread = losses(line.as_ref());
    // Prepared and evaluated on 3 threads: the same bits.
    let prepared3 = in_threads(3, || {
        let mut line3 = model.line().expect("the same model has lines");
        line3.prepare(w, &d, batch);
        losses(line3.as_ref())
    });
    assert_eq!(
        prepared3, one_thread,
        "{name}: the line does not depend on the threads"
    );
    // The same line from the statistics pass, whose statistics are unchanged by it.
    let (mut plain, mut with_line) = (GradStats::new(model.dim()), GradStats::new(model.dim()));
    model.batch_gradient(w, batch, &mut plain);
    let mut fused = model.line().expect("the same model has lines");
    if fused.prepare_with_gradient(w, &d, batch, &mut with_line) {
        assert_eq!(
            losses(fused.as_ref()),
            one_thread,
            "{name}: the line from the statistics pass"
        );
        assert_eq!(
            bits_of(with_line.mean().as_slice().unwrap()),
            bits_of(plain.mean().as_slice().unwrap()),
            "{name}: statistics with the line"
        );
    } else {
        assert_eq!(
            with_line.count(),
            0,
            "{name}: a pass not taken adds nothing"
        );
    }
    assert_eq!(
        one_thread[0],
        model.batch_loss(w, batch).as_f64().to_bits(),
        "{name} n={}: a step of 0 gives the loss at w",
        batch.len()
    );
    for ((alpha, (_, point)), along) in steps.iter().zip(&points).zip(&one_thread) {
        let along = f64::from_bits(*along);
        let direct = model.batch_loss(point, batch).as_f64();
        assert!(
            (along - direct).abs() <= tol * direct.abs().max(1.0),
            "{name} n={} α={alpha}: {along} along the line, {direct} at the point",
            batch.len()
        );
    }
}

/// Per-sample gradients against central differences of the per-sample loss.
fn gradients_match_differences<F: Float, O: Objective<F>>(name: &str, model: &O, h: f64, tol: f64) {
    let mut r = rng(5);
    let w: Array1<F> = (0..model.dim())
        .map(|_| F::from_f64(r.random::<f64>() - 0.5))
        .collect();
    let mut g = Array1::<F>::zeros(model.dim());
    for i in [0, 1, 7, model.n_samples() - 1] {
        model.sample_gradient(&w, i, &mut g);
        let loss_direct = model.sample_loss(&w, i);
        let loss_joint = model.sample_loss_gradient(&w, i, &mut g.clone());
        assert!(
            (loss_direct - loss_joint).abs().as_f64() <= 1e-12 + tol * loss_direct.abs().as_f64()
        );
        for j in 0..model.dim() {
            let (mut wp, mut wm) = (w.clone(), w.clone());
            wp[j] += F::from_f64(h);
            wm[j] -= F::from_f64(h);
            let fd = (model.sample_loss(&wp, i).as_f64() - model.sample_loss(&wm, i).as_f64())
                / (2.0 * h);
            let an = g[j].as_f64();
            assert!(
                (fd - an).abs() <= tol * (1.0 + an.abs()),
                "{name} sample {i} coord {j}: {an} vs {fd}"
            );
        }
    }
}

/// A batch that crosses the chunk boundary, with repeats, and a random point and vector.
fn hessian_setup(n: usize, dim: usize) -> (Vec<usize>, Array1<f64>, Array1<f64>) {
    let mut r = rng(17);
    let batch: Vec<usize> = (0..700).map(|_| r.random_range(0..n)).collect();
    let w = (0..dim).map(|_| r.random::<f64>() - 0.5).collect();
    let v = (0..dim).map(|_| r.random::<f64>() - 0.5).collect();
    (batch, w, v)
}

/// `H_B v` of a model's curvature; the same bits with 1 and 2 threads (with the `rayon`
/// feature), for a first product after the preparation, a second one, and one after the
/// diagonal (a model may take its values during the first product or on their own).
fn hessian_product<F: Float, O: Objective<F> + Sync>(
    model: &O,
    w: &Array1<f64>,
    v: &Array1<f64>,
    batch: &[usize],
) -> Array1<f64> {
    let (w, v) = (w.mapv(F::from_f64), v.mapv(F::from_f64));
    let products = |threads, diagonal_first: bool| {
        in_threads(threads, || {
            let mut h = model.curvature().expect("the model has curvature");
            h.prepare(&w, batch);
            let mut diagonal = Array1::from_elem(model.dim(), f64::NAN);
            if diagonal_first {
                assert!(h.diagonal(&mut diagonal));
                assert!(diagonal.iter().all(|&x| x > 0.0), "{diagonal}");
            }
            let mut first = Array1::from_elem(model.dim(), f64::NAN);
            h.product(&v, &mut first);
            let mut second = Array1::from_elem(model.dim(), f64::NAN);
            h.product(&v, &mut second);
            assert_eq!(
                bits_of(first.as_slice().unwrap()),
                bits_of(second.as_slice().unwrap())
            );
            first
        })
    };
    let one = products(1, false);
    for (threads, diagonal_first) in [(2, false), (1, true), (2, true)] {
        let other = products(threads, diagonal_first);
        assert_eq!(
            bits_of(one.as_slice().unwrap()),
            bits_of(other.as_slice().unwrap())
        );
    }
    one
}

/// Hessian-vector products against central differences of the batch gradient (f64), and the
/// model of another float type against the f64 model.
fn hessians_match<F: Float, O: Objective<F> + Sync, R: Objective<f64> + Sync>(
    name: &str,
    model: &O,
    reference: &R,
    tol: f64,
) {
    let (batch, w, v) = hessian_setup(model.n_samples(), model.dim());
    let hv = hessian_product(model, &w, &v, &batch);
    let expected = if std::mem::size_of::<F>() == 8 {
        let h = 1e-5;
        let grad_at = |t: f64| {
            let mut stats = GradStats::new(reference.dim());
            reference.batch_gradient(&(&w + &(t * &v)), &batch, &mut stats);
            stats.mean().clone()
        };
        (grad_at(h) - grad_at(-h)) / (2.0 * h)
    } else {
        hessian_product(reference, &w, &v, &batch)
    };
    let scale = expected.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (j, (a, e)) in hv.iter().zip(&expected).enumerate() {
        assert!((a - e).abs() <= tol * scale, "{name} coord {j}: {a} vs {e}");
    }
    // The diagonal is that of the products: (H e_j)_j.
    let mut h = model.curvature().unwrap();
    h.prepare(&w.mapv(F::from_f64), &batch);
    let mut diagonal = Array1::zeros(model.dim());
    assert!(h.diagonal(&mut diagonal));
    for j in 0..model.dim() {
        let mut e = Array1::<F>::zeros(model.dim());
        e[j] = F::one();
        let mut column = Array1::zeros(model.dim());
        h.product(&e, &mut column);
        let (a, b) = (diagonal[j], column[j]);
        // In f32 the product rounds φ''·x_ij to f32 before widening it.
        let rel = 1e-12_f64.max(10.0 * F::epsilon().as_f64());
        assert!(
            (a - b).abs() <= rel * b.abs(),
            "{name} diagonal {j}: {a} vs {b}"
        );
    }
}

/// Every bundled model but the network has Hessian-vector products; they match differences of
/// batch gradients, dense and sparse, in f32 and f64.
fn all_hessians_agree<F: Float>(tol: f64) {
    let (n, d) = (800, 6);
    let x = features(2, n, d);
    let z = x.dot(&array![1.0, -2.0, 0.5, 0.0, 3.0, -1.0]);
    let y_real = z.mapv(|v| v + 0.3 * (v * 7.0).sin());
    let y_sign = z.mapv(|v| if (v * 3.0).sin() > -0.3 { 1.0 } else { -1.0 });
    let y_class = z.mapv(|v| ((v.abs() * 2.0) as usize % 3) as f64);
    for (kind, (data, data64)) in ["dense", "sparse"].iter().zip(
        datasets::<F>(&x, &y_real)
            .into_iter()
            .zip(datasets::<f64>(&x, &y_real)),
    ) {
        let name = format!("least squares {kind}");
        let model = LeastSquares::new(data.clone(), 0.1).unwrap();
        hessians_match(
            &name,
            &model,
            &LeastSquares::new(data64.clone(), 0.1).unwrap(),
            tol,
        );
        let name = format!("huber {kind}");
        let model = Huber::new(data, 0.5, 0.1).unwrap();
        hessians_match(&name, &model, &Huber::new(data64, 0.5, 0.1).unwrap(), tol);
    }
    for (kind, (data, data64)) in ["dense", "sparse"].iter().zip(
        datasets::<F>(&x, &y_sign)
            .into_iter()
            .zip(datasets::<f64>(&x, &y_sign)),
    ) {
        let model = Logistic::new(data, 0.01).unwrap();
        let reference = Logistic::new(data64, 0.01).unwrap();
        hessians_match(&format!("logistic {kind}"), &model, &reference, tol);
    }
    for (kind, (data, data64)) in ["dense", "sparse"].iter().zip(
        datasets::<F>(&x, &y_class)
            .into_iter()
            .zip(datasets::<f64>(&x, &y_class)),
    ) {
        let model = Softmax::new(data.clone(), 3, 0.01).unwrap();
        let reference = Softmax::new(data64, 3, 0.01).unwrap();
        hessians_match(&format!("softmax {kind}"), &model, &reference, tol);
        let net = Mlp::new(data, 3, &[4], Activation::Tanh, 0.0).unwrap();
        assert!(
            net.curvature().is_none(),
            "the network has no Hessian products"
        );
        assert!(PerSampleOnly(&model).curvature().is_none());
    }
}

#[test]
fn hessian_products_f64() {
    all_hessians_agree::<f64>(1e-7);
}

#[test]
fn hessian_products_f32() {
    all_hessians_agree::<f32>(1e-4);
}

fn all_models_agree<F: Float>(tol_fast: f64, h: f64, tol_fd: f64) {
    let (n, d) = (800, 6);
    let x = features(1, n, d);
    let w_true = array![1.0, -2.0, 0.5, 0.0, 3.0, -1.0];
    let z = x.dot(&w_true);
    let y_real = z.mapv(|v| v + 0.3 * (v * 7.0).sin());
    let y_sign = z.mapv(|v| if (v * 3.0).sin() > -0.3 { 1.0 } else { -1.0 });
    let y_class = z.mapv(|v| ((v.abs() * 2.0) as usize % 3) as f64);
    for (kind, (ls, (lg, (hb, sm)))) in ["dense", "sparse"].iter().zip(
        datasets::<F>(&x, &y_real).into_iter().zip(
            datasets::<F>(&x, &y_sign).into_iter().zip(
                datasets::<F>(&x, &y_real)
                    .into_iter()
                    .zip(datasets::<F>(&x, &y_class)),
            ),
        ),
    ) {
        let ls = LeastSquares::new(ls, 0.1).unwrap();
        let lg = Logistic::new(lg, 0.1).unwrap();
        let hb = Huber::new(hb, 0.5, 0.1).unwrap();
        let sm = Softmax::new(sm, 3, 0.1).unwrap();
        fast_equals_plain(&format!("least squares {kind}"), &ls, tol_fast);
        fast_equals_plain(&format!("logistic {kind}"), &lg, tol_fast);
        fast_equals_plain(&format!("huber {kind}"), &hb, tol_fast);
        fast_equals_plain(&format!("softmax {kind}"), &sm, tol_fast);
        gradients_match_differences(&format!("least squares {kind}"), &ls, h, tol_fd);
        gradients_match_differences(&format!("logistic {kind}"), &lg, h, tol_fd);
        gradients_match_differences(&format!("huber {kind}"), &hb, h, tol_fd);
        gradients_match_differences(&format!("softmax {kind}"), &sm, h, tol_fd);
    }
    for (kind, data) in ["dense", "sparse"].iter().zip(datasets::<F>(&x, &y_class)) {
        for (hidden, act) in [
            (vec![5], Activation::Tanh),
            (vec![4, 3], Activation::Tanh),
            (vec![5, 4], Activation::Relu),
        ] {
            let net = Mlp::new(data.clone(), 3, &hidden, act, 0.05).unwrap();
            let name = format!("mlp {hidden:?} {act:?} {kind}");
            fast_equals_plain(&name, &net, tol_fast * 10.0);
            gradients_match_differences(&name, &net, h, tol_fd);
        }
    }
}

#[test]
fn fast_paths_and_gradients_f64() {
    all_models_agree::<f64>(1e-10, 1e-6, 1e-6);
}

#[test]
fn fast_paths_and_gradients_f32() {
    all_models_agree::<f32>(2e-4, 1e-2, 2e-2);
}

#[test]
fn extreme_margins_and_logits_stay_finite_and_exact() {
    for m in [1e4, -1e4] {
        let data = Dataset::from_dense(array![[1.0f32]], array![1.0f32]).unwrap();
        let lg = Logistic::new(data, 0.0).unwrap();
        let w = array![m as f32];
        let mut g = array![0.0f32];
        let loss = lg.sample_loss_gradient(&w, 0, &mut g);
        assert!(loss.is_finite() && g[0].is_finite());
        if m > 0.0 {
            assert!(
                loss == 0.0 && g[0] == 0.0,
                "margin +1e4: loss {loss}, grad {g}"
            );
        } else {
            assert!(
                (loss - 1e4).abs() <= 1e-3 && (g[0] + 1.0).abs() <= 1e-6,
                "margin −1e4: {loss} {g}"
            );
        }
        let mut s = GradStats::new(1);
        lg.batch_gradient(&w, &[0], &mut s);
        assert!(s.is_finite());
    }
    // Softmax with logits of 1e4 (f32 and f64).
    let data = Dataset::from_dense(array![[1.0f32, 0.0]], array![2.0f32]).unwrap();
    let sm = Softmax::new(data, 3, 0.0).unwrap();
    let w = array![1e4f32, 0.0, -1e4, 0.0, 1e4 - 5.0, 0.0];
    let mut g = Array1::zeros(6);
    let loss = sm.sample_loss_gradient(&w, 0, &mut g);
    // log(e^1e4 + e^−1e4 + e^(1e4−5)) − (1e4 − 5) = 5 + log(1 + e^−5).
    assert!(
        (loss - (5.0 + (-5.0f32).exp().ln_1p())).abs() < 1e-3,
        "{loss}"
    );
    assert!(g.iter().all(|v| v.is_finite()));
    // The residual p − e_y sums to zero across classes, up to f32's resolution at 1e4
    // (ulp ≈ 1e-3, so the log-sum-exp and the probabilities carry ≈ 5e-4 relative error).
    assert!(
        g.sum().abs() < 2e-3,
        "residual sums to zero across classes: {}",
        g.sum()
    );
    // f64 at the same logits: exact to its own resolution.
    let data = Dataset::from_dense(array![[1.0f64, 0.0]], array![2.0f64]).unwrap();
    let sm = Softmax::new(data, 3, 0.0).unwrap();
    let w = array![1e4, 0.0, -1e4, 0.0, 1e4 - 5.0, 0.0];
    let mut g = Array1::zeros(6);
    let loss = sm.sample_loss_gradient(&w, 0, &mut g);
    assert!(
        (loss - (5.0 + (-5.0f64).exp().ln_1p())).abs() < 1e-10,
        "{loss}"
    );
    assert!(
        g.sum().abs() < 1e-12 && (g[4] + 1.0 / (1.0 + (-5.0f64).exp())).abs() < 1e-10,
        "{g}"
    );
}

#[test]
fn huber_is_continuous_at_the_threshold() {
    let data = Dataset::<f64>::from_dense(array![[1.0], [1.0]], array![0.0, 0.0]).unwrap();
    let hb = Huber::new(data, 1.5, 0.0).unwrap();
    let mut g = array![0.0];
    for w0 in [1.5, -1.5] {
        for eps in [-1e-9, 0.0, 1e-9] {
            let w = array![w0 + eps];
            let l: f64 = hb.sample_loss_gradient(&w, 0, &mut g);
            assert!((l - 0.5 * 1.5 * 1.5).abs() < 1e-8, "value {l} at {w}");
            assert!(
                (g[0] - 1.5f64.copysign(w0)).abs() < 1e-8,
                "slope {g} at {w}"
            );
        }
    }
    let w = array![10.0];
    assert!((hb.sample_loss_gradient(&w, 0, &mut g) - 1.5 * (10.0 - 0.75)).abs() < 1e-12);
    assert_eq!(g[0], 1.5);
}

#[test]
fn labels_and_parameters_are_checked() {
    let x = array![[1.0], [2.0], [3.0]];
    let bad_binary = Dataset::from_dense(x.clone(), array![1.0, 2.0, -1.0]).unwrap();
    let e = Logistic::new(bad_binary, 0.0).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidData { what } if what.contains("sample 1")),
        "{e}"
    );
    let zero_one = Dataset::from_dense(x.clone(), array![1.0, 0.0, 1.0]).unwrap();
    assert_eq!(
        Logistic::new(zero_one, 0.0).unwrap().targets(),
        &array![1.0, -1.0, 1.0]
    );
    for (labels, bad) in [
        (array![0.0, 3.0, 1.0], 1),
        (array![0.0, 1.5, 1.0], 1),
        (array![-1.0, 0.0, 1.0], 0),
    ] {
        let e = Softmax::new(Dataset::from_dense(x.clone(), labels).unwrap(), 3, 0.0).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidData { what } if what.contains(&format!("sample {bad}"))),
            "{e}"
        );
    }
    let ok = || Dataset::from_dense(x.clone(), array![0.0, 1.0, 0.0]).unwrap();
    assert!(matches!(
        Softmax::new(ok(), 1, 0.0),
        Err(Error::InvalidParameter {
            name: "n_classes",
            ..
        })
    ));
    assert!(matches!(
        LeastSquares::new(ok(), -1.0),
        Err(Error::InvalidParameter { name: "lambda", .. })
    ));
    assert!(matches!(
        LeastSquares::new(ok(), f64::NAN),
        Err(Error::InvalidParameter { name: "lambda", .. })
    ));
    assert!(matches!(
        Huber::new(ok(), 0.0, 0.1),
        Err(Error::InvalidParameter { name: "delta", .. })
    ));
}

/// The bundled ridge model reaches the normal-equations optimum with default settings.
#[test]
fn least_squares_reaches_the_closed_form_optimum() {
    let (x, y, _) = linear_data(3, 2000, 5, 1.0, 0.5);
    let reference = Ridge::<f64>::new(x.clone(), y.clone(), 0.01);
    let model = LeastSquares::new(Dataset::from_dense(x, y).unwrap().into_sparse(), 0.01).unwrap();
    let r = BigBatchSgd::builder()
        .tolerance(1e-16)
        .build()
        .unwrap()
        .minimize(&model, Array1::zeros(5))
        .unwrap();
    assert_eq!(r.stop, StopReason::GradientTolerance, "{r}");
    assert!(max_abs_diff(&r.w, &reference.optimum()) < 1e-6, "{r}");
    // Predictions are `x_i·w`, row by row.
    let (x, _, _) = linear_data(3, 2000, 5, 1.0, 0.5);
    let expected = x.dot(&r.w);
    assert!(max_abs_diff(&model.predict(&r.w), &expected) < 1e-12);
}

/// Runs the schedule and both tests of the inner products on `model`: each lowers the loss.
fn tests_and_schedule_run<F: Float, O: Objective<F>>(name: &str, model: &O) {
    let all: Vec<usize> = (0..model.n_samples()).collect();
    // Small seeded weights: zero is a saddle point of a network.
    let mut r = rng(7);
    let w0: Array1<F> = (0..model.dim())
        .map(|_| F::from_f64(r.random::<f64>() - 0.5))
        .collect();
    let start = model.batch_loss(&w0, &all).as_f64();
    let runs = [
        (
            "inner product",
            BigBatchSgd::paper()
                .theta(0.5)
                .inner_product(InnerProductTest::new())
                .max_epochs(10.0)
                .build()
                .unwrap()
                .minimize(model, w0.clone()),
        ),
        (
            "inner product and orthogonality",
            BigBatchSgd::paper()
                .theta(0.5)
                .inner_product(InnerProductTest::new().orthogonality(2.0))
                .max_epochs(10.0)
                .build()
                .unwrap()
                .minimize(model, w0.clone()),
        ),
    ];
    for (what, report) in runs {
        let report = report.unwrap();
        assert!(
            report.loss.as_f64() < 0.9 * start,
            "{name}, {what}: {} from {start}",
            report.loss.as_f64()
        );
    }
    let report = BigBatchSgd::builder()
        .batch_mode(BatchMode::Fresh)
        .initial_batch(16)
        .schedule(BatchSchedule::new(2.0, 2.0))
        .step(BatchScaled::new(Fixed::new(0.02)).reference_batch(16))
        .tolerance(0.0)
        .max_epochs(10.0)
        .build()
        .unwrap()
        .minimize(model, w0.clone())
        .unwrap();
    assert!(
        report.loss.as_f64() < 0.9 * start,
        "{name}, schedule: {} from {start}",
        report.loss.as_f64()
    );
    assert_eq!(
        report.batch_size,
        16 * 16,
        "{name}: 4 doublings before 10 epochs"
    );
}

fn every_bundled_model_runs_the_new_tests_and_the_schedule<F: Float>() {
    let (n, d) = (1200, 6);
    let x = features(2, n, d);
    let w_true = array![1.0, -2.0, 0.5, 0.0, 3.0, -1.0];
    let z = x.dot(&w_true);
    let y_real = z.mapv(|v| v + 0.3 * (v * 7.0).sin());
    let y_sign = z.mapv(|v| if v > 0.0 { 1.0 } else { -1.0 });
    let y_class = z.mapv(|v| {
        if v < -1.0 {
            0.0
        } else if v < 1.0 {
            1.0
        } else {
            2.0
        }
    });
    let [ls, _] = datasets::<F>(&x, &y_real);
    let [lg, _] = datasets::<F>(&x, &y_sign);
    let [hb, _] = datasets::<F>(&x, &y_real);
    let [sm, _] = datasets::<F>(&x, &y_class);
    let [_, mlp] = datasets::<F>(&x, &y_class);
    tests_and_schedule_run("least squares", &LeastSquares::new(ls, 1e-3).unwrap());
    tests_and_schedule_run("logistic", &Logistic::new(lg, 1e-3).unwrap());
    tests_and_schedule_run("huber", &Huber::new(hb, 0.5, 1e-3).unwrap());
    tests_and_schedule_run("softmax", &Softmax::new(sm, 3, 1e-3).unwrap());
    tests_and_schedule_run(
        "mlp (sparse rows)",
        &Mlp::new(mlp, 3, &[5], Activation::Tanh, 1e-3).unwrap(),
    );
}

#[test]
fn every_bundled_model_runs_the_new_tests_and_the_schedule_f64_and_f32() {
    every_bundled_model_runs_the_new_tests_and_the_schedule::<f64>();
    every_bundled_model_runs_the_new_tests_and_the_schedule::<f32>();
}
