//! TEST STAND-IN for the kind CLI, for tests only: one POSIX shell script answering the commands
//! the harness's kind wrapper runs (`version`, `create cluster`, `delete cluster`, `get clusters`,
//! `get kubeconfig`, `export logs`), logging its argv.
//!
//! Scripted mode (no docker): `STANDIN_CREATE=fail|hang` and `STANDIN_CLUSTERS` make it answer as
//! told, for the wrapper's process handling. In docker mode `STANDIN_FIREWALL_HOST=1` is a fault:
//! the node's new connections to the host are rejected, as by a host firewall.
//!
//! Docker mode (`STANDIN_NODE_EXE` set): a "cluster" is one node container, as real kind makes
//! it (sigs.k8s.io/kind pkg/cluster/internal/providers/docker/provision.go, network.go): named
//! `<cluster>-control-plane` (hostname too), labelled `io.x-k8s.kind.cluster=<cluster>` and
//! `io.x-k8s.kind.role=control-plane`, on docker network `kind` (created if absent, IPv6 ULA
//! subnet first, IPv4 only when the engine has no IPv6, never deleted), API port 6443 published
//! on a random 127.0.0.1 port, the kind config's `extraMounts` mounted. Its process is the API
//! server TEST DOUBLE (this test binary again, see [`node_main`]); the image is built locally
//! (`docker import` of an empty root filesystem; the host's `/usr`, `/lib`, `/lib64`, `/bin`,
//! `/sbin`, `/etc/ssl` and `/etc/alternatives` are bind-mounted read-only so git, kubectl and the
//! Go peers run inside).
//! The kubeconfig is read from the node's `/etc/kubernetes/admin.conf` and rewritten for the
//! host like kind's (`kind-<cluster>` names, the published port).

use super::apiserver::{ApiServer, Options};
use flux_compat::cluster::kind::KindCli;
use std::path::{Path, PathBuf};

pub const SCRIPT: &str = r#"#!/bin/sh
# TEST STAND-IN for the kind CLI (see harness/tests/support/kind.rs).
set -u
printf '%s\n' "$*" >> "${STANDIN_LOG:-/dev/null}"
label=io.x-k8s.kind.cluster
image="${STANDIN_IMAGE:-flux-compat-test/kind-standin-node:1}"
cmd="$1 ${2:-}"
shift; [ $# -gt 0 ] && shift
name=kind; config=; kubeconfig=; wait=0s; internal=; pos=
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="$2"; shift ;;
    --config) config="$2"; shift ;;
    --kubeconfig) kubeconfig="$2"; shift ;;
    --wait) wait="$2"; shift ;;
    --internal) internal=1 ;;
    *) pos="$1" ;;
  esac
  shift
done
node="$name-control-plane"
docker_mode() { [ -n "${STANDIN_NODE_EXE:-}" ]; }
nodes() { docker ps -aq --filter "label=$label=$name"; }

kind_networks() { docker network ls --filter 'name=^kind$' --format '{{.ID}}'; }

# Concurrent creates can leave several networks named kind; keep the one with the most containers,
# then the lowest ID, and remove the others, as kind does (network.go removeDuplicateNetworks).
dedupe_networks() {
  ids=$(kind_networks)
  [ "$(printf '%s\n' "$ids" | grep -c .)" -gt 1 ] || return 0
  keep=$(for id in $ids; do printf '%s %s\n' "$(docker network inspect -f '{{len .Containers}}' "$id")" "$id"; done \
    | sort -k1,1nr -k2,2 | head -n1 | cut -d' ' -f2)
  for id in $ids; do [ "$id" = "$keep" ] || docker network rm "$id" >/dev/null 2>&1; done
}

