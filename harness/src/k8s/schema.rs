//! Structural schemas of CustomResourceDefinitions, checked the way the API server checks them:
//! per served version, an object is validated against its `openAPIV3Schema` with strict field
//! validation (unknown fields are errors with their path, as server-side apply always reports
//! them), `required`, `enum`, `pattern`, types, the formats the API server checks, bounds,
//! `x-kubernetes-preserve-unknown-fields`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-embedded-resource` and `additionalProperties` maps; and pruned (fields the schema
//! lacks dropped, as the API server does for writes that are not strict, and always for status),
//! and defaulted. `x-kubernetes-validations` (CEL rules) are not evaluated: a rule is counted in
//! [`CrdVersion::cel_rules`] so a caller can say it was not checked. Pure and synchronous.

use regex::Regex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// One version of a CRD as the API server serves it.
#[derive(Clone, Debug)]
pub struct CrdVersion {
    pub name: String,
    pub served: bool,
    pub storage: bool,
    /// Whether the version has a `status` subresource.
    pub status: bool,
    /// The `openAPIV3Schema` (an object schema; `{}` when the CRD gives none).
    pub schema: Value,
    /// How many `x-kubernetes-validations` rules the schema holds (not evaluated here).
    pub cel_rules: usize,
}

/// What a CustomResourceDefinition defines.
#[derive(Clone, Debug)]
pub struct CrdSchema {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub versions: Vec<CrdVersion>,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("read CustomResourceDefinition `{name}`: {problem}")]
    Shape { name: String, problem: String },
}

impl CrdSchema {
    /// Read a CRD object (`apiextensions.k8s.io/v1`).
    pub fn from_crd(crd: &Value) -> Result<Self, SchemaError> {
        let name = str_at(crd, "/metadata/name")
            .unwrap_or_default()
            .to_string();
        let shape = |problem: &str| SchemaError::Shape {
            name: name.clone(),
            problem: problem.to_string(),
        };
        let need = |p: &str, what: &str| {
            str_at(crd, p)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| shape(&format!("missing `{what}`")))
        };
        let group = need("/spec/group", "spec.group")?;
        let kind = need("/spec/names/kind", "spec.names.kind")?;
        let plural = need("/spec/names/plural", "spec.names.plural")?;
        let namespaced = str_at(crd, "/spec/scope") == Some("Namespaced");
        let mut versions = Vec::new();
        for v in crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .ok_or_else(|| shape("missing `spec.versions`"))?
        {
            let schema = v
                .pointer("/schema/openAPIV3Schema")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"type": "object"}));
            versions.push(CrdVersion {
                name: str_at(v, "/name").unwrap_or_default().to_string(),
                served: v.get("served").and_then(Value::as_bool).unwrap_or(false),
                storage: v.get("storage").and_then(Value::as_bool).unwrap_or(false),
                status: v.pointer("/subresources/status").is_some(),
                cel_rules: count_rules(&schema),
                schema,
            });
        }
        Ok(Self {
            name,
            group,
            kind,
            plural,
            namespaced,
            versions,
        })
    }

    /// The served version `version`.
    pub fn served(&self, version: &str) -> Option<&CrdVersion> {
        self.versions.iter().find(|v| v.served && v.name == version)
    }
}

