//! The Flux stage of a cell, through the `flux` module: install the cell's channel at its Flux
//! version (manifests route or Flux Operator, pull secret from the run's registry token), then
//! verify every controller's Deployment image and running digest against the channel's pins.

use super::stages::{CellCtx, FluxStage, PhaseError, Properties};
use crate::errors::chain;
use crate::flux::credentials::{RegistryCredentials, Token};
use crate::flux::install::{InstallRequest, install};
use crate::flux::manifests::{Controller, ManifestSource};
use crate::flux::verify::{VerifyOptions, verify};
use crate::k8s::Kube;
use crate::model::FluxVersion;
use crate::model::Status;
use crate::model::matrix::{Channel, Matrix, Timeouts};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Where Flux is installed in every cell.
pub const NAMESPACE: &str = "flux-system";

pub struct ChannelStage {
    pub matrix: Arc<Matrix>,
    pub manifests: ManifestSource,
    /// User name sent with the registry token (ghcr.io accepts any non-empty name).
    pub registry_username: String,
    /// Install over a Flux the run did not create (`--replace-existing-flux`).
    pub replace_existing: bool,
    /// Controllers installed per cell, for the verify phase.
    installed: Mutex<BTreeMap<String, Vec<Controller>>>,
}

impl ChannelStage {
    pub fn new(matrix: Arc<Matrix>, manifests: ManifestSource, registry_username: String) -> Self {
        Self {
            matrix,
            manifests,
            registry_username,
            replace_existing: false,
            installed: Mutex::default(),
        }
    }

    /// Install over a Flux the run did not create (`--replace-existing-flux`).
    pub fn replacing_existing(mut self, replace: bool) -> Self {
        self.replace_existing = replace;
        self
    }

    async fn kube(ctx: &CellCtx) -> Result<Kube, PhaseError> {
        Kube::connect(&ctx.cluster.kubeconfig, &ctx.cluster.context)
            .await
            .map_err(|e| PhaseError::error(chain(&e)))
    }
}

/// What a cell installed from, for the reports and the attestation: the channel's registry and
/// Flux Operator variant, whether it promises FIPS, and the sha256 of the matrix and of the
/// distribution images file its pins came from.
pub fn channel_properties(m: &Matrix, channel: &Channel, flux: &FluxVersion) -> Properties {
    let mut p = Properties::new();
    p.insert("channel.registry".into(), channel.registry.clone());
    p.insert(
        "channel.operatorVariant".into(),
        channel.operator_variant.clone(),
    );
    p.insert("channel.fips".into(), channel.fips.to_string());
    p.insert("matrix.sha256".into(), m.sha256.clone());
    let file = channel
        .releases
        .get(flux)
        .and_then(|r| r.images_file.as_ref());
    if let Some(file) = file {
        p.insert("channel.imagesFile".into(), file.display().to_string());
        if let Some(sha) = m.images_file_sha256.get(file) {
            p.insert("channel.imagesFile.sha256".into(), sha.clone());
        }
    }
    p
}

impl FluxStage for ChannelStage {
    fn install<'a>(&'a self, ctx: &'a CellCtx) -> BoxFuture<'a, Result<Properties, PhaseError>> {
        Box::pin(async move {
            let channel = self.matrix.channel(&ctx.cell.channel).ok_or_else(|| {
                PhaseError::error(format!("the matrix has no channel `{}`", ctx.cell.channel))
            })?;
            let kube = Self::kube(ctx).await?;
            let credentials = ctx.registry_token.as_ref().map(|t| RegistryCredentials {
                username: self.registry_username.clone(),
                token: Token::new(t.expose()),
            });
            let req = InstallRequest {
                flux_version: &ctx.cell.flux,
                channel,
                components: &self.matrix.components,
                manifests: &self.manifests,
                credentials: credentials.as_ref(),
                namespace: NAMESPACE,
                // Shorter than the phase, so the wait's own error (what it last saw) wins.
                timeout: Timeouts::inner(ctx.timeouts.install),
                run_id: Some(&ctx.run_id),
                replace_existing: self.replace_existing,
            };
            match install(&kube, &req).await {
                Ok(done) => {
                    self.installed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(ctx.cell.id.clone(), done.controllers);
                    let mut props = done.properties;
                    props.extend(channel_properties(&self.matrix, channel, &ctx.cell.flux));
                    Ok(props)
                }
                Err(e) => Err(PhaseError {
                    status: e.status(),
                    message: chain(&e),
                    diagnostics: None,
                }),
            }
        })
    }

    fn verify<'a>(&'a self, ctx: &'a CellCtx) -> BoxFuture<'a, Result<Properties, PhaseError>> {
        Box::pin(async move {
            let controllers = self
                .installed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&ctx.cell.id)
                .ok_or_else(|| PhaseError::error("nothing was installed in this cell to verify"))?;
            let kube = Self::kube(ctx).await?;
            let options = VerifyOptions {
                // Shorter than the phase: a slow pull reports its own message and diagnostics.
                timeout: Timeouts::inner(ctx.timeouts.verify),
                artifacts_dir: Some(&ctx.artifacts_dir),
                scrub: ctx
                    .registry_token
                    .iter()
                    .map(|t| t.expose().to_string())
                    .collect(),
            };
            let v = verify(&kube, &controllers, &options).await;
            match v.status {
                Status::Pass => Ok(v.properties),
                status => Err(PhaseError {
                    status,
                    message: v.message,
                    diagnostics: v.diagnostics.map(|d| d.summary),
                }),
            }
        })
    }
}
