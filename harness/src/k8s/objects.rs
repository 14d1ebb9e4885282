//! Object references and the plain operations on `DynamicObject`s addressed by apiVersion + kind:
//! get, list, delete, merge patch (spec and status), and the core/v1 Events about an object.

use super::client::{Kube, ResolveError};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// Which object: apiVersion, kind, namespace (none for cluster-scoped kinds) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        Self {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// The reference of an object that carries its type and name.
    pub fn of(obj: &DynamicObject) -> Option<Self> {
        let types = obj.types.as_ref()?;
        Some(Self {
            api_version: types.api_version.clone(),
            kind: types.kind.clone(),
            namespace: obj.metadata.namespace.clone(),
            name: obj.metadata.name.clone()?,
        })
    }

    /// The reference of a manifest, if it names `apiVersion`, `kind` and `metadata.name`.
    pub fn of_value(obj: &Value) -> Option<Self> {
        Some(Self {
            api_version: obj.get("apiVersion")?.as_str()?.to_string(),
            kind: obj.get("kind")?.as_str()?.to_string(),
            namespace: obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
            name: obj.pointer("/metadata/name")?.as_str()?.to_string(),
        })
    }

    /// The API group (empty for core).
    pub fn group(&self) -> &str {
        self.api_version
            .split_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }

    /// A file-name-safe label: `kind-namespace-name`.
    pub fn file_stem(&self) -> String {
        let raw = match &self.namespace {
            Some(ns) => format!("{}-{}-{}", self.kind, ns, self.name),
            None => format!("{}-{}", self.kind, self.name),
        };
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect()
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// Objects of one kind, in one namespace or cluster-wide, optionally by label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
}

impl fmt::Display for ListQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(sel) = &self.label_selector {
            write!(f, " matching `{sel}`")?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in `{ns}`"),
            None => write!(f, " cluster-wide"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("{op} `{object}`")]
    Api {
        op: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("patch the status of `{object}`: its kind serves no status subresource")]
    NoStatus { object: String },
}

impl ObjectError {
    /// Whether the object is absent (404 from a get-modify request such as a merge patch).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ObjectError::Api { source: kube::Error::Api(s), .. } if s.code == 404)
    }

    /// Whether the API server could not be reached or answered with a server error, as opposed
    /// to refusing the request.
    pub fn is_unreachable(&self) -> bool {
        match self {
            ObjectError::Api { source, .. }
            | ObjectError::Resolve(ResolveError::Discovery { source, .. }) => {
                is_unreachable(source)
            }
            _ => false,
        }
    }
}

/// Transport failures and 5xx answers: the cluster, not the request, is at fault.
pub fn is_unreachable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// The canonical JSON of a dynamic object, with `apiVersion` and `kind` at the top.
pub fn to_value(obj: &DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

impl Kube {
    async fn api_of(&self, r: &ObjectRef) -> Result<Api<DynamicObject>, ResolveError> {
        let (api, _) = self
            .api(&r.api_version, &r.kind, r.namespace.as_deref(), &r.name)
            .await?;
        Ok(api)
    }

    /// The object, or `None` when it does not exist.
    pub async fn get(&self, r: &ObjectRef) -> Result<Option<DynamicObject>, ObjectError> {
        let api = self.api_of(r).await?;
        api.get_opt(&r.name)
            .await
            .map(|o| o.map(|o| with_types(o, r)))
            .map_err(|source| ObjectError::Api {
                op: "get",
                object: r.to_string(),
                source,
            })
    }

    /// Objects of a kind, in one namespace or across all, optionally by label selector (`k=v,...`).
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<DynamicObject>, ObjectError> {
        let (api, resolved) = match namespace {
            Some(ns) => self.api(api_version, kind, Some(ns), "*").await?,
            None => self.api_all(api_version, kind).await?,
        };
        let mut lp = ListParams::default();
        if let Some(sel) = label_selector {
            lp = lp.labels(sel);
        }
        let what = format!("{kind} in {}", namespace.unwrap_or("all namespaces"));
        let list = api.list(&lp).await.map_err(|source| ObjectError::Api {
            op: "list",
            object: what,
            source,
        })?;
        let types = kube::core::TypeMeta {
            api_version: resolved.resource.api_version.clone(),
            kind: resolved.resource.kind.clone(),
        };
        Ok(list
            .items
            .into_iter()
            .map(|mut o| {
                o.types.get_or_insert_with(|| types.clone());
                o
            })
            .collect())
    }

    /// Delete the object; `false` when it was already gone.
    pub async fn delete(&self, r: &ObjectRef) -> Result<bool, ObjectError> {
        let api = self.api_of(r).await?;
        match api.delete(&r.name, &DeleteParams::background()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(source) => Err(ObjectError::Api {
                op: "delete",
                object: r.to_string(),
                source,
            }),
        }
    }

    /// JSON merge patch (RFC 7386) of the object.
    pub async fn merge_patch(
        &self,
        r: &ObjectRef,
        patch: &Value,
    ) -> Result<DynamicObject, ObjectError> {
        let api = self.api_of(r).await?;
        api.patch(&r.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|o| with_types(o, r))
            .map_err(|source| ObjectError::Api {
                op: "merge-patch",
                object: r.to_string(),
                source,
            })
    }

    /// JSON merge patch of the status subresource.
    pub async fn merge_patch_status(
        &self,
        r: &ObjectRef,
        patch: &Value,
    ) -> Result<DynamicObject, ObjectError> {
        let (api, resolved) = self
            .api(&r.api_version, &r.kind, r.namespace.as_deref(), &r.name)
            .await?;
        if !resolved.has_status {
            return Err(ObjectError::NoStatus {
                object: r.to_string(),
            });
        }
        api.patch_status(&r.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|o| with_types(o, r))
            .map_err(|source| ObjectError::Api {
                op: "merge-patch the status of",
                object: r.to_string(),
                source,
            })
    }

    /// core/v1 Events whose involved object is `r`, oldest first.
    pub async fn events_for(&self, r: &ObjectRef) -> Result<Vec<Event>, ObjectError> {
        let api: Api<Event> = match &r.namespace {
            Some(ns) => Api::namespaced(self.client().clone(), ns),
            None => Api::all(self.client().clone()),
        };
        let fields = format!(
            "involvedObject.kind={},involvedObject.name={}",
            r.kind, r.name
        );
        let mut events = api
            .list(&ListParams::default().fields(&fields))
            .await
            .map_err(|source| ObjectError::Api {
                op: "list the events of",
                object: r.to_string(),
                source,
            })?
            .items;
        events.sort_by_key(event_time);
        Ok(events)
    }
}

pub(super) fn event_time(e: &Event) -> String {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
        .unwrap_or_default()
}

/// Objects from the API may omit `apiVersion`/`kind` (list items); fill them from the request.
fn with_types(mut obj: DynamicObject, r: &ObjectRef) -> DynamicObject {
    obj.types.get_or_insert_with(|| kube::core::TypeMeta {
        api_version: r.api_version.clone(),
        kind: r.kind.clone(),
    });
    obj
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_render_and_make_file_names() {
        let r = ObjectRef::new(
            "apps/v1",
            "Deployment",
            Some("flux-system"),
            "source-controller",
        );
        assert_eq!(r.to_string(), "Deployment/flux-system/source-controller");
        assert_eq!(r.group(), "apps");
        assert_eq!(r.file_stem(), "deployment-flux-system-source-controller");
        let c = ObjectRef::new("v1", "Namespace", None, "a/b");
        assert_eq!(c.group(), "");
        assert_eq!(c.file_stem(), "namespace-a_b");
    }
}
