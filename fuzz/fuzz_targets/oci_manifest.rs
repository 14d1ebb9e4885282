//! The fixture registry's request parsers: routes and pushed manifests.
#![no_main]
use flux_compat::fixtures::oci::{parse_manifest, parse_route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((first, rest)) = data.split_first() {
        if let Ok(path) = std::str::from_utf8(rest) {
            let _ = parse_route(path);
        }
        let content_type = match first % 3 {
            0 => None,
            1 => Some("application/vnd.oci.image.index.v1+json"),
            _ => Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
        };
        if let Ok(m) = parse_manifest(rest, content_type) {
            for d in &m.references {
                assert!(d.starts_with("sha256:") && d.len() == 71, "{d}");
            }
        }
    }
});
