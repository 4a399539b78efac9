//! The floating-point types the crate works in.

use ndarray::NdFloat;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point element type: `f32` or `f64`.
///
/// Every type in the crate is generic over it. The trait is sealed: the two conversions below
/// are exact or correctly rounded for these two types only, which is what lets the crate turn
/// constants and counters into `F` without fallible casts.
pub trait Float: NdFloat + std::iter::Sum + sealed::Sealed {
    /// Converts an `f64` constant to `Self` (rounding to nearest for `f32`).
    fn lit(x: f64) -> Self;
    /// Converts `self` to `f64` (exact for both types).
    fn as_f64(self) -> f64;
    /// Converts a count to `Self` (exact below 2^24 for `f32` and 2^53 for `f64`).
    fn from_count(n: usize) -> Self;
}

impl Float for f32 {
    #[inline]
    fn lit(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn as_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline]
    fn from_count(n: usize) -> Self {
        n as f32
    }
}

impl Float for f64 {
    #[inline]
    fn lit(x: f64) -> Self {
        x
    }
    #[inline]
    fn as_f64(self) -> f64 {
        self
    }
    #[inline]
    fn from_count(n: usize) -> Self {
        n as f64
    }
}

/// Shorthand for [`Float::lit`]: `lit::<F>(0.5)`.
#[inline]
pub fn lit<F: Float>(x: f64) -> F {
    F::lit(x)
}
