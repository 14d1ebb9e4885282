//! Reports against real consumers: junit.xml validates against the project's Ant JUnit schema
//! (and the strict community copy when it is beside the checkout) with `xmllint` and reads back
//! through Python's `junitparser` with the same counts; results.json validates against its JSON
//! Schema (`jsonschema`); shards merge; summary.md carries the grid and renders literally through
//! a CommonMark renderer (`markdown-it-py`); an errored cell is never hidden.

mod support;

use flux_compat::model::results::*;
use flux_compat::report::files::write_all;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn phase(name: &str, status: Status, message: Option<&str>) -> PhaseResult {
    PhaseResult {
        name: name.into(),
        status,
        message: message.map(Into::into),
        duration_ms: 1234,
        diagnostics: None,
    }
}

fn scenario(name: &str, status: Status, message: Option<&str>) -> ScenarioResult {
    ScenarioResult {
        name: name.into(),
        tags: vec!["core".into()],
        status,
        message: message.map(Into::into),
        duration_ms: 4567,
        steps: vec![StepResult {
            name: "apply".into(),
            kind: "apply".into(),
            status: Status::Pass,
            message: None,
            duration_ms: 10,
        }],
        diagnostics: None,
        artifacts: None,
        properties: BTreeMap::new(),
    }
}

fn cell(id: &str, minor: &str, channel: &str, status: Status) -> CellResult {
    let mut properties = BTreeMap::new();
    properties.insert(
        "image.source-controller.digest".into(),
        "sha256:8a8ed0a57b8b86f561d5a4309a69f65e62f0cebe4de8801593c5ff35a3bc3c23".into(),
    );
    CellResult {
        id: id.into(),
        kubernetes_minor: minor.into(),
        kubernetes_version: Some(format!("v{minor}.1")),
        node_image: Some(format!("kindest/node:v{minor}.1@sha256:{}", "a".repeat(64))),
        channel: channel.into(),
        flux_version: "v2.9.4".into(),
        provider: "kind".into(),
        status,
        message: None,
        started_at: "2026-11-23T05:10:11Z".into(),
        duration_ms: 61_000,
        properties,
        phases: Vec::new(),
        scenarios: Vec::new(),
    }
}

/// A run with every outcome, awkward characters included.
fn sample_run() -> RunResult {
    let mut run = RunResult::new("r1", "2026-11-23T05:10:11Z".into());
    run.complete = true;
    run.finished_at = Some("2026-11-23T05:20:11Z".into());

    let mut a = cell(
        "1.37-upstream-v2.9.4-kind",
        "1.37",
        "upstream",
        Status::Pass,
    );
    a.phases = vec![
        phase("cluster", Status::Pass, None),
        phase("install", Status::Pass, None),
        phase("verify-images", Status::Pass, None),
    ];
    a.scenarios = vec![
        scenario("git-kustomization", Status::Pass, None),
        scenario(
            "fips-tls",
            Status::Skip,
            Some("needs a FIPS channel; `upstream` is not one"),
        ),
    ];

    let mut b = cell("1.37-fips-v2.9.4-kind", "1.37", "fips", Status::Fail);
    let mut v = phase(
        "verify-images",
        Status::Fail,
        Some("source-controller runs sha256:bad, expected sha256:7802 <&> \"quoted\""),
    );
    v.diagnostics = Some("pod source-controller-abc\n  imageID: docker-pullable://x@sha256:bad\n\u{1b}[31mcolour\u{1b}[0m".into());
    b.phases = vec![
        phase("cluster", Status::Pass, None),
        phase("install", Status::Pass, None),
        v,
    ];
    let mut f = scenario(
        "git-kustomization",
        Status::Fail,
        Some("Kustomization `app` never became Ready: HealthCheckFailed"),
    );
    f.diagnostics = Some("events:\n  Warning HealthCheckFailed ...".into());
    b.scenarios = vec![
        f,
        scenario(
            "fips-tls",
            Status::Error,
            Some("challenge endpoint `tls12-chacha20` did not start: address in use"),
        ),
    ];

    let mut c = cell(
        "1.32-mainline-v2.9.4-kind",
        "1.32",
        "mainline",
        Status::Error,
    );
    c.message = Some("kind create cluster failed: exit status 1".into());
    c.phases = vec![phase(
        "cluster",
        Status::Error,
        Some("kind create cluster failed: ERROR: failed to create cluster: node(s) already exist"),
    )];
    c.scenarios = vec![
        scenario(
            "git-kustomization",
            Status::Skip,
            Some("not run: cell setup failed"),
        ),
        scenario(
            "fips-tls",
            Status::Skip,
            Some("needs a FIPS channel; `mainline` is not one"),
        ),
    ];

    run.cells = vec![a, b, c];
    run
}

