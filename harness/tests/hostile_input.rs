//! Hostile input from the command line (issue 16): file references that would read a secret,
//! alias bombs, FIFOs and devices, NUL bytes, a BOM, out-of-range durations, bad option values,
//! a pathological `--cell` glob, multi-line messages and control characters. Each test drives
//! the real binary and checks the exit code and every byte it printed.

#[allow(unused_imports, clippy::type_complexity)]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const CANARY: &str = "ghp_hostileCanaryToken0123456789abcdef";

const MATRIX: &str = r#"apiVersion: flux-compat/v1alpha1
kind: Matrix
kindVersion: v0.33.0
kubernetes:
  - minor: "1.37"
    version: v1.37.0
    nodeImage: kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5
flux:
  - version: v2.9.4
components: [source-controller]
channels:
  - name: upstream
    registry: ghcr.io/fluxcd
    operatorVariant: upstream-alpine
    fips: false
    base: alpine
    releases:
      - flux: v2.9.4
        IMAGES
"#;

const SCENARIO: &str = r#"apiVersion: flux-compat/v1alpha1
kind: Scenario
metadata:
  name: smoke
spec:
  steps:
    - apply:
        APPLY
    - waitFor: {apiVersion: v1, kind: ConfigMap, name: smoke}
"#;

const PINS: &str = "images:\n          source-controller: {tag: v1.9.4, digest: \"sha256:7802668f9555f16a40d89220f00047a1c354c13fc31f0a0c28bd7979ae76c307\"}";

const MANIFEST: &str = "manifests: |\n          apiVersion: v1\n          kind: ConfigMap\n          metadata:\n            name: smoke";

/// A project directory `<tmp>/project` with a matrix and one scenario, and a token file beside
/// it (outside the project), as a user's checkout next to their secrets would look.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(images: &str, apply: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("project");
        std::fs::create_dir_all(p.join("scenarios")).unwrap();
        std::fs::write(p.join("matrix.yaml"), MATRIX.replace("IMAGES", images)).unwrap();
        std::fs::write(
            p.join("scenarios/smoke.yaml"),
            SCENARIO.replace("APPLY", apply),
        )
        .unwrap();
        std::fs::write(dir.path().join("token"), format!("{CANARY}\n")).unwrap();
        Self { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    /// The CLI in the project, with the real Flux manifests located offline (`validate` checks
    /// scenario manifests against their CRDs and must not depend on the network).
    fn run(&self, args: &[&str]) -> Output {
        let manifests = support::flux_manifest_dir(&["v2.9.4", "v2.8.8"], self.dir.path());
        flux_compat(
            &self.root(),
            args,
            &[
                ("FLUX_COMPAT_REGISTRY_TOKEN", CANARY),
                ("FLUX_COMPAT_FLUX_MANIFESTS", manifests.to_str().unwrap()),
            ],
        )
    }
}

