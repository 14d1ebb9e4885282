//! Carries out `run` and `gc`: resolves flags, environment and the matrix into one immutable run
//! configuration, runs preflight (exit 3 with the install hint), starts the image cache, builds
//! the providers, turns Ctrl-C/SIGTERM into cancellation, and maps the outcome to an exit code.
//! Progress and reports are rendered by `report`; stdout carries data only (`--dry-run`, gc).

use crate::cli::{GcArgs, GlobalArgs, ImageCache, RunArgs};
use crate::cluster::existing::ExistingProvider;
use crate::cluster::kind::{KindCli, KindProvider, MirrorAttachment};
use crate::cluster::mirror::{MirrorSpec, Mirrors, Upstream};
use crate::cluster::{Provider, preflight};
use crate::errors::chain;
use crate::exit;
use crate::model::matrix::ProviderKind;
use crate::report::live::ReportWriter;
use crate::report::terminal::Terminal;
use crate::runner::events::{EventSink, Fanout};
use crate::runner::secret::Secret;
use crate::runner::stages::{Diagnostics, FixturePlane, FluxStage, ScenarioRunner};
use crate::runner::{self, RunConfig, Stages};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The real implementations of the runner's seams linked into this build.
pub struct Engines {
    pub fixtures: Option<Arc<dyn FixturePlane>>,
    pub flux: Option<Arc<dyn FluxStage>>,
    pub fips: Option<Arc<dyn crate::runner::stages::FipsEvidence>>,
    pub scenarios: Option<Arc<dyn ScenarioRunner>>,
    pub diagnostics: Option<Arc<dyn Diagnostics>>,
}

