//! `scenarios/*.yaml`: raw serde structs and resolution into `model::scenario::Scenario`, with
//! every problem (unknown step kinds, variables, fixtures, malformed manifests) at `file:line:col`.

use super::diag::{Diagnostics, deserialize};
use super::matrix::{API_VERSION, is_name};
use super::yaml::{self, Document, Pos};
use crate::model::scenario::*;
use crate::model::{Component, VersionRange, template};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Fixture kinds the fixture plane serves, as directories under `fixtures/`.
pub const FIXTURE_KINDS: &[&str] = &["git", "charts", "oci", "images"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawScenario {
    api_version: String,
    kind: String,
    metadata: RawMetadata,
    spec: RawSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMetadata {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec {
    #[serde(default)]
    applicability: RawApplicability,
    #[serde(default)]
    fixtures: Vec<String>,
    #[serde(default)]
    timeout: Option<String>,
    steps: Vec<RawStep>,
    #[serde(default)]
    finally: Vec<RawStep>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawApplicability {
    flux: Option<String>,
    kubernetes: Option<String>,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    components: Vec<String>,
    fips: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawStep {
    name: Option<String>,
    timeout: Option<String>,
    apply: Option<RawApply>,
    wait_for: Option<RawCondition>,
    assert: Option<RawAssert>,
    expect_failure: Option<RawCondition>,
    delete: Option<RawDelete>,
    patch: Option<RawPatch>,
    git_push: Option<RawGitPush>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawApply {
    manifests: Option<String>,
    file: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawObject {
    api_version: Option<String>,
    kind: String,
    name: String,
    namespace: Option<String>,
}

impl From<RawObject> for ObjectRef {
    fn from(o: RawObject) -> Self {
        ObjectRef {
            api_version: o.api_version,
            kind: o.kind,
            name: o.name,
            namespace: o.namespace,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCondition {
    api_version: Option<String>,
    kind: String,
    name: String,
    namespace: Option<String>,
    condition: Option<String>,
    status: Option<String>,
    reason: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAssert {
    object: Option<RawObject>,
    #[serde(default)]
    fields: Vec<RawField>,
    count: Option<RawCount>,
    event: Option<RawEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawField {
    path: String,
    equals: Option<serde_json::Value>,
    matches: Option<String>,
    exists: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCount {
    api_version: Option<String>,
    kind: String,
    namespace: Option<String>,
    label_selector: Option<String>,
    equals: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawEvent {
    object: Option<RawObject>,
    reason: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDelete {
    api_version: Option<String>,
    kind: String,
    name: String,
    namespace: Option<String>,
    #[serde(default = "yes")]
    wait: bool,
    #[serde(default)]
    gone: Vec<RawObject>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPatch {
    api_version: Option<String>,
    kind: String,
    name: String,
    namespace: Option<String>,
    merge: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawGitPush {
    repository: String,
    message: String,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
    tag: Option<String>,
}

/// What scenario validation checks against.
pub struct Context<'a> {
    /// Channel names the matrix declares (None: not checked).
    pub channels: Option<&'a [String]>,
    /// The project root holding `fixtures/` (None: fixture existence not checked).
    pub fixtures_root: Option<&'a Path>,
    pub default_timeout: Duration,
}

/// Parse and validate one scenario file.
pub fn load(file: &Path, text: &str, ctx: &Context<'_>, d: &mut Diagnostics) -> Option<Scenario> {
    let doc = match yaml::parse_single(text) {
        Ok(doc) => doc,
        Err(p) => {
            d.yaml(file, p);
            return None;
        }
    };
    let raw: RawScenario = deserialize(&doc, &doc.value, "", file, d)?;
    Some(resolve(file, &doc, raw, ctx, d))
}

fn regex_ok(
    doc: &Document,
    file: &Path,
    path: &str,
    pattern: &Option<String>,
    d: &mut Diagnostics,
) {
    if let Some(p) = pattern
        && let Err(e) = regex::Regex::new(p)
    {
        d.push(
            file,
            doc.value_pos(path),
            format!("`{p}` is not a valid regular expression: {e}"),
        );
    }
}

fn parse_timeout(
    doc: &Document,
    file: &Path,
    path: &str,
    raw: &Option<String>,
    d: &mut Diagnostics,
) -> Option<Duration> {
    let s = raw.as_ref()?;
    match humantime::parse_duration(s) {
        Ok(v) if !v.is_zero() => Some(v),
        _ => {
            d.push(
                file,
                doc.value_pos(path),
                format!("`{s}` is not a positive duration; expected e.g. `90s`, `5m`"),
            );
            None
        }
    }
}

fn resolve(
    file: &Path,
    doc: &Document,
    raw: RawScenario,
    ctx: &Context<'_>,
    d: &mut Diagnostics,
) -> Scenario {
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
    if raw.kind != "Scenario" {
        d.push(
            file,
            doc.value_pos("kind"),
            format!("unexpected kind `{}`; expected `Scenario`", raw.kind),
        );
    }
    let name = raw.metadata.name.clone();
    if !is_name(&name) {
        d.push(
            file,
            doc.value_pos("metadata.name"),
            format!("scenario name `{name}` must be a lower-case DNS label (a-z, 0-9, -) of at most 40 characters"),
        );
    }
    if let Some(stem) = file.file_stem().and_then(|s| s.to_str())
        && stem != name
    {
        d.push(
            file,
            doc.value_pos("metadata.name"),
            format!("scenario name `{name}` must match its file name `{stem}.yaml`"),
        );
    }

    let a = &raw.spec.applicability;
    let range = |path: &str, v: &Option<String>, d: &mut Diagnostics| {
        v.as_ref().and_then(|s| match VersionRange::parse(s) {
            Ok(r) => Some(r),
            Err(e) => {
                d.push(file, doc.value_pos(path), e.to_string());
                None
            }
        })
    };
    let flux = range("spec.applicability.flux", &a.flux, d);
    let kubernetes = range("spec.applicability.kubernetes", &a.kubernetes, d);
    if let Some(known) = ctx.channels {
        for (i, c) in a.channels.iter().enumerate() {
            if !known.contains(c) {
                let list = known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                d.push(
                    file,
                    doc.value_pos(&format!("spec.applicability.channels[{i}]")),
                    format!("unknown channel `{c}`; known channels: {list}"),
                );
            }
        }
    }
    let mut components = Vec::new();
    for (i, c) in a.components.iter().enumerate() {
        match c.parse::<Component>() {
            Ok(c) => components.push(c),
            Err(e) => d.push(
                file,
                doc.value_pos(&format!("spec.applicability.components[{i}]")),
                e.to_string(),
            ),
        }
    }

    for (i, f) in raw.spec.fixtures.iter().enumerate() {
        let path = format!("spec.fixtures[{i}]");
        let Some((kind, fname)) = f.split_once('/') else {
            d.push(
                file,
                doc.value_pos(&path),
                format!(
                    "fixture `{f}` must be `<kind>/<name>` with kind one of {}",
                    kinds()
                ),
            );
            continue;
        };
        if !FIXTURE_KINDS.contains(&kind) {
            d.push(
                file,
                doc.value_pos(&path),
                format!("unknown fixture kind `{kind}`; known kinds: {}", kinds()),
            );
            continue;
        }
        if let Some(root) = ctx.fixtures_root {
            let dir = root.join("fixtures").join(kind);
            if !dir.join(fname).is_dir() {
                let known = list_dir(&dir);
                d.push(
                    file,
                    doc.value_pos(&path),
                    format!("unknown fixture `{f}`: no directory fixtures/{f}; known {kind} fixtures: {known}"),
                );
            }
        }
    }

    let timeout = parse_timeout(doc, file, "spec.timeout", &raw.spec.timeout, d)
        .unwrap_or(ctx.default_timeout);
    if raw.spec.steps.is_empty() {
        d.push(
            file,
            doc.pos("spec.steps"),
            "a scenario needs at least one step",
        );
    }
    let fixtures = raw.spec.fixtures.clone();
    let steps = steps(file, doc, "spec.steps", raw.spec.steps, &fixtures, d);
    let finally = steps_fin(file, doc, raw.spec.finally, &fixtures, d);

    Scenario {
        name,
        description: raw.metadata.description,
        tags: raw.metadata.tags,
        file: file.to_path_buf(),
        applicability: Applicability {
            flux,
            kubernetes,
            channels: a.channels.clone(),
            components,
            fips: a.fips,
        },
        fixtures,
        timeout,
        steps,
        finally,
    }
}

fn kinds() -> String {
    FIXTURE_KINDS
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_dir(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        "(none)".into()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn steps_fin(
    file: &Path,
    doc: &Document,
    raw: Vec<RawStep>,
    fixtures: &[String],
    d: &mut Diagnostics,
) -> Vec<Step> {
    steps(file, doc, "spec.finally", raw, fixtures, d)
}

fn steps(
    file: &Path,
    doc: &Document,
    base: &str,
    raw: Vec<RawStep>,
    fixtures: &[String],
    d: &mut Diagnostics,
) -> Vec<Step> {
    let mut out = Vec::new();
    for (i, s) in raw.into_iter().enumerate() {
        let p = format!("{base}[{i}]");
        if let Some(step) = step(file, doc, &p, s, fixtures, d) {
            out.push(step);
        }
    }
    out
}

fn cond_ref(c: &RawCondition) -> ObjectRef {
    ObjectRef {
        api_version: c.api_version.clone(),
        kind: c.kind.clone(),
        name: c.name.clone(),
        namespace: c.namespace.clone(),
    }
}

fn step(
    file: &Path,
    doc: &Document,
    p: &str,
    s: RawStep,
    fixtures: &[String],
    d: &mut Diagnostics,
) -> Option<Step> {
    let present = [
        s.apply.is_some(),
        s.wait_for.is_some(),
        s.assert.is_some(),
        s.expect_failure.is_some(),
        s.delete.is_some(),
        s.patch.is_some(),
        s.git_push.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    // An unknown key was already reported (and dropped): a second "no action" message would only echo it.
    let known = [
        "name",
        "timeout",
        "apply",
        "waitFor",
        "assert",
        "expectFailure",
        "delete",
        "patch",
        "gitPush",
    ];
    let had_unknown = doc
        .value_at(p)
        .and_then(|v| v.as_object())
        .is_some_and(|m| m.keys().any(|k| !known.contains(&k.as_str())));
    if present == 0 && had_unknown {
        return None;
    }
    if present != 1 {
        let kinds = STEP_KINDS
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        d.push(
            file,
            doc.pos(p),
            format!("a step needs exactly one action, found {present}; step kinds: {kinds}"),
        );
        return None;
    }
    let timeout = parse_timeout(doc, file, &format!("{p}.timeout"), &s.timeout, d);
    let action = if let Some(a) = s.apply {
        let ap = format!("{p}.apply");
        match (a.manifests, a.file) {
            (Some(m), None) => {
                check_manifests(file, doc, &format!("{ap}.manifests"), &m, None, d);
                Action::Apply { manifests: m }
            }
            (None, Some(rel)) => {
                let path = file.parent().unwrap_or(Path::new(".")).join(&rel);
                match std::fs::read_to_string(&path) {
                    Ok(m) => {
                        check_manifests(&path, doc, "", &m, Some(&path), d);
                        Action::Apply { manifests: m }
                    }
                    Err(e) => {
                        d.push(
                            file,
                            doc.value_pos(&format!("{ap}.file")),
                            format!("cannot read manifest file `{rel}`: {e}"),
                        );
                        return None;
                    }
                }
            }
            _ => {
                d.push(
                    file,
                    doc.pos(&ap),
                    "`apply` needs exactly one of `manifests` and `file`",
                );
                return None;
            }
        }
    } else if let Some(w) = s.wait_for {
        let wp = format!("{p}.waitFor");
        regex_ok(doc, file, &format!("{wp}.message"), &w.message, d);
        let status = w.status.clone().unwrap_or_else(|| "True".into());
        status_ok(doc, file, &format!("{wp}.status"), &status, d);
        if w.condition.is_none()
            && (w.reason.is_some() || w.message.is_some() || w.status.is_some())
        {
            d.push(
                file,
                doc.pos(&wp),
                "`status`, `reason` and `message` need a `condition`; without one the step waits for Flux readiness",
            );
        }
        Action::WaitFor(WaitFor {
            object: cond_ref(&w),
            condition: w.condition,
            status,
            reason: w.reason,
            message: w.message,
        })
    } else if let Some(a) = s.assert {
        let ap = format!("{p}.assert");
        if a.fields.is_empty() && a.count.is_none() && a.event.is_none() {
            d.push(
                file,
                doc.pos(&ap),
                "`assert` needs at least one of `fields`, `count` and `event`",
            );
        }
        if !a.fields.is_empty() && a.object.is_none() {
            d.push(file, doc.pos(&ap), "`fields` assertions need an `object`");
        }
        let mut fields = Vec::new();
        for (i, f) in a.fields.into_iter().enumerate() {
            let fp = format!("{ap}.fields[{i}]");
            let n = [f.equals.is_some(), f.matches.is_some(), f.exists.is_some()]
                .iter()
                .filter(|x| **x)
                .count();
            if n != 1 {
                d.push(
                    file,
                    doc.pos(&fp),
                    "a field assertion needs exactly one of `equals`, `matches` and `exists`",
                );
            }
            regex_ok(doc, file, &format!("{fp}.matches"), &f.matches, d);
            fields.push(FieldAssertion {
                path: f.path,
                equals: f.equals,
                matches: f.matches,
                exists: f.exists,
            });
        }
        if let Some(e) = &a.event {
            regex_ok(doc, file, &format!("{ap}.event.message"), &e.message, d);
        }
        Action::Assert(Assert {
            object: a.object.map(Into::into),
            fields,
            count: a.count.map(|c| CountAssertion {
                api_version: c.api_version,
                kind: c.kind,
                namespace: c.namespace,
                label_selector: c.label_selector,
                equals: c.equals,
            }),
            event: a.event.map(|e| EventAssertion {
                object: e.object.map(Into::into),
                reason: e.reason,
                message: e.message,
            }),
        })
    } else if let Some(e) = s.expect_failure {
        let ep = format!("{p}.expectFailure");
        regex_ok(doc, file, &format!("{ep}.message"), &e.message, d);
        if let Some(st) = &e.status
            && st != "False"
        {
            d.push(
                file,
                doc.value_pos(&format!("{ep}.status")),
                "`expectFailure` always waits for status `False`; drop `status`",
            );
        }
        if e.reason.is_none() && e.message.is_none() {
            d.push(
                file,
                doc.pos(&ep),
                "`expectFailure` needs a `reason` or a `message` pattern: any failure is not evidence of the expected one",
            );
        }
        Action::ExpectFailure(ExpectFailure {
            object: cond_ref(&e),
            condition: e.condition.clone().unwrap_or_else(|| "Ready".into()),
            reason: e.reason,
            message: e.message,
        })
    } else if let Some(x) = s.delete {
        Action::Delete {
            object: ObjectRef {
                api_version: x.api_version,
                kind: x.kind,
                name: x.name,
                namespace: x.namespace,
            },
            wait: x.wait,
            gone: x.gone.into_iter().map(Into::into).collect(),
        }
    } else if let Some(x) = s.patch {
        if !x.merge.is_object() {
            d.push(
                file,
                doc.value_pos(&format!("{p}.patch.merge")),
                "`merge` must be a mapping (a JSON merge patch)",
            );
        }
        Action::Patch {
            object: ObjectRef {
                api_version: x.api_version,
                kind: x.kind,
                name: x.name,
                namespace: x.namespace,
            },
            patch: x.merge,
        }
    } else if let Some(g) = s.git_push {
        let gp = format!("{p}.gitPush");
        let wanted = format!("git/{}", g.repository);
        if !fixtures.contains(&wanted) {
            d.push(
                file,
                doc.value_pos(&format!("{gp}.repository")),
                format!("`gitPush` repository `{}` is not a fixture of this scenario; add `{wanted}` to `spec.fixtures`", g.repository),
            );
        }
        if g.files.is_empty() && g.remove.is_empty() && g.tag.is_none() {
            d.push(
                file,
                doc.pos(&gp),
                "`gitPush` changes nothing: give `files`, `remove` or `tag`",
            );
        }
        for (path, content) in &g.files {
            check_template(file, doc, &format!("{gp}.files.{path}"), content, d);
        }
        Action::GitPush(GitPush {
            repository: g.repository,
            message: g.message,
            files: g.files,
            remove: g.remove,
            tag: g.tag,
        })
    } else {
        unreachable!("exactly one action is present")
    };
    Some(Step {
        name: s.name.unwrap_or_else(|| action.kind().to_string()),
        timeout,
        action,
    })
}

fn status_ok(doc: &Document, file: &Path, path: &str, status: &str, d: &mut Diagnostics) {
    if !["True", "False", "Unknown"].contains(&status) {
        d.push(
            file,
            doc.value_pos(path),
            format!("condition status `{status}` must be `True`, `False` or `Unknown`"),
        );
    }
}

/// Line and column (1-based) of a byte offset in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, col)
}

fn check_template(
    file: &Path,
    doc: &Document,
    path: &str,
    text: &str,
    d: &mut Diagnostics,
) -> bool {
    let errs = template::check(text);
    for e in &errs {
        let (line, col) = line_col(text, e.offset());
        let pos = doc.inside(path, line, col);
        d.push(file, pos, e.to_string());
    }
    errs.is_empty()
}

/// Manifests must be templates over known variables that render to well-formed Kubernetes objects.
/// `own_file` is set when the manifests live in a file of their own (positions then refer to it).
fn check_manifests(
    file: &Path,
    doc: &Document,
    path: &str,
    text: &str,
    own_file: Option<&Path>,
    d: &mut Diagnostics,
) {
    let pos_of = |line: usize, col: usize| -> Pos {
        match own_file {
            Some(_) => Pos { line, col },
            None => doc.inside(path, line, col),
        }
    };
    let errs = template::check(text);
    for e in &errs {
        let (line, col) = line_col(text, e.offset());
        d.push(file, pos_of(line, col), e.to_string());
    }
    if !errs.is_empty() {
        return;
    }
    // Render with placeholder values of the right shape, then parse as Kubernetes objects.
    let vars: BTreeMap<String, String> = template::KNOWN_VARIABLES
        .iter()
        .map(|(k, _)| (k.to_string(), "x".to_string()))
        .collect();
    let Ok(rendered) = template::render(text, &vars) else {
        return;
    };
    match yaml::parse(&rendered) {
        Err(problems) => {
            for p in problems {
                d.push(
                    file,
                    pos_of(p.pos.line, p.pos.col),
                    format!("manifest: {}", p.message),
                );
            }
        }
        Ok(docs) => {
            if docs.iter().all(|x| x.value.is_null()) {
                d.push(file, pos_of(1, 1), "manifests hold no Kubernetes object");
            }
            for m in docs.iter().filter(|x| !x.value.is_null()) {
                let at = pos_of(m.start.line, 1);
                let obj = &m.value;
                if !obj.is_object() {
                    d.push(
                        file,
                        at,
                        "manifest: each document must be a Kubernetes object (a mapping)",
                    );
                    continue;
                }
                for field in ["apiVersion", "kind"] {
                    if !obj.get(field).is_some_and(|v| v.is_string()) {
                        d.push(file, at, format!("manifest: object is missing `{field}`"));
                    }
                }
                if !obj.pointer("/metadata/name").is_some_and(|v| v.is_string()) {
                    d.push(file, at, "manifest: object is missing `metadata.name`");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            channels: None,
            fixtures_root: None,
            default_timeout: Duration::from_secs(60),
        }
    }

    fn problems(text: &str) -> Vec<String> {
        let mut d = Diagnostics::default();
        load(Path::new("s.yaml"), text, &ctx(), &mut d);
        d.into_sorted().iter().map(|x| x.to_string()).collect()
    }

    const HEAD: &str =
        "apiVersion: flux-compat/v1alpha1\nkind: Scenario\nmetadata:\n  name: s\nspec:\n  steps:\n";

    #[test]
    fn a_valid_scenario_loads() {
        let text = format!(
            "{HEAD}  - apply:\n      manifests: |\n        apiVersion: v1\n        kind: ConfigMap\n        metadata:\n          name: c\n          namespace: ${{{{ namespace }}}}\n  - waitFor: {{kind: ConfigMap, name: c}}\n"
        );
        assert_eq!(problems(&text), Vec::<String>::new());
    }

    #[test]
    fn unknown_step_kind_lists_the_known_ones() {
        let p = problems(&format!("{HEAD}  - aply: {{file: x}}\n"));
        assert!(
            p[0].starts_with("s.yaml:7:5: unknown field `aply`"),
            "{p:?}"
        );
        assert!(p[0].contains("`waitFor`"), "{p:?}");
    }

    #[test]
    fn unknown_variable_points_into_the_block() {
        let text = format!(
            "{HEAD}  - apply:\n      manifests: |\n        apiVersion: v1\n        kind: ConfigMap\n        metadata:\n          name: ${{{{ nope }}}}\n"
        );
        let p = problems(&text);
        assert!(
            p[0].starts_with("s.yaml:12:17: unknown template variable `nope`"),
            "{p:?}"
        );
    }

    #[test]
    fn malformed_manifest_is_reported() {
        let text = format!(
            "{HEAD}  - apply:\n      manifests: |\n        kind: ConfigMap\n        metadata: {{name: x\n"
        );
        let p = problems(&text);
        assert!(
            p.iter().any(|m| m.contains("manifest: malformed YAML")),
            "{p:?}"
        );
        let text = format!(
            "{HEAD}  - apply:\n      manifests: |\n        kind: ConfigMap\n        metadata: {{name: x}}\n"
        );
        let p = problems(&text);
        assert!(
            p.iter()
                .any(|m| m.contains("s.yaml:9:9: manifest: object is missing `apiVersion`")),
            "{p:?}"
        );
    }

    #[test]
    fn two_actions_in_one_step_is_an_error() {
        let p = problems(&format!(
            "{HEAD}  - waitFor: {{kind: A, name: b}}\n    delete: {{kind: A, name: b}}\n"
        ));
        assert!(p[0].contains("exactly one action, found 2"), "{p:?}");
    }

    #[test]
    fn expect_failure_needs_a_pattern_and_git_push_a_fixture() {
        let p = problems(&format!(
            "{HEAD}  - expectFailure: {{kind: A, name: b}}\n  - gitPush: {{repository: app, message: m, tag: v1}}\n"
        ));
        assert!(
            p.iter()
                .any(|m| m.contains("needs a `reason` or a `message`")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.contains("add `git/app` to `spec.fixtures`")),
            "{p:?}"
        );
    }
}
