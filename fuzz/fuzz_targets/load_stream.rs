//! Fuzzes the loader: any bytes must load without panicking, overflowing the
//! stack or blowing up memory, with every span inside the input.

#![no_main]

#[path = "../../yaml/tests/invariants/mod.rs"]
mod invariants;

use apiload_yaml::{Limits, load_stream};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    for limits in [Limits::default(), invariants::small_limits()] {
        let docs = load_stream(bytes, &limits);
        invariants::check("fuzz input", bytes, &docs, &limits);
    }
});
