//! The Candle adapter: gradients agree with the analytic ones, parameters round-trip, failures
//! become typed errors, and a run reaches a known optimum.

use bigbatch::{BatchObjective, BigBatchSgd, Error, Groups, Objective};
use bigbatch_candle::{CandleModel, idx};
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap, linear};
use ndarray::Array1;

/// `n` points with 3 features and targets `x·(1, −2, 0.5) + 0.25 + noise`.
fn data(n: usize) -> (Vec<f32>, Vec<f32>) {
    let x: Vec<f32> = (0..3 * n)
        .map(|i| (((i * 7919) % 211) as f32 / 105.0) - 1.0)
        .collect();
    let y = x
        .chunks(3)
        .enumerate()
        .map(|(i, p)| {
            p[0] - 2.0 * p[1] + 0.5 * p[2] + 0.25 + 0.05 * (((i * 31) % 17) as f32 / 8.0 - 1.0)
        })
        .collect();
    (x, y)
}

#[test]
fn gradients_agree_with_the_analytic_least_squares_gradient()
-> Result<(), Box<dyn std::error::Error>> {
    let dev = Device::Cpu;
    let (xs, ys) = data(50);
    let x = Tensor::from_slice(&xs, (50, 3), &dev)?;
    let y = Tensor::from_slice(&ys, (50, 1), &dev)?;
    let w = Var::from_tensor(&Tensor::zeros((3, 1), DType::F32, &dev)?)?;
    let b = Var::from_tensor(&Tensor::zeros(1, DType::F32, &dev)?)?;
    let (wt, bt) = (w.as_tensor().clone(), b.as_tensor().clone());
    let model = CandleModel::new(vec![w, b], 50, move |idx: &Tensor| {
        let pred = x.index_select(idx, 0)?.matmul(&wt)?.broadcast_add(&bt)?;
        pred.sub(&y.index_select(idx, 0)?)?.sqr()?.mean_all()
    })?;
    let point = Array1::from(vec![0.3f32, -0.7, 0.1, 0.05]);
    let batch = [3usize, 9, 10, 27, 41, 49];
    let mut grad = Array1::zeros(4);
    let loss = model.loss_and_gradient(&point, &batch, &mut grad);
    // The same in f64 by hand: loss = mean r², ∂/∂w = 2/n Σ r x, ∂/∂b = 2/n Σ r.
    let mut expect = [0.0f64; 4];
    let mut expect_loss = 0.0;
    for &i in &batch {
        let xi: Vec<f64> = xs[3 * i..3 * i + 3].iter().map(|&v| f64::from(v)).collect();
        let r: f64 = (0..3).map(|j| xi[j] * f64::from(point[j])).sum::<f64>() + f64::from(point[3])
            - f64::from(ys[i]);
        expect_loss += r * r / batch.len() as f64;
        for j in 0..3 {
            expect[j] += 2.0 * r * xi[j] / batch.len() as f64;
        }
        expect[3] += 2.0 * r / batch.len() as f64;
    }
    assert!((f64::from(loss) - expect_loss).abs() < 1e-5 * expect_loss);
    for j in 0..4 {
        assert!(
            (f64::from(grad[j]) - expect[j]).abs() < 1e-5,
            "{j}: {} vs {}",
            grad[j],
            expect[j]
        );
    }
    assert!((f64::from(model.loss(&point, &batch)) - expect_loss).abs() < 1e-5 * expect_loss);
    Ok(())
}

#[test]
fn parameters_round_trip_in_name_order_and_wrong_lengths_are_refused()
-> Result<(), Box<dyn std::error::Error>> {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let _b = linear(2, 3, vb.pp("b"))?;
    let _a = linear(3, 1, vb.pp("a"))?;
    let model = CandleModel::from_varmap(&varmap, 10, |_: &Tensor| Tensor::new(0f32, &dev))?;
    assert_eq!(BatchObjective::dim(&model), 3 + 1 + 6 + 3);
    let w: Array1<f32> = (0..13).map(|i| i as f32).collect();
    model.set_parameters(&w)?;
    assert_eq!(model.parameters()?, w);
    // "a.bias" < "a.weight" < "b.bias" < "b.weight".
    let data = varmap.data().lock().unwrap();
    assert_eq!(
        data["a.bias"].as_tensor().flatten_all()?.to_vec1::<f32>()?,
        vec![0.0]
    );
    assert_eq!(
        data["b.weight"]
            .as_tensor()
            .flatten_all()?
            .to_vec1::<f32>()?,
        (7..13).map(|i| i as f32).collect::<Vec<_>>()
    );
    drop(data);
    assert!(model.set_parameters(&Array1::zeros(12)).is_err());
    // No samples, no variables, another float type.
    assert!(CandleModel::from_varmap(&varmap, 0, |_: &Tensor| Tensor::new(0f32, &dev)).is_err());
    assert!(CandleModel::new(Vec::new(), 5, |_: &Tensor| Tensor::new(0f32, &dev)).is_err());
    let f64_var = Var::from_tensor(&Tensor::zeros(2, DType::F64, &dev)?)?;
    assert!(CandleModel::new(vec![f64_var], 5, |_: &Tensor| Tensor::new(0f32, &dev)).is_err());
    Ok(())
}

