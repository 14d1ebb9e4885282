//! `matrix update`: reads the sources (network ones unless `--offline`), computes the new matrix,
//! prints the diff with its reasons on stdout, and writes `matrix.yaml` and the committed copies
//! only when every source was read and checked (`--check` and `--dry-run` write nothing).

use super::{Inputs, Outcome, copies, kind, support};
use crate::cli::{GlobalArgs, UpdateArgs};
use crate::config::pins::PinSource;
use crate::distribution::{self, http};
use crate::exit;
use crate::model::FluxVersion;
use crate::model::matrix::{Matrix, PROFILE_LTS, PROFILE_NEWEST};
use std::path::{Path, PathBuf};

/// Where kind's releases and Kubernetes' markers are read (overridable for mirrors and tests).
fn kind_releases_url() -> String {
    let api = distribution::github::Endpoints::from_env().api;
    format!("{api}/repos/kubernetes-sigs/kind/releases?per_page=30")
}

fn stable_url() -> String {
    let base = std::env::var("FLUX_COMPAT_K8S_RELEASE")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "https://dl.k8s.io/release".into());
    format!("{}/stable.txt", base.trim_end_matches('/'))
}

/// A source could not be read: say which, and stop before writing anything.
fn source_error(message: impl std::fmt::Display) -> u8 {
    crate::eprintln_redacted!("error: {message}");
    crate::eprintln_redacted!("matrix.yaml was left untouched");
    exit::PREREQUISITE
}

pub fn run(global: &GlobalArgs, args: &UpdateArgs) -> u8 {
    let profiles: Vec<&'static str> = match args.profile.as_deref() {
        None => vec![PROFILE_NEWEST, PROFILE_LTS],
        Some(PROFILE_NEWEST) => vec![PROFILE_NEWEST],
        Some(PROFILE_LTS) => vec![PROFILE_LTS],
        Some(other) => {
            return crate::app::usage_error(format!(
                "unknown profile `{other}`; known profiles: `newest`, `lts`"
            ));
        }
    };
    let date = match &args.date {
        Some(d) if support::is_date(d) => d.clone(),
        Some(d) => {
            return crate::app::usage_error(format!("`--date {d}` is not a date (YYYY-MM-DD)"));
        }
        None => today(),
    };
    let source = match open_source(global, args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let text = match crate::config::source::read_text(
        &global.matrix,
        crate::config::source::MAX_CONFIG_BYTES,
    ) {
        Ok(t) => t,
        Err(e) => {
            return crate::app::usage_error(format!(
                "cannot read `{}`: {e}",
                global.matrix.display()
            ));
        }
    };
    let loaded = load(global, source.as_deref());
    let Ok(matrix) = loaded else {
        return exit::USAGE;
    };
    let mut inputs = Inputs {
        profiles,
        ..Inputs::default()
    };
    if let Err(e) = read_sources(global, args, &date, &mut inputs) {
        return e;
    }
    let (flux, files) = match read_distribution(source.as_deref(), &matrix) {
        Ok(x) => x,
        Err(e) => return source_error(e),
    };
    inputs.flux = flux;
    let outcome = match super::compute(&matrix, &text, &inputs) {
        Ok(o) => o,
        Err(e) => return crate::app::usage_error(e),
    };
    finish(
        global,
        args,
        &date,
        &matrix,
        source.as_deref(),
        outcome,
        files,
    )
}

fn today() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::now_utc()
        .date()
        .format(&format)
        .unwrap_or_default()
}

/// The distribution to compute from: `--distribution`, else (online) the matrix's repository.
fn open_source(global: &GlobalArgs, args: &UpdateArgs) -> Result<Option<Box<dyn PinSource>>, u8> {
    let arg = match &global.distribution {
        Some(a) => a.clone(),
        None if args.offline => return Ok(None),
        None => {
            repository_of(&global.matrix).unwrap_or_else(|| distribution::DEFAULT_REPOSITORY.into())
        }
    };
    distribution::open(&arg, args.offline)
        .map(Some)
        .map_err(crate::app::usage_error)
}

