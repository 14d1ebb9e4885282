//! The fixture git server's request parsing: paths, CGI header lines, query strings and
//! Basic credentials.
#![no_main]
use flux_compat::fixtures::git::{CgiLine, is_push, parse_cgi_line, parse_request_path};
use flux_compat::fixtures::http::{basic_credentials, query_pairs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok((repo, tail)) = parse_request_path(text) {
        assert!(text.starts_with(repo));
        let _ = is_push(tail, Some(text));
    }
    for line in text.split_inclusive('\n') {
        if let CgiLine::Header(name, _) = parse_cgi_line(line) {
            assert!(!name.contains('\n'));
        }
    }
    let _ = query_pairs(Some(text));
    let mut headers = hyper::HeaderMap::new();
    if let Ok(v) = hyper::header::HeaderValue::from_str(text) {
        headers.insert(hyper::header::AUTHORIZATION, v);
        let _ = basic_credentials(&headers);
    }
});
