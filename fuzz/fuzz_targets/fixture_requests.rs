//! The fixture plane's request parsers: OCI registry routes and pushed manifests, git smart
//! HTTP paths and CGI header lines, query strings and Basic credentials. The first byte picks
//! the parser, so one corpus covers them all.
#![no_main]
use flux_compat::fixtures::git::{CgiLine, is_push, parse_cgi_line, parse_request_path};
use flux_compat::fixtures::http::{basic_credentials, query_pairs};
use flux_compat::fixtures::oci::{parse_manifest, parse_route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = data.split_first() else {
        return;
    };
    let text = std::str::from_utf8(rest).ok();
    match selector % 4 {
        0 | 1 => {
            let content_type = match selector % 8 {
                0 => None,
                1 => Some("application/vnd.oci.image.index.v1+json"),
                _ => Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
            };
            if let Ok(m) = parse_manifest(rest, content_type) {
                for d in &m.references {
                    assert!(d.starts_with("sha256:") && d.len() == 71, "{d}");
                }
            }
            if let Some(t) = text {
                let _ = parse_route(t);
            }
        }
        2 => {
            let Some(t) = text else { return };
            if let Ok((repo, tail)) = parse_request_path(t) {
                assert!(t.starts_with(repo));
                let _ = is_push(tail, Some(t));
            }
            for line in t.split_inclusive('\n') {
                if let CgiLine::Header(name, _) = parse_cgi_line(line) {
                    assert!(!name.contains('\n'));
                }
            }
        }
        _ => {
            let Some(t) = text else { return };
            let _ = query_pairs(Some(t));
            let mut headers = hyper::HeaderMap::new();
            if let Ok(v) = hyper::header::HeaderValue::from_str(t) {
                headers.insert(hyper::header::AUTHORIZATION, v);
                let _ = basic_credentials(&headers);
            }
        }
    }
});