create_network() {
  mtu=$(docker network inspect bridge -f '{{ index .Options "com.docker.network.driver.mtu" }}' 2>/dev/null)
  set -- network create -d=bridge -o com.docker.network.bridge.enable_ip_masquerade=true
  [ -n "$mtu" ] && set -- "$@" -o "com.docker.network.driver.mtu=$mtu"
  # fc00::/64 from sha1("kind" + attempt 0 as little-endian int32), bytes 2..7, as kind does;
  # without IPv6 on the engine, IPv4 only.
  h=$(printf 'kind\000\000\000\000' | sha1sum | cut -c5-16)
  ula="fc00:$(echo "$h" | cut -c1-4):$(echo "$h" | cut -c5-8):$(echo "$h" | cut -c9-12)::/64"
  docker "$@" --ipv6 --subnet "$ula" kind >/dev/null 2>&1 || docker "$@" kind >/dev/null 2>&1
}

ensure_network() {
  # The stand-in also serialises its own creates (tests create clusters in parallel).
  exec 9>"${TMPDIR:-/tmp}/flux-compat-kind-standin.lock"
  command -v flock >/dev/null 2>&1 && flock 9
  dedupe_networks
  [ -n "$(kind_networks)" ] || create_network
  dedupe_networks
  rc=1; [ -n "$(kind_networks)" ] && rc=0
  exec 9>&-
  return $rc
}

ensure_image() {
  docker image inspect "$image" >/dev/null 2>&1 && return 0
  root=$(mktemp -d)
  mkdir -p "$root/etc" "$root/tmp" "$root/root" "$root/kind/bin"
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  echo 'root:x:0:' > "$root/etc/group"
  tar -C "$root" -cf - . | docker import -m "flux-compat kind stand-in node" - "$image" >/dev/null
  rc=$?; rm -rf "$root"; return $rc
}

kubeconfig_for() {
  conf=$(docker exec "$node" cat /etc/kubernetes/admin.conf) || return 1
  if [ -n "$internal" ]; then server="https://$node:6443"
  else server="https://$(docker port "$node" 6443/tcp | head -n1)"; fi
  printf '%s\n' "$conf" | sed -e "s#server: .*#server: $server#" \
    -e "s#name: double\$#name: kind-$name#" -e "s#cluster: double\$#cluster: kind-$name#" \
    -e "s#user: double\$#user: kind-$name#" -e "s#flux-compat-double\$#kind-$name#"
}

create_docker() {
  if [ -n "$(nodes)" ]; then
    echo "ERROR: failed to create cluster: node(s) already exist for a cluster with the name \"$name\"" >&2; exit 1
  fi
  echo "Creating cluster \"$name\" ..." >&2
  node_image=$(sed -n 's/^ *image: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$config" | head -n1)
  version=$(echo "$node_image" | sed -n 's/^[^:]*:\(v[0-9.]*\).*/\1/p')
  ensure_network || { echo "ERROR: failed to create cluster: failed to ensure docker network kind" >&2; exit 1; }
  ensure_image || { echo "ERROR: failed to create cluster: failed to build the node image" >&2; exit 1; }
  set -- --detach --name "$node" --hostname "$node" --label "$label=$name" \
    --label io.x-k8s.kind.role=control-plane --label "io.x-k8s.kind.standin.image=$node_image" \
    --net kind --tmpfs /tmp --tmpfs /run --publish 127.0.0.1::6443/TCP \
    -e FLUX_COMPAT_STANDIN_NODE="$node" -e FLUX_COMPAT_STANDIN_VERSION="$version" \
    -e FLUX_COMPAT_STANDIN_HELM_TEMPLATE="${STANDIN_HELM_TEMPLATE:-}" \
    -e FLUX_COMPAT_STANDIN_TLS_CLIENT="${STANDIN_TLS_CLIENT:-}" \
    -e PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    -v "$STANDIN_NODE_EXE:/kind/bin/node:ro"
  for d in /usr /lib /lib64 /bin /sbin /etc/ssl /etc/alternatives; do [ -e "$d" ] && set -- "$@" -v "$d:$d:ro"; done
  for d in ${STANDIN_MOUNTS:-}; do set -- "$@" -v "$d:$d:ro"; done
  [ -n "${STANDIN_FIREWALL_HOST:-}" ] && set -- "$@" --cap-add NET_ADMIN
  # The kind config's extraMounts (hostPath, then containerPath), in order.
  mounts=$(sed -n -e 's/^ *- hostPath: *"\{0,1\}\([^"]*\)"\{0,1\} *$/h \1/p' -e 's/^ *containerPath: *"\{0,1\}\([^"]*\)"\{0,1\} *$/c \1/p' "$config")
  host=
  while read -r kind_ path_; do
    case "$kind_" in h) host="$path_" ;; c) set -- "$@" -v "$host:$path_:ro" ;; esac
  done <<EOF
