//! TEST DOUBLE scripted controller: stands in for kube-controller-manager, the kubelet and the
//! Flux controllers. It watches the double's store and moves objects through conditions as the
//! test's [`Script`] says: CRDs become Established, Deployments Available (with a ReplicaSet and a
//! running Pod whose `imageID` carries a digest) or stuck in image pull back-off, Flux objects
//! Ready, Stalled or never ready. Each reaction waits the scripted delay first. With
//! [`SourceTls`] set, the source-controller part fetches the URL of a GitRepository,
//! HelmRepository or OCIRepository aimed at a listed endpoint with a real Go TLS client and sets
//! the object's conditions from the real outcome.

use super::store::{Change, ResourceType, Store, now};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum DeploymentBehaviour {
    /// ReplicaSet + running Pods, Available=True.
    Available,
    /// Pods waiting in `ImagePullBackOff`, Available=False, Warning events.
    ImagePullBackOff,
    /// Never touched (no status at all).
    Ignore,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FluxBehaviour {
    /// Ready=True at the current generation.
    Ready,
    /// Ready=False and Stalled=True with this reason and message.
    Stalled { reason: String, message: String },
    /// Ready=False with this reason and message, Reconciling=True: never ready.
    NotReady { reason: String, message: String },
    /// Never touched.
    Ignore,
}

#[derive(Clone, Debug)]
pub struct Script {
    /// How long each reaction takes.
    pub delay: Duration,
    pub crds_established: bool,
    pub deployments: DeploymentBehaviour,
    /// Per Deployment name.
    pub deployment_overrides: HashMap<String, DeploymentBehaviour>,
    /// Per Deployment name: the digest the node "pulled" instead of the one the image names.
    pub running_digest: HashMap<String, String>,
    pub flux: FluxBehaviour,
    /// Per object name.
    pub flux_overrides: HashMap<String, FluxBehaviour>,
    /// Lines every controller Pod logs.
    pub pod_log: String,
    /// The source-controller's TLS client for sources aimed at these endpoints.
    pub source_tls: Option<SourceTls>,
}

/// A real TLS client standing in for source-controller's: the `tlspeer` Go program
/// (`fixtures/go/tlspeer`), built as whatever variant the test wants the channel to have.
#[derive(Clone, Debug)]
pub struct SourceTls {
    /// Run as `client HOST:PORT CA.pem SERVERNAME`; prints one JSON line `{"ok":..,"err":..}`.
    pub client: PathBuf,
    /// `host:port`s it fetches; sources aimed elsewhere get the scripted `flux` behaviour.
    pub endpoints: Vec<String>,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            delay: Duration::from_millis(20),
            crds_established: true,
            deployments: DeploymentBehaviour::Available,
            deployment_overrides: HashMap::new(),
            running_digest: HashMap::new(),
            flux: FluxBehaviour::Ready,
            flux_overrides: HashMap::new(),
            pod_log: "{\"level\":\"info\",\"msg\":\"starting manager\"}\n{\"level\":\"info\",\"msg\":\"all workers started\"}\n".into(),
            source_tls: None,
        }
    }
}

fn is_flux_group(group: &str) -> bool {
    group.ends_with(".fluxcd.io") || group == "fluxcd.controlplane.io"
}

fn generation(o: &Value) -> i64 {
    o.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn meta_str<'a>(o: &'a Value, field: &str) -> &'a str {
    o.pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// (uid, generation) a reaction was scheduled for.
type Handled = (String, i64);

