//! The fixtures phase of a cell: one fixture plane (git, Helm, OCI, webhook sink over TLS with a
//! per-run CA) per cell, reachable from the cell's cluster, kept until the cell is torn down.
//! Scenarios reach it through `planes()`. Before the phase ends the cluster must reach the plane
//! and the challenge endpoints (`reachability`), or the cell fails here with why.

use super::reachability::{self, Finding, Probed, Target};
use super::stages::{CellCtx, FixturePlane, PhaseError, Properties};
use crate::fips::tls::challenge::{ChallengeConfig, ChallengeSet};
use crate::fixtures::Credentials;
use crate::fixtures::plane::{Plane, PlaneConfig};
use crate::model::matrix::{Matrix, ProviderKind};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Environment variable naming the address an existing cluster reaches the harness on.
pub const ADVERTISE_ENV: &str = "FLUX_COMPAT_FIXTURES_ADVERTISE";

/// What a cell's scenarios reach: the fixture plane and the FIPS TLS challenge endpoints.
#[derive(Clone)]
pub struct CellFixtures {
    pub plane: Arc<Plane>,
    /// `None` when the challenge listeners could not start (the `fips-tls` scenario then errors).
    pub challenges: Option<Arc<ChallengeSet>>,
    /// The host the cluster reaches both on.
    pub host: String,
}

/// Running fixtures by cell id.
#[derive(Default)]
pub struct Planes(Mutex<HashMap<String, CellFixtures>>);

impl Planes {
    pub fn get(&self, cell: &str) -> Option<CellFixtures> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(cell)
            .cloned()
    }

    fn insert(&self, cell: &str, plane: CellFixtures) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cell.to_string(), plane);
    }

    fn remove(&self, cell: &str) -> Option<CellFixtures> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(cell)
    }
}

pub struct FixtureStage {
    pub matrix: Arc<Matrix>,
    /// The `fixtures/` directory served.
    pub fixtures_dir: PathBuf,
    /// The host existing clusters reach this machine on (`FLUX_COMPAT_FIXTURES_ADVERTISE`).
    pub advertise: Option<String>,
    planes: Arc<Planes>,
}

impl FixtureStage {
    pub fn new(matrix: Arc<Matrix>, fixtures_dir: PathBuf, advertise: Option<String>) -> Self {
        Self {
            matrix,
            fixtures_dir,
            advertise,
            planes: Arc::default(),
        }
    }

    /// The planes, shared with the scenario stage.
    pub fn planes(&self) -> Arc<Planes> {
        self.planes.clone()
    }

    async fn config(&self, ctx: &CellCtx) -> Result<PlaneConfig, PhaseError> {
        let provider = self
            .matrix
            .providers
            .iter()
            .find(|p| p.name == ctx.cell.provider);
        match provider.map(|p| &p.kind) {
            Some(ProviderKind::Existing { .. }) => {
                let advertise = self.advertise.clone().ok_or_else(|| {
                    PhaseError::error(format!(
                        "an existing cluster must reach the fixture plane on an address of this machine: set {ADVERTISE_ENV} to that host or IP"
                    ))
                })?;
                // Only the advertised address, never every interface: the cluster reaches that
                // one, a neighbour on another network does not reach the plane at all.
                let ip = advertised_ip(&advertise).await.map_err(PhaseError::error)?;
                Ok(PlaneConfig {
                    listen: SocketAddr::new(ip, 0),
                    advertise,
                    auth: Some(per_run_credentials("flux-compat")),
                    push: Some(per_run_credentials("flux-compat-push")),
                    ..PlaneConfig::loopback(&self.fixtures_dir)
                })
            }
            // kind nodes reach the host on the gateway of docker network `kind`.
            _ => PlaneConfig::kind(&self.fixtures_dir).await.map_err(|e| {
                PhaseError::error(format!(
                    "find the kind network gateway for the fixture plane: {e}"
                ))
            }),
        }
    }
}

/// What the cluster must reach: the plane, and every TLS challenge listener (same host).
fn targets(host: &str, plane_port: u16, challenges: Option<&ChallengeSet>) -> Vec<Target> {
    let host = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_string(),
    };
    let mut out = vec![Target {
        what: "fixture plane".into(),
        host: host.clone(),
        port: plane_port,
    }];
    for e in challenges.map(ChallengeSet::endpoints).unwrap_or_default() {
        out.push(Target {
            what: format!("TLS challenge `{}`", e.challenge.id()),
            host: host.clone(),
            port: e.addr.port(),
        });
    }
    out
}

