//! The TLS policy of a Go binary as data: for a (family, Go version) it answers "is this
//! parameter allowed?" and "what must a handshake against this challenge do?". Encodes §2 of
//! `fips-policy.md` (sources in each ruling). Pure: no I/O.

use super::codepoints::{self, TlsVersion};
use std::fmt;

/// How a Go binary's TLS stack is restricted (from static inspection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Plain Go: the toolchain's default client/server configuration.
    None,
    /// `GOEXPERIMENT=boringcrypto` without `crypto/tls/fipsonly`: identical TLS policy to plain Go (§0.4).
    BoringNoFipsOnly,
    /// `GOEXPERIMENT=boringcrypto` + `import _ "crypto/tls/fipsonly"`.
    BoringFipsOnly,
    /// Go-native FIPS 140-3 mode, `fips140=on` (Go ≥ 1.24).
    NativeOn,
    /// Go-native FIPS 140-3 mode, `fips140=only` (Go ≥ 1.24): same TLS lists as `on`.
    NativeOnly,
}

impl Family {
    pub const ALL: [(Family, &'static str); 5] = [
        (Family::None, "plain"),
        (Family::BoringNoFipsOnly, "boring"),
        (Family::BoringFipsOnly, "boring-fipsonly"),
        (Family::NativeOn, "native"),
        (Family::NativeOnly, "native-only"),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map(|(_, n)| *n)
            .unwrap_or("plain")
    }

    /// Whether the TLS stack is restricted to FIPS-approved parameters.
    pub fn is_fips(self) -> bool {
        matches!(
            self,
            Family::BoringFipsOnly | Family::NativeOn | Family::NativeOnly
        )
    }

    fn is_native(self) -> bool {
        matches!(self, Family::NativeOn | Family::NativeOnly)
    }
}

/// A Go toolchain version `1.minor.patch` (Go 1.x only; Go 2 does not exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct GoVersion {
    pub minor: u16,
    /// `None` when only the minor is known (`1.27`); treated as the newest patch.
    pub patch: Option<u16>,
}

impl GoVersion {
    pub const fn new(minor: u16, patch: u16) -> Self {
        Self {
            minor,
            patch: Some(patch),
        }
    }
    fn is(&self, minor: u16, patch: u16) -> bool {
        self.minor == minor && self.patch == Some(patch)
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(p) => write!(f, "1.{}.{p}", self.minor),
            None => write!(f, "1.{}", self.minor),
        }
    }
}

/// A policy string could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyParseError {
    #[error("`{0}` is not a Go version (expected e.g. `1.27` or `go1.27.3`)")]
    GoVersion(String),
    #[error("unknown family `{0}` (known: plain, boring, boring-fipsonly, native, native-only)")]
    Family(String),
    #[error(
        "`{0}` has no Go version (expected `FAMILY@1.MINOR[.PATCH]`, e.g. `boring-fipsonly@1.27`)"
    )]
    MissingVersion(String),
    #[error("Go {0} has no native FIPS 140-3 mode (it starts with Go 1.24)")]
    NativeTooOld(GoVersion),
    #[error("Go {0} is older than any toolchain this policy covers (1.21)")]
    TooOld(GoVersion),
}

impl std::str::FromStr for GoVersion {
    type Err = PolicyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PolicyParseError::GoVersion(s.to_string());
        let t = s.trim().trim_start_matches("go");
        // Experiment suffixes (`-X:boringcrypto`, ` X:…`) are not part of the version.
        let t = t.split([' ', '-']).next().unwrap_or("");
        let mut parts = t.split('.');
        if parts.next() != Some("1") {
            return Err(err());
        }
        let minor = parts.next().and_then(|m| m.parse().ok()).ok_or_else(err)?;
        let patch = match parts.next() {
            None => None,
            Some(p) => Some(p.parse().map_err(|_| err())?),
        };
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(GoVersion { minor, patch })
    }
}

/// A certificate public key as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    Rsa(u32),
    /// ECDSA on a named curve (`P-256`, `P-384`, `P-521`, `P-224`, …).
    Ecdsa(String),
    Ed25519,
    Other(String),
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa(b) => write!(f, "RSA-{b}"),
            KeyKind::Ecdsa(c) => write!(f, "ECDSA {c}"),
            KeyKind::Ed25519 => f.write_str("Ed25519"),
            KeyKind::Other(o) => f.write_str(o),
        }
    }
}

