//! The helpers around a model: seeded initialization and a core-crate data set as tensors.

use bigbatch::data::{Dataset, Features};
use bigbatch_candle::{Error, data, init};
use candle_core::{DType, Device};
use candle_nn::{Conv2dConfig, VarBuilder, VarMap, conv2d, linear};
use ndarray::{Array1, array};

type Res = Result<(), Box<dyn std::error::Error>>;

#[test]
fn initialization_repeats_with_a_seed_and_respects_each_fan_in() -> Res {
    let draw = |seed: u64| -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let c = conv2d(2, 3, 3, Conv2dConfig::default(), vb.pp("c"))?;
        let l = linear(50, 4, vb.pp("l"))?;
        init::initialize(&varmap, seed)?;
        Ok(vec![
            c.weight().flatten_all()?.to_vec1()?,
            c.bias().unwrap().to_vec1()?,
            l.weight().flatten_all()?.to_vec1()?,
            l.bias().unwrap().to_vec1()?,
        ])
    };
    let (a, b, other) = (draw(3)?, draw(3)?, draw(4)?);
    assert_eq!(a, b);
    assert_ne!(a, other);
    // Fan-ins: 2·3·3 = 18 for the convolution (kernel and bias), 50 for the dense layer.
    for (values, fan_in) in a.iter().zip([18.0f32, 18.0, 50.0, 50.0]) {
        let bound = 1.0 / fan_in.sqrt();
        assert!(values.iter().all(|v| v.abs() <= bound), "bound {bound}");
        // Not squeezed into a smaller interval either.
        let max = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(max > 0.5 * bound, "{max} of {bound}");
    }
    Ok(())
}

#[test]
fn a_variable_without_a_layer_weight_is_refused_by_name() -> Res {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    vb.get_with_hints(3, "scale.gain", candle_nn::Init::Const(1.0))?;
    let err = init::initialize(&varmap, 0).unwrap_err();
    assert!(matches!(err, Error::Model(_)), "{err}");
    assert!(err.to_string().contains("scale.gain"), "{err}");
    Ok(())
}

#[test]
fn data_sets_become_tensors_dense_or_sparse() -> Res {
    let dev = Device::Cpu;
    let dense = Dataset::from_dense(
        array![[1.0f32, 0.0, 2.0], [0.0, 3.0, 0.0]],
        array![1.0, 0.0],
    )?;
    let sparse = dense.clone().into_sparse();
    assert!(matches!(sparse.features(), Features::Sparse(_)));
    for d in [&dense, &sparse] {
        let x = data::features(d, &dev)?;
        assert_eq!(x.dims(), &[2, 3]);
        assert_eq!(
            x.to_vec2::<f32>()?,
            vec![vec![1.0, 0.0, 2.0], vec![0.0, 3.0, 0.0]]
        );
        assert_eq!(data::targets(d, &dev)?.to_vec1::<f32>()?, vec![1.0, 0.0]);
        let y = data::labels(d, &dev)?;
        assert_eq!((y.dtype(), y.to_vec1::<u32>()?), (DType::U32, vec![1, 0]));
    }
    Ok(())
}

#[test]
fn targets_that_are_not_classes_are_refused_with_the_sample() -> Res {
    let dev = Device::Cpu;
    for bad in [-1.0f32, 0.5] {
        let d = Dataset::from_dense(
            ndarray::Array2::zeros((3, 1)),
            Array1::from(vec![0.0, 2.0, bad]),
        )?;
        let err = data::labels(&d, &dev).unwrap_err();
        assert!(err.to_string().contains("sample 2"), "{err}");
    }
    Ok(())
}
