//! The CustomResourceDefinitions inside a Flux install manifest, each with the component that
//! ships it, as structural schemas (`k8s::schema`). Answers which schema an `apiVersion`/`kind`
//! meets in a cell: only the CRDs of installed components exist there, as after `render`.

use crate::k8s::schema::{CrdSchema, CrdVersion, SchemaError};
use crate::model::Component;
use serde_json::Value;

/// The label Flux puts on every per-component object (as `manifests::render` reads it).
const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

#[derive(Debug, thiserror::Error)]
pub enum CrdsError {
    #[error("read the CustomResourceDefinitions of `{source_name}`")]
    Parse {
        source_name: String,
        #[source]
        source: crate::k8s::ParseError,
    },
    #[error("read the CustomResourceDefinitions of `{source_name}`")]
    Schema {
        source_name: String,
        #[source]
        source: SchemaError,
    },
    #[error("read the CustomResourceDefinitions of `{source_name}`: it holds none")]
    Empty { source_name: String },
}

/// One CRD and the component whose objects it serves (`None`: not labelled with a known one).
#[derive(Clone, Debug)]
struct Entry {
    component: Option<Component>,
    crd: CrdSchema,
}

/// The CRDs of one install manifest.
#[derive(Clone, Debug)]
pub struct Crds {
    entries: Vec<Entry>,
}

/// What an `apiVersion`/`kind` meets in a cell with some components installed.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// A CRD serves it: validate against `version.schema`.
    Served {
        crd: &'a CrdSchema,
        version: &'a CrdVersion,
    },
    /// The install defines the kind, but its component is not installed in the cell.
    NotInstalled { component: Component },
    /// The CRD exists but does not serve this version; the versions it serves.
    NotServed { served: Vec<String> },
    /// The group belongs to the install but no CRD defines this kind; the group's kinds.
    UnknownKind { known: Vec<String> },
    /// Not a group of these manifests (Kubernetes built-ins, other projects): nothing to check.
    Foreign,
}

impl Crds {
    /// Every `CustomResourceDefinition` in the manifest text.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, CrdsError> {
        let objects =
            crate::k8s::parse_documents(text, source_name).map_err(|source| CrdsError::Parse {
                source_name: source_name.to_string(),
                source,
            })?;
        let mut entries = Vec::new();
        for obj in objects {
            if obj.types.as_ref().map(|t| t.kind.as_str()) != Some("CustomResourceDefinition") {
                continue;
            }
            let component = obj
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(COMPONENT_LABEL))
                .and_then(|c| c.parse::<Component>().ok());
            let value = serde_json::to_value(&obj).unwrap_or(Value::Null);
            let crd = CrdSchema::from_crd(&value).map_err(|source| CrdsError::Schema {
                source_name: source_name.to_string(),
                source,
            })?;
            entries.push(Entry { component, crd });
        }
        if entries.is_empty() {
            return Err(CrdsError::Empty {
                source_name: source_name.to_string(),
            });
        }
        Ok(Self { entries })
    }

    /// How many CRDs the manifest holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The schema `apiVersion`/`kind` meets in a cell running `components`.
    pub fn lookup(&self, api_version: &str, kind: &str, components: &[Component]) -> Lookup<'_> {
        let Some((group, version)) = api_version.split_once('/') else {
            return Lookup::Foreign; // core group (`v1`)
        };
        let in_group: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.crd.group == group)
            .collect();
        if in_group.is_empty() {
            return Lookup::Foreign;
        }
        let Some(entry) = in_group.iter().find(|e| e.crd.kind == kind) else {
            let mut known: Vec<String> = in_group.iter().map(|e| e.crd.kind.clone()).collect();
            known.sort();
            return Lookup::UnknownKind { known };
        };
        if let Some(component) = entry.component
            && !components.contains(&component)
        {
            return Lookup::NotInstalled { component };
        }
        match entry.crd.served(version) {
            Some(v) => Lookup::Served {
                crd: &entry.crd,
                version: v,
            },
            None => Lookup::NotServed {
                served: entry
                    .crd
                    .versions
                    .iter()
                    .filter(|v| v.served)
                    .map(|v| format!("{group}/{}", v.name))
                    .collect(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRDS: &str = "
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gitrepositories.source.toolkit.fluxcd.io, labels: {app.kubernetes.io/component: source-controller}}
spec:
  group: source.toolkit.fluxcd.io
  names: {kind: GitRepository, plural: gitrepositories}
  scope: Namespaced
  versions:
    - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}
    - {name: v1beta2, served: false, storage: false}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: imagepolicies.image.toolkit.fluxcd.io, labels: {app.kubernetes.io/component: image-reflector-controller}}
spec:
  group: image.toolkit.fluxcd.io
  names: {kind: ImagePolicy, plural: imagepolicies}
  scope: Namespaced
  versions:
    - {name: v1, served: true, storage: true}
---
apiVersion: v1
kind: Namespace
metadata: {name: flux-system}
";

    #[test]
    fn lookups_follow_the_installed_components_and_served_versions() {
        let crds = Crds::parse(CRDS, "install.yaml").unwrap();
        assert_eq!(crds.len(), 2);
        let source = [Component::SourceController];
        assert!(matches!(
            crds.lookup("source.toolkit.fluxcd.io/v1", "GitRepository", &source),
            Lookup::Served { crd, version } if crd.kind == "GitRepository" && version.name == "v1"
        ));
        assert!(matches!(
            crds.lookup("source.toolkit.fluxcd.io/v1beta2", "GitRepository", &source),
            Lookup::NotServed { served } if served == ["source.toolkit.fluxcd.io/v1"]
        ));
        assert!(matches!(
            crds.lookup("source.toolkit.fluxcd.io/v1", "GitRepo", &source),
            Lookup::UnknownKind { known } if known == ["GitRepository"]
        ));
        assert!(matches!(
            crds.lookup("image.toolkit.fluxcd.io/v1", "ImagePolicy", &source),
            Lookup::NotInstalled {
                component: Component::ImageReflectorController
            }
        ));
        assert!(matches!(
            crds.lookup("v1", "ConfigMap", &source),
            Lookup::Foreign
        ));
        assert!(matches!(
            crds.lookup("apps/v1", "Deployment", &source),
            Lookup::Foreign
        ));
        assert!(matches!(
            Crds::parse(
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n",
                "x.yaml"
            ),
            Err(CrdsError::Empty { .. })
        ));
    }
}
