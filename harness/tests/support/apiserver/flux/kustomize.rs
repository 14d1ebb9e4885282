//! TEST DOUBLE kustomize-controller: dependencies, the source artifact, the kustomize build (the
//! real kustomize inside `kubectl kustomize`, on a kustomization generated the way
//! fluxcd/pkg kustomize/kustomize_generator.go generates one), server-side apply as the
//! impersonated ServiceAccount (RBAC checked), pruning by inventory, health checks, status and
//! events (internal/controller/kustomization_controller.go).

use super::common::{
    self, Ctx, condition, deleting, ensure_finalizer, event, generation, handled, meta,
    remove_finalizer, str_at,
};
use super::rbac::{self, User};
use serde_json::{Value, json};
use std::time::Duration;

const CONTROLLER: &str = "kustomize-controller";

fn fail(ctx: &Ctx, o: &Value, reason: &str, message: &str, revision: &str) -> Option<Duration> {
    let mut status = o.get("status").cloned().unwrap_or(json!({}));
    status["observedGeneration"] = json!(generation(o));
    if !revision.is_empty() {
        status["lastAttemptedRevision"] = json!(revision);
    }
    status["conditions"] = json!([
        condition(o, "Ready", false, reason, message),
        condition(o, "Reconciling", true, "ProgressingWithRetry", message)
    ]);
    handled(o, &mut status);
    ctx.set_status(o, status);
    event(ctx, o, true, reason, message, CONTROLLER);
    let retry = o.pointer("/spec/retryInterval").and_then(Value::as_str);
    Some(retry.map_or_else(|| super::interval_of(o), super::scaled))
}

/// The inventory entry id (fluxcd/pkg ssa/utils ObjMetadata: `<ns>_<name>_<group>_<kind>`).
fn entry_id(o: &Value) -> String {
    let api = o["apiVersion"].as_str().unwrap_or_default();
    let group = api.split_once('/').map_or("", |(g, _)| g);
    format!(
        "{}_{}_{}_{}",
        meta(o, "namespace"),
        meta(o, "name"),
        group,
        o["kind"].as_str().unwrap_or_default()
    )
}

