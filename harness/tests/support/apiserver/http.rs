//! TEST DOUBLE HTTP front: the Kubernetes REST protocol as kube-rs speaks it — discovery, get,
//! list and watch (resourceVersion, label/field selectors, bookmarks, timeoutSeconds),
//! server-side apply, merge patch, the status subresource, create, delete and pod logs.

use super::store::{Change, FieldValidation, Refusal, ResourceType, Store};
use super::{Counters, Health};
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Bytes;
use hyper::body::Frame;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

pub type Body = BoxBody<Bytes, Infallible>;

pub struct Shared {
    pub store: Arc<Store>,
    pub counters: Counters,
    pub health: Health,
    pub version: (u32, u32, u32),
    pub bookmark_interval: Duration,
    pub admission_echo: bool,
}

fn full(code: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", content_type)
        .body(Full::new(body.into()).boxed())
        .expect("response")
}

fn json_response(code: StatusCode, v: &Value) -> Response<Body> {
    full(code, "application/json", v.to_string())
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}),
    )
}

fn refusal(r: Refusal) -> Response<Body> {
    status(r.code, r.reason, &r.message)
}

fn query(req: &Request<hyper::body::Incoming>) -> HashMap<String, String> {
    req.uri().query().map(form_urlencoded).unwrap_or_default()
}

fn form_urlencoded(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `k=v,k2!=v2,k3` on labels.
fn labels_match(obj: &Value, selector: &str) -> bool {
    let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
    selector
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .all(|term| {
            let term = term.trim();
            let get = |k: &str| labels.and_then(|l| l.get(k.trim())).and_then(Value::as_str);
            if let Some((k, v)) = term.split_once("!=") {
                get(k) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                get(k) == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                get(k).is_none()
            } else {
                get(term).is_some()
            }
        })
}

/// `a.b=v,c!=w` on dotted paths.
fn fields_match(obj: &Value, selector: &str) -> bool {
    selector
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .all(|term| {
            let (path, want, negate) = match term.split_once("!=") {
                Some((p, v)) => (p, v, true),
                None => match term.split_once("==").or_else(|| term.split_once('=')) {
                    Some((p, v)) => (p, v, false),
                    None => return false,
                },
            };
            let pointer = format!("/{}", path.trim().replace('.', "/"));
            let got = obj.pointer(&pointer).and_then(Value::as_str).unwrap_or("");
            (got == want.trim()) != negate
        })
}

fn selected(obj: &Value, q: &HashMap<String, String>) -> bool {
    q.get("labelSelector").is_none_or(|s| labels_match(obj, s))
        && q.get("fieldSelector").is_none_or(|s| fields_match(obj, s))
}

/// A parsed resource path.
struct Target {
    group: String,
    version: String,
    namespace: Option<String>,
    plural: String,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => (String::new(), v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some(ns.to_string()), tail),
        other => (None, other),
    };
    let (plural, name, sub) = match rest {
        [p] => (p, None, None),
        [p, n] => (p, Some(n.to_string()), None),
        [p, n, s] => (p, Some(n.to_string()), Some(s.to_string())),
        _ => return None,
    };
    Some(Target {
        group,
        version,
        namespace,
        plural: plural.to_string(),
        name,
        sub,
    })
}

pub async fn handle(
    shared: Arc<Shared>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    if shared.health.unavailable() {
        return Ok(status(
            503,
            "ServiceUnavailable",
            "the API server is unavailable (test double switch)",
        ));
    }
    let path = req.uri().path().to_string();
    Ok(match discovery(&shared, &path) {
        Some(resp) => {
            shared.counters.add("discovery", &path);
            resp
        }
        None => match parse_path(&path) {
            Some(t) => resource(shared, t, req).await,
            None => status(
                404,
                "NotFound",
                &format!("the server could not find the requested resource ({path})"),
            ),
        },
    })
}