/// One TLS parameter a peer can offer or use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum Param {
    Version(TlsVersion),
    Suite(u16),
    Group(u16),
    SigAlg(u16),
    /// A key anywhere in the verified peer chain (leaf, intermediate or root).
    PeerCertKey(KeyKind),
    /// A TLS 1.2 handshake without Extended Master Secret.
    Tls12WithoutEms,
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Version(v) => write!(f, "{v}"),
            Param::Suite(s) => f.write_str(&codepoints::suite_name(*s)),
            Param::Group(g) => f.write_str(&codepoints::group_name(*g)),
            Param::SigAlg(s) => f.write_str(&codepoints::sigalg_name(*s)),
            Param::PeerCertKey(k) => write!(f, "peer certificate key {k}"),
            Param::Tls12WithoutEms => f.write_str("TLS 1.2 without Extended Master Secret"),
        }
    }
}

/// The answer to "is this allowed?", with why and where that comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ruling {
    pub allowed: bool,
    pub reason: String,
    pub source: &'static str,
}

/// The TLS policy of one binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Policy {
    pub family: Family,
    pub go: GoVersion,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.family.name(), self.go)
    }
}

impl std::str::FromStr for Policy {
    type Err = PolicyParseError;
    /// `FAMILY@VERSION`, e.g. `boring-fipsonly@1.27`, `native@1.26.6`, `plain@1.25`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (fam, ver) = s
            .split_once('@')
            .ok_or_else(|| PolicyParseError::MissingVersion(s.to_string()))?;
        let family = Family::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(fam))
            .map(|(f, _)| *f)
            .or_else(|| fam.eq_ignore_ascii_case("none").then_some(Family::None))
            .ok_or_else(|| PolicyParseError::Family(fam.to_string()))?;
        Policy::new(family, ver.parse()?)
    }
}

// Suite code points used by the rules.
const ECDHE_GCM: [u16; 4] = [0xc02b, 0xc02f, 0xc02c, 0xc030];
const ECDHE_CHACHA: [u16; 2] = [0xcca9, 0xcca8];
const ECDHE_CBC_SHA: [u16; 4] = [0xc009, 0xc013, 0xc00a, 0xc014];
const ECDHE_CBC_SHA256: [u16; 2] = [0xc023, 0xc027];
const RSA_GCM: [u16; 2] = [0x009c, 0x009d];
const RSA_CBC_SHA: [u16; 2] = [0x002f, 0x0035];
const TDES: [u16; 2] = [0xc012, 0x000a];
const TLS13_GCM: [u16; 2] = [0x1301, 0x1302];
const TLS13_CHACHA: u16 = 0x1303;

const SRC_VERSIONS: &str = "fips-policy.md §2 rows `TLS 1.0 / 1.1`, `TLS 1.3`; §1.2";
const SRC_SUITES: &str = "fips-policy.md §2 suite rows; §1.3 allowedCipherSuitesFIPS";
const SRC_GROUPS: &str = "fips-policy.md §2 group rows; §1.3 allowedCurvePreferencesFIPS";
const SRC_SIGALGS: &str = "fips-policy.md §2 sigalg rows; §1.3 allowedSignatureAlgorithmsFIPS";
const SRC_CERTS: &str = "fips-policy.md §2 peer-cert rows; §1.3 isCertificateAllowedFIPS";
const SRC_EMS: &str = "fips-policy.md §2 row `TLS1.2 without Extended Master Secret`";
const SRC_DEFAULTS: &str =
    "Go crypto/tls defaults (tlsrsakex, tls3des, tls10server, rsa1024min GODEBUGs)";

impl Policy {
    /// A policy for a family and Go version; refuses combinations that cannot exist.
    pub fn new(family: Family, go: GoVersion) -> Result<Self, PolicyParseError> {
        if go.minor < 21 {
            return Err(PolicyParseError::TooOld(go));
        }
        if family.is_native() && go.minor < 24 {
            return Err(PolicyParseError::NativeTooOld(go));
        }
        Ok(Self { family, go })
    }

    fn fips(&self) -> bool {
        self.family.is_fips()
    }

    fn boring(&self) -> bool {
        self.family == Family::BoringFipsOnly
    }

    fn label(&self) -> String {
        format!("{} on Go {}", self.family.name(), self.go)
    }

