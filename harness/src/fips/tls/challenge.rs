//! Challenge endpoints: one TLS listener per challenge, each offering exactly one deviating
//! parameter (or a positive control). Each connection's ClientHello is captured before the
//! socket is handed to OpenSSL (legacy and classic parameters) or rustls (ML-KEM hybrids), and
//! the handshake outcome is recorded for in-process queries. Blocking threads with socket
//! timeouts: a silent or broken peer costs one thread for at most the timeout, never a listener.

use super::certs::{CertError, Issued, Pki, Root};
use super::clienthello::{self, ClientHello, HelloError};
use super::codepoints::TlsVersion;
use super::policy::{KeyKind, Offer};
use openssl::ssl::{Ssl, SslContext, SslMethod, SslOptions, SslVersion};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// The challenges, in port order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(into = "&'static str")]
pub enum ChallengeId {
    Tls12Chacha20,
    Tls13Chacha20,
    X25519Tls12,
    X25519Tls13,
    Tls11,
    CbcSha1,
    StaticRsa,
    Tls12NoEms,
    LeafRsa1024,
    RootRsa1024,
    LeafEd25519,
    LeafRsa2560,
    X25519Mlkem768,
    ControlTls13,
    ControlTls12Ems,
}

impl From<ChallengeId> for &'static str {
    fn from(c: ChallengeId) -> Self {
        c.id()
    }
}

const P256: u16 = 0x0017;
const X25519: u16 = 0x001d;
const MLKEM: u16 = 0x11ec;
const AES128_GCM13: u16 = 0x1301;
const ECDSA_AES128_GCM: u16 = 0xc02b;
const RSA_AES128_GCM_ECDHE: u16 = 0xc02f;

