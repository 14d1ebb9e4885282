//! The reachability probe of a cell's fixtures: right after the fixture plane and the FIPS TLS
//! challenge endpoints start, the cluster must reach them, from a node (a kind node container's
//! own network, through `docker exec` and the node's `curl`) and from a pod (the pod network the
//! controllers use, through a probe pod's busybox `wget`). An endpoint that cannot be reached
//! fails the `fixtures` phase at once, naming the address, the port and what answered, instead
//! of every scenario waiting out its budget before anything says why. A probe that could not run
//! (no `curl` in the node, no probe image) is recorded as not probed, never as reached.

use crate::cluster::docker::Docker;
use crate::cluster::process::{self, Cmd};
use crate::k8s::Kube;
use crate::k8s::probe::ProbeSpec;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Seconds each connection attempt may take before the endpoint counts as unreachable.
const CONNECT_SECS: u32 = 5;
/// The namespace probe pods run in (every cluster has it).
const NAMESPACE: &str = "default";

/// An endpoint the cluster must reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// What it is: `fixture plane`, `TLS challenge <id>`.
    pub what: String,
    /// As the cluster addresses it (an IP, `[v6]` or a name).
    pub host: String,
    pub port: u16,
}

impl Target {
    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// What one probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Something answered (what it said).
    Reached(String),
    /// Nothing answered (the client's error).
    Unreachable(String),
    /// The probe could not run (why); says nothing about the endpoint.
    NotProbed(String),
}

/// A finding for a target, from one vantage point (`node`, `pod`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probed {
    pub from: &'static str,
    pub target: Target,
    pub finding: Finding,
}

impl Probed {
    /// `from pod: fixture plane 172.18.0.1:41234: unreachable: wget: ... Connection refused`.
    pub fn describe(&self) -> String {
        let (word, detail) = match &self.finding {
            Finding::Reached(d) => ("reached", d),
            Finding::Unreachable(d) => ("unreachable", d),
            Finding::NotProbed(d) => ("not probed", d),
        };
        format!(
            "from {}: {} {} (port {}): {word}: {detail}",
            self.from,
            self.target.what,
            self.target.address(),
            self.target.port
        )
    }
}

/// The node's shell script: one line per target, `<curl exit code> <what curl said>`.
fn node_script(targets: &[Target]) -> String {
    let mut s = String::from("command -v curl >/dev/null 2>&1 || { echo no-curl; exit 0; }\n");
    for t in targets {
        // One line per target, whatever curl prints (its error ends in a newline).
        s.push_str(&format!(
            "out=$(curl -sS -k -o /dev/null --connect-timeout {CONNECT_SECS} --max-time {} -w ' HTTP %{{http_code}}' 'https://{}/' 2>&1); rc=$?; printf '%s %s\\n' \"$rc\" \"$(printf '%s' \"$out\" | tr '\\n' ' ')\"\n",
            CONNECT_SECS * 2,
            t.address()
        ));
    }
    s
}

/// curl's verdict: it could not resolve (6) or connect (7), or its connect timed out (28 with a
/// connection message). Anything else got an answer: an HTTP status, a TLS alert (the
/// challenge endpoints refuse most handshakes by design), a reset after connecting.
fn judge_curl(line: &str) -> Finding {
    let (code, said) = line.split_once(' ').unwrap_or((line, ""));
    let said = said.trim().to_string();
    match code.parse::<i32>() {
        Ok(6 | 7) => Finding::Unreachable(said),
        Ok(28) if said.to_lowercase().contains("connect") => Finding::Unreachable(said),
        Ok(0) => Finding::Reached(said),
        Ok(_) => Finding::Reached(format!("answered, then: {said}")),
        Err(_) => Finding::NotProbed(format!("unexpected output `{line}`")),
    }
}

/// Probe every target from kind node container `node` in one `docker exec`.
pub async fn from_node(
    docker: &Docker,
    node: &str,
    targets: &[Target],
    cancel: &CancellationToken,
) -> Vec<Probed> {
    let cmd = Cmd::new(&docker.program)
        .args(["exec", node, "sh", "-c"])
        .arg(node_script(targets));
    let budget = Duration::from_secs(u64::from(CONNECT_SECS) * 2 * targets.len() as u64 + 10);
    let found = |finding: Finding, t: &Target| Probed {
        from: "node",
        target: t.clone(),
        finding,
    };
    let out = match process::run(&cmd, budget, cancel).await {
        Ok(o) => o.stdout,
        Err(e) => {
            let why = format!("`docker exec {node}` failed: {}", crate::errors::chain(&e));
            return targets
                .iter()
                .map(|t| found(Finding::NotProbed(why.clone()), t))
                .collect();
        }
    };
    let lines: Vec<&str> = out.lines().collect();
    if lines.first() == Some(&"no-curl") {
        let why = format!("node `{node}` has no `curl`");
        return targets
            .iter()
            .map(|t| found(Finding::NotProbed(why.clone()), t))
            .collect();
    }
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| match lines.get(i) {
            Some(line) => found(judge_curl(line), t),
            None => found(Finding::NotProbed("no answer from the node".into()), t),
        })
        .collect()
}

