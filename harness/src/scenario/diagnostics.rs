//! Diagnostics of a failed scenario: exactly the objects it touched (applied or referenced by a
//! step) and its namespace's events, written under the artifacts directory and summarised with
//! the `k8s` diagnostics rules (the same redaction, object description and file names).

use super::ops::{KubeOps, ListQuery, ObjectRef};
use crate::k8s::diagnostics::redact;
use crate::k8s::status::describe;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// How many of the newest events the summary quotes.
const SUMMARY_EVENTS: usize = 15;

/// Dump the touched objects and the namespace's events to `dir` and return the summary.
/// Problems while capturing are reported in the summary; they never change the outcome.
pub async fn capture<K: KubeOps>(
    kube: &K,
    namespace: &str,
    touched: &[ObjectRef],
    dir: &Path,
) -> String {
    let mut summary = String::new();
    let objects_dir = dir.join("objects");
    if let Err(e) = std::fs::create_dir_all(&objects_dir) {
        let _ = writeln!(summary, "cannot create `{}`: {e}", objects_dir.display());
    }
    for key in touched {
        match kube.get(key).await {
            Ok(Some(mut obj)) => {
                redact(&mut obj);
                let _ = writeln!(summary, "{key}: {}", describe(&obj));
                let path = objects_dir.join(format!("{}.yaml", key.file_stem()));
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
