//! JUnit XML in the strict Apache Ant schema (`testsuites` without attributes; each `testsuite`
//! with package, id, timestamp without zone, hostname, properties, system-out and system-err).
//! Suite = cell, case = product-checking phase or scenario. junit-report has no suite properties
//! and quick-junit writes attributes the strict schema rejects, so this module writes it itself.

use crate::model::results::CELL_CASE;
use crate::model::{CellResult, PhaseResult, RunResult, ScenarioResult, Status};
use quick_xml::escape::escape;
use std::fmt::Write;

fn attr(s: &str) -> String {
    // Attribute values: escape markup, and keep only characters XML 1.0 allows.
    escape(clean(s))
        .replace('\n', "&#10;")
        .replace('\t', "&#9;")
        .replace('\r', "&#13;")
}

fn text(s: &str) -> String {
    escape(clean(s)).into_owned()
}

/// Drop characters XML 1.0 forbids (control characters other than tab, newline, return).
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| {
            matches!(c, '\t' | '\n' | '\r') || (*c >= ' ' && *c != '\u{fffe}' && *c != '\u{ffff}')
        })
        .collect()
}

/// Ant's pattern: `YYYY-MM-DDTHH:MM:SS`, no zone, no fraction.
fn ant_timestamp(rfc3339: &str) -> String {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    t.format(&f)
        .unwrap_or_else(|_| "1970-01-01T00:00:00".into())
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn hostname() -> String {
    let h = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_string();
    if h.is_empty() { "localhost".into() } else { h }
}

fn outcome(out: &mut String, status: Status, message: Option<&str>, body: &str, kind: &str) {
    let msg = message.unwrap_or("");
    match status {
        Status::Pass => {}
        Status::Skip => {
            let _ = writeln!(out, "      <skipped message=\"{}\"/>", attr(msg));
        }
        Status::Fail => {
            let _ = writeln!(
                out,
                "      <failure message=\"{}\" type=\"{kind}Failure\">{}</failure>",
                attr(msg),
                text(body)
            );
        }
        Status::Error => {
            let _ = writeln!(
                out,
                "      <error message=\"{}\" type=\"{kind}Error\">{}</error>",
                attr(msg),
                text(body)
            );
        }
    }
}

fn case_open(out: &mut String, name: &str, classname: &str, ms: u64, status: Status) -> bool {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
        attr(name),
        attr(classname),
        secs(ms)
    );
    if status == Status::Pass {
        out.push_str("/>\n");
        false
    } else {
        out.push_str(">\n");
        true
    }
}

fn phase_case(out: &mut String, cell: &CellResult, p: &PhaseResult) {
    if case_open(
        out,
        &format!("[{}]", p.name),
        &format!("{}.phases", cell.id),
        p.duration_ms,
        p.status,
    ) {
        let body = failure_body(p.message.as_deref(), &[], p.diagnostics.as_deref());
        outcome(out, p.status, p.message.as_deref(), &body, "Phase");
        out.push_str("    </testcase>\n");
    }
}

fn scenario_case(out: &mut String, cell: &CellResult, s: &ScenarioResult) {
    if case_open(
        out,
        &s.name,
        &format!("{}.scenarios", cell.id),
        s.duration_ms,
        s.status,
    ) {
        let steps: Vec<String> = s
            .steps
            .iter()
            .map(|st| {
                format!(
                    "{:<5} {} ({}) {}ms{}",
                    st.status.as_str(),
                    st.name,
                    st.kind,
                    st.duration_ms,
                    st.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )
            })
            .collect();
        let body = failure_body(s.message.as_deref(), &steps, s.diagnostics.as_deref());
        outcome(out, s.status, s.message.as_deref(), &body, "Scenario");
        out.push_str("    </testcase>\n");
    }
}

/// The cell's own case (a panic, a failure before any phase, or a cell without cases).
fn cell_case(out: &mut String, cell: &CellResult, status: Status) {
    if case_open(
        out,
        CELL_CASE,
        &format!("{}.cell", cell.id),
        cell.duration_ms,
        status,
    ) {
        let msg = cell.message.as_deref();
        let body = failure_body(msg, &[], None);
        outcome(out, status, msg, &body, "Cell");
        out.push_str("    </testcase>\n");
    }
}

