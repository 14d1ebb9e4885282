//! Writing and reading a report directory: `results.json`, `junit.xml`, `summary.md`,
//! `report.html`. Files are replaced atomically (write then rename) so a crash mid-write never
//! leaves a torn report.

use crate::model::RunResult;
use crate::model::results::RESULTS_SCHEMA;
use std::path::{Path, PathBuf};

/// A report file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is not a flux-compat results file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cell `{cell}` appears in both `{first}` and `{second}`")]
    DuplicateCell {
        cell: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("cell `{cell}` appears twice in `{path}`")]
    DuplicateInShard { cell: String, path: PathBuf },
    #[error("`{path}`: `{field}` is `{value}`, not an RFC 3339 timestamp")]
    BadTimestamp {
        path: PathBuf,
        field: &'static str,
        value: String,
    },
    #[error("the output directory `{0}` is one of the inputs; merge into another directory")]
    OutputIsInput(PathBuf),
}

/// Write `text` to `path` atomically.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp~");
    // Reports are a sink like any other: they pass the redaction layer.
    let written = std::fs::write(&tmp, crate::redact::text(text).as_bytes())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        // A failed write leaves no partial temporary file behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}

/// Mask secrets in every text file under `dir` (artifacts written by other programs, such as
/// `kind export logs`). Files that are not UTF-8 are left alone; returns the files rewritten.
pub fn redact_tree(dir: &Path) -> Vec<PathBuf> {
    let mut rewritten = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file()
                && let Ok(text) = std::fs::read_to_string(e.path())
                && let std::borrow::Cow::Owned(clean) = crate::redact::text(&text)
                && std::fs::write(e.path(), clean).is_ok()
            {
                rewritten.push(e.path());
            }
        }
    }
    rewritten
}

/// Check, before anything runs, that reports can be written into `dir` (created if missing).
pub fn check_writable(dir: &Path) -> Result<(), ReportError> {
    let probe = dir.join(".flux-compat-write-check");
    let err = |source| ReportError::Write {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    std::fs::write(&probe, b"").map_err(err)?;
    std::fs::remove_file(&probe).map_err(err)
}

/// Write every report for `run` into `dir`.
pub fn write_all(dir: &Path, run: &RunResult) -> Result<(), ReportError> {
    let json = serde_json::to_string_pretty(run).expect("results serialise");
    write_atomic(&dir.join("results.json"), &(json + "\n"))?;
    write_atomic(&dir.join("junit.xml"), &super::junit::render(run))?;
    write_atomic(&dir.join("summary.md"), &super::summary::render(run))?;
    write_atomic(&dir.join("report.html"), &super::html::render(run))
}

/// Read a `results.json`, with the position of any problem.
pub fn read_results(path: &Path) -> Result<RunResult, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let run: RunResult = serde_json::from_str(&text).map_err(|e| ReportError::Parse {
        path: path.to_path_buf(),
        message: format!("line {} column {}: {e}", e.line(), e.column()),
    })?;
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let bad_time = |field: &'static str, value: &str| ReportError::BadTimestamp {
        path: path.to_path_buf(),
        field,
        value: crate::errors::escape_controls(value).into_owned(),
    };
    for (field, value) in std::iter::once(("startedAt", Some(&run.started_at)))
        .chain(std::iter::once(("finishedAt", run.finished_at.as_ref())))
        .chain(
            run.cells
                .iter()
                .map(|c| ("cells[].startedAt", Some(&c.started_at))),
        )
    {
        if let Some(v) = value
            && time::OffsetDateTime::parse(v, rfc3339).is_err()
        {
            return Err(bad_time(field, v));
        }
    }
    if run.schema != RESULTS_SCHEMA {
        return Err(ReportError::Parse {
            path: path.to_path_buf(),
            message: format!(
                "unsupported schema `{}`; expected `{RESULTS_SCHEMA}`",
                run.schema
            ),
        });
    }
    Ok(run)
}