fn flux_compat(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(support::binary());
    c.current_dir(dir)
        .args(args)
        .env_remove("FLUX_COMPAT_MATRIX")
        .env_remove("FLUX_COMPAT_REGISTRY_TOKEN")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every problem line is `file:line:col: message` on one line; nothing else but the summary.
fn assert_one_problem_per_line(err: &str) {
    for l in err.lines() {
        assert!(
            l.starts_with("error: ")
                || l.split(':')
                    .nth(2)
                    .is_some_and(|c| c.parse::<usize>().is_ok()),
            "a line that is not one problem: {l:?}\nin:\n{err}"
        );
    }
}

// Item 1: a file reference cannot make the harness read and echo a secret.
#[test]
fn file_references_outside_the_project_are_refused_without_reading_them() {
    for images in ["imagesFile: ../token", "imagesFile: /proc/self/environ"] {
        let p = Project::new(images, MANIFEST);
        let out = p.run(&["validate"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("points outside the project directory"),
            "{err}"
        );
        assert!(!err.contains(CANARY), "the token leaked: {err}");
        assert!(!err.contains("PATH="), "the environment leaked: {err}");
        assert_one_problem_per_line(&err);
    }
    let p = Project::new(PINS, "file: ../../token");
    let out = p.run(&["validate"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("scenarios/smoke.yaml:8:15: `../../token` points outside"),
        "{err}"
    );
    assert!(!err.contains(CANARY), "{err}");
    // Explicitly allowed, the file is parsed: the token inside is masked all the same.
    let out = p.run(&["--allow-outside-project", "validate"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains(CANARY), "{err}");
}

// Item 1: a file inside the project that is not what it claims quotes at most one short line.
#[test]
fn a_parsed_file_is_quoted_by_at_most_one_sanitised_line() {
    let p = Project::new("imagesFile: notes.txt", MANIFEST);
    let long = "y".repeat(300);
    std::fs::write(
        p.root().join("notes.txt"),
        format!("first line {long}\nsecond line\u{1b}[2J\nthird\n"),
    )
    .unwrap();
    let out = p.run(&["validate"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        !err.contains("second line") && !err.contains('\u{1b}'),
        "{err}"
    );
    assert!(err.lines().all(|l| l.len() < 400), "{err}");
    assert_one_problem_per_line(&err);
}

// Item 5: alias bombs, FIFOs, devices, NUL bytes and a BOM.
#[test]
fn alias_bombs_are_bounded_with_a_clear_error() {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = (b'a' + i - 1) as char;
        let cur = (b'a' + i) as char;
        bomb.push_str(&format!(
            "{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    assert!(bomb.len() < 1500);
    let p = Project::new(PINS, MANIFEST);
    std::fs::write(p.root().join("matrix.yaml"), &bomb).unwrap();
    let out = p.run(&["validate"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("alias expansion exceeds"), "{err}");
    // The same inside `apply.manifests`.
    let inner: String = bomb.lines().map(|l| format!("          {l}\n")).collect();
    let p = Project::new(PINS, &format!("manifests: |\n{inner}"));
    let out = p.run(&["validate"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("alias expansion exceeds"), "{err}");
}

#[test]
fn fifos_devices_nul_bytes_and_huge_files_are_refused_and_a_bom_is_fine() {
    let p = Project::new(PINS, MANIFEST);
    let out = p.run(&["--matrix", "/dev/zero", "validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("character device"),
        "{}",
        stderr(&out)
    );

    let fifo = p.root().join("fifo.yaml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut child = Command::new(support::binary())
        .current_dir(p.root())
        .args(["--matrix", "fifo.yaml", "validate"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("`--matrix FIFO` hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(2));

    let text = std::fs::read_to_string(p.root().join("matrix.yaml")).unwrap();
    let nul = text.replacen("kind: Matrix", "kind: Matrix\0", 1);
    std::fs::write(p.root().join("matrix.yaml"), &nul).unwrap();
    let out = p.run(&["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("matrix.yaml:2:13: cannot read file: it holds a NUL byte"),
        "{}",
        stderr(&out)
    );

    std::fs::write(p.root().join("matrix.yaml"), format!("\u{feff}{text}")).unwrap();
    let out = p.run(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let f = std::fs::File::create(p.root().join("matrix.yaml")).unwrap();
    f.set_len(5 << 20).unwrap();
    let out = p.run(&["validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("larger than the limit"),
        "{}",
        stderr(&out)
    );
}

// Item 6: option values are checked up front, before any download or cluster; provider paths
// are relative to the matrix; an empty context is refused.
#[test]
fn option_values_are_validated_before_anything_runs() {
    let p = Project::new(PINS, MANIFEST);
    let cases: [(&[&str], &str); 5] = [
        (
            &["run", "--run-id", ""],
            "run id must be 1 to 32 characters",
        ),
        (
            &["run", "--run-id", &"r".repeat(40)],
            "run id must be 1 to 32 characters",
        ),
        (
            &["run", "--install-kind-sha256", "not-a-sha"],
            "must be 64 hex digits",
        ),
        (&["run", "--jobs", "0"], "`--jobs` must be at least 1"),
        (
            &["fixtures", "serve", "--advertise", "bad host!"],
            "neither an IP address nor a DNS name",
        ),
    ];
    for (args, want) in cases {
        let out = p.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let out = flux_compat(
        &p.root(),
        &["run", "--dry-run"],
        &[("FLUX_COMPAT_FIXTURES_ADVERTISE", "10.0.0.1;rm -rf")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    let matrix = std::fs::read_to_string(p.root().join("matrix.yaml")).unwrap();
    let bad = matrix.replace("kindVersion: v0.33.0", "kindVersion: vlatest")
        + "providers:\n  - {name: lts, type: existing, context: \"\", kubernetes: \"1.37\"}\ntimeouts:\n  install: 200000000000y\n";
    std::fs::write(p.root().join("matrix.yaml"), bad).unwrap();
    let out = p.run(&["validate"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("kind version `vlatest` must look like `v0.33.0`"),
        "{err}"
    );
    assert!(err.contains("non-empty `context`"), "{err}");
    assert!(err.contains("longer than the maximum"), "{err}");

    let good = matrix
        + "providers:\n  - {name: lts, type: existing, context: lts, kubeconfig: kube/config, kubernetes: \"1.37\"}\n";
    std::fs::write(p.root().join("matrix.yaml"), good).unwrap();
    // Run from elsewhere: the kubeconfig still resolves next to the matrix, not the cwd.
    let matrix_path = p.root().join("matrix.yaml");
    let out = flux_compat(
        p.dir.path(),
        &[
            "--matrix",
            matrix_path.to_str().unwrap(),
            "run",
            "--dry-run",
            "--provider",
            "lts",
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expected = p.root().join("kube/config");
    assert!(
        stdout.contains(&format!("`{}`", expected.display())),
        "the kubeconfig is relative to the matrix: {stdout}"
    );
}

// Item 7: a pathological `--cell` glob finishes (the step bound is a unit test of the matcher).
#[test]
fn a_pathological_cell_glob_returns() {
    let p = Project::new(PINS, MANIFEST);
    let out = p.run(&["plan", "--cell", "**************a"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("matches no cell"));
}

fn shard(dir: &Path, name: &str, cells: &[&str], started: &str) -> PathBuf {
    use flux_compat::model::{CellResult, RunResult, Status};
    let mut run = RunResult::new("r", started.to_string());
    run.finished_at = Some("2026-01-01T01:00:00Z".into());
    for id in cells {
        run.cells.push(CellResult {
            id: id.to_string(),
            kubernetes_minor: "1.37".into(),
            kubernetes_version: None,
            node_image: None,
            channel: "upstream".into(),
            flux_version: "v2.9.4".into(),
            provider: "kind".into(),
            status: Status::Pass,
            message: None,
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_ms: 1,
            properties: Default::default(),
            phases: vec![],
            scenarios: vec![],
        });
    }
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("results.json"), serde_json::to_string(&run).unwrap()).unwrap();
    d
}

// Item 12: `report merge` refusals, failed writes with their cause and no temporary file left,
// and a report directory that cannot be written stops `run` before any cluster.
#[test]
fn report_merge_refuses_bad_inputs_and_failed_writes_say_why() {
    let p = Project::new(PINS, MANIFEST);
    let d = p.dir.path();
    let a = shard(d, "a", &["c1"], "2026-01-01T00:00:00Z");
    let b = shard(d, "b", &["c2"], "2026-01-01T00:00:00Z");
    let dup = shard(d, "dup", &["c3", "c3"], "2026-01-01T00:00:00Z");
    let bad_time = shard(d, "bad-time", &["c4"], "yesterday");
    let merge = |args: &[&Path]| {
        let mut v: Vec<&str> = vec!["report", "merge"];
        v.extend(args.iter().map(|x| x.to_str().unwrap()));
        p.run(&v)
    };
    let ok = merge(&[&a, &b, Path::new("-o"), &d.join("merged")]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));

    let out = merge(&[&a, &b, Path::new("-o"), &a]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is one of the inputs"),
        "{}",
        stderr(&out)
    );
    let out = merge(&[&a, &dup, Path::new("-o"), &d.join("m2")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cell `c3` appears twice in"),
        "{}",
        stderr(&out)
    );
    let out = merge(&[&a, &bad_time, Path::new("-o"), &d.join("m3")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`startedAt` is `yesterday`, not an RFC 3339 timestamp"),
        "{}",
        stderr(&out)
    );

    // The output's results.json is a directory: the write fails, says why, leaves nothing.
    let blocked = d.join("blocked");
    std::fs::create_dir_all(blocked.join("results.json")).unwrap();
    let out = merge(&[&a, &b, Path::new("-o"), &blocked]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Is a directory"),
        "the cause: {}",
        stderr(&out)
    );
    let left: Vec<_> = std::fs::read_dir(&blocked)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("results.json")]);

    // `run` checks its report directory before anything else (a file in the way here).
    std::fs::write(d.join("not-a-dir"), "").unwrap();
    let dir = d.join("not-a-dir/reports");
    let out = p.run(&["run", "--report-dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot write"), "{}", stderr(&out));
}

async fn plane() -> flux_compat::fixtures::Plane {
    flux_compat::fixtures::Plane::start(flux_compat::fixtures::PlaneConfig::loopback(
        support::root().join("fixtures"),
    ))
    .await
    .unwrap()
}

fn client(plane: &flux_compat::fixtures::Plane, from: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .http1_only()
        .local_address(std::net::IpAddr::from(from))
        .add_root_certificate(reqwest::Certificate::from_pem(plane.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap()
}

// Item 8: one client's abandoned uploads cannot lock everyone else out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_uploads_are_capped_per_client() {
    let plane = plane().await;
    let url = format!(
        "https://{}/v2/app/blobs/uploads/",
        plane.endpoints().address
    );
    let abuser = client(&plane, [127, 0, 0, 1]);
    let mut codes = Vec::new();
    for _ in 0..40 {
        codes.push(abuser.post(&url).send().await.unwrap().status().as_u16());
    }
    assert!(codes[..32].iter().all(|c| *c == 202), "{codes:?}");
    assert!(codes[32..].iter().all(|c| *c == 429), "{codes:?}");
    let other = client(&plane, [127, 0, 0, 2]);
    assert_eq!(
        other.post(&url).send().await.unwrap().status().as_u16(),
        202
    );
    plane.stop().await;
}

// Item 8: git requests whose body never arrives give their backend slot back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_git_bodies_do_not_starve_git() {
    let plane = plane().await;
    let url = format!("{}/app.git/git-upload-pack", plane.endpoints().git);
    let c = client(&plane, [127, 0, 0, 3]);
    let mut stalled = Vec::new();
    for _ in 0..flux_compat::fixtures::git::MAX_BACKENDS + 6 {
        let body = reqwest::Body::wrap_stream(futures::stream::pending::<
            Result<Vec<u8>, std::io::Error>,
        >());
        let req = c
            .post(&url)
            .header("content-type", "application/x-git-upload-pack-request")
            .body(body);
        stalled.push(tokio::spawn(req.send()));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ca = plane.ca_file().to_path_buf();
    let git = tokio::process::Command::new(support::require("git"))
        .args(["ls-remote", &format!("{}/app.git", plane.endpoints().git)])
        .env("GIT_SSL_CAINFO", &ca)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), git)
        .await
        .expect("git starved by stalled request bodies")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for s in stalled {
        s.abort();
    }
    plane.stop().await;
}
