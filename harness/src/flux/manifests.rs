//! The manifests route's input: the Flux release `install.yaml` (downloaded once per version into
//! a cache with its sha256 recorded, or read from a local path), rendered for a channel: unselected
//! components dropped, every controller image pinned to the channel's `repo:tag@sha256:...`, the
//! pull secret referenced, and the source-watcher feature gate set as `flux install` does.

use crate::k8s::{ObjectRef, ParseError, parse_documents};
use crate::model::matrix::{ChannelRelease, ImagePin};
use crate::model::{Component, FluxVersion};
use kube::api::DynamicObject;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Where Flux release assets are downloaded from.
pub const RELEASES_URL: &str = "https://github.com/fluxcd/flux2/releases/download";

/// The label Flux puts on every per-component object.
const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// Where the install manifests come from.
#[derive(Clone, Debug)]
pub enum ManifestSource {
    /// `<base_url>/<version>/install.yaml`, cached under `cache_dir/flux/<version>/`.
    Release {
        base_url: String,
        cache_dir: PathBuf,
    },
    /// A local file (air-gapped runs, tests).
    File(PathBuf),
    /// A local directory laid out like the download cache, `<dir>/<version>/install.yaml`, or
    /// flat, `<dir>/install-<version>.yaml` (air-gapped runs that need several Flux versions, such
    /// as upgrade scenarios).
    Dir(PathBuf),
}

/// The harness's cache directory: `$XDG_CACHE_HOME/flux-compat`, else `~/.cache/flux-compat`.
/// Release manifests land in `<it>/flux/<version>/install.yaml`, a valid [`ManifestSource::Dir`].
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("flux-compat")
}

/// The install manifest of `version` in a local directory of either layout: the cache layout
/// when present, else the flat one (named in errors when neither exists).
fn in_dir(dir: &Path, version: &FluxVersion) -> PathBuf {
    let nested = dir.join(version.to_string()).join("install.yaml");
    let flat = dir.join(format!("install-{version}.yaml"));
    if !nested.is_file() && flat.is_file() {
        flat
    } else {
        nested
    }
}

impl ManifestSource {
    /// The GitHub release asset, cached under `cache_dir`.
    pub fn github(cache_dir: impl Into<PathBuf>) -> Self {
        ManifestSource::Release {
            base_url: RELEASES_URL.to_string(),
            cache_dir: cache_dir.into(),
        }
    }
}

/// Loaded install manifests.
#[derive(Clone, Debug)]
pub struct Manifests {
    pub text: String,
    /// `sha256:<hex>` of `text`.
    pub sha256: String,
    /// The URL or path they came from.
    pub origin: String,
    /// Whether this load downloaded them (false: cache or local file).
    pub downloaded: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("read Flux install manifests `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("download Flux install manifests `{url}`")]
    Download {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("download Flux install manifests `{url}`: the server answered {status}")]
    Status { url: String, status: u16 },
    #[error(
        "verify Flux install manifests `{url}`: the release checksums `{checksums}` list no `install.yaml`"
    )]
    NotListed { url: String, checksums: String },
    #[error(
        "verify Flux install manifests `{url}`: their sha256 `{actual}` differs from `{expected}` in the release checksums `{checksums}`"
    )]
    Mismatch {
        url: String,
        checksums: String,
        expected: String,
        actual: String,
    },
    #[error("cache Flux install manifests in `{path}`")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "use cached Flux install manifests `{path}`: their sha256 `{actual}` differs from the recorded `{recorded}`; delete the cache entry to download them again"
    )]
    Tampered {
        path: PathBuf,
        recorded: String,
        actual: String,
    },
}

fn sha256(text: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

/// Manifests from a local file (no download, no cache).
async fn read_local(path: &std::path::Path) -> Result<Manifests, ManifestError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Manifests {
        sha256: sha256(&text),
        text,
        origin: path.display().to_string(),
        downloaded: false,
    })
}

