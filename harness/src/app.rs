//! Carries out the commands: loads configuration, calls the modules, maps outcomes to exit codes.
//! Human messages go to stderr; stdout carries data only (plan output, JSON).

use crate::cli::{
    Cli, Command, GlobalArgs, PlanArgs, PlanFormat, ReportCommand, SelectArgs, ValidateArgs,
};
use crate::config::{self, Loaded, Sources};
use crate::errors::chain;
use crate::exit;
use crate::flux::crds::Crds;
use crate::flux::manifests::{self, ManifestSource};
use crate::model::{FluxVersion, KubeMinor};
use crate::plan::{self, Filter, Partition, Plan};
use crate::report;
use crate::schema_check;
use std::collections::BTreeMap;
use std::io::Write;

/// Set up `tracing` on stderr: warnings by default, more with `-v`, or `RUST_LOG`.
pub fn init_logging(global: &GlobalArgs) {
    let level = match global.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("flux_compat={level}")));
    // Every log line, the Kubernetes client's own at any `RUST_LOG` level included, passes the
    // redaction layer; colour only on a terminal and without NO_COLOR.
    use std::io::IsTerminal;
    let colour = std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::redact::Writer(std::io::stderr()))
        .with_ansi(colour)
        .try_init();
}

/// A usage problem: print it and return the usage exit code.
pub fn usage_error(message: impl std::fmt::Display) -> u8 {
    crate::eprintln_redacted!("error: {message}");
    exit::USAGE
}

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    // A token in the default variable is masked by every command, even those that never use it.
    let _ = crate::runner::secret::Secret::from_env("FLUX_COMPAT_REGISTRY_TOKEN");
    match cli.command {
        Command::Validate(args) => validate(&cli.global, &args),
        Command::Plan(args) => plan_cmd(&cli.global, &args),
        Command::Report(cmd) => report_cmd(cmd),
        Command::Fixtures(cmd) => crate::fixtures::cli::run(cmd),
        Command::Probe(cmd) => crate::fips::tls::cli::run(cmd),
        Command::Run(args) => {
            crate::app_run::run(&cli.global, &args, crate::app_run::Engines::linked)
        }
        Command::Matrix(crate::cli::MatrixCommand::Update(args)) => {
            crate::update::cli::run(&cli.global, &args)
        }
        Command::Gc(args) => crate::app_run::gc(&cli.global, &args),
        Command::Inspect(args) => crate::fips::inspect::cli::run(&cli.global, args),
    }
}

/// Load the matrix and scenarios, printing every problem on failure.
pub fn load_config(global: &GlobalArgs) -> Result<Loaded, u8> {
    let sources = Sources {
        matrix: global.matrix.clone(),
        scenarios_dir: global.scenarios_dir.clone(),
    };
    let distribution = match &global.distribution {
        Some(arg) => Some(crate::distribution::open(arg, false).map_err(usage_error)?),
        None => None,
    };
    config::load_from(
        &sources,
        global.allow_outside_project,
        distribution.as_deref(),
    )
    .map_err(|problems| {
        for p in &problems {
            crate::eprintln_redacted!("{p}");
        }
        crate::eprintln_redacted!("error: {} problem(s) in the configuration", problems.len());
        exit::USAGE
    })
}