fn discovery(shared: &Shared, path: &str) -> Option<Response<Body>> {
    let types = shared.store.resource_types();
    let ok = |v: Value| Some(json_response(StatusCode::OK, &v));
    match path.trim_end_matches('/') {
        "/version" => {
            let (ma, mi, pa) = shared.version;
            ok(
                json!({"major": ma.to_string(), "minor": mi.to_string(), "gitVersion": format!("v{ma}.{mi}.{pa}"),
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2026-11-01T00:00:00Z", "goVersion": "go1.25.0", "compiler": "gc", "platform": "linux/amd64"}),
            )
        }
        "/api" => ok(
            json!({"kind": "APIVersions", "apiVersion": "v1", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        ),
        "/apis" => {
            let mut groups: Vec<(String, Vec<String>)> = Vec::new();
            for t in types.iter().filter(|t| !t.group.is_empty()) {
                match groups.iter_mut().find(|(g, _)| *g == t.group) {
                    Some((_, vs)) if !vs.contains(&t.version) => vs.push(t.version.clone()),
                    Some(_) => {}
                    None => groups.push((t.group.clone(), vec![t.version.clone()])),
                }
            }
            let groups: Vec<Value> = groups
                .into_iter()
                .map(|(g, vs)| {
                    let versions: Vec<Value> = vs
                        .iter()
                        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                        .collect();
                    json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
                })
                .collect();
            ok(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        p => {
            let gv = if p == "/api/v1" {
                ("".to_string(), "v1".to_string())
            } else {
                let segs: Vec<&str> = p.trim_start_matches("/apis/").split('/').collect();
                match (p.starts_with("/apis/"), segs.as_slice()) {
                    (true, [g, v]) => (g.to_string(), v.to_string()),
                    _ => return None,
                }
            };
            let served: Vec<&ResourceType> = types
                .iter()
                .filter(|t| t.group == gv.0 && t.version == gv.1)
                .collect();
            if served.is_empty() {
                return Some(status(
                    404,
                    "NotFound",
                    &format!("the server could not find the requested resource ({p})"),
                ));
            }
            let mut resources = Vec::new();
            for t in served {
                resources.push(json!({"name": t.plural, "singularName": t.kind.to_lowercase(), "namespaced": t.namespaced,
                    "kind": t.kind, "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}));
                if t.status {
                    resources.push(json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced,
                        "kind": t.kind, "verbs": ["get", "patch", "update"]}));
                }
                if t.kind == "Pod" && t.group.is_empty() {
                    resources.push(json!({"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}));
                }
            }
            let group_version = if gv.0.is_empty() {
                gv.1.clone()
            } else {
                format!("{}/{}", gv.0, gv.1)
            };
            ok(
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
            )
        }
    }
}

async fn resource(
    shared: Arc<Shared>,
    t: Target,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let Some(rt) = shared.store.find_type(&t.group, &t.version, &t.plural) else {
        return status(
            404,
            "NotFound",
            &format!(
                "the server could not find the requested resource ({})",
                req.uri().path()
            ),
        );
    };
    let q = query(&req);
    let ns = if rt.namespaced {
        t.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let sub_label = match &t.sub {
        Some(s) => format!("{}/{s}", rt.plural),
        None => rt.plural.clone(),
    };
    let method = req.method().clone();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return status(400, "BadRequest", &format!("reading the body: {e}")),
    };
    match (&method, &t.name, t.sub.as_deref()) {
        (&Method::GET, None, None) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            shared.counters.add("watch", &sub_label);
            let scope = if rt.namespaced {
                t.namespace.clone()
            } else {
                None
            };
            watch(shared, rt, scope, q)
        }
        (&Method::GET, None, None) => {
            shared.counters.add("list", &sub_label);
            let scope = if rt.namespaced {
                t.namespace.as_deref()
            } else {
                None
            };
            let (items, rv) = shared.store.list(&rt, scope);
            let items: Vec<Value> = items.into_iter().filter(|o| selected(o, &q)).collect();
            json_response(
                StatusCode::OK,
                &json!({"apiVersion": rt.api_version(), "kind": format!("{}List", rt.kind),
                "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
            )
        }
        (&Method::GET, Some(name), None | Some("status")) => {
            shared.counters.add("get", &sub_label);
            match shared.store.get(&rt, &ns, name) {
                Some(o) => json_response(StatusCode::OK, &o),
                None => status(
                    404,
                    "NotFound",
                    &format!("{} \"{name}\" not found", rt.plural),
                ),
            }
        }
        (&Method::GET, Some(name), Some("log")) if rt.kind == "Pod" => {
            shared.counters.add("log", &sub_label);
            pod_log(&shared, &ns, name, &q)
        }
        (&Method::POST, None, None) => {
            shared.counters.add("create", &sub_label);
            match serde_json::from_slice::<Value>(&body) {
                Ok(obj) => match shared
                    .store
                    .create_with(&rt, &ns, obj, field_validation(&q))
                {
                    Ok(o) => json_response(StatusCode::CREATED, &o),
                    Err(r) => refusal(r),
                },
                Err(e) => status(400, "BadRequest", &format!("decoding the body: {e}")),
            }
        }
        (&Method::PATCH, Some(name), sub @ (None | Some("status"))) => {
            let status_only = sub.is_some();
            if content_type.starts_with("application/apply-patch+yaml") {
                shared.counters.add("apply", &sub_label);
                apply(&shared, &rt, &ns, name, &q, &body, status_only)
            } else if content_type.starts_with("application/merge-patch+json")
                || content_type.starts_with("application/strategic-merge-patch+json")
            {
                shared.counters.add("patch", &sub_label);
                match serde_json::from_slice::<Value>(&body) {
                    Ok(patch) => match shared.store.patch_with(
                        &rt,
                        &ns,
                        name,
                        &patch,
                        status_only,
                        field_validation(&q),
                    ) {
                        Ok(o) => json_response(StatusCode::OK, &o),
                        Err(r) => refusal(r),
                    },
                    Err(e) => status(400, "BadRequest", &format!("decoding the patch: {e}")),
                }
            } else {
                status(
                    415,
                    "UnsupportedMediaType",
                    &format!("the double does not support patch type `{content_type}`"),
                )
            }
        }
        (&Method::DELETE, Some(name), None) => {
            shared.counters.add("delete", &sub_label);
            match shared.store.delete(&rt, &ns, name) {
                Ok(o) => json_response(StatusCode::OK, &o),
                Err(r) => refusal(r),
            }
        }
        _ => status(
            405,
            "MethodNotAllowed",
            &format!("{method} is not supported on {}", sub_label),
        ),
    }
}

/// `fieldValidation=Strict` refuses unknown fields; `Warn` (the default) and `Ignore` drop them.
fn field_validation(q: &HashMap<String, String>) -> FieldValidation {
    match q.get("fieldValidation").map(String::as_str) {
        Some("Strict") => FieldValidation::Strict,
        _ => FieldValidation::Prune,
    }
}

fn apply(
    shared: &Shared,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    q: &HashMap<String, String>,
    body: &[u8],
    status_only: bool,
) -> Response<Body> {
    if q.get("fieldManager").is_none_or(|m| m.is_empty()) {
        return status(
            400,
            "BadRequest",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        );
    }
    let text = String::from_utf8_lossy(body);
    let obj: Value = match serde_norway::from_str(&text) {
        Ok(v) => v,
        Err(e) => return status(400, "BadRequest", &format!("error decoding YAML: {e}")),
    };
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    if api_version != rt.api_version() || kind != rt.kind {
        return status(
            400,
            "BadRequest",
            &format!(
                "the body is `{api_version}` `{kind}`, the URL is `{}` `{}`",
                rt.api_version(),
                rt.kind
            ),
        );
    }
    if obj.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
        return status(
            400,
            "BadRequest",
            "the name of the object does not match the name on the URL",
        );
    }
    if let Some(body_ns) = obj.pointer("/metadata/namespace").and_then(Value::as_str)
        && rt.namespaced
        && body_ns != ns
    {
        return status(
            400,
            "BadRequest",
            "the namespace of the object does not match the namespace on the URL",
        );
    }
    // k8s.io/apiserver pkg/admission/plugin/webhook/errors: a denial is a 403 whose message is
    // `admission webhook "<name>" denied the request: <the webhook's reason>`.
    if shared.admission_echo && kind == "Secret" {
        return status(
            403,
            "Forbidden",
            &format!(
                "admission webhook \"secrets.policy.example\" denied the request: Secret rejected by policy: {}",
                serde_json::to_string(&obj).unwrap_or_default()
            ),
        );
    }
    if status_only {
        let patch = json!({"status": obj.get("status").cloned().unwrap_or(Value::Null)});
        return match shared.store.patch(rt, ns, name, &patch, true) {
            Ok(o) => json_response(StatusCode::OK, &o),
            Err(r) => refusal(r),
        };
    }
    match shared.store.apply(rt, ns, name, obj) {
        Ok((o, true)) => json_response(StatusCode::CREATED, &o),
        Ok((o, false)) => json_response(StatusCode::OK, &o),
        Err(r) => refusal(r),
    }
}

fn pod_log(shared: &Shared, ns: &str, name: &str, q: &HashMap<String, String>) -> Response<Body> {
    let pods = shared
        .store
        .find_kind("v1", "Pod")
        .expect("pods are built in");
    let Some(pod) = shared.store.get(&pods, ns, name) else {
        return status(404, "NotFound", &format!("pods \"{name}\" not found"));
    };
    let container = q.get("container").cloned().or_else(|| {
        pod.pointer("/spec/containers/0/name")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let waiting = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|s| s["name"].as_str() == container.as_deref())
        .and_then(|s| {
            s.pointer("/state/waiting/reason")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    if let Some(reason) = waiting {
        // What a kubelet answers for a container that never started.
        return status(
            400,
            "BadRequest",
            &format!(
                "container \"{}\" in pod \"{name}\" is waiting to start: {reason}",
                container.unwrap_or_default()
            ),
        );
    }
    let text = shared.store.pod_log(ns, name).unwrap_or_default();
    let text = match q.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            lines[start..].iter().map(|l| format!("{l}\n")).collect()
        }
        None => text,
    };
    full(StatusCode::OK, "text/plain", text)
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn watch(
    shared: Arc<Shared>,
    rt: ResourceType,
    namespace: Option<String>,
    q: HashMap<String, String>,
) -> Response<Body> {
    let since: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let in_scope = {
        let namespace = namespace.clone();
        let q = q.clone();
        move |o: &Value| {
            namespace.as_ref().is_none_or(|ns| {
                o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
            }) && selected(o, &q)
        }
    };
    // resourceVersion 0 or absent: the current state as ADDED events, then changes.
    let (initial, replay, rx, start_rv): (Vec<Value>, Vec<Change>, _, u64) = if since == 0 {
        let (replay, rx) = shared.store.subscribe(&rt.group, &rt.plural, u64::MAX);
        let (items, rv) = shared.store.list(&rt, None);
        (items, replay, rx, rv)
    } else {
        let (replay, rx) = shared.store.subscribe(&rt.group, &rt.plural, since);
        (Vec::new(), replay, rx, since)
    };
    let mut closed = shared.health.closed();
    let interval = shared.bookmark_interval;
    let api_version = rt.api_version();
    let kind = rt.kind.clone();
    let (group, plural) = (rt.group.clone(), rt.plural.clone());
    let stream = async_stream(move |tx| async move {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = start_rv;
        for o in initial.iter().filter(|o| in_scope(o)) {
            if tx.send(event_line("ADDED", o)).await.is_err() {
                return;
            }
        }
        for c in replay {
            last = last.max(c.rv);
            if in_scope(&c.object) && tx.send(event_line(c.kind, &c.object)).await.is_err() {
                return;
            }
        }
        let mut rx = rx;
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = closed.changed() => return,
                _ = ticker.tick(), if bookmarks => {
                    let bm = json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": last.max(start_rv).to_string()}});
                    if tx.send(event_line("BOOKMARK", &bm)).await.is_err() { return; }
                }
                got = rx.recv() => match got {
                    Ok(c) => {
                        if c.group != group || c.plural != plural || c.rv <= last { continue; }
                        last = c.rv;
                        if in_scope(&c.object) && tx.send(event_line(c.kind, &c.object)).await.is_err() { return; }
                    }
                    // Too far behind: end the watch; the client re-lists.
                    Err(_) => return,
                }
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(
            stream.map(|b| Ok::<_, Infallible>(Frame::data(b))),
        )))
        .expect("response")
}

/// A stream fed by a task through a channel (keeps the double free of stream macro crates).
fn async_stream<F, Fut>(f: F) -> impl futures::Stream<Item = Bytes> + Send + 'static
where
    F: FnOnce(tokio::sync::mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
}
