//! Go build-info: locate the `\xff Go buildinf:` blob (section or writable-segment scan), decode
//! the inline (Go ≥1.18) and pointer (older) formats, the modinfo text and the version string.
//! Pure parsing over bytes; every malformed length or varint is an error naming its file offset.

use super::elf::{Elf, PF_W, PF_X, PT_LOAD};
use serde::Serialize;

/// The 14-byte magic that starts the blob, always at a 16-byte aligned virtual address.
pub const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
/// modinfo framing sentinels (`cmd/go/internal/modload/build.go`). Like `debug/buildinfo`,
/// parsing relies on the framing rule only, not on their values.
pub const INFO_START: [u8; 16] = [
    0x30, 0x77, 0xaf, 0x0c, 0x92, 0x74, 0x08, 0x02, 0x41, 0xe1, 0xc1, 0x07, 0xe6, 0xd6, 0x18, 0xe6,
];
pub const INFO_END: [u8; 16] = [
    0xf9, 0x32, 0x43, 0x31, 0x86, 0x18, 0x20, 0x72, 0x00, 0x82, 0x42, 0x10, 0x41, 0x16, 0xd8, 0xf2,
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildInfoError {
    #[error("not a Go binary (no build info blob found)")]
    NotGo,
    #[error("malformed build info at offset {offset}: {reason}")]
    Malformed { offset: u64, reason: String },
}

fn malformed(offset: u64, reason: impl Into<String>) -> BuildInfoError {
    BuildInfoError::Malformed {
        offset,
        reason: reason.into(),
    }
}

/// How the blob was found: the evidence for "this is a Go binary".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Located {
    /// The `.go.buildinfo` section.
    Section,
    /// A scan of the writable, non-executable `PT_LOAD` segment (no section headers).
    SegmentScan,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Module {
    pub path: String,
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sum: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace: Option<Box<Module>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    /// File offset of the magic.
    pub offset: u64,
    pub located: Located,
    /// The raw version string, e.g. `go1.26.6-X:boringcrypto`.
    pub go_version_raw: String,
    /// The base version, e.g. `go1.26.6`.
    pub go_version: String,
    /// Experiments from the `X:` suffix, e.g. `["boringcrypto"]`.
    pub experiments: Vec<String>,
    pub path: String,
    pub main: Option<Module>,
    pub deps: Vec<Module>,
    /// `build` settings in emission order.
    pub settings: Vec<(String, String)>,
}

impl BuildInfo {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Find and decode the build info of an ELF binary.
pub fn read(elf: &Elf<'_>) -> Result<BuildInfo, BuildInfoError> {
    let (offset, located) = locate(elf).ok_or(BuildInfoError::NotGo)?;
    decode_at(elf, offset, located)
}

/// Search for the magic at a 16-byte aligned virtual address: first in `.go.buildinfo`, then
/// (no section headers, as after `strip --strip-section-headers` or zeroing) in every writable,
/// non-executable `PT_LOAD` segment, whole, because externally linked static binaries put the
/// blob after `.data`, not at the segment start.
fn locate(elf: &Elf<'_>) -> Option<(u64, Located)> {
    if let Some(s) = elf.section(".go.buildinfo")
        && let Some(data) = elf.section_data(s)
        && let Some(i) = find_aligned(data, s.addr)
    {
        return Some((s.offset + i as u64, Located::Section));
    }
    for seg in elf
        .segments
        .iter()
        .filter(|s| s.p_type == PT_LOAD && s.flags & (PF_X | PF_W) == PF_W)
    {
        if let Some(data) = elf.segment_data(seg)
            && let Some(i) = find_aligned(data, seg.vaddr)
        {
            return Some((seg.offset + i as u64, Located::SegmentScan));
        }
    }
    None
}

/// Index of the first magic whose virtual address (`base + index`) is 16-byte aligned.
fn find_aligned(data: &[u8], base: u64) -> Option<usize> {
    let first = ((16 - (base % 16)) % 16) as usize;
    (first..data.len())
        .step_by(16)
        .find(|&i| data[i..].starts_with(MAGIC))
}

fn decode_at(elf: &Elf<'_>, offset: u64, located: Located) -> Result<BuildInfo, BuildInfoError> {
    let r = elf.reader();
    let header = r
        .bytes(offset, 32)
        .ok_or_else(|| malformed(offset, "header truncated (need 32 bytes)"))?;
    let ptr_size = header[14];
    let flags = header[15];
    let (version, modinfo) = if flags & 0x2 != 0 {
        let mut pos = offset + 32;
        let v = read_string(elf.data, &mut pos)?;
        let m = read_string(elf.data, &mut pos)?;
        (v, m)
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(malformed(
                offset + 14,
                format!("pointer size {ptr_size} is neither 4 nor 8"),
            ));
        }
        let pr = super::elf::Reader {
            data: elf.data,
            big_endian: flags & 0x1 != 0,
        };
        let v = read_go_string(elf, pr, offset + 16, ptr_size)?;
        let m = read_go_string(elf, pr, offset + 16 + u64::from(ptr_size), ptr_size)?;
        (v, m)
    };
    let go_version_raw = String::from_utf8(version.to_vec())
        .map_err(|_| malformed(offset + 32, "version string is not UTF-8"))?;
    if go_version_raw.is_empty() {
        return Err(malformed(offset + 32, "empty version string"));
    }
    let (go_version, experiments) = split_version(&go_version_raw);
    let text = strip_sentinels(modinfo);
    let text = String::from_utf8_lossy(text);
    let mut info = BuildInfo {
        offset,
        located,
        go_version_raw,
        go_version,
        experiments,
        path: String::new(),
        main: None,
        deps: Vec::new(),
        settings: Vec::new(),
    };
    parse_modinfo(&text, &mut info).map_err(|reason| malformed(offset, reason))?;
    Ok(info)
}

/// `binary.Uvarint`: LEB128, at most 10 bytes, rejecting overflow.
pub fn uvarint(data: &[u8], pos: u64) -> Result<(u64, u64), BuildInfoError> {
    let mut x: u64 = 0;
    let mut shift = 0u32;
    for i in 0..10u64 {
        let b = *data
            .get(usize::try_from(pos + i).unwrap_or(usize::MAX))
            .ok_or_else(|| malformed(pos, "varint runs past the end of the file"))?;
        if i == 9 && b > 1 {
            return Err(malformed(pos, "varint overflows 64 bits"));
        }
        x |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok((x, i + 1));
        }
        shift += 7;
    }
    Err(malformed(pos, "varint longer than 10 bytes"))
}

