//! [`CsrMatrix`]: sparse features in compressed sparse row form.

use ndarray::{Array2, ArrayRef1};

use crate::error::{Error, Result};
use crate::float::Float;

/// A sparse matrix in compressed sparse row form: row `i` holds the entries
/// `indices[indptr[i]..indptr[i+1]]` (strictly increasing columns) with their `values`.
#[derive(Debug, Clone, PartialEq)]
pub struct CsrMatrix<F> {
    n_cols: usize,
    indptr: Vec<usize>,
    indices: Vec<usize>,
    values: Vec<F>,
}

impl<F: Float> CsrMatrix<F> {
    /// Builds a matrix from its parts, checking them.
    ///
    /// # Errors
    /// [`Error::InvalidData`] if `indptr` does not start at 0, decreases, or does not end at
    /// the number of entries; if a row's columns are not strictly increasing or reach
    /// `n_cols`; or if a value is not finite.
    pub fn new(
        n_cols: usize,
        indptr: Vec<usize>,
        indices: Vec<usize>,
        values: Vec<F>,
    ) -> Result<Self> {
        let bad = |what: String| Err(Error::InvalidData { what });
        if indptr.first() != Some(&0)
            || indptr.last() != Some(&indices.len())
            || indices.len() != values.len()
        {
            return bad(format!(
                "CSR parts do not fit: indptr {:?}..{:?} for {} indices and {} values",
                indptr.first(),
                indptr.last(),
                indices.len(),
                values.len()
            ));
        }
        for (row, w) in indptr.windows(2).enumerate() {
            if w[1] < w[0] {
                return bad(format!("CSR indptr decreases at row {row}"));
            }
            let cols = &indices[w[0]..w[1]];
            if let Some(k) = cols.windows(2).position(|c| c[1] <= c[0]) {
                return bad(format!(
                    "CSR row {row}: columns not strictly increasing at entry {}",
                    k + 1
                ));
            }
            if let Some(&c) = cols.last().filter(|&&c| c >= n_cols) {
                return bad(format!("CSR row {row}: column {c} ≥ {n_cols} columns"));
            }
        }
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            return bad(format!(
                "CSR value {} at entry {k} is not finite",
                values[k]
            ));
        }
        Ok(CsrMatrix {
            n_cols,
            indptr,
            indices,
            values,
        })
    }

    /// The number of rows.
    pub fn n_rows(&self) -> usize {
        self.indptr.len() - 1
    }
    /// The number of columns.
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }
    /// The number of stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }
    /// Row `i` as (columns, values).
    ///
    /// # Panics
    /// If `i ≥ n_rows()`.
    #[inline]
    pub fn row(&self, i: usize) -> (&[usize], &[F]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }
    /// `x_i · w`.
    #[inline]
    pub fn row_dot(&self, i: usize, w: &ArrayRef1<F>) -> F {
        let (cols, vals) = self.row(i);
        cols.iter()
            .zip(vals)
            .fold(F::zero(), |s, (&c, &v)| s + v * w[c])
    }
    /// The dense copy.
    pub fn to_dense(&self) -> Array2<F> {
        let mut m = Array2::zeros((self.n_rows(), self.n_cols));
        for i in 0..self.n_rows() {
            let (cols, vals) = self.row(i);
            for (&c, &v) in cols.iter().zip(vals) {
                m[[i, c]] = v;
            }
        }
        m
    }
    /// The sparse copy of a dense matrix (zeros dropped).
    pub fn from_dense(m: &Array2<F>) -> Self {
        let mut indptr = vec![0];
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        for row in m.rows() {
            for (c, &v) in row.iter().enumerate() {
                if !v.is_zero() {
                    indices.push(c);
                    values.push(v);
                }
            }
            indptr.push(indices.len());
        }
        CsrMatrix {
            n_cols: m.ncols(),
            indptr,
            indices,
            values,
        }
    }
    pub(crate) fn select(&self, rows: &[usize]) -> Self {
        let mut indptr = vec![0];
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        for &i in rows {
            let (c, v) = self.row(i);
            indices.extend_from_slice(c);
            values.extend_from_slice(v);
            indptr.push(indices.len());
        }
        CsrMatrix {
            n_cols: self.n_cols,
            indptr,
            indices,
            values,
        }
    }
    pub(crate) fn with_bias(&self) -> Self {
        let mut indptr = vec![0];
        let mut indices = Vec::with_capacity(self.nnz() + self.n_rows());
        let mut values = Vec::with_capacity(self.nnz() + self.n_rows());
        for i in 0..self.n_rows() {
            let (c, v) = self.row(i);
            indices.extend_from_slice(c);
            values.extend_from_slice(v);
            indices.push(self.n_cols);
            values.push(F::one());
            indptr.push(indices.len());
        }
        CsrMatrix {
            n_cols: self.n_cols + 1,
            indptr,
            indices,
            values,
        }
    }
}
