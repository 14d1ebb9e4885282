//! `k8s::schema` cross-checked against an independent implementation: Python's `jsonschema`
//! (PyPI) validates the same objects against the same real Flux CRDs (v2.9.4 and v2.8.8 install
//! manifests), with `additionalProperties: false` injected wherever Kubernetes rejects unknown
//! fields. Objects: every Flux object of the scenario library, rendered, and deliberately wrong
//! variants of each (an unknown field, a wrong type, an enum or pattern violation, a missing
//! required field). Both must agree on which fields are wrong.

mod support;

use flux_compat::config::{self, Sources};
use flux_compat::k8s::parse_documents;
use flux_compat::k8s::schema::{CrdSchema, Problem, validate};
use flux_compat::model::scenario::Action;
use flux_compat::model::template;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

fn crds(version: &str) -> Vec<CrdSchema> {
    let text = std::fs::read_to_string(support::flux_manifests(version)).unwrap();
    parse_documents(&text, version)
        .unwrap()
        .iter()
        .filter(|o| {
            o.types
                .as_ref()
                .is_some_and(|t| t.kind == "CustomResourceDefinition")
        })
        .map(|o| CrdSchema::from_crd(&serde_json::to_value(o).unwrap()).unwrap())
        .collect()
}

/// Every Flux object the scenario library applies, rendered with fixture-shaped values.
fn library_objects() -> Vec<Value> {
    let loaded = config::load(&Sources {
        matrix: support::root().join("matrix.yaml"),
        scenarios_dir: None,
    })
    .unwrap_or_else(|d| panic!("{d:?}"));
    let mut vars: BTreeMap<String, String> = [
        ("namespace", "ns"),
        ("run.id", "r"),
        ("fixtures.gitUrl", "https://172.18.0.1:30443/git"),
        ("fixtures.helmUrl", "https://172.18.0.1:30443/helm"),
        ("fixtures.ociHost", "172.18.0.1:30500"),
        ("fixtures.ociUrl", "oci://172.18.0.1:30500"),
        ("fixtures.webhookUrl", "https://172.18.0.1:30443/webhook"),
        ("fixtures.caSecret", "ca"),
        ("fixtures.pushSecret", "push"),
        ("fixtures.authSecret", "auth"),
        ("challenges.caSecret", "challenge-ca"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for id in flux_compat::model::scenario::CHALLENGE_IDS {
        vars.insert(
            template::challenge_variable(id, "url"),
            "https://172.18.0.1:31000".into(),
        );
        vars.insert(
            template::challenge_variable(id, "address"),
            "172.18.0.1:31000".into(),
        );
    }
    let mut out = Vec::new();
    for s in &loaded.scenarios {
        for step in &s.steps {
            if let Action::Apply { manifests } = &step.action {
                let text = template::render(manifests, &vars).unwrap();
                for o in flux_compat::scenario::parse_manifests(&text).unwrap() {
                    let api = o["apiVersion"].as_str().unwrap_or_default();
                    if api.contains(".fluxcd.io/") {
                        out.push(o);
                    }
                }
            }
        }
    }
    out
}

/// The JSON Schema Kubernetes' structural rules amount to: unknown fields rejected where the
/// schema declares properties and neither preserves unknown fields nor is a map; int-or-string
/// and nullable spelled out; the root and embedded resources keep apiVersion/kind/metadata.
fn to_json_schema(s: &Value, root: bool) -> Value {
    let Value::Object(m) = s else {
        return s.clone();
    };
    let mut out = serde_json::Map::new();
    for (k, v) in m {
        match k.as_str() {
            "properties" => {
                let props: serde_json::Map<String, Value> = v
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(pk, pv)| (pk.clone(), to_json_schema(pv, false)))
                    .collect();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" if v.is_object() => {
                out.insert(k.clone(), to_json_schema(v, false));
            }
            "allOf" | "anyOf" | "oneOf" => {
                let list = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| to_json_schema(x, false))
                    .collect();
                out.insert(k.clone(), Value::Array(list));
            }
            k2 if k2.starts_with("x-kubernetes-") || k2 == "nullable" || k2 == "default" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if m.get("x-kubernetes-int-or-string") == Some(&json!(true)) {
        out.insert("type".into(), json!(["integer", "string"]));
    }
    if m.get("nullable") == Some(&json!(true))
        && let Some(t) = out.get("type").and_then(Value::as_str).map(str::to_string)
    {
        out.insert("type".into(), json!([t, "null"]));
    }
    let preserve = m.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    let embedded = root || m.get("x-kubernetes-embedded-resource") == Some(&json!(true));
    if m.contains_key("properties") && !preserve && !m.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), json!(false));
        if embedded {
            let props = out.get_mut("properties").unwrap().as_object_mut().unwrap();
            for key in ["apiVersion", "kind"] {
                props.entry(key).or_insert(json!({"type": "string"}));
            }
            // ObjectMeta is the API server's, not the CRD schema's.
            props.insert("metadata".into(), json!({"type": "object"}));
        }
    }
    Value::Object(out)
}

