//! Runner overhead per cell: the whole cell pipeline (phases, events, cleanup registry, report
//! rendering and atomic writes after every cell) with providers and stages that do nothing, so
//! everything measured is harness time.

use criterion::{Criterion, criterion_group, criterion_main};
use flux_compat::cluster::{Cluster, ClusterError, ClusterSpec, Provider};
use flux_compat::model::matrix::Timeouts;
use flux_compat::model::{ScenarioResult, Status};
use flux_compat::plan::{Plan, PlannedCell, PlannedScenario};
use flux_compat::report::live::ReportWriter;
use flux_compat::runner::stages::{CellCtx, FluxStage, PhaseError, Properties, ScenarioRunner};
use flux_compat::runner::{self, Keep, RunConfig, Stages};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

struct Instant;

impl Provider for Instant {
    fn kind(&self) -> &'static str {
        "bench"
    }
    fn up<'a>(
        &'a self,
        spec: &'a ClusterSpec,
        _: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Cluster, ClusterError>> {
        Box::pin(async move {
            Ok(Cluster {
                name: spec.name.clone(),
                kubeconfig: spec.work_dir.join("kubeconfig"),
                context: spec.name.clone(),
                kubernetes_version: None,
                properties: BTreeMap::new(),
            })
        })
    }
    fn down<'a>(&'a self, _: &'a ClusterSpec) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async { Ok(()) })
    }
    fn describe(&self, _: &ClusterSpec) -> Vec<String> {
        Vec::new()
    }
}

impl FluxStage for Instant {
    fn install<'a>(&'a self, _: &'a CellCtx) -> BoxFuture<'a, Result<Properties, PhaseError>> {
        Box::pin(async { Ok(Properties::new()) })
    }
    fn verify<'a>(&'a self, _: &'a CellCtx) -> BoxFuture<'a, Result<Properties, PhaseError>> {
        Box::pin(async { Ok(Properties::from([("image.x".into(), "sha256:0".into())])) })
    }
}

impl ScenarioRunner for Instant {
    fn run<'a>(&'a self, _: &'a CellCtx, s: &'a PlannedScenario) -> BoxFuture<'a, ScenarioResult> {
        Box::pin(async move {
            ScenarioResult {
                name: s.name.clone(),
                tags: vec![],
                status: Status::Pass,
                message: None,
                duration_ms: 0,
                steps: vec![],
                diagnostics: None,
                artifacts: None,
                properties: BTreeMap::new(),
            }
        })
    }
}

fn plan(cells: usize, scenarios: usize) -> Plan {
    let cells: Vec<_> = (0..cells)
        .map(|i| PlannedCell {
            id: format!("1.{i}-upstream-v2.9.4-kind"),
            kubernetes: format!("1.{i}").parse().unwrap(),
            kubernetes_version: format!("v1.{i}.0"),
            node_image: None,
            channel: "upstream".into(),
            fips: false,
            flux: "v2.9.4".parse().unwrap(),
            provider: "kind".into(),
            skip: None,
            scenarios: (0..scenarios)
                .map(|j| PlannedScenario {
                    name: format!("s{j}"),
                    tags: vec![],
                    skip: None,
                })
                .collect(),
        })
        .collect();
    Plan {
        total_cells: cells.len(),
        cells,
        partition: None,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = Arc::new(Instant);
    let stages = Stages {
        providers: BTreeMap::from([("kind".to_string(), p.clone() as Arc<dyn Provider>)]),
        fixtures: None,
        flux: p.clone(),
        scenarios: p,
        diagnostics: None,
    };
    let mut g = c.benchmark_group("runner");
    for (cells, scenarios) in [(6, 10), (18, 10)] {
        let plan = plan(cells, scenarios);
        g.bench_function(format!("{cells} cells x {scenarios} scenarios"), |b| {
            b.iter(|| {
                let cfg = RunConfig {
                    run_id: "bench".into(),
                    report_dir: dir.path().join("reports"),
                    work_dir: dir.path().join("work"),
                    jobs: 4,
                    cluster_creates: 2,
                    fail_fast: false,
                    keep: Keep::None,
                    timeouts: Timeouts::default(),
                    partitions: vec![],
                    registry_token: None,
                };
                let writer = Arc::new(ReportWriter::new(&cfg.report_dir));
                rt.block_on(runner::run(
                    &plan,
                    cfg,
                    stages.clone(),
                    writer,
                    CancellationToken::new(),
                ))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