    fn rule(&self, allowed: bool, what: impl fmt::Display, source: &'static str) -> Ruling {
        let verb = if allowed { "allows" } else { "does not allow" };
        Ruling {
            allowed,
            reason: format!("{} {verb} {what}", self.label()),
            source,
        }
    }

    /// Whether P-521 (group, sigalg, certificate curve) is allowed: boring 1.24.0 dropped it (#71757).
    fn p521(&self) -> bool {
        !(self.boring() && self.go.is(24, 0))
    }

    /// Boring before 1.24 (except 1.21.6) is TLS 1.2-only and still offers static RSA (§1.2).
    fn old_boring(&self) -> bool {
        self.boring() && self.go.minor < 24 && !self.go.is(21, 6)
    }

    /// Whether TLS 1.2 handshakes must use Extended Master Secret.
    pub fn requires_ems(&self) -> bool {
        self.fips() && self.go.minor >= 25
    }

    /// Is this parameter allowed for a binary with this policy?
    pub fn allows(&self, p: &Param) -> Ruling {
        let (fips, go) = (self.fips(), self.go.minor);
        match p {
            Param::Version(v) => {
                let ok = match *v {
                    TlsVersion::TLS12 => true,
                    TlsVersion::TLS13 => !self.old_boring(),
                    // Plain Go clients default to MinVersion TLS 1.2 (Go 1.18), servers since 1.22.
                    _ => false,
                };
                self.rule(ok, v, if fips { SRC_VERSIONS } else { SRC_DEFAULTS })
            }
            Param::Suite(s) => {
                let s = *s;
                let ok = if codepoints::is_tls13_suite(s) {
                    TLS13_GCM.contains(&s) || (!fips && s == TLS13_CHACHA)
                } else if fips {
                    ECDHE_GCM.contains(&s)
                        || (self.old_boring() && RSA_GCM.contains(&s))
                        || (self.family.is_native() && go >= 25 && ECDHE_CBC_SHA256.contains(&s))
                } else {
                    // Go's default suites: static RSA off by default from 1.22, 3DES from 1.23;
                    // CBC-SHA256 never on by default.
                    ECDHE_GCM.contains(&s)
                        || ECDHE_CHACHA.contains(&s)
                        || ECDHE_CBC_SHA.contains(&s)
                        || (go < 22 && (RSA_GCM.contains(&s) || RSA_CBC_SHA.contains(&s)))
                        || (go < 23 && TDES.contains(&s))
                };
                self.rule(
                    ok,
                    codepoints::suite_name(s),
                    if fips { SRC_SUITES } else { SRC_DEFAULTS },
                )
            }
            Param::Group(g) => {
                let native = self.family.is_native();
                let ok = match *g {
                    0x0017 | 0x0018 => true,
                    0x0019 => self.p521(),
                    0x001d => !fips,
                    0x11ec => (native && go >= 25) || (!fips && go >= 24),
                    0x11eb | 0x11ed => (native || !fips) && go >= 26,
                    // Pure ML-KEM-1024 (IANA 0x0202), Go 1.27 only when configured.
                    0x0202 => (native || !fips) && go >= 27,
                    25497 => !fips && go == 23,
                    _ => false,
                };
                self.rule(
                    ok,
                    codepoints::group_name(*g),
                    if fips { SRC_GROUPS } else { SRC_DEFAULTS },
                )
            }
            Param::SigAlg(a) => {
                let native = self.family.is_native();
                let ok = match *a {
                    0x0804..=0x0806 | 0x0401 | 0x0501 | 0x0601 | 0x0403 | 0x0503 => true,
                    0x0603 => self.p521(),
                    0x0807 => !fips || (native && go >= 25),
                    0x0904..=0x0906 => (native || !fips) && go >= 27,
                    0x0201 | 0x0203 => !fips,
                    _ => false,
                };
                self.rule(
                    ok,
                    codepoints::sigalg_name(*a),
                    if fips { SRC_SIGALGS } else { SRC_DEFAULTS },
                )
            }
            Param::PeerCertKey(k) => {
                let exact = self.boring() || (self.family.is_native() && go < 25);
                let ok = match k {
                    KeyKind::Rsa(bits) if fips && exact => matches!(bits, 2048 | 3072 | 4096),
                    KeyKind::Rsa(bits) if fips => *bits >= 2048,
                    // rsa1024min (Go 1.24) refuses keys below 1024 bits.
                    KeyKind::Rsa(bits) => go < 24 || *bits >= 1024,
                    KeyKind::Ecdsa(c) => match c.as_str() {
                        "P-256" | "P-384" => true,
                        "P-521" => self.p521(),
                        _ => false,
                    },
                    KeyKind::Ed25519 => !fips || (self.family.is_native() && go >= 25),
                    KeyKind::Other(_) => false,
                };
                self.rule(ok, p, if fips { SRC_CERTS } else { SRC_DEFAULTS })
            }
            Param::Tls12WithoutEms => self.rule(!self.requires_ems(), p, SRC_EMS),
        }
    }

