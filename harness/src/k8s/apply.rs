//! Server-side apply of multi-document YAML: CRDs first and waited for until `Established`,
//! then namespaces, then everything else in document order, all as field manager `flux-compat`.

use super::client::{Kube, ResolveError};
use super::objects::ObjectRef;
use super::wait::WaitError;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// The field manager of every apply the harness makes.
pub const FIELD_MANAGER: &str = "flux-compat";

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("parse YAML document {index} of `{source_name}`")]
    Yaml {
        source_name: String,
        index: usize,
        #[source]
        source: serde_norway::Error,
    },
    #[error("read document {index} of `{source_name}`: {problem}")]
    Shape {
        source_name: String,
        index: usize,
        problem: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("apply `{object}`")]
    Resolve {
        object: String,
        #[source]
        source: ResolveError,
    },
    #[error("apply `{object}`")]
    Api {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("wait for CRD `{crd}` to be established before applying the objects that use it")]
    CrdNotEstablished {
        crd: String,
        #[source]
        source: Box<WaitError>,
    },
}

impl ApplyError {
    /// Whether the API server was unreachable (an infrastructure error) rather than refusing.
    pub fn is_unreachable(&self) -> bool {
        match self {
            ApplyError::Api { source, .. } => super::objects::is_unreachable(source),
            ApplyError::Resolve {
                source: ResolveError::Discovery { source, .. },
                ..
            } => super::objects::is_unreachable(source),
            ApplyError::CrdNotEstablished { source, .. } => source.is_unreachable(),
            _ => false,
        }
    }
}

/// How to apply.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Namespace for namespaced objects that name none.
    pub default_namespace: Option<String>,
    /// How long each CRD may take to become `Established`.
    pub crd_timeout: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            default_namespace: None,
            crd_timeout: Duration::from_secs(60),
        }
    }
}

/// Parse multi-document YAML into objects, skipping empty documents and expanding `kind: List`.
/// Every document must carry `apiVersion`, `kind` and `metadata.name`.
pub fn parse_documents(yaml: &str, source_name: &str) -> Result<Vec<DynamicObject>, ParseError> {
    let mut out = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(yaml).enumerate() {
        let index = i + 1;
        let value = Value::deserialize(doc).map_err(|source| ParseError::Yaml {
            source_name: source_name.to_string(),
            index,
            source,
        })?;
        let shape = |problem: String| ParseError::Shape {
            source_name: source_name.to_string(),
            index,
            problem,
        };
        match value {
            Value::Null => continue,
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                let items = m
                    .get("items")
                    .and_then(Value::as_array)
                    .ok_or_else(|| shape("a `List` without `items`".to_string()))?;
                for item in items {
                    out.push(to_object(item.clone()).map_err(shape)?);
                }
            }
            Value::Object(_) => out.push(to_object(value).map_err(shape)?),
            other => {
                return Err(shape(format!(
                    "expected a mapping, found {}",
                    json_type(&other)
                )));
            }
        }
    }
    Ok(out)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

fn to_object(value: Value) -> Result<DynamicObject, String> {
    for (pointer, what) in [
        ("/apiVersion", "apiVersion"),
        ("/kind", "kind"),
        ("/metadata/name", "metadata.name"),
    ] {
        match value.pointer(pointer).and_then(Value::as_str) {
            Some(s) if !s.is_empty() => {}
            _ => return Err(format!("missing `{what}`")),
        }
    }
    serde_json::from_value(value).map_err(|e| format!("not a Kubernetes object: {e}"))
}

fn is_crd(obj: &DynamicObject) -> bool {
    obj.types.as_ref().is_some_and(|t| {
        t.kind == "CustomResourceDefinition" && t.api_version.starts_with("apiextensions.k8s.io/")
    })
}

fn is_namespace(obj: &DynamicObject) -> bool {
    obj.types
        .as_ref()
        .is_some_and(|t| t.kind == "Namespace" && t.api_version == "v1")
}

impl Kube {
    /// Parse and apply a multi-document YAML text (see [`Kube::apply_objects`]).
    pub async fn apply_yaml(
        &self,
        yaml: &str,
        source_name: &str,
        options: &ApplyOptions,
    ) -> Result<Vec<ObjectRef>, ApplyError> {
        let objects = parse_documents(yaml, source_name)?;
        self.apply_objects(objects, options).await
    }

