//! The run deadline: the working time a run may take before it stops its cells and writes them
//! as errors. Given by `run --deadline` or the matrix `timeouts.deadline`, otherwise derived from
//! the matrix timeouts and the plan, so a run always has one. Teardown is outside it (it runs
//! after, under its own timeout): a CI job's limit must sit above deadline + teardown.

use crate::model::matrix::Timeouts;
use crate::plan::{Plan, PlannedCell};
use std::collections::BTreeMap;
use std::time::Duration;

/// The longest one cell may work: every phase at its timeout, every runnable scenario at its
/// budget plus one step for its `finally`, and diagnostics.
pub fn cell_budget(
    t: &Timeouts,
    cell: &PlannedCell,
    declared: &BTreeMap<String, Duration>,
) -> Duration {
    let phases = t.cluster_create + t.install /* fixtures */ + t.install + t.verify * 2 /* images, fips */
        + t.verify /* diagnostics */;
    cell.runnable_scenarios()
        .map(|s| {
            let own = declared.get(&s.name).copied().unwrap_or(t.scenario);
            Timeouts::scenario_budget(own) + t.step
        })
        .fold(phases, |acc, d| acc.saturating_add(d))
}

/// The deadline derived from the timeouts: the worst cell's budget times the waves of cells the
/// run needs with `jobs` at once. `None` when no cell runs.
pub fn derived(
    plan: &Plan,
    t: &Timeouts,
    declared: &BTreeMap<String, Duration>,
    jobs: usize,
) -> Option<Duration> {
    let runnable: Vec<&PlannedCell> = plan.cells.iter().filter(|c| c.skip.is_none()).collect();
    let worst = runnable.iter().map(|c| cell_budget(t, c, declared)).max()?;
    let waves = runnable.len().div_ceil(jobs.max(1));
    Some(worst.saturating_mul(u32::try_from(waves).unwrap_or(u32::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlannedScenario;

    fn cell(id: &str, scenarios: &[&str], skip: Option<&str>) -> PlannedCell {
        PlannedCell {
            id: id.into(),
            kubernetes: "1.37".parse().unwrap(),
            kubernetes_version: "v1.37.0".into(),
            node_image: None,
            channel: "upstream".into(),
            fips: false,
            flux: "v2.9.4".parse().unwrap(),
            provider: "kind".into(),
            skip: skip.map(str::to_string),
            scenarios: scenarios
                .iter()
                .map(|s| PlannedScenario {
                    name: s.to_string(),
                    tags: Vec::new(),
                    skip: None,
                })
                .collect(),
        }
    }

    #[test]
    fn the_derived_deadline_covers_the_worst_cell_per_wave() {
        let t = Timeouts::default();
        let declared: BTreeMap<String, Duration> = [
            ("upgrade".to_string(), Duration::from_secs(15 * 60)),
            ("huge".to_string(), Duration::from_secs(3 * 3600)),
        ]
        .into();
        let min = |m: u64| Duration::from_secs(m * 60);
        // Phases: 5 + 5 + 5 + 3*3 = 24m; upgrade 15m + 2m; an undeclared one 10m + 2m.
        let a = cell("a", &["upgrade", "other"], None);
        assert_eq!(cell_budget(&t, &a, &declared), min(24 + 17 + 12));
        // A declared timeout above the cap counts as the cap.
        let b = cell("b", &["huge"], None);
        assert_eq!(cell_budget(&t, &b, &declared), min(24 + 20 + 2));
        let plan = Plan {
            cells: vec![a, b, cell("c", &["huge"], Some("no registry token"))],
            partition: None,
            total_cells: 3,
        };
        assert_eq!(derived(&plan, &t, &declared, 1), Some(min(53 * 2)));
        assert_eq!(derived(&plan, &t, &declared, 2), Some(min(53)));
        let none = Plan {
            cells: vec![cell("c", &[], Some("skipped"))],
            partition: None,
            total_cells: 1,
        };
        assert_eq!(derived(&none, &t, &declared, 1), None);
    }
}
