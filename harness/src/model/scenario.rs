//! Declarative scenarios: metadata, applicability (version gating) and steps.
//! Built by `config` from `scenarios/*.yaml`; executed by the scenario engine.

use super::matrix::{Channel, FluxEntry};
use super::{Component, FluxVersion, KubeMinor, VersionRange};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A validated scenario.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    /// The file it was loaded from, for messages.
    pub file: PathBuf,
    pub applicability: Applicability,
    /// Fixtures the scenario needs from the fixture plane, e.g. `git/podinfo`.
    pub fixtures: Vec<String>,
    #[serde(with = "humantime_serde_secs")]
    pub timeout: Duration,
    pub steps: Vec<Step>,
    /// Steps that always run after `steps`, also after a failure (cleanup).
    pub finally: Vec<Step>,
}

/// Where a scenario applies. Every field that is set must match; a mismatch becomes
/// skipped-with-reason in every report, never silence.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applicability {
    pub flux: Option<VersionRange>,
    pub kubernetes: Option<VersionRange>,
    /// Channel names; empty means all.
    pub channels: Vec<String>,
    pub components: Vec<Component>,
    /// `Some(true)`: only channels that promise FIPS; `Some(false)`: only those that do not.
    pub fips: Option<bool>,
}

/// What a cell offers, for applicability checks.
pub struct CellTraits<'a> {
    pub flux: &'a FluxVersion,
    pub kubernetes: KubeMinor,
    pub channel: &'a str,
    pub channel_fips: bool,
    pub components: &'a [Component],
}

impl Applicability {
    /// `None` if the scenario applies to the cell, else the reason it does not.
    pub fn skip_reason(&self, cell: &CellTraits<'_>) -> Option<String> {
        if let Some(range) = &self.flux
            && !range.matches(&cell.flux.0)
        {
            return Some(format!("needs Flux {range}; cell runs {}", cell.flux));
        }
        if let Some(range) = &self.kubernetes
            && !range.matches(&cell.kubernetes.as_semver())
        {
            return Some(format!(
                "needs Kubernetes {range}; cell runs {}",
                cell.kubernetes
            ));
        }
        if !self.channels.is_empty() && !self.channels.iter().any(|c| c == cell.channel) {
            return Some(format!(
                "runs on channels {}; cell channel is `{}`",
                self.channels.join(", "),
                cell.channel
            ));
        }
        if let Some(fips) = self.fips
            && fips != cell.channel_fips
        {
            return Some(if fips {
                format!("needs a FIPS channel; `{}` is not one", cell.channel)
            } else {
                format!("needs a non-FIPS channel; `{}` is FIPS", cell.channel)
            });
        }
        let missing: Vec<_> = self
            .components
            .iter()
            .filter(|c| !cell.components.contains(c))
            .map(|c| c.name())
            .collect();
        if !missing.is_empty() {
            return Some(format!(
                "needs components not installed in this cell: {}",
                missing.join(", ")
            ));
        }
        None
    }
}

/// A Kubernetes object a step refers to. `namespace` defaults to the scenario namespace.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: Option<String>,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

/// One step: a name, an optional timeout and exactly one action.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub name: String,
    #[serde(with = "humantime_serde_opt")]
    pub timeout: Option<Duration>,
    pub action: Action,
}

/// The step kinds. Externally tagged in YAML: `- apply: {...}`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Server-side apply templated manifests.
    Apply { manifests: String },
    /// Wait for Flux readiness, or for a named condition.
    WaitFor(WaitFor),
    /// Check field values, object counts or events (boxed: by far the largest variant).
    Assert(Box<Assert>),
    /// A condition must become False with a matching reason/message.
    ExpectFailure(ExpectFailure),
    /// Delete an object; optionally check what must be pruned or garbage-collected with it.
    Delete {
        object: ObjectRef,
        wait: bool,
        gone: Vec<ObjectRef>,
    },
    /// Merge-patch an object.
    Patch {
        object: ObjectRef,
        patch: serde_json::Value,
    },
    /// Push a commit (and optionally a tag) to a fixture git repository.
    GitPush(GitPush),
    /// Replace the cell's Flux with another version (templated, e.g. `${{ flux.previousVersion }}`)
    /// through the runner's Flux installer; the engine restores the cell's version afterwards.
    InstallFlux { version: String },
    /// Upgrade Flux in place to the cell's version (the matrix version under test).
    UpgradeFlux,
    /// POST to a Receiver's `status.webhookPath` through the API server's proxy to the
    /// notification-controller `webhook-receiver` Service, as an external system would.
    TriggerReceiver { object: ObjectRef },
    /// Judge what a controller did against the FIPS TLS challenge endpoints (`fips-tls`).
    TlsChallenges(TlsChallenges),
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Apply { .. } => "apply",
            Action::WaitFor(_) => "waitFor",
            Action::Assert(_) => "assert",
            Action::ExpectFailure(_) => "expectFailure",
            Action::Delete { .. } => "delete",
            Action::Patch { .. } => "patch",
            Action::GitPush(_) => "gitPush",
            Action::InstallFlux { .. } => "installFlux",
            Action::UpgradeFlux => "upgradeFlux",
            Action::TriggerReceiver { .. } => "triggerReceiver",
            Action::TlsChallenges(_) => "tlsChallenges",
        }
    }
}

