//! TEST DOUBLE source-controller: GitRepository (the `git` CLI over smart HTTP with the CA and
//! credentials of `secretRef`), HelmRepository (the index over HTTPS with `certSecretRef`),
//! HelmChart (from a HelmRepository index or a GitRepository directory) and OCIRepository (the
//! registry API: tags, semver, manifest digest, layer selection).

use super::common::{
    self, Ctx, artifact, condition, deleting, ensure_finalizer, event, generation, handled, meta,
    remove_finalizer, str_at,
};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::process::Command;

const CONTROLLER: &str = "source-controller";

/// The first request of a fetch, made with the controller's own TLS stack when the double has
/// one (see `Tools::tls_client`): a refused handshake or an unexpected answer ends the fetch
/// there, with Go's error text, as in the real controller; otherwise the protocol continues
/// with the CLI and HTTP clients.
async fn preflight(
    ctx: &Ctx,
    files: &common::TlsFiles,
    url: &str,
    ok: &[u64],
) -> Result<(), String> {
    let Some(client) = &ctx.tools.tls_client else {
        return Ok(());
    };
    if !url.starts_with("https://") {
        return Ok(());
    }
    let ca = match &files.ca {
        Some(p) => p.clone(),
        None => {
            let p = files.dir.path().join("empty-ca.crt");
            let _ = std::fs::write(&p, "");
            p
        }
    };
    let host = url
        .trim_start_matches("https://")
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let name = host
        .rsplit_once(':')
        .map_or(host, |(h, _)| h)
        .trim_matches(['[', ']']);
    let mut cmd = Command::new(client);
    cmd.args(["get", url]).arg(&ca).arg(name).kill_on_drop(true);
    if let (Some(u), Some(p)) = (&files.username, &files.password) {
        cmd.env("TLSPEER_USERNAME", u).env("TLSPEER_PASSWORD", p);
    }
    let run = cmd.output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .map_err(|_| format!("Get \"{url}\": context deadline exceeded"))?
        .map_err(|e| format!("run the controller's TLS client: {e}"))?;
    let v: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("TLS client output: {e}"))?;
    if v["ok"] != true {
        return Err(format!(
            "Get \"{url}\": {}",
            v["err"].as_str().unwrap_or("unknown error")
        ));
    }
    let status = v["status"].as_u64().unwrap_or(0);
    if !ok.contains(&status) {
        return Err(format!("Get \"{url}\": unexpected status code {status}"));
    }
    Ok(())
}

/// Ready=True with the artifact, as the reconcilers' summarize step leaves it
/// (internal/controller/gitrepository_controller.go reconcileArtifact: "stored artifact for
/// revision '%s'"; Ready and ArtifactInStorage carry the same message).
fn stored(ctx: &Ctx, o: &Value, mut status: Value, message: &str, new: bool, event_message: &str) {
    status["observedGeneration"] = json!(generation(o));
    status["conditions"] = json!([
        condition(o, "Ready", true, "Succeeded", message),
        condition(o, "ArtifactInStorage", true, "Succeeded", message)
    ]);
    handled(o, &mut status);
    ctx.set_status(o, status);
    if new {
        event(ctx, o, false, "NewArtifact", event_message, CONTROLLER);
    }
}

/// Ready=False with the failure reason, FetchFailed=True (the controllers' fetch failures).
fn failed(ctx: &Ctx, o: &Value, reason: &str, message: &str) {
    let mut status = o.get("status").cloned().unwrap_or(json!({}));
    status["observedGeneration"] = json!(generation(o));
    status["conditions"] = json!([
        condition(o, "Ready", false, reason, message),
        condition(o, "FetchFailed", true, reason, message)
    ]);
    handled(o, &mut status);
    ctx.set_status(o, status);
    event(ctx, o, true, reason, message, CONTROLLER);
}

/// Deletion: drop the stored artifacts and the finalizer (the reconcilers' reconcileDelete).
fn finalize(ctx: &Ctx, o: &Value) -> Option<Duration> {
    remove_finalizer(ctx, o);
    None
}

fn git_env(files: &common::TlsFiles) -> Vec<(String, String)> {
    let mut env = vec![
        ("GIT_TERMINAL_PROMPT".to_string(), "0".to_string()),
        ("GIT_CONFIG_NOSYSTEM".to_string(), "1".to_string()),
        ("HOME".to_string(), files.dir.path().display().to_string()),
    ];
    if let Some(ca) = &files.ca {
        env.push(("GIT_SSL_CAINFO".into(), ca.display().to_string()));
    }
    env
}

