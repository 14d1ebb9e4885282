//! Complete handshakes, for what a server's first flight does not show in the clear: the
//! certificate chain and signature scheme of TLS 1.3, and an independent cross-check of each
//! version by OpenSSL. rustls offers any TLS 1.3 signature scheme (its verifier names them);
//! OpenSSL covers the groups rustls lacks (P-521, X448, ffdhe).

use super::certs::key_kind;
use super::codepoints::{self, TlsVersion};
use super::enumerate::Target;
use super::policy::KeyKind;
use openssl::ssl::{Ssl, SslContext, SslMethod, SslOptions, SslVerifyMode, SslVersion};
use std::sync::Arc;

/// A certificate the server sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub key: KeyKind,
}

/// Read a DER certificate; `None` when it does not parse.
pub fn cert_info(der: &[u8]) -> Option<CertInfo> {
    let x = openssl::x509::X509::from_der(der).ok()?;
    Some(CertInfo {
        subject: x
            .subject_name()
            .entries()
            .filter_map(|e| e.data().to_string().ok())
            .collect::<Vec<_>>()
            .join(", "),
        key: key_kind(&x),
    })
}

/// The outcome of one complete handshake.
#[derive(Debug, Clone)]
pub enum Done {
    /// Completed: the negotiated suite and the chain (DER, leaf first).
    Ok(u16, Vec<Vec<u8>>),
    /// The server refused what was offered (a handshake_failure-class alert).
    Refused,
    /// Anything else: the handshake says nothing about acceptance.
    Broken(String),
    /// The local stack cannot offer what was asked.
    Untestable(String),
}

fn ossl_version(v: TlsVersion) -> SslVersion {
    match v {
        TlsVersion::TLS10 => SslVersion::TLS1,
        TlsVersion::TLS11 => SslVersion::TLS1_1,
        TlsVersion::TLS12 => SslVersion::TLS1_2,
        _ => SslVersion::TLS1_3,
    }
}

/// Groups OpenSSL 3.0 offers here.
const OPENSSL_GROUPS: &str =
    "X25519:P-256:P-384:P-521:X448:ffdhe2048:ffdhe3072:ffdhe4096:ffdhe6144:ffdhe8192";

/// A complete OpenSSL handshake at exactly `v`, offering everything OpenSSL has, or only the
/// TLS 1.3 signature scheme `sigalg` (an OpenSSL name).
pub fn openssl(t: &Target, v: TlsVersion, sigalg: Option<&str>) -> Done {
    openssl_with(t, v, sigalg, false)
}

/// A complete OpenSSL TLS 1.2 handshake without Extended Master Secret. Servers may refuse a
/// missing EMS only after their first flight (Go in FIPS mode does), so a ServerHello alone
/// does not tell.
pub fn openssl_without_ems(t: &Target) -> Done {
    openssl_with(t, TlsVersion::TLS12, None, true)
}

fn openssl_with(t: &Target, v: TlsVersion, sigalg: Option<&str>, no_ems: bool) -> Done {
    let run = || -> Result<Done, String> {
        // A plain context: SslConnector would load the system trust store for every probe.
        let mut b = SslContext::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
        b.set_verify(SslVerifyMode::NONE);
        b.set_security_level(0);
        b.set_min_proto_version(Some(ossl_version(v)))
            .map_err(|e| e.to_string())?;
        b.set_max_proto_version(Some(ossl_version(v)))
            .map_err(|e| e.to_string())?;
        if v < TlsVersion::TLS13 {
            b.set_cipher_list("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
                .map_err(|e| e.to_string())?;
        } else {
            b.set_ciphersuites(
                "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256",
            )
            .map_err(|e| e.to_string())?;
        }
        b.set_groups_list(OPENSSL_GROUPS)
            .map_err(|e| e.to_string())?;
        if let Some(s) = sigalg
            && b.set_sigalgs_list(s).is_err()
        {
            return Ok(Done::Untestable(format!("OpenSSL cannot offer `{s}`")));
        }
        let mut opts = SslOptions::NO_TICKET;
        if no_ems {
            // SSL_OP_NO_EXTENDED_MASTER_SECRET (OpenSSL 3.0, bit 0): not named by the crate.
            opts |= SslOptions::from_bits_retain(1);
        }
        b.set_options(opts);
        let mut ssl = Ssl::new(&b.build()).map_err(|e| e.to_string())?;
        if let Some(sni) = &t.sni {
            ssl.set_hostname(sni).map_err(|e| e.to_string())?;
        }
        let sock = t.connect().map_err(|e| format!("connect: {e}"))?;
        match ssl.connect(sock) {
            Ok(mut s) => {
                let suite = s
                    .ssl()
                    .current_cipher()
                    .map(|c| {
                        let id = c.protocol_id();
                        u16::from_be_bytes(id)
                    })
                    .unwrap_or(0);
                let chain = s
                    .ssl()
                    .peer_cert_chain()
                    .map(|c| c.iter().filter_map(|x| x.to_der().ok()).collect())
                    .unwrap_or_default();
                let _ = s.shutdown();
                Ok(Done::Ok(suite, chain))
            }
            Err(e) => Ok(classify_openssl(&e.to_string())),
        }
    };
    run().unwrap_or_else(Done::Broken)
}

fn classify_openssl(e: &str) -> Done {
    let refused = [
        "handshake failure",
        "insufficient security",
        "protocol version",
        "no shared",
        "no suitable",
    ];
    if refused.iter().any(|r| e.contains(r)) {
        Done::Refused
    } else {
        Done::Broken(e.to_string())
    }
}

/// Accepts any certificate and offers exactly the schemes given: the probe observes what a
/// server signs with, it does not trust it.
#[derive(Debug)]
struct AnyCert(Vec<rustls::SignatureScheme>);

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
        self.0.clone()
    }
}