impl Engines {
    /// The real stages: the fixture plane per cell, channel install and image verification, the
    /// scenario engine over `k8s` and the plane, and diagnostics of failed cells.
    pub fn linked(loaded: &crate::config::Loaded, args: &RunArgs) -> Self {
        let matrix = Arc::new(loaded.matrix.clone());
        let cache = crate::flux::manifests::default_cache_dir();
        // `run` refuses a token without a user name before this; unused without a token.
        let username = registry_username(&loaded.matrix).unwrap_or_default();
        let manifests = match &args.flux_manifests {
            Some(dir) => crate::flux::manifests::ManifestSource::Dir(dir.clone()),
            None => crate::flux::manifests::ManifestSource::github(cache),
        };
        let fixtures_dir = matrix
            .file
            .parent()
            .map(|d| d.join("fixtures"))
            .unwrap_or_else(|| PathBuf::from("fixtures"));
        let fixtures = Arc::new(crate::runner::fixture_stage::FixtureStage::new(
            matrix.clone(),
            fixtures_dir,
            std::env::var(crate::runner::fixture_stage::ADVERTISE_ENV).ok(),
        ));
        let scenarios = crate::runner::scenario_stage::ScenarioStage {
            matrix: matrix.clone(),
            scenarios: loaded
                .scenarios
                .iter()
                .map(|s| (s.name.clone(), s.clone()))
                .collect(),
            planes: fixtures.planes(),
            manifests: manifests.clone(),
            registry_username: username.clone(),
        };
        Self {
            fixtures: Some(fixtures),
            flux: Some(Arc::new(
                crate::runner::flux_stage::ChannelStage::new(
                    matrix.clone(),
                    manifests,
                    username.clone(),
                )
                .replacing_existing(args.replace_existing_flux),
            )),
            fips: Some(Arc::new(crate::runner::fips_stage::FipsStage {
                matrix,
                registry_username: username,
                plain_http: false,
            })),
            scenarios: Some(Arc::new(scenarios)),
            diagnostics: Some(Arc::new(crate::runner::diagnostics::KubeDiagnostics)),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// Ctrl-C or SIGTERM, from the moment this is called (the streams are registered at once, so a
/// signal that arrives early is not lost to the default action).
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> Option<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Some(Self {
            int: signal(SignalKind::interrupt()).ok()?,
            term: signal(SignalKind::terminate()).ok()?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// Cancel `token` on the first Ctrl-C or SIGTERM: cells stop and everything is torn down. A second
/// one stops within moments: it says what may be left (`left`) and how to remove it, removes the
/// scratch directories and exits 130 without waiting for teardown.
fn on_signals(token: CancellationToken, left: Option<String>) {
    let Some(mut signals) = Signals::register() else {
        return;
    };
    tokio::spawn(async move {
        signals.next().await;
        token.cancel();
        signals.next().await;
        crate::eprintln_redacted!(
            "interrupted again: exiting now without waiting for teardown{}",
            left.map(|l| format!("; {l}")).unwrap_or_default()
        );
        crate::scratch::remove_all();
        std::process::exit(i32::from(exit::INTERRUPTED));
    });
}

/// What an interrupted teardown of run `run_id` may leave, and the command that removes it.
fn leftovers(run_id: &str) -> String {
    format!(
        "kind clusters and image-cache containers named `{}{run_id}-*` may be left: remove them with `flux-compat gc`; in existing clusters, objects labelled `{}={run_id}` may be left: remove them with `kubectl delete namespace,customresourcedefinition,clusterrole,clusterrolebinding -l {}={run_id}`",
        crate::cluster::names::PREFIX,
        crate::flux::install::RUN_LABEL,
        crate::flux::install::RUN_LABEL,
    )
}

fn registry_token(args: &RunArgs) -> Result<Option<Secret>, String> {
    match &args.registry_token_file {
        Some(p) => Secret::from_file(p).map(Some),
        None => Ok(Secret::from_env(&args.registry_token_env)),
    }
}

/// Longest run id: it is part of every cluster name, which kind and Docker limit.
pub const MAX_RUN_ID: usize = 32;

/// Option values checked before anything is downloaded, started or created.
fn check_options(args: &RunArgs, run_id: &str) -> Result<(), String> {
    if run_id.is_empty() || run_id.len() > MAX_RUN_ID {
        return Err(format!(
            "run id must be 1 to {MAX_RUN_ID} characters, got {}",
            run_id.len()
        ));
    }
    if crate::cluster::names::sanitise(run_id) != run_id {
        return Err(format!(
            "run id `{}` may contain only lower-case letters, digits, `.` and `-`",
            crate::errors::escape_controls(run_id)
        ));
    }
    if let Some(sha) = &args.install_kind_sha256
        && !(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(format!(
            "`--install-kind-sha256` must be 64 hex digits (the sha256 of the kind release binary), got `{}`",
            crate::errors::escape_controls(sha)
        ));
    }
    if let Ok(host) = std::env::var(crate::runner::fixture_stage::ADVERTISE_ENV) {
        crate::fixtures::cli::check_host(&host)
            .map_err(|e| format!("{}: {e}", crate::runner::fixture_stage::ADVERTISE_ENV))?;
    }
    if args.jobs == Some(0) {
        return Err("`--jobs` must be at least 1".into());
    }
    Ok(())
}

/// Environment variable naming the user sent with the registry token (overrides the matrix).
pub const USERNAME_ENV: &str = "FLUX_COMPAT_REGISTRY_USERNAME";

/// The user name sent with the registry token: `FLUX_COMPAT_REGISTRY_USERNAME` when set and not
/// empty, else the matrix `registryUsername`.
pub fn registry_username(m: &crate::model::matrix::Matrix) -> Option<String> {
    std::env::var(USERNAME_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .or_else(|| m.registry_username.clone())
}

/// Stop before any cell ran: print why, and leave it with the selected cells in the report
/// directory (`exit-status.json`), so `report merge --expect` names the reason for each.
fn stop_early(report_dir: &Path, plan: &crate::plan::Plan, code: u8, message: &str) -> u8 {
    use crate::report::expect::{ExitStatus, write_exit_status};
    crate::eprintln_redacted!("error: {message}");
    let cells = plan
        .cells
        .iter()
        .filter(|c| c.skip.is_none())
        .map(|c| c.id.clone())
        .collect();
    if let Err(e) = write_exit_status(report_dir, &ExitStatus::new(cells, code, message)) {
        crate::eprintln_redacted!("warning: {}", chain(&e));
    }
    code
}

/// The channels of runnable cells that pull with a registry token, as "`name`, ...".
fn channels_needing_token(
    plan: &crate::plan::Plan,
    m: &crate::model::matrix::Matrix,
) -> Vec<String> {
    plan.cells
        .iter()
        .filter(|c| c.skip.is_none())
        .filter_map(|c| m.channel(&c.channel))
        .filter(|ch| ch.pull_secret.is_some())
        .map(|ch| format!("`{}`", ch.name))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Register, before anything runs, every pull-secret document the run could build from the
/// token, so even an echo of one is masked.
fn register_pull_secrets(m: &crate::model::matrix::Matrix, token: &Secret) {
    use crate::flux::credentials::{RegistryCredentials, Token, docker_config_json, registry_host};
    let Some(username) = registry_username(m) else {
        return;
    };
    let credentials = RegistryCredentials {
        username,
        token: Token::new(token.expose()),
    };
    for c in m.channels.iter().filter(|c| c.pull_secret.is_some()) {
        docker_config_json(registry_host(&c.registry), &credentials);
    }
}

/// `flux-compat run`.
pub fn run(
    global: &GlobalArgs,
    args: &RunArgs,
    engines: fn(&crate::config::Loaded, &RunArgs) -> Engines,
) -> u8 {
    // The token first: from here on every sink masks it, configuration errors included.
    let token = match registry_token(args) {
        Ok(t) => t,
        Err(e) => return crate::app::usage_error(e),
    };
    let (loaded, plan) = match crate::app::load_plan(global, &args.select) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if let Some(t) = &token {
        register_pull_secrets(&loaded.matrix, t);
    }
    if plan.cells.is_empty() {
        return crate::app::usage_error("the selection matches no cell");
    }
    let run_id = args.run_id.clone().unwrap_or_else(runner::new_run_id);
    if let Err(e) = check_options(args, &run_id) {
        return crate::app::usage_error(e);
    }
    let m = &loaded.matrix;
    let report_dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(&run_id));
    if !args.dry_run
        && let Err(e) = crate::report::files::check_writable(&report_dir)
    {
        // Before any cluster exists: a run whose reports cannot be written is not worth starting.
        return crate::app::usage_error(chain(&e));
    }
    let needing = channels_needing_token(&plan, m);
    if !needing.is_empty() && !args.dry_run {
        if token.is_none() {
            let message = format!(
                "channel(s) {} need a registry token: set `{}` or pass `--registry-token-file`, or plan them as skipped with `--without-registry-token`",
                needing.join(", "),
                args.registry_token_env
            );
            return stop_early(&report_dir, &plan, exit::PREREQUISITE, &message);
        }
        if registry_username(m).is_none() {
            let message = format!(
                "channel(s) {} pull with a registry token but no user name is set: set `registryUsername` in the matrix or `{USERNAME_ENV}`",
                needing.join(", ")
            );
            return stop_early(&report_dir, &plan, exit::USAGE, &message);
        }
    }
    let engines = engines(&loaded, args);
    let jobs = args
        .jobs
        .filter(|j| *j > 0)
        .or((m.parallelism.cells > 0).then_some(m.parallelism.cells))
        .unwrap_or_else(runner::default_jobs);
    let declared: BTreeMap<String, Duration> = loaded
        .scenarios
        .iter()
        .map(|s| (s.name.clone(), s.timeout))
        .collect();
    let deadline = args
        .deadline
        .or(m.timeouts.deadline)
        .or_else(|| runner::deadline::derived(&plan, &m.timeouts, &declared, jobs));
    if let (Some(d), false) = (deadline, args.dry_run) {
        let source = match (args.deadline, m.timeouts.deadline) {
            (Some(_), _) => "--deadline",
            (None, Some(_)) => "the matrix `timeouts.deadline`",
            (None, None) => "derived from the matrix timeouts",
        };
        crate::eprintln_redacted!(
            "run deadline: {} ({source}); teardown follows within {}",
            humantime::format_duration(d),
            humantime::format_duration(m.timeouts.teardown)
        );
    }
    // Signals are taken over before the first scratch directory exists, so no interrupt can
    // leave one behind.
    let rt = runtime();
    let cancel = CancellationToken::new();
    {
        let _entered = rt.enter();
        on_signals(cancel.clone(), Some(leftovers(&run_id)));
    }
    let work = match tempfile::Builder::new()
        .prefix(&format!("flux-compat-{run_id}-"))
        .tempdir()
    {
        Ok(w) => w,
        Err(e) => {
            let message = format!("cannot create a scratch directory: {e}");
            return stop_early(&report_dir, &plan, exit::PREREQUISITE, &message);
        }
    };
    crate::scratch::register(work.path());
    let cfg = RunConfig {
        run_id: run_id.clone(),
        report_dir: report_dir.clone(),
        work_dir: work.path().to_path_buf(),
        jobs,
        cluster_creates: m.parallelism.cluster_creates.max(1),
        fail_fast: args.fail_fast,
        keep: args.keep,
        timeouts: m.timeouts.clone(),
        partitions: plan.partition.iter().cloned().collect(),
        registry_token: token,
    };
    let used: std::collections::BTreeSet<&str> = plan
        .cells
        .iter()
        .filter(|c| c.skip.is_none())
        .map(|c| c.provider.as_str())
        .collect();
    let needs_kind = m
        .providers
        .iter()
        .any(|p| used.contains(p.name.as_str()) && matches!(p.kind, ProviderKind::Kind));

    let code = rt.block_on(async {
        let mut kind_provider = KindProvider::new(KindCli {
            program: args.kind.clone(),
            env: Vec::new(),
        });
        if needs_kind && !args.dry_run {
            match preflight_or_install(args, &m.kind_version, &cancel).await {
                Ok(found) => {
                    kind_provider.cli = found.kind;
                    kind_provider.kind_version = Some(found.kind_version);
                }
                Err(e) => {
                    return stop_early(&report_dir, &plan, exit::PREREQUISITE, &format!("failed to {e}"));
                }
            }
        }
        if !args.dry_run && (engines.flux.is_none() || engines.scenarios.is_none()) {
            let missing: Vec<&str> = [
                engines.flux.is_none().then_some("the Flux install/verify stage"),
                engines.scenarios.is_none().then_some("the scenario engine"),
            ]
            .into_iter()
            .flatten()
            .collect();
            crate::eprintln_redacted!(
                "error: this build does not link {} (see `app_run::Engines::linked`); nothing was run",
                missing.join(" and ")
            );
            return exit::PREREQUISITE;
        }
        let mut mirrors = None;
        if needs_kind && !args.dry_run && args.image_cache == ImageCache::Mirror {
            let spec = MirrorSpec {
                image: args.mirror_image.clone(),
                name_prefix: format!("flux-compat-{run_id}"),
                upstreams: Upstream::defaults(),
                network: None,
                startup_timeout: Duration::from_secs(120),
            };
            let hosts_dir = cfg.work_dir.join("certs.d");
            let started = Mirrors::start(&spec).await.and_then(|ms| {
                ms.write_hosts_dir(&hosts_dir)?;
                Ok(ms)
            });
            match started {
                Ok(ms) => {
                    kind_provider.mirror = Some(MirrorAttachment {
                        hosts_dir,
                        containers: ms.container_names(),
                    });
                    mirrors = Some(ms);
                }
                Err(e) => {
                    let message = format!(
                        "failed to {}; pass `--image-cache off` to pull from upstream in every cluster",
                        crate::cluster::ClusterError::Prepare {
                            name: "image cache".into(),
                            message: chain(&e)
                        }
                    );
                    return stop_early(&report_dir, &plan, exit::PREREQUISITE, &message);
                }
            }
        }
        let kind_provider: Arc<dyn Provider> = Arc::new(kind_provider);
        let mut providers: BTreeMap<String, Arc<dyn Provider>> = BTreeMap::new();
        for p in &m.providers {
            let built: Arc<dyn Provider> = match &p.kind {
                ProviderKind::Kind => kind_provider.clone(),
                ProviderKind::Existing {
                    kubeconfig,
                    context,
                    ..
                } => match ExistingProvider::new(kubeconfig.as_deref(), context) {
                    Ok(x) => Arc::new(x),
                    Err(e) if used.contains(p.name.as_str()) => {
                        let message = format!("provider `{}`: {e}", p.name);
                        return stop_early(&report_dir, &plan, exit::USAGE, &message);
                    }
                    Err(_) => continue,
                },
            };
            providers.insert(p.name.clone(), built);
        }
        if args.dry_run {
            print_dry_run(&plan, &cfg, &providers, engines.fixtures.is_some());
            return exit::OK;
        }
        let (Some(flux), Some(scenarios)) = (engines.flux.clone(), engines.scenarios.clone())
        else {
            // Checked before anything was started; kept total rather than unwrapping.
            return exit::PREREQUISITE;
        };
        let stages = Stages {
            providers,
            fixtures: engines.fixtures.clone(),
            flux,
            fips: engines.fips.clone(),
            scenarios,
            diagnostics: engines.diagnostics.clone(),
        };
        let writer = Arc::new(ReportWriter::new(&report_dir));
        let sink: Arc<dyn EventSink> = Arc::new(Fanout(vec![
            Arc::new(Terminal::for_stderr(global.no_progress)),
            writer.clone(),
        ]));
        let mut result = runner::run_until(&plan, cfg, stages, sink, cancel, deadline).await;
        if let Some(ms) = mirrors {
            match ms.stats().await {
                Ok(stats) => result
                    .properties
                    .extend(crate::cluster::mirror::stats_properties(&stats)),
                Err(e) => {
                    result
                        .properties
                        .insert("imageCache.error".into(), chain(&e));
                }
            }
            ms.stop().await;
            if let Err(e) = writer.write(&result) {
                crate::eprintln_redacted!("error: {}", chain(&e));
            }
        }
        let write_errors = writer.errors();
        for e in &write_errors {
            crate::eprintln_redacted!("error: {e}");
        }
        crate::eprintln_redacted!("reports: {}", report_dir.display());
        match crate::app::outcome_code(&result) {
            // Reports that could not be written are no evidence: never a pass.
            exit::OK if !write_errors.is_empty() => exit::FAILED,
            code => code,
        }
    });
    // Blocking work of an interrupted start may outlive its future: wait for it, then sweep.
    drop(rt);
    drop(work);
    crate::scratch::remove_all();
    code
}

fn print_dry_run(
    plan: &crate::plan::Plan,
    cfg: &RunConfig,
    providers: &BTreeMap<String, Arc<dyn Provider>>,
    with_fixtures: bool,
) {
    let mut out = String::new();
    for (cell, lines) in runner::describe(plan, cfg, providers, with_fixtures) {
        out.push_str(&format!("cell {cell}:\n"));
        for l in lines {
            for (i, part) in l.lines().enumerate() {
                out.push_str(if i == 0 { "  - " } else { "      " });
                out.push_str(part);
                out.push('\n');
            }
        }
    }
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}

async fn preflight_or_install(
    args: &RunArgs,
    required: &str,
    cancel: &CancellationToken,
) -> Result<preflight::Found, String> {
    match preflight::check(&args.kind, required, cancel).await {
        Err(preflight::PreflightError::NoKind { required })
            if args.install_kind_sha256.is_some() =>
        {
            let dir = Path::new(".tools").join(format!("kind-v{required}"));
            let sha = args.install_kind_sha256.as_deref().unwrap_or_default();
            let path = preflight::install_kind(&required, sha, &dir)
                .await
                .map_err(|e| chain(&e))?;
            preflight::check(&path, &format!("v{required}"), cancel)
                .await
                .map_err(|e| e.to_string())
        }
        other => other.map_err(|e| e.to_string()),
    }
}

/// `flux-compat gc`: deleted (or, with `--dry-run`, deletable) cluster names on stdout.
pub fn gc(_global: &GlobalArgs, args: &GcArgs) -> u8 {
    let Some(program) = preflight::resolve(&args.kind) else {
        crate::eprintln_redacted!(
            "error: failed to find `{}`; {}",
            args.kind.display(),
            preflight::install_hint(&semver::Version::new(0, 33, 0))
        );
        return exit::PREREQUISITE;
    };
    let cli = KindCli {
        program,
        env: Vec::new(),
    };
    runtime().block_on(async move {
        let cancel = CancellationToken::new();
        on_signals(
            cancel.clone(),
            Some(
                "kind clusters named `flux-compat-*` may be left: run `flux-compat gc` again"
                    .into(),
            ),
        );
        match crate::cluster::gc::gc(&cli, None, args.dry_run, Duration::from_secs(300), &cancel)
            .await
        {
            Err(e) => {
                crate::eprintln_redacted!("error: failed to list kind clusters: {e}");
                exit::FAILED
            }
            Ok(mut o) => {
                // Mirror containers are best effort: without a docker engine there are none.
                let docker = crate::cluster::docker::Docker::default();
                if let Ok(m) = crate::cluster::gc::gc_mirrors(
                    &docker,
                    crate::cluster::names::PREFIX,
                    args.dry_run,
                    &cancel,
                )
                .await
                {
                    o.deleted.extend(m.deleted);
                    o.would_delete.extend(m.would_delete);
                    o.failed.extend(m.failed);
                }
                let names = if args.dry_run {
                    &o.would_delete
                } else {
                    &o.deleted
                };
                for n in names {
                    println!("{n}");
                }
                for (n, e) in &o.failed {
                    crate::eprintln_redacted!("error: failed to delete `{n}`: {e}");
                }
                crate::eprintln_redacted!(
                    "{} {} cluster(s) and image-cache container(s)",
                    if args.dry_run {
                        "would delete"
                    } else {
                        "deleted"
                    },
                    names.len()
                );
                if cancel.is_cancelled() {
                    exit::INTERRUPTED
                } else if o.failed.is_empty() {
                    exit::OK
                } else {
                    exit::FAILED
                }
            }
        }
    })
}
