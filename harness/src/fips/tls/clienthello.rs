//! ClientHello capture: reads the first handshake message off a socket (one or more TLS
//! records) and parses what the client offers. Returns the raw bytes so the caller can replay
//! them into a real TLS stack. Never trusts a length it has not bounds-checked.

use super::codepoints::{self, TlsVersion, ext};
use std::io::Read;

/// The largest ClientHello accepted (a post-quantum hello is ~1.5 KiB; 64 KiB is generous).
const MAX_HELLO: usize = 64 * 1024;

/// What a client offered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientHello {
    /// `legacy_version` of the hello body.
    pub legacy_version: TlsVersion,
    /// Offered versions: `supported_versions` when present, otherwise `legacy_version`; no GREASE.
    pub versions: Vec<TlsVersion>,
    /// Cipher suites in offer order, GREASE removed.
    pub suites: Vec<u16>,
    /// `supported_groups` in offer order, GREASE removed.
    pub groups: Vec<u16>,
    /// Groups with a `key_share` entry.
    pub key_shares: Vec<u16>,
    /// `signature_algorithms` in offer order.
    pub sigalgs: Vec<u16>,
    /// Whether `extended_master_secret` was offered.
    pub ems: bool,
    /// Every extension type in wire order, GREASE removed.
    pub extensions: Vec<u16>,
    /// The `server_name` host, if any.
    pub server_name: Option<String>,
}

/// Why no ClientHello could be read or parsed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum HelloError {
    #[error("read the ClientHello: {0}")]
    Io(String),
    #[error("the peer closed the connection after {0} byte(s), before a complete ClientHello")]
    Truncated(usize),
    #[error("record type {0} is not a handshake record (22): not TLS")]
    NotHandshake(u8),
    #[error("record version 0x{0:04x} is not TLS")]
    BadRecordVersion(u16),
    #[error("record length {0} is out of range")]
    BadRecordLength(usize),
    #[error("handshake message type {0} is not ClientHello (1)")]
    NotClientHello(u8),
    #[error("ClientHello of {0} byte(s) exceeds the {MAX_HELLO}-byte limit")]
    TooLarge(usize),
    #[error("malformed ClientHello: {0}")]
    Malformed(&'static str),
}

/// Read the first handshake message from `r`; returns the raw bytes read (for replay) and the
/// parsed hello. The caller sets read timeouts on the socket.
pub fn read_client_hello(r: &mut impl Read) -> (Vec<u8>, Result<ClientHello, HelloError>) {
    let mut raw = Vec::with_capacity(1024);
    let res = read_handshake(r, &mut raw).and_then(|msg| parse_handshake(&msg));
    (raw, res)
}

fn read_exact_into(r: &mut impl Read, raw: &mut Vec<u8>, n: usize) -> Result<(), HelloError> {
    let start = raw.len();
    raw.resize(start + n, 0);
    let mut got = 0;
    while got < n {
        match r.read(&mut raw[start + got..]) {
            Ok(0) => {
                raw.truncate(start + got);
                return Err(HelloError::Truncated(raw.len()));
            }
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                raw.truncate(start + got);
                let what = match e.kind() {
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                        format!("timed out after {} byte(s)", raw.len())
                    }
                    _ => e.to_string(),
                };
                return Err(HelloError::Io(what));
            }
        }
    }
    Ok(())
}

/// Reassemble one handshake message from records read off `r`.
fn read_handshake(r: &mut impl Read, raw: &mut Vec<u8>) -> Result<Vec<u8>, HelloError> {
    let mut msg = Vec::new();
    loop {
        let at = raw.len();
        read_exact_into(r, raw, 5)?;
        let h = &raw[at..at + 5];
        let (ty, ver, len) = (
            h[0],
            u16::from_be_bytes([h[1], h[2]]),
            u16::from_be_bytes([h[3], h[4]]) as usize,
        );
        if ty != 22 {
            return Err(HelloError::NotHandshake(ty));
        }
        if ver >> 8 != 3 {
            return Err(HelloError::BadRecordVersion(ver));
        }
        if len == 0 || len > 16384 + 256 {
            return Err(HelloError::BadRecordLength(len));
        }
        let body = raw.len();
        read_exact_into(r, raw, len)?;
        msg.extend_from_slice(&raw[body..body + len]);
        if msg.len() >= 4 {
            if msg[0] != 1 {
                return Err(HelloError::NotClientHello(msg[0]));
            }
            let want = 4 + (u32::from_be_bytes([0, msg[1], msg[2], msg[3]]) as usize);
            if want > MAX_HELLO {
                return Err(HelloError::TooLarge(want));
            }
            if msg.len() >= want {
                msg.truncate(want);
                return Ok(msg);
            }
        }
    }
}

