//! Carries out the commands: loads configuration, calls the modules, maps outcomes to exit codes.
//! Human messages go to stderr; stdout carries data only (plan output, JSON).

use crate::cli::{Cli, Command, GlobalArgs, PlanArgs, PlanFormat, ReportCommand, SelectArgs};
use crate::config::{self, Loaded, Sources};
use crate::exit;
use crate::model::{FluxVersion, KubeMinor};
use crate::plan::{self, Filter, Partition, Plan};
use crate::report;
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
        Command::Validate => validate(&cli.global),
        Command::Plan(args) => plan_cmd(&cli.global, &args),
        Command::Report(cmd) => report_cmd(cmd),
        Command::Fixtures(cmd) => crate::fixtures::cli::run(cmd),
        Command::Probe(cmd) => crate::fips::tls::cli::run(cmd),
        Command::Run(args) => {
            crate::app_run::run(&cli.global, &args, crate::app_run::Engines::linked)
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
    config::load_with(&sources, global.allow_outside_project).map_err(|problems| {
        for p in &problems {
            crate::eprintln_redacted!("{p}");
        }
        crate::eprintln_redacted!("error: {} problem(s) in the configuration", problems.len());
        exit::USAGE
    })
}

fn validate(global: &GlobalArgs) -> u8 {
    match load_config(global) {
        Err(code) => code,
        Ok(l) => {
            crate::eprintln_redacted!(
                "{}: valid: {} Kubernetes minor(s), {} channel(s), {} Flux version(s), {} provider(s), {} scenario(s)",
                global.matrix.display(),
                l.matrix.kubernetes.len(),
                l.matrix.channels.len(),
                l.matrix.flux.len(),
                l.matrix.providers.len(),
                l.scenarios.len()
            );
            exit::OK
        }
    }
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
    let loaded = load_config(global)?;
    let (filter, partition) = selection(&loaded, select).map_err(usage_error)?;
    let plan = plan::build(&loaded.matrix, &loaded.scenarios, &filter, partition);
    Ok((loaded, plan))
}

fn plan_cmd(global: &GlobalArgs, args: &PlanArgs) -> u8 {
    let (_, plan) = match load_plan(global, &args.select) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let text = match args.format {
        PlanFormat::Table => report::plan_table::render(&plan),
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

fn report_cmd(cmd: ReportCommand) -> u8 {
    match cmd {
        ReportCommand::Merge { dirs, output } => match report::merge::merge_dirs(&dirs, &output) {
            Ok(run) => {
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
                outcome_code(&run)
            }
            Err(e) => usage_error(crate::errors::chain(&e)),
        },
        ReportCommand::Schema => {
            print!("{}", report::RESULTS_SCHEMA_JSON);
            exit::OK
        }
        ReportCommand::Render { results, output } => {
            let dir = output.unwrap_or_else(|| {
                results
                    .parent()
                    .map(|p| p.to_path_buf())
                    .unwrap_or_default()
            });
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