/// The step kinds, for error messages.
pub const STEP_KINDS: &[&str] = &[
    "apply",
    "waitFor",
    "assert",
    "expectFailure",
    "delete",
    "patch",
    "gitPush",
    "installFlux",
    "upgradeFlux",
    "triggerReceiver",
    "tlsChallenges",
];

/// The TLS challenge endpoints the `tlsChallenges` step and the `challenges.<id>.*` variables
/// may name. Mirrors `fips::tls::challenge::ChallengeId::ALL` (a test keeps them equal): the
/// model stays free of the `fips` module.
pub const CHALLENGE_IDS: &[&str] = &[
    "tls12-chacha20",
    "tls13-chacha20",
    "x25519-tls12",
    "x25519-tls13",
    "tls11",
    "cbc-sha1",
    "static-rsa",
    "tls12-no-ems",
    "leaf-rsa1024",
    "root-rsa1024",
    "leaf-ed25519",
    "leaf-rsa2560",
    "x25519mlkem768",
    "control-tls13",
    "control-tls12-ems",
];

/// `tlsChallenges`: wait until `controller` has connected to each challenge endpoint, then judge
/// the recorded handshakes and ClientHellos against the policy of the controller's TLS family.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsChallenges {
    /// The controller whose TLS client is judged (its family and Go version come from static
    /// inspection of its image).
    pub controller: Component,
    /// Challenge ids, in the order judged (validated against [`CHALLENGE_IDS`]).
    pub challenges: Vec<String>,
}

impl Scenario {
    /// Whether the scenario replaces the cell's Flux installation (`installFlux`/`upgradeFlux`):
    /// the runner must not run it concurrently with other scenarios of the same cell.
    pub fn manages_flux(&self) -> bool {
        self.steps
            .iter()
            .chain(&self.finally)
            .any(|s| matches!(s.action, Action::InstallFlux { .. } | Action::UpgradeFlux))
    }
}

/// The variables an `installFlux` version may use: the only ones known before the run starts,
/// so the plan can tell which Flux versions a scenario installs.
pub const INSTALL_VERSION_VARIABLES: &[&str] = &["flux.version", "flux.previousVersion"];

/// The Flux version an `installFlux` version template names in a cell running `flux`, whose
/// previous minor (matrix `flux[].previous`) is `previous`. `Err` says why it names none.
pub fn install_version(
    template: &str,
    flux: &FluxVersion,
    previous: Option<&FluxVersion>,
) -> Result<FluxVersion, String> {
    let mut vars = BTreeMap::new();
    vars.insert("flux.version".to_string(), flux.to_string());
    if let Some(p) = previous {
        vars.insert("flux.previousVersion".to_string(), p.to_string());
    }
    let placeholders = super::template::placeholders(template).map_err(|e| e.to_string())?;
    if let Some(p) = placeholders
        .iter()
        .find(|p| !INSTALL_VERSION_VARIABLES.contains(&p.name.as_str()))
    {
        return Err(format!(
            "`installFlux.version` may use only `flux.version` and `flux.previousVersion`, not `{}`",
            p.name
        ));
    }
    if previous.is_none()
        && placeholders
            .iter()
            .any(|p| p.name == "flux.previousVersion")
    {
        return Err(format!(
            "the matrix gives Flux {flux} no `previous` for `flux.previousVersion`"
        ));
    }
    let rendered = super::template::render(template, &vars).map_err(|e| e.to_string())?;
    rendered.parse::<FluxVersion>().map_err(|e| e.to_string())
}

/// Where a step sits in its scenario: `spec.steps[index]` or `spec.finally[index]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StepAt {
    pub finally: bool,
    pub index: usize,
}

/// An `installFlux` step that cannot run in a cell, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnrunnableInstall {
    pub at: StepAt,
    pub step: String,
    /// The version it would install, when it names one (then the channel pins no images for it).
    pub version: Option<FluxVersion>,
    pub reason: String,
}

