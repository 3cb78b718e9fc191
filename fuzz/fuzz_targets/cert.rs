#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mobility_fuzz::cert(data));
