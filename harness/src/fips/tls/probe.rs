//! `probe tls`: enumerates everything a TLS server accepts — versions, every IANA cipher suite,
//! named group (ffdhe, X448, ML-KEM and its hybrids included) and signature scheme, Extended
//! Master Secret, the certificate keys — by elimination over hand-written ClientHellos
//! (`enumerate`), all versions in parallel, with complete handshakes (`handshake`) only for
//! what TLS 1.3 encrypts and as an independent cross-check. Whatever could not be settled is
//! a gap in the findings; the policy judgement lives in `probe_report`.

use super::codepoints::{self, TlsVersion};
use super::enumerate::{self, Chain, Target};
use super::handshake::{self, CertInfo, Done};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Probing could not start or reach the server.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("resolve `{target}`")]
    Resolve {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{0}` resolves to no address")]
    NoAddress(String),
    #[error("connect to `{addr}`")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("complete any TLS handshake with `{addr}` (first failure: {first})")]
    NoTls { addr: SocketAddr, first: String },
}

/// What the server accepts.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Findings {
    pub target: String,
    pub versions: Vec<TlsVersion>,
    /// (version, suite) pairs the server chose.
    pub suites: Vec<(TlsVersion, u16)>,
    /// (version, group) pairs the server chose.
    pub groups: Vec<(TlsVersion, u16)>,
    /// (version, signature scheme) pairs the server signed with.
    pub sigalgs: Vec<(TlsVersion, u16)>,
    /// (version, suite, prime bits) of accepted finite-field DHE suites.
    pub dhe: Vec<(TlsVersion, u16, u32)>,
    /// Whether the server echoes Extended Master Secret in TLS 1.2 (`None` without TLS 1.2).
    pub ems_supported: Option<bool>,
    /// Whether TLS 1.2 is refused without EMS (`None` without TLS 1.2 or when unknown).
    pub ems_required: Option<bool>,
    /// Every distinct certificate the server sent.
    pub chain: Vec<CertInfo>,
    /// What could not be settled: any gap makes the verdict inconclusive.
    pub gaps: Vec<String>,
    pub handshakes: usize,
    pub elapsed_ms: u128,
}

impl Findings {
    /// Distinct groups, in the order first found.
    pub fn group_set(&self) -> Vec<u16> {
        let mut out: Vec<u16> = vec![];
        for (_, g) in &self.groups {
            if !out.contains(g) {
                out.push(*g);
            }
        }
        out
    }
}

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub target: String,
    /// Time limit for the whole probe (all handshakes run within it).
    pub timeout: Duration,
    /// Complete handshakes in flight at once (the elimination chains always run in parallel).
    pub parallel: usize,
}

/// Per-version chains and cross-checks, gathered in parallel.
#[derive(Default)]
struct Gathered {
    suites: Vec<(TlsVersion, Chain)>,
    groups: Vec<(TlsVersion, Chain)>,
    tls12_sigalgs: Option<Chain>,
    without_ems: Option<Done>,
    openssl: Vec<(TlsVersion, Done)>,
}

fn gather(t: &Target) -> Gathered {
    std::thread::scope(|s| {
        let suites: Vec<_> = TlsVersion::ALL
            .map(|v| s.spawn(move || (v, enumerate::suites(t, v))))
            .into();
        let groups: Vec<_> = TlsVersion::ALL
            .map(|v| s.spawn(move || (v, enumerate::groups(t, v))))
            .into();
        let openssl: Vec<_> = TlsVersion::ALL
            .map(|v| s.spawn(move || (v, handshake::openssl(t, v, None))))
            .into();
        let sig = s.spawn(|| enumerate::tls12_sigalgs(t));
        let ems = s.spawn(|| handshake::openssl_without_ems(t));
        let join = |hs: Vec<std::thread::ScopedJoinHandle<'_, (TlsVersion, Chain)>>| {
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        };
        Gathered {
            suites: join(suites),
            groups: join(groups),
            openssl: openssl.into_iter().filter_map(|h| h.join().ok()).collect(),
            tls12_sigalgs: sig.join().ok(),
            without_ems: ems.join().ok(),
        }
    })
}

/// Enumerate what the server at `cfg.target` accepts.
pub fn probe(cfg: &ProbeConfig) -> Result<Findings, ProbeError> {
    let start = Instant::now();
    let t = target(cfg, start)?;
    // A closed port is an error, not "accepts nothing".
    t.connect().map_err(|source| ProbeError::Connect {
        addr: t.addr,
        source,
    })?;
    let g = gather(&t);
    let mut f = Findings {
        target: cfg.target.clone(),
        ..Default::default()
    };
    let mut ders: Vec<Vec<u8>> = vec![];
    collect_chains(&g, &mut f, &mut ders);
    if f.versions.is_empty() {
        let first = f
            .gaps
            .first()
            .cloned()
            .unwrap_or_else(|| "every TLS 1.0–1.3 ClientHello was refused".to_string());
        return Err(ProbeError::NoTls {
            addr: t.addr,
            first,
        });
    }
    collect_ems(&g, &mut f);
    cross_check(&g, &mut f, &mut ders);
    if f.versions.contains(&TlsVersion::TLS13) {
        tls13_sigalgs(&t, cfg.parallel, &mut f, &mut ders);
    }
    f.chain = dedup_certs(&ders);
    if f.chain.is_empty() {
        f.gaps.push(
            "no certificate could be read: no local stack completes a handshake with this server"
                .into(),
        );
    }
    f.versions.sort();
    f.handshakes = t.hellos.load(Ordering::Relaxed);
    f.elapsed_ms = start.elapsed().as_millis();
    Ok(f)
}

fn target(cfg: &ProbeConfig, start: Instant) -> Result<Target, ProbeError> {
    let addr = cfg
        .target
        .to_socket_addrs()
        .map_err(|source| ProbeError::Resolve {
            target: cfg.target.clone(),
            source,
        })?
        .next()
        .ok_or_else(|| ProbeError::NoAddress(cfg.target.clone()))?;
    let host = cfg
        .target
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']))
        .unwrap_or("");
    let sni =
        (host.parse::<std::net::IpAddr>().is_err() && !host.is_empty()).then(|| host.to_string());
    Ok(Target {
        addr,
        sni,
        deadline: start + cfg.timeout,
        hellos: AtomicUsize::new(0),
    })
}

/// Versions, suites, groups, TLS 1.2 signature schemes and DHE sizes from the chains.
fn collect_chains(g: &Gathered, f: &mut Findings, ders: &mut Vec<Vec<u8>>) {
    for (v, c) in &g.suites {
        // A version answered with no identified suite is still accepted (and its gap listed).
        if c.answered {
            f.versions.push(*v);
        }
        f.suites.extend(c.found.iter().map(|s| (*v, *s)));
        for fl in &c.flights {
            ders.extend(fl.certs.iter().cloned());
            if let Some(bits) = fl.kx.as_ref().and_then(|k| k.dh_bits) {
                f.dhe.push((*v, fl.suite, bits));
            }
        }
        f.gaps.extend(c.gap.clone());
    }
    let mut group_gaps = vec![];
    for (v, c) in &g.groups {
        f.groups.extend(c.found.iter().map(|x| (*v, *x)));
        // A refused version has no groups to miss.
        if f.versions.contains(v) && c.gap.is_some() {
            f.gaps.extend(c.gap.clone());
            group_gaps.push(*v);
        }
    }
    if let Some(c) = &g.tls12_sigalgs {
        let v = TlsVersion::TLS12;
        f.sigalgs.extend(c.found.iter().map(|x| (v, *x)));
        if f.versions.contains(&v) {
            f.gaps.extend(c.gap.clone());
        }
    }
    // A TLS 1.0–1.2 version with ECDHE suites but no group read is a silent gap otherwise.
    for v in f.versions.clone() {
        let ecdhe = f.suites.iter().any(|(sv, s)| *sv == v && wire_elliptic(*s));
        let has_group = f.groups.iter().any(|(gv, _)| *gv == v);
        if (ecdhe || v == TlsVersion::TLS13) && !has_group && !group_gaps.contains(&v) {
            f.gaps.push(format!(
                "{v}: suites with ephemeral key exchange were accepted but no group was identified"
            ));
        }
    }
}

fn wire_elliptic(s: u16) -> bool {
    matches!(super::wire::kx_kind(s), Some((true, _)))
}

fn collect_ems(g: &Gathered, f: &mut Findings) {
    if !f.versions.contains(&TlsVersion::TLS12) {
        return;
    }
    f.ems_supported = g
        .suites
        .iter()
        .find(|(v, _)| *v == TlsVersion::TLS12)
        .and_then(|(_, c)| c.flights.first())
        .map(|fl| fl.ems);
    // A refusal without EMS only counts when the same client completes TLS 1.2 with EMS.
    let with_ems = g
        .openssl
        .iter()
        .any(|(v, d)| *v == TlsVersion::TLS12 && matches!(d, Done::Ok(..)));
    match (&g.without_ems, with_ems) {
        (Some(Done::Ok(..)), _) => f.ems_required = Some(false),
        (Some(Done::Refused), true) => f.ems_required = Some(true),
        (Some(Done::Broken(e) | Done::Untestable(e)), true) => f.gaps.push(format!(
            "TLS 1.2 without Extended Master Secret: the handshake broke: {e}"
        )),
        _ => f.gaps.push(
            "TLS 1.2 Extended Master Secret: OpenSSL completes no TLS 1.2 handshake with this server, so whether EMS is required is unknown".into(),
        ),
    }
}

/// OpenSSL's own handshakes must land inside what elimination found.
fn cross_check(g: &Gathered, f: &mut Findings, ders: &mut Vec<Vec<u8>>) {
    for (v, d) in &g.openssl {
        let Done::Ok(suite, chain) = d else { continue };
        ders.extend(chain.iter().cloned());
        if !f.versions.contains(v) {
            f.gaps.push(format!(
                "{v}: OpenSSL completed a handshake ({}) but elimination found no suite",
                codepoints::suite_name(*suite)
            ));
        } else if !f.suites.contains(&(*v, *suite)) {
            f.gaps.push(format!(
                "{v}: OpenSSL negotiated {}, which elimination did not find",
                codepoints::suite_name(*suite)
            ));
        }
    }
}

/// Signature schemes valid in a TLS 1.3 CertificateVerify (RFC 8446 §4.2.3: no PKCS#1 v1.5,
/// SHA-1, SHA-224 or DSA).
fn tls13_candidates() -> Vec<u16> {
    enumerate::all_sigalgs()
        .into_iter()
        .filter(|s| {
            let n = codepoints::sigalg_iana(*s);
            !(n.starts_with("rsa_pkcs1")
                || n.starts_with("dsa_")
                || n.ends_with("sha1")
                || n.ends_with("sha224"))
        })
        .collect()
}

/// TLS 1.3 signs inside the encrypted flight, so each scheme takes one complete handshake:
/// rustls when it shares a suite and a group with the server, else OpenSSL.
fn tls13_sigalgs(t: &Target, parallel: usize, f: &mut Findings, ders: &mut Vec<Vec<u8>>) {
    let v = TlsVersion::TLS13;
    let server: Vec<u16> = f
        .groups
        .iter()
        .filter(|(gv, _)| *gv == v)
        .map(|(_, g)| *g)
        .collect();
    let suites: Vec<u16> = f
        .suites
        .iter()
        .filter(|(sv, _)| *sv == v)
        .map(|(_, s)| *s)
        .collect();
    // rustls has the GCM and ChaCha20 suites; OpenSSL also has CCM.
    let rustls_suite = suites.iter().any(|s| matches!(s, 0x1301..=0x1303));
    let rustls: Vec<u16> = handshake::rustls_groups()
        .into_iter()
        .filter(|g| rustls_suite && server.contains(g))
        .collect();
    let openssl_ok = server
        .iter()
        .any(|g| codepoints::group_openssl(*g).is_some());
    if rustls.is_empty() && !openssl_ok {
        f.gaps.push(format!(
            "TLS 1.3 signature schemes and certificate: no local stack offers any group the server accepts ({})",
            server.iter().map(|g| codepoints::group_name(*g)).collect::<Vec<_>>().join(", ")
        ));
        return;
    }
    let cands = tls13_candidates();
    let results = run_parallel(parallel, &cands, |s| {
        if rustls.is_empty() {
            handshake::openssl(t, v, Some(&codepoints::sigalg_iana(s)))
        } else {
            handshake::rustls_tls13(t, s, &rustls)
        }
    });
    let keys: Vec<_> = dedup_certs(ders).into_iter().map(|c| c.key).collect();
    let mut untestable = vec![];
    for (s, d) in cands.iter().zip(results) {
        match d {
            Done::Ok(_, chain) => {
                f.sigalgs.push((v, *s));
                ders.extend(chain);
            }
            Done::Refused => {}
            Done::Broken(e) => f.gaps.push(format!(
                "TLS 1.3 signature scheme {}: {e}",
                codepoints::sigalg_name(*s)
            )),
            Done::Untestable(e) => untestable.push((*s, e)),
        }
    }
    let keys: Vec<_> = keys
        .into_iter()
        .chain(dedup_certs(ders).into_iter().map(|c| c.key))
        .collect();
    for (s, e) in untestable {
        if keys.is_empty() || keys.iter().any(|k| handshake::key_can_sign(k, s)) {
            f.gaps.push(format!(
                "TLS 1.3 signature scheme {}: {e}",
                codepoints::sigalg_name(s)
            ));
        }
    }
    // Every TLS 1.3 handshake without a PSK is signed: none found means a probe went wrong.
    if !f.sigalgs.iter().any(|(sv, _)| *sv == v) {
        f.gaps
            .push("TLS 1.3: no signature scheme completed a handshake".into());
    }
}

/// Run `work` over `items` on at most `parallel` threads, results in item order.
fn run_parallel<T: Send>(parallel: usize, items: &[u16], work: impl Fn(u16) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let mut out: Vec<(usize, T)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..parallel.clamp(1, items.len().max(1)))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = vec![];
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(x) = items.get(i) else { break };
                        mine.push((i, work(*x)));
                    }
                    mine
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

fn dedup_certs(ders: &[Vec<u8>]) -> Vec<CertInfo> {
    let mut seen: Vec<&Vec<u8>> = vec![];
    let mut out = vec![];
    for d in ders {
        if seen.contains(&d) {
            continue;
        }
        seen.push(d);
        if let Some(c) = handshake::cert_info(d) {
            out.push(c);
        }
    }
    out
}
