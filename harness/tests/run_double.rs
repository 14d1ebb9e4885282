//! `run`'s real wiring end to end below the cluster: existing-cluster provider → fixture plane →
//! Flux install and image verification → the scenario engine (with the plane behind FixtureOps)
//! → reports, against the in-process API server TEST DOUBLE. The real path runs on kind in the
//! e2e workflow; here a small scenario exercises every stage without Flux controllers.

#[allow(unused_imports, clippy::type_complexity)]
mod support;

use flux_compat::cluster::Provider;
use flux_compat::cluster::existing::ExistingProvider;
use flux_compat::cluster::mirror::{ProxyStats, stats_properties};
use flux_compat::flux::manifests::ManifestSource;
use flux_compat::model::Status;
use flux_compat::plan::{self, Filter};
use flux_compat::report::live::ReportWriter;
use flux_compat::runner::diagnostics::KubeDiagnostics;
use flux_compat::runner::events::{Fanout, Recorder};
use flux_compat::runner::fixture_stage::FixtureStage;
use flux_compat::runner::flux_stage::ChannelStage;
use flux_compat::runner::scenario_stage::ScenarioStage;
use flux_compat::runner::{self, Keep, RunConfig, Stages};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use support::apiserver::{ApiServer, CONTEXT, Options};
use tokio_util::sync::CancellationToken;

/// A scenario that touches every seam: fixture variables in a manifest, the CA Secret in the
/// scenario namespace, a push to a fixture repository, a wait and field assertions.
fn scenario(greeting_expected: &str) -> String {
    format!(
        r#"apiVersion: flux-compat/v1alpha1
kind: Scenario
metadata:
  name: wiring
  tags: [core]
spec:
  fixtures: [git/app]
  timeout: 60s
  steps:
    - name: the fixture CA secret is in the namespace
      assert:
        object: {{apiVersion: v1, kind: Secret, name: "${{{{ fixtures.caSecret }}}}"}}
        fields:
          - {{path: metadata.name, equals: flux-compat-fixtures-ca}}
    - apply:
        manifests: |
          apiVersion: v1
          kind: ConfigMap
          metadata:
            name: endpoints
            namespace: ${{{{ namespace }}}}
          data:
            git: ${{{{ fixtures.gitUrl }}}}/app.git
            greeting: hello
    - timeout: 10s
      waitFor: {{apiVersion: v1, kind: ConfigMap, name: endpoints}}
    - gitPush:
        repository: app
        message: a change pushed by the scenario
        files:
          deploy/extra.yaml: "kind: Extra\n"
        tag: v1.1.0
    - timeout: 3s
      assert:
        object: {{apiVersion: v1, kind: ConfigMap, name: endpoints}}
        fields:
          - {{path: data.git, matches: "^https://127\\.0\\.0\\.1:[0-9]+/.*app\\.git$"}}
          - {{path: data.greeting, equals: {greeting_expected}}}
"#
    )
}

