//! TEST DOUBLE helm-controller: the HelmChart for `spec.chart` (internal/reconcile/helmchart_template.go),
//! the chart from its artifact or from `spec.chartRef`, the version rewrite for sources with
//! revision digests (`<version>+<first 12 hex of the digest>`, internal/controller/helmrelease_controller.go
//! mutateChartWithSourceRevision, not for HelmRepository charts), values merged and digested,
//! the action chosen by internal/reconcile/atomic_release.go (install, upgrade when the chart or
//! values changed, drift correction when `driftDetection.mode: enabled`), Helm release storage
//! Secrets (`sh.helm.release.v1.<name>.v<N>`), `status.history` snapshots, conditions and the
//! real messages ("Helm install succeeded for release <ns>/<name>.v<N> with chart <name>@<version>").
//! Rendering runs `fixtures/go/helmtemplate` (Go text/template, Helm's engine).

use super::common::{
    self, Ctx, condition, deleting, ensure_finalizer, event, generation, handled, meta,
    remove_finalizer, str_at,
};
use serde_json::{Map, Value, json};
use sha2::Digest as _;
use std::io::Read as _;
use std::time::Duration;

const CONTROLLER: &str = "helm-controller";
const SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";

fn fail(ctx: &Ctx, o: &Value, reason: &str, message: &str) -> Option<Duration> {
    let mut status = o.get("status").cloned().unwrap_or(json!({}));
    status["observedGeneration"] = json!(generation(o));
    status["conditions"] = json!([condition(o, "Ready", false, reason, message)]);
    handled(o, &mut status);
    ctx.set_status(o, status);
    event(ctx, o, true, reason, message, CONTROLLER);
    Some(super::interval_of(o).min(Duration::from_secs(2)))
}

/// The chart a HelmRelease uses: (archive, source revision, whether the source has revision digests).
fn chart_source(ctx: &Ctx, o: &Value) -> Result<(Vec<u8>, String, bool), String> {
    let ns = meta(o, "namespace");
    let (source, digests) = if let Some(r) = o.pointer("/spec/chartRef") {
        let kind = str_at(r, "/kind");
        let src_ns = r["namespace"].as_str().unwrap_or(ns);
        let name = str_at(r, "/name");
        let s = ctx
            .get_kind(SOURCE_GROUP, kind, src_ns, name)
            .ok_or_else(|| {
                format!("could not get Source object: {kind}.{SOURCE_GROUP} \"{name}\" not found")
            })?;
        // isSourceWithRevisionDigest: OCIRepository and ExternalArtifact.
        (s, matches!(kind, "OCIRepository" | "ExternalArtifact"))
    } else {
        let name = helm_chart(ctx, o)?;
        let src_ns = o
            .pointer("/spec/chart/spec/sourceRef/namespace")
            .and_then(Value::as_str)
            .unwrap_or(ns);
        let s = ctx
            .get_kind(SOURCE_GROUP, "HelmChart", src_ns, &name)
            .ok_or_else(|| format!("HelmChart '{src_ns}/{name}' is not ready"))?;
        (s, false)
    };
    let artifact = source.pointer("/status/artifact").ok_or_else(|| {
        format!(
            "HelmChart '{}/{}' is not ready: no artifact",
            meta(&source, "namespace"),
            meta(&source, "name")
        )
    })?;
    let bytes = ctx
        .artifacts
        .get(str_at(artifact, "/url"))
        .ok_or_else(|| "failed to download artifact: 404 Not Found".to_string())?;
    Ok((bytes, str_at(artifact, "/revision").to_string(), digests))
}

