//! The image cache: one pull-through registry mirror per upstream (the CNCF distribution registry
//! in proxy mode, which proxies a single remote), started as containers through testcontainers.
//! kind nodes reach them on kind's docker network via containerd `hosts.toml`, so every image is
//! pulled from upstream at most once per run. Upstream traffic is read from the registry's own
//! proxy counters (`/debug/vars`: `registry.proxy.{blobs,manifests}`: requests, cache hits,
//! misses, bytes pulled from upstream) and recorded in the run's report properties.
//!
//! The mirrors hold no registry credentials (they would be readable with `docker inspect`), so
//! private images of enterprise channels are not cached: the `hosts.toml` keeps the upstream as
//! the `server`, which containerd uses with the pod's pull secret when the mirror cannot serve.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use testcontainers::core::{ContainerPort, IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// The registry listens here inside the container.
pub const REGISTRY_PORT: u16 = 5000;
/// The registry's debug server (expvar counters).
pub const DEBUG_PORT: u16 = 5001;
/// Every mirror container carries this label (value: the upstream host), so `gc` finds leftovers.
pub const LABEL: &str = "flux-compat.io/mirror";
/// The default mirror image: distribution v2 keeps the expvar proxy counters the run reads.
pub const DEFAULT_IMAGE: &str = "registry:2.8.3";

/// One upstream registry to mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// The name images use (`ghcr.io`, `docker.io`), i.e. the containerd `certs.d` directory.
    pub host: String,
    /// Where the registry API is (`https://ghcr.io`, `https://registry-1.docker.io`).
    pub remote_url: String,
}

impl Upstream {
    /// The two registries Flux and the fixtures pull from.
    pub fn defaults() -> Vec<Upstream> {
        vec![
            Upstream {
                host: "ghcr.io".into(),
                remote_url: "https://ghcr.io".into(),
            },
            Upstream {
                host: "docker.io".into(),
                remote_url: "https://registry-1.docker.io".into(),
            },
        ]
    }
}

/// How to start the mirrors.
#[derive(Clone, Debug)]
pub struct MirrorSpec {
    /// `name:tag` of a distribution registry image.
    pub image: String,
    /// Prefix of the container names (`flux-compat-<run>`).
    pub name_prefix: String,
    pub upstreams: Vec<Upstream>,
    /// A docker network to join at start (tests); kind's network is joined after it exists.
    pub network: Option<String>,
    pub startup_timeout: Duration,
}

/// The mirrors could not be started or read.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("parse mirror image `{0}`: expected `name:tag`")]
    Image(String),
    #[error("start the registry mirror for `{upstream}`")]
    Start {
        upstream: String,
        #[source]
        source: testcontainers::TestcontainersError,
    },
    #[error("read the counters of the mirror for `{upstream}`: {message}")]
    Stats { upstream: String, message: String },
    #[error("write `{path}`")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One running mirror.
pub struct RunningMirror {
    pub upstream: Upstream,
    /// Container name, resolvable on every docker network it joins.
    pub name: String,
    /// Published host port of the registry API.
    pub host_port: u16,
    pub debug_port: u16,
    container: ContainerAsync<GenericImage>,
}

/// Upstream pulls counted by one mirror.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Blob requests clients made to the mirror (distribution 2.8 counts a miss twice here).
    pub blob_requests: u64,
    /// Raw `Hits`/`Misses` as the registry reports them. Distribution 2.8 increments `Hits` for
    /// every blob sent to a client and never `Misses`, so they are kept but not interpreted;
    /// `bytes_pulled` is the reliable measure of upstream traffic.
    pub blob_hits: u64,
    pub blob_misses: u64,
    pub manifest_requests: u64,
    pub manifest_misses: u64,
    pub bytes_pulled: u64,
}

/// All mirrors of a run. Dropping it removes the containers (testcontainers), so a panic
/// leaks none.
pub struct Mirrors {
    pub mirrors: Vec<RunningMirror>,
}

fn split_image(image: &str) -> Result<(String, String), MirrorError> {
    // The tag follows the last `:` after the last `/` (a registry host may carry a port).
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) if i + 1 < image.len() - slash => Ok((
            image[..slash + i].to_string(),
            image[slash + i + 1..].to_string(),
        )),
        _ => Err(MirrorError::Image(image.to_string())),
    }
}

impl Mirrors {
    /// Start one mirror per upstream.
    pub async fn start(spec: &MirrorSpec) -> Result<Mirrors, MirrorError> {
        let (repo, tag) = split_image(&spec.image)?;
        let mut mirrors = Vec::new();
        for up in &spec.upstreams {
            let name = format!(
                "{}-mirror-{}",
                spec.name_prefix,
                super::names::sanitise(&up.host)
            );
            let image = GenericImage::new(repo.clone(), tag.clone())
                .with_exposed_port(REGISTRY_PORT.tcp())
                .with_exposed_port(DEBUG_PORT.tcp())
                .with_wait_for(WaitFor::message_on_stderr("listening on"));
            // Configuration by environment works for every distribution registry image and
            // keeps the mirror stateless: nothing to mount.
            let mut req = image
                .with_container_name(&name)
                .with_label(LABEL, &up.host)
                .with_env_var("REGISTRY_PROXY_REMOTEURL", &up.remote_url)
                .with_env_var("REGISTRY_HTTP_ADDR", format!("0.0.0.0:{REGISTRY_PORT}"))
                .with_env_var("REGISTRY_HTTP_DEBUG_ADDR", format!("0.0.0.0:{DEBUG_PORT}"))
                .with_env_var("REGISTRY_STORAGE_DELETE_ENABLED", "true")
                .with_startup_timeout(spec.startup_timeout);
            if let Some(n) = &spec.network {
                req = req.with_network(n);
            }
            let container = req.start().await.map_err(|source| MirrorError::Start {
                upstream: up.host.clone(),
                source,
            })?;
            let port = |p: u16| {
                let container = &container;
                async move { container.get_host_port_ipv4(ContainerPort::Tcp(p)).await }
            };
            let host_port = port(REGISTRY_PORT)
                .await
                .map_err(|source| MirrorError::Start {
                    upstream: up.host.clone(),
                    source,
                })?;
            let debug_port = port(DEBUG_PORT)
                .await
                .map_err(|source| MirrorError::Start {
                    upstream: up.host.clone(),
                    source,
                })?;
            mirrors.push(RunningMirror {
                upstream: up.clone(),
                name,
                host_port,
                debug_port,
                container,
            });
        }
        Ok(Mirrors { mirrors })
    }

