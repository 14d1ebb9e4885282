//! The committed copies of the distribution's images files (`distribution.directory`): which
//! files the matrix's Flux versions need (every variant of the current and previous release),
//! read from the source and checked before anything is written, compared with what is committed,
//! and written with a `PROVENANCE.md` that names the source, its commit and each sha256.

use crate::config::diag::Diagnostics;
use crate::config::images_file;
use crate::config::pins::{PinSource, sha256_hex};
use crate::model::FluxVersion;
use crate::model::matrix::Matrix;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The files the copies directory should hold: `images/<v>/<variant>.yaml` → text.
pub type Files = BTreeMap<String, String>;

/// Read every variant of `versions` from the source; every file must parse as an images file,
/// pin every installed component, and every channel's variant must be there.
pub fn read(source: &dyn PinSource, versions: &[FluxVersion], m: &Matrix) -> Result<Files, String> {
    let mut files = Files::new();
    for v in versions {
        let variants = source.variants(v).map_err(|e| format!("failed to {e}"))?;
        for c in &m.channels {
            if !variants.contains(&c.operator_variant) {
                return Err(format!(
                    "the {} has no variant `{}` (channel `{}`) at Flux {v}; it has: {}",
                    source.describe(),
                    c.operator_variant,
                    c.name,
                    variants.join(", ")
                ));
            }
        }
        for variant in &variants {
            let fetched = source
                .fetch(v, variant)
                .map_err(|e| format!("failed to {e}"))?
                .ok_or_else(|| {
                    format!(
                        "the {} lists `images/{v}/{variant}.yaml` but does not serve it",
                        source.describe()
                    )
                })?;
            check(&fetched.origin, &fetched.text, m)?;
            files.insert(format!("images/{v}/{variant}.yaml"), fetched.text);
        }
    }
    Ok(files)
}

/// One images file must parse and pin every installed component.
fn check(origin: &str, text: &str, m: &Matrix) -> Result<(), String> {
    let mut d = Diagnostics::default();
    let pins = images_file::parse(Path::new(origin), text, &mut d).unwrap_or_default();
    let missing: Vec<&str> = m
        .components
        .iter()
        .filter(|c| !pins.contains_key(c))
        .map(|c| c.name())
        .collect();
    let mut problems: Vec<String> = d.into_sorted().iter().map(|p| p.to_string()).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{origin}: pins no image for installed components: {}",
            missing.join(", ")
        ));
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "the distribution's images file is not usable:\n  {}",
            problems.join("\n  ")
        )),
    }
}

/// What the copies directory holds now (`images/*/*.yaml`).
pub fn committed(dir: &Path) -> Files {
    let mut out = Files::new();
    let Ok(versions) = std::fs::read_dir(dir.join("images")) else {
        return out;
    };
    for v in versions
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
    {
        let Ok(files) = std::fs::read_dir(v.path()) else {
            continue;
        };
        for f in files.filter_map(Result::ok) {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".yaml")
                && let Ok(text) = std::fs::read_to_string(f.path())
            {
                out.insert(
                    format!("images/{}/{name}", v.file_name().to_string_lossy()),
                    text,
                );
            }
        }
    }
    out
}

/// Human lines for the difference between committed and wanted copies.
pub fn diff(have: &Files, want: &Files) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in want {
        match have.get(path) {
            None => out.push(format!(
                "copy {path} added (sha256 {})",
                &sha256_hex(text.as_bytes())[..12]
            )),
            Some(old) if old != text => out.push(format!(
                "copy {path} changed: the distribution republished it (sha256 {} → {})",
                &sha256_hex(old.as_bytes())[..12],
                &sha256_hex(text.as_bytes())[..12]
            )),
            _ => {}
        }
    }
    for path in have.keys().filter(|p| !want.contains_key(*p)) {
        out.push(format!(
            "copy {path} removed: the matrix no longer uses that Flux version"
        ));
    }
    out
}

/// The provenance file for a set of copies.
pub fn provenance(files: &Files, source: &str, commit: Option<&str>) -> String {
    let rows: Vec<String> = files
        .iter()
        .map(|(p, t)| format!("| `{p}` | `{}` |", sha256_hex(t.as_bytes())))
        .collect();
    format!(
        "# Distribution images files (committed copies)\n\n\
Verbatim copies of `images/<flux-version>/<variant>.yaml` from the distribution repository, for the\n\
Flux versions `matrix.yaml` uses (current and previous minor, every variant), so `validate`, `plan`\n\
and `run` pin the channels offline. `flux-compat matrix update` rewrites them (and this file) from\n\
the distribution; `flux-compat matrix update --check` fails when they differ from it.\n\n\
- source: {source}\n- commit: {}\n\n| file | sha256 |\n|---|---|\n{}\n",
        commit.unwrap_or("unknown"),
        rows.join("\n")
    )
}

/// Replace the copies in `dir` with `files` (files no longer wanted removed), then the
/// provenance; each file written whole through a temporary file.
pub fn write(dir: &Path, have: &Files, files: &Files, provenance: &str) -> std::io::Result<()> {
    for (path, text) in files {
        if have.get(path) != Some(text) {
            write_atomic(&dir.join(path), text)?;
        }
    }
    for path in have.keys().filter(|p| !files.contains_key(*p)) {
        std::fs::remove_file(dir.join(path))?;
        if let Some(parent) = dir.join(path).parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
    write_atomic(&dir.join("PROVENANCE.md"), provenance)
}

/// Write `text` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let parent: PathBuf = path.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::create_dir_all(&parent)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&parent)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    // A rewritten file keeps its mode (the temporary file is private).
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions())?;
    }
    tmp.persist(path).map(|_| ()).map_err(|e| e.error)
}
