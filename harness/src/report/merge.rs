//! `report merge`: joins the results of several shards into one report set.

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
    merged.cells.sort_by(|a, b| {
        let ka = KubeMinor::of_version(&a.kubernetes_minor);
        let kb = KubeMinor::of_version(&b.kubernetes_minor);
        kb.cmp(&ka).then_with(|| a.id.cmp(&b.id))
    });
    Ok(merged)
}

/// Read `results.json` from each directory, merge, and write the merged set to `output`.
pub fn merge_dirs(dirs: &[PathBuf], output: &Path) -> Result<RunResult, ReportError> {
    // Writing into an input would overwrite a shard with the merge of itself and others.
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    if let Some(out) = canonical(output)
        && dirs.iter().any(|d| canonical(d).as_ref() == Some(&out))
    {
        return Err(ReportError::OutputIsInput(output.to_path_buf()));
    }
    let mut shards = Vec::new();
    for d in dirs {
        let path = d.join("results.json");
        shards.push((path.clone(), read_results(&path)?));
    }
    let merged = merge(shards)?;
    write_all(output, &merged)?;
    Ok(merged)
}
