//! TEST DOUBLE image-reflector-controller and image-automation-controller: ImageRepository scans
//! the registry's tags (internal/controller/imagerepository_controller.go: `lastScanResult`,
//! "successful scan: found N tags with checksum ..."), ImagePolicy picks the newest tag in a
//! semver range (internal/controller/imagepolicy_controller.go: `latestRef`, "Latest image tag
//! for <image> resolved to <tag>"), ImageUpdateAutomation clones the GitRepository, rewrites the
//! fields marked `{"$imagepolicy": "<ns>:<policy>"}` (the Setters strategy), commits with the
//! author and message template and pushes (internal/controller/imageupdateautomation_controller.go:
//! `lastPushCommit`, "pushed commit '<sha>' to branch '<branch>'", else "repository up-to-date").

use super::common::{self, Ctx, condition, deleting, event, generation, handled, meta, str_at};
use super::source::{self, Registry};
use serde_json::{Value, json};
use sha2::Digest as _;
use std::time::Duration;

fn ready(
    ctx: &Ctx,
    o: &Value,
    mut status: Value,
    ok: bool,
    reason: &str,
    message: &str,
    controller: &str,
) {
    status["observedGeneration"] = json!(generation(o));
    status["conditions"] = json!([condition(o, "Ready", ok, reason, message)]);
    handled(o, &mut status);
    ctx.set_status(o, status);
    if !ok {
        event(ctx, o, true, reason, message, controller);
    }
}

pub async fn repository(ctx: &Ctx, o: &Value) -> Option<Duration> {
    const C: &str = "image-reflector-controller";
    if deleting(o) {
        common::remove_finalizer(ctx, o);
        return None;
    }
    let o = &common::ensure_finalizer(ctx, o);
    let image = str_at(o, "/spec/image");
    let (host, repo) = image.split_once('/').unwrap_or((image, ""));
    let ns = meta(o, "namespace");
    let files = common::tls_files(ctx, ns, str_at(o, "/spec/certSecretRef/name"))
        .with_registry_auth(ctx, ns, str_at(o, "/spec/secretRef/name"), host);
    match Registry::new(&files, host).tags(repo).await {
        Ok(tags) => {
            let mut sorted = tags.clone();
            sorted.sort();
            let checksum = hex::encode(sha2::Sha256::digest(sorted.join("\n")));
            let latest: Vec<String> = sorted.iter().rev().take(10).cloned().collect();
            let message = format!(
                "successful scan: found {} tags with checksum {checksum}",
                tags.len()
            );
            let status = json!({"canonicalImageName": image, "lastScanResult": {"tagCount": tags.len(), "scanTime": super::super::store::now(), "latestTags": latest}});
            ready(ctx, o, status, true, "Succeeded", &message, C);
        }
        Err(e) => ready(
            ctx,
            o,
            o.get("status").cloned().unwrap_or(json!({})),
            false,
            "ReconciliationFailed",
            &format!("scan failed: {e}"),
            C,
        ),
    }
    Some(super::interval_of(o))
}

