//! `cargo +nightly fuzz run webhook_request`: arbitrary bytes into every parser of untrusted input.

#![no_main]

#[path = "../src/entry.rs"]
mod entry;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    entry::exercise(data);
});