async fn run(greeting_expected: &str) -> (flux_compat::model::RunResult, tempfile::TempDir) {
    let server = ApiServer::start(Options::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = server.write_kubeconfig(dir.path());
    let root = support::root();
    // The shipped matrix plus a provider for the double; the test scenario in a directory of its own.
    let sdir = dir.path().join("scenarios");
    std::fs::create_dir_all(&sdir).unwrap();
    std::fs::write(sdir.join("wiring.yaml"), scenario(greeting_expected)).unwrap();
    let loaded = support::apiserver::matrix_with_double(&kc, Some(sdir));
    let filter = Filter {
        providers: vec!["double".into()],
        channels: vec!["upstream".into()],
        ..Filter::default()
    };
    let plan = plan::build(&loaded.matrix, &loaded.scenarios, &filter, None);
    assert_eq!(plan.cells.len(), 1);

    let matrix = Arc::new(loaded.matrix.clone());
    let manifests = ManifestSource::File(support::flux_manifests("v2.9.4"));
    let fixtures = Arc::new(FixtureStage::new(
        matrix.clone(),
        root.join("fixtures"),
        Some("127.0.0.1".into()),
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
    timeouts.install = Duration::from_secs(30);
    timeouts.verify = Duration::from_secs(30);
    timeouts.step = Duration::from_secs(20);
    timeouts.teardown = Duration::from_secs(20);
    let cfg = RunConfig {
        run_id: "r1".into(),
        report_dir: dir.path().join("reports"),
        work_dir: dir.path().join("work"),
        jobs: 1,
        cluster_creates: 1,
        fail_fast: false,
        keep: Keep::None,
        timeouts,
        partitions: vec![],
        registry_token: None,
    };
    let stages = Stages {
        providers: BTreeMap::from([(
            "double".to_string(),
            Arc::new(ExistingProvider::new(Some(&kc), CONTEXT).unwrap()) as Arc<dyn Provider>,
        )]),
        fixtures: Some(fixtures),
        flux: Arc::new(ChannelStage::new(matrix, manifests, "flux-compat".into())),
        fips: None,
        scenarios: Arc::new(scenarios),
        diagnostics: Some(Arc::new(KubeDiagnostics)),
    };
    let report_dir = cfg.report_dir.clone();
    let writer = Arc::new(ReportWriter::new(&report_dir));
    let mut r = runner::run(
        &plan,
        cfg,
        stages,
        Arc::new(Fanout(vec![Arc::new(Recorder::default()), writer.clone()])),
        CancellationToken::new(),
    )
    .await;
    drop(server);
    assert_valid_results(&report_dir.join("results.json"));
    // As `run` does after a run with the image cache: run-wide facts beside the cells.
    let stats = ProxyStats {
        blob_requests: 40,
        blob_hits: 40,
        blob_misses: 0,
        manifest_requests: 9,
        manifest_misses: 7,
        bytes_pulled: 123_456,
    };
    r.properties.extend(stats_properties(&BTreeMap::from([(
        "ghcr.io".to_string(),
        stats,
    )])));
    writer.write(&r).unwrap();
    assert_valid_results(&report_dir.join("results.json"));
    (r, dir)
}

/// results.json as the run wrote it validates against `flux-compat report schema`.
fn assert_valid_results(path: &std::path::Path) {
    let schema = std::process::Command::new(support::binary())
        .args(["report", "schema"])
        .output()
        .unwrap();
    let schema_path = path.with_file_name("schema.json");
    std::fs::write(&schema_path, &schema.stdout).unwrap();
    let script = "import json,sys,jsonschema; jsonschema.Draft202012Validator(json.load(open(sys.argv[1])), format_checker=jsonschema.FormatChecker()).validate(json.load(open(sys.argv[2])))";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&schema_path)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} does not validate against the schema: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn phases(c: &flux_compat::model::CellResult) -> Vec<(&str, Status)> {
    c.phases
        .iter()
        .map(|p| (p.name.as_str(), p.status))
        .collect()
}

#[tokio::test]
async fn every_stage_runs_for_real_and_the_scenario_passes() {
    let (r, dir) = run("hello").await;
    let c = &r.cells[0];
    assert_eq!(
        phases(c),
        [
            ("cluster", Status::Pass),
            ("fixtures", Status::Pass),
            ("install", Status::Pass),
            ("verify-images", Status::Pass),
            ("teardown", Status::Pass)
        ],
        "{c:#?}"
    );
    let s = &c.scenarios[0];
    assert_eq!(s.status, Status::Pass, "{s:#?}");
    let kinds: Vec<&str> = s.steps.iter().map(|st| st.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["setup", "assert", "apply", "waitFor", "gitPush", "assert"],
        "the engine creates the namespace, then the steps run in order: {s:#?}"
    );
    assert!(s.steps.iter().all(|st| st.status == Status::Pass), "{s:#?}");
    assert!(
        c.properties
            .get("fixtures.gitUrl")
            .is_some_and(|u| u.starts_with("https://127.0.0.1:")),
        "{:?}",
        c.properties
    );
    // The fixtures phase proved the cluster reaches the plane: a probe pod's wget got an answer
    // (the TLS port's reaction to plain HTTP) across the double's pod network.
    let reach = c
        .properties
        .get("fixtures.reachability")
        .cloned()
        .unwrap_or_default();
    assert!(
        reach
            .lines()
            .any(|l| l.starts_with("from pod: fixture plane 127.0.0.1:")
                && l.contains(": reached: answered")),
        "{reach}"
    );
    assert_eq!(c.status, Status::Pass);
    attest_and_verify(&r, dir.path());
}

/// The run's own results attest the channel it installed: subjects are the matrix's pins, the
/// inputs are the matrix file's digest, and the signed envelope verifies against the results.
fn attest_and_verify(r: &flux_compat::model::RunResult, dir: &std::path::Path) {
    use std::process::Command;
    let c = &r.cells[0];
    let matrix = std::fs::read(support::root().join("matrix.yaml")).unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&matrix));
    assert_eq!(
        c.properties.get("matrix.sha256"),
        Some(&sha),
        "{:?}",
        c.properties
    );
    assert_eq!(
        c.properties
            .get("channel.operatorVariant")
            .map(String::as_str),
        Some("upstream-alpine")
    );
    for args in [
        vec![
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "k.pem",
        ],
        vec!["pkey", "-in", "k.pem", "-pubout", "-out", "k.pub"],
    ] {
        let o = Command::new(support::require("openssl"))
            .args(&args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let results = dir.join("reports/results.json");
    let o = Command::new(support::binary())
        .args(["report", "attest"])
        .arg(&results)
        .arg("--key")
        .arg(dir.join("k.pem"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let statement: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("reports/attestation-upstream-v2.9.4.statement.json")).unwrap(),
    )
    .unwrap();
    let subjects = statement["subject"].as_array().unwrap();
    assert_eq!(subjects.len(), 7, "{statement}");
    assert!(
        subjects
            .iter()
            .any(|s| s["name"] == "ghcr.io/fluxcd/source-controller"
                && s["digest"]["sha256"]
                    == "8a8ed0a57b8b86f561d5a4309a69f65e62f0cebe4de8801593c5ff35a3bc3c23")
    );
    assert_eq!(
        statement["predicate"]["inputs"]["matrix"]["sha256"],
        sha.as_str()
    );
    assert_eq!(statement["predicate"]["verdict"], "pass");
    let o = Command::new(support::binary())
        .args(["report", "verify"])
        .arg(dir.join("reports/attestation.intoto.jsonl"))
        .arg("--key")
        .arg(dir.join("k.pub"))
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test]
async fn a_wrong_outcome_is_a_failure_with_diagnostics_of_the_touched_objects() {
    let (r, dir) = run("goodbye").await;
    let c = &r.cells[0];
    let s = &c.scenarios[0];
    assert_eq!(s.status, Status::Fail, "{s:#?}");
    assert!(
        s.message.as_deref().unwrap_or("").contains("greeting"),
        "{s:#?}"
    );
    let rel = s.artifacts.as_deref().expect("artifacts recorded");
    assert!(dir.path().join("reports").join(rel).is_dir(), "{rel}");
    assert_eq!(c.status, Status::Fail);
}
