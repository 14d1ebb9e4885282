//! `flux-compat inspect binary|image`: arguments, rendering (table or JSON on stdout, problems
//! on stderr) and exit codes. Registry secrets come from an environment variable or a file.

use super::channel;
use super::classify::{InspectError, Inspection, inspect_file};
use super::image::{Credentials, ImageError, ImageInspection, Platform, Registry, inspect_image};
use crate::cli::GlobalArgs;
use crate::exit;
use crate::model::{FluxVersion, RunResult};
use clap::{Args, Subcommand, ValueEnum};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(subcommand)]
    pub command: InspectCommand,
}

#[derive(Debug, Subcommand)]
pub enum InspectCommand {
    /// Classify Go binaries: FIPS family, Go version, FIPS module, CGO, linkage, with evidence.
    Binary(BinaryArgs),
    /// Pull images, find the entrypoint binary, classify it and detect the base (distroless/Alpine).
    Image(ImageArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct BinaryArgs {
    /// ELF files to inspect.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output on stdout: a table with evidence lines, or JSON.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Image references (`registry/repo:tag[@sha256:...]`).
    #[arg(value_name = "REF", required_unless_present = "channel")]
    pub refs: Vec<String>,
    /// Check every controller image of this matrix channel against what it declares.
    #[arg(long, conflicts_with = "refs")]
    pub channel: Option<String>,
    /// The channel release to check (default: the newest in the matrix).
    #[arg(long, requires = "channel", value_name = "vX.Y.Z")]
    pub flux: Option<String>,
    /// The platform to pick from a multi-arch index (and to require of a single manifest).
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH[/VARIANT]")]
    pub platform: String,
    /// Talk to the registry over plain HTTP (loopback test registries).
    #[arg(long)]
    pub plain_http: bool,
    /// Name of the environment variable holding the registry token or password.
    #[arg(long, value_name = "VAR", conflicts_with = "registry_token_file")]
    pub registry_token_env: Option<String>,
    /// File holding the registry token or password.
    #[arg(long, value_name = "FILE")]
    pub registry_token_file: Option<PathBuf>,
    /// Username for basic auth (the token is then the password).
    #[arg(long)]
    pub username: Option<String>,
    /// Output on stdout: a table with evidence lines, or JSON (the results model for `--channel`).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write junit.xml, results.json and summary.md for the channel checks into this directory.
    #[arg(long, requires = "channel", value_name = "DIR")]
    pub report: Option<PathBuf>,
}

/// Run an `inspect` command; returns the exit code.
pub fn run(global: &GlobalArgs, args: InspectArgs) -> u8 {
    match args.command {
        InspectCommand::Binary(a) => binary(&a),
        InspectCommand::Image(a) => image(global, &a),
    }
}

fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not worth a message.
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

fn evidence_lines(i: &Inspection, out: &mut String) {
    for e in &i.evidence {
        let _ = writeln!(out, "    {}: {} [{}]", e.conclusion, e.detail, e.source);
    }
    for w in &i.warnings {
        let _ = writeln!(out, "    warning: {w}");
    }
}

fn cgo(i: &Inspection) -> &'static str {
    match i.cgo {
        Some(true) => "1",
        Some(false) => "0",
        None => "?",
    }
}

/// A file that is not a (whole) Go binary is a finding about that file (exit 1); a path that
/// cannot be read as a file at all is bad usage (exit 2).
fn classify_error(e: &InspectError) -> (&'static str, u8) {
    match e {
        InspectError::Read { .. } | InspectError::NotRegular { .. } => ("error", exit::USAGE),
        InspectError::NotGo(_)
        | InspectError::Truncated(_)
        | InspectError::MalformedBuildInfo { .. } => ("finding", exit::FAILED),
    }
}

fn binary(a: &BinaryArgs) -> u8 {
    let results: Vec<(PathBuf, Result<Inspection, InspectError>)> = a
        .paths
        .iter()
        .map(|p| (p.clone(), inspect_file(p)))
        .collect();
    // Every path gets its line; the worst outcome decides the exit code.
    let mut code = exit::OK;
    for (p, r) in &results {
        if let Err(e) = r {
            let (label, c) = classify_error(e);
            eprintln!("{label}: `{}`: {}", p.display(), channel::error_chain(e));
            code = code.max(c);
        }
    }
    let text = match a.format {
        Format::Json => {
            let items: Vec<serde_json::Value> = results
                .iter()
                .map(|(p, r)| match r {
                    Ok(i) => {
                        let mut v = serde_json::json!({"path": p.display().to_string()});
                        if let (Some(m), Ok(serde_json::Value::Object(o))) =
                            (v.as_object_mut(), serde_json::to_value(i))
                        {
                            m.extend(o);
                        }
                        v
                    }
                    Err(e) => {
                        let key = classify_error(e).0;
                        serde_json::json!({
                            "path": p.display().to_string(),
                            key: channel::error_chain(e),
                        })
                    }
                })
                .collect();
            serde_json::to_string_pretty(&items).unwrap_or_default() + "\n"
        }
        Format::Table => {
            let mut out = String::new();
            let _ = writeln!(
                out,
                "{:<40} {:<22} {:<24} {:<16} {:<3} {:<7} ARCH",
                "BINARY", "FAMILY", "GO", "FIPS-MODULE", "CGO", "LINKAGE"
            );
            for (p, r) in &results {
                match r {
                    Ok(i) => {
                        let _ = writeln!(
                            out,
                            "{:<40} {:<22} {:<24} {:<16} {:<3} {:<7} {}",
                            p.display(),
                            i.family.as_str(),
                            i.go_version_raw,
                            i.fips_module.as_deref().unwrap_or("-"),
                            cgo(i),
                            format!("{:?}", i.linkage).to_lowercase(),
                            i.arch
                        );
                        evidence_lines(i, &mut out);
                    }
                    Err(e) => {
                        let _ = writeln!(
                            out,
                            "{:<40} {}: {}",
                            p.display(),
                            classify_error(e).0,
                            channel::error_chain(e)
                        );
                    }
                }
            }
            out
        }
    };
    emit(&text);
    code
}

/// Resolve the registry secret once: from the named environment variable or file, never argv.
fn credentials(a: &ImageArgs) -> Result<Credentials, String> {
    let secret = if let Some(var) = &a.registry_token_env {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => return Err(format!("environment variable `{var}` is not set or empty")),
        }
    } else if let Some(f) = &a.registry_token_file {
        let v = std::fs::read_to_string(f)
            .map_err(|e| format!("cannot read token file `{}`: {e}", f.display()))?;
        let v = v.trim_end_matches(['\r', '\n']).to_string();
        if v.is_empty() {
            return Err(format!("token file `{}` is empty", f.display()));
        }
        Some(v)
    } else {
        None
    };
    if a.username.is_some() && secret.is_none() {
        return Err("--username needs --registry-token-env or --registry-token-file".into());
    }
    Ok(Credentials {
        username: a.username.clone(),
        secret,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            exit::FAILED
        })
}

