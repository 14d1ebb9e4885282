//! TEST DOUBLE Flux controllers, shared parts: the work queue handle, object keys, the
//! artifact storage source-controller serves, conditions and status writes (pruned by the
//! store to each CRD's schema, as the API server does), events with the real reporting
//! controller names (forwarded to notification-controller like the controllers' event
//! recorders do), Secrets, finalizers and the scripted faults.

use super::super::controller::{FluxBehaviour, Script};
use super::super::store::{ResourceType, Store, now};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const FLUX_NAMESPACE: &str = "flux-system";
/// The finalizer every Flux controller puts on the objects it reconciles
/// (fluxcd/pkg runtime/patch, `sourcev1.SourceFinalizer` et al.).
pub const FINALIZER: &str = "finalizers.fluxcd.io";
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// Real programs the imitations run where the real controllers use a library.
#[derive(Clone, Debug, Default)]
pub struct Tools {
    /// `fixtures/go/helmtemplate` built: Go's text/template, the engine Helm renders with.
    pub helm_template: Option<PathBuf>,
    /// The TLS stack of the controller binary the channel's images run (`fixtures/go/tlspeer`
    /// built as that Go variant): every HTTPS fetch of source-controller goes through it first,
    /// so TLS endpoints meet the controller's own ClientHello and policy.
    pub tls_client: Option<PathBuf>,
}

/// Which object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjKey {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    pub fn of(o: &Value) -> Self {
        Self {
            api_version: o["apiVersion"].as_str().unwrap_or_default().to_string(),
            kind: o["kind"].as_str().unwrap_or_default().to_string(),
            namespace: meta(o, "namespace").to_string(),
            name: meta(o, "name").to_string(),
        }
    }
    pub fn group(&self) -> &str {
        self.api_version.split_once('/').map_or("", |(g, _)| g)
    }
}

pub fn meta<'a>(o: &'a Value, field: &str) -> &'a str {
    o.pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn generation(o: &Value) -> i64 {
    o.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

pub fn requested_at(o: &Value) -> Option<&str> {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(REQUESTED_AT))
        .and_then(Value::as_str)
}

pub fn str_at<'a>(o: &'a Value, pointer: &str) -> &'a str {
    o.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A condition as the Flux runtime's `conditions.Set` writes it
/// (fluxcd/pkg runtime/conditions/setter.go): with the object's generation.
pub fn condition(o: &Value, type_: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": if status { "True" } else { "False" }, "reason": reason,
        "message": message, "observedGeneration": generation(o), "lastTransitionTime": now()})
}

/// Artifacts source-controller (and source-watcher) serve, by URL.
#[derive(Default)]
pub struct Artifacts(Mutex<HashMap<String, Vec<u8>>>);

impl Artifacts {
    pub fn put(&self, url: &str, bytes: Vec<u8>) {
        self.0.lock().unwrap().insert(url.to_string(), bytes);
    }
    pub fn get(&self, url: &str) -> Option<Vec<u8>> {
        self.0.lock().unwrap().get(url).cloned()
    }
}

/// The `status.artifact` of a stored artifact (fluxcd/pkg apis/meta artifact_types.go), with
/// the URL source-controller's storage serves it on (internal/storage/storage.go).
pub fn artifact(
    ctx: &Ctx,
    server: &str,
    kind: &str,
    o: &Value,
    revision: &str,
    file: &str,
    bytes: Vec<u8>,
) -> Value {
    use sha2::Digest as _;
    let path = format!(
        "{}/{}/{}/{file}",
        kind.to_lowercase(),
        meta(o, "namespace"),
        meta(o, "name")
    );
    let url = format!("http://{server}.{FLUX_NAMESPACE}.svc.cluster.local./{path}");
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    let size = bytes.len();
    ctx.artifacts.put(&url, bytes);
    json!({"path": path, "url": url, "revision": revision, "digest": digest,
        "lastUpdateTime": now(), "size": size})
}

pub struct Ctx {
    pub store: Arc<Store>,
    pub artifacts: Artifacts,
    pub script: Arc<Mutex<Script>>,
    pub tools: Tools,
    tx: tokio::sync::mpsc::UnboundedSender<ObjKey>,
    /// Pending requeue per object: the newest one wins.
    timers: Mutex<HashMap<ObjKey, u64>>,
    /// Consecutive failed reconciles per object.
    failures: Mutex<HashMap<ObjKey, u32>>,
}

