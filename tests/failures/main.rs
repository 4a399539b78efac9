//! Bad input and faults: typed errors that name what is wrong, and runs that meet NaN, infinity
//! or a panic end truthfully with the last good iterate.

#[path = "../common/mod.rs"]
mod common;

mod errors;
mod faults;