fn failure_body(message: Option<&str>, steps: &[String], diagnostics: Option<&str>) -> String {
    let mut b = String::new();
    if let Some(m) = message {
        b.push_str(m);
        b.push('\n');
    }
    if !steps.is_empty() {
        b.push_str("\nsteps:\n");
        for s in steps {
            let _ = writeln!(b, "  {s}");
        }
    }
    if let Some(d) = diagnostics {
        b.push_str("\ndiagnostics:\n");
        b.push_str(d);
        b.push('\n');
    }
    b
}

/// Render the whole run.
pub fn render(run: &RunResult) -> String {
    let host = hostname();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for (id, cell) in run.cells.iter().enumerate() {
        let c = cell.case_counts();
        let _ = writeln!(
            out,
            "  <testsuite package=\"flux-compat\" id=\"{id}\" name=\"{}\" timestamp=\"{}\" hostname=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
            attr(&cell.id),
            ant_timestamp(&cell.started_at),
            attr(&host),
            c.total(),
            c.fail,
            c.error,
            c.skip,
            secs(cell.duration_ms)
        );
        out.push_str("    <properties>\n");
        let mut props: Vec<(String, String)> = vec![
            ("run.id".into(), run.run_id.clone()),
            ("cell.status".into(), cell.status.as_str().into()),
            ("kubernetes.minor".into(), cell.kubernetes_minor.clone()),
            ("channel".into(), cell.channel.clone()),
            ("flux.version".into(), cell.flux_version.clone()),
            ("provider".into(), cell.provider.clone()),
        ];
        if let Some(v) = &cell.kubernetes_version {
            props.push(("kubernetes.version".into(), v.clone()));
        }
        if let Some(i) = &cell.node_image {
            props.push(("kind.nodeImage".into(), i.clone()));
        }
        if let Some(m) = &cell.message {
            props.push(("cell.message".into(), m.clone()));
        }
        props.extend(cell.properties.iter().map(|(k, v)| (k.clone(), v.clone())));
        // The Ant schema has no properties on a case: scenario facts ride on the suite, by name.
        for s in &cell.scenarios {
            props.extend(
                s.properties
                    .iter()
                    .map(|(k, v)| (format!("scenario.{}.{k}", s.name), v.clone())),
            );
        }
        for (k, v) in props {
            if !k.trim().is_empty() {
                let _ = writeln!(
                    out,
                    "      <property name=\"{}\" value=\"{}\"/>",
                    attr(&k),
                    attr(&v)
                );
            }
        }
        out.push_str("    </properties>\n");
        for p in cell.phases.iter().filter(|p| p.is_test_case()) {
            phase_case(&mut out, cell, p);
        }
        for s in &cell.scenarios {
            scenario_case(&mut out, cell, s);
        }
        if let Some(status) = cell.cell_case() {
            cell_case(&mut out, cell, status);
        }
        let mut log = String::new();
        for p in &cell.phases {
            let _ = writeln!(
                log,
                "phase {} {} {}ms{}",
                p.name,
                p.status.as_str(),
                p.duration_ms,
                p.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            );
        }
        for s in &cell.scenarios {
            let _ = writeln!(
                log,
                "scenario {} {} {}ms",
                s.name,
                s.status.as_str(),
                s.duration_ms
            );
            for st in &s.steps {
                let _ = writeln!(
                    log,
                    "  step {} ({}) {} {}ms",
                    st.name,
                    st.kind,
                    st.status.as_str(),
                    st.duration_ms
                );
            }
        }
        let _ = writeln!(out, "    <system-out>{}</system-out>", text(&log));
        out.push_str("    <system-err></system-err>\n  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_follow_the_ant_pattern() {
        assert_eq!(ant_timestamp("2026-11-23T05:10:11Z"), "2026-11-23T05:10:11");
        assert_eq!(
            ant_timestamp("2026-11-23T06:10:11.123+01:00"),
            "2026-11-23T05:10:11"
        );
    }

    #[test]
    fn control_characters_are_dropped_and_markup_escaped() {
        assert_eq!(text("a<b>\u{1b}[31m&"), "a&lt;b&gt;[31m&amp;");
        assert_eq!(attr("x\"y\nz"), "x&quot;y&#10;z");
    }
}
