//! Configuration: the only place raw serde structs exist. Loads `matrix.yaml` and
//! `scenarios/*.yaml`, validates them together and reports every problem at `file:line:col`.
//! Pure and synchronous; nothing here touches a cluster.

pub mod diag;
pub mod images_file;
mod installs;
pub mod matrix;
pub mod pins;
pub mod scenario;
pub mod source;
pub mod yaml;

pub use diag::{Diagnostic, Diagnostics};

use crate::model::matrix::Matrix;
use crate::model::scenario::Scenario;
use std::path::{Path, PathBuf};

/// A validated matrix with the scenarios it selects from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub matrix: Matrix,
    pub scenarios: Vec<Scenario>,
}

/// Where to load from.
#[derive(Clone, Debug)]
pub struct Sources {
    pub matrix: PathBuf,
    /// Overrides the matrix's `scenarios.directory`.
    pub scenarios_dir: Option<PathBuf>,
}

/// Read a configuration file through [`source::read_text`]; a refusal is a diagnostic at the
/// offending byte (a NUL) or the file's start.
pub(crate) fn read(path: &Path, d: &mut Diagnostics) -> Option<String> {
    match source::read_text(path, source::MAX_CONFIG_BYTES) {
        Ok(t) => Some(t),
        Err(e) => {
            let (line, col) = e.position();
            d.push(
                path,
                yaml::Pos { line, col },
                format!("cannot read file: {e}"),
            );
            None
        }
    }
}

/// Load and validate everything, file references kept inside the project; `Err` carries every
/// problem found, sorted.
pub fn load(sources: &Sources) -> Result<Loaded, Vec<Diagnostic>> {
    load_with(sources, false)
}

/// [`load`], with `allow_outside_project` letting file references leave the project directory.
pub fn load_with(
    sources: &Sources,
    allow_outside_project: bool,
) -> Result<Loaded, Vec<Diagnostic>> {
    load_from(sources, allow_outside_project, None)
}

