//! One cell's section: facts, the phase timeline (inline SVG, with a table that says the same in
//! words), scenarios with outcomes, messages and skip reasons, verified image digests, FIPS
//! evidence, diagnostics, and relative links to the captured artifacts.

use super::{anchor, badge, duration};
use crate::model::results::CELL_CASE;
use crate::model::{CellResult, Status};
use crate::report::text::html;
use std::collections::BTreeMap;
use std::fmt::Write;

pub(super) fn render(out: &mut String, index: usize, c: &CellResult) {
    let _ = writeln!(
        out,
        "<section class=\"cell o-{0}\" id=\"{1}\" data-outcome=\"{0}\">\n<h2>{2} <code>{3}</code></h2>",
        c.status.as_str(),
        anchor(index, &c.id),
        badge(c.status),
        html(&c.id)
    );
    facts(out, c);
    if let Some(status @ (Status::Fail | Status::Error)) = c.cell_case() {
        let _ = writeln!(
            out,
            "<p class=\"message\">{} <code>{CELL_CASE}</code> {}</p>",
            badge(status),
            html(c.message.as_deref().unwrap_or(""))
        );
    }
    timeline(out, c);
    scenarios(out, c);
    images(out, c);
    fips(out, c);
    diagnostics(out, c);
    other_properties(out, c);
    out.push_str("</section>\n");
}

fn facts(out: &mut String, c: &CellResult) {
    out.push_str("<dl class=\"facts\">\n");
    let mut row = |k: &str, v: &str| {
        let _ = writeln!(out, "<dt>{k}</dt><dd>{}</dd>", html(v));
    };
    row("Kubernetes", &c.kubernetes_minor);
    if let Some(v) = &c.kubernetes_version {
        row("server version", v);
    }
    if let Some(i) = &c.node_image {
        row("node image", i);
    }
    row("channel", &c.channel);
    row("Flux", &c.flux_version);
    row("provider", &c.provider);
    row("started", &c.started_at);
    row("duration", &duration(c.duration_ms));
    if let Some(m) = &c.message {
        row("message", m);
    }
    out.push_str("</dl>\n");
}

/// Phases in order as bars on one time axis; the scenarios run between the last check and the
/// diagnostics/teardown phases.
fn timeline(out: &mut String, c: &CellResult) {
    let mut segments: Vec<(String, Status, u64)> = Vec::new();
    let scenario_ms: u64 = c.scenarios.iter().map(|s| s.duration_ms).sum();
    let scenarios_status = c
        .scenarios
        .iter()
        .map(|s| s.status)
        .fold(Status::Skip, Status::worst);
    let mut placed = c.scenarios.is_empty();
    for p in &c.phases {
        if !placed && matches!(p.name.as_str(), "diagnostics" | "teardown") {
            segments.push(("scenarios".into(), scenarios_status, scenario_ms));
            placed = true;
        }
        segments.push((p.name.clone(), p.status, p.duration_ms));
    }
    if !placed {
        segments.push(("scenarios".into(), scenarios_status, scenario_ms));
    }
    if segments.is_empty() {
        return;
    }
    let total: u64 = segments.iter().map(|s| s.2).sum::<u64>().max(1);
    let (width, bar, gap) = (900.0_f64, 22.0_f64, 6.0_f64);
    let label_w = 130.0;
    let height = segments.len() as f64 * (bar + gap) + gap;
    let described: Vec<String> = segments
        .iter()
        .map(|(n, s, ms)| format!("{n} {} in {}", super::word(*s), duration(*ms)))
        .collect();
    out.push_str("<h3>Phases</h3>\n");
    let _ = writeln!(
        out,
        "<svg class=\"timeline\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"Phase timeline: {}\">",
        html(&described.join("; "))
    );
    let mut start = 0u64;
    let scale = (width - label_w - 10.0) / total as f64;
    for (i, (name, status, ms)) in segments.iter().enumerate() {
        let y = gap + i as f64 * (bar + gap);
        let x = label_w + start as f64 * scale;
        let w = (*ms as f64 * scale).max(2.0);
        let _ = writeln!(
            out,
            "<g><title>{name}: {} in {}</title><text x=\"0\" y=\"{ty:.1}\">{} {name}</text><rect class=\"bar-{}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bar}\" rx=\"2\"/><text x=\"{tx:.1}\" y=\"{ty:.1}\">{}</text></g>",
            super::word(*status),
            duration(*ms),
            super::icon(*status),
            status.as_str(),
            duration(*ms),
            name = html(name),
            ty = y + bar * 0.7,
            tx = (x + w + 4.0).min(width - 60.0),
        );
        start += ms;
    }
    out.push_str("</svg>\n");
    phase_table(out, c);
}

