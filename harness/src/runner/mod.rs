//! The runner: the only place that wires providers, fixtures, Flux and scenarios together. Cells
//! run concurrently (bounded by `jobs`, cluster creation by its own semaphore); each cell goes
//! cluster up → fixtures up → Flux installed → images verified → scenarios → diagnostics →
//! teardown, every phase timed and recorded. It emits events and never prints.

pub mod cleanup;
pub mod deadline;
pub mod diagnostics;
pub mod events;
pub mod fips_stage;
pub mod fixture_stage;
pub mod flux_stage;
pub mod reachability;
pub mod scenario_stage;
pub mod secret;
pub mod stages;

use crate::cluster::{self, ClusterSpec, Provider};
use crate::model::matrix::{SCENARIO_CAP, Timeouts};
use crate::model::{CellResult, PhaseResult, RunResult, ScenarioResult, Status};
use crate::plan::{Plan, PlannedCell, PlannedScenario};
use cleanup::Registry;
use events::{EventSink, RunEvent};
use stages::{
    CellCtx, Diagnostics, FipsEvidence, FixturePlane, FluxStage, PhaseError, Properties,
    ScenarioRunner,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Which clusters survive the run (`--keep`). An interrupted run keeps nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Keep {
    /// Delete every cluster.
    #[default]
    None,
    /// Keep clusters of cells that failed or errored, for debugging.
    Failed,
    /// Keep every cluster.
    All,
}

/// The immutable run configuration, resolved once from flags, environment and the matrix.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub run_id: String,
    /// `reports/<run-id>/`.
    pub report_dir: PathBuf,
    /// Scratch space: kubeconfigs, generated kind configs.
    pub work_dir: PathBuf,
    pub jobs: usize,
    pub cluster_creates: usize,
    pub fail_fast: bool,
    pub keep: Keep,
    pub timeouts: Timeouts,
    pub partitions: Vec<String>,
    pub registry_token: Option<secret::Secret>,
}

/// What the runner drives. `providers` is keyed by the matrix provider name.
#[derive(Clone)]
pub struct Stages {
    pub providers: BTreeMap<String, Arc<dyn Provider>>,
    pub fixtures: Option<Arc<dyn FixturePlane>>,
    pub flux: Arc<dyn FluxStage>,
    /// The `verify-fips` phase; `None` skips it (it pulls every controller image).
    pub fips: Option<Arc<dyn FipsEvidence>>,
    pub scenarios: Arc<dyn ScenarioRunner>,
    pub diagnostics: Option<Arc<dyn Diagnostics>>,
}

/// Cells at once when the matrix says 0: a kind cluster with Flux wants about one CPU pair and
/// 3 GiB, so min(cpus/2, mem_gib/3), at least 1.
pub fn default_jobs() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| parse_mem_total_gib(&m))
        .unwrap_or(3);
    jobs_for(cpus, mem_gib)
}

pub fn jobs_for(cpus: usize, mem_gib: usize) -> usize {
    (cpus / 2).min(mem_gib / 3).max(1)
}

fn parse_mem_total_gib(meminfo: &str) -> Option<usize> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / (1024 * 1024))
}