/// [`load_with`], with the pins channels do not write read from `distribution` (a checkout or
/// the repository given with `--distribution`) instead of the matrix's `distribution.directory`.
pub fn load_from(
    sources: &Sources,
    allow_outside_project: bool,
    distribution: Option<&dyn pins::PinSource>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let mut d = Diagnostics::default();
    let mut roots = vec![
        sources
            .matrix
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf(),
    ];
    roots.extend(sources.scenarios_dir.clone());
    let boundary = source::Boundary::new(&roots, allow_outside_project);
    let matrix_text = read(&sources.matrix, &mut d);
    let matrix = matrix_text
        .as_deref()
        .and_then(|t| matrix::load_from(&sources.matrix, t, &boundary, distribution, &mut d));

    let base = sources
        .matrix
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    // When the matrix itself is broken, still find its scenario directory if the YAML parsed,
    // so scenario problems are reported in the same pass.
    let declared_dir = || {
        let doc = yaml::parse_single(matrix_text.as_deref()?).ok()?;
        let dir = doc
            .value
            .pointer("/scenarios/directory")?
            .as_str()?
            .to_string();
        Some(base.join(dir))
    };
    let dir = sources
        .scenarios_dir
        .clone()
        .or_else(|| matrix.as_ref().map(|m| m.scenarios_dir.clone()))
        .or_else(declared_dir)
        .unwrap_or_else(|| base.join("scenarios"));
    let check_scenarios = matrix.is_some() || sources.scenarios_dir.is_some() || dir.is_dir();
    // Scenario files may reference manifests inside the project or their own directory.
    roots.push(dir.clone());
    let boundary = source::Boundary::new(&roots, allow_outside_project);
    let channel_names: Option<Vec<String>> = matrix
        .as_ref()
        .map(|m| m.channels.iter().map(|c| c.name.clone()).collect());
    let root = sources
        .matrix
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let flux_versions: Option<Vec<_>> = matrix.as_ref().map(|m| {
        m.flux
            .iter()
            .map(|f| (f.version.clone(), f.previous.clone()))
            .collect()
    });
    let ctx = scenario::Context {
        flux_versions: flux_versions.as_deref(),
        channels: channel_names.as_deref(),
        fixtures_root: Some(&root),
        default_timeout: matrix
            .as_ref()
            .map(|m| m.timeouts.scenario)
            .unwrap_or(std::time::Duration::from_secs(600)),
    };

    let mut scenarios: Vec<Scenario> = Vec::new();
    match scenario_files(&dir) {
        _ if !check_scenarios => {}
        Ok(files) => {
            if files.is_empty() {
                d.push(
                    &dir,
                    yaml::Pos { line: 1, col: 1 },
                    "no scenario files (`*.yaml`) in this directory",
                );
            }
            for file in files {
                let Some(text) = read(&file, &mut d) else {
                    continue;
                };
                let before = d.len();
                let loaded = scenario::load_with(&file, &text, &ctx, &boundary, &mut d);
                // Step indices match the file only when the scenario itself loaded cleanly.
                if let (Some(m), Some(s)) = (&matrix, &loaded)
                    && d.len() == before
                    && let Ok(doc) = yaml::parse_single(&text)
                {
                    installs::check(m, s, &doc, &mut d);
                }
                if let Some(s) = loaded {
                    if let Some(first) = scenarios.iter().find(|o| o.name == s.name) {
                        d.push(
                            &file,
                            yaml::Pos { line: 1, col: 1 },
                            format!(
                                "duplicate scenario name `{}` (also in {})",
                                s.name,
                                first.file.display()
                            ),
                        );
                    }
                    scenarios.push(s);
                }
            }
        }
        Err(e) => d.push(
            &dir,
            yaml::Pos { line: 1, col: 1 },
            format!("cannot read scenarios directory: {e}"),
        ),
    }

    // Selection names must exist: a typo would silently run nothing.
    if let (Some(text), Some(_)) = (&matrix_text, &matrix) {
        let known: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
        for (name, pos) in matrix::selection_name_positions(text) {
            if !known.contains(&name.as_str()) {
                let list = known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                d.push(
                    &sources.matrix,
                    pos,
                    format!("unknown scenario `{name}`; known scenarios: {list}"),
                );
            }
        }
    }

    match matrix {
        Some(matrix) if d.is_empty() => {
            scenarios.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Loaded { matrix, scenarios })
        }
        _ => Err(d.into_sorted()),
    }
}

/// `*.yaml` / `*.yml` files directly in `dir`, sorted; README and hidden files are ignored.
pub fn scenario_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Timeouts the run will not honour as written, as `file:line:col: warning: ...` lines: a
/// scenario (or the matrix default) above [`SCENARIO_CAP`](crate::model::matrix::SCENARIO_CAP)
/// is cut to the cap.
pub fn timeout_warnings(loaded: &Loaded) -> Vec<String> {
    use crate::model::matrix::SCENARIO_CAP;
    let cap = humantime::format_duration(SCENARIO_CAP);
    let at = |file: &Path, path: &str| {
        let pos = read(file, &mut Diagnostics::default())
            .and_then(|t| yaml::parse_single(&t).ok())
            .map(|doc| doc.value_pos(path))
            .unwrap_or(yaml::Pos { line: 1, col: 1 });
        format!(
            "{}:{}:{}",
            crate::errors::escape_controls(&file.display().to_string()),
            pos.line,
            pos.col
        )
    };
    let mut out = Vec::new();
    let m = &loaded.matrix;
    if m.timeouts.scenario > SCENARIO_CAP {
        out.push(format!(
            "{}: warning: the default scenario timeout {} is above the cap of {cap}: scenarios get {cap} at most",
            at(&m.file, "timeouts.scenario"),
            humantime::format_duration(m.timeouts.scenario),
        ));
    }
    // A scenario that inherits an over-cap default is covered by the warning above.
    let declared = |s: &&crate::model::scenario::Scenario| {
        s.timeout > SCENARIO_CAP && s.timeout != m.timeouts.scenario
    };
    for s in loaded.scenarios.iter().filter(declared) {
        out.push(format!(
            "{}: warning: scenario `{}` declares a timeout of {}, above the cap of {cap}: it gets {cap}",
            at(&s.file, "spec.timeout"),
            s.name,
            humantime::format_duration(s.timeout),
        ));
    }
    out
}
