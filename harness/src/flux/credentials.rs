//! Registry credentials for private channels: a token read from an environment variable or a file
//! (never from argv), held in a type that never prints it, and the `kubernetes.io/dockerconfigjson`
//! pull Secret built from it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::api::DynamicObject;
use serde_json::json;
use std::fmt;
use std::path::PathBuf;

/// Where the registry token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// The name of an environment variable holding the token.
    Env(String),
    /// A file holding the token (surrounding whitespace is trimmed).
    File(PathBuf),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Env(var) => write!(f, "environment variable `{var}`"),
            TokenSource::File(path) => write!(f, "file `{}`", path.display()),
        }
    }
}

/// A secret value. `Debug` and the absent `Display` never reveal it; [`Token::expose`] is the
/// one way out, used only where the Secret object is built.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token; its value is registered with the redaction layer at once.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        crate::redact::register(&value);
        Self(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("read the registry token from {source_name}: it is not set")]
    Unset { source_name: TokenSource },
    #[error("read the registry token from {source_name}: it is empty")]
    Empty { source_name: TokenSource },
    #[error("read the registry token from {source_name}")]
    Io {
        source_name: TokenSource,
        #[source]
        source: std::io::Error,
    },
}

impl TokenSource {
    /// Read the token. Errors name the source, never any content.
    pub fn read(&self) -> Result<Token, CredentialError> {
        let raw = match self {
            TokenSource::Env(var) => match std::env::var(var) {
                Ok(v) => v,
                Err(_) => {
                    return Err(CredentialError::Unset {
                        source_name: self.clone(),
                    });
                }
            },
            TokenSource::File(path) => {
                std::fs::read_to_string(path).map_err(|source| CredentialError::Io {
                    source_name: self.clone(),
                    source,
                })?
            }
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(CredentialError::Empty {
                source_name: self.clone(),
            });
        }
        Ok(Token::new(trimmed))
    }
}

/// Credentials for one registry host.
#[derive(Clone, Debug)]
pub struct RegistryCredentials {
    pub username: String,
    pub token: Token,
}

/// The registry host of a repository or registry path (`ghcr.io/org/x` → `ghcr.io`).
pub fn registry_host(registry: &str) -> &str {
    registry.split('/').next().unwrap_or(registry)
}

/// The dockerconfigjson text for `host`, exactly as it goes into the pull Secret. Registered with
/// the redaction layer (with `user:token`) before it is returned, so no sink can print any of
/// its encodings.
pub fn docker_config_json(host: &str, credentials: &RegistryCredentials) -> String {
    let token = credentials.token.expose();
    let auth = STANDARD.encode(format!("{}:{token}", credentials.username));
    let config = json!({"auths": {host: {
        "username": credentials.username,
        "password": token,
        "auth": auth,
    }}})
    .to_string();
    crate::redact::register_credentials(&credentials.username, token);
    crate::redact::register_document(&config);
    config
}

/// The `kubernetes.io/dockerconfigjson` Secret `name` in `namespace` for `host`.
pub fn pull_secret(
    name: &str,
    namespace: &str,
    host: &str,
    credentials: &RegistryCredentials,
) -> DynamicObject {
    let config = docker_config_json(host, credentials);
    let value = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "flux-compat"}},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": STANDARD.encode(config)},
    });
    serde_json::from_value(value).expect("a Secret is a valid object")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_print() {
        let t = Token::new("canary-123");
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
        let c = RegistryCredentials {
            username: "flux".into(),
            token: t,
        };
        assert!(!format!("{c:?}").contains("canary-123"));
    }

    #[test]
    fn reads_files_and_reports_sources_without_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  s3cret\n").unwrap();
        assert_eq!(
            TokenSource::File(path.clone()).read().unwrap().expose(),
            "s3cret"
        );
        std::fs::write(&path, "\n").unwrap();
        let err = TokenSource::File(path).read().unwrap_err();
        assert!(err.to_string().ends_with("it is empty"));
        let err = TokenSource::Env("FLUX_COMPAT_TEST_SURELY_UNSET_VAR".into())
            .read()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "read the registry token from environment variable `FLUX_COMPAT_TEST_SURELY_UNSET_VAR`: it is not set"
        );
    }

    #[test]
    fn pull_secret_is_a_dockerconfigjson() {
        let s = pull_secret(
            "auth",
            "flux-system",
            "ghcr.io",
            &RegistryCredentials {
                username: "flux".into(),
                token: Token::new("tok-for-the-pull-secret-test"),
            },
        );
        let encoded = s.data["data"][".dockerconfigjson"].as_str().unwrap();
        let decoded: serde_json::Value =
            serde_json::from_slice(&STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(
            decoded["auths"]["ghcr.io"]["password"],
            "tok-for-the-pull-secret-test"
        );
        assert_eq!(s.data["type"], "kubernetes.io/dockerconfigjson");
        assert_eq!(
            registry_host("ghcr.io/controlplaneio-fluxcd/alpine"),
            "ghcr.io"
        );
    }
}
