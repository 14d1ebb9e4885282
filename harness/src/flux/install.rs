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
    /// The run every applied object is labelled with (`flux-compat.io/run`), so teardown of an
    /// existing cluster finds and removes all of it, pull Secret included.
    pub run_id: Option<&'a str>,
    /// Install over a Flux this run did not create (`--replace-existing-flux`); without it such
    /// an install is refused, naming what it would replace.
    pub replace_existing: bool,
}

/// The label every object the harness creates carries, with the run id as value.
pub const RUN_LABEL: &str = "flux-compat.io/run";

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
    #[error(
        "install channel `{channel}`: Flux is already installed in this cluster and this run did not create it: {found}; pass `--replace-existing-flux` to install over it (the objects are overwritten, labelled with this run and removed at teardown)"
    )]
    ExistingFlux { channel: String, found: String },
    #[error("install channel `{channel}`: check for a Flux already installed")]
    Inspect {
        channel: String,
        #[source]
        source: kube::Error,
    },
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

/// Install the channel by its configured route. A Flux this run did not create is refused
/// unless `replace_existing`; then what was replaced is listed in `flux.replaced`.
pub async fn install(kube: &Kube, req: &InstallRequest<'_>) -> Result<Installed, InstallError> {
    let found = existing_flux(kube, req).await?;
    if !found.is_empty() && !req.replace_existing {
        return Err(InstallError::ExistingFlux {
            channel: req.channel.name.clone(),
            found: found.join(", "),
        });
    }
    if !found.is_empty() {
        tracing::warn!(
            channel = %req.channel.name,
            replaced = %found.join(", "),
            "installing over a Flux this run did not create; it is removed at teardown"
        );
    }
    let mut installed = match req.channel.install {
        InstallRoute::Manifests => install_manifests(kube, req).await,
        InstallRoute::Operator => install_operator(kube, req).await,
    }?;
    if !found.is_empty() {
        installed
            .properties
            .insert("flux.replaced".into(), found.join(", "));
    }
    Ok(installed)
}

fn owned_by_run(labels: Option<&BTreeMap<String, String>>, run_id: Option<&str>) -> bool {
    run_id.is_some_and(|id| labels.and_then(|l| l.get(RUN_LABEL)).map(String::as_str) == Some(id))
}

/// Flux objects in the cluster that this run did not create: the install namespace, Flux CRDs
/// and controller Deployments. Empty on a fresh cluster, and when there is no run to own them.
async fn existing_flux(kube: &Kube, req: &InstallRequest<'_>) -> Result<Vec<String>, InstallError> {
    // Without a run there is no owner to compare with (library callers installing directly).
    if req.run_id.is_none() {
        return Ok(Vec::new());
    }
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, ListParams};
    let err = |source| InstallError::Inspect {
        channel: req.channel.name.clone(),
        source,
    };
    let client = kube.client().clone();
    let mut found = Vec::new();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if let Some(ns) = namespaces.get_opt(req.namespace).await.map_err(err)?
        && !owned_by_run(ns.metadata.labels.as_ref(), req.run_id)
    {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), req.namespace);
        let names: Vec<&str> = req.components.iter().map(|c| c.name()).collect();
        let list = deployments
            .list(&ListParams::default())
            .await
            .map_err(err)?;
        let foreign: Vec<String> = list
            .items
            .iter()
            .filter(|d| !owned_by_run(d.metadata.labels.as_ref(), req.run_id))
            .filter_map(|d| d.metadata.name.clone())
            .filter(|n| names.contains(&n.as_str()))
            .collect();
        found.push(format!("namespace `{}`", req.namespace));
        found.extend(
            foreign
                .iter()
                .map(|n| format!("Deployment `{}/{n}`", req.namespace)),
        );
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let foreign: Vec<String> = crds
        .list(&ListParams::default())
        .await
        .map_err(err)?
        .items
        .into_iter()
        .filter(|c| !owned_by_run(c.metadata.labels.as_ref(), req.run_id))
        .filter_map(|c| c.metadata.name)
        // The Flux Operator's own CRDs are its prerequisite, not an installed Flux.
        .filter(|n| n.ends_with(".toolkit.fluxcd.io"))
        .collect();
    if !foreign.is_empty() {
        found.push(format!(
            "{} Flux CRD(s) ({})",
            foreign.len(),
            foreign
                .iter()
                .take(3)
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(found)
}

/// Label every object with the run, so teardown and `gc` find it.
fn label_all(objects: &mut [DynamicObject], run_id: Option<&str>) {
    let Some(id) = run_id else { return };
    for o in objects {
        o.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(RUN_LABEL.to_string(), id.to_string());
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
    label_all(&mut objects, req.run_id);
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
    label_all(&mut objects, req.run_id);
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
