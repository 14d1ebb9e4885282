//! The existing-cluster provider (customer LTS clusters: EKS, AKS, GKE, OpenShift): a kubeconfig
//! and an explicit context. It checks the server version maps to the cell's minor and never
//! creates or deletes the cluster; teardown removes only what carries this run's id label:
//! namespaces (with everything in them, the pull Secret included), then the cluster-scoped
//! objects of the Flux install (CRDs, cluster roles and bindings).

use super::{Cluster, ClusterError, ClusterSpec, Provider};
use crate::errors::chain;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Every object the harness creates in an existing cluster carries this label with the run id.
pub const RUN_LABEL: &str = "flux-compat.io/run";

#[derive(Clone, Debug)]
pub struct ExistingProvider {
    pub kubeconfig: PathBuf,
    pub context: String,
}

impl ExistingProvider {
    /// Refuses an empty context: running against "whatever is current" could hit production.
    pub fn new(kubeconfig: Option<&Path>, context: &str) -> Result<Self, String> {
        if context.trim().is_empty() {
            return Err("an existing-cluster provider needs an explicit `context`; refusing to use the current context".into());
        }
        let kubeconfig = match kubeconfig {
            Some(p) => expand_home(p),
            None => std::env::var_os("KUBECONFIG")
                .map(PathBuf::from)
                .unwrap_or_else(|| expand_home(Path::new("~/.kube/config"))),
        };
        Ok(Self {
            kubeconfig,
            context: context.to_string(),
        })
    }

    fn err(&self, message: impl std::fmt::Display) -> ClusterError {
        ClusterError::Existing {
            context: self.context.clone(),
            message: message.to_string(),
        }
    }

    async fn client(&self) -> Result<kube::Client, ClusterError> {
        // One client path for the whole harness: the k8s module's (context mandatory, TLS set up).
        crate::k8s::Kube::connect(&self.kubeconfig, &self.context)
            .await
            .map(|k| k.client().clone())
            .map_err(|e| self.err(chain(&e)))
    }

    async fn check(&self, spec: &ClusterSpec) -> Result<Cluster, ClusterError> {
        let kube = crate::k8s::Kube::connect(&self.kubeconfig, &self.context)
            .await
            .map_err(|e| self.err(chain(&e)))?;
        let info = kube
            .server_version()
            .await
            .map_err(|e| self.err(chain(&e)))?;
        if info.minor.to_string() != spec.kubernetes_minor {
            return Err(ClusterError::VersionMismatch {
                context: self.context.clone(),
                actual: info.git_version.clone(),
                expected: spec.kubernetes_minor.clone(),
            });
        }
        let mut properties = BTreeMap::new();
        properties.insert("existing.context".into(), self.context.clone());
        properties.insert("kubernetes.serverVersion".into(), info.git_version.clone());
        Ok(Cluster {
            name: self.context.clone(),
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            kubernetes_version: Some(info.git_version),
            properties,
        })
    }

    async fn cleanup(&self, spec: &ClusterSpec) -> Result<(), ClusterError> {
        use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let client = self.client().await?;
        let sel = format!("{RUN_LABEL}={}", spec.run_id);
        // Namespaces first (the controllers go with them), CRDs last (their objects are gone).
        self.delete_labelled(Api::<Namespace>::all(client.clone()), "namespace", &sel)
            .await?;
        self.delete_labelled(
            Api::<ClusterRoleBinding>::all(client.clone()),
            "cluster role binding",
            &sel,
        )
        .await?;
        self.delete_labelled(
            Api::<ClusterRole>::all(client.clone()),
            "cluster role",
            &sel,
        )
        .await?;
        self.delete_labelled(
            Api::<CustomResourceDefinition>::all(client),
            "custom resource definition",
            &sel,
        )
        .await
    }

    async fn delete_labelled<K>(
        &self,
        api: Api<K>,
        what: &str,
        sel: &str,
    ) -> Result<(), ClusterError>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let list = api
            .list(&ListParams::default().labels(sel))
            .await
            .map_err(|e| self.err(format!("list {what}s labelled `{sel}`: {e}")))?;
        for o in list {
            if let Some(name) = o.meta().name.clone() {
                match api.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(self.err(format!("delete {what} `{name}`: {e}"))),
                }
            }
        }
        Ok(())
    }
}

/// `major: "1", minor: "32+"` (EKS/GKE append `+`) → `1.32`.
pub fn server_minor(major: &str, minor: &str) -> String {
    let digits = |s: &str| {
        s.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
    };
    format!("{}.{}", digits(major), digits(minor))
}

fn expand_home(p: &Path) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    }
}

impl Provider for ExistingProvider {
    fn kind(&self) -> &'static str {
        "existing"
    }

    fn up<'a>(
        &'a self,
        spec: &'a ClusterSpec,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Cluster, ClusterError>> {
        Box::pin(async move {
            tokio::select! {
                r = self.check(spec) => r,
                _ = cancel.cancelled() => Err(ClusterError::Cancelled),
            }
        })
    }

    fn down<'a>(&'a self, spec: &'a ClusterSpec) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            tokio::time::timeout(spec.delete_timeout, self.cleanup(spec))
                .await
                .map_err(|_| self.err("cleanup timed out"))?
        })
    }

    fn describe(&self, spec: &ClusterSpec) -> Vec<String> {
        vec![
            format!(
                "use existing cluster: context `{}` in `{}` (read-only check: server version must be {})",
                self.context,
                self.kubeconfig.display(),
                spec.kubernetes_minor
            ),
            format!(
                "label everything it creates `{RUN_LABEL}={}`; at the end delete only what carries that label (namespaces, Flux CRDs, cluster roles)",
                spec.run_id
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_vendor_minors() {
        assert_eq!(server_minor("1", "32+"), "1.32");
        assert_eq!(server_minor("1", "36"), "1.36");
    }

    #[test]
    fn refuses_without_context() {
        assert!(ExistingProvider::new(None, " ").is_err());
        assert!(ExistingProvider::new(Some(Path::new("/x")), "eks").is_ok());
    }
}