/// The URL with the Secret's basic-auth credentials (the git transport's `username`/`password`).
fn with_credentials(url: &str, files: &common::TlsFiles) -> String {
    match (&files.username, &files.password, url.split_once("://")) {
        (Some(u), Some(p), Some((scheme, rest))) => format!("{scheme}://{u}:{p}@{rest}"),
        _ => url.to_string(),
    }
}

pub async fn run_git(
    files: &common::TlsFiles,
    args: &[&str],
    cwd: Option<&std::path::Path>,
) -> Result<String, String> {
    let mut cmd = Command::new("git");
    cmd.args(args).envs(git_env(files)).kill_on_drop(true);
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .map_err(|_| "git timed out".to_string())?
        .map_err(|e| format!("run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The branch, tag or commit a GitRepository asks for, and the revision prefix
/// (fluxcd/pkg git/repository.go: `<branch>@sha1:<hash>`, `<tag>@sha1:<hash>`, `sha1:<hash>`).
fn git_ref(o: &Value) -> (String, String) {
    if let Some(b) = o.pointer("/spec/ref/branch").and_then(Value::as_str) {
        return (format!("refs/heads/{b}"), b.to_string());
    }
    if let Some(t) = o.pointer("/spec/ref/tag").and_then(Value::as_str) {
        return (format!("refs/tags/{t}"), t.to_string());
    }
    ("refs/heads/master".into(), "master".into())
}

/// Clone `url` at `reference` into `dir`; the commit hash.
pub async fn clone(
    files: &common::TlsFiles,
    url: &str,
    branch: &str,
    dir: &std::path::Path,
) -> Result<String, String> {
    let url = with_credentials(url, files);
    let d = dir.display().to_string();
    run_git(
        files,
        &[
            "clone", "--quiet", "--depth", "1", "--branch", branch, &url, &d,
        ],
        None,
    )
    .await?;
    Ok(run_git(files, &["rev-parse", "HEAD"], Some(dir))
        .await?
        .trim()
        .to_string())
}

/// internal/controller/gitrepository_controller.go: the remote head is checked first and an
/// unchanged revision is not cloned again (the no-op reconcile); otherwise clone, archive
/// without `.git`, store, report the revision `<branch>@sha1:<hash>`.
pub async fn git(ctx: &Ctx, o: &Value) -> Option<Duration> {
    if deleting(o) {
        return finalize(ctx, o);
    }
    let o = &ensure_finalizer(ctx, o);
    let (ns, url) = (meta(o, "namespace"), str_at(o, "/spec/url"));
    let files = common::tls_files(ctx, ns, str_at(o, "/spec/secretRef/name"));
    let (refname, short) = git_ref(o);
    let info_refs = format!(
        "{}/info/refs?service=git-upload-pack",
        url.trim_end_matches('/')
    );
    if let Err(e) = preflight(ctx, &files, &info_refs, &[200]).await {
        failed(
            ctx,
            o,
            "GitOperationFailed",
            &format!("failed to checkout and determine revision: unable to clone '{url}': {e}"),
        );
        return Some(super::interval_of(o));
    }
    let head = match run_git(
        &files,
        &["ls-remote", &with_credentials(url, &files), &refname],
        None,
    )
    .await
    {
        Ok(out) => out
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
        Err(e) => {
            failed(
                ctx,
                o,
                "GitOperationFailed",
                &format!("failed to checkout and determine revision: unable to clone '{url}': {e}"),
            );
            return Some(super::interval_of(o));
        }
    };
    let revision = format!("{short}@sha1:{head}");
    let current = str_at(o, "/status/artifact/revision");
    if current == revision
        && o.pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
            == Some(generation(o))
    {
        let mut status = o["status"].clone();
        handled(o, &mut status);
        if status != o["status"] {
            ctx.set_status(o, status);
        }
        return Some(super::interval_of(o));
    }
    let work = tempfile::tempdir().expect("tempdir");
    let checkout = work.path().join("repo");
    let commit = match clone(&files, url, &short, &checkout).await {
        Ok(c) => c,
        Err(e) => {
            failed(
                ctx,
                o,
                "GitOperationFailed",
                &format!("failed to checkout and determine revision: unable to clone '{url}': {e}"),
            );
            return Some(super::interval_of(o));
        }
    };
    let subject = run_git(&files, &["log", "-1", "--format=%s"], Some(&checkout))
        .await
        .unwrap_or_default();
    let revision = format!("{short}@sha1:{commit}");
    let bytes = common::tar_gz(&checkout);
    let art = artifact(
        ctx,
        CONTROLLER,
        "GitRepository",
        o,
        &revision,
        &format!("{commit}.tar.gz"),
        bytes,
    );
    let message = format!("stored artifact for revision '{revision}'");
    stored(
        ctx,
        o,
        json!({"artifact": art}),
        &message,
        current != revision,
        &format!("stored artifact for commit '{}'", subject.trim()),
    );
    Some(super::interval_of(o))
}

/// internal/controller/helmrepository_controller.go: fetch `index.yaml` with the CA of
/// `certSecretRef`, store it; the revision is the index's sha256 digest. OCI HelmRepositories
/// have no reconciler and no status (static objects).
pub async fn helm_repository(ctx: &Ctx, o: &Value) -> Option<Duration> {
    if str_at(o, "/spec/type") == "oci" {
        return None;
    }
    if deleting(o) {
        return finalize(ctx, o);
    }
    let o = &ensure_finalizer(ctx, o);
    let (ns, url) = (meta(o, "namespace"), str_at(o, "/spec/url"));
    let files = common::tls_files(ctx, ns, str_at(o, "/spec/certSecretRef/name")).with_basic_auth(
        ctx,
        ns,
        str_at(o, "/spec/secretRef/name"),
    );
    let index_url = format!("{}/index.yaml", url.trim_end_matches('/'));
    if let Err(e) = preflight(ctx, &files, &index_url, &[200]).await {
        failed(
            ctx,
            o,
            "IndexationFailed",
            &format!(
                "failed to fetch Helm repository index: failed to cache index to temporary file: {e}"
            ),
        );
        return Some(super::interval_of(o));
    }
    let body = match fetch(&files, &index_url).await {
        Ok(b) => b,
        Err(e) => {
            failed(
                ctx,
                o,
                "IndexationFailed",
                &format!("failed to fetch Helm repository index: {e}"),
            );
            return Some(super::interval_of(o));
        }
    };
    use sha2::Digest as _;
    let revision = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body)));
    let changed = str_at(o, "/status/artifact/revision") != revision;
    let art = artifact(
        ctx,
        CONTROLLER,
        "HelmRepository",
        o,
        &revision,
        "index-fetched.yaml",
        body,
    );
    let message = format!("stored artifact: revision '{revision}'");
    let mut status = json!({"artifact": art, "url": format!("http://{CONTROLLER}.{}.svc.cluster.local./helmrepository/{ns}/{}/index.yaml", common::FLUX_NAMESPACE, meta(o, "name"))});
    status["observedGeneration"] = json!(generation(o));
    stored(
        ctx,
        o,
        status,
        &message,
        changed,
        &format!("stored fetched index of unknown size from '{url}'"),
    );
    Some(super::interval_of(o))
}