/// Create or update the HelmChart `<ns>-<name>` for `spec.chart` (internal/reconcile/helmchart_template.go).
fn helm_chart(ctx: &Ctx, o: &Value) -> Result<String, String> {
    let ns = meta(o, "namespace");
    let spec = o.pointer("/spec/chart/spec").ok_or("no chart spec")?;
    let src_ns = spec
        .pointer("/sourceRef/namespace")
        .and_then(Value::as_str)
        .unwrap_or(ns);
    let name = format!("{ns}-{}", meta(o, "name"));
    let mut chart_spec = json!({
        "chart": spec["chart"], "sourceRef": {"kind": spec["sourceRef"]["kind"], "name": spec["sourceRef"]["name"]},
        "interval": o.pointer("/spec/chart/spec/interval").cloned().unwrap_or(o["spec"]["interval"].clone()),
        "reconcileStrategy": spec.get("reconcileStrategy").cloned().unwrap_or(json!("ChartVersion")),
    });
    if let Some(v) = spec.get("version") {
        chart_spec["version"] = v.clone();
    }
    let t = ctx
        .store
        .resource_types()
        .into_iter()
        .find(|t| t.group == SOURCE_GROUP && t.kind == "HelmChart")
        .ok_or("the cluster serves no HelmChart")?;
    let body = json!({"apiVersion": t.api_version(), "kind": "HelmChart",
        "metadata": {"name": name, "namespace": src_ns, "labels": {"helm.toolkit.fluxcd.io/name": meta(o, "name"), "helm.toolkit.fluxcd.io/namespace": ns}},
        "spec": chart_spec});
    ctx.store
        .apply(&t, src_ns, &name, body)
        .map_err(|r| r.message)?;
    if str_at(o, "/status/helmChart") != format!("{src_ns}/{name}") {
        ctx.patch_status(o, json!({"helmChart": format!("{src_ns}/{name}")}));
    }
    Ok(name)
}

/// Files of a chart archive under its top directory.
fn chart_files(archive: &[u8]) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for e in tar.entries().map_err(|e| e.to_string())? {
        let mut e = e.map_err(|e| e.to_string())?;
        let path = e
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let Some((_, rel)) = path.split_once('/') else {
            continue;
        };
        let mut text = String::new();
        if e.read_to_string(&mut text).is_ok() {
            out.insert(rel.to_string(), json!(text));
        }
    }
    Ok(out)
}

/// Deep merge of values (Helm's chartutil.CoalesceTables, user values winning).
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn digest(v: &impl AsRef<[u8]>) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(v)))
}

struct Chart {
    name: String,
    version: String,
    app_version: String,
    templates: Map<String, Value>,
    values: Value,
}

fn load(archive: &[u8], revision: &str, digests: bool) -> Result<Chart, String> {
    let files = chart_files(archive)?;
    let meta: Value = serde_norway::from_str(
        files
            .get("Chart.yaml")
            .and_then(Value::as_str)
            .ok_or("chart has no Chart.yaml")?,
    )
    .map_err(|e| e.to_string())?;
    let mut version = meta["version"].as_str().unwrap_or_default().to_string();
    if digests {
        // `<tag>@sha256:<hex>` or `sha256:<hex>`: the first 12 hex digits become build metadata.
        let sha = revision.rsplit('@').next().unwrap_or(revision);
        let hex = sha.split_once(':').map_or(sha, |(_, h)| h);
        if hex.len() >= 12 {
            version = format!(
                "{}+{}",
                version.split('+').next().unwrap_or(&version),
                &hex[..12]
            );
        }
    }
    let values = files
        .get("values.yaml")
        .and_then(Value::as_str)
        .map(|t| serde_norway::from_str::<Value>(t).unwrap_or(json!({})))
        .unwrap_or(json!({}));
    let templates = files
        .into_iter()
        .filter(|(k, _)| k.starts_with("templates/"))
        .collect();
    Ok(Chart {
        name: meta["name"].as_str().unwrap_or_default().to_string(),
        version,
        app_version: meta["appVersion"].as_str().unwrap_or_default().to_string(),
        templates,
        values: if values.is_null() { json!({}) } else { values },
    })
}

async fn render(
    ctx: &Ctx,
    chart: &Chart,
    values: &Value,
    release: &Value,
) -> Result<String, String> {
    let bin = ctx
        .tools
        .helm_template
        .as_ref()
        .ok_or("the double was started without the helmtemplate renderer")?;
    let input = json!({"templates": chart.templates, "values": values,
        "chart": {"Name": chart.name, "Version": chart.version, "AppVersion": chart.app_version},
        "release": release});
    let mut child = tokio::process::Command::new(bin)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("run helmtemplate: {e}"))?;
    use tokio::io::AsyncWriteExt as _;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.to_string().as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    drop(stdin);
    let out = child.wait_with_output().await.map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn releases(ctx: &Ctx, ns: &str, name: &str) -> Vec<Value> {
    let Some(t) = ctx.kind("v1", "Secret") else {
        return Vec::new();
    };
    let mut list: Vec<Value> = ctx
        .store
        .list(&t, Some(ns))
        .0
        .into_iter()
        .filter(|s| {
            s["type"] == "helm.sh/release.v1"
                && s.pointer("/metadata/labels/name").and_then(Value::as_str) == Some(name)
        })
        .collect();
    list.sort_by_key(|s| {
        s.pointer("/metadata/labels/version")
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    });
    list
}

