//! The amd64 byte signatures `crypto/internal/boring/sig` plants in code ("known to
//! rsc.io/goversion"): `EB 1D F4 48 F4 4B F4` + a 24-byte tail + `C3`. Other architectures
//! compile them to a plain `RET`, so absence there proves nothing.

use super::elf::{EM_X86_64, Elf, PF_X, PT_LOAD};
use serde::Serialize;

const BORING: [u8; 24] = [
    0xB3, 0x32, 0xF5, 0x28, 0x13, 0xA3, 0xB4, 0x50, 0xD4, 0x41, 0xCC, 0x24, 0x85, 0xF0, 0x01, 0x45,
    0x4E, 0x92, 0x10, 0x1B, 0x1D, 0x2F, 0x19, 0x50,
];
const STANDARD: [u8; 24] = [
    0xBA, 0xEE, 0x4D, 0xFA, 0x98, 0x51, 0xCA, 0x56, 0xA9, 0x11, 0x45, 0xE8, 0x3E, 0x99, 0xC5, 0x9C,
    0xF9, 0x11, 0xCB, 0x8E, 0x80, 0xDA, 0xF1, 0x2F,
];
const FIPSONLY: [u8; 24] = [
    0x36, 0x3C, 0xB9, 0xCE, 0x9D, 0x68, 0x04, 0x7D, 0x31, 0xF2, 0x8D, 0x32, 0x5D, 0x5C, 0xA5, 0x87,
    0x3F, 0x5D, 0x80, 0xCA, 0xF6, 0xD6, 0x15, 0x1B,
];

/// Which signatures were found, with the file offset of the first of each.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Markers {
    /// False on non-amd64 binaries, where the markers do not exist.
    pub applicable: bool,
    pub boring_crypto: Option<u64>,
    pub standard_crypto: Option<u64>,
    pub fips_only: Option<u64>,
}

/// How much of a segment is scanned before its pages are handed to `release`.
const WINDOW: usize = 4 << 20;
/// The length of one marker function (prefix, 24-byte tail, `ret`).
const MARKER_LEN: usize = 32;

/// Scan the executable segments (the whole file if there are none) of an amd64 binary, window
/// by window; `release` gets each window once scanned (a memory-mapped caller drops its pages).
pub fn scan(elf: &Elf<'_>, release: &(dyn Fn(&[u8]) + Sync)) -> Markers {
    let mut m = Markers {
        applicable: elf.machine == EM_X86_64,
        ..Markers::default()
    };
    if !m.applicable {
        return m;
    }
    let mut ranges: Vec<(u64, &[u8])> = elf
        .segments
        .iter()
        .filter(|s| s.p_type == PT_LOAD && s.flags & PF_X != 0)
        .filter_map(|s| elf.segment_data(s).map(|d| (s.offset, d)))
        .collect();
    if ranges.is_empty() {
        ranges.push((0, elf.data));
    }
    // The common prefix; regex literal search is memchr-fast over tens of megabytes.
    let finder =
        regex::bytes::Regex::new(r"(?-u)\xEB\x1D\xF4\x48\xF4\x4B\xF4").expect("constant pattern");
    for (base, data) in ranges {
        for from in (0..data.len()).step_by(WINDOW) {
            let to = (from + WINDOW).min(data.len());
            // Overlap by one marker so a marker across the window edge is still seen.
            let window = &data[from..(to + MARKER_LEN).min(data.len())];
            scan_window(&finder, window, base + from as u64, to - from, &mut m);
            release(&data[from..to]);
        }
    }
    m
}

/// Markers starting in the first `own` bytes of `data` (which sits at file offset `base`).
fn scan_window(finder: &regex::bytes::Regex, data: &[u8], base: u64, own: usize, m: &mut Markers) {
    {
        for hit in finder.find_iter(data).take_while(|h| h.start() < own) {
            let start = hit.start();
            let Some(tail) = data.get(start + 7..start + 31) else {
                continue;
            };
            if data.get(start + 31) != Some(&0xC3) {
                continue;
            }
            let off = Some(base + start as u64);
            if tail == BORING {
                m.boring_crypto = m.boring_crypto.or(off);
            } else if tail == STANDARD {
                m.standard_crypto = m.standard_crypto.or(off);
            } else if tail == FIPSONLY {
                m.fips_only = m.fips_only.or(off);
            }
        }
    }
}
