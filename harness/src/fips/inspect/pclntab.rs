//! Function names from `.gopclntab` (it survives `-s -w`) and the FIPS markers among them.
//! Finds the table by section name or, without section headers, by scanning the read-only
//! segments for a pclntab header whose offsets are self-consistent.

use super::elf::{Elf, PF_W, PT_LOAD, Reader};
use serde::Serialize;

/// The names this harness looks for (exact matches).
pub const FIPSONLY_INIT: &str = "crypto/tls/fipsonly.init.0";
pub const SIG_FIPSONLY: &str = "crypto/internal/boring/sig.FIPSOnly";
pub const SIG_BORING: &str = "crypto/internal/boring/sig.BoringCrypto";
pub const SIG_STANDARD: &str = "crypto/internal/boring/sig.StandardCrypto";
const BORING_CFUNC_PREFIX: &str = "crypto/internal/boring._Cfunc__goboringcrypto_";
const FIPS140_PREFIX: &str = "crypto/internal/fips140/v";

/// What the function-name table says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Symbols {
    /// Where the table was found: `section` or `segment-scan`.
    pub located: String,
    pub function_count: usize,
    pub fipsonly_init: bool,
    pub sig_fipsonly: bool,
    pub sig_boring: bool,
    pub sig_standard: bool,
    /// Number of BoringCrypto cgo wrappers (`_Cfunc__goboringcrypto_*`) and one example.
    pub boring_cfuncs: usize,
    pub boring_cfunc_example: Option<String>,
    /// Frozen FIPS module versions from `crypto/internal/fips140/vX/` paths, with counts.
    pub fips140_modules: Vec<(String, usize)>,
    /// Any `runtime/cgo.` function present (cgo runtime linked in).
    pub runtime_cgo: bool,
}

const MAGICS: [u32; 4] = [0xffff_fff1, 0xffff_fff0, 0xffff_fffa, 0xffff_fffb];

/// Read the function names of a Go ELF binary; `None` when no pclntab is found.
pub fn read(elf: &Elf<'_>) -> Option<Symbols> {
    if let Some(s) = elf.section(".gopclntab")
        && let Some(data) = elf.section_data(s)
        && let Some(names) = funcnames(data, elf.big_endian)
    {
        return Some(scan(names, "section"));
    }
    // Fallback: the table sits in a read-only, non-executable segment (or the text segment for
    // some linkers); validate candidates at 8-byte alignment strictly to avoid false hits.
    for seg in elf
        .segments
        .iter()
        .filter(|s| s.p_type == PT_LOAD && s.flags & PF_W == 0)
    {
        let Some(data) = elf.segment_data(seg) else {
            continue;
        };
        let mut i = 0usize;
        while i + 64 <= data.len() {
            let tail = &data[i..];
            let r = Reader {
                data: tail,
                big_endian: elf.big_endian,
            };
            if r.u32(0).is_some_and(|m| MAGICS.contains(&m))
                && let Some(names) = funcnames(tail, elf.big_endian)
                && names.windows(8).any(|w| w == b"runtime.")
            {
                return Some(scan(names, "segment-scan"));
            }
            i += 8;
        }
    }
    None
}

/// Slice of the `funcnametab` for Go ≥1.16 tables, or the whole table for older layouts.
fn funcnames(data: &[u8], big_endian: bool) -> Option<&[u8]> {
    let r = Reader { data, big_endian };
    let magic = r.u32(0)?;
    if !MAGICS.contains(&magic) || data.get(4..6)? != [0, 0] {
        return None;
    }
    let quantum = data[6];
    let ptr = data[7];
    if !matches!(quantum, 1 | 2 | 4) || !matches!(ptr, 4 | 8) {
        return None;
    }
    let w = |k: u64| r.word(8 + k * u64::from(ptr), ptr);
    let (nfunc, name_off, cu_off) = match magic {
        0xffff_fff1 | 0xffff_fff0 => (w(0)?, w(3)?, w(4)?),
        0xffff_fffa => (w(0)?, w(2)?, w(3)?),
        // Go 1.2–1.15: names are spread through the table; scanning all of it is enough here.
        _ => return Some(data),
    };
    let len = data.len() as u64;
    if nfunc == 0 || nfunc > len || name_off >= cu_off || cu_off > len || name_off < 8 {
        return None;
    }
    data.get(name_off as usize..cu_off as usize)
}

fn scan(names: &[u8], located: &str) -> Symbols {
    let mut s = Symbols {
        located: located.to_string(),
        ..Symbols::default()
    };
    let mut modules: Vec<(String, usize)> = Vec::new();
    for raw in names.split(|&b| b == 0) {
        if raw.is_empty() {
            continue;
        }
        s.function_count += 1;
        let Ok(name) = std::str::from_utf8(raw) else {
            continue;
        };
        match name {
            FIPSONLY_INIT => s.fipsonly_init = true,
            SIG_FIPSONLY => s.sig_fipsonly = true,
            SIG_BORING => s.sig_boring = true,
            SIG_STANDARD => s.sig_standard = true,
            _ => {}
        }
        if name.starts_with(BORING_CFUNC_PREFIX) {
            s.boring_cfuncs += 1;
            if s.boring_cfunc_example.is_none() {
                s.boring_cfunc_example = Some(name.to_string());
            }
        }
        if name.starts_with("runtime/cgo.") {
            s.runtime_cgo = true;
        }
        if let Some(rest) = name.strip_prefix(FIPS140_PREFIX)
            && rest.starts_with(|c: char| c.is_ascii_digit())
        {
            let v = format!("v{}", rest.split('/').next().unwrap_or(rest));
            match modules.iter_mut().find(|(m, _)| *m == v) {
                Some((_, n)) => *n += 1,
                None => modules.push((v, 1)),
            }
        }
    }
    s.fips140_modules = modules;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(names: &[&str]) -> Vec<u8> {
        let mut nametab = Vec::new();
        for n in names {
            nametab.extend_from_slice(n.as_bytes());
            nametab.push(0);
        }
        let mut t = vec![0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8];
        let hdr = 8 + 8 * 8;
        let words = [
            names.len() as u64,
            1,
            0,
            hdr as u64,
            (hdr + nametab.len()) as u64,
            (hdr + nametab.len()) as u64,
            (hdr + nametab.len()) as u64,
            (hdr + nametab.len()) as u64,
        ];
        for w in words {
            t.extend_from_slice(&w.to_le_bytes());
        }
        t.extend_from_slice(&nametab);
        t
    }

    #[test]
    fn finds_markers_and_module_versions() {
        let t = table(&[
            "runtime.main",
            FIPSONLY_INIT,
            "crypto/internal/boring._Cfunc__goboringcrypto_FIPS_mode",
            "crypto/internal/fips140/v1.0.0-c2097c7c/aes.New",
            "crypto/internal/fips140/v1.0.0-c2097c7c/sha256.New",
            "crypto/internal/fips140/aes.New",
        ]);
        let names = funcnames(&t, false).unwrap();
        let s = scan(names, "section");
        assert!(s.fipsonly_init && !s.sig_fipsonly);
        assert_eq!(s.boring_cfuncs, 1);
        assert_eq!(s.fips140_modules, vec![("v1.0.0-c2097c7c".into(), 2)]);
        assert_eq!(s.function_count, 6);
    }

    #[test]
    fn rejects_inconsistent_headers() {
        let mut t = table(&["runtime.main"]);
        t[8 + 3 * 8] = 0xff; // funcnametab offset past the end
        assert!(funcnames(&t, false).is_none());
        assert!(funcnames(&t[..10], false).is_none());
    }
}
