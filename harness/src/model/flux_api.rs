//! The Flux API versions each Flux release serves (reference facts §5.1), as data, so that
//! validation can prove every manifest a scenario applies is served by the cell's Flux version.
//! Pure lookups; non-Flux groups (`v1`, `apps/v1`, ...) are outside this table.

use super::FluxVersion;

/// One served `group/version` for some kinds, from the first Flux minor that serves it up to
/// (excluding) the first minor that removed it.
#[derive(Clone, Copy, Debug)]
pub struct ServedApi {
    pub group: &'static str,
    pub version: &'static str,
    pub kinds: &'static [&'static str],
    /// First Flux minor (2.x) known to serve it. The table starts at 2.3; older is unknown.
    pub since_minor: u64,
    /// First Flux minor that no longer serves it.
    pub removed_in_minor: Option<u64>,
}

const SOURCE_V1BETA1: &[&str] = &["GitRepository", "HelmRepository", "HelmChart", "Bucket"];
const SOURCE_V1BETA2: &[&str] = &[
    "GitRepository",
    "HelmRepository",
    "HelmChart",
    "Bucket",
    "OCIRepository",
];
const IMAGE: &[&str] = &["ImageRepository", "ImagePolicy", "ImageUpdateAutomation"];
const NOTIFICATION_OLD: &[&str] = &["Alert", "Provider", "Receiver"];

/// Flux minors before this one are not covered by the reference table.
pub const OLDEST_KNOWN_MINOR: u64 = 3;

/// §5.1 as rows. Kinds that a version serves only from a later minor get a row of their own.
pub const SERVED: &[ServedApi] = &[
    ServedApi {
        group: "source.toolkit.fluxcd.io",
        version: "v1",
        kinds: &["GitRepository", "HelmRepository", "HelmChart"],
        since_minor: 3,
        removed_in_minor: None,
    },
    ServedApi {
        group: "source.toolkit.fluxcd.io",
        version: "v1",
        kinds: &["Bucket"],
        since_minor: 4,
        removed_in_minor: None,
    },
    ServedApi {
        group: "source.toolkit.fluxcd.io",
        version: "v1",
        kinds: &["OCIRepository"],
        since_minor: 6,
        removed_in_minor: None,
    },
    ServedApi {
        group: "source.toolkit.fluxcd.io",
        version: "v1",
        kinds: &["ExternalArtifact"],
        since_minor: 7,
        removed_in_minor: None,
    },
    ServedApi {
        group: "source.toolkit.fluxcd.io",
        version: "v1beta2",
        kinds: SOURCE_V1BETA2,
        since_minor: 3,
        removed_in_minor: Some(8),
    },
    ServedApi {
        group: "source.toolkit.fluxcd.io",
        version: "v1beta1",
        kinds: SOURCE_V1BETA1,
        since_minor: 3,
        removed_in_minor: Some(7),
    },
    ServedApi {
        group: "kustomize.toolkit.fluxcd.io",
        version: "v1",
        kinds: &["Kustomization"],
        since_minor: 3,
        removed_in_minor: None,
    },
    ServedApi {
        group: "kustomize.toolkit.fluxcd.io",
        version: "v1beta2",
        kinds: &["Kustomization"],
        since_minor: 3,
        removed_in_minor: Some(8),
    },
    ServedApi {
        group: "kustomize.toolkit.fluxcd.io",
        version: "v1beta1",
        kinds: &["Kustomization"],
        since_minor: 3,
        removed_in_minor: Some(7),
    },
    ServedApi {
        group: "helm.toolkit.fluxcd.io",
        version: "v2",
        kinds: &["HelmRelease"],
        since_minor: 3,
        removed_in_minor: None,
    },
    ServedApi {
        group: "helm.toolkit.fluxcd.io",
        version: "v2beta2",
        kinds: &["HelmRelease"],
        since_minor: 3,
        removed_in_minor: Some(8),
    },
    ServedApi {
        group: "helm.toolkit.fluxcd.io",
        version: "v2beta1",
        kinds: &["HelmRelease"],
        since_minor: 3,
        removed_in_minor: Some(7),
    },
    ServedApi {
        group: "notification.toolkit.fluxcd.io",
        version: "v1beta3",
        kinds: &["Alert", "Provider"],
        since_minor: 3,
        removed_in_minor: None,
    },
    ServedApi {
        group: "notification.toolkit.fluxcd.io",
        version: "v1",
        kinds: &["Receiver"],
        since_minor: 3,
        removed_in_minor: None,
    },
    ServedApi {
        group: "notification.toolkit.fluxcd.io",
        version: "v1beta2",
        kinds: NOTIFICATION_OLD,
        since_minor: 3,
        removed_in_minor: Some(9),
    },
    ServedApi {
        group: "notification.toolkit.fluxcd.io",
        version: "v1beta1",
        kinds: NOTIFICATION_OLD,
        since_minor: 3,
        removed_in_minor: Some(7),
    },
    ServedApi {
        group: "image.toolkit.fluxcd.io",
        version: "v1",
        kinds: IMAGE,
        since_minor: 7,
        removed_in_minor: None,
    },
    ServedApi {
        group: "image.toolkit.fluxcd.io",
        version: "v1beta2",
        kinds: IMAGE,
        since_minor: 3,
        removed_in_minor: Some(9),
    },
    ServedApi {
        group: "image.toolkit.fluxcd.io",
        version: "v1beta1",
        kinds: IMAGE,
        since_minor: 3,
        removed_in_minor: Some(7),
    },
    ServedApi {
        group: "source.extensions.fluxcd.io",
        version: "v1beta1",
        kinds: &["ArtifactGenerator"],
        since_minor: 7,
        removed_in_minor: None,
    },
];

