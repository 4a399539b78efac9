//! The LIBSVM text format, plain or gzip.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use ndarray::Array1;

use crate::error::{Error, Result};
use crate::float::Float;

use super::{CsrMatrix, Dataset, Features};

/// The density (share of non-zero values, [`Features::density`]) from which [`load_libsvm`]
/// stores rows of `F` dense: where dense rows take at most twice the memory of sparse ones
/// (which store an index and a value per entry), 1/4 for `f64` and 1/6 for `f32`. Measured, a
/// statistics pass over dense rows is faster from about there on (docs/BENCHMARKS.md,
/// `cargo run --release --example storage`).
pub fn dense_threshold<F: Float>() -> f64 {
    let value = std::mem::size_of::<F>() as f64;
    let entry = (std::mem::size_of::<usize>() + std::mem::size_of::<F>()) as f64;
    value / (2.0 * entry)
}

/// Reads a LIBSVM file (`label index:value ...`, 1-based increasing indices), plain or gzip
/// (by content, whatever the name).
///
/// The rows are stored dense if at least [`dense_threshold`] of their values are non-zero (a
/// pass over them is then faster dense), sparse otherwise; [`Features::is_dense`] says which was
/// chosen, and [`Dataset::into_dense`] and [`Dataset::into_sparse`] change it.
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
    parse_libsvm(open(path)?, &path.display().to_string(), n_features)
}

/// The file at `path` as a reader of its text: decompressed if it is gzip (by content).
pub(crate) fn open(path: &Path) -> Result<Box<dyn Read>> {
    let io = |e| Error::io(path, e);
    let mut file = BufReader::new(File::open(path).map_err(io)?);
    let gzip = file.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    })
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
    let rows = read_rows(reader, name, n_features, |_| true)?;
    if rows.targets.is_empty() {
        return Err(Error::InvalidData {
            what: format!("{name} holds no samples"),
        });
    }
    let n_cols = n_features.unwrap_or(rows.max_index);
    let data = rows.into_dataset(n_cols)?;
    let density = data.features().density();
    Ok(fit_storage(data, density))
}

/// The data with its rows stored dense if `density` is at least [`dense_threshold`], as read
/// (sparse) otherwise.
pub(crate) fn fit_storage<F: Float>(data: Dataset<F>, density: f64) -> Dataset<F> {
    if density >= dense_threshold::<F>() {
        data.into_dense()
    } else {
        data
    }
}

/// Reads the sample lines of LIBSVM text; keeps (and parses) the `k`-th sample line (0-based,
/// blank and comment lines not counted) when `keep(k)`, and only checks that the others are
/// text.
pub(crate) fn read_rows<F: Float, R: Read>(
    reader: R,
    name: &str,
    n_features: Option<usize>,
    keep: impl Fn(usize) -> bool,
) -> Result<Rows<F>> {
    let mut reader = BufReader::new(reader);
    let mut rows = Rows::empty();
    let mut bytes = Vec::new();
    for line_no in 1.. {
        bytes.clear();
        let read = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| Error::io(Path::new(name), e))?;
        if read == 0 {
            break;
        }
        rows.add_line(&bytes, n_features, &keep)
            .map_err(|reason| Error::Parse {
                file: name.to_string(),
                line: line_no,
                reason,
            })?;
    }
    Ok(rows)
}

/// The rows read so far, in CSR parts.
pub(crate) struct Rows<F> {
    indptr: Vec<usize>,
    indices: Vec<usize>,
    values: Vec<F>,
    pub(crate) targets: Vec<F>,
    /// The largest feature index (1-based) of the rows kept.
    pub(crate) max_index: usize,
    /// Sample lines seen, kept or not.
    pub(crate) sample_lines: usize,
}

impl<F: Float> Rows<F> {
    /// No rows.
    pub(crate) fn empty() -> Self {
        Rows {
            indptr: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
            targets: Vec::new(),
            max_index: 0,
            sample_lines: 0,
        }
    }

    /// The number of rows.
    pub(crate) fn len(&self) -> usize {
        self.targets.len()
    }