/// The stored release of a storage Secret (`data.release`: base64 of gzipped JSON, as Helm's
/// Secret driver stores it).
fn decode_release(secret: &Value) -> Option<Value> {
    use base64::Engine as _;
    let b64 = secret.pointer("/data/release").and_then(Value::as_str)?;
    let once = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let gz = base64::engine::general_purpose::STANDARD
        .decode(&once)
        .ok()?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_string(&mut text)
        .ok()?;
    serde_json::from_str(&text).ok()
}

fn encode_release(rel: &Value) -> String {
    use base64::Engine as _;
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = gz.write_all(rel.to_string().as_bytes());
    let inner = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap_or_default());
    base64::engine::general_purpose::STANDARD.encode(inner)
}

/// Objects of a release manifest, with the release namespace on namespaced objects (Helm's kube client).
fn objects(ctx: &Ctx, manifest: &str, ns: &str) -> Vec<Value> {
    flux_compat::scenario::parse_manifests(manifest)
        .unwrap_or_default()
        .into_iter()
        .map(|mut o| {
            let namespaced = ctx
                .kind(
                    o["apiVersion"].as_str().unwrap_or_default(),
                    o["kind"].as_str().unwrap_or_default(),
                )
                .is_some_and(|t| t.namespaced);
            if namespaced && o.pointer("/metadata/namespace").is_none() {
                o["metadata"]["namespace"] = json!(ns);
            }
            o
        })
        .collect()
}

fn apply_all(ctx: &Ctx, objs: &[Value]) -> Result<(), String> {
    for o in objs {
        let (api, kind) = (
            o["apiVersion"].as_str().unwrap_or_default(),
            o["kind"].as_str().unwrap_or_default(),
        );
        let t = ctx.kind(api, kind).ok_or_else(|| {
            format!("resource mapping not found for kind \"{kind}\" in version \"{api}\"")
        })?;
        let ns = if t.namespaced {
            meta(o, "namespace")
        } else {
            ""
        };
        ctx.store
            .apply(&t, ns, meta(o, "name"), o.clone())
            .map_err(|r| r.message)?;
    }
    Ok(())
}

fn delete_all(ctx: &Ctx, objs: &[Value]) {
    for o in objs {
        if let Some(t) = ctx.kind(
            o["apiVersion"].as_str().unwrap_or_default(),
            o["kind"].as_str().unwrap_or_default(),
        ) {
            let _ = ctx.store.delete(
                &t,
                if t.namespaced {
                    meta(o, "namespace")
                } else {
                    ""
                },
                meta(o, "name"),
            );
        }
    }
}

