//! `report merge --expect PLAN`: the plan the shards were cut from (`plan --format json`), so
//! that no planned cell can vanish from a merged report. A planned cell without results becomes
//! an error with the reason (the exit status its job left, or "the job did not finish"); a cell
//! the plan skipped stays skipped with the plan's reason. Also owns the exit-status file a `run`
//! leaves in its report directory when it stops before any cell ran.

use crate::model::{CellResult, RunResult, ScenarioResult, Status};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The file a `run` writes into its report directory when it exits before running any cell.
pub const EXIT_STATUS_FILE: &str = "exit-status.json";
/// Schema id of [`ExitStatus`].
pub const EXIT_STATUS_SCHEMA: &str = "flux-compat/exit-status/v1";
/// The reason of a planned cell that has neither results nor an exit status.
pub const NOT_FINISHED: &str = "no results uploaded: the job did not finish";

/// Why a run stopped before any cell ran: its exit code and the message it printed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExitStatus {
    pub schema: String,
    /// The cells that run had selected.
    pub cells: Vec<String>,
    pub exit_code: u8,
    pub message: String,
}

impl ExitStatus {
    pub fn new(cells: Vec<String>, exit_code: u8, message: &str) -> Self {
        Self {
            schema: EXIT_STATUS_SCHEMA.into(),
            cells,
            exit_code,
            // The message was printed through the redaction layer; the file is a sink too.
            message: crate::redact::owned(message.to_string()),
        }
    }

    /// `exited 3: channel(s) ... need a registry token`.
    pub fn reason(&self) -> String {
        format!("exited {}: {}", self.exit_code, self.message)
    }
}

/// A problem with the plan or an exit-status file.
#[derive(Debug, thiserror::Error)]
pub enum ExpectError {
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: crate::config::source::SourceError,
    },
    #[error("`{path}` is not {what}: {message}")]
    Parse {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
}

