//! Data sets: dense or sparse (CSR) features with a target per sample, the LIBSVM text
//! format (plain or gzip), a bias column, and seeded splits.
//!
//! # Example
//! ```
//! use bigbatch::data::parse_libsvm;
//!
//! let text = "+1 1:0.5 3:2\n-1 2:1.5\n";
//! let data = parse_libsvm::<f64, _>(text.as_bytes(), "inline", Some(3))?;
//! assert_eq!((data.n_samples(), data.n_features()), (2, 3));
//! let data = data.with_bias(); // a constant-1 feature as the last column
//! assert_eq!(data.n_features(), 4);
//! assert_eq!(data.features().to_dense().row(1).to_vec(), vec![0.0, 1.5, 0.0, 1.0]);
//! # Ok::<(), bigbatch::Error>(())
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use ndarray::{Array1, Array2, ArrayRef1, Zip};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use crate::batch::Sampler;
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
    fn select(&self, rows: &[usize]) -> Self {
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
    fn with_bias(&self) -> Self {
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
    fn first_non_finite(&self) -> Option<(usize, usize)> {
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

/// Reads a LIBSVM file (`label index:value ...`, 1-based increasing indices), plain or gzip
/// (by content, whatever the name), into sparse features.
///
/// `n_features` fixes the number of features (larger indices are an error); `None` takes the
/// largest index present.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read or decompressed; [`Error::Parse`] naming the
/// file, the line and the problem (a bad number, index 0, indices not increasing, a NaN or
/// infinite value, an index beyond `n_features`, a binary file); [`Error::InvalidData`] for
/// an empty file.
pub fn load_libsvm<F: Float>(
    path: impl AsRef<Path>,
    n_features: Option<usize>,
) -> Result<Dataset<F>> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let io = |e| Error::io(path, e);
    let mut file = BufReader::new(File::open(path).map_err(io)?);
    let gzip = file.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    if gzip {
        let reader = BufReader::new(flate2::read::MultiGzDecoder::new(file));
        parse_libsvm(reader, &name, n_features)
    } else {
        parse_libsvm(file, &name, n_features)
    }
}

/// Reads LIBSVM text from a gzip-compressed byte slice (as embedded data sets are stored).
///
/// # Errors
/// As [`parse_libsvm`], and [`Error::Io`] if the bytes are not valid gzip.
pub fn parse_libsvm_gz<F: Float>(
    bytes: &[u8],
    name: &str,
    n_features: Option<usize>,
) -> Result<Dataset<F>> {
    parse_libsvm(
        BufReader::new(flate2::read::MultiGzDecoder::new(bytes)),
        name,
        n_features,
    )
}

/// Reads LIBSVM text from any reader; `name` is used in error messages.
///
/// # Errors
/// See [`load_libsvm`].
pub fn parse_libsvm<F: Float, R: Read>(
    reader: R,
    name: &str,
    n_features: Option<usize>,
) -> Result<Dataset<F>> {
    let reader = BufReader::new(reader);
    let mut indptr = vec![0];
    let (mut indices, mut values, mut targets) = (Vec::new(), Vec::new(), Vec::new());
    let mut max_index = 0;
    let mut line_no = 0;
    let perr = |line: usize, reason: String| Error::Parse {
        file: name.to_string(),
        line,
        reason,
    };
    let mut bytes = Vec::new();
    let mut reader = reader;
    loop {
        bytes.clear();
        let read = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| Error::io(Path::new(name), e))?;
        if read == 0 {
            break;
        }
        line_no += 1;
        let Ok(line) = std::str::from_utf8(&bytes) else {
            return Err(perr(line_no, "not UTF-8 text (a binary file?)".into()));
        };
        if line.contains('\0') {
            return Err(perr(line_no, "contains a NUL byte (a binary file?)".into()));
        }
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut tokens = line.split_ascii_whitespace();
        let label_text = tokens.next().unwrap_or("");
        let label: f64 = label_text
            .parse()
            .map_err(|_| perr(line_no, format!("bad label `{label_text}`")))?;
        let label = F::from_f64(label);
        if !label.is_finite() {
            return Err(perr(
                line_no,
                format!(
                    "label `{label_text}` is not finite as {}",
                    std::any::type_name::<F>()
                ),
            ));
        }
        let mut last = 0;
        for token in tokens {
            let Some((idx_text, val_text)) = token.split_once(':') else {
                return Err(perr(line_no, format!("`{token}` is not `index:value`")));
            };
            let idx: usize = idx_text
                .parse()
                .map_err(|_| perr(line_no, format!("bad index `{idx_text}` in `{token}`")))?;
            if idx == 0 {
                return Err(perr(
                    line_no,
                    format!("index 0 in `{token}` (indices are 1-based)"),
                ));
            }
            if idx <= last {
                return Err(perr(
                    line_no,
                    format!("index {idx} after {last}: indices must increase"),
                ));
            }
            if let Some(d) = n_features.filter(|&d| idx > d) {
                return Err(perr(
                    line_no,
                    format!("index {idx} beyond the {d} features given"),
                ));
            }
            let value: f64 = val_text
                .parse()
                .map_err(|_| perr(line_no, format!("bad value `{val_text}` in `{token}`")))?;
            // Checked in the target type: a value finite in f64 may overflow f32.
            let value = F::from_f64(value);
            if !value.is_finite() {
                return Err(perr(
                    line_no,
                    format!(
                        "value `{val_text}` at index {idx} is not finite as {}",
                        std::any::type_name::<F>()
                    ),
                ));
            }
            last = idx;
            if !value.is_zero() {
                indices.push(idx - 1);
                values.push(value);
            }
        }
        max_index = max_index.max(last);
        targets.push(label);
        indptr.push(indices.len());
    }
    if targets.is_empty() {
        return Err(Error::InvalidData {
            what: format!("{name} holds no samples"),
        });
    }
    let n_cols = n_features.unwrap_or(max_index);
    // The same checks as for any matrix built from parts (they cannot fail for what the
    // parser built, and cost one pass over the entries).
    let csr = CsrMatrix::new(n_cols, indptr, indices, values)?;
    Dataset::new(Features::Sparse(csr), Array1::from(targets))
}
