//! Failure diagnostics: object YAML with status, its events and Flux conditions, controller pod
//! logs (tail) and namespace events, written under an artifacts directory, with every Secret's
//! data redacted and known secret values scrubbed from all text; plus a short summary for reports.
//! Collection is best effort: what cannot be read is noted in the summary, never fatal.

use super::client::Kube;
use super::objects::{ObjectRef, to_value};
use super::status;
pub use crate::errors::chain as error_chain;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The placeholder written instead of secret material.
pub const REDACTED: &str = "<redacted>";

/// What to collect.
#[derive(Clone, Debug, Default)]
pub struct DiagnosticsRequest {
    /// Objects to dump with their events and conditions.
    pub objects: Vec<ObjectRef>,
    /// Namespaces whose pods (YAML, log tails) and events are dumped, e.g. `flux-system`.
    pub namespaces: Vec<String>,
    /// Lines of log tail per container.
    pub log_tail_lines: i64,
    /// Values that must never be written (registry tokens); replaced by [`REDACTED`] everywhere.
    pub scrub: Vec<String>,
    /// Namespaces whose events alone are dumped (no pods), the newest of them quoted in the
    /// summary: a scenario's namespace, where what happened matters, not what else runs there.
    pub event_namespaces: Vec<String>,
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    /// A short text for reports: conditions, warning events, collection problems.
    pub summary: String,
}

/// How many of a namespace's newest events the summary quotes (`event_namespaces`).
const SUMMARY_EVENTS: usize = 15;

/// The longest summary put into a report.
const SUMMARY_LIMIT: usize = 4000;

/// Replace Secret payloads with [`REDACTED`] (keys stay visible, values never) and drop the
/// last-applied annotation, which would carry them again.
pub fn redact(obj: &mut Value) {
    if let Some(annotations) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    if let Some(mf) = obj.pointer_mut("/metadata").and_then(Value::as_object_mut) {
        mf.remove("managedFields");
    }
    let is_secret = obj.get("kind").and_then(Value::as_str) == Some("Secret")
        && obj.get("apiVersion").and_then(Value::as_str) == Some("v1");
    if is_secret {
        for field in ["data", "stringData"] {
            if let Some(map) = obj.get_mut(field).and_then(Value::as_object_mut) {
                for v in map.values_mut() {
                    *v = Value::String(REDACTED.to_string());
                }
            }
        }
    }
}

/// Remove every scrub value from `text`.
pub fn scrub(text: &str, values: &[String]) -> String {
    let mut out = crate::redact::text(text).into_owned();
    for v in values.iter().filter(|v| !v.is_empty()) {
        out = out.replace(v.as_str(), REDACTED);
    }
    out
}

struct Writer<'a> {
    dir: &'a Path,
    scrub: &'a [String],
    files: Vec<PathBuf>,
    problems: Vec<String>,
}

impl Writer<'_> {
    fn write(&mut self, rel: &str, text: &str) {
        let path = self.dir.join(rel);
        let result = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, scrub(text, self.scrub)));
        match result {
            Ok(()) => self.files.push(path),
            Err(e) => self
                .problems
                .push(format!("could not write `{}`: {e}", path.display())),
        }
    }
}

fn yaml(v: &Value) -> String {
    serde_norway::to_string(v).unwrap_or_else(|e| format!("# not renderable as YAML: {e}\n"))
}

fn event_line(e: &Event) -> String {
    format!(
        "{} {} {}/{}: {} (x{})",
        e.type_.as_deref().unwrap_or("Normal"),
        e.reason.as_deref().unwrap_or("-"),
        e.involved_object.kind.as_deref().unwrap_or("-"),
        e.involved_object.name.as_deref().unwrap_or("-"),
        e.message.as_deref().unwrap_or("").trim(),
        e.count.unwrap_or(1)
    )
}

impl Kube {
    /// Collect diagnostics into `dir` (created if needed). Never fails: problems are recorded in
    /// the summary and in `problems.txt`.
    pub async fn collect_diagnostics(
        &self,
        request: &DiagnosticsRequest,
        dir: &Path,
    ) -> Diagnostics {
        let mut w = Writer {
            dir,
            scrub: &request.scrub,
            files: Vec::new(),
            problems: Vec::new(),
        };
        let mut summary = String::new();
        for r in &request.objects {
            let stem = r.file_stem();
            match self.get(r).await {
                Ok(Some(obj)) => {
                    let mut v = to_value(&obj);
                    redact(&mut v);
                    w.write(&format!("objects/{stem}.yaml"), &yaml(&v));
                    let _ = writeln!(summary, "{r}: {}", status::describe(&v));
                }
                Ok(None) => {
                    let _ = writeln!(summary, "{r}: not found");
                }
                Err(e) => w.problems.push(format!("{r}: {}", error_chain(&e))),
            }
            match self.events_for(r).await {
                Ok(events) if !events.is_empty() => {
                    let lines: Vec<String> = events.iter().map(event_line).collect();
                    w.write(&format!("events/{stem}.txt"), &(lines.join("\n") + "\n"));
                    for e in events
                        .iter()
                        .filter(|e| e.type_.as_deref() == Some("Warning"))
                    {
                        let _ = writeln!(summary, "  event: {}", event_line(e));
                    }
                }
                Ok(_) => {}
                Err(e) => w
                    .problems
                    .push(format!("events of {r}: {}", error_chain(&e))),
            }
        }
        for ns in &request.namespaces {
            self.dump_namespace(ns, request.log_tail_lines, &mut w, &mut summary)
                .await;
        }
        for ns in &request.event_namespaces {
            self.dump_events(ns, true, &mut w, &mut summary).await;
        }
        if !w.problems.is_empty() {
            let text = w.problems.join("\n") + "\n";
            w.write("problems.txt", &text);
            let _ = writeln!(summary, "diagnostics incomplete: {}", w.problems.join("; "));
        }
        let mut summary = scrub(summary.trim_end(), &request.scrub);
        if summary.len() > SUMMARY_LIMIT {
            let mut cut = SUMMARY_LIMIT;
            while !summary.is_char_boundary(cut) {
                cut -= 1;
            }
            summary.truncate(cut);
            summary.push_str(" …");
        }
        Diagnostics {
            dir: dir.to_path_buf(),
            files: w.files,
            summary,
        }
    }

