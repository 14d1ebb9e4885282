//! A kube-rs client bound to one kubeconfig context, with a discovery cache that resolves
//! `apiVersion` + `kind` to the REST resource (so CRDs created during a run resolve too).

use crate::model::KubeMinor;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiCapabilities, Scope};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A connected cluster: the client plus the discovery answers seen so far.
#[derive(Clone)]
pub struct Kube {
    client: kube::Client,
    context: String,
    discovered: Arc<Mutex<HashMap<(String, String), Resolved>>>,
}

/// A kind resolved through discovery.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
    /// Whether the API serves a `status` subresource for this kind.
    pub has_status: bool,
}

/// The server's version, as reported by `/version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerVersion {
    /// `gitVersion`, e.g. `v1.36.4`.
    pub git_version: String,
    pub minor: KubeMinor,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect without an explicit kubeconfig context (refusing to use the current context)")]
    NoContext,
    #[error("read kubeconfig `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("use context `{context}` of kubeconfig `{path}`; known contexts: {known}")]
    UnknownContext {
        path: PathBuf,
        context: String,
        known: String,
    },
    #[error("configure a client for context `{context}` of kubeconfig `{path}`")]
    Config {
        path: PathBuf,
        context: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("build a client for context `{context}`")]
    Client {
        context: String,
        #[source]
        source: kube::Error,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("read the server version of context `{context}`")]
    Request {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("map server version `{version}` of context `{context}` to a Kubernetes minor")]
    Unparseable { context: String, version: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("parse apiVersion `{0}` (expected `group/version` or `v1`)")]
    BadApiVersion(String),
    #[error("discover `{api_version}` for kind `{kind}`")]
    Discovery {
        api_version: String,
        kind: String,
        #[source]
        source: kube::Error,
    },
    #[error("find kind `{kind}` in `{api_version}`; the server serves: {known}")]
    UnknownKind {
        api_version: String,
        kind: String,
        known: String,
    },
    #[error("address namespaced `{kind}` `{name}` without a namespace")]
    MissingNamespace { kind: String, name: String },
}

