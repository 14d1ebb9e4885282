//! The `verify-fips` phase of a cell: every controller image the channel pins is pulled and its
//! entrypoint binary classified (FIPS family, Go version, base image); it must match what the
//! channel declares, and the running controller Pods must not switch FIPS mode off or on through
//! `GODEBUG` (a native build with `fips140=off` is not FIPS; a BoringCrypto build with
//! `fips140=on` crashes). Image pulls are I/O on the runtime; classification runs on rayon.

use super::stages::{CellCtx, FipsEvidence, PhaseError, Properties};
use crate::fips::inspect::channel::{check_base, check_fips, properties};
use crate::fips::inspect::classify::Family;
use crate::fips::inspect::image::{Credentials, ImageRef, Platform, Registry, analyse, pull};
use crate::fips::inspect::podcheck::check_godebug;
use crate::k8s::Kube;
use crate::model::Status;
use crate::model::matrix::Matrix;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::sync::Arc;

pub struct FipsStage {
    pub matrix: Arc<Matrix>,
    /// User name sent with the registry token.
    pub registry_username: String,
    /// Plain HTTP registries (loopback test registries only).
    pub plain_http: bool,
}

/// The node platform: kind nodes run the host's architecture.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("linux/{arch}")
}

/// `GODEBUG` of each container of the Pods of one controller (`app=<component>`), by container.
pub async fn controller_godebug(
    kube: &Kube,
    namespace: &str,
    component: &str,
) -> Result<Vec<(String, Option<String>)>, kube::Error> {
    let pods: Api<Pod> = Api::namespaced(kube.client().clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels(&format!("app={component}")))
        .await?;
    let mut out = Vec::new();
    for pod in list {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        for c in pod.spec.map(|s| s.containers).unwrap_or_default() {
            let godebug = c
                .env
                .unwrap_or_default()
                .into_iter()
                .find(|e| e.name == "GODEBUG")
                .and_then(|e| e.value);
            out.push((format!("{pod_name}/{}", c.name), godebug));
        }
    }
    Ok(out)
}

impl FipsEvidence for FipsStage {
    fn check<'a>(&'a self, ctx: &'a CellCtx) -> BoxFuture<'a, Result<Properties, PhaseError>> {
        Box::pin(async move {
            let channel = self.matrix.channel(&ctx.cell.channel).ok_or_else(|| {
                PhaseError::error(format!("the matrix has no channel `{}`", ctx.cell.channel))
            })?;
            let release = channel.releases.get(&ctx.cell.flux).ok_or_else(|| {
                PhaseError::error(format!(
                    "channel `{}` pins no images for Flux {}",
                    channel.name, ctx.cell.flux
                ))
            })?;
            let creds = Credentials {
                username: ctx
                    .registry_token
                    .as_ref()
                    .map(|_| self.registry_username.clone()),
                secret: ctx.registry_token.as_ref().map(|t| t.expose().to_string()),
            };
            let registry = Registry::new(self.plain_http, creds);
            let platform =
                Platform::parse(&host_platform()).map_err(|e| PhaseError::error(e.to_string()))?;
            let kube = Kube::connect(&ctx.cluster.kubeconfig, &ctx.cluster.context)
                .await
                .map_err(|e| PhaseError::error(format!("connect to the cell's cluster: {e}")))?;
            let mut props = Properties::new();
            let (mut failures, mut errors) = (Vec::new(), Vec::new());
            for component in &self.matrix.components {
                let Some(pin) = release.images.get(component) else {
                    continue;
                };
                let reference = pin.reference();
                let inspected = match ImageRef::parse(&reference) {
                    Err(e) => Err(e.to_string()),
                    Ok(r) => match pull(&registry, &r, &platform).await {
                        Err(e) => Err(e.to_string()),
                        Ok(pulled) => {
                            let reference = reference.clone();
                            tokio::task::spawn_blocking(move || analyse(&reference, pulled))
                                .await
                                .map_err(|e| e.to_string())
                                .and_then(|r| r.map_err(|e| e.to_string()))
                        }
                    },
                };
                let i = match inspected {
                    Ok(i) => i,
                    Err(e) => {
                        errors.push(format!("inspect `{reference}`: {e}"));
                        continue;
                    }
                };
                for (k, v) in properties(&reference, Some(&i)) {
                    props.insert(format!("fips.{component}.{k}"), v);
                }
                if let Some(mode) = &i.binary.native_mode {
                    props.insert(format!("fips.{component}.nativeMode"), mode.clone());
                }
                for c in [
                    check_fips(&channel.name, channel.fips, component.name(), &i),
                    check_base(&channel.name, channel.base, component.name(), &i),
                ] {
                    if c.status != Status::Pass {
                        failures.push(c.message);
                    }
                }
                let family: Family = i.binary.family;
                match controller_godebug(&kube, super::flux_stage::NAMESPACE, component.name())
                    .await
                {
                    Err(e) => errors.push(format!("read the `{component}` Pods: {e}")),
                    Ok(containers) if containers.is_empty() => {
                        errors.push(format!("no running Pod of `{component}` to cross-check"))
                    }
                    Ok(containers) => {
                        for (container, godebug) in containers {
                            if let Err(f) = check_godebug(&container, family, godebug.as_deref()) {
                                failures.push(f.to_string());
                            }
                        }
                    }
                }
            }
            // A product failure outranks an infrastructure error; a check that could not run is never a pass.
            if !failures.is_empty() {
                Err(PhaseError::fail(failures.join("; ")))
            } else if !errors.is_empty() {
                Err(PhaseError::error(errors.join("; ")))
            } else {
                Ok(props)
            }
        })
    }
}
