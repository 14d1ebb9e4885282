//! `validate`'s CRD pass: every `apply` step of every runnable scenario in every planned cell is
//! rendered with that cell's values and checked against the CRDs of the Flux version installed
//! at that step (the CRDs inside the install manifests the run applies, only those of installed
//! components), the way the API server checks a write with strict field validation: unknown
//! fields, `required`, `enum`, `pattern`, types, after defaulting. Problems point into the
//! scenario files (`file:line:col`). Pure and synchronous: the caller loads the manifests.
//!
//! Fixture values are shaped like a kind run's (the plane on the `kind` network gateway), since
//! schema patterns check URLs and hosts. Built-in kinds (ConfigMap, Deployment, ...) have no CRD
//! and are not checked here; CEL rules (`x-kubernetes-validations`) are counted, not evaluated.

use crate::config::scenario::{ManifestSite, manifest_sites};
use crate::config::yaml::{self, Document};
use crate::config::{Diagnostic, Diagnostics, Loaded};
use crate::fixtures::plane::Endpoints;
use crate::flux::crds::{Crds, Lookup};
use crate::k8s::schema::{self, FieldError, Problem};
use crate::model::matrix::Matrix;
use crate::model::scenario::{Action, CHALLENGE_IDS, Scenario, StepAt, install_version};
use crate::model::{FluxVersion, template};
use crate::plan::{Plan, PlannedCell};
use crate::scenario::{Cell, challenge_variables_of, namespace_for, variables};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The kind network's usual gateway, where a kind run advertises the fixture plane.
const SAMPLE_HOST: &str = "172.18.0.1";
const SAMPLE_PLANE_PORT: u16 = 30443;
const SAMPLE_CHALLENGE_PORT: u16 = 31000;
/// What `git.lastCommit` holds after a `gitPush`: a full SHA-1.
const SAMPLE_COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// What the pass found and covered.
#[derive(Debug, Default)]
pub struct Outcome {
    pub diagnostics: Vec<Diagnostic>,
    /// Runnable cells whose scenarios were rendered.
    pub cells: usize,
    /// Objects checked against a CRD schema (one per object, step and cell).
    pub objects: usize,
    /// CEL rules in the schemas used, by `<crd>/<version>`: present, not evaluated.
    pub unevaluated_rules: BTreeMap<String, usize>,
}

/// The Flux versions whose CRDs the plan needs: each runnable cell's own, and every version its
/// runnable scenarios install first.
pub fn versions_needed(loaded: &Loaded, plan: &Plan) -> BTreeSet<FluxVersion> {
    let mut out = BTreeSet::new();
    for cell in plan.cells.iter().filter(|c| c.skip.is_none()) {
        out.insert(cell.flux.clone());
        let previous = previous_of(&loaded.matrix, &cell.flux);
        for s in runnable(loaded, cell) {
            for step in s.steps.iter().chain(&s.finally) {
                if let Action::InstallFlux { version } = &step.action
                    && let Ok(v) = install_version(version, &cell.flux, previous.as_ref())
                {
                    out.insert(v);
                }
            }
        }
    }
    out
}

/// Check every planned cell. `crds` must hold every version of [`versions_needed`].
pub fn check(loaded: &Loaded, plan: &Plan, crds: &BTreeMap<FluxVersion, Crds>) -> Outcome {
    let mut out = Outcome::default();
    let mut d = Diagnostics::default();
    let mut sites: BTreeMap<&Path, BTreeMap<StepAt, ManifestSite>> = BTreeMap::new();
    for cell in plan.cells.iter().filter(|c| c.skip.is_none()) {
        out.cells += 1;
        let c = cell_of(&loaded.matrix, cell);
        for s in runnable(loaded, cell) {
            let sites = sites.entry(&s.file).or_insert_with(|| {
                std::fs::read_to_string(&s.file)
                    .map(|text| manifest_sites(&s.file, &text))
                    .unwrap_or_default()
            });
            let vars = variables(&c, &namespace_for(&s.name, &c), sample_fixture_values());
            check_scenario(s, &c, &vars, sites, crds, &mut out, &mut d);
        }
    }
    out.diagnostics = d.into_sorted();
    out
}

fn runnable<'a>(loaded: &'a Loaded, cell: &'a PlannedCell) -> impl Iterator<Item = &'a Scenario> {
    cell.runnable_scenarios()
        .filter_map(|p| loaded.scenarios.iter().find(|s| s.name == p.name))
}

fn previous_of(m: &Matrix, flux: &FluxVersion) -> Option<FluxVersion> {
    m.flux
        .iter()
        .find(|f| &f.version == flux)
        .and_then(|f| f.previous.clone())
}

/// The scenario engine's view of a planned cell.
fn cell_of(m: &Matrix, cell: &PlannedCell) -> Cell {
    Cell {
        run_id: "validate".into(),
        cell_id: cell.id.clone(),
        kubernetes: cell.kubernetes,
        flux: cell.flux.clone(),
        previous_flux: previous_of(m, &cell.flux),
        flux_namespace: crate::flux::NAMESPACE.into(),
        channel: cell.channel.clone(),
        channel_fips: cell.fips,
        components: m.components.clone(),
        step_timeout: m.timeouts.step,
        teardown_timeout: m.timeouts.teardown,
    }
}

/// The `fixtures.*`, `challenges.*` and `git.lastCommit` values of a kind run, by shape.
fn sample_fixture_values() -> BTreeMap<String, String> {
    let listen = std::net::SocketAddr::from(([172, 18, 0, 1], SAMPLE_PLANE_PORT));
    let mut v = Endpoints::new(SAMPLE_HOST, listen).template_variables();
    v.extend(challenge_variables_of(
        CHALLENGE_IDS
            .iter()
            .zip(0u16..)
            .map(|(id, i)| (*id, format!("{SAMPLE_HOST}:{}", SAMPLE_CHALLENGE_PORT + i))),
    ));
    v.insert("git.lastCommit".into(), SAMPLE_COMMIT.into());
    v
}