pub fn spawn(store: Arc<Store>, script: Arc<Mutex<Script>>) -> tokio::task::JoinHandle<()> {
    let mut rx = store.subscribe_all();
    tokio::spawn(async move {
        // (uid, generation) already handled: each generation of each object gets one reaction.
        let handled: Arc<Mutex<HashSet<Handled>>> = Arc::default();
        loop {
            let change = match rx.recv().await {
                Ok(c) => c,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            if change.kind == "DELETED" {
                continue;
            }
            let o = &change.object;
            let key = (meta_str(o, "uid").to_string(), generation(o));
            let relevant = matches!(
                (change.group.as_str(), change.plural.as_str()),
                ("apps", "deployments") | ("apiextensions.k8s.io", "customresourcedefinitions")
            ) || is_flux_group(&change.group);
            if !relevant || !handled.lock().unwrap().insert(key) {
                continue;
            }
            let (store, script) = (store.clone(), script.lock().unwrap().clone());
            tokio::spawn(async move {
                tokio::time::sleep(script.delay).await;
                if !fetch_source(&store, &script, &change).await {
                    react(&store, &script, &change);
                }
            });
        }
    })
}

fn react(store: &Store, script: &Script, change: &Change) {
    let o = &change.object;
    let (ns, name) = (meta_str(o, "namespace"), meta_str(o, "name"));
    let Some(api_version) = o.get("apiVersion").and_then(Value::as_str) else {
        return;
    };
    let Some(kind) = o.get("kind").and_then(Value::as_str) else {
        return;
    };
    let Some(rt) = store.find_kind(api_version, kind) else {
        return;
    };
    // Only act on the generation this change announced; a newer one gets its own reaction.
    if store
        .get(&rt, ns, name)
        .is_none_or(|cur| generation(&cur) != generation(o))
    {
        return;
    }
    match (change.group.as_str(), change.plural.as_str()) {
        ("apiextensions.k8s.io", "customresourcedefinitions") if script.crds_established => {
            let names = o.pointer("/spec/names").cloned().unwrap_or(Value::Null);
            set_status(
                store,
                &rt,
                ns,
                name,
                json!({
                    "acceptedNames": names,
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now()},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now()}
                    ]
                }),
            );
        }
        ("apps", "deployments") => {
            let behaviour = script
                .deployment_overrides
                .get(name)
                .unwrap_or(&script.deployments);
            deployment(store, script, &rt, o, behaviour);
        }
        (group, _) if is_flux_group(group) => {
            // Installed Flux controllers reconcile their objects themselves (`flux` module);
            // the scripted behaviour stands in only for a controller that is not running.
            if super::flux::controller_of(group, kind).is_some_and(|c| controller_running(store, c))
            {
                return;
            }
            let behaviour = script.flux_overrides.get(name).unwrap_or(&script.flux);
            flux(store, &rt, o, behaviour);
        }
        _ => {}
    }
}

fn controller_running(store: &Store, controller: &str) -> bool {
    store
        .find_kind("apps/v1", "Deployment")
        .and_then(|t| store.get(&t, "flux-system", controller))
        .is_some_and(|d| {
            d.pointer("/status/availableReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0
        })
}

fn set_status(store: &Store, rt: &ResourceType, ns: &str, name: &str, status: Value) {
    let _ = store.set_status(rt, ns, name, status);
}

fn short_hash(v: &Value, len: usize) -> String {
    hex::encode(Sha256::digest(v.to_string().as_bytes()))[..len].to_string()
}

/// `repo:tag@sha256:d` → (`repo`, Some(`sha256:d`)); `repo:tag` → (`repo`, None).
fn split_image(image: &str) -> (String, Option<String>) {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (image, None),
    };
    let repo = match name.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => name,
    };
    (repo.to_string(), digest)
}

/// Record a core/v1 Event about an object, as controllers and the kubelet do.
pub fn record_event(
    store: &Store,
    involved: &Value,
    type_: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let events = store.find_kind("v1", "Event").expect("events are built in");
    let ns = match meta_str(involved, "namespace") {
        "" => "default",
        ns => ns,
    };
    let name = format!(
        "{}.{}",
        meta_str(involved, "name"),
        short_hash(
            &json!([reason, message, now(), store.resource_version()]),
            16
        )
    );
    let _ = store.create(&events, ns, json!({
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"apiVersion": involved["apiVersion"], "kind": involved["kind"], "name": meta_str(involved, "name"),
            "namespace": meta_str(involved, "namespace"), "uid": meta_str(involved, "uid")},
        "type": type_, "reason": reason, "message": message, "count": 1,
        "firstTimestamp": now(), "lastTimestamp": now(), "source": {"component": component}
    }));
}