impl ChallengeId {
    pub const ALL: [ChallengeId; 15] = [
        Self::Tls12Chacha20,
        Self::Tls13Chacha20,
        Self::X25519Tls12,
        Self::X25519Tls13,
        Self::Tls11,
        Self::CbcSha1,
        Self::StaticRsa,
        Self::Tls12NoEms,
        Self::LeafRsa1024,
        Self::RootRsa1024,
        Self::LeafEd25519,
        Self::LeafRsa2560,
        Self::X25519Mlkem768,
        Self::ControlTls13,
        Self::ControlTls12Ems,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Self::Tls12Chacha20 => "tls12-chacha20",
            Self::Tls13Chacha20 => "tls13-chacha20",
            Self::X25519Tls12 => "x25519-tls12",
            Self::X25519Tls13 => "x25519-tls13",
            Self::Tls11 => "tls11",
            Self::CbcSha1 => "cbc-sha1",
            Self::StaticRsa => "static-rsa",
            Self::Tls12NoEms => "tls12-no-ems",
            Self::LeafRsa1024 => "leaf-rsa1024",
            Self::RootRsa1024 => "root-rsa1024",
            Self::LeafEd25519 => "leaf-ed25519",
            Self::LeafRsa2560 => "leaf-rsa2560",
            Self::X25519Mlkem768 => "x25519mlkem768",
            Self::ControlTls13 => "control-tls13",
            Self::ControlTls12Ems => "control-tls12-ems",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::Tls12Chacha20 => "TLS 1.2, ECDHE-ECDSA-CHACHA20-POLY1305 only",
            Self::Tls13Chacha20 => "TLS 1.3, TLS_CHACHA20_POLY1305_SHA256 only",
            Self::X25519Tls12 => "TLS 1.2, group X25519 only",
            Self::X25519Tls13 => "TLS 1.3, group X25519 only",
            Self::Tls11 => "TLS 1.1 only",
            Self::CbcSha1 => "TLS 1.2, ECDHE-ECDSA-AES128-SHA (CBC, SHA-1 MAC) only",
            Self::StaticRsa => "TLS 1.2, static RSA key exchange (AES128-GCM-SHA256) only",
            Self::Tls12NoEms => "TLS 1.2 without Extended Master Secret",
            Self::LeafRsa1024 => "RSA-1024 leaf certificate",
            Self::RootRsa1024 => "ECDSA P-256 leaf under an RSA-1024 root",
            Self::LeafEd25519 => "Ed25519 leaf certificate",
            Self::LeafRsa2560 => "RSA-2560 leaf certificate",
            Self::X25519Mlkem768 => "TLS 1.3, group X25519MLKEM768 only",
            Self::ControlTls13 => "control: TLS 1.3, AES-GCM, P-256",
            Self::ControlTls12Ems => "control: TLS 1.2 with EMS, ECDHE-ECDSA-AES128-GCM, P-256",
        }
    }

    /// Parse a challenge id; the error lists the known ids.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|c| c.id() == s).ok_or_else(|| {
            format!(
                "unknown challenge `{s}` (known: {})",
                Self::ALL
                    .iter()
                    .map(|c| c.id())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    /// Exactly what the server offers.
    pub fn offer(self) -> Offer {
        use TlsVersion as V;
        let p256 = || KeyKind::Ecdsa("P-256".into());
        let modern = |versions: Vec<V>, suites: Vec<u16>, groups: Vec<u16>| Offer {
            versions,
            suites,
            groups,
            leaf: p256(),
            root: p256(),
            ems: true,
        };
        let cert = |leaf: KeyKind, root: KeyKind| {
            let tls12 = if matches!(leaf, KeyKind::Rsa(_)) {
                RSA_AES128_GCM_ECDHE
            } else {
                ECDSA_AES128_GCM
            };
            Offer {
                versions: vec![V::TLS13, V::TLS12],
                suites: vec![AES128_GCM13, tls12],
                groups: vec![P256],
                leaf,
                root,
                ems: true,
            }
        };
        match self {
            Self::Tls12Chacha20 => modern(vec![V::TLS12], vec![0xcca9], vec![P256]),
            Self::Tls13Chacha20 => modern(vec![V::TLS13], vec![0x1303], vec![P256]),
            Self::X25519Tls12 => modern(vec![V::TLS12], vec![ECDSA_AES128_GCM], vec![X25519]),
            Self::X25519Tls13 => modern(vec![V::TLS13], vec![AES128_GCM13], vec![X25519]),
            Self::Tls11 => modern(vec![V::TLS11], vec![0xc009], vec![P256]),
            Self::CbcSha1 => modern(vec![V::TLS12], vec![0xc009], vec![P256]),
            Self::StaticRsa => Offer {
                versions: vec![V::TLS12],
                suites: vec![0x009c],
                groups: vec![],
                leaf: KeyKind::Rsa(2048),
                root: p256(),
                ems: true,
            },
            Self::Tls12NoEms => Offer {
                ems: false,
                ..modern(vec![V::TLS12], vec![ECDSA_AES128_GCM], vec![P256])
            },
            Self::LeafRsa1024 => cert(KeyKind::Rsa(1024), p256()),
            Self::RootRsa1024 => cert(p256(), KeyKind::Rsa(1024)),
            Self::LeafEd25519 => cert(KeyKind::Ed25519, p256()),
            Self::LeafRsa2560 => cert(KeyKind::Rsa(2560), p256()),
            Self::X25519Mlkem768 => modern(vec![V::TLS13], vec![AES128_GCM13], vec![MLKEM]),
            Self::ControlTls13 => modern(vec![V::TLS13], vec![AES128_GCM13, 0x1302], vec![P256]),
            Self::ControlTls12Ems => modern(vec![V::TLS12], vec![ECDSA_AES128_GCM], vec![P256]),
        }
    }

    fn root(self) -> Root {
        if self == Self::RootRsa1024 {
            Root::WeakRsa1024
        } else {
            Root::Good
        }
    }
}

/// How one connection ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    /// The handshake completed.
    Accepted { version: String, cipher: String },
    /// A valid ClientHello arrived but the handshake did not complete (alert, no shared parameter).
    Refused { cause: String },
    /// No usable ClientHello or an I/O problem (garbage, truncation, silence past the timeout).
    Error { cause: String },
}

/// One connection to a challenge endpoint.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    pub peer: SocketAddr,
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
    pub client_hello: Option<ClientHello>,
    pub hello_error: Option<String>,
    pub outcome: Outcome,
}

mod rfc3339 {
    pub fn serialize<S: serde::Serializer>(
        t: &std::time::SystemTime,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_millis(*t).to_string())
    }
}

/// Where to listen and what the certificates name.
#[derive(Debug, Clone)]
pub struct ChallengeConfig {
    pub listen: IpAddr,
    /// The first port; challenge `i` (in [`ChallengeId::ALL`] order) gets `first_port + i`.
    /// `None` picks free ephemeral ports.
    pub first_port: Option<u16>,
    /// DNS names and IP addresses in every leaf's SAN (e.g. `challenge.<ns>.svc`).
    pub san: Vec<String>,
    /// Per-connection limit for reading the ClientHello and for the handshake.
    pub timeout: Duration,
    /// Which challenges to serve (all when empty).
    pub only: Vec<ChallengeId>,
}

