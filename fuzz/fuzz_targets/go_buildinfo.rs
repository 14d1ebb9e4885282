//! Go build info (and the ELF reader under it) on arbitrary bytes, seeded with the committed
//! inspect corpus.
#![no_main]
use flux_compat::fips::inspect::inspect_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = inspect_bytes(data);
});