impl Ctx {
    pub fn new(
        store: Arc<Store>,
        script: Arc<Mutex<Script>>,
        tools: Tools,
        tx: tokio::sync::mpsc::UnboundedSender<ObjKey>,
    ) -> Self {
        Self {
            store,
            artifacts: Artifacts::default(),
            script,
            tools,
            tx,
            timers: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    pub fn enqueue(&self, key: ObjKey) {
        let _ = self.tx.send(key);
    }

    /// Reconcile again after `after` (controller-runtime `RequeueAfter`); the newest request
    /// for an object replaces older ones.
    pub fn requeue_after(self: &Arc<Self>, key: ObjKey, after: Duration) {
        let ticket = {
            let mut t = self.timers.lock().unwrap();
            let n = t.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let ctx = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if let Some(ctx) = ctx.upgrade()
                && ctx.timers.lock().unwrap().get(&key) == Some(&ticket)
            {
                ctx.enqueue(key);
            }
        });
    }

    /// The delay before the next reconcile: the interval after a success; after consecutive
    /// failures (Ready=False) an exponential backoff from it, as controller-runtime's rate limiter
    /// retries failing reconciles, capped at 30s of the double's time.
    pub fn backoff(&self, key: &ObjKey, interval: Duration) -> Duration {
        let failing = self.get(key).is_some_and(|o| {
            o.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "False")
                })
        });
        let mut f = self.failures.lock().unwrap();
        if !failing {
            f.remove(key);
            return interval;
        }
        let n = f.entry(key.clone()).or_insert(0);
        *n = (*n + 1).min(8);
        (interval * 2u32.pow(*n)).min(Duration::from_secs(30))
    }

    /// Every object a controller owns (it lists them when it starts).
    pub fn enqueue_all_of(&self, controller: &str) {
        for t in self.store.resource_types() {
            if super::controller_of(&t.group, &t.kind) != Some(controller) {
                continue;
            }
            for o in self.store.list(&t, None).0 {
                self.enqueue(ObjKey::of(&o));
            }
        }
    }

    pub fn kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        self.store.find_kind(api_version, kind)
    }

    pub fn get(&self, key: &ObjKey) -> Option<Value> {
        let t = self.kind(&key.api_version, &key.kind)?;
        self.store.get(&t, &key.namespace, &key.name)
    }

    /// The object of `kind` named `name` in `ns`, at whatever version is served first.
    pub fn get_kind(&self, group: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let t = self
            .store
            .resource_types()
            .into_iter()
            .find(|t| t.group == group && t.kind == kind)?;
        self.store.get(&t, ns, name)
    }

    /// Whether `controller`'s Deployment is Available in `flux-system`.
    pub fn controller_running(&self, controller: &str) -> bool {
        let Some(t) = self.kind("apps/v1", "Deployment") else {
            return false;
        };
        self.store
            .get(&t, FLUX_NAMESPACE, controller)
            .is_some_and(|d| {
                d.pointer("/status/availableReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    > 0
            })
    }

    /// The tag of the image `controller` runs (its version).
    pub fn controller_version(&self, controller: &str) -> String {
        let Some(t) = self.kind("apps/v1", "Deployment") else {
            return String::new();
        };
        self.store
            .get(&t, FLUX_NAMESPACE, controller)
            .and_then(|d| {
                d.pointer("/spec/template/spec/containers/0/image")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .map(|i| {
                let name = i.split('@').next().unwrap_or_default();
                name.rsplit_once(':')
                    .map(|(_, t)| t.to_string())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    pub fn fault(&self, name: &str) -> Option<FluxBehaviour> {
        self.script
            .lock()
            .unwrap()
            .flux_overrides
            .get(name)
            .cloned()
    }

    /// Write the object's status (the store prunes it to the CRD schema).
    pub fn set_status(&self, o: &Value, status: Value) {
        let key = ObjKey::of(o);
        if let Some(t) = self.kind(&key.api_version, &key.kind) {
            let _ = self.store.set_status(&t, &key.namespace, &key.name, status);
        }
    }

    /// Patch the status with a merge patch (fields not named stay).
    pub fn patch_status(&self, o: &Value, patch: Value) {
        let key = ObjKey::of(o);
        if let Some(t) = self.kind(&key.api_version, &key.kind) {
            let _ = self.store.patch(
                &t,
                &key.namespace,
                &key.name,
                &json!({"status": patch}),
                true,
            );
        }
    }

    /// Merge-patch the object itself (metadata, spec).
    pub fn patch(&self, o: &Value, patch: Value) -> Option<Value> {
        let key = ObjKey::of(o);
        let t = self.kind(&key.api_version, &key.kind)?;
        self.store
            .patch(&t, &key.namespace, &key.name, &patch, false)
            .ok()
    }

    /// A Secret's `data` decoded.
    pub fn secret(&self, ns: &str, name: &str) -> Option<HashMap<String, Vec<u8>>> {
        use base64::Engine as _;
        let t = self.kind("v1", "Secret")?;
        let s = self.store.get(&t, ns, name)?;
        let mut out = HashMap::new();
        for (k, v) in s
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(b) = v
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            {
                out.insert(k.clone(), b);
            }
        }
        Some(out)
    }
}

/// Add the Flux finalizer on first reconcile; returns the object as stored.
pub fn ensure_finalizer(ctx: &Ctx, o: &Value) -> Value {
    let has = o
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER));
    if has {
        return o.clone();
    }
    let mut finalizers = o
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    finalizers.push(json!(FINALIZER));
    ctx.patch(o, json!({"metadata": {"finalizers": finalizers}}))
        .unwrap_or_else(|| o.clone())
}

/// Remove the Flux finalizer (the store then deletes an object marked for deletion).
pub fn remove_finalizer(ctx: &Ctx, o: &Value) {
    let rest: Vec<Value> = o
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|x| *x != FINALIZER)
        .cloned()
        .collect();
    let _ = ctx.patch(o, json!({"metadata": {"finalizers": rest}}));
}

pub fn deleting(o: &Value) -> bool {
    o.pointer("/metadata/deletionTimestamp").is_some()
}

/// The status fields every Flux reconciler writes when a reconcile request was handled
/// (fluxcd/pkg runtime/reconcile ReconcileRequestStatus).
pub fn handled(o: &Value, status: &mut Value) {
    if let Some(at) = requested_at(o) {
        status["lastHandledReconcileAt"] = json!(at);
    }
}

/// A core/v1 Event as the controllers' event recorders write it
/// (fluxcd/pkg runtime/events/recorder.go), forwarded to notification-controller's event
/// endpoint for Alerts (the recorder's webhook).
pub fn event(ctx: &Ctx, o: &Value, warning: bool, reason: &str, message: &str, controller: &str) {
    use sha2::Digest as _;
    let Some(t) = ctx.kind("v1", "Event") else {
        return;
    };
    let ns = match meta(o, "namespace") {
        "" => "default",
        ns => ns,
    };
    let name = format!(
        "{}.{}",
        meta(o, "name"),
        &hex::encode(sha2::Sha256::digest(format!(
            "{reason}{message}{}",
            ctx.store.resource_version()
        )))[..16]
    );
    let type_ = if warning { "Warning" } else { "Normal" };
    let _ = ctx.store.create(&t, ns, json!({
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"apiVersion": o["apiVersion"], "kind": o["kind"], "name": meta(o, "name"),
            "namespace": meta(o, "namespace"), "uid": meta(o, "uid"),
            "resourceVersion": meta(o, "resourceVersion")},
        "type": type_, "reason": reason, "message": message, "count": 1,
        "firstTimestamp": now(), "lastTimestamp": now(),
        "source": {"component": controller}, "reportingComponent": controller,
    }));
    super::notify::forward(ctx, o, warning, reason, message, controller);
}

