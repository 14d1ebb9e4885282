//! The kind provider across a real network boundary: `run`'s stages with the kind provider
//! unchanged, driving the stand-in kind CLI (`support::kind`) in docker mode, whose "cluster" is
//! the API server TEST DOUBLE running in a node container `<cluster>-control-plane` on docker
//! network `kind`. The fixture plane is advertised on that network's gateway, as for real kind,
//! and the double's controllers fetch from it inside the container (git, OCI over TLS).
//!
//! This binary is also the node's process: in a node container (`FLUX_COMPAT_STANDIN_NODE` set)
//! `main` serves the double instead of running tests, so the node always runs the double built
//! with this test (no second target to build or keep in step). Without a docker engine every
//! trial is reported ignored with the reason. `KIND_DOUBLE_SCENARIOS=all KIND_DOUBLE_CHANNEL=fips`
//! runs the whole library across the boundary instead of one scenario per service.

#[allow(unused_imports, clippy::type_complexity)]
mod support;

use flux_compat::cluster::Provider;
use flux_compat::cluster::kind::{KindCli, KindProvider};
use flux_compat::config::{self, Sources};
use flux_compat::flux::manifests::ManifestSource;
use flux_compat::model::{RunResult, Status};
use flux_compat::plan::{self, Filter};
use flux_compat::runner::diagnostics::KubeDiagnostics;
use flux_compat::runner::events::Recorder;
use flux_compat::runner::fixture_stage::FixtureStage;
use flux_compat::runner::flux_stage::ChannelStage;
use flux_compat::runner::scenario_stage::ScenarioStage;
use flux_compat::runner::secret::Secret;
use flux_compat::runner::{self, Keep, RunConfig, Stages};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Duration;
use support::double_fips::{DoubleImages, tls_variant};
use support::kind::Standin;
use tokio_util::sync::CancellationToken;

/// The scenarios the passing run takes, one per service the node's controllers reach across the
/// network: git, the Helm HTTP repository, the OCI registry, the webhook sink
/// notification-controller posts events to (plus a Receiver called from a pod), and the FIPS TLS
/// challenge endpoints (on `mainline`, whose cell runs `fips-tls`).
const SCENARIOS: [&str; 5] = [
    "fips-tls",
    "git-kustomization",
    "helm-http",
    "notifications",
    "oci-kustomization",
];

/// The channel of the runs: a pull-secret channel that runs `fips-tls`.
const CHANNEL: &str = "mainline";

/// `KIND_DOUBLE_CHANNEL=<channel>` and `KIND_DOUBLE_SCENARIOS=all|<name,...>` widen the passing run
/// (e.g. the whole library on `fips`); planned skips must then carry the plan's reason.
fn selection() -> (String, Vec<String>) {
    let channel = std::env::var("KIND_DOUBLE_CHANNEL").unwrap_or_else(|_| CHANNEL.into());
    let scenarios = match std::env::var("KIND_DOUBLE_SCENARIOS").as_deref() {
        Ok("all") => support::root()
            .join("scenarios")
            .read_dir()
            .expect("scenarios/")
            .filter_map(|e| {
                let p = e.ok()?.path();
                (p.extension()? == "yaml").then(|| p.file_stem()?.to_str().map(str::to_string))?
            })
            .collect(),
        Ok(list) if !list.is_empty() => list.split(',').map(str::to_string).collect(),
        _ => SCENARIOS.iter().map(|s| s.to_string()).collect(),
    };
    (channel, scenarios)
}

