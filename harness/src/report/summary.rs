//! `summary.md`: a Kubernetes-minor × channel grid with pass/fail/error/skip marks and the failing
//! cases, fit to append to `$GITHUB_STEP_SUMMARY`.

use super::text::visible;
use crate::model::{CellResult, RunResult, Status};
use std::collections::BTreeSet;
use std::fmt::Write;

fn mark(s: Status) -> &'static str {
    match s {
        Status::Pass => "✅",
        Status::Fail => "❌",
        Status::Error => "💥",
        Status::Skip => "⏭️",
    }
}

/// Text that renders literally in GitHub Markdown: every character Markdown or HTML could read as
/// syntax is escaped, line breaks fold to spaces (table cells stay on one line), and characters
/// that could corrupt a terminal or a page are shown as visible stand-ins (see [`visible`]).
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' | '\t' => out.push(' '),
            // Never at the start of a line here, so only inline syntax needs escaping (`$` is
            // GitHub's math).
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '!' | '|'
            | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(visible(c)),
        }
    }
    out
}

/// A name in a code span: literal by construction, fenced by more backticks than it contains.
fn code(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            // GitHub splits table rows at a pipe even inside code; these spans are not in tables.
            c => visible(c),
        })
        .collect();
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

fn cell_mark(c: &CellResult) -> String {
    let n = c.case_counts();
    let checked = n.pass + n.fail + n.error;
    if checked == 0 {
        return format!("{} skipped", mark(c.status));
    }
    let mut s = format!("{} {}/{}", mark(c.status), n.pass, checked);
    if n.skip > 0 {
        let _ = write!(s, " (+{} skipped)", n.skip);
    }
    s
}

/// Render the summary.
pub fn render(run: &RunResult) -> String {
    let mut out = String::new();
    let n = run.case_counts();
    let _ = writeln!(out, "## flux-compat: run {}\n", code(&run.run_id));
    let state = if run.interrupted {
        " (interrupted: partial results)"
    } else if !run.complete {
        " (in progress)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "**{} passed, {} failed, {} errored, {} skipped** in {} cell(s){state}\n",
        n.pass,
        n.fail,
        n.error,
        n.skip,
        run.cells.len()
    );
    if run.cells.is_empty() {
        out.push_str("No cells ran.\n");
        return out;
    }

    // Columns: channel (and Flux version when more than one); rows: minor (and provider when more than one).
    let fluxes: BTreeSet<&str> = run.cells.iter().map(|c| c.flux_version.as_str()).collect();
    let providers: BTreeSet<&str> = run.cells.iter().map(|c| c.provider.as_str()).collect();
    let col_of = |c: &CellResult| {
        if fluxes.len() > 1 {
            format!("{} {}", c.channel, c.flux_version)
        } else {
            c.channel.clone()
        }
    };
    let row_of = |c: &CellResult| {
        if providers.len() > 1 {
            format!("{} ({})", c.kubernetes_minor, c.provider)
        } else {
            c.kubernetes_minor.clone()
        }
    };
    let mut cols: Vec<String> = Vec::new();
    let mut rows: Vec<(String, String)> = Vec::new();
    for c in &run.cells {
        let col = col_of(c);
        if !cols.contains(&col) {
            cols.push(col);
        }
        let row = row_of(c);
        if !rows.iter().any(|(r, _)| r == &row) {
            rows.push((row, c.kubernetes_minor.clone()));
        }
    }
    // Newest minor first, numerically.
    rows.sort_by(|a, b| {
        let key = |s: &str| crate::model::KubeMinor::of_version(s);
        key(&b.1).cmp(&key(&a.1)).then(a.0.cmp(&b.0))
    });
    let _ = writeln!(
        out,
        "| Kubernetes | {} |",
        cols.iter().map(|c| md(c)).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(out, "|---|{}", "---|".repeat(cols.len()));
    for (row, _) in &rows {
        let cells: Vec<String> = cols
            .iter()
            .map(|col| {
                run.cells
                    .iter()
                    .find(|c| &row_of(c) == row && &col_of(c) == col)
                    .map(cell_mark)
                    .unwrap_or_else(|| "·".into())
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", md(row), cells.join(" | "));
    }
    out.push_str("\n✅ passed · ❌ failed (product) · 💥 errored (harness or infrastructure) · ⏭️ skipped; n/m = checks passed of those run\n");

    let mut bad = Vec::new();
    for c in &run.cells {
        for p in c
            .phases
            .iter()
            .filter(|p| matches!(p.status, Status::Fail | Status::Error))
        {
            bad.push(format!(
                "- {} {} / {}: {}",
                mark(p.status),
                code(&c.id),
                code(&format!("[{}]", p.name)),
                md(p.message.as_deref().unwrap_or(""))
            ));
        }
        for s in c
            .scenarios
            .iter()
            .filter(|s| matches!(s.status, Status::Fail | Status::Error))
        {
            bad.push(format!(
                "- {} {} / {}: {}",
                mark(s.status),
                code(&c.id),
                code(&s.name),
                md(s.message.as_deref().unwrap_or(""))
            ));
        }
        if let Some(status @ (Status::Fail | Status::Error)) = c.cell_case() {
            bad.push(format!(
                "- {} {}: {}",
                mark(status),
                code(&c.id),
                md(c.message.as_deref().unwrap_or(""))
            ));
        }
    }
    if !bad.is_empty() {
        out.push_str("\n### Failures and errors\n\n");
        for b in bad {
            out.push_str(&b);
            out.push('\n');
        }
    }
    let skipped: Vec<String> = run
        .cells
        .iter()
        .flat_map(|c| {
            c.scenarios
                .iter()
                .filter(|s| s.status == Status::Skip)
                .map(move |s| {
                    format!(
                        "- {} / {}: {}",
                        code(&c.id),
                        code(&s.name),
                        md(s.message.as_deref().unwrap_or("no reason given"))
                    )
                })
        })
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>{} skipped pair(s) and why</summary>\n",
            skipped.len()
        );
        for s in skipped {
            out.push_str(&s);
            out.push('\n');
        }
        out.push_str("\n</details>\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_control_characters_stay_literal() {
        assert_eq!(md("*x* _y_"), "\\*x\\* \\_y\\_");
        assert_eq!(md("&amp; <b>"), "&amp;amp; &lt;b&gt;");
        assert_eq!(
            md("a\u{1b}[31m\u{0}\u{fffe}"),
            "a\u{241b}\\[31m\u{2400}\u{fffd}"
        );
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a"), "`` `a ``");
    }
}
