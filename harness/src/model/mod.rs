//! Pure domain types: versions, channels, components, cells, outcomes and results.
//! No I/O, no async: everything here is plain data that the other modules share.

pub mod component;
pub mod flux_api;
pub mod matrix;
pub mod results;
pub mod scenario;
pub mod template;
pub mod version;

pub use component::Component;
pub use results::{CellResult, PhaseResult, RunResult, ScenarioResult, Status, StepResult};
pub use version::{FluxVersion, KubeMinor, VersionRange};