/// The part of `plan --format json` a merge needs.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedPlan {
    pub cells: Vec<ExpectedCell>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedCell {
    pub id: String,
    pub kubernetes: String,
    #[serde(default)]
    pub kubernetes_version: String,
    #[serde(default)]
    pub node_image: Option<String>,
    pub channel: String,
    pub flux: String,
    pub provider: String,
    #[serde(default)]
    pub skip: Option<String>,
    #[serde(default)]
    pub scenarios: Vec<ExpectedScenario>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedScenario {
    pub name: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub skip: Option<String>,
}

fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T, ExpectError> {
    // Plans of large matrices run to a few MiB; anything far beyond is not a plan.
    let text =
        crate::config::source::read_text(path, 64 << 20).map_err(|source| ExpectError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    serde_json::from_str(&text).map_err(|e| ExpectError::Parse {
        path: path.to_path_buf(),
        what,
        message: format!("line {} column {}: {e}", e.line(), e.column()),
    })
}

/// Read a plan written by `plan --format json`.
pub fn read_plan(path: &Path) -> Result<ExpectedPlan, ExpectError> {
    read_json(path, "a `plan --format json` file")
}

/// Read an exit-status file, checking its schema.
pub fn read_exit_status(path: &Path) -> Result<ExitStatus, ExpectError> {
    let s: ExitStatus = read_json(path, "a flux-compat exit-status file")?;
    if s.schema != EXIT_STATUS_SCHEMA {
        return Err(ExpectError::Parse {
            path: path.to_path_buf(),
            what: "a flux-compat exit-status file",
            message: format!(
                "unsupported schema `{}`; expected `{EXIT_STATUS_SCHEMA}`",
                s.schema
            ),
        });
    }
    Ok(s)
}

/// Write `status` into `dir` (atomically, through the redaction layer).
pub fn write_exit_status(dir: &Path, status: &ExitStatus) -> Result<(), super::files::ReportError> {
    let json = serde_json::to_string_pretty(status).expect("exit status serialises");
    super::files::write_atomic(&dir.join(EXIT_STATUS_FILE), &(json + "\n"))
}

/// What [`fill_missing`] added.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Filled {
    /// Planned cells with no results, now errors.
    pub missing: Vec<String>,
    /// Planned-skipped cells with no results, now skipped with the plan's reason.
    pub skipped: Vec<String>,
    /// Cells in the results that the plan does not have.
    pub unplanned: Vec<String>,
}

/// Add every planned cell that `run` lacks: skipped with the plan's reason when the plan skips
/// it, otherwise an error whose reason is the exit status naming it, or [`NOT_FINISHED`].
pub fn fill_missing(run: &mut RunResult, plan: &ExpectedPlan, statuses: &[ExitStatus]) -> Filled {
    let have: BTreeSet<String> = run.cells.iter().map(|c| c.id.clone()).collect();
    let planned: BTreeSet<&str> = plan.cells.iter().map(|c| c.id.as_str()).collect();
    let mut reasons: BTreeMap<&str, String> = BTreeMap::new();
    for s in statuses {
        for c in &s.cells {
            reasons.entry(c.as_str()).or_insert_with(|| s.reason());
        }
    }
    let mut filled = Filled {
        unplanned: have
            .iter()
            .filter(|id| !planned.contains(id.as_str()))
            .cloned()
            .collect(),
        ..Filled::default()
    };
    let now = super::now_rfc3339();
    for cell in plan.cells.iter().filter(|c| !have.contains(&c.id)) {
        let (status, reason) = match &cell.skip {
            Some(why) => (Status::Skip, why.clone()),
            None => (
                Status::Error,
                reasons
                    .get(cell.id.as_str())
                    .cloned()
                    .unwrap_or_else(|| NOT_FINISHED.to_string()),
            ),
        };
        match status {
            Status::Skip => filled.skipped.push(cell.id.clone()),
            _ => filled.missing.push(cell.id.clone()),
        }
        run.cells.push(absent_cell(cell, status, &reason, &now));
    }
    if !filled.missing.is_empty() {
        // A merge that lacks planned cells is not a complete run.
        run.complete = false;
    }
    filled
}

/// The result of a planned cell that left none: every scenario skipped, the cell carrying the
/// outcome (its `[cell]` case makes it visible in every report).
fn absent_cell(cell: &ExpectedCell, status: Status, reason: &str, now: &str) -> CellResult {
    let not_run = match status {
        Status::Skip => format!("cell skipped: {reason}"),
        _ => format!("not run: {reason}"),
    };
    CellResult {
        id: cell.id.clone(),
        kubernetes_minor: cell.kubernetes.clone(),
        kubernetes_version: (!cell.kubernetes_version.is_empty())
            .then(|| cell.kubernetes_version.clone()),
        node_image: cell.node_image.clone(),
        channel: cell.channel.clone(),
        flux_version: cell.flux.clone(),
        provider: cell.provider.clone(),
        status,
        message: Some(reason.to_string()),
        started_at: now.to_string(),
        duration_ms: 0,
        properties: BTreeMap::new(),
        phases: Vec::new(),
        scenarios: cell
            .scenarios
            .iter()
            .map(|s| ScenarioResult {
                name: s.name.clone(),
                tags: s.tags.clone(),
                status: Status::Skip,
                message: Some(s.skip.clone().unwrap_or_else(|| not_run.clone())),
                duration_ms: 0,
                steps: Vec::new(),
                diagnostics: None,
                artifacts: None,
                properties: BTreeMap::new(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ExpectedPlan {
        serde_json::from_value(serde_json::json!({"cells": [
            {"id": "a", "kubernetes": "1.37", "kubernetesVersion": "v1.37.0", "nodeImage": null,
             "channel": "upstream", "fips": false, "flux": "v2.9.4", "provider": "kind", "skip": null,
             "scenarios": [{"name": "s", "tags": ["core"], "skip": null}]},
            {"id": "b", "kubernetes": "1.37", "channel": "fips", "flux": "v2.9.4", "provider": "kind",
             "skip": null, "scenarios": [{"name": "s", "tags": [], "skip": null}]},
            {"id": "c", "kubernetes": "1.37", "channel": "mainline", "flux": "v2.9.4", "provider": "kind",
             "skip": "no registry token", "scenarios": [{"name": "s", "tags": [], "skip": null}]}
        ], "partition": null, "totalCells": 3}))
        .unwrap()
    }

    #[test]
    fn every_planned_cell_is_in_the_merge_with_its_reason() {
        let mut run = RunResult::new("r", "2026-12-02T10:00:00Z".into());
        run.complete = true;
        let exited = ExitStatus::new(vec!["b".into()], 3, "channel(s) `fips` need a token");
        let filled = fill_missing(&mut run, &plan(), &[exited]);
        assert_eq!(filled.missing, vec!["a", "b"]);
        assert_eq!(filled.skipped, vec!["c"]);
        assert!(!run.complete);
        let by_id = |id: &str| run.cells.iter().find(|c| c.id == id).unwrap().clone();
        assert_eq!(by_id("a").status, Status::Error);
        assert_eq!(by_id("a").message.as_deref(), Some(NOT_FINISHED));
        assert_eq!(by_id("a").cell_case(), Some(Status::Error));
        assert_eq!(
            by_id("b").message.as_deref(),
            Some("exited 3: channel(s) `fips` need a token")
        );
        assert_eq!(by_id("c").status, Status::Skip);
        assert_eq!(
            by_id("c").scenarios[0].message.as_deref(),
            Some("cell skipped: no registry token")
        );
        assert_eq!(run.case_counts().error, 2);
    }

    #[test]
    fn cells_with_results_are_left_alone_and_unplanned_ones_named() {
        let mut run = RunResult::new("r", "2026-12-02T10:00:00Z".into());
        let mut a = absent_cell(&plan().cells[0], Status::Pass, "", "t");
        a.message = None;
        run.cells.push(a.clone());
        let mut z = a.clone();
        z.id = "z".into();
        run.cells.push(z);
        let filled = fill_missing(&mut run, &plan(), &[]);
        assert_eq!(filled.unplanned, vec!["z"]);
        assert_eq!(run.cells[0], a);
    }
}