$mounts
EOF
  docker run "$@" "$image" /kind/bin/node >/dev/null || { echo "ERROR: failed to create cluster: docker run failed" >&2; exit 1; }
  if [ -n "${STANDIN_FIREWALL_HOST:-}" ]; then
    # Test fault: new connections from the node to the host are rejected, as a host firewall
    # (firewalld, ufw) rejects traffic from docker bridges; replies on published ports still flow.
    for gw in $(docker network inspect kind -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}'); do
      case "$gw" in *:*) continue ;; esac
      docker exec "$node" iptables -I OUTPUT -d "$gw" -p tcp --syn -j REJECT --reject-with icmp-host-prohibited \
        || { echo "ERROR: failed to create cluster: cannot install the host firewall fault" >&2; exit 1; }
    done
  fi
  secs=$(echo "$wait" | sed 's/s$//'); [ "$secs" -gt 0 ] 2>/dev/null || secs=60
  tries=$((secs * 10))
  until docker exec "$node" cat /etc/kubernetes/admin.conf >/dev/null 2>&1; do
    if [ "$(docker inspect -f '{{.State.Running}}' "$node" 2>/dev/null)" != true ] || [ "$tries" -le 0 ]; then
      docker logs "$node" >&2 2>&1
      echo "ERROR: failed to create cluster: the control plane of \"$name\" did not come up" >&2; exit 1
    fi
    tries=$((tries - 1)); sleep 0.1
  done
  kubeconfig_for > "${kubeconfig:-$HOME/.kube/config}" || exit 1
  echo "Set kubectl context to \"kind-$name\"" >&2
}

export_logs() {
  dir="${pos:-/tmp/kind-logs}"
  mkdir -p "$dir"
  docker info > "$dir/docker-info.txt" 2>&1
  for id in $(nodes); do
    n=$(docker inspect -f '{{.Name}}' "$id" | sed 's#^/##')
    mkdir -p "$dir/$n"
    docker inspect "$id" > "$dir/$n/inspect.json" 2>&1
    docker logs "$id" > "$dir/$n/serial.log" 2>&1
  done
  echo "Exported logs for cluster \"$name\" to:"; echo "$dir"
}

case "$cmd" in
  "version "*) echo "kind ${STANDIN_VERSION:-v0.33.0} go1.25.3 linux/amd64" ;;
  "create cluster")
    case "${STANDIN_CREATE:-}" in
      fail) echo "Creating cluster \"x\" ..." >&2
            echo "ERROR: failed to create cluster: could not find a log line that matches \"Reached target .*Multi-User System.*\"" >&2
            exit 1 ;;
      hang) echo $$ > "$STANDIN_PID"; exec sleep 1000 ;;
    esac
    if docker_mode; then create_docker; else echo "apiVersion: v1" > "$kubeconfig"; fi ;;
  "export logs")
    if docker_mode; then export_logs
    else mkdir -p "$pos"; echo docker > "$pos/docker-info.txt"; echo "Exported logs to: $pos"; fi ;;
  "delete cluster")
    echo "Deleting cluster \"$name\" ..." >&2
    if docker_mode; then ids=$(nodes); [ -z "$ids" ] || docker rm -f -v $ids >/dev/null; fi ;;
  "get clusters")
    if [ -n "${STANDIN_CLUSTERS:-}" ]; then cat "$STANDIN_CLUSTERS"
    else
      list=$(docker ps -a --filter "label=$label" --format "{{.Label \"$label\"}}" | sort -u)
      if [ -z "$list" ]; then echo "No kind clusters found." >&2; else echo "$list"; fi
    fi ;;
  "get kubeconfig")
    [ -n "$(nodes)" ] || { echo "ERROR: could not locate any control plane nodes for cluster named '$name'" >&2; exit 1; }
    kubeconfig_for ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
