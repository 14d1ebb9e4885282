//! Pure judgements over real-shaped objects: Flux readiness, named conditions, expected
//! failures, field paths, subset matches, events and webhook payloads. No I/O.

use super::ops::{Observed, Verdict};
use crate::model::flux_api;
use regex::Regex;
use serde_json::Value;

fn conditions(obj: &Value) -> Vec<&Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    conditions(obj)
        .into_iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `Ready=False (Reason): message`, for messages.
pub fn describe_condition(c: &Value) -> String {
    format!(
        "{}={} ({}): {}",
        s(c, "type"),
        s(c, "status"),
        s(c, "reason"),
        s(c, "message")
    )
}

/// Whether the controller has seen the current spec (true when either side is absent).
fn observed_current(obj: &Value) -> bool {
    let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = obj
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    match (generation, observed) {
        (Some(g), Some(o)) => o >= g,
        (Some(_), None) => false,
        _ => true,
    }
}

fn all_conditions(obj: &Value) -> String {
    let list: Vec<String> = conditions(obj)
        .into_iter()
        .map(describe_condition)
        .collect();
    if list.is_empty() {
        "no conditions".into()
    } else {
        list.join("; ")
    }
}

/// Flux readiness (§5.2): `Ready=True` with `observedGeneration == generation`; fail fast on
/// `Stalled=True` and on suspension. Status-less kinds are ready once they exist; workloads are
/// ready when their replicas are; other objects without conditions count as ready (kstatus).
pub fn ready(obs: Observed<'_>) -> Verdict {
    let Observed::Object(obj) = obs else {
        return Verdict::Failed("readiness needs a single object".into());
    };
    let Some(obj) = obj else {
        return Verdict::Pending("not found".into());
    };
    let kind = s(obj, "kind");
    if flux_api::STATUSLESS_KINDS.contains(&kind) {
        return Verdict::Done;
    }
    if obj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return Verdict::Failed("suspended (`spec.suspend: true`), it will not reconcile".into());
    }
    if let Some(c) = condition(obj, "Stalled")
        && s(c, "status") == "True"
    {
        return Verdict::Failed(format!("stalled: {}", describe_condition(c)));
    }
    if matches!(kind, "Deployment" | "StatefulSet") {
        let want = obj
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let have = obj
            .pointer("/status/readyReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        return if observed_current(obj) && have >= want {
            Verdict::Done
        } else {
            Verdict::Pending(format!("{have}/{want} replicas ready"))
        };
    }
    match condition(obj, "Ready") {
        Some(c) if s(c, "status") == "True" && observed_current(obj) => Verdict::Done,
        Some(_) if !observed_current(obj) => Verdict::Pending(format!(
            "status not yet observed for generation {}: {}",
            obj.pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            all_conditions(obj)
        )),
        Some(_) => Verdict::Pending(all_conditions(obj)),
        None if flux_api::is_flux_kind(kind) => Verdict::Pending("no Ready condition yet".into()),
        None => Verdict::Done,
    }
}

/// What a named-condition wait looks for.
pub struct ConditionWant<'a> {
    pub condition: &'a str,
    pub status: &'a str,
    pub reason: Option<&'a str>,
    pub message: Option<&'a Regex>,
}

fn condition_matches(c: &Value, want: &ConditionWant<'_>) -> bool {
    s(c, "status") == want.status
        && want.reason.is_none_or(|r| s(c, "reason") == r)
        && want.message.is_none_or(|m| m.is_match(s(c, "message")))
}

/// A named condition with status, reason and message pattern, on the current generation.
/// Waiting for `Ready=True` fails fast on `Stalled=True`.
pub fn condition_is(obs: Observed<'_>, want: &ConditionWant<'_>) -> Verdict {
    let Observed::Object(Some(obj)) = obs else {
        return Verdict::Pending("not found".into());
    };
    if want.condition == "Ready"
        && want.status == "True"
        && let Some(c) = condition(obj, "Stalled")
        && s(c, "status") == "True"
    {
        return Verdict::Failed(format!("stalled: {}", describe_condition(c)));
    }
    match condition(obj, want.condition) {
        Some(c) if condition_matches(c, want) && observed_current(obj) => Verdict::Done,
        Some(_) => Verdict::Pending(all_conditions(obj)),
        None => Verdict::Pending(format!(
            "no `{}` condition: {}",
            want.condition,
            all_conditions(obj)
        )),
    }
}