/// A uvarint-length-prefixed string; advances `pos`.
fn read_string<'a>(data: &'a [u8], pos: &mut u64) -> Result<&'a [u8], BuildInfoError> {
    let (len, n) = uvarint(data, *pos)?;
    let start = *pos + n;
    let end = start
        .checked_add(len)
        .filter(|&e| e <= data.len() as u64)
        .ok_or_else(|| malformed(*pos, format!("length {len} runs past the end of the file")))?;
    *pos = end;
    Ok(&data[start as usize..end as usize])
}

/// Pointer format: a word pointing at a Go string header `{data, len}`.
fn read_go_string<'a>(
    elf: &Elf<'a>,
    r: super::elf::Reader<'a>,
    at: u64,
    ptr: u8,
) -> Result<&'a [u8], BuildInfoError> {
    let hdr_addr = r
        .word(at, ptr)
        .ok_or_else(|| malformed(at, "pointer truncated"))?;
    let hdr = elf.vaddr_to_offset(hdr_addr).ok_or_else(|| {
        malformed(
            at,
            format!("pointer {hdr_addr:#x} is outside every segment"),
        )
    })?;
    let data_addr = r
        .word(hdr, ptr)
        .ok_or_else(|| malformed(hdr, "string header truncated"))?;
    let len = r
        .word(hdr + u64::from(ptr), ptr)
        .ok_or_else(|| malformed(hdr, "string header truncated"))?;
    if len == 0 {
        return Ok(&[]);
    }
    let off = elf.vaddr_to_offset(data_addr).ok_or_else(|| {
        malformed(
            hdr,
            format!("string pointer {data_addr:#x} is outside every segment"),
        )
    })?;
    r.bytes(off, len).ok_or_else(|| {
        malformed(
            hdr,
            format!("string length {len} runs past the end of the file"),
        )
    })
}

