//! Hand-written ClientHellos and a reader of the server's first flight (ServerHello or
//! HelloRetryRequest, Certificate, ServerKeyExchange, alerts). Enumeration needs only what the
//! server chooses, never a completed handshake, so any IANA code point can be offered whatever
//! the local TLS stacks support. Every length is bounds-checked; the flight is capped in size.

use super::codepoints::{self, TlsVersion, ext};
use std::io::{Read, Write};

/// The most bytes read from one server flight (a long certificate chain fits easily).
const MAX_FLIGHT: usize = 256 * 1024;

/// RFC 8446 §4.1.3: the `random` of a HelloRetryRequest.
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// What one ClientHello offers.
#[derive(Debug, Clone)]
pub struct Offer<'a> {
    /// The one version offered (TLS 1.3 through `supported_versions`).
    pub version: TlsVersion,
    pub suites: &'a [u16],
    pub groups: &'a [u16],
    pub sigalgs: &'a [u16],
    pub ems: bool,
    pub sni: Option<&'a str>,
}

fn push_ext(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

fn list16(items: &[u16]) -> Vec<u8> {
    let mut v = ((items.len() * 2) as u16).to_be_bytes().to_vec();
    items
        .iter()
        .for_each(|i| v.extend_from_slice(&i.to_be_bytes()));
    v
}

fn extensions(o: &Offer) -> Vec<u8> {
    let mut e = vec![];
    if let Some(host) = o.sni {
        let mut d = ((host.len() + 3) as u16).to_be_bytes().to_vec();
        d.push(0);
        d.extend_from_slice(&(host.len() as u16).to_be_bytes());
        d.extend_from_slice(host.as_bytes());
        push_ext(&mut e, ext::SERVER_NAME, &d);
    }
    if !o.groups.is_empty() {
        push_ext(&mut e, ext::SUPPORTED_GROUPS, &list16(o.groups));
    }
    // ec_point_formats: uncompressed only (RFC 8422), which old servers expect to see.
    push_ext(&mut e, 11, &[1, 0]);
    if o.version >= TlsVersion::TLS12 && !o.sigalgs.is_empty() {
        push_ext(&mut e, ext::SIGNATURE_ALGORITHMS, &list16(o.sigalgs));
    }
    if o.ems {
        push_ext(&mut e, ext::EXTENDED_MASTER_SECRET, &[]);
    }
    if o.version == TlsVersion::TLS13 {
        push_ext(&mut e, ext::SUPPORTED_VERSIONS, &[2, 0x03, 0x04]);
        // psk_key_exchange_modes: psk_dhe_ke; some servers insist on seeing it.
        push_ext(&mut e, 45, &[1, 1]);
        // An empty key_share makes the server name its group in a HelloRetryRequest.
        push_ext(&mut e, ext::KEY_SHARE, &[0, 0]);
    } else {
        // renegotiation_info, empty: a first handshake that supports secure renegotiation.
        push_ext(&mut e, 0xff01, &[0]);
    }
    e
}

/// One ClientHello record offering exactly `o`.
pub fn client_hello(o: &Offer) -> Vec<u8> {
    let mut body = TlsVersion::TLS12.min(o.version).0.to_be_bytes().to_vec();
    let mut random = [0u8; 64];
    if openssl::rand::rand_bytes(&mut random).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        random[..16].copy_from_slice(&t.to_be_bytes());
    }
    body.extend_from_slice(&random[..32]);
    // TLS 1.3 servers echo a 32-byte session id (middlebox compatibility mode).
    if o.version == TlsVersion::TLS13 {
        body.push(32);
        body.extend_from_slice(&random[32..]);
    } else {
        body.push(0);
    }
    body.extend_from_slice(&list16(o.suites));
    body.extend_from_slice(&[1, 0]);
    let exts = extensions(o);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// The server's ServerKeyExchange, as far as enumeration needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyExchange {
    /// The named curve of an ECDHE exchange.
    pub group: Option<u16>,
    /// The prime size of a finite-field DHE exchange.
    pub dh_bits: Option<u32>,
    /// The signature scheme (TLS 1.2; earlier versions have none on the wire).
    pub sigalg: Option<u16>,
}

/// What the server chose in its first flight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flight {
    /// The negotiated version (`supported_versions` when present).
    pub version: TlsVersion,
    pub suite: u16,
    /// Whether the reply is a HelloRetryRequest.
    pub retry: bool,
    /// The group of a TLS 1.3 reply (HelloRetryRequest `selected_group` or `key_share`).
    pub group: Option<u16>,
    /// Whether the server echoed Extended Master Secret.
    pub ems: bool,
    /// DER certificates of a TLS 1.0–1.2 flight, leaf first.
    pub certs: Vec<Vec<u8>>,
    pub kx: Option<KeyExchange>,
}