/// Kinds whose objects carry no status at all (notification v1beta3 Alert and Provider): they are
/// ready once they exist and never report a condition (§5.2).
pub const STATUSLESS_KINDS: &[&str] = &["Alert", "Provider"];

/// Whether an API group belongs to Flux (and so is covered by [`SERVED`]).
pub fn is_flux_group(group: &str) -> bool {
    group.ends_with(".fluxcd.io")
}

/// Whether `kind` is a Flux kind with a reconciler (has a status and a `Ready` condition).
pub fn is_flux_kind(kind: &str) -> bool {
    SERVED.iter().any(|s| s.kinds.contains(&kind))
}

/// The answer for one `apiVersion` + `kind` at one Flux version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
    Yes,
    /// Not a Flux API group: not this table's business.
    NotFlux,
    /// Not served, with the reason.
    No(String),
}

/// Whether Flux `flux` serves `kind` at `api_version` (`group/version`).
pub fn served(flux: &FluxVersion, api_version: &str, kind: &str) -> Served {
    let Some((group, version)) = api_version.split_once('/') else {
        return Served::NotFlux;
    };
    if !is_flux_group(group) {
        return Served::NotFlux;
    }
    let v = &flux.0;
    if v.major != 2 || v.minor < OLDEST_KNOWN_MINOR {
        return Served::No(format!(
            "Flux {flux} is outside the served-versions table (Flux 2.{OLDEST_KNOWN_MINOR} and later)"
        ));
    }
    let rows: Vec<&ServedApi> = SERVED
        .iter()
        .filter(|s| s.group == group && s.version == version && s.kinds.contains(&kind))
        .collect();
    if rows.is_empty() {
        let known = latest_api_version(flux, kind)
            .map(|a| format!("; Flux {flux} serves `{kind}` as `{a}`"))
            .unwrap_or_default();
        return Served::No(format!(
            "`{api_version}` has no kind `{kind}` in any Flux release{known}"
        ));
    }
    for r in &rows {
        let after_start = v.minor >= r.since_minor;
        let before_end = r.removed_in_minor.is_none_or(|end| v.minor < end);
        if after_start && before_end {
            return Served::Yes;
        }
    }
    let r = rows[0];
    let why = match r.removed_in_minor {
        Some(end) if v.minor >= end => format!("removed in Flux 2.{end}"),
        _ => format!("served from Flux 2.{}", r.since_minor),
    };
    let instead = latest_api_version(flux, kind)
        .map(|a| format!("; use `{a}`"))
        .unwrap_or_default();
    Served::No(format!(
        "Flux {flux} does not serve `{kind}` at `{api_version}` ({why}){instead}"
    ))
}

/// The newest `group/version` that Flux `flux` serves `kind` at, for resolving references that
/// give only a kind and for hints.
pub fn latest_api_version(flux: &FluxVersion, kind: &str) -> Option<String> {
    let m = flux.0.minor;
    // Rows are ordered newest version first within each group.
    SERVED
        .iter()
        .filter(|s| s.kinds.contains(&kind))
        .find(|s| m >= s.since_minor && s.removed_in_minor.is_none_or(|e| m < e))
        .map(|s| format!("{}/{}", s.group, s.version))
}