fn deployment(
    store: &Store,
    script: &Script,
    rt: &ResourceType,
    d: &Value,
    behaviour: &DeploymentBehaviour,
) {
    if *behaviour == DeploymentBehaviour::Ignore {
        return;
    }
    let (ns, name) = (meta_str(d, "namespace"), meta_str(d, "name"));
    let replicas = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = short_hash(&template, 10);
    let rs_name = format!("{name}-{hash}");
    let mut labels = template
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    labels["pod-template-hash"] = json!(hash);
    let owner = |kind: &str, obj_name: &str, uid: &str| json!([{"apiVersion": "apps/v1", "kind": kind, "name": obj_name, "uid": uid, "controller": true}]);

    // Replace the previous generation's ReplicaSets and Pods.
    let (rss, pods) = (
        store.find_kind("apps/v1", "ReplicaSet").unwrap(),
        store.find_kind("v1", "Pod").unwrap(),
    );
    for (t, prefix) in [(&pods, format!("{name}-")), (&rss, format!("{name}-"))] {
        for old in store.list(t, Some(ns)).0 {
            let n = meta_str(&old, "name");
            if n.starts_with(&prefix) && !n.starts_with(&rs_name) {
                let _ = store.delete(t, ns, n);
            }
        }
    }
    let ready = *behaviour == DeploymentBehaviour::Available;
    let rs = store
        .get(&rss, ns, &rs_name)
        .or_else(|| store.create(&rss, ns, json!({
            "metadata": {"name": rs_name, "labels": labels, "ownerReferences": owner("Deployment", name, meta_str(d, "uid"))},
            "spec": {"replicas": replicas, "selector": d.pointer("/spec/selector").cloned().unwrap_or(json!({})), "template": template}
        })).ok())
        .unwrap_or(json!({}));
    let _ = store.patch(
        &rss,
        ns,
        &rs_name,
        &json!({"status": {"replicas": replicas, "readyReplicas": if ready { replicas } else { 0 },
        "availableReplicas": if ready { replicas } else { 0 }, "observedGeneration": 1}}),
        true,
    );
    record_event(
        store,
        d,
        "Normal",
        "ScalingReplicaSet",
        &format!("Scaled up replica set {rs_name} from 0 to {replicas}"),
        "deployment-controller",
    );

    let containers = template
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for i in 0..replicas {
        let pod_name = format!("{rs_name}-{}", &short_hash(&json!([&rs_name, i]), 5));
        if store.get(&pods, ns, &pod_name).is_some() {
            continue;
        }
        let statuses: Vec<Value> = containers.iter().map(|c| {
            let image = c["image"].as_str().unwrap_or_default();
            let (repo, digest) = split_image(image);
            if ready {
                let digest = script.running_digest.get(name).cloned().or(digest)
                    .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(image.as_bytes()))));
                json!({"name": c["name"], "image": image, "imageID": format!("docker-pullable://{repo}@{digest}"),
                    "ready": true, "started": true, "restartCount": 0, "state": {"running": {"startedAt": now()}}})
            } else {
                json!({"name": c["name"], "image": image, "imageID": "", "ready": false, "started": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")}}})
            }
        }).collect();
        let pod = store.create(&pods, ns, json!({
            "metadata": {"name": pod_name, "labels": labels, "ownerReferences": owner("ReplicaSet", &rs_name, meta_str(&rs, "uid"))},
            "spec": template.get("spec").cloned().unwrap_or(json!({}))
        }));
        let Ok(pod) = pod else { continue };
        let phase = if ready { "Running" } else { "Pending" };
        let _ = store.patch(
            &pods,
            ns,
            &pod_name,
            &json!({"status": {"phase": phase, "containerStatuses": statuses,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}),
            true,
        );
        for c in &containers {
            let image = c["image"].as_str().unwrap_or_default();
            if ready {
                record_event(
                    store,
                    &pod,
                    "Normal",
                    "Pulled",
                    &format!("Container image \"{image}\" already present on machine"),
                    "kubelet",
                );
                record_event(
                    store,
                    &pod,
                    "Normal",
                    "Started",
                    &format!(
                        "Started container {}",
                        c["name"].as_str().unwrap_or_default()
                    ),
                    "kubelet",
                );
            } else {
                record_event(
                    store,
                    &pod,
                    "Warning",
                    "Failed",
                    &format!(
                        "Failed to pull image \"{image}\": failed to resolve reference \"{image}\": unexpected status from HEAD request: 401 Unauthorized"
                    ),
                    "kubelet",
                );
                record_event(
                    store,
                    &pod,
                    "Warning",
                    "BackOff",
                    &format!("Back-off pulling image \"{image}\""),
                    "kubelet",
                );
            }
        }
        if ready {
            store.set_pod_log(ns, &pod_name, &script.pod_log);
        }
    }
    let available = if ready { replicas } else { 0 };
    let conditions = if ready {
        json!([
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.", "lastTransitionTime": now()},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": format!("ReplicaSet \"{rs_name}\" has successfully progressed."), "lastTransitionTime": now()}
        ])
    } else {
        json!([
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability.", "lastTransitionTime": now()},
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": format!("ReplicaSet \"{rs_name}\" is progressing."), "lastTransitionTime": now()}
        ])
    };
    set_status(
        store,
        rt,
        ns,
        name,
        json!({
            "observedGeneration": generation(d), "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": available, "availableReplicas": available, "unavailableReplicas": replicas - available,
            "conditions": conditions
        }),
    );
}