/// A fresh run id: UTC time plus a few random-ish bits, valid in cluster names and paths.
pub fn new_run_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    let noise = (now.nanosecond() ^ std::process::id()) & 0xfff;
    format!(
        "{:02}{:02}{:02}-{:02}{:02}{:02}-{noise:03x}",
        now.year() % 100,
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The cluster spec of a cell.
pub fn cluster_spec(cfg: &RunConfig, cell: &PlannedCell) -> ClusterSpec {
    ClusterSpec {
        run_id: cfg.run_id.clone(),
        cell_id: cell.id.clone(),
        name: cluster::cluster_name(&cfg.run_id, &cell.id),
        kubernetes_minor: cell.kubernetes.to_string(),
        node_image: cell.node_image.clone(),
        work_dir: cfg.work_dir.join(cluster::names::sanitise(&cell.id)),
        artifacts_dir: cfg.report_dir.join("artifacts").join(&cell.id),
        create_timeout: cfg.timeouts.cluster_create,
        delete_timeout: cfg.timeouts.teardown,
    }
}

/// `--dry-run`: what every cell would create, changing nothing. Only providers describe
/// themselves; the Flux and scenario lines come from the plan.
pub fn describe(
    plan: &Plan,
    cfg: &RunConfig,
    providers: &BTreeMap<String, Arc<dyn Provider>>,
    with_fixtures: bool,
) -> Vec<(String, Vec<String>)> {
    plan.cells
        .iter()
        .map(|cell| {
            let mut lines = Vec::new();
            if let Some(reason) = &cell.skip {
                lines.push(format!("skip: {reason}"));
                return (cell.id.clone(), lines);
            }
            match providers.get(&cell.provider) {
                Some(p) => lines.extend(p.describe(&cluster_spec(cfg, cell))),
                None => lines.push(format!("no provider `{}` configured", cell.provider)),
            }
            if with_fixtures {
                lines.push(
                    "start the fixture servers (git, Helm, OCI over TLS) and the FIPS TLS challenge endpoints"
                        .into(),
                );
            }
            lines.push(format!(
                "install Flux {} from channel `{}` and verify every controller image digest",
                cell.flux, cell.channel
            ));
            lines.push(format!(
                "inspect every controller image of `{}` (FIPS family, Go version, base) and check the running Pods' GODEBUG",
                cell.channel
            ));
            for s in &cell.scenarios {
                match &s.skip {
                    None => lines.push(format!("run scenario `{}`", s.name)),
                    Some(r) => lines.push(format!("skip scenario `{}`: {r}", s.name)),
                }
            }
            (cell.id.clone(), lines)
        })
        .collect()
}

/// Shared by every cell task of one run.
struct Shared {
    cfg: RunConfig,
    stages: Stages,
    sink: Arc<dyn EventSink>,
    registry: Arc<Registry>,
    creates: Semaphore,
    /// Ctrl-C / SIGTERM: the run is interrupted.
    cancel: CancellationToken,
    /// Interrupted or past the deadline: running phases stop.
    stop: CancellationToken,
    /// The run deadline, when one is enforced.
    deadline: Option<Duration>,
}

impl Shared {
    /// Why running work stops: an interruption or the deadline.
    fn stop_reason(&self) -> String {
        match self.deadline {
            Some(d) if !self.cancel.is_cancelled() => format!(
                "the run deadline of {} passed",
                humantime::format_duration(d)
            ),
            _ => "interrupted".into(),
        }
    }

    fn past_deadline(&self) -> bool {
        self.stop.is_cancelled() && !self.cancel.is_cancelled()
    }
}

/// Run every cell of the plan. Always returns a result (also when interrupted); reports are
/// the sink's business.
pub async fn run(
    plan: &Plan,
    cfg: RunConfig,
    stages: Stages,
    sink: Arc<dyn EventSink>,
    cancel: CancellationToken,
) -> RunResult {
    run_until(plan, cfg, stages, sink, cancel, None).await
}

/// [`run`] with a deadline for the run's working time: when it passes, running phases and
/// scenarios stop as errors naming the deadline, cells not started are errors, and every cell
/// is still torn down (under the teardown timeout) and written.
pub async fn run_until(
    plan: &Plan,
    cfg: RunConfig,
    stages: Stages,
    sink: Arc<dyn EventSink>,
    cancel: CancellationToken,
    deadline: Option<Duration>,
) -> RunResult {
    let mut result = RunResult::new(&cfg.run_id, crate::report::now_rfc3339());
    result.partitions = cfg.partitions.clone();
    sink.emit(&RunEvent::RunStarted {
        run_id: cfg.run_id.clone(),
        started_at: result.started_at.clone(),
        partitions: cfg.partitions.clone(),
        cells: plan.cells.iter().map(|c| c.id.clone()).collect(),
        report_dir: cfg.report_dir.clone(),
    });
    let stop = cancel.child_token();
    let timer = deadline.map(|d| {
        let (stop, sink) = (stop.clone(), sink.clone());
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            sink.emit(&RunEvent::DeadlinePassed { deadline: d });
            stop.cancel();
        })
    });
    let shared = Arc::new(Shared {
        creates: Semaphore::new(cfg.cluster_creates.max(1)),
        cfg,
        stages,
        sink: sink.clone(),
        registry: Arc::new(Registry::new()),
        cancel: cancel.clone(),
        stop: stop.clone(),
        deadline,
    });
    let jobs = Arc::new(Semaphore::new(shared.cfg.jobs.max(1)));
    // Fail-fast stops starting cells; Ctrl-C and the deadline also stop running ones.
    let stop_new = stop.child_token();
    let mut tasks = tokio::task::JoinSet::new();
    let mut task_cells = std::collections::HashMap::new();
    for (idx, cell) in plan.cells.iter().cloned().enumerate() {
        let shared = shared.clone();
        let jobs = jobs.clone();
        let stop_new = stop_new.clone();
        let planned = cell.clone();
        let handle = tasks.spawn(async move {
            let permit = tokio::select! {
                biased;
                _ = stop_new.cancelled() => None,
                p = jobs.acquire_owned() => p.ok(),
            };
            let Some(_permit) = permit else {
                return (idx, not_started(&shared, &cell));
            };
            // An inner task turns a panic into a cell error instead of losing the cell.
            let span = tracing::info_span!("cell", id = %cell.id);
            let inner = tokio::spawn(tracing::Instrument::instrument(
                run_cell(shared.clone(), cell.clone()),
                span,
            ));
            let joined = inner.await;
            // Stop new cells while this one still holds its slot, so no waiting cell slips in.
            if shared.cfg.fail_fast
                && joined
                    .as_ref()
                    .map_or(true, |r| matches!(r.status, Status::Fail | Status::Error))
            {
                stop_new.cancel();
            }
            match joined {
                Ok(r) => (idx, r),
                Err(e) => {
                    let leftovers = shared.registry.take_scope(&cell.id);
                    for f in cleanup::tear_down(leftovers, shared.cfg.timeouts.teardown).await {
                        shared.sink.emit(&RunEvent::CleanupFailed {
                            cell: cell.id.clone(),
                            what: f.label,
                            message: f.message,
                        });
                    }
                    let mut r = not_run(&cell, "");
                    r.status = Status::Error;
                    r.message = Some(format!(
                        "the harness panicked in this cell: {}",
                        panic_text(e)
                    ));
                    r.scenarios.iter_mut().for_each(|s| {
                        s.message = Some("not run: the harness panicked in this cell".into());
                    });
                    (idx, r)
                }
            }
        });
        task_cells.insert(handle.id(), (idx, planned));
    }
    let mut done: Vec<(usize, CellResult)> = Vec::new();
    let mut interrupted_emitted = false;
    while let Some(joined) = tasks.join_next_with_id().await {
        let (idx, cell) = match joined {
            Ok((_, x)) => x,
            // The outer task only awaits the inner one and tears down panic-safely; should it
            // still fail, the cell is an error and its leftovers go in the final sweep.
            Err(e) => {
                let Some((idx, planned)) = task_cells.get(&e.id()) else {
                    continue;
                };
                let mut r = not_run(planned, "");
                r.status = Status::Error;
                r.message = Some(format!("the harness failed in this cell: {e}"));
                (*idx, r)
            }
        };
        if cancel.is_cancelled() && !interrupted_emitted {
            interrupted_emitted = true;
            sink.emit(&RunEvent::Interrupted);
        }
        sink.emit(&RunEvent::CellFinished {
            result: Box::new(cell.clone()),
        });
        done.push((idx, cell));
    }
    if let Some(t) = timer {
        t.abort();
    }
    // Anything a cell registered and did not tear down (it panicked mid-way) goes now.
    for f in cleanup::tear_down(shared.registry.take_all(), shared.cfg.timeouts.teardown).await {
        sink.emit(&RunEvent::CleanupFailed {
            cell: "run".into(),
            what: f.label,
            message: f.message,
        });
    }
    done.sort_by_key(|(i, _)| *i);
    result.cells = done.into_iter().map(|(_, c)| c).collect();
    result.interrupted = cancel.is_cancelled();
    if result.interrupted && !interrupted_emitted {
        sink.emit(&RunEvent::Interrupted);
    }
    result.complete = !result.interrupted;
    result.finished_at = Some(crate::report::now_rfc3339());
    sink.emit(&RunEvent::RunFinished {
        result: Box::new(result.clone()),
    });
    result
}

fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic)".into()),
        Err(e) => e.to_string(),
    }
}

fn base_result(cell: &PlannedCell) -> CellResult {
    CellResult {
        id: cell.id.clone(),
        kubernetes_minor: cell.kubernetes.to_string(),
        kubernetes_version: (!cell.kubernetes_version.is_empty())
            .then(|| cell.kubernetes_version.clone()),
        node_image: cell.node_image.clone(),
        channel: cell.channel.clone(),
        flux_version: cell.flux.to_string(),
        provider: cell.provider.clone(),
        status: Status::Pass,
        message: None,
        started_at: crate::report::now_rfc3339(),
        duration_ms: 0,
        properties: BTreeMap::new(),
        phases: Vec::new(),
        scenarios: Vec::new(),
    }
}

fn skipped_scenario(s: &PlannedScenario, reason: &str) -> ScenarioResult {
    ScenarioResult {
        name: s.name.clone(),
        tags: s.tags.clone(),
        status: Status::Skip,
        message: Some(s.skip.clone().unwrap_or_else(|| reason.to_string())),
        duration_ms: 0,
        steps: Vec::new(),
        diagnostics: None,
        artifacts: None,
        properties: BTreeMap::new(),
    }
}

/// A cell that got no slot: skipped when the run was interrupted or `--fail-fast` stopped it,
/// an error when the deadline passed first (it was planned to run and did not).
fn not_started(sh: &Shared, cell: &PlannedCell) -> CellResult {
    if cell.skip.is_none() && sh.past_deadline() {
        let why = format!("not run: {} before the cell started", sh.stop_reason());
        let mut r = not_run(cell, &why);
        r.status = Status::Error;
        return r;
    }
    let why = if sh.cancel.is_cancelled() {
        "not run: the run was interrupted"
    } else {
        "not run: --fail-fast stopped the run after a failure"
    };
    not_run(cell, why)
}