/// Walk the steps in order, following which Flux version is installed, and check each `apply`.
fn check_scenario(
    s: &Scenario,
    cell: &Cell,
    vars: &BTreeMap<String, String>,
    sites: &BTreeMap<StepAt, ManifestSite>,
    crds: &BTreeMap<FluxVersion, Crds>,
    out: &mut Outcome,
    d: &mut Diagnostics,
) {
    let mut installed = cell.flux.clone();
    let main = s.steps.iter().enumerate().map(|(i, st)| (false, i, st));
    let finally = s.finally.iter().enumerate().map(|(i, st)| (true, i, st));
    for (finally, index, step) in main.chain(finally) {
        match &step.action {
            Action::InstallFlux { version } => {
                if let Ok(v) = install_version(version, &cell.flux, cell.previous_flux.as_ref()) {
                    installed = v;
                }
            }
            Action::UpgradeFlux => installed = cell.flux.clone(),
            Action::Apply { manifests } => {
                let (Some(site), Some(crds)) =
                    (sites.get(&StepAt { finally, index }), crds.get(&installed))
                else {
                    continue;
                };
                let apply = Apply {
                    template: manifests,
                    vars,
                    site,
                    flux: &installed,
                    components: &cell.components,
                };
                apply.check(crds, out, d);
            }
            _ => {}
        }
    }
}

/// One `apply` step in one cell.
struct Apply<'a> {
    template: &'a str,
    vars: &'a BTreeMap<String, String>,
    site: &'a ManifestSite,
    flux: &'a FluxVersion,
    components: &'a [crate::model::Component],
}

impl Apply<'_> {
    fn check(&self, crds: &Crds, out: &mut Outcome, d: &mut Diagnostics) {
        // Configuration validation already proved the template well-formed with neutral values.
        let Ok(rendered) = template::render(self.template, self.vars) else {
            return;
        };
        let docs = match yaml::parse(&rendered) {
            Ok(docs) => docs,
            Err(problems) => {
                for p in problems {
                    let at = self.file_pos(p.pos);
                    d.push(
                        &self.site.file,
                        at,
                        format!("rendered manifest: {}", p.message),
                    );
                }
                return;
            }
        };
        for doc in docs.iter().filter(|x| x.value.is_object()) {
            self.check_object(doc, crds, out, d);
        }
    }

    fn check_object(&self, doc: &Document, crds: &Crds, out: &mut Outcome, d: &mut Diagnostics) {
        let text = |k: &str| {
            doc.value
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
        };
        let (api_version, kind) = (text("apiVersion"), text("kind"));
        let at = self.file_pos(doc.pos("kind"));
        let flux = self.flux;
        let message = match crds.lookup(api_version, kind, self.components) {
            Lookup::Foreign => return,
            Lookup::Served { crd, version } => {
                out.objects += 1;
                if version.cel_rules > 0 {
                    out.unevaluated_rules
                        .insert(format!("{}/{}", crd.name, version.name), version.cel_rules);
                }
                let mut obj = doc.value.clone();
                schema::default(&version.schema, &mut obj);
                for e in schema::validate(&version.schema, &obj) {
                    let pos = self.file_pos(field_pos(doc, &e));
                    d.push(
                        &self.site.file,
                        pos,
                        format!("`{kind}` does not match its CRD in Flux {flux}: {e}"),
                    );
                }
                return;
            }
            Lookup::NotInstalled { component } => format!(
                "`{kind}` exists only where `{component}` is installed, and the matrix does not install it; list it in the scenario's `spec.applicability.components`"
            ),
            Lookup::NotServed { served } => format!(
                "Flux {flux} does not serve `{kind}` as `{api_version}`; it serves {}",
                quoted(&served)
            ),
            Lookup::UnknownKind { known } => format!(
                "Flux {flux} defines no kind `{kind}` in `{api_version}`; its kinds there: {}",
                quoted(&known)
            ),
        };
        d.push(&self.site.file, at, message);
    }

    /// A position in the rendered text, back in the scenario (or manifest) file.
    fn file_pos(&self, p: yaml::Pos) -> yaml::Pos {
        let line = self
            .template
            .lines()
            .nth(p.line.saturating_sub(1))
            .unwrap_or("");
        let col = template::source_col(line, self.vars, p.col);
        self.site.pos(p.line, col)
    }
}

/// Where a schema problem sits in the rendered document: the key for unknown and missing fields
/// (a missing one at its nearest present parent), the value otherwise.
fn field_pos(doc: &Document, e: &FieldError) -> yaml::Pos {
    let path = yaml_path(&e.path);
    match e.problem {
        Problem::Unknown | Problem::Required => doc.pos(&path),
        _ => doc.value_pos(&path),
    }
}

/// A schema path (`spec.items[0]`, `spec.map[key]`) in the YAML index's form (`spec.map.key`).
fn yaml_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        let inner = &rest[open + 1..close];
        if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&rest[open..=close]);
        } else {
            out = yaml::join_key(&out, inner);
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_paths_become_yaml_index_paths() {
        assert_eq!(yaml_path("spec.ref.branch"), "spec.ref.branch");
        assert_eq!(yaml_path("spec.items[2].name"), "spec.items[2].name");
        assert_eq!(
            yaml_path("metadata.annotations[fluxcd.io/x]"),
            "metadata.annotations.fluxcd.io/x"
        );
        assert_eq!(yaml_path("spec.values[a][0]"), "spec.values.a[0]");
        assert_eq!(yaml_path("reff"), "reff");
    }
}