pub async fn reconcile(ctx: &Ctx, o: &Value) -> Option<Duration> {
    let (ns, name) = (
        meta(o, "namespace").to_string(),
        meta(o, "name").to_string(),
    );
    let storage_ns = o
        .pointer("/spec/storageNamespace")
        .and_then(Value::as_str)
        .unwrap_or(&ns)
        .to_string();
    let release_name = o
        .pointer("/spec/releaseName")
        .and_then(Value::as_str)
        .unwrap_or(&name)
        .to_string();
    let target_ns = o
        .pointer("/spec/targetNamespace")
        .and_then(Value::as_str)
        .unwrap_or(&ns)
        .to_string();
    if deleting(o) {
        // internal/reconcile/uninstall.go: the release's objects and its storage go.
        if let Some(last) = releases(ctx, &storage_ns, &release_name)
            .last()
            .and_then(decode_release)
        {
            delete_all(
                ctx,
                &objects(
                    ctx,
                    last["manifest"].as_str().unwrap_or_default(),
                    &target_ns,
                ),
            );
        }
        for s in releases(ctx, &storage_ns, &release_name) {
            if let Some(t) = ctx.kind("v1", "Secret") {
                let _ = ctx.store.delete(&t, &storage_ns, meta(&s, "name"));
            }
        }
        remove_finalizer(ctx, o);
        return None;
    }
    if o.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let o = &ensure_finalizer(ctx, o);
    let (archive, revision, digests) = match chart_source(ctx, o) {
        Ok(c) => c,
        Err(e) => return fail(ctx, o, "ArtifactFailed", &e),
    };
    let chart = match load(&archive, &revision, digests) {
        Ok(c) => c,
        Err(e) => {
            return fail(
                ctx,
                o,
                "ArtifactFailed",
                &format!("could not load chart: {e}"),
            );
        }
    };
    let mut values = chart.values.clone();
    if let Some(v) = o.pointer("/spec/values") {
        merge(&mut values, v);
    }
    let config_digest = digest(&values.to_string());
    let history = o
        .pointer("/status/history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let stored = releases(ctx, &storage_ns, &release_name);
    let current = stored.last().and_then(decode_release);
    let chart_digest = digest(&archive);
    let latest = history.first();
    let action = match (&current, latest) {
        (None, _) | (_, None) => "install",
        (Some(_), Some(h))
            if h["chartVersion"] != chart.version.as_str()
                || h["configDigest"] != config_digest.as_str()
                || h["digest"] != chart_digest.as_str() =>
        {
            "upgrade"
        }
        _ => "unchanged",
    };
    if action == "unchanged" {
        let drift = if str_at(o, "/spec/driftDetection/mode") == "enabled" {
            correct_drift(ctx, o, current.as_ref().expect("current"), &target_ns)
        } else {
            Vec::new()
        };
        let mut status = o["status"].clone();
        status["observedGeneration"] = json!(generation(o));
        status["lastAttemptedGeneration"] = json!(generation(o));
        handled(o, &mut status);
        ctx.set_status(o, status);
        if !drift.is_empty() {
            event(
                ctx,
                o,
                false,
                "DriftCorrected",
                &format!(
                    "Cluster state of release {ns}/{release_name}.v{} has been corrected:\n{}",
                    latest.map(|h| h["version"].clone()).unwrap_or_default(),
                    drift.join("\n")
                ),
                CONTROLLER,
            );
        }
        return Some(super::interval_of(o));
    }
    let version = current
        .as_ref()
        .and_then(|c| c["version"].as_i64())
        .unwrap_or(0)
        + 1;
    let release = json!({"Name": release_name, "Namespace": target_ns, "Revision": version,
        "IsInstall": action == "install", "IsUpgrade": action == "upgrade", "Service": "Helm"});
    let manifest = match render(ctx, &chart, &values, &release).await {
        Ok(m) => m,
        Err(e) => {
            return fail(
                ctx,
                o,
                if action == "install" {
                    "InstallFailed"
                } else {
                    "UpgradeFailed"
                },
                &format!(
                    "Helm {action} failed for release {target_ns}/{release_name} with chart {}@{}: {e}",
                    chart.name, chart.version
                ),
            );
        }
    };
    let new_objects = objects(ctx, &manifest, &target_ns);
    if let Err(e) = apply_all(ctx, &new_objects) {
        return fail(
            ctx,
            o,
            if action == "install" {
                "InstallFailed"
            } else {
                "UpgradeFailed"
            },
            &format!(
                "Helm {action} failed for release {target_ns}/{release_name} with chart {}@{}: {e}",
                chart.name, chart.version
            ),
        );
    }
    if let Some(old) = &current {
        let keep: Vec<(String, String, String)> = new_objects
            .iter()
            .map(|x| {
                (
                    x["kind"].as_str().unwrap_or_default().to_string(),
                    meta(x, "namespace").to_string(),
                    meta(x, "name").to_string(),
                )
            })
            .collect();
        let gone: Vec<Value> = objects(
            ctx,
            old["manifest"].as_str().unwrap_or_default(),
            &target_ns,
        )
        .into_iter()
        .filter(|x| {
            !keep.contains(&(
                x["kind"].as_str().unwrap_or_default().to_string(),
                meta(x, "namespace").to_string(),
                meta(x, "name").to_string(),
            ))
        })
        .collect();
        delete_all(ctx, &gone);
    }
    // Helm waits for the release's workloads (install/upgrade `disableWait: false`).
    let timeout = o
        .pointer("/spec/timeout")
        .and_then(Value::as_str)
        .map(super::scaled)
        .unwrap_or(Duration::from_secs(30))
        .max(Duration::from_secs(5));
    if let Err(e) = common::wait_ready(ctx, &new_objects, timeout).await {
        return fail(
            ctx,
            o,
            if action == "install" {
                "InstallFailed"
            } else {
                "UpgradeFailed"
            },
            &format!(
                "Helm {action} failed for release {target_ns}/{release_name} with chart {}@{}: {e}",
                chart.name, chart.version
            ),
        );
    }
    let now = super::super::store::now();
    let first = current
        .as_ref()
        .and_then(|c| c["info"]["first_deployed"].as_str().map(str::to_string))
        .unwrap_or_else(|| now.clone());
    let stored_release = json!({"name": release_name, "namespace": target_ns, "version": version, "manifest": manifest,
        "config": values, "chart": {"metadata": {"name": chart.name, "version": chart.version, "appVersion": chart.app_version}},
        "info": {"status": "deployed", "first_deployed": first, "last_deployed": now, "description": format!("{} complete", if action == "install" { "Install" } else { "Upgrade" })}});
    store_release(
        ctx,
        &storage_ns,
        &release_name,
        version,
        &stored_release,
        &stored,
    );
    let snapshot = json!({"name": release_name, "namespace": target_ns, "version": version, "status": "deployed",
        "chartName": chart.name, "chartVersion": chart.version, "appVersion": chart.app_version,
        "configDigest": config_digest, "digest": chart_digest, "firstDeployed": first, "lastDeployed": now});
    let mut new_history = vec![snapshot];
    new_history.extend(history.into_iter().take(4));
    let (reason, verb) = if action == "install" {
        ("InstallSucceeded", "install")
    } else {
        ("UpgradeSucceeded", "upgrade")
    };
    let message = format!(
        "Helm {verb} succeeded for release {target_ns}/{release_name}.v{version} with chart {}@{}",
        chart.name, chart.version
    );
    let mut status = o["status"].clone();
    if !status.is_object() {
        status = json!({});
    }
    status["observedGeneration"] = json!(generation(o));
    status["lastAttemptedGeneration"] = json!(generation(o));
    status["lastAttemptedRevision"] = json!(chart.version);
    status["lastAttemptedConfigDigest"] = json!(config_digest);
    status["lastAttemptedReleaseAction"] = json!(verb);
    status["storageNamespace"] = json!(storage_ns);
    status["history"] = json!(new_history);
    status["conditions"] = json!([
        condition(o, "Ready", true, reason, &message),
        condition(o, "Released", true, reason, &message)
    ]);
    handled(o, &mut status);
    ctx.set_status(o, status);
    event(ctx, o, false, reason, &message, CONTROLLER);
    Some(super::interval_of(o))
}

fn store_release(ctx: &Ctx, ns: &str, name: &str, version: i64, rel: &Value, previous: &[Value]) {
    let Some(t) = ctx.kind("v1", "Secret") else {
        return;
    };
    for p in previous {
        let _ = ctx.store.patch(
            &t,
            ns,
            meta(p, "name"),
            &json!({"metadata": {"labels": {"status": "superseded"}}}),
            false,
        );
    }
    let secret = format!("sh.helm.release.v1.{name}.v{version}");
    let _ = ctx.store.create(&t, ns, json!({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": secret, "namespace": ns, "labels": {"name": name, "owner": "helm", "status": "deployed", "version": version.to_string()}},
        "data": {"release": encode_release(rel)}}));
}

/// internal/action/diff.go + the CorrectClusterDrift action: objects of the release whose live
/// state differs from the rendered manifest are applied again; the changed objects.
fn correct_drift(ctx: &Ctx, o: &Value, current: &Value, ns: &str) -> Vec<String> {
    let _ = o;
    let mut corrected = Vec::new();
    for want in objects(ctx, current["manifest"].as_str().unwrap_or_default(), ns) {
        let Some(t) = ctx.kind(
            want["apiVersion"].as_str().unwrap_or_default(),
            want["kind"].as_str().unwrap_or_default(),
        ) else {
            continue;
        };
        let live_ns = if t.namespaced {
            meta(&want, "namespace")
        } else {
            ""
        };
        let live = ctx.store.get(&t, live_ns, meta(&want, "name"));
        let drifted = live.as_ref().is_none_or(|l| !contains(l, &want));
        if drifted {
            let _ = ctx
                .store
                .apply(&t, live_ns, meta(&want, "name"), want.clone());
            corrected.push(format!(
                "{} {}/{} changed",
                want["kind"].as_str().unwrap_or_default(),
                live_ns,
                meta(&want, "name")
            ));
        }
    }
    corrected
}

fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|x| contains(x, v))),
        (Value::Array(a), Value::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(x, y)| contains(x, y))
        }
        _ => actual == expected,
    }
}
