//! The plan: cells (Kubernetes minor × channel × Flux version × provider) with the scenarios each
//! runs or skips (with the reason). Pure and deterministic, so shards agree on it.

pub mod partition;

pub use partition::{Partition, PartitionError};

use crate::model::matrix::{Matrix, ProviderKind};
use crate::model::scenario::{CellTraits, Scenario};
use crate::model::{FluxVersion, KubeMinor};
use serde::Serialize;

/// One planned cell.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlannedCell {
    pub id: String,
    pub kubernetes: KubeMinor,
    /// Exact node image version for kind cells (`v1.37.0`); empty for existing clusters.
    pub kubernetes_version: String,
    pub node_image: Option<String>,
    pub channel: String,
    pub fips: bool,
    pub flux: FluxVersion,
    pub provider: String,
    /// Why the whole cell does not run, if it does not.
    pub skip: Option<String>,
    pub scenarios: Vec<PlannedScenario>,
}

/// One scenario in one cell.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlannedScenario {
    pub name: String,
    pub tags: Vec<String>,
    pub skip: Option<String>,
}

impl PlannedCell {
    pub fn runnable_scenarios(&self) -> impl Iterator<Item = &PlannedScenario> {
        self.scenarios.iter().filter(|s| s.skip.is_none())
    }
}

/// The whole plan.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub cells: Vec<PlannedCell>,
    /// The partition applied, if any.
    pub partition: Option<String>,
    /// Cells before partitioning.
    pub total_cells: usize,
}

/// Filters from the command line. Empty lists match everything.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Cell ids or globs (`1.3*-fips-*`).
    pub cells: Vec<String>,
    pub kubernetes: Vec<KubeMinor>,
    pub channels: Vec<String>,
    pub flux: Vec<FluxVersion>,
    pub providers: Vec<String>,
    /// Scenario names; when set (or `tags` is), they replace the matrix's default selection.
    pub scenarios: Vec<String>,
    pub tags: Vec<String>,
    pub exclude_tags: Vec<String>,
}

/// A filter that names something the matrix does not have.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("unknown {what} `{value}`; known {what}s: {known}")]
    Unknown {
        what: &'static str,
        value: String,
        known: String,
    },
}

fn known<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| format!("`{}`", i.to_string()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Filter {
    /// Check every named thing exists, listing the known values when one does not.
    pub fn validate(&self, m: &Matrix, scenarios: &[Scenario]) -> Result<(), FilterError> {
        for c in &self.channels {
            if m.channel(c).is_none() {
                return Err(FilterError::Unknown {
                    what: "channel",
                    value: c.clone(),
                    known: known(m.channels.iter().map(|c| &c.name)),
                });
            }
        }
        for k in &self.kubernetes {
            let in_matrix = m.kube(*k).is_some()
                || m.providers.iter().any(|p| matches!(&p.kind, ProviderKind::Existing { kubernetes, .. } if kubernetes == k));
            if !in_matrix {
                return Err(FilterError::Unknown {
                    what: "Kubernetes minor",
                    value: k.to_string(),
                    known: known(m.kubernetes.iter().map(|k| k.minor)),
                });
            }
        }
        for f in &self.flux {
            if !m.flux.iter().any(|e| &e.version == f) {
                return Err(FilterError::Unknown {
                    what: "Flux version",
                    value: f.to_string(),
                    known: known(m.flux.iter().map(|f| &f.version)),
                });
            }
        }
        for p in &self.providers {
            if !m.providers.iter().any(|x| &x.name == p) {
                return Err(FilterError::Unknown {
                    what: "provider",
                    value: p.clone(),
                    known: known(m.providers.iter().map(|p| &p.name)),
                });
            }
        }
        for s in &self.scenarios {
            if !scenarios.iter().any(|x| &x.name == s) {
                return Err(FilterError::Unknown {
                    what: "scenario",
                    value: s.clone(),
                    known: known(scenarios.iter().map(|s| &s.name)),
                });
            }
        }
        // A misspelt tag would silently select nothing (or exclude nothing): name it instead.
        let tags: std::collections::BTreeSet<&String> =
            scenarios.iter().flat_map(|s| &s.tags).collect();
        for t in self.tags.iter().chain(&self.exclude_tags) {
            if !tags.contains(t) {
                return Err(FilterError::Unknown {
                    what: "tag",
                    value: t.clone(),
                    known: known(&tags),
                });
            }
        }
        Ok(())
    }
}

/// Shell-style match supporting `*` (any run) and `?` (one character), without backtracking
/// into earlier stars: at most (pattern + 1) × (text + 1) steps, whatever the pattern.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    glob_steps(pattern, text).0
}

