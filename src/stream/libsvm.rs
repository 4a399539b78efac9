//! A LIBSVM file read as a stream: a chunk of rows at a time, in passes, optionally through a
//! shuffle buffer.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use rand::{Rng, RngExt};

use super::SampleStream;
use crate::data::{Dataset, Rows, dense_threshold, open};
use crate::error::{Error, Result};
use crate::float::Float;

/// A LIBSVM file (plain or gzip, by content) read as a [`SampleStream`] of
/// [`Dataset`] chunks: memory holds the rows of one read (and the shuffle buffer), never the
/// file.
///
/// - **Passes.** The file is read `passes` times (default 1), then the stream ends.
/// - **Shuffle buffer.** With a buffer of `s` rows, each row returned is drawn uniformly from
///   the next `s` rows not yet returned (the buffer), and the next row of the file takes its
///   place, as data pipelines shuffle; the buffer empties at the end of each pass, so that
///   each pass returns every row once. Without one (the default) rows come in file order. What
///   it leaves: a row can move at most `s` places ahead of its place in the file, and rows far
///   apart in the file stay far apart in the stream, so a file sorted by label or by time
///   still gives batches that are not samples of the whole (each pass draws anew, with the
///   run's random numbers). A buffer as large as the file is a full shuffle; shuffle a sorted
///   file once beforehand when it fits nowhere.
/// - **Storage.** Chunks are dense if the first read has at least
///   [`dense_threshold`] non-zero values, as [`load_libsvm`](crate::data::load_libsvm) chooses,
///   and sparse otherwise; every chunk is stored the same way.
///
/// # Example
/// ```
/// use bigbatch::{BatchMode, BigBatchSgd, models::Logistic, stream::LibsvmStream};
/// use ndarray::Array1;
///
/// # let dir = std::env::temp_dir().join(format!("bigbatch-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("heart.svm");
/// # std::fs::write(&path, (0..400).map(|i| format!("{} 1:{} 2:1\n", if i % 3 == 0 { 1 } else { -1 }, (i % 7) as f64 / 7.0)).collect::<String>())?;
/// let stream = LibsvmStream::<f64>::open(&path, 2)?.passes(3).shuffle_buffer(100);
/// let mut optimizer = BigBatchSgd::builder()
///     .batch_mode(BatchMode::Fresh)
///     .max_samples(1_000)
///     .build()?;
/// let report = optimizer.minimize_stream(stream, |chunk| Logistic::new(chunk, 1e-2), Array1::zeros(2))?;
/// assert!(report.grad_evals <= 1_000);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LibsvmStream<F> {
    path: PathBuf,
    name: String,
    n_features: usize,
    passes: usize,
    /// Passes begun.
    pass: usize,
    reader: Option<Box<dyn BufRead>>,
    line_no: usize,
    line: Vec<u8>,
    /// The rows of the shuffle buffer, and how many it holds at most (0: none).
    pool: Vec<PoolRow<F>>,
    pool_size: usize,
    /// One parsed line.
    parsed: Rows<F>,
    dense: Option<bool>,
    bias: bool,
    rows_read: u64,
}

/// A row of the shuffle buffer: its target, column indices and values.
type PoolRow<F> = (F, Vec<usize>, Vec<F>);

impl<F> std::fmt::Debug for LibsvmStream<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibsvmStream")
            .field("path", &self.path)
            .field("n_features", &self.n_features)
            .field("passes", &self.passes)
            .field("pass", &self.pass)
            .field("shuffle_buffer", &self.pool_size)
            .field("bias", &self.bias)
            .field("rows_read", &self.rows_read)
            .finish_non_exhaustive()
    }
}

impl<F: Float> LibsvmStream<F> {
    /// A stream of the file at `path`, with `n_features` features (a larger index is an error:
    /// a stream cannot look ahead for the largest).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be opened; [`Error::InvalidParameter`] for no
    /// features.
    pub fn open(path: impl AsRef<Path>, n_features: usize) -> Result<Self> {
        if n_features == 0 {
            return Err(Error::invalid("n_features", 0, "at least 1"));
        }
        let path = path.as_ref().to_path_buf();
        // Fail now on a file that cannot be opened, not at the first read.
        drop(open(&path)?);
        Ok(LibsvmStream {
            name: path.display().to_string(),
            path,
            n_features,
            passes: 1,
            pass: 0,
            reader: None,
            line_no: 0,
            line: Vec::new(),
            pool: Vec::new(),
            pool_size: 0,
            parsed: Rows::empty(),
            dense: None,
            bias: false,
            rows_read: 0,
        })
    }

    /// Reads the file `passes ≥ 1` times (default 1).
    ///
    /// # Panics
    /// If `passes` is 0.
    pub fn passes(mut self, passes: usize) -> Self {
        assert!(passes >= 1, "a stream reads its file at least once");
        self.passes = passes;
        self
    }

    /// Shuffles through a buffer of `rows` rows (0, the default: file order).
    pub fn shuffle_buffer(mut self, rows: usize) -> Self {
        self.pool_size = rows;
        self
    }

