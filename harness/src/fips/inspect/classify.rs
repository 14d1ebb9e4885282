//! Classification of a Go binary into a FIPS family (fips-policy §5.4) with the evidence for
//! every conclusion: Go version, experiments, CGO, linkage, native FIPS mode and module version.
//! Pure CPU work over bytes; the independent scans run in parallel on rayon.

use super::buildinfo::{self, BuildInfo, BuildInfoError};
use super::elf::{Elf, ElfError};
use super::markers::{self, Markers};
use super::pclntab::{self, Symbols};
use super::source::{Mapped, SourceError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// The FIPS family a binary belongs to; decides which TLS policy applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Family {
    /// `GOEXPERIMENT=boringcrypto` and `crypto/tls/fipsonly` linked: TLS restricted.
    #[serde(rename = "boringcrypto+fipsonly")]
    BoringFipsOnly,
    /// BoringCrypto without fipsonly: the TLS policy is plain Go's.
    #[serde(rename = "boringcrypto")]
    Boring,
    /// Go native FIPS 140-3 mode on by default (`fips140=on|only` in `DefaultGODEBUG`).
    #[serde(rename = "native")]
    Native,
    /// No FIPS mode.
    #[serde(rename = "none")]
    None,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::BoringFipsOnly => "boringcrypto+fipsonly",
            Family::Boring => "boringcrypto",
            Family::Native => "native",
            Family::None => "none",
        }
    }
    /// Whether TLS is restricted to FIPS-approved parameters.
    pub fn is_fips(self) -> bool {
        matches!(self, Family::BoringFipsOnly | Family::Native)
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Linkage {
    Static,
    Dynamic,
}

/// One piece of evidence: which conclusion, from which part of the binary, what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub conclusion: String,
    pub source: String,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("not a Go binary: {0}")]
    NotGo(String),
    #[error("malformed build info at offset {offset}: {reason}")]
    MalformedBuildInfo { offset: u64, reason: String },
    #[error("truncated: {0}")]
    Truncated(String),
    #[error("`{path}` is {kind}, not a regular file")]
    NotRegular { path: String, kind: &'static str },
    #[error("could not read `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Everything learnt about one binary.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// SHA-256 of the whole binary when it was read whole (image layers); `inspect_file` reads
    /// only the parts it needs and leaves this empty.
    pub sha256: Option<String>,
    pub size: u64,
    pub family: Family,
    /// `on` or `only` for the native family.
    pub native_mode: Option<String>,
    /// The Go Cryptographic Module: `GOFIPS140` value, frozen `vX` path, or `latest` (in-tree).
    pub fips_module: Option<String>,
    pub go_version: String,
    pub go_version_raw: String,
    pub experiments: Vec<String>,
    pub cgo: Option<bool>,
    pub linkage: Linkage,
    pub interpreter: Option<String>,
    pub arch: String,
    pub main_path: String,
    pub warnings: Vec<String>,
    pub evidence: Vec<Evidence>,
    pub build_info: BuildInfo,
    pub symbols: Option<Symbols>,
    pub markers: Markers,
}

/// Inspect a file through a read-only memory map: only the pages the scans touch are loaded
/// (the build info, the function-name table, the executable segments for the amd64 markers,
/// released again as the scan moves on), so memory stays bounded whatever the file size.
/// Non-regular files are refused before they are opened.
pub fn inspect_file(path: &Path) -> Result<Inspection, InspectError> {
    let map = Mapped::open(path).map_err(|e| match e {
        SourceError::NotRegular { path, kind } => InspectError::NotRegular { path, kind },
        SourceError::Io { path, source } => InspectError::Read { path, source },
    })?;
    inspect_impl(map.bytes(), false, &|part| map.release(part))
}

/// Where the header tables or a segment the inspection needs run past the end of the file.
fn truncation(elf: &Elf<'_>, len: u64) -> Option<String> {
    use super::elf::PT_LOAD;
    let past = |off: u64, n: u64| off.checked_add(n).is_none_or(|end| end > len);
    for (i, (off, n)) in elf.table_ranges.iter().enumerate().take(2) {
        if *n > 0 && *off > 0 && past(*off, *n) {
            let what = if i == 0 {
                "program header table"
            } else {
                "section header table"
            };
            return Some(format!(
                "the {what} (offset {off}, {n} bytes) runs past the end of the file ({len} bytes)"
            ));
        }
    }
    for name in [".go.buildinfo", ".gopclntab"] {
        if let Some(s) = elf.section(name).filter(|s| past(s.offset, s.size)) {
            return Some(format!(
                "section `{name}` (offset {}, {} bytes) runs past the end of the file ({len} bytes)",
                s.offset, s.size
            ));
        }
    }
    elf.segments
        .iter()
        .find(|s| s.p_type == PT_LOAD && past(s.offset, s.filesz))
        .map(|s| format!(
            "a loadable segment (offset {}, {} bytes) runs past the end of the file ({len} bytes)",
            s.offset, s.filesz
        ))
}

/// Inspect the bytes of a binary.
pub fn inspect_bytes(data: &[u8]) -> Result<Inspection, InspectError> {
    inspect_impl(data, true, &|_| {})
}