/// Deliberately wrong variants of a valid object, derived from its schema.
fn mutations(obj: &Value, schema: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut unknown = obj.clone();
    unknown["spec"]["notAField"] = json!(1);
    out.push(("unknown spec field".into(), unknown));
    let Some(spec_props) = schema
        .pointer("/properties/spec/properties")
        .and_then(Value::as_object)
    else {
        return out;
    };
    for (k, sub) in spec_props {
        let Some(current) = obj["spec"].get(k) else {
            continue;
        };
        if sub.get("type") == Some(&json!("string")) {
            let mut wrong = obj.clone();
            wrong["spec"][k] = json!(42);
            out.push((format!("spec.{k} as a number"), wrong));
            if sub.get("enum").is_some() || sub.get("pattern").is_some() {
                let mut wrong = obj.clone();
                wrong["spec"][k] = json!("!not valid!");
                out.push((format!("spec.{k} against its enum or pattern"), wrong));
            }
        }
        if let (Some(props), Value::Object(inner)) = (sub.get("properties"), current) {
            let mut wrong = obj.clone();
            wrong["spec"][k]["nested"] = json!(true);
            out.push((format!("unknown field in spec.{k}"), wrong));
            let _ = (props, inner);
        }
    }
    for req in schema
        .pointer("/properties/spec/required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let mut wrong = obj.clone();
        if wrong["spec"].as_object_mut().unwrap().remove(req).is_some() {
            out.push((format!("spec.{req} removed"), wrong));
        }
    }
    out
}

/// Our verdict as `parent|key|what` entries comparable with jsonschema's.
fn ours(schema: &Value, obj: &Value) -> BTreeSet<String> {
    validate(schema, obj)
        .iter()
        .map(|e| {
            let p = e.path.replace('[', ".").replace(']', "");
            match e.problem {
                Problem::Unknown | Problem::Required => {
                    let (parent, key) = p.rsplit_once('.').unwrap_or(("", &p));
                    let what = if e.problem == Problem::Unknown {
                        "unknown"
                    } else {
                        "required"
                    };
                    format!("{parent}|{key}|{what}")
                }
                _ => format!("{p}||invalid"),
            }
        })
        .collect()
}

const PYTHON: &str = r#"
import json, re, sys
from jsonschema import Draft4Validator
cases = json.load(open(sys.argv[1]))
out = []
for c in cases:
    v = Draft4Validator(c["schema"])
    got = set()
    for e in v.iter_errors(c["object"]):
        path = ".".join(str(p) for p in e.absolute_path)
        if e.validator == "additionalProperties":
            for k in re.findall(r"'([^']+)'", e.message.split(" were unexpected")[0].split(" was unexpected")[0]):
                got.add(f"{path}|{k}|unknown")
        elif e.validator == "required":
            k = re.match(r"'([^']+)'", e.message).group(1)
            got.add(f"{path}|{k}|required")
        else:
            got.add(f"{path}||invalid")
    out.append(sorted(got))
