//! The scenario loader (steps, templates, embedded manifests) on arbitrary text.
#![no_main]
use flux_compat::config::scenario::{Context, load_with};
use flux_compat::config::{Diagnostics, source};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = source::decode(data.to_vec()) else {
        return;
    };
    let flux = [("v2.9.4".parse().unwrap(), Some("v2.8.8".parse().unwrap()))];
    let channels = ["upstream".to_string(), "fips".to_string()];
    let ctx = Context {
        channels: Some(&channels),
        fixtures_root: None,
        default_timeout: Duration::from_secs(600),
        flux_versions: Some(&flux),
    };
    let boundary = source::Boundary::new(&[Path::new("/nonexistent-fuzz-root").into()], false);
    let mut d = Diagnostics::default();
    let _ = load_with(Path::new("fuzz/s.yaml"), &text, &ctx, &boundary, &mut d);
    for p in d.into_sorted() {
        let line = p.to_string();
        assert!(!line.contains('\n'), "a problem spans lines: {line:?}");
    }
});