impl Kube {
    /// Connect through `context` of the kubeconfig at `path`. The context is mandatory: the
    /// harness never acts on whatever context happens to be current.
    pub async fn connect(path: &Path, context: &str) -> Result<Self, ConnectError> {
        if context.trim().is_empty() {
            return Err(ConnectError::NoContext);
        }
        let kubeconfig = Kubeconfig::read_from(path).map_err(|source| ConnectError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if !kubeconfig.contexts.iter().any(|c| c.name == context) {
            let known = kubeconfig
                .contexts
                .iter()
                .map(|c| format!("`{}`", c.name))
                .collect::<Vec<_>>();
            return Err(ConnectError::UnknownContext {
                path: path.to_path_buf(),
                context: context.to_string(),
                known: if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                },
            });
        }
        let options = KubeConfigOptions {
            context: Some(context.to_string()),
            cluster: None,
            user: None,
        };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| ConnectError::Config {
                path: path.to_path_buf(),
                context: context.to_string(),
                source,
            })?;
        // kube's built-in retry of 429/503/504 backs off up to 15 times (minutes in total), which
        // would hide an outage inside every wait's timeout. Waits retry a broken watch a few
        // times themselves (see `wait`); everything else reports the failure at once.
        config.default_retry = false;
        ensure_crypto_provider();
        let client = kube::Client::try_from(config).map_err(|source| ConnectError::Client {
            context: context.to_string(),
            source,
        })?;
        Ok(Self::from_client(client, context))
    }

    /// Wrap an existing client (the context name is used in messages only).
    pub fn from_client(client: kube::Client, context: &str) -> Self {
        Self {
            client,
            context: context.to_string(),
            discovered: Arc::default(),
        }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    pub fn context(&self) -> &str {
        &self.context
    }

    /// `/version`, mapped to the matrix minor.
    pub async fn server_version(&self) -> Result<ServerVersion, VersionError> {
        let info =
            self.client
                .apiserver_version()
                .await
                .map_err(|source| VersionError::Request {
                    context: self.context.clone(),
                    source,
                })?;
        let minor =
            KubeMinor::of_version(&info.git_version).ok_or_else(|| VersionError::Unparseable {
                context: self.context.clone(),
                version: info.git_version.clone(),
            })?;
        Ok(ServerVersion {
            git_version: info.git_version,
            minor,
        })
    }

    /// Resolve `apiVersion` + `kind` through discovery. Answers are cached; a miss asks the
    /// server again, so kinds of CRDs established after the first lookup resolve.
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<Resolved, ResolveError> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(hit) = self.discovered.lock().expect("discovery cache").get(&key) {
            return Ok(hit.clone());
        }
        let (group, version) = split_api_version(api_version)?;
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let group_doc = kube::discovery::pinned_group(
            &self.client,
            &kube::core::GroupVersion::gv(group, version),
        )
        .await
        .map_err(|source| match &source {
            kube::Error::Api(s) if s.code == 404 => ResolveError::UnknownKind {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                known: format!("nothing (`{api_version}` is not served)"),
            },
            _ => ResolveError::Discovery {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                source,
            },
        })?;
        let resources = group_doc.versioned_resources(version);
        let Some((resource, caps)) = resources.iter().find(|(ar, _)| ar.kind == gvk.kind) else {
            let known = resources
                .iter()
                .map(|(ar, _)| format!("`{}`", ar.kind))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ResolveError::UnknownKind {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                known,
            });
        };
        let resolved = Resolved {
            resource: resource.clone(),
            namespaced: caps.scope == Scope::Namespaced,
            has_status: has_status(caps),
        };
        self.discovered
            .lock()
            .expect("discovery cache")
            .insert(key, resolved.clone());
        Ok(resolved)
    }

    /// Forget cached discovery (after CRDs were replaced or deleted).
    pub fn forget_discovery(&self) {
        self.discovered.lock().expect("discovery cache").clear();
    }

    /// A dynamic API handle for one kind in one namespace (ignored for cluster-scoped kinds).
    pub async fn api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name_for_errors: &str,
    ) -> Result<(Api<DynamicObject>, Resolved), ResolveError> {
        let resolved = self.resolve(api_version, kind).await?;
        let api = if resolved.namespaced {
            match namespace {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resolved.resource),
                None => {
                    return Err(ResolveError::MissingNamespace {
                        kind: kind.to_string(),
                        name: name_for_errors.to_string(),
                    });
                }
            }
        } else {
            Api::all_with(self.client.clone(), &resolved.resource)
        };
        Ok((api, resolved))
    }

    /// A dynamic API handle across all namespaces (for lists and watches).
    pub async fn api_all(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(Api<DynamicObject>, Resolved), ResolveError> {
        let resolved = self.resolve(api_version, kind).await?;
        Ok((
            Api::all_with(self.client.clone(), &resolved.resource),
            resolved,
        ))
    }
}

/// kube's rustls stack needs a process-wide crypto provider, and with both `ring` and `aws-lc-rs`
/// compiled in rustls cannot pick one itself. Installing fails harmlessly when one is set already.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

fn has_status(caps: &ApiCapabilities) -> bool {
    caps.subresources
        .iter()
        .any(|(ar, _)| ar.plural == "status")
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> Result<(&str, &str), ResolveError> {
    let bad = || ResolveError::BadApiVersion(api_version.to_string());
    match api_version.split_once('/') {
        Some((g, v)) if !g.is_empty() && !v.is_empty() && !v.contains('/') => Ok((g, v)),
        Some(_) => Err(bad()),
        None if !api_version.is_empty() => Ok(("", api_version)),
        None => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_split() {
        assert_eq!(split_api_version("apps/v1").unwrap(), ("apps", "v1"));
        assert_eq!(split_api_version("v1").unwrap(), ("", "v1"));
        assert!(split_api_version("").is_err());
        assert!(split_api_version("a/b/c").is_err());
        assert!(split_api_version("/v1").is_err());
    }
}