json.dump(out, sys.stdout)
"#;

fn python(cases: &[Value]) -> Vec<BTreeSet<String>> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cases.json");
    std::fs::write(&input, serde_json::to_vec(cases).unwrap()).unwrap();
    let script = dir.path().join("check.py");
    std::fs::write(&script, PYTHON).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .arg(&input)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python jsonschema failed (scripts/setup-test-deps.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Vec<String>>>(&out.stdout)
        .unwrap()
        .into_iter()
        .map(|v| v.into_iter().collect())
        .collect()
}

fn cross_check(version: &str) {
    let crds = crds(version);
    let objects = library_objects();
    let mut cases = Vec::new();
    let mut labels = Vec::new();
    let mut expected = Vec::new();
    for obj in &objects {
        let api = obj["apiVersion"].as_str().unwrap();
        let (group, v) = api.split_once('/').unwrap();
        let kind = obj["kind"].as_str().unwrap();
        let Some(schema) = crds
            .iter()
            .find(|c| c.group == group && c.kind == kind)
            .and_then(|c| c.served(v))
            .map(|v| v.schema.clone())
        else {
            panic!("Flux {version} serves no `{api}` `{kind}` for a library manifest");
        };
        let js = to_json_schema(&schema, true);
        let mut variants = vec![("as shipped".to_string(), obj.clone())];
        variants.extend(mutations(obj, &schema));
        for (what, o) in variants {
            labels.push(format!("{kind}/{} {what}", obj["metadata"]["name"]));
            expected.push(ours(&schema, &o));
            cases.push(json!({"schema": js, "object": o}));
        }
    }
    let theirs = python(&cases);
    let mut disagreements = Vec::new();
    let (mut valid, mut invalid) = (0, 0);
    for ((label, mine), theirs) in labels.iter().zip(&expected).zip(&theirs) {
        if mine.is_empty() {
            valid += 1;
        } else {
            invalid += 1;
        }
        if mine != theirs {
            disagreements.push(format!("{label}: ours {mine:?}, jsonschema {theirs:?}"));
        }
    }
    eprintln!(
        "{version}: {} cases ({valid} valid, {invalid} invalid), both implementations agree",
        labels.len()
    );
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    // The shipped objects are valid, every mutation is caught, and both said so.
    assert!(
        valid >= objects.len() && invalid > objects.len(),
        "{valid} valid, {invalid} invalid"
    );
    for (label, mine) in labels.iter().zip(&expected) {
        assert_eq!(
            label.ends_with("as shipped"),
            mine.is_empty(),
            "{label}: {mine:?}"
        );
    }
}

#[test]
fn agrees_with_python_jsonschema_on_the_v2_9_4_crds() {
    cross_check("v2.9.4");
}

#[test]
fn agrees_with_python_jsonschema_on_the_v2_8_8_crds() {
    cross_check("v2.8.8");
}

#[test]
fn real_crds_declare_what_the_double_and_defect_1_rely_on() {
    let crds = crds("v2.9.4");
    let status_has = |kind: &str, field: &str| {
        let c = crds.iter().find(|c| c.kind == kind).unwrap();
        let v = c.versions.iter().find(|v| v.storage).unwrap();
        v.schema
            .pointer(&format!("/properties/status/properties/{field}"))
            .is_some()
    };
    // Defect 1: the generation of these lives only in the Ready condition.
    assert!(!status_has("ArtifactGenerator", "observedGeneration"));
    assert!(!status_has("ExternalArtifact", "observedGeneration"));
    assert!(status_has("Kustomization", "observedGeneration"));
    assert!(status_has("Receiver", "webhookPath"));
}
