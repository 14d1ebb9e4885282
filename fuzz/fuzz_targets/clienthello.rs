//! The TLS ClientHello reader on arbitrary bytes.
#![no_main]
use flux_compat::fips::tls::clienthello::read_client_hello;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (raw, hello) = read_client_hello(&mut &data[..]);
    assert!(raw.len() <= data.len());
    if let Ok(h) = hello {
        let _ = h.fingerprint();
    }
});