impl Default for ChallengeConfig {
    fn default() -> Self {
        Self {
            listen: IpAddr::from([127, 0, 0, 1]),
            first_port: None,
            san: vec!["localhost".into(), "127.0.0.1".into()],
            timeout: Duration::from_secs(5),
            only: vec![],
        }
    }
}

/// Starting the challenge set failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("generate certificates for the challenge endpoints")]
    Cert(#[from] CertError),
    #[error("configure the TLS server for challenge `{challenge}`")]
    Tls {
        challenge: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("listen on `{addr}` for challenge `{challenge}`")]
    Bind {
        challenge: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Waiting for a challenge's attempts did not finish.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WaitError {
    #[error("challenge `{0}` is not served by this set")]
    NotServed(&'static str),
    #[error(
        "no connection reached challenge `{challenge}` within {waited:?} ({seen} of {wanted} attempt(s) seen)"
    )]
    TimedOut {
        challenge: &'static str,
        waited: Duration,
        seen: usize,
        wanted: usize,
    },
}

/// A listening challenge.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Endpoint {
    pub challenge: ChallengeId,
    pub addr: SocketAddr,
}

enum Server {
    OpenSsl(SslContext),
    Rustls(Arc<rustls::ServerConfig>),
}

#[derive(Default)]
struct Records {
    by_challenge: Mutex<HashMap<ChallengeId, Vec<Attempt>>>,
    changed: Condvar,
}

/// The running challenge endpoints. Dropping it stops the listeners.
pub struct ChallengeSet {
    endpoints: Vec<Endpoint>,
    ca_pem: String,
    records: Arc<Records>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn openssl_ctx(offer: &Offer, leaf: &Issued) -> Result<SslContext, openssl::error::ErrorStack> {
    let mut b = SslContext::builder(SslMethod::tls_server())?;
    let ver = |v: TlsVersion| match v {
        TlsVersion::TLS10 => SslVersion::TLS1,
        TlsVersion::TLS11 => SslVersion::TLS1_1,
        TlsVersion::TLS12 => SslVersion::TLS1_2,
        _ => SslVersion::TLS1_3,
    };
    let (lo, hi) = (
        offer.versions.iter().min().copied(),
        offer.versions.iter().max().copied(),
    );
    b.set_min_proto_version(lo.map(ver))?;
    b.set_max_proto_version(hi.map(ver))?;
    // Level 0 lets OpenSSL serve TLS 1.1, SHA-1 MACs and RSA-1024 keys; the offer itself is the limit.
    b.set_security_level(0);
    let legacy: Vec<&str> = offer
        .suites
        .iter()
        .filter(|s| !super::codepoints::is_tls13_suite(**s))
        .filter_map(|s| super::codepoints::suite_openssl(*s))
        .collect();
    let tls13: Vec<&str> = offer
        .suites
        .iter()
        .filter(|s| super::codepoints::is_tls13_suite(**s))
        .filter_map(|s| super::codepoints::suite_openssl(*s))
        .collect();
    if !legacy.is_empty() {
        b.set_cipher_list(&format!("{}:@SECLEVEL=0", legacy.join(":")))?;
    }
    if !tls13.is_empty() {
        b.set_ciphersuites(&tls13.join(":"))?;
    }
    let groups: Vec<&str> = offer
        .groups
        .iter()
        .filter_map(|g| super::codepoints::group_openssl(*g))
        .collect();
    if !groups.is_empty() {
        b.set_groups_list(&groups.join(":"))?;
    }
    let mut opts = SslOptions::NO_TICKET;
    if !offer.ems {
        // SSL_OP_NO_EXTENDED_MASTER_SECRET (OpenSSL 3.0, bit 0): not named by the crate.
        opts |= SslOptions::from_bits_retain(1);
    }
    b.set_options(opts);
    b.set_certificate(&leaf.cert)?;
    b.set_private_key(&leaf.key)?;
    b.check_private_key()?;
    Ok(b.build())
}

fn rustls_config(
    offer: &Offer,
    leaf: &Issued,
) -> Result<rustls::ServerConfig, Box<dyn std::error::Error + Send + Sync>> {
    use rustls::crypto::aws_lc_rs;
    let groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup> = offer
        .groups
        .iter()
        .filter_map(|g| {
            aws_lc_rs::ALL_KX_GROUPS
                .iter()
                .copied()
                .find(|k| u16::from(k.name()) == *g)
        })
        .collect();
    let provider = rustls::crypto::CryptoProvider {
        kx_groups: groups,
        ..aws_lc_rs::default_provider()
    };
    let chain = vec![rustls::pki_types::CertificateDer::from(leaf.cert.to_der()?)];
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf.key.private_key_to_pkcs8()?.into());
    Ok(
        rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(chain, key)?,
    )
}

