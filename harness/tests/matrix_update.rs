//! `flux-compat matrix update` end to end, without network: a local git checkout laid out like
//! the distribution repository (the committed copies of its real images files), and a loopback
//! HTTP server serving recorded, real-shaped responses (kind's releases JSON, Kubernetes'
//! `stable.txt`, the GitHub contents API and raw files of the distribution). Checks that an update
//! keeps every comment, that `--check` is 0 when current and 1 when behind, and that every bad
//! source leaves `matrix.yaml` untouched with an error naming it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A project: the repository's matrix, support data and committed copies in a temporary dir.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(root().join("matrix.yaml"), dir.path().join("matrix.yaml")).unwrap();
        copy_dir(&root().join("support"), &dir.path().join("support"));
        copy_dir(
            &root().join("fixtures/distribution"),
            &dir.path().join("fixtures/distribution"),
        );
        // The scenarios name fixture content the plane would serve; it is only read.
        for f in ["git", "charts", "oci", "images"] {
            let rel = format!("fixtures/{f}");
            copy_dir(&root().join(&rel), &dir.path().join(&rel));
        }
        Self { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn matrix(&self) -> String {
        std::fs::read_to_string(self.path("matrix.yaml")).unwrap()
    }

    fn run(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_flux-compat"));
        c.current_dir(self.dir.path())
            .arg("--scenarios-dir")
            .arg(root().join("scenarios"))
            .args(args)
            .env_remove("FLUX_COMPAT_MATRIX")
            .env_remove("FLUX_COMPAT_DISTRIBUTION")
            .env_remove("GITHUB_TOKEN")
            .env("XDG_CACHE_HOME", self.path(".cache"))
            .env("NO_COLOR", "1");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("binary runs")
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// A git checkout laid out like the distribution repository, from the committed copies.
fn checkout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &root().join("fixtures/distribution/images"),
        &dir.path().join("images"),
    );
    std::fs::write(dir.path().join("images/VERSION"), "v2.9.4\n").unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "images"]);
    dir
}

/// A new release in the checkout: v2.9.4's files with one digest changed per file.
fn add_release(co: &Path, version: &str) {
    let from = co.join("images/v2.9.4");
    let to = co.join("images").join(version);
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        let t = std::fs::read_to_string(e.path()).unwrap();
        let first = t.find("sha256:").unwrap() + 7;
        let changed = format!("{}{}{}", &t[..first], "0".repeat(64), &t[first + 64..]);
        std::fs::write(to.join(e.file_name()), changed).unwrap();
    }
    git(co, &["add", "-A"]);
    git(co, &["commit", "-q", "-m", version]);
}

const DATE: [&str; 2] = ["--date", "2026-12-02"];

