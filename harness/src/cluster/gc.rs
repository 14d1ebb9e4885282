//! `flux-compat gc`: remove kind clusters left behind by earlier runs (crash, `--keep`), found by
//! the `flux-compat-` name prefix, and image-cache containers a killed run could not remove,
//! found by their label. Clusters and containers of other tools are never touched.

use super::docker::Docker;
use super::kind::KindCli;
use super::names::is_ours;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What `gc` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GcOutcome {
    pub deleted: Vec<String>,
    /// Name and error message of every cluster that could not be deleted.
    pub failed: Vec<(String, String)>,
    /// Clusters that would be deleted (`--dry-run`).
    pub would_delete: Vec<String>,
}

/// Delete every `flux-compat-*` kind cluster, except those of `keep_run` (a run in progress).
pub async fn gc(
    kind: &KindCli,
    keep_prefix: Option<&str>,
    dry_run: bool,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<GcOutcome, super::process::ProcessError> {
    let mut out = GcOutcome::default();
    for name in kind.clusters(cancel).await? {
        if !is_ours(&name) || keep_prefix.is_some_and(|p| name.starts_with(p)) {
            continue;
        }
        if dry_run {
            out.would_delete.push(name);
            continue;
        }
        match kind.delete(&name, None, timeout, cancel).await {
            Ok(()) => out.deleted.push(name),
            Err(e) => out.failed.push((name, e.to_string())),
        }
    }
    Ok(out)
}

/// Remove image-cache containers whose name starts with `prefix` (`flux-compat-` for all
/// earlier runs); `--dry-run` only lists them.
pub async fn gc_mirrors(
    docker: &Docker,
    prefix: &str,
    dry_run: bool,
    cancel: &CancellationToken,
) -> Result<GcOutcome, super::process::ProcessError> {
    let mut out = GcOutcome::default();
    for name in docker
        .containers_with_label(super::mirror::LABEL, cancel)
        .await?
    {
        if !name.starts_with(super::names::PREFIX) || !name.starts_with(prefix) {
            continue;
        }
        if dry_run {
            out.would_delete.push(name);
            continue;
        }
        match docker.remove_container(&name, cancel).await {
            Ok(()) => out.deleted.push(name),
            Err(e) => out.failed.push((name, e.to_string())),
        }
    }
    Ok(out)
}