/// A bounds-checked reader over a byte slice.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], HelloError> {
        if self.0.len() < n {
            return Err(HelloError::Malformed(what));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, HelloError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, HelloError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], HelloError> {
        let n = self.u8(what)? as usize;
        self.take(n, what)
    }
    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], HelloError> {
        let n = self.u16(what)? as usize;
        self.take(n, what)
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn u16_list(b: &[u8], what: &'static str) -> Result<Vec<u16>, HelloError> {
    if !b.len().is_multiple_of(2) {
        return Err(HelloError::Malformed(what));
    }
    Ok(b.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .filter(|v| !codepoints::is_grease(*v))
        .collect())
}

/// Parse a complete handshake message (type byte, 3-byte length, ClientHello body).
pub fn parse_handshake(msg: &[u8]) -> Result<ClientHello, HelloError> {
    let mut c = Cur(msg);
    let ty = c.u8("handshake type")?;
    if ty != 1 {
        return Err(HelloError::NotClientHello(ty));
    }
    let len = c.take(3, "handshake length")?;
    let len = u32::from_be_bytes([0, len[0], len[1], len[2]]) as usize;
    let body = c.take(len, "handshake body shorter than its length")?;
    parse_body(body)
}

/// Parse a ClientHello body (after the 4-byte handshake header).
pub fn parse_body(body: &[u8]) -> Result<ClientHello, HelloError> {
    let mut c = Cur(body);
    let legacy_version = TlsVersion(c.u16("legacy_version")?);
    c.take(32, "random")?;
    let sid = c.vec8("session_id")?;
    if sid.len() > 32 {
        return Err(HelloError::Malformed("session_id longer than 32 bytes"));
    }
    let suites = u16_list(c.vec16("cipher_suites")?, "cipher_suites of odd length")?;
    if suites.is_empty() {
        return Err(HelloError::Malformed("no cipher suites"));
    }
    let comp = c.vec8("compression_methods")?;
    if comp.is_empty() {
        return Err(HelloError::Malformed("no compression methods"));
    }
    let mut hello = ClientHello {
        legacy_version,
        versions: vec![],
        suites,
        groups: vec![],
        key_shares: vec![],
        sigalgs: vec![],
        ems: false,
        extensions: vec![],
        server_name: None,
    };
    let mut supported_versions = None;
    if !c.is_empty() {
        let mut exts = Cur(c.vec16("extensions")?);
        if !c.is_empty() {
            return Err(HelloError::Malformed("trailing bytes after extensions"));
        }
        while !exts.is_empty() {
            let ty = exts.u16("extension type")?;
            let data = exts.vec16("extension data")?;
            if codepoints::is_grease(ty) {
                continue;
            }
            if hello.extensions.contains(&ty) {
                return Err(HelloError::Malformed("duplicate extension"));
            }
            hello.extensions.push(ty);
            let mut d = Cur(data);
            match ty {
                ext::SUPPORTED_GROUPS => {
                    hello.groups = u16_list(
                        d.vec16("supported_groups")?,
                        "supported_groups of odd length",
                    )?
                }
                ext::SIGNATURE_ALGORITHMS => {
                    hello.sigalgs = u16_list(
                        d.vec16("signature_algorithms")?,
                        "signature_algorithms of odd length",
                    )?
                }
                ext::EXTENDED_MASTER_SECRET => hello.ems = true,
                ext::SUPPORTED_VERSIONS => {
                    let v = d.vec8("supported_versions")?;
                    supported_versions = Some(
                        u16_list(v, "supported_versions of odd length")?
                            .into_iter()
                            .map(TlsVersion)
                            .collect(),
                    );
                }
                ext::KEY_SHARE => {
                    let mut ks = Cur(d.vec16("key_share")?);
                    while !ks.is_empty() {
                        let g = ks.u16("key_share group")?;
                        ks.vec16("key_share key")?;
                        if !codepoints::is_grease(g) {
                            hello.key_shares.push(g);
                        }
                    }
                }
                ext::SERVER_NAME => {
                    let mut list = Cur(d.vec16("server_name list")?);
                    while !list.is_empty() {
                        let kind = list.u8("server_name type")?;
                        let name = list.vec16("server_name")?;
                        if kind == 0 && hello.server_name.is_none() {
                            hello.server_name = Some(String::from_utf8_lossy(name).into_owned());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    hello.versions = supported_versions.unwrap_or_else(|| vec![legacy_version]);
    Ok(hello)
}

impl ClientHello {
    /// A JSON fingerprint in the shape of `fips-data/clienthellos.json` (Go names).
    pub fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({
            "extensions": self.extensions,
            "groups": self.groups.iter().map(|g| codepoints::group_go_name(*g)).collect::<Vec<_>>(),
            "sigalgs": self.sigalgs.iter().map(|s| codepoints::sigalg_go_name(*s)).collect::<Vec<_>>(),
            "suites": self.suites.iter().map(|s| codepoints::suite_name(*s)).collect::<Vec<_>>(),
            "versions": self.versions.iter().map(|v| v.name()).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal hand-built TLS 1.3 ClientHello record.
    pub(crate) fn sample() -> Vec<u8> {
        let mut exts = vec![];
        let mut push = |ty: u16, data: &[u8]| {
            exts.extend_from_slice(&ty.to_be_bytes());
            exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
            exts.extend_from_slice(data);
        };
        push(10, &[0, 4, 0x00, 0x17, 0x00, 0x1d]);
        push(13, &[0, 2, 0x04, 0x03]);
        push(23, &[]);
        push(43, &[4, 0x03, 0x04, 0x03, 0x03]);
        push(0x2a2a, &[]);
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 4, 0x13, 0x01, 0xc0, 0x2b]);
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1, (hs.len() >> 8) as u8, hs.len() as u8];
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn parses_a_hand_built_hello() {
        let rec = sample();
        let (raw, h) = read_client_hello(&mut rec.as_slice());
        let h = h.unwrap();
        assert_eq!(raw, rec);
        assert_eq!(h.versions, vec![TlsVersion::TLS13, TlsVersion::TLS12]);
        assert_eq!(h.suites, vec![0x1301, 0xc02b]);
        assert_eq!(h.groups, vec![0x17, 0x1d]);
        assert!(h.ems);
        assert_eq!(h.extensions, vec![10, 13, 23, 43]);
    }

    #[test]
    fn reassembles_a_hello_split_over_two_records() {
        let rec = sample();
        let hs = &rec[5..];
        let (a, b) = hs.split_at(10);
        let mut two = vec![22, 3, 1, 0, a.len() as u8];
        two.extend_from_slice(a);
        two.extend_from_slice(&[22, 3, 1, (b.len() >> 8) as u8, b.len() as u8]);
        two.extend_from_slice(b);
        let (_, h) = read_client_hello(&mut two.as_slice());
        assert_eq!(h.unwrap().suites, vec![0x1301, 0xc02b]);
    }

    #[test]
    fn rejects_garbage_and_truncation_with_a_cause() {
        let (_, e) = read_client_hello(&mut &b"GET / HTTP/1.1\r\n\r\n"[..]);
        assert_eq!(e.unwrap_err(), HelloError::NotHandshake(b'G'));
        let rec = sample();
        let (_, e) = read_client_hello(&mut &rec[..20]);
        assert_eq!(e.unwrap_err(), HelloError::Truncated(20));
    }
}
