//! Installing a channel: the manifests route (release manifests rendered for the channel, pull
//! Secret first, server-side applied with CRDs established before their objects) or the Flux
//! Operator route (a FluxInstance, waited for until Ready). Returns the controllers to verify.

use super::credentials::{CredentialError, RegistryCredentials, pull_secret, registry_host};
use super::manifests::{
    self, Controller, ManifestError, ManifestSource, RenderError, RenderOptions,
};
use super::operator;
use crate::k8s::{ApplyError, ApplyOptions, Kube, ObjectRef, ResolveError, WaitError};
use crate::model::matrix::{Channel, ChannelRelease, InstallRoute};
use crate::model::{Component, FluxVersion, Status};
use kube::api::DynamicObject;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// What to install.
#[derive(Clone, Debug)]
pub struct InstallRequest<'a> {
    pub flux_version: &'a FluxVersion,
    pub channel: &'a Channel,
    pub components: &'a [Component],
    /// Where the release manifests come from (manifests route only).
    pub manifests: &'a ManifestSource,
    /// Required when the channel names a pull secret.
    pub credentials: Option<&'a RegistryCredentials>,
    /// The namespace Flux runs in, normally `flux-system`.
    pub namespace: &'a str,
    /// For CRDs to become established (manifests) or the FluxInstance to become ready (operator).
    pub timeout: Duration,
}

/// What was installed.
#[derive(Clone, Debug)]
pub struct Installed {
    pub route: InstallRoute,
    pub controllers: Vec<Controller>,
    pub applied: Vec<ObjectRef>,
    /// `flux.route`, `flux.version`, and for manifests `flux.manifests.origin` / `.sha256`.
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "install channel `{channel}`: it pins no images for Flux `{version}`; pinned versions: {known}"
    )]
    NoRelease {
        channel: String,
        version: String,
        known: String,
    },
    #[error(
        "install channel `{channel}`: it needs pull secret `{secret}` but no registry credentials were given"
    )]
    MissingCredentials { channel: String, secret: String },
    #[error("install channel `{channel}`")]
    Credentials {
        channel: String,
        #[source]
        source: CredentialError,
    },
    #[error(transparent)]
    Manifests(#[from] ManifestError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("install channel `{channel}`")]
    Apply {
        channel: String,
        #[source]
        source: Box<ApplyError>,
    },
    #[error(
        "install channel `{channel}` through the Flux Operator: the operator is not installed (the cluster serves no `FluxInstance` in `fluxcd.controlplane.io/v1`); install the Flux Operator first"
    )]
    OperatorMissing { channel: String },
    #[error("install channel `{channel}` through the Flux Operator")]
    InstanceNotReady {
        channel: String,
        #[source]
        source: Box<WaitError>,
    },
}

impl InstallError {
    /// A FluxInstance that stalls or never becomes ready is a product failure; everything else
    /// (bad input, missing operator, an API that refuses or is gone) is an error.
    pub fn status(&self) -> Status {
        match self {
            InstallError::InstanceNotReady { source, .. } => source.status(),
            _ => Status::Error,
        }
    }
}

