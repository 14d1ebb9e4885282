//! TLS code points (versions, cipher suites, named groups, signature schemes) and their names.
//! Names follow Go's `crypto/tls` spelling so captured ClientHellos compare directly with
//! `fips-data/clienthellos.json`. Pure tables: no I/O.

use std::fmt;

/// A protocol version as carried on the wire (`0x0303` = TLS 1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
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

/// Cipher suites: (code, Go name, OpenSSL name). TLS 1.3 suites have no OpenSSL 1.2-style name
/// distinct from the IANA one, so the IANA name is repeated there.
pub const SUITES: &[(u16, &str, &str)] = &[
    (0x1301, "TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"),
    (0x1302, "TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"),
    (
        0x1303,
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
    ),
    (
        0xc02b,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
    ),
    (
        0xc02f,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
    ),
    (
        0xc02c,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
    ),
    (
        0xc030,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
    ),
    (
        0xcca9,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ),
    (
        0xcca8,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ),
    (
        0xc023,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        "ECDHE-ECDSA-AES128-SHA256",
    ),
    (
        0xc027,
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        "ECDHE-RSA-AES128-SHA256",
    ),
    (
        0xc009,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        "ECDHE-ECDSA-AES128-SHA",
    ),
    (
        0xc013,
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "ECDHE-RSA-AES128-SHA",
    ),
    (
        0xc00a,
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        "ECDHE-ECDSA-AES256-SHA",
    ),
    (
        0xc014,
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        "ECDHE-RSA-AES256-SHA",
    ),
    (
        0xc012,
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        "ECDHE-RSA-DES-CBC3-SHA",
    ),
    (
        0x009c,
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "AES128-GCM-SHA256",
    ),
    (
        0x009d,
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "AES256-GCM-SHA384",
    ),
    (0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"),
    (0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"),
    (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA"),
    (
        0x00ff,
        "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
        "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    ),
    (0x5600, "TLS_FALLBACK_SCSV", "TLS_FALLBACK_SCSV"),
];

/// Named groups: (code, Go name, OpenSSL group name if OpenSSL 3.0 can offer it).
pub const GROUPS: &[(u16, &str, Option<&str>)] = &[
    (0x001d, "X25519", Some("X25519")),
    (0x001e, "X448", Some("X448")),
    (0x0017, "CurveP256", Some("P-256")),
    (0x0018, "CurveP384", Some("P-384")),
    (0x0019, "CurveP521", Some("P-521")),
    (0x11ec, "X25519MLKEM768", None),
    (0x11eb, "SecP256r1MLKEM768", None),
    (0x11ed, "SecP384r1MLKEM1024", None),
    (0x0201, "MLKEM512", None),
    (0x0202, "MLKEM768", None),
    (0x0204, "MLKEM1024", None),
];

/// Signature schemes: (code, Go name).
pub const SIGALGS: &[(u16, &str)] = &[
    (0x0804, "PSSWithSHA256"),
    (0x0805, "PSSWithSHA384"),
    (0x0806, "PSSWithSHA512"),
    (0x0401, "PKCS1WithSHA256"),
    (0x0501, "PKCS1WithSHA384"),
    (0x0601, "PKCS1WithSHA512"),
    (0x0403, "ECDSAWithP256AndSHA256"),
    (0x0503, "ECDSAWithP384AndSHA384"),
    (0x0603, "ECDSAWithP521AndSHA512"),
    (0x0807, "Ed25519"),
    (0x0808, "Ed448"),
    (0x0201, "PKCS1WithSHA1"),
    (0x0203, "ECDSAWithSHA1"),
    (0x0904, "MLDSA44"),
    (0x0905, "MLDSA65"),
    (0x0906, "MLDSA87"),
    (0x0809, "PSSPSSWithSHA256"),
    (0x080a, "PSSPSSWithSHA384"),
    (0x080b, "PSSPSSWithSHA512"),
];

/// Go's name for a cipher suite, or `0x….` when unknown.
pub fn suite_name(code: u16) -> String {
    SUITES
        .iter()
        .find(|s| s.0 == code)
        .map(|s| s.1.to_string())
        .unwrap_or_else(|| format!("0x{code:04x}"))
}

/// Code of a suite given its Go/IANA or OpenSSL name.
pub fn suite_code(name: &str) -> Option<u16> {
    SUITES
        .iter()
        .find(|s| s.1.eq_ignore_ascii_case(name) || s.2.eq_ignore_ascii_case(name))
        .map(|s| s.0)
}

/// The OpenSSL name of a suite, if it has one.
pub fn suite_openssl(code: u16) -> Option<&'static str> {
    SUITES.iter().find(|s| s.0 == code).map(|s| s.2)
}

/// Go's name for a group; unknown ones read `CurveID(n)` like Go prints them.
pub fn group_name(code: u16) -> String {
    GROUPS
        .iter()
        .find(|g| g.0 == code)
        .map(|g| g.1.to_string())
        .unwrap_or_else(|| format!("CurveID({code})"))
}

/// Go's name for a signature scheme; unknown ones read `SignatureScheme(0x….)`.
pub fn sigalg_name(code: u16) -> String {
    SIGALGS
        .iter()
        .find(|s| s.0 == code)
        .map(|s| s.1.to_string())
        .unwrap_or_else(|| format!("SignatureScheme(0x{code:04x})"))
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
        assert_eq!(group_name(25497), "CurveID(25497)");
        assert_eq!(sigalg_name(0x0403), "ECDSAWithP256AndSHA256");
        assert!(is_grease(0x1a1a) && !is_grease(0x1a2a));
        assert_eq!(TlsVersion::TLS11.name(), "TLS 1.1");
    }
}
