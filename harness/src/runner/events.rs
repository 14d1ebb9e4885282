//! Run events: everything the runner has to say goes out as a `RunEvent` to an `EventSink`;
//! the report module renders them (terminal, report files). The runner itself never prints.

use crate::model::{CellResult, PhaseResult, RunResult, ScenarioResult};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub enum RunEvent {
    RunStarted {
        run_id: String,
        started_at: String,
        partitions: Vec<String>,
        cells: Vec<String>,
        report_dir: PathBuf,
    },
    CellStarted {
        cell: String,
    },
    PhaseStarted {
        cell: String,
        phase: String,
    },
    PhaseFinished {
        cell: String,
        result: PhaseResult,
    },
    ScenarioStarted {
        cell: String,
        scenario: String,
    },
    ScenarioFinished {
        cell: String,
        result: ScenarioResult,
    },
    /// `--keep` left a cluster running.
    ClusterKept {
        cell: String,
        cluster: String,
        kubeconfig: PathBuf,
    },
    CleanupFailed {
        cell: String,
        what: String,
        message: String,
    },
    /// A cell's result so far, written before its teardown (and, `in_progress`, when it
    /// starts), so a job killed mid-cell or during teardown still leaves the cell in the reports.
    CellRecorded {
        result: Box<CellResult>,
        /// The cell is still running: the result is its placeholder, an error "did not finish".
        in_progress: bool,
    },
    CellFinished {
        result: Box<CellResult>,
    },
    /// The run deadline passed: running phases stop, cells not started are errors.
    DeadlinePassed {
        deadline: std::time::Duration,
    },
    /// Ctrl-C or SIGTERM: cells stop, everything is torn down.
    Interrupted,
    RunFinished {
        result: Box<RunResult>,
    },
}

/// Receives events; must be cheap and must not block for long (it runs on the worker).
pub trait EventSink: Send + Sync {
    fn emit(&self, event: &RunEvent);
}

/// Several sinks in order.
pub struct Fanout(pub Vec<Arc<dyn EventSink>>);

impl EventSink for Fanout {
    fn emit(&self, event: &RunEvent) {
        for s in &self.0 {
            s.emit(event);
        }
    }
}

/// Collects events (tests, benchmarks).
#[derive(Default)]
pub struct Recorder(pub std::sync::Mutex<Vec<RunEvent>>);

impl EventSink for Recorder {
    fn emit(&self, event: &RunEvent) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
    }
}

impl Recorder {
    pub fn events(&self) -> Vec<RunEvent> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