/// Load the install manifests of `version` from `source`; a release download happens at most
/// once per version and cache directory.
pub async fn load(
    version: &FluxVersion,
    source: &ManifestSource,
) -> Result<Manifests, ManifestError> {
    match source {
        ManifestSource::Dir(dir) => read_local(&in_dir(dir, version)).await,
        ManifestSource::File(path) => read_local(path).await,
        ManifestSource::Release {
            base_url,
            cache_dir,
        } => {
            let url = format!("{}/{version}/install.yaml", base_url.trim_end_matches('/'));
            let dir = cache_dir.join("flux").join(version.to_string());
            let file = dir.join("install.yaml");
            let sum_file = dir.join("install.yaml.sha256");
            if let (Ok(text), Ok(recorded)) = (
                tokio::fs::read_to_string(&file).await,
                tokio::fs::read_to_string(&sum_file).await,
            ) {
                let (recorded, actual) = (recorded.trim().to_string(), sha256(&text));
                if recorded != actual {
                    return Err(ManifestError::Tampered {
                        path: file,
                        recorded,
                        actual,
                    });
                }
                return Ok(Manifests {
                    text,
                    sha256: actual,
                    origin: url,
                    downloaded: false,
                });
            }
            let text = download(&url).await?;
            let digest = sha256(&text);
            // Not trusted on first download: the release's own checksums file must list it.
            let checksums = checksums_url(base_url, version);
            let listed = download(&checksums).await?;
            check_listed(&url, &checksums, &listed, &digest)?;
            write_atomically(&dir, &file, &text).await?;
            write_atomically(&dir, &sum_file, &format!("{digest}\n")).await?;
            Ok(Manifests {
                text,
                sha256: digest,
                origin: url,
                downloaded: true,
            })
        }
    }
}

/// `<base>/<version>/flux_<version without v>_checksums.txt`, goreleaser's name for the file
/// that lists every release asset's sha256 (install.yaml among them).
pub fn checksums_url(base_url: &str, version: &FluxVersion) -> String {
    let v = version.to_string();
    format!(
        "{}/{v}/flux_{}_checksums.txt",
        base_url.trim_end_matches('/'),
        v.trim_start_matches('v')
    )
}

/// `digest` (`sha256:<hex>`) must be the sum `sha256sum`-style `listed` gives for `install.yaml`.
fn check_listed(
    url: &str,
    checksums: &str,
    listed: &str,
    digest: &str,
) -> Result<(), ManifestError> {
    let expected = listed.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        let (sum, name) = (parts.next()?, parts.next()?);
        (name.trim_start_matches('*') == "install.yaml")
            .then(|| format!("sha256:{}", sum.to_lowercase()))
    });
    match expected {
        None => Err(ManifestError::NotListed {
            url: url.to_string(),
            checksums: checksums.to_string(),
        }),
        Some(e) if e != digest => Err(ManifestError::Mismatch {
            url: url.to_string(),
            checksums: checksums.to_string(),
            expected: e,
            actual: digest.to_string(),
        }),
        Some(_) => Ok(()),
    }
}

async fn download(url: &str) -> Result<String, ManifestError> {
    let err = |source| ManifestError::Download {
        url: url.to_string(),
        source,
    };
    let response = reqwest::get(url).await.map_err(err)?;
    if !response.status().is_success() {
        return Err(ManifestError::Status {
            url: url.to_string(),
            status: response.status().as_u16(),
        });
    }
    response.text().await.map_err(err)
}

/// Write through a temporary file and a rename, so concurrent cells never read half a file.
async fn write_atomically(dir: &Path, path: &Path, text: &str) -> Result<(), ManifestError> {
    let cache_err = |source| ManifestError::Cache {
        path: path.to_path_buf(),
        source,
    };
    tokio::fs::create_dir_all(dir).await.map_err(cache_err)?;
    let (dir, path, text) = (dir.to_path_buf(), path.to_path_buf(), text.to_string());
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
        tmp.write_all(text.as_bytes())?;
        tmp.persist(&path).map(|_| ()).map_err(|e| e.error)
    })
    .await
    .map_err(|e| cache_err(std::io::Error::other(e)))?
    .map_err(cache_err)
}

