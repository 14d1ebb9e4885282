//! TEST DOUBLE storage: one ordered map of objects keyed by (group, resource, namespace, name),
//! a monotonically increasing resourceVersion, `generation` bumps on spec changes, and an event
//! log that watches replay from any resourceVersion before following live changes.

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tokio::sync::broadcast;

/// A REST resource the double serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub status: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    status: bool,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced,
        status,
    }
}

/// The built-in kinds (what a fresh kind cluster serves, reduced to what Flux installs touch).
pub fn builtins() -> Vec<ResourceType> {
    vec![
        builtin("", "v1", "Namespace", "namespaces", false, true),
        builtin("", "v1", "Pod", "pods", true, true),
        builtin("", "v1", "Service", "services", true, true),
        builtin("", "v1", "ServiceAccount", "serviceaccounts", true, false),
        builtin("", "v1", "Secret", "secrets", true, false),
        builtin("", "v1", "ConfigMap", "configmaps", true, false),
        builtin("", "v1", "Event", "events", true, false),
        builtin("apps", "v1", "Deployment", "deployments", true, true),
        builtin("apps", "v1", "ReplicaSet", "replicasets", true, true),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            true,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            true,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            false,
        ),
        builtin(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
            false,
        ),
        builtin(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            true,
        ),
    ]
}

/// (group, plural, namespace or "", name)
pub type Key = (String, String, String, String);

/// One change, as watches see it.
#[derive(Clone, Debug)]
pub struct Change {
    pub rv: u64,
    pub kind: &'static str,
    pub group: String,
    pub plural: String,
    pub object: Value,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    uid: u64,
    objects: BTreeMap<Key, Value>,
    log: Vec<Change>,
    pod_logs: HashMap<(String, String), String>,
}

/// Why a write was refused, as an HTTP status and reason.
#[derive(Debug)]
pub struct Refusal {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
        }
    }
}

pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Change>,
}

pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Everything but metadata and status: what a `generation` describes.
fn spec_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Apply semantics approximated for one field manager: maps merge recursively, everything else
/// (lists, scalars) is replaced by the applied value. Fields are never removed.
fn apply_merge(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                apply_merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, a) => *t = a.clone(),
    }
}