/// `distribution.repository` of the matrix file, read without loading the rest.
fn repository_of(matrix: &Path) -> Option<String> {
    let text =
        crate::config::source::read_text(matrix, crate::config::source::MAX_CONFIG_BYTES).ok()?;
    let doc = crate::config::yaml::parse_single(&text).ok()?;
    Some(
        doc.value
            .pointer("/distribution/repository")?
            .as_str()?
            .to_string(),
    )
}

fn load(global: &GlobalArgs, source: Option<&dyn PinSource>) -> Result<Matrix, ()> {
    let sources = crate::config::Sources {
        matrix: global.matrix.clone(),
        scenarios_dir: global.scenarios_dir.clone(),
    };
    match crate::config::load_from(&sources, global.allow_outside_project, source) {
        Ok(l) => Ok(l.matrix),
        Err(problems) => {
            for p in &problems {
                crate::eprintln_redacted!("{p}");
            }
            crate::eprintln_redacted!(
                "error: {} problem(s) in the configuration; fix them before updating",
                problems.len()
            );
            Err(())
        }
    }
}

/// kind's release notes and Kubernetes' marker (online), and the vendor support data.
fn read_sources(
    global: &GlobalArgs,
    args: &UpdateArgs,
    date: &str,
    inputs: &mut Inputs,
) -> Result<(), u8> {
    // Both profiles need kind's images (the `lts` minors are pinned the same way).
    if !args.offline {
        let client = http::Http::new(http::Policy::default()).map_err(source_error)?;
        let token = distribution::github_token();
        let url = kind_releases_url();
        let body = client
            .get(
                &url,
                &[("accept", "application/vnd.github+json".into())],
                token.as_ref(),
            )
            .map_err(|e| source_error(format!("failed to read kind's releases: {e}")))?;
        inputs.kind = Some(kind::parse_releases(&body.body).map_err(|e| {
            source_error(format!("failed to read kind's releases from `{url}`: {e}"))
        })?);
        let url = stable_url();
        let body = client.get(&url, &[], None).map_err(|e| {
            source_error(format!(
                "failed to read Kubernetes' stable version marker: {e}"
            ))
        })?;
        inputs.stable = Some(
            kind::parse_stable(&body.body)
                .map_err(|e| source_error(format!("failed to read `{url}`: {e}")))?,
        );
    }
    if inputs.profiles.contains(&PROFILE_LTS) {
        let file = args
            .support_data
            .clone()
            .unwrap_or_else(|| beside(&global.matrix, "support/vendor-lts.yaml"));
        let data = support::load(&file).map_err(|problems| {
            for p in &problems {
                crate::eprintln_redacted!("{p}");
            }
            exit::USAGE
        })?;
        inputs.lts = Some((data.supported_on(date), date.to_string()));
    }
    Ok(())
}

fn beside(matrix: &Path, rel: &str) -> PathBuf {
    matrix.parent().unwrap_or(Path::new(".")).join(rel)
}

type Flux = Option<(FluxVersion, Option<FluxVersion>)>;

/// The newest release, the newest patch of the minor before it, and their images files.
fn read_distribution(
    source: Option<&dyn PinSource>,
    m: &Matrix,
) -> Result<(Flux, Option<copies::Files>), String> {
    let Some(source) = source else {
        return Ok((None, None));
    };
    let releases = source.releases().map_err(|e| format!("failed to {e}"))?;
    let newest = releases
        .iter()
        .filter(|v| v.0.pre.is_empty())
        .max()
        .cloned()
        .ok_or_else(|| format!("the {} has no release under `images/`", source.describe()))?;
    let previous = releases
        .iter()
        .filter(|v| {
            v.0.pre.is_empty() && v.0.major == newest.0.major && v.0.minor + 1 == newest.0.minor
        })
        .max()
        .cloned();
    let mut versions = vec![newest.clone()];
    versions.extend(previous.clone());
    // Other Flux entries of the matrix (a candidate line) keep their copies.
    for f in m.flux.iter().skip(1) {
        versions.extend(std::iter::once(f.version.clone()).chain(f.previous.clone()));
    }
    versions.sort();
    versions.dedup();
    let files = match &m.distribution_dir {
        Some(_) => Some(copies::read(source, &versions, m)?),
        None => None,
    };
    Ok((Some((newest, previous)), files))
}

