//! The Flux Operator route: a `FluxInstance` (`fluxcd.controlplane.io/v1`) naming the distribution
//! version, registry, variant and pull secret. The operator itself must already run in the
//! cluster; the harness does not install it.

use crate::model::matrix::Channel;
use crate::model::{Component, FluxVersion};
use kube::api::DynamicObject;
use serde_json::json;

pub const FLUX_INSTANCE_API_VERSION: &str = "fluxcd.controlplane.io/v1";
pub const FLUX_INSTANCE_KIND: &str = "FluxInstance";
/// The operator reconciles one instance, conventionally named `flux`.
pub const FLUX_INSTANCE_NAME: &str = "flux";

/// The FluxInstance for `channel` at `version` with `components`, in `namespace`.
pub fn flux_instance(
    channel: &Channel,
    version: &FluxVersion,
    components: &[Component],
    namespace: &str,
) -> DynamicObject {
    let mut distribution = json!({
        // Exact version: the operator pins the digests of exactly this release.
        "version": version.0.to_string(),
        "registry": channel.registry,
    });
    if !channel.operator_variant.is_empty() {
        distribution["variant"] = json!(channel.operator_variant);
    }
    if let Some(secret) = &channel.pull_secret {
        distribution["imagePullSecret"] = json!(secret);
    }
    let components: Vec<&str> = components.iter().map(|c| c.name()).collect();
    let value = json!({
        "apiVersion": FLUX_INSTANCE_API_VERSION,
        "kind": FLUX_INSTANCE_KIND,
        "metadata": {"name": FLUX_INSTANCE_NAME, "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "flux-compat"}},
        "spec": {
            "distribution": distribution,
            "components": components,
            "cluster": {"type": "kubernetes", "networkPolicy": true, "domain": "cluster.local"},
        },
    });
    serde_json::from_value(value).expect("a FluxInstance is a valid object")
}
