//! Probe pods: a one-shot container run inside the cluster, so traffic the harness sends starts
//! where real in-cluster traffic starts (past NetworkPolicies such as Flux's `allow-webhooks`,
//! which admit pods, not the API server's service proxy). The image must already be on the
//! nodes (nothing is pulled): an explicit one, or one found in the nodes' `status.images` that
//! carries busybox's `wget` (kind preloads `kindest/local-path-helper` on every node).
//! Used for Receiver webhooks and reusable for reachability probes.

use super::client::Kube;
use super::objects::ObjectRef;
use super::status::Verdict;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use std::time::Duration;

/// The label every probe pod carries (value: what it probes).
pub const PROBE_LABEL: &str = "flux-compat.io/probe";
/// Environment variable naming an image with busybox `wget` already present on the nodes, for
/// clusters whose nodes hold none the harness knows.
pub const PROBE_IMAGE_ENV: &str = "FLUX_COMPAT_PROBE_IMAGE";
/// Images known to carry busybox `wget`, by repository suffix, as node image lists name them.
const KNOWN_IMAGES: [&str; 2] = ["kindest/local-path-helper", "library/busybox"];

/// What a probe pod runs.
#[derive(Clone, Debug)]
pub struct ProbeSpec {
    pub namespace: String,
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    /// What it probes (the label value), e.g. `receiver`.
    pub purpose: String,
    pub timeout: Duration,
}

/// How the container ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub exit_code: i64,
    /// The termination message (the log tail when the container wrote none).
    pub output: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "find an image with an HTTP client on the nodes: none of {known} is present; set {PROBE_IMAGE_ENV} to an image with busybox `wget` the nodes hold"
    )]
    NoImage { known: String },
    #[error("list the nodes for a probe image")]
    Nodes(#[source] kube::Error),
    #[error("create probe pod `{pod}`")]
    Create {
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("run probe pod `{pod}`: {reason}")]
    Run { pod: String, reason: String },
}

impl ProbeError {
    pub fn is_unreachable(&self) -> bool {
        match self {
            ProbeError::Nodes(e) | ProbeError::Create { source: e, .. } => {
                super::objects::is_unreachable(e)
            }
            _ => false,
        }
    }
}