/// The JUnit schema the project carries (written from the Ant format), and the strict community
/// copy beside the checkout when present: every junit.xml must satisfy both.
fn junit_schemas() -> Vec<std::path::PathBuf> {
    let own = support::root().join("harness/src/report/junit.xsd");
    let shared = support::root().join("../shared/junit/JUnit.xsd");
    std::iter::once(own)
        .chain(shared.is_file().then_some(shared))
        .collect()
}

fn xmllint(schema: &Path, path: &Path) -> std::process::Output {
    Command::new(support::require("xmllint"))
        .arg("--noout")
        .arg("--schema")
        .arg(schema)
        .arg(path)
        .output()
        .unwrap()
}

fn xmllint_valid(path: &Path) {
    for schema in junit_schemas() {
        let out = xmllint(&schema, path);
        assert!(
            out.status.success(),
            "xmllint rejected {} against {}: {}",
            path.display(),
            schema.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

const JUNITPARSER: &str = r#"
import json, sys
from junitparser import JUnitXml
out = []
for suite in JUnitXml.fromfile(sys.argv[1]):
    cases = []
    for case in suite:
        kinds = [type(r).__name__ for r in case.result]
        cases.append({"name": case.name, "result": kinds[0] if kinds else "Pass",
                      "message": case.result[0].message if case.result else None})
    out.append({"name": suite.name, "tests": suite.tests, "failures": suite.failures,
                "errors": suite.errors, "skipped": suite.skipped, "cases": cases,
                "props": {p.name: p.value for p in suite.properties()}})
print(json.dumps(out))
"#;

fn junitparser_read(path: &Path) -> Value {
    let out = Command::new("python3")
        .arg("-c")
        .arg(JUNITPARSER)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "junitparser failed (run scripts/setup-test-deps.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn junit_validates_against_the_strict_schema_and_reads_back_with_the_same_counts() {
    let dir = tempfile::tempdir().unwrap();
    let run = sample_run();
    write_all(dir.path(), &run).unwrap();
    // Render once more through the CLI from the results file, as a user would.
    let out_dir = dir.path().join("rendered");
    let out = Command::new(support::binary())
        .args(["report", "render"])
        .arg(dir.path().join("results.json"))
        .arg("--output")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a run with failures exits 1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out_dir.join("report.html").is_file() && out_dir.join("summary.md").is_file(),
        "render writes every human report"
    );
    for path in [dir.path().join("junit.xml"), out_dir.join("junit.xml")] {
        xmllint_valid(&path);
        let suites = junitparser_read(&path);
        let suites = suites.as_array().unwrap();
        assert_eq!(suites.len(), run.cells.len());
        for (suite, cell) in suites.iter().zip(&run.cells) {
            let c = cell.case_counts();
            assert_eq!(suite["name"], cell.id.as_str());
            assert_eq!(suite["tests"], c.total());
            assert_eq!(suite["failures"], c.fail);
            assert_eq!(suite["errors"], c.error);
            assert_eq!(suite["skipped"], c.skip);
            let results: Vec<&str> = suite["cases"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["result"].as_str().unwrap())
                .collect();
            assert_eq!(results.iter().filter(|r| **r == "Failure").count(), c.fail);
            assert_eq!(results.iter().filter(|r| **r == "Error").count(), c.error);
            assert_eq!(results.iter().filter(|r| **r == "Skipped").count(), c.skip);
            assert_eq!(suite["props"]["flux.version"], "v2.9.4");
            assert_eq!(
                suite["props"]["image.source-controller.digest"],
                cell.properties["image.source-controller.digest"].as_str()
            );
        }
        // Failures and errors stay distinct, and messages survive escaping.
        let fips = &suites[1]["cases"];
        let verify = fips
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "[verify-images]")
            .unwrap();
        assert_eq!(verify["result"], "Failure");
        assert_eq!(
            verify["message"],
            "source-controller runs sha256:bad, expected sha256:7802 <&> \"quoted\""
        );
        let tls = fips
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "fips-tls")
            .unwrap();
        assert_eq!(tls["result"], "Error");
        let skipped = suites[0]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "fips-tls")
            .unwrap();
        assert_eq!(
            skipped["message"],
            "needs a FIPS channel; `upstream` is not one"
        );
    }
}

