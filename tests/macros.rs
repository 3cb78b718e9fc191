//! Compile-time behaviour of `#[mobile]`: every non-migratable field,
//! argument or reply is one error at its span, and valid actors compile
//! (including under `#![no_implicit_prelude]`, see `ui/pass/hygiene.rs`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
