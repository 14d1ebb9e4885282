//! TEST DOUBLE Flux controllers: imitations of source-controller, kustomize-controller,
//! helm-controller, notification-controller, the image controllers and source-watcher, each
//! following the real controller (the file it follows is cited at each behaviour). A controller
//! runs only while its Deployment from the installed manifests is Available in `flux-system`
//! (so install, upgrade and uninstall matter), reconciles on spec changes, on
//! `reconcile.fluxcd.io/requestedAt`, when a source it uses produces a new artifact, and again
//! after its interval, which the double runs faster by [`TIME_SCALE`] (a requeue, not a sleep
//! in a test). They fetch from the fixture plane for real (git CLI over smart HTTP, Helm index
//! and charts, OCI registry API) and apply what they build into the double's store.

pub mod common;
pub mod helm;
pub mod image;
pub mod kubelet;
pub mod kustomize;
pub mod notify;
pub mod rbac;
pub mod source;
pub mod watcher;

use super::controller::Script;
use super::store::{Change, Store};
use common::{Ctx, ObjKey};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Intervals of Flux objects run this many times faster in the double (1m becomes 0.5s).
pub const TIME_SCALE: u32 = 120;

/// The controller owning a kind, as installed (`app` label / Deployment name).
pub fn controller_of(group: &str, kind: &str) -> Option<&'static str> {
    Some(match (group, kind) {
        ("source.toolkit.fluxcd.io", _) => "source-controller",
        ("kustomize.toolkit.fluxcd.io", _) => "kustomize-controller",
        ("helm.toolkit.fluxcd.io", _) => "helm-controller",
        ("notification.toolkit.fluxcd.io", _) => "notification-controller",
        ("image.toolkit.fluxcd.io", "ImageUpdateAutomation") => "image-automation-controller",
        ("image.toolkit.fluxcd.io", _) => "image-reflector-controller",
        ("source.extensions.fluxcd.io", _) => "source-watcher",
        _ => return None,
    })
}

/// Start the imitation controllers on `store`.
pub fn spawn(
    store: Arc<Store>,
    script: Arc<Mutex<Script>>,
    tools: common::Tools,
) -> tokio::task::JoinHandle<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ObjKey>();
    let ctx = Arc::new(Ctx::new(store.clone(), script, tools, tx));
    let mut changes = store.subscribe_all();
    let watch_ctx = ctx.clone();
    // What each object was last reconciled for: (generation, requestedAt, deleting).
    let seen: Arc<Mutex<HashMap<String, Seen>>> = Arc::default();
    let watch = tokio::spawn(async move {
        loop {
            let change = match changes.recv().await {
                Ok(c) => c,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            on_change(&watch_ctx, &seen, &change);
        }
    });
    tokio::spawn(async move {
        let running: Arc<Mutex<HashSet<ObjKey>>> = Arc::default();
        let dirty: Arc<Mutex<HashSet<ObjKey>>> = Arc::default();
        while let Some(key) = rx.recv().await {
            if !running.lock().unwrap().insert(key.clone()) {
                dirty.lock().unwrap().insert(key);
                continue;
            }
            let (ctx, running, dirty) = (ctx.clone(), running.clone(), dirty.clone());
            tokio::spawn(async move {
                loop {
                    reconcile(&ctx, &key).await;
                    if !dirty.lock().unwrap().remove(&key) {
                        break;
                    }
                }
                running.lock().unwrap().remove(&key);
            });
        }
        watch.abort();
    })
}

/// What an object was last reconciled for: (generation, requestedAt, being deleted).
type Seen = (i64, String, bool);