fn inspect_impl(
    data: &[u8],
    hash: bool,
    release: &(dyn Fn(&[u8]) + Sync),
) -> Result<Inspection, InspectError> {
    let elf = match Elf::parse(data) {
        Ok(e) => e,
        Err(ElfError::NotElf) => {
            let what = if data.starts_with(b"MZ") {
                "a PE file (only ELF is supported)"
            } else if [
                b"\xcf\xfa\xed\xfe",
                b"\xce\xfa\xed\xfe",
                b"\xfe\xed\xfa\xcf",
            ]
            .iter()
            .any(|m| data.starts_with(*m))
            {
                "a Mach-O file (only ELF is supported)"
            } else if data.len() < 4 {
                "the file is too short to be an executable"
            } else {
                "not an ELF file"
            };
            return Err(InspectError::NotGo(what.into()));
        }
        Err(ElfError::Malformed(m)) if m.contains("truncated") => {
            return Err(InspectError::Truncated(format!(
                "the ELF {}",
                m.trim_start_matches("truncated ")
            )));
        }
        Err(ElfError::Malformed(m)) => {
            return Err(InspectError::NotGo(format!("malformed ELF: {m}")));
        }
    };
    if let Some(t) = truncation(&elf, data.len() as u64) {
        return Err(InspectError::Truncated(t));
    }
    // Hashing and the three scans are independent: run them side by side.
    let ((sha, (bi, syms)), marks) = rayon::join(
        || {
            rayon::join(
                || hash.then(|| hex::encode(Sha256::digest(data))),
                || rayon::join(|| buildinfo::read(&elf), || pclntab::read(&elf)),
            )
        },
        || markers::scan(&elf, release),
    );
    let bi = bi.map_err(|e| match e {
        BuildInfoError::NotGo => InspectError::NotGo("no Go build info blob found".into()),
        BuildInfoError::Malformed { offset, reason } => {
            InspectError::MalformedBuildInfo { offset, reason }
        }
    })?;
    Ok(classify(&elf, data.len() as u64, sha, bi, syms, marks))
}

