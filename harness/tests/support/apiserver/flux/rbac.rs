//! TEST DOUBLE RBAC authorizer: what the API server's RBAC authorizer decides for an
//! impersonated ServiceAccount (kustomize-controller `spec.serviceAccountName`), from the stored
//! Roles, ClusterRoles and their bindings. Denials read like the API server's Forbidden.

use super::common::{Ctx, meta};
use serde_json::Value;

/// A user as the API server sees an impersonated ServiceAccount.
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }
}

fn list(ctx: &Ctx, kind: &str) -> Vec<Value> {
    ctx.kind("rbac.authorization.k8s.io/v1", kind)
        .map(|t| ctx.store.list(&t, None).0)
        .unwrap_or_default()
}

fn binds(binding: &Value, user: &User) -> bool {
    binding["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| match s["kind"].as_str() {
            Some("ServiceAccount") => {
                user.name
                    == format!(
                        "system:serviceaccount:{}:{}",
                        s["namespace"]
                            .as_str()
                            .unwrap_or(meta(binding, "namespace")),
                        s["name"].as_str().unwrap_or_default()
                    )
            }
            Some("User") => s["name"] == user.name.as_str(),
            Some("Group") => user.groups.iter().any(|g| s["name"] == g.as_str()),
            _ => false,
        })
}

fn matches(list: &Value, want: &str) -> bool {
    list.as_array()
        .into_iter()
        .flatten()
        .any(|x| x == "*" || x == want)
}

fn rule_allows(rule: &Value, verb: &str, group: &str, resource: &str, name: &str) -> bool {
    matches(&rule["verbs"], verb)
        && matches(&rule["apiGroups"], group)
        && matches(&rule["resources"], resource)
        && rule["resourceNames"]
            .as_array()
            .is_none_or(|n| n.is_empty() || n.iter().any(|x| x == name))
}

fn role_rules(ctx: &Ctx, role_ref: &Value, namespace: &str) -> Vec<Value> {
    let name = role_ref["name"].as_str().unwrap_or_default();
    let role = match role_ref["kind"].as_str() {
        Some("ClusterRole") => list(ctx, "ClusterRole")
            .into_iter()
            .find(|r| meta(r, "name") == name),
        _ => list(ctx, "Role")
            .into_iter()
            .find(|r| meta(r, "name") == name && meta(r, "namespace") == namespace),
    };
    role.and_then(|r| r["rules"].as_array().cloned())
        .unwrap_or_default()
}

/// Whether `user` may `verb` `resource` (`group`) named `name` in `namespace` (None: cluster).
pub fn allowed(
    ctx: &Ctx,
    user: &User,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: &str,
) -> bool {
    let mut rules = Vec::new();
    for b in list(ctx, "ClusterRoleBinding") {
        if binds(&b, user) {
            rules.extend(role_rules(ctx, &b["roleRef"], ""));
        }
    }
    if let Some(ns) = namespace {
        for b in list(ctx, "RoleBinding") {
            if meta(&b, "namespace") == ns && binds(&b, user) {
                rules.extend(role_rules(ctx, &b["roleRef"], ns));
            }
        }
    }
    rules
        .iter()
        .any(|r| rule_allows(r, verb, group, resource, name))
}

/// The API server's Forbidden message for a denied request.
pub fn forbidden(
    user: &User,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: &str,
) -> String {
    let scope = match namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    format!(
        "{qualified} \"{name}\" is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}",
        user.name
    )
}
