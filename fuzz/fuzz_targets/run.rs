//! A whole optimization run on a problem and a configuration built from the bytes.
#![no_main]

#[path = "../logic.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| logic::run(data));