pub async fn fetch(files: &common::TlsFiles, url: &str) -> Result<Vec<u8>, String> {
    let client = common::http_client(files);
    let mut req = client.get(url);
    if let (Some(u), Some(p)) = (&files.username, &files.password) {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("GET '{url}': {}", flux_compat::errors::chain(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("GET '{url}': {}", resp.status()));
    }
    resp.bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string())
}

/// The newest version in an index entry list matching a constraint (`version` of a HelmChart,
/// `*` when empty), as internal/helm/repository/chart_repository.go Get does.
fn pick_version(entries: &[Value], constraint: &str) -> Option<Value> {
    let req = semver::VersionReq::parse(if constraint.is_empty() {
        "*"
    } else {
        constraint
    })
    .ok()?;
    entries
        .iter()
        .filter_map(|e| {
            let v = semver::Version::parse(e["version"].as_str()?).ok()?;
            req.matches(&v).then_some((v, e.clone()))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, e)| e)
}

/// internal/controller/helmchart_controller.go: a chart from a HelmRepository (version picked
/// from the index, the package downloaded; revision = chart version) or from a GitRepository
/// directory (packaged; with `reconcileStrategy: Revision` the version gets the commit as
/// metadata, `<version>+<first 12 hex of the commit>`, internal/helm/chart/builder_local.go).
pub async fn helm_chart(ctx: &Ctx, o: &Value) -> Option<Duration> {
    if deleting(o) {
        return finalize(ctx, o);
    }
    let o = &ensure_finalizer(ctx, o);
    let ns = meta(o, "namespace");
    let (src_kind, src_name) = (
        str_at(o, "/spec/sourceRef/kind"),
        str_at(o, "/spec/sourceRef/name"),
    );
    let Some(source) = ctx.get_kind("source.toolkit.fluxcd.io", src_kind, ns, src_name) else {
        failed(
            ctx,
            o,
            "SourceUnavailable",
            &format!(
                "failed to get source: {src_kind}.source.toolkit.fluxcd.io \"{src_name}\" not found"
            ),
        );
        return Some(super::interval_of(o));
    };
    let Some(source_bytes) = source
        .pointer("/status/artifact/url")
        .and_then(Value::as_str)
        .and_then(|u| ctx.artifacts.get(u))
    else {
        failed(
            ctx,
            o,
            "SourceUnavailable",
            "failed to get source artifact: no artifact",
        );
        return Some(super::interval_of(o));
    };
    let chart = str_at(o, "/spec/chart");
    let built = match src_kind {
        "HelmRepository" => {
            chart_from_index(
                ctx,
                &source,
                &source_bytes,
                chart,
                str_at(o, "/spec/version"),
            )
            .await
        }
        "GitRepository" => chart_from_dir(
            &source,
            &source_bytes,
            chart,
            str_at(o, "/spec/reconcileStrategy"),
        ),
        other => Err(format!("unsupported source kind '{other}'")),
    };
    let (version, archive) = match built {
        Ok(b) => b,
        Err(e) => {
            failed(ctx, o, "ChartPullFailed", &e);
            return Some(super::interval_of(o));
        }
    };
    let changed = str_at(o, "/status/artifact/revision") != version;
    let name = chart
        .rsplit('/')
        .find(|s| !s.is_empty() && *s != ".")
        .unwrap_or(chart)
        .to_string();
    let art = artifact(
        ctx,
        CONTROLLER,
        "HelmChart",
        o,
        &version,
        &format!("{}-{version}.tgz", chart_name(&archive).unwrap_or(name)),
        archive,
    );
    let message = format!(
        "packaged '{}' chart with version '{version}'",
        chart_name_of(&art)
    );
    let status = json!({"artifact": art, "observedChartName": chart_name_of(&art), "observedSourceArtifactRevision": str_at(&source, "/status/artifact/revision")});
    stored(ctx, o, status, &message, changed, &message);
    Some(super::interval_of(o))
}

