//! TEST DOUBLE source-watcher: an ArtifactGenerator copies files out of its sources' artifacts
//! into new artifacts and reconciles one ExternalArtifact per output
//! (internal/controller/artifactgenerator_controller.go reconcileExternalArtifact: applied with a
//! Ready=True "Artifact is ready" status; the revision `latest@<digest>` from
//! internal/builder/builder.go). Neither kind has `status.observedGeneration` in its real CRD:
//! what this writes there is pruned by the API server, as on a real cluster.

use super::common::{self, Ctx, condition, deleting, event, generation, handled, meta, str_at};
use serde_json::{Value, json};
use std::time::Duration;

const CONTROLLER: &str = "source-watcher";

fn fail(ctx: &Ctx, o: &Value, reason: &str, message: &str) -> Option<Duration> {
    let mut status = json!({"observedGeneration": generation(o), "conditions": [condition(o, "Ready", false, reason, message)]});
    handled(o, &mut status);
    ctx.set_status(o, status);
    event(ctx, o, true, reason, message, CONTROLLER);
    Some(Duration::from_millis(500))
}

pub async fn generator(ctx: &Ctx, o: &Value) -> Option<Duration> {
    if deleting(o) {
        common::remove_finalizer(ctx, o);
        return None;
    }
    let o = &common::ensure_finalizer(ctx, o);
    let ns = meta(o, "namespace");
    let work = tempfile::tempdir().expect("tempdir");
    for s in o
        .pointer("/spec/sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (alias, kind, name) = (str_at(s, "/alias"), str_at(s, "/kind"), str_at(s, "/name"));
        let art = ctx
            .get_kind(
                "source.toolkit.fluxcd.io",
                kind,
                s["namespace"].as_str().unwrap_or(ns),
                name,
            )
            .and_then(|src| {
                src.pointer("/status/artifact/url")
                    .and_then(Value::as_str)
                    .and_then(|u| ctx.artifacts.get(u))
            });
        let Some(bytes) = art else {
            return fail(
                ctx,
                o,
                "SourceFetchFailed",
                &format!("source {kind}/{ns}/{name} is not ready"),
            );
        };
        if let Err(e) = common::untar(&bytes, &work.path().join(alias)) {
            return fail(ctx, o, "SourceFetchFailed", &e);
        }
    }
    let Some(ea_type) = ctx
        .store
        .resource_types()
        .into_iter()
        .find(|t| t.group == "source.toolkit.fluxcd.io" && t.kind == "ExternalArtifact")
    else {
        return fail(
            ctx,
            o,
            "ReconciliationFailed",
            "the cluster serves no ExternalArtifact",
        );
    };
    let mut refs = Vec::new();
    for a in o
        .pointer("/spec/artifacts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_at(a, "/name");
        let out = work.path().join(format!("out-{name}"));
        let _ = std::fs::create_dir_all(&out);
        for c in a["copy"].as_array().into_iter().flatten() {
            let (from, to) = (str_at(c, "/from"), str_at(c, "/to"));
            let Some(rest) = from.strip_prefix('@') else {
                continue;
            };
            let (alias, path) = rest.split_once('/').unwrap_or((rest, ""));
            let src = work.path().join(alias).join(path);
            let dest_dir = out.join(to.trim_start_matches("@artifact").trim_start_matches('/'));
            let _ = std::fs::create_dir_all(&dest_dir);
            if let Some(file) = src.file_name()
                && std::fs::copy(&src, dest_dir.join(file)).is_err()
            {
                return fail(
                    ctx,
                    o,
                    "BuildFailed",
                    &format!("failed to copy '{from}': no such file"),
                );
            }
        }
        let bytes = common::tar_gz(&out);
        use sha2::Digest as _;
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
        let revision = format!("latest@{digest}");
        let ea = json!({"apiVersion": ea_type.api_version(), "kind": "ExternalArtifact",
            "metadata": {"name": name, "namespace": ns, "labels": {"app.kubernetes.io/managed-by": CONTROLLER, "source.extensions.fluxcd.io/generator": meta(o, "uid")}},
            "spec": {"sourceRef": {"apiVersion": o["apiVersion"], "kind": "ArtifactGenerator", "name": meta(o, "name"), "namespace": ns}}});
        let Ok((stored, _)) = ctx.store.apply(&ea_type, ns, name, ea) else {
            return fail(
                ctx,
                o,
                "ReconciliationFailed",
                "failed to apply ExternalArtifact",
            );
        };
        let art = common::artifact(
            ctx,
            CONTROLLER,
            "ExternalArtifact",
            &stored,
            &revision,
            &format!("{}.tar.gz", &digest[7..]),
            bytes,
        );
        let changed = str_at(&stored, "/status/artifact/digest") != digest;
        ctx.set_status(
            &stored,
            json!({"artifact": art, "observedGeneration": generation(&stored),
            "conditions": [condition(&stored, "Ready", true, "Succeeded", "Artifact is ready")]}),
        );
        if changed {
            event(
                ctx,
                o,
                false,
                "Ready",
                &format!("ExternalArtifact/{ns}/{name} reconciled with revision {revision}"),
                CONTROLLER,
            );
        }
        refs.push(json!({"name": name, "namespace": ns, "digest": digest, "filename": format!("{}.tar.gz", &digest[7..])}));
    }
    let message = format!(
        "reconciliation succeeded, generated {} artifact(s)",
        refs.len()
    );
    let mut status = json!({"observedGeneration": generation(o), "inventory": refs,
        "conditions": [condition(o, "Ready", true, "Succeeded", &message)]});
    handled(o, &mut status);
    ctx.set_status(o, status);
    Some(super::interval_of(o))
}
