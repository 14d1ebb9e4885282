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
    #[error("cannot read `{path}`: {source}")]
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
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
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
