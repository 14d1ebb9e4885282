//! TEST DOUBLE kubelet and pod network for probe pods (`flux-compat.io/probe`): the container's
//! busybox `wget` POST is carried out for real against the imitated in-cluster server it
//! addresses — the Service's DNS name resolved to its selected pods and target port, admitted
//! or dropped by the NetworkPolicies that select those pods (ingress rules: `from` pod and
//! namespace selectors, `ports`), as a policy-enforcing CNI does — and the pod then terminates
//! with wget's exit code and output as its termination message. A dropped connection times
//! out, as it does on a real cluster. A plain `wget` GET of an address outside the cluster (the
//! reachability probe of the fixture plane) leaves through this process's own network, so in a
//! stand-in kind node it takes the node's real path to the host, firewall included.

use super::common::{Ctx, meta, str_at};
use serde_json::{Value, json};

/// The images a kind node holds (kind preloads these; `status.images` of the Node).
pub const NODE_IMAGES: [&str; 3] = [
    "docker.io/kindest/local-path-helper:v20241212-8ac705d0",
    "docker.io/kindest/local-path-provisioner:v20250214-acbabc1a",
    "registry.k8s.io/pause:3.10",
];

fn selector_matches(selector: &Value, labels: &Value) -> bool {
    let ml = selector.get("matchLabels").and_then(Value::as_object);
    ml.into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
        && selector["matchExpressions"]
            .as_array()
            .is_none_or(|e| e.is_empty())
}

/// Whether a NetworkPolicy peer admits a pod of `namespace` with `labels`.
fn peer_admits(
    peer: &Value,
    policy_ns: &str,
    ns_labels: &Value,
    namespace: &str,
    labels: &Value,
) -> bool {
    match (peer.get("namespaceSelector"), peer.get("podSelector")) {
        (Some(nss), Some(ps)) => selector_matches(nss, ns_labels) && selector_matches(ps, labels),
        (Some(nss), None) => selector_matches(nss, ns_labels),
        (None, Some(ps)) => namespace == policy_ns && selector_matches(ps, labels),
        (None, None) => false,
    }
}

/// NetworkPolicy ingress: a pod no Ingress policy selects takes anything; a selected pod only
/// what some rule of a selecting policy admits (source and port).
fn ingress_allowed(
    ctx: &Ctx,
    target: &Value,
    port: i64,
    port_name: &str,
    from_ns: &str,
    from_labels: &Value,
) -> bool {
    let ns = meta(target, "namespace");
    let Some(t) = ctx.kind("networking.k8s.io/v1", "NetworkPolicy") else {
        return true;
    };
    let ns_labels = ctx
        .kind("v1", "Namespace")
        .and_then(|t| ctx.store.get(&t, "", from_ns))
        .and_then(|n| n.pointer("/metadata/labels").cloned())
        .unwrap_or(json!({}));
    let labels = target
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    let selecting: Vec<Value> = ctx
        .store
        .list(&t, Some(ns))
        .0
        .into_iter()
        .filter(|p| selector_matches(&p["spec"]["podSelector"], &labels))
        .filter(|p| {
            p["spec"]["policyTypes"]
                .as_array()
                .is_none_or(|t| t.iter().any(|x| x == "Ingress"))
        })
        .collect();
    if selecting.is_empty() {
        return true;
    }
    selecting.iter().any(|p| {
        p["spec"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|rule| {
                let from_ok = rule["from"].as_array().is_none_or(|peers| {
                    peers.is_empty()
                        || peers
                            .iter()
                            .any(|peer| peer_admits(peer, ns, &ns_labels, from_ns, from_labels))
                });
                let port_ok = rule["ports"].as_array().is_none_or(|ports| {
                    ports.is_empty()
                        || ports
                            .iter()
                            .any(|p| p["port"] == json!(port) || p["port"] == json!(port_name))
                });
                from_ok && port_ok
            })
    })
}

/// Resolve `http://<svc>.<ns>.svc.cluster.local[:port]/path` to (Service, pods, container port
/// number and name, path).
fn resolve(ctx: &Ctx, url: &str) -> Option<(Vec<Value>, i64, String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, String::from("/")), |(a, p)| (a, format!("/{p}")));
    let (host, port) = authority
        .split_once(':')
        .map_or((authority, 80), |(h, p)| (h, p.parse().unwrap_or(80)));
    let mut labels = host.split('.');
    let (svc, ns) = (labels.next()?, labels.next()?);
    let service = ctx.store.get(&ctx.kind("v1", "Service")?, ns, svc)?;
    let sp = service["spec"]["ports"]
        .as_array()?
        .iter()
        .find(|p| p["port"] == json!(port))?
        .clone();
    let selector = service["spec"]["selector"].clone();
    let pods: Vec<Value> = ctx
        .store
        .list(&ctx.kind("v1", "Pod")?, Some(ns))
        .0
        .into_iter()
        .filter(|p| {
            selector.as_object().is_some_and(|s| {
                s.iter()
                    .all(|(k, v)| p.pointer(&format!("/metadata/labels/{k}")) == Some(v))
            })
        })
        .filter(|p| str_at(p, "/status/phase") == "Running")
        .collect();
    let target_port = sp.get("targetPort").cloned().unwrap_or(json!(port));
    let container_port = pods.first().and_then(|p| {
        p.pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .find(|cp| cp["name"] == target_port || cp["containerPort"] == target_port)
    });
    let (num, name) = match container_port {
        Some(cp) => (
            cp["containerPort"].as_i64().unwrap_or(0),
            cp["name"].as_str().unwrap_or_default().to_string(),
        ),
        None => (target_port.as_i64().unwrap_or(0), String::new()),
    };
    Some((pods, num, name, path))
}

