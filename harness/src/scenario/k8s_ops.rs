//! `KubeOps` over the `k8s` module: the engine's cluster operations mapped onto server-side
//! apply, get/list/delete/merge-patch and watch-based waits, with kube errors sorted into the
//! product's (`Misbehaved`/`NotFound`) and the harness's (`Infra`).

use super::ops::{
    Check, KubeOps, ListQuery, ObjectKey, Observed, OpsError, Target, Verdict, WaitOutcome,
};
use crate::errors::chain;
use crate::k8s::{self, ApplyError, ApplyOptions, Kube, WaitError};
use futures::StreamExt;
use kube::api::DynamicObject;
use kube::runtime::watcher;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

fn to_ref(k: &ObjectKey) -> k8s::ObjectRef {
    k8s::ObjectRef::new(&k.api_version, &k.kind, k.namespace.as_deref(), &k.name)
}

fn to_key(r: &k8s::ObjectRef) -> ObjectKey {
    ObjectKey {
        api_version: r.api_version.clone(),
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
    }
}

fn object_error(action: &str, e: k8s::ObjectError) -> OpsError {
    if e.is_unreachable() {
        OpsError::infra(action, chain(&e))
    } else {
        // The API server answered and refused (validation, RBAC, unknown kind): what the product
        // under test accepts is the question being asked.
        OpsError::Misbehaved(chain(&e))
    }
}

impl KubeOps for Kube {
    async fn apply(
        &self,
        objects: &[Value],
        default_namespace: Option<&str>,
    ) -> Result<Vec<ObjectKey>, OpsError> {
        let mut dynamic = Vec::with_capacity(objects.len());
        for o in objects {
            let d: DynamicObject = serde_json::from_value(o.clone())
                .map_err(|e| OpsError::infra("convert manifest", e))?;
            dynamic.push(d);
        }
        let options = ApplyOptions {
            default_namespace: default_namespace.map(str::to_string),
            ..ApplyOptions::default()
        };
        match self.apply_objects(dynamic, &options).await {
            Ok(applied) => Ok(applied.iter().map(to_key).collect()),
            Err(e) if e.is_unreachable() => Err(OpsError::infra("apply", chain(&e))),
            Err(e @ ApplyError::Parse(_)) => Err(OpsError::infra("apply", chain(&e))),
            Err(e) => Err(OpsError::Misbehaved(chain(&e))),
        }
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Value>, OpsError> {
        match k8s::Kube::get(self, &to_ref(key)).await {
            Ok(o) => Ok(o.as_ref().map(k8s::objects::to_value)),
            Err(e) => Err(object_error("get", e)),
        }
    }

    async fn list(&self, q: &ListQuery) -> Result<Vec<Value>, OpsError> {
        k8s::Kube::list(
            self,
            &q.api_version,
            &q.kind,
            q.namespace.as_deref(),
            q.label_selector.as_deref(),
        )
        .await
        .map(|items| items.iter().map(k8s::objects::to_value).collect())
        .map_err(|e| object_error("list", e))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), OpsError> {
        match k8s::Kube::delete(self, &to_ref(key)).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(OpsError::NotFound(key.to_string())),
            Err(e) => Err(object_error("delete", e)),
        }
    }

    async fn patch_merge(&self, key: &ObjectKey, patch: &Value) -> Result<(), OpsError> {
        match self.merge_patch(&to_ref(key), patch).await {
            Ok(_) => Ok(()),
            Err(k8s::ObjectError::Api {
                source: kube::Error::Api(s),
                ..
            }) if s.code == 404 => Err(OpsError::NotFound(key.to_string())),
            Err(e) => Err(object_error("merge-patch", e)),
        }
    }

    async fn post_service(
        &self,
        namespace: &str,
        service: &str,
        path: &str,
    ) -> Result<u16, OpsError> {
        let uri = format!(
            "/api/v1/namespaces/{namespace}/services/{service}/proxy/{}",
            path.trim_start_matches('/')
        );
        let request = http::Request::post(&uri)
            .header("content-type", "application/json")
            .body(b"{}".to_vec())
            .map_err(|e| OpsError::infra("build proxy request", e))?;
        match self.client().request_text(request).await {
            Ok(_) => Ok(200),
            // The receiver (or the proxy) answered with a status: the caller judges it.
            Err(kube::Error::Api(s)) => Ok(s.code),
            Err(e) => Err(OpsError::infra(format!("POST {uri}"), chain(&e))),
        }
    }

