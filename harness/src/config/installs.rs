//! Matrix × scenario cross-check: every Flux version a selected scenario installs (`installFlux`,
//! e.g. `${{ flux.previousVersion }}`) must be pinned by each channel the scenario runs on, so a
//! run never discovers mid-cell that it cannot install what a step asks for.
//!
//! Scenarios the matrix selects by default are the matrix's promise: a gap there is a
//! configuration error at the step. Scenarios picked only on the command line are skipped by the
//! plan with the same reason (`Scenario::unrunnable_installs` is the one rule both apply).

use super::diag::Diagnostics;
use super::yaml::Document;
use crate::model::matrix::{Matrix, ProviderKind};
use crate::model::scenario::{CellTraits, Scenario, StepAt};
use crate::model::{FluxVersion, KubeMinor};
use std::collections::{BTreeMap, BTreeSet};

/// Report each `installFlux` step of a default-selected scenario that some planned cell could not
/// run. `doc` gives the scenario's parsed file (for positions).
pub fn check(m: &Matrix, s: &Scenario, doc: &Document, d: &mut Diagnostics) {
    if !m.selection.selects(&s.name, &s.tags) || !s.manages_flux() {
        return;
    }
    // (step, version or reason) → channels and the cells' Flux versions that hit it.
    type Gap = (StepAt, bool, String);
    let mut gaps: BTreeMap<Gap, (BTreeSet<&str>, BTreeSet<&FluxVersion>)> = BTreeMap::new();
    for flux in &m.flux {
        for channel in &m.channels {
            // A channel without pins for the cell's own version skips the whole cell.
            if !channel.releases.contains_key(&flux.version) {
                continue;
            }
            let applies = minors(m).into_iter().any(|minor| {
                let traits = CellTraits {
                    flux: &flux.version,
                    kubernetes: minor,
                    channel: &channel.name,
                    channel_fips: channel.fips,
                    components: &m.components,
                };
                s.applicability.skip_reason(&traits).is_none()
            });
            if !applies {
                continue;
            }
            for gap in s.unrunnable_installs(flux, channel) {
                let what = match &gap.version {
                    Some(v) => v.to_string(),
                    None => gap.reason,
                };
                let entry = gaps
                    .entry((gap.at, gap.version.is_some(), what))
                    .or_default();
                entry.0.insert(&channel.name);
                entry.1.insert(&flux.version);
            }
        }
    }
    let matrix_name = m
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| m.file.display().to_string());
    for ((at, pinned_gap, what), (channels, fluxes)) in gaps {
        let fluxes = list(fluxes.iter().map(|f| f.to_string()));
        let message = if pinned_gap {
            let (names, verb, those) = match channels.len() {
                1 => ("channel", "pins", "that channel"),
                _ => ("channels", "pin", "those channels"),
            };
            format!(
                "`installFlux` installs Flux {what} in cells of Flux {fluxes}, but {names} {} {verb} no images for it: add a `flux: {what}` release to {those} in `{matrix_name}`, or leave scenario `{}` out of the matrix's selection",
                list(channels.iter().map(|c| c.to_string())),
                s.name
            )
        } else {
            format!("`installFlux` cannot run in cells of Flux {fluxes}: {what}")
        };
        let base = if at.finally {
            "spec.finally"
        } else {
            "spec.steps"
        };
        let pos = doc.value_pos(&format!("{base}[{}].installFlux.version", at.index));
        d.push(&s.file, pos, message);
    }
}

/// Every Kubernetes minor the matrix plans cells for by default.
fn minors(m: &Matrix) -> Vec<KubeMinor> {
    let mut out = Vec::new();
    for p in m.providers.iter().filter(|p| p.enabled) {
        match &p.kind {
            ProviderKind::Kind => out.extend(m.kubernetes.iter().map(|k| k.minor)),
            ProviderKind::Existing { kubernetes, .. } => out.push(*kubernetes),
        }
    }
    out
}

fn list(items: impl Iterator<Item = String>) -> String {
    items
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