/// Run a probe pod: the kubelet starts its container and it terminates with what wget did.
pub async fn run_probe(ctx: &Ctx, pod: &Value) {
    let ns = meta(pod, "namespace").to_string();
    let command: Vec<String> = pod
        .pointer("/spec/containers/0/command")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let image = str_at(pod, "/spec/containers/0/image").to_string();
    let Some(t) = ctx.kind("v1", "Pod") else {
        return;
    };
    if !NODE_IMAGES.contains(&image.as_str()) {
        let status = json!({"phase": "Pending", "containerStatuses": [{"name": "probe", "image": image, "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ErrImageNeverPull", "message": format!("Container image \"{image}\" is not present with pull policy of Never")}}}]});
        let _ = ctx
            .store
            .patch(&t, &ns, meta(pod, "name"), &json!({"status": status}), true);
        return;
    }
    let (code, output) = if command.first().map(String::as_str) == Some("wget")
        && command.iter().any(|a| a == "--post-data")
    {
        let url = command.last().cloned().unwrap_or_default();
        let from_labels = pod
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        match resolve(ctx, &url) {
            None => (
                1,
                format!(
                    "wget: bad address '{}'",
                    url.trim_start_matches("http://")
                        .split('/')
                        .next()
                        .unwrap_or_default()
                ),
            ),
            Some((pods, _, _, _)) if pods.is_empty() => (
                1,
                "wget: can't connect to remote host: Connection refused".to_string(),
            ),
            Some((pods, port, port_name, path)) => {
                if !ingress_allowed(ctx, &pods[0], port, &port_name, &ns, &from_labels) {
                    (1, "wget: download timed out".to_string())
                } else if port == 9292
                    && meta(&pods[0], "name").starts_with("notification-controller")
                {
                    match super::notify::handle_hook(ctx, &path) {
                        200 => (0, String::new()),
                        code => (
                            1,
                            format!(
                                "wget: server returned error: HTTP/1.1 {code} {}",
                                if code == 404 { "Not Found" } else { "Error" }
                            ),
                        ),
                    }
                } else {
                    (
                        1,
                        "wget: can't connect to remote host: Connection refused".to_string(),
                    )
                }
            }
        }
    } else if command.first().map(String::as_str) == Some("wget") {
        // A plain GET to an address outside the cluster (the fixture plane on the host): the
        // pod network's egress is this process's own, so the connection is made for real.
        let url = command.last().cloned().unwrap_or_default();
        let timeout = command
            .iter()
            .position(|a| a == "-T")
            .and_then(|i| command.get(i + 1))
            .and_then(|t| t.parse().ok())
            .unwrap_or(10);
        let url2 = url.clone();
        tokio::task::spawn_blocking(move || {
            wget_get(&url2, std::time::Duration::from_secs(timeout))
        })
        .await
        .unwrap_or((1, format!("wget: {url}: the probe crashed")))
    } else {
        (
            127,
            format!(
                "{}: applet not found",
                command.first().cloned().unwrap_or_default()
            ),
        )
    };
    let now = super::super::store::now();
    let status = json!({"phase": if code == 0 { "Succeeded" } else { "Failed" },
        "containerStatuses": [{"name": "probe", "image": image, "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                "message": output, "startedAt": now, "finishedAt": now}}}]});
    let _ = ctx
        .store
        .patch(&t, &ns, meta(pod, "name"), &json!({"status": status}), true);
}

/// busybox `wget -q -O /dev/null http://host:port/` carried out for real: its exit code and what
/// it prints (busybox's wording: "can't connect to remote host (IP): <reason>", "download timed
/// out", "server returned error: HTTP/1.1 ...", "error getting response: ...").
fn wget_get(url: &str, timeout: std::time::Duration) -> (i64, String) {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    let authority = url
        .strip_prefix("http://")
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let Some(addr) = authority.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return (1, format!("wget: bad address '{authority}'"));
    };
    let mut stream = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            return (1, "wget: download timed out".into());
        }
        Err(e) => {
            let reason = match e.raw_os_error() {
                Some(libc_code) => std::io::Error::from_raw_os_error(libc_code)
                    .to_string()
                    .split(" (os error")
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                None => e.to_string(),
            };
            return (
                1,
                format!(
                    "wget: can't connect to remote host ({}): {reason}",
                    addr.ip()
                ),
            );
        }
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: Wget\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()) {
        return (1, format!("wget: error getting response: {e}"));
    }
    let mut head = [0u8; 256];
    match stream.read(&mut head) {
        Ok(0) => (1, "wget: error getting response".into()),
        Ok(n) => {
            let text = String::from_utf8_lossy(&head[..n]);
            let status = text.lines().next().unwrap_or_default().to_string();
            match status
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse::<u16>().ok())
            {
                Some(code) if status.starts_with("HTTP/1.") && (200..300).contains(&code) => {
                    (0, String::new())
                }
                Some(_) if status.starts_with("HTTP/1.") => {
                    (1, format!("wget: server returned error: {}", status.trim()))
                }
                _ => (1, "wget: bad header line".into()),
            }
        }
        Err(e)
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut =>
        {
            (1, "wget: download timed out".into())
        }
        Err(e) => (1, format!("wget: error getting response: {e}")),
    }
}
