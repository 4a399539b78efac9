//! The floating-point types the crate works in.

use ndarray::{ArrayRef1, ArrayView2, CowArray, Ix2, NdFloat};

mod sealed {
    use ndarray::{ArrayRef1, ArrayView2, CowArray, Ix2};

    /// Seals [`Float`](super::Float), and holds the crate's internal helpers on it.
    pub trait Sealed: Sized {
        /// `a·b` accumulated in `f64` (for `f64`, ndarray's own dot product, unchanged; for
        /// `f32`, exact products summed in `f64`). Lengths must agree.
        fn wide_dot(a: &ArrayRef1<Self>, b: &ArrayRef1<Self>) -> f64;
        /// A matrix as `f64`: borrowed for `f64`, converted (exactly) for `f32`.
        fn widen2(a: ArrayView2<'_, Self>) -> CowArray<'_, f64, Ix2>;
    }
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
}

impl sealed::Sealed for f32 {
    #[inline]
    fn wide_dot(a: &ArrayRef1<Self>, b: &ArrayRef1<Self>) -> f64 {
        match (a.as_slice(), b.as_slice()) {
            (Some(a), Some(b)) => dot_wide(a, b),
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
}

impl sealed::Sealed for f64 {
    #[inline]
    fn wide_dot(a: &ArrayRef1<Self>, b: &ArrayRef1<Self>) -> f64 {
        a.dot(b)
    }
    fn widen2(a: ArrayView2<'_, Self>) -> CowArray<'_, f64, Ix2> {
        CowArray::from(a)
    }
}

/// `Σ_j a_j b_j` of `f32` vectors with exact products summed in `f64` (eight partial sums).
#[inline]
fn dot_wide(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .fold(0.0, |s, (&x, &y)| s + f64::from(x) * f64::from(y));
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += f64::from(x[k]) * f64::from(y[k]);
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

#[cfg(test)]
mod tests {
    use super::dot_wide;

    #[test]
    fn the_wide_dot_product_of_f32_vectors_sums_exact_products() {
        for n in [0, 1, 7, 8, 9, 100, 1001] {
            let a: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let b: Vec<f32> = (0..n)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 3.0)
                .collect();
            let exact: f64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .sum();
            assert!(
                (dot_wide(&a, &b) - exact).abs() <= 1e-14 * (1.0 + exact.abs()),
                "n = {n}"
            );
        }
    }
}
