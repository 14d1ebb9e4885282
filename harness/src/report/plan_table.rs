//! Rendering a plan: a table for people, JSON, and a GitHub Actions strategy matrix.

use crate::plan::Plan;
use serde_json::json;
use std::fmt::Write;

/// The plan as a table (cells, then each scenario with run or skip and the reason).
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let w = plan
        .cells
        .iter()
        .map(|c| c.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:<w$}  {:<5}  {:<10}  {:<8}  {:<9}  SCENARIOS",
        "CELL", "K8S", "CHANNEL", "FLUX", "PROVIDER"
    );
    for c in &plan.cells {
        let run = c.runnable_scenarios().count();
        let skipped = c.scenarios.len() - run;
        let what = match &c.skip {
            Some(r) => format!("cell skipped: {r}"),
            None => format!("{run} to run, {skipped} skipped"),
        };
        let _ = writeln!(
            out,
            "{:<w$}  {:<5}  {:<10}  {:<8}  {:<9}  {what}",
            c.id,
            c.kubernetes.to_string(),
            c.channel,
            c.flux.to_string(),
            c.provider
        );
        if c.skip.is_none() {
            for s in &c.scenarios {
                match &s.skip {
                    None => {
                        let _ = writeln!(out, "    run   {}", s.name);
                    }
                    Some(r) => {
                        let _ = writeln!(out, "    skip  {}: {r}", s.name);
                    }
                }
            }
        }
    }
    let (run, skipped) = plan.scenario_counts();
    let cells_skipped = plan.cells.iter().filter(|c| c.skip.is_some()).count();
    let _ = write!(
        out,
        "\n{} cell(s) ({} to run, {} skipped); {} scenario run(s), {} skipped pair(s)",
        plan.cells.len(),
        plan.cells.len() - cells_skipped,
        cells_skipped,
        run,
        skipped
    );
    if let Some(p) = &plan.partition {
        let _ = write!(
            out,
            "; partition {p}: {} of {} cell(s)",
            plan.cells.len(),
            plan.total_cells
        );
    }
    out.push('\n');
    out
}

/// The whole plan as JSON.
pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).expect("plan serialises") + "\n"
}

/// `{"include": [...]}`: one entry per cell that runs, ready for `strategy.matrix: ${{
/// fromJSON(...) }}`. Skipped cells get no job (a job's `if` cannot see its matrix entry); they
/// reach the merged report with their reason through `report merge --expect` and the plan JSON.
pub fn github_matrix(plan: &Plan) -> String {
    let include: Vec<_> = plan
        .cells
        .iter()
        .filter(|c| c.skip.is_none())
        .map(|c| {
            json!({
                "cell": c.id,
                "kubernetes": c.kubernetes.to_string(),
                "channel": c.channel,
                "flux": c.flux.to_string(),
                "provider": c.provider,
                "fips": c.fips,
                "scenarios": c.runnable_scenarios().count(),
            })
        })
        .collect();
    serde_json::to_string(&json!({ "include": include })).expect("matrix serialises") + "\n"
}
