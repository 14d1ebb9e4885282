//! `report.html`: one self-contained page (inline style, one small inline script allowed by its
//! hash, a Content-Security-Policy that forbids every fetch) that reads from `file://` and as a
//! CI artifact. A grid of the cells (rows and columns chosen from the dimensions that vary in the
//! run), each cell coloured by outcome and also marked by icon and word, linking to the cell's
//! section: a phase timeline in inline SVG, scenarios with outcomes and messages, verified image
//! digests, FIPS evidence, diagnostics and relative links to the captured artifacts. Readable
//! without JavaScript; the script only adds a filter by outcome. Pure: results in, text out.

mod cell;
mod grid;

use super::text::html;
use crate::model::results::Counts;
use crate::model::{RunResult, Status};
use base64::Engine;
use sha2::Digest;
use std::fmt::Write;

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("filter.js");

/// Icon and word for an outcome: colour is never the only signal.
pub(crate) fn icon(s: Status) -> &'static str {
    match s {
        Status::Pass => "✓",
        Status::Fail => "✗",
        Status::Error => "⚠",
        Status::Skip => "⊘",
    }
}

pub(crate) fn word(s: Status) -> &'static str {
    match s {
        Status::Pass => "passed",
        Status::Fail => "failed",
        Status::Error => "errored",
        Status::Skip => "skipped",
    }
}

/// `<span class="badge o-fail">✗ failed</span>`.
pub(crate) fn badge(s: Status) -> String {
    format!(
        "<span class=\"badge o-{}\"><span aria-hidden=\"true\">{}</span> {}</span>",
        s.as_str(),
        icon(s),
        word(s)
    )
}

/// `1.234 s`, `2 min 3 s`.
pub(crate) fn duration(ms: u64) -> String {
    if ms < 60_000 {
        format!("{}.{:03} s", ms / 1000, ms % 1000)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A fragment id for a cell, unique in the page.
pub(crate) fn anchor(index: usize, id: &str) -> String {
    let slug: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("cell-{index}-{slug}")
}

/// Render the whole page.
pub fn render(run: &RunResult) -> String {
    let script_hash =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(SCRIPT.as_bytes()));
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:\">\n\
         <title>flux-compat run {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        html(&run.run_id)
    );
    header(&mut out, run);
    if run.cells.is_empty() {
        out.push_str("<p>No cells ran.</p>\n");
    } else {
        filter(&mut out);
        grid::render(&mut out, run);
        for (i, c) in run.cells.iter().enumerate() {
            cell::render(&mut out, i, c);
        }
    }
    footer(&mut out, run);
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    out
}

fn header(out: &mut String, run: &RunResult) {
    let n: Counts = run.case_counts();
    let state = if run.interrupted {
        " <strong>(interrupted: partial results)</strong>"
    } else if !run.complete {
        " <strong>(in progress or incomplete)</strong>"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "<header>\n<h1>flux-compat run <code>{}</code></h1>",
        html(&run.run_id)
    );
    let _ = writeln!(out, "<p class=\"headline\" id=\"headline\">");
    for (s, count) in [
        (Status::Pass, n.pass),
        (Status::Fail, n.fail),
        (Status::Error, n.error),
        (Status::Skip, n.skip),
    ] {
        let _ = writeln!(
            out,
            "<span class=\"n o-{}\" data-count=\"{}\" data-outcome-count=\"{count}\"><span aria-hidden=\"true\">{}</span> <strong>{count}</strong> {}</span>",
            s.as_str(),
            s.as_str(),
            icon(s),
            word(s)
        );
    }
    let _ = writeln!(
        out,
        "<span class=\"muted\">in {} cell(s){state}</span></p>",
        run.cells.len()
    );
    let commit = run
        .tool_commit
        .as_deref()
        .map(|c| format!(" (commit <code>{}</code>)", html(c)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "<p class=\"muted\">Started {} · finished {} · flux-compat {}{commit}{}</p>\n</header>",
        html(&run.started_at),
        html(run.finished_at.as_deref().unwrap_or("not yet")),
        html(&run.tool_version),
        if run.partitions.is_empty() {
            String::new()
        } else {
            format!(" · partitions {}", html(&run.partitions.join(", ")))
        }
    );
}

fn filter(out: &mut String) {
    // Hidden until the script shows it: without JavaScript it would do nothing.
    out.push_str(
        "<fieldset class=\"filter\" id=\"filter\" hidden>\n<legend>Show cells that</legend>\n",
    );
    for s in [Status::Fail, Status::Error, Status::Pass, Status::Skip] {
        let _ = writeln!(
            out,
            "<label><input type=\"checkbox\" value=\"{}\" checked> <span class=\"o-{}\" aria-hidden=\"true\">{}</span> {}</label>",
            s.as_str(),
            s.as_str(),
            icon(s),
            word(s)
        );
    }
    out.push_str("</fieldset>\n");
}

fn footer(out: &mut String, run: &RunResult) {
    out.push_str("<footer>\n");
    if !run.properties.is_empty() {
        out.push_str("<h3>Run properties</h3>\n<table>\n");
        for (k, v) in &run.properties {
            let _ = writeln!(
                out,
                "<tr><th scope=\"row\"><code>{}</code></th><td class=\"mono\">{}</td></tr>",
                html(k),
                html(v)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str(
        "<p class=\"legend\">✓ passed · ✗ failed (the product misbehaved) · ⚠ errored (harness or infrastructure problem) · ⊘ skipped (did not apply or did not run; the reason is given). \
         Counts are checks passed of those run. Generated by flux-compat from results.json; links to artifacts are relative to this file.</p>\n</footer>\n",
    );
}