fn main() -> ExitCode {
    if let Some(code) = support::kind::node_main() {
        return code;
    }
    let args = Arguments::from_args();
    let reason = (!support::docker_available())
        .then(|| "no docker engine answers: the stand-in kind needs one for its node".to_string());
    let trial = |name: &str, f: fn() -> Result<(), Failed>| {
        let reason = reason.clone();
        Trial::ignorable_test(name, move || match &reason {
            Some(r) => Ok(Completion::ignored_with(r)),
            None => f().map(|()| Completion::Completed),
        })
    };
    let trials = vec![
        trial(
            "a_standin_cluster_is_a_node_container_on_the_kind_network",
            cluster_lifecycle,
        ),
        trial(
            "a_run_of_one_cell_through_the_standin_kind_passes",
            run_passes,
        ),
        trial(
            "a_fixture_plane_the_node_cannot_reach_fails_the_cell_clearly",
            unreachable_plane_fails,
        ),
    ];
    let network_existed = network_exists();
    let conclusion = libtest_mimic::run(&args, trials);
    // Real kind never deletes the `kind` network; the network goes only if these tests made it
    // (and nothing else uses it by now: docker refuses to remove a network in use).
    if !network_existed && network_exists() {
        let _ = Command::new("docker")
            .args(["network", "rm", "kind"])
            .output();
    }
    conclusion.exit_code()
}

