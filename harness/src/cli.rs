//! Command-line interface definitions (clap). Parsing only: `app` carries the commands out.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Proves a Flux distribution works across Kubernetes versions, with evidence.
///
/// Exit codes: 0 all passed, 1 some check failed or errored, 2 bad usage or configuration,
/// 3 missing prerequisite, 130 interrupted.
#[derive(Debug, Parser)]
#[command(name = "flux-compat", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// The matrix file.
    #[arg(
        long,
        global = true,
        env = "FLUX_COMPAT_MATRIX",
        default_value = "matrix.yaml"
    )]
    pub matrix: PathBuf,
    /// Scenario directory (overrides the matrix's `scenarios.directory`).
    #[arg(long, global = true, env = "FLUX_COMPAT_SCENARIOS")]
    pub scenarios: Option<PathBuf>,
    /// No progress bars (one plain line per phase change instead). Implied when stderr is not a terminal.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace). `RUST_LOG` also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the matrix and every scenario; print every problem as `file:line:col: message`.
    Validate,
    /// Show the cells (Kubernetes minor × channel × Flux version × provider) and their scenarios.
    Plan(PlanArgs),
    /// Work with report directories.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Inspect Go binaries and images for FIPS evidence (family, Go version, base).
    Inspect(crate::fips::inspect::cli::InspectArgs),
}

/// Which cells and scenarios to take.
#[derive(Debug, Args, Clone, Default)]
pub struct SelectArgs {
    /// Only cells whose id matches (glob with `*` and `?`); repeatable.
    #[arg(long = "cell", value_name = "ID|GLOB")]
    pub cells: Vec<String>,
    /// Only these Kubernetes minors (e.g. 1.37); repeatable.
    #[arg(long = "k8s", value_name = "MINOR")]
    pub kubernetes: Vec<String>,
    /// Only these channels; repeatable.
    #[arg(long = "channel")]
    pub channels: Vec<String>,
    /// Only these Flux versions (e.g. v2.9.4); repeatable.
    #[arg(long = "flux")]
    pub flux: Vec<String>,
    /// Only these providers (also selects providers disabled in the matrix); repeatable.
    #[arg(long = "provider")]
    pub providers: Vec<String>,
    /// Only these scenarios (replaces the matrix's default selection); repeatable.
    #[arg(long = "scenario")]
    pub scenarios: Vec<String>,
    /// Only scenarios with this tag (replaces the matrix's default selection); repeatable.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Leave out scenarios with this tag; repeatable.
    #[arg(long = "exclude-tag")]
    pub exclude_tags: Vec<String>,
    /// Run only one shard of the cells: `hash:M/N` or `slice:M/N` (M counts from 1).
    #[arg(long, value_name = "hash:M/N|slice:M/N")]
    pub partition: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
    pub format: PlanFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PlanFormat {
    /// A table for people.
    Table,
    /// The whole plan as JSON.
    Json,
    /// `{"include": [...]}` for a GitHub Actions `strategy.matrix`, one entry per cell.
    GithubMatrix,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge the results of several shards into one report set (junit.xml, results.json, summary.md).
    Merge {
        /// Shard report directories, each holding a results.json.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write the merged reports.
        #[arg(long, short, default_value = "reports/merged")]
        output: PathBuf,
    },
    /// Render junit.xml and summary.md again from a results.json.
    Render {
        /// The results.json to read.
        results: PathBuf,
        /// Where to write (defaults to the directory of the results file).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}