#[test]
fn results_json_validates_against_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &sample_run()).unwrap();
    let schema = dir.path().join("schema.json");
    let out = Command::new(support::binary())
        .args(["report", "schema"])
        .output()
        .unwrap();
    std::fs::write(&schema, &out.stdout).unwrap();
    let script = "import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1]))); print('ok')";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&schema)
        .arg(dir.path().join("results.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And the schema is strict: an unknown field is rejected.
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    v["cells"][0]["surprise"] = Value::Bool(true);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&schema)
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn summary_has_the_grid_and_the_failing_cases() {
    let md = flux_compat::report::summary::render(&sample_run());
    assert!(
        md.contains("| Kubernetes | upstream | fips | mainline |"),
        "{md}"
    );
    assert!(
        md.contains("| 1.37 | ✅ 2/2 (+1 skipped) | ❌ 0/3 | · |"),
        "{md}"
    );
    assert!(
        md.contains("| 1.32 | · | · | 💥 0/1 (+2 skipped) |"),
        "{md}"
    );
    assert!(
        md.contains("❌ `1.37-fips-v2.9.4-kind` / `[verify-images]`"),
        "{md}"
    );
    assert!(
        md.contains("💥 `1.37-fips-v2.9.4-kind` / `fips-tls`"),
        "{md}"
    );
    assert!(md.contains("3 skipped pair(s) and why"), "{md}");
}

#[test]
fn shards_merge_into_one_report_set_and_duplicates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let full = sample_run();
    let mut one = full.clone();
    one.cells.truncate(2);
    one.partitions = vec!["hash:1/2".into()];
    let mut two = full.clone();
    two.cells.drain(..2);
    two.partitions = vec!["hash:2/2".into()];
    write_all(&dir.path().join("s1"), &one).unwrap();
    write_all(&dir.path().join("s2"), &two).unwrap();
    let merged = dir.path().join("merged");
    let out = Command::new(support::binary())
        .args(["report", "merge"])
        .arg(dir.path().join("s1"))
        .arg(dir.path().join("s2"))
        .arg("-o")
        .arg(&merged)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back = flux_compat::report::files::read_results(&merged.join("results.json")).unwrap();
    assert_eq!(back.cells.len(), 3);
    assert_eq!(back.case_counts(), full.case_counts());
    assert_eq!(
        back.partitions,
        vec!["hash:1/2".to_string(), "hash:2/2".to_string()]
    );
    xmllint_valid(&merged.join("junit.xml"));
    assert!(
        merged.join("report.html").is_file(),
        "merge writes report.html"
    );
    // The same shard twice is a mistake, not a merge.
    let out = Command::new(support::binary())
        .args(["report", "merge"])
        .arg(dir.path().join("s1"))
        .arg(dir.path().join("s1"))
        .arg("-o")
        .arg(dir.path().join("m2"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("appears in both"));
    // A missing or foreign results file is a clear error.
    std::fs::create_dir_all(dir.path().join("junk")).unwrap();
    std::fs::write(dir.path().join("junk/results.json"), "{\"schema\": 3}").unwrap();
    let out = Command::new(support::binary())
        .args(["report", "merge"])
        .arg(dir.path().join("junk"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a flux-compat results file"));
}

/// A cell as the runner leaves it when the harness panicked in it: an error on the cell, every
/// scenario skipped as not run, no phase.
fn panicked_cell(scenarios: &[&str]) -> CellResult {
    let mut c = cell(
        "1.36-upstream-v2.9.4-kind",
        "1.36",
        "upstream",
        Status::Error,
    );
    c.properties.clear();
    c.message = Some("the harness panicked in this cell: index out of bounds".into());
    c.scenarios = scenarios
        .iter()
        .map(|s| {
            scenario(
                s,
                Status::Skip,
                Some("not run: the harness panicked in this cell"),
            )
        })
        .collect();
    c
}

#[test]
fn a_cell_that_errored_before_any_phase_is_an_error_in_junit_and_summary() {
    for scenarios in [&["git-kustomization", "fips-tls"][..], &[][..]] {
        let mut run = RunResult::new("r2", "2026-11-23T05:10:11Z".into());
        run.complete = true;
        run.cells = vec![panicked_cell(scenarios)];
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), &run).unwrap();
        let junit = dir.path().join("junit.xml");
        xmllint_valid(&junit);
        let suites = junitparser_read(&junit);
        let suite = &suites[0];
        assert_eq!(suite["errors"], 1, "{suite}");
        assert_eq!(
            suite["tests"],
            scenarios.len() + 1,
            "never an empty suite: {suite}"
        );
        let case = suite["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "[cell]")
            .unwrap_or_else(|| panic!("no case for the cell: {suite}"));
        assert_eq!(case["result"], "Error");
        assert!(
            case["message"]
                .as_str()
                .unwrap()
                .contains("the harness panicked")
        );
        let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
        assert!(
            md.contains(&format!(
                "**0 passed, 0 failed, 1 errored, {} skipped**",
                scenarios.len()
            )),
            "{md}"
        );
        assert!(
            md.contains("- 💥 `1.36-upstream-v2.9.4-kind`: the harness panicked"),
            "{md}"
        );
    }
}

#[test]
fn scenario_properties_reach_junit() {
    let mut run = sample_run();
    run.cells[0].scenarios[0]
        .properties
        .insert("namespace".into(), "fc-git-kustomization-1a2b".into());
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &run).unwrap();
    let junit = dir.path().join("junit.xml");
    xmllint_valid(&junit);
    let suites = junitparser_read(&junit);
    assert_eq!(
        suites[0]["props"]["scenario.git-kustomization.namespace"],
        "fc-git-kustomization-1a2b"
    );
}

/// Render Markdown the way GitHub's renderer family does (CommonMark + tables) and return the
/// HTML and its visible text.
const MARKDOWN_IT: &str = r#"
import sys, json
from html.parser import HTMLParser
from markdown_it import MarkdownIt
html = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(open(sys.argv[1], encoding="utf-8").read())
class Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True); self.parts = []; self.tags = set()
    def handle_starttag(self, tag, attrs): self.tags.add(tag)
    def handle_data(self, d): self.parts.append(d)
