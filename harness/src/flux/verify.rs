//! Verification of an installed channel: every controller Deployment becomes Available, and for
//! each controller both the Deployment's image reference and the running Pod's `imageID` digest
//! equal the channel's pin. A mismatch is a product failure naming expected and actual digests;
//! images that cannot be pulled, or a broken API, are errors. Digests become report properties.

use super::manifests::{Controller, image_repository};
use crate::k8s::{Diagnostics, DiagnosticsRequest, Kube, ObjectRef, WaitError};
use crate::model::{PhaseResult, Status};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Container waiting reasons that mean the image could not be fetched.
const PULL_FAILURES: [&str; 4] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// How to verify.
#[derive(Clone, Debug)]
pub struct VerifyOptions<'a> {
    /// For all Deployments to become Available.
    pub timeout: Duration,
    /// Where diagnostics go when verification does not pass; `None` collects none.
    pub artifacts_dir: Option<&'a Path>,
    /// Values that must never appear in diagnostics (registry tokens).
    pub scrub: Vec<String>,
}

/// The outcome, ready for a [`PhaseResult`] and the cell's properties.
#[derive(Clone, Debug)]
pub struct Verification {
    pub status: Status,
    pub message: String,
    /// `image.<component>.reference`, `image.<component>.digest` (running),
    /// `image.<component>.expected`.
    pub properties: BTreeMap<String, String>,
    pub diagnostics: Option<Diagnostics>,
}

impl Verification {
    pub fn to_phase(&self, name: &str, duration: Duration) -> PhaseResult {
        PhaseResult {
            name: name.to_string(),
            status: self.status,
            message: Some(self.message.clone()),
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            diagnostics: self.diagnostics.as_ref().map(|d| d.summary.clone()),
        }
    }
}

/// The digest of an `imageID` (`docker-pullable://repo@sha256:..`, `repo@sha256:..`, `sha256:..`).
pub fn digest_of(image_id: &str) -> Option<&str> {
    let d = image_id.rsplit_once('@').map_or(image_id, |(_, d)| d);
    d.starts_with("sha256:").then_some(d)
}

fn selector(deployment: &Value) -> Option<String> {
    let labels = deployment
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)?;
    let terms: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
        .collect();
    (!terms.is_empty()).then(|| terms.join(","))
}

/// The manager container of a controller: the one running the component's image.
fn controller_container<'v>(spec: &'v Value, c: &Controller) -> Option<&'v Value> {
    spec.pointer("/template/spec/containers")
        .or_else(|| spec.pointer("/containers"))
        .and_then(Value::as_array)?
        .iter()
        .find(|k| {
            k.get("image")
                .and_then(Value::as_str)
                .is_some_and(|i| image_repository(i).rsplit('/').next() == Some(c.component.name()))
        })
}

/// Verify the controllers (see the module docs).
pub async fn verify(
    kube: &Kube,
    controllers: &[Controller],
    options: &VerifyOptions<'_>,
) -> Verification {
    let mut properties = BTreeMap::new();
    let deployments: Vec<ObjectRef> = controllers.iter().map(|c| c.deployment.clone()).collect();
    let (status, message) = match kube.wait_all_ready(&deployments, options.timeout).await {
        Err(e) => not_available(kube, controllers, &e).await,
        Ok(()) => match check_images(kube, controllers, &mut properties).await {
            Ok(problems) if problems.is_empty() => (
                Status::Pass,
                format!(
                    "{} controllers available; Deployment images and running digests match the channel",
                    controllers.len()
                ),
            ),
            Ok(problems) => (Status::Fail, problems.join("; ")),
            Err(e) => (Status::Error, e),
        },
    };
    let diagnostics = match (status, options.artifacts_dir) {
        (Status::Pass, _) | (_, None) => None,
        (_, Some(dir)) => {
            let mut namespaces: Vec<String> = controllers
                .iter()
                .filter_map(|c| c.deployment.namespace.clone())
                .collect();
            namespaces.sort();
            namespaces.dedup();
            let request = DiagnosticsRequest {
                objects: deployments,
                namespaces,
                log_tail_lines: 50,
                scrub: options.scrub.clone(),
                event_namespaces: Vec::new(),
            };
            Some(kube.collect_diagnostics(&request, dir).await)
        }
    };
    Verification {
        status,
        message,
        properties,
        diagnostics,
    }
}

