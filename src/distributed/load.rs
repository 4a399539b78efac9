//! Loading a worker's shard.

use std::path::Path;

use super::{Workers, agree};
use crate::data::{Dataset, fit_storage, open, read_rows};
use crate::error::{Error, Result};
use crate::float::Float;

/// Reads this worker's shard of a LIBSVM file (plain or gzip) for [`Layout::Strided`]: the
/// sample lines `rank, rank + P, rank + 2P, …` (a collective call: every worker makes it).
///
/// Every worker reads the file, but parses only its own lines; the others are only checked to
/// be text. The number of features is `n_features`, or else the largest index in the whole
/// file, agreed between the workers, so that every shard has the same width. Every shard
/// stores its rows as [`load_libsvm`](crate::data::load_libsvm) would store the whole file's:
/// dense if the file's density is at least [`dense_threshold`](crate::data::dense_threshold).
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
    let data = agree(workers, rows.into_dataset(n_cols))?;
    // The whole file's density, so that every shard chooses the same storage.
    let n = data.n_samples() as f64;
    let all = workers.all_gather(&[data.features().density() * n, n]);
    let (stored, rows) = all
        .chunks_exact(2)
        .fold((0.0, 0.0), |(s, r), c| (s + c[0], r + c[1]));
    let density = stored / rows;
    Ok(fit_storage(data, density))
}
