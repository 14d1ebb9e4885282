//! kind's release notes as a source of node images: each release's body lists the images built
//! for it (``- v1.37.0: `kindest/node:v1.37.0@sha256:<64 hex>` ``); the newest kind release that
//! has a minor gives that minor's image. Also Kubernetes' `stable.txt` marker, which says when
//! upstream has a minor kind does not have yet. Parsing here; fetching in `update::cli`.

use crate::model::KubeMinor;
use std::collections::BTreeMap;

/// One node image a kind release built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeImage {
    pub minor: KubeMinor,
    /// `v1.37.0`
    pub version: String,
    /// `kindest/node:v1.37.0@sha256:...`
    pub reference: String,
    /// The kind release whose notes list it.
    pub built_by_kind: String,
}

/// What the release notes give: the newest kind release and the newest image per minor.
#[derive(Clone, Debug, Default)]
pub struct KindImages {
    pub newest_kind: String,
    pub by_minor: BTreeMap<KubeMinor, NodeImage>,
}

fn semver_of(tag: &str) -> Option<semver::Version> {
    semver::Version::parse(tag.strip_prefix('v')?).ok()
}

/// Parse the GitHub releases JSON of kind (`/repos/kubernetes-sigs/kind/releases`). Drafts,
/// prereleases and pre-release tags are skipped; a node image whose digest is not sha256 is an
/// error naming the release (a half-parsed list would silently drop a minor).
pub fn parse_releases(body: &[u8]) -> Result<KindImages, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let list = value
        .as_array()
        .ok_or("expected a JSON array of releases")?;
    let mut releases: Vec<(semver::Version, String, String)> = Vec::new();
    for r in list {
        let tag = r
            .get("tag_name")
            .and_then(|v| v.as_str())
            .ok_or("a release lacks `tag_name`")?;
        let flag = |k: &str| r.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        let Some(version) = semver_of(tag).filter(|v| v.pre.is_empty()) else {
            continue;
        };
        if flag("draft") || flag("prerelease") {
            continue;
        }
        let body = r.get("body").and_then(|v| v.as_str()).unwrap_or("");
        releases.push((version, tag.to_string(), body.to_string()));
    }
    releases.sort_by(|a, b| b.0.cmp(&a.0));
    let newest_kind = releases
        .first()
        .map(|r| r.1.clone())
        .ok_or("no kind release in the list")?;
    let mut by_minor = BTreeMap::new();
    for (_, tag, body) in &releases {
        for image in images_in(tag, body)? {
            by_minor.entry(image.minor).or_insert(image);
        }
    }
    Ok(KindImages {
        newest_kind,
        by_minor,
    })
}

/// The node images one release's notes list, newest patch first per minor.
fn images_in(tag: &str, body: &str) -> Result<Vec<NodeImage>, String> {
    let re = regex::Regex::new(r"kindest/node:(v(\d+)\.(\d+)\.(\d+))@(\S+?)[`\s]").expect("valid");
    let mut out: Vec<NodeImage> = Vec::new();
    // `\r\n` and a missing final newline both occur in real notes.
    let text = format!("{body}\n");
    for c in re.captures_iter(&text) {
        let digest = &c[5];
        if !crate::config::matrix::is_sha256_digest(digest) {
            return Err(format!(
                "kind {tag} lists node image `kindest/node:{}@{digest}` whose digest is not `sha256:` and 64 hex digits",
                &c[1]
            ));
        }
        let minor = KubeMinor::new(c[2].parse().unwrap_or(0), c[3].parse().unwrap_or(0));
        let patch: u64 = c[4].parse().unwrap_or(0);
        let image = NodeImage {
            minor,
            version: c[1].to_string(),
            reference: format!("kindest/node:{}@{digest}", &c[1]),
            built_by_kind: tag.to_string(),
        };
        match out.iter_mut().find(|o| o.minor == minor) {
            Some(o) if patch_of(&o.version) < patch => *o = image,
            Some(_) => {}
            None => out.push(image),
        }
    }
    Ok(out)
}

fn patch_of(version: &str) -> u64 {
    version
        .rsplit('.')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// The minor of Kubernetes' `stable.txt` (`v1.37.1`).
pub fn parse_stable(body: &[u8]) -> Result<KubeMinor, String> {
    let text = String::from_utf8_lossy(body);
    let line = text.trim();
    let ok = line.starts_with('v') && line.len() < 40 && semver_of(line).is_some();
    ok.then(|| KubeMinor::of_version(line))
        .flatten()
        .ok_or_else(|| {
            format!(
                "not a Kubernetes version marker: `{}`",
                line.chars().take(40).collect::<String>()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5";

    #[test]
    fn newest_release_wins_per_minor_and_prereleases_are_skipped() {
        let body = serde_json::json!([
            {"tag_name": "v0.34.0-alpha.1", "prerelease": true, "body": format!("- v1.38.0: `kindest/node:v1.38.0@{D}`")},
            {"tag_name": "v0.32.0", "body": format!("Images:\r\n- v1.36.1: `kindest/node:v1.36.1@{D}`\r\n- v1.33.12: `kindest/node:v1.33.12@{D}`")},
            {"tag_name": "v0.33.0", "body": format!("- v1.37.0: `kindest/node:v1.37.0@{D}`\n- v1.36.4: `kindest/node:v1.36.4@{D}`")},
        ]);
        let k = parse_releases(body.to_string().as_bytes()).unwrap();
        assert_eq!(k.newest_kind, "v0.33.0");
        let minors: Vec<String> = k.by_minor.keys().map(|m| m.to_string()).collect();
        assert_eq!(minors, ["1.33", "1.36", "1.37"]);
        let m136 = &k.by_minor[&KubeMinor::new(1, 36)];
        assert_eq!(
            (m136.version.as_str(), m136.built_by_kind.as_str()),
            ("v1.36.4", "v0.33.0")
        );
    }

    #[test]
    fn bad_digests_and_garbage_are_errors() {
        let body =
            r#"[{"tag_name": "v0.33.0", "body": "- v1.37.0: `kindest/node:v1.37.0@sha512:abc`"}]"#;
        let e = parse_releases(body.as_bytes()).unwrap_err();
        assert!(
            e.contains("kind v0.33.0") && e.contains("not `sha256:`"),
            "{e}"
        );
        assert!(parse_releases(b"<html>").is_err());
        assert!(parse_releases(b"{}").is_err());
        assert_eq!(parse_stable(b"v1.37.1\n").unwrap(), KubeMinor::new(1, 37));
        assert!(parse_stable(b"<html>").is_err());
    }
}