/// Why the Deployments did not become available: image pulls failing are an error (the channel's
/// images could not be fetched, so Flux was never tested); anything else follows the wait.
async fn not_available(kube: &Kube, controllers: &[Controller], e: &WaitError) -> (Status, String) {
    let mut pull_failures = Vec::new();
    for c in controllers {
        let Some(ns) = c.deployment.namespace.as_deref() else {
            continue;
        };
        let Ok(Some(d)) = kube.get(&c.deployment).await else {
            continue;
        };
        let Some(sel) = selector(&d.data) else {
            continue;
        };
        let Ok(pods) = kube.list("v1", "Pod", Some(ns), Some(&sel)).await else {
            continue;
        };
        for pod in pods {
            for s in pod
                .data
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let reason = s
                    .pointer("/state/waiting/reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if PULL_FAILURES.contains(&reason) {
                    let message = s
                        .pointer("/state/waiting/message")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    pull_failures.push(format!(
                        "`{}` cannot pull its image ({reason}: {message})",
                        c.component
                    ));
                    break;
                }
            }
        }
    }
    pull_failures.dedup();
    if !pull_failures.is_empty() {
        return (
            Status::Error,
            format!(
                "controller images could not be pulled (registry unreachable or credentials rejected): {}",
                pull_failures.join("; ")
            ),
        );
    }
    (e.status(), crate::k8s::diagnostics::error_chain(e))
}

/// Compare Deployment references and running digests; returns the mismatches, or an error text
/// when the state could not be read.
async fn check_images(
    kube: &Kube,
    controllers: &[Controller],
    properties: &mut BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for c in controllers {
        let name = c.component.name();
        let expected_ref = c.expected.reference();
        properties.insert(format!("image.{name}.expected"), c.expected.digest.clone());
        let deployment = kube
            .get(&c.deployment)
            .await
            .map_err(|e| crate::k8s::diagnostics::error_chain(&e))?
            .ok_or_else(|| format!("`{}` disappeared after becoming available", c.deployment))?;
        let spec = deployment.data.get("spec").cloned().unwrap_or(Value::Null);
        let Some(container) = controller_container(&spec, c) else {
            problems.push(format!(
                "`{name}`: the Deployment runs no `{name}` image (expected `{expected_ref}`)"
            ));
            continue;
        };
        let container_name = container
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let image = container
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        properties.insert(format!("image.{name}.reference"), image.to_string());
        if image != expected_ref {
            problems.push(format!(
                "`{name}`: Deployment image is `{image}`, expected `{expected_ref}`"
            ));
        }
        let ns = c.deployment.namespace.as_deref().unwrap_or_default();
        let sel = selector(&deployment.data)
            .ok_or_else(|| format!("`{}` has no spec.selector.matchLabels", c.deployment))?;
        let pods = kube
            .list("v1", "Pod", Some(ns), Some(&sel))
            .await
            .map_err(|e| crate::k8s::diagnostics::error_chain(&e))?;
        let running: Vec<_> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.data.pointer("/status/phase").and_then(Value::as_str) == Some("Running"))
            .collect();
        if running.is_empty() {
            return Err(format!(
                "no running pod of `{}` although it is available",
                c.deployment
            ));
        }
        let mut digests = Vec::new();
        for pod in running {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            let status = pod
                .data
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .and_then(|l| l.iter().find(|s| s["name"] == container_name.as_str()));
            let image_id = status
                .and_then(|s| s.get("imageID"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            match digest_of(image_id) {
                Some(d) if d == c.expected.digest => digests.push(d.to_string()),
                Some(d) => {
                    problems.push(format!(
                        "`{name}`: pod `{pod_name}` runs digest `{d}`, expected `{}`",
                        c.expected.digest
                    ));
                    digests.push(d.to_string());
                }
                None => problems.push(format!(
                    "`{name}`: pod `{pod_name}` reports no image digest (imageID `{image_id}`), expected `{}`",
                    c.expected.digest
                )),
            }
        }
        digests.dedup();
        if !digests.is_empty() {
            properties.insert(format!("image.{name}.digest"), digests.join(","));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_from_image_ids() {
        let d = "sha256:".to_string() + &"a".repeat(64);
        assert_eq!(
            digest_of(&format!("docker-pullable://ghcr.io/fluxcd/x@{d}")),
            Some(d.as_str())
        );
        assert_eq!(
            digest_of(&format!("ghcr.io/fluxcd/x@{d}")),
            Some(d.as_str())
        );
        assert_eq!(digest_of(&d), Some(d.as_str()));
        assert_eq!(digest_of(""), None);
        assert_eq!(digest_of("ghcr.io/fluxcd/x:v1"), None);
    }
}