fn on_change(ctx: &Arc<Ctx>, seen: &Mutex<HashMap<String, Seen>>, change: &Change) {
    let o = &change.object;
    if change.group == "apps" && change.plural == "deployments" {
        // A controller that starts (or restarts on another version) lists its objects.
        if common::meta(o, "namespace") == common::FLUX_NAMESPACE {
            ctx.enqueue_all_of(common::meta(o, "name"));
        }
        return;
    }
    if change.kind == "DELETED" {
        return;
    }
    if change.kind == "ADDED"
        && change.group.is_empty()
        && change.plural == "pods"
        && o.pointer("/metadata/labels")
            .and_then(|l| l.get(flux_compat::k8s::probe::PROBE_LABEL))
            .is_some()
    {
        let (ctx, pod) = (ctx.clone(), o.clone());
        tokio::spawn(async move { kubelet::run_probe(&ctx, &pod).await });
        return;
    }
    let kind = o["kind"].as_str().unwrap_or_default();
    if controller_of(&change.group, kind).is_none() {
        return;
    }
    let uid = common::meta(o, "uid").to_string();
    let state = (
        common::generation(o),
        common::requested_at(o).unwrap_or_default().to_string(),
        o.pointer("/metadata/deletionTimestamp").is_some(),
    );
    let new = seen.lock().unwrap().insert(uid, state.clone()) != Some(state);
    if new {
        ctx.enqueue(ObjKey::of(o));
    }
    // A new artifact wakes what consumes it (the controllers' source watches).
    if o.pointer("/status/artifact/revision").is_some()
        || matches!(kind, "ImagePolicy" | "ImageRepository")
    {
        for dependent in common::dependents(ctx, o) {
            ctx.enqueue(dependent);
        }
    }
}

async fn reconcile(ctx: &Arc<Ctx>, key: &ObjKey) {
    let Some(obj) = ctx.get(key) else { return };
    let group = key.group();
    let Some(controller) = controller_of(group, &key.kind) else {
        return;
    };
    if !ctx.controller_running(controller) {
        return;
    }
    if let Some(fault) = ctx.fault(&key.name) {
        common::report_fault(ctx, &obj, controller, &fault);
        return;
    }
    let requeue: Option<Duration> = match (group, key.kind.as_str()) {
        ("source.toolkit.fluxcd.io", "GitRepository") => source::git(ctx, &obj).await,
        ("source.toolkit.fluxcd.io", "HelmRepository") => source::helm_repository(ctx, &obj).await,
        ("source.toolkit.fluxcd.io", "HelmChart") => source::helm_chart(ctx, &obj).await,
        ("source.toolkit.fluxcd.io", "OCIRepository") => source::oci(ctx, &obj).await,
        ("kustomize.toolkit.fluxcd.io", "Kustomization") => kustomize::reconcile(ctx, &obj).await,
        ("helm.toolkit.fluxcd.io", "HelmRelease") => helm::reconcile(ctx, &obj).await,
        ("notification.toolkit.fluxcd.io", "Receiver") => notify::receiver(ctx, &obj),
        ("notification.toolkit.fluxcd.io", _) => None,
        ("image.toolkit.fluxcd.io", "ImageRepository") => image::repository(ctx, &obj).await,
        ("image.toolkit.fluxcd.io", "ImagePolicy") => image::policy(ctx, &obj),
        ("image.toolkit.fluxcd.io", "ImageUpdateAutomation") => image::automation(ctx, &obj).await,
        ("source.extensions.fluxcd.io", "ArtifactGenerator") => watcher::generator(ctx, &obj).await,
        _ => None,
    };
    if let Some(after) = requeue {
        ctx.requeue_after(key.clone(), ctx.backoff(key, after));
    }
}

/// The interval of an object as the double runs it (`spec.interval` / [`TIME_SCALE`]).
pub fn scaled(interval: &str) -> Duration {
    let d = humantime::parse_duration(interval).unwrap_or(Duration::from_secs(60));
    (d / TIME_SCALE).max(Duration::from_millis(20))
}

/// `spec.interval` of an object, scaled.
pub fn interval_of(obj: &Value) -> Duration {
    scaled(
        obj.pointer("/spec/interval")
            .and_then(Value::as_str)
            .unwrap_or("1m"),
    )
}