/// The last `fips140=` value in a GODEBUG-style list (later entries win, as at run time).
pub fn godebug_value<'a>(list: &'a str, key: &str) -> Option<&'a str> {
    list.rsplit(',')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn classify(
    elf: &Elf<'_>,
    size: u64,
    sha256: Option<String>,
    bi: BuildInfo,
    syms: Option<Symbols>,
    marks: Markers,
) -> Inspection {
    let mut ev = Vec::new();
    let mut warnings = Vec::new();
    let mut add = |c: &str, s: &str, d: String| {
        ev.push(Evidence {
            conclusion: c.into(),
            source: s.into(),
            detail: d,
        })
    };
    let located = match bi.located {
        buildinfo::Located::Section => "`.go.buildinfo` section",
        buildinfo::Located::SegmentScan => "scan of the writable segment (no section headers)",
    };
    add(
        "go-binary",
        "buildinfo",
        format!("build info at file offset {} via {located}", bi.offset),
    );
    add(
        "go-version",
        "buildinfo",
        format!("version string `{}`", bi.go_version_raw),
    );

    // BoringCrypto: experiment in the version string or GOEXPERIMENT, corroborated by symbols.
    let mut boring = false;
    if bi
        .experiments
        .iter()
        .any(|e| e.eq_ignore_ascii_case("boringcrypto"))
    {
        boring = true;
        add(
            "boringcrypto",
            "buildinfo",
            format!("version `{}` carries `X:boringcrypto`", bi.go_version_raw),
        );
    }
    if let Some(x) = bi.setting("GOEXPERIMENT")
        && x.split(',')
            .any(|e| e.trim().eq_ignore_ascii_case("boringcrypto"))
    {
        boring = true;
        add(
            "boringcrypto",
            "buildinfo",
            format!("build setting `GOEXPERIMENT={x}`"),
        );
    }
    let mut fipsonly = false;
    if let Some(s) = &syms {
        if s.sig_boring {
            boring = true;
            add(
                "boringcrypto",
                "pclntab",
                format!("function `{}`", pclntab::SIG_BORING),
            );
        }
        if s.boring_cfuncs > 0 {
            boring = true;
            add(
                "boringcrypto",
                "pclntab",
                format!(
                    "{} BoringCrypto cgo functions, e.g. `{}`",
                    s.boring_cfuncs,
                    s.boring_cfunc_example.as_deref().unwrap_or("")
                ),
            );
        }
        if s.fipsonly_init {
            fipsonly = true;
            add(
                "fipsonly",
                "pclntab",
                format!("function `{}`", pclntab::FIPSONLY_INIT),
            );
        }
        if s.sig_fipsonly {
            fipsonly = true;
            add(
                "fipsonly",
                "pclntab",
                format!("function `{}`", pclntab::SIG_FIPSONLY),
            );
        }
    }
    if let Some(o) = marks.boring_crypto {
        boring = true;
        add(
            "boringcrypto",
            "amd64-marker",
            format!("BoringCrypto signature at file offset {o}"),
        );
    }
    if let Some(o) = marks.fips_only {
        fipsonly = true;
        add(
            "fipsonly",
            "amd64-marker",
            format!("FIPSOnly signature at file offset {o}"),
        );
    }
    if let Some(o) = marks.standard_crypto {
        add(
            "standard-crypto",
            "amd64-marker",
            format!("StandardCrypto signature at file offset {o}"),
        );
    }

    // Native FIPS 140-3: the default GODEBUG decides; GOFIPS140 selects the module.
    let default_godebug = bi.setting("DefaultGODEBUG").unwrap_or("");
    let fips140 = godebug_value(default_godebug, "fips140");
    let gofips = bi.setting("GOFIPS140").filter(|v| *v != "off");
    let native_mode = match fips140 {
        Some(v @ ("on" | "only")) => {
            add(
                "native-fips",
                "buildinfo",
                format!("`DefaultGODEBUG` contains `fips140={v}`"),
            );
            Some(v.to_string())
        }
        _ => None,
    };
    let frozen = syms
        .as_ref()
        .and_then(|s| s.fips140_modules.iter().max_by_key(|(_, n)| *n).cloned());
    let mut fips_module = None;
    if let Some(g) = gofips {
        add(
            "fips-module",
            "buildinfo",
            format!("build setting `GOFIPS140={g}`"),
        );
        fips_module = Some(g.to_string());
        if native_mode.is_none() {
            warnings.push(format!(
                "built with `GOFIPS140={g}` but `DefaultGODEBUG` has `fips140={}`: FIPS mode is off unless GODEBUG turns it on",
                fips140.unwrap_or("(unset)")
            ));
        }
    }
    if let Some((v, n)) = &frozen {
        add(
            "fips-module",
            "pclntab",
            format!("{n} functions under `crypto/internal/fips140/{v}/`"),
        );
        fips_module.get_or_insert_with(|| v.clone());
    }
    if native_mode.is_some() && fips_module.is_none() {
        add(
            "fips-module",
            "buildinfo",
            "no `GOFIPS140` setting and no frozen module path: the in-tree module (`latest`)"
                .into(),
        );
        fips_module = Some("latest".into());
    }

    let family = match (boring, fipsonly, native_mode.is_some()) {
        (true, true, _) => Family::BoringFipsOnly,
        (true, false, _) => Family::Boring,
        (false, _, true) => Family::Native,
        (false, _, false) => Family::None,
    };
    if family == Family::Boring {
        warnings.push(
            "boringcrypto without `crypto/tls/fipsonly`: TLS is not restricted to FIPS settings"
                .into(),
        );
    }
    if boring && native_mode.is_some() {
        warnings.push(
            "boringcrypto with `fips140` on in `DefaultGODEBUG`: such a binary panics at start-up"
                .into(),
        );
    }
    if !boring && fipsonly {
        warnings.push("fipsonly markers without BoringCrypto: inconsistent binary".into());
    }

    let cgo = match bi.setting("CGO_ENABLED") {
        Some(v) => {
            add(
                "cgo",
                "buildinfo",
                format!("build setting `CGO_ENABLED={v}`"),
            );
            Some(v == "1")
        }
        None => syms.as_ref().filter(|s| s.runtime_cgo).map(|_| {
            add("cgo", "pclntab", "`runtime/cgo.` functions present".into());
            true
        }),
    };
    if boring && cgo == Some(false) {
        warnings.push("boringcrypto with `CGO_ENABLED=0`: inconsistent build settings".into());
    }
    let interpreter = elf.interpreter();
    let linkage = if elf.is_dynamic() {
        add(
            "linkage",
            "elf",
            match &interpreter {
                Some(i) => format!("dynamic: `PT_INTERP` is `{i}`"),
                None => "dynamic: `PT_DYNAMIC` segment".into(),
            },
        );
        Linkage::Dynamic
    } else {
        add(
            "linkage",
            "elf",
            "static: no `PT_INTERP` or `PT_DYNAMIC` segment".into(),
        );
        Linkage::Static
    };
    if syms.is_none() {
        warnings
            .push("no `.gopclntab` found: fipsonly evidence rests on amd64 markers only".into());
    }
    Inspection {
        sha256,
        size,
        family,
        native_mode,
        fips_module,
        go_version: bi.go_version.clone(),
        go_version_raw: bi.go_version_raw.clone(),
        experiments: bi.experiments.clone(),
        cgo,
        linkage,
        interpreter,
        arch: elf.arch(),
        main_path: bi.path.clone(),
        warnings,
        evidence: ev,
        build_info: bi,
        symbols: syms,
        markers: marks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn godebug_last_wins() {
        assert_eq!(godebug_value("a=1,fips140=on,b=2", "fips140"), Some("on"));
        assert_eq!(
            godebug_value("fips140=on,fips140=off", "fips140"),
            Some("off")
        );
        assert_eq!(godebug_value("", "fips140"), None);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for data in [&b""[..], b"\x7fEL", b"hello world", b"MZ\x90\x00\x03"] {
            let e = inspect_bytes(data).unwrap_err();
            assert!(e.to_string().starts_with("not a Go binary"), "{e}");
        }
    }
}