/// busybox `wget`'s verdict: a connect error, a timeout or an unresolvable name means nothing
/// answered; anything else (a status, a reset, a bad header from a TLS port) is an answer.
fn judge_wget(exit_code: i64, output: &str) -> Finding {
    let lower = output.to_lowercase();
    if exit_code == 0 {
        Finding::Reached("HTTP 2xx".into())
    } else if lower.contains("can't connect")
        || lower.contains("timed out")
        || lower.contains("bad address")
    {
        Finding::Unreachable(output.trim().to_string())
    } else if exit_code == 127 || lower.contains("not found") && lower.contains("applet") {
        Finding::NotProbed(format!("the probe image has no `wget`: {}", output.trim()))
    } else {
        Finding::Reached(format!("answered: {}", output.trim()))
    }
}

/// Probe `target` from a pod: plain HTTP to the port, so any answer (the TLS server's reset or
/// alert included) shows the pod network reaches it, whatever TLS the image's wget speaks.
/// `scope` makes the pod's name unique in the cluster (run and cell: cells of one run may share
/// an existing cluster).
pub async fn from_pod(kube: &Kube, scope: &str, index: usize, target: &Target) -> Probed {
    let found = |finding| Probed {
        from: "pod",
        target: target.clone(),
        finding,
    };
    let image = match kube.probe_image().await {
        Ok(i) => i,
        Err(e) => return found(Finding::NotProbed(crate::errors::chain(&e))),
    };
    use sha2::Digest;
    let tag = hex::encode(&sha2::Sha256::digest(scope.as_bytes())[..6]);
    let name = format!("flux-compat-reach-{tag}-{index}");
    let spec = ProbeSpec {
        namespace: NAMESPACE.into(),
        name,
        image,
        command: [
            "wget",
            "-q",
            "-O",
            "/dev/null",
            "-T",
            &CONNECT_SECS.to_string(),
            &format!("http://{}/", target.address()),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        purpose: "reachability".into(),
        timeout: Duration::from_secs(60),
    };
    match kube.run_probe_pod(&spec).await {
        Ok(o) => found(judge_wget(o.exit_code, &o.output)),
        Err(e) => found(Finding::NotProbed(crate::errors::chain(&e))),
    }
}

/// The findings that fail the cell, as one message naming the first unreachable endpoint seen
/// from each vantage point (every finding goes into the phase's diagnostics);
/// `None` when nothing was unreachable.
pub fn verdict(found: &[Probed]) -> Option<String> {
    let bad: Vec<&Probed> = found
        .iter()
        .filter(|p| matches!(p.finding, Finding::Unreachable(_)))
        .collect();
    let mut shown: Vec<&Probed> = Vec::new();
    for p in &bad {
        if !shown.iter().any(|s| s.from == p.from) {
            shown.push(p);
        }
    }
    (!bad.is_empty()).then(|| {
        let more = match bad.len() - shown.len() {
            0 => String::new(),
            n => format!("; and {n} more (all findings are in the phase's diagnostics)"),
        };
        let shown: Vec<String> = shown.iter().map(|p| p.describe()).collect();
        format!(
            "the cluster cannot reach the fixtures: {}{more} (a host firewall between the cluster's network and this machine, or a wrong advertised address)",
            shown.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(port: u16) -> Target {
        Target {
            what: "fixture plane".into(),
            host: "172.18.0.1".into(),
            port,
        }
    }

    #[test]
    fn curl_lines_say_whether_anything_answered() {
        assert_eq!(
            judge_curl("0 HTTP 404"),
            Finding::Reached("HTTP 404".into())
        );
        assert!(matches!(
            judge_curl("7 curl: (7) Failed to connect to 172.18.0.1 port 4 after 0 ms: Couldn't connect to server HTTP 000"),
            Finding::Unreachable(m) if m.contains("Failed to connect")
        ));
        assert!(matches!(
            judge_curl("28 curl: (28) Connection timed out after 5001 milliseconds HTTP 000"),
            Finding::Unreachable(_)
        ));
        // A TLS endpoint that refuses the handshake did answer.
        assert!(matches!(
            judge_curl(
                "35 curl: (35) OpenSSL/3.0.13: error:0A000410:SSL routines::sslv3 alert handshake failure HTTP 000"
            ),
            Finding::Reached(_)
        ));
        assert!(matches!(judge_curl("garbage"), Finding::NotProbed(_)));
    }

    #[test]
    fn wget_outputs_say_whether_anything_answered() {
        for unreachable in [
            "wget: can't connect to remote host (172.18.0.1): Connection refused",
            "wget: can't connect to remote host (172.18.0.1): No route to host",
            "wget: download timed out",
            "wget: bad address 'nowhere'",
        ] {
            assert!(
                matches!(judge_wget(1, unreachable), Finding::Unreachable(_)),
                "{unreachable}"
            );
        }
        assert!(matches!(
            judge_wget(1, "wget: error getting response: Connection reset by peer"),
            Finding::Reached(_)
        ));
        assert!(matches!(
            judge_wget(127, "wget: applet not found"),
            Finding::NotProbed(_)
        ));
    }

    #[test]
    fn the_verdict_names_address_port_and_answer() {
        let found = vec![
            Probed {
                from: "node",
                target: t(443),
                finding: Finding::Reached("HTTP 404".into()),
            },
            Probed {
                from: "pod",
                target: t(41234),
                finding: Finding::Unreachable("wget: download timed out".into()),
            },
        ];
        let v = verdict(&found).unwrap();
        assert!(
            v.contains("from pod: fixture plane 172.18.0.1:41234 (port 41234): unreachable: wget: download timed out"),
            "{v}"
        );
        assert!(!v.contains("443"), "{v}");
        assert_eq!(verdict(&found[..1]), None);
        assert!(node_script(&[t(1)]).contains("'https://172.18.0.1:1/'"));
    }
}