fn validate(global: &GlobalArgs, args: &ValidateArgs) -> u8 {
    let loaded = match load_config(global) {
        Ok(l) => l,
        Err(code) => return code,
    };
    for w in config::timeout_warnings(&loaded) {
        crate::eprintln_redacted!("{w}");
    }
    let m = &loaded.matrix;
    let summary = format!(
        "{}: valid: {} Kubernetes minor(s), {} channel(s), {} Flux version(s), {} provider(s), {} scenario(s)",
        global.matrix.display(),
        m.kubernetes.len(),
        m.channels.len(),
        m.flux.len(),
        m.providers.len(),
        loaded.scenarios.len()
    );
    if args.config_only {
        crate::eprintln_redacted!("{summary}");
        crate::eprintln_redacted!(
            "note: scenario manifests were not checked against the Flux CRDs (--config-only)"
        );
        return exit::OK;
    }
    let plan = plan::build(m, &loaded.scenarios, &Filter::default(), None);
    let crds = match load_crds(&loaded, &plan, args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let outcome = schema_check::check(&loaded, &plan, &crds);
    if !outcome.diagnostics.is_empty() {
        for p in &outcome.diagnostics {
            crate::eprintln_redacted!("{p}");
        }
        crate::eprintln_redacted!(
            "error: {} problem(s) in the configuration",
            outcome.diagnostics.len()
        );
        return exit::USAGE;
    }
    crate::eprintln_redacted!("{summary}");
    let versions: Vec<String> = crds.keys().map(|v| v.to_string()).collect();
    crate::eprintln_redacted!(
        "scenario manifests: {} Flux object(s) in {} cell(s) match the CRDs of Flux {}",
        outcome.objects,
        outcome.cells,
        versions.join(", ")
    );
    if !outcome.unevaluated_rules.is_empty() {
        crate::eprintln_redacted!(
            "note: {} CEL rule(s) (`x-kubernetes-validations`) in {} of the CRD versions used were not evaluated; the API server checks them on apply",
            outcome.unevaluated_rules.values().sum::<usize>(),
            outcome.unevaluated_rules.len()
        );
    }
    exit::OK
}

/// The CRDs of every Flux version the plan applies manifests under, from `--flux-manifests` or
/// the release cache (downloading what is missing). A version that cannot be loaded stops
/// validation with the missing-prerequisite code: the check could not run.
fn load_crds(
    loaded: &Loaded,
    plan: &Plan,
    args: &ValidateArgs,
) -> Result<BTreeMap<FluxVersion, Crds>, u8> {
    let source = match &args.flux_manifests {
        Some(dir) => ManifestSource::Dir(dir.clone()),
        None => ManifestSource::github(manifests::default_cache_dir()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            crate::eprintln_redacted!("error: failed to start the async runtime: {e}");
            exit::FAILED
        })?;
    let mut out = BTreeMap::new();
    for version in schema_check::versions_needed(loaded, plan) {
        let parsed = runtime
            .block_on(manifests::load(&version, &source))
            .map_err(|e| chain(&e))
            .and_then(|m| {
                if m.downloaded {
                    crate::eprintln_redacted!("downloaded {} ({})", m.origin, m.sha256);
                }
                Crds::parse(&m.text, &m.origin).map_err(|e| chain(&e))
            });
        match parsed {
            Ok(crds) => {
                out.insert(version, crds);
            }
            Err(e) => {
                crate::eprintln_redacted!("error: failed to {e}");
                crate::eprintln_redacted!(
                    "hint: pass `--flux-manifests DIR` (or set FLUX_COMPAT_FLUX_MANIFESTS) to a directory holding `{version}/install.yaml`, or `--config-only` to skip the CRD check"
                );
                return Err(exit::PREREQUISITE);
            }
        }
    }
    Ok(out)
}

/// Turn command-line selection into a filter and partition, checking every name.
pub fn selection(loaded: &Loaded, s: &SelectArgs) -> Result<(Filter, Option<Partition>), String> {
    let kubernetes = s
        .kubernetes
        .iter()
        .map(|k| k.parse::<KubeMinor>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let flux = s
        .flux
        .iter()
        .map(|f| f.parse::<FluxVersion>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let filter = Filter {
        cells: s.cells.clone(),
        kubernetes,
        channels: s.channels.clone(),
        flux,
        providers: s.providers.clone(),
        scenarios: s.scenarios.clone(),
        tags: s.tags.clone(),
        exclude_tags: s.exclude_tags.clone(),
    };
    filter
        .validate(&loaded.matrix, &loaded.scenarios)
        .map_err(|e| e.to_string())?;
    let partition = s
        .partition
        .as_deref()
        .map(str::parse::<Partition>)
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok((filter, partition))
}

/// Load configuration and build the plan for a selection.
pub fn load_plan(global: &GlobalArgs, select: &SelectArgs) -> Result<(Loaded, Plan), u8> {
    let mut loaded = load_config(global)?;
    loaded
        .matrix
        .select_profile(&select.profile)
        .map_err(usage_error)?;
    let (filter, partition) = selection(&loaded, select).map_err(usage_error)?;
    let mut plan = plan::build(&loaded.matrix, &loaded.scenarios, &filter, partition);
    if select.without_registry_token {
        plan.without_registry_token(&loaded.matrix);
    }
    Ok((loaded, plan))
}

fn plan_cmd(global: &GlobalArgs, args: &PlanArgs) -> u8 {
    let (loaded, plan) = match load_plan(global, &args.select) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let text = match args.format {
        PlanFormat::Table => format!(
            "{}{}",
            profile_line(&loaded.matrix, &args.select.profile),
            report::plan_table::render(&plan)
        ),
        PlanFormat::Json => report::plan_table::json(&plan),
        PlanFormat::GithubMatrix => report::plan_table::github_matrix(&plan),
    };
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        // A closed pipe (`| head`) is not an error worth a message.
        return exit::OK;
    }
    if plan.cells.is_empty() {
        crate::eprintln_redacted!("warning: the selection matches no cell");
    }
    exit::OK
}

/// Which profiles each planned minor comes from, e.g. `1.32 (newest, lts)`.
fn profile_line(m: &crate::model::matrix::Matrix, profile: &str) -> String {
    let minors: Vec<String> = m
        .kubernetes
        .iter()
        .map(|k| format!("{} ({})", k.minor, k.profiles.join(", ")))
        .collect();
    format!(
        "Kubernetes minors of profile `{profile}`: {}\n\n",
        minors.join(", ")
    )
}

fn report_cmd(cmd: ReportCommand) -> u8 {
    match cmd {
        ReportCommand::Merge {
            dirs,
            output,
            expect,
        } => merge_cmd(&dirs, &output, expect.as_deref()),
        ReportCommand::Schema { predicate } => {
            print!(
                "{}",
                if predicate {
                    report::attest::statement::PREDICATE_SCHEMA_JSON
                } else {
                    report::RESULTS_SCHEMA_JSON
                }
            );
            exit::OK
        }
        ReportCommand::Attest {
            results,
            output,
            key,
        } => attest_cmd(&results, output, key.as_deref()),
        ReportCommand::Verify {
            attestation,
            key,
            results,
        } => verify_cmd(&attestation, key.as_deref(), results.as_deref()),
        ReportCommand::Render { results, output } => {
            let dir = output.unwrap_or_else(|| beside(&results));
            match report::files::read_results(&results)
                .and_then(|run| report::files::write_all(&dir, &run).map(|_| run))
            {
                Ok(run) => {
                    crate::eprintln_redacted!("wrote {}", dir.display());
                    outcome_code(&run)
                }
                Err(e) => usage_error(crate::errors::chain(&e)),
            }
        }
    }
}

fn merge_cmd(
    dirs: &[std::path::PathBuf],
    output: &std::path::Path,
    expect: Option<&std::path::Path>,
) -> u8 {
    let merged = match report::merge::merge_dirs(dirs, output, expect) {
        Ok(m) => m,
        Err(e) => return usage_error(crate::errors::chain(&e)),
    };
    let (run, filled) = (&merged.run, &merged.filled);
    for id in &filled.missing {
        let why = run
            .cells
            .iter()
            .find(|c| &c.id == id)
            .and_then(|c| c.message.clone())
            .unwrap_or_default();
        crate::eprintln_redacted!("error: planned cell `{id}` has no results: {why}");
    }
    for id in &filled.unplanned {
        crate::eprintln_redacted!("warning: cell `{id}` has results but is not in the plan");
    }
    let c = run.case_counts();
    crate::eprintln_redacted!(
        "merged {} shard(s), {} cell(s) into {}: {} passed, {} failed, {} errored, {} skipped",
        dirs.len(),
        run.cells.len(),
        output.display(),
        c.pass,
        c.fail,
        c.error,
        c.skip
    );
    outcome_code(run)
}

/// The directory a results file is in (`.` for a bare file name).
fn beside(results: &std::path::Path) -> std::path::PathBuf {
    match results.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

fn attest_cmd(
    results: &std::path::Path,
    output: Option<std::path::PathBuf>,
    key: Option<&std::path::Path>,
) -> u8 {
    use report::attest::{AttestFileError, attest};
    let dir = output.unwrap_or_else(|| beside(results));
    match attest(results, &dir, key) {
        Ok((written, unattested)) => {
            for w in &written {
                eprintln!(
                    "attested `{}` Flux {}: verdict {:?}, {} image(s) -> {}",
                    w.channel,
                    w.flux_version,
                    w.verdict,
                    w.subjects,
                    w.statement.display()
                );
            }
            for u in &unattested {
                eprintln!(
                    "warning: not attested: `{}` Flux {}: {}",
                    u.channel, u.flux, u.reason
                );
            }
            match written.first().and_then(|w| w.envelopes.as_ref()) {
                Some(p) => eprintln!("signed: {}", p.display()),
                None => eprintln!(
                    "unsigned: pass `--key FILE` to sign, or sign the statements keyless in CI"
                ),
            }
            println!(
                "{}",
                serde_json::to_string(&written).expect("the list serialises")
            );
            exit::OK
        }
        Err(e @ AttestFileError::Nothing { .. }) => {
            eprintln!("error: failed to {e}");
            exit::FAILED
        }
        Err(AttestFileError::Results(e)) => usage_error(crate::errors::chain(&e)),
        Err(e) => usage_error(format!("failed to {}", crate::errors::chain(&e))),
    }
}

fn verify_cmd(
    attestation: &std::path::Path,
    key: Option<&std::path::Path>,
    results: Option<&std::path::Path>,
) -> u8 {
    let Some(key) = key else {
        return usage_error(
            "`--key PUB` (or `FLUX_COMPAT_ATTESTATION_KEY`) is required: an attestation whose signature cannot be checked is never accepted; keyless attestations verify with `gh attestation verify` or `cosign verify-blob-attestation`",
        );
    };
    match report::attest::verify(attestation, key, results) {
        Ok(verified) => {
            for v in &verified {
                let p = &v.statement.predicate;
                eprintln!(
                    "verified line {}: `{}` Flux {}: verdict {:?}, {} image(s), {} cell(s), signed by key {}",
                    v.line,
                    p.distribution.channel,
                    p.distribution.flux_version,
                    p.verdict,
                    v.statement.subject.len(),
                    p.cells.len(),
                    v.keyid
                );
            }
            if results.is_some() {
                eprintln!("the attestation matches the results exactly");
            }
            exit::OK
        }
        Err(e) if e.is_rejection() => {
            eprintln!("error: failed to {e}");
            exit::FAILED
        }
        Err(report::attest::VerifyError::Results(e)) => usage_error(crate::errors::chain(&e)),
        Err(e) => usage_error(format!("failed to {}", crate::errors::chain(&e))),
    }
}

/// Exit code for a finished run: failures and errors give 1, an interrupted run 130.
pub fn outcome_code(run: &crate::model::RunResult) -> u8 {
    let c = run.case_counts();
    if run.interrupted {
        exit::INTERRUPTED
    } else if c.fail > 0
        || c.error > 0
        || run.cells.iter().any(|cell| {
            cell.status == crate::model::Status::Error || cell.status == crate::model::Status::Fail
        })
    {
        exit::FAILED
    } else {
        exit::OK
    }
}
