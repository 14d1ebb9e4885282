//! `report merge`: joins the results of several shards into one report set; with the plan
//! (`--expect`), every planned cell is in it, with results or with the reason it has none.

use super::expect::{
    EXIT_STATUS_FILE, ExpectError, Filled, fill_missing, read_exit_status, read_plan,
};
use super::files::{ReportError, read_results, write_all};
use crate::model::{KubeMinor, RunResult};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Merge already-read shard results. Cells must not repeat across shards.
pub fn merge(shards: Vec<(PathBuf, RunResult)>) -> Result<RunResult, ReportError> {
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut iter = shards.into_iter();
    let Some((first_path, mut merged)) = iter.next() else {
        return Err(ReportError::Parse {
            path: PathBuf::new(),
            message: "no shard to merge".into(),
        });
    };
    for c in &merged.cells {
        if seen.insert(c.id.clone(), first_path.clone()).is_some() {
            return Err(ReportError::DuplicateInShard {
                cell: c.id.clone(),
                path: first_path,
            });
        }
    }
    for (path, run) in iter {
        let mut own = std::collections::HashSet::new();
        for c in &run.cells {
            if !own.insert(c.id.as_str()) {
                return Err(ReportError::DuplicateInShard {
                    cell: c.id.clone(),
                    path: path.clone(),
                });
            }
            if let Some(first) = seen.insert(c.id.clone(), path.clone()) {
                return Err(ReportError::DuplicateCell {
                    cell: c.id.clone(),
                    first,
                    second: path,
                });
            }
        }
        merged.started_at = merged.started_at.min(run.started_at);
        merged.finished_at = match (merged.finished_at, run.finished_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        merged.complete &= run.complete;
        merged.interrupted |= run.interrupted;
        merged.partitions.extend(run.partitions);
        merged.cells.extend(run.cells);
    }
    merged.partitions.sort();
    merged.partitions.dedup();
    sort_cells(&mut merged);
    Ok(merged)
}

/// Newest Kubernetes minor first, then by id: the order every report shows.
fn sort_cells(run: &mut RunResult) {
    run.cells.sort_by(|a, b| {
        let ka = KubeMinor::of_version(&a.kubernetes_minor);
        let kb = KubeMinor::of_version(&b.kubernetes_minor);
        kb.cmp(&ka).then_with(|| a.id.cmp(&b.id))
    });
}

/// Why a merge could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Expect(#[from] ExpectError),
    #[error("`{0}` holds neither results.json nor {EXIT_STATUS_FILE}")]
    Empty(PathBuf),
    #[error(
        "`{dir}` has no results.json: {reason}; pass `--expect PLAN` (the `plan --format json` of the run) to report its cells"
    )]
    ExitedWithoutPlan { dir: PathBuf, reason: String },
}

/// A merged report set and what the plan added to it.
pub struct Merged {
    pub run: RunResult,
    pub filled: Filled,
}

/// Read `results.json` (or, from a run that stopped before any cell, its exit status) from each
/// directory, merge, add every planned cell without results when a plan is given, and write the
/// merged set to `output`.
pub fn merge_dirs(
    dirs: &[PathBuf],
    output: &Path,
    expect: Option<&Path>,
) -> Result<Merged, MergeError> {
    // Writing into an input would overwrite a shard with the merge of itself and others.
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    if let Some(out) = canonical(output)
        && dirs.iter().any(|d| canonical(d).as_ref() == Some(&out))
    {
        return Err(ReportError::OutputIsInput(output.to_path_buf()).into());
    }
    let plan = expect.map(read_plan).transpose()?;
    let mut shards = Vec::new();
    let mut statuses = Vec::new();
    for d in dirs {
        let path = d.join("results.json");
        let status_path = d.join(EXIT_STATUS_FILE);
        if !path.exists() && status_path.exists() {
            let status = read_exit_status(&status_path)?;
            if plan.is_none() {
                return Err(MergeError::ExitedWithoutPlan {
                    dir: d.clone(),
                    reason: status.reason(),
                });
            }
            statuses.push(status);
        } else if !path.exists() && plan.is_some() {
            return Err(MergeError::Empty(d.clone()));
        } else {
            shards.push((path.clone(), read_results(&path)?));
        }
    }
    let mut run = if shards.is_empty() {
        // Every job stopped early: the plan alone says what should have run.
        let mut run = RunResult::new("merged", super::now_rfc3339());
        run.complete = true;
        run.finished_at = Some(run.started_at.clone());
        run
    } else {
        merge(shards)?
    };
    let filled = match &plan {
        Some(p) => fill_missing(&mut run, p, &statuses),
        None => Filled::default(),
    };
    sort_cells(&mut run);
    write_all(output, &run)?;
    Ok(Merged { run, filled })
}
