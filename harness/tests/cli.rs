//! The command line end to end: every invalid sample gives its exact diagnostics and exit 2;
//! the default matrix validates and plans to 18 cells; partitions cover the plan exactly once.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

/// The real Flux install manifests `validate` checks scenario manifests against, as a
/// `--flux-manifests` directory (located once per test process).
fn flux_manifests() -> &'static Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let into = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli");
        support::flux_manifest_dir(&["v2.9.4", "v2.8.8"], &into)
    })
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(support::binary())
        .current_dir(dir)
        .args(args)
        .env_remove("FLUX_COMPAT_MATRIX")
        .env(support::FLUX_MANIFESTS_ENV, flux_manifests())
        .env("NO_COLOR", "1")
        .output()
        .expect("binary runs")
}

fn run(args: &[&str]) -> Output {
    run_in(&support::root(), args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_invalid_sample_gives_its_expected_diagnostics_and_exit_2() {
    let dir = support::root().join("fixtures/invalid");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let case = entry.unwrap().path();
        if !case.is_dir() || case.file_name().unwrap() == "_common" {
            continue;
        }
        let expected = std::fs::read_to_string(case.join("expected.txt"))
            .unwrap_or_else(|_| panic!("{} has no expected.txt", case.display()));
        let out = run_in(&case, &["validate"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {}",
            case.display(),
            stderr(&out)
        );
        let got: Vec<String> = stderr(&out)
            .lines()
            .filter(|l| !l.starts_with("error: "))
            .map(str::to_string)
            .collect();
        let want: Vec<String> = expected
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        assert_eq!(got, want, "diagnostics of {}", case.display());
        assert!(stderr(&out).contains(&format!("error: {} problem(s)", want.len())));
        assert!(!stderr(&out).contains("panicked"));
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} samples found");
}

#[test]
fn the_default_matrix_validates() {
    let out = run(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("7 Kubernetes minor(s), 3 channel(s)"),
        "{}",
        stderr(&out)
    );
}

fn plan_json(extra: &[&str]) -> Value {
    let mut args = vec!["plan", "--format", "json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("plan json parses")
}

fn cell_ids(plan: &Value) -> Vec<String> {
    plan["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn default_plan_has_18_cells_six_minors_by_three_channels() {
    let plan = plan_json(&[]);
    let cells = plan["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 18);
    let minors: BTreeSet<&str> = cells
        .iter()
        .map(|c| c["kubernetes"].as_str().unwrap())
        .collect();
    assert_eq!(
        minors,
        ["1.32", "1.33", "1.34", "1.35", "1.36", "1.37"]
            .into_iter()
            .collect()
    );
    let channels: BTreeSet<&str> = cells
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(
        channels,
        ["fips", "mainline", "upstream"].into_iter().collect()
    );
    for c in cells {
        let image = c["nodeImage"].as_str().unwrap();
        assert!(image.contains("@sha256:"), "{image}");
        assert!(!c["scenarios"].as_array().unwrap().is_empty());
    }
    // The table says the same.
    let table = stdout(&run(&["plan"]));
    assert!(
        table.contains("18 cell(s) (18 to run, 0 skipped)"),
        "{table}"
    );
}

#[test]
fn github_matrix_is_a_valid_strategy_matrix() {
    let out = run(&["plan", "--format", "github-matrix"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let include = v["include"].as_array().unwrap();
    assert_eq!(include.len(), 18);
    for e in include {
        for key in ["cell", "kubernetes", "channel", "flux", "provider"] {
            assert!(e[key].is_string(), "{key} missing in {e}");
        }
        assert!(e["fips"].is_boolean());
    }
    assert_eq!(
        v.as_object().unwrap().len(),
        1,
        "only `include` at the top level"
    );
}

#[test]
fn partitions_cover_the_plan_exactly_once() {
    let all: BTreeSet<String> = cell_ids(&plan_json(&[])).into_iter().collect();
    for strategy in ["hash", "slice"] {
        for n in 1..=5 {
            let mut union = BTreeSet::new();
            let mut total = 0;
            for i in 1..=n {
                let ids = cell_ids(&plan_json(&["--partition", &format!("{strategy}:{i}/{n}")]));
                total += ids.len();
                union.extend(ids);
            }
            assert_eq!(union, all, "{strategy} over {n} shards");
            assert_eq!(total, all.len(), "{strategy} over {n} shards overlaps");
        }
    }
}

#[test]
fn bad_partitions_and_unknown_filters_are_usage_errors() {
    for (args, needle) in [
        (vec!["plan", "--partition", "hash:4/3"], "out of range"),
        (vec!["plan", "--partition", "hash:0/3"], "out of range"),
        (
            vec!["plan", "--partition", "mod:1/3"],
            "known strategies: `hash`, `slice`",
        ),
        (
            vec!["plan", "--channel", "fipz"],
            "known channels: `upstream`, `mainline`, `fips`",
        ),
        (
            vec!["plan", "--scenario", "nope"],
            "unknown scenario `nope`; known scenarios:",
        ),
        (
            vec!["plan", "--tag", "cor"],
            "unknown tag `cor`; known tags: `core`, `fips`, `git`,",
        ),
        (
            vec!["plan", "--exclude-tag", "slwo"],
            "unknown tag `slwo`; known tags: `core`,",
        ),
        (
            vec!["run", "--dry-run", "--tag", "cor"],
            "unknown tag `cor`; known tags:",
        ),
        (
            vec!["plan", "--k8s", "1.99"],
            "unknown Kubernetes minor `1.99`",
        ),
        (vec!["plan", "--flux", "2.9"], "not a Flux version"),
        (vec!["plan", "--format", "yaml"], "invalid value 'yaml'"),
        (
            vec!["--matrix", "does-not-exist.yaml", "validate"],
            "does-not-exist.yaml:1:1: cannot read file",
        ),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn filters_select_cells_and_scenarios() {
    let plan = plan_json(&["--channel", "fips", "--k8s", "1.37"]);
    assert_eq!(cell_ids(&plan), vec!["1.37-fips-v2.9.4-kind"]);
    let plan = plan_json(&["--cell", "1.3[!]*"]);
    assert!(cell_ids(&plan).is_empty());
    let plan = plan_json(&["--cell", "1.3?-upstream-*"]);
    assert_eq!(cell_ids(&plan).len(), 6);
    // A disabled provider is planned when asked for, with its declared minor.
    let plan = plan_json(&["--provider", "eks-lts"]);
    let ids = cell_ids(&plan);
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter()
            .all(|i| i.starts_with("1.32-") && i.ends_with("-eks-lts")),
        "{ids:?}"
    );
}

#[test]
fn help_is_available_for_every_command() {
    for args in [
        vec!["--help"],
        vec!["validate", "--help"],
        vec!["plan", "--help"],
        vec!["report", "merge", "--help"],
        vec!["report", "attest", "--help"],
        vec!["report", "verify", "--help"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout(&out).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn every_channel_pins_the_flux_version_the_upgrade_scenario_installs_first() {
    // `upgrade` installs `flux.previousVersion` (v2.8.8) before upgrading: every default cell can
    // run it only because each channel pins that release too.
    let plan = plan_json(&["--scenario", "upgrade"]);
    let cells = plan["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 18);
    for c in cells {
        let s = &c["scenarios"][0];
        assert_eq!(s["name"], "upgrade");
        assert!(s["skip"].is_null(), "{}: {}", c["id"], s["skip"]);
    }
}

#[test]
fn a_scenario_selected_only_on_the_command_line_is_skipped_when_its_flux_install_is_unpinned() {
    // The invalid sample, with the upgrade scenario left out of the matrix's default selection:
    // validation passes, and asking for the scenario plans it skipped with the reason.
    let sample = support::root().join("fixtures/invalid/unpinned-flux-install");
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(sample.join("matrix.yaml"))
        .unwrap()
        .replace(
            "scenarios:\n  directory: scenarios\n",
            &format!(
                "scenarios:\n  directory: {}\n  exclude:\n    tags: [upgrade]\n",
                sample.join("scenarios").display()
            ),
        );
    std::fs::write(dir.path().join("matrix.yaml"), text).unwrap();
    let out = run_in(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run_in(
        dir.path(),
        &["plan", "--format", "json", "--scenario", "upgrade"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let skips: Vec<(String, Value)> = plan["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["scenarios"][0]["skip"].clone(),
            )
        })
        .collect();
    assert_eq!(
        skips,
        vec![
            ("1.37-upstream-v2.9.4-kind".to_string(), Value::Null),
            (
                "1.37-upstream-v2.8.8-kind".to_string(),
                Value::from(
                    "the matrix gives Flux v2.8.8 no `previous` for `flux.previousVersion`"
                )
            ),
            (
                "1.37-other-v2.9.4-kind".to_string(),
                Value::from(
                    "step `install the previous Flux minor` installs Flux v2.8.8, and channel `other` pins no images for it"
                )
            ),
            (
                "1.37-other-v2.8.8-kind".to_string(),
                Value::from("cell skipped: channel `other` pins no images for Flux v2.8.8")
            ),
        ]
    );
}

#[test]
fn validate_checks_the_library_against_the_real_crds_and_needs_the_manifests() {
    let out = run(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("match the CRDs of Flux v2.8.8, v2.9.4"),
        "{}",
        stderr(&out)
    );
    // Without manifests the check cannot run: a missing prerequisite with the way out, not a pass.
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let out = run(&["validate", "--flux-manifests", dir]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("v2.8.8/install.yaml"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--config-only"), "{}", stderr(&out));
    let out = run(&["validate", "--flux-manifests", dir, "--config-only"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("not checked against the Flux CRDs"));
}

// Issue 17: without a registry token the plan says what it leaves out: every cell of a channel
// that pulls with a token is skipped with the reason, and gets no job in the strategy matrix.
#[test]
fn a_token_less_plan_skips_the_enterprise_cells_with_the_reason() {
    let plan = plan_json(&["--without-registry-token"]);
    let cells = plan["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 18, "no cell vanishes from the plan");
    for c in cells {
        let skip = c["skip"].as_str();
        if c["channel"] == "upstream" {
            assert_eq!(skip, None, "{c}");
        } else {
            assert_eq!(skip, Some("no registry token"), "{c}");
            for s in c["scenarios"].as_array().unwrap() {
                assert!(s["skip"].as_str().is_some(), "{s}");
            }
        }
    }
    let out = run(&[
        "plan",
        "--format",
        "github-matrix",
        "--without-registry-token",
    ]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let include = v["include"].as_array().unwrap();
    assert_eq!(include.len(), 6);
    assert!(include.iter().all(|e| e["channel"] == "upstream"), "{v}");
}

// Issue 17: a run that stops for a missing token leaves its reason in the report directory, and
// the merge against the plan reports that cell as an error with it; a token-less run reports
// the enterprise cell as skipped with the reason.
#[test]
fn a_run_stopped_for_a_token_leaves_its_reason_for_the_merge() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).display().to_string();
    let cell = "1.37-fips-v2.9.4-kind";
    let plan = run(&["plan", "--format", "json", "--k8s", "1.37"]);
    std::fs::write(d("plan.json"), stdout(&plan)).unwrap();
    let out = Command::new(support::binary())
        .current_dir(support::root())
        .args(["run", "--cell", cell, "--report-dir", &d("fips")])
        .env_remove("FLUX_COMPAT_REGISTRY_TOKEN")
        .env_remove("FLUX_COMPAT_MATRIX")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let status: Value =
        serde_json::from_str(&std::fs::read_to_string(d("fips/exit-status.json")).unwrap())
            .unwrap();
    assert_eq!(status["exitCode"], 3);
    assert_eq!(status["cells"], serde_json::json!([cell]));
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("channel(s) `fips` need a registry token"),
        "{status}"
    );
    // The token-less run of the mainline cell: skipped with the reason, nothing created.
    let out = Command::new(support::binary())
        .current_dir(support::root())
        .args([
            "run",
            "--cell",
            "1.37-mainline-v2.9.4-kind",
            "--without-registry-token",
            "--report-dir",
            &d("mainline"),
        ])
        .env_remove("FLUX_COMPAT_REGISTRY_TOKEN")
        .env_remove("FLUX_COMPAT_MATRIX")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&[
        "report",
        "merge",
        &d("fips"),
        &d("mainline"),
        "--expect",
        &d("plan.json"),
        "-o",
        &d("merged"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(d("merged/results.json")).unwrap()).unwrap();
    let by_id = |id: &str| {
        merged["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing"))
            .clone()
    };
    let fips = by_id(cell);
    assert_eq!(fips["status"], "error");
    assert!(
        fips["message"]
            .as_str()
            .unwrap()
            .starts_with("exited 3: channel(s) `fips` need a registry token"),
        "{fips}"
    );
    let mainline = by_id("1.37-mainline-v2.9.4-kind");
    assert_eq!(mainline["status"], "skip");
    assert_eq!(mainline["message"], "no registry token");
    // The upstream cell had no shard at all.
    assert_eq!(
        by_id("1.37-upstream-v2.9.4-kind")["message"],
        "no results uploaded: the job did not finish"
    );
    let summary = std::fs::read_to_string(d("merged/summary.md")).unwrap();
    assert!(summary.contains("no registry token"), "{summary}");
    // Without the plan, a shard that only holds an exit status cannot be reported: a usage error.
    let out = run(&["report", "merge", &d("fips"), "-o", &d("m2")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("pass `--expect PLAN`"),
        "{}",
        stderr(&out)
    );
}

// Issue 17: a declared scenario timeout above the cap is named with its position; a bad
// `--deadline` is a usage error before anything runs.
#[test]
fn validate_warns_about_timeouts_above_the_cap_and_bad_deadlines_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("long.yaml"),
        "apiVersion: flux-compat/v1alpha1\nkind: Scenario\nmetadata:\n  name: long\n  tags: [core]\nspec:\n  timeout: 25m\n  steps:\n    - name: wait\n      waitFor: {apiVersion: v1, kind: ConfigMap, name: x}\n",
    )
    .unwrap();
    let scenarios = dir.path().display().to_string();
    let out = run(&["validate", "--config-only", "--scenarios-dir", &scenarios]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{}:7:12: warning: scenario `long` declares a timeout of 25m, above the cap of 20m: it gets 20m",
            dir.path().join("long.yaml").display()
        )),
        "{}",
        stderr(&out)
    );
    // The library itself stays under the cap.
    assert!(!stderr(&run(&["validate", "--config-only"])).contains("warning"));
    for bad in ["0s", "soon", "30d"] {
        let out = run(&[
            "run",
            "--channel",
            "upstream",
            "--deadline",
            bad,
            "--dry-run",
        ]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
    }
}
