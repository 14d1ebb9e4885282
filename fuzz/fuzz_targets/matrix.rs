//! The matrix loader on arbitrary text: problems or a matrix, never a panic, bounded memory.
#![no_main]
use flux_compat::config::{Diagnostics, matrix, source};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    // Through the same decoding every configuration file gets (NUL, UTF-8, BOM).
    let Ok(text) = source::decode(data.to_vec()) else {
        return;
    };
    let mut d = Diagnostics::default();
    // No file references are followed: the boundary admits nothing outside a missing root.
    let boundary = source::Boundary::new(&[Path::new("/nonexistent-fuzz-root").into()], false);
    let _ = matrix::load_with(Path::new("fuzz/matrix.yaml"), &text, &boundary, &mut d);
    for p in d.into_sorted() {
        let line = p.to_string();
        assert!(!line.contains('\n'), "a problem spans lines: {line:?}");
    }
});
