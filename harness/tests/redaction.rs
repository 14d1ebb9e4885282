//! Item 2 of issue 16: no encoding of the registry token that the harness produces (raw, base64 of
//! the token, of `user:token`, of the dockerconfigjson, standard and URL-safe, padded or not)
//! reaches any sink. A property test feeds random tokens through every sink in process; an end to
//! end run of the binary at `RUST_LOG=trace` (the Kubernetes client's own logs included) against
//! the API server TEST DOUBLE, whose admission webhook echoes the pull Secret, checks stdout,
//! stderr and every file written.

#[allow(unused_imports, clippy::type_complexity)]
mod support;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use flux_compat::flux::credentials::{RegistryCredentials, Token, docker_config_json};
use flux_compat::model::{CellResult, PhaseResult, RunResult, ScenarioResult, Status};
use flux_compat::report::live::ReportWriter;
use flux_compat::report::terminal::Terminal;
use flux_compat::runner::events::{EventSink, RunEvent};
use flux_compat::runner::secret::Secret;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

const USER: &str = "flux-compat";
const HOST: &str = "ghcr.io";

/// Every encoding of `token` the harness itself produces.
fn encodings(token: &str) -> Vec<String> {
    let creds = RegistryCredentials {
        username: USER.into(),
        token: Token::new(token),
    };
    let config = docker_config_json(HOST, &creds);
    let mut out = vec![token.to_string(), config.clone()];
    for bytes in [
        token.as_bytes().to_vec(),
        format!("{USER}:{token}").into_bytes(),
        config.into_bytes(),
    ] {
        out.push(STANDARD.encode(&bytes));
        out.push(STANDARD_NO_PAD.encode(&bytes));
        out.push(URL_SAFE.encode(&bytes));
        out.push(URL_SAFE_NO_PAD.encode(&bytes));
    }
    out
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn all_files(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.push_str(&all_files(&p));
        } else {
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn leaked<'a>(haystack: &str, needles: &'a [String]) -> Option<&'a String> {
    needles.iter().find(|n| haystack.contains(n.as_str()))
}

/// A cell whose every message field carries `echo`.
fn cell(echo: &str) -> CellResult {
    let phase = PhaseResult {
        name: "install".into(),
        status: Status::Error,
        message: Some(format!("the API server said: {echo}")),
        duration_ms: 1,
        diagnostics: Some(format!("diagnostics: {echo}")),
    };
    CellResult {
        id: "1.36-mainline-v2.9.4-double".into(),
        kubernetes_minor: "1.36".into(),
        kubernetes_version: None,
        node_image: None,
        channel: "mainline".into(),
        flux_version: "v2.9.4".into(),
        provider: "double".into(),
        status: Status::Error,
        message: Some(format!("install: {echo}")),
        started_at: "2026-01-01T00:00:00Z".into(),
        duration_ms: 1,
        properties: BTreeMap::from([("x".to_string(), echo.to_string())]),
        phases: vec![phase],
        scenarios: vec![ScenarioResult {
            name: "s".into(),
            tags: vec![],
            status: Status::Error,
            message: Some(echo.to_string()),
            duration_ms: 1,
            steps: vec![],
            diagnostics: Some(echo.to_string()),
            artifacts: None,
            properties: BTreeMap::new(),
        }],
    }
}

