//! TEST DOUBLE notification-controller: the event server (controllers' events matched against
//! Alerts and posted to their Provider, internal/server/event_handlers.go), the generic
//! Provider (a JSON POST of the event, internal/notifier/forwarder.go), Receivers
//! (`status.webhookPath` = `/hook/` + sha256(token+name+namespace), api/v1/receiver_types.go)
//! and the receiver server on port 9292 that annotates the Receiver's resources with
//! `reconcile.fluxcd.io/requestedAt` (internal/server/receiver_handlers.go).

use super::common::{self, Ctx, REQUESTED_AT, condition, generation, handled, meta, str_at};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const CONTROLLER: &str = "notification-controller";

/// Whether an Alert's event source matches the object (`name: "*"` matches any).
fn source_matches(src: &Value, o: &Value) -> bool {
    src["kind"] == o["kind"]
        && (src["name"] == "*" || src["name"] == meta(o, "name"))
        && src["namespace"].as_str().unwrap_or(meta(o, "namespace")) == meta(o, "namespace")
}

/// Deliver an event to every Alert of the object's namespace that selects it, through its
/// Provider (only the generic webhook Provider is imitated; others are not called).
pub fn forward(ctx: &Ctx, o: &Value, warning: bool, reason: &str, message: &str, controller: &str) {
    if !ctx.controller_running(CONTROLLER) {
        return;
    }
    let ns = meta(o, "namespace");
    let Some(alerts) = ctx
        .store
        .resource_types()
        .into_iter()
        .find(|t| t.group == "notification.toolkit.fluxcd.io" && t.kind == "Alert")
    else {
        return;
    };
    let severity = if warning { "error" } else { "info" };
    let payload = json!({
        "involvedObject": {"kind": o["kind"], "namespace": ns, "name": meta(o, "name"),
            "uid": meta(o, "uid"), "apiVersion": o["apiVersion"], "resourceVersion": meta(o, "resourceVersion")},
        "severity": severity, "timestamp": super::super::store::now(), "message": message, "reason": reason,
        "metadata": {"revision": str_at(o, "/status/lastAttemptedRevision")},
        "reportingController": controller, "reportingInstance": format!("{controller}-0"),
    });
    for alert in ctx.store.list(&alerts, Some(ns)).0 {
        if alert.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let wanted = alert["spec"]["eventSeverity"].as_str().unwrap_or("info");
        if wanted == "error" && !warning {
            continue;
        }
        if !alert["spec"]["eventSources"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| source_matches(s, o))
        {
            continue;
        }
        let provider_name = str_at(&alert, "/spec/providerRef/name").to_string();
        let Some(provider) = ctx.get_kind(
            "notification.toolkit.fluxcd.io",
            "Provider",
            ns,
            &provider_name,
        ) else {
            continue;
        };
        if str_at(&provider, "/spec/type") != "generic" {
            continue;
        }
        let address = str_at(&provider, "/spec/address").to_string();
        let files = common::tls_files(ctx, ns, str_at(&provider, "/spec/certSecretRef/name"));
        let headers = provider_headers(ctx, ns, str_at(&provider, "/spec/secretRef/name"));
        let body = payload.clone();
        tokio::spawn(async move {
            let client = common::http_client(&files);
            // internal/notifier/forwarder.go: a POST of the event as JSON, with the headers.
            let mut req = client.post(&address).json(&body);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let _ = req.send().await;
        });
    }
}

/// The `headers` key of a Provider's `secretRef`, a YAML map of HTTP headers the generic
/// webhook sends with every event (internal/server/event_handlers.go reads it from the Secret).
fn provider_headers(ctx: &Ctx, ns: &str, secret: &str) -> Vec<(String, String)> {
    let yaml = (!secret.is_empty())
        .then(|| ctx.secret(ns, secret))
        .flatten()
        .and_then(|d| d.get("headers").cloned());
    yaml.and_then(|b| serde_norway::from_slice::<BTreeMap<String, String>>(&b).ok())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default()
}

/// internal/controller/receiver_controller.go: the token from `secretRef`, the webhook path,
/// Ready=True "Receiver initialized for path: <path>".
pub fn receiver(ctx: &Ctx, o: &Value) -> Option<Duration> {
    if common::deleting(o) {
        common::remove_finalizer(ctx, o);
        return None;
    }
    let o = &common::ensure_finalizer(ctx, o);
    let ns = meta(o, "namespace");
    let secret = str_at(o, "/spec/secretRef/name");
    let token = ctx
        .secret(ns, secret)
        .and_then(|d| d.get("token").cloned())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut status = json!({"observedGeneration": generation(o)});
    handled(o, &mut status);
    let Some(token) = token else {
        let message = format!("unable to read token from secret '{ns}/{secret}'");
        status["conditions"] = json!([condition(o, "Ready", false, "TokenNotFound", &message)]);
        ctx.set_status(o, status);
        return Some(super::interval_of(o));
    };
    let path = webhook_path(&token, meta(o, "name"), ns);
    status["webhookPath"] = json!(path);
    status["conditions"] = json!([condition(
        o,
        "Ready",
        true,
        "Succeeded",
        &format!("Receiver initialized for path: {path}")
    )]);
    ctx.set_status(o, status);
    None
}

pub fn webhook_path(token: &str, name: &str, namespace: &str) -> String {
    use sha2::Digest as _;
    format!(
        "/hook/{}",
        hex::encode(sha2::Sha256::digest(format!("{token}{name}{namespace}")))
    )
}

/// The receiver server (`:9292`, behind Service `webhook-receiver`): a POST to a Receiver's
/// path requests a reconcile of each resource it names; the HTTP status it answers.
pub fn handle_hook(ctx: &Ctx, path: &str) -> u16 {
    if !ctx.controller_running(CONTROLLER) {
        return 503;
    }
    let Some(t) = ctx
        .store
        .resource_types()
        .into_iter()
        .find(|t| t.group == "notification.toolkit.fluxcd.io" && t.kind == "Receiver")
    else {
        return 404;
    };
    let Some(r) = ctx
        .store
        .list(&t, None)
        .0
        .into_iter()
        .find(|r| str_at(r, "/status/webhookPath") == path)
    else {
        return 404;
    };
    let ns = meta(&r, "namespace");
    let at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    for res in r["spec"]["resources"].as_array().into_iter().flatten() {
        let kind = res["kind"].as_str().unwrap_or_default();
        let name = res["name"].as_str().unwrap_or_default();
        let group = res["apiVersion"]
            .as_str()
            .and_then(|a| a.split_once('/'))
            .map_or("source.toolkit.fluxcd.io", |(g, _)| g);
        if let Some(target) =
            ctx.get_kind(group, kind, res["namespace"].as_str().unwrap_or(ns), name)
        {
            ctx.patch(
                &target,
                json!({"metadata": {"annotations": {REQUESTED_AT: at}}}),
            );
        }
    }
    200
}