/// A cell that never started: skipped with the reason, every scenario too.
fn not_run(cell: &PlannedCell, why: &str) -> CellResult {
    let mut r = base_result(cell);
    let why = cell.skip.as_deref().unwrap_or(why);
    r.status = Status::Skip;
    r.message = Some(why.to_string());
    r.scenarios = cell
        .scenarios
        .iter()
        .map(|s| skipped_scenario(s, why))
        .collect();
    r
}

/// Run one phase under its timeout and the run's cancellation, emitting start and finish.
async fn phase<T>(
    sh: &Shared,
    cell: &str,
    name: &str,
    timeout: Duration,
    fut: impl Future<Output = Result<T, PhaseError>>,
) -> (PhaseResult, Option<T>) {
    sh.sink.emit(&RunEvent::PhaseStarted {
        cell: cell.to_string(),
        phase: name.to_string(),
    });
    let start = Instant::now();
    let outcome = tokio::select! {
        r = tokio::time::timeout(timeout, fut) => match r {
            Ok(r) => r,
            Err(_) => Err(PhaseError::error(format!(
                "`{name}` did not finish within {}", humantime::format_duration(timeout)))),
        },
        _ = sh.stop.cancelled() => Err(PhaseError::error(sh.stop_reason())),
    };
    let (status, message, diagnostics, value) = match outcome {
        Ok(v) => (Status::Pass, None, None, Some(v)),
        Err(e) => (e.status, Some(e.message), e.diagnostics, None),
    };
    let message = message.map(crate::redact::owned);
    let diagnostics = diagnostics.map(crate::redact::owned);
    let result = PhaseResult {
        name: name.to_string(),
        status,
        message,
        duration_ms: ms(start.elapsed()),
        diagnostics,
    };
    sh.sink.emit(&RunEvent::PhaseFinished {
        cell: cell.to_string(),
        result: result.clone(),
    });
    (result, value)
}