fn flux(store: &Store, rt: &ResourceType, o: &Value, behaviour: &FluxBehaviour) {
    let (ns, name) = (meta_str(o, "namespace"), meta_str(o, "name"));
    let g = generation(o);
    let cond = |t: &str, s: &str, r: &str, m: &str| json!({"type": t, "status": s, "reason": r, "message": m, "observedGeneration": g, "lastTransitionTime": now()});
    let (conditions, event) = match behaviour {
        FluxBehaviour::Ignore => return,
        FluxBehaviour::Ready => {
            let reason = match rt.kind.as_str() {
                "Kustomization" | "FluxInstance" => "ReconciliationSucceeded",
                "HelmRelease" => "InstallSucceeded",
                _ => "Succeeded",
            };
            (
                json!([cond("Ready", "True", reason, "reconciliation succeeded")]),
                (
                    "Normal",
                    reason.to_string(),
                    "reconciliation succeeded".to_string(),
                ),
            )
        }
        FluxBehaviour::Stalled { reason, message } => (
            json!([
                cond("Ready", "False", reason, message),
                cond("Stalled", "True", reason, message)
            ]),
            ("Warning", reason.clone(), message.clone()),
        ),
        FluxBehaviour::NotReady { reason, message } => (
            json!([
                cond("Ready", "False", reason, message),
                cond("Reconciling", "True", "ProgressingWithRetry", message)
            ]),
            ("Warning", reason.clone(), message.clone()),
        ),
    };
    if !rt.status {
        return;
    }
    set_status(
        store,
        rt,
        ns,
        name,
        json!({"observedGeneration": g, "conditions": conditions}),
    );
    record_event(
        store,
        o,
        event.0,
        &event.1,
        &event.2,
        &format!(
            "{}-controller",
            rt.group.split('.').next().unwrap_or("flux")
        ),
    );
}

