//! DSSE envelopes (Dead Simple Signing Envelope, the in-toto signature wrapper): pre-auth encoding,
//! signing with a local ECDSA P-256 key (PKCS#8 PEM) and verification with its public key (SPKI
//! PEM). Signatures are ASN.1 DER over SHA-256 of the PAE, as securesystemslib and cosign make
//! them; a key id is the hex sha256 of the DER public key. Nothing here accepts an envelope
//! unless every signature on it verifies with a key it was given.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::ec::EcKey;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use openssl::sign::{Signer, Verifier};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::path::{Path, PathBuf};

/// The payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Environment variable holding the passphrase of an encrypted PKCS#8 signing key.
pub const PASSPHRASE_ENV: &str = "FLUX_COMPAT_SIGNING_KEY_PASSPHRASE";
/// Key files larger than this are not keys.
const MAX_KEY_BYTES: u64 = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    pub payload_type: String,
    /// Base64 (standard alphabet, padded) of the payload bytes.
    pub payload: String,
    pub signatures: Vec<Signature>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    #[serde(default)]
    pub keyid: String,
    pub sig: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("read key `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("read key `{path}`: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Why an envelope is not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("accept an envelope with payload type `{0}`; expected `{PAYLOAD_TYPE}`")]
    PayloadType(String),
    #[error("accept an envelope whose payload is not base64: {0}")]
    Payload(String),
    #[error("accept an envelope without signatures: unsigned evidence is never accepted")]
    Unsigned,
    #[error("accept signature {index}: it is by key `{keyid}`, not by the given key `{expected}`")]
    UnknownKey {
        index: usize,
        keyid: String,
        expected: String,
    },
    #[error(
        "accept signature {index} (key `{keyid}`): it does not verify; the envelope was altered or signed by another key"
    )]
    BadSignature { index: usize, keyid: String },
}

/// `DSSEv1 <len(type)> <type> <len(body)> <body>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

fn read_key(path: &Path) -> Result<Vec<u8>, KeyError> {
    let err = |source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(err)?.len();
    if len > MAX_KEY_BYTES {
        return Err(KeyError::Invalid {
            path: path.to_path_buf(),
            message: format!("{len} bytes is too large for a key"),
        });
    }
    std::fs::read(path).map_err(err)
}

fn require_p256<T: openssl::pkey::HasPublic>(
    path: &Path,
    ec: Result<EcKey<T>, openssl::error::ErrorStack>,
) -> Result<(), KeyError> {
    let curve = ec.ok().and_then(|k| k.group().curve_name());
    if curve == Some(Nid::X9_62_PRIME256V1) {
        Ok(())
    } else {
        Err(KeyError::Invalid {
            path: path.to_path_buf(),
            message: "not an ECDSA P-256 key (generate one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`)".into(),
        })
    }
}

/// A signing key: ECDSA P-256 in PKCS#8 PEM, encrypted ones unlocked with the passphrase from
/// [`PASSPHRASE_ENV`] (never from the command line).
pub struct SigningKey {
    key: PKey<Private>,
    pub keyid: String,
}

impl SigningKey {
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let pem = read_key(path)?;
        let text = String::from_utf8_lossy(&pem);
        let invalid = |message: String| KeyError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let key = if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            let pass = std::env::var(PASSPHRASE_ENV).map_err(|_| {
                invalid(format!(
                    "the key is encrypted; put its passphrase in `{PASSPHRASE_ENV}`"
                ))
            })?;
            PKey::private_key_from_pem_passphrase(&pem, pass.as_bytes()).map_err(|_| {
                invalid(format!(
                    "the passphrase in `{PASSPHRASE_ENV}` does not open it"
                ))
            })?
        } else if text.contains("-----BEGIN PRIVATE KEY-----") {
            PKey::private_key_from_pem(&pem)
                .map_err(|e| invalid(format!("not a PKCS#8 key: {e}")))?
        } else {
            return Err(invalid(
                "expected a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`)".into(),
            ));
        };
        require_p256(path, key.ec_key())?;
        let spki = key
            .public_key_to_der()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            keyid: keyid(&spki),
            key,
        })
    }

    /// A signed envelope around `payload`.
    pub fn sign(&self, payload: &[u8]) -> Envelope {
        let sig = (|| {
            let mut s = Signer::new(MessageDigest::sha256(), &self.key)?;
            s.update(&pae(PAYLOAD_TYPE, payload))?;
            s.sign_to_vec()
        })()
        .expect("an EC key in memory signs");
        Envelope {
            payload_type: PAYLOAD_TYPE.into(),
            payload: STANDARD.encode(payload),
            signatures: vec![Signature {
                keyid: self.keyid.clone(),
                sig: STANDARD.encode(sig),
            }],
        }
    }
}

