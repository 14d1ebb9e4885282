//! The seams between the runner and the modules it wires: fixture plane, Flux install and image
//! verification, the scenario engine, diagnostics. Each is a trait object so the runner is tested
//! with test implementations and the real ones are plugged in by `app`.

use super::cleanup;
use super::secret::Secret;
use crate::cluster::Cluster;
use crate::model::matrix::Timeouts;
use crate::model::{ScenarioResult, Status};
use crate::plan::{PlannedCell, PlannedScenario};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// Exact bits a stage reports (controller image digests, fixture addresses).
pub type Properties = BTreeMap<String, String>;

/// Everything a stage may use for one cell.
#[derive(Clone)]
pub struct CellCtx {
    pub run_id: String,
    pub cell: PlannedCell,
    pub cluster: Cluster,
    /// `reports/<run>/artifacts/<cell>/`.
    pub artifacts_dir: PathBuf,
    /// Scratch space of the cell.
    pub work_dir: PathBuf,
    /// Register anything created here; it is torn down in reverse order at the end of the cell.
    pub cleanup: cleanup::Scope,
    /// Fires on Ctrl-C/SIGTERM; the runner also drops the stage future then.
    pub cancel: CancellationToken,
    pub timeouts: Timeouts,
    pub registry_token: Option<Secret>,
    /// Properties gathered by earlier phases (fixture addresses for the scenarios, digests).
    pub properties: Properties,
}

/// A phase that did not succeed: `Fail` is a product misbehaviour, `Error` an infrastructure one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseError {
    pub status: Status,
    pub message: String,
    pub diagnostics: Option<String>,
}

impl PhaseError {
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            status: Status::Error,
            message: message.into(),
            diagnostics: None,
        }
    }

    pub fn fail(message: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            message: message.into(),
            diagnostics: None,
        }
    }

    pub fn with_diagnostics(mut self, d: impl Into<String>) -> Self {
        self.diagnostics = Some(d.into());
        self
    }
}

/// Starts the per-run or per-cell fixture servers (git, Helm, OCI over TLS).
pub trait FixturePlane: Send + Sync {
    fn up<'a>(&'a self, ctx: &'a CellCtx) -> BoxFuture<'a, Result<Properties, PhaseError>>;
}

/// Installs a channel and proves the running images are the channel's.
pub trait FluxStage: Send + Sync {
    fn install<'a>(&'a self, ctx: &'a CellCtx) -> BoxFuture<'a, Result<Properties, PhaseError>>;
    /// A mismatch of image reference or running imageID is a `Fail`.
    fn verify<'a>(&'a self, ctx: &'a CellCtx) -> BoxFuture<'a, Result<Properties, PhaseError>>;
}

/// Runs one planned scenario in a ready cell and reports its steps.
pub trait ScenarioRunner: Send + Sync {
    fn run<'a>(
        &'a self,
        ctx: &'a CellCtx,
        scenario: &'a PlannedScenario,
    ) -> BoxFuture<'a, ScenarioResult>;
}

/// Captures diagnostics of a cell that failed (events, objects, controller logs) into its
/// artifacts; returns a short summary for the report.
pub trait Diagnostics: Send + Sync {
    fn collect<'a>(&'a self, ctx: &'a CellCtx)
    -> BoxFuture<'a, Result<Option<String>, PhaseError>>;
}