impl Store {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            inner: Mutex::default(),
            tx,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.inner.lock().unwrap().rv
    }

    /// Built-ins plus the kinds of every established CRD.
    pub fn resource_types(&self) -> Vec<ResourceType> {
        let inner = self.inner.lock().unwrap();
        let mut out = builtins();
        for ((g, p, _, _), crd) in &inner.objects {
            if g != "apiextensions.k8s.io" || p != "customresourcedefinitions" {
                continue;
            }
            let established = crd
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Established" && c["status"] == "True")
                });
            if !established {
                continue;
            }
            let group = crd
                .pointer("/spec/group")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let kind = crd
                .pointer("/spec/names/kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let plural = crd
                .pointer("/spec/names/plural")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let namespaced =
                crd.pointer("/spec/scope").and_then(Value::as_str) == Some("Namespaced");
            for v in crd
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if v["served"] != json!(true) {
                    continue;
                }
                out.push(ResourceType {
                    group: group.into(),
                    version: v["name"].as_str().unwrap_or_default().into(),
                    kind: kind.into(),
                    plural: plural.into(),
                    namespaced,
                    status: v.pointer("/subresources/status").is_some(),
                });
            }
        }
        out
    }

    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.resource_types()
            .into_iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        self.resource_types()
            .into_iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
    }

    pub fn get(&self, t: &ResourceType, ns: &str, name: &str) -> Option<Value> {
        let inner = self.inner.lock().unwrap();
        inner
            .objects
            .get(&(t.group.clone(), t.plural.clone(), ns.into(), name.into()))
            .map(|o| typed(o, t))
    }

    /// Objects of a type in a namespace (`None`: all), with the list's resourceVersion.
    pub fn list(&self, t: &ResourceType, ns: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.inner.lock().unwrap();
        let items = inner
            .objects
            .iter()
            .filter(|((g, p, n, _), _)| {
                *g == t.group && *p == t.plural && ns.is_none_or(|ns| ns == n)
            })
            .map(|(_, o)| typed(o, t))
            .collect();
        (items, inner.rv)
    }

    fn record(&self, inner: &mut Inner, kind: &'static str, t: &ResourceType, object: Value) {
        let change = Change {
            rv: inner.rv,
            kind,
            group: t.group.clone(),
            plural: t.plural.clone(),
            object,
        };
        inner.log.push(change.clone());
        let _ = self.tx.send(change);
    }

    /// Create; refuses when it exists or its namespace does not.
    pub fn create(&self, t: &ResourceType, ns: &str, mut obj: Value) -> Result<Value, Refusal> {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            return Err(Refusal::new(
                422,
                "Invalid",
                "metadata.name: Required value",
            ));
        }
        let mut inner = self.inner.lock().unwrap();
        if t.namespaced
            && !inner
                .objects
                .contains_key(&("".into(), "namespaces".into(), "".into(), ns.into()))
        {
            return Err(Refusal::new(
                404,
                "NotFound",
                format!("namespaces \"{ns}\" not found"),
            ));
        }
        let key = (
            t.group.clone(),
            t.plural.clone(),
            ns.to_string(),
            name.clone(),
        );
        if inner.objects.contains_key(&key) {
            return Err(Refusal::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", t.plural),
            ));
        }
        inner.rv += 1;
        inner.uid += 1;
        let (rv, uid) = (inner.rv, inner.uid);
        let meta = obj
            .as_object_mut()
            .ok_or_else(|| Refusal::new(400, "BadRequest", "the body is not an object"))?
            .entry("metadata")
            .or_insert_with(|| json!({}));
        meta["resourceVersion"] = json!(rv.to_string());
        meta["uid"] = json!(format!("00000000-0000-4000-8000-{uid:012}"));
        meta["creationTimestamp"] = json!(now());
        meta["generation"] = json!(1);
        if t.namespaced {
            meta["namespace"] = json!(ns);
        } else if let Some(m) = meta.as_object_mut() {
            m.remove("namespace");
        }
        if t.kind == "Namespace" && t.group.is_empty() {
            obj["status"] = json!({"phase": "Active"});
        }
        let obj = typed(&obj, t);
        inner.objects.insert(key, obj.clone());
        self.record(&mut inner, "ADDED", t, obj.clone());
        Ok(obj)
    }

    /// Replace the stored object through `change`, bumping resourceVersion (and generation when
    /// anything outside metadata and status changed). Unchanged objects are left alone.
    pub fn update(
        &self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        change: impl FnOnce(&Value) -> Result<Value, Refusal>,
    ) -> Result<Value, Refusal> {
        let mut inner = self.inner.lock().unwrap();
        let key = (
            t.group.clone(),
            t.plural.clone(),
            ns.to_string(),
            name.to_string(),
        );
        let Some(old) = inner.objects.get(&key).cloned() else {
            return Err(Refusal::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", t.plural),
            ));
        };
        let mut new = typed(&change(&old)?, t);
        // Server-owned metadata survives any write.
        for field in [
            "uid",
            "creationTimestamp",
            "namespace",
            "name",
            "generation",
            "resourceVersion",
        ] {
            match old["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        if new == old {
            return Ok(old);
        }
        if spec_part(&new) != spec_part(&old) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            new["metadata"]["generation"] = json!(g + 1);
        }
        inner.rv += 1;
        new["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        inner.objects.insert(key, new.clone());
        self.record(&mut inner, "MODIFIED", t, new.clone());
        Ok(new)
    }

    /// Server-side apply: create when absent, else merge the applied configuration. The
    /// status of kinds with a status subresource is never written through the main resource.
    pub fn apply(
        &self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        mut applied: Value,
    ) -> Result<(Value, bool), Refusal> {
        if t.status
            && let Some(m) = applied.as_object_mut()
        {
            m.remove("status");
        }
        if self.get(t, ns, name).is_none() {
            return self.create(t, ns, applied).map(|o| (o, true));
        }
        self.update(t, ns, name, |old| {
            let mut new = old.clone();
            apply_merge(&mut new, &applied);
            Ok(new)
        })
        .map(|o| (o, false))
    }

    /// Merge patch of the main resource (status preserved for kinds with a status subresource)
    /// or of the status subresource (only status taken).
    pub fn patch(
        &self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        patch: &Value,
        status_only: bool,
    ) -> Result<Value, Refusal> {
        self.update(t, ns, name, |old| {
            let mut new = old.clone();
            merge_patch(&mut new, patch);
            if status_only {
                let mut only = old.clone();
                only["status"] = new.get("status").cloned().unwrap_or(Value::Null);
                return Ok(only);
            }
            if t.status {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            Ok(new)
        })
    }

    /// Replace the whole status (what a controller's status update does).
    pub fn set_status(
        &self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        status: Value,
    ) -> Result<Value, Refusal> {
        self.update(t, ns, name, |old| {
            let mut new = old.clone();
            new["status"] = status;
            Ok(new)
        })
    }

    /// Remove at once (the double has no finalizers); a namespace takes its objects with it.
    pub fn delete(&self, t: &ResourceType, ns: &str, name: &str) -> Result<Value, Refusal> {
        let mut inner = self.inner.lock().unwrap();
        let key = (
            t.group.clone(),
            t.plural.clone(),
            ns.to_string(),
            name.to_string(),
        );
        let Some(obj) = inner.objects.remove(&key) else {
            return Err(Refusal::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", t.plural),
            ));
        };
        if t.kind == "Namespace" && t.group.is_empty() {
            let contained: Vec<Key> = inner
                .objects
                .keys()
                .filter(|k| k.2 == name)
                .cloned()
                .collect();
            for k in contained {
                if let Some(mut o) = inner.objects.remove(&k) {
                    inner.rv += 1;
                    o["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
                    let ct = ResourceType {
                        group: k.0.clone(),
                        plural: k.1.clone(),
                        ..t.clone()
                    };
                    self.record(&mut inner, "DELETED", &ct, o);
                }
            }
        }
        inner.rv += 1;
        let mut obj = obj;
        obj["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.record(&mut inner, "DELETED", t, obj.clone());
        Ok(obj)
    }

    /// Changes of one type after `since`, and a receiver for later ones, taken atomically.
    pub fn subscribe(
        &self,
        group: &str,
        plural: &str,
        since: u64,
    ) -> (Vec<Change>, broadcast::Receiver<Change>) {
        let inner = self.inner.lock().unwrap();
        let rx = self.tx.subscribe();
        let replay = inner
            .log
            .iter()
            .filter(|c| c.rv > since && c.group == group && c.plural == plural)
            .cloned()
            .collect();
        (replay, rx)
    }

    /// A receiver of every change (for the scripted controller).
    pub fn subscribe_all(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    pub fn set_pod_log(&self, ns: &str, pod: &str, text: &str) {
        self.inner
            .lock()
            .unwrap()
            .pod_logs
            .insert((ns.into(), pod.into()), text.into());
    }

    pub fn pod_log(&self, ns: &str, pod: &str) -> Option<String> {
        self.inner
            .lock()
            .unwrap()
            .pod_logs
            .get(&(ns.into(), pod.into()))
            .cloned()
    }

    /// Every stored object (for assertions such as "the canary appears nowhere").
    pub fn dump(&self) -> Vec<Value> {
        self.inner
            .lock()
            .unwrap()
            .objects
            .values()
            .cloned()
            .collect()
    }
}

/// The object as served for this type (apiVersion of the requested version).
fn typed(obj: &Value, t: &ResourceType) -> Value {
    let mut o = obj.clone();
    o["apiVersion"] = json!(t.api_version());
    o["kind"] = json!(t.kind);
    o
}