impl Scenario {
    /// The `installFlux` steps that cannot run in a cell of Flux `flux` on `channel`: they name
    /// no version, or one the channel pins no images for. The plan skips such scenarios and
    /// `validate` rejects them when the matrix selects them, so the gap never shows up mid-run.
    pub fn unrunnable_installs(
        &self,
        flux: &FluxEntry,
        channel: &Channel,
    ) -> Vec<UnrunnableInstall> {
        let main = self.steps.iter().enumerate().map(|(i, s)| (false, i, s));
        let finally = self.finally.iter().enumerate().map(|(i, s)| (true, i, s));
        let mut out = Vec::new();
        for (finally, index, step) in main.chain(finally) {
            let Action::InstallFlux { version } = &step.action else {
                continue;
            };
            let (version, reason) =
                match install_version(version, &flux.version, flux.previous.as_ref()) {
                    Err(reason) => (None, reason),
                    Ok(v) if channel.releases.contains_key(&v) => continue,
                    Ok(v) => {
                        let reason = format!(
                            "step `{}` installs Flux {v}, and channel `{}` pins no images for it",
                            step.name, channel.name
                        );
                        (Some(v), reason)
                    }
                };
            out.push(UnrunnableInstall {
                at: StepAt { finally, index },
                step: step.name.clone(),
                version,
                reason,
            });
        }
        out
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitFor {
    pub object: ObjectRef,
    /// `None`: Flux readiness (Ready=True with observedGeneration == generation, fail fast on Stalled).
    pub condition: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    /// A regular expression the condition message must match.
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assert {
    pub object: Option<ObjectRef>,
    pub fields: Vec<FieldAssertion>,
    /// A mapping the object must contain (every key and value, recursively; lists element-wise).
    pub contains: Option<serde_json::Value>,
    pub count: Option<CountAssertion>,
    pub event: Option<EventAssertion>,
    /// An event the fixture webhook sink must have received (notification delivery).
    pub webhook: Option<EventAssertion>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldAssertion {
    /// A dotted path such as `spec.replicas` or `status.conditions[0].reason`.
    pub path: String,
    pub equals: Option<serde_json::Value>,
    pub matches: Option<String>,
    pub exists: Option<bool>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CountAssertion {
    pub api_version: Option<String>,
    pub kind: String,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub equals: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventAssertion {
    pub object: Option<ObjectRef>,
    pub reason: Option<String>,
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectFailure {
    pub object: ObjectRef,
    pub condition: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GitPush {
    pub repository: String,
    pub message: String,
    pub files: BTreeMap<String, String>,
    pub remove: Vec<String>,
    pub tag: Option<String>,
}

mod humantime_serde_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }
}

mod humantime_serde_opt {
    pub fn serialize<S: serde::Serializer>(
        d: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(&humantime::format_duration(*d)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traits<'a>(flux: &'a FluxVersion, comps: &'a [Component]) -> CellTraits<'a> {
        CellTraits {
            flux,
            kubernetes: KubeMinor::new(1, 32),
            channel: "fips",
            channel_fips: true,
            components: comps,
        }
    }

    #[test]
    fn install_versions_resolve_from_the_cells_flux_versions_only() {
        let (v294, v288): (FluxVersion, FluxVersion) =
            ("v2.9.4".parse().unwrap(), "v2.8.8".parse().unwrap());
        let prev = "${{ flux.previousVersion }}";
        assert_eq!(install_version(prev, &v294, Some(&v288)), Ok(v288.clone()));
        assert_eq!(
            install_version("${{ flux.version }}", &v294, None),
            Ok(v294.clone())
        );
        assert_eq!(
            install_version("v2.7.1", &v294, None).unwrap().to_string(),
            "v2.7.1"
        );
        assert_eq!(
            install_version(prev, &v294, None).unwrap_err(),
            "the matrix gives Flux v2.9.4 no `previous` for `flux.previousVersion`"
        );
        assert!(
            install_version("${{ channel.name }}", &v294, None)
                .unwrap_err()
                .contains("not `channel.name`")
        );
        assert!(
            install_version("latest", &v294, None)
                .unwrap_err()
                .contains("not a Flux version")
        );
    }

    #[test]
    fn applicability_gives_reasons() {
        let flux: FluxVersion = "v2.9.4".parse().unwrap();
        let comps = Component::DEFAULTS;
        let t = traits(&flux, &comps);
        let mut a = Applicability::default();
        assert_eq!(a.skip_reason(&t), None);
        a.kubernetes = Some(VersionRange::parse(">=1.33").unwrap());
        assert!(
            a.skip_reason(&t)
                .unwrap()
                .contains("needs Kubernetes >=1.33")
        );
        a.kubernetes = None;
        a.components = vec![Component::SourceWatcher];
        assert!(a.skip_reason(&t).unwrap().contains("source-watcher"));
        a.components.clear();
        a.fips = Some(false);
        assert!(a.skip_reason(&t).unwrap().contains("non-FIPS"));
        a.fips = None;
        a.channels = vec!["upstream".into()];
        assert!(a.skip_reason(&t).unwrap().contains("`fips`"));
    }
}
