//! The one readiness library, pure and synchronous: kstatus rules for core kinds and the Flux
//! rules (`Ready=True` at the current generation, read from `status.observedGeneration` or, for
//! kinds without it such as ArtifactGenerator and ExternalArtifact, from the Ready condition's
//! `observedGeneration`; fail fast on `Stalled=True`; suspended objects fail; a reconcile
//! requested through `reconcile.fluxcd.io/requestedAt` is pending until
//! `status.lastHandledReconcileAt` echoes it), plus the judgements every wait uses: ready, a named
//! condition, an expected failure. Install, the `k8s` waits and the scenario engine all call these.

use regex::Regex;
use serde_json::Value;
use std::fmt;

/// One status condition as the API reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub observed_generation: Option<i64>,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.type_, self.status)?;
        if !self.reason.is_empty() {
            write!(f, " ({})", self.reason)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Where an object stands, kstatus style.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Current: reconciled at its generation and ready.
    Ready,
    /// Not there yet; `reason`/`message` say what the last observed state was.
    InProgress { reason: String, message: String },
    /// Will not get there without a change (Stalled, deadline exceeded, suspended).
    Failed { reason: String, message: String },
}

impl Readiness {
    fn progress(reason: &str, message: impl Into<String>) -> Self {
        Readiness::InProgress {
            reason: reason.to_string(),
            message: message.into(),
        }
    }
    fn failed(reason: &str, message: impl Into<String>) -> Self {
        Readiness::Failed {
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// `status.conditions` of an object (empty when absent or malformed).
pub fn conditions(obj: &Value) -> Vec<Condition> {
    let Some(list) = obj.pointer("/status/conditions").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|c| {
            Some(Condition {
                type_: c.get("type")?.as_str()?.to_string(),
                status: c.get("status")?.as_str()?.to_string(),
                reason: str_at(c, "/reason"),
                message: str_at(c, "/message"),
                observed_generation: c.get("observedGeneration").and_then(Value::as_i64),
            })
        })
        .collect()
}

/// The condition of `type_`, if present.
pub fn condition(obj: &Value, type_: &str) -> Option<Condition> {
    conditions(obj).into_iter().find(|c| c.type_ == type_)
}

fn str_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn int_at(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

/// Whether the group belongs to Flux (toolkit controllers, extensions, the Flux Operator).
pub fn is_flux_group(group: &str) -> bool {
    group.ends_with(".fluxcd.io") || group == "fluxcd.controlplane.io"
}

fn group_of(obj: &Value) -> String {
    let api_version = str_at(obj, "/apiVersion");
    match api_version.split_once('/') {
        Some((g, _)) => g.to_string(),
        None => String::new(),
    }
}

/// The readiness of any object, dispatching on its kind.
pub fn readiness(obj: &Value) -> Readiness {
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return Readiness::progress("Terminating", "the object is being deleted");
    }
    let kind = str_at(obj, "/kind");
    let group = group_of(obj);
    match (group.as_str(), kind.as_str()) {
        ("apps", "Deployment") => deployment(obj),
        ("", "Namespace") => namespace(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(obj),
        (g, k) if is_flux_group(g) => flux(obj, g, k),
        _ => generic(obj),
    }
}

fn observed_behind(obj: &Value) -> Option<Readiness> {
    let generation = int_at(obj, "/metadata/generation")?;
    match int_at(obj, "/status/observedGeneration") {
        Some(observed) if observed >= generation => None,
        observed => Some(Readiness::progress(
            "ObservedGenerationBehind",
            format!(
                "status.observedGeneration {} is behind metadata.generation {generation}",
                observed.map_or_else(|| "unset".to_string(), |o| o.to_string())
            ),
        )),
    }
}

fn deployment(obj: &Value) -> Readiness {
    if obj.get("status").is_none() {
        return Readiness::progress("NoStatus", "the deployment controller has not reported yet");
    }
    if let Some(behind) = observed_behind(obj) {
        return behind;
    }
    if let Some(p) = condition(obj, "Progressing")
        && p.status == "False"
        && p.reason == "ProgressDeadlineExceeded"
    {
        return Readiness::failed(&p.reason, p.message);
    }
    let want = int_at(obj, "/spec/replicas").unwrap_or(1);
    let updated = int_at(obj, "/status/updatedReplicas").unwrap_or(0);
    let available = int_at(obj, "/status/availableReplicas").unwrap_or(0);
    let ready = int_at(obj, "/status/readyReplicas").unwrap_or(0);
    if updated < want {
        return Readiness::progress(
            "UpdatingReplicas",
            format!("{updated} of {want} replicas updated"),
        );
    }
    if ready < want || available < want {
        let counts = format!("{ready} ready, {available} available of {want} replicas");
        return match condition(obj, "Available") {
            Some(c) if c.status != "True" => Readiness::InProgress {
                reason: c.reason,
                message: format!("{} ({counts})", c.message),
            },
            _ => Readiness::progress("WaitingForAvailable", counts),
        };
    }
    match condition(obj, "Available") {
        Some(c) if c.status == "True" => Readiness::Ready,
        Some(c) => Readiness::InProgress {
            reason: c.reason,
            message: c.message,
        },
        None => Readiness::progress("NoAvailableCondition", "no Available condition yet"),
    }
}

fn namespace(obj: &Value) -> Readiness {
    match obj.pointer("/status/phase").and_then(Value::as_str) {
        Some("Active") | None => Readiness::Ready,
        Some(phase) => Readiness::progress(phase, format!("namespace phase is {phase}")),
    }
}

fn crd(obj: &Value) -> Readiness {
    if let Some(c) = condition(obj, "NamesAccepted")
        && c.status == "False"
    {
        return Readiness::failed(&c.reason, c.message);
    }
    match condition(obj, "Established") {
        Some(c) if c.status == "True" => Readiness::Ready,
        Some(c) => Readiness::InProgress {
            reason: c.reason,
            message: c.message,
        },
        None => Readiness::progress("NotEstablished", "no Established condition yet"),
    }
}

/// Flux objects that carry no status by design (notification v1beta3 Alert/Provider, OCI
/// HelmRepositories): present means ready.
fn flux_static(obj: &Value, group: &str, kind: &str) -> bool {
    (group == "notification.toolkit.fluxcd.io" && matches!(kind, "Alert" | "Provider"))
        || (kind == "HelmRepository"
            && obj.pointer("/spec/type").and_then(Value::as_str) == Some("oci"))
}

fn flux(obj: &Value, group: &str, kind: &str) -> Readiness {
    if flux_static(obj, group, kind) && obj.pointer("/status/conditions").is_none() {
        return Readiness::Ready;
    }
    let generation = int_at(obj, "/metadata/generation");
    if let Some(stalled) = condition(obj, "Stalled")
        && stalled.status == "True"
    {
        return Readiness::Failed {
            reason: stalled.reason,
            message: stalled.message,
        };
    }
    if obj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return Readiness::failed(
            "Suspended",
            "spec.suspend is true, so the controller does not reconcile it",
        );
    }
    let Some(ready) = condition(obj, "Ready") else {
        return Readiness::progress("NoReadyCondition", "the controller has not reported yet");
    };
    if let Some(pending) = reconcile_request_pending(obj) {
        return pending;
    }
    let observed = int_at(obj, "/status/observedGeneration").or(ready.observed_generation);
    if let (Some(g), o) = (generation, observed)
        && o != Some(g)
    {
        // The Ready condition describes an older spec; report it, but keep waiting.
        return Readiness::InProgress {
            reason: ready.reason,
            message: format!(
                "{} (observedGeneration {} behind generation {g})",
                ready.message,
                o.map_or_else(|| "unset".to_string(), |o| o.to_string())
            ),
        };
    }
    if ready.status == "True" {
        return Readiness::Ready;
    }
    Readiness::InProgress {
        reason: ready.reason,
        message: ready.message,
    }
}

/// The annotation `flux reconcile` and Receivers set to request a reconcile now.
pub const RECONCILE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

/// A reconcile requested through [`RECONCILE_REQUEST_ANNOTATION`] that the controller has not
/// handled yet (`status.lastHandledReconcileAt` differs): the Ready condition predates it.
fn reconcile_request_pending(obj: &Value) -> Option<Readiness> {
    let requested = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(RECONCILE_REQUEST_ANNOTATION))
        .and_then(Value::as_str)?;
    let handled = obj
        .pointer("/status/lastHandledReconcileAt")
        .and_then(Value::as_str);
    (handled != Some(requested)).then(|| {
        Readiness::progress(
            "ReconcileRequested",
            format!(
                "reconcile requested at `{requested}` not handled yet (lastHandledReconcileAt {})",
                handled.map_or_else(|| "unset".to_string(), |h| format!("`{h}`"))
            ),
        )
    })
}

fn generic(obj: &Value) -> Readiness {
    if obj.get("status").is_none() {
        return Readiness::Ready;
    }
    if let Some(behind) = observed_behind(obj) {
        return behind;
    }
    let conds = conditions(obj);
    if let Some(c) = conds
        .iter()
        .find(|c| c.type_ == "Stalled" && c.status == "True")
    {
        return Readiness::failed(&c.reason, c.message.clone());
    }
    if let Some(c) = conds
        .iter()
        .find(|c| c.type_ == "Reconciling" && c.status == "True")
    {
        return Readiness::progress(&c.reason, c.message.clone());
    }
    match conds.iter().find(|c| c.type_ == "Ready") {
        Some(c) if c.status != "True" => Readiness::progress(&c.reason, c.message.clone()),
        _ => Readiness::Ready,
    }
}

/// What a named-condition wait expects.
#[derive(Clone, Debug)]
pub struct ConditionExpectation {
    pub type_: String,
    /// `True`, `False` or `Unknown`; `None` accepts any.
    pub status: Option<String>,
    /// Exact reason; `None` accepts any.
    pub reason: Option<String>,
    /// Matched anywhere in the message; `None` accepts any.
    pub message: Option<Regex>,
    /// Only a condition describing the current generation counts (the Flux rule).
    pub current_generation: bool,
}

impl ConditionExpectation {
    pub fn new(type_: &str) -> Self {
        Self {
            type_: type_.to_string(),
            status: None,
            reason: None,
            message: None,
            current_generation: true,
        }
    }
    pub fn status(mut self, status: &str) -> Self {
        self.status = Some(status.to_string());
        self
    }
    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_string());
        self
    }
    pub fn message(mut self, message: Regex) -> Self {
        self.message = Some(message);
        self
    }

    /// Whether `c` satisfies the expectation (generation aside).
    pub fn matches(&self, c: &Condition) -> bool {
        c.type_ == self.type_
            && self.status.as_ref().is_none_or(|s| *s == c.status)
            && self.reason.as_ref().is_none_or(|r| *r == c.reason)
            && self.message.as_ref().is_none_or(|m| m.is_match(&c.message))
    }
}