/// A condition must become `False` with the given reason and message pattern.
pub fn failed_as(obs: Observed<'_>, want: &ConditionWant<'_>) -> Verdict {
    let Observed::Object(Some(obj)) = obs else {
        return Verdict::Pending("not found".into());
    };
    match condition(obj, want.condition) {
        Some(c) if condition_matches(c, want) => Verdict::Done,
        Some(_) => Verdict::Pending(all_conditions(obj)),
        None => Verdict::Pending(format!(
            "no `{}` condition: {}",
            want.condition,
            all_conditions(obj)
        )),
    }
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
pub fn has_event(obs: Observed<'_>, want: &EventWant<'_>) -> Verdict {
    let Observed::List(events) = obs else {
        return Verdict::Failed("events need a list".into());
    };
    if events.iter().any(|e| want.matches(e)) {
        return Verdict::Done;
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

    fn ks(generation: i64, observed: i64, ready: &str, reason: &str) -> Value {
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "app", "generation": generation},
            "status": {"observedGeneration": observed, "conditions": [
                {"type": "Ready", "status": ready, "reason": reason, "message": "Applied revision: main@sha1:abc"}
            ]}
        })
    }

    #[test]
    fn readiness_needs_the_current_generation_and_fails_fast_on_stalled() {
        assert_eq!(
            ready(Observed::Object(Some(&ks(
                2,
                2,
                "True",
                "ReconciliationSucceeded"
            )))),
            Verdict::Done
        );
        assert!(
            matches!(ready(Observed::Object(Some(&ks(3, 2, "True", "ReconciliationSucceeded")))), Verdict::Pending(m) if m.contains("generation 3"))
        );
        assert!(
            matches!(ready(Observed::Object(Some(&ks(1, 1, "False", "BuildFailed")))), Verdict::Pending(m) if m.contains("BuildFailed"))
        );
        let mut stalled = ks(1, 1, "False", "BuildFailed");
        stalled["status"]["conditions"].as_array_mut().unwrap().push(json!({"type": "Stalled", "status": "True", "reason": "InvalidPath", "message": "no such path"}));
        assert!(
            matches!(ready(Observed::Object(Some(&stalled))), Verdict::Failed(m) if m.contains("InvalidPath"))
        );
        assert!(matches!(ready(Observed::Object(None)), Verdict::Pending(_)));
        let alert = json!({"kind": "Alert", "metadata": {"name": "a", "generation": 1}});
        assert_eq!(ready(Observed::Object(Some(&alert))), Verdict::Done);
        let fresh = json!({"kind": "GitRepository", "metadata": {"name": "a", "generation": 1}});
        assert!(matches!(
            ready(Observed::Object(Some(&fresh))),
            Verdict::Pending(_)
        ));
        let dep = json!({"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "readyReplicas": 1}});
        assert!(
            matches!(ready(Observed::Object(Some(&dep))), Verdict::Pending(m) if m == "1/2 replicas ready")
        );
        let suspended = json!({"kind": "Kustomization", "metadata": {"generation": 1}, "spec": {"suspend": true}});
        assert!(matches!(
            ready(Observed::Object(Some(&suspended))),
            Verdict::Failed(_)
        ));
    }

    #[test]
    fn named_conditions_and_expected_failures() {
        let re = Regex::new("main@sha1:").unwrap();
        let want = ConditionWant {
            condition: "Ready",
            status: "True",
            reason: None,
            message: Some(&re),
        };
        assert_eq!(
            condition_is(Observed::Object(Some(&ks(1, 1, "True", "X"))), &want),
            Verdict::Done
        );
        let other = Regex::new("main@sha1:def").unwrap();
        let want2 = ConditionWant {
            message: Some(&other),
            ..want
        };
        assert!(matches!(
            condition_is(Observed::Object(Some(&ks(1, 1, "True", "X"))), &want2),
            Verdict::Pending(_)
        ));
        let fail = ConditionWant {
            condition: "Ready",
            status: "False",
            reason: Some("BuildFailed"),
            message: None,
        };
        assert_eq!(
            failed_as(
                Observed::Object(Some(&ks(1, 1, "False", "BuildFailed"))),
                &fail
            ),
            Verdict::Done
        );
        assert!(matches!(
            failed_as(Observed::Object(Some(&ks(1, 1, "False", "Other"))), &fail),
            Verdict::Pending(_)
        ));
    }

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
        assert_eq!(has_event(Observed::List(&evs), &want), Verdict::Done);
        assert!(
            matches!(has_event(Observed::List(&[]), &want), Verdict::Pending(m) if m.contains("among the 0 event(s)"))
        );
    }
}
