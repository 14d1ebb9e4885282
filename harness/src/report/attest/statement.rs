//! The compatibility attestation as data: an in-toto Statement v1 per distribution release
//! (channel × Flux version) found in a results file. Subjects are the controller images whose
//! digests a cell verified; the predicate records where and how they were tested and every
//! outcome exactly as the results hold it, so nothing that did not pass is attested as passing.
//! Pure: built from `RunResult`, compared and parsed here, signed and written elsewhere.

use crate::model::results::CELL_CASE;
use crate::model::results::Counts;
use crate::model::{CellResult, RunResult, Status};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// This project's predicate, versioned: a reader refuses versions it does not know.
pub const PREDICATE_TYPE: &str = "https://flux-compat.dev/attestation/compatibility/v1";
/// The JSON Schema of the predicate (`predicate.schema.json` beside this module).
pub const PREDICATE_SCHEMA_JSON: &str = include_str!("predicate.schema.json");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Predicate,
}

/// An in-toto resource descriptor reduced to what a controller image needs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Image repository, e.g. `ghcr.io/fluxcd/source-controller`.
    pub name: String,
    /// `{"sha256": "<64 hex>"}`.
    pub digest: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Predicate {
    pub distribution: Distribution,
    pub harness: Harness,
    pub inputs: Inputs,
    pub run: RunInfo,
    /// `pass` only when every cell of this distribution ran to the end and nothing failed,
    /// errored or was left unchecked; `inconclusive` when the run did not see everything.
    pub verdict: Verdict,
    pub counts: CaseCounts,
    /// The verified controller images (the subjects), by component.
    pub images: Vec<Image>,
    pub cells: Vec<Cell>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Distribution {
    pub channel: String,
    /// The Flux Operator variant (`enterprise-distroless-fips`).
    pub variant: String,
    pub registry: String,
    pub fips: bool,
    pub flux_version: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Harness {
    pub name: String,
    pub version: String,
    pub commit: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inputs {
    pub matrix: FileDigest,
    /// The distribution images file the pins came from; `null` for pins written in the matrix.
    pub images_file: Option<FileDigest>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileDigest {
    /// As the matrix names it (relative); absent for the matrix itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunInfo {
    pub id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub complete: bool,
    pub interrupted: bool,
    pub partitions: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Error,
    Inconclusive,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseCounts {
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub skip: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    pub component: String,
    pub name: String,
    pub tag: String,
    pub digest: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cell {
    pub id: String,
    pub kubernetes: Kubernetes,
    pub provider: String,
    pub outcome: Status,
    pub message: Option<String>,
    /// Product-checking phases (`[verify-images]`, `[verify-fips]`), phases that did not pass,
    /// and the cell's own case when nothing else carries its outcome.
    pub checks: Vec<Outcome>,
    pub scenarios: Vec<Outcome>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kubernetes {
    pub minor: String,
    /// The exact server version (`v1.36.4`), when the cluster answered.
    pub version: Option<String>,
    pub node_image: Option<String>,
    pub node_image_digest: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Outcome {
    pub name: String,
    pub outcome: Status,
    /// Why it failed, errored or was skipped.
    pub message: Option<String>,
}

/// The results cannot be turned into an attestation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttestError {
    #[error(
        "attest `{channel}` Flux {flux}: cells {cells} verified different digests of `{component}`"
    )]
    ConflictingDigests {
        channel: String,
        flux: String,
        component: String,
        cells: String,
    },
    #[error(
        "attest `{channel}` Flux {flux}: cells disagree on `{property}` ({values}); one attestation covers one harness, matrix and images file"
    )]
    ConflictingInputs {
        channel: String,
        flux: String,
        property: String,
        values: String,
    },
    #[error(
        "attest `{channel}` Flux {flux}: cell `{cell}` verified its images but does not record `{property}` (results written before this version; run again)"
    )]
    MissingProperty {
        channel: String,
        flux: String,
        cell: String,
        property: String,
    },
}

/// A distribution release in the results that cannot be attested, and why (not an error: the
/// results say so honestly, there is just no verified image to bind a statement to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unattested {
    pub channel: String,
    pub flux: String,
    pub reason: String,
}