impl fmt::Display for ConditionExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={}",
            self.type_,
            self.status.as_deref().unwrap_or("<any>")
        )?;
        if let Some(r) = &self.reason {
            write!(f, " reason {r}")?;
        }
        if let Some(m) = &self.message {
            write!(f, " message ~ /{m}/")?;
        }
        Ok(())
    }
}

/// Whether the object's state describes its current generation (no generation: always).
pub fn is_current_generation(obj: &Value, c: &Condition) -> bool {
    let Some(generation) = int_at(obj, "/metadata/generation") else {
        return true;
    };
    let observed = int_at(obj, "/status/observedGeneration").or(c.observed_generation);
    observed.is_none_or(|o| o >= generation)
}

/// A short human summary of an object's conditions, for timeouts and reports.
pub fn describe(obj: &Value) -> String {
    let conds = conditions(obj);
    if conds.is_empty() {
        return match readiness(obj) {
            Readiness::Ready => "ready".to_string(),
            Readiness::InProgress { reason, message } | Readiness::Failed { reason, message } => {
                format!("{reason}: {message}")
            }
        };
    }
    conds
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a wait can stop without success: the reason (a condition reason, `Stalled`, ...) and
/// what the object said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reason: String,
    pub message: String,
}

/// The reason of the [`Failure`] an expect-failure judgement reports when the object became
/// ready instead of failing.
pub const UNEXPECTEDLY_READY: &str = "UnexpectedlyReady";