fn phase_table(out: &mut String, c: &CellResult) {
    if c.phases.is_empty() {
        return;
    }
    out.push_str("<table class=\"phases\">\n<thead><tr><th>phase</th><th>outcome</th><th>duration</th><th>message</th></tr></thead>\n<tbody>\n");
    for p in &c.phases {
        let _ = writeln!(
            out,
            "<tr data-outcome-of=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"message\">{}</td></tr>",
            p.status.as_str(),
            html(&p.name),
            badge(p.status),
            duration(p.duration_ms),
            html(p.message.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

/// A relative link only for a relative path that stays inside the report directory.
fn artifact_link(path: &str) -> Option<String> {
    let p = std::path::Path::new(path);
    let inside = !path.is_empty()
        && p.is_relative()
        && !path.contains(':')
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    inside.then(|| {
        let encoded: String = path
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                    (b as char).to_string()
                }
                b => format!("%{b:02X}"),
            })
            .collect();
        format!(
            "<a class=\"artifact\" href=\"{}/\">{}/</a>",
            encoded,
            html(path)
        )
    })
}

fn scenarios(out: &mut String, c: &CellResult) {
    if c.scenarios.is_empty() {
        return;
    }
    out.push_str("<h3>Scenarios</h3>\n<table class=\"scenarios\">\n<thead><tr><th>scenario</th><th>outcome</th><th>duration</th><th>message or reason</th><th>artifacts</th></tr></thead>\n<tbody>\n");
    for s in &c.scenarios {
        let artifacts = s
            .artifacts
            .as_deref()
            .map(|a| artifact_link(a).unwrap_or_else(|| format!("<code>{}</code>", html(a))))
            .unwrap_or_default();
        let steps = if s.steps.is_empty() {
            String::new()
        } else {
            let mut t = String::from("<details><summary>steps</summary><ol class=\"steps\">");
            for st in &s.steps {
                let _ = write!(
                    t,
                    "<li>{} <code>{}</code> ({}) {}{}</li>",
                    badge(st.status),
                    html(&st.name),
                    html(&st.kind),
                    duration(st.duration_ms),
                    st.message
                        .as_deref()
                        .map(|m| format!(": <span class=\"message\">{}</span>", html(m)))
                        .unwrap_or_default()
                );
            }
            t.push_str("</ol></details>");
            t
        };
        let _ = writeln!(
            out,
            "<tr data-outcome-of=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td><span class=\"message\">{}</span>{steps}</td><td>{artifacts}</td></tr>",
            s.status.as_str(),
            html(&s.name),
            badge(s.status),
            duration(s.duration_ms),
            html(s.message.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

/// `prefix.<component>.<key>` properties grouped by component.
fn grouped<'a>(c: &'a CellResult, prefix: &str) -> BTreeMap<&'a str, BTreeMap<&'a str, &'a str>> {
    let mut by: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for (k, v) in &c.properties {
        if let Some((component, key)) = k.strip_prefix(prefix).and_then(|rest| rest.split_once('.'))
        {
            by.entry(component).or_default().insert(key, v);
        }
    }
    by
}

fn images(out: &mut String, c: &CellResult) {
    let by = grouped(c, "image.");
    if by.is_empty() {
        return;
    }
    let verified = c
        .phases
        .iter()
        .find(|p| p.name == "verify-images")
        .map(|p| p.status);
    let _ = writeln!(
        out,
        "<h3>Controller images {}</h3>\n<table class=\"images\">\n<thead><tr><th>component</th><th>Deployment image</th><th>running digest</th><th>expected digest</th></tr></thead>\n<tbody>",
        verified
            .map(|s| format!("(verify-images {})", super::badge(s)))
            .unwrap_or_default()
    );
    for (component, p) in by {
        let get = |k: &str| html(p.get(k).copied().unwrap_or(""));
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
            html(component),
            get("reference"),
            get("digest"),
            get("expected")
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn fips(out: &mut String, c: &CellResult) {
    let by = grouped(c, "fips.");
    if by.is_empty() {
        return;
    }
    let cols = [
        "family",
        "goVersion",
        "fipsModule",
        "nativeMode",
        "base",
        "platform",
        "digest",
    ];
    out.push_str("<h3>FIPS evidence</h3>\n<table class=\"fips\">\n<thead><tr><th>component</th>");
    for col in cols {
        let _ = write!(out, "<th>{col}</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (component, p) in by {
        let _ = write!(out, "<tr><td><code>{}</code></td>", html(component));
        for col in cols {
            let _ = write!(
                out,
                "<td class=\"mono\">{}</td>",
                html(p.get(col).copied().unwrap_or(""))
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

fn diagnostics(out: &mut String, c: &CellResult) {
    let phases = c.phases.iter().filter_map(|p| {
        p.diagnostics
            .as_deref()
            .map(|d| (format!("[{}]", p.name), d))
    });
    let scenarios = c
        .scenarios
        .iter()
        .filter_map(|s| s.diagnostics.as_deref().map(|d| (s.name.clone(), d)));
    let all: Vec<(String, &str)> = phases.chain(scenarios).collect();
    if all.is_empty() {
        return;
    }
    out.push_str("<h3>Diagnostics</h3>\n");
    for (name, d) in all {
        let _ = writeln!(
            out,
            "<details><summary><code>{}</code></summary><pre>{}</pre></details>",
            html(&name),
            html(d)
        );
    }
}

fn other_properties(out: &mut String, c: &CellResult) {
    let rest: Vec<(&String, &String)> = c
        .properties
        .iter()
        .filter(|(k, _)| !k.starts_with("image.") && !k.starts_with("fips."))
        .collect();
    let scenario_props: Vec<(String, &String)> = c
        .scenarios
        .iter()
        .flat_map(|s| {
            s.properties
                .iter()
                .map(move |(k, v)| (format!("scenario.{}.{k}", s.name), v))
        })
        .collect();
    if rest.is_empty() && scenario_props.is_empty() {
        return;
    }
    out.push_str("<details class=\"properties\"><summary>All properties</summary>\n<table>\n");
    let rows = rest
        .into_iter()
        .map(|(k, v)| (k.clone(), v))
        .chain(scenario_props);
    for (k, v) in rows {
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\"><code>{}</code></th><td class=\"mono\">{}</td></tr>",
            html(&k),
            html(v)
        );
    }
    out.push_str("</table>\n</details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_inside_the_report_directory_become_links() {
        assert_eq!(
            artifact_link("artifacts/1.37 x/git").unwrap(),
            "<a class=\"artifact\" href=\"artifacts/1.37%20x/git/\">artifacts/1.37 x/git/</a>"
        );
        for bad in [
            "../etc",
            "/etc/passwd",
            "javascript:alert(1)",
            "",
            "a/../../b",
        ] {
            assert!(artifact_link(bad).is_none(), "{bad}");
        }
    }
}