    async fn dump_namespace(&self, ns: &str, tail: i64, w: &mut Writer<'_>, summary: &mut String) {
        let pods: Api<Pod> = Api::namespaced(self.client().clone(), ns);
        match pods.list(&ListParams::default()).await {
            Ok(list) => {
                for pod in list.items {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let mut v = serde_json::to_value(&pod).unwrap_or(Value::Null);
                    redact(&mut v);
                    w.write(&format!("pods/{ns}/{name}.yaml"), &yaml(&v));
                    // Containers that never started have no logs (the kubelet refuses the request).
                    let mut never_started = Vec::new();
                    for s in pod
                        .status
                        .as_ref()
                        .and_then(|s| s.container_statuses.as_ref())
                        .into_iter()
                        .flatten()
                    {
                        if let Some(waiting) = s.state.as_ref().and_then(|st| st.waiting.as_ref()) {
                            let _ = writeln!(
                                summary,
                                "pod {ns}/{name} container {} waiting: {} {}",
                                s.name,
                                waiting.reason.as_deref().unwrap_or("-"),
                                waiting.message.as_deref().unwrap_or("")
                            );
                            if s.last_state
                                .as_ref()
                                .and_then(|l| l.terminated.as_ref())
                                .is_none()
                            {
                                never_started.push(s.name.clone());
                            }
                        }
                    }
                    let containers = pod
                        .spec
                        .as_ref()
                        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
                        .unwrap_or_else(Vec::new);
                    for c in containers
                        .into_iter()
                        .filter(|c| !never_started.contains(c))
                    {
                        let lp = LogParams {
                            container: Some(c.clone()),
                            tail_lines: Some(tail.max(1)),
                            ..LogParams::default()
                        };
                        match pods.logs(&name, &lp).await {
                            Ok(text) => w.write(&format!("logs/{ns}/{name}-{c}.log"), &text),
                            Err(e) => w.problems.push(format!(
                                "logs of pod {ns}/{name} container {c}: {}",
                                short_error(&e)
                            )),
                        }
                    }
                }
            }
            Err(e) => w
                .problems
                .push(format!("pods in `{ns}`: {}", short_error(&e))),
        }
        self.dump_events(ns, false, w, summary).await;
    }

    /// A namespace's events into `events/namespace-<ns>.txt`, oldest first; the summary quotes
    /// its warnings, or (`quote_newest`) its newest [`SUMMARY_EVENTS`] events of any type.
    async fn dump_events(
        &self,
        ns: &str,
        quote_newest: bool,
        w: &mut Writer<'_>,
        summary: &mut String,
    ) {
        let api: Api<Event> = Api::namespaced(self.client().clone(), ns);
        let mut events = match api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => {
                w.problems
                    .push(format!("events in `{ns}`: {}", short_error(&e)));
                return;
            }
        };
        events.sort_by_key(super::objects::event_time);
        let lines: Vec<String> = events.iter().map(event_line).collect();
        if quote_newest && !lines.is_empty() {
            let _ = writeln!(summary, "events in `{ns}` (newest last):");
            let skip = lines.len().saturating_sub(SUMMARY_EVENTS);
            for line in &lines[skip..] {
                let _ = writeln!(summary, "  {line}");
            }
        }
        let warnings = events
            .iter()
            .filter(|e| !quote_newest && e.type_.as_deref() == Some("Warning"));
        for e in warnings {
            let line = format!("  event: {}", event_line(e));
            if !summary.contains(&line) {
                let _ = writeln!(summary, "{line}");
            }
        }
        if !lines.is_empty() {
            w.write(
                &format!("events/namespace-{ns}.txt"),
                &(lines.join("\n") + "\n"),
            );
        }
    }
}

/// A kube error in one line: the API's own status message when there is one.
pub fn short_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} {}: {}", s.code, s.reason, s.message),
        other => error_chain(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_and_values_scrubbed() {
        let mut s = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "pull", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"x\":\"c2VjcmV0\"}}"}},
            "data": {".dockerconfigjson": "c2VjcmV0"}, "stringData": {"token": "canary"}});
        redact(&mut s);
        let text = s.to_string();
        assert!(!text.contains("c2VjcmV0") && !text.contains("canary"));
        assert_eq!(s["data"][".dockerconfigjson"], REDACTED);
        assert_eq!(
            scrub("token=canary!", &["canary".into()]),
            "token=<redacted>!"
        );
    }
}