#[test]
fn offline_update_then_check_is_0_and_a_newer_release_makes_it_1() {
    let p = Project::new();
    let co = checkout();
    let dist = co.path().to_str().unwrap();
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "matrix",
            "update",
            "--offline",
            "--distribution",
            dist,
            DATE[0],
            DATE[1],
        ];
        a.extend_from_slice(extra);
        a
    };
    let before = p.matrix();
    let o = p.run(&args(&[]), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("no kind release notes (offline)"),
        "{}",
        text(&o)
    );
    assert_eq!(p.matrix(), before, "the committed matrix is current");
    let o = p.run(&args(&["--check"]), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    add_release(co.path(), "v2.9.5");
    let o = p.run(&args(&["--check"]), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("Flux v2.9.4 → v2.9.5: the newest distribution release"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("copy images/v2.9.5/enterprise-distroless-fips.yaml added"),
        "{}",
        text(&o)
    );
    assert_eq!(p.matrix(), before, "--check writes nothing");
    let o = p.run(&args(&["--dry-run"]), &[]);
    assert_eq!(
        (o.status.code(), p.matrix() == before),
        (Some(0), true),
        "{}",
        text(&o)
    );

    let o = p.run(&args(&[]), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let after = p.matrix();
    // Byte for byte: only the version line changed.
    let changed: Vec<(&str, &str)> = before
        .split('\n')
        .zip(after.split('\n'))
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed, [("  - version: v2.9.4", "  - version: v2.9.5")]);
    assert_eq!(before.split('\n').count(), after.split('\n').count());
    assert!(
        p.path("fixtures/distribution/images/v2.9.5/upstream-alpine.yaml")
            .is_file()
    );
    assert!(!p.path("fixtures/distribution/images/v2.9.4").exists());
    let prov = std::fs::read_to_string(p.path("fixtures/distribution/PROVENANCE.md")).unwrap();
    assert!(
        prov.contains("(a local checkout)") && !prov.contains(dist),
        "{prov}"
    );
    let o = p.run(&args(&["--check"]), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = p.run(&["validate", "--config-only"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Routes of the loopback server: path (with query) → status and body; a route may fail
/// with 503 a number of times first.
/// A route: status, body, and how many times it answers 503 first.
type Route = (u16, Vec<u8>, u32);

#[derive(Default, Clone)]
struct Routes {
    map: Arc<Mutex<BTreeMap<String, Route>>>,
}

impl Routes {
    fn set(&self, path: &str, status: u16, body: impl Into<Vec<u8>>) {
        self.map
            .lock()
            .unwrap()
            .insert(path.into(), (status, body.into(), 0));
    }

    fn flaky(&self, path: &str, failures: u32) {
        self.map.lock().unwrap().get_mut(path).unwrap().2 = failures;
    }

    fn answer(&self, path: &str) -> (u16, Vec<u8>) {
        let mut map = self.map.lock().unwrap();
        match map.get_mut(path) {
            Some(r) if r.2 > 0 => {
                r.2 -= 1;
                (503, b"busy".to_vec())
            }
            Some(r) => (r.0, r.1.clone()),
            None => (404, b"404: Not Found".to_vec()),
        }
    }
}

fn serve(routes: Routes) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let req = String::from_utf8_lossy(&buf);
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (status, body) = routes.answer(&path);
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = s
                .write_all(head.as_bytes())
                .and_then(|_| s.write_all(&body));
        }
    });
    format!("http://{addr}")
}

const REPO: &str = "controlplaneio-fluxcd/distribution";

/// kind's recorded releases plus a newer one with 1.38, and the distribution's tree.
fn upstream(newer_kind: bool) -> Routes {
    let r = Routes::default();
    let mut releases: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("fixtures/update/kind-releases.json")).unwrap(),
    )
    .unwrap();
    if newer_kind {
        let d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        let body = format!(
            "Images pre-built for this release:\n- v1.38.0: `kindest/node:v1.38.0@{d}`\n- v1.37.2: `kindest/node:v1.37.2@{d}`\n"
        );
        releases.as_array_mut().unwrap().insert(0, serde_json::json!({"tag_name": "v0.34.0", "draft": false, "prerelease": false, "body": body}));
    }
    r.set(
        "/repos/kubernetes-sigs/kind/releases?per_page=30",
        200,
        releases.to_string(),
    );
    r.set("/stable.txt", 200, "v1.38.0\n");
    let images = root().join("fixtures/distribution/images");
    let mut dirs = Vec::new();
    for v in ["v2.8.8", "v2.9.4"] {
        dirs.push(serde_json::json!({"name": v, "type": "dir"}));
        let mut files = Vec::new();
        for e in std::fs::read_dir(images.join(v)).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            files.push(serde_json::json!({"name": name, "type": "file"}));
            let body = std::fs::read(images.join(v).join(&name)).unwrap();
            r.set(&format!("/{REPO}/main/images/{v}/{name}"), 200, body);
        }
        r.set(
            &format!("/repos/{REPO}/contents/images/{v}?ref=main"),
            200,
            serde_json::Value::Array(files).to_string(),
        );
    }
    dirs.push(serde_json::json!({"name": "VERSION", "type": "file"}));
    r.set(
        &format!("/repos/{REPO}/contents/images?ref=main"),
        200,
        serde_json::Value::Array(dirs).to_string(),
    );
    r.set(
        &format!("/repos/{REPO}/commits/main"),
        200,
        "8353f7a1cf75e2dba4733cfd9b12652ec0cdad81",
    );
    r
}