/// How the server answered one ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Hello(Box<Flight>),
    Alert(u8),
    /// The connection closed (or reset) without an alert after this many bytes.
    Closed(usize),
    /// Not a TLS answer, malformed, or timed out.
    Broken(String),
}

/// The name of a TLS alert description (RFC 8446 §6, RFC 5246 §7.2).
pub fn alert_name(d: u8) -> &'static str {
    match d {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        47 => "illegal_parameter",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        120 => "no_application_protocol",
        _ => "unknown alert",
    }
}

/// Send `hello` on `s` and read the server's answer up to what enumeration needs.
pub fn exchange(s: &mut (impl Read + Write), hello: &[u8]) -> Reply {
    if let Err(e) = s.write_all(hello) {
        return Reply::Broken(format!("send the ClientHello: {e}"));
    }
    let mut r = FlightReader::default();
    loop {
        match r.next_record(s) {
            Ok(Some(reply)) => return reply,
            Ok(None) => {}
            Err(reply) => return reply,
        }
    }
}

#[derive(Default)]
struct FlightReader {
    read: usize,
    handshake: Vec<u8>,
    flight: Option<Flight>,
}

impl FlightReader {
    /// Read one record; `Ok(Some)` when the answer is complete.
    fn next_record(&mut self, s: &mut impl Read) -> Result<Option<Reply>, Reply> {
        let mut h = [0u8; 5];
        self.fill(s, &mut h)?;
        let len = u16::from_be_bytes([h[3], h[4]]) as usize;
        if h[1] != 3 || len > 16384 + 2048 {
            return Err(Reply::Broken(format!("record header {h:02x?} is not TLS")));
        }
        let mut body = vec![0u8; len];
        self.fill(s, &mut body)?;
        match h[0] {
            // An alert after the ServerHello still ends the handshake: what was chosen is not
            // usable with the rest of the offer (Go sends ServerHello, Certificate, then the
            // alert when no signature scheme fits).
            21 if len >= 2 => Err(Reply::Alert(body[1])),
            22 => {
                self.handshake.extend_from_slice(&body);
                self.messages()
            }
            // ChangeCipherSpec (TLS 1.3 compatibility mode) carries nothing to read.
            20 => Ok(None),
            t => Err(Reply::Broken(format!("unexpected record type {t}"))),
        }
    }

    fn fill(&mut self, s: &mut impl Read, buf: &mut [u8]) -> Result<(), Reply> {
        if self.read + buf.len() > MAX_FLIGHT {
            return Err(Reply::Broken(format!(
                "the server's first flight exceeds {MAX_FLIGHT} bytes"
            )));
        }
        let mut got = 0;
        while got < buf.len() {
            match s.read(&mut buf[got..]) {
                Ok(0) => return Err(self.partial().unwrap_or(Reply::Closed(self.read + got))),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Err(self.partial().unwrap_or(Reply::Closed(self.read + got)));
                }
                Err(e) => {
                    return Err(self.partial().unwrap_or_else(|| {
                        Reply::Broken(format!("read the server's reply: {e}"))
                    }));
                }
            }
        }
        self.read += got;
        Ok(())
    }

    /// What was read so far, when the server hello already arrived.
    fn partial(&mut self) -> Option<Reply> {
        self.flight.take().map(|f| Reply::Hello(Box::new(f)))
    }

    /// Consume complete handshake messages.
    fn messages(&mut self) -> Result<Option<Reply>, Reply> {
        while self.handshake.len() >= 4 {
            let len =
                u32::from_be_bytes([0, self.handshake[1], self.handshake[2], self.handshake[3]])
                    as usize;
            if self.handshake.len() < 4 + len {
                return Ok(None);
            }
            let msg: Vec<u8> = self.handshake.drain(..4 + len).collect();
            if let Some(done) = self.message(msg[0], &msg[4..])? {
                return Ok(Some(done));
            }
        }
        Ok(None)
    }

    fn message(&mut self, ty: u8, body: &[u8]) -> Result<Option<Reply>, Reply> {
        let broken = |e: &str| Reply::Broken(format!("malformed handshake message {ty}: {e}"));
        match (ty, self.flight.as_mut()) {
            (2, None) => {
                let f = parse_server_hello(body).map_err(broken)?;
                // TLS 1.3 encrypts everything after the ServerHello.
                if f.version >= TlsVersion::TLS13 || f.retry {
                    return Ok(Some(Reply::Hello(Box::new(f))));
                }
                self.flight = Some(f);
                Ok(None)
            }
            (11, Some(f)) => {
                f.certs = parse_certificates(body).map_err(broken)?;
                Ok(None)
            }
            (12, Some(f)) => {
                f.kx = Some(parse_key_exchange(body, f.suite, f.version).map_err(broken)?);
                Ok(None)
            }
            (14, Some(_)) => Ok(self.partial()),
            (13 | 22, Some(_)) => Ok(None),
            (t, _) => Err(Reply::Broken(format!(
                "unexpected handshake message type {t} in the server's first flight"
            ))),
        }
    }
}