/// A scripted fault (a test knob): the object fails the way the script says instead of
/// reconciling, through the same status and event paths.
pub fn report_fault(ctx: &Ctx, o: &Value, controller: &str, fault: &FluxBehaviour) {
    let (reason, message, stalled) = match fault {
        FluxBehaviour::Stalled { reason, message } => (reason, message, true),
        FluxBehaviour::NotReady { reason, message } => (reason, message, false),
        FluxBehaviour::Ready | FluxBehaviour::Ignore => return,
    };
    let mut conditions = vec![condition(o, "Ready", false, reason, message)];
    if stalled {
        conditions.push(condition(o, "Stalled", true, reason, message));
    } else {
        conditions.push(condition(
            o,
            "Reconciling",
            true,
            "ProgressingWithRetry",
            message,
        ));
    }
    ctx.patch_status(
        o,
        json!({"observedGeneration": generation(o), "conditions": conditions}),
    );
    event(ctx, o, true, reason, message, controller);
}

/// Objects that consume `source`'s artifact: the controllers' watches on their sources
/// (kustomize-controller and helm-controller index `spec.sourceRef`/`spec.chartRef`;
/// source-controller HelmCharts their source; source-watcher generators their sources;
/// image-automation its ImagePolicies).
pub fn dependents(ctx: &Ctx, source: &Value) -> Vec<ObjKey> {
    let (kind, ns, name) = (
        source["kind"].as_str().unwrap_or_default(),
        meta(source, "namespace"),
        meta(source, "name"),
    );
    let refs = |o: &Value, pointer: &str| {
        o.pointer(pointer).is_some_and(|r| {
            r["kind"] == kind
                && r["name"] == name
                && r.get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(meta(o, "namespace"))
                    == ns
        })
    };
    let mut out = Vec::new();
    for t in ctx.store.resource_types() {
        let wanted: &[&str] = match (t.group.as_str(), t.kind.as_str()) {
            ("kustomize.toolkit.fluxcd.io", "Kustomization") => &["/spec/sourceRef"],
            ("helm.toolkit.fluxcd.io", "HelmRelease") => &["/spec/chartRef"],
            ("source.toolkit.fluxcd.io", "HelmChart") => &["/spec/sourceRef"],
            ("image.toolkit.fluxcd.io", "ImagePolicy") => &[],
            ("source.extensions.fluxcd.io", "ArtifactGenerator")
            | ("image.toolkit.fluxcd.io", "ImageUpdateAutomation") => &[],
            _ => continue,
        };
        for o in ctx.store.list(&t, None).0 {
            let hit = wanted.iter().any(|p| refs(&o, p))
                || (t.kind == "HelmRelease"
                    && kind == "HelmChart"
                    && str_at(&o, "/status/helmChart") == format!("{ns}/{name}"))
                || (t.kind == "ArtifactGenerator"
                    && meta(&o, "namespace") == ns
                    && o.pointer("/spec/sources")
                        .and_then(Value::as_array)
                        .is_some_and(|s| s.iter().any(|x| x["kind"] == kind && x["name"] == name)))
                || (t.kind == "ImageUpdateAutomation"
                    && kind == "ImagePolicy"
                    && meta(&o, "namespace") == ns)
                || (t.kind == "ImagePolicy"
                    && kind == "ImageRepository"
                    && meta(&o, "namespace") == ns
                    && str_at(&o, "/spec/imageRepositoryRef/name") == name);
            if hit {
                out.push(ObjKey::of(&o));
            }
        }
    }
    out
}