async fn run_cell(sh: Arc<Shared>, cell: PlannedCell) -> CellResult {
    if cell.skip.is_some() {
        return not_run(&cell, "");
    }
    let start = Instant::now();
    sh.sink.emit(&RunEvent::CellStarted {
        cell: cell.id.clone(),
    });
    let mut r = base_result(&cell);
    // A placeholder from the start: a job killed mid-cell still leaves the cell, as an error.
    let mut placeholder = not_run(&cell, "not run: the cell did not finish");
    placeholder.status = Status::Error;
    placeholder.message = Some(crate::report::live::did_not_finish("its start"));
    sh.sink.emit(&RunEvent::CellRecorded {
        result: Box::new(placeholder),
        in_progress: true,
    });
    let spec = cluster_spec(&sh.cfg, &cell);
    let mut blocked: Option<String> = None;
    let mut ctx: Option<CellCtx> = None;

    match sh.stages.providers.get(&cell.provider).cloned() {
        None => {
            let known: Vec<_> = sh
                .stages
                .providers
                .keys()
                .map(|k| format!("`{k}`"))
                .collect();
            let msg = format!(
                "no provider `{}` is configured; known providers: {}",
                cell.provider,
                known.join(", ")
            );
            r.phases.push(PhaseResult {
                name: "cluster".into(),
                status: Status::Error,
                message: Some(msg.clone()),
                duration_ms: 0,
                diagnostics: None,
            });
            blocked = Some(msg);
        }
        Some(provider) => {
            // Registered before creation starts: an interrupted `kind create` leaves a
            // half-made cluster that must go too.
            let (p, s) = (provider.clone(), spec.clone());
            // An existing cluster is never deleted: only what this run created in it goes.
            let label = match provider.kind() {
                "existing" => format!(
                    "remove what run `{}` created in the existing cluster",
                    spec.run_id
                ),
                _ => format!("delete cluster `{}`", spec.name),
            };
            sh.registry.register(&cell.id, label, move || {
                Box::pin(async move { p.down(&s).await.map_err(|e| e.chain()) })
            });
            let create = async {
                let _permit = sh
                    .creates
                    .acquire()
                    .await
                    .map_err(|_| PhaseError::error("cluster creation queue closed"))?;
                provider
                    .up(&spec, &sh.stop)
                    .await
                    .map_err(|e| PhaseError::error(e.chain()))
            };
            // The provider enforces the create timeout itself (kind `--wait`); this outer limit
            // also covers waiting for a creation slot.
            let outer = sh.cfg.timeouts.cluster_create * 3 + Duration::from_secs(60);
            let (pr, cluster) = phase(&sh, &cell.id, "cluster", outer, create).await;
            if pr.status != Status::Pass {
                blocked = Some(format!(
                    "cluster: {}",
                    pr.message.clone().unwrap_or_default()
                ));
            }
            r.phases.push(pr);
            if let Some(c) = cluster {
                if c.kubernetes_version.is_some() {
                    r.kubernetes_version = c.kubernetes_version.clone();
                }
                r.properties.extend(c.properties.clone());
                ctx = Some(CellCtx {
                    run_id: sh.cfg.run_id.clone(),
                    cell: cell.clone(),
                    cluster: c,
                    artifacts_dir: spec.artifacts_dir.clone(),
                    work_dir: spec.work_dir.clone(),
                    cleanup: cleanup::Scope {
                        registry: sh.registry.clone(),
                        scope: cell.id.clone(),
                    },
                    cancel: sh.stop.clone(),
                    timeouts: sh.cfg.timeouts.clone(),
                    registry_token: sh.cfg.registry_token.clone(),
                    properties: Properties::new(),
                });
            }
        }
    }

    if let Some(ctx) = ctx.as_mut() {
        let t = sh.cfg.timeouts.clone();
        if let (None, Some(fx)) = (&blocked, sh.stages.fixtures.clone()) {
            let (pr, props) = phase(&sh, &cell.id, "fixtures", t.install, fx.up(ctx)).await;
            absorb(&mut r, ctx, &mut blocked, pr, props);
        }
        if blocked.is_none() {
            let flux = sh.stages.flux.clone();
            let (pr, props) = phase(&sh, &cell.id, "install", t.install, flux.install(ctx)).await;
            absorb(&mut r, ctx, &mut blocked, pr, props);
        }
        if blocked.is_none() {
            let flux = sh.stages.flux.clone();
            let (pr, props) =
                phase(&sh, &cell.id, "verify-images", t.verify, flux.verify(ctx)).await;
            absorb(&mut r, ctx, &mut blocked, pr, props);
        }
        if let (None, Some(fips)) = (&blocked, sh.stages.fips.clone()) {
            let (pr, props) = phase(&sh, &cell.id, "verify-fips", t.verify, fips.check(ctx)).await;
            absorb(&mut r, ctx, &mut blocked, pr, props);
        }
    }

    for s in &cell.scenarios {
        let res = match (&ctx, &blocked, &s.skip) {
            (_, _, Some(_)) => skipped_scenario(s, ""),
            (_, Some(why), None) => skipped_scenario(s, &format!("not run: {why}")),
            (None, None, None) => skipped_scenario(s, "not run: no cluster"),
            (Some(ctx), None, None) => {
                if sh.cancel.is_cancelled() {
                    skipped_scenario(s, "not run: the run was interrupted")
                } else if sh.past_deadline() {
                    ScenarioResult {
                        status: Status::Error,
                        ..skipped_scenario(s, &format!("not run: {}", sh.stop_reason()))
                    }
                } else {
                    run_scenario(&sh, ctx, s).await
                }
            }
        };
        r.scenarios.push(res);
    }

    let failed = r
        .phases
        .iter()
        .map(|p| p.status)
        .chain(r.scenarios.iter().map(|s| s.status))
        .any(|s| matches!(s, Status::Fail | Status::Error));
    // Past the deadline there is no time for diagnostics: the phase would be cut at once.
    if let (true, Some(ctx), Some(d)) = (
        failed && !sh.stop.is_cancelled(),
        ctx.as_ref(),
        sh.stages.diagnostics.clone(),
    ) {
        let (mut pr, summary) = phase(
            &sh,
            &cell.id,
            "diagnostics",
            sh.cfg.timeouts.verify,
            d.collect(ctx),
        )
        .await;
        pr.diagnostics = summary.flatten().or(pr.diagnostics);
        r.phases.push(pr);
    }

    // Written before teardown, so a job killed while tearing down still reports the cell.
    settle(&mut r, start);
    sh.sink.emit(&RunEvent::CellRecorded {
        result: Box::new(r.clone()),
        in_progress: false,
    });

    let keep = !sh.cancel.is_cancelled()
        && match sh.cfg.keep {
            Keep::None => false,
            Keep::Failed => failed,
            Keep::All => true,
        };
    if let (true, Some(ctx)) = (keep, ctx.as_ref()) {
        // Taken out of the registry unrun: the run-end sweep must not delete them either.
        let kept = sh.registry.take_scope(&cell.id);
        let labels: Vec<String> = kept.iter().map(|e| e.label.clone()).collect();
        drop(kept);
        let c = &ctx.cluster;
        r.properties
            .insert("cluster.kept".into(), c.kubeconfig.display().to_string());
        r.properties
            .insert("cluster.keptResources".into(), labels.join("; "));
        sh.sink.emit(&RunEvent::ClusterKept {
            cell: cell.id.clone(),
            cluster: c.name.clone(),
            kubeconfig: c.kubeconfig.clone(),
        });
    } else {
        let entries = sh.registry.take_scope(&cell.id);
        sh.sink.emit(&RunEvent::PhaseStarted {
            cell: cell.id.clone(),
            phase: "teardown".into(),
        });
        let t0 = Instant::now();
        let failures = cleanup::tear_down(entries, sh.cfg.timeouts.teardown).await;
        for f in &failures {
            sh.sink.emit(&RunEvent::CleanupFailed {
                cell: cell.id.clone(),
                what: f.label.clone(),
                message: f.message.clone(),
            });
        }
        let pr = PhaseResult {
            name: "teardown".into(),
            status: if failures.is_empty() {
                Status::Pass
            } else {
                Status::Error
            },
            message: (!failures.is_empty()).then(|| {
                failures
                    .iter()
                    .map(|f| format!("{}: {}", f.label, f.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
            duration_ms: ms(t0.elapsed()),
            diagnostics: None,
        };
        sh.sink.emit(&RunEvent::PhaseFinished {
            cell: cell.id.clone(),
            result: pr.clone(),
        });
        r.phases.push(pr);
    }

    settle(&mut r, start);
    r
}

/// Roll phases and scenarios up into the cell's status, message and duration.
fn settle(r: &mut CellResult, start: Instant) {
    r.status = r
        .phases
        .iter()
        .map(|p| p.status)
        .chain(r.scenarios.iter().map(|s| s.status))
        .fold(Status::Skip, Status::worst);
    if r.phases.iter().all(|p| p.status == Status::Pass) && r.status == Status::Skip {
        // Every scenario skipped on a healthy cluster: the cell itself ran fine.
        r.status = Status::Pass;
    }
    r.message = r
        .phases
        .iter()
        .find(|p| p.status != Status::Pass)
        .map(|p| format!("{}: {}", p.name, p.message.clone().unwrap_or_default()))
        .or_else(|| {
            r.scenarios
                .iter()
                .find(|s| matches!(s.status, Status::Fail | Status::Error))
                .map(|s| {
                    format!(
                        "scenario `{}`: {}",
                        s.name,
                        s.message.clone().unwrap_or_default()
                    )
                })
        });
    r.duration_ms = ms(start.elapsed());
}

fn absorb(
    r: &mut CellResult,
    ctx: &mut CellCtx,
    blocked: &mut Option<String>,
    pr: PhaseResult,
    props: Option<Properties>,
) {
    if pr.status != Status::Pass {
        *blocked = Some(format!(
            "{}: {}",
            pr.name,
            pr.message.clone().unwrap_or_default()
        ));
    }
    if let Some(p) = props {
        ctx.properties.extend(p.clone());
        r.properties.extend(p);
    }
    r.phases.push(pr);
}

async fn run_scenario(sh: &Shared, ctx: &CellCtx, s: &PlannedScenario) -> ScenarioResult {
    sh.sink.emit(&RunEvent::ScenarioStarted {
        cell: ctx.cell.id.clone(),
        scenario: s.name.clone(),
    });
    let start = Instant::now();
    // The engine enforces the scenario's own budget (its declared timeout, capped) and then
    // runs `finally`, diagnostics and namespace cleanup; this outer limit is only a backstop
    // above all of that, so the engine's message (what the step last saw) always wins.
    let t = &sh.cfg.timeouts;
    let timeout = SCENARIO_CAP + t.step + t.install + t.teardown;
    let errored = |message: String| ScenarioResult {
        message: Some(message),
        status: Status::Error,
        duration_ms: ms(start.elapsed()),
        ..skipped_scenario(s, "")
    };
    let mut res = tokio::select! {
        r = tokio::time::timeout(timeout, sh.stages.scenarios.run(ctx, s)) => match r {
            Ok(r) => r,
            Err(_) => errored(format!("did not finish within {}", humantime::format_duration(timeout))),
        },
        _ = sh.stop.cancelled() => errored(sh.stop_reason()),
    };
    res.message = res.message.map(crate::redact::owned);
    res.diagnostics = res.diagnostics.map(crate::redact::owned);
    for st in &mut res.steps {
        st.message = st.message.take().map(crate::redact::owned);
    }
    sh.sink.emit(&RunEvent::ScenarioFinished {
        cell: ctx.cell.id.clone(),
        result: res.clone(),
    });
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_follow_cpus_and_memory() {
        assert_eq!(jobs_for(2, 23), 1);
        assert_eq!(jobs_for(16, 16), 5);
        assert_eq!(jobs_for(1, 1), 1);
        assert_eq!(
            parse_mem_total_gib("MemTotal:       24000000 kB\n"),
            Some(22)
        );
    }

    #[test]
    fn run_ids_are_valid_in_cluster_names() {
        let id = new_run_id();
        assert_eq!(crate::cluster::names::sanitise(&id), id);
    }
}
