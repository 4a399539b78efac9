//! A data set of the core crate ([`bigbatch::data::Dataset`], what
//! [`load_libsvm`](bigbatch::data::load_libsvm) reads) as tensors for a network's loss.

use bigbatch::data::{Dataset, Features};
use candle_core::{DType, Device, Tensor};

use crate::Error;

/// The features of `data` as an `(n, d)` `f32` tensor on `device` (sparse rows made dense).
///
/// # Errors
/// [`Error::Candle`] if the tensor cannot be made.
pub fn features(data: &Dataset<f32>, device: &Device) -> Result<Tensor, Error> {
    let (n, d) = (data.n_samples(), data.n_features());
    let values: Vec<f32> = match data.features() {
        Features::Dense(x) => x.iter().copied().collect(),
        sparse => sparse.to_dense().iter().copied().collect(),
    };
    Ok(Tensor::from_vec(values, (n, d), device)?)
}

/// The targets of `data` as an `(n,)` `f32` tensor on `device` (regression).
///
/// # Errors
/// [`Error::Candle`] if the tensor cannot be made.
pub fn targets(data: &Dataset<f32>, device: &Device) -> Result<Tensor, Error> {
    let y: Vec<f32> = data.targets().iter().copied().collect();
    Ok(Tensor::from_vec(y, data.n_samples(), device)?)
}

/// The targets of `data` as `(n,)` `u32` class labels on `device` (for
/// [`candle_nn::loss::cross_entropy`]).
///
/// # Errors
/// [`Error::Model`] naming the first sample whose target is not a class `0, 1, 2, …` (LIBSVM's
/// binary ±1 labels are not: map them to 0 and 1 first); [`Error::Candle`] if the tensor
/// cannot be made.
pub fn labels(data: &Dataset<f32>, device: &Device) -> Result<Tensor, Error> {
    let mut y = Vec::with_capacity(data.n_samples());
    for (i, &t) in data.targets().iter().enumerate() {
        if !(t >= 0.0 && t.fract() == 0.0 && t < u32::MAX as f32) {
            return Err(Error::Model(format!(
                "sample {i}: target {t} is not a class label 0, 1, 2, …"
            )));
        }
        y.push(t as u32);
    }
    Ok(Tensor::from_vec(y, data.n_samples(), device)?.to_dtype(DType::U32)?)
}