/// A verification key: an ECDSA P-256 public key in SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
pub struct VerifyingKey {
    key: PKey<Public>,
    pub keyid: String,
}

impl VerifyingKey {
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let pem = read_key(path)?;
        let invalid = |message: String| KeyError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if String::from_utf8_lossy(&pem).contains("PRIVATE KEY-----") {
            return Err(invalid(
                "this is a private key; verify with the public key (`openssl pkey -pubout`)".into(),
            ));
        }
        let key = PKey::public_key_from_pem(&pem).map_err(|_| {
            invalid("expected a PEM public key (`-----BEGIN PUBLIC KEY-----`)".into())
        })?;
        require_p256(path, key.ec_key())?;
        let spki = key
            .public_key_to_der()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            keyid: keyid(&spki),
            key,
        })
    }

    /// The payload of `env` when every signature on it verifies with this key.
    pub fn open(&self, env: &Envelope) -> Result<Vec<u8>, EnvelopeError> {
        if env.payload_type != PAYLOAD_TYPE {
            return Err(EnvelopeError::PayloadType(env.payload_type.clone()));
        }
        let payload = STANDARD
            .decode(&env.payload)
            .map_err(|e| EnvelopeError::Payload(e.to_string()))?;
        if env.signatures.is_empty() {
            return Err(EnvelopeError::Unsigned);
        }
        let message = pae(&env.payload_type, &payload);
        for (index, s) in env.signatures.iter().enumerate() {
            // An empty key id (cosign writes none) is tried against the key; any other must be ours.
            if !s.keyid.is_empty() && s.keyid != self.keyid {
                return Err(EnvelopeError::UnknownKey {
                    index,
                    keyid: s.keyid.clone(),
                    expected: self.keyid.clone(),
                });
            }
            let bad = || EnvelopeError::BadSignature {
                index,
                keyid: s.keyid.clone(),
            };
            let sig = STANDARD.decode(&s.sig).map_err(|_| bad())?;
            let ok = Verifier::new(MessageDigest::sha256(), &self.key)
                .and_then(|mut v| {
                    v.update(&message)?;
                    v.verify(&sig)
                })
                .unwrap_or(false);
            if !ok {
                return Err(bad());
            }
        }
        Ok(payload)
    }
}

/// Hex sha256 of a DER SubjectPublicKeyInfo.
pub fn keyid(spki_der: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(spki_der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_follows_the_dsse_specification() {
        // The DSSE protocol document's example.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn sign_then_open_and_every_alteration_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = PKey::from_ec_key(
            EcKey::generate(&openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap())
                .unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("k.pem"),
            key.private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("k.pub"), key.public_key_to_pem().unwrap()).unwrap();
        let signer = SigningKey::from_file(&dir.path().join("k.pem")).unwrap();
        let verifier = VerifyingKey::from_file(&dir.path().join("k.pub")).unwrap();
        assert_eq!(signer.keyid, verifier.keyid);
        let env = signer.sign(b"{\"a\":1}");
        assert_eq!(verifier.open(&env).unwrap(), b"{\"a\":1}");

        let mut altered = env.clone();
        altered.payload = STANDARD.encode(b"{\"a\":2}");
        assert!(matches!(
            verifier.open(&altered),
            Err(EnvelopeError::BadSignature { .. })
        ));
        let mut unsigned = env.clone();
        unsigned.signatures.clear();
        assert_eq!(verifier.open(&unsigned), Err(EnvelopeError::Unsigned));
        let mut other = env.clone();
        other.signatures[0].keyid = "beef".into();
        assert!(matches!(
            verifier.open(&other),
            Err(EnvelopeError::UnknownKey { .. })
        ));
        let mut extra = env.clone();
        extra.signatures.push(Signature {
            keyid: String::new(),
            sig: STANDARD.encode(b"not a signature"),
        });
        assert!(matches!(
            verifier.open(&extra),
            Err(EnvelopeError::BadSignature { index: 1, .. })
        ));
        assert!(VerifyingKey::from_file(&dir.path().join("k.pem")).is_err());
        assert!(SigningKey::from_file(&dir.path().join("k.pub")).is_err());
    }
}