/// source-controller over TLS: when `change` is a Git/Helm/OCI source aimed at an endpoint of
/// `script.source_tls`, run the Go client against it with the CA from the referenced Secret and
/// set Ready=False from the real outcome (a refused handshake says why; a completed one still
/// fails, as the endpoints speak no git, Helm or OCI). Returns whether it handled the change.
async fn fetch_source(store: &Store, script: &Script, change: &Change) -> bool {
    let Some(tls) = &script.source_tls else {
        return false;
    };
    let o = &change.object;
    let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
    let (reason, what) = match (change.group.as_str(), kind) {
        ("source.toolkit.fluxcd.io", "GitRepository") => (
            "GitOperationFailed",
            "failed to checkout and determine revision: unable to clone",
        ),
        ("source.toolkit.fluxcd.io", "HelmRepository") => (
            "IndexationFailed",
            "failed to fetch Helm repository index from",
        ),
        ("source.toolkit.fluxcd.io", "OCIRepository") => (
            "OCIArtifactPullFailed",
            "failed to determine artifact digest of",
        ),
        _ => return false,
    };
    let url = o
        .pointer("/spec/url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let authority = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    if !tls.endpoints.iter().any(|e| e == authority) {
        return false;
    }
    let Some(rt) = store.find_kind(
        o.get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        kind,
    ) else {
        return true;
    };
    let (ns, name) = (meta_str(o, "namespace"), meta_str(o, "name"));
    if store
        .get(&rt, ns, name)
        .is_none_or(|cur| generation(&cur) != generation(o))
    {
        return true;
    }
    // Git names its CA Secret `secretRef`; Helm and OCI sources `certSecretRef`.
    let secret_name = ["/spec/certSecretRef/name", "/spec/secretRef/name"]
        .iter()
        .find_map(|p| o.pointer(p).and_then(Value::as_str))
        .unwrap_or_default();
    let secrets = store
        .find_kind("v1", "Secret")
        .expect("secrets are built in");
    let ca = store.get(&secrets, ns, secret_name).and_then(|s| {
        s.pointer("/data/ca.crt")
            .and_then(Value::as_str)
            .and_then(|b| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(b).ok()
            })
            .or_else(|| {
                s.pointer("/stringData/ca.crt")
                    .and_then(Value::as_str)
                    .map(|t| t.as_bytes().to_vec())
            })
    });
    let message = match ca {
        None => format!("failed to get secret '{ns}/{secret_name}': no `ca.crt` found"),
        Some(ca) => match run_client(&tls.client, authority, &ca).await {
            Err(e) => format!("{what} '{url}': {e}"),
            Ok(out) if out["ok"] == true => format!(
                "{what} '{url}': unexpected response from the server after the TLS handshake ({} {}): the endpoint speaks no protocol",
                out["version"].as_str().unwrap_or_default(),
                out["cipher"].as_str().unwrap_or_default()
            ),
            Ok(out) => format!(
                "{what} '{url}': {}",
                out["err"].as_str().unwrap_or("unknown error")
            ),
        },
    };
    let g = generation(o);
    let cond = |t: &str, st: &str, m: &str| json!({"type": t, "status": st, "reason": reason, "message": m, "observedGeneration": g, "lastTransitionTime": now()});
    set_status(
        store,
        &rt,
        ns,
        name,
        json!({"observedGeneration": g, "conditions": [
            cond("Ready", "False", &message),
            cond("FetchFailed", "True", &message)
        ]}),
    );
    record_event(store, o, "Warning", reason, &message, "source-controller");
    true
}

/// Run the Go TLS client against `authority` trusting `ca`; its JSON line.
async fn run_client(client: &std::path::Path, authority: &str, ca: &[u8]) -> Result<Value, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, ca).map_err(|e| e.to_string())?;
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .trim_matches(['[', ']']);
    let run = tokio::process::Command::new(client)
        .arg("client")
        .arg(authority)
        .arg(&ca_file)
        .arg(host)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .map_err(|_| "the TLS client did not finish within 30s".to_string())?
        .map_err(|e| format!("run the TLS client: {e}"))?;
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "TLS client output {:?}: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
