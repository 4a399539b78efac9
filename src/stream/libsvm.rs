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
///   place, as data pipelines shuffle. Without one (the default) rows come in file order. What
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

    /// The rows read from the file so far (all passes).
    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }

    /// The passes begun so far.
    pub fn passes_begun(&self) -> usize {
        self.pass
    }

    /// Parses the next sample line of the file into `parsed` (cleared first); false at the end
    /// of the last pass.
    fn next_line(&mut self) -> Result<bool> {
        self.parsed.clear();
        loop {
            if self.reader.is_none() {
                if self.pass == self.passes {
                    return Ok(false);
                }
                let file: Box<dyn Read> = open(&self.path)?;
                self.reader = Some(Box::new(BufReader::with_capacity(1 << 16, file)));
                self.pass += 1;
                self.line_no = 0;
            }
            let reader = self.reader.as_mut().expect("opened above");
            self.line.clear();
            let read = reader
                .read_until(b'\n', &mut self.line)
                .map_err(|e| Error::io(&self.path, e))?;
            if read == 0 {
                self.reader = None;
                continue;
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
    }
}

impl<F: Float> SampleStream for LibsvmStream<F> {
    type Chunk = Dataset<F>;

    fn read(&mut self, k: usize, rng: &mut dyn Rng) -> Result<Option<Dataset<F>>> {
        let mut out = Rows::empty();
        if self.pool_size == 0 {
            while out.len() < k && self.next_line()? {
                let (t, idx, val) = self.parsed.row(0);
                out.push(t, idx, val);
            }
        } else {
            while out.len() < k {
                // Keep the buffer full while the file lasts.
                while self.pool.len() < self.pool_size && self.next_line()? {
                    let (t, idx, val) = self.parsed.row(0);
                    self.pool.push((t, idx.to_vec(), val.to_vec()));
                }
                if self.pool.is_empty() {
                    break;
                }
                let r = rng.random_range(0..self.pool.len());
                let (t, idx, val) = self.pool.swap_remove(r);
                out.push(t, &idx, &val);
            }
        }
        if out.len() == 0 {
            return Ok(None);
        }
        let data = out.into_dataset(self.n_features)?;
        let dense = *self
            .dense
            .get_or_insert_with(|| data.features().density() >= dense_threshold::<F>());
        Ok(Some(if dense { data.into_dense() } else { data }))
    }
}