    /// Write `<dir>/<upstream>/hosts.toml` for every mirror: containerd tries the mirror first
    /// and falls back to the upstream itself.
    pub fn write_hosts_dir(&self, dir: &Path) -> Result<(), MirrorError> {
        for m in &self.mirrors {
            let d = dir.join(&m.upstream.host);
            let path = d.join("hosts.toml");
            let w = |source| MirrorError::Write {
                path: path.display().to_string(),
                source,
            };
            std::fs::create_dir_all(&d).map_err(w)?;
            std::fs::write(&path, hosts_toml(&m.upstream.remote_url, &m.name)).map_err(w)?;
        }
        Ok(())
    }

    pub fn container_names(&self) -> Vec<String> {
        self.mirrors.iter().map(|m| m.name.clone()).collect()
    }

    /// The upstream pulls so far, per upstream host.
    pub async fn stats(&self) -> Result<BTreeMap<String, ProxyStats>, MirrorError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| MirrorError::Stats {
                upstream: "*".into(),
                message: e.to_string(),
            })?;
        let mut out = BTreeMap::new();
        for m in &self.mirrors {
            let err = |message: String| MirrorError::Stats {
                upstream: m.upstream.host.clone(),
                message,
            };
            let url = format!("http://127.0.0.1:{}/debug/vars", m.debug_port);
            let v: serde_json::Value = client
                .get(&url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| err(e.to_string()))?
                .json()
                .await
                .map_err(|e| err(e.to_string()))?;
            out.insert(
                m.upstream.host.clone(),
                parse_stats(&v).ok_or_else(|| err("no `registry.proxy` counters".into()))?,
            );
        }
        Ok(out)
    }

    /// Stop and remove the containers.
    pub async fn stop(self) {
        for m in self.mirrors {
            let _ = m.container.rm().await;
        }
    }
}

/// containerd `hosts.toml` routing one upstream through a mirror container.
pub fn hosts_toml(remote_url: &str, mirror_name: &str) -> String {
    format!(
        "server = \"{remote_url}\"\n\n[host.\"http://{mirror_name}:{REGISTRY_PORT}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
    )
}

/// Read the proxy counters from a distribution registry's expvar JSON.
pub fn parse_stats(v: &serde_json::Value) -> Option<ProxyStats> {
    let p = &v["registry"]["proxy"];
    let n = |kind: &str, key: &str| p[kind][key].as_u64();
    Some(ProxyStats {
        blob_requests: n("blobs", "Requests")?,
        blob_hits: n("blobs", "Hits")?,
        blob_misses: n("blobs", "Misses")?,
        manifest_requests: n("manifests", "Requests")?,
        manifest_misses: n("manifests", "Misses")?,
        bytes_pulled: n("blobs", "BytesPulled").unwrap_or(0)
            + n("manifests", "BytesPulled").unwrap_or(0),
    })
}

/// Report properties for the run: `imageCache.<host>.bytesPulledFromUpstream` and friends.
pub fn stats_properties(stats: &BTreeMap<String, ProxyStats>) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    for (host, s) in stats {
        p.insert(
            format!("imageCache.{host}.upstreamManifestPulls"),
            s.manifest_misses.to_string(),
        );
        p.insert(
            format!("imageCache.{host}.blobRequests"),
            s.blob_requests.to_string(),
        );
        p.insert(
            format!("imageCache.{host}.bytesPulledFromUpstream"),
            s.bytes_pulled.to_string(),
        );
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_at_the_tag() {
        assert_eq!(
            split_image("localhost:5000/reg:2.8").unwrap(),
            ("localhost:5000/reg".into(), "2.8".into())
        );
        assert!(split_image("localhost:5000/reg").is_err());
    }

    #[test]
    fn hosts_toml_falls_back_to_upstream() {
        let t = hosts_toml("https://ghcr.io", "flux-compat-r-mirror-ghcr.io");
        assert!(t.starts_with("server = \"https://ghcr.io\""));
        assert!(t.contains("[host.\"http://flux-compat-r-mirror-ghcr.io:5000\"]"));
    }

    #[test]
    fn stats_come_from_expvar() {
        let v = serde_json::json!({"registry": {"proxy": {
            "blobs": {"Requests": 4, "Hits": 2, "Misses": 2, "BytesPulled": 10},
            "manifests": {"Requests": 2, "Hits": 0, "Misses": 2, "BytesPulled": 1}}}});
        let s = parse_stats(&v).unwrap();
        assert_eq!((s.blob_hits, s.blob_misses), (2, 2));
        assert_eq!(s.bytes_pulled, 11);
        assert!(parse_stats(&serde_json::json!({})).is_none());
    }
}