/// One controller the install must run: its Deployment and the image it must run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Controller {
    pub component: Component,
    pub deployment: ObjectRef,
    pub expected: ImagePin,
}

/// Manifests rendered for a channel.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub objects: Vec<DynamicObject>,
    pub controllers: Vec<Controller>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("render Flux manifests `{source_name}`: the channel pins no image for {missing}")]
    MissingPins {
        source_name: String,
        missing: String,
    },
    #[error("render Flux manifests `{source_name}`: there is no Deployment for {missing}")]
    MissingDeployments {
        source_name: String,
        missing: String,
    },
    #[error(
        "render Flux manifests `{source_name}`: Deployment `{deployment}` is no Flux controller; known components: {known}",
        known = Component::known_names()
    )]
    UnknownDeployment {
        source_name: String,
        deployment: String,
    },
    #[error(
        "render Flux manifests `{source_name}`: Deployment `{deployment}` runs no `{component}` image to pin"
    )]
    NoControllerImage {
        source_name: String,
        deployment: String,
        component: Component,
    },
}

/// How to render.
#[derive(Clone, Debug)]
pub struct RenderOptions<'a> {
    pub release: &'a ChannelRelease,
    pub components: &'a [Component],
    /// The namespace Flux runs in (the manifests' own, normally `flux-system`).
    pub namespace: &'a str,
    /// Name of the pull Secret to reference from every controller, if the channel needs one.
    pub pull_secret: Option<&'a str>,
}

fn component_of(obj: &DynamicObject) -> Option<&str> {
    obj.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(COMPONENT_LABEL))
        .map(String::as_str)
}

/// The repository of an image reference without tag or digest.
pub fn image_repository(image: &str) -> &str {
    let name = image.split_once('@').map_or(image, |(n, _)| n);
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    }
}

/// Render `text` for the channel; see the module docs for what changes.
pub fn render(
    text: &str,
    source_name: &str,
    options: &RenderOptions<'_>,
) -> Result<Rendered, RenderError> {
    let selected = |name: &str| options.components.iter().any(|c| c.name() == name);
    let missing_pins: Vec<String> = options
        .components
        .iter()
        .filter(|c| !options.release.images.contains_key(c))
        .map(|c| format!("`{c}`"))
        .collect();
    if !missing_pins.is_empty() {
        return Err(RenderError::MissingPins {
            source_name: source_name.to_string(),
            missing: missing_pins.join(", "),
        });
    }
    let watcher = options.components.contains(&Component::SourceWatcher);
    let mut objects = Vec::new();
    let mut controllers = Vec::new();
    for mut obj in parse_documents(text, source_name)? {
        // Objects of known components that were not selected are left out (like `flux install`
        // without `--components-extra`); shared objects carry no component label.
        if let Some(label) = component_of(&obj)
            && label.parse::<Component>().is_ok()
            && !selected(label)
        {
            continue;
        }
        let kind = obj
            .types
            .as_ref()
            .map(|t| t.kind.clone())
            .unwrap_or_default();
        if kind == "Deployment" {
            let name = obj.metadata.name.clone().unwrap_or_default();
            let component: Component =
                name.parse().map_err(|_| RenderError::UnknownDeployment {
                    source_name: source_name.to_string(),
                    deployment: name.clone(),
                })?;
            let pin = options.release.images[&component].clone();
            pin_images(&mut obj.data, component, &pin)
                .then_some(())
                .ok_or_else(|| RenderError::NoControllerImage {
                    source_name: source_name.to_string(),
                    deployment: name.clone(),
                    component,
                })?;
            if let Some(secret) = options.pull_secret {
                add_pull_secret(&mut obj.data, secret);
            }
            if watcher
                && matches!(
                    component,
                    Component::KustomizeController | Component::HelmController
                )
            {
                add_arg(&mut obj.data, "--feature-gates=ExternalArtifact=true");
            }
            let namespace = obj
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| options.namespace.to_string());
            controllers.push(Controller {
                component,
                deployment: ObjectRef::new("apps/v1", "Deployment", Some(&namespace), &name),
                expected: pin,
            });
        }
        objects.push(obj);
    }
    let missing: Vec<String> = options
        .components
        .iter()
        .filter(|c| !controllers.iter().any(|k| k.component == **c))
        .map(|c| format!("`{c}`"))
        .collect();
    if !missing.is_empty() {
        return Err(RenderError::MissingDeployments {
            source_name: source_name.to_string(),
            missing: missing.join(", "),
        });
    }
    controllers.sort_by_key(|c| c.component);
    Ok(Rendered {
        objects,
        controllers,
    })
}