fn chart_name_of(art: &Value) -> String {
    let path = art["path"].as_str().unwrap_or_default();
    let file = path.rsplit('/').next().unwrap_or_default();
    file.rsplit_once('-').map_or(file, |(n, _)| n).to_string()
}

/// `name` from `Chart.yaml` inside a chart archive.
pub fn chart_name(archive: &[u8]) -> Option<String> {
    let meta = chart_metadata(archive)?;
    meta["name"].as_str().map(str::to_string)
}

/// `Chart.yaml` of a chart archive, as JSON.
pub fn chart_metadata(archive: &[u8]) -> Option<Value> {
    use std::io::Read;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for e in tar.entries().ok()? {
        let mut e = e.ok()?;
        let path = e.path().ok()?.to_string_lossy().into_owned();
        if path.ends_with("/Chart.yaml") && path.matches('/').count() == 1 {
            let mut text = String::new();
            e.read_to_string(&mut text).ok()?;
            return serde_norway::from_str(&text).ok();
        }
    }
    None
}

async fn chart_from_index(
    ctx: &Ctx,
    repo: &Value,
    index: &[u8],
    chart: &str,
    constraint: &str,
) -> Result<(String, Vec<u8>), String> {
    let index: Value =
        serde_norway::from_slice(index).map_err(|e| format!("failed to load index: {e}"))?;
    let entries = index
        .pointer(&format!("/entries/{chart}"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let entry = pick_version(&entries, constraint)
        .ok_or_else(|| format!("invalid chart reference: failed to get chart version for remote reference: no '{chart}' chart with version matching '{constraint}' found"))?;
    let version = entry["version"].as_str().unwrap_or_default().to_string();
    let url = entry
        .pointer("/urls/0")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let base = str_at(repo, "/spec/url").trim_end_matches('/');
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("{base}/{url}")
    };
    let ns = meta(repo, "namespace");
    let files = common::tls_files(ctx, ns, str_at(repo, "/spec/certSecretRef/name"))
        .with_basic_auth(ctx, ns, str_at(repo, "/spec/secretRef/name"));
    let bytes = fetch(&files, &url)
        .await
        .map_err(|e| format!("failed to download chart for remote reference: {e}"))?;
    Ok((version, bytes))
}

fn chart_from_dir(
    source: &Value,
    bytes: &[u8],
    path: &str,
    strategy: &str,
) -> Result<(String, Vec<u8>), String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    common::untar(bytes, work.path())?;
    let dir = work.path().join(path.trim_start_matches("./"));
    let chart_yaml = std::fs::read_to_string(dir.join("Chart.yaml"))
        .map_err(|e| format!("failed to load chart from path '{path}': {e}"))?;
    let mut meta: Value = serde_norway::from_str(&chart_yaml).map_err(|e| e.to_string())?;
    let mut version = meta["version"].as_str().unwrap_or_default().to_string();
    if strategy == "Revision" {
        let rev = str_at(source, "/status/artifact/revision");
        let sha = rev.rsplit(':').next().unwrap_or(rev);
        version = format!("{version}+{}", &sha[..sha.len().min(12)]);
        meta["version"] = json!(version);
    }
    let name = meta["name"].as_str().unwrap_or("chart").to_string();
    // Package as `helm package` lays it out: `<name>/...` with the rewritten Chart.yaml.
    let pkg = work.path().join("pkg");
    let root = pkg.join(&name);
    copy_dir(&dir, &root).map_err(|e| e.to_string())?;
    std::fs::write(
        root.join("Chart.yaml"),
        serde_norway::to_string(&meta).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    Ok((version, common::tar_gz(&pkg)))
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

/// A registry client over HTTPS with the CA of `certSecretRef` (anonymous: the fixture plane of
/// a cell serves without auth).
pub struct Registry {
    client: reqwest::Client,
    host: String,
    credentials: Option<(String, String)>,
}

impl Registry {
    pub fn new(files: &common::TlsFiles, host: &str) -> Self {
        Self {
            client: common::http_client(files),
            host: host.to_string(),
            credentials: files.username.clone().zip(files.password.clone()),
        }
    }
    pub async fn get(&self, path: &str, accept: &str) -> Result<(Vec<u8>, Option<String>), String> {
        let url = format!("https://{}/v2/{path}", self.host);
        let mut req = self.client.get(&url).header("accept", accept);
        // go-containerregistry answers the registry's Basic challenge with the keychain's
        // credentials for the host; the fixture registry always challenges, so send them.
        if let Some((u, p)) = &self.credentials {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", flux_compat::errors::chain(&e)))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: {}", resp.status()));
        }
        let digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok((
            resp.bytes().await.map_err(|e| e.to_string())?.to_vec(),
            digest,
        ))
    }
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>, String> {
        let (body, _) = self
            .get(&format!("{repo}/tags/list"), "application/json")
            .await?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok(v["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect())
    }
}

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json";

/// `oci://host/repo` → (host, repo).
pub fn split_oci(url: &str) -> (String, String) {
    let rest = url.trim_start_matches("oci://");
    match rest.split_once('/') {
        Some((h, r)) => (h.to_string(), r.to_string()),
        None => (rest.to_string(), String::new()),
    }
}

/// internal/controller/ocirepository_controller.go: resolve `ref.tag` or the newest tag in
/// `ref.semver`, take the manifest digest, pull the layer `layerSelector` picks (default: the
/// first layer, extracted) and report `<tag>@sha256:<manifest digest>`.
pub async fn oci(ctx: &Ctx, o: &Value) -> Option<Duration> {
    if deleting(o) {
        return finalize(ctx, o);
    }
    let o = &ensure_finalizer(ctx, o);
    let ns = meta(o, "namespace");
    let url = str_at(o, "/spec/url");
    let (host, repo) = split_oci(url);
    let files = common::tls_files(ctx, ns, str_at(o, "/spec/certSecretRef/name"))
        .with_registry_auth(ctx, ns, str_at(o, "/spec/secretRef/name"), &host);
    if let Err(e) = preflight(ctx, &files, &format!("https://{host}/v2/"), &[200, 401]).await {
        failed(
            ctx,
            o,
            "OCIArtifactPullFailed",
            &format!("failed to determine artifact digest: {e}"),
        );
        return Some(super::interval_of(o));
    }
    let reg = Registry::new(&files, &host);
    let tag = if let Some(range) = o.pointer("/spec/ref/semver").and_then(Value::as_str) {
        let req = common::semver_constraint(range).ok();
        let tags = match reg.tags(&repo).await {
            Ok(t) => t,
            Err(e) => {
                failed(
                    ctx,
                    o,
                    "OCIArtifactPullFailed",
                    &format!("failed to determine artifact digest: {e}"),
                );
                return Some(super::interval_of(o));
            }
        };
        tags.iter()
            .filter_map(|t| {
                semver::Version::parse(t.trim_start_matches('v'))
                    .ok()
                    .map(|v| (v, t))
            })
            .filter(|(v, _)| req.as_ref().is_some_and(|r| common::semver_matches(r, v)))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    } else {
        o.pointer("/spec/ref/tag")
            .and_then(Value::as_str)
            .unwrap_or("latest")
            .to_string()
    };
    if tag.is_empty() {
        failed(
            ctx,
            o,
            "OCIArtifactPullFailed",
            &format!("failed to determine the artifact tag for '{url}': no match found for semver"),
        );
        return Some(super::interval_of(o));
    }
    let (manifest, digest) = match reg
        .get(&format!("{repo}/manifests/{tag}"), MANIFEST_ACCEPT)
        .await
    {
        Ok(m) => m,
        Err(e) => {
            failed(
                ctx,
                o,
                "OCIArtifactPullFailed",
                &format!("failed to determine artifact digest: {e}"),
            );
            return Some(super::interval_of(o));
        }
    };
    use sha2::Digest as _;
    let digest = digest
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(sha2::Sha256::digest(&manifest))));
    let revision = format!("{tag}@{digest}");
    if str_at(o, "/status/artifact/revision") == revision
        && o.pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
            == Some(generation(o))
    {
        let mut status = o["status"].clone();
        handled(o, &mut status);
        if status != o["status"] {
            ctx.set_status(o, status);
        }
        return Some(super::interval_of(o));
    }
    let m: Value = serde_json::from_slice(&manifest).unwrap_or(json!({}));
    let layers = m["layers"].as_array().cloned().unwrap_or_default();
    let want = o
        .pointer("/spec/layerSelector/mediaType")
        .and_then(Value::as_str);
    let Some(layer) = layers
        .iter()
        .find(|l| want.is_none_or(|w| l["mediaType"] == w))
    else {
        failed(
            ctx,
            o,
            "OCILayerOperationFailed",
            &format!(
                "failed to find artifact layer with media type '{}' in artifact",
                want.unwrap_or_default()
            ),
        );
        return Some(super::interval_of(o));
    };
    let blob = match reg
        .get(&format!("{repo}/blobs/{}", str_at(layer, "/digest")), "*/*")
        .await
    {
        Ok((b, _)) => b,
        Err(e) => {
            failed(
                ctx,
                o,
                "OCIArtifactPullFailed",
                &format!("failed to pull artifact: {e}"),
            );
            return Some(super::interval_of(o));
        }
    };
    // `copy` keeps the layer as it is (a chart archive); `extract` (the default) unpacks it and
    // the artifact is the re-archived tree.
    let bytes = if o
        .pointer("/spec/layerSelector/operation")
        .and_then(Value::as_str)
        == Some("copy")
    {
        blob
    } else {
        let work = tempfile::tempdir().expect("tempdir");
        if let Err(e) = common::untar(&blob, work.path()) {
            failed(
                ctx,
                o,
                "OCILayerOperationFailed",
                &format!("failed to extract layer: {e}"),
            );
            return Some(super::interval_of(o));
        }
        common::tar_gz(work.path())
    };
    let file = format!("{}.tar.gz", digest.trim_start_matches("sha256:"));
    let art = artifact(ctx, CONTROLLER, "OCIRepository", o, &revision, &file, bytes);
    let message = format!("stored artifact for digest '{revision}'");
    stored(
        ctx,
        o,
        json!({"artifact": art, "url": url}),
        &message,
        true,
        &format!("stored artifact with revision '{revision}' from '{url}'"),
    );
    Some(super::interval_of(o))
}