/// [`glob_match`] and the number of steps it took (the bound is tested, not timed).
pub fn glob_steps(pattern: &str, text: &str) -> (bool, usize) {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut steps) = (0, 0, 0);
    // The last star seen and the text position it currently swallows up to: a mismatch only
    // ever retries from there, so earlier stars are never revisited.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        steps += 1;
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((s, mark)) => {
                    star = Some((s, mark + 1));
                    pi = s + 1;
                    ti = mark + 1;
                }
                None => return (false, steps),
            },
        }
    }
    while p.get(pi) == Some(&'*') {
        pi += 1;
        steps += 1;
    }
    (pi == p.len(), steps)
}

/// The id of a cell: `<minor>-<channel>-<flux>-<provider>`, e.g. `1.37-fips-v2.9.4-kind`.
pub fn cell_id(minor: KubeMinor, channel: &str, flux: &FluxVersion, provider: &str) -> String {
    format!("{minor}-{channel}-{flux}-{provider}")
}

/// Expand the matrix into cells, apply filters, then the partition.
pub fn build(
    m: &Matrix,
    scenarios: &[Scenario],
    filter: &Filter,
    partition: Option<Partition>,
) -> Plan {
    let explicit_selection = !filter.scenarios.is_empty() || !filter.tags.is_empty();
    let selected: Vec<&Scenario> = scenarios
        .iter()
        .filter(|s| {
            let base = if explicit_selection {
                filter.scenarios.contains(&s.name) || filter.tags.iter().any(|t| s.tags.contains(t))
            } else {
                m.selection.selects(&s.name, &s.tags)
            };
            base && !filter.exclude_tags.iter().any(|t| s.tags.contains(t))
        })
        .collect();

    let mut cells = Vec::new();
    for provider in &m.providers {
        let chosen = if filter.providers.is_empty() {
            provider.enabled
        } else {
            filter.providers.contains(&provider.name)
        };
        if !chosen {
            continue;
        }
        let kubes: Vec<(KubeMinor, String, Option<String>)> = match &provider.kind {
            ProviderKind::Kind => m
                .kubernetes
                .iter()
                .map(|k| (k.minor, k.version.clone(), Some(k.node_image.clone())))
                .collect(),
            ProviderKind::Existing { kubernetes, .. } => vec![(*kubernetes, String::new(), None)],
        };
        for (minor, version, node_image) in &kubes {
            if !filter.kubernetes.is_empty() && !filter.kubernetes.contains(minor) {
                continue;
            }
            for channel in &m.channels {
                if !filter.channels.is_empty() && !filter.channels.contains(&channel.name) {
                    continue;
                }
                for flux in &m.flux {
                    if !filter.flux.is_empty() && !filter.flux.contains(&flux.version) {
                        continue;
                    }
                    let id = cell_id(*minor, &channel.name, &flux.version, &provider.name);
                    if !filter.cells.is_empty() && !filter.cells.iter().any(|g| glob_match(g, &id))
                    {
                        continue;
                    }
                    let cell_skip = (!channel.releases.contains_key(&flux.version)).then(|| {
                        format!(
                            "channel `{}` pins no images for Flux {}",
                            channel.name, flux.version
                        )
                    });
                    let traits = CellTraits {
                        flux: &flux.version,
                        kubernetes: *minor,
                        channel: &channel.name,
                        channel_fips: channel.fips,
                        components: &m.components,
                    };
                    let planned = selected
                        .iter()
                        .map(|s| PlannedScenario {
                            name: s.name.clone(),
                            tags: s.tags.clone(),
                            skip: cell_skip
                                .as_ref()
                                .map(|r| format!("cell skipped: {r}"))
                                .or_else(|| s.applicability.skip_reason(&traits))
                                .or_else(|| {
                                    let mut gaps = s.unrunnable_installs(flux, channel);
                                    (!gaps.is_empty()).then(|| gaps.swap_remove(0).reason)
                                }),
                        })
                        .collect();
                    cells.push(PlannedCell {
                        id,
                        kubernetes: *minor,
                        kubernetes_version: version.clone(),
                        node_image: node_image.clone(),
                        channel: channel.name.clone(),
                        fips: channel.fips,
                        flux: flux.version.clone(),
                        provider: provider.name.clone(),
                        skip: cell_skip,
                        scenarios: planned,
                    });
                }
            }
        }
    }
    let total_cells = cells.len();
    let cells = match &partition {
        None => cells,
        Some(p) => cells
            .into_iter()
            .enumerate()
            .filter(|(i, c)| p.contains(*i, &c.id))
            .map(|(_, c)| c)
            .collect(),
    };
    Plan {
        cells,
        partition: partition.map(|p| p.to_string()),
        total_cells,
    }
}

