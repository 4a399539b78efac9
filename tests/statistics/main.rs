//! Batch statistics and the test: grouped variance estimates, accuracy when the signal dwarfs
//! the spread, the noise scale and its gain, the norm test's documented rate, and the slow
//! references the other tests rely on.

#[path = "../common/mod.rs"]
mod common;

mod groups;
mod inner_product;
mod noise_scale;
mod norm_test;
mod precision;
mod references;