    /// Apply objects given as JSON (rendered manifests), namespaced ones that name no namespace
    /// into `default_namespace` (see [`Kube::apply_objects`]).
    pub async fn apply_values(
        &self,
        objects: &[Value],
        default_namespace: Option<&str>,
    ) -> Result<Vec<ObjectRef>, ApplyError> {
        let mut dynamic = Vec::with_capacity(objects.len());
        for (i, o) in objects.iter().enumerate() {
            dynamic.push(to_object(o.clone()).map_err(|problem| ParseError::Shape {
                source_name: "the rendered manifests".to_string(),
                index: i + 1,
                problem,
            })?);
        }
        let options = ApplyOptions {
            default_namespace: default_namespace.map(str::to_string),
            ..ApplyOptions::default()
        };
        self.apply_objects(dynamic, &options).await
    }

    /// Apply objects with server-side apply: CRDs first (then wait until each is `Established`,
    /// so their kinds resolve), namespaces next, then the rest in the given order.
    /// Returns what was applied, in apply order.
    pub async fn apply_objects(
        &self,
        objects: Vec<DynamicObject>,
        options: &ApplyOptions,
    ) -> Result<Vec<ObjectRef>, ApplyError> {
        let (crds, rest): (Vec<_>, Vec<_>) = objects.into_iter().partition(is_crd);
        let (namespaces, rest): (Vec<_>, Vec<_>) = rest.into_iter().partition(is_namespace);
        let mut applied = Vec::new();
        for crd in &crds {
            applied.push(self.apply_one(crd, options).await?);
        }
        if !crds.is_empty() {
            let waits = applied.iter().map(|r| async move {
                self.wait_ready(r, options.crd_timeout).await.map_err(|e| {
                    ApplyError::CrdNotEstablished {
                        crd: r.name.clone(),
                        source: Box::new(e),
                    }
                })
            });
            futures::future::try_join_all(waits).await?;
            // Kinds of the new CRDs are looked up fresh from here on.
            self.forget_discovery();
        }
        for obj in namespaces.iter().chain(rest.iter()) {
            applied.push(self.apply_one(obj, options).await?);
        }
        Ok(applied)
    }

    /// Server-side apply of one object (forced: the harness owns what it applies).
    pub async fn apply_one(
        &self,
        obj: &DynamicObject,
        options: &ApplyOptions,
    ) -> Result<ObjectRef, ApplyError> {
        let types = obj.types.clone().unwrap_or_default();
        let name = obj.metadata.name.clone().unwrap_or_default();
        let mut target = ObjectRef::new(
            &types.api_version,
            &types.kind,
            obj.metadata.namespace.as_deref(),
            &name,
        );
        let resolved = self
            .resolve(&types.api_version, &types.kind)
            .await
            .map_err(|source| ApplyError::Resolve {
                object: target.to_string(),
                source,
            })?;
        let mut body = obj.clone();
        if resolved.namespaced {
            if target.namespace.is_none() {
                target.namespace = options.default_namespace.clone();
                body.metadata.namespace = options.default_namespace.clone();
            }
        } else {
            // Cluster-scoped kinds ignore namespaces; sending one is rejected by real servers.
            target.namespace = None;
            body.metadata.namespace = None;
        }
        let (api, _) = self
            .api(
                &target.api_version,
                &target.kind,
                target.namespace.as_deref(),
                &name,
            )
            .await
            .map_err(|source| ApplyError::Resolve {
                object: target.to_string(),
                source,
            })?;
        // Server-managed fields must not be part of an apply configuration.
        body.metadata.resource_version = None;
        body.metadata.managed_fields = None;
        body.metadata.uid = None;
        body.metadata.creation_timestamp = None;
        if let Value::Object(m) = &mut body.data {
            m.remove("status");
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(&name, &params, &Patch::Apply(&body))
            .await
            .map_err(|source| ApplyError::Api {
                object: target.to_string(),
                source,
            })?;
        // The reference only: applied content may be a Secret.
        tracing::debug!(object = %target, "applied");
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documents_lists_and_skips_empty_ones() {
        let yaml = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c, namespace: a}\n  data: {k: v}\n";
        let objs = parse_documents(yaml, "t.yaml").unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1].data["data"]["k"], "v");
    }

    #[test]
    fn reports_the_bad_document() {
        let err = parse_documents(
            "apiVersion: v1\nkind: X\nmetadata: {name: a}\n---\nkind: Y\n",
            "t.yaml",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "read document 2 of `t.yaml`: missing `apiVersion`"
        );
        let err = parse_documents("a: [\n", "t.yaml").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("parse YAML document 1 of `t.yaml`")
        );
        let err = parse_documents("- 1\n", "t.yaml").unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a mapping, found a sequence")
        );
    }
}
