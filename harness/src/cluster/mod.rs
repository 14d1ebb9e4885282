//! Cluster providers: `kind` (drives the kind CLI) and `existing` (a kubeconfig context), the
//! pull-through image cache, preflight checks and `gc`. Emits nothing and prints nothing: callers
//! get typed results and errors carrying the tools' own stderr.

pub mod docker;
pub mod existing;
pub mod gc;
pub mod kind;
pub mod mirror;
pub mod names;
pub mod preflight;
pub mod process;

use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub use names::cluster_name;

/// What a provider needs to bring one cell's cluster up.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub run_id: String,
    pub cell_id: String,
    /// `flux-compat-<run>-<cell>`, sanitised for kind.
    pub name: String,
    /// The Kubernetes minor the cell expects (`1.36`).
    pub kubernetes_minor: String,
    /// Pinned node image for kind cells.
    pub node_image: Option<String>,
    /// Private scratch space of this cell (kubeconfig, generated config).
    pub work_dir: PathBuf,
    /// `reports/<run>/artifacts/<cell>/`: logs exported on failure go here.
    pub artifacts_dir: PathBuf,
    pub create_timeout: Duration,
    pub delete_timeout: Duration,
}

/// A cluster that is up.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub name: String,
    /// A kubeconfig file for this cluster only (mode 0600).
    pub kubeconfig: PathBuf,
    pub context: String,
    /// The server's exact version (`v1.36.4`), when read.
    pub kubernetes_version: Option<String>,
    /// Exact bits for the report (kind version, node image, server version).
    pub properties: BTreeMap<String, String>,
}

/// A provider operation that did not succeed. All of these are harness/infrastructure errors,
/// never product failures.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("create cluster `{name}`")]
    Create {
        name: String,
        #[source]
        source: process::ProcessError,
    },
    #[error("delete cluster `{name}`")]
    Delete {
        name: String,
        #[source]
        source: process::ProcessError,
    },
    #[error("prepare cluster `{name}`: {message}")]
    Prepare { name: String, message: String },
    #[error("reach the existing cluster (context `{context}`): {message}")]
    Existing { context: String, message: String },
    #[error(
        "the existing cluster (context `{context}`) runs Kubernetes {actual}, but the matrix expects {expected}"
    )]
    VersionMismatch {
        context: String,
        actual: String,
        expected: String,
    },
    #[error("cancelled")]
    Cancelled,
}

impl ClusterError {
    pub fn is_cancelled(&self) -> bool {
        match self {
            ClusterError::Cancelled => true,
            ClusterError::Create { source, .. } | ClusterError::Delete { source, .. } => {
                source.is_cancelled()
            }
            _ => false,
        }
    }

    /// The full message with its sources, for reports.
    pub fn chain(&self) -> String {
        crate::errors::chain(self)
    }
}

/// Brings clusters up and down. `down` must work from the spec alone, so a cluster whose
/// creation was interrupted half-way can still be removed.
pub trait Provider: Send + Sync {
    /// Provider type for reports (`kind`, `existing`).
    fn kind(&self) -> &'static str;
    fn up<'a>(
        &'a self,
        spec: &'a ClusterSpec,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Cluster, ClusterError>>;
    fn down<'a>(&'a self, spec: &'a ClusterSpec) -> BoxFuture<'a, Result<(), ClusterError>>;
    /// What `up` would create, for `--dry-run`; changes nothing.
    fn describe(&self, spec: &ClusterSpec) -> Vec<String>;
}