/// Write `ca.crt` (and return credentials) from a Secret for a TLS client.
pub struct TlsFiles {
    pub dir: tempfile::TempDir,
    pub ca: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl TlsFiles {
    /// The `username`/`password` of a `secretRef` beside the CA of a `certSecretRef`: the
    /// HelmRepository getter options (source-controller internal/helm/getter/client_opts.go,
    /// basic auth from `secretRef`, TLS from `certSecretRef`).
    pub fn with_basic_auth(mut self, ctx: &Ctx, ns: &str, secret: &str) -> Self {
        if let Some(d) = (!secret.is_empty())
            .then(|| ctx.secret(ns, secret))
            .flatten()
        {
            let text = |k: &str| d.get(k).map(|b| String::from_utf8_lossy(b).into_owned());
            self.username = text("username");
            self.password = text("password");
        }
        self
    }

    /// The credentials for `host` in a `kubernetes.io/dockerconfigjson` `secretRef`: the
    /// keychain OCIRepository and ImageRepository build from it (source-controller
    /// internal/controller/ocirepository_controller.go, image-reflector-controller
    /// internal/controller/imagerepository_controller.go, both through fluxcd/pkg auth).
    pub fn with_registry_auth(mut self, ctx: &Ctx, ns: &str, secret: &str, host: &str) -> Self {
        let config = (!secret.is_empty())
            .then(|| ctx.secret(ns, secret))
            .flatten()
            .and_then(|d| d.get(".dockerconfigjson").cloned())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        if let Some(entry) = config.as_ref().and_then(|c| c.pointer("/auths")?.get(host)) {
            let text = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_string);
            self.username = text("username");
            self.password = text("password");
        }
        self
    }
}

pub fn tls_files(ctx: &Ctx, ns: &str, secret: &str) -> TlsFiles {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = if secret.is_empty() {
        None
    } else {
        ctx.secret(ns, secret)
    };
    let mut ca = None;
    let (mut username, mut password) = (None, None);
    if let Some(d) = data {
        if let Some(pem) = d.get("ca.crt") {
            let p = dir.path().join("ca.crt");
            std::fs::write(&p, pem).expect("write ca");
            ca = Some(p);
        }
        username = d
            .get("username")
            .map(|b| String::from_utf8_lossy(b).into_owned());
        password = d
            .get("password")
            .map(|b| String::from_utf8_lossy(b).into_owned());
    }
    TlsFiles {
        dir,
        ca,
        username,
        password,
    }
}