/// One statement per distribution release with at least one verified image, in the order the
/// results first name them; the others are returned with the reason.
pub fn statements(run: &RunResult) -> Result<(Vec<Statement>, Vec<Unattested>), AttestError> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for c in &run.cells {
        let k = (c.channel.clone(), c.flux_version.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (channel, flux) in keys {
        let cells: Vec<&CellResult> = run
            .cells
            .iter()
            .filter(|c| c.channel == channel && c.flux_version == flux)
            .collect();
        match statement(run, &channel, &flux, &cells)? {
            Some(s) => out.push(s),
            None => skipped.push(Unattested {
                reason: format!(
                    "no cell verified the controller images ({} cell(s), none passed `verify-images`)",
                    cells.len()
                ),
                channel,
                flux,
            }),
        }
    }
    Ok((out, skipped))
}

/// Whether the cell's `verify-images` phase passed: its image properties are then proven.
fn verified(c: &CellResult) -> bool {
    c.phases
        .iter()
        .any(|p| p.name == "verify-images" && p.status == Status::Pass)
}

fn statement(
    run: &RunResult,
    channel: &str,
    flux: &str,
    cells: &[&CellResult],
) -> Result<Option<Statement>, AttestError> {
    let proven: Vec<&CellResult> = cells.iter().copied().filter(|c| verified(c)).collect();
    if proven.is_empty() {
        return Ok(None);
    }
    let images = verified_images(channel, flux, &proven)?;
    if images.is_empty() {
        return Ok(None);
    }
    let (distribution, inputs) = distribution_and_inputs(channel, flux, &proven)?;
    let counts = counts(cells);
    let run_info = RunInfo {
        id: run.run_id.clone(),
        started_at: run.started_at.clone(),
        finished_at: run.finished_at.clone(),
        complete: run.complete,
        interrupted: run.interrupted,
        partitions: run.partitions.clone(),
    };
    let mut subject: Vec<Subject> = images
        .iter()
        .map(|i| Subject {
            name: i.name.clone(),
            digest: BTreeMap::from([(
                "sha256".to_string(),
                i.digest.trim_start_matches("sha256:").to_string(),
            )]),
        })
        .collect();
    subject.sort();
    subject.dedup();
    let predicate = Predicate {
        distribution,
        harness: Harness {
            name: "flux-compat".into(),
            version: run.tool_version.clone(),
            commit: run.tool_commit.clone(),
        },
        inputs,
        verdict: verdict(&run_info, &counts),
        counts,
        run: run_info,
        images,
        cells: cells.iter().map(|c| cell(c)).collect(),
    };
    Ok(Some(Statement {
        statement_type: STATEMENT_TYPE.into(),
        subject,
        predicate_type: PREDICATE_TYPE.into(),
        predicate,
    }))
}

/// The channel and the input files, as every proven cell recorded them at install.
fn distribution_and_inputs(
    channel: &str,
    flux: &str,
    proven: &[&CellResult],
) -> Result<(Distribution, Inputs), AttestError> {
    let one = |property: &str| agreed(channel, flux, proven, property);
    let required = |property: &str| {
        one(property)?.ok_or_else(|| AttestError::MissingProperty {
            channel: channel.into(),
            flux: flux.into(),
            cell: proven[0].id.clone(),
            property: property.into(),
        })
    };
    let distribution = Distribution {
        channel: channel.into(),
        variant: required("channel.operatorVariant")?,
        registry: required("channel.registry")?,
        fips: required("channel.fips")? == "true",
        flux_version: flux.into(),
    };
    let images_file = match one("channel.imagesFile")? {
        None => None,
        Some(path) => Some(FileDigest {
            path: Some(path),
            sha256: required("channel.imagesFile.sha256")?,
        }),
    };
    let matrix = FileDigest {
        path: None,
        sha256: required("matrix.sha256")?,
    };
    Ok((
        distribution,
        Inputs {
            matrix,
            images_file,
        },
    ))
}

/// Test-case outcomes over the distribution's cells, as JUnit counts them.
fn counts(cells: &[&CellResult]) -> CaseCounts {
    let mut total = Counts::default();
    for c in cells {
        let n = c.case_counts();
        total.pass += n.pass;
        total.fail += n.fail;
        total.error += n.error;
        total.skip += n.skip;
    }
    CaseCounts {
        pass: total.pass,
        fail: total.fail,
        error: total.error,
        skip: total.skip,
    }
}

/// The verdict follows from the counts and whether the run saw everything: only a complete run
/// with passes and no failure, error or skip-only outcome is a pass.
pub fn verdict(run: &RunInfo, counts: &CaseCounts) -> Verdict {
    if counts.error > 0 {
        Verdict::Error
    } else if counts.fail > 0 {
        Verdict::Fail
    } else if !run.complete || run.interrupted || counts.pass == 0 {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    }
}

/// The value every proven cell records for `property`, `None` when none does.
fn agreed(
    channel: &str,
    flux: &str,
    cells: &[&CellResult],
    property: &str,
) -> Result<Option<String>, AttestError> {
    let mut values: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in cells {
        let v = c.properties.get(property).map_or("(none)", String::as_str);
        values.entry(v).or_default().push(&c.id);
    }
    if values.len() > 1 {
        return Err(AttestError::ConflictingInputs {
            channel: channel.into(),
            flux: flux.into(),
            property: property.into(),
            values: values
                .iter()
                .map(|(v, ids)| format!("`{v}` in {}", ids.join(", ")))
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    Ok(values
        .into_keys()
        .next()
        .filter(|v| *v != "(none)")
        .map(str::to_string))
}

/// `image.<component>.reference` (repo:tag@digest) of every proven cell, one per component.
fn verified_images(
    channel: &str,
    flux: &str,
    cells: &[&CellResult],
) -> Result<Vec<Image>, AttestError> {
    let mut by_component: BTreeMap<String, (Image, Vec<String>)> = BTreeMap::new();
    for c in cells {
        for (key, reference) in &c.properties {
            let Some(component) = key
                .strip_prefix("image.")
                .and_then(|k| k.strip_suffix(".reference"))
            else {
                continue;
            };
            let Some(image) = parse_reference(component, reference) else {
                continue;
            };
            let entry = by_component
                .entry(component.to_string())
                .or_insert_with(|| (image.clone(), Vec::new()));
            entry.1.push(c.id.clone());
            if entry.0 != image {
                return Err(AttestError::ConflictingDigests {
                    channel: channel.into(),
                    flux: flux.into(),
                    component: component.into(),
                    cells: entry.1.join(", "),
                });
            }
        }
    }
    Ok(by_component.into_values().map(|(i, _)| i).collect())
}

/// `ghcr.io/fluxcd/source-controller:v1.9.4@sha256:...` → name, tag and digest.
fn parse_reference(component: &str, reference: &str) -> Option<Image> {
    let (repo_tag, digest) = reference.split_once('@')?;
    let hex = digest.strip_prefix("sha256:")?;
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    // A tag follows the last `:` after the last `/` (a registry port is before it).
    let slash = repo_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match repo_tag[slash..].rfind(':') {
        Some(i) => (&repo_tag[..slash + i], &repo_tag[slash + i + 1..]),
        None => (repo_tag, ""),
    };
    Some(Image {
        component: component.into(),
        name: name.into(),
        tag: tag.into(),
        digest: digest.into(),
    })
}

fn cell(c: &CellResult) -> Cell {
    let mut checks: Vec<Outcome> = c
        .phases
        .iter()
        .filter(|p| p.is_test_case())
        .map(|p| Outcome {
            name: format!("[{}]", p.name),
            outcome: p.status,
            message: p.message.clone(),
        })
        .collect();
    if let Some(status) = c.cell_case() {
        checks.push(Outcome {
            name: CELL_CASE.into(),
            outcome: status,
            message: c.message.clone(),
        });
    }
    Cell {
        id: c.id.clone(),
        kubernetes: Kubernetes {
            minor: c.kubernetes_minor.clone(),
            version: c.kubernetes_version.clone(),
            node_image_digest: c
                .node_image
                .as_deref()
                .and_then(|i| i.split_once('@'))
                .map(|(_, d)| d.to_string()),
            node_image: c.node_image.clone(),
        },
        provider: c.provider.clone(),
        outcome: c.status,
        message: c.message.clone(),
        checks,
        scenarios: c
            .scenarios
            .iter()
            .map(|s| Outcome {
                name: s.name.clone(),
                outcome: s.status,
                message: s.message.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_name_tag_and_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        let i = parse_reference(
            "source-controller",
            &format!("localhost:5000/fluxcd/sc:v1@{d}"),
        )
        .unwrap();
        assert_eq!(
            (i.name.as_str(), i.tag.as_str()),
            ("localhost:5000/fluxcd/sc", "v1")
        );
        let i = parse_reference("x", &format!("localhost:5000/sc@{d}")).unwrap();
        assert_eq!((i.name.as_str(), i.tag.as_str()), ("localhost:5000/sc", ""));
        assert!(parse_reference("x", "ghcr.io/sc:v1@sha256:short").is_none());
        assert!(parse_reference("x", "ghcr.io/sc:v1").is_none());
    }

    #[test]
    fn only_a_complete_clean_run_is_a_pass() {
        let run = |complete, interrupted| RunInfo {
            id: "r".into(),
            started_at: String::new(),
            finished_at: None,
            complete,
            interrupted,
            partitions: vec![],
        };
        let n = |pass, fail, error, skip| CaseCounts {
            pass,
            fail,
            error,
            skip,
        };
        assert_eq!(verdict(&run(true, false), &n(3, 0, 0, 1)), Verdict::Pass);
        assert_eq!(
            verdict(&run(false, false), &n(3, 0, 0, 0)),
            Verdict::Inconclusive
        );
        assert_eq!(
            verdict(&run(true, true), &n(3, 0, 0, 0)),
            Verdict::Inconclusive
        );
        assert_eq!(
            verdict(&run(true, false), &n(0, 0, 0, 4)),
            Verdict::Inconclusive
        );
        assert_eq!(verdict(&run(true, false), &n(3, 1, 0, 0)), Verdict::Fail);
        assert_eq!(verdict(&run(true, false), &n(3, 1, 1, 0)), Verdict::Error);
    }
}