fn endpoints(base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("FLUX_COMPAT_GITHUB_API", base.to_string()),
        ("FLUX_COMPAT_GITHUB_RAW", base.to_string()),
        ("FLUX_COMPAT_K8S_RELEASE", base.to_string()),
    ]
}

const URL: &str = "https://github.com/controlplaneio-fluxcd/distribution";

#[test]
fn online_update_adds_the_new_minor_drops_the_oldest_and_keeps_every_comment() {
    let p = Project::new();
    let base = serve(upstream(true));
    let env = endpoints(&base);
    let before = p.matrix();
    let check = p.run(
        &[
            "matrix",
            "update",
            "--check",
            "--distribution",
            URL,
            "--date",
            "2029-01-01",
        ],
        &env,
    );
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    let o = p.run(
        &[
            "matrix",
            "update",
            "--distribution",
            URL,
            "--date",
            "2029-01-01",
        ],
        &env,
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for want in [
        "kindVersion v0.33.0 → v0.34.0: the newest kind release",
        "Kubernetes 1.38 added (newest): v1.38.0 from kind v0.34.0",
        "Kubernetes 1.37: v1.37.0 → v1.37.2 (kind v0.34.0)",
        "Kubernetes 1.32 dropped: 1.38 released",
        "Kubernetes 1.31 dropped: no longer in profile(s) lts",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    let after = p.matrix();
    let comments = |t: &str| {
        t.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(comments(&before), comments(&after));
    assert!(
        after.contains("  - minor: \"1.38\"\n    version: v1.38.0\n"),
        "{after}"
    );
    assert!(!after.contains("minor: \"1.32\""), "{after}");
    // Everything after the Kubernetes list is untouched.
    let tail = |t: &str| t[t.find("\nflux:").unwrap()..].to_string();
    assert_eq!(tail(&before), tail(&after));
    let o = p.run(
        &[
            "matrix",
            "update",
            "--check",
            "--distribution",
            URL,
            "--date",
            "2029-01-01",
        ],
        &env,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Pins read through the GitHub URL source validate like the committed copies.
    let o = p.run(&["validate", "--config-only", "--distribution", URL], &env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn transient_failures_are_retried() {
    let p = Project::new();
    let routes = upstream(false);
    routes.flaky("/repos/kubernetes-sigs/kind/releases?per_page=30", 2);
    let base = serve(routes);
    let o = p.run(
        &[
            "matrix",
            "update",
            "--check",
            "--distribution",
            URL,
            "--date",
            "2026-12-02",
        ],
        &endpoints(&base),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn every_bad_source_is_named_and_leaves_the_matrix_untouched() {
    let bad_digest = "- v1.38.0: `kindest/node:v1.38.0@sha256:xyz`";
    type Spoil = Box<dyn Fn(&Routes)>;
    let cases: Vec<(&str, Spoil, &str)> = vec![
        (
            "kind 404",
            Box::new(|r: &Routes| {
                r.set("/repos/kubernetes-sigs/kind/releases?per_page=30", 404, "")
            }),
            "releases?per_page=30`: HTTP 404",
        ),
        (
            "kind garbage",
            Box::new(|r: &Routes| {
                r.set(
                    "/repos/kubernetes-sigs/kind/releases?per_page=30",
                    200,
                    "<html>",
                )
            }),
            "not JSON",
        ),
        (
            "kind bad digest",
            Box::new(move |r: &Routes| {
                let body =
                    serde_json::json!([{"tag_name": "v0.34.0", "body": bad_digest}]).to_string();
                r.set(
                    "/repos/kubernetes-sigs/kind/releases?per_page=30",
                    200,
                    body,
                )
            }),
            "whose digest is not `sha256:`",
        ),
        (
            "stable garbage",
            Box::new(|r: &Routes| r.set("/stable.txt", 200, "<html>")),
            "not a Kubernetes version marker",
        ),
        (
            "listing garbage",
            Box::new(|r: &Routes| {
                r.set(
                    &format!("/repos/{REPO}/contents/images?ref=main"),
                    200,
                    "{}",
                )
            }),
            "not a GitHub contents listing",
        ),
        (
            "missing component",
            Box::new(|r: &Routes| {
                let t = std::fs::read_to_string(
                    root().join("fixtures/distribution/images/v2.9.4/enterprise-alpine.yaml"),
                )
                .unwrap();
                let cut = t
                    .find("  - name: ghcr.io/controlplaneio-fluxcd/alpine/source-watcher")
                    .unwrap();
                r.set(
                    &format!("/{REPO}/main/images/v2.9.4/enterprise-alpine.yaml"),
                    200,
                    &t[..cut],
                );
            }),
            "pins no image for installed components: source-watcher",
        ),
        (
            "images file digest",
            Box::new(|r: &Routes| {
                let t = std::fs::read_to_string(
                    root().join("fixtures/distribution/images/v2.8.8/upstream-alpine.yaml"),
                )
                .unwrap();
                r.set(
                    &format!("/{REPO}/main/images/v2.8.8/upstream-alpine.yaml"),
                    200,
                    t.replacen("sha256:", "sha512:", 1),
                );
            }),
            "must be `sha256:` followed by 64",
        ),
        (
            "images file 500",
            Box::new(|r: &Routes| {
                r.set(
                    &format!("/{REPO}/main/images/v2.9.4/upstream-alpine.yaml"),
                    500,
                    "",
                )
            }),
            "HTTP 500",
        ),
    ];
    for (name, spoil, want) in cases {
        let p = Project::new();
        let routes = upstream(true);
        spoil(&routes);
        let base = serve(routes);
        let before = p.matrix();
        let prov = std::fs::read_to_string(p.path("fixtures/distribution/PROVENANCE.md")).unwrap();
        let o = p.run(
            &[
                "matrix",
                "update",
                "--distribution",
                URL,
                "--date",
                "2026-12-02",
            ],
            &endpoints(&base),
        );
        let out = text(&o);
        assert_ne!(o.status.code(), Some(0), "{name}: {out}");
        assert!(out.contains(want), "{name}: missing `{want}` in:\n{out}");
        assert_eq!(p.matrix(), before, "{name}: matrix.yaml changed");
        assert_eq!(
            std::fs::read_to_string(p.path("fixtures/distribution/PROVENANCE.md")).unwrap(),
            prov,
            "{name}"
        );
    }
}

#[test]
fn plan_selects_a_profile_and_validate_names_unknown_variants() {
    let p = Project::new();
    let cells = |profile: &str| {
        let o = p.run(&["plan", "--format", "json", "--profile", profile], &[]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let mut minors: Vec<String> = v["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["kubernetes"].as_str().unwrap().to_string())
            .collect();
        minors.dedup();
        minors
    };
    assert_eq!(
        cells("newest"),
        ["1.37", "1.36", "1.35", "1.34", "1.33", "1.32"]
    );
    assert_eq!(
        cells("lts"),
        ["1.37", "1.36", "1.35", "1.34", "1.33", "1.32", "1.31"]
    );
    let o = p.run(&["plan", "--profile", "stable"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("unknown profile `stable`"),
        "{}",
        text(&o)
    );

    let m = p
        .matrix()
        .replace("variant: enterprise-alpine", "variant: enterprise-alpin");
    std::fs::write(p.path("matrix.yaml"), m).unwrap();
    let o = p.run(&["validate", "--config-only"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("matrix.yaml:") && out.contains("unknown variant `enterprise-alpin`"),
        "{out}"
    );
    assert!(out.contains("`enterprise-alpine`, `enterprise-distroless`, `enterprise-distroless-fips`, `upstream-alpine`"), "{out}");
}
