//! The diagnostics stage for failed cells: the k8s module's dump (Flux objects' conditions,
//! events, pod YAML and log tails of `flux-system`, Secrets redacted, the registry token scrubbed)
//! written under `reports/<run>/artifacts/<cell>/diagnostics/`.

use super::stages::{CellCtx, Diagnostics, PhaseError};
use crate::k8s::Kube;
use crate::k8s::diagnostics::DiagnosticsRequest;
use futures::future::BoxFuture;

/// Namespaces whose pods and events tell why Flux did not become ready.
pub const NAMESPACES: &[&str] = &["flux-system"];

pub struct KubeDiagnostics;

impl Diagnostics for KubeDiagnostics {
    fn collect<'a>(
        &'a self,
        ctx: &'a CellCtx,
    ) -> BoxFuture<'a, Result<Option<String>, PhaseError>> {
        Box::pin(async move {
            let kube = Kube::connect(&ctx.cluster.kubeconfig, &ctx.cluster.context)
                .await
                .map_err(|e| PhaseError::error(format!("connect for diagnostics: {e}")))?;
            let request = DiagnosticsRequest {
                objects: Vec::new(),
                namespaces: NAMESPACES.iter().map(|s| s.to_string()).collect(),
                log_tail_lines: 200,
                scrub: ctx
                    .registry_token
                    .iter()
                    .map(|t| t.expose().to_string())
                    .collect(),
                event_namespaces: Vec::new(),
            };
            let dir = ctx.artifacts_dir.join("diagnostics");
            let d = kube.collect_diagnostics(&request, &dir).await;
            Ok((!d.summary.trim().is_empty()).then_some(d.summary))
        })
    }
}
