//! The grid of cells. Its axes are data: Kubernetes minor on rows and channel on columns always,
//! and every other dimension a cell has (provider, Flux version, install route, platform) joins
//! the rows or the columns when it takes more than one value in the run.

use super::{anchor, icon, word};
use crate::model::{CellResult, KubeMinor, RunResult};
use crate::report::text::html;
use std::fmt::Write;

struct Dim {
    name: &'static str,
    /// On rows (else columns).
    row: bool,
    /// Always shown, even with one value.
    primary: bool,
    of: fn(&CellResult) -> String,
}

fn property(c: &CellResult, key: &str) -> String {
    c.properties.get(key).cloned().unwrap_or_default()
}

const DIMS: &[Dim] = &[
    Dim {
        name: "Kubernetes",
        row: true,
        primary: true,
        of: |c| c.kubernetes_minor.clone(),
    },
    Dim {
        name: "provider",
        row: true,
        primary: false,
        of: |c| c.provider.clone(),
    },
    Dim {
        name: "channel",
        row: false,
        primary: true,
        of: |c| c.channel.clone(),
    },
    Dim {
        name: "Flux",
        row: false,
        primary: false,
        of: |c| c.flux_version.clone(),
    },
    Dim {
        name: "route",
        row: false,
        primary: false,
        of: |c| property(c, "flux.route"),
    },
    Dim {
        name: "platform",
        row: false,
        primary: false,
        of: |c| property(c, "platform"),
    },
];

/// The dimensions shown on one axis: the primary one and those with more than one known value
/// (a cell that never got as far as recording its route does not make a column of its own).
fn axis<'a>(cells: &[CellResult], row: bool) -> Vec<&'a Dim> {
    DIMS.iter()
        .filter(|d| d.row == row)
        .filter(|d| {
            d.primary || {
                let mut values: Vec<String> = cells
                    .iter()
                    .map(|c| (d.of)(c))
                    .filter(|v| !v.is_empty())
                    .collect();
                values.sort();
                values.dedup();
                values.len() > 1
            }
        })
        .collect()
}

fn key(dims: &[&Dim], c: &CellResult) -> Vec<String> {
    dims.iter().map(|d| (d.of)(c)).collect()
}

fn label(key: &[String]) -> String {
    key.iter()
        .map(|v| if v.is_empty() { "-" } else { v.as_str() })
        .collect::<Vec<_>>()
        .join(" · ")
}

pub(super) fn render(out: &mut String, run: &RunResult) {
    let rows_dims = axis(&run.cells, true);
    let cols_dims = axis(&run.cells, false);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut cols: Vec<Vec<String>> = Vec::new();
    for c in &run.cells {
        let (r, k) = (key(&rows_dims, c), key(&cols_dims, c));
        if !rows.contains(&r) {
            rows.push(r);
        }
        if !cols.contains(&k) {
            cols.push(k);
        }
    }
    // Newest Kubernetes minor first, numerically; then the other row dimensions by name.
    rows.sort_by(|a, b| {
        KubeMinor::of_version(&b[0])
            .cmp(&KubeMinor::of_version(&a[0]))
            .then_with(|| a.cmp(b))
    });
    let names = |dims: &[&Dim]| dims.iter().map(|d| d.name).collect::<Vec<_>>().join(" · ");
    let _ = writeln!(
        out,
        "<table class=\"grid\" id=\"grid\">\n<caption class=\"legend\">Rows: {}; columns: {}. Each cell links to its section below.</caption>\n<thead><tr><th scope=\"col\">{} \\ {}</th>",
        names(&rows_dims),
        names(&cols_dims),
        names(&rows_dims),
        names(&cols_dims)
    );
    for col in &cols {
        let _ = write!(out, "<th scope=\"col\">{}</th>", html(&label(col)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &rows {
        let _ = write!(out, "<tr><th scope=\"row\">{}</th>", html(&label(row)));
        for col in &cols {
            let here: Vec<(usize, &CellResult)> = run
                .cells
                .iter()
                .enumerate()
                .filter(|(_, c)| &key(&rows_dims, c) == row && &key(&cols_dims, c) == col)
                .collect();
            grid_cell(out, &here);
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

fn grid_cell(out: &mut String, here: &[(usize, &CellResult)]) {
    let Some(status) = here
        .iter()
        .map(|(_, c)| c.status)
        .reduce(crate::model::Status::worst)
    else {
        out.push_str(
            "<td class=\"none\"><span class=\"none muted\" title=\"not in this run\">·</span></td>",
        );
        return;
    };
    let _ = write!(
        out,
        "<td class=\"o-{0}\" data-outcome=\"{0}\">",
        status.as_str()
    );
    for (i, c) in here {
        let n = c.case_counts();
        let checked = n.pass + n.fail + n.error;
        let mut counts = format!("{}/{checked} passed", n.pass);
        if n.skip > 0 {
            let _ = write!(counts, ", {} skipped", n.skip);
        }
        let _ = write!(
            out,
            "<a href=\"#{}\" data-cell=\"{}\"><span class=\"outcome o-{}\"><span aria-hidden=\"true\">{}</span> {}</span><span class=\"counts\">{}</span></a>",
            anchor(*i, &c.id),
            html(&c.id),
            c.status.as_str(),
            icon(c.status),
            word(c.status),
            counts
        );
    }
    out.push_str("</td>");
}