t = Text(); t.feed(html)
print(json.dumps({"html": html, "text": "".join(t.parts), "tags": sorted(t.tags)}))
"#;

#[test]
fn summary_messages_render_literally_and_harmlessly() {
    let nasty = "*x* **z** _y_ &amp; <b>bold</b> [l](http://e) `c` | pipe $m$ ~~s~~ \u{1b}[31mred\u{0}\u{fffe}end";
    let mut run = sample_run();
    run.cells[1].scenarios[0].message = Some(nasty.into());
    run.cells[0].scenarios[1].message = Some(nasty.into());
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &run).unwrap();
    let path = dir.path().join("summary.md");
    let md = std::fs::read_to_string(&path).unwrap();
    for bad in ['\u{1b}', '\u{0}', '\u{fffe}'] {
        assert!(!md.contains(bad), "{bad:?} reached summary.md");
    }
    let out = Command::new("python3")
        .args(["-c", MARKDOWN_IT])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "markdown-it-py failed (run scripts/setup-test-deps.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = r["text"].as_str().unwrap();
    // What the reader sees is the message itself, control characters as visible pictures.
    let shown = "*x* **z** _y_ &amp; <b>bold</b> [l](http://e) `c` | pipe $m$ ~~s~~ \u{241b}[31mred\u{2400}\u{fffd}end";
    assert_eq!(text.matches(shown).count(), 2, "{}", r["html"]);
    // And nothing in it became markup (the headline's bold is the summary's own).
    let tags: Vec<&str> = r["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for t in ["em", "b", "a", "del", "s", "script"] {
        assert!(!tags.contains(&t), "<{t}> in {}", r["html"]);
    }
}

