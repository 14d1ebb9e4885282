//! `flux-compat matrix update`: computes what `matrix.yaml` should say from its sources (kind's
//! release notes, Kubernetes' version marker, the vendor support data, the distribution) and
//! turns the difference into text edits and a human diff that says why. Pure: the sources are
//! read by `cli`, the result written by `cli` only when everything was read and checked.

pub mod cli;
pub mod copies;
pub mod edit;
pub mod kind;
pub mod support;

use crate::config::yaml::{self, Document};
use crate::model::matrix::{Matrix, PROFILE_LTS, PROFILE_NEWEST};
use crate::model::{FluxVersion, KubeMinor};
use edit::Editor;
use std::collections::{BTreeMap, BTreeSet};

/// How many minors the `newest` profile holds.
pub const NEWEST_COUNT: usize = 6;

/// What the sources said; `None` where a source was not read (offline, or not asked for).
#[derive(Default)]
pub struct Inputs {
    pub kind: Option<kind::KindImages>,
    pub stable: Option<KubeMinor>,
    /// Minors in vendor support on the run date, with the vendors, and that date.
    pub lts: Option<(BTreeMap<KubeMinor, Vec<String>>, String)>,
    /// The newest distribution release and the newest patch of the previous minor.
    pub flux: Option<(FluxVersion, Option<FluxVersion>)>,
    /// Which profiles to recompute.
    pub profiles: Vec<&'static str>,
}

/// The result: the new matrix text, what changed and why, and what was left for want of a source.
pub struct Outcome {
    pub text: String,
    pub changes: Vec<String>,
    pub left: Vec<String>,
}

/// One Kubernetes entry as the matrix should hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    version: String,
    node_image: String,
    built_by_kind: Option<String>,
    profiles: BTreeSet<&'static str>,
}

fn profile_name(p: &str) -> &'static str {
    if p == PROFILE_LTS {
        PROFILE_LTS
    } else {
        PROFILE_NEWEST
    }
}

/// Compute the new matrix text from the current one.
pub fn compute(m: &Matrix, text: &str, inputs: &Inputs) -> Result<Outcome, String> {
    let doc = yaml::parse_single(text).map_err(|_| "the matrix is not valid YAML".to_string())?;
    let mut out = Outcome {
        text: String::new(),
        changes: Vec::new(),
        left: Vec::new(),
    };
    let mut editor = Editor::default();
    kind_version(&doc, m, inputs, &mut editor, &mut out);
    let current = current_entries(m);
    let wanted = wanted_entries(&current, inputs, &mut out);
    describe_kube(&current, &wanted, inputs, &mut out);
    kube_edits(&doc, text, &current, &wanted, &mut editor);
    flux_edits(&doc, m, inputs, &mut editor, &mut out);
    out.text = editor.apply(text);
    Ok(out)
}

fn kind_version(doc: &Document, m: &Matrix, inputs: &Inputs, e: &mut Editor, out: &mut Outcome) {
    let Some(k) = &inputs.kind else { return };
    if k.newest_kind != m.kind_version {
        e.scalar(doc.value_pos("kindVersion"), k.newest_kind.clone());
        out.changes.push(format!(
            "kindVersion {} → {}: the newest kind release",
            m.kind_version, k.newest_kind
        ));
    }
}

fn current_entries(m: &Matrix) -> BTreeMap<KubeMinor, Entry> {
    m.kubernetes
        .iter()
        .map(|k| {
            let profiles = k.profiles.iter().map(|p| profile_name(p)).collect();
            let entry = Entry {
                version: k.version.clone(),
                node_image: k.node_image.clone(),
                built_by_kind: k.built_by_kind.clone(),
                profiles,
            };
            (k.minor, entry)
        })
        .collect()
}

/// The members of each profile: recomputed where asked and possible, else as they are.
fn members(
    current: &BTreeMap<KubeMinor, Entry>,
    inputs: &Inputs,
    profile: &'static str,
    out: &mut Outcome,
) -> BTreeSet<KubeMinor> {
    let kept = || {
        current
            .iter()
            .filter(|(_, e)| e.profiles.contains(profile))
            .map(|(m, _)| *m)
            .collect()
    };
    if !inputs.profiles.contains(&profile) {
        return kept();
    }
    let image_known = |m: &KubeMinor| match &inputs.kind {
        Some(k) => k.by_minor.contains_key(m),
        None => current.contains_key(m),
    };
    match (profile, &inputs.kind, &inputs.lts) {
        (PROFILE_NEWEST, Some(k), _) => k
            .by_minor
            .keys()
            .rev()
            .take(NEWEST_COUNT)
            .copied()
            .collect(),
        (PROFILE_NEWEST, None, _) => {
            out.left.push(
                "Kubernetes minors of profile `newest`: no kind release notes (offline)".into(),
            );
            kept()
        }
        (_, _, Some((lts, date))) => {
            let (with, without): (Vec<KubeMinor>, Vec<KubeMinor>) =
                lts.keys().partition(|m| image_known(m));
            for m in without {
                out.left.push(format!("Kubernetes {m} (vendor support on {date}) not added: no kind node image is known for it"));
            }
            with.into_iter().collect()
        }
        _ => {
            out.left
                .push("Kubernetes minors of profile `lts`: no vendor support data".into());
            kept()
        }
    }
}

