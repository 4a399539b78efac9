//! `max_pool2d`: Candle's forward values, gradients equal to central differences on random
//! inputs with and without ties, even and odd sizes, and the Candle bug it replaces.

use bigbatch_candle::check::{F64_TOLERANCE, GradCheck, check_gradients};
use bigbatch_candle::max_pool2d;
use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

type Res = Result<(), Box<dyn std::error::Error>>;

fn random(shape: (usize, usize, usize, usize), seed: u64) -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let n = shape.0 * shape.1 * shape.2 * shape.3;
    (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
}

/// The 4×4 reproduction of the module docs.
fn sixteen(dev: &Device) -> candle_core::Result<Var> {
    Var::from_vec(
        (1..=16).map(|v| v as f32).collect::<Vec<_>>(),
        (1, 1, 4, 4),
        dev,
    )
}

#[test]
fn candles_max_pool_backward_is_still_wrong() -> Res {
    // If this fails, Candle's own `max_pool2d` has been fixed: check that its gradients pass
    // the tests below, then drop `bigbatch_candle::max_pool2d` for it.
    let x = sixteen(&Device::Cpu)?;
    let grads = x.as_tensor().max_pool2d(2)?.sum_all()?.backward()?;
    let g = grads
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()?
        .to_vec1::<f32>()?;
    let mut wrong = vec![0.0f32; 16];
    for i in [5, 7, 13, 15] {
        wrong[i] = 0.25;
    }
    assert_eq!(g, wrong, "Candle's max_pool2d backward changed");
    Ok(())
}

#[test]
fn the_reproduction_gives_one_at_each_maximum() -> Res {
    let x = sixteen(&Device::Cpu)?;
    let grads = max_pool2d(x.as_tensor(), 2)?.sum_all()?.backward()?;
    let g = grads
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()?
        .to_vec1::<f32>()?;
    let mut right = vec![0.0f32; 16];
    for i in [5, 7, 13, 15] {
        right[i] = 1.0;
    }
    assert_eq!(g, right);
    Ok(())
}

#[test]
fn forward_values_are_candles_for_every_size_kernel_and_type() -> Res {
    let dev = Device::Cpu;
    for (k, shape, kernel) in [
        (0, (2, 3, 8, 8), (2, 2)),
        (1, (2, 3, 11, 11), (2, 2)),
        (2, (1, 2, 9, 7), (3, 3)),
        (3, (3, 1, 10, 9), (2, 3)),
        (4, (1, 1, 5, 5), (5, 5)),
    ] {
        for dtype in [DType::F32, DType::F64] {
            let x = Tensor::from_vec(random(shape, k), shape, &dev)?.to_dtype(dtype)?;
            let ours = max_pool2d(&x, kernel)?;
            let candle = x.max_pool2d(kernel)?;
            assert_eq!(ours.dims(), candle.dims());
            let (a, b) = (
                ours.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?,
                candle
                    .flatten_all()?
                    .to_dtype(DType::F64)?
                    .to_vec1::<f64>()?,
            );
            assert_eq!(a, b, "{shape:?} {kernel:?} {dtype:?}");
        }
    }
    Ok(())
}

#[test]
fn gradients_equal_central_differences_on_random_inputs_even_and_odd() -> Res {
    let dev = Device::Cpu;
    for (k, shape, kernel) in [
        (10, (2, 2, 8, 8), (2, 2)),
        (11, (2, 2, 11, 11), (2, 2)),
        (12, (1, 3, 9, 10), (3, 3)),
        (13, (2, 1, 7, 9), (2, 3)),
    ] {
        let x = Var::from_vec(random(shape, k), shape, &dev)?;
        let out = max_pool2d(x.as_tensor(), kernel)?;
        // A random linear functional of the output, so every window's gradient differs.
        let weights = Tensor::from_vec(random(out.dims4()?, k + 100), out.dims4()?, &dev)?;
        let loss = || (max_pool2d(x.as_tensor(), kernel)? * &weights)?.sum_all();
        let report = check_gradients(
            std::slice::from_ref(&x),
            loss,
            &GradCheck::default().directions(5).seed(k),
        )?;
        assert!(
            report.worst() < F64_TOLERANCE,
            "{shape:?} {kernel:?}: {report}"
        );
        // The trailing rows and columns of an odd size get no gradient.
        let grads = loss()?.backward()?;
        let g = grads.get(x.as_tensor()).unwrap();
        let (_, _, h, w) = shape;
        let (ho, wo) = (h / kernel.0 * kernel.0, w / kernel.1 * kernel.1);
        if ho < h {
            assert_eq!(
                g.narrow(2, ho, h - ho)?
                    .abs()?
                    .sum_all()?
                    .to_scalar::<f64>()?,
                0.0
            );
        }
        if wo < w {
            assert_eq!(
                g.narrow(3, wo, w - wo)?
                    .abs()?
                    .sum_all()?
                    .to_scalar::<f64>()?,
                0.0
            );
        }
    }
    Ok(())
}