/// A bounds-checked reader over a byte slice.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("shorter than its lengths say");
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Result<usize, &'static str> {
        let b = self.take(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize)
    }
    fn vec8(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    fn vec16(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.u16()? as usize;
        self.take(n)
    }
}

/// Parse a ServerHello or HelloRetryRequest body.
pub fn parse_server_hello(body: &[u8]) -> Result<Flight, &'static str> {
    let mut c = Cur(body);
    let mut f = Flight {
        version: TlsVersion(c.u16()?),
        ..Default::default()
    };
    f.retry = c.take(32)? == HRR_RANDOM;
    c.vec8()?;
    f.suite = c.u16()?;
    c.u8()?;
    if c.0.is_empty() {
        return Ok(f);
    }
    let mut exts = Cur(c.vec16()?);
    while !exts.0.is_empty() {
        let ty = exts.u16()?;
        let mut d = Cur(exts.vec16()?);
        match ty {
            ext::SUPPORTED_VERSIONS => f.version = TlsVersion(d.u16()?),
            ext::KEY_SHARE => f.group = Some(d.u16()?),
            ext::EXTENDED_MASTER_SECRET => f.ems = true,
            _ => {}
        }
    }
    Ok(f)
}

fn parse_certificates(body: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut c = Cur(body);
    let n = c.u24()?;
    let mut list = Cur(c.take(n)?);
    let mut out = vec![];
    while !list.0.is_empty() {
        let n = list.u24()?;
        out.push(list.take(n)?.to_vec());
    }
    Ok(out)
}

/// How a TLS 1.0–1.2 suite exchanges keys, read from its IANA name: `(elliptic, signed)` for
/// the (EC)DHE suites whose ServerKeyExchange names a group and a signature, `None` otherwise.
pub fn kx_kind(suite: u16) -> Option<(bool, bool)> {
    let name = codepoints::suite_name(suite);
    let kx = name.strip_prefix("TLS_")?.split("_WITH_").next()?;
    match kx {
        "ECDHE_ECDSA" | "ECDHE_RSA" => Some((true, true)),
        "DHE_RSA" | "DHE_DSS" => Some((false, true)),
        "ECDH_anon" => Some((true, false)),
        "DH_anon" => Some((false, false)),
        _ => None,
    }
}

