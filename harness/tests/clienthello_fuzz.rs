//! Fuzzes the ClientHello parser: arbitrary bytes and mutations of a committed corpus of real
//! hellos must yield a hello or an error, never a panic, and never read past the input.

mod support;

use flux_compat::fips::tls::clienthello::{HelloError, read_client_hello};
use proptest::prelude::*;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = support::root().join("fixtures/clienthello-corpus");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 5, "corpus missing in {}", dir.display());
    out
}

#[test]
fn every_corpus_hello_parses() {
    for (name, bytes) in corpus() {
        let (raw, hello) = read_client_hello(&mut bytes.as_slice());
        let hello = hello.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            raw.len(),
            bytes.len(),
            "{name}: the whole record is consumed for replay"
        );
        assert!(
            !hello.suites.is_empty() && !hello.versions.is_empty(),
            "{name}"
        );
        if name.starts_with("go127-plain") {
            assert!(
                hello.groups.contains(&0x11ec) && hello.ems,
                "{name}: {hello:?}"
            );
        }
        if name.ends_with("boringfips.bin") {
            assert!(
                !hello.groups.contains(&0x001d),
                "{name}: a FIPS hello offers X25519"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let (raw, _) = read_client_hello(&mut bytes.as_slice());
        prop_assert!(raw.len() <= bytes.len());
    }

    #[test]
    fn mutated_corpus_never_panics(
        pick in 0usize..5,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let corpus = corpus();
        let mut bytes = corpus[pick % corpus.len()].1.clone();
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let (raw, res) = read_client_hello(&mut bytes.as_slice());
        prop_assert!(raw.len() <= bytes.len());
        if truncate {
            // A cut hello is either complete by its (mutated) lengths, or reported as truncated/malformed.
            if let Err(e) = res {
                prop_assert!(!matches!(e, HelloError::Io(_)));
            }
        }
    }
}