    /// Every parameter in `params` that this policy forbids, with its ruling.
    pub fn forbidden<'a>(
        &self,
        params: impl IntoIterator<Item = &'a Param>,
    ) -> Vec<(Param, Ruling)> {
        params
            .into_iter()
            .filter_map(|p| {
                let r = self.allows(p);
                (!r.allowed).then(|| (p.clone(), r))
            })
            .collect()
    }
}

/// What a server offers in one challenge (exactly one thing deviates from the controls).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Offer {
    pub versions: Vec<TlsVersion>,
    /// TLS 1.0–1.2 and TLS 1.3 suites together.
    pub suites: Vec<u16>,
    /// Key-exchange groups (empty for static RSA key exchange).
    pub groups: Vec<u16>,
    pub leaf: KeyKind,
    pub root: KeyKind,
    /// Whether the server negotiates Extended Master Secret in TLS 1.2.
    pub ems: bool,
}

/// What a handshake must do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "expect", rename_all = "kebab-case")]
pub enum Expectation {
    Accept {
        version: TlsVersion,
    },
    Refuse {
        reason: String,
        source: &'static str,
    },
}

impl Expectation {
    pub fn accepts(&self) -> bool {
        matches!(self, Expectation::Accept { .. })
    }
}

/// The signature schemes a leaf key can sign a handshake with.
fn sigalgs_for(key: &KeyKind) -> Vec<u16> {
    match key {
        KeyKind::Rsa(_) => vec![0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601],
        KeyKind::Ecdsa(c) if c == "P-256" => vec![0x0403],
        KeyKind::Ecdsa(c) if c == "P-384" => vec![0x0503],
        KeyKind::Ecdsa(c) if c == "P-521" => vec![0x0603],
        KeyKind::Ed25519 => vec![0x0807],
        _ => vec![],
    }
}

impl Policy {
    /// What a client with this policy does against a server making `offer`: the highest offered
    /// version whose suite, group, signature and EMS checks pass, then the chain check.
    pub fn expect(&self, offer: &Offer) -> Expectation {
        let mut versions = offer.versions.clone();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        let mut first_refusal: Option<Ruling> = None;
        let mut note = |r: Ruling| {
            if first_refusal.is_none() {
                first_refusal = Some(r);
            }
        };
        let mut negotiated = None;
        'versions: for v in versions {
            let r = self.allows(&Param::Version(v));
            if !r.allowed {
                note(r);
                continue;
            }
            let is13 = v == TlsVersion::TLS13;
            let suites: Vec<u16> = offer
                .suites
                .iter()
                .copied()
                .filter(|s| codepoints::is_tls13_suite(*s) == is13)
                .collect();
            let Some(suite) = pick(
                self,
                &suites.iter().map(|s| Param::Suite(*s)).collect::<Vec<_>>(),
                &mut note,
            ) else {
                continue;
            };
            let static_rsa = matches!(suite, Param::Suite(s) if RSA_GCM.contains(&s) || RSA_CBC_SHA.contains(&s));
            if !static_rsa {
                let groups: Vec<Param> = offer.groups.iter().map(|g| Param::Group(*g)).collect();
                if pick(self, &groups, &mut note).is_none() {
                    continue;
                }
                let sigs: Vec<Param> = sigalgs_for(&offer.leaf)
                    .into_iter()
                    .map(Param::SigAlg)
                    .collect();
                if pick(self, &sigs, &mut note).is_none() {
                    if sigs.is_empty() {
                        note(self.rule(
                            false,
                            format!("a signature by a {} key", offer.leaf),
                            SRC_SIGALGS,
                        ));
                    }
                    continue 'versions;
                }
            }
            if v < TlsVersion::TLS13 && !offer.ems {
                let r = self.allows(&Param::Tls12WithoutEms);
                if !r.allowed {
                    note(r);
                    continue;
                }
            }
            negotiated = Some(v);
            break;
        }
        let Some(version) = negotiated else {
            let r = first_refusal
                .unwrap_or_else(|| self.rule(false, "anything this server offers", SRC_VERSIONS));
            return Expectation::Refuse {
                reason: r.reason,
                source: r.source,
            };
        };
        for key in [&offer.leaf, &offer.root] {
            let r = self.allows(&Param::PeerCertKey(key.clone()));
            if !r.allowed {
                return Expectation::Refuse {
                    reason: r.reason,
                    source: r.source,
                };
            }
        }
        Expectation::Accept { version }
    }
}

