//! Diagnostics of a failed scenario: exactly the objects it touched (applied or referenced by a
//! step) and its namespace's events, written under the artifacts directory and summarised.
//! Secret values are redacted before anything is written.

use super::checks::describe_condition;
use super::ops::{KubeOps, ListQuery, ObjectKey};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// How many of the newest events the summary quotes.
const SUMMARY_EVENTS: usize = 15;

/// Replace Secret values, keeping keys so the shape stays visible.
pub fn redact(mut obj: Value) -> Value {
    if obj.get("kind").and_then(Value::as_str) == Some("Secret") {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(m)) = obj.get_mut(field) {
                for v in m.values_mut() {
                    *v = Value::String("<redacted>".into());
                }
            }
        }
        if let Some(Value::Object(a)) = obj.pointer_mut("/metadata/annotations") {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    obj
}

fn file_name(key: &ObjectKey) -> String {
    let ns = key.namespace.as_deref().unwrap_or("_cluster");
    format!("{}_{}_{}.yaml", key.kind, ns, key.name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Dump the touched objects and the namespace's events to `dir` and return the summary.
/// Problems while capturing are reported in the summary; they never change the outcome.
pub async fn capture<K: KubeOps>(
    kube: &K,
    namespace: &str,
    touched: &[ObjectKey],
    dir: &Path,
) -> String {
    let mut summary = String::new();
    let objects_dir = dir.join("objects");
    if let Err(e) = std::fs::create_dir_all(&objects_dir) {
        let _ = writeln!(summary, "cannot create `{}`: {e}", objects_dir.display());
    }
    for key in touched {
        match kube.get(key).await {
            Ok(Some(obj)) => {
                let obj = redact(obj);
                let conds: Vec<String> = obj
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(describe_condition).collect())
                    .unwrap_or_default();
                let _ = writeln!(
                    summary,
                    "{key}: {}",
                    if conds.is_empty() {
                        "no conditions".to_string()
                    } else {
                        conds.join("; ")
                    }
                );
                let path = objects_dir.join(file_name(key));
                let text = serde_norway::to_string(&obj).unwrap_or_else(|e| format!("# {e}"));
                if let Err(e) = std::fs::write(&path, crate::redact::text(&text).as_bytes()) {
                    let _ = writeln!(summary, "  cannot write `{}`: {e}", path.display());
                }
            }
            Ok(None) => {
                let _ = writeln!(summary, "{key}: not found");
            }
            Err(e) => {
                let _ = writeln!(summary, "{key}: cannot read: {e}");
            }
        }
    }
    let q = ListQuery {
        api_version: "v1".into(),
        kind: "Event".into(),
        namespace: Some(namespace.to_string()),
        label_selector: None,
    };
    match kube.list(&q).await {
        Ok(mut events) => {
            events.sort_by_key(|e| {
                e.get("lastTimestamp")
                    .or_else(|| e.get("eventTime"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            });
            let text = serde_norway::to_string(&events).unwrap_or_default();
            if let Err(e) = std::fs::write(
                dir.join("events.yaml"),
                crate::redact::text(&text).as_bytes(),
            ) {
                let _ = writeln!(summary, "cannot write events: {e}");
            }
            if !events.is_empty() {
                let _ = writeln!(summary, "events in `{namespace}` (newest last):");
            }
            let skip = events.len().saturating_sub(SUMMARY_EVENTS);
            for e in events.iter().skip(skip) {
                let s = |p: &str| e.pointer(p).and_then(Value::as_str).unwrap_or("");
                let _ = writeln!(
                    summary,
                    "  {} {} {}/{}: {}",
                    s("/type"),
                    s("/reason"),
                    s("/involvedObject/kind"),
                    s("/involvedObject/name"),
                    s("/message")
                );
            }
        }
        Err(e) => {
            let _ = writeln!(summary, "events in `{namespace}`: cannot list: {e}");
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_and_file_names_are_safe() {
        let s = redact(
            json!({"kind": "Secret", "data": {"password": "c2VjcmV0"}, "stringData": {"token": "t"}}),
        );
        assert_eq!(s["data"]["password"], "<redacted>");
        assert_eq!(s["stringData"]["token"], "<redacted>");
        let k = ObjectKey {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: None,
            name: "a:b".into(),
        };
        assert_eq!(file_name(&k), "ConfigMap__cluster_a_b.yaml");
    }
}
