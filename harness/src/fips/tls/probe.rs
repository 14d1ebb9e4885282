//! `probe tls`: enumerates what a TLS server accepts (versions, suites, groups incl. ML-KEM
//! hybrids, whether Extended Master Secret is required, chain key types) with many single-item
//! handshakes run in parallel, and judges the result against a policy. OpenSSL plays the
//! classic and legacy client; rustls the post-quantum one. TLS 1.2 probes send EMS (unlike
//! sslyze), and one extra probe without EMS tells whether the server requires it.

use super::certs::key_kind;
use super::codepoints::{self, TlsVersion};
use super::policy::{KeyKind, Param, Policy, Ruling};
use openssl::ssl::{Ssl, SslContext, SslMethod, SslOptions, SslVerifyMode, SslVersion};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
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

/// A certificate the server sent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub key: KeyKind,
}

/// What the server accepts.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Findings {
    pub target: String,
    pub versions: Vec<TlsVersion>,
    /// (version, suite) pairs the server negotiated.
    pub suites: Vec<(TlsVersion, u16)>,
    pub groups: Vec<u16>,
    /// Groups neither client stack can offer (rustls 0.23 has no SecP384r1MLKEM1024), so their
    /// acceptance is unknown rather than "refused".
    pub untested_groups: Vec<u16>,
    /// Whether TLS 1.2 was refused without EMS but accepted with it (`None` without TLS 1.2).
    pub ems_required: Option<bool>,
    pub chain: Vec<CertInfo>,
    pub handshakes: usize,
    pub elapsed_ms: u128,
}

/// One line of the verdict table: something the server accepted, and the policy's ruling.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub item: String,
    pub allowed: Option<bool>,
    pub reason: Option<String>,
}

/// Findings judged against a policy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub findings: Findings,
    pub policy: Option<String>,
    pub rows: Vec<Row>,
    /// `pass`, `fail`, or `not-judged` without a policy.
    pub verdict: &'static str,
}

#[derive(Debug, Clone)]
enum Task {
    Version(TlsVersion),
    Suite(TlsVersion, u16),
    Group(TlsVersion, u16),
    PqGroup(u16),
    NoEms,
}

const PQ_GROUPS: [u16; 3] = [0x11ec, 0x11eb, 0x0204];
const UNTESTABLE_GROUPS: [u16; 1] = [0x11ed];
const CLASSIC_GROUPS: [u16; 5] = [0x0017, 0x0018, 0x0019, 0x001d, 0x001e];

fn ossl_version(v: TlsVersion) -> SslVersion {
    match v {
        TlsVersion::TLS10 => SslVersion::TLS1,
        TlsVersion::TLS11 => SslVersion::TLS1_1,
        TlsVersion::TLS12 => SslVersion::TLS1_2,
        _ => SslVersion::TLS1_3,
    }
}

/// Suites worth trying at a version (AEAD and SHA-2 suites do not exist before TLS 1.2).
fn suites_for(v: TlsVersion) -> Vec<u16> {
    codepoints::SUITES
        .iter()
        .map(|s| s.0)
        .filter(|s| !matches!(*s, 0x00ff | 0x5600))
        .filter(|s| match v {
            TlsVersion::TLS13 => codepoints::is_tls13_suite(*s),
            TlsVersion::TLS12 => !codepoints::is_tls13_suite(*s),
            _ => codepoints::suite_openssl(*s)
                .is_some_and(|n| n.ends_with("-SHA") || n == "AES128-SHA" || n == "AES256-SHA"),
        })
        .collect()
}

struct Ctx {
    addr: SocketAddr,
    sni: Option<String>,
    /// One limit for the whole probe: a silent server cannot stretch it per handshake.
    deadline: Instant,
}

enum Got {
    Ok(Vec<CertInfo>),
    No(String),
}

