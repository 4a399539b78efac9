//! The fuzz targets' checks (`fuzz/logic.rs`) on seeded random inputs, so that CI runs them
//! without a fuzzer: arbitrary bytes for the LIBSVM reader, and byte-built problems and
//! configurations for whole runs.
#[path = "../fuzz/logic.rs"]
mod logic;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// Random bytes, and random LIBSVM-like text mutated byte by byte.
fn inputs(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut r = Xoshiro256PlusPlus::seed_from_u64(seed);
    let alphabet = b"0123456789 :.-+eE\n#\tnaif";
    (0..count)
        .map(|k| {
            let len = r.random_range(0..200);
            if k % 2 == 0 {
                (0..len).map(|_| r.random::<u8>()).collect()
            } else {
                let mut text: Vec<u8> = b"+1 1:0.5 3:2\n-1 2:1.5 7:-3e2\n0 1:1\n".to_vec();
                for _ in 0..r.random_range(0..8) {
                    let at = r.random_range(0..text.len());
                    text[at] = alphabet[r.random_range(0..alphabet.len())];
                }
                text.truncate(len.max(1).min(text.len()));
                text
            }
        })
        .collect()
}

#[test]
fn the_libsvm_reader_never_panics_on_arbitrary_input() {
    for input in inputs(1, 3000) {
        logic::libsvm(&input);
    }
}

#[test]
fn runs_on_byte_built_problems_never_panic() {
    for input in inputs(2, 400) {
        logic::run(&input);
    }
}