/// The first allowed parameter of `options`, noting the first refusal otherwise.
fn pick(policy: &Policy, options: &[Param], note: &mut impl FnMut(Ruling)) -> Option<Param> {
    for p in options {
        let r = policy.allows(p);
        if r.allowed {
            return Some(p.clone());
        }
        note(r);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Policy {
        s.parse().unwrap()
    }

    #[test]
    fn parses_policies_and_rejects_bad_ones() {
        assert_eq!(p("boring-fipsonly@1.27").family, Family::BoringFipsOnly);
        assert_eq!(p("native@go1.26.6").go, GoVersion::new(26, 6));
        assert_eq!(
            "native@1.23".parse::<Policy>(),
            Err(PolicyParseError::NativeTooOld(GoVersion {
                minor: 23,
                patch: None
            }))
        );
        assert!(matches!(
            "fips@1.27".parse::<Policy>(),
            Err(PolicyParseError::Family(_))
        ));
        assert!(matches!(
            "boring-fipsonly".parse::<Policy>(),
            Err(PolicyParseError::MissingVersion(_))
        ));
        assert!(matches!(
            "plain@2.1".parse::<Policy>(),
            Err(PolicyParseError::GoVersion(_))
        ));
        assert_eq!(
            "go1.26.6-X:boringcrypto".parse::<GoVersion>().unwrap(),
            GoVersion::new(26, 6)
        );
    }

    #[test]
    fn families_disagree_where_the_reference_says() {
        let mlkem = Param::Group(0x11ec);
        assert!(!p("boring-fipsonly@1.27").allows(&mlkem).allowed);
        assert!(p("native@1.25").allows(&mlkem).allowed);
        assert!(!p("native@1.24").allows(&mlkem).allowed);
        let rsa2560 = Param::PeerCertKey(KeyKind::Rsa(2560));
        assert!(!p("boring-fipsonly@1.27").allows(&rsa2560).allowed);
        assert!(p("native@1.27").allows(&rsa2560).allowed);
        assert!(
            p("boring-fipsonly@1.23")
                .allows(&Param::Suite(0x009c))
                .allowed
        );
        assert!(
            !p("boring-fipsonly@1.24")
                .allows(&Param::Suite(0x009c))
                .allowed
        );
        assert!(
            !p("boring-fipsonly@1.24.0")
                .allows(&Param::Group(0x19))
                .allowed
        );
        assert!(
            p("boring-fipsonly@1.24.11")
                .allows(&Param::Group(0x19))
                .allowed
        );
        assert!(
            p("boring-fipsonly@1.24")
                .allows(&Param::Tls12WithoutEms)
                .allowed
        );
        assert!(!p("native@1.25").allows(&Param::Tls12WithoutEms).allowed);
        assert!(
            !p("boring-fipsonly@1.23")
                .allows(&Param::Version(TlsVersion::TLS13))
                .allowed
        );
        assert!(
            p("boring-fipsonly@1.21.6")
                .allows(&Param::Version(TlsVersion::TLS13))
                .allowed
        );
        // Pure ML-KEM-1024 at its IANA code point 0x0202, not 0x0204.
        assert!(p("native@1.27").allows(&Param::Group(0x0202)).allowed);
        assert!(!p("native@1.26").allows(&Param::Group(0x0202)).allowed);
        assert!(
            !p("boring-fipsonly@1.27")
                .allows(&Param::Group(0x0202))
                .allowed
        );
        assert!(!p("native@1.27").allows(&Param::Group(0x0204)).allowed);
        let r = p("native@1.27").allows(&Param::Suite(0xcca8));
        assert!(!r.allowed && r.reason.contains("native on Go 1.27 does not allow"));
    }
}
