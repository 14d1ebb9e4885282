//! The per-run PKI for challenge endpoints: a good ECDSA P-256 root, a deliberately weak
//! RSA-1024 root, and leaves of any key type for a given set of SANs (OpenSSL, because rcgen
//! cannot make RSA keys of arbitrary size). Keys live only in memory.

use super::policy::KeyKind;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder};

/// Building a key or certificate failed inside OpenSSL.
#[derive(Debug, thiserror::Error)]
#[error("create the {what}")]
pub struct CertError {
    pub what: String,
    #[source]
    pub source: openssl::error::ErrorStack,
}

/// A certificate with its private key.
pub struct Issued {
    pub cert: X509,
    pub key: PKey<Private>,
}

/// Which root signs a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Good,
    WeakRsa1024,
}

/// The run's certificate authorities.
pub struct Pki {
    pub good: Issued,
    pub weak: Issued,
    san: Vec<String>,
}

fn gen_key(kind: &KeyKind) -> Result<PKey<Private>, openssl::error::ErrorStack> {
    match kind {
        KeyKind::Rsa(bits) => PKey::from_rsa(Rsa::generate(*bits)?),
        KeyKind::Ecdsa(curve) => {
            let nid = match curve.as_str() {
                "P-384" => Nid::SECP384R1,
                "P-521" => Nid::SECP521R1,
                _ => Nid::X9_62_PRIME256V1,
            };
            let group = EcGroup::from_curve_name(nid)?;
            PKey::from_ec_key(EcKey::generate(&group)?)
        }
        _ => PKey::generate_ed25519(),
    }
}

fn digest_for(key: &PKey<Private>) -> MessageDigest {
    // Ed25519 signs the message itself: OpenSSL wants the null digest.
    if key.id() == openssl::pkey::Id::ED25519 {
        MessageDigest::null()
    } else {
        MessageDigest::sha256()
    }
}

fn build(
    cn: &str,
    key: PKey<Private>,
    issuer: Option<&Issued>,
    san: &[String],
) -> Result<Issued, openssl::error::ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "flux-compat challenge")?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(issuer.map(|i| i.cert.subject_name()).unwrap_or(&name))?;
    b.set_pubkey(&key)?;
    let (from, until) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(7)?);
    b.set_not_before(&from)?;
    b.set_not_after(&until)?;
    if issuer.is_none() {
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
    } else {
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        let mut ku = KeyUsage::new();
        ku.critical().digital_signature();
        if key.id() == openssl::pkey::Id::RSA {
            // Static RSA key exchange encrypts to the leaf key.
            ku.key_encipherment();
        }
        b.append_extension(ku.build()?)?;
        b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
        let mut alt = SubjectAlternativeName::new();
        for s in san {
            if s.parse::<std::net::IpAddr>().is_ok() {
                alt.ip(s);
            } else {
                alt.dns(s);
            }
        }
        b.append_extension(alt.build(&b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))?)?;
    }
    let signer = issuer.map(|i| &i.key).unwrap_or(&key);
    b.sign(signer, digest_for(signer))?;
    let cert = b.build();
    Ok(Issued { cert, key })
}

impl Pki {
    /// A fresh pair of roots for leaves naming `san` (DNS names or IP addresses).
    pub fn new(san: &[String]) -> Result<Self, CertError> {
        fn err(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> CertError {
            move |source| CertError {
                what: what.to_string(),
                source,
            }
        }
        let good = gen_key(&KeyKind::Ecdsa("P-256".into()))
            .and_then(|k| build("flux-compat challenge root P-256", k, None, &[]))
            .map_err(err("challenge root CA"))?;
        let weak = gen_key(&KeyKind::Rsa(1024))
            .and_then(|k| build("flux-compat challenge root RSA-1024", k, None, &[]))
            .map_err(err("weak RSA-1024 root CA"))?;
        Ok(Self {
            good,
            weak,
            san: san.to_vec(),
        })
    }

    /// A leaf with a key of `kind`, signed by `root`.
    pub fn leaf(&self, kind: &KeyKind, root: Root) -> Result<Issued, CertError> {
        let issuer = match root {
            Root::Good => &self.good,
            Root::WeakRsa1024 => &self.weak,
        };
        gen_key(kind)
            .and_then(|k| {
                build(
                    self.san.first().map(String::as_str).unwrap_or("localhost"),
                    k,
                    Some(issuer),
                    &self.san,
                )
            })
            .map_err(|source| CertError {
                what: format!("{kind} leaf certificate"),
                source,
            })
    }

    /// Both roots as one PEM bundle: what a client must trust (the `ca.crt` of the Flux Secret).
    pub fn ca_bundle_pem(&self) -> String {
        let mut out = String::new();
        for c in [&self.good.cert, &self.weak.cert] {
            out.push_str(&String::from_utf8_lossy(&c.to_pem().unwrap_or_default()));
        }
        out
    }
}

/// The policy's view of a certificate's public key.
pub fn key_kind(cert: &openssl::x509::X509Ref) -> KeyKind {
    let Ok(pk) = cert.public_key() else {
        return KeyKind::Other("unreadable key".into());
    };
    match pk.id() {
        openssl::pkey::Id::RSA => KeyKind::Rsa(pk.bits()),
        openssl::pkey::Id::EC => {
            let curve = pk
                .ec_key()
                .ok()
                .and_then(|k| k.group().curve_name())
                .map(|n| match n {
                    Nid::X9_62_PRIME256V1 => "P-256".to_string(),
                    Nid::SECP384R1 => "P-384".to_string(),
                    Nid::SECP521R1 => "P-521".to_string(),
                    Nid::SECP224R1 => "P-224".to_string(),
                    other => other.short_name().unwrap_or("unknown curve").to_string(),
                })
                .unwrap_or_else(|| "unnamed curve".into());
            KeyKind::Ecdsa(curve)
        }
        openssl::pkey::Id::ED25519 => KeyKind::Ed25519,
        other => KeyKind::Other(format!("key type {}", other.as_raw())),
    }
}
