//! `matrix.yaml`: raw serde structs, then resolution into `model::matrix::Matrix` with every
//! problem reported at `file:line:col`.

use super::diag::{Diagnostics, deserialize};
use super::images_file;
use super::pins::{self, DirSource, PinSource};
use super::source::Boundary;
use super::yaml::{self, Document};
use crate::model::matrix::*;
use crate::model::{Component, FluxVersion, KubeMinor};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const API_VERSION: &str = "flux-compat/v1alpha1";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMatrix {
    api_version: String,
    kind: String,
    kind_version: String,
    #[serde(default)]
    kubernetes: Vec<RawKube>,
    #[serde(default)]
    flux: Vec<RawFlux>,
    #[serde(default)]
    components: Option<Vec<String>>,
    #[serde(default)]
    channels: Vec<RawChannel>,
    #[serde(default)]
    providers: Option<Vec<RawProvider>>,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    registry_username: Option<String>,
    #[serde(default)]
    parallelism: RawParallelism,
    #[serde(default)]
    scenarios: RawScenarios,
    #[serde(default)]
    distribution: Option<RawDistribution>,
}

/// Where channel pins come from for Flux versions a channel does not pin itself.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDistribution {
    /// A directory laid out like the distribution repository (the committed copies).
    #[serde(default)]
    directory: Option<String>,
    /// The repository `matrix update` reads releases from (a GitHub URL).
    #[serde(default)]
    repository: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawKube {
    minor: String,
    version: String,
    node_image: String,
    #[serde(default)]
    built_by_kind: Option<String>,
    #[serde(default)]
    profiles: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFlux {
    version: String,
    #[serde(default)]
    previous: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawChannel {
    name: String,
    registry: String,
    /// The distribution variant (`images/<flux>/<variant>.yaml`); also the Flux Operator's.
    #[serde(alias = "operatorVariant")]
    variant: String,
    #[serde(default)]
    pull_secret: Option<String>,
    fips: bool,
    base: RawBase,
    #[serde(default)]
    install: Option<RawInstall>,
    #[serde(default)]
    releases: Vec<RawRelease>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawBase {
    Alpine,
    Distroless,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawInstall {
    Manifests,
    Operator,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRelease {
    flux: String,
    #[serde(default)]
    images: Option<BTreeMap<String, RawPin>>,
    #[serde(default)]
    images_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPin {
    tag: String,
    digest: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawProvider {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    kubeconfig: Option<String>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    kubernetes: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTimeouts {
    cluster_create: Option<String>,
    install: Option<String>,
    verify: Option<String>,
    scenario: Option<String>,
    step: Option<String>,
    teardown: Option<String>,
    deadline: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawParallelism {
    #[serde(default)]
    cells: usize,
    #[serde(default)]
    cluster_creates: usize,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawScenarios {
    #[serde(default)]
    directory: Option<String>,
    #[serde(default)]
    include: RawSelect,
    #[serde(default)]
    exclude: RawSelect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSelect {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
}

/// A digest-pinned reference: `name[:tag]@sha256:<64 hex>`.
pub fn split_digest(image: &str) -> Option<(&str, &str)> {
    let (name, digest) = image.split_once('@')?;
    is_sha256_digest(digest).then_some((name, digest))
}

pub fn is_sha256_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Names of channels, providers and scenarios: lower-case DNS labels.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Longest timeout accepted anywhere: longer is a typo, and arithmetic on it must not overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Parse a timeout: a positive humantime duration of at most [`MAX_TIMEOUT`].
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(v) if v.is_zero() => Err(format!("timeout `{s}` must be greater than zero")),
        Ok(v) if v > MAX_TIMEOUT => Err(format!(
            "timeout `{s}` is longer than the maximum of {}",
            humantime::format_duration(MAX_TIMEOUT)
        )),
        Ok(v) => Ok(v),
        Err(e) => Err(format!(
            "`{s}` is not a duration ({e}); expected e.g. `90s`, `5m`"
        )),
    }
}

fn duration(
    doc: &Document,
    file: &Path,
    path: &str,
    raw: &Option<String>,
    default: Duration,
    d: &mut Diagnostics,
) -> Duration {
    match raw {
        None => default,
        Some(s) => parse_timeout(s).unwrap_or_else(|e| {
            d.push(file, doc.value_pos(path), e);
            default
        }),
    }
}

/// "empty" when the list is there but empty, "missing" when the key is absent (e.g. misspelt).
fn empty_list(doc: &Document, key: &str, what: &str) -> String {
    if doc.value.get(key).is_some() {
        format!("empty matrix: `{key}` lists no {what}")
    } else {
        format!("missing `{key}`: the matrix must list {what}")
    }
}

/// Parse and resolve a matrix file. Problems go into `d`; `None` when the file could not be
/// read into the raw structure at all. File references may point anywhere (see [`load_with`]).
pub fn load(file: &Path, text: &str, d: &mut Diagnostics) -> Option<Matrix> {
    load_with(file, text, &Boundary::anywhere(), d)
}

/// [`load`] with file references (`imagesFile`, `scenarios.directory`) kept inside `boundary`;
/// pins a channel does not write come from the matrix's `distribution.directory`, if any.
pub fn load_with(
    file: &Path,
    text: &str,
    boundary: &Boundary,
    d: &mut Diagnostics,
) -> Option<Matrix> {
    load_from(file, text, boundary, None, d)
}

/// [`load_with`], with pins a channel does not write read from `source` when given (instead
/// of the matrix's `distribution.directory`).
pub fn load_from(
    file: &Path,
    text: &str,
    boundary: &Boundary,
    source: Option<&dyn PinSource>,
    d: &mut Diagnostics,
) -> Option<Matrix> {
    let doc = match yaml::parse_single(text) {
        Ok(doc) => doc,
        Err(p) => {
            d.yaml(file, p);
            return None;
        }
    };
    let raw: RawMatrix = deserialize(&doc, &doc.value, "", file, d)?;
    let mut m = resolve(file, &doc, raw, boundary, source, d);
    m.sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
    Some(m)
}

fn resolve(
    file: &Path,
    doc: &Document,
    raw: RawMatrix,
    boundary: &Boundary,
    source: Option<&dyn PinSource>,
    d: &mut Diagnostics,
) -> Matrix {
    let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    if raw.api_version != API_VERSION {
        d.push(
            file,
            doc.value_pos("apiVersion"),
            format!(
                "unsupported apiVersion `{}`; expected `{API_VERSION}`",
                raw.api_version
            ),
        );
    }
    if raw.kind != "Matrix" {
        d.push(
            file,
            doc.value_pos("kind"),
            format!("unexpected kind `{}`; expected `Matrix`", raw.kind),
        );
    }
    if raw
        .kind_version
        .strip_prefix('v')
        .is_none_or(|v| semver::Version::parse(v).is_err())
    {
        d.push(
            file,
            doc.value_pos("kindVersion"),
            format!(
                "kind version `{}` must look like `v0.33.0`",
                raw.kind_version
            ),
        );
    }

    // Kubernetes minors
    if raw.kubernetes.is_empty() {
        d.push(
            file,
            doc.pos("kubernetes"),
            empty_list(doc, "kubernetes", "Kubernetes minors"),
        );
    }
    let mut kubernetes = Vec::new();
    let mut seen_minors = BTreeSet::new();
    for (i, k) in raw.kubernetes.iter().enumerate() {
        let p = format!("kubernetes[{i}]");
        let minor = match k.minor.parse::<KubeMinor>() {
            Ok(m) => m,
            Err(e) => {
                d.push(file, doc.value_pos(&format!("{p}.minor")), e.to_string());
                continue;
            }
        };
        if !seen_minors.insert(minor) {
            d.push(
                file,
                doc.value_pos(&format!("{p}.minor")),
                format!("duplicate Kubernetes minor `{minor}`"),
            );
        }
        if KubeMinor::of_version(&k.version) != Some(minor) {
            d.push(
                file,
                doc.value_pos(&format!("{p}.version")),
                format!("version `{}` is not a patch of minor `{minor}`", k.version),
            );
        }
        let digest = match split_digest(&k.node_image) {
            Some((name, digest)) => {
                let tag = name.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
                if !tag.is_empty() && tag != k.version {
                    d.push(
                        file,
                        doc.value_pos(&format!("{p}.nodeImage")),
                        format!(
                            "node image tag `{tag}` does not match version `{}`",
                            k.version
                        ),
                    );
                }
                digest.to_string()
            }
            None => {
                d.push(
                    file,
                    doc.value_pos(&format!("{p}.nodeImage")),
                    format!(
                        "node image `{}` is not pinned by digest; expected `kindest/node:{}@sha256:<64 hex digits>`",
                        k.node_image, k.version
                    ),
                );
                String::new()
            }
        };
        kubernetes.push(KubeEntry {
            minor,
            version: k.version.clone(),
            node_image: k.node_image.clone(),
            node_image_digest: digest,
            built_by_kind: k.built_by_kind.clone(),
            profiles: profiles(doc, file, &p, k.profiles.as_deref(), d),
        });
    }
    kubernetes.sort_by_key(|k| std::cmp::Reverse(k.minor));

    // Flux versions
    if raw.flux.is_empty() {
        d.push(
            file,
            doc.pos("flux"),
            empty_list(doc, "flux", "Flux versions"),
        );
    }
    let mut flux = Vec::new();
    for (i, f) in raw.flux.iter().enumerate() {
        let p = format!("flux[{i}]");
        let Ok(version) = f.version.parse::<FluxVersion>() else {
            d.push(
                file,
                doc.value_pos(&format!("{p}.version")),
                format!(
                    "`{}` is not a Flux version (expected e.g. `v2.9.4`)",
                    f.version
                ),
            );
            continue;
        };
        let previous = f
            .previous
            .as_ref()
            .and_then(|s| match s.parse::<FluxVersion>() {
                Ok(v) => Some(v),
                Err(e) => {
                    d.push(file, doc.value_pos(&format!("{p}.previous")), e.to_string());
                    None
                }
            });
        if flux.iter().any(|e: &FluxEntry| e.version == version) {
            d.push(
                file,
                doc.value_pos(&format!("{p}.version")),
                format!("duplicate Flux version `{version}`"),
            );
        }
        flux.push(FluxEntry { version, previous });
    }

    // Components
    let mut components = Vec::new();
    match &raw.components {
        None => components.extend(Component::DEFAULTS),
        Some(list) => {
            for (i, name) in list.iter().enumerate() {
                match name.parse::<Component>() {
                    Ok(c) if components.contains(&c) => d.push(
                        file,
                        doc.value_pos(&format!("components[{i}]")),
                        format!("duplicate component `{c}`"),
                    ),
                    Ok(c) => components.push(c),
                    Err(e) => d.push(
                        file,
                        doc.value_pos(&format!("components[{i}]")),
                        e.to_string(),
                    ),
                }
            }
            if list.is_empty() {
                d.push(
                    file,
                    doc.pos("components"),
                    "`components` is empty: at least source-controller is needed",
                );
            }
        }
    }
    components.sort();

    // Channels
    if raw.channels.is_empty() {
        d.push(
            file,
            doc.pos("channels"),
            empty_list(doc, "channels", "image channels"),
        );
    }
    let mut channels: Vec<Channel> = Vec::new();
    let mut images_file_sha256 = BTreeMap::new();
    for (i, c) in raw.channels.iter().enumerate() {
        let p = format!("channels[{i}]");
        if !is_name(&c.name) {
            d.push(
                file,
                doc.value_pos(&format!("{p}.name")),
                format!(
                    "channel name `{}` must be a lower-case DNS label (a-z, 0-9, -)",
                    c.name
                ),
            );
        }
        if channels.iter().any(|o| o.name == c.name) {
            d.push(
                file,
                doc.value_pos(&format!("{p}.name")),
                format!("duplicate channel `{}`", c.name),
            );
        }
        let mut releases = BTreeMap::new();
        for (j, r) in c.releases.iter().enumerate() {
            let rp = format!("{p}.releases[{j}]");
            let Ok(version) = r.flux.parse::<FluxVersion>() else {
                d.push(
                    file,
                    doc.value_pos(&format!("{rp}.flux")),
                    format!(
                        "`{}` is not a Flux version (expected e.g. `v2.9.4`)",
                        r.flux
                    ),
                );
                continue;
            };
            let release = match (&r.images, &r.images_file) {
                (Some(_), Some(_)) | (None, None) => {
                    d.push(
                        file,
                        doc.pos(&rp),
                        "a release needs exactly one of `images` and `imagesFile`",
                    );
                    continue;
                }
                (Some(images), None) => {
                    let mut pins = BTreeMap::new();
                    for (name, pin) in images {
                        let ip = format!("{rp}.images.{name}");
                        let comp = match name.parse::<Component>() {
                            Ok(comp) => comp,
                            Err(e) => {
                                d.push(file, doc.pos(&ip), e.to_string());
                                continue;
                            }
                        };
                        if !is_sha256_digest(&pin.digest) {
                            d.push(
                                file,
                                doc.value_pos(&format!("{ip}.digest")),
                                format!("digest `{}` must be `sha256:` followed by 64 lower-case hex digits", pin.digest),
                            );
                        }
                        pins.insert(
                            comp,
                            ImagePin {
                                repository: format!(
                                    "{}/{}",
                                    c.registry.trim_end_matches('/'),
                                    comp.name()
                                ),
                                tag: pin.tag.clone(),
                                digest: pin.digest.clone(),
                            },
                        );
                    }
                    ChannelRelease {
                        images_file: None,
                        images: pins,
                    }
                }
                (None, Some(path)) => {
                    let images = match boundary.resolve(file, path) {
                        Ok(resolved) => {
                            let (images, digest) =
                                images_file::read(&resolved, d).unwrap_or_default();
                            images_file_sha256.insert(PathBuf::from(path), digest);
                            images
                        }
                        Err(e) => {
                            d.push(file, doc.value_pos(&format!("{rp}.imagesFile")), e);
                            BTreeMap::new()
                        }
                    };
                    ChannelRelease {
                        images_file: Some(PathBuf::from(path)),
                        images,
                    }
                }
            };
            let missing: Vec<_> = components
                .iter()
                .filter(|c| !release.images.contains_key(c))
                .map(|c| c.name())
                .collect();
            if !missing.is_empty() && (r.images.is_some() || !release.images.is_empty()) {
                d.push(
                    file,
                    doc.pos(&rp),
                    format!(
                        "channel `{}` at Flux {version} pins no image for installed components: {}",
                        c.name,
                        missing.join(", ")
                    ),
                );
            }
            if releases.insert(version.clone(), release).is_some() {
                d.push(
                    file,
                    doc.value_pos(&format!("{rp}.flux")),
                    format!("duplicate release `{version}`"),
                );
            }
        }
        channels.push(Channel {
            name: c.name.clone(),
            registry: c.registry.trim_end_matches('/').to_string(),
            operator_variant: c.variant.clone(),
            pull_secret: c.pull_secret.clone(),
            fips: c.fips,
            base: match c.base {
                RawBase::Alpine => Base::Alpine,
                RawBase::Distroless => Base::Distroless,
            },
            install: match c.install {
                None | Some(RawInstall::Manifests) => InstallRoute::Manifests,
                Some(RawInstall::Operator) => InstallRoute::Operator,
            },
            releases,
        });
    }

    // Pins a channel does not write: from the distribution source.
    let (distribution_dir, distribution_repository) = match &raw.distribution {
        Some(r) => (r.directory.clone(), r.repository.clone()),
        None => (None, None),
    };
    let declared;
    let source = match (source, &distribution_dir) {
        (Some(s), _) => Some(s),
        (None, Some(dir)) => {
            declared = open_declared(file, doc, boundary, dir, d);
            declared.as_ref().map(|s| s as &dyn PinSource)
        }
        (None, None) => None,
    };
    if let Some(source) = source {
        let needs = pins::Needs {
            file,
            doc,
            flux: &flux,
            components: &components,
        };
        pins::fill(&needs, source, &mut channels, &mut images_file_sha256, d);
    }

    // Providers
    let providers = match &raw.providers {
        None => vec![Provider {
            name: "kind".into(),
            kind: ProviderKind::Kind,
            enabled: true,
        }],
        Some(list) => {
            if list.is_empty() {
                d.push(
                    file,
                    doc.pos("providers"),
                    "`providers` is empty: omit it to use kind",
                );
            }
            let mut out: Vec<Provider> = Vec::new();
            for (i, p) in list.iter().enumerate() {
                let pp = format!("providers[{i}]");
                if !is_name(&p.name) {
                    d.push(
                        file,
                        doc.value_pos(&format!("{pp}.name")),
                        format!("provider name `{}` must be a lower-case DNS label", p.name),
                    );
                }
                if out.iter().any(|o| o.name == p.name) {
                    d.push(
                        file,
                        doc.value_pos(&format!("{pp}.name")),
                        format!("duplicate provider `{}`", p.name),
                    );
                }
                let kind = match p.kind.as_str() {
                    "kind" => ProviderKind::Kind,
                    "existing" => {
                        let Some(context) = p.context.clone().filter(|c| !c.trim().is_empty())
                        else {
                            d.push(file, doc.pos(&pp), "an `existing` provider needs an explicit, non-empty `context`: flux-compat never uses the current context");
                            continue;
                        };
                        let Some(minor) = p.kubernetes.as_ref() else {
                            d.push(file, doc.pos(&pp), "an `existing` provider needs `kubernetes`: the minor the cluster runs, e.g. \"1.32\"");
                            continue;
                        };
                        let kubernetes = match minor.parse::<KubeMinor>() {
                            Ok(m) => m,
                            Err(e) => {
                                d.push(
                                    file,
                                    doc.value_pos(&format!("{pp}.kubernetes")),
                                    e.to_string(),
                                );
                                continue;
                            }
                        };
                        ProviderKind::Existing {
                            // Relative to the matrix file like every other path; `~` is home.
                            kubeconfig: p.kubeconfig.as_ref().map(|k| {
                                if k.starts_with('~') || Path::new(k).is_absolute() {
                                    PathBuf::from(k)
                                } else {
                                    base_dir.join(k)
                                }
                            }),
                            context,
                            kubernetes,
                        }
                    }
                    other => {
                        d.push(
                            file,
                            doc.value_pos(&format!("{pp}.type")),
                            format!(
                                "unknown provider type `{other}`; known types: `kind`, `existing`"
                            ),
                        );
                        continue;
                    }
                };
                out.push(Provider {
                    name: p.name.clone(),
                    kind,
                    enabled: p.enabled,
                });
            }
            out
        }
    };

    let defaults = Timeouts::default();
    let t = &raw.timeouts;
    let timeouts = Timeouts {
        cluster_create: duration(
            doc,
            file,
            "timeouts.clusterCreate",
            &t.cluster_create,
            defaults.cluster_create,
            d,
        ),
        install: duration(
            doc,
            file,
            "timeouts.install",
            &t.install,
            defaults.install,
            d,
        ),
        verify: duration(doc, file, "timeouts.verify", &t.verify, defaults.verify, d),
        scenario: duration(
            doc,
            file,
            "timeouts.scenario",
            &t.scenario,
            defaults.scenario,
            d,
        ),
        step: duration(doc, file, "timeouts.step", &t.step, defaults.step, d),
        teardown: duration(
            doc,
            file,
            "timeouts.teardown",
            &t.teardown,
            defaults.teardown,
            d,
        ),
        deadline: t.deadline.as_ref().map(|_| {
            duration(
                doc,
                file,
                "timeouts.deadline",
                &t.deadline,
                Duration::ZERO,
                d,
            )
        }),
    };
    let registry_username = raw.registry_username.clone();
    if registry_username
        .as_deref()
        .is_some_and(|u| u.trim().is_empty() || u.contains(':'))
    {
        d.push(
            file,
            doc.value_pos("registryUsername"),
            "`registryUsername` must be a non-empty name without `:`".to_string(),
        );
    }

    // A directory of `*.yaml` scenarios, each parsed as one; it may sit beside the project.
    let scenarios_dir = base_dir.join(raw.scenarios.directory.as_deref().unwrap_or("scenarios"));
    Matrix {
        file: file.to_path_buf(),
        sha256: String::new(),
        images_file_sha256,
        distribution_dir: distribution_dir.map(|d| base_dir.join(d)),
        distribution_repository,
        kind_version: raw.kind_version,
        kubernetes,
        flux,
        components,
        channels,
        providers,
        timeouts,
        registry_username,
        parallelism: Parallelism {
            cells: raw.parallelism.cells,
            cluster_creates: raw.parallelism.cluster_creates,
        },
        selection: Selection {
            include_names: raw.scenarios.include.names,
            include_tags: raw.scenarios.include.tags,
            exclude_names: raw.scenarios.exclude.names,
            exclude_tags: raw.scenarios.exclude.tags,
        },
        scenarios_dir,
    }
}

/// The matrix's own `distribution.directory`, opened inside the project.
fn open_declared(
    file: &Path,
    doc: &Document,
    boundary: &Boundary,
    dir: &str,
    d: &mut Diagnostics,
) -> Option<DirSource> {
    // A plain relative path stays inside the project by its words, so a symlinked `fixtures`
    // (tests, vendored checkouts) is fine; anything else must pass the boundary.
    let plain = Path::new(dir)
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    let resolved = match plain {
        true => Ok(file.parent().unwrap_or(Path::new("")).join(dir)),
        false => boundary.resolve(file, dir),
    };
    let opened = resolved.and_then(|p| DirSource::open(&p).map_err(|e| format!("failed to {e}")));
    opened
        .map_err(|e| d.push(file, doc.value_pos("distribution.directory"), e))
        .ok()
}

/// The profiles a Kubernetes minor belongs to: `newest` when not said.
fn profiles(
    doc: &Document,
    file: &Path,
    entry: &str,
    raw: Option<&[String]>,
    d: &mut Diagnostics,
) -> Vec<String> {
    let Some(list) = raw else {
        return vec![PROFILE_NEWEST.to_string()];
    };
    if list.is_empty() {
        d.push(
            file,
            doc.pos(&format!("{entry}.profiles")),
            "`profiles` is empty: omit it for `newest`, or name `newest` and/or `lts`",
        );
    }
    for (i, name) in list.iter().enumerate() {
        if !PROFILES.contains(&name.as_str()) {
            d.push(
                file,
                doc.value_pos(&format!("{entry}.profiles[{i}]")),
                format!("unknown profile `{name}`; known profiles: `newest`, `lts`"),
            );
        }
    }
    list.to_vec()
}

/// Positions of the selection names, so unknown scenario names can be reported after scenarios load.
pub fn selection_name_positions(text: &str) -> Vec<(String, yaml::Pos)> {
    let Ok(doc) = yaml::parse_single(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for part in ["include", "exclude"] {
        if let Some(list) = doc
            .value
            .pointer(&format!("/scenarios/{part}/names"))
            .and_then(|v| v.as_array())
        {
            for (i, v) in list.iter().enumerate() {
                if let Some(s) = v.as_str() {
                    out.push((
                        s.to_string(),
                        doc.value_pos(&format!("scenarios.{part}.names[{i}]")),
                    ));
                }
            }
        }
    }
    out
}