fn strip_sentinels(m: &[u8]) -> &[u8] {
    // Same rule as debug/buildinfo: framed iff long enough and a newline right before the end sentinel.
    if m.len() >= 33 && m[m.len() - 17] == b'\n' {
        &m[16..m.len() - 16]
    } else {
        &[]
    }
}

/// Split `go1.25.5 X:boringcrypto` / `go1.26.6-X:boringcrypto` (either separator, any case of
/// `X:`) into the base version and the experiments.
pub fn split_version(raw: &str) -> (String, Vec<String>) {
    let lower = raw.to_ascii_lowercase();
    let mut search = 0;
    while let Some(i) = lower[search..].find("x:").map(|i| i + search) {
        if i > 0 && matches!(raw.as_bytes()[i - 1], b' ' | b'-') {
            let base = raw[..i - 1].trim().to_string();
            let rest = &raw[i + 2..];
            let rest = rest.split_whitespace().next().unwrap_or("");
            let exps = rest
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            return (base, exps);
        }
        search = i + 2;
    }
    (raw.trim().to_string(), Vec::new())
}

/// `runtime/debug.ParseBuildInfo`, tolerant of unknown line kinds.
fn parse_modinfo(text: &str, info: &mut BuildInfo) -> Result<(), String> {
    let mut last_is_main = false;
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.is_empty() {
            continue;
        }
        let (kind, rest) = line.split_once('\t').unwrap_or((line, ""));
        match kind {
            "go" => {}
            "path" => info.path = rest.to_string(),
            "mod" | "dep" => {
                let m =
                    parse_module(rest).ok_or(format!("modinfo line {line_no}: bad module line"))?;
                if kind == "mod" {
                    info.main = Some(m);
                    last_is_main = true;
                } else {
                    info.deps.push(m);
                    last_is_main = false;
                }
            }
            "=>" => {
                let m = parse_module(rest)
                    .ok_or(format!("modinfo line {line_no}: bad replacement line"))?;
                let target = if last_is_main {
                    info.main.as_mut()
                } else {
                    info.deps.last_mut()
                };
                match target {
                    Some(t) => t.replace = Some(Box::new(m)),
                    None => {
                        return Err(format!(
                            "modinfo line {line_no}: replacement without a module"
                        ));
                    }
                }
            }
            "build" => {
                let (k, v) = parse_setting(rest)
                    .ok_or(format!("modinfo line {line_no}: bad build setting"))?;
                info.settings.push((k, v));
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_module(rest: &str) -> Option<Module> {
    let mut f = rest.split('\t');
    let path = f.next()?.to_string();
    if path.is_empty() {
        return None;
    }
    Some(Module {
        path,
        version: f.next().unwrap_or("").to_string(),
        sum: f.next().unwrap_or("").to_string(),
        replace: None,
    })
}

/// `key=value`, each possibly Go-quoted (`strconv.Quote`).
fn parse_setting(s: &str) -> Option<(String, String)> {
    let (key, rest) = if s.starts_with('"') {
        let (k, used) = unquote_prefix(s)?;
        (k, s.get(used..)?.strip_prefix('=')?)
    } else {
        let (k, v) = s.split_once('=')?;
        (k.to_string(), v)
    };
    if key.is_empty() {
        return None;
    }
    let value = if rest.starts_with('"') {
        let (v, used) = unquote_prefix(rest)?;
        if used != rest.len() {
            return None;
        }
        v
    } else {
        rest.to_string()
    };
    Some((key, value))
}

/// Decode a Go double-quoted string at the start of `s`; returns it and the bytes consumed.
pub fn unquote_prefix(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut out: Vec<u8> = Vec::new();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'"' => return Some((String::from_utf8(out).ok()?, i + 1)),
            b'\\' => {
                let c = *b.get(i + 1)?;
                i += 2;
                match c {
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'v' => out.push(11),
                    b'\\' => out.push(b'\\'),
                    b'"' => out.push(b'"'),
                    b'\'' => out.push(b'\''),
                    b'x' => {
                        let h = s.get(i..i + 2)?;
                        out.push(u8::from_str_radix(h, 16).ok()?);
                        i += 2;
                    }
                    b'u' | b'U' => {
                        let n = if c == b'u' { 4 } else { 8 };
                        let h = s.get(i..i + n)?;
                        let ch = char::from_u32(u32::from_str_radix(h, 16).ok()?)?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        i += n;
                    }
                    b'0'..=b'7' => {
                        let h = s.get(i - 1..i + 2)?;
                        out.push(u8::from_str_radix(h, 8).ok()?);
                        i += 2;
                    }
                    _ => return None,
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_spellings() {
        assert_eq!(
            split_version("go1.25.5 X:boringcrypto"),
            ("go1.25.5".into(), vec!["boringcrypto".to_string()])
        );
        assert_eq!(
            split_version("go1.26.6-X:boringcrypto"),
            ("go1.26.6".into(), vec!["boringcrypto".to_string()])
        );
        assert_eq!(
            split_version("go1.22.1-abc x:systemcrypto,foo"),
            (
                "go1.22.1-abc".into(),
                vec!["systemcrypto".to_string(), "foo".to_string()]
            )
        );
        assert_eq!(split_version("go1.27.3"), ("go1.27.3".into(), vec![]));
    }

    #[test]
    fn settings_with_go_quoting() {
        assert_eq!(
            parse_setting(r#"-ldflags="-s -w -X main.v=\"1\"""#),
            Some(("-ldflags".into(), r#"-s -w -X main.v="1""#.into()))
        );
        assert_eq!(
            parse_setting("DefaultGODEBUG=fips140=on,tlsmlkem=0"),
            Some(("DefaultGODEBUG".into(), "fips140=on,tlsmlkem=0".into()))
        );
        assert_eq!(
            parse_setting(r#""a b"="\x41\u00e9\t""#),
            Some(("a b".into(), "Aé\t".into()))
        );
        assert_eq!(parse_setting(r#""unterminated=1"#), None);
    }

    #[test]
    fn uvarint_errors() {
        assert_eq!(uvarint(&[0x96, 0x01], 0).unwrap(), (150, 2));
        assert!(uvarint(&[0x80, 0x80], 0).is_err());
        assert!(uvarint(&[0xff; 11], 0).is_err());
    }

    #[test]
    fn modinfo_with_replacements() {
        let text = "path\texample.com/x\nmod\texample.com/x\t(devel)\t\ndep\tgolang.org/x/net\tv0.1.0\th1:abc\n=>\t../net\t(devel)\t\nbuild\tCGO_ENABLED=0\n";
        let empty = BuildInfo {
            offset: 0,
            located: Located::Section,
            go_version_raw: String::new(),
            go_version: String::new(),
            experiments: vec![],
            path: String::new(),
            main: None,
            deps: vec![],
            settings: vec![],
        };
        let mut info = empty.clone();
        parse_modinfo(text, &mut info).unwrap();
        assert_eq!(info.path, "example.com/x");
        assert_eq!(info.deps[0].replace.as_ref().unwrap().path, "../net");
        assert_eq!(info.setting("CGO_ENABLED"), Some("0"));
        assert!(parse_modinfo("=>\tx\tv1\n", &mut empty.clone()).is_err());
    }
}
