//! The resolved matrix: Kubernetes minors (kind node images pinned by digest), Flux versions,
//! channels with their per-component image pins, providers, timeouts and parallelism.

use super::{Component, FluxVersion, KubeMinor};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Matrix {
    pub file: PathBuf,
    /// sha256 (hex) of the matrix file as it was read, recorded with every cell's results.
    pub sha256: String,
    /// sha256 (hex) of each distribution images file read, by the path the matrix names it with.
    pub images_file_sha256: BTreeMap<PathBuf, String>,
    /// The committed copies of the distribution's images files (`distribution.directory`).
    pub distribution_dir: Option<PathBuf>,
    /// The distribution repository `matrix update` reads (`distribution.repository`).
    pub distribution_repository: Option<String>,
    pub kind_version: String,
    pub kubernetes: Vec<KubeEntry>,
    pub flux: Vec<FluxEntry>,
    /// Components installed in every cell (the defaults plus extras).
    pub components: Vec<Component>,
    pub channels: Vec<Channel>,
    pub providers: Vec<Provider>,
    pub timeouts: Timeouts,
    /// The user name sent with the registry token (`registryUsername`); the environment's
    /// `FLUX_COMPAT_REGISTRY_USERNAME` overrides it.
    pub registry_username: Option<String>,
    pub parallelism: Parallelism,
    pub selection: Selection,
    pub scenarios_dir: PathBuf,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeEntry {
    pub minor: KubeMinor,
    /// Exact version of the node image, e.g. `v1.36.4`.
    pub version: String,
    /// `kindest/node:v1.36.4@sha256:...`
    pub node_image: String,
    /// The `sha256:...` part of `node_image`.
    pub node_image_digest: String,
    /// The kind release that built the image (older images run best-effort under a newer kind).
    pub built_by_kind: Option<String>,
    /// The profiles this minor belongs to (`newest`, `lts`); `newest` when the matrix says none.
    pub profiles: Vec<String>,
}

/// The default profile: the six newest Kubernetes minors that have a kind node image.
pub const PROFILE_NEWEST: &str = "newest";
/// The cloud vendors' LTS / extended-support minors.
pub const PROFILE_LTS: &str = "lts";
/// Every profile a matrix may name.
pub const PROFILES: [&str; 2] = [PROFILE_NEWEST, PROFILE_LTS];

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxEntry {
    pub version: FluxVersion,
    /// The previous minor's newest patch, for upgrade scenarios.
    pub previous: Option<FluxVersion>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    Alpine,
    Distroless,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallRoute {
    /// Flux release manifests, images rewritten to the channel and pinned by digest.
    Manifests,
    /// A FluxInstance reconciled by the Flux Operator.
    Operator,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub name: String,
    pub registry: String,
    pub operator_variant: String,
    pub pull_secret: Option<String>,
    pub fips: bool,
    pub base: Base,
    pub install: InstallRoute,
    /// Image pins per Flux version.
    pub releases: BTreeMap<FluxVersion, ChannelRelease>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelRelease {
    /// The distribution images file these pins came from, when not inline.
    pub images_file: Option<PathBuf>,
    pub images: BTreeMap<Component, ImagePin>,
}

/// One controller image, pinned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePin {
    /// Repository without tag, e.g. `ghcr.io/fluxcd/source-controller`.
    pub repository: String,
    pub tag: String,
    /// `sha256:<64 hex>`.
    pub digest: String,
}

impl ImagePin {
    /// `repo:tag@sha256:...`, the reference a Deployment should carry.
    pub fn reference(&self) -> String {
        format!("{}:{}@{}", self.repository, self.tag, self.digest)
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum ProviderKind {
    Kind,
    Existing {
        kubeconfig: Option<PathBuf>,
        context: String,
        /// The minor the cluster is expected to run; the run checks the server agrees.
        kubernetes: KubeMinor,
    },
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    /// Disabled providers are planned only when selected explicitly (`--provider`).
    pub enabled: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    #[serde(serialize_with = "secs")]
    pub cluster_create: Duration,
    #[serde(serialize_with = "secs")]
    pub install: Duration,
    #[serde(serialize_with = "secs")]
    pub verify: Duration,
    #[serde(serialize_with = "secs")]
    pub scenario: Duration,
    #[serde(serialize_with = "secs")]
    pub step: Duration,
    #[serde(serialize_with = "secs")]
    pub teardown: Duration,
    /// The whole run's working time (`timeouts.deadline`, `run --deadline`); `None` derives it
    /// from the other timeouts and the plan. Teardown runs after it, under its own timeout.
    #[serde(serialize_with = "opt_secs")]
    pub deadline: Option<Duration>,
}

/// The most any scenario may take, whatever it declares (a declared timeout above it is cut and
/// `validate` warns): above the library's longest declared timeout (`upgrade`, 15m), so no
/// scenario is cut by the runner before its own timeout can report what it was waiting for.
pub const SCENARIO_CAP: Duration = Duration::from_secs(20 * 60);

impl Timeouts {
    /// A scenario's budget: its declared timeout, at most [`SCENARIO_CAP`].
    pub fn scenario_budget(declared: Duration) -> Duration {
        declared.min(SCENARIO_CAP)
    }

    /// The timeout of the wait inside a phase of length `phase`: a tenth shorter (at most 30s
    /// shorter), so the wait's own error (what it last saw) and the diagnostics are reported
    /// instead of the phase's bare "did not finish".
    pub fn inner(phase: Duration) -> Duration {
        phase.saturating_sub((phase / 10).min(Duration::from_secs(30)))
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            cluster_create: Duration::from_secs(300),
            install: Duration::from_secs(300),
            verify: Duration::from_secs(180),
            scenario: Duration::from_secs(600),
            step: Duration::from_secs(120),
            teardown: Duration::from_secs(180),
            deadline: None,
        }
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => secs(d, s),
        None => s.serialize_none(),
    }
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Parallelism {
    /// Cells at once; 0 derives it from CPUs and memory.
    pub cells: usize,
    /// Cluster creations at once (kind is CPU and inotify heavy while starting).
    pub cluster_creates: usize,
}

/// Which scenarios the matrix runs by default.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    pub include_names: Vec<String>,
    pub include_tags: Vec<String>,
    pub exclude_names: Vec<String>,
    pub exclude_tags: Vec<String>,
}

impl Selection {
    /// Whether a scenario with this name and tags is selected. Empty includes select everything.
    pub fn selects(&self, name: &str, tags: &[String]) -> bool {
        let included = (self.include_names.is_empty() && self.include_tags.is_empty())
            || self.include_names.iter().any(|n| n == name)
            || self.include_tags.iter().any(|t| tags.contains(t));
        let excluded = self.exclude_names.iter().any(|n| n == name)
            || self.exclude_tags.iter().any(|t| tags.contains(t));
        included && !excluded
    }
}

impl Matrix {
    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.name == name)
    }

    pub fn kube(&self, minor: KubeMinor) -> Option<&KubeEntry> {
        self.kubernetes.iter().find(|k| k.minor == minor)
    }

    /// Keep only the Kubernetes minors of one profile; `Err` lists the profiles the matrix has.
    pub fn select_profile(&mut self, profile: &str) -> Result<(), String> {
        if !PROFILES.contains(&profile) {
            return Err(format!(
                "unknown profile `{profile}`; known profiles: `newest`, `lts`"
            ));
        }
        self.kubernetes
            .retain(|k| k.profiles.iter().any(|p| p == profile));
        if self.kubernetes.is_empty() {
            return Err(format!(
                "the matrix has no Kubernetes minor in profile `{profile}`; `flux-compat matrix update --profile {profile}` adds them"
            ));
        }
        Ok(())
    }
}