fn containers(data: &mut Value) -> impl Iterator<Item = &mut Value> {
    data.pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// Pin every container running the component's image (matched on the last path segment, so
/// `fluxcd/x`, `ghcr.io/fluxcd/x` and mirrors all match). Returns whether one was found.
fn pin_images(data: &mut Value, component: Component, pin: &ImagePin) -> bool {
    let mut found = false;
    for c in containers(data) {
        let Some(image) = c.get("image").and_then(Value::as_str) else {
            continue;
        };
        let repo = image_repository(image);
        if repo.rsplit('/').next() == Some(component.name()) {
            c["image"] = json!(pin.reference());
            found = true;
        }
    }
    found
}

fn add_pull_secret(data: &mut Value, secret: &str) {
    let Some(spec) = data
        .pointer_mut("/spec/template/spec")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let list = spec.entry("imagePullSecrets").or_insert_with(|| json!([]));
    if let Some(list) = list.as_array_mut()
        && !list.iter().any(|s| s["name"] == secret)
    {
        list.push(json!({"name": secret}));
    }
}

fn add_arg(data: &mut Value, arg: &str) {
    for c in containers(data) {
        if c["name"] != "manager" {
            continue;
        }
        let args = c
            .as_object_mut()
            .expect("containers are objects")
            .entry("args")
            .or_insert_with(|| json!([]));
        if let Some(args) = args.as_array_mut()
            && !args.iter().any(|a| a == arg)
        {
            args.push(json!(arg));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[tokio::test]
    async fn a_local_directory_serves_each_version_from_its_own_folder() {
        let dir = tempfile::tempdir().unwrap();
        let v: FluxVersion = "v2.8.8".parse().unwrap();
        std::fs::create_dir_all(dir.path().join("v2.8.8")).unwrap();
        std::fs::write(dir.path().join("v2.8.8/install.yaml"), "kind: List\n").unwrap();
        let m = load(&v, &ManifestSource::Dir(dir.path().to_path_buf()))
            .await
            .unwrap();
        assert_eq!(m.text, "kind: List\n");
        assert!(!m.downloaded);
        assert!(m.origin.ends_with("v2.8.8/install.yaml"));
        let other: FluxVersion = "v2.9.4".parse().unwrap();
        let err = load(&other, &ManifestSource::Dir(dir.path().to_path_buf()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("v2.9.4/install.yaml"), "{err}");
        // The flat layout of a reference directory (`install-<version>.yaml`) works too.
        std::fs::write(dir.path().join("install-v2.9.4.yaml"), "kind: Flat\n").unwrap();
        let m = load(&other, &ManifestSource::Dir(dir.path().to_path_buf()))
            .await
            .unwrap();
        assert_eq!(m.text, "kind: Flat\n");
    }

    const YAML: &str = "
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: imagepolicies.image.toolkit.fluxcd.io, labels: {app.kubernetes.io/component: image-reflector-controller}}
spec: {group: image.toolkit.fluxcd.io}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: source-controller, namespace: flux-system, labels: {app.kubernetes.io/component: source-controller}}
spec:
  template:
    spec:
      containers: [{name: manager, image: 'ghcr.io/fluxcd/source-controller:v1.9.4'}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kustomize-controller, namespace: flux-system, labels: {app.kubernetes.io/component: kustomize-controller}}
spec:
  template:
    spec:
      imagePullSecrets: [{name: other}]
      containers: [{name: manager, image: 'fluxcd/kustomize-controller:v1.9.4', args: [--log-level=info]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: image-reflector-controller, namespace: flux-system, labels: {app.kubernetes.io/component: image-reflector-controller}}
spec:
  template:
    spec:
      containers: [{name: manager, image: 'ghcr.io/fluxcd/image-reflector-controller:v1.2.4'}]
";

    fn pin(c: &str, d: char) -> ImagePin {
        ImagePin {
            repository: format!("ghcr.io/controlplaneio-fluxcd/alpine/{c}"),
            tag: "v1.9.4".into(),
            digest: format!("sha256:{}", d.to_string().repeat(64)),
        }
    }

    fn release() -> ChannelRelease {
        let mut images = BTreeMap::new();
        images.insert(Component::SourceController, pin("source-controller", 'a'));
        images.insert(
            Component::KustomizeController,
            pin("kustomize-controller", 'b'),
        );
        ChannelRelease {
            images_file: None,
            images,
        }
    }

    #[test]
    fn pins_images_adds_pull_secrets_and_drops_unselected_components() {
        let release = release();
        let components = [Component::SourceController, Component::KustomizeController];
        let r = render(
            YAML,
            "install.yaml",
            &RenderOptions {
                release: &release,
                components: &components,
                namespace: "flux-system",
                pull_secret: Some("flux-enterprise-auth"),
            },
        )
        .unwrap();
        assert_eq!(
            r.objects.len(),
            2,
            "image-reflector CRD and Deployment dropped"
        );
        assert_eq!(r.controllers.len(), 2);
        let k = &r.objects[1].data;
        assert_eq!(
            k["spec"]["template"]["spec"]["containers"][0]["image"],
            format!(
                "ghcr.io/controlplaneio-fluxcd/alpine/kustomize-controller:v1.9.4@sha256:{}",
                "b".repeat(64)
            )
        );
        assert_eq!(
            k["spec"]["template"]["spec"]["imagePullSecrets"],
            json!([{"name": "other"}, {"name": "flux-enterprise-auth"}])
        );
        assert_eq!(
            r.controllers[0].deployment.to_string(),
            "Deployment/flux-system/source-controller"
        );
    }

    #[test]
    fn missing_pins_and_deployments_are_named() {
        let release = release();
        let components = [Component::SourceController, Component::HelmController];
        let err = render(
            YAML,
            "install.yaml",
            &RenderOptions {
                release: &release,
                components: &components,
                namespace: "flux-system",
                pull_secret: None,
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "render Flux manifests `install.yaml`: the channel pins no image for `helm-controller`"
        );
        let mut release = release;
        release
            .images
            .insert(Component::HelmController, pin("helm-controller", 'c'));
        let err = render(
            YAML,
            "install.yaml",
            &RenderOptions {
                release: &release,
                components: &components,
                namespace: "flux-system",
                pull_secret: None,
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "render Flux manifests `install.yaml`: there is no Deployment for `helm-controller`"
        );
    }

    #[test]
    fn repositories_strip_tags_and_digests() {
        assert_eq!(
            image_repository("ghcr.io/fluxcd/x:v1@sha256:ab"),
            "ghcr.io/fluxcd/x"
        );
        assert_eq!(
            image_repository("localhost:5000/fluxcd/x"),
            "localhost:5000/fluxcd/x"
        );
        assert_eq!(
            image_repository("localhost:5000/fluxcd/x:v1"),
            "localhost:5000/fluxcd/x"
        );
    }
}