impl ChallengeSet {
    /// Generate the per-run PKI and start one listener per challenge.
    pub fn start(cfg: &ChallengeConfig) -> Result<Self, StartError> {
        let pki = Pki::new(&cfg.san)?;
        let chosen: Vec<ChallengeId> = if cfg.only.is_empty() {
            ChallengeId::ALL.to_vec()
        } else {
            cfg.only.clone()
        };
        // Leaves are independent; RSA key generation dominates start-up, so make them in parallel.
        let leaves: Vec<Result<Issued, CertError>> = std::thread::scope(|s| {
            let hs: Vec<_> = chosen
                .iter()
                .map(|c| {
                    let pki = &pki;
                    let c = *c;
                    s.spawn(move || pki.leaf(&c.offer().leaf, c.root()))
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("certificate thread panicked"))
                .collect()
        });
        let records = Arc::new(Records::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut set = ChallengeSet {
            endpoints: vec![],
            ca_pem: pki.ca_bundle_pem(),
            records,
            stop,
            threads: vec![],
        };
        for (c, leaf) in chosen.iter().copied().zip(leaves) {
            let leaf = leaf?;
            let offer = c.offer();
            let tls_err = |source| StartError::Tls {
                challenge: c.id(),
                source,
            };
            let server = if offer.groups.contains(&MLKEM) {
                Server::Rustls(Arc::new(rustls_config(&offer, &leaf).map_err(tls_err)?))
            } else {
                Server::OpenSsl(openssl_ctx(&offer, &leaf).map_err(|e| tls_err(Box::new(e)))?)
            };
            let index = ChallengeId::ALL.iter().position(|x| *x == c).unwrap_or(0) as u16;
            let port = cfg.first_port.map(|p| p.saturating_add(index)).unwrap_or(0);
            let addr = SocketAddr::new(cfg.listen, port);
            let listener = TcpListener::bind(addr).map_err(|source| StartError::Bind {
                challenge: c.id(),
                addr,
                source,
            })?;
            let addr = listener.local_addr().map_err(|source| StartError::Bind {
                challenge: c.id(),
                addr,
                source,
            })?;
            set.endpoints.push(Endpoint { challenge: c, addr });
            let (records, stop, timeout) = (set.records.clone(), set.stop.clone(), cfg.timeout);
            let server = Arc::new(server);
            set.threads.push(std::thread::spawn(move || {
                serve(c, listener, server, records, stop, timeout)
            }));
        }
        Ok(set)
    }

    /// Challenge id → listening address.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The address of one challenge.
    pub fn addr(&self, c: ChallengeId) -> Option<SocketAddr> {
        self.endpoints
            .iter()
            .find(|e| e.challenge == c)
            .map(|e| e.addr)
    }

    /// PEM of both roots: what a client must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Everything recorded for a challenge so far.
    pub fn attempts(&self, c: ChallengeId) -> Vec<Attempt> {
        self.records
            .by_challenge
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&c)
            .cloned()
            .unwrap_or_default()
    }

    /// Wait until a challenge has recorded at least `n` attempts; returns them all.
    pub fn wait_for(
        &self,
        c: ChallengeId,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Attempt>, WaitError> {
        if self.addr(c).is_none() {
            return Err(WaitError::NotServed(c.id()));
        }
        let deadline = Instant::now() + timeout;
        let mut guard = self
            .records
            .by_challenge
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        loop {
            let seen = guard.get(&c).map_or(0, Vec::len);
            if seen >= n {
                return Ok(guard.get(&c).cloned().unwrap_or_default());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitError::TimedOut {
                    challenge: c.id(),
                    waited: timeout,
                    seen,
                    wanted: n,
                });
            }
            guard = self
                .records
                .changed
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for ChallengeSet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for e in &self.endpoints {
            // Wake the blocking accept so the listener sees the stop flag.
            let mut wake = e.addr;
            if wake.ip().is_unspecified() {
                wake.set_ip(IpAddr::from([127, 0, 0, 1]));
            }
            let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(200));
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve(
    c: ChallengeId,
    listener: TcpListener,
    server: Arc<Server>,
    records: Arc<Records>,
    stop: Arc<AtomicBool>,
    timeout: Duration,
) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(sock) = conn else {
            // accept() errors (e.g. the peer reset before accept) concern one connection only.
            continue;
        };
        let (server, records) = (server.clone(), records.clone());
        std::thread::spawn(move || {
            let attempt = handle(sock, &server, timeout);
            tracing::debug!(challenge = c.id(), outcome = ?attempt.outcome, "challenge connection");
            let mut g = records
                .by_challenge
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            g.entry(c).or_default().push(attempt);
            records.changed.notify_all();
        });
    }
}

/// Replays the bytes already read (the ClientHello) before reading from the socket.
struct Replay {
    prefix: Vec<u8>,
    pos: usize,
    inner: TcpStream,
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos < self.prefix.len() {
            let n = buf.len().min(self.prefix.len() - self.pos);
            buf[..n].copy_from_slice(&self.prefix[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn handle(mut sock: TcpStream, server: &Server, timeout: Duration) -> Attempt {
    let peer = sock
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let at = SystemTime::now();
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    let _ = sock.set_nodelay(true);
    let (raw, hello) = clienthello::read_client_hello(&mut sock);
    let hello = match hello {
        Ok(h) => h,
        Err(e) => {
            let _ = sock.shutdown(std::net::Shutdown::Both);
            return Attempt {
                peer,
                at,
                client_hello: None,
                hello_error: Some(e.to_string()),
                outcome: Outcome::Error {
                    cause: hello_cause(&e),
                },
            };
        }
    };
    let stream = Replay {
        prefix: raw,
        pos: 0,
        inner: sock,
    };
    let outcome = match server {
        Server::OpenSsl(ctx) => openssl_handshake(ctx, stream),
        Server::Rustls(cfg) => rustls_handshake(cfg.clone(), stream),
    };
    Attempt {
        peer,
        at,
        client_hello: Some(hello),
        hello_error: None,
        outcome,
    }
}

fn hello_cause(e: &HelloError) -> String {
    format!("no usable ClientHello: {e}")
}

fn openssl_handshake(ctx: &SslContext, stream: Replay) -> Outcome {
    use openssl::ssl::HandshakeError;
    let ssl = match Ssl::new(ctx) {
        Ok(s) => s,
        Err(e) => {
            return Outcome::Error {
                cause: format!("create the OpenSSL session: {e}"),
            };
        }
    };
    match ssl.accept(stream) {
        Ok(mut s) => {
            let version = s.ssl().version_str().to_string();
            let cipher = s
                .ssl()
                .current_cipher()
                .map(|c| c.standard_name().unwrap_or(c.name()).to_string())
                .unwrap_or_default();
            let _ = s.shutdown();
            Outcome::Accepted { version, cipher }
        }
        Err(HandshakeError::WouldBlock(_)) => Outcome::Error {
            cause: "handshake timed out".into(),
        },
        Err(HandshakeError::SetupFailure(e)) => Outcome::Error {
            cause: format!("set up the handshake: {e}"),
        },
        Err(HandshakeError::Failure(m)) => {
            let e = m.error();
            if e.io_error().is_some_and(is_timeout) {
                Outcome::Error {
                    cause: "handshake timed out".into(),
                }
            } else {
                let stack = e.ssl_error().map(|s| s.to_string());
                let cause = match (stack, e.io_error()) {
                    (Some(s), _) => s,
                    (None, Some(io)) => format!("peer dropped the connection: {io}"),
                    (None, None) => "peer closed the connection during the handshake".into(),
                };
                Outcome::Refused { cause }
            }
        }
    }
}

fn rustls_handshake(cfg: Arc<rustls::ServerConfig>, mut stream: Replay) -> Outcome {
    let mut conn = match rustls::ServerConnection::new(cfg) {
        Ok(c) => c,
        Err(e) => {
            return Outcome::Error {
                cause: format!("create the rustls session: {e}"),
            };
        }
    };
    while conn.is_handshaking() {
        match conn.complete_io(&mut stream) {
            Ok((0, 0)) => {
                return Outcome::Refused {
                    cause: "peer closed the connection during the handshake".into(),
                };
            }
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {
                return Outcome::Error {
                    cause: "handshake timed out".into(),
                };
            }
            Err(e) => {
                // Flush any alert rustls queued for the peer.
                let _ = conn.write_tls(&mut stream);
                return Outcome::Refused {
                    cause: e.to_string(),
                };
            }
        }
    }
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(v) => format!("{v:?}"),
        None => String::new(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    conn.send_close_notify();
    let _ = conn.complete_io(&mut stream);
    Outcome::Accepted { version, cipher }
}