/// The TLS 1.3 groups rustls (aws-lc-rs) can offer, as code points.
pub fn rustls_groups() -> Vec<u16> {
    rustls::crypto::aws_lc_rs::ALL_KX_GROUPS
        .iter()
        .map(|k| u16::from(k.name()))
        .collect()
}

/// A complete TLS 1.3 rustls handshake offering only the signature scheme `sigalg` and the
/// groups in `groups` that rustls has.
pub fn rustls_tls13(t: &Target, sigalg: u16, groups: &[u16]) -> Done {
    use rustls::crypto::aws_lc_rs;
    let run = || -> Result<Done, String> {
        let kx: Vec<_> = aws_lc_rs::ALL_KX_GROUPS
            .iter()
            .copied()
            .filter(|k| groups.contains(&u16::from(k.name())))
            .collect();
        let provider = Arc::new(rustls::crypto::CryptoProvider {
            kx_groups: kx,
            ..aws_lc_rs::default_provider()
        });
        let verifier = AnyCert(vec![rustls::SignatureScheme::from(sigalg)]);
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let name = t.sni.clone().unwrap_or_else(|| t.addr.ip().to_string());
        let name = rustls::pki_types::ServerName::try_from(name).map_err(|e| e.to_string())?;
        let mut conn =
            rustls::ClientConnection::new(Arc::new(cfg), name).map_err(|e| e.to_string())?;
        let mut sock = t.connect().map_err(|e| format!("connect: {e}"))?;
        while conn.is_handshaking() {
            match conn.complete_io(&mut sock) {
                Ok((0, 0)) => return Ok(Done::Broken("peer closed the connection".into())),
                Ok(_) => {}
                Err(e) => return Ok(classify_rustls(e)),
            }
        }
        let suite = conn
            .negotiated_cipher_suite()
            .map(|s| u16::from(s.suite()))
            .unwrap_or(0);
        let chain = conn
            .peer_certificates()
            .map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect())
            .unwrap_or_default();
        conn.send_close_notify();
        let _ = conn.complete_io(&mut sock);
        Ok(Done::Ok(suite, chain))
    };
    run().unwrap_or_else(Done::Broken)
}

fn classify_rustls(e: std::io::Error) -> Done {
    use rustls::AlertDescription as A;
    let inner = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .cloned();
    match inner {
        Some(rustls::Error::AlertReceived(A::HandshakeFailure | A::InsufficientSecurity)) => {
            Done::Refused
        }
        _ => Done::Broken(e.to_string()),
    }
}

/// Whether a key of this kind could sign with `sigalg`: a scheme no local stack can offer only
/// matters when the server holds a key that could use it.
pub fn key_can_sign(key: &KeyKind, sigalg: u16) -> bool {
    let name = codepoints::sigalg_iana(sigalg).to_ascii_lowercase();
    match key {
        KeyKind::Rsa(_) => name.starts_with("rsa_"),
        KeyKind::Ecdsa(curve) => {
            let c = match curve.as_str() {
                "P-256" => "secp256r1",
                "P-384" => "secp384r1",
                "P-521" => "secp521r1",
                other => other,
            };
            name.starts_with("ecdsa_") && name.contains(&c.to_ascii_lowercase())
        }
        KeyKind::Ed25519 => name == "ed25519",
        // A key the policy does not name (ML-DSA, Ed448, SM2, DSA…): assume it could.
        KeyKind::Other(_) => true,
    }
}