impl FixtureStage {
    /// Probe `targets` from the node (kind cells: every target) and from pods (the plane and the
    /// first challenge listener: the pod network path is the same for every port of the host).
    async fn probe(&self, ctx: &CellCtx, targets: &[Target]) -> Vec<Probed> {
        let is_kind = self
            .matrix
            .providers
            .iter()
            .find(|p| p.name == ctx.cell.provider)
            .is_some_and(|p| matches!(p.kind, ProviderKind::Kind));
        let node = format!("{}-control-plane", ctx.cluster.name);
        let docker = crate::cluster::docker::Docker::default();
        let from_node = async {
            if is_kind {
                reachability::from_node(&docker, &node, targets, &ctx.cancel).await
            } else {
                Vec::new()
            }
        };
        let from_pods = async {
            let kube = match crate::k8s::Kube::connect(
                &ctx.cluster.kubeconfig,
                &ctx.cluster.context,
            )
            .await
            {
                Ok(k) => k,
                Err(e) => {
                    return vec![Probed {
                        from: "pod",
                        target: targets[0].clone(),
                        finding: Finding::NotProbed(crate::errors::chain(&e)),
                    }];
                }
            };
            let mut out = Vec::new();
            for (i, t) in targets.iter().take(2).enumerate() {
                out.push(
                    reachability::from_pod(&kube, &format!("{}/{}", ctx.run_id, ctx.cell.id), i, t)
                        .await,
                );
            }
            out
        };
        let (mut found, pods) = tokio::join!(from_node, from_pods);
        found.extend(pods);
        found
    }
}

/// Fresh random credentials for one plane, registered with the redaction layer at once.
fn per_run_credentials(username: &str) -> Credentials {
    let password = crate::fixtures::http::random_hex(24);
    crate::redact::register_credentials(username, &password);
    Credentials {
        username: username.to_string(),
        password,
    }
}

/// The IP to listen on for an advertised host: the literal address, or what the name resolves to.
async fn advertised_ip(advertise: &str) -> Result<IpAddr, String> {
    let host = advertise.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| format!("resolve {ADVERTISE_ENV} host `{host}`: {e}"))?
        .map(|a| a.ip())
        .next()
        .ok_or_else(|| format!("resolve {ADVERTISE_ENV} host `{host}`: no address"))
}

impl FixturePlane for FixtureStage {
    fn up<'a>(&'a self, ctx: &'a CellCtx) -> BoxFuture<'a, Result<Properties, PhaseError>> {
        Box::pin(async move {
            let mut config = self.config(ctx).await?;
            config.ca_dir = Some(ctx.work_dir.join("fixtures-ca"));
            let (listen, host) = (config.listen.ip(), config.advertise.clone());
            let plane = Plane::start(config)
                .await
                .map_err(|e| PhaseError::error(format!("start the fixture plane: {e}")))?;
            let mut props = Properties::new();
            for (k, v) in plane.template_variables() {
                props.insert(k, v);
            }
            // One listener per FIPS TLS challenge, on the address the cluster reaches the plane on.
            let challenge_config = ChallengeConfig {
                listen,
                san: vec![host.clone()],
                ..ChallengeConfig::default()
            };
            let started =
                tokio::task::spawn_blocking(move || ChallengeSet::start(&challenge_config))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
            let challenges = match started {
                Ok(set) => Some(Arc::new(set)),
                Err(e) => {
                    props.insert("fixtures.challenges.error".into(), e);
                    None
                }
            };
            let targets = targets(
                &host,
                plane.endpoints().listen.port(),
                challenges.as_deref(),
            );
            self.planes.insert(
                &ctx.cell.id,
                CellFixtures {
                    plane: Arc::new(plane),
                    challenges,
                    host,
                },
            );
            let planes = self.planes.clone();
            let cell = ctx.cell.id.clone();
            // Dropping the last handle stops the listeners and removes the plane's work directory.
            ctx.cleanup.register("stop the fixture plane", move || {
                Box::pin(async move {
                    drop(planes.remove(&cell));
                    Ok(())
                })
            });
            let found = self.probe(ctx, &targets).await;
            let all = found
                .iter()
                .map(Probed::describe)
                .collect::<Vec<_>>()
                .join("\n");
            match reachability::verdict(&found) {
                Some(message) => Err(PhaseError::error(message).with_diagnostics(all)),
                None => {
                    props.insert("fixtures.reachability".into(), all);
                    Ok(props)
                }
            }
        })
    }
}