/// Inputs where whole windows tie (as the zero background of an image does after a ReLU) and
/// others hold two equal maxima.
fn tied(shape: (usize, usize, usize, usize), seed: u64) -> Vec<f64> {
    let mut x = random(shape, seed);
    let (_, _, h, w) = shape;
    for (p, v) in x.iter_mut().enumerate() {
        let (i, j) = ((p / w) % h, p % w);
        if i < h / 2 {
            *v = 0.0; // whole windows of equal values
        } else if (i + j) % 3 == 0 {
            *v = 0.5; // some windows with several equal maxima
        }
    }
    x
}

#[test]
fn at_ties_the_gradient_goes_to_the_first_maximum_and_matches_differences_beside_it() -> Res {
    let dev = Device::Cpu;
    for (k, shape) in [(20u64, (2, 2, 8, 8)), (21, (1, 2, 11, 11))] {
        let values = tied(shape, k);
        let (_, _, h, w) = shape;
        let x = Var::from_vec(values.clone(), shape, &dev)?;
        let out_dims = max_pool2d(x.as_tensor(), 2)?.dims4()?;
        let weights = Tensor::from_vec(random(out_dims, k + 100), out_dims, &dev)?;
        let grads = (max_pool2d(x.as_tensor(), 2)? * &weights)?
            .sum_all()?
            .backward()?;
        let g = grads
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()?
            .to_vec1::<f64>()?;
        let wts = weights.flatten_all()?.to_vec1::<f64>()?;
        // Each window's weight lands whole on its first maximum in row-major order.
        let mut expect = vec![0.0; values.len()];
        let mut raised = values.clone();
        let (_, c, ho, wo) = out_dims;
        for plane in 0..shape.0 * c {
            for i in 0..ho {
                for j in 0..wo {
                    let cells = [(0, 0), (0, 1), (1, 0), (1, 1)]
                        .map(|(a, b)| plane * h * w + (2 * i + a) * w + 2 * j + b);
                    let best = cells.iter().map(|&p| values[p]).fold(f64::MIN, f64::max);
                    let first = *cells.iter().find(|&&p| values[p] == best).unwrap();
                    expect[first] = wts[(plane * ho + i) * wo + j];
                    raised[first] += 1e-3;
                }
            }
        }
        assert_eq!(g, expect);
        // Beside the tie, with each first maximum raised a little, the maximum is unique and
        // the function smooth: the gradient there is the same, and equals central differences.
        let x2 = Var::from_vec(raised, shape, &dev)?;
        let loss = || (max_pool2d(x2.as_tensor(), 2)? * &weights)?.sum_all();
        let g2 = loss()?.backward()?;
        let g2 = g2
            .get(x2.as_tensor())
            .unwrap()
            .flatten_all()?
            .to_vec1::<f64>()?;
        assert_eq!(g2, expect);
        let report = check_gradients(
            std::slice::from_ref(&x2),
            loss,
            &GradCheck::default().directions(5).seed(k),
        )?;
        assert!(report.worst() < F64_TOLERANCE, "{report}");
    }
    Ok(())
}

#[test]
fn strided_inputs_nan_and_bad_shapes() -> Res {
    let dev = Device::Cpu;
    // A transposed (non-contiguous) input pools as its contiguous copy.
    let x = Tensor::from_vec(random((1, 2, 6, 8), 30), (1, 2, 6, 8), &dev)?;
    let t = x.transpose(2, 3)?;
    assert!(!t.is_contiguous());
    assert_eq!(
        max_pool2d(&t, 2)?.flatten_all()?.to_vec1::<f64>()?,
        max_pool2d(&t.contiguous()?, 2)?
            .flatten_all()?
            .to_vec1::<f64>()?
    );
    // A NaN is never pooled away, and its window's gradient goes to it.
    let mut v = vec![1.0f32; 16];
    v[0] = 5.0;
    v[1] = f32::NAN;
    let x = Var::from_vec(v, (1, 1, 4, 4), &dev)?;
    let y = max_pool2d(x.as_tensor(), 2)?;
    let y_values = y.flatten_all()?.to_vec1::<f32>()?;
    assert!(y_values[0].is_nan() && y_values[1] == 1.0);
    let g = y.sum_all()?.backward()?;
    let g = g
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()?
        .to_vec1::<f32>()?;
    assert_eq!((g[0], g[1]), (0.0, 1.0));
    // Errors, not panics.
    let small = Tensor::zeros((1, 1, 3, 3), DType::F32, &dev)?;
    assert!(max_pool2d(&small, 4).is_err());
    assert!(max_pool2d(&small, 0).is_err());
    assert!(max_pool2d(&Tensor::zeros((3, 3), DType::F32, &dev)?, 2).is_err());
    assert!(max_pool2d(&Tensor::zeros((1, 1, 4, 4), DType::U32, &dev)?, 2).is_err());
    Ok(())
}