fn network_exists() -> bool {
    Command::new("docker")
        .args(["network", "inspect", "kind"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The stand-in in docker mode: nodes run this very test binary, with the fixture Go programs
/// the double's controllers run (the Helm renderer, the channel's TLS stack) mounted at their
/// host paths.
fn standin_cli(standin: &Standin, tls_client: &Path, extra: &[(&str, &str)]) -> KindCli {
    let exe = std::env::current_exe().expect("the test binary");
    let helm_template = support::go_fixture("helmtemplate");
    let (helm, tls) = (
        helm_template.display().to_string(),
        tls_client.display().to_string(),
    );
    let mut env = vec![
        ("STANDIN_HELM_TEMPLATE", helm.as_str()),
        ("STANDIN_TLS_CLIENT", tls.as_str()),
    ];
    env.extend_from_slice(extra);
    standin.docker_cli(
        &exe,
        &[helm_template.clone(), tls_client.to_path_buf()],
        &env,
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A unique cluster name: tests of several processes may share the docker engine.
fn cluster_name(tag: &str) -> String {
    format!("flux-compat-kd{}-{tag}", std::process::id())
}

fn cluster_lifecycle() -> Result<(), Failed> {
    let standin = Standin::new();
    let cli = standin_cli(&standin, &support::tlspeer(tls_variant(false)), &[]);
    let provider = KindProvider::new(cli.clone());
    let root = tempfile::tempdir().unwrap();
    let name = cluster_name("life");
    let spec = flux_compat::cluster::ClusterSpec {
        run_id: "kd".into(),
        cell_id: "1.37-upstream-v2.9.4-kind".into(),
        name: name.clone(),
        kubernetes_minor: "1.37".into(),
        node_image: Some(
            "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5".into(),
        ),
        work_dir: root.path().join("work"),
        artifacts_dir: root.path().join("artifacts"),
        create_timeout: Duration::from_secs(60),
        delete_timeout: Duration::from_secs(30),
    };
    let rt = rt();
    let never = CancellationToken::new();
    let cluster = match rt.block_on(provider.up(&spec, &never)) {
        Ok(c) => c,
        Err(e) => {
            // A half-made cluster is deleted, as the runner does.
            let _ = rt.block_on(provider.down(&spec));
            return Err(e.chain().into());
        }
    };
    let node = format!("{name}-control-plane");
    let checks = (|| -> Result<(), String> {
        // The node is where real kind puts it: named, labelled, on network `kind`.
        let labels = docker(&["inspect", "-f", "{{json .Config.Labels}}", &node]);
        for want in [
            format!("\"io.x-k8s.kind.cluster\":\"{name}\""),
            "\"io.x-k8s.kind.role\":\"control-plane\"".to_string(),
        ] {
            if !labels.contains(&want) {
                return Err(format!("node labels {labels} lack {want}"));
            }
        }
        let networks = docker(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", &node]);
        if !networks.contains("\"kind\"") {
            return Err(format!("node is not on network `kind`: {networks}"));
        }
        // The kubeconfig kind writes: context `kind-<name>`, the API on a published loopback port.
        let kc = std::fs::read_to_string(&cluster.kubeconfig).map_err(|e| e.to_string())?;
        if !kc.contains(&format!("current-context: kind-{name}"))
            || !kc.contains("server: https://127.0.0.1:")
        {
            return Err(format!("kubeconfig is not kind's:\n{kc}"));
        }
        let version = rt.block_on(async {
            let kube = flux_compat::k8s::Kube::connect(&cluster.kubeconfig, &cluster.context)
                .await
                .map_err(|e| flux_compat::errors::chain(&e))?;
            kube.server_version()
                .await
                .map_err(|e| flux_compat::errors::chain(&e))
        })?;
        if version.minor.to_string() != "1.37" {
            return Err(format!(
                "the node serves Kubernetes {version:?}, not its image's v1.37.0"
            ));
        }
        let clusters = rt
            .block_on(cli.clusters(&never))
            .map_err(|e| e.to_string())?;
        if !clusters.contains(&name) {
            return Err(format!(
                "`kind get clusters` does not list {name}: {clusters:?}"
            ));
        }
        // `get kubeconfig --internal` names the node on the kind network, as kind does.
        let internal = Command::new(standin.path())
            .args(["get", "kubeconfig", "--name", &name, "--internal"])
            .envs(cli.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .map_err(|e| e.to_string())?;
        let internal = String::from_utf8_lossy(&internal.stdout);
        if !internal.contains(&format!("server: https://{node}:6443")) {
            return Err(format!("internal kubeconfig:\n{internal}"));
        }
        let logs = root.path().join("logs");
        Command::new(standin.path())
            .args(["export", "logs"])
            .arg(&logs)
            .args(["--name", &name])
            .envs(cli.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .map_err(|e| e.to_string())?;
        let serial =
            std::fs::read_to_string(logs.join(&node).join("serial.log")).unwrap_or_default();
        if !serial.contains("API server double on 0.0.0.0:6443")
            || !logs.join("docker-info.txt").is_file()
        {
            return Err(format!("exported logs lack the node's log: {serial}"));
        }
        Ok(())
    })();
    rt.block_on(provider.down(&spec)).map_err(|e| e.chain())?;
    checks?;
    if !docker(&["ps", "-aq", "--filter", &format!("name=^{node}$")]).is_empty() {
        return Err(format!("`delete cluster` left node {node}").into());
    }
    if !network_exists() {
        return Err("`delete cluster` removed network `kind`; real kind keeps it".into());
    }
    Ok(())
}

/// What a run of one cell gives: the results, the planned skips by scenario, the kind calls.
struct CellRun {
    result: RunResult,
    planned: BTreeMap<String, Option<String>>,
    argv: String,
}

/// One cell (`channel` on Kubernetes 1.37) running `scenarios` through `run`'s stages with the
/// kind provider and verify-fips for the double; each step may take `step`.
fn run_cell(
    tag: &str,
    extra: &[(&str, &str)],
    channel: &str,
    scenarios: &[String],
    step: Duration,
) -> Result<CellRun, String> {
    let root = support::root();
    let loaded = config::load(&Sources {
        matrix: root.join("matrix.yaml"),
        scenarios_dir: None,
    })
    .map_err(|p| format!("{p:#?}"))?;
    let filter = Filter {
        providers: vec!["kind".into()],
        channels: vec![channel.into()],
        kubernetes: vec!["1.37".parse().unwrap()],
        scenarios: scenarios.to_vec(),
        ..Filter::default()
    };
    let plan = plan::build(&loaded.matrix, &loaded.scenarios, &filter, None);
    assert_eq!(plan.cells.len(), 1, "one cell");
    let planned = plan.cells[0]
        .scenarios
        .iter()
        .map(|s| (s.name.clone(), s.skip.clone()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let matrix = Arc::new(loaded.matrix.clone());
    let manifests = ManifestSource::Dir(support::flux_manifest_dir(
        &["v2.9.4", "v2.8.8"],
        dir.path(),
    ));
    // No advertise override: a kind cell advertises the plane on network `kind`'s gateway.
    let fixtures = Arc::new(FixtureStage::new(
        matrix.clone(),
        root.join("fixtures"),
        None,
    ));
    let scenarios = ScenarioStage {
        matrix: matrix.clone(),
        scenarios: loaded
            .scenarios
            .iter()
            .map(|s| (s.name.clone(), s.clone()))
            .collect(),
        planes: fixtures.planes(),
        manifests: manifests.clone(),
        registry_username: "flux-compat".into(),
    };
    let mut timeouts = loaded.matrix.timeouts.clone();
    timeouts.cluster_create = Duration::from_secs(60);
    timeouts.install = Duration::from_secs(60);
    timeouts.verify = Duration::from_secs(30);
    timeouts.scenario = Duration::from_secs(90);
    timeouts.step = step;
    timeouts.teardown = Duration::from_secs(30);
    let run_id = format!("kd{}{tag}", std::process::id());
    let cfg = RunConfig {
        run_id: run_id.clone(),
        report_dir: dir.path().join("reports"),
        work_dir: dir.path().join("work"),
        jobs: 1,
        cluster_creates: 1,
        fail_fast: false,
        keep: Keep::None,
        timeouts,
        partitions: vec![],
        // The channel's pull secret is made from it; the node pulls nothing.
        registry_token: Some(Secret::new("kind-double-token")),
    };
    let standin = Standin::new();
    let channel_fips = loaded.matrix.channel(channel).is_some_and(|c| c.fips);
    let tls_client = support::tlspeer(tls_variant(channel_fips));
    let provider = KindProvider::new(standin_cli(&standin, &tls_client, extra));
    let stages = Stages {
        providers: BTreeMap::from([("kind".to_string(), Arc::new(provider) as Arc<dyn Provider>)]),
        fixtures: Some(fixtures),
        flux: Arc::new(ChannelStage::new(matrix, manifests, "flux-compat".into())),
        fips: Some(Arc::new(DoubleImages {
            binary: tls_client,
            components: loaded.matrix.components.clone(),
        })),
        scenarios: Arc::new(scenarios),
        diagnostics: Some(Arc::new(KubeDiagnostics)),
    };
    let events = Arc::new(Recorder::default());
    let result = rt().block_on(runner::run(
        &plan,
        cfg,
        stages,
        events,
        CancellationToken::new(),
    ));
    // Teardown ran: no node of this run is left (the stand-in deletes like kind).
    let left = docker(&["ps", "-aq", "--filter", "label=io.x-k8s.kind.cluster"]);
    let ours: Vec<String> = left
        .lines()
        .filter(|id| docker(&["inspect", "-f", "{{.Name}}", id]).contains(&run_id))
        .map(str::to_string)
        .collect();
    if !ours.is_empty() {
        return Err(format!("teardown left node containers {ours:?}"));
    }
    Ok(CellRun {
        result,
        planned,
        argv: standin.argv().join("\n"),
    })
}

fn describe(r: &RunResult) -> String {
    serde_json::to_string_pretty(&r.cells).unwrap_or_default()
}

fn run_passes() -> Result<(), Failed> {
    let (channel, scenarios) = selection();
    let run = run_cell("ok", &[], &channel, &scenarios, Duration::from_secs(30))?;
    let (r, argv) = (&run.result, &run.argv);
    let cell = &r.cells[0];
    if cell.status != Status::Pass {
        return Err(format!(
            "the cell did not pass:\n{}\nkind calls:\n{argv}",
            describe(r)
        )
        .into());
    }
    // Every scenario passed, or was skipped with the reason the plan gave.
    let wrong: Vec<String> = cell
        .scenarios
        .iter()
        .filter(|s| match run.planned.get(&s.name) {
            Some(None) => s.status != Status::Pass,
            Some(Some(reason)) => s.status != Status::Skip || s.message.as_ref() != Some(reason),
            None => true,
        })
        .map(|s| format!("{}: {:?} {:?}", s.name, s.status, s.message))
        .collect();
    if !wrong.is_empty() || cell.scenarios.len() != scenarios.len() {
        return Err(format!("{wrong:#?}\n{}", describe(r)).into());
    }
    // The reachability probe reached the plane and every challenge listener from the node,
    // and the plane from a pod, before anything else ran.
    let reach = cell
        .properties
        .get("fixtures.reachability")
        .cloned()
        .unwrap_or_default();
    let reached = |from: &str| {
        reach
            .lines()
            .filter(|l| l.starts_with(from) && l.contains("): reached: "))
            .count()
    };
    if reached("from node: ") < 2 || reached("from pod: fixture plane") != 1 {
        return Err(format!("the probe did not reach the fixtures:\n{reach}").into());
    }
    Ok(())
}

fn unreachable_plane_fails() -> Result<(), Failed> {
    // The reachability probe stops the cell in the `fixtures` phase, before Flux is installed
    // and before any scenario waits out its budget.
    let fault = [("STANDIN_FIREWALL_HOST", "1")];
    let one = ["git-kustomization".to_string()];
    let run = run_cell("fw", &fault, CHANNEL, &one, Duration::from_secs(10))?;
    let r = &run.result;
    let cell = &r.cells[0];
    let fixtures = cell.phases.iter().find(|p| p.name == "fixtures");
    let Some(fixtures) = fixtures.filter(|p| p.status == Status::Error) else {
        return Err(format!("the fixtures phase did not fail:\n{}", describe(r)).into());
    };
    if cell.phases.iter().any(|p| p.name == "install") {
        return Err(format!(
            "Flux was installed past an unreachable plane:\n{}",
            describe(r)
        )
        .into());
    }
    if cell.scenarios.iter().any(|s| s.status != Status::Skip) {
        return Err(format!("a scenario ran past an unreachable plane:\n{}", describe(r)).into());
    }
    let gateway = docker(&[
        "network",
        "inspect",
        "kind",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
    ]);
    let gateway = gateway
        .split_whitespace()
        .find(|g| !g.contains(':'))
        .unwrap_or_default();
    // Address, port and what answered, from the node (curl) and from a pod (wget).
    let message = fixtures.message.clone().unwrap_or_default();
    let wanted = [
        "the cluster cannot reach the fixtures".to_string(),
        format!("from node: fixture plane {gateway}:"),
        format!("from pod: fixture plane {gateway}:"),
        "(port ".to_string(),
        "unreachable: curl: (7)".to_string(),
        "unreachable: wget: can't connect to remote host".to_string(),
        "more (all findings are in the phase's diagnostics)".to_string(),
    ];
    if let Some(missing) = wanted.iter().find(|w| !message.contains(w.as_str())) {
        return Err(format!("the failure lacks `{missing}`:\n{}", describe(r)).into());
    }
    // Every challenge listener was probed from the node, each line naming its own port.
    let all = fixtures.diagnostics.clone().unwrap_or_default();
    let node: Vec<&str> = all
        .lines()
        .filter(|l| l.starts_with("from node: "))
        .collect();
    let aligned = node.iter().all(|l| {
        let port = l.split("(port ").nth(1).and_then(|p| p.split(')').next());
        port.is_some_and(|p| l.contains(&format!("port {p} after")))
    });
    if node.len() < 2 || !aligned {
        return Err(format!("node findings do not name their own ports:\n{all}").into());
    }
    Ok(())
}