/// A busybox `wget` POST of an empty JSON body; prints the response, fails on a non-2xx answer
/// ("server returned error: HTTP/1.1 404 Not Found").
pub fn http_post_command(url: &str) -> Vec<String> {
    [
        "wget",
        "-q",
        "-O",
        "-",
        "-T",
        "10",
        "--header",
        "Content-Type: application/json",
        "--post-data",
        "{}",
        url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The HTTP status a `wget` probe saw: 200 when it succeeded, the code in its error otherwise.
pub fn http_status(outcome: &ProbeOutcome) -> Option<u16> {
    if outcome.exit_code == 0 {
        return Some(200);
    }
    let re = regex::Regex::new(r"HTTP/\d(?:\.\d)? (\d{3})").expect("regex");
    re.captures(&outcome.output).and_then(|c| c[1].parse().ok())
}

impl Kube {
    /// The probe image: `FLUX_COMPAT_PROBE_IMAGE`, else the first known image the nodes hold.
    pub async fn probe_image(&self) -> Result<String, ProbeError> {
        if let Ok(image) = std::env::var(PROBE_IMAGE_ENV)
            && !image.trim().is_empty()
        {
            return Ok(image);
        }
        let nodes: Api<Node> = Api::all(self.client().clone());
        let list = nodes
            .list(&ListParams::default())
            .await
            .map_err(ProbeError::Nodes)?;
        for node in list {
            for image in node.status.and_then(|s| s.images).unwrap_or_default() {
                for name in image.names.unwrap_or_default() {
                    let repo = name.split('@').next().unwrap_or(&name);
                    let repo = repo
                        .rsplit_once(':')
                        .map_or(repo, |(r, t)| if t.contains('/') { repo } else { r });
                    if KNOWN_IMAGES.iter().any(|k| repo.ends_with(k)) && !name.contains('@') {
                        return Ok(name);
                    }
                }
            }
        }
        Err(ProbeError::NoImage {
            known: KNOWN_IMAGES.map(|k| format!("`{k}`")).join(", "),
        })
    }

    /// POST an empty JSON body to `url` from a probe pod in `namespace`, the way a webhook
    /// sender inside the cluster does (subject to NetworkPolicies). The HTTP status code, `None`
    /// when no HTTP answer came (refused, timed out); `Err` when no probe could be run at all.
    pub async fn http_post_from_pod(
        &self,
        namespace: &str,
        url: &str,
    ) -> Result<Option<u16>, ProbeError> {
        let spec = ProbeSpec {
            namespace: namespace.to_string(),
            name: format!("flux-compat-probe-{:08x}", unique_suffix()),
            image: self.probe_image().await?,
            command: http_post_command(url),
            purpose: "webhook".into(),
            timeout: Duration::from_secs(60),
        };
        let outcome = self.run_probe_pod(&spec).await?;
        Ok(http_status(&outcome))
    }

    /// Run a probe pod to completion and remove it; its exit code and output.
    pub async fn run_probe_pod(&self, spec: &ProbeSpec) -> Result<ProbeOutcome, ProbeError> {
        let pods: Api<Pod> = Api::namespaced(self.client().clone(), &spec.namespace);
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": spec.name, "namespace": spec.namespace,
                "labels": {PROBE_LABEL: spec.purpose}},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": false,
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "probe", "image": spec.image, "imagePullPolicy": "IfNotPresent",
                    "command": spec.command, "terminationMessagePolicy": "FallbackToLogsOnError"}]
            }
        }))
        .expect("a valid Pod");
        let target = ObjectRef::new("v1", "Pod", Some(&spec.namespace), &spec.name);
        pods.create(&PostParams::default(), &pod)
            .await
            .map_err(|source| ProbeError::Create {
                pod: target.to_string(),
                source,
            })?;
        let result = self
            .wait_for(&target, "complete", spec.timeout, judge_probe)
            .await
            .map_err(|e| ProbeError::Run {
                pod: target.to_string(),
                reason: crate::errors::chain(&e),
            });
        let _ = pods
            .delete(&spec.name, &DeleteParams::background().grace_period(0))
            .await;
        result
    }
}

/// A short suffix for probe pod names (time-derived; names only need to differ per run).
fn unique_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or_default();
    nanos ^ std::process::id()
}

/// A probe pod is done when its container terminated; an image the node cannot start fails.
fn judge_probe(obj: Option<&Value>) -> Verdict<ProbeOutcome> {
    let Some(pod) = obj else {
        return Verdict::Pending("not created yet".into());
    };
    let state = pod.pointer("/status/containerStatuses/0/state");
    if let Some(t) = state.and_then(|s| s.get("terminated")) {
        return Verdict::Done(ProbeOutcome {
            exit_code: t.get("exitCode").and_then(Value::as_i64).unwrap_or(-1),
            output: t
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_string(),
        });
    }
    if let Some(w) = state.and_then(|s| s.get("waiting")) {
        let reason = w.get("reason").and_then(Value::as_str).unwrap_or_default();
        if matches!(
            reason,
            "ErrImageNeverPull" | "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName"
        ) {
            return Verdict::failed(
                reason,
                w.get("message").and_then(Value::as_str).unwrap_or_default(),
            );
        }
        return Verdict::Pending(format!("waiting: {reason}"));
    }
    Verdict::Pending(format!(
        "phase {}",
        pod.pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("Pending")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wget_outcomes_map_to_http_statuses() {
        let ok = ProbeOutcome {
            exit_code: 0,
            output: String::new(),
        };
        assert_eq!(http_status(&ok), Some(200));
        let nf = ProbeOutcome {
            exit_code: 1,
            output: "wget: server returned error: HTTP/1.1 404 Not Found".into(),
        };
        assert_eq!(http_status(&nf), Some(404));
        let refused = ProbeOutcome {
            exit_code: 1,
            output: "wget: can't connect to remote host: Connection refused".into(),
        };
        assert_eq!(http_status(&refused), None);
        assert_eq!(
            http_post_command("http://x/hook/a").last().unwrap(),
            "http://x/hook/a"
        );
    }
}