"#;

/// The stand-in written to a temporary directory, with its argv log.
pub struct Standin {
    pub dir: tempfile::TempDir,
}

impl Standin {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kind");
        std::fs::write(&p, SCRIPT).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("kind")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("argv.log")
    }

    /// The kind CLI running the stand-in with `extra` environment (scripted mode unless
    /// `STANDIN_NODE_EXE` is among them).
    pub fn cli(&self, extra: &[(&str, &str)]) -> KindCli {
        let mut env = vec![
            ("STANDIN_LOG".to_string(), self.log().display().to_string()),
            (
                "STANDIN_PID".to_string(),
                self.dir.path().join("pid").display().to_string(),
            ),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        KindCli {
            program: self.path(),
            env,
        }
    }

    /// Docker mode: nodes run `node_exe` (a test binary whose `main` starts with
    /// [`node_main`]); `mounts` are host paths the node needs at the same path (read-only).
    pub fn docker_cli(
        &self,
        node_exe: &Path,
        mounts: &[PathBuf],
        extra: &[(&str, &str)],
    ) -> KindCli {
        let exe = node_exe.display().to_string();
        let mounts = mounts
            .iter()
            .map(|m| m.display().to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let mut env = vec![
            ("STANDIN_NODE_EXE", exe.as_str()),
            ("STANDIN_MOUNTS", mounts.as_str()),
        ];
        env.extend_from_slice(extra);
        self.cli(&env)
    }

    pub fn argv(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Set in a node container: its name (also its hostname).
const NODE_ENV: &str = "FLUX_COMPAT_STANDIN_NODE";

/// When this process is a stand-in kind node (the node container runs the test binary that
/// started the cluster), serve the API server TEST DOUBLE as the node's API server on
/// `0.0.0.0:6443` and write `/etc/kubernetes/admin.conf`, until stopped; `None` otherwise. A test
/// binary's `main` calls this first.
pub fn node_main() -> Option<std::process::ExitCode> {
    let node = std::env::var(NODE_ENV).ok()?;
    let runtime = tokio::runtime::Runtime::new().expect("node runtime");
    runtime.block_on(serve_node(&node));
    Some(std::process::ExitCode::SUCCESS)
}

async fn serve_node(node: &str) {
    let version = std::env::var("FLUX_COMPAT_STANDIN_VERSION")
        .ok()
        .and_then(|v| parse_version(&v))
        .unwrap_or(Options::default().version);
    let tool = |var: &str| {
        std::env::var(var)
            .ok()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    };
    let server = ApiServer::start(Options {
        version,
        tls: true,
        tls_names: vec![node.to_string()],
        listen: std::net::SocketAddr::from(([0, 0, 0, 0], 6443)),
        flux_tools: super::apiserver::flux::common::Tools {
            helm_template: tool("FLUX_COMPAT_STANDIN_HELM_TEMPLATE"),
            tls_client: tool("FLUX_COMPAT_STANDIN_TLS_CLIENT"),
        },
        ..Options::default()
    })
    .await;
    // kubeadm's admin.conf names the node; `kind get kubeconfig` rewrites the server for the host.
    std::fs::create_dir_all("/etc/kubernetes").expect("create /etc/kubernetes");
    let conf = server.kubeconfig(&format!("https://{node}:6443"));
    std::fs::write("/etc/kubernetes/admin.conf.tmp", conf).expect("write admin.conf");
    std::fs::rename(
        "/etc/kubernetes/admin.conf.tmp",
        "/etc/kubernetes/admin.conf",
    )
    .expect("publish admin.conf");
    eprintln!("stand-in node {node}: API server double on 0.0.0.0:6443 (Kubernetes {version:?})");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// `v1.37.0` → (1, 37, 0).
fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v.trim_start_matches('v').split('.').map(|p| p.parse().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}
