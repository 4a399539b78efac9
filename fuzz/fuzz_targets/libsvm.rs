//! The LIBSVM reader on arbitrary bytes (text and gzip).
#![no_main]

#[path = "../logic.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| logic::libsvm(data));
