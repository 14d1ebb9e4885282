//! `KubeOps` over the `k8s` module: the engine's cluster operations mapped onto server-side
//! apply, get/list/delete/merge-patch and watch-based waits, with kube errors sorted into the
//! product's (`Misbehaved`/`NotFound`) and the harness's (`Infra`).

use super::ops::{
    Check, KubeOps, ListQuery, ObjectRef, Observed, OpsError, Target, Verdict, WaitOutcome,
};
use crate::errors::chain;
use crate::k8s::{self, ApplyError, ApplyOptions, Kube, WaitError};
use futures::StreamExt;
use kube::api::DynamicObject;
use kube::runtime::watcher;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

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
    ) -> Result<Vec<ObjectRef>, OpsError> {
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
            Ok(applied) => Ok(applied),
            Err(e) if e.is_unreachable() => Err(OpsError::infra("apply", chain(&e))),
            Err(e @ ApplyError::Parse(_)) => Err(OpsError::infra("apply", chain(&e))),
            Err(e) => Err(OpsError::Misbehaved(chain(&e))),
        }
    }

    async fn get(&self, key: &ObjectRef) -> Result<Option<Value>, OpsError> {
        match k8s::Kube::get(self, key).await {
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

    async fn delete(&self, key: &ObjectRef) -> Result<(), OpsError> {
        match k8s::Kube::delete(self, key).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(OpsError::NotFound(key.to_string())),
            Err(e) => Err(object_error("delete", e)),
        }
    }

    async fn patch_merge(&self, key: &ObjectRef, patch: &Value) -> Result<(), OpsError> {
        match self.merge_patch(key, patch).await {
            Ok(_) => Ok(()),
            Err(k8s::ObjectError::Api {
                source: kube::Error::Api(s),
                ..
            }) if s.code == 404 => Err(OpsError::NotFound(key.to_string())),
            Err(e) => Err(object_error("merge-patch", e)),
        }
    }

    async fn http_post_from_pod(
        &self,
        namespace: &str,
        url: &str,
    ) -> Result<Option<u16>, OpsError> {
        // No image to probe with, or no API to ask: the harness cannot send, whatever the product.
        let image = self
            .probe_image()
            .await
            .map_err(|e| OpsError::infra("find a probe image", chain(&e)))?;
        let suffix: u32 = rand_suffix();
        let spec = k8s::probe::ProbeSpec {
            namespace: namespace.to_string(),
            name: format!("flux-compat-probe-{suffix:08x}"),
            image,
            command: k8s::probe::http_post_command(url),
            purpose: "webhook".into(),
            timeout: Duration::from_secs(60),
        };
        match self.run_probe_pod(&spec).await {
            Ok(outcome) => Ok(k8s::probe::http_status(&outcome)),
            Err(e) => Err(OpsError::infra(format!("POST {url} from a pod"), chain(&e))),
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
                let result = self
                    .wait_for(key, "reach the expected state", timeout, |obj| {
                        check(Observed::Object(obj))
                    })
                    .await;
                match result {
                    Ok(()) => Ok(WaitOutcome::Done),
                    Err(WaitError::Failed {
                        reason, message, ..
                    }) => Ok(WaitOutcome::Failed(failure_text(&reason, &message))),
                    Err(WaitError::UnexpectedlyReady { .. }) => Ok(WaitOutcome::Failed(
                        "it became ready instead of failing".to_string(),
                    )),
                    Err(WaitError::Timeout { last, .. }) => Ok(WaitOutcome::TimedOut(last)),
                    Err(e) => Err(OpsError::infra("watch", chain(&e))),
                }
            }
            Target::List(q) => wait_list(self, q, check, timeout).await,
        }
    }
}

/// A short unique suffix for probe pod names (time-derived; names only need to differ per run).
fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or_default();
    nanos ^ std::process::id()
}

/// A failure as a step reports it: `Reason: message`, or the message alone for the engine's own.
fn failure_text(reason: &str, message: &str) -> String {
    match reason {
        "" | "Misuse" => message.to_string(),
        r => format!("{r}: {message}"),
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
                Verdict::Done(()) => return Ok(WaitOutcome::Done),
                Verdict::Failed(f) => {
                    return Ok(WaitOutcome::Failed(failure_text(&f.reason, &f.message)));
                }
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