/// A judgement of one observation of an object (or of a list): the one verdict type every wait,
/// in `k8s` and in the scenario engine, works with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<T = ()> {
    /// The state is reached, with what was found.
    Done(T),
    /// Keep waiting; the text describes the state for a timeout message.
    Pending(String),
    /// Will not get there (for example `Stalled=True`): stop waiting.
    Failed(Failure),
}

impl<T> Verdict<T> {
    pub fn failed(reason: &str, message: impl Into<String>) -> Self {
        Verdict::Failed(Failure {
            reason: reason.to_string(),
            message: message.into(),
        })
    }
}

/// Readiness as a wait judges it; `None` (absent) is pending.
pub fn judge_ready(obj: Option<&Value>) -> Verdict {
    let Some(v) = obj else {
        return Verdict::Pending("not found".to_string());
    };
    match readiness(v) {
        Readiness::Ready => Verdict::Done(()),
        Readiness::InProgress { reason, message } => {
            Verdict::Pending(format!("{reason}: {message}"))
        }
        Readiness::Failed { reason, message } => Verdict::Failed(Failure { reason, message }),
    }
}

/// A named condition with the expected status / reason / message; with `current_generation`,
/// only one describing the current generation counts. Waiting for `Ready=True` fails fast on
/// `Stalled=True` and on suspension (neither can end in Ready without a change).
pub fn judge_condition(obj: Option<&Value>, expected: &ConditionExpectation) -> Verdict<Condition> {
    let Some(v) = obj else {
        return Verdict::Pending("not found".to_string());
    };
    if expected.type_ == "Ready"
        && expected.status.as_deref() == Some("True")
        && let Readiness::Failed { reason, message } = readiness(v)
    {
        return Verdict::Failed(Failure { reason, message });
    }
    match condition(v, &expected.type_) {
        Some(c)
            if expected.matches(&c)
                && (!expected.current_generation || is_current_generation(v, &c)) =>
        {
            Verdict::Done(c)
        }
        Some(_) => Verdict::Pending(describe(v)),
        None => Verdict::Pending(format!(
            "no `{}` condition; {}",
            expected.type_,
            describe(v)
        )),
    }
}

