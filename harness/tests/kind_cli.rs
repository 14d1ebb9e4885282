//! The kind wrapper's process handling against the stand-in `kind` executable in scripted mode
//! (`support::kind`, no docker): exact argument lists, stderr capture, exit codes, timeouts,
//! cancellation, log export on failure, gc by name prefix. Docker-facing parts run against the
//! real engine; the stand-in's docker mode (a real node container) is exercised by `kind_double`.

#[allow(unused_imports, clippy::type_complexity)]
// the shared support also carries the API server double
mod support;

use flux_compat::cluster::docker::Docker;
use flux_compat::cluster::kind::KindProvider;
use flux_compat::cluster::process::{self, Cmd, ProcessError};
use flux_compat::cluster::{ClusterSpec, Provider, gc, preflight};
use std::path::Path;
use std::time::{Duration, Instant};
use support::kind::Standin;
use tokio_util::sync::CancellationToken;

fn spec(root: &Path) -> ClusterSpec {
    ClusterSpec {
        run_id: "r1".into(),
        cell_id: "1.37-upstream-v2.9.4-kind".into(),
        name: "flux-compat-r1-1.37-upstream-v2.9.4-kind".into(),
        kubernetes_minor: "1.37".into(),
        node_image: Some("kindest/node:v1.37.0@sha256:a1ed".into()),
        work_dir: root.join("work"),
        artifacts_dir: root.join("artifacts"),
        create_timeout: Duration::from_secs(300),
        delete_timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn create_builds_the_exact_command_and_a_private_kubeconfig() {
    let s = Standin::new();
    let root = tempfile::tempdir().unwrap();
    let sp = spec(root.path());
    let p = KindProvider::new(s.cli(&[]));
    let c = p.up(&sp, &CancellationToken::new()).await.unwrap();
    let work = sp.work_dir.display();
    assert_eq!(
        s.argv(),
        [format!(
            "create cluster --name flux-compat-r1-1.37-upstream-v2.9.4-kind --config {work}/kind-config.yaml --kubeconfig {work}/kubeconfig --wait 300s"
        )]
    );
    assert_eq!(c.context, "kind-flux-compat-r1-1.37-upstream-v2.9.4-kind");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&c.kubeconfig)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let cfg = std::fs::read_to_string(sp.work_dir.join("kind-config.yaml")).unwrap();
    assert!(
        cfg.contains("image: \"kindest/node:v1.37.0@sha256:a1ed\""),
        "{cfg}"
    );
    p.down(&sp).await.unwrap();
    assert_eq!(
        s.argv()[1],
        format!(
            "delete cluster --name flux-compat-r1-1.37-upstream-v2.9.4-kind --kubeconfig {work}/kubeconfig"
        )
    );
}

#[tokio::test]
async fn a_failed_create_carries_kinds_stderr_and_exports_logs() {
    let s = Standin::new();
    let root = tempfile::tempdir().unwrap();
    let sp = spec(root.path());
    let p = KindProvider::new(s.cli(&[("STANDIN_CREATE", "fail")]));
    let e = p.up(&sp, &CancellationToken::new()).await.unwrap_err();
    let msg = e.chain();
    assert!(msg.contains("exited with status 1"), "{msg}");
    assert!(msg.contains("ERROR: failed to create cluster"), "{msg}");
    assert!(sp.artifacts_dir.join("kind-logs/docker-info.txt").is_file());
    let argv = s.argv();
    assert!(argv[1].starts_with("export logs "), "{argv:?}");
    assert!(argv[1].ends_with("--name flux-compat-r1-1.37-upstream-v2.9.4-kind"));
}

fn pid_gone(pid_file: &Path) -> bool {
    let pid = std::fs::read_to_string(pid_file).unwrap();
    // The child was killed and reaped: signal 0 finds no such process. Reaping is asynchronous
    // (tokio's SIGCHLD handler), and a killed but unreaped child still answers signal 0 as a
    // zombie, so allow a moment on a loaded machine before calling it alive.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let alive = std::process::Command::new("kill")
            .args(["-0", pid.trim()])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        if !alive {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_hanging_child_is_killed_at_the_timeout() {
    let s = Standin::new();
    let cli = s.cli(&[("STANDIN_CREATE", "hang")]);
    let cmd = cli.create_cmd(
        "n",
        Path::new("c"),
        &s.dir.path().join("k"),
        Duration::from_secs(1),
    );
    let t = Instant::now();
    let e = process::run(&cmd, Duration::from_millis(500), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(e, ProcessError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("did not finish within 500ms"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(pid_gone(&s.dir.path().join("pid")));
}

#[tokio::test]
async fn cancellation_kills_the_child() {
    let s = Standin::new();
    let cli = s.cli(&[("STANDIN_CREATE", "hang")]);
    let cmd = cli.create_cmd(
        "n",
        Path::new("c"),
        &s.dir.path().join("k"),
        Duration::from_secs(1),
    );
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c2.cancel();
    });
    let e = process::run(&cmd, Duration::from_secs(60), &cancel)
        .await
        .unwrap_err();
    assert!(e.is_cancelled(), "{e}");
    assert!(pid_gone(&s.dir.path().join("pid")));
}

#[tokio::test]
async fn exit_codes_and_stdin_are_passed_through() {
    let sh = Cmd::new("sh").args(["-c", "cat; echo oops >&2; exit 7"]);
    let mut sh = sh;
    sh.stdin = Some(b"input".to_vec());
    let e = process::run(&sh, Duration::from_secs(10), &CancellationToken::new())
        .await
        .unwrap_err();
    match e {
        ProcessError::Exit {
            code,
            stdout,
            stderr,
            ..
        } => {
            assert_eq!(code, Some(7));
            assert_eq!(stdout, "input");
            assert_eq!(stderr.trim(), "oops");
        }
        other => panic!("{other}"),
    }
    let missing = process::run(
        &Cmd::new("/nonexistent/kind"),
        Duration::from_secs(1),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(missing, ProcessError::Spawn { .. }));
}

#[tokio::test]
async fn gc_deletes_only_our_clusters() {
    let s = Standin::new();
    let list = s.dir.path().join("clusters");
    std::fs::write(
        &list,
        "flux-compat-old-1.37-x\nkind\nmy-dev\nflux-compat-old-1.36-y\n",
    )
    .unwrap();
    let cli = s.cli(&[("STANDIN_CLUSTERS", list.to_str().unwrap())]);
    let never = CancellationToken::new();
    let dry = gc::gc(&cli, None, true, Duration::from_secs(10), &never)
        .await
        .unwrap();
    assert_eq!(
        dry.would_delete,
        ["flux-compat-old-1.37-x", "flux-compat-old-1.36-y"]
    );
    assert_eq!(s.argv(), ["get clusters"]);
    let done = gc::gc(&cli, None, false, Duration::from_secs(10), &never)
        .await
        .unwrap();
    assert_eq!(done.deleted.len(), 2);
    assert_eq!(
        s.argv()[2..],
        [
            "delete cluster --name flux-compat-old-1.37-x",
            "delete cluster --name flux-compat-old-1.36-y"
        ]
    );
}

#[tokio::test]
async fn preflight_checks_the_engine_and_the_kind_version() {
    if !support::docker_available() {
        eprintln!("ignored: no docker engine answers here; preflight needs one");
        return;
    }
    let s = Standin::new();
    let never = CancellationToken::new();
    let found = preflight::check(&s.path(), "v0.33.0", &never)
        .await
        .unwrap();
    assert_eq!(found.engine, "docker");
    assert!(!found.engine_version.is_empty());
    assert!(found.kind_version.starts_with("kind v0.33.0"));
    let e = preflight::check(&s.path(), "v0.34.0", &never)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("kind v0.34.0 or newer is needed"), "{msg}");
    assert!(
        msg.contains("`go install sigs.k8s.io/kind@v0.34.0`"),
        "{msg}"
    );
    let e = preflight::check(Path::new("/nonexistent/kind"), "v0.33.0", &never)
        .await
        .unwrap_err();
    assert!(matches!(e, preflight::PreflightError::NoKind { .. }), "{e}");
}

#[tokio::test]
async fn kind_network_discovery_reads_docker_network_inspect() {
    if !support::docker_available() {
        eprintln!("ignored: no docker engine answers here; network discovery needs one");
        return;
    }
    let d = Docker::default();
    let never = CancellationToken::new();
    let name = format!("flux-compat-test-net-{}", std::process::id());
    assert!(d.network(&name, &never).await.unwrap().is_none());
    let out = std::process::Command::new("docker")
        .args(["network", "create", "--subnet", "172.29.77.0/24", &name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = d.network(&name, &never).await;
    let _ = std::process::Command::new("docker")
        .args(["network", "rm", &name])
        .output();
    let n = n.unwrap().expect("network exists");
    assert_eq!(n.name, name);
    assert_eq!(n.subnets, ["172.29.77.0/24"]);
    assert!(n.containers.is_empty());
}

/// Stages that must never be reached: the cluster never comes up in these tests.
struct Unreachable;

impl flux_compat::runner::stages::FluxStage for Unreachable {
    fn install<'a>(
        &'a self,
        _: &'a flux_compat::runner::stages::CellCtx,
    ) -> futures::future::BoxFuture<
        'a,
        Result<flux_compat::runner::stages::Properties, flux_compat::runner::stages::PhaseError>,
    > {
        Box::pin(async {
            Err(flux_compat::runner::stages::PhaseError::error(
                "reached install",
            ))
        })
    }
    fn verify<'a>(
        &'a self,
        _: &'a flux_compat::runner::stages::CellCtx,
    ) -> futures::future::BoxFuture<
        'a,
        Result<flux_compat::runner::stages::Properties, flux_compat::runner::stages::PhaseError>,
    > {
        Box::pin(async {
            Err(flux_compat::runner::stages::PhaseError::error(
                "reached verify",
            ))
        })
    }
}

impl flux_compat::runner::stages::ScenarioRunner for Unreachable {
    fn run<'a>(
        &'a self,
        _: &'a flux_compat::runner::stages::CellCtx,
        _: &'a flux_compat::plan::PlannedScenario,
    ) -> futures::future::BoxFuture<'a, flux_compat::model::ScenarioResult> {
        Box::pin(async { unreachable!("no cluster, no scenario") })
    }
}

#[tokio::test]
async fn interrupting_a_kind_create_kills_kind_and_deletes_the_cluster() {
    use flux_compat::runner::{self, Keep, RunConfig, Stages};
    use std::sync::Arc;
    let s = Standin::new();
    let root = tempfile::tempdir().unwrap();
    let provider = Arc::new(KindProvider::new(s.cli(&[("STANDIN_CREATE", "hang")])));
    let plan = flux_compat::plan::Plan {
        cells: vec![flux_compat::plan::PlannedCell {
            id: "1.37-upstream-v2.9.4-kind".into(),
            kubernetes: "1.37".parse().unwrap(),
            kubernetes_version: "v1.37.0".into(),
            node_image: Some("kindest/node:v1.37.0".into()),
            channel: "upstream".into(),
            fips: false,
            flux: "v2.9.4".parse().unwrap(),
            provider: "kind".into(),
            skip: None,
            scenarios: vec![],
        }],
        partition: None,
        total_cells: 1,
    };
    let cfg = RunConfig {
        run_id: "int1".into(),
        report_dir: root.path().join("reports"),
        work_dir: root.path().join("work"),
        jobs: 1,
        cluster_creates: 1,
        fail_fast: false,
        keep: Keep::All,
        timeouts: Default::default(),
        partitions: vec![],
        registry_token: None,
    };
    let stages = Stages {
        providers: std::collections::BTreeMap::from([(
            "kind".to_string(),
            provider as Arc<dyn Provider>,
        )]),
        fixtures: None,
        flux: Arc::new(Unreachable),
        fips: None,
        scenarios: Arc::new(Unreachable),
        diagnostics: None,
    };
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    let pid_file = s.dir.path().join("pid");
    let pf = pid_file.clone();
    tokio::spawn(async move {
        // Interrupt once kind is really running.
        while !pf.is_file() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c2.cancel();
    });
    let writer = Arc::new(flux_compat::report::live::ReportWriter::new(
        &cfg.report_dir,
    ));
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        runner::run(&plan, cfg, stages, writer, cancel),
    )
    .await
    .expect("the run ends promptly");
    assert!(r.interrupted);
    assert_eq!(flux_compat::app::outcome_code(&r), 130);
    assert!(pid_gone(&pid_file), "kind create was killed");
    let argv = s.argv();
    assert!(
        argv[0].starts_with("create cluster --name flux-compat-int1-1.37"),
        "{argv:?}"
    );
    // --keep all does not apply to an interrupted run: the half-made cluster is deleted.
    assert!(
        argv[1].starts_with("delete cluster --name flux-compat-int1-1.37"),
        "{argv:?}"
    );
    assert_eq!(r.cells[0].phases[0].message.as_deref(), Some("interrupted"));
    assert!(root.path().join("reports/results.json").is_file());
}