fn wanted_entries(
    current: &BTreeMap<KubeMinor, Entry>,
    inputs: &Inputs,
    out: &mut Outcome,
) -> BTreeMap<KubeMinor, Entry> {
    let newest = members(current, inputs, PROFILE_NEWEST, out);
    let lts = members(current, inputs, PROFILE_LTS, out);
    let mut wanted = BTreeMap::new();
    for minor in newest.union(&lts) {
        let mut entry = match inputs.kind.as_ref().and_then(|k| k.by_minor.get(minor)) {
            Some(img) => Entry {
                version: img.version.clone(),
                node_image: img.reference.clone(),
                built_by_kind: Some(img.built_by_kind.clone()),
                profiles: BTreeSet::new(),
            },
            None => match current.get(minor) {
                Some(e) => e.clone(),
                None => continue,
            },
        };
        entry.profiles.clear();
        if newest.contains(minor) {
            entry.profiles.insert(PROFILE_NEWEST);
        }
        if lts.contains(minor) {
            entry.profiles.insert(PROFILE_LTS);
        }
        wanted.insert(*minor, entry);
    }
    wanted
}

/// Profiles in their documented order (`newest`, `lts`).
fn list(p: &BTreeSet<&str>) -> String {
    let names: Vec<&str> = crate::model::matrix::PROFILES
        .into_iter()
        .filter(|n| p.contains(n))
        .collect();
    names.join(", ")
}

fn describe_kube(
    current: &BTreeMap<KubeMinor, Entry>,
    wanted: &BTreeMap<KubeMinor, Entry>,
    inputs: &Inputs,
    out: &mut Outcome,
) {
    let newer: Vec<String> = wanted
        .keys()
        .filter(|m| !current.contains_key(m))
        .map(|m| m.to_string())
        .collect();
    let date = inputs
        .lts
        .as_ref()
        .map(|(_, d)| d.as_str())
        .unwrap_or("the run date");
    for (m, e) in wanted {
        let why = |e: &Entry| {
            let mut r = Vec::new();
            if e.profiles.contains(PROFILE_NEWEST) {
                r.push(format!(
                    "one of the {NEWEST_COUNT} newest minors with a kind node image"
                ));
            }
            if let Some(v) = inputs.lts.as_ref().and_then(|(l, _)| l.get(m)) {
                r.push(format!("supported by {} on {date}", v.join(", ")));
            }
            r.join("; ")
        };
        match current.get(m) {
            None => out.changes.push(format!(
                "Kubernetes {m} added ({}): {} from kind {}: {}",
                list(&e.profiles),
                e.version,
                e.built_by_kind.as_deref().unwrap_or("?"),
                why(e)
            )),
            Some(c) if c.node_image != e.node_image => out.changes.push(format!(
                "Kubernetes {m}: {} → {} (kind {})",
                c.version,
                e.version,
                e.built_by_kind.as_deref().unwrap_or("?")
            )),
            _ => {}
        }
        if let Some(c) = current.get(m).filter(|c| c.profiles != e.profiles) {
            out.changes.push(format!(
                "Kubernetes {m}: profiles [{}] → [{}]",
                list(&c.profiles),
                list(&e.profiles)
            ));
        }
    }
    for (m, c) in current.iter().filter(|(m, _)| !wanted.contains_key(m)) {
        let why = if c.profiles.contains(PROFILE_NEWEST) && !newer.is_empty() {
            format!("{} released", newer.join(", "))
        } else {
            format!("no longer in profile(s) {}", list(&c.profiles))
        };
        out.changes.push(format!("Kubernetes {m} dropped: {why}"));
    }
    if let (Some(stable), Some(k)) = (inputs.stable, &inputs.kind)
        && !k.by_minor.contains_key(&stable)
    {
        out.left.push(format!("Kubernetes {stable} is released upstream (stable.txt) but no kind release has a node image for it yet"));
    }
}

/// The indentation of the sequence dash and of the keys of the first `kubernetes` item.
fn item_indent(doc: &Document, text: &str) -> (String, String) {
    let first = doc.value_pos("kubernetes[0]");
    let line = edit::line_of(text, first.line);
    let dash = line.find('-').unwrap_or(2);
    (
        " ".repeat(dash),
        " ".repeat(first.col.saturating_sub(1).max(dash + 2)),
    )
}