fn count_rules(schema: &Value) -> usize {
    match schema {
        Value::Object(m) => {
            let own = m
                .get("x-kubernetes-validations")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            own + m.values().map(count_rules).sum::<usize>()
        }
        Value::Array(a) => a.iter().map(count_rules).sum(),
        _ => 0,
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// What is wrong at one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A field the schema does not declare (strict field validation).
    Unknown,
    /// A required field is absent.
    Required,
    /// The value has the wrong type; the expected one.
    Type(String),
    /// Not among the allowed values; them.
    Enum(Vec<String>),
    /// Does not match the pattern.
    Pattern(String),
    /// Not in the format (`date-time`, `int32`, ...).
    Format(String),
    /// Out of bounds (length, size, range); the rule broken.
    Bounds(String),
    /// `null` where the schema is not nullable.
    Null,
}

/// One problem at a field path (`spec.sourceRef.kind`, `spec.items[0]`, `spec.map[key]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub problem: Problem,
    /// The offending value, JSON-encoded (empty for missing fields).
    pub value: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.path;
        match &self.problem {
            Problem::Unknown => write!(f, ".{p}: field not declared in schema"),
            Problem::Required => write!(f, "{p}: Required value"),
            Problem::Type(t) => write!(
                f,
                "{p}: Invalid value: {}: {p} in body must be of type {t}",
                self.value
            ),
            Problem::Enum(allowed) => write!(
                f,
                "{p}: Unsupported value: {}: supported values: {}",
                self.value,
                allowed.join(", ")
            ),
            Problem::Pattern(re) => write!(
                f,
                "{p}: Invalid value: {}: {p} in body should match '{re}'",
                self.value
            ),
            Problem::Format(fmt_) => write!(
                f,
                "{p}: Invalid value: {}: {p} in body must be of type {fmt_}",
                self.value
            ),
            Problem::Bounds(rule) => write!(f, "{p}: Invalid value: {}: {rule}", self.value),
            Problem::Null => write!(
                f,
                "{p}: Invalid value: \"null\": {p} in body must not be null"
            ),
        }
    }
}

fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn join_map_key(path: &str, key: &str) -> String {
    format!("{path}[{key}]")
}

fn join_index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

/// Keys every Kubernetes object (the root and embedded resources) carries beside its schema.
const OBJECT_KEYS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Compiled patterns, shared: the same few dozen patterns are checked on every write.
fn pattern(re: &str) -> Option<Arc<Regex>> {
    static CACHE: Mutex<Option<HashMap<String, Option<Arc<Regex>>>>> = Mutex::new(None);
    let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    guard
        .get_or_insert_with(HashMap::new)
        .entry(re.to_string())
        .or_insert_with(|| Regex::new(re).ok().map(Arc::new))
        .clone()
}

/// Validate `obj` against `schema` with strict field validation: every problem, in document order.
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    check(schema, obj, "", true, &mut out);
    out
}

fn problem(out: &mut Vec<FieldError>, path: &str, problem: Problem, value: Option<&Value>) {
    out.push(FieldError {
        path: path.to_string(),
        problem,
        value: value.map(Value::to_string).unwrap_or_default(),
    });
}

fn check(schema: &Value, v: &Value, path: &str, root: bool, out: &mut Vec<FieldError>) {
    if v.is_null() {
        if !flag(schema, "nullable") && !schema.as_object().is_none_or(|m| m.is_empty()) {
            problem(out, path, Problem::Null, None);
        }
        return;
    }
    if !check_type(schema, v, path, out) {
        return;
    }
    check_value(schema, v, path, out);
    match v {
        Value::Object(m) => check_object(schema, m, path, root, out),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &join_index(path, i), false, out);
                }
            }
        }
        _ => {}
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        let Some(list) = schema.get(key).and_then(Value::as_array) else {
            continue;
        };
        let passing = list
            .iter()
            .filter(|s| {
                let mut inner = Vec::new();
                check_value_tree(s, v, path, &mut inner);
                inner.is_empty()
            })
            .count();
        let ok = match key {
            "allOf" => passing == list.len(),
            "anyOf" => passing >= 1,
            _ => passing == 1,
        };
        if !ok {
            problem(
                out,
                path,
                Problem::Bounds(format!("{path} in body must validate {key}")),
                Some(v),
            );
        }
    }
}

/// The value validations of a schema applied to a subtree, without unknown-field checks (the
/// branches of `allOf`/`anyOf`/`oneOf` in structural schemas carry value validations only).
fn check_value_tree(schema: &Value, v: &Value, path: &str, out: &mut Vec<FieldError>) {
    if schema.get("type").is_some() && !check_type(schema, v, path, out) {
        return;
    }
    check_value(schema, v, path, out);
    if let (Some(props), Value::Object(m)) = (schema.get("properties"), v) {
        for (k, sub) in props.as_object().into_iter().flatten() {
            if let Some(child) = m.get(k) {
                check_value_tree(sub, child, &join_key(path, k), out);
            }
        }
    }
    for req in required(schema) {
        if let Value::Object(m) = v
            && !m.contains_key(req)
        {
            problem(out, &join_key(path, req), Problem::Required, None);
        }
    }
}

