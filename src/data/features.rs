//! [`Features`]: dense or sparse rows, and the row operations the models use.

use ndarray::{Array1, Array2, ArrayRef1, Zip};

use crate::float::Float;

use super::CsrMatrix;

/// The features of a data set: a dense matrix or a sparse one, one row per sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Features<F> {
    /// Dense rows (`n_samples × n_features`).
    Dense(Array2<F>),
    /// Sparse rows.
    Sparse(CsrMatrix<F>),
}

impl<F: Float> Features<F> {
    /// The number of rows (samples).
    pub fn n_rows(&self) -> usize {
        match self {
            Features::Dense(m) => m.nrows(),
            Features::Sparse(m) => m.n_rows(),
        }
    }
    /// The number of columns (features).
    pub fn n_cols(&self) -> usize {
        match self {
            Features::Dense(m) => m.ncols(),
            Features::Sparse(m) => m.n_cols(),
        }
    }
    /// Whether the rows are stored dense.
    pub fn is_dense(&self) -> bool {
        matches!(self, Features::Dense(_))
    }
    /// The share of values stored: non-zero values over `rows × columns` for dense rows, stored
    /// entries over the same for sparse ones (0 for an empty matrix).
    pub fn density(&self) -> f64 {
        // In f64: a sparse matrix may be wider than `usize` has room for cells.
        let cells = self.n_rows() as f64 * self.n_cols() as f64;
        if cells == 0.0 {
            return 0.0;
        }
        let stored = match self {
            Features::Dense(m) => m.iter().filter(|v| **v != F::zero()).count(),
            Features::Sparse(m) => m.nnz(),
        };
        stored as f64 / cells
    }
    /// `x_i · w`.
    #[inline]
    pub fn row_dot(&self, i: usize, w: &ArrayRef1<F>) -> F {
        match self {
            Features::Dense(m) => {
                let row = m.row(i);
                match (row.as_slice(), w.as_slice()) {
                    (Some(x), Some(w)) if x.len() == w.len() => crate::kernels::dot(x, w),
                    _ => row.dot(w),
                }
            }
            Features::Sparse(m) => m.row_dot(i, w),
        }
    }
    /// `out += a · x_i`.
    #[inline]
    pub fn add_row_to(&self, i: usize, a: F, out: &mut ArrayRef1<F>) {
        match self {
            Features::Dense(m) => {
                let row = m.row(i);
                Zip::from(out).and(&row).for_each(|o, &x| *o += a * x);
            }
            Features::Sparse(m) => {
                let (cols, vals) = m.row(i);
                for (&c, &v) in cols.iter().zip(vals) {
                    out[c] += a * v;
                }
            }
        }
    }
    /// `out += a · x_i`, accumulated in `f64`.
    #[inline]
    pub(crate) fn add_row_to_wide(&self, i: usize, a: f64, out: &mut ArrayRef1<f64>) {
        match self {
            Features::Dense(m) => {
                let row = m.row(i);
                match (row.as_slice(), out.as_slice_mut()) {
                    (Some(x), Some(out)) if x.len() == out.len() => {
                        crate::kernels::add_row(out, x, a);
                    }
                    _ => Zip::from(out)
                        .and(&row)
                        .for_each(|o, &x| *o += a * x.as_f64()),
                }
            }
            Features::Sparse(m) => {
                let (cols, vals) = m.row(i);
                for (&c, &v) in cols.iter().zip(vals) {
                    out[c] += a * v.as_f64();
                }
            }
        }
    }
    /// `out_j += a · x_ij²`, accumulated in `f64` (a diagonal of `Σ a_i x_i x_iᵀ`).
    #[inline]
    pub(crate) fn add_row_squares_to_wide(&self, i: usize, a: f64, out: &mut [f64]) {
        match self {
            Features::Dense(m) => {
                for (o, &x) in out.iter_mut().zip(m.row(i).iter()) {
                    let x = x.as_f64();
                    *o += a * x * x;
                }
            }
            Features::Sparse(m) => {
                let (cols, vals) = m.row(i);
                for (&c, &v) in cols.iter().zip(vals) {
                    let v = v.as_f64();
                    out[c] += a * v * v;
                }
            }
        }
    }
    /// `‖x_i‖²` for every row, accumulated in `f64`.
    pub(crate) fn row_norms_sq_wide(&self) -> Array1<f64> {
        match self {
            Features::Dense(m) => m.rows().into_iter().map(|r| F::wide_dot(&r, &r)).collect(),
            Features::Sparse(m) => (0..m.n_rows())
                .map(|i| {
                    m.row(i)
                        .1
                        .iter()
                        .map(|&v| {
                            let v = v.as_f64();
                            v * v
                        })
                        .sum()
                })
                .collect(),
        }
    }
    /// `‖x_i‖²` for every row.
    pub fn row_norms_sq(&self) -> Array1<F> {
        match self {
            Features::Dense(m) => m.rows().into_iter().map(|r| r.dot(&r)).collect(),
            Features::Sparse(m) => (0..m.n_rows())
                .map(|i| m.row(i).1.iter().map(|&v| v * v).sum())
                .collect(),
        }
    }
    /// The dense copy.
    pub fn to_dense(&self) -> Array2<F> {
        match self {
            Features::Dense(m) => m.clone(),
            Features::Sparse(m) => m.to_dense(),
        }
    }
    /// The first (row, column) holding a NaN or an infinity, if any.
    pub(crate) fn first_non_finite(&self) -> Option<(usize, usize)> {
        match self {
            Features::Dense(m) => m
                .indexed_iter()
                .find(|(_, v)| !v.is_finite())
                .map(|(ij, _)| ij),
            Features::Sparse(m) => (0..m.n_rows()).find_map(|i| {
                let (c, v) = m.row(i);
                v.iter().position(|x| !x.is_finite()).map(|k| (i, c[k]))
            }),
        }
    }
}