    async fn wait(
        &self,
        target: &Target,
        check: Check<'_>,
        timeout: Duration,
    ) -> Result<WaitOutcome, OpsError> {
        match target {
            Target::Object(key) => {
                let r = to_ref(key);
                let object = r.to_string();
                let result = self
                    .wait_for(&r, "reach the expected state", timeout, |obj| {
                        match check(Observed::Object(obj)) {
                            Verdict::Done => k8s::Verdict::Done(()),
                            Verdict::Pending(m) => k8s::Verdict::Pending(m),
                            Verdict::Failed(m) => k8s::Verdict::Fail(WaitError::Failed {
                                object: object.clone(),
                                reason: String::new(),
                                message: m,
                            }),
                        }
                    })
                    .await;
                match result {
                    Ok(()) => Ok(WaitOutcome::Done),
                    Err(WaitError::Failed { message, .. }) => Ok(WaitOutcome::Failed(message)),
                    Err(WaitError::Timeout { last, .. }) => Ok(WaitOutcome::TimedOut(last)),
                    Err(e) => Err(OpsError::infra("watch", chain(&e))),
                }
            }
            Target::List(q) => wait_list(self, q, check, timeout).await,
        }
    }
}

/// A list watch: one watcher over the kind (namespace and label selector applied), the current
/// set judged after the initial list and after every change. `k8s` watches single objects only.
async fn wait_list(
    kube: &Kube,
    q: &ListQuery,
    check: Check<'_>,
    timeout: Duration,
) -> Result<WaitOutcome, OpsError> {
    let api = match q.namespace.as_deref() {
        Some(ns) => kube.api(&q.api_version, &q.kind, Some(ns), "*").await,
        None => kube.api_all(&q.api_version, &q.kind).await,
    }
    .map_err(|e| OpsError::infra(format!("watch {}", q.kind), chain(&e)))?
    .0;
    let mut config = watcher::Config::default();
    if let Some(sel) = &q.label_selector {
        config = config.labels(sel);
    }
    let mut last = "not observed yet".to_string();
    let watch = async {
        let mut stream = watcher(api, config).boxed();
        let mut current: BTreeMap<String, Value> = BTreeMap::new();
        let mut initial: BTreeMap<String, Value> = BTreeMap::new();
        let key = |o: &DynamicObject| {
            format!(
                "{}/{}",
                o.metadata.namespace.as_deref().unwrap_or(""),
                o.metadata.name.as_deref().unwrap_or("")
            )
        };
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Init) => {
                    initial.clear();
                    continue;
                }
                Ok(watcher::Event::InitApply(o)) => {
                    initial.insert(key(&o), k8s::objects::to_value(&o));
                    continue;
                }
                Ok(watcher::Event::InitDone) => current = std::mem::take(&mut initial),
                Ok(watcher::Event::Apply(o)) => {
                    current.insert(key(&o), k8s::objects::to_value(&o));
                }
                Ok(watcher::Event::Delete(o)) => {
                    current.remove(&key(&o));
                }
                Err(watcher::Error::WatchError(s)) if s.code == 410 => continue,
                Err(e) => return Err(OpsError::infra(format!("watch {}", q.kind), chain(&e))),
            }
            let items: Vec<Value> = current.values().cloned().collect();
            match check(Observed::List(&items)) {
                Verdict::Done => return Ok(WaitOutcome::Done),
                Verdict::Failed(m) => return Ok(WaitOutcome::Failed(m)),
                Verdict::Pending(m) => last = m,
            }
        }
        Ok(WaitOutcome::TimedOut(format!("{last} (the watch ended)")))
    };
    match tokio::time::timeout(timeout, watch).await {
        Ok(r) => r,
        Err(_) => Ok(WaitOutcome::TimedOut(last)),
    }
}