    /// Appends a row from its parts, with a last entry of 1 in column `bias` if given (past
    /// every index of the row).
    pub(crate) fn push(&mut self, target: F, indices: &[usize], values: &[F], bias: Option<usize>) {
        self.indices.extend_from_slice(indices);
        self.values.extend_from_slice(values);
        if let Some(col) = bias {
            self.indices.push(col);
            self.values.push(F::one());
        }
        self.indptr.push(self.indices.len());
        self.targets.push(target);
        if let Some(last) = bias.or(indices.last().copied()) {
            self.max_index = self.max_index.max(last + 1);
        }
    }

    /// The parts of row `r`: its target, column indices and values.
    pub(crate) fn row(&self, r: usize) -> (F, &[usize], &[F]) {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        (self.targets[r], &self.indices[a..b], &self.values[a..b])
    }

    /// Forgets every row (keeping the allocations).
    pub(crate) fn clear(&mut self) {
        self.indptr.truncate(1);
        self.indices.clear();
        self.values.clear();
        self.targets.clear();
        self.max_index = 0;
    }

    /// The rows as a data set of `n_cols` features.
    pub(crate) fn into_dataset(self, n_cols: usize) -> Result<Dataset<F>> {
        // The same checks as for any matrix built from parts (they cannot fail for what the
        // parser built, and cost one pass over the entries).
        let csr = CsrMatrix::new(n_cols, self.indptr, self.indices, self.values)?;
        Dataset::new(Features::Sparse(csr), Array1::from(self.targets))
    }

    /// Reads one line: a sample line is counted, and added if `keep` says so; a blank or
    /// comment line is skipped. Says what is wrong with the line otherwise.
    pub(crate) fn add_line(
        &mut self,
        bytes: &[u8],
        n_features: Option<usize>,
        keep: impl Fn(usize) -> bool,
    ) -> Result<(), String> {
        let Ok(line) = std::str::from_utf8(bytes) else {
            return Err("not UTF-8 text (a binary file?)".into());
        };
        if line.contains('\0') {
            return Err("contains a NUL byte (a binary file?)".into());
        }
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            return Ok(());
        }
        self.sample_lines += 1;
        if !keep(self.sample_lines - 1) {
            return Ok(());
        }
        let mut tokens = line.split_ascii_whitespace();
        let label_text = tokens.next().unwrap_or("");
        let label: f64 = label_text
            .parse()
            .map_err(|_| format!("bad label `{label_text}`"))?;
        let label = finite_as::<F>(label, || format!("label `{label_text}`"))?;
        let mut last = 0;
        for token in tokens {
            let Some((idx_text, val_text)) = token.split_once(':') else {
                return Err(format!("`{token}` is not `index:value`"));
            };
            let idx: usize = idx_text
                .parse()
                .map_err(|_| format!("bad index `{idx_text}` in `{token}`"))?;
            if idx == 0 {
                return Err(format!("index 0 in `{token}` (indices are 1-based)"));
            }
            if idx <= last {
                return Err(format!("index {idx} after {last}: indices must increase"));
            }
            if let Some(d) = n_features.filter(|&d| idx > d) {
                return Err(format!("index {idx} beyond the {d} features given"));
            }
            let value: f64 = val_text
                .parse()
                .map_err(|_| format!("bad value `{val_text}` in `{token}`"))?;
            let value = finite_as::<F>(value, || format!("value `{val_text}` at index {idx}"))?;
            last = idx;
            if !value.is_zero() {
                self.indices.push(idx - 1);
                self.values.push(value);
            }
        }
        self.max_index = self.max_index.max(last);
        self.targets.push(label);
        self.indptr.push(self.indices.len());
        Ok(())
    }
}

/// `x` in the target type, checked there: a value finite in `f64` may overflow `f32`.
fn finite_as<F: Float>(x: f64, what: impl FnOnce() -> String) -> Result<F, String> {
    let v = F::from_f64(x);
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!(
            "{} is not finite as {}",
            what(),
            std::any::type_name::<F>()
        ))
    }
}