#[test]
fn a_failing_model_is_a_typed_error_with_candles_message() -> Result<(), Box<dyn std::error::Error>>
{
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let layer = linear(
        3,
        1,
        VarBuilder::from_varmap(&varmap, DType::F32, &dev).pp("l"),
    )?;
    let x = Tensor::zeros((20, 4), DType::F32, &dev)?; // 4 features for a layer of 3
    let model = CandleModel::from_varmap(&varmap, 20, |idx: &Tensor| {
        layer.forward(&x.index_select(idx, 0)?)?.mean_all()
    })?;
    let objective = model.micro_batched(Groups::Count(4))?;
    let w0 = objective.model().parameters()?;
    match BigBatchSgd::builder()
        .build()?
        .minimize(&objective, w0.clone())
    {
        Err(e @ Error::NonFinite { .. }) => {
            assert_eq!(e.last_iterate::<f32>(), Some(w0));
        }
        other => panic!("{other:?}"),
    }
    let message = objective
        .model()
        .last_error()
        .expect("candle's error is kept");
    assert!(
        message.contains("shape") || message.contains("dim"),
        "{message}"
    );
    Ok(())
}

#[test]
fn a_linear_layer_reaches_the_least_squares_optimum() -> Result<(), Box<dyn std::error::Error>> {
    let dev = Device::Cpu;
    let n = 600;
    let (xs, ys) = data(n);
    let x = Tensor::from_slice(&xs, (n, 3), &dev)?;
    let y = Tensor::from_slice(&ys, (n, 1), &dev)?;
    let varmap = VarMap::new();
    let layer = linear(
        3,
        1,
        VarBuilder::from_varmap(&varmap, DType::F32, &dev).pp("l"),
    )?;
    for groups in [Groups::Count(8), Groups::Size(5)] {
        let objective = CandleModel::from_varmap(&varmap, n, |idx: &Tensor| {
            layer
                .forward(&x.index_select(idx, 0)?)?
                .sub(&y.index_select(idx, 0)?)?
                .sqr()?
                .mean_all()
        })?
        .micro_batched(groups)?;
        let report = BigBatchSgd::builder()
            .seed(1)
            .tolerance(1e-9)
            .build()?
            .minimize(&objective, Array1::zeros(4))?;
        // The normal equations in f64: [X 1]ᵀ[X 1] w = [X 1]ᵀ y.
        let mut a = [[0.0f64; 5]; 4];
        for i in 0..n {
            let row = [
                f64::from(xs[3 * i]),
                f64::from(xs[3 * i + 1]),
                f64::from(xs[3 * i + 2]),
                1.0,
            ];
            for r in 0..4 {
                for c in 0..4 {
                    a[r][c] += row[r] * row[c];
                }
                a[r][4] += row[r] * f64::from(ys[i]);
            }
        }
        let exact = solve4(a);
        // Parameter order: "l.bias", then "l.weight".
        let got = [report.w[1], report.w[2], report.w[3], report.w[0]];
        for j in 0..4 {
            assert!(
                (f64::from(got[j]) - exact[j]).abs() < 1e-3,
                "{groups:?} {j}: {got:?} vs {exact:?}, {report}"
            );
        }
        assert_eq!(Objective::n_samples(&objective), n);
    }
    Ok(())
}

/// Gaussian elimination on an augmented 4 × 5 system.
fn solve4(mut a: [[f64; 5]; 4]) -> [f64; 4] {
    for c in 0..4 {
        let p = (c..4)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap();
        a.swap(c, p);
        let pivot = a[c];
        for (r, row) in a.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot[c];
                row.iter_mut()
                    .zip(pivot)
                    .skip(c)
                    .for_each(|(x, p)| *x -= f * p);
            }
        }
    }
    [
        a[0][4] / a[0][0],
        a[1][4] / a[1][1],
        a[2][4] / a[2][2],
        a[3][4] / a[3][3],
    ]
}

#[test]
fn idx_files_are_read_and_a_missing_folder_says_what_it_needs()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("bigbatch-idx-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // Two 2×3 images and their labels, the images gzipped, the labels plain.
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3];
    images.extend([0u8, 51, 102, 153, 204, 255, 255, 0, 0, 0, 0, 255]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &images)?;
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gz.finish()?)?;
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte"),
        [0, 0, 8, 1, 0, 0, 0, 2, 7, 3],
    )?;
    let split = idx::read_split(&dir, "t10k")?;
    assert_eq!(
        (split.n, split.shape, split.labels.clone()),
        (2, (2, 3), vec![7, 3])
    );
    assert_eq!(split.images[..6], [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
    // Counts that disagree, and a missing split.
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte"),
        [0, 0, 8, 1, 0, 0, 0, 1, 7],
    )?;
    assert!(idx::read_split(&dir, "t10k").is_err());
    let missing = idx::read_split(&dir, "train").unwrap_err().to_string();
    assert!(
        missing.contains("train-images-idx3-ubyte") && missing.contains("dataset-fashion-mnist"),
        "{missing}"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
