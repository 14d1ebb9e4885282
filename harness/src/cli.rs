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
    #[arg(
        long,
        global = true,
        env = "FLUX_COMPAT_SCENARIOS_DIR",
        value_name = "DIR"
    )]
    pub scenarios_dir: Option<PathBuf>,
    /// Where channel pins come from when a channel does not write them: a checkout of the
    /// distribution repository (DIR with `images/<flux>/<variant>.yaml`) or its GitHub URL
    /// (`https://github.com/OWNER/REPO[/tree/REF]`, each file fetched once per run). Default: the
    /// matrix's `distribution.directory` (the committed copies).
    #[arg(
        long,
        global = true,
        env = "FLUX_COMPAT_DISTRIBUTION",
        value_name = "DIR|URL"
    )]
    pub distribution: Option<String>,
    /// No progress bars (one plain line per phase change instead). Implied when stderr is not a terminal.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Let file references in the configuration (`imagesFile`, `apply.file`) point outside the
    /// project directory (the matrix's directory); by default they must stay inside it.
    #[arg(long, global = true, env = "FLUX_COMPAT_ALLOW_OUTSIDE_PROJECT")]
    pub allow_outside_project: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace). `RUST_LOG` also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the matrix and every scenario, and every scenario manifest of every planned cell
    /// against the CRDs of the Flux version it is applied under; print every problem as
    /// `file:line:col: message`.
    Validate(ValidateArgs),
    /// Show the cells (Kubernetes minor × channel × Flux version × provider) and their scenarios.
    Plan(PlanArgs),
    /// Work with report directories.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Run the fixture plane (git, Helm, OCI, webhook sink over TLS) on its own.
    #[command(subcommand)]
    Fixtures(crate::fixtures::cli::FixturesCommand),
    /// Probe a live endpoint (e.g. `probe tls HOST:PORT --policy boring-fipsonly@1.27`).
    #[command(subcommand)]
    Probe(crate::fips::tls::cli::ProbeCommand),
    /// Inspect Go binaries and images for FIPS evidence (family, Go version, base).
    Inspect(crate::fips::inspect::cli::InspectArgs),
    /// Keep the matrix true: compute it from its sources and rewrite `matrix.yaml` in place.
    #[command(subcommand)]
    Matrix(MatrixCommand),
    /// Run the selected cells: create clusters, install and verify Flux, run the scenarios, write reports.
    Run(Box<RunArgs>),
    /// Delete `flux-compat-*` kind clusters and image-cache containers left behind by earlier runs.
    Gc(GcArgs),
}

/// Options of `flux-compat validate`.
#[derive(Debug, Args, Clone)]
pub struct ValidateArgs {
    /// Flux install manifests from a local directory, `<DIR>/<version>/install.yaml` or
    /// `<DIR>/install-<version>.yaml`, instead of the Flux GitHub release (downloaded once into
    /// the cache): validation offline.
    #[arg(long, value_name = "DIR", env = "FLUX_COMPAT_FLUX_MANIFESTS")]
    pub flux_manifests: Option<PathBuf>,
    /// Check the matrix and scenarios only; skip checking scenario manifests against the Flux
    /// CRDs (needs no install manifests).
    #[arg(long)]
    pub config_only: bool,
}

/// Options of `flux-compat run`. The registry token is read from the environment or a file only.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Cells at once (default: the matrix `parallelism.cells`, or min(CPUs/2, memory GiB/3)).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Start no new cell after the first failure or error.
    #[arg(long)]
    pub fail_fast: bool,
    /// Working time of the whole run (e.g. `50m`): when it passes, running phases stop and
    /// every unfinished cell is written as an error; teardown follows under its own timeout.
    /// Default: the matrix `timeouts.deadline`, else derived from the matrix timeouts and the
    /// plan (the worst cell's budget per wave of `--jobs` cells).
    #[arg(long, value_name = "DURATION", value_parser = crate::config::matrix::parse_timeout)]
    pub deadline: Option<std::time::Duration>,
    /// Which clusters to keep at the end (an interrupted run keeps none).
    #[arg(long, value_enum, default_value_t = crate::runner::Keep::None)]
    pub keep: crate::runner::Keep,
    /// Report directory (default `reports/<run-id>`).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<std::path::PathBuf>,
    /// Run id (default: UTC time and a random suffix); part of every cluster name.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Environment variable holding the registry token for enterprise channels.
    #[arg(long, default_value = "FLUX_COMPAT_REGISTRY_TOKEN", value_name = "VAR")]
    pub registry_token_env: String,
    /// File holding the registry token (instead of the environment variable).
    #[arg(long, value_name = "PATH")]
    pub registry_token_file: Option<std::path::PathBuf>,
    /// Print everything the run would create and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Install over a Flux that this run did not create (existing clusters). Without it such an
    /// install is refused and the message lists what it would replace; with it those objects
    /// are overwritten, labelled with the run and removed at teardown.
    #[arg(long)]
    pub replace_existing_flux: bool,
    /// Flux install manifests from a local directory, `<DIR>/<version>/install.yaml` or
    /// `<DIR>/install-<version>.yaml`, instead of the Flux GitHub release (air-gapped runs).
    #[arg(long, value_name = "DIR", env = "FLUX_COMPAT_FLUX_MANIFESTS")]
    pub flux_manifests: Option<std::path::PathBuf>,
    /// The kind executable.
    #[arg(long, default_value = "kind", value_name = "PATH")]
    pub kind: std::path::PathBuf,
    /// When kind is missing, download the matrix's kind release into `.tools/` and verify it
    /// against this sha256 before use.
    #[arg(long, value_name = "SHA256")]
    pub install_kind_sha256: Option<String>,
    /// How kind clusters get images: a pull-through `mirror` (each image pulled from upstream
    /// once per run) or `off` (every node pulls from upstream).
    #[arg(long, value_enum, default_value_t = ImageCache::Mirror)]
    pub image_cache: ImageCache,
    /// Registry image for the mirror (a CNCF distribution v2 image).
    #[arg(long, default_value = crate::cluster::mirror::DEFAULT_IMAGE, value_name = "IMAGE")]
    pub mirror_image: String,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ImageCache {
    Mirror,
    Off,
}