/// Tags of a scanned repository (the reflector's database).
fn scanned_tags(repo: &Value) -> Vec<String> {
    repo.pointer("/status/lastScanResult/latestTags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

pub fn policy(ctx: &Ctx, o: &Value) -> Option<Duration> {
    const C: &str = "image-reflector-controller";
    let ns = meta(o, "namespace");
    let repo_name = str_at(o, "/spec/imageRepositoryRef/name");
    let Some(repo) = ctx.get_kind("image.toolkit.fluxcd.io", "ImageRepository", ns, repo_name)
    else {
        ready(
            ctx,
            o,
            json!({}),
            false,
            "DependencyNotReady",
            &format!("referenced ImageRepository '{ns}/{repo_name}' not found"),
            C,
        );
        return None;
    };
    if repo.pointer("/status/lastScanResult").is_none() {
        ready(
            ctx,
            o,
            json!({}),
            false,
            "DependencyNotReady",
            "referenced ImageRepository has not been scanned yet",
            C,
        );
        return None;
    }
    let range = str_at(o, "/spec/policy/semver/range");
    let Ok(req) = common::semver_constraint(range) else {
        ready(
            ctx,
            o,
            json!({}),
            false,
            "InvalidPolicy",
            &format!("invalid semver range '{range}'"),
            C,
        );
        return None;
    };
    let best = scanned_tags(&repo)
        .into_iter()
        .filter_map(|t| {
            semver::Version::parse(t.trim_start_matches('v'))
                .ok()
                .map(|v| (v, t))
        })
        .filter(|(v, _)| common::semver_matches(&req, v))
        .max_by(|a, b| a.0.cmp(&b.0));
    let image = str_at(&repo, "/status/canonicalImageName");
    match best {
        Some((_, tag)) => {
            let message = format!("Latest image tag for {image} resolved to {tag}");
            let status = json!({"latestRef": {"name": image, "tag": tag}});
            let changed = str_at(o, "/status/latestRef/tag") != tag;
            ready(ctx, o, status, true, "Succeeded", &message, C);
            if changed {
                event(ctx, o, false, "Succeeded", &message, C);
            }
        }
        None => ready(
            ctx,
            o,
            json!({}),
            false,
            "ReconciliationFailed",
            &format!("unable to determine latest version from provided list for range '{range}'"),
            C,
        ),
    }
    None
}

pub async fn automation(ctx: &Ctx, o: &Value) -> Option<Duration> {
    const C: &str = "image-automation-controller";
    if deleting(o) {
        common::remove_finalizer(ctx, o);
        return None;
    }
    let o = &common::ensure_finalizer(ctx, o);
    let ns = meta(o, "namespace");
    let git_name = str_at(o, "/spec/sourceRef/name");
    let Some(repo) = ctx.get_kind("source.toolkit.fluxcd.io", "GitRepository", ns, git_name) else {
        ready(
            ctx,
            o,
            json!({}),
            false,
            "SourceNotFound",
            &format!("referenced GitRepository '{ns}/{git_name}' not found"),
            C,
        );
        return Some(super::interval_of(o));
    };
    let url = str_at(&repo, "/spec/url");
    let branch = o
        .pointer("/spec/git/checkout/ref/branch")
        .and_then(Value::as_str)
        .or_else(|| repo.pointer("/spec/ref/branch").and_then(Value::as_str))
        .unwrap_or("main");
    let push_branch = o
        .pointer("/spec/git/push/branch")
        .and_then(Value::as_str)
        .unwrap_or(branch);
    let files = common::tls_files(ctx, ns, str_at(&repo, "/spec/secretRef/name"));
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("repo");
    if let Err(e) = source::clone(&files, url, branch, &dir).await {
        ready(
            ctx,
            o,
            o.get("status").cloned().unwrap_or(json!({})),
            false,
            "GitOperationFailed",
            &format!("failed to checkout source: {e}"),
            C,
        );
        return Some(super::interval_of(o));
    }
    let policies: Vec<Value> = ctx
        .store
        .resource_types()
        .into_iter()
        .filter(|t| t.group == "image.toolkit.fluxcd.io" && t.kind == "ImagePolicy")
        .flat_map(|t| ctx.store.list(&t, Some(ns)).0)
        .collect();
    let path = str_at(o, "/spec/update/path").trim_start_matches("./");
    let changed = set_images(&dir.join(path), &policies);
    let mut status = o.get("status").cloned().unwrap_or(json!({}));
    status["lastAutomationRunTime"] = json!(super::super::store::now());
    if changed.is_empty() {
        ready(
            ctx,
            o,
            status,
            true,
            "Succeeded",
            "repository up-to-date",
            C,
        );
        return Some(super::interval_of(o));
    }
    let author = (
        str_at(o, "/spec/git/commit/author/name"),
        str_at(o, "/spec/git/commit/author/email"),
    );
    let message = o
        .pointer("/spec/git/commit/messageTemplate")
        .and_then(Value::as_str)
        .unwrap_or("Update from image update automation")
        .to_string();
    let d = Some(dir.as_path());
    let commit = async {
        source::run_git(&files, &["add", "-A"], d).await?;
        source::run_git(
            &files,
            &[
                "-c",
                &format!("user.name={}", author.0),
                "-c",
                &format!("user.email={}", author.1),
                "commit",
                "-q",
                "-m",
                &message,
            ],
            d,
        )
        .await?;
        let remote = match (&files.username, &files.password, url.split_once("://")) {
            (Some(u), Some(p), Some((s, rest))) => format!("{s}://{u}:{p}@{rest}"),
            _ => url.to_string(),
        };
        source::run_git(
            &files,
            &[
                "push",
                "-q",
                &remote,
                &format!("HEAD:refs/heads/{push_branch}"),
            ],
            d,
        )
        .await?;
        Ok::<String, String>(
            source::run_git(&files, &["rev-parse", "HEAD"], d)
                .await?
                .trim()
                .to_string(),
        )
    };
    match commit.await {
        Ok(sha) => {
            status["lastPushCommit"] = json!(sha);
            status["lastPushTime"] = json!(super::super::store::now());
            let text = format!("pushed commit '{sha}' to branch '{push_branch}'\n{message}");
            ready(
                ctx,
                o,
                status,
                true,
                "Succeeded",
                "repository up-to-date",
                C,
            );
            event(ctx, o, false, "Succeeded", &text, C);
        }
        Err(e) => ready(
            ctx,
            o,
            status,
            false,
            "GitOperationFailed",
            &format!("failed to push: {e}"),
            C,
        ),
    }
    Some(super::interval_of(o))
}

/// The Setters strategy (fluxcd/pkg kustomize setters): a field whose line comment is
/// `{"$imagepolicy": "<ns>:<name>"}` gets the policy's `latestRef` as `<name>:<tag>`; the files
/// changed.
fn set_images(dir: &std::path::Path, policies: &[Value]) -> Vec<String> {
    let mut changed = Vec::new();
    let mut files = Vec::new();
    fn walk(d: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out)
            } else if matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
                out.push(p)
            }
        }
    }
    walk(dir, &mut files);
    let marker =
        regex::Regex::new(r#"^(\s*[^#\n]*?:\s*)(\S+)(\s*#\s*\{"\$imagepolicy":\s*"([^"]+)"\})"#)
            .expect("regex");
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let mut out = Vec::new();
        let mut touched = false;
        for line in text.lines() {
            let Some(c) = marker.captures(line) else {
                out.push(line.to_string());
                continue;
            };
            let (pns, pname) = c[4].split_once(':').unwrap_or(("", &c[4]));
            let latest = policies
                .iter()
                .find(|p| {
                    meta(p, "name") == pname && (pns.is_empty() || meta(p, "namespace") == pns)
                })
                .and_then(|p| p.pointer("/status/latestRef").cloned());
            match latest {
                Some(r) => {
                    let image = format!("{}:{}", str_at(&r, "/name"), str_at(&r, "/tag"));
                    if image != c[2] {
                        touched = true;
                    }
                    out.push(format!("{}{}{}", &c[1], image, &c[3]));
                }
                None => out.push(line.to_string()),
            }
        }
        if touched {
            let _ = std::fs::write(&f, out.join("\n") + "\n");
            changed.push(f.display().to_string());
        }
    }
    changed
}
