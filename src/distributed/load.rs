//! Loading a worker's shard.

use std::path::Path;

use super::{Workers, agree};
use crate::data::{Dataset, open, read_rows};
use crate::error::{Error, Result};
use crate::float::Float;

/// Reads this worker's shard of a LIBSVM file (plain or gzip) for [`Layout::Strided`]: the
/// sample lines `rank, rank + P, rank + 2P, …` (a collective call: every worker makes it).
///
/// Every worker reads the file, but parses only its own lines; the others are only checked to
/// be text. The number of features is `n_features`, or else the largest index in the whole
/// file, agreed between the workers, so that every shard has the same width.
///
/// # Errors
/// On every worker, [`Error::Rank`] naming the first worker that could not read or parse its
/// shard (an [`Error::Io`] or [`Error::Parse`] there), or that holds no sample.
///
/// [`Layout::Strided`]: super::Layout::Strided
pub fn load_libsvm_shard<F: Float, W: Workers + ?Sized>(
    path: impl AsRef<Path>,
    n_features: Option<usize>,
    workers: &W,
) -> Result<Dataset<F>> {
    let path = path.as_ref();
    let (rank, p) = (workers.rank(), workers.size());
    let rows = open(path).and_then(|text| {
        read_rows::<F, _>(text, &path.display().to_string(), n_features, |k| {
            k % p == rank
        })
    });
    let rows = rows.and_then(|rows| {
        if rows.targets.is_empty() {
            Err(Error::InvalidData {
                what: format!(
                    "{} holds {} samples: none for worker {rank} of {p}",
                    path.display(),
                    rows.sample_lines
                ),
            })
        } else {
            Ok(rows)
        }
    });
    let rows = agree(workers, rows)?;
    let widest = workers
        .all_gather(&[rows.max_index as f64])
        .into_iter()
        .fold(0.0, f64::max);
    let n_cols = n_features.unwrap_or(widest as usize);
    agree(workers, rows.into_dataset(n_cols))
}