fn required(schema: &Value) -> impl Iterator<Item = &str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// The declared type; `false` stops further checks of this value.
fn check_type(schema: &Value, v: &Value, path: &str, out: &mut Vec<FieldError>) -> bool {
    if flag(schema, "x-kubernetes-int-or-string") {
        if matches!(type_of(v), "integer" | "string") {
            return true;
        }
        problem(
            out,
            path,
            Problem::Type("integer or string".into()),
            Some(v),
        );
        return false;
    }
    let Some(want) = schema.get("type").and_then(Value::as_str) else {
        return true;
    };
    let got = type_of(v);
    let ok = want == got || (want == "number" && got == "integer");
    if !ok {
        problem(
            out,
            path,
            Problem::Type(want.to_string()),
            Some(&Value::from(got)),
        );
    }
    ok
}

fn check_value(schema: &Value, v: &Value, path: &str, out: &mut Vec<FieldError>) {
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list = allowed.iter().map(Value::to_string).collect();
        problem(out, path, Problem::Enum(list), Some(v));
    }
    match v {
        Value::String(s) => check_string(schema, s, v, path, out),
        Value::Number(n) => check_number(schema, n, v, path, out),
        Value::Array(a) => {
            bounds(
                schema,
                "minItems",
                "maxItems",
                a.len(),
                "items",
                v,
                path,
                out,
            );
            if flag(schema, "uniqueItems")
                || schema.get("x-kubernetes-list-type") == Some(&"set".into())
            {
                for (i, item) in a.iter().enumerate() {
                    if a[..i].contains(item) {
                        problem(
                            out,
                            &join_index(path, i),
                            Problem::Bounds("Duplicate value".into()),
                            Some(item),
                        );
                    }
                }
            }
        }
        Value::Object(m) => {
            bounds(
                schema,
                "minProperties",
                "maxProperties",
                m.len(),
                "properties",
                v,
                path,
                out,
            );
        }
        _ => {}
    }
}

#[allow(clippy::too_many_arguments)]
fn bounds(
    schema: &Value,
    min_key: &str,
    max_key: &str,
    n: usize,
    what: &str,
    v: &Value,
    path: &str,
    out: &mut Vec<FieldError>,
) {
    let n = n as u64;
    if let Some(min) = schema.get(min_key).and_then(Value::as_u64)
        && n < min
    {
        problem(
            out,
            path,
            Problem::Bounds(format!("{path} in body should have at least {min} {what}")),
            Some(v),
        );
    }
    if let Some(max) = schema.get(max_key).and_then(Value::as_u64)
        && n > max
    {
        problem(
            out,
            path,
            Problem::Bounds(format!("{path} in body should have at most {max} {what}")),
            Some(v),
        );
    }
}

fn check_string(schema: &Value, s: &str, v: &Value, path: &str, out: &mut Vec<FieldError>) {
    let len = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        problem(
            out,
            path,
            Problem::Bounds(format!(
                "{path} in body should be at least {min} chars long"
            )),
            Some(v),
        );
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        problem(
            out,
            path,
            Problem::Bounds(format!("Too long: may not be more than {max} bytes")),
            Some(v),
        );
    }
    if let Some(re) = schema.get("pattern").and_then(Value::as_str)
        && pattern(re).is_some_and(|r| !r.is_match(s))
    {
        problem(out, path, Problem::Pattern(re.to_string()), Some(v));
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && !string_format_ok(format, s)
    {
        problem(out, path, Problem::Format(format.to_string()), Some(v));
    }
}

/// The string formats the API server validates (kube-openapi `strfmt` as used by
/// apiextensions-apiserver); other formats are annotations only.
fn string_format_ok(format: &str, s: &str) -> bool {
    use base64::Engine as _;
    use time::format_description::well_known::Rfc3339;
    match format {
        "date-time" | "datetime" => time::OffsetDateTime::parse(s, &Rfc3339).is_ok(),
        "date" => {
            let f = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(s, &f).is_ok()
        }
        "byte" => base64::engine::general_purpose::STANDARD.decode(s).is_ok(),
        "uuid" => uuid_like(s),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "hostname" => hostname_like(s),
        _ => true,
    }
}

