//! The whole scenario library end to end, one cell per channel, through the same `run` stages a
//! real cell uses (fixture plane, install, verify-images, scenarios, diagnostics, teardown) on
//! the API server TEST DOUBLE loaded with the real Flux v2.9.4 install manifests (v2.8.8 for the
//! upgrade scenario's first install), its imitated controllers fetching from the cell's fixture
//! plane for real. Every scenario passes, or is skipped with the reason the plan gives.

#[allow(unused_imports, clippy::type_complexity)]
mod support;

use flux_compat::cluster::Provider;
use flux_compat::cluster::existing::ExistingProvider;
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
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use support::apiserver::{ApiServer, CONTEXT, Options};
use support::double_fips::{DoubleImages, tls_variant};
use tokio_util::sync::CancellationToken;

/// One channel's cell on a double of its own.
async fn run_channel(
    channel: &str,
    dir: &std::path::Path,
) -> (RunResult, Vec<(String, Option<String>)>) {
    let channel_fips = channel == "fips";
    let tls_client = support::tlspeer(tls_variant(channel_fips));
    let server = ApiServer::start(Options {
        tls: true,
        flux_tools: support::apiserver::flux::common::Tools {
            helm_template: Some(support::go_fixture("helmtemplate")),
            tls_client: Some(tls_client.clone()),
        },
        ..Options::default()
    })
    .await;
    let dir = dir.join(channel);
    std::fs::create_dir_all(&dir).unwrap();
    let kc = server.write_kubeconfig(&dir);
    let root = support::root();
    let loaded = support::apiserver::matrix_with_double(&kc, None);
    // `LIBRARY_DOUBLE_SCENARIOS=a,b` narrows the run while debugging one scenario.
    let scenarios: Vec<String> = std::env::var("LIBRARY_DOUBLE_SCENARIOS")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let filter = Filter {
        providers: vec!["double".into()],
        channels: vec![channel.into()],
        scenarios,
        ..Filter::default()
    };
    let plan = plan::build(&loaded.matrix, &loaded.scenarios, &filter, None);
    assert_eq!(plan.cells.len(), 1, "one cell per channel");
    let planned: Vec<(String, Option<String>)> = plan.cells[0]
        .scenarios
        .iter()
        .map(|s| (s.name.clone(), s.skip.clone()))
        .collect();
    let matrix = Arc::new(loaded.matrix.clone());
    let manifests = ManifestSource::Dir(support::flux_manifest_dir(&["v2.9.4", "v2.8.8"], &dir));
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
    timeouts.step = Duration::from_secs(30);
    timeouts.scenario = Duration::from_secs(90);
    timeouts.teardown = Duration::from_secs(30);
    let cfg = RunConfig {
        run_id: format!("lib-{channel}"),
        report_dir: dir.join("reports"),
        work_dir: dir.join("work"),
        jobs: 1,
        cluster_creates: 1,
        fail_fast: false,
        keep: Keep::None,
        timeouts,
        partitions: vec![],
        // The enterprise channels' pull secret is created from it; the double pulls nothing.
        registry_token: Some(Secret::new("library-double-token")),
    };
    let stages = Stages {
        providers: BTreeMap::from([(
            "double".to_string(),
            Arc::new(ExistingProvider::new(Some(&kc), CONTEXT).unwrap()) as Arc<dyn Provider>,
        )]),
        fixtures: Some(fixtures),
        flux: Arc::new(ChannelStage::new(matrix, manifests, "flux-compat".into())),
        fips: Some(Arc::new(DoubleImages {
            binary: tls_client,
            components: loaded.matrix.components.clone(),
        })),
        scenarios: Arc::new(scenarios),
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
    (r, planned)
}

fn check(r: &RunResult, channel: &str, loaded_plan: &[(String, Option<String>)]) -> Vec<String> {
    let mut problems = Vec::new();
    let c = &r.cells[0];
    for p in &c.phases {
        if p.status != Status::Pass {
            problems.push(format!(
                "{channel}: phase {} {:?}: {:?}",
                p.name, p.status, p.message
            ));
        }
    }
    for s in &c.scenarios {
        let planned_skip = loaded_plan
            .iter()
            .find(|(n, _)| *n == s.name)
            .and_then(|(_, skip)| skip.clone());
        match (s.status, planned_skip) {
            (Status::Pass, None) => {}
            (Status::Skip, Some(reason)) if s.message.as_deref() == Some(reason.as_str()) => {}
            (status, skip) => {
                let failing: Vec<String> = s
                    .steps
                    .iter()
                    .filter(|st| !matches!(st.status, Status::Pass | Status::Skip))
                    .map(|st| {
                        format!(
                            "{} ({:?}): {}",
                            st.name,
                            st.status,
                            st.message.as_deref().unwrap_or("")
                        )
                    })
                    .collect();
                problems.push(format!(
                    "{channel}/{}: {status:?} (plan: {skip:?}) {:?}\n    {}\n    diagnostics: {}",
                    s.name,
                    s.message,
                    failing.join("\n    "),
                    s.diagnostics
                        .as_deref()
                        .unwrap_or("-")
                        .replace('\n', "\n      ")
                ));
            }
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_library_scenario_passes_on_each_channel() {
    let dir = tempfile::tempdir().unwrap();
    let all = ["upstream", "mainline", "fips"];
    let only = std::env::var("LIBRARY_DOUBLE_CHANNELS").unwrap_or_default();
    let channels: Vec<&str> = all
        .iter()
        .copied()
        .filter(|c| only.is_empty() || only.split(',').any(|o| o == *c))
        .collect();
    let started = std::time::Instant::now();
    let runs = futures::future::join_all(channels.iter().map(|c| run_channel(c, dir.path()))).await;
    let mut problems = Vec::new();
    let mut counts = BTreeMap::new();
    for (channel, (r, planned)) in channels.iter().zip(&runs) {
        assert_eq!(r.cells.len(), 1, "{channel}: {r:#?}");
        for s in &r.cells[0].scenarios {
            *counts.entry(format!("{:?}", s.status)).or_insert(0) += 1;
            eprintln!(
                "{channel}/{}: {:?} in {} ms",
                s.name, s.status, s.duration_ms
            );
        }
        problems.extend(check(r, channel, planned));
    }
    eprintln!(
        "library on the double: {counts:?} in {:?}",
        started.elapsed()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    if std::env::var_os("LIBRARY_DOUBLE_SCENARIOS").is_none() && only.is_empty() {
        assert_eq!(
            counts.values().sum::<usize>(),
            36,
            "12 scenarios x 3 channels"
        );
    }
}