/// Parse a ServerKeyExchange for an (EC)DHE suite; other suites yield an empty exchange.
pub fn parse_key_exchange(
    body: &[u8],
    suite: u16,
    version: TlsVersion,
) -> Result<KeyExchange, &'static str> {
    let mut kx = KeyExchange::default();
    let Some((elliptic, signed)) = kx_kind(suite) else {
        return Ok(kx);
    };
    let mut c = Cur(body);
    if elliptic {
        if c.u8()? != 3 {
            return Err("ECDHE parameters without a named curve");
        }
        kx.group = Some(c.u16()?);
        c.vec8()?;
    } else {
        let p = c.vec16()?;
        let lead = p.iter().position(|b| *b != 0).unwrap_or(p.len());
        let bits = p.get(lead).map(|b| 8 - b.leading_zeros()).unwrap_or(0);
        kx.dh_bits = Some(((p.len() - lead).saturating_sub(1) * 8) as u32 + bits);
        c.vec16()?;
        c.vec16()?;
    }
    if signed && version >= TlsVersion::TLS12 {
        kx.sigalg = Some(c.u16()?);
    }
    Ok(kx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fips::tls::clienthello;

    #[test]
    fn written_hellos_parse_back_with_everything_offered() {
        let suites: Vec<u16> = crate::fips::tls::iana::SUITES.iter().map(|s| s.0).collect();
        let groups = [0x0017, 0x0202, 0x11ec];
        for v in TlsVersion::ALL {
            let rec = client_hello(&Offer {
                version: v,
                suites: &suites,
                groups: &groups,
                sigalgs: &[0x0804, 0x0904],
                ems: true,
                sni: Some("example.test"),
            });
            let (_, h) = clienthello::read_client_hello(&mut rec.as_slice());
            let h = h.unwrap();
            assert_eq!(h.versions, vec![v]);
            assert_eq!(h.suites, suites);
            assert_eq!(h.groups, groups);
            assert!(h.ems);
            assert_eq!(h.server_name.as_deref(), Some("example.test"));
            assert_eq!(h.sigalgs.is_empty(), v < TlsVersion::TLS12);
            assert_eq!(h.key_shares, Vec::<u16>::new());
        }
    }

    fn server_hello(version: u16, random: [u8; 32], suite: u16, exts: &[u8]) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&random);
        b.push(0);
        b.extend_from_slice(&suite.to_be_bytes());
        b.push(0);
        b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        b.extend_from_slice(exts);
        b
    }

    fn record(ty: u8, msgs: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut hs = vec![];
        for (t, m) in msgs {
            hs.push(*t);
            hs.extend_from_slice(&(m.len() as u32).to_be_bytes()[1..]);
            hs.extend_from_slice(m);
        }
        let mut r = vec![ty, 3, 3];
        r.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        r.extend_from_slice(&hs);
        r
    }

    struct Duplex(std::io::Cursor<Vec<u8>>);
    impl Read for Duplex {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(b)
        }
    }
    impl Write for Duplex {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn reads_a_retry_request_a_tls12_flight_and_alerts() {
        let hrr = server_hello(
            0x0303,
            HRR_RANDOM,
            0x1302,
            &[0, 43, 0, 2, 3, 4, 0, 51, 0, 2, 0x02, 0x02],
        );
        let mut d = Duplex(std::io::Cursor::new(record(22, &[(2, hrr)])));
        let Reply::Hello(f) = exchange(&mut d, b"") else {
            panic!()
        };
        assert!(f.retry);
        assert_eq!(
            (f.version, f.suite, f.group),
            (TlsVersion::TLS13, 0x1302, Some(0x0202))
        );

        let sh = server_hello(0x0303, [1; 32], 0xc02b, &[0, 23, 0, 0]);
        let certs = vec![0, 0, 5, 0, 0, 2, 0xaa, 0xbb];
        let ske = vec![3, 0, 0x17, 1, 4, 0x04, 0x03, 0, 1, 9];
        let flight = record(22, &[(2, sh), (11, certs), (12, ske), (14, vec![])]);
        let mut d = Duplex(std::io::Cursor::new(flight));
        let Reply::Hello(f) = exchange(&mut d, b"") else {
            panic!()
        };
        assert!(f.ems && !f.retry);
        assert_eq!(f.certs, vec![vec![0xaa, 0xbb]]);
        let kx = f.kx.unwrap();
        assert_eq!((kx.group, kx.sigalg), (Some(0x17), Some(0x0403)));

        // Go sends ServerHello and Certificate, then the alert, when no scheme fits.
        let sh = server_hello(0x0303, [1; 32], 0xc02b, &[]);
        let mut partial = record(22, &[(2, sh), (11, vec![0, 0, 0])]);
        partial.extend_from_slice(&[21, 3, 3, 0, 2, 2, 40]);
        let mut d = Duplex(std::io::Cursor::new(partial));
        assert_eq!(exchange(&mut d, b""), Reply::Alert(40));
        let mut d = Duplex(std::io::Cursor::new(vec![21, 3, 3, 0, 2, 2, 40]));
        assert_eq!(exchange(&mut d, b""), Reply::Alert(40));
        let mut d = Duplex(std::io::Cursor::new(b"HTTP/1.1 400".to_vec()));
        assert!(matches!(exchange(&mut d, b""), Reply::Broken(_)));
        let mut d = Duplex(std::io::Cursor::new(vec![]));
        assert_eq!(exchange(&mut d, b""), Reply::Closed(0));
    }

    #[test]
    fn measures_a_dhe_prime() {
        let mut ske = vec![1, 0, 0x80];
        ske.extend_from_slice(&[0xff; 255]);
        ske.extend_from_slice(&[0, 1, 2, 0, 1, 5, 0x08, 0x04, 0, 0]);
        let kx = parse_key_exchange(&ske, 0x009e, TlsVersion::TLS12).unwrap();
        assert_eq!((kx.dh_bits, kx.sigalg), (Some(2048), Some(0x0804)));
    }
}