pub async fn reconcile(ctx: &Ctx, o: &Value) -> Option<Duration> {
    if deleting(o) {
        if o.pointer("/spec/prune").and_then(Value::as_bool) == Some(true) {
            prune(ctx, o, &[]);
        }
        remove_finalizer(ctx, o);
        return None;
    }
    if o.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let o = &ensure_finalizer(ctx, o);
    let ns = meta(o, "namespace");
    // internal/controller/kustomization_controller.go checkDependencies.
    for dep in o
        .pointer("/spec/dependsOn")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let dep_ns = dep["namespace"].as_str().unwrap_or(ns);
        let dep_name = dep["name"].as_str().unwrap_or_default();
        let ready = ctx
            .get_kind(
                "kustomize.toolkit.fluxcd.io",
                "Kustomization",
                dep_ns,
                dep_name,
            )
            .is_some_and(|d| {
                flux_compat::k8s::status::readiness(&d) == flux_compat::k8s::Readiness::Ready
            });
        if !ready {
            let message = format!(
                "Dependencies do not meet ready condition, retrying in {}",
                o.pointer("/spec/retryInterval")
                    .and_then(Value::as_str)
                    .unwrap_or("30s")
            );
            let _ = fail(
                ctx,
                o,
                "DependencyNotReady",
                &format!("dependency '{dep_ns}/{dep_name}' is not ready"),
                "",
            );
            let _ = message;
            let retry = o.pointer("/spec/retryInterval").and_then(Value::as_str);
            return Some(retry.map_or_else(|| super::interval_of(o), super::scaled));
        }
    }
    let (kind, name) = (
        str_at(o, "/spec/sourceRef/kind"),
        str_at(o, "/spec/sourceRef/name"),
    );
    let src_ns = o
        .pointer("/spec/sourceRef/namespace")
        .and_then(Value::as_str)
        .unwrap_or(ns);
    // GitRepository, OCIRepository, Bucket and ExternalArtifact all live in source.toolkit.
    let group = "source.toolkit.fluxcd.io";
    let source = ctx.get_kind(group, kind, src_ns, name);
    let artifact = source
        .as_ref()
        .and_then(|s| s.pointer("/status/artifact").cloned());
    let Some(artifact) = artifact else {
        return fail(
            ctx,
            o,
            "ArtifactFailed",
            &format!(
                "Source artifact not found, retrying in {}",
                humantime::format_duration(Duration::from_secs(30))
            ),
            "",
        );
    };
    let revision = str_at(&artifact, "/revision").to_string();
    let Some(bytes) = ctx.artifacts.get(str_at(&artifact, "/url")) else {
        return fail(
            ctx,
            o,
            "ArtifactFailed",
            &format!(
                "failed to download artifact from {}: 404 Not Found",
                str_at(&artifact, "/url")
            ),
            &revision,
        );
    };
    let objects = match build(o, &bytes).await {
        Ok(objs) => objs,
        Err(e) => return fail(ctx, o, "BuildFailed", &e, &revision),
    };
    let user = o
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .map(|sa| User::service_account(ns, sa));
    let mut changes = Vec::new();
    let mut inventory = Vec::new();
    for obj in &objects {
        match apply(ctx, o, obj, user.as_ref()) {
            Ok(Some(change)) => changes.push(change),
            Ok(None) => {}
            Err(e) => return fail(ctx, o, "ReconciliationFailed", &e, &revision),
        }
        inventory.push(json!({"id": entry_id(obj), "v": obj["apiVersion"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or("v1")}));
    }
    if o.pointer("/spec/prune").and_then(Value::as_bool) == Some(true) {
        let kept: Vec<String> = objects.iter().map(entry_id).collect();
        changes.extend(prune(ctx, o, &kept));
    }
    if !changes.is_empty() {
        event(
            ctx,
            o,
            false,
            "Progressing",
            &changes.join("\n"),
            CONTROLLER,
        );
    }
    if let Err(e) = health(ctx, o, &objects).await {
        return fail(ctx, o, "HealthCheckFailed", &e, &revision);
    }
    let message = format!("Applied revision: {revision}");
    let mut status = json!({
        "observedGeneration": generation(o),
        "lastAppliedRevision": revision,
        "lastAttemptedRevision": revision,
        "inventory": {"entries": inventory},
        "conditions": [condition(o, "Ready", true, "ReconciliationSucceeded", &message)],
    });
    if o.pointer("/spec/wait").and_then(Value::as_bool) == Some(true)
        || o.pointer("/spec/healthChecks").is_some()
    {
        status["conditions"].as_array_mut().unwrap().push(condition(
            o,
            "Healthy",
            true,
            "Succeeded",
            "Health check passed",
        ));
    }
    handled(o, &mut status);
    ctx.set_status(o, status);
    let interval = o
        .pointer("/spec/interval")
        .and_then(Value::as_str)
        .unwrap_or("1m");
    event(
        ctx,
        o,
        false,
        "ReconciliationSucceeded",
        &format!("Reconciliation finished, next run in {interval}"),
        CONTROLLER,
    );
    Some(super::interval_of(o))
}

/// Unpack the artifact, generate `kustomization.yaml` where there is none (every `.yaml`/`.yml`
/// file under the path as a resource, `namespace` set to `targetNamespace`), and build it with
/// kustomize.
async fn build(o: &Value, artifact: &[u8]) -> Result<Vec<Value>, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    common::untar(artifact, work.path())?;
    let path = str_at(o, "/spec/path").trim_start_matches("./");
    let dir = work.path().join(path);
    if !dir.is_dir() {
        return Err(format!(
            "kustomization path not found: stat {}: no such file or directory",
            dir.display()
        ));
    }
    let target_ns = str_at(o, "/spec/targetNamespace");
    let existing = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file());
    let mut kus: Value = match &existing {
        Some(p) => serde_norway::from_str(&std::fs::read_to_string(p).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?,
        None => {
            let mut resources = Vec::new();
            scan(&dir, &dir, &mut resources);
            json!({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources})
        }
    };
    if !target_ns.is_empty() {
        kus["namespace"] = json!(target_ns);
    }
    let file = existing.unwrap_or_else(|| dir.join("kustomization.yaml"));
    std::fs::write(
        &file,
        serde_norway::to_string(&kus).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let out = tokio::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("run kustomize (kubectl kustomize): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "kustomize build failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    flux_compat::scenario::parse_manifests(&String::from_utf8_lossy(&out.stdout))
}

fn scan(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.join("kustomization.yaml").is_file() {
                out.push(format!("./{}", p.strip_prefix(base).unwrap().display()));
            } else {
                scan(base, &p, out);
            }
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(format!("./{}", p.strip_prefix(base).unwrap().display()));
        }
    }
}

