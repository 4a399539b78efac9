//! Small real data sets compiled into the crate, so that examples and tests run without
//! downloads. Sources and licences: `data/README.md` in the crate.
//!
//! Each function decompresses and parses its file (a few milliseconds for `adult`) and
//! returns its features with no bias column (add one with
//! [`Dataset::with_bias`](crate::data::Dataset::with_bias)), stored as
//! [`load_libsvm`](crate::data::load_libsvm) stores them: `heart_scale` and `digits` dense,
//! `adult` sparse.
//!
//! # Example
//! ```
//! let adult = bigbatch::data::datasets::adult::<f64>().with_bias();
//! assert_eq!((adult.n_samples(), adult.n_features()), (32_561, 109));
//! ```

use crate::data::{Dataset, parse_libsvm_gz};
use crate::float::Float;

static HEART_SCALE: &[u8] = include_bytes!("../../data/heart_scale.svm.gz");
static DIGITS: &[u8] = include_bytes!("../../data/digits.svm.gz");
static ADULT: &[u8] = include_bytes!("../../data/adult.svm.gz");

fn load<F: Float>(bytes: &[u8], name: &str, d: usize) -> Dataset<F> {
    match parse_libsvm_gz(bytes, name, Some(d)) {
        Ok(data) => data,
        // The files are fixed at compile time and tested; this cannot happen in a released crate.
        Err(e) => unreachable!("embedded data set {name} is corrupt: {e}"),
    }
}

/// LIBSVM's `heart_scale`: 270 patients, 13 features in [−1, 1], labels ±1 (heart disease).
pub fn heart_scale<F: Float>() -> Dataset<F> {
    load(HEART_SCALE, "heart_scale", 13)
}

/// Handwritten digits: 1,797 images of 8×8 pixels in [0, 1], classes 0..9.
pub fn digits<F: Float>() -> Dataset<F> {
    load(DIGITS, "digits", 64)
}

/// Census income (UCI Adult, training part): 32,561 people, 108 features (6 scaled continuous
/// attributes and one-hot categories), label +1 if income > 50K, else −1.
pub fn adult<F: Float>() -> Dataset<F> {
    load(ADULT, "adult", 108)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_sets_have_their_documented_shape_and_labels() {
        let h = heart_scale::<f64>();
        assert_eq!((h.n_samples(), h.n_features()), (270, 13));
        assert_eq!(h.targets().iter().filter(|&&y| y > 0.0).count(), 120);
        let d = digits::<f32>();
        assert_eq!((d.n_samples(), d.n_features()), (1797, 64));
        assert!(
            d.targets()
                .iter()
                .all(|&y| (0.0..=9.0).contains(&y) && y.fract() == 0.0)
        );
        let a = adult::<f64>();
        assert_eq!((a.n_samples(), a.n_features()), (32_561, 108));
        assert_eq!(a.targets().iter().filter(|&&y| y > 0.0).count(), 7_841);
        let stored = (h.features(), d.features(), a.features());
        assert_eq!(
            (
                stored.0.is_dense(),
                stored.1.is_dense(),
                stored.2.is_dense()
            ),
            (true, true, false),
            "as documented"
        );
        assert!(adult::<f32>().features().density() < crate::data::dense_threshold::<f32>());
    }
}