/// What an expect-failure wait saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedFailure {
    pub type_: String,
    pub reason: String,
    pub message: String,
}

/// An expected failure: `expected.type_` (normally `Ready`) `False`, or `Stalled=True`, with the
/// expected reason and message, at the current generation. Becoming ready instead is a
/// [`Failure`] with reason [`UNEXPECTEDLY_READY`].
pub fn judge_failure(
    obj: Option<&Value>,
    expected: &ConditionExpectation,
) -> Verdict<ObservedFailure> {
    let Some(v) = obj else {
        return Verdict::Pending("not found".to_string());
    };
    for c in conditions(v) {
        let failing = (c.type_ == expected.type_ && c.status == "False")
            || (c.type_ == "Stalled" && c.status == "True");
        let matches = expected.reason.as_ref().is_none_or(|r| *r == c.reason)
            && expected
                .message
                .as_ref()
                .is_none_or(|m| m.is_match(&c.message));
        if failing && matches && is_current_generation(v, &c) {
            return Verdict::Done(ObservedFailure {
                type_: c.type_,
                reason: c.reason,
                message: c.message,
            });
        }
    }
    if readiness(v) == Readiness::Ready && condition(v, "Ready").is_some() {
        return Verdict::failed(
            UNEXPECTEDLY_READY,
            format!("it became ready instead of failing with {expected}"),
        );
    }
    Verdict::Pending(describe(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kustomization(generation: i64, observed: i64, conds: Value) -> Value {
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system", "generation": generation},
            "spec": {"interval": "1m"},
            "status": {"observedGeneration": observed, "conditions": conds}
        })
    }

    #[test]
    fn flux_ready_needs_current_generation() {
        let ready = json!([{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "Applied"}]);
        assert_eq!(
            readiness(&kustomization(2, 2, ready.clone())),
            Readiness::Ready
        );
        assert!(matches!(
            readiness(&kustomization(3, 2, ready)),
            Readiness::InProgress { .. }
        ));
    }

    #[test]
    fn flux_stalled_fails_and_ready_false_progresses() {
        let stalled = json!([
            {"type": "Ready", "status": "False", "reason": "BuildFailed", "message": "kustomize build failed"},
            {"type": "Stalled", "status": "True", "reason": "BuildFailed", "message": "kustomize build failed"}
        ]);
        assert_eq!(
            readiness(&kustomization(1, 1, stalled)),
            Readiness::Failed {
                reason: "BuildFailed".into(),
                message: "kustomize build failed".into()
            }
        );
        let not_ready = json!([{"type": "Ready", "status": "False", "reason": "ArtifactFailed", "message": "no artifact"}]);
        assert_eq!(
            readiness(&kustomization(1, 1, not_ready)),
            Readiness::InProgress {
                reason: "ArtifactFailed".into(),
                message: "no artifact".into()
            }
        );
    }

    #[test]
    fn flux_without_status_is_not_ready_but_alerts_are() {
        let fresh = json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "a", "generation": 1}, "spec": {}});
        assert!(matches!(readiness(&fresh), Readiness::InProgress { .. }));
        let alert = json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
            "metadata": {"name": "a", "generation": 1}, "spec": {}});
        assert_eq!(readiness(&alert), Readiness::Ready);
    }

    #[test]
    fn suspended_flux_object_fails_fast() {
        let mut k = kustomization(1, 1, json!([]));
        k["spec"]["suspend"] = json!(true);
        assert!(matches!(readiness(&k), Readiness::Failed { reason, .. } if reason == "Suspended"));
    }

    #[test]
    fn deployment_rules() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "generation": 1}, "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                "readyReplicas": 1, "availableReplicas": 1,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}});
        assert_eq!(readiness(&d), Readiness::Ready);
        d["status"]["availableReplicas"] = json!(0);
        assert!(matches!(readiness(&d), Readiness::InProgress { .. }));
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "too slow"}]);
        assert!(matches!(readiness(&d), Readiness::Failed { .. }));
        d["metadata"]["generation"] = json!(2);
        d["status"]["conditions"] = json!([]);
        assert!(
            matches!(readiness(&d), Readiness::InProgress { reason, .. } if reason == "ObservedGenerationBehind")
        );
    }

    #[test]
    fn core_kinds_and_static_objects() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(readiness(&cm), Readiness::Ready);
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}, "status": {"phase": "Terminating"}});
        assert!(matches!(readiness(&ns), Readiness::InProgress { .. }));
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "x"}, "status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert_eq!(readiness(&crd), Readiness::Ready);
    }

    #[test]
    fn expectations_match_type_status_reason_and_message() {
        let c = Condition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: "BuildFailed".into(),
            message: "accumulating resources: no such file".into(),
            observed_generation: None,
        };
        let exp = ConditionExpectation::new("Ready")
            .status("False")
            .reason("BuildFailed")
            .message(Regex::new("no such file").unwrap());
        assert!(exp.matches(&c));
        assert!(
            !ConditionExpectation::new("Ready")
                .status("True")
                .matches(&c)
        );
        assert!(
            !ConditionExpectation::new("Ready")
                .reason("ArtifactFailed")
                .matches(&c)
        );
    }
}