fn connect(ctx: &Ctx) -> std::io::Result<TcpStream> {
    let left = ctx.deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the probe's time limit is reached",
        ));
    }
    let s = TcpStream::connect_timeout(&ctx.addr, left)?;
    s.set_read_timeout(Some(left))?;
    s.set_write_timeout(Some(left))?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn openssl_try(
    ctx: &Ctx,
    v: TlsVersion,
    suite: Option<u16>,
    group: Option<u16>,
    no_ems: bool,
) -> Got {
    let run = || -> Result<Got, String> {
        // A plain context: SslConnector would load the system trust store for every probe.
        let mut b = SslContext::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
        b.set_verify(SslVerifyMode::NONE);
        b.set_security_level(0);
        b.set_min_proto_version(Some(ossl_version(v)))
            .map_err(|e| e.to_string())?;
        b.set_max_proto_version(Some(ossl_version(v)))
            .map_err(|e| e.to_string())?;
        let name = |s: u16| codepoints::suite_openssl(s).unwrap_or("");
        match suite {
            Some(s) if v == TlsVersion::TLS13 => {
                b.set_ciphersuites(name(s)).map_err(|e| e.to_string())?
            }
            Some(s) => b
                .set_cipher_list(&format!("{}:@SECLEVEL=0", name(s)))
                .map_err(|e| e.to_string())?,
            None if v == TlsVersion::TLS13 => {}
            None => b
                .set_cipher_list("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
                .map_err(|e| e.to_string())?,
        }
        let ossl_group = |g: &u16| {
            codepoints::GROUPS
                .iter()
                .find(|x| x.0 == *g)
                .and_then(|x| x.2)
        };
        let groups: Vec<&str> = match group {
            // OpenSSL servers refuse an ECDSA certificate in TLS 1.2 unless its curve is in the
            // client's groups, so TLS 1.2 offers the group first plus the NIST curves, and the
            // negotiated group is checked below.
            Some(g) if v < TlsVersion::TLS13 => std::iter::once(g)
                .chain([0x0017, 0x0018, 0x0019].into_iter().filter(|x| *x != g))
                .filter_map(|g| ossl_group(&g))
                .collect(),
            Some(g) => ossl_group(&g).into_iter().collect(),
            None => CLASSIC_GROUPS.iter().filter_map(ossl_group).collect(),
        };
        b.set_groups_list(&groups.join(":"))
            .map_err(|e| e.to_string())?;
        let mut opts = SslOptions::NO_TICKET;
        if no_ems {
            opts |= SslOptions::from_bits_retain(1);
        }
        b.set_options(opts);
        let mut ssl = Ssl::new(&b.build()).map_err(|e| e.to_string())?;
        if let Some(sni) = &ctx.sni {
            ssl.set_hostname(sni).map_err(|e| e.to_string())?;
        }
        let sock = connect(ctx).map_err(|e| format!("connect: {e}"))?;
        match ssl.connect(sock) {
            Ok(mut s) => {
                if let Some(g) = group {
                    let used = s.ssl().peer_tmp_key().ok().map(|k| tmp_key_group(&k));
                    if used != Some(g) {
                        let _ = s.shutdown();
                        return Ok(Got::No(format!(
                            "server chose another group than {}",
                            codepoints::group_name(g)
                        )));
                    }
                }
                let chain = s
                    .ssl()
                    .peer_cert_chain()
                    .map(|c| {
                        c.iter()
                            .map(|x| CertInfo {
                                subject: x
                                    .subject_name()
                                    .entries()
                                    .filter_map(|e| e.data().to_string().ok())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                key: key_kind(x),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let _ = s.shutdown();
                Ok(Got::Ok(chain))
            }
            Err(openssl::ssl::HandshakeError::WouldBlock(_)) => {
                Ok(Got::No("timed out waiting for the server".into()))
            }
            Err(e) => Ok(Got::No(e.to_string())),
        }
    };
    run().unwrap_or_else(Got::No)
}

/// The group of an ephemeral key, as a code point (0 when unknown).
fn tmp_key_group(k: &openssl::pkey::PKeyRef<openssl::pkey::Public>) -> u16 {
    use openssl::nid::Nid;
    use openssl::pkey::Id;
    match k.id() {
        Id::X25519 => 0x001d,
        Id::X448 => 0x001e,
        Id::EC => match k.ec_key().ok().and_then(|e| e.group().curve_name()) {
            Some(Nid::X9_62_PRIME256V1) => 0x0017,
            Some(Nid::SECP384R1) => 0x0018,
            Some(Nid::SECP521R1) => 0x0019,
            _ => 0,
        },
        _ => 0,
    }
}

/// Accepts any certificate: the probe observes what a server negotiates, it does not trust it.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn rustls_try(ctx: &Ctx, group: u16) -> Got {
    use rustls::crypto::aws_lc_rs;
    let run = || -> Result<Got, String> {
        let kx = aws_lc_rs::ALL_KX_GROUPS
            .iter()
            .copied()
            .find(|k| u16::from(k.name()) == group)
            .ok_or_else(|| format!("rustls cannot offer {}", codepoints::group_name(group)))?;
        let provider = Arc::new(rustls::crypto::CryptoProvider {
            kx_groups: vec![kx],
            ..aws_lc_rs::default_provider()
        });
        let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth();
        let name = ctx.sni.clone().unwrap_or_else(|| ctx.addr.ip().to_string());
        let name = rustls::pki_types::ServerName::try_from(name).map_err(|e| e.to_string())?;
        let mut conn =
            rustls::ClientConnection::new(Arc::new(cfg), name).map_err(|e| e.to_string())?;
        let mut sock = connect(ctx).map_err(|e| format!("connect: {e}"))?;
        while conn.is_handshaking() {
            match conn.complete_io(&mut sock) {
                Ok((0, 0)) => return Ok(Got::No("peer closed the connection".into())),
                Ok(_) => {}
                Err(e) => return Ok(Got::No(e.to_string())),
            }
        }
        conn.send_close_notify();
        let _ = conn.complete_io(&mut sock);
        Ok(Got::Ok(vec![]))
    };
    run().unwrap_or_else(Got::No)
}

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub target: String,
    /// Time limit for the whole probe (all handshakes run within it).
    pub timeout: Duration,
    pub parallel: usize,
}

/// Enumerate what the server at `cfg.target` accepts.
pub fn probe(cfg: &ProbeConfig) -> Result<Findings, ProbeError> {
    let start = Instant::now();
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
    let ctx = Ctx {
        addr,
        sni,
        deadline: start + cfg.timeout,
    };
    // A closed port is an error, not "accepts nothing".
    connect(&ctx).map_err(|source| ProbeError::Connect { addr, source })?;

    let mut tasks: Vec<Task> = TlsVersion::ALL.iter().map(|v| Task::Version(*v)).collect();
    for v in TlsVersion::ALL {
        tasks.extend(suites_for(v).into_iter().map(|s| Task::Suite(v, s)));
    }
    for v in [TlsVersion::TLS12, TlsVersion::TLS13] {
        tasks.extend(CLASSIC_GROUPS.iter().map(|g| Task::Group(v, *g)));
    }
    tasks.extend(PQ_GROUPS.iter().map(|g| Task::PqGroup(*g)));
    tasks.push(Task::NoEms);

    let next = AtomicUsize::new(0);
    let results: Vec<(usize, Got)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..cfg.parallel.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut out = vec![];
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(t) = tasks.get(i) else { break };
                        let got = match t {
                            Task::Version(v) => openssl_try(&ctx, *v, None, None, false),
                            Task::Suite(v, su) => openssl_try(&ctx, *v, Some(*su), None, false),
                            Task::Group(v, g) => openssl_try(&ctx, *v, None, Some(*g), false),
                            Task::PqGroup(g) => rustls_try(&ctx, *g),
                            Task::NoEms => openssl_try(&ctx, TlsVersion::TLS12, None, None, true),
                        };
                        out.push((i, got));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });

    let mut f = Findings {
        target: cfg.target.clone(),
        handshakes: results.len(),
        untested_groups: UNTESTABLE_GROUPS.to_vec(),
        ..Default::default()
    };
    let mut ok = vec![false; tasks.len()];
    let mut first_failure = None;
    for (i, got) in &results {
        match got {
            Got::Ok(chain) => {
                ok[*i] = true;
                if f.chain.is_empty() && !chain.is_empty() {
                    f.chain = chain.clone();
                }
            }
            Got::No(e) => {
                first_failure.get_or_insert_with(|| e.clone());
            }
        }
    }
    let mut tls12_ok = false;
    let mut no_ems_ok = false;
    for (i, t) in tasks.iter().enumerate() {
        if !ok[i] {
            continue;
        }
        match t {
            Task::Version(v) => {
                f.versions.push(*v);
                tls12_ok |= *v == TlsVersion::TLS12;
            }
            Task::Suite(v, s) => f.suites.push((*v, *s)),
            Task::Group(_, g) | Task::PqGroup(g) => {
                if !f.groups.contains(g) {
                    f.groups.push(*g)
                }
            }
            Task::NoEms => no_ems_ok = true,
        }
    }
    // A server that only speaks TLS 1.3 with an ML-KEM group still speaks TLS 1.3.
    if !f.versions.contains(&TlsVersion::TLS13)
        && tasks
            .iter()
            .enumerate()
            .any(|(i, t)| ok[i] && matches!(t, Task::PqGroup(_)))
    {
        f.versions.push(TlsVersion::TLS13);
    }
    // With suites found at a version, the version is accepted even if the broad probe was not.
    for (v, _) in &f.suites {
        if !f.versions.contains(v) {
            f.versions.push(*v);
            tls12_ok |= *v == TlsVersion::TLS12;
        }
    }
    f.versions.sort();
    f.ems_required = tls12_ok.then_some(!no_ems_ok);
    if ok.iter().all(|o| !o) {
        return Err(ProbeError::NoTls {
            addr,
            first: first_failure.unwrap_or_default(),
        });
    }
    f.elapsed_ms = start.elapsed().as_millis();
    Ok(f)
}

/// Judge findings against an optional policy.
pub fn judge(f: Findings, policy: Option<&Policy>) -> Report {
    let row = |item: String, param: Param| {
        let ruling: Option<Ruling> = policy.map(|p| p.allows(&param));
        Row {
            item,
            allowed: ruling.as_ref().map(|r| r.allowed),
            reason: ruling
                .filter(|r| !r.allowed)
                .map(|r| format!("{} [{}]", r.reason, r.source)),
        }
    };
    let mut rows = vec![];
    for v in &f.versions {
        rows.push(row(format!("version {v}"), Param::Version(*v)));
    }
    for (v, s) in &f.suites {
        rows.push(row(
            format!("suite {} ({v})", codepoints::suite_name(*s)),
            Param::Suite(*s),
        ));
    }
    for g in &f.groups {
        rows.push(row(
            format!("group {}", codepoints::group_name(*g)),
            Param::Group(*g),
        ));
    }
    match f.ems_required {
        Some(false) => rows.push(row(
            "TLS 1.2 without Extended Master Secret".into(),
            Param::Tls12WithoutEms,
        )),
        Some(true) => rows.push(Row {
            item: "TLS 1.2 requires Extended Master Secret".into(),
            allowed: policy.map(|_| true),
            reason: None,
        }),
        None => {}
    }
    for (i, c) in f.chain.iter().enumerate() {
        rows.push(row(
            format!("certificate {i} key {} ({})", c.key, c.subject),
            Param::PeerCertKey(c.key.clone()),
        ));
    }
    let verdict = match policy {
        None => "not-judged",
        Some(_) if rows.iter().any(|r| r.allowed == Some(false)) => "fail",
        Some(_) => "pass",
    };
    Report {
        findings: f,
        policy: policy.map(|p| p.to_string()),
        rows,
        verdict,
    }
}

/// The verdict table for people (and scripts that grep).
pub fn render_table(r: &Report) -> String {
    let mut out = format!(
        "target {}  policy {}  ({} handshakes, {} ms)\n",
        r.findings.target,
        r.policy.as_deref().unwrap_or("none"),
        r.findings.handshakes,
        r.findings.elapsed_ms
    );
    let w = r
        .rows
        .iter()
        .map(|x| x.item.len())
        .max()
        .unwrap_or(10)
        .max(10);
    out.push_str(&format!("{:<w$}  {}\n", "ACCEPTED", "VERDICT"));
    for row in &r.rows {
        let v = match row.allowed {
            None => "-".to_string(),
            Some(true) => "ok".to_string(),
            Some(false) => format!("VIOLATION: {}", row.reason.as_deref().unwrap_or("")),
        };
        out.push_str(&format!("{:<w$}  {v}\n", row.item));
    }
    for g in &r.findings.untested_groups {
        out.push_str(&format!(
            "{:<w$}  untested (no client stack here offers it)\n",
            format!("group {}", codepoints::group_name(*g))
        ));
    }
    out.push_str(&format!("verdict: {}\n", r.verdict));
    out
}
