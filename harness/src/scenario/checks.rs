//! Pure judgements the scenario engine adds to the `k8s` readiness library (which owns Flux
//! readiness, named conditions and expected failures): field paths, subset matches, events and
//! webhook payloads. No I/O.

use super::ops::Verdict;
use regex::Regex;
use serde_json::Value;

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// One segment of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Parse `spec.values.image[0].tag` or `metadata.annotations["fluxcd.io/x"]`.
pub fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let b = path.as_bytes();
    let mut i = 0;
    let mut key = String::new();
    let bad = |why: &str| format!("field path `{path}`: {why}");
    while i < b.len() {
        match b[i] {
            b'.' => {
                if key.is_empty() && !matches!(out.last(), Some(Segment::Index(_))) {
                    return Err(bad("empty segment"));
                }
                if !key.is_empty() {
                    out.push(Segment::Key(std::mem::take(&mut key)));
                }
                i += 1;
            }
            b'[' => {
                if !key.is_empty() {
                    out.push(Segment::Key(std::mem::take(&mut key)));
                }
                let end = path[i..].find(']').ok_or_else(|| bad("unclosed `[`"))? + i;
                let inner = &path[i + 1..end];
                if let Some(q) = inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                    out.push(Segment::Key(q.to_string()));
                } else {
                    let n = inner.parse().map_err(|_| {
                        bad(&format!("`[{inner}]` is not an index or a quoted key"))
                    })?;
                    out.push(Segment::Index(n));
                }
                i = end + 1;
            }
            _ => {
                let ch = path[i..].chars().next().unwrap_or_default();
                key.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    if !key.is_empty() {
        out.push(Segment::Key(key));
    }
    if out.is_empty() {
        return Err(bad("empty path"));
    }
    Ok(out)
}

/// The value at a parsed path.
pub fn lookup<'a>(obj: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, seg| match seg {
        Segment::Key(k) => v.get(k.as_str()),
        Segment::Index(i) => v.get(*i),
    })
}

/// Whether `actual` contains `expected`: mappings key by key, lists element-wise by position,
/// scalars equal. Returns the first difference.
pub fn contains(actual: &Value, expected: &Value, at: &str) -> Result<(), String> {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (k, ev) in e {
                let p = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match a.get(k) {
                    Some(av) => contains(av, ev, &p)?,
                    None => return Err(format!("`{p}` is missing")),
                }
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(e)) => {
            for (i, ev) in e.iter().enumerate() {
                let p = format!("{at}[{i}]");
                match a.get(i) {
                    Some(av) => contains(av, ev, &p)?,
                    None => return Err(format!("`{p}` is missing")),
                }
            }
            Ok(())
        }
        _ if actual == expected => Ok(()),
        _ => Err(format!("`{at}` is {actual}, expected {expected}")),
    }
}

/// An event (core `v1` Event or a Flux webhook payload) matched by involved object, reason and
/// message pattern.
pub struct EventWant<'a> {
    pub kind: Option<&'a str>,
    pub name: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub message: Option<&'a Regex>,
}

impl EventWant<'_> {
    pub fn matches(&self, ev: &Value) -> bool {
        let inv = ev.get("involvedObject").unwrap_or(&Value::Null);
        self.kind.is_none_or(|k| s(inv, "kind") == k)
            && self.name.is_none_or(|n| s(inv, "name") == n)
            && self.namespace.is_none_or(|n| s(inv, "namespace") == n)
            && self.reason.is_none_or(|r| s(ev, "reason") == r)
            && self.message.is_none_or(|m| m.is_match(s(ev, "message")))
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let (Some(k), Some(n)) = (self.kind, self.name) {
            parts.push(format!("for {k}/{n}"));
        }
        if let Some(r) = self.reason {
            parts.push(format!("reason `{r}`"));
        }
        if let Some(m) = self.message {
            parts.push(format!("message matching `{}`", m.as_str()));
        }
        if parts.is_empty() {
            "any event".into()
        } else {
            format!("an event {}", parts.join(", "))
        }
    }
}

/// Verdict over a list of events.
pub fn has_event(events: &[Value], want: &EventWant<'_>) -> Verdict {
    if events.iter().any(|e| want.matches(e)) {
        return Verdict::Done(());
    }
    let last: Vec<String> = events
        .iter()
        .rev()
        .take(5)
        .map(|e| {
            let inv = e.get("involvedObject").unwrap_or(&Value::Null);
            format!(
                "{}/{} {}: {}",
                s(inv, "kind"),
                s(inv, "name"),
                s(e, "reason"),
                s(e, "message")
            )
        })
        .collect();
    Verdict::Pending(format!(
        "{} is not among the {} event(s) seen{}",
        want.describe(),
        events.len(),
        if last.is_empty() {
            String::new()
        } else {
            format!("; latest: {}", last.join(" | "))
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_paths_and_contains() {
        let obj = json!({"status": {"conditions": [{"reason": "A"}, {"reason": "B"}]}, "metadata": {"annotations": {"fluxcd.io/x": "1"}}});
        let p = parse_path("status.conditions[1].reason").unwrap();
        assert_eq!(lookup(&obj, &p), Some(&json!("B")));
        let p = parse_path("metadata.annotations[\"fluxcd.io/x\"]").unwrap();
        assert_eq!(lookup(&obj, &p), Some(&json!("1")));
        assert_eq!(
            lookup(&obj, &parse_path("status.conditions[5]").unwrap()),
            None
        );
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a[x]").is_err());
        assert!(parse_path("a[1").is_err());
        assert!(
            contains(
                &obj,
                &json!({"status": {"conditions": [{"reason": "A"}]}}),
                ""
            )
            .is_ok()
        );
        let e = contains(
            &obj,
            &json!({"status": {"conditions": [{"reason": "B"}]}}),
            "",
        )
        .unwrap_err();
        assert_eq!(e, "`status.conditions[0].reason` is \"A\", expected \"B\"");
        assert!(
            contains(&obj, &json!({"spec": {}}), "")
                .unwrap_err()
                .contains("`spec` is missing")
        );
    }

    #[test]
    fn events_match_by_object_reason_and_message() {
        let re = Regex::new("forbidden").unwrap();
        let want = EventWant {
            kind: Some("Kustomization"),
            name: Some("t"),
            namespace: None,
            reason: None,
            message: Some(&re),
        };
        let evs = vec![
            json!({"involvedObject": {"kind": "Kustomization", "name": "t"}, "reason": "ReconciliationFailed", "message": "x is forbidden"}),
        ];
        assert_eq!(has_event(&evs, &want), Verdict::Done(()));
        assert!(
            matches!(has_event(&[], &want), Verdict::Pending(m) if m.contains("among the 0 event(s)"))
        );
    }
}