/// The cross-version `group/version` of a Flux kind (the first row that is never removed), used
/// when a step names a Flux kind without `apiVersion` and no cell is known yet.
pub fn stable_api_version(kind: &str) -> Option<String> {
    SERVED
        .iter()
        .find(|s| s.kinds.contains(&kind) && s.removed_in_minor.is_none())
        .map(|s| format!("{}/{}", s.group, s.version))
}

/// Core Kubernetes kinds scenarios commonly refer to without an `apiVersion`.
pub const CORE_KINDS: &[(&str, &str)] = &[
    ("ConfigMap", "v1"),
    ("Secret", "v1"),
    ("Service", "v1"),
    ("ServiceAccount", "v1"),
    ("Namespace", "v1"),
    ("Pod", "v1"),
    ("Event", "v1"),
    ("Deployment", "apps/v1"),
    ("StatefulSet", "apps/v1"),
    ("DaemonSet", "apps/v1"),
    ("Role", "rbac.authorization.k8s.io/v1"),
    ("RoleBinding", "rbac.authorization.k8s.io/v1"),
    ("ClusterRole", "rbac.authorization.k8s.io/v1"),
    ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1"),
];

/// Kinds that live outside namespaces, so references to them take no namespace.
pub const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "Node",
    "PersistentVolume",
];

/// `apiVersion` for a kind without one: a core kind or a Flux kind at its stable version.
pub fn default_api_version(kind: &str) -> Option<String> {
    CORE_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, a)| a.to_string())
        .or_else(|| stable_api_version(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> FluxVersion {
        s.parse().unwrap()
    }

    #[test]
    fn cross_version_apis_are_served_on_2_7_to_2_9() {
        for f in ["v2.7.0", "v2.8.8", "v2.9.4"] {
            for (api, kind) in [
                ("source.toolkit.fluxcd.io/v1", "GitRepository"),
                ("source.toolkit.fluxcd.io/v1", "OCIRepository"),
                ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
                ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
                ("notification.toolkit.fluxcd.io/v1beta3", "Alert"),
                ("notification.toolkit.fluxcd.io/v1", "Receiver"),
                ("image.toolkit.fluxcd.io/v1", "ImagePolicy"),
                ("source.extensions.fluxcd.io/v1beta1", "ArtifactGenerator"),
            ] {
                assert_eq!(served(&v(f), api, kind), Served::Yes, "{f} {api} {kind}");
            }
        }
    }

    #[test]
    fn removed_and_not_yet_served_versions_are_refused_with_a_hint() {
        let Served::No(why) = served(
            &v("v2.8.0"),
            "source.toolkit.fluxcd.io/v1beta2",
            "OCIRepository",
        ) else {
            panic!("v1beta2 was removed in 2.8");
        };
        assert!(
            why.contains("removed in Flux 2.8") && why.contains("source.toolkit.fluxcd.io/v1"),
            "{why}"
        );
        let Served::No(why) = served(&v("v2.6.3"), "image.toolkit.fluxcd.io/v1", "ImagePolicy")
        else {
            panic!("image v1 is new in 2.7");
        };
        assert!(why.contains("served from Flux 2.7"), "{why}");
        assert!(matches!(
            served(
                &v("v2.6.0"),
                "source.extensions.fluxcd.io/v1beta1",
                "ArtifactGenerator"
            ),
            Served::No(_)
        ));
        assert!(matches!(
            served(
                &v("v2.9.4"),
                "notification.toolkit.fluxcd.io/v1beta2",
                "Alert"
            ),
            Served::No(_)
        ));
        assert!(matches!(
            served(
                &v("v2.9.4"),
                "kustomize.toolkit.fluxcd.io/v1",
                "HelmRelease"
            ),
            Served::No(_)
        ));
        assert_eq!(
            served(&v("v2.9.4"), "apps/v1", "Deployment"),
            Served::NotFlux
        );
        assert_eq!(served(&v("v2.9.4"), "v1", "ConfigMap"), Served::NotFlux);
    }

    #[test]
    fn defaults_resolve_core_and_flux_kinds() {
        assert_eq!(default_api_version("ConfigMap").as_deref(), Some("v1"));
        assert_eq!(
            default_api_version("Kustomization").as_deref(),
            Some("kustomize.toolkit.fluxcd.io/v1")
        );
        assert_eq!(
            default_api_version("Alert").as_deref(),
            Some("notification.toolkit.fluxcd.io/v1beta3")
        );
        assert_eq!(default_api_version("Widget"), None);
        assert_eq!(
            latest_api_version(&v("v2.6.0"), "ImagePolicy").as_deref(),
            Some("image.toolkit.fluxcd.io/v1beta2")
        );
    }
}
