//! TLS code points (versions, cipher suites, named groups, signature schemes) and their names.
//! Display names prefer Go's `crypto/tls` spelling; `*_go_name` reproduce Go's exact output so
//! captured ClientHellos compare with `fips-data/clienthellos.json`; `*_iana` give registry
//! names. Pure: no I/O.

use super::iana;
use std::fmt;

/// A protocol version as carried on the wire (`0x0303` = TLS 1.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct TlsVersion(pub u16);

impl TlsVersion {
    pub const TLS10: Self = Self(0x0301);
    pub const TLS11: Self = Self(0x0302);
    pub const TLS12: Self = Self(0x0303);
    pub const TLS13: Self = Self(0x0304);
    pub const ALL: [Self; 4] = [Self::TLS10, Self::TLS11, Self::TLS12, Self::TLS13];

    pub fn name(self) -> String {
        match self.0 {
            0x0300 => "SSL 3.0".into(),
            0x0301 => "TLS 1.0".into(),
            0x0302 => "TLS 1.1".into(),
            0x0303 => "TLS 1.2".into(),
            0x0304 => "TLS 1.3".into(),
            v if is_grease(v) => "GREASE".into(),
            v => format!("0x{v:04x}"),
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// RFC 8701 GREASE values (`0x?a?a`), which carry no meaning and are ignored by policy checks.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// OpenSSL's names of the suites the challenge endpoints serve (OpenSSL names TLS 1.3 suites
/// with their IANA names).
#[rustfmt::skip]
const OPENSSL_NAMES: &[(u16, &str)] = &[
    (0x1301, "TLS_AES_128_GCM_SHA256"), (0x1302, "TLS_AES_256_GCM_SHA384"),
    (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
    (0xc02b, "ECDHE-ECDSA-AES128-GCM-SHA256"), (0xc02f, "ECDHE-RSA-AES128-GCM-SHA256"),
    (0xc02c, "ECDHE-ECDSA-AES256-GCM-SHA384"), (0xc030, "ECDHE-RSA-AES256-GCM-SHA384"),
    (0xcca9, "ECDHE-ECDSA-CHACHA20-POLY1305"), (0xcca8, "ECDHE-RSA-CHACHA20-POLY1305"),
    (0xc023, "ECDHE-ECDSA-AES128-SHA256"), (0xc027, "ECDHE-RSA-AES128-SHA256"),
    (0xc009, "ECDHE-ECDSA-AES128-SHA"), (0xc013, "ECDHE-RSA-AES128-SHA"),
    (0xc00a, "ECDHE-ECDSA-AES256-SHA"), (0xc014, "ECDHE-RSA-AES256-SHA"),
    (0xc012, "ECDHE-RSA-DES-CBC3-SHA"), (0x009c, "AES128-GCM-SHA256"),
    (0x009d, "AES256-GCM-SHA384"), (0x003c, "AES128-SHA256"), (0x002f, "AES128-SHA"),
    (0x0035, "AES256-SHA"), (0x000a, "DES-CBC3-SHA"),
];

/// OpenSSL 3.0's names of the groups it can offer.
#[rustfmt::skip]
const OPENSSL_GROUPS: &[(u16, &str)] = &[
    (0x0017, "P-256"), (0x0018, "P-384"), (0x0019, "P-521"), (0x001d, "X25519"),
    (0x001e, "X448"), (0x0100, "ffdhe2048"), (0x0101, "ffdhe3072"), (0x0102, "ffdhe4096"),
    (0x0103, "ffdhe6144"), (0x0104, "ffdhe8192"),
];

/// The IANA name of a cipher suite (Go uses the same), or `0x….` when unknown.
pub fn suite_name(code: u16) -> String {
    iana::SUITES
        .iter()
        .find(|s| s.0 == code)
        .map(|s| s.1.to_string())
        .unwrap_or_else(|| format!("0x{code:04x}"))
}

/// Whether a suite code point is in the IANA table.
pub fn is_known_suite(code: u16) -> bool {
    iana::SUITES.iter().any(|s| s.0 == code)
}

/// Code of a suite given its IANA or OpenSSL name.
pub fn suite_code(name: &str) -> Option<u16> {
    iana::SUITES
        .iter()
        .find(|s| s.1.eq_ignore_ascii_case(name))
        .map(|s| s.0)
        .or_else(|| {
            OPENSSL_NAMES
                .iter()
                .find(|s| s.1.eq_ignore_ascii_case(name))
                .map(|s| s.0)
        })
}

/// The OpenSSL name of a suite the challenge endpoints serve.
pub fn suite_openssl(code: u16) -> Option<&'static str> {
    OPENSSL_NAMES.iter().find(|s| s.0 == code).map(|s| s.1)
}

/// OpenSSL's name of a group, if OpenSSL 3.0 can offer it.
pub fn group_openssl(code: u16) -> Option<&'static str> {
    OPENSSL_GROUPS.iter().find(|g| g.0 == code).map(|g| g.1)
}

/// A group as people read it: Go's name when Go has one, else the IANA name, else `0x….`.
pub fn group_name(code: u16) -> String {
    match iana::GROUPS.iter().find(|g| g.0 == code) {
        Some((_, iana, go)) => go.unwrap_or(iana).to_string(),
        None => format!("0x{code:04x}"),
    }
}

/// A group spelled as Go prints it (`CurveID(n)` for groups Go does not name), so captured
/// ClientHellos compare with `fips-data/clienthellos.json`.
pub fn group_go_name(code: u16) -> String {
    iana::GROUPS
        .iter()
        .find(|g| g.0 == code)
        .and_then(|g| g.2)
        .map(str::to_string)
        .unwrap_or_else(|| format!("CurveID({code})"))
}

/// Whether a group code point is in the IANA table.
pub fn is_known_group(code: u16) -> bool {
    iana::GROUPS.iter().any(|g| g.0 == code)
}

/// The IANA name of a group, or `0x….`.
pub fn group_iana(code: u16) -> String {
    iana::GROUPS
        .iter()
        .find(|g| g.0 == code)
        .map(|g| g.1.to_string())
        .unwrap_or_else(|| format!("0x{code:04x}"))
}

/// A signature scheme as people read it: Go's name, else the IANA name, else `0x….`.
pub fn sigalg_name(code: u16) -> String {
    match iana::SIGALGS.iter().find(|s| s.0 == code) {
        Some((_, iana, go)) => go.unwrap_or(iana).to_string(),
        None => format!("0x{code:04x}"),
    }
}

/// A signature scheme spelled as Go prints it (`SignatureScheme(0x….)` when Go has no name).
pub fn sigalg_go_name(code: u16) -> String {
    iana::SIGALGS
        .iter()
        .find(|s| s.0 == code)
        .and_then(|s| s.2)
        .map(str::to_string)
        .unwrap_or_else(|| format!("SignatureScheme(0x{code:04x})"))
}

/// The IANA name of a signature scheme, or `0x….`.
pub fn sigalg_iana(code: u16) -> String {
    iana::SIGALGS
        .iter()
        .find(|s| s.0 == code)
        .map(|s| s.1.to_string())
        .unwrap_or_else(|| format!("0x{code:04x}"))
}

/// Whether a TLS 1.0–1.2 suite is a TLS 1.3 suite (`0x13xx`).
pub fn is_tls13_suite(code: u16) -> bool {
    code >> 8 == 0x13
}

/// Extension code points the harness names.
pub mod ext {
    pub const SERVER_NAME: u16 = 0;
    pub const SUPPORTED_GROUPS: u16 = 10;
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    pub const EXTENDED_MASTER_SECRET: u16 = 23;
    pub const SUPPORTED_VERSIONS: u16 = 43;
    pub const KEY_SHARE: u16 = 51;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(suite_code("ECDHE-RSA-CHACHA20-POLY1305"), Some(0xcca8));
        assert_eq!(
            suite_name(0xcca8),
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        );
        assert_eq!(group_go_name(25497), "CurveID(25497)");
        assert_eq!(group_name(0x0100), "ffdhe2048");
        assert_eq!(group_iana(0x0017), "secp256r1");
        assert_eq!(sigalg_name(0x0403), "ECDSAWithP256AndSHA256");
        assert_eq!(sigalg_go_name(0x081a), "SignatureScheme(0x081a)");
        assert_eq!(suite_code("TLS_DHE_RSA_WITH_AES_128_CCM"), Some(0xc09e));
        assert!(is_grease(0x1a1a) && !is_grease(0x1a2a));
        assert_eq!(TlsVersion::TLS11.name(), "TLS 1.1");
    }
}
