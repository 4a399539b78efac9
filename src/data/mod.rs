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

mod csr;
mod dataset;
pub mod datasets;
mod features;
mod libsvm;

pub use csr::CsrMatrix;
pub use dataset::Dataset;
pub use features::Features;
pub(crate) use libsvm::{Rows, fit_storage, open, read_rows};
pub use libsvm::{dense_threshold, load_libsvm, parse_libsvm, parse_libsvm_gz};