/// An HTTPS client trusting the CA of `files` (the controllers' `certSecretRef` handling,
/// fluxcd/pkg runtime/secrets tls.go).
pub fn http_client(files: &TlsFiles) -> reqwest::Client {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(20));
    if let Some(ca) = &files.ca
        && let Ok(pem) = std::fs::read(ca)
        && let Ok(cert) = reqwest::Certificate::from_pem(&pem)
    {
        b = b.add_root_certificate(cert);
    }
    b.build().expect("http client")
}

/// A `.tar.gz` of a directory tree (source-controller's `Storage.Archive`, without `.git`).
pub fn tar_gz(dir: &std::path::Path) -> Vec<u8> {
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(enc);
    let mut entries: Vec<PathBuf> = Vec::new();
    fn walk(d: &std::path::Path, out: &mut Vec<PathBuf>) {
        let mut list: Vec<_> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        list.sort_by_key(|e| e.path());
        for e in list {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    walk(dir, &mut entries);
    for p in entries {
        let rel = p.strip_prefix(dir).expect("inside");
        let _ = tar.append_path_with_name(&p, rel);
    }
    tar.into_inner()
        .and_then(|e| e.finish())
        .unwrap_or_default()
}

/// Unpack a `.tar.gz` artifact into `dir`.
pub fn untar(bytes: &[u8], dir: &std::path::Path) -> Result<(), String> {
    let dec = flate2::read::GzDecoder::new(bytes);
    tar::Archive::new(dec)
        .unpack(dir)
        .map_err(|e| e.to_string())
}

/// Wait until every object is ready by kstatus rules (the production readiness library), judged
/// again on every store change; the not-ready ones when `timeout` passes.
pub async fn wait_ready(ctx: &Ctx, objects: &[Value], timeout: Duration) -> Result<(), String> {
    let deadline = std::time::Instant::now() + timeout;
    let mut changes = ctx.store.subscribe_all();
    loop {
        let mut pending = Vec::new();
        for o in objects {
            let (api, kind) = (
                o["apiVersion"].as_str().unwrap_or_default(),
                o["kind"].as_str().unwrap_or_default(),
            );
            let ready = ctx.kind(api, kind).and_then(|t| {
                ctx.store.get(
                    &t,
                    if t.namespaced {
                        meta(o, "namespace")
                    } else {
                        ""
                    },
                    meta(o, "name"),
                )
            });
            let ok = ready.is_some_and(|v| {
                flux_compat::k8s::status::readiness(&v) == flux_compat::k8s::Readiness::Ready
            });
            if !ok {
                pending.push(format!(
                    "{kind}/{}/{}",
                    meta(o, "namespace"),
                    meta(o, "name")
                ));
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(format!("timeout waiting for: [{}]", pending.join(", ")));
        }
        let _ = tokio::time::timeout(left, changes.recv()).await;
    }
}

/// A semver constraint in the syntax Flux uses (Masterminds/semver: comparators separated by
/// spaces or commas are ANDed, `||` separates alternatives), as `semver::VersionReq`s to OR.
pub fn semver_constraint(range: &str) -> Result<Vec<semver::VersionReq>, String> {
    let range = if range.trim().is_empty() { "*" } else { range };
    range
        .split("||")
        .map(|alt| {
            let mut parts: Vec<String> = Vec::new();
            for tok in alt.replace(',', " ").split_whitespace() {
                // `>= 1.0` spelled with a space: glue the operator to its version.
                match parts.last_mut() {
                    Some(last)
                        if matches!(
                            last.as_str(),
                            ">" | ">=" | "<" | "<=" | "=" | "~" | "^" | "!="
                        ) =>
                    {
                        last.push_str(tok)
                    }
                    _ => parts.push(tok.to_string()),
                }
            }
            semver::VersionReq::parse(&parts.join(", "))
                .map_err(|e| format!("invalid semver constraint '{range}': {e}"))
        })
        .collect()
}

/// Whether `v` satisfies any alternative of a parsed constraint.
pub fn semver_matches(reqs: &[semver::VersionReq], v: &semver::Version) -> bool {
    reqs.iter().any(|r| r.matches(v))
}
