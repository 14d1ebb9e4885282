//! `scenarios/*.yaml`: raw serde structs and resolution into `model::scenario::Scenario`, with
//! every problem (unknown step kinds, variables, fixtures, malformed manifests) at `file:line:col`.

use super::diag::{Diagnostics, deserialize};
use super::matrix::{API_VERSION, is_name};
use super::source::{self, Boundary};
use super::yaml::{self, Document, Pos};
use crate::model::scenario::*;
use crate::model::{Component, VersionRange, template};
use crate::model::{FluxVersion, flux_api};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
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
    install_flux: Option<RawInstallFlux>,
    upgrade_flux: Option<RawUpgradeFlux>,
    trigger_receiver: Option<RawTriggerReceiver>,
    tls_challenges: Option<RawTlsChallenges>,
}

/// `tlsChallenges: {controller: source-controller, challenges: all | [ids]}`. `challenges` is
/// read as a plain value so both shapes get precise messages (no `untagged` enum).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTlsChallenges {
    controller: String,
    challenges: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTriggerReceiver {
    name: String,
    namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawInstallFlux {
    version: String,
}

/// `upgradeFlux: {}` takes no options: the target is always the cell's Flux version.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawUpgradeFlux {}

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
    contains: Option<serde_json::Value>,
    count: Option<RawCount>,
    event: Option<RawEvent>,
    webhook: Option<RawEvent>,
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
    /// The matrix's Flux versions with their previous minor (None: served APIs not checked).
    pub flux_versions: Option<&'a [(FluxVersion, Option<FluxVersion>)]>,
}

/// What step validation accumulates while walking a scenario's steps in order.
struct Walk<'a> {
    fixtures: &'a [String],
    /// Flux versions every applied manifest must be served by.
    flux: Vec<FluxVersion>,
    /// Kinds applied by earlier steps, so references to them need no `apiVersion`.
    applied_kinds: BTreeSet<String>,
    /// Whether a `gitPush` ran before this step (`git.lastCommit` is then defined).
    pushed: bool,
    scenario_timeout: Duration,
    /// Where `apply.file` may point.
    boundary: &'a Boundary,
}

/// Parse and validate one scenario file; `apply.file` may point anywhere (see [`load_with`]).
pub fn load(file: &Path, text: &str, ctx: &Context<'_>, d: &mut Diagnostics) -> Option<Scenario> {
    load_with(file, text, ctx, &Boundary::anywhere(), d)
}

/// [`load`] with `apply.file` references kept inside `boundary`.
pub fn load_with(
    file: &Path,
    text: &str,
    ctx: &Context<'_>,
    boundary: &Boundary,
    d: &mut Diagnostics,
) -> Option<Scenario> {
    let doc = match yaml::parse_single(text) {
        Ok(doc) => doc,
        Err(p) => {
            d.yaml(file, p);
            return None;
        }
    };
    let raw: RawScenario = deserialize(&doc, &doc.value, "", file, d)?;
    Some(resolve(file, &doc, raw, ctx, boundary, d))
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
            format!(
                "`{p}` is not a valid regular expression: {}",
                regex_reason(&e)
            ),
        );
    }
}

/// The one-line reason of a regex error (its display spans lines: the pattern, a caret, the
/// reason).
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.lines().map(str::trim).collect::<Vec<_>>().join(" "))
}

fn parse_timeout(
    doc: &Document,
    file: &Path,
    path: &str,
    raw: &Option<String>,
    d: &mut Diagnostics,
) -> Option<Duration> {
    let s = raw.as_ref()?;
    match super::matrix::parse_timeout(s) {
        Ok(v) => Some(v),
        Err(e) => {
            d.push(file, doc.value_pos(path), e);
            None
        }
    }
}