fn entry_lines(minor: KubeMinor, e: &Entry, dash: &str, key: &str) -> Vec<String> {
    let pad = " ".repeat(key.len() - dash.len() - 1);
    let mut lines = vec![
        format!("{dash}-{pad}minor: \"{minor}\""),
        format!("{key}version: {}", e.version),
        format!("{key}nodeImage: {}", e.node_image),
    ];
    if let Some(b) = &e.built_by_kind {
        lines.push(format!("{key}builtByKind: {b}"));
    }
    if e.profiles.len() != 1 || !e.profiles.contains(PROFILE_NEWEST) {
        lines.push(format!("{key}profiles: [{}]", list(&e.profiles)));
    }
    lines
}

fn kube_edits(
    doc: &Document,
    text: &str,
    current: &BTreeMap<KubeMinor, Entry>,
    wanted: &BTreeMap<KubeMinor, Entry>,
    e: &mut Editor,
) {
    let items = doc
        .value
        .get("kubernetes")
        .and_then(|v| v.as_array())
        .map_or(0, |a| a.len());
    let (dash, key) = item_indent(doc, text);
    let mut anchors: Vec<(KubeMinor, usize)> = Vec::new();
    let mut end = doc.value_pos("kubernetes").line;
    for i in 0..items {
        let path = format!("kubernetes[{i}]");
        let Some(minor) = doc
            .value_at(&format!("{path}.minor"))
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<KubeMinor>().ok())
        else {
            continue;
        };
        let (start, last) = (doc.value_pos(&path).line, edit::last_line(doc, &path));
        end = end.max(last);
        match (current.get(&minor), wanted.get(&minor)) {
            (_, None) => e.delete(start, last),
            (Some(c), Some(w)) => {
                anchors.push((minor, start));
                change_entry(doc, &path, c, w, last, &key, e);
            }
            (None, Some(_)) => {}
        }
    }
    for (minor, w) in wanted
        .iter()
        .rev()
        .filter(|(m, _)| !current.contains_key(m))
    {
        let at = anchors
            .iter()
            .find(|(m, _)| m < minor)
            .map_or(end + 1, |(_, line)| *line);
        e.insert(at, entry_lines(*minor, w, &dash, &key));
    }
}

#[allow(clippy::too_many_arguments)]
fn change_entry(
    doc: &Document,
    path: &str,
    c: &Entry,
    w: &Entry,
    last: usize,
    key: &str,
    e: &mut Editor,
) {
    if c.version != w.version {
        e.scalar(doc.value_pos(&format!("{path}.version")), w.version.clone());
    }
    if c.node_image != w.node_image {
        e.scalar(
            doc.value_pos(&format!("{path}.nodeImage")),
            w.node_image.clone(),
        );
    }
    let built = format!("{path}.builtByKind");
    match (&w.built_by_kind, doc.spans.contains_key(&built)) {
        (Some(b), true) if c.built_by_kind.as_ref() != Some(b) => {
            e.scalar(doc.value_pos(&built), b.clone())
        }
        (Some(b), false) => e.insert(last + 1, vec![format!("{key}builtByKind: {b}")]),
        _ => {}
    }
    if c.profiles != w.profiles {
        let p = format!("{path}.profiles");
        if doc.spans.contains_key(&p) {
            e.delete(doc.pos(&p).line, edit::last_line(doc, &p));
        }
        let default = w.profiles.len() == 1 && w.profiles.contains(PROFILE_NEWEST);
        if !default || doc.spans.contains_key(&p) {
            e.insert(
                last + 1,
                vec![format!("{key}profiles: [{}]", list(&w.profiles))],
            );
        }
    }
}

fn flux_edits(doc: &Document, m: &Matrix, inputs: &Inputs, e: &mut Editor, out: &mut Outcome) {
    let Some((newest, previous)) = &inputs.flux else {
        out.left.push("Flux versions and the committed images files: no distribution source (offline without `--distribution DIR`)".into());
        return;
    };
    let Some(first) = m.flux.first() else { return };
    if first.version != *newest {
        e.scalar(doc.value_pos("flux[0].version"), newest.to_string());
        out.changes.push(format!(
            "Flux {} → {newest}: the newest distribution release",
            first.version
        ));
    }
    if first.previous != *previous {
        match (previous, doc.spans.contains_key("flux[0].previous")) {
            (Some(p), true) => e.scalar(doc.value_pos("flux[0].previous"), p.to_string()),
            (Some(p), false) => {
                let at = doc.pos("flux[0].version");
                e.insert(at.line + 1, vec![format!("{}previous: {p}", " ".repeat(at.col - 1))]);
            }
            (None, _) => out.left.push("the previous Flux minor: the distribution has no release of it; `previous` left as it was".into()),
        }
        if let Some(p) = previous {
            let was = first
                .previous
                .as_ref()
                .map_or("none".to_string(), |v| v.to_string());
            out.changes.push(format!(
                "Flux previous {was} → {p}: the newest patch of {}",
                p.minor_line()
            ));
        }
    }
}
