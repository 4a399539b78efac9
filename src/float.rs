//! The floating-point types the crate works in.

use ndarray::{ArrayRef1, ArrayView2, CowArray, Ix2, NdFloat};

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
    fn from_f64(x: f64) -> Self;
    /// Converts `self` to `f64` (exact for both types).
    fn as_f64(self) -> f64;
    /// Converts a count to `Self` (exact below 2^24 for `f32` and 2^53 for `f64`).
    fn from_count(n: usize) -> Self;
    /// `a·b` accumulated in `f64` (for `f64`, ndarray's own dot product, unchanged; for
    /// `f32`, exact products summed in `f64`). Lengths must agree.
    fn wide_dot(a: &ArrayRef1<Self>, b: &ArrayRef1<Self>) -> f64;
    /// A matrix as `f64`: borrowed for `f64`, converted (exactly) for `f32`.
    fn widen2(a: ArrayView2<'_, Self>) -> CowArray<'_, f64, Ix2>;
}

impl Float for f32 {
    #[inline]
    fn from_f64(x: f64) -> Self {
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
    #[inline]
    fn wide_dot(a: &ArrayRef1<Self>, b: &ArrayRef1<Self>) -> f64 {
        match (a.as_slice(), b.as_slice()) {
            (Some(a), Some(b)) => crate::kernels::dot_wide(a, b),
            _ => a
                .iter()
                .zip(b)
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .sum(),
        }
    }
    fn widen2(a: ArrayView2<'_, Self>) -> CowArray<'_, f64, Ix2> {
        CowArray::from(a.mapv(f64::from))
    }
}

impl Float for f64 {
    #[inline]
    fn from_f64(x: f64) -> Self {
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
    #[inline]
    fn wide_dot(a: &ArrayRef1<Self>, b: &ArrayRef1<Self>) -> f64 {
        a.dot(b)
    }
    fn widen2(a: ArrayView2<'_, Self>) -> CowArray<'_, f64, Ix2> {
        CowArray::from(a)
    }
}
