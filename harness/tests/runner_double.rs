//! The runner's real wiring below the cluster: the existing-cluster provider, the Flux stage
//! (flux module install + image verification) and k8s diagnostics, against the in-process API
//! server TEST DOUBLE (the real path runs on kind in the e2e workflow). Scenarios use a test
//! implementation: the scenario engine is another module's.

#[allow(unused_imports, clippy::type_complexity)] // only the API server double is used here
mod support;

use flux_compat::cluster::existing::{ExistingProvider, RUN_LABEL};
use flux_compat::cluster::{ClusterError, ClusterSpec, Provider};
use flux_compat::config::{self, Sources};
use flux_compat::flux::manifests::ManifestSource;
use flux_compat::model::{ScenarioResult, Status};
use flux_compat::plan::{Plan, PlannedCell, PlannedScenario};
use flux_compat::runner::diagnostics::KubeDiagnostics;
use flux_compat::runner::events::Recorder;
use flux_compat::runner::flux_stage::ChannelStage;
use flux_compat::runner::stages::{CellCtx, ScenarioRunner};
use flux_compat::runner::{self, Keep, RunConfig, Stages};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use support::apiserver::{ApiServer, CONTEXT, Options};
use tokio_util::sync::CancellationToken;

fn spec(dir: &std::path::Path, minor: &str) -> ClusterSpec {
    ClusterSpec {
        run_id: "r1".into(),
        cell_id: format!("{minor}-upstream-v2.9.4-double"),
        name: "unused".into(),
        kubernetes_minor: minor.into(),
        node_image: None,
        work_dir: dir.join("work"),
        artifacts_dir: dir.join("artifacts"),
        create_timeout: Duration::from_secs(10),
        delete_timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn existing_provider_checks_the_version_and_removes_only_its_namespaces() {
    let server = ApiServer::start(Options::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = server.write_kubeconfig(dir.path());
    let never = CancellationToken::new();
    let p = ExistingProvider::new(Some(&kc), CONTEXT).unwrap();
    let c = p.up(&spec(dir.path(), "1.36"), &never).await.unwrap();
    assert_eq!(c.kubernetes_version.as_deref(), Some("v1.36.4"));
    let e = p.up(&spec(dir.path(), "1.37"), &never).await.unwrap_err();
    assert!(matches!(e, ClusterError::VersionMismatch { .. }), "{e}");
    assert!(e.to_string().contains("expects 1.37"), "{e}");
    let wrong = ExistingProvider::new(Some(&kc), "prod").unwrap();
    let e = wrong
        .up(&spec(dir.path(), "1.36"), &never)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("known contexts: `flux-compat-double`"),
        "{e}"
    );

    let client = flux_compat::k8s::Kube::connect(&kc, CONTEXT)
        .await
        .unwrap()
        .client()
        .clone();
    let ns: Api<Namespace> = Api::all(client);
    for (name, run) in [
        ("ours", Some("r1")),
        ("other-run", Some("r0")),
        ("customer", None),
    ] {
        let labels = run.map(|r| BTreeMap::from([(RUN_LABEL.to_string(), r.to_string())]));
        ns.create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    labels,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    p.down(&spec(dir.path(), "1.36")).await.unwrap();
    let left: Vec<String> = ns
        .list(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(!left.contains(&"ours".to_string()), "{left:?}");
    assert!(left.contains(&"other-run".to_string()) && left.contains(&"customer".to_string()));
}

struct PassingScenarios;

impl ScenarioRunner for PassingScenarios {
    fn run<'a>(&'a self, _: &'a CellCtx, s: &'a PlannedScenario) -> BoxFuture<'a, ScenarioResult> {
        Box::pin(async move {
            ScenarioResult {
                name: s.name.clone(),
                tags: vec![],
                status: Status::Pass,
                message: None,
                duration_ms: 1,
                steps: vec![],
                diagnostics: None,
                artifacts: None,
                properties: BTreeMap::new(),
            }
        })
    }
}

async fn run_cell(
    running_digest: Option<(&str, &str)>,
) -> (flux_compat::model::RunResult, tempfile::TempDir) {
    let mut options = Options::default();
    if let Some((deploy, digest)) = running_digest {
        options
            .script
            .running_digest
            .insert(deploy.into(), digest.into());
    }
    let server = ApiServer::start(options).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = server.write_kubeconfig(dir.path());
    let root = support::root();
    let loaded = config::load(&Sources {
        matrix: root.join("matrix.yaml"),
        scenarios_dir: None,
    })
    .unwrap_or_else(|p| panic!("{p:?}"));
    let flux = ChannelStage::new(
        Arc::new(loaded.matrix.clone()),
        ManifestSource::File(support::flux_manifests("v2.9.4")),
        "flux-compat".into(),
    );
    let plan = Plan {
        cells: vec![PlannedCell {
            id: "1.36-upstream-v2.9.4-double".into(),
            kubernetes: "1.36".parse().unwrap(),
            kubernetes_version: String::new(),
            node_image: None,
            channel: "upstream".into(),
            fips: false,
            flux: "v2.9.4".parse().unwrap(),
            provider: "double".into(),
            skip: None,
            scenarios: vec![PlannedScenario {
                name: "git-kustomization".into(),
                tags: vec![],
                skip: None,
            }],
        }],
        partition: None,
        total_cells: 1,
    };
    let mut timeouts = loaded.matrix.timeouts.clone();
    timeouts.install = Duration::from_secs(30);
    timeouts.verify = Duration::from_secs(30);
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
        fixtures: None,
        flux: Arc::new(flux),
        fips: None,
        scenarios: Arc::new(PassingScenarios),
        diagnostics: Some(Arc::new(KubeDiagnostics)),
    };
    let r = runner::run(
        &plan,
        cfg,
        stages,
        Arc::new(Recorder::default()),
        CancellationToken::new(),
    )
    .await;
    drop(server);
    (r, dir)
}

#[tokio::test]
async fn a_cell_installs_and_verifies_flux_on_the_double() {
    let (r, _dir) = run_cell(None).await;
    let c = &r.cells[0];
    let phases: Vec<(&str, Status)> = c
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.status))
        .collect();
    assert_eq!(
        phases,
        [
            ("cluster", Status::Pass),
            ("install", Status::Pass),
            ("verify-images", Status::Pass),
            ("teardown", Status::Pass)
        ],
        "{c:#?}"
    );
    assert_eq!(c.status, Status::Pass);
    assert_eq!(c.kubernetes_version.as_deref(), Some("v1.36.4"));
    assert!(
        c.properties
            .keys()
            .any(|k| k.starts_with("image.source-controller")),
        "{:?}",
        c.properties
    );
}

#[tokio::test]
async fn a_digest_mismatch_fails_the_cell_and_collects_diagnostics() {
    let wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let (r, dir) = run_cell(Some(("source-controller", wrong))).await;
    let c = &r.cells[0];
    let verify = c.phases.iter().find(|p| p.name == "verify-images").unwrap();
    assert_eq!(verify.status, Status::Fail, "{c:#?}");
    assert!(
        verify
            .message
            .as_deref()
            .unwrap()
            .contains("source-controller")
    );
    assert_eq!(c.status, Status::Fail);
    assert_eq!(
        c.scenarios[0].status,
        Status::Skip,
        "scenarios do not run on unverified Flux"
    );
    let diag = c
        .phases
        .iter()
        .find(|p| p.name == "diagnostics")
        .expect("diagnostics phase");
    assert_eq!(diag.status, Status::Pass, "{diag:?}");
    let artifacts = dir
        .path()
        .join("reports/artifacts/1.36-upstream-v2.9.4-double/diagnostics");
    assert!(
        std::fs::read_dir(&artifacts)
            .map(|d| d.count() > 0)
            .unwrap_or(false),
        "diagnostics written under {}",
        artifacts.display()
    );
    assert_eq!(flux_compat::app::outcome_code(&r), 1);
}
