//! The one results model every report is rendered from: run → cells → phases and scenarios → steps.
//! `results.json` is this model serialised (schema `flux-compat/results/v1`, see reports/README.md).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The schema identifier written into every `results.json`.
pub const RESULTS_SCHEMA: &str = "flux-compat/results/v1";

/// Outcome of a check. `Fail` is a product misbehaviour, `Error` a harness or infrastructure
/// problem, `Skip` a check that did not apply (always with a reason). Nothing that could not run
/// is ever `Pass`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Error,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::Skip => "skip",
        }
    }

    /// The worse of two outcomes, for rolling steps up into scenarios and scenarios into cells.
    /// Order: error > fail > pass > skip (a cell with one pass and one skip passed).
    pub fn worst(self, other: Status) -> Status {
        fn rank(s: Status) -> u8 {
            match s {
                Status::Skip => 0,
                Status::Pass => 1,
                Status::Fail => 2,
                Status::Error => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// A whole run (or the merge of several shards).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunResult {
    pub schema: String,
    pub run_id: String,
    pub tool_version: String,
    /// The git commit the harness was built from, when the build knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_commit: Option<String>,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The partitions this result covers (`hash:1/3`), empty for an unpartitioned run.
    #[serde(default)]
    pub partitions: Vec<String>,
    /// True once the run ended on its own; false while in progress or after an interruption.
    pub complete: bool,
    #[serde(default)]
    pub interrupted: bool,
    /// Run-wide facts (image cache traffic), beside the per-cell properties.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    pub cells: Vec<CellResult>,
}

/// One cell: a cluster of one Kubernetes minor with one channel at one Flux version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CellResult {
    pub id: String,
    pub kubernetes_minor: String,
    /// Exact server version when known (`v1.36.4`).
    pub kubernetes_version: Option<String>,
    pub node_image: Option<String>,
    pub channel: String,
    pub flux_version: String,
    pub provider: String,
    pub status: Status,
    pub message: Option<String>,
    pub started_at: String,
    pub duration_ms: u64,
    /// Exact bits: controller image digests, kind version, node image digest, and so on.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Harness phases (cluster, install, verify, ...) with their timings.
    #[serde(default)]
    pub phases: Vec<PhaseResult>,
    #[serde(default)]
    pub scenarios: Vec<ScenarioResult>,
}

/// One harness phase of a cell. Phases that check the product (image verification) count as
/// test cases in JUnit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhaseResult {
    pub name: String,
    pub status: Status,
    pub message: Option<String>,
    pub duration_ms: u64,
    /// A short diagnostic summary for failures (conditions, events, log tails).
    pub diagnostics: Option<String>,
}

/// One scenario in one cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioResult {
    pub name: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub status: Status,
    pub message: Option<String>,
    pub duration_ms: u64,
    #[serde(default)]
    pub steps: Vec<StepResult>,
    pub diagnostics: Option<String>,
    /// Relative to the report directory (`artifacts/<cell>/<scenario>`), when anything was captured.
    pub artifacts: Option<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// One step of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepResult {
    pub name: String,
    pub kind: String,
    pub status: Status,
    pub message: Option<String>,
    pub duration_ms: u64,
}

/// Counts of outcomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub skip: usize,
}

impl Counts {
    pub fn add(&mut self, s: Status) {
        match s {
            Status::Pass => self.pass += 1,
            Status::Fail => self.fail += 1,
            Status::Error => self.error += 1,
            Status::Skip => self.skip += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.pass + self.fail + self.error + self.skip
    }
}

/// The name of the case that stands for the cell itself (see [`CellResult::cell_case`]).
pub const CELL_CASE: &str = "[cell]";

impl CellResult {
    /// The outcomes that become JUnit test cases: product-checking phases, scenarios, and the
    /// cell itself when nothing else carries its outcome.
    pub fn case_counts(&self) -> Counts {
        let mut c = Counts::default();
        for s in self.case_statuses() {
            c.add(s);
        }
        if let Some(s) = self.cell_case() {
            c.add(s);
        }
        c
    }