fn release<'a>(req: &InstallRequest<'a>) -> Result<&'a ChannelRelease, InstallError> {
    req.channel
        .releases
        .get(req.flux_version)
        .ok_or_else(|| InstallError::NoRelease {
            channel: req.channel.name.clone(),
            version: req.flux_version.to_string(),
            known: req
                .channel
                .releases
                .keys()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn secret_object(req: &InstallRequest<'_>) -> Result<Option<DynamicObject>, InstallError> {
    let Some(name) = &req.channel.pull_secret else {
        return Ok(None);
    };
    let credentials = req
        .credentials
        .ok_or_else(|| InstallError::MissingCredentials {
            channel: req.channel.name.clone(),
            secret: name.clone(),
        })?;
    Ok(Some(pull_secret(
        name,
        req.namespace,
        registry_host(&req.channel.registry),
        credentials,
    )))
}

/// Install the channel by its configured route.
pub async fn install(kube: &Kube, req: &InstallRequest<'_>) -> Result<Installed, InstallError> {
    match req.channel.install {
        InstallRoute::Manifests => install_manifests(kube, req).await,
        InstallRoute::Operator => install_operator(kube, req).await,
    }
}

/// Server-side apply into the install namespace; failures name the channel.
async fn apply(
    kube: &Kube,
    req: &InstallRequest<'_>,
    objects: Vec<DynamicObject>,
) -> Result<Vec<ObjectRef>, InstallError> {
    let options = ApplyOptions {
        default_namespace: Some(req.namespace.to_string()),
        crd_timeout: req.timeout,
    };
    kube.apply_objects(objects, &options)
        .await
        .map_err(|source| InstallError::Apply {
            channel: req.channel.name.clone(),
            source: Box::new(source),
        })
}

async fn install_manifests(
    kube: &Kube,
    req: &InstallRequest<'_>,
) -> Result<Installed, InstallError> {
    let release = release(req)?;
    let secret = secret_object(req)?;
    let loaded = manifests::load(req.flux_version, req.manifests).await?;
    let rendered = manifests::render(
        &loaded.text,
        &loaded.origin,
        &RenderOptions {
            release,
            components: req.components,
            namespace: req.namespace,
            pull_secret: req.channel.pull_secret.as_deref(),
        },
    )?;
    let mut objects = rendered.objects;
    if let Some(secret) = secret {
        // First among the namespaced objects: the controllers' pulls need it from the start.
        objects.insert(0, secret);
    }
    let applied = apply(kube, req, objects).await?;
    let mut properties = BTreeMap::new();
    properties.insert("flux.route".into(), "manifests".into());
    properties.insert("flux.version".into(), req.flux_version.to_string());
    properties.insert("flux.manifests.origin".into(), loaded.origin);
    properties.insert("flux.manifests.sha256".into(), loaded.sha256);
    Ok(Installed {
        route: InstallRoute::Manifests,
        controllers: rendered.controllers,
        applied,
        properties,
    })
}

async fn install_operator(
    kube: &Kube,
    req: &InstallRequest<'_>,
) -> Result<Installed, InstallError> {
    let release = release(req)?;
    let missing: Vec<String> = req
        .components
        .iter()
        .filter(|c| !release.images.contains_key(c))
        .map(|c| format!("`{c}`"))
        .collect();
    if !missing.is_empty() {
        return Err(RenderError::MissingPins {
            source_name: format!("FluxInstance for channel `{}`", req.channel.name),
            missing: missing.join(", "),
        }
        .into());
    }
    if let Err(e) = kube
        .resolve(
            operator::FLUX_INSTANCE_API_VERSION,
            operator::FLUX_INSTANCE_KIND,
        )
        .await
    {
        return Err(match e {
            ResolveError::UnknownKind { .. } => InstallError::OperatorMissing {
                channel: req.channel.name.clone(),
            },
            other => InstallError::Apply {
                channel: req.channel.name.clone(),
                source: Box::new(ApplyError::Resolve {
                    object: format!(
                        "FluxInstance/{}/{}",
                        req.namespace,
                        operator::FLUX_INSTANCE_NAME
                    ),
                    source: other,
                }),
            },
        });
    }
    let namespace: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": req.namespace}
    }))
    .expect("a Namespace is a valid object");
    let mut objects = vec![namespace];
    objects.extend(secret_object(req)?);
    objects.push(operator::flux_instance(
        req.channel,
        req.flux_version,
        req.components,
        req.namespace,
    ));
    let applied = apply(kube, req, objects).await?;
    let instance = ObjectRef::new(
        operator::FLUX_INSTANCE_API_VERSION,
        operator::FLUX_INSTANCE_KIND,
        Some(req.namespace),
        operator::FLUX_INSTANCE_NAME,
    );
    kube.wait_ready(&instance, req.timeout)
        .await
        .map_err(|source| InstallError::InstanceNotReady {
            channel: req.channel.name.clone(),
            source: Box::new(source),
        })?;
    let controllers = req
        .components
        .iter()
        .map(|c| Controller {
            component: *c,
            deployment: ObjectRef::new("apps/v1", "Deployment", Some(req.namespace), c.name()),
            expected: release.images[c].clone(),
        })
        .collect();
    let mut properties = BTreeMap::new();
    properties.insert("flux.route".into(), "operator".into());
    properties.insert("flux.version".into(), req.flux_version.to_string());
    Ok(Installed {
        route: InstallRoute::Operator,
        controllers,
        applied,
        properties,
    })
}