fn uuid_like(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn hostname_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn check_number(
    schema: &Value,
    n: &serde_json::Number,
    v: &Value,
    path: &str,
    out: &mut Vec<FieldError>,
) {
    let x = n.as_f64().unwrap_or_default();
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMinimum");
        if x < min || (exclusive && x == min) {
            let rel = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            problem(
                out,
                path,
                Problem::Bounds(format!("{path} in body should be {rel} {min}")),
                Some(v),
            );
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMaximum");
        if x > max || (exclusive && x == max) {
            let rel = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            problem(
                out,
                path,
                Problem::Bounds(format!("{path} in body should be {rel} {max}")),
                Some(v),
            );
        }
    }
    let fits = match schema.get("format").and_then(Value::as_str) {
        Some("int32") => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
        Some("int64") => n.as_i64().is_some(),
        _ => true,
    };
    if !fits {
        let f = schema
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or_default();
        problem(out, path, Problem::Format(f.to_string()), Some(v));
    }
}

fn check_object(
    schema: &Value,
    m: &Map<String, Value>,
    path: &str,
    root: bool,
    out: &mut Vec<FieldError>,
) {
    let embedded = root || flag(schema, "x-kubernetes-embedded-resource");
    for req in required(schema) {
        if !m.contains_key(req) {
            problem(out, &join_key(path, req), Problem::Required, None);
        }
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    for (k, child) in m {
        if embedded && OBJECT_KEYS.contains(&k.as_str()) && props.is_none_or(|p| !p.contains_key(k))
        {
            continue;
        }
        if root && k == "metadata" {
            // ObjectMeta is validated by the API server itself, never by the CRD schema.
            continue;
        }
        if let Some(sub) = props.and_then(|p| p.get(k)) {
            check(sub, child, &join_key(path, k), false, out);
        } else if let Some(Value::Object(_)) = additional {
            check(
                additional.unwrap_or(&Value::Null),
                child,
                &join_map_key(path, k),
                false,
                out,
            );
        } else if additional == Some(&Value::Bool(true)) || preserve {
            continue;
        } else {
            problem(out, &join_key(path, k), Problem::Unknown, None);
        }
    }
}

/// Drop every field the schema does not declare (what the API server does on writes that are
/// not strict, and always for `status`); returns the paths dropped.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut dropped = Vec::new();
    prune_at(schema, obj, "", true, &mut dropped);
    dropped
}

fn prune_at(schema: &Value, v: &mut Value, path: &str, root: bool, dropped: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let embedded = root || flag(schema, "x-kubernetes-embedded-resource");
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if embedded && OBJECT_KEYS.contains(&k.as_str()) {
                    continue;
                }
                let child_path = join_key(path, &k);
                if let Some(sub) = props.and_then(|p| p.get(&k)) {
                    if m[&k].is_null() && !flag(sub, "nullable") {
                        m.remove(&k);
                        continue;
                    }
                    prune_at(
                        sub,
                        m.get_mut(&k).expect("key"),
                        &child_path,
                        false,
                        dropped,
                    );
                } else if let Some(sub @ Value::Object(_)) = additional {
                    prune_at(
                        sub,
                        m.get_mut(&k).expect("key"),
                        &join_map_key(path, &k),
                        false,
                        dropped,
                    );
                } else if additional == Some(&Value::Bool(true)) || preserve {
                    continue;
                } else {
                    m.remove(&k);
                    dropped.push(child_path);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_at(sub, item, &join_index(path, i), false, dropped);
                }
            }
        }
        _ => {}
    }
}

