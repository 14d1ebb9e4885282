//! The `probe` command line (`flux-compat probe tls HOST:PORT …`) and its run function:
//! parse, probe, judge, print data on stdout, map to an exit code.

use super::policy::Policy;
use super::probe::{self, ProbeConfig};
use super::probe_report::{self, Verdict};
use crate::exit;
use clap::{Args, Subcommand, ValueEnum};
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum ProbeCommand {
    /// Enumerate what a TLS server accepts and judge it against a FIPS policy.
    Tls(TlsArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ProbeFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct TlsArgs {
    /// The server, `HOST:PORT`.
    pub target: String,
    /// Judge against this policy: `FAMILY@GO` with FAMILY one of plain, boring, boring-fipsonly,
    /// native, native-only (e.g. `boring-fipsonly@1.27`, `native@1.26`), or `none` to only enumerate.
    #[arg(long, default_value = "none")]
    pub policy: String,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = ProbeFormat::Table)]
    pub format: ProbeFormat,
    /// Time limit for the whole probe, every handshake included (e.g. `5s`, `500ms`).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 16)]
    pub parallel: usize,
}

/// Run `probe …`; returns the exit code (0 pass or not judged, 1 violation or error, 2 usage,
/// 4 inconclusive: the enumeration has gaps and nothing seen violates the policy).
pub fn run(cmd: ProbeCommand) -> u8 {
    let ProbeCommand::Tls(args) = cmd;
    let policy = if args.policy.eq_ignore_ascii_case("none") {
        None
    } else {
        match args.policy.parse::<Policy>() {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("error: invalid `--policy`: {e}");
                return exit::USAGE;
            }
        }
    };
    if !args.target.contains(':')
        || args
            .target
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_err())
    {
        eprintln!("error: target `{}` is not `HOST:PORT`", args.target);
        return exit::USAGE;
    }
    let cfg = ProbeConfig {
        target: args.target.clone(),
        timeout: args.timeout,
        parallel: args.parallel,
    };
    let findings = match probe::probe(&cfg) {
        Ok(f) => f,
        Err(e) => {
            let mut msg = format!("error: failed to probe: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("{msg}");
            return exit::FAILED;
        }
    };
    let report = probe_report::judge(findings, policy.as_ref());
    let text = match args.format {
        ProbeFormat::Table => probe_report::render_table(&report),
        ProbeFormat::Json => {
            serde_json::to_string_pretty(&probe_report::to_json(&report)).unwrap_or_default() + "\n"
        }
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    match report.verdict {
        Verdict::Fail => exit::FAILED,
        Verdict::Inconclusive => {
            eprintln!(
                "inconclusive: {} gap(s) in the enumeration; this is not a pass",
                report.findings.gaps.len()
            );
            exit::INCONCLUSIVE
        }
        Verdict::Pass | Verdict::NotJudged => exit::OK,
    }
}