/// Push `echo` through the terminal, the log writer, the report files, diagnostics scrubbing and
/// artifact files; return everything that came out.
fn through_every_sink(echo: &str, dir: &Path) -> String {
    let term_buf = Buf::default();
    let term = Terminal::plain(Box::new(term_buf.clone()));
    let writer = ReportWriter::new(dir);
    let c = cell(echo);
    let mut run = RunResult::new("r", "2026-01-01T00:00:00Z".into());
    run.cells.push(c.clone());
    // An artifact another program wrote raw (kind's exported logs).
    let artifact = dir.join("artifacts").join(&c.id).join("kind-logs.txt");
    std::fs::create_dir_all(artifact.parent().unwrap()).unwrap();
    std::fs::write(&artifact, format!("containerd: {echo}\n")).unwrap();
    let events = [
        RunEvent::RunStarted {
            run_id: "r".into(),
            started_at: run.started_at.clone(),
            partitions: vec![],
            cells: vec![c.id.clone()],
            report_dir: dir.to_path_buf(),
        },
        RunEvent::PhaseFinished {
            cell: c.id.clone(),
            result: c.phases[0].clone(),
        },
        RunEvent::CleanupFailed {
            cell: c.id.clone(),
            what: "x".into(),
            message: echo.into(),
        },
        RunEvent::CellFinished {
            result: Box::new(c.clone()),
        },
        RunEvent::RunFinished {
            result: Box::new(run),
        },
    ];
    for e in &events {
        term.emit(e);
        writer.emit(e);
    }
    // Logs: the writer `init_logging` installs, at trace level.
    let log_buf = Buf::default();
    let lb = log_buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || flux_compat::redact::Writer(lb.clone()))
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tracing::trace!(body = %echo, "request");
        tracing::warn!("refused: {echo}");
    });
    let scrubbed = flux_compat::k8s::diagnostics::scrub(echo, &[]);
    format!(
        "{}\n{}\n{scrubbed}\n{}",
        term_buf.text(),
        log_buf.text(),
        all_files(dir)
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_tokens_never_reach_a_sink(token in "[A-Za-z0-9_.~+/=-]{12,64}") {
        let _secret = Secret::new(token.clone());
        let needles = encodings(&token);
        let echo = needles.join(" | ");
        let dir = tempfile::tempdir().unwrap();
        let out = through_every_sink(&echo, dir.path());
        prop_assert!(out.contains("***"), "redaction keeps the context");
        prop_assert_eq!(leaked(&out, &needles), None);
    }
}

const CANARY: &str = "ghp_e2eRedactionCanary0123456789ABCDEFabcd";

fn project(dir: &Path, kubeconfig: &Path) {
    let root = support::root();
    let matrix = std::fs::read_to_string(root.join("matrix.yaml")).unwrap();
    let head = matrix.split("\nproviders:").next().unwrap();
    let head = head.replace(
        "imagesFile: fixtures/distribution",
        &format!("imagesFile: {}/fixtures/distribution", root.display()),
    );
    std::fs::write(
        dir.join("matrix.yaml"),
        format!(
            "{head}\nproviders:\n  - name: double\n    type: existing\n    kubeconfig: {}\n    context: {}\n    kubernetes: \"1.36\"\nscenarios:\n  directory: {}/scenarios\n",
            kubeconfig.display(),
            support::apiserver::CONTEXT,
            root.display()
        ),
    )
    .unwrap();
    std::os::unix::fs::symlink(root.join("fixtures"), dir.join("fixtures")).unwrap();
    let manifests = dir.join("manifests/v2.9.4");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::copy(
        support::flux_manifests("v2.9.4"),
        manifests.join("install.yaml"),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_pull_secret_reaches_no_sink_of_a_real_run() {
    let server = support::apiserver::ApiServer::start(support::apiserver::Options {
        admission_echo: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kc = server.write_kubeconfig(dir.path());
    project(dir.path(), &kc);
    let reports = dir.path().join("reports");
    let out = tokio::process::Command::new(support::binary())
        .current_dir(dir.path())
        .args([
            "--allow-outside-project",
            "--no-progress",
            "run",
            "--channel",
            "mainline",
            "--run-id",
            "e2e",
            "--flux-manifests",
            "manifests",
            "--report-dir",
        ])
        .arg(&reports)
        .env("FLUX_COMPAT_REGISTRY_TOKEN", CANARY)
        .env("FLUX_COMPAT_FIXTURES_ADVERTISE", "127.0.0.1")
        .env("RUST_LOG", "trace")
        .env_remove("FLUX_COMPAT_MATRIX")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        &stderr[stderr.len().saturating_sub(3000)..]
    );
    assert!(
        stderr.contains("denied the request: Secret rejected by policy"),
        "the echo must have happened for the test to mean anything"
    );
    let everything = format!(
        "{}\n{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout),
        all_files(&reports)
    );
    let needles = encodings(CANARY);
    assert_eq!(
        leaked(&everything, &needles),
        None,
        "a form of the token leaked"
    );
    assert!(everything.contains("***"));
}