fn image(global: &GlobalArgs, a: &ImageArgs) -> u8 {
    let platform = match Platform::parse(&a.platform) {
        Ok(p) => p,
        Err(e) => return crate::app::usage_error(e),
    };
    let creds = match credentials(a) {
        Ok(c) => c,
        Err(e) => return crate::app::usage_error(e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let reg = Registry::new(a.plain_http, creds);
    if let Some(ch) = &a.channel {
        return channel_cmd(global, a, ch, &rt, &reg, &platform);
    }
    let results: Vec<(String, Result<ImageInspection, ImageError>)> = a
        .refs
        .iter()
        .map(|r| (r.clone(), inspect_image(&rt, &reg, r, &platform)))
        .collect();
    let mut code = exit::OK;
    for (r, res) in &results {
        if let Err(e) = res {
            eprintln!("error: `{r}`: {}", channel::error_chain(e));
            code = if e.is_usage() || code == exit::USAGE {
                exit::USAGE
            } else {
                exit::FAILED
            };
        }
    }
    let text = match a.format {
        Format::Json => {
            let items: Vec<serde_json::Value> = results
                .iter()
                .map(|(r, res)| match res {
                    Ok(i) => serde_json::to_value(i).unwrap_or_default(),
                    Err(e) => serde_json::json!({"reference": r, "error": channel::error_chain(e)}),
                })
                .collect();
            serde_json::to_string_pretty(&items).unwrap_or_default() + "\n"
        }
        Format::Table => {
            let mut out = String::new();
            for (r, res) in &results {
                match res {
                    Ok(i) => {
                        let b = &i.binary;
                        let _ = writeln!(
                            out,
                            "{r}\n  digest {} ({} {})\n  binary {} (entrypoint {:?}), {} layer(s)\n  family {}, {}, fips module {}, cgo {}, {}, {}\n  base {}: {}",
                            i.digest,
                            i.platform,
                            i.platform_digest,
                            i.binary_path,
                            i.entrypoint,
                            i.layers,
                            b.family,
                            b.go_version_raw,
                            b.fips_module.as_deref().unwrap_or("-"),
                            cgo(b),
                            format!("{:?}", b.linkage).to_lowercase(),
                            b.arch,
                            i.base.kind.as_str(),
                            i.base.evidence.join("; ")
                        );
                        evidence_lines(b, &mut out);
                    }
                    Err(e) => {
                        let _ = writeln!(out, "{r}\n  error: {}", channel::error_chain(e));
                    }
                }
            }
            out
        }
    };
    emit(&text);
    code
}

fn channel_cmd(
    global: &GlobalArgs,
    a: &ImageArgs,
    name: &str,
    rt: &tokio::runtime::Runtime,
    reg: &Registry,
    platform: &Platform,
) -> u8 {
    let loaded = match crate::app::load_config(global) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let Some(ch) = loaded.matrix.channels.iter().find(|c| c.name == name) else {
        let known: Vec<String> = loaded
            .matrix
            .channels
            .iter()
            .map(|c| format!("`{}`", c.name))
            .collect();
        return crate::app::usage_error(format!(
            "unknown channel `{name}` (known: {})",
            known.join(", ")
        ));
    };
    let release = match &a.flux {
        Some(f) => {
            let v: FluxVersion = match f.parse() {
                Ok(v) => v,
                Err(e) => return crate::app::usage_error(e),
            };
            match ch.releases.get_key_value(&v) {
                Some(r) => r,
                None => {
                    let known: Vec<String> = ch.releases.keys().map(|k| format!("`{k}`")).collect();
                    return crate::app::usage_error(format!(
                        "channel `{name}` has no release `{v}` (known: {})",
                        known.join(", ")
                    ));
                }
            }
        }
        None => match ch.releases.iter().next_back() {
            Some(r) => r,
            None => return crate::app::usage_error(format!("channel `{name}` has no releases")),
        },
    };
    let (flux, rel) = release;
    let started = crate::report::now_rfc3339();
    let t0 = Instant::now();
    let mut cases = Vec::new();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<28} {:<6} {:<6} {:<22} {:<24} MESSAGE",
        "COMPONENT", "CHECK", "STATUS", "FAMILY", "GO"
    );
    for (component, pin) in &rel.images {
        let reference = pin.reference();
        let t = Instant::now();
        let res = inspect_image(rt, reg, &reference, platform);
        let ms = t.elapsed().as_millis() as u64;
        let (family, go) = match &res {
            Ok(i) => (
                i.binary.family.as_str().to_string(),
                i.binary.go_version_raw.clone(),
            ),
            Err(_) => ("-".into(), "-".into()),
        };
        let component_cases = channel::component_cases(
            name,
            ch.fips,
            ch.base,
            component.name(),
            &reference,
            &res,
            ms,
        );
        for c in &component_cases {
            let _ = writeln!(
                table,
                "{:<28} {:<6} {:<6} {:<22} {:<24} {}",
                component.name(),
                c.tags.get(1).map(String::as_str).unwrap_or(""),
                c.status.as_str(),
                family,
                go,
                c.message.as_deref().unwrap_or("")
            );
        }
        if let Ok(i) = &res {
            evidence_lines(&i.binary, &mut table);
        }
        cases.extend(component_cases);
    }
    let cell = channel::cell(
        name,
        &flux.to_string(),
        started.clone(),
        t0.elapsed().as_millis() as u64,
        cases,
    );
    let mut run = RunResult::new(&format!("inspect-{name}-{flux}"), started);
    run.cells.push(cell);
    run.finished_at = Some(crate::report::now_rfc3339());
    run.complete = true;
    match a.format {
        Format::Table => emit(&table),
        Format::Json => emit(&(serde_json::to_string_pretty(&run).unwrap_or_default() + "\n")),
    }
    if let Some(dir) = &a.report {
        if let Err(e) = crate::report::files::write_all(dir, &run) {
            eprintln!("error: {}", channel::error_chain(&e));
            return exit::FAILED;
        }
        eprintln!("wrote {}", dir.display());
    }
    let c = run.case_counts();
    eprintln!(
        "channel `{name}` {flux}: {} passed, {} failed, {} errored",
        c.pass, c.fail, c.error
    );
    crate::app::outcome_code(&run)
}