/// Options of `flux-compat gc`.
#[derive(Debug, Args, Clone)]
pub struct GcArgs {
    /// List what would be deleted and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The kind executable.
    #[arg(long, default_value = "kind", value_name = "PATH")]
    pub kind: std::path::PathBuf,
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
    /// Plan the cells of channels that pull with a registry token (`pullSecret`) as skipped
    /// with the reason "no registry token", instead of stopping for the missing token.
    #[arg(long)]
    pub without_registry_token: bool,
    /// The Kubernetes minors of this matrix profile: `newest` (the six newest minors with a kind
    /// node image) or `lts` (the cloud vendors' LTS and extended-support minors).
    #[arg(long, default_value = "newest", value_name = "NAME")]
    pub profile: String,
}

#[derive(Debug, Subcommand)]
pub enum MatrixCommand {
    /// Compute the matrix from its sources (kind release notes, Kubernetes version markers, the
    /// distribution, the vendor support data) and rewrite `matrix.yaml` in place, keeping every
    /// comment and line it does not change; prints what changed and why.
    Update(UpdateArgs),
}

/// Options of `flux-compat matrix update`.
#[derive(Debug, Args, Clone)]
pub struct UpdateArgs {
    /// Change nothing; exit 1 when the committed matrix (or the committed copies of the
    /// distribution's images files) is behind the sources, 0 when it is current.
    #[arg(long)]
    pub check: bool,
    /// Print what would change and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Read local sources only (a `--distribution` checkout, the support data file); parts
    /// without a local source are left as they are, and the output says which.
    #[arg(long)]
    pub offline: bool,
    /// Update only this profile's Kubernetes minors (`newest` or `lts`); default: both.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Evaluate vendor support windows on this date (YYYY-MM-DD) instead of today (UTC).
    #[arg(long, value_name = "DATE")]
    pub date: Option<String>,
    /// The vendor support data file (default: `support/vendor-lts.yaml` beside the matrix).
    #[arg(long, value_name = "FILE")]
    pub support_data: Option<PathBuf>,
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
    /// Merge the results of several shards into one report set (junit.xml, results.json, summary.md, report.html).
    Merge {
        /// Shard report directories, each holding a results.json (or, with `--expect`, the
        /// exit-status.json of a run that stopped before any cell). None at all is allowed
        /// with `--expect`: every planned cell is then reported from the plan alone.
        #[arg(required_unless_present = "expect")]
        dirs: Vec<PathBuf>,
        /// Where to write the merged reports.
        #[arg(long, short, default_value = "reports/merged")]
        output: PathBuf,
        /// The plan the shards were cut from (`plan --format json`): every planned cell without
        /// results is reported as an error with the reason (the exit status its run left in
        /// `exit-status.json`, or "the job did not finish"); cells the plan skips stay skipped.
        #[arg(long, value_name = "PLAN")]
        expect: Option<PathBuf>,
    },
    /// Print the JSON Schema of results.json (or of the attestation predicate).
    Schema {
        /// The schema of the compatibility attestation's predicate instead.
        #[arg(long)]
        predicate: bool,
    },
    /// Write the compatibility attestation of a results.json: an in-toto Statement v1 per
    /// distribution release (channel × Flux version) whose subjects are the controller images a
    /// cell verified. With `--key`, sign each into a DSSE envelope in attestation.intoto.jsonl.
    /// Prints what was written as JSON on stdout.
    Attest {
        /// The results.json to attest.
        results: PathBuf,
        /// Where to write (defaults to the directory of the results file).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// ECDSA P-256 private key, PKCS#8 PEM (an encrypted key's passphrase is read from
        /// `FLUX_COMPAT_SIGNING_KEY_PASSPHRASE`).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Verify a signed attestation (attestation.intoto.jsonl): every signature with the public
    /// key, the statement's shape, and with `--results` that it attests exactly those results.
    /// Exit 0 verified, 1 rejected, 2 unreadable input or key.
    Verify {
        /// The attestation file: DSSE envelopes, one per line.
        attestation: PathBuf,
        /// ECDSA P-256 public key, PEM. Required: an unverifiable attestation is never accepted.
        #[arg(long, value_name = "PUB", env = "FLUX_COMPAT_ATTESTATION_KEY")]
        key: Option<PathBuf>,
        /// The results.json the attestation must match exactly.
        #[arg(long, value_name = "RESULTS")]
        results: Option<PathBuf>,
    },
    /// Render junit.xml, summary.md and report.html again from a results.json.
    Render {
        /// The results.json to read.
        results: PathBuf,
        /// Where to write (defaults to the directory of the results file).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}
