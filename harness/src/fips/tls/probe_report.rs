//! `probe tls` findings judged against a policy, and their two renderings: the verdict table
//! for people and the JSON listing (every accepted version, suite, group and signature scheme
//! by IANA name and code). A violation fails; otherwise any gap makes the verdict
//! `inconclusive`, which is never a pass.

use super::codepoints::{self, TlsVersion};
use super::policy::{Param, Policy, Ruling};
use super::probe::Findings;
use serde_json::{Value, json};

/// One line of the verdict table: something the server accepted, and the policy's ruling.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub item: String,
    pub allowed: Option<bool>,
    pub reason: Option<String>,
}

/// The verdict of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    /// The enumeration has gaps and nothing violates the policy: not a pass.
    Inconclusive,
    /// No policy given and the enumeration is complete.
    NotJudged,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotJudged => "not-judged",
        }
    }
}

/// Findings judged against a policy.
#[derive(Debug, Clone)]
pub struct Report {
    pub findings: Findings,
    pub policy: Option<String>,
    pub rows: Vec<Row>,
    pub verdict: Verdict,
}

fn versions_of<T: PartialEq>(pairs: &[(TlsVersion, T)], x: &T) -> String {
    pairs
        .iter()
        .filter(|(_, y)| y == x)
        .map(|(v, _)| v.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Judge findings against an optional policy.
pub fn judge(f: Findings, policy: Option<&Policy>) -> Report {
    let row = |item: String, param: Param| {
        let ruling: Option<Ruling> = policy.map(|p| p.allows(&param));
        Row {
            item,
            allowed: ruling.as_ref().map(|r| r.allowed),
            reason: ruling
                .filter(|r| !r.allowed)
                .map(|r| format!("{} [{}]", r.reason, r.source)),
        }
    };
    let mut rows = vec![];
    for v in &f.versions {
        rows.push(row(format!("version {v}"), Param::Version(*v)));
    }
    for (v, s) in &f.suites {
        let item = format!("suite {} ({v})", codepoints::suite_name(*s));
        rows.push(row(item, Param::Suite(*s)));
    }
    for g in f.group_set() {
        let item = format!(
            "group {} ({})",
            codepoints::group_name(g),
            versions_of(&f.groups, &g)
        );
        rows.push(row(item, Param::Group(g)));
    }
    let mut seen = vec![];
    for (_, s) in &f.sigalgs {
        if seen.contains(s) {
            continue;
        }
        seen.push(*s);
        let item = format!(
            "signature {} ({})",
            codepoints::sigalg_name(*s),
            versions_of(&f.sigalgs, s)
        );
        rows.push(row(item, Param::SigAlg(*s)));
    }
    match f.ems_required {
        Some(false) => rows.push(row(
            "TLS 1.2 without Extended Master Secret".into(),
            Param::Tls12WithoutEms,
        )),
        Some(true) => rows.push(Row {
            item: "TLS 1.2 requires Extended Master Secret".into(),
            allowed: policy.map(|_| true),
            reason: None,
        }),
        None => {}
    }
    for (i, c) in f.chain.iter().enumerate() {
        let item = format!("certificate {i} key {} ({})", c.key, c.subject);
        rows.push(row(item, Param::PeerCertKey(c.key.clone())));
    }
    let verdict = match policy {
        Some(_) if rows.iter().any(|r| r.allowed == Some(false)) => Verdict::Fail,
        _ if !f.gaps.is_empty() => Verdict::Inconclusive,
        None => Verdict::NotJudged,
        Some(_) => Verdict::Pass,
    };
    Report {
        findings: f,
        policy: policy.map(|p| p.to_string()),
        rows,
        verdict,
    }
}

/// The verdict table for people (and scripts that grep).
pub fn render_table(r: &Report) -> String {
    let f = &r.findings;
    let mut out = format!(
        "target {}  policy {}  ({} handshakes, {} ms)\n",
        f.target,
        r.policy.as_deref().unwrap_or("none"),
        f.handshakes,
        f.elapsed_ms
    );
    let w = r
        .rows
        .iter()
        .map(|x| x.item.len())
        .max()
        .unwrap_or(10)
        .max(10);
    out.push_str(&format!("{:<w$}  {}\n", "ACCEPTED", "VERDICT"));
    for row in &r.rows {
        let v = match row.allowed {
            None => "-".to_string(),
            Some(true) => "ok".to_string(),
            Some(false) => format!("VIOLATION: {}", row.reason.as_deref().unwrap_or("")),
        };
        out.push_str(&format!("{:<w$}  {v}\n", row.item));
    }
    for (v, s, bits) in &f.dhe {
        out.push_str(&format!(
            "DHE prime of {} ({v}): {bits} bits\n",
            codepoints::suite_name(*s)
        ));
    }
    for g in &f.gaps {
        out.push_str(&format!("GAP: {g}\n"));
    }
    out.push_str(&format!("verdict: {}\n", r.verdict.as_str()));
    out
}

fn named(code: u16, name: String) -> Value {
    json!({"code": code, "hex": format!("0x{code:04x}"), "name": name})
}

/// The JSON document `probe tls --format json` prints.
pub fn to_json(r: &Report) -> Value {
    let f = &r.findings;
    let per_version = |v: TlsVersion| {
        let pick = |pairs: &[(TlsVersion, u16)], name: fn(u16) -> String| {
            pairs
                .iter()
                .filter(|(pv, _)| *pv == v)
                .map(|(_, c)| named(*c, name(*c)))
                .collect::<Vec<_>>()
        };
        json!({
            "version": named(v.0, v.name()),
            "suites": pick(&f.suites, codepoints::suite_name),
            "groups": pick(&f.groups, codepoints::group_iana),
            "signatureSchemes": pick(&f.sigalgs, codepoints::sigalg_iana),
        })
    };
    json!({
        "target": f.target,
        "policy": r.policy,
        "verdict": r.verdict.as_str(),
        "versions": f.versions.iter().map(|v| per_version(*v)).collect::<Vec<_>>(),
        "extendedMasterSecret": {"supported": f.ems_supported, "required": f.ems_required},
        "dhe": f.dhe.iter().map(|(v, s, b)| json!({"version": v.name(), "suite": named(*s, codepoints::suite_name(*s)), "primeBits": b})).collect::<Vec<_>>(),
        "certificates": f.chain,
        "gaps": f.gaps,
        "rows": r.rows,
        "handshakes": f.handshakes,
        "elapsedMs": f.elapsed_ms,
    })
}
