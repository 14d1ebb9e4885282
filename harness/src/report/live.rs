//! Incremental reports: an event sink that keeps the run's results and rewrites `results.json`,
//! `junit.xml` and `summary.md` after every finished cell and at the end, so a crash or an
//! interruption loses no finished cell.

use super::files::{ReportError, write_all};
use crate::errors::chain as error_chain;
use crate::model::RunResult;
use crate::runner::events::{EventSink, RunEvent};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct ReportWriter {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    run: Option<RunResult>,
    errors: Vec<String>,
    writes: usize,
    /// Cells recorded as in progress: their placeholder names the phase they are in.
    running: std::collections::HashSet<String>,
}

/// The message of a cell that started and left no result: what a killed job leaves behind.
pub fn did_not_finish(doing: &str) -> String {
    format!(
        "did not finish: the run stopped during {doing} (the process was killed or the job timed out)"
    )
}

impl ReportWriter {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            state: Mutex::new(State::default()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write problems seen so far (the run goes on; the app reports them at the end).
    pub fn errors(&self) -> Vec<String> {
        self.lock().errors.clone()
    }

    /// How many times the report set was written.
    pub fn writes(&self) -> usize {
        self.lock().writes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write a final result (e.g. after run-level properties were added).
    pub fn write(&self, run: &RunResult) -> Result<(), ReportError> {
        let mut st = self.lock();
        st.run = Some(run.clone());
        st.writes += 1;
        write_all(&self.dir, run)
    }

    fn flush(&self, st: &mut State) {
        if let Some(run) = &st.run {
            st.writes += 1;
            if let Err(e) = write_all(&self.dir, run) {
                st.errors.push(error_chain(&e));
            }
        }
    }
}

/// Put `result` in place of the cell's earlier entry.
fn record(st: &mut State, result: &crate::model::CellResult) {
    if let Some(run) = st.run.as_mut() {
        match run.cells.iter_mut().find(|c| c.id == result.id) {
            Some(c) => *c = result.clone(),
            None => run.cells.push(result.clone()),
        }
    }
}

impl ReportWriter {
    /// Name what a running cell is doing in its placeholder; true when something changed.
    fn note_progress(&self, st: &mut State, cell: &str, doing: &str) -> bool {
        if !st.running.contains(cell) {
            return false;
        }
        let Some(c) = st
            .run
            .as_mut()
            .and_then(|r| r.cells.iter_mut().find(|c| c.id == cell))
        else {
            return false;
        };
        c.message = Some(did_not_finish(doing));
        true
    }
}

impl EventSink for ReportWriter {
    fn emit(&self, event: &RunEvent) {
        let mut st = self.lock();
        match event {
            RunEvent::RunStarted {
                run_id,
                started_at,
                partitions,
                ..
            } => {
                let mut run = RunResult::new(run_id, started_at.clone());
                run.partitions = partitions.clone();
                st.run = Some(run);
                // An empty report set from the start: a run killed before any cell still has one.
                self.flush(&mut st);
            }
            RunEvent::CellRecorded {
                result,
                in_progress,
            } => {
                if *in_progress {
                    st.running.insert(result.id.clone());
                } else {
                    st.running.remove(&result.id);
                }
                record(&mut st, result);
                self.flush(&mut st);
            }
            RunEvent::PhaseStarted { cell, phase }
                if self.note_progress(&mut st, cell, &format!("phase `{phase}`")) =>
            {
                self.flush(&mut st);
            }
            RunEvent::ScenarioStarted { cell, scenario }
                if self.note_progress(&mut st, cell, &format!("scenario `{scenario}`")) =>
            {
                self.flush(&mut st);
            }
            RunEvent::CellFinished { result } => {
                st.running.remove(&result.id);
                // Artifacts written by other programs (kind's exported logs) pass the layer too.
                super::files::redact_tree(&self.dir.join("artifacts").join(&result.id));
                record(&mut st, result);
                self.flush(&mut st);
            }
            RunEvent::Interrupted => {
                if let Some(run) = st.run.as_mut() {
                    run.interrupted = true;
                }
                self.flush(&mut st);
            }
            RunEvent::RunFinished { result } => {
                st.run = Some((**result).clone());
                self.flush(&mut st);
            }
            _ => {}
        }
    }
}