/// The project's schema agrees with the strict community schema on what is valid: on the real
/// renders and on broken variants of them.
#[test]
fn the_project_junit_schema_agrees_with_the_strict_ant_schema() {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &sample_run()).unwrap();
    let good = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    let first_case = good.find("<testcase").unwrap();
    let mutations: Vec<(&str, String)> = vec![
        ("as written", good.clone()),
        (
            "attribute on testsuites",
            good.replacen("<testsuites>", "<testsuites tests=\"3\">", 1),
        ),
        ("no hostname", good.replacen(" hostname=\"", " host=\"", 1)),
        (
            "timestamp with a zone",
            good.replacen("2026-11-23T05:10:11\"", "2026-11-23T05:10:11Z\"", 1),
        ),
        (
            "no package",
            good.replacen(" package=\"flux-compat\"", "", 1),
        ),
        (
            "no system-err",
            good.replacen("<system-err></system-err>", "", 1),
        ),
        ("case without time", good.replacen(" time=\"4.567\"", "", 1)),
        (
            "failure without type",
            good.replacen(" type=\"ScenarioFailure\"", "", 1),
        ),
        (
            "two outcomes in a case",
            good.replacen("<skipped message=", "<skipped/><skipped message=", 1),
        ),
        (
            "unknown element",
            format!("{}<flaky/>{}", &good[..first_case], &good[first_case..]),
        ),
        (
            "tests not a number",
            good.replacen(" tests=\"", " tests=\"x", 1),
        ),
    ];
    let shared = support::root().join("../shared/junit/JUnit.xsd");
    let own = support::root().join("harness/src/report/junit.xsd");
    for (what, text) in mutations {
        let path = dir.path().join("m.xml");
        std::fs::write(&path, &text).unwrap();
        let ours = xmllint(&own, &path).status.success();
        assert_eq!(
            ours,
            what == "as written",
            "{what}: the project schema said {ours}"
        );
        if shared.is_file() {
            let theirs = xmllint(&shared, &path).status.success();
            assert_eq!(ours, theirs, "{what}: the schemas disagree");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// report.html in a real browser, and the compatibility attestation against independent verifiers.

const DIGEST_SC: &str = "sha256:8a8ed0a57b8b86f561d5a4309a69f65e62f0cebe4de8801593c5ff35a3bc3c23";
const DIGEST_KC: &str = "sha256:2b8bec54ffb6caf421bd2a6c005d27f567d5dd4db7feb55794fb51fcabd69b8f";

/// What the install and verify phases record for a cell of the upstream channel.
fn verified_properties(c: &mut CellResult) {
    for (component, tag, digest) in [
        ("source-controller", "v1.9.4", DIGEST_SC),
        ("kustomize-controller", "v1.9.4", DIGEST_KC),
    ] {
        let reference = format!("ghcr.io/fluxcd/{component}:{tag}@{digest}");
        c.properties
            .insert(format!("image.{component}.reference"), reference);
        c.properties
            .insert(format!("image.{component}.digest"), digest.into());
        c.properties
            .insert(format!("image.{component}.expected"), digest.into());
    }
    for (k, v) in [
        ("channel.registry", "ghcr.io/fluxcd"),
        ("channel.operatorVariant", "upstream-alpine"),
        ("channel.fips", "false"),
        ("matrix.sha256", &"c".repeat(64)[..]),
        ("flux.route", "manifests"),
    ] {
        c.properties.insert(k.into(), v.into());
    }
}

/// The sample run plus a second upstream cell whose scenario failed, FIPS evidence on the fips
/// cell, captured artifacts, and a cell in which the harness panicked.
fn evidence_run() -> RunResult {
    let mut run = sample_run();
    verified_properties(&mut run.cells[0]);
    run.cells[0].scenarios[0].artifacts =
        Some("artifacts/1.37-upstream-v2.9.4-kind/git-kustomization".into());
    let mut d = cell(
        "1.36-upstream-v2.9.4-kind",
        "1.36",
        "upstream",
        Status::Fail,
    );
    d.phases = vec![
        phase("cluster", Status::Pass, None),
        phase("install", Status::Pass, None),
        phase("verify-images", Status::Pass, None),
        phase("teardown", Status::Pass, None),
    ];
    let mut f = scenario(
        "git-kustomization",
        Status::Fail,
        Some("Kustomization `app` never became Ready"),
    );
    f.artifacts = Some("artifacts/1.36-upstream-v2.9.4-kind/git-kustomization".into());
    d.scenarios = vec![
        f,
        scenario("fips-tls", Status::Skip, Some("needs a FIPS channel")),
    ];
    verified_properties(&mut d);
    for (k, v) in [
        ("family", "boringcrypto"),
        ("goVersion", "go1.26.6 X:boringcrypto"),
        ("fipsModule", "-"),
        ("base", "distroless"),
    ] {
        run.cells[1]
            .properties
            .insert(format!("fips.source-controller.{k}"), v.into());
    }
    let mut p = panicked_cell(&["git-kustomization"]);
    p.id = "1.35-upstream-v2.9.4-kind".into();
    p.kubernetes_minor = "1.35".into();
    run.cells.push(d);
    run.cells.push(p);
    run.properties.insert(
        "imageCache.ghcr.io.bytesPulledFromUpstream".into(),
        "123456".into(),
    );
    run
}

#[test]
fn report_html_renders_in_headless_chromium_with_the_grid_counts_and_no_console_errors() {
    let run = evidence_run();
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &run).unwrap();
    let page = dir.path().join("report.html");
    let text = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing is fetched from anywhere.
    for needle in ["src=", "href=\"http", "@import", "url(", "<link"] {
        assert!(!text.contains(needle), "`{needle}` in report.html");
    }
    let out_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-html");
    std::fs::create_dir_all(&out_dir).unwrap();
    let shot = out_dir.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let url = format!("file://{}", page.display());
    let out = Command::new("python3")
        .arg(support::root().join("harness/tests/support/chromium_cdp.py"))
        .arg(support::require("chromium"))
        .arg(&url)
        .arg(&shot)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "headless Chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The script ran (it says so at info level) and nothing complained.
    let console = r["console"].as_array().unwrap();
    assert!(
        console
            .iter()
            .any(|m| m["level"] == "info" && m["text"] == "flux-compat report: 5 cell(s)"),
        "{console:?}"
    );
    let bad: Vec<&Value> = console
        .iter()
        .filter(|m| m["level"] != "info" && m["level"] != "log")
        .chain(
            r["log"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["level"] == "error" || m["level"] == "warning"),
        )
        .collect();
    assert!(bad.is_empty(), "console: {bad:?}");
    // The only requests are for the page itself (loaded twice: with and without JavaScript).
    let requests = r["requests"].as_array().unwrap();
    assert!(
        !requests.is_empty() && requests.iter().all(|u| u == &Value::String(url.clone())),
        "the page fetched something: {requests:?}"
    );

    // Without JavaScript everything is there, and the filter (which needs it) is not shown.
    assert_eq!(
        r["noScript"],
        serde_json::json!({"filterShown": false, "visibleSections": run.cells.len(), "gridCells": run.cells.len()}),
        "without JavaScript"
    );
    let dom = r["dom"].as_str().unwrap();
    // The filter appears only with JavaScript, and did.
    assert!(
        dom.contains("<fieldset class=\"filter\" id=\"filter\">"),
        "filter not shown"
    );
    // One grid cell per cell, coloured and labelled by outcome, linking to its section.
    let links = regex::Regex::new(r##"<td class="o-(\w+)" data-outcome="(\w+)"><a href="#([^"]+)" data-cell="([^"]+)"><span class="outcome o-\w+"><span aria-hidden="true">.</span> (\w+)</span><span class="counts">([^<]+)</span>"##).unwrap();
    let found: Vec<_> = links.captures_iter(dom).collect();
    assert_eq!(found.len(), run.cells.len(), "{dom}");
    for cap in &found {
        let c = run.cells.iter().find(|c| c.id == cap[4]).unwrap();
        assert_eq!(&cap[1], c.status.as_str());
        let word = match c.status {
            Status::Pass => "passed",
            Status::Fail => "failed",
            Status::Error => "errored",
            Status::Skip => "skipped",
        };
        assert_eq!(&cap[5], word);
        let n = c.case_counts();
        assert!(
            cap[6].starts_with(&format!("{}/{} passed", n.pass, n.pass + n.fail + n.error)),
            "{}",
            &cap[6]
        );
        assert!(
            dom.contains(&format!(
                "<section class=\"cell o-{}\" id=\"{}\"",
                c.status.as_str(),
                &cap[3]
            )),
            "no section `{}`",
            &cap[3]
        );
    }
    // Rows are the Kubernetes minors, newest first; columns the channels.
    let rows: Vec<&str> = regex::Regex::new(r#"<tr><th scope="row">([^<]+)</th>"#)
        .unwrap()
        .captures_iter(dom)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert_eq!(rows, ["1.37", "1.36", "1.35", "1.32"]);
    // The headline counts every case, the panicked cell's error included.
    let n = run.case_counts();
    for (s, count) in [
        ("pass", n.pass),
        ("fail", n.fail),
        ("error", n.error),
        ("skip", n.skip),
    ] {
        assert!(
            dom.contains(&format!(
                "data-count=\"{s}\" data-outcome-count=\"{count}\""
            )),
            "{s} {count}"
        );
    }
    assert!(n.error >= 3, "{n:?}");
    // Per cell: the timeline, messages, skip reasons, digests, FIPS evidence, relative artifact links.
    assert_eq!(dom.matches("<svg class=\"timeline\"").count(), 5);
    for needle in [
        "Kustomization `app` never became Ready",
        "needs a FIPS channel; `upstream` is not one",
        "the harness panicked in this cell",
        DIGEST_SC,
        "go1.26.6 X:boringcrypto",
        "href=\"artifacts/1.36-upstream-v2.9.4-kind/git-kustomization/\"",
        "imageCache.ghcr.io.bytesPulledFromUpstream",
    ] {
        assert!(dom.contains(needle), "`{needle}` missing");
    }
    // Escaped, not interpreted.
    assert!(dom.contains("expected sha256:7802 &lt;&amp;&gt; \"quoted\""));
    // A picture for people to look at.
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new(support::require("openssl"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ECDSA P-256 key pair made by the openssl CLI: `<name>.pem` (PKCS#8) and `<name>.pub`.
fn key_pair(dir: &Path, name: &str) {
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{name}.pem"),
        ],
        dir,
    );
    openssl(
        &[
            "pkey",
            "-in",
            &format!("{name}.pem"),
            "-pubout",
            "-out",
            &format!("{name}.pub"),
        ],
        dir,
    );
}

fn flux_compat(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(support::binary()).args(args).output().unwrap()
}

/// The independent verifier: securesystemslib's DSSE with a key id computed here from the public
/// key, in-toto-attestation's Statement v1 checks, and the predicate's JSON Schema.
const PY_VERIFY: &str = r#"
import base64, hashlib, json, sys
import jsonschema
from cryptography.hazmat.primitives import serialization
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
pub = serialization.load_pem_public_key(open(sys.argv[1], "rb").read())
der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
key = SSlibKey.from_crypto(pub, keyid=hashlib.sha256(der).hexdigest(), scheme="ecdsa-sha2-nistp256")
schema = json.load(open(sys.argv[3]))
out = []
for line in open(sys.argv[2]):
    if not line.strip():
        continue
    try:
        env = Envelope.from_dict(json.loads(line))
        env.verify([key], 1)
        st = json.loads(env.payload)
        Statement.copy_from_pb(json_format.ParseDict(st, statement_pb2.Statement())).validate()
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(st["predicate"])
        out.append({"ok": True, "subjects": st["subject"], "predicateType": st["predicateType"], "verdict": st["predicate"]["verdict"]})
    except Exception as e:
        out.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
print(json.dumps(out))
"#;

fn python_verify(pubkey: &Path, attestation: &Path, schema: &Path) -> Vec<Value> {
    let out = Command::new("python3")
        .args(["-c", PY_VERIFY])
        .arg(pubkey)
        .arg(attestation)
        .arg(schema)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the Python verifier failed (run scripts/setup-test-deps.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_signed_attestation_verifies_here_and_in_python_and_tampering_is_refused_by_both() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = evidence_run();
    write_all(&d.join("run"), &run).unwrap();
    key_pair(d, "k");
    key_pair(d, "other");
    let schema = d.join("predicate.schema.json");
    let out = flux_compat(&["report".as_ref(), "schema".as_ref(), "--predicate".as_ref()]);
    std::fs::write(&schema, &out.stdout).unwrap();
    let results = d.join("run/results.json");

    let out = flux_compat(&[
        "report".as_ref(),
        "attest".as_ref(),
        results.as_os_str(),
        "--key".as_ref(),
        d.join("k.pem").as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    // Only the upstream channel had a cell that verified its images.
    assert!(
        err.contains("attested `upstream` Flux v2.9.4: verdict Error, 2 image(s)"),
        "{err}"
    );
    assert!(err.contains("not attested: `fips` Flux v2.9.4"), "{err}");
    let written: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(written.as_array().unwrap().len(), 1, "{written}");
    let envelopes = d.join("run/attestation.intoto.jsonl");

    // Accepted by this tool, exactly matching the results...
    let verify = |file: &Path, key: &str, results: Option<&Path>| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "report".as_ref(),
            "verify".as_ref(),
            file.as_os_str(),
            "--key".as_ref(),
        ];
        let key = d.join(key);
        args.push(key.as_os_str());
        if let Some(r) = results {
            args.push("--results".as_ref());
            args.push(r.as_os_str());
        }
        let o = flux_compat(&args);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = verify(&envelopes, "k.pub", Some(&results));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("the attestation matches the results exactly"),
        "{err}"
    );
    // ... and by the independent implementation.
    let py = python_verify(&d.join("k.pub"), &envelopes, &schema);
    assert_eq!(py.len(), 1);
    assert_eq!(py[0]["ok"], true, "{py:?}");
    assert_eq!(py[0]["verdict"], "error");
    let subjects: Vec<(String, String)> = py[0]["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["digest"]["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        subjects,
        vec![
            (
                "ghcr.io/fluxcd/kustomize-controller".to_string(),
                DIGEST_KC[7..].to_string()
            ),
            (
                "ghcr.io/fluxcd/source-controller".to_string(),
                DIGEST_SC[7..].to_string()
            ),
        ]
    );

    // Only what passed is attested as passing.
    let line = std::fs::read_to_string(&envelopes).unwrap();
    let env: Value = serde_json::from_str(line.trim()).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    let cells = statement["predicate"]["cells"].as_array().unwrap();
    let failed = cells
        .iter()
        .find(|c| c["id"] == "1.36-upstream-v2.9.4-kind")
        .unwrap();
    assert_eq!(failed["scenarios"][0]["outcome"], "fail");
    assert_eq!(failed["scenarios"][1]["outcome"], "skip");
    assert_eq!(failed["scenarios"][1]["message"], "needs a FIPS channel");
    let panicked = cells
        .iter()
        .find(|c| c["id"] == "1.35-upstream-v2.9.4-kind")
        .unwrap();
    assert_eq!(panicked["checks"][0]["name"], "[cell]");
    assert_eq!(panicked["checks"][0]["outcome"], "error");

    // Tampered: an outcome flipped to pass inside the signed payload.
    let flipped = String::from_utf8(payload.clone()).unwrap().replacen(
        "\"outcome\":\"fail\"",
        "\"outcome\":\"pass\"",
        1,
    );
    let mut t = env.clone();
    t["payload"] = Value::String(b64.encode(flipped));
    let tampered = d.join("tampered.jsonl");
    std::fs::write(&tampered, format!("{t}\n")).unwrap();
    // Unsigned: the signatures removed.
    let mut u = env.clone();
    u["signatures"] = serde_json::json!([]);
    let unsigned = d.join("unsigned.jsonl");
    std::fs::write(&unsigned, format!("{u}\n")).unwrap();
    // Signed by another key.
    let out = flux_compat(&[
        "report".as_ref(),
        "attest".as_ref(),
        results.as_os_str(),
        "--key".as_ref(),
        d.join("other.pem").as_os_str(),
        "-o".as_ref(),
        d.join("other").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let foreign = d.join("other/attestation.intoto.jsonl");
    for (file, why) in [
        (&tampered, "does not verify"),
        (&unsigned, "without signatures"),
        (&foreign, "not by the given key"),
    ] {
        let (code, err) = verify(file, "k.pub", None);
        assert_eq!(code, Some(1), "{}: {err}", file.display());
        assert!(err.contains(why), "{}: {err}", file.display());
        let py = python_verify(&d.join("k.pub"), file, &schema);
        assert_eq!(
            py[0]["ok"],
            false,
            "Python accepted {}: {py:?}",
            file.display()
        );
    }

    // Signed and intact, but not what the results say: every difference is named.
    let mut changed = run.clone();
    changed.cells[3].scenarios[0].status = Status::Pass;
    write_all(&d.join("changed"), &changed).unwrap();
    let (code, err) = verify(&envelopes, "k.pub", Some(&d.join("changed/results.json")));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "`/predicate/cells/1/scenarios/0/outcome` is \"fail\"; the results say \"pass\""
        ),
        "{err}"
    );
    assert!(
        err.contains("`/predicate/counts/pass` is 3; the results say 4"),
        "{err}"
    );

    // Usage problems are exit 2 with a clear message; a missing key is never a pass.
    let o = flux_compat(&["report".as_ref(), "verify".as_ref(), envelopes.as_os_str()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`--key PUB`"));
    let (code, err) = verify(&envelopes, "k.pem", None);
    assert_eq!(code, Some(2));
    assert!(err.contains("this is a private key"), "{err}");
    let o = flux_compat(&[
        "report".as_ref(),
        "attest".as_ref(),
        results.as_os_str(),
        "--key".as_ref(),
        d.join("k.pub").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected a PKCS#8 PEM private key"));
}
