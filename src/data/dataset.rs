//! [`Dataset`]: features with one target per sample.

use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::optimizer::Sampler;

use super::{CsrMatrix, Features};

/// Features and one target (a label or a real value) per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset<F = f64> {
    features: Features<F>,
    targets: Array1<F>,
}

impl<F: Float> Dataset<F> {
    /// A data set from features and targets.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] if the counts differ; [`Error::InvalidData`] if a feature or
    /// a target is NaN or infinite, naming the sample.
    pub fn new(features: Features<F>, targets: Array1<F>) -> Result<Self> {
        if features.n_rows() != targets.len() {
            return Err(Error::DimensionMismatch {
                what: "targets",
                expected: features.n_rows(),
                got: targets.len(),
            });
        }
        if let Some((i, j)) = features.first_non_finite() {
            return Err(Error::InvalidData {
                what: format!("feature {j} of sample {i} is not finite"),
            });
        }
        if let Some(i) = targets.iter().position(|t| !t.is_finite()) {
            return Err(Error::InvalidData {
                what: format!("target of sample {i} is {}", targets[i]),
            });
        }
        Ok(Dataset { features, targets })
    }
    /// A data set from a dense matrix and targets; see [`Dataset::new`].
    ///
    /// # Errors
    /// As [`Dataset::new`].
    pub fn from_dense(x: Array2<F>, y: Array1<F>) -> Result<Self> {
        Dataset::new(Features::Dense(x), y)
    }
    /// The number of samples.
    pub fn n_samples(&self) -> usize {
        self.targets.len()
    }
    /// The number of features.
    pub fn n_features(&self) -> usize {
        self.features.n_cols()
    }
    /// The features.
    pub fn features(&self) -> &Features<F> {
        &self.features
    }
    /// The targets.
    pub fn targets(&self) -> &Array1<F> {
        &self.targets
    }
    /// Appends a constant-1 feature as the last column (an intercept, regularized like every
    /// other weight).
    #[must_use]
    pub fn with_bias(self) -> Self {
        let features = match self.features {
            Features::Dense(m) => {
                let mut out = Array2::ones((m.nrows(), m.ncols() + 1));
                out.slice_mut(ndarray::s![.., ..m.ncols()]).assign(&m);
                Features::Dense(out)
            }
            Features::Sparse(m) => Features::Sparse(m.with_bias()),
        };
        Dataset {
            features,
            targets: self.targets,
        }
    }
    /// The same data with dense features.
    #[must_use]
    pub fn into_dense(self) -> Self {
        match self.features {
            Features::Sparse(m) => Dataset {
                features: Features::Dense(m.to_dense()),
                targets: self.targets,
            },
            dense => Dataset {
                features: dense,
                targets: self.targets,
            },
        }
    }
    /// The same data with sparse features.
    #[must_use]
    pub fn into_sparse(self) -> Self {
        match self.features {
            Features::Dense(m) => Dataset {
                features: Features::Sparse(CsrMatrix::from_dense(&m)),
                targets: self.targets,
            },
            sparse => Dataset {
                features: sparse,
                targets: self.targets,
            },
        }
    }
    /// The samples at `indices`, in that order.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn select(&self, indices: &[usize]) -> Self {
        let features = match &self.features {
            Features::Dense(m) => Features::Dense(m.select(ndarray::Axis(0), indices)),
            Features::Sparse(m) => Features::Sparse(m.select(indices)),
        };
        Dataset {
            features,
            targets: indices.iter().map(|&i| self.targets[i]).collect(),
        }
    }
    /// A seeded random split into (train, test), `test_fraction` of the samples (rounded) in the
    /// test part; each part keeps the original order of its samples.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless `0 ≤ test_fraction ≤ 1`.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(Self, Self)> {
        if !(0.0..=1.0).contains(&test_fraction) {
            return Err(Error::invalid("test_fraction", test_fraction, "in [0, 1]"));
        }
        let n = self.n_samples();
        let n_test = ((n as f64) * test_fraction).round() as usize;
        let mut sampler = Sampler::new(n);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut test: Vec<usize> = sampler.draw(n_test, &mut rng).to_vec();
        test.sort_unstable();
        let mut is_test = vec![false; n];
        for &i in &test {
            is_test[i] = true;
        }
        let train: Vec<usize> = (0..n).filter(|&i| !is_test[i]).collect();
        Ok((self.select(&train), self.select(&test)))
    }
}