    fn case_statuses(&self) -> impl Iterator<Item = Status> + '_ {
        self.phases
            .iter()
            .filter(|p| p.is_test_case())
            .map(|p| p.status)
            .chain(self.scenarios.iter().map(|s| s.status))
    }

    /// The cell's own case, when its outcome would otherwise vanish: a cell that failed or
    /// errored where no phase or scenario carries that outcome (a harness panic leaves only
    /// skipped scenarios), or a cell with no case at all. An error never hides behind skips.
    pub fn cell_case(&self) -> Option<Status> {
        let mut cases = self.case_statuses().peekable();
        if cases.peek().is_none() {
            return Some(self.status);
        }
        let carried = cases.any(|s| s == self.status);
        (matches!(self.status, Status::Fail | Status::Error) && !carried).then_some(self.status)
    }
}

impl PhaseResult {
    /// Phases appear as JUnit cases only when they verify the product or failed: a passing
    /// `cluster` phase proves nothing about Flux, a failing one explains every skipped case.
    pub fn is_test_case(&self) -> bool {
        self.name.starts_with("verify") || self.status != Status::Pass
    }
}

impl RunResult {
    pub fn new(run_id: &str, started_at: String) -> Self {
        Self {
            schema: RESULTS_SCHEMA.to_string(),
            run_id: run_id.to_string(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            tool_commit: option_env!("FLUX_COMPAT_COMMIT")
                .filter(|c| !c.is_empty())
                .map(str::to_string),
            started_at,
            finished_at: None,
            partitions: Vec::new(),
            complete: false,
            interrupted: false,
            properties: BTreeMap::new(),
            cells: Vec::new(),
        }
    }

    /// All test-case outcomes across the run.
    pub fn case_counts(&self) -> Counts {
        let mut total = Counts::default();
        for cell in &self.cells {
            let c = cell.case_counts();
            total.pass += c.pass;
            total.fail += c.fail;
            total.error += c.error;
            total.skip += c.skip;
        }
        total
    }

    /// The worst status across cells (Skip for an empty run).
    pub fn overall(&self) -> Status {
        self.cells
            .iter()
            .fold(Status::Skip, |acc, c| acc.worst(c.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_orders_error_over_fail_over_pass_over_skip() {
        assert_eq!(Status::Pass.worst(Status::Skip), Status::Pass);
        assert_eq!(Status::Skip.worst(Status::Pass), Status::Pass);
        assert_eq!(Status::Pass.worst(Status::Fail), Status::Fail);
        assert_eq!(Status::Error.worst(Status::Fail), Status::Error);
    }

    fn cell(status: Status, scenarios: &[Status]) -> CellResult {
        CellResult {
            id: "c".into(),
            kubernetes_minor: "1.37".into(),
            kubernetes_version: None,
            node_image: None,
            channel: "upstream".into(),
            flux_version: "v2.9.4".into(),
            provider: "kind".into(),
            status,
            message: None,
            started_at: "2026-11-23T05:10:11Z".into(),
            duration_ms: 0,
            properties: BTreeMap::new(),
            phases: Vec::new(),
            scenarios: scenarios
                .iter()
                .map(|s| ScenarioResult {
                    name: "s".into(),
                    tags: Vec::new(),
                    status: *s,
                    message: None,
                    duration_ms: 0,
                    steps: Vec::new(),
                    diagnostics: None,
                    artifacts: None,
                    properties: BTreeMap::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_cell_case_carries_what_no_other_case_does() {
        // A panicked cell: every scenario skipped, the error only on the cell.
        let c = cell(Status::Error, &[Status::Skip, Status::Skip]);
        assert_eq!(c.cell_case(), Some(Status::Error));
        assert_eq!(c.case_counts().error, 1);
        // The error is carried by a scenario: no extra case.
        assert_eq!(cell(Status::Error, &[Status::Error]).cell_case(), None);
        // An error behind a failure still needs its own case.
        assert_eq!(
            cell(Status::Error, &[Status::Fail]).cell_case(),
            Some(Status::Error)
        );
        // Never an empty suite.
        assert_eq!(cell(Status::Skip, &[]).cell_case(), Some(Status::Skip));
        assert_eq!(cell(Status::Pass, &[Status::Pass]).cell_case(), None);
    }
}