/// Why a cell of a channel that pulls with a token is skipped in a token-less plan.
pub const NO_REGISTRY_TOKEN: &str = "no registry token";

impl Plan {
    /// Skip every cell whose channel pulls with a registry token (it names a `pullSecret`), with
    /// the reason [`NO_REGISTRY_TOKEN`]: a run without the token says what it left out instead
    /// of failing on it (or leaving it out silently).
    pub fn without_registry_token(&mut self, m: &Matrix) {
        let needs_token = |c: &PlannedCell| {
            m.channel(&c.channel)
                .is_some_and(|ch| ch.pull_secret.is_some())
        };
        for cell in self.cells.iter_mut().filter(|c| c.skip.is_none()) {
            if !needs_token(cell) {
                continue;
            }
            cell.skip = Some(NO_REGISTRY_TOKEN.to_string());
            for s in cell.scenarios.iter_mut().filter(|s| s.skip.is_none()) {
                s.skip = Some(format!("cell skipped: {NO_REGISTRY_TOKEN}"));
            }
        }
    }

    /// Scenario runs and skipped pairs across the plan.
    pub fn scenario_counts(&self) -> (usize, usize) {
        let run = self
            .cells
            .iter()
            .map(|c| c.runnable_scenarios().count())
            .sum();
        let skipped = self.cells.iter().map(|c| c.scenarios.len()).sum::<usize>() - run;
        (run, skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("1.3*-fips-*", "1.37-fips-v2.9.4-kind"));
        assert!(!glob_match("1.3*-fips-*", "1.37-mainline-v2.9.4-kind"));
        assert!(glob_match("1.3?-*", "1.32-x"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("*", "") && glob_match("a*b*c", "aXbYc") && !glob_match("a*b", "ab c"));
        assert!(glob_match("*-v2.9.4-*", "1.37-fips-v2.9.4-kind"));
    }

    // Issue 16 item 7: a pattern of many stars used to take exponential time (> 20 s); the step
    // count is bounded by the product of the lengths.
    #[test]
    fn glob_is_polynomial_on_pathological_patterns() {
        let text = "1.37-mainline-v2.9.4-kind-and-a-longer-tail-".repeat(3);
        for pattern in [
            "**************a".to_string(),
            "*a".repeat(20) + "b",
            "?*".repeat(30) + "z",
        ] {
            let (m, steps) = glob_steps(&pattern, &text);
            assert!(!m);
            let bound = (pattern.len() + 1) * (text.len() + 1);
            assert!(steps <= bound, "{pattern}: {steps} steps > {bound}");
        }
    }
}
