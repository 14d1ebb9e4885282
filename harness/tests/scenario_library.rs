//! The shipped scenario library: every scenario validates with the repository's matrix, is
//! planned on the default matrix with the expected gating, and renders in every cell it runs in
//! (templates resolved with fixture values, YAML well formed, API versions served by the cell's
//! Flux version, patterns compile). Needs no cluster.

use flux_compat::config::{self, Sources};
use flux_compat::model::matrix::Matrix;
use flux_compat::model::scenario::{Action, CellTraits, Scenario};
use flux_compat::model::{Component, FluxVersion, KubeMinor, flux_api, template};
use flux_compat::plan::{self, Filter};
use flux_compat::scenario::{Cell, namespace_for, parse_manifests, variables};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn loaded() -> config::Loaded {
    config::load(&Sources {
        matrix: root().join("matrix.yaml"),
        scenarios_dir: None,
    })
    .unwrap_or_else(|d| {
        panic!(
            "{}",
            d.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

const LIBRARY: &[&str] = &[
    "artifact-generator",
    "dependencies",
    "fips-tls",
    "git-kustomization",
    "helm-from-git",
    "helm-http",
    "helm-oci",
    "image-automation",
    "multi-tenancy",
    "notifications",
    "oci-kustomization",
    "upgrade",
];

/// Values shaped like the fixture plane's.
fn fixture_vars() -> BTreeMap<String, String> {
    [
        ("fixtures.gitUrl", "https://172.18.0.1:30443/git"),
        ("fixtures.helmUrl", "https://172.18.0.1:30443/helm"),
        ("fixtures.ociHost", "172.18.0.1:30500"),
        ("fixtures.ociUrl", "oci://172.18.0.1:30500"),
        ("fixtures.webhookUrl", "https://172.18.0.1:30443/webhook"),
        ("fixtures.caSecret", "flux-compat-fixtures-ca"),
        ("fixtures.authSecret", "flux-compat-fixtures-auth"),
        ("fixtures.pushSecret", "flux-compat-fixtures-push"),
        ("fixtures.pauseImage", "registry.k8s.io/pause:3.10"),
        ("challenges.caSecret", "flux-compat-challenge-ca"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain(
        flux_compat::model::scenario::CHALLENGE_IDS
            .iter()
            .enumerate()
            .flat_map(|(i, id)| {
                let address = format!("172.18.0.1:{}", 31000 + i);
                [
                    (
                        template::challenge_variable(id, "url"),
                        format!("https://{address}"),
                    ),
                    (template::challenge_variable(id, "address"), address),
                ]
            }),
    )
    .collect()
}

fn cell_of(m: &Matrix, c: &plan::PlannedCell) -> Cell {
    let previous = m
        .flux
        .iter()
        .find(|f| f.version == c.flux)
        .and_then(|f| f.previous.clone());
    Cell {
        run_id: "20261123-0600".into(),
        cell_id: c.id.clone(),
        kubernetes: c.kubernetes,
        flux: c.flux.clone(),
        previous_flux: previous,
        flux_namespace: "flux-system".into(),
        channel: c.channel.clone(),
        channel_fips: c.fips,
        components: m.components.clone(),
        step_timeout: m.timeouts.step,
        teardown_timeout: m.timeouts.teardown,
    }
}

/// Render every templated part of `s` for `cell` and check it; returns the problems.
fn render_problems(s: &Scenario, cell: &Cell) -> Vec<String> {
    let ns = namespace_for(&s.name, cell);
    let mut vars = variables(cell, &ns, fixture_vars());
    let mut out = Vec::new();
    let mut flux = cell.flux.clone();
    for step in s.steps.iter().chain(&s.finally) {
        let at = format!("{} / {}", s.name, step.name);
        let render = |t: &str, vars: &BTreeMap<String, String>| template::render(t, vars);
        match &step.action {
            Action::Apply { manifests } => match render(manifests, &vars) {
                Err(e) => out.push(format!("{at}: {e}")),
                Ok(text) => match parse_manifests(&text) {
                    Err(e) => out.push(format!("{at}: {e}")),
                    Ok(objs) => {
                        for o in objs {
                            let api = o["apiVersion"].as_str().unwrap_or_default();
                            let kind = o["kind"].as_str().unwrap_or_default();
                            if let flux_api::Served::No(why) = flux_api::served(&flux, api, kind) {
                                out.push(format!("{at}: {why}"));
                            }
                            let ns_ok = o.pointer("/metadata/namespace").and_then(Value::as_str)
                                == Some(ns.as_str());
                            if !ns_ok {
                                out.push(format!(
                                    "{at}: `{kind}` is not in the scenario namespace"
                                ));
                            }
                            let text = serde_json::to_string(&o).unwrap();
                            if text.contains("${{") {
                                out.push(format!("{at}: unrendered placeholder in `{kind}`"));
                            }
                            if text.contains("image\":")
                                && !text.contains("registry.k8s.io/pause:3.10")
                                && kind == "Deployment"
                            {
                                out.push(format!("{at}: workloads must use the pause image"));
                            }
                        }
                    }
                },
            },
            Action::WaitFor(w) => {
                if let Some(m) = &w.message {
                    match render(m, &vars).map(|r| regex::Regex::new(&r)) {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => out.push(format!("{at}: {e}")),
                        Err(e) => out.push(format!("{at}: {e}")),
                    }
                }
            }
            Action::ExpectFailure(e) => {
                if let Some(m) = &e.message
                    && let Err(err) = render(m, &vars).map(|r| regex::Regex::new(&r).map(|_| ()))
                {
                    out.push(format!("{at}: {err}"));
                }
            }
            Action::GitPush(g) => {
                for (path, content) in &g.files {
                    match render(content, &vars) {
                        Err(e) => out.push(format!("{at}: {path}: {e}")),
                        Ok(text) if path.ends_with(".yaml") => {
                            if let Err(e) = parse_manifests(&text) {
                                out.push(format!("{at}: {path}: {e}"));
                            }
                        }
                        Ok(_) => {}
                    }
                }
                vars.insert(
                    "git.lastCommit".into(),
                    "0123456789abcdef0123456789abcdef01234567".into(),
                );
            }
            Action::InstallFlux { version } => {
                match render(version, &vars).map(|v| v.parse::<FluxVersion>()) {
                    Ok(Ok(v)) => flux = v,
                    Ok(Err(e)) => out.push(format!("{at}: {e}")),
                    Err(e) => out.push(format!("{at}: {e}")),
                }
            }
            Action::UpgradeFlux => flux = cell.flux.clone(),
            _ => {}
        }
    }
    out
}

#[test]
fn the_library_is_complete_and_valid() {
    let l = loaded();
    let names: Vec<&str> = l.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, LIBRARY);
    for s in &l.scenarios {
        assert!(!s.description.is_empty(), "{} has no description", s.name);
        assert!(
            s.applicability.flux.is_some(),
            "{} is not gated to a Flux range",
            s.name
        );
        for f in &s.fixtures {
            assert!(
                root().join("fixtures").join(f).is_dir(),
                "{}: fixture {f} missing",
                s.name
            );
        }
    }
    let upgrade = l.scenarios.iter().find(|s| s.name == "upgrade").unwrap();
    assert!(upgrade.manages_flux());
    assert!(l.scenarios.iter().filter(|s| s.manages_flux()).count() == 1);
}

#[test]
fn every_planned_scenario_renders_in_every_cell_of_the_default_matrix() {
    let mut l = loaded();
    // The default run: profile `newest` (`matrix_update` plans the `lts` profile's extra minor).
    l.matrix
        .select_profile(flux_compat::model::matrix::PROFILE_NEWEST)
        .unwrap();
    let p = plan::build(&l.matrix, &l.scenarios, &Filter::default(), None);
    assert_eq!(
        p.cells.len(),
        18,
        "six minors × three channels × one Flux version (kind)"
    );
    let mut rendered = 0;
    let mut problems = Vec::new();
    for c in &p.cells {
        let cell = cell_of(&l.matrix, c);
        for ps in c.runnable_scenarios() {
            let s = l.scenarios.iter().find(|s| s.name == ps.name).unwrap();
            problems.extend(
                render_problems(s, &cell)
                    .into_iter()
                    .map(|m| format!("{}: {m}", c.id)),
            );
            rendered += 1;
        }
    }
    assert_eq!(problems, Vec::<String>::new());
    // `fips-tls` is differential between `fips` and `mainline`: 12 of the 18 cells.
    assert_eq!(
        rendered,
        18 * (LIBRARY.len() - 1) + 12,
        "every scenario runs in every default cell it applies to"
    );
}

#[test]
fn gating_turns_into_reasons_never_silence() {
    let l = loaded();
    let flux: FluxVersion = "v2.6.3".parse().unwrap();
    let without_watcher: Vec<Component> = Component::ALL
        .iter()
        .copied()
        .filter(|c| *c != Component::SourceWatcher)
        .collect();
    let traits = CellTraits {
        flux: &flux,
        kubernetes: KubeMinor::new(1, 33),
        channel: "upstream",
        channel_fips: false,
        components: &without_watcher,
    };
    let by_name = |n: &str| l.scenarios.iter().find(|s| s.name == n).unwrap();
    for s in &l.scenarios {
        assert!(
            s.applicability
                .skip_reason(&traits)
                .is_some_and(|r| r.contains("needs Flux")),
            "{} must not run on Flux 2.6 (it uses APIs served from 2.7)",
            s.name
        );
    }
    let v27: FluxVersion = "v2.7.5".parse().unwrap();
    let traits27 = CellTraits {
        flux: &v27,
        ..traits
    };
    assert_eq!(
        by_name("artifact-generator")
            .applicability
            .skip_reason(&traits27)
            .as_deref(),
        Some("needs components not installed in this cell: source-watcher")
    );
    assert!(
        by_name("upgrade")
            .applicability
            .skip_reason(&traits27)
            .unwrap()
            .contains("needs Flux >=2.8.0")
    );
    assert_eq!(
        by_name("git-kustomization")
            .applicability
            .skip_reason(&traits27),
        None
    );

    // Through the plan: a matrix without source-watcher skips the generator with the reason.
    let mut m = l.matrix.clone();
    m.components.retain(|c| *c != Component::SourceWatcher);
    let p = plan::build(&m, &l.scenarios, &Filter::default(), None);
    for c in &p.cells {
        let generator = c
            .scenarios
            .iter()
            .find(|s| s.name == "artifact-generator")
            .unwrap();
        assert!(
            generator
                .skip
                .as_deref()
                .unwrap()
                .contains("source-watcher"),
            "{}",
            c.id
        );
        let fips_tls = c.scenarios.iter().find(|s| s.name == "fips-tls").unwrap();
        let skipped = usize::from(c.channel == "upstream");
        if c.channel == "upstream" {
            assert!(
                fips_tls.skip.as_deref().unwrap().contains("fips, mainline"),
                "{}",
                c.id
            );
        }
        assert_eq!(c.runnable_scenarios().count(), LIBRARY.len() - 1 - skipped);
    }
}

#[test]
fn the_default_step_timeout_fits_every_scenario() {
    let l = loaded();
    for s in &l.scenarios {
        let longest = s
            .steps
            .iter()
            .map(|st| st.timeout.unwrap_or(l.matrix.timeouts.step))
            .max()
            .unwrap_or(Duration::ZERO);
        assert!(
            longest <= s.timeout,
            "{}: a step may take longer than the scenario",
            s.name
        );
    }
}

#[test]
fn the_readme_documents_every_step_kind_variable_and_scenario() {
    let readme = std::fs::read_to_string(root().join("scenarios/README.md")).unwrap();
    for kind in flux_compat::model::scenario::STEP_KINDS {
        let heading = readme
            .lines()
            .any(|l| l.starts_with("### ") && l.contains(&format!("`{kind}`")));
        let example =
            readme.contains(&format!("- {kind}:")) || readme.contains(&format!("  {kind}:"));
        assert!(
            heading && example,
            "no section with an example of `{kind}` in scenarios/README.md"
        );
    }
    for (var, _) in template::KNOWN_VARIABLES {
        assert!(
            readme.contains(&format!("| `{var}` |")),
            "variable `{var}` missing from scenarios/README.md"
        );
    }
    for name in LIBRARY {
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "scenario `{name}` missing from scenarios/README.md"
        );
    }
}