/// Server-side apply of one object with the owner labels
/// (kustomization_controller.go: `kustomize.toolkit.fluxcd.io/name` and `/namespace`), checked
/// against the impersonated account's RBAC. The change line of the Progressing event.
fn apply(
    ctx: &Ctx,
    ks: &Value,
    obj: &Value,
    user: Option<&User>,
) -> Result<Option<String>, String> {
    let mut obj = obj.clone();
    let labels = obj["metadata"]
        .as_object_mut()
        .unwrap()
        .entry("labels")
        .or_insert(json!({}));
    labels["kustomize.toolkit.fluxcd.io/name"] = json!(meta(ks, "name"));
    labels["kustomize.toolkit.fluxcd.io/namespace"] = json!(meta(ks, "namespace"));
    let api = obj["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let Some(t) = ctx.kind(&api, &kind) else {
        return Err(format!(
            "{kind}/{} dry-run failed: no matches for kind \"{kind}\" in version \"{api}\"",
            meta(&obj, "name")
        ));
    };
    let name = meta(&obj, "name").to_string();
    let ns = if t.namespaced {
        meta(&obj, "namespace").to_string()
    } else {
        String::new()
    };
    let id = if ns.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}/{ns}/{name}")
    };
    if let Some(u) = user {
        let scope = (!ns.is_empty()).then_some(ns.as_str());
        let exists = ctx.store.get(&t, &ns, &name).is_some();
        let verb = if exists { "patch" } else { "create" };
        if !rbac::allowed(ctx, u, verb, &t.group, &t.plural, scope, &name) {
            return Err(format!(
                "{id} dry-run failed (Forbidden): {}",
                rbac::forbidden(u, "patch", &t.group, &t.plural, scope, &name)
            ));
        }
    }
    let before = ctx.store.get(&t, &ns, &name);
    match ctx.store.apply(&t, &ns, &name, obj) {
        Ok((_, true)) => Ok(Some(format!("{id} created"))),
        Ok((after, false)) => {
            Ok((before.as_ref() != Some(&after)).then(|| format!("{id} configured")))
        }
        Err(r) => Err(format!("{id} dry-run failed ({}): {}", r.reason, r.message)),
    }
}

/// Delete what the last inventory holds and `kept` does not (fluxcd/pkg ssa DeleteAll).
fn prune(ctx: &Ctx, ks: &Value, kept: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for e in ks
        .pointer("/status/inventory/entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = e["id"].as_str().unwrap_or_default();
        if kept.iter().any(|k| k == id) {
            continue;
        }
        let parts: Vec<&str> = id.splitn(4, '_').collect();
        let [ns, name, group, kind] = parts[..] else {
            continue;
        };
        let version = e["v"].as_str().unwrap_or("v1");
        let api = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        if let Some(t) = ctx.kind(&api, kind)
            && ctx.store.delete(&t, ns, name).is_ok()
        {
            out.push(if ns.is_empty() {
                format!("{kind}/{name} deleted")
            } else {
                format!("{kind}/{ns}/{name} deleted")
            });
        }
    }
    out
}

/// `spec.wait` (every applied object) or `spec.healthChecks`, judged with kstatus rules until
/// `spec.timeout` (default: the interval) passes.
async fn health(ctx: &Ctx, ks: &Value, applied: &[Value]) -> Result<(), String> {
    let mut targets: Vec<(String, String, String, String)> = Vec::new();
    if ks.pointer("/spec/wait").and_then(Value::as_bool) == Some(true) {
        for o in applied {
            targets.push((
                o["apiVersion"].as_str().unwrap_or_default().into(),
                o["kind"].as_str().unwrap_or_default().into(),
                meta(o, "namespace").into(),
                meta(o, "name").into(),
            ));
        }
    }
    for h in ks
        .pointer("/spec/healthChecks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        targets.push((
            h["apiVersion"].as_str().unwrap_or_default().into(),
            h["kind"].as_str().unwrap_or_default().into(),
            h["namespace"]
                .as_str()
                .unwrap_or(meta(ks, "namespace"))
                .into(),
            h["name"].as_str().unwrap_or_default().into(),
        ));
    }
    if targets.is_empty() {
        return Ok(());
    }
    let timeout = ks
        .pointer("/spec/timeout")
        .and_then(Value::as_str)
        .map(super::scaled)
        .unwrap_or_else(|| super::interval_of(ks))
        .max(Duration::from_secs(5));
    let objects: Vec<Value> = targets
        .into_iter()
        .map(|(api, kind, ns, name)| json!({"apiVersion": api, "kind": kind, "metadata": {"namespace": ns, "name": name}}))
        .collect();
    common::wait_ready(ctx, &objects, timeout)
        .await
        .map_err(|e| {
            format!(
                "health check failed after {}: {e}",
                humantime::format_duration(timeout)
            )
        })
}
