//! TEST DOUBLE storage: one ordered map of objects keyed by (group, resource, namespace, name),
//! a monotonically increasing resourceVersion, `generation` bumps on spec changes, and an event
//! log that watches replay from any resourceVersion before following live changes. Custom
//! resources are checked against their CRD's structural schema through the production
//! `k8s::schema` module, as the API server does: server-side apply rejects unknown fields,
//! other writes honour `fieldValidation` (Strict rejects, Warn/Ignore prune), status writes are
//! always pruned to the schema, defaults are filled in. Objects with finalizers are only marked
//! for deletion (`deletionTimestamp`) until their finalizers are removed.

use flux_compat::k8s::schema::{self, CrdSchema};
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
        builtin("", "v1", "ResourceQuota", "resourcequotas", true, true),
        builtin("", "v1", "Node", "nodes", false, true),
        builtin("", "v1", "Endpoints", "endpoints", true, false),
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
    /// CRD schemas by (group, plural), read from the stored CRDs.
    schemas: HashMap<(String, String), CrdSchema>,
}

/// How strictly a write treats fields its schema does not declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown fields are an error (server-side apply always; `fieldValidation=Strict`).
    Strict,
    /// Unknown fields are dropped (the server default for other writes, `Warn`/`Ignore`).
    Prune,
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

    /// Create; refuses when it exists or its namespace does not. Undeclared fields are pruned.
    pub fn create(&self, t: &ResourceType, ns: &str, obj: Value) -> Result<Value, Refusal> {
        self.create_with(t, ns, obj, FieldValidation::Prune)
    }

    /// Create with the given field validation.
    pub fn create_with(
        &self,
        t: &ResourceType,
        ns: &str,
        mut obj: Value,
        mode: FieldValidation,
    ) -> Result<Value, Refusal> {
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
        if t.status
            && let Some(m) = obj.as_object_mut()
        {
            // The status of a kind with a status subresource is never set on create.
            m.remove("status");
        }
        let mut obj = typed(&obj, t);
        secret_string_data(&mut obj);
        admit(&inner, t, &mut obj, mode, false)?;
        inner.objects.insert(key, obj.clone());
        if is_crd(t) {
            refresh_schema(&mut inner, &obj);
        }
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
        self.update_with(t, ns, name, FieldValidation::Prune, false, change)
    }

    /// [`Store::update`] with field validation; `status_write`: only the status changed (status
    /// subresource or a controller's status update), pruned to the schema whatever the mode.
    pub fn update_with(
        &self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        mode: FieldValidation,
        status_write: bool,
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
        secret_string_data(&mut new);
        admit(&inner, t, &mut new, mode, status_write)?;
        // Removing the last finalizer of an object marked for deletion deletes it.
        if new.pointer("/metadata/deletionTimestamp").is_some()
            && new
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(|f| f.is_empty())
        {
            drop(inner);
            return self.remove(t, ns, name);
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
        if is_crd(t) {
            refresh_schema(&mut inner, &new);
        }
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
            return self
                .create_with(t, ns, applied, FieldValidation::Strict)
                .map(|o| (o, true));
        }
        self.update_with(t, ns, name, FieldValidation::Strict, false, |old| {
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
        self.patch_with(t, ns, name, patch, status_only, FieldValidation::Prune)
    }

    /// [`Store::patch`] with field validation (`fieldValidation=Strict` rejects unknown fields).
    pub fn patch_with(
        &self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        patch: &Value,
        status_only: bool,
        mode: FieldValidation,
    ) -> Result<Value, Refusal> {
        self.update_with(t, ns, name, mode, status_only, |old| {
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
        self.update_with(t, ns, name, FieldValidation::Prune, true, |old| {
            let mut new = old.clone();
            new["status"] = status;
            Ok(new)
        })
    }

    /// Delete: an object with finalizers is only marked (`deletionTimestamp`) until its
    /// controller removes them; others go at once. A namespace takes its objects with it (the
    /// namespace controller deletes them; objects with finalizers are marked and stay until
    /// their controllers let them go).
    pub fn delete(&self, t: &ResourceType, ns: &str, name: &str) -> Result<Value, Refusal> {
        let current = self.get(t, ns, name).ok_or_else(|| {
            Refusal::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", t.plural),
            )
        })?;
        let finalizers = current
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if finalizers {
            if current.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(current);
            }
            return self.update(t, ns, name, |old| {
                let mut new = old.clone();
                new["metadata"]["deletionTimestamp"] = json!(now());
                Ok(new)
            });
        }
        if t.kind == "Namespace" && t.group.is_empty() {
            self.mark_namespace_contents(name);
        }
        self.remove(t, ns, name)
    }

    /// Mark every object of a namespace that has finalizers for deletion; the rest go with
    /// the namespace.
    fn mark_namespace_contents(&self, namespace: &str) {
        let marked: Vec<(Key, Value)> = {
            let inner = self.inner.lock().unwrap();
            inner
                .objects
                .iter()
                .filter(|(k, o)| {
                    k.2 == namespace
                        && o.pointer("/metadata/finalizers")
                            .and_then(Value::as_array)
                            .is_some_and(|f| !f.is_empty())
                })
                .map(|(k, o)| (k.clone(), o.clone()))
                .collect()
        };
        for (k, o) in marked {
            if let Some(t) = self.find_kind(
                o["apiVersion"].as_str().unwrap_or_default(),
                o["kind"].as_str().unwrap_or_default(),
            ) {
                let _ = self.delete(&t, &k.2, &k.3);
            }
        }
    }

    /// Remove at once; a namespace takes its objects with it.
    fn remove(&self, t: &ResourceType, ns: &str, name: &str) -> Result<Value, Refusal> {
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
                .iter()
                .filter(|(k, o)| k.2 == name && o.pointer("/metadata/deletionTimestamp").is_none())
                .map(|(k, _)| k.clone())
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
        if is_crd(t) {
            let group = obj
                .pointer("/spec/group")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let plural = obj
                .pointer("/spec/names/plural")
                .and_then(Value::as_str)
                .unwrap_or_default();
            inner
                .schemas
                .remove(&(group.to_string(), plural.to_string()));
        }
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

fn is_crd(t: &ResourceType) -> bool {
    t.group == "apiextensions.k8s.io" && t.plural == "customresourcedefinitions"
}

fn refresh_schema(inner: &mut Inner, crd: &Value) {
    if let Ok(c) = CrdSchema::from_crd(crd) {
        inner.schemas.insert((c.group.clone(), c.plural.clone()), c);
    }
}

/// The API server's checks of a custom resource write against its CRD's schema: on a main
/// write, strict mode refuses unknown fields (server-side apply reports them as "field not
/// declared in schema"), any mode refuses values the schema forbids, prune mode drops unknown
/// fields; a status write is pruned to the schema. Defaults are filled in either way.
fn admit(
    inner: &Inner,
    t: &ResourceType,
    obj: &mut Value,
    mode: FieldValidation,
    status_write: bool,
) -> Result<(), Refusal> {
    let Some(crd) = inner.schemas.get(&(t.group.clone(), t.plural.clone())) else {
        return Ok(());
    };
    let Some(version) = crd.served(&t.version) else {
        return Ok(());
    };
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if status_write {
        if let Some(status) = obj.get_mut("status") {
            let status_schema = schema::status_schema(&version.schema);
            schema::prune(&status_schema, status);
            schema::default(&status_schema, status);
        }
        return Ok(());
    }
    let errors = schema::validate(&version.schema, obj);
    let (unknown, invalid): (Vec<_>, Vec<_>) = errors
        .into_iter()
        .filter(|e| !e.path.starts_with("status"))
        .partition(|e| e.problem == schema::Problem::Unknown);
    if mode == FieldValidation::Strict && !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        return Err(Refusal::new(
            400,
            "BadRequest",
            format!(
                "failed to create typed patch object ({}/{}, Kind={}) {name}: {}",
                t.group,
                t.version,
                t.kind,
                list.join(", ")
            ),
        ));
    }
    if !invalid.is_empty() {
        let list: Vec<String> = invalid.iter().map(ToString::to_string).collect();
        return Err(Refusal::new(
            422,
            "Invalid",
            format!(
                "{}.{} \"{name}\" is invalid: [{}]",
                t.kind,
                t.group,
                list.join(", ")
            ),
        ));
    }
    schema::prune(&version.schema, obj);
    schema::default(&version.schema, obj);
    Ok(())
}

/// The API server stores a Secret's `stringData` as base64 `data` and never returns it.
fn secret_string_data(obj: &mut Value) {
    use base64::Engine as _;
    if obj.get("kind").and_then(Value::as_str) != Some("Secret") {
        return;
    }
    let Some(Value::Object(plain)) = obj.as_object_mut().and_then(|m| m.remove("stringData"))
    else {
        return;
    };
    let data = obj["data"]
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut data = data;
    for (k, v) in plain {
        let text = v.as_str().unwrap_or_default().to_string();
        data.insert(
            k,
            Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
        );
    }
    obj["data"] = Value::Object(data);
}