/// Fill in `default`s of absent fields in objects that exist (the API server defaults on read
/// and write; a default never creates a parent object).
pub fn default(schema: &Value, obj: &mut Value) {
    match obj {
        Value::Object(m) => {
            for (k, sub) in schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if !m.contains_key(k)
                    && let Some(d) = sub.get("default")
                {
                    m.insert(k.clone(), d.clone());
                }
                if let Some(child) = m.get_mut(k) {
                    default(sub, child);
                }
            }
            if let Some(sub @ Value::Object(_)) = schema.get("additionalProperties") {
                for child in m.values_mut() {
                    default(sub, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for item in items {
                    default(sub, item);
                }
            }
        }
        _ => {}
    }
}

/// The schema of the `status` subtree of a version's schema. Undeclared, it keeps everything
/// when the root preserves unknown fields and nothing otherwise (every status field is pruned).
pub fn status_schema(schema: &Value) -> Value {
    match schema.pointer("/properties/status") {
        Some(s) => s.clone(),
        None if flag(schema, "x-kubernetes-preserve-unknown-fields") => {
            serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
        }
        None => serde_json::json!({"type": "object"}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
            "spec": {"type": "object", "required": ["url"], "properties": {
                "url": {"type": "string", "pattern": "^(http|https|ssh)://.*$"},
                "interval": {"type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"},
                "provider": {"type": "string", "enum": ["generic", "azure"], "default": "generic"},
                "port": {"x-kubernetes-int-or-string": true},
                "values": {"x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "retries": {"type": "integer", "minimum": 0, "format": "int32"},
                "list": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}
            }},
            "status": {"type": "object", "properties": {
                "conditions": {"type": "array", "items": {"type": "object", "properties": {
                    "lastTransitionTime": {"type": "string", "format": "date-time"},
                    "observedGeneration": {"type": "integer", "format": "int64"}}}}
            }}
        }})
    }

    #[test]
    fn a_valid_object_passes_and_every_problem_is_reported_with_its_path() {
        let good = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a", "anything": 1},
            "spec": {"url": "https://h", "interval": "1m", "port": 80, "values": {"free": [1]},
            "labels": {"a": "b"}, "retries": 3, "list": [{"name": "n"}]}});
        assert_eq!(validate(&schema(), &good), vec![]);
        let bad = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"interval": "1x", "provider": "nope", "port": true, "labels": {"a": 1},
            "retries": -1, "list": [{"nmae": "n"}], "extra": 1},
            "status": {"conditions": [{"lastTransitionTime": "yesterday"}]}});
        let got: Vec<String> = validate(&schema(), &bad)
            .iter()
            .map(ToString::to_string)
            .collect();
        let want = [
            "spec.url: Required value",
            "spec.interval: Invalid value: \"1x\": spec.interval in body should match '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$'",
            "spec.provider: Unsupported value: \"nope\": supported values: \"generic\", \"azure\"",
            "spec.port: Invalid value: true: spec.port in body must be of type integer or string",
            "spec.labels[a]: Invalid value: \"integer\": spec.labels[a] in body must be of type string",
            "spec.retries: Invalid value: -1: spec.retries in body should be greater than or equal to 0",
            ".spec.list[0].nmae: field not declared in schema",
            ".spec.extra: field not declared in schema",
            "status.conditions[0].lastTransitionTime: Invalid value: \"yesterday\": status.conditions[0].lastTransitionTime in body must be of type date-time",
        ];
        let mut got_sorted = got.clone();
        got_sorted.sort();
        let mut want_sorted: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want_sorted.sort();
        assert_eq!(got_sorted, want_sorted, "{got:#?}");
    }

    #[test]
    fn pruning_drops_undeclared_fields_and_keeps_maps_and_preserved_trees() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"url": "https://h", "values": {"free": 1}, "labels": {"k": "v"}, "extra": 1},
            "status": {"observedGeneration": 3, "conditions": [{"observedGeneration": 3, "bogus": 1}]}});
        let dropped = prune(&schema(), &mut obj);
        assert_eq!(
            dropped,
            [
                "spec.extra",
                "status.observedGeneration",
                "status.conditions[0].bogus"
            ]
        );
        assert_eq!(obj["spec"]["values"]["free"], 1);
        assert_eq!(obj["status"]["conditions"][0]["observedGeneration"], 3);
        default(&schema(), &mut obj);
        assert_eq!(obj["spec"]["provider"], "generic");
    }

    #[test]
    fn crds_are_read_per_version() {
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "ks.x"}, "spec": {"group": "x", "scope": "Namespaced",
            "names": {"kind": "K", "plural": "ks"}, "versions": [
                {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-validations": [{"rule": "true"}]}}},
                {"name": "v1beta1", "served": false, "storage": false}]}});
        let c = CrdSchema::from_crd(&crd).unwrap();
        assert!(c.namespaced && c.served("v1").is_some_and(|v| v.status && v.cel_rules == 1));
        assert!(c.served("v1beta1").is_none());
        let err = CrdSchema::from_crd(&json!({"metadata": {"name": "x"}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "read CustomResourceDefinition `x`: missing `spec.group`"
        );
    }
}