    /// Appends a feature that is 1 in every row (as [`Dataset::with_bias`] does, without the
    /// copy): chunks have `n_features + 1` columns.
    pub fn with_bias(mut self) -> Self {
        self.bias = true;
        self
    }

    /// The rows read from the file so far (all passes).
    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }

    /// The passes begun so far.
    pub fn passes_begun(&self) -> usize {
        self.pass
    }

    /// Opens the file for the next pass; false after the last.
    fn start_pass(&mut self) -> Result<bool> {
        if self.pass == self.passes {
            return Ok(false);
        }
        let file: Box<dyn Read> = open(&self.path)?;
        self.reader = Some(Box::new(BufReader::with_capacity(1 << 16, file)));
        self.pass += 1;
        self.line_no = 0;
        Ok(true)
    }

    /// Parses the next sample line of the current pass into `parsed` (cleared first); false
    /// (and no reader) at the end of the pass.
    fn next_line(&mut self) -> Result<bool> {
        self.parsed.clear();
        while let Some(reader) = self.reader.as_mut() {
            self.line.clear();
            let read = reader
                .read_until(b'\n', &mut self.line)
                .map_err(|e| Error::io(&self.path, e))?;
            if read == 0 {
                self.reader = None;
                break;
            }
            self.line_no += 1;
            let (name, line_no) = (&self.name, self.line_no);
            self.parsed
                .add_line(&self.line, Some(self.n_features), |_| true)
                .map_err(|reason| Error::Parse {
                    file: name.clone(),
                    line: line_no,
                    reason,
                })?;
            if self.parsed.len() == 1 {
                self.rows_read += 1;
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The rows of one read, as they are collected: sparse until the storage is known, dense
/// once it is dense.
enum Out<F> {
    Sparse(Rows<F>),
    Dense {
        values: Vec<F>,
        targets: Vec<F>,
        cols: usize,
    },
}

impl<F: Float> Out<F> {
    fn len(&self) -> usize {
        match self {
            Out::Sparse(rows) => rows.len(),
            Out::Dense { targets, .. } => targets.len(),
        }
    }

    /// Appends a row, with a last column of ones if `bias`.
    fn push(&mut self, target: F, indices: &[usize], values: &[F], bias: Option<usize>) {
        match self {
            Out::Sparse(rows) => rows.push(target, indices, values, bias),
            Out::Dense {
                values: out,
                targets,
                cols,
            } => {
                let start = out.len();
                out.resize(start + *cols, F::zero());
                for (&j, &v) in indices.iter().zip(values) {
                    out[start + j] = v;
                }
                if let Some(col) = bias {
                    out[start + col] = F::one();
                }
                targets.push(target);
            }
        }
    }

    fn into_dataset(self, cols: usize) -> Result<Dataset<F>> {
        match self {
            Out::Sparse(rows) => rows.into_dataset(cols),
            Out::Dense {
                values, targets, ..
            } => {
                let n = targets.len();
                let x = ndarray::Array2::from_shape_vec((n, cols), values)
                    .expect("rows of `cols` values each");
                Dataset::from_dense(x, ndarray::Array1::from(targets))
            }
        }
    }
}

impl<F: Float> SampleStream for LibsvmStream<F> {
    type Chunk = Dataset<F>;

    fn read(&mut self, k: usize, rng: &mut dyn Rng) -> Result<Option<Dataset<F>>> {
        let bias = self.bias.then_some(self.n_features);
        let cols = self.n_features + usize::from(self.bias);
        let mut out = if self.dense == Some(true) {
            Out::Dense {
                values: Vec::new(),
                targets: Vec::new(),
                cols,
            }
        } else {
            Out::Sparse(Rows::empty())
        };
        while out.len() < k {
            // A pass ends before the next begins: with a shuffle buffer, once it is empty.
            if self.reader.is_none() && self.pool.is_empty() && !self.start_pass()? {
                break;
            }
            if self.pool_size == 0 {
                if self.next_line()? {
                    let (t, idx, val) = self.parsed.row(0);
                    out.push(t, idx, val, bias);
                }
                continue;
            }
            // Keep the buffer full while the pass lasts, then return a row drawn from it.
            while self.pool.len() < self.pool_size && self.next_line()? {
                let (t, idx, val) = self.parsed.row(0);
                self.pool.push((t, idx.to_vec(), val.to_vec()));
            }
            if !self.pool.is_empty() {
                let r = rng.random_range(0..self.pool.len());
                let (t, idx, val) = self.pool.swap_remove(r);
                out.push(t, &idx, &val, bias);
            }
        }
        if out.len() == 0 {
            return Ok(None);
        }
        let data = out.into_dataset(cols)?;
        if self.dense.is_none() {
            // The first read decides, as `load_libsvm` would for these rows.
            let dense = data.features().density() >= dense_threshold::<F>();
            self.dense = Some(dense);
            if dense {
                return Ok(Some(data.into_dense()));
            }
        }
        Ok(Some(data))
    }
}