fn resolve(
    file: &Path,
    doc: &Document,
    raw: RawScenario,
    ctx: &Context<'_>,
    boundary: &Boundary,
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
    let installs_flux = raw.spec.steps.iter().any(|s| s.install_flux.is_some());
    let mut served_by = Vec::new();
    for (current, previous) in ctx.flux_versions.unwrap_or_default() {
        if flux.as_ref().is_some_and(|r| !r.matches(&current.0)) {
            continue;
        }
        served_by.push(current.clone());
        // Objects of an upgrade scenario are created under the previous Flux first.
        if installs_flux && let Some(p) = previous {
            served_by.push(p.clone());
        }
    }
    let mut walk = Walk {
        fixtures: &fixtures,
        flux: served_by,
        applied_kinds: BTreeSet::new(),
        pushed: false,
        scenario_timeout: timeout,
        boundary,
    };
    let main = steps(file, doc, "spec.steps", raw.spec.steps, &mut walk, d);
    let finally = steps(file, doc, "spec.finally", raw.spec.finally, &mut walk, d);

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
        steps: main,
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

fn steps(
    file: &Path,
    doc: &Document,
    base: &str,
    raw: Vec<RawStep>,
    walk: &mut Walk<'_>,
    d: &mut Diagnostics,
) -> Vec<Step> {
    let mut out = Vec::new();
    for (i, s) in raw.into_iter().enumerate() {
        let p = format!("{base}[{i}]");
        if let Some(step) = step(file, doc, &p, s, walk, d) {
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
    walk: &mut Walk<'_>,
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
        s.install_flux.is_some(),
        s.upgrade_flux.is_some(),
        s.trigger_receiver.is_some(),
        s.tls_challenges.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    // An unknown key was already reported (and dropped): a second "no action" message would only echo it.
    let had_unknown = doc
        .value_at(p)
        .and_then(|v| v.as_object())
        .is_some_and(|m| {
            m.keys().any(|k| {
                !["name", "timeout"].contains(&k.as_str()) && !STEP_KINDS.contains(&k.as_str())
            })
        });
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
    if let Some(t) = timeout
        && t > walk.scenario_timeout
    {
        d.push(
            file,
            doc.value_pos(&format!("{p}.timeout")),
            format!(
                "step timeout {} exceeds the scenario timeout {}: the step could never use it",
                humantime::format_duration(t),
                humantime::format_duration(walk.scenario_timeout)
            ),
        );
    }
    let action = if let Some(a) = s.apply {
        let ap = format!("{p}.apply");
        match (a.manifests, a.file) {
            (Some(m), None) => {
                check_manifests(file, doc, &format!("{ap}.manifests"), &m, None, walk, d);
                Action::Apply { manifests: m }
            }
            (None, Some(rel)) => {
                let at = doc.value_pos(&format!("{ap}.file"));
                let path = match walk.boundary.resolve(file, &rel) {
                    Ok(p) => p,
                    Err(e) => {
                        d.push(file, at, e);
                        return None;
                    }
                };
                match source::read_text(&path, source::MAX_CONFIG_BYTES) {
                    Ok(m) => {
                        check_manifests(&path, doc, "", &m, Some(&path), walk, d);
                        Action::Apply { manifests: m }
                    }
                    Err(e) => {
                        d.push(file, at, format!("cannot read manifest file `{rel}`: {e}"));
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
        message_ok(doc, file, &format!("{wp}.message"), &w.message, walk, d);
        object_ok(doc, file, &wp, &w.api_version, &w.kind, walk, d);
        if w.condition.is_some() && flux_api::STATUSLESS_KINDS.contains(&w.kind.as_str()) {
            d.push(
                file,
                doc.value_pos(&format!("{wp}.condition")),
                format!("`{}` has no status and never reports a condition; wait for it without `condition` (it is ready once it exists)", w.kind),
            );
        }
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
        if a.fields.is_empty()
            && a.contains.is_none()
            && a.count.is_none()
            && a.event.is_none()
            && a.webhook.is_none()
        {
            d.push(
                file,
                doc.pos(&ap),
                "`assert` needs at least one of `fields`, `contains`, `count`, `event` and `webhook`",
            );
        }
        if let Some(w) = &a.webhook {
            regex_ok(doc, file, &format!("{ap}.webhook.message"), &w.message, d);
            if let Some(o) = &w.object {
                object_ok(
                    doc,
                    file,
                    &format!("{ap}.webhook.object"),
                    &o.api_version,
                    &o.kind,
                    walk,
                    d,
                );
            }
        }
        if (!a.fields.is_empty() || a.contains.is_some()) && a.object.is_none() {
            d.push(
                file,
                doc.pos(&ap),
                "`fields` and `contains` assertions need an `object`",
            );
        }
        if let Some(c) = &a.contains
            && !c.is_object()
        {
            d.push(
                file,
                doc.value_pos(&format!("{ap}.contains")),
                "`contains` must be a mapping (a subset of the object)",
            );
        }
        if let Some(o) = &a.object {
            object_ok(
                doc,
                file,
                &format!("{ap}.object"),
                &o.api_version,
                &o.kind,
                walk,
                d,
            );
        }
        if let Some(c) = &a.count {
            object_ok(
                doc,
                file,
                &format!("{ap}.count"),
                &c.api_version,
                &c.kind,
                walk,
                d,
            );
        }
        if let Some(o) = a.event.as_ref().and_then(|e| e.object.as_ref()) {
            object_ok(
                doc,
                file,
                &format!("{ap}.event.object"),
                &o.api_version,
                &o.kind,
                walk,
                d,
            );
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
        Action::Assert(Box::new(Assert {
            object: a.object.map(Into::into),
            fields,
            contains: a.contains,
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
            webhook: a.webhook.map(|e| EventAssertion {
                object: e.object.map(Into::into),
                reason: e.reason,
                message: e.message,
            }),
        }))
    } else if let Some(e) = s.expect_failure {
        let ep = format!("{p}.expectFailure");
        message_ok(doc, file, &format!("{ep}.message"), &e.message, walk, d);
        object_ok(doc, file, &ep, &e.api_version, &e.kind, walk, d);
        if flux_api::STATUSLESS_KINDS.contains(&e.kind.as_str()) {
            d.push(
                file,
                doc.value_pos(&format!("{ep}.kind")),
                format!(
                    "`{}` has no status, so no condition can ever become False",
                    e.kind
                ),
            );
        }
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
        let xp = format!("{p}.delete");
        object_ok(doc, file, &xp, &x.api_version, &x.kind, walk, d);
        for (i, g) in x.gone.iter().enumerate() {
            object_ok(
                doc,
                file,
                &format!("{xp}.gone[{i}]"),
                &g.api_version,
                &g.kind,
                walk,
                d,
            );
        }
        if !x.wait && !x.gone.is_empty() {
            d.push(
                file,
                doc.pos(&xp),
                "`gone` checks need `wait: true`: without waiting for the deletion they prove nothing",
            );
        }
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
        object_ok(
            doc,
            file,
            &format!("{p}.patch"),
            &x.api_version,
            &x.kind,
            walk,
            d,
        );
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
        if !walk.fixtures.contains(&wanted) {
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
        walk.pushed = true;
        Action::GitPush(GitPush {
            repository: g.repository,
            message: g.message,
            files: g.files,
            remove: g.remove,
            tag: g.tag,
        })
    } else if let Some(i) = s.install_flux {
        let vp = format!("{p}.installFlux.version");
        if check_template(file, doc, &vp, &i.version, d) {
            // The plan resolves the version before the run, from the cell's Flux versions only.
            let others = template::placeholders(&i.version)
                .unwrap_or_default()
                .into_iter()
                .filter(|x| !INSTALL_VERSION_VARIABLES.contains(&x.name.as_str()));
            for x in others {
                d.push(
                    file,
                    doc.value_pos(&vp),
                    format!(
                        "`installFlux.version` may use only `flux.version` and `flux.previousVersion`, not `{}`",
                        x.name
                    ),
                );
            }
            if !i.version.contains("${{")
                && let Err(e) = i.version.parse::<FluxVersion>()
            {
                d.push(file, doc.value_pos(&vp), e.to_string());
            }
        }
        Action::InstallFlux { version: i.version }
    } else if s.upgrade_flux.is_some() {
        Action::UpgradeFlux
    } else if let Some(t) = s.trigger_receiver {
        Action::TriggerReceiver {
            object: ObjectRef {
                api_version: Some("notification.toolkit.fluxcd.io/v1".into()),
                kind: "Receiver".into(),
                name: t.name,
                namespace: t.namespace,
            },
        }
    } else if let Some(t) = s.tls_challenges {
        let tp = format!("{p}.tlsChallenges");
        let controller = match t.controller.parse::<Component>() {
            Ok(c) => c,
            Err(e) => {
                d.push(
                    file,
                    doc.value_pos(&format!("{tp}.controller")),
                    e.to_string(),
                );
                Component::SourceController
            }
        };
        let known = || {
            CHALLENGE_IDS
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let cp = format!("{tp}.challenges");
        let challenges: Vec<String> = match &t.challenges {
            serde_json::Value::String(a) if a == "all" => {
                CHALLENGE_IDS.iter().map(|c| c.to_string()).collect()
            }
            serde_json::Value::Array(items) if !items.is_empty() => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let at = doc.value_pos(&format!("{cp}[{i}]"));
                    match item.as_str() {
                        Some(id) if CHALLENGE_IDS.contains(&id) => {
                            if out.iter().any(|o| o == id) {
                                d.push(file, at, format!("challenge `{id}` is listed twice"));
                            }
                            out.push(id.to_string());
                        }
                        Some(id) => d.push(
                            file,
                            at,
                            format!("unknown challenge `{id}`; known challenges: {}", known()),
                        ),
                        None => d.push(file, at, "a challenge id must be a string"),
                    }
                }
                out
            }
            _ => {
                d.push(
                    file,
                    doc.value_pos(&cp),
                    format!(
                        "`challenges` must be `all` or a non-empty list of challenge ids; known challenges: {}",
                        known()
                    ),
                );
                Vec::new()
            }
        };
        Action::TlsChallenges(TlsChallenges {
            controller,
            challenges,
        })
    } else {
        unreachable!("exactly one action is present")
    };
    for (path, text) in reference_templates(p, &action) {
        check_template(file, doc, &path, &text, d);
    }
    Some(Step {
        name: s.name.unwrap_or_else(|| action.kind().to_string()),
        timeout,
        action,
    })
}

/// Object names and namespaces are templated too (`${{ namespace }}-webapp`): their placeholders
/// must be known variables. Returns (document path, text) pairs.
fn reference_templates(p: &str, action: &Action) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |base: String, r: &ObjectRef| {
        out.push((format!("{base}.name"), r.name.clone()));
        if let Some(ns) = &r.namespace {
            out.push((format!("{base}.namespace"), ns.clone()));
        }
    };
    match action {
        Action::WaitFor(w) => add(format!("{p}.waitFor"), &w.object),
        Action::ExpectFailure(e) => add(format!("{p}.expectFailure"), &e.object),
        Action::Patch { object, .. } => add(format!("{p}.patch"), object),
        Action::TriggerReceiver { object } => add(format!("{p}.triggerReceiver"), object),
        Action::Delete { object, gone, .. } => {
            add(format!("{p}.delete"), object);
            for (i, g) in gone.iter().enumerate() {
                add(format!("{p}.delete.gone[{i}]"), g);
            }
        }
        Action::Assert(a) => {
            if let Some(o) = &a.object {
                add(format!("{p}.assert.object"), o);
            }
            if let Some(o) = a.event.as_ref().and_then(|e| e.object.as_ref()) {
                add(format!("{p}.assert.event.object"), o);
            }
            if let Some(o) = a.webhook.as_ref().and_then(|e| e.object.as_ref()) {
                add(format!("{p}.assert.webhook.object"), o);
            }
            if let Some(ns) = a.count.as_ref().and_then(|c| c.namespace.as_ref()) {
                out.push((format!("{p}.assert.count.namespace"), ns.clone()));
            }
            if let Some(sel) = a.count.as_ref().and_then(|c| c.label_selector.as_ref()) {
                out.push((format!("{p}.assert.count.labelSelector"), sel.clone()));
            }
        }
        _ => {}
    }
    out
}

/// A templated message pattern: known variables, `git.lastCommit` only after a `gitPush`, and a
/// valid regular expression once rendered.
fn message_ok(
    doc: &Document,
    file: &Path,
    path: &str,
    pattern: &Option<String>,
    walk: &Walk<'_>,
    d: &mut Diagnostics,
) {
    let Some(text) = pattern else { return };
    if !check_template(file, doc, path, text, d) {
        return;
    }
    let uses_commit = template::placeholders(text)
        .unwrap_or_default()
        .iter()
        .any(|p| p.name == "git.lastCommit");
    if uses_commit && !walk.pushed {
        d.push(
            file,
            doc.value_pos(path),
            "`git.lastCommit` is only defined after a `gitPush` step",
        );
    }
    // Variable values are literal text; a placeholder value keeps the pattern checkable.
    let vars: BTreeMap<String, String> = template::all_names()
        .into_iter()
        .map(|k| (k, "x".to_string()))
        .collect();
    if let Ok(rendered) = template::render(text, &vars) {
        regex_ok(doc, file, path, &Some(rendered), d);
    }
}

/// A reference without `apiVersion` must name a kind the engine can resolve: one applied by an
/// earlier step, a core kind or a Flux kind.
fn object_ok(
    doc: &Document,
    file: &Path,
    path: &str,
    api_version: &Option<String>,
    kind: &str,
    walk: &Walk<'_>,
    d: &mut Diagnostics,
) {
    if api_version.is_none()
        && !walk.applied_kinds.contains(kind)
        && flux_api::default_api_version(kind).is_none()
    {
        d.push(
            file,
            doc.value_pos(&format!("{path}.kind")),
            format!("cannot tell the `apiVersion` of kind `{kind}`: it is not applied by an earlier step, a core kind or a Flux kind; add `apiVersion`"),
        );
    }
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

/// Where an `apply` step's manifests sit, so a line and column inside the manifests text map back
/// to the file: a block scalar of the scenario file (`manifests: |`), or a file of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestSite {
    pub file: std::path::PathBuf,
    /// Where the text's line 1, column 1 sits in `file`.
    origin: Pos,
    /// False for a quoted or plain scalar: its lines cannot be mapped, the value's position is used.
    mapped: bool,
}

impl ManifestSite {
    /// The file position of line `line`, column `col` (both 1-based) of the manifests text.
    pub fn pos(&self, line: usize, col: usize) -> Pos {
        if !self.mapped {
            return self.origin;
        }
        Pos {
            line: self.origin.line + line - 1,
            col: self.origin.col + col - 1,
        }
    }
}

/// The manifest sites of every `apply` step in a scenario file, by step. Meant for scenarios
/// that loaded cleanly (then step indices match the model's); anything unreadable is left out.
pub fn manifest_sites(file: &Path, text: &str) -> BTreeMap<StepAt, ManifestSite> {
    let mut out = BTreeMap::new();
    let Ok(doc) = yaml::parse_single(text) else {
        return out;
    };
    for (base, finally) in [("spec.steps", false), ("spec.finally", true)] {
        let count = doc
            .value_at(base)
            .and_then(|v| v.as_array())
            .map_or(0, Vec::len);
        for index in 0..count {
            let ap = format!("{base}[{index}].apply");
            let site = if let Some(span) = doc.spans.get(&format!("{ap}.manifests")) {
                ManifestSite {
                    file: file.to_path_buf(),
                    origin: span.value,
                    mapped: span.block_scalar,
                }
            } else if let Some(rel) = doc.value_at(&format!("{ap}.file")).and_then(|v| v.as_str()) {
                ManifestSite {
                    file: file.parent().unwrap_or(Path::new(".")).join(rel),
                    origin: Pos { line: 1, col: 1 },
                    mapped: true,
                }
            } else {
                continue;
            };
            out.insert(StepAt { finally, index }, site);
        }
    }
    out
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
        let pos = doc.pos_inside(path, line, col);
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
    walk: &mut Walk<'_>,
    d: &mut Diagnostics,
) {
    let pos_of = |line: usize, col: usize| -> Pos {
        match own_file {
            Some(_) => Pos { line, col },
            None => doc.pos_inside(path, line, col),
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
    let vars: BTreeMap<String, String> = template::all_names()
        .into_iter()
        .map(|k| (k, "x".to_string()))
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
                let (Some(api), Some(kind)) = (
                    obj.get("apiVersion").and_then(|v| v.as_str()),
                    obj.get("kind").and_then(|v| v.as_str()),
                ) else {
                    continue;
                };
                walk.applied_kinds.insert(kind.to_string());
                for f in &walk.flux {
                    if let flux_api::Served::No(why) = flux_api::served(f, api, kind) {
                        d.push(
                            file,
                            at,
                            format!("manifest: {why}; narrow `spec.applicability.flux` or use a served version"),
                        );
                    }
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
            flux_versions: None,
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
    fn manifest_sites_map_lines_of_blocks_and_own_files() {
        let text = format!(
            "{HEAD}  - apply:\n      manifests: |\n        apiVersion: v1\n        kind: ConfigMap\n  - waitFor: {{kind: ConfigMap, name: c}}\n  - apply: {{file: m/x.yaml}}\n  finally:\n  - apply: {{manifests: \"kind: Quoted\"}}\n"
        );
        let sites = manifest_sites(Path::new("dir/s.yaml"), &text);
        assert_eq!(sites.len(), 3);
        let block = &sites[&StepAt {
            finally: false,
            index: 0,
        }];
        assert_eq!(block.file, Path::new("dir/s.yaml"));
        // Line 2, column 1 of the block (`kind: ConfigMap`) is line 10, column 9 of the file.
        assert_eq!(block.pos(2, 1), Pos { line: 10, col: 9 });
        let own = &sites[&StepAt {
            finally: false,
            index: 2,
        }];
        assert_eq!(own.file, Path::new("dir/m/x.yaml"));
        assert_eq!(own.pos(3, 4), Pos { line: 3, col: 4 });
        // A quoted scalar's lines cannot be mapped: its value position stands for all of them.
        let quoted = &sites[&StepAt {
            finally: true,
            index: 0,
        }];
        assert_eq!(quoted.pos(1, 7), quoted.pos(1, 1));
    }

    #[test]
    fn tls_challenges_take_all_or_known_ids_at_their_positions() {
        let ok = problems(&format!(
            "{HEAD}  - tlsChallenges: {{controller: source-controller, challenges: all}}\n  - tlsChallenges: {{controller: source-controller, challenges: [tls11, control-tls13]}}\n"
        ));
        assert_eq!(ok, Vec::<String>::new());
        let p = problems(&format!(
            "{HEAD}  - tlsChallenges: {{controller: source-controler, challenges: [tls11, tls99, tls11]}}\n  - tlsChallenges: {{controller: source-controller, challenges: some}}\n"
        ));
        assert!(
            p.iter()
                .any(|m| m.starts_with("s.yaml:7:33:") && m.contains("source-controler")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("s.yaml:7:71: unknown challenge `tls99`")
                    && m.contains("`control-tls13`")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|m| m.contains("`tls11` is listed twice")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("s.yaml:8:")
                    && m.contains("must be `all` or a non-empty list")),
            "{p:?}"
        );
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
    fn regex_and_template_mistakes_are_one_problem_per_line() {
        let p = problems(&format!(
            "{HEAD}  - expectFailure: {{kind: Kustomization, name: a, message: \"(unclosed\"}}\n  - waitFor: {{kind: Kustomization, name: \"${{{{ namespace\", condition: Ready, message: \"${{{{ nope }}}}\"}}\n"
        ));
        assert!(
            p.iter()
                .any(|m| m.contains("not a valid regular expression: unclosed group")),
            "{p:?}"
        );
        assert!(p.iter().any(|m| m.contains("unclosed `${{`")), "{p:?}");
        assert!(
            p.iter()
                .any(|m| m.contains("unknown template variable `nope`")),
            "{p:?}"
        );
        assert!(p.iter().all(|m| !m.contains('\n')), "{p:?}");
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

    fn problems_with(text: &str, flux: &[(FluxVersion, Option<FluxVersion>)]) -> Vec<String> {
        let mut d = Diagnostics::default();
        let c = Context {
            flux_versions: Some(flux),
            ..ctx()
        };
        load(Path::new("s.yaml"), text, &c, &mut d);
        d.into_sorted().iter().map(|x| x.to_string()).collect()
    }

    fn fv(s: &str) -> FluxVersion {
        s.parse().unwrap()
    }

    const OCI_V1BETA2: &str = "  - apply:\n      manifests: |\n        apiVersion: source.toolkit.fluxcd.io/v1beta2\n        kind: OCIRepository\n        metadata:\n          name: o\n";

    #[test]
    fn an_api_the_flux_version_does_not_serve_is_an_error_at_the_manifest() {
        let text = format!("{HEAD}{OCI_V1BETA2}");
        let p = problems_with(&text, &[(fv("v2.9.4"), Some(fv("v2.8.8")))]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("s.yaml:9:9: manifest: Flux v2.9.4 does not serve `OCIRepository` at `source.toolkit.fluxcd.io/v1beta2` (removed in Flux 2.8); use `source.toolkit.fluxcd.io/v1`"),
            "{p:?}"
        );
        // Narrowing applicability to versions that serve it makes the scenario valid.
        let narrowed = text.replace("spec:\n", "spec:\n  applicability: {flux: \"<2.8.0\"}\n");
        assert_eq!(
            problems_with(&narrowed, &[(fv("v2.9.4"), None), (fv("v2.7.5"), None)]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn upgrade_scenarios_are_checked_against_the_previous_version_too() {
        let text = format!(
            "{HEAD}  - installFlux: {{version: \"${{{{ flux.previousVersion }}}}\"}}\n  - apply:\n      manifests: |\n        apiVersion: image.toolkit.fluxcd.io/v1\n        kind: ImagePolicy\n        metadata:\n          name: p\n  - upgradeFlux: {{}}\n"
        );
        assert_eq!(
            problems_with(&text, &[(fv("v2.9.4"), Some(fv("v2.8.8")))]),
            Vec::<String>::new()
        );
        let p = problems_with(&text, &[(fv("v2.7.0"), Some(fv("v2.6.3")))]);
        assert!(
            p.iter()
                .any(|m| m.contains("Flux v2.6.3 does not serve `ImagePolicy`")),
            "{p:?}"
        );
        let p = problems(&format!(
            "{HEAD}  - installFlux: {{version: latest}}\n  - upgradeFlux: {{to: x}}\n"
        ));
        assert!(
            p.iter()
                .any(|m| m.contains("`latest` is not a Flux version")),
            "{p:?}"
        );
        assert!(p.iter().any(|m| m.contains("unknown field `to`")), "{p:?}");
    }

    #[test]
    fn unreachable_waits_are_rejected() {
        let p = problems(&format!(
            "{HEAD}  timeout: 1m\n  - waitFor: {{kind: Alert, name: a, condition: Ready}}\n  - expectFailure: {{kind: Provider, name: p, reason: X}}\n  - name: long\n    timeout: 5m\n    waitFor: {{kind: Kustomization, name: k}}\n  - waitFor: {{kind: Widget, name: w}}\n  - waitFor: {{kind: Kustomization, name: k, condition: Ready, message: \"${{{{ git.lastCommit }}}}\"}}\n"
        ).replace("  steps:\n  timeout: 1m\n", "  timeout: 1m\n  steps:\n"));
        let all = p.join("\n");
        assert!(all.contains("`Alert` has no status"), "{all}");
        assert!(all.contains("`Provider` has no status"), "{all}");
        assert!(
            all.contains("step timeout 5m exceeds the scenario timeout 1m"),
            "{all}"
        );
        assert!(all.contains("apiVersion` of kind `Widget`"), "{all}");
        assert!(
            all.contains("`git.lastCommit` is only defined after a `gitPush` step"),
            "{all}"
        );
    }

    #[test]
    fn templates_in_object_names_are_checked() {
        let p = problems(&format!(
            "{HEAD}  - waitFor: {{kind: HelmChart, name: \"${{{{ nmespace }}}}-webapp\"}}\n  - delete: {{kind: HelmChart, name: x, gone: [{{kind: ConfigMap, name: \"${{{{ bad }}}}\"}}]}}\n"
        ));
        assert!(
            p.iter().any(|m| m.starts_with("s.yaml:7:")
                && m.contains("unknown template variable `nmespace`")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.contains("unknown template variable `bad`")),
            "{p:?}"
        );
    }

    #[test]
    fn unknown_fixtures_are_reported_with_the_known_ones() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("fixtures/git/app")).unwrap();
        let c = Context {
            fixtures_root: Some(root.path()),
            ..ctx()
        };
        let text = format!("{HEAD}  - waitFor: {{kind: Kustomization, name: k}}\n")
            .replace("spec:\n", "spec:\n  fixtures: [git/nope, blobs/x]\n");
        let mut d = Diagnostics::default();
        load(Path::new("s.yaml"), &text, &c, &mut d);
        let p: Vec<String> = d.into_sorted().iter().map(|x| x.to_string()).collect();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("s.yaml:6:14: unknown fixture `git/nope`")
                && p[0].contains("known git fixtures: `app`"),
            "{p:?}"
        );
        assert!(p[1].contains("unknown fixture kind `blobs`"), "{p:?}");
    }
}