fn finish(
    global: &GlobalArgs,
    args: &UpdateArgs,
    date: &str,
    m: &Matrix,
    source: Option<&dyn PinSource>,
    mut outcome: Outcome,
    files: Option<copies::Files>,
) -> u8 {
    let have = m
        .distribution_dir
        .as_deref()
        .map(copies::committed)
        .unwrap_or_default();
    if let Some(want) = &files {
        outcome.changes.extend(copies::diff(&have, want));
    }
    print_diff(&global.matrix, date, &outcome);
    if args.check {
        return if outcome.changes.is_empty() {
            exit::OK
        } else {
            crate::eprintln_redacted!(
                "error: `{}` is behind its sources ({} change(s)); run `flux-compat matrix update`",
                global.matrix.display(),
                outcome.changes.len()
            );
            exit::FAILED
        };
    }
    if args.dry_run || outcome.changes.is_empty() {
        return exit::OK;
    }
    // The new matrix must load (with the new pins) before anything is written.
    let mut d = crate::config::Diagnostics::default();
    let boundary = crate::config::source::Boundary::anywhere();
    if crate::config::matrix::load_from(&global.matrix, &outcome.text, &boundary, source, &mut d)
        .is_none()
        || !d.is_empty()
    {
        for p in d.into_sorted() {
            crate::eprintln_redacted!("{p}");
        }
        return source_error("the updated matrix would not load (problems above)");
    }
    if let (Some(dir), Some(want), Some(src)) = (&m.distribution_dir, &files, source)
        && *want != have
    {
        let prov = copies::provenance(want, &provenance_source(global, m), src.commit().as_deref());
        if let Err(e) = copies::write(dir, &have, want, &prov) {
            return source_error(format!(
                "failed to write the copies in `{}`: {e}",
                dir.display()
            ));
        }
    }
    match copies::write_atomic(&global.matrix, &outcome.text) {
        Ok(()) => {
            crate::eprintln_redacted!("wrote {}", global.matrix.display());
            exit::OK
        }
        Err(e) => source_error(format!(
            "failed to write `{}`: {e}",
            global.matrix.display()
        )),
    }
}

/// The source named in the provenance file: the URL read, or for a checkout the repository it
/// is a checkout of (never a path on this machine).
fn provenance_source(global: &GlobalArgs, m: &Matrix) -> String {
    let repository = m
        .distribution_repository
        .clone()
        .unwrap_or_else(|| distribution::DEFAULT_REPOSITORY.into());
    match &global.distribution {
        Some(url) if url.starts_with("http") => url.clone(),
        Some(_) => format!("{repository} (a local checkout)"),
        None => repository,
    }
}

/// The diff on stdout (the workflow uses it as the pull request body).
fn print_diff(matrix: &Path, date: &str, o: &Outcome) {
    let mut s = format!(
        "## `{}` against its sources on {date}\n\n",
        matrix.display()
    );
    if o.changes.is_empty() {
        s.push_str("Up to date: nothing to change.\n");
    }
    for c in &o.changes {
        s.push_str(&format!("- {c}\n"));
    }
    if !o.left.is_empty() {
        s.push_str("\nLeft as they were:\n\n");
        for l in &o.left {
            s.push_str(&format!("- {l}\n"));
        }
    }
    print!("{}", crate::redact::text(&s));
}
