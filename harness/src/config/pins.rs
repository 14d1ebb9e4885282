//! Where channel pins come from when a channel does not write them itself: a distribution
//! source laid out like the distribution repository (`images/<flux-version>/<variant>.yaml`).
//! This module owns the source interface and its local-directory implementation (a checkout,
//! or the committed copies under `fixtures/distribution/`); the GitHub source lives in
//! `crate::distribution` and implements the same trait. Reading only; nothing here writes.

use super::diag::Diagnostics;
use super::images_file;
use super::yaml::{Document, Pos};
use crate::model::matrix::{Channel, ChannelRelease, FluxEntry};
use crate::model::{Component, FluxVersion};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One images file as read from a source.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// Where it came from, as reports name it (a path as given, or a URL).
    pub origin: String,
    pub text: String,
    /// sha256 (hex) of the bytes read.
    pub sha256: String,
}

/// A distribution source: the releases it has, their variants, and each images file.
/// Errors are messages that read after "failed to" and name the source.
pub trait PinSource: std::fmt::Debug + Send + Sync {
    /// For messages: `distribution checkout `DIR`` or the repository URL.
    fn describe(&self) -> String;
    /// Every release (`images/v*`) the source has, oldest first.
    fn releases(&self) -> Result<Vec<FluxVersion>, String>;
    /// The variants (`images/<version>/<variant>.yaml`) of one release, sorted.
    fn variants(&self, version: &FluxVersion) -> Result<Vec<String>, String>;
    /// The images file of one release and variant; `Ok(None)` when the source does not have it.
    fn fetch(&self, version: &FluxVersion, variant: &str) -> Result<Option<Fetched>, String>;
    /// The commit the source is at, when it knows (a git checkout, a GitHub ref resolved).
    fn commit(&self) -> Option<String> {
        None
    }
}

/// Largest images file read: they are a few hundred bytes; more is not an images file.
pub const MAX_IMAGES_FILE_BYTES: u64 = 1 << 20;

/// A directory laid out like the distribution repository: `<root>/images/<version>/<variant>.yaml`.
#[derive(Clone, Debug)]
pub struct DirSource {
    /// The directory as given (kept relative so reports and copies name it portably).
    pub root: PathBuf,
}

impl DirSource {
    /// Open a directory; it must hold `images/`.
    pub fn open(root: &Path) -> Result<Self, String> {
        let images = root.join("images");
        if !images.is_dir() {
            return Err(format!(
                "read distribution `{}`: it has no `images/` directory (expected a checkout of the distribution repository, `images/<flux-version>/<variant>.yaml`)",
                root.display()
            ));
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    fn images(&self) -> PathBuf {
        self.root.join("images")
    }

    /// `images/<version>/<variant>.yaml` under the root.
    pub fn file(&self, version: &FluxVersion, variant: &str) -> PathBuf {
        self.images()
            .join(version.to_string())
            .join(format!("{variant}.yaml"))
    }
}

/// Names of the entries of `dir` that satisfy `keep`, sorted.
fn entries(
    dir: &Path,
    keep: impl Fn(&std::fs::DirEntry) -> Option<String>,
) -> Result<Vec<String>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| format!("list `{}`: {e}", dir.display()))?;
    let mut out: Vec<String> = read
        .filter_map(Result::ok)
        .filter_map(|e| keep(&e))
        .collect();
    out.sort();
    Ok(out)
}

impl PinSource for DirSource {
    fn describe(&self) -> String {
        format!("distribution directory `{}`", self.root.display())
    }

    fn releases(&self) -> Result<Vec<FluxVersion>, String> {
        let names = entries(&self.images(), |e| {
            e.path()
                .is_dir()
                .then(|| e.file_name().to_string_lossy().into_owned())
        })?;
        let mut out: Vec<FluxVersion> = names
            .iter()
            .filter(|n| n.starts_with('v'))
            .filter_map(|n| n.parse().ok())
            .collect();
        out.sort();
        Ok(out)
    }

    fn variants(&self, version: &FluxVersion) -> Result<Vec<String>, String> {
        let dir = self.images().join(version.to_string());
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        entries(&dir, |e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".yaml")?;
            e.path().is_file().then(|| stem.to_string())
        })
    }

    fn fetch(&self, version: &FluxVersion, variant: &str) -> Result<Option<Fetched>, String> {
        if !is_variant_name(variant) {
            return Ok(None);
        }
        let path = self.file(version, variant);
        if !path.exists() {
            return Ok(None);
        }
        let text = super::source::read_text(&path, MAX_IMAGES_FILE_BYTES)
            .map_err(|e| format!("read `{}`: {e}", path.display()))?;
        Ok(Some(Fetched {
            origin: path.display().to_string(),
            sha256: sha256_hex(text.as_bytes()),
            text,
        }))
    }

    fn commit(&self) -> Option<String> {
        // A checkout says which commit it is at; committed copies inside this repository do not
        // (their provenance file does).
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["rev-parse", "--show-toplevel", "HEAD"])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        let mut lines = text.lines();
        let top = std::fs::canonicalize(lines.next()?).ok()?;
        let head = lines.next()?.to_string();
        (out.status.success() && std::fs::canonicalize(&self.root).ok()? == top).then_some(head)
    }
}

/// A variant name is a file name stem: lower-case letters, digits and `-` (never a path).
pub fn is_variant_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

/// What the matrix needs from a source, and where to point problems.
pub struct Needs<'a> {
    pub file: &'a Path,
    pub doc: &'a Document,
    pub flux: &'a [FluxEntry],
    pub components: &'a [Component],
}

impl Needs<'_> {
    /// Every Flux version a cell installs (the versions and their previous minors), each with
    /// the position of the first place the matrix names it.
    fn versions(&self) -> Vec<(FluxVersion, Pos)> {
        let mut out: Vec<(FluxVersion, Pos)> = Vec::new();
        let list = self.doc.value.get("flux").and_then(|v| v.as_array());
        for (i, raw) in list.into_iter().flatten().enumerate() {
            for key in ["version", "previous"] {
                let parsed = raw
                    .get(key)
                    .and_then(|v| v.as_str())
                    .and_then(|s| s.parse().ok());
                if let Some(v) = parsed.filter(|v| self.known(v))
                    && !out.iter().any(|(o, _)| *o == v)
                {
                    out.push((v, self.doc.value_pos(&format!("flux[{i}].{key}"))));
                }
            }
        }
        out
    }

    fn known(&self, v: &FluxVersion) -> bool {
        self.flux
            .iter()
            .any(|f| f.version == *v || f.previous.as_ref() == Some(v))
    }

    /// Where channel `i` names its variant (`variant`, or the older `operatorVariant`).
    fn variant_pos(&self, i: usize) -> Pos {
        let new = format!("channels[{i}].variant");
        if self.doc.spans.contains_key(&new) {
            self.doc.value_pos(&new)
        } else {
            self.doc
                .value_pos(&format!("channels[{i}].operatorVariant"))
        }
    }
}

/// Give every channel the pins of each needed Flux version it does not write itself, from the
/// images file of its variant in `source`. A release or variant the source lacks is a problem
/// at the place the matrix names it; the images file's own problems point into that file.
pub fn fill(
    needs: &Needs,
    source: &dyn PinSource,
    channels: &mut [Channel],
    sha256: &mut BTreeMap<PathBuf, String>,
    d: &mut Diagnostics,
) {
    let versions = needs.versions();
    let mut missing_release = Vec::new();
    for (i, channel) in channels.iter_mut().enumerate() {
        for (version, at) in &versions {
            if channel.releases.contains_key(version) || missing_release.contains(version) {
                continue;
            }
            match source.fetch(version, &channel.operator_variant) {
                Ok(Some(fetched)) => {
                    let release = from_fetched(needs, i, channel, version, &fetched, d);
                    sha256.insert(PathBuf::from(&fetched.origin), fetched.sha256);
                    channel.releases.insert(version.clone(), release);
                }
                Ok(None) => {
                    let lacks = absent(source, version, &channel.operator_variant);
                    if lacks.whole_release {
                        missing_release.push(version.clone());
                        d.push(needs.file, *at, lacks.message);
                    } else {
                        d.push(needs.file, needs.variant_pos(i), lacks.message);
                    }
                }
                Err(e) => d.push(needs.file, needs.variant_pos(i), format!("failed to {e}")),
            }
        }
    }
}

/// Pins from one fetched images file, checked against the installed components.
fn from_fetched(
    needs: &Needs,
    i: usize,
    channel: &Channel,
    version: &FluxVersion,
    fetched: &Fetched,
    d: &mut Diagnostics,
) -> ChannelRelease {
    let images =
        images_file::parse(Path::new(&fetched.origin), &fetched.text, d).unwrap_or_default();
    let missing: Vec<&str> = needs
        .components
        .iter()
        .filter(|c| !images.contains_key(c))
        .map(|c| c.name())
        .collect();
    if !missing.is_empty() {
        d.push(
            needs.file,
            needs.variant_pos(i),
            format!(
                "channel `{}` at Flux {version}: `{}` pins no image for installed components: {}",
                channel.name,
                fetched.origin,
                missing.join(", ")
            ),
        );
    }
    ChannelRelease {
        images_file: Some(PathBuf::from(&fetched.origin)),
        images,
    }
}

struct Absent {
    whole_release: bool,
    message: String,
}

/// Why the source has no images file for `version` × `variant`, listing what it has.
fn absent(source: &dyn PinSource, version: &FluxVersion, variant: &str) -> Absent {
    let releases = source.releases().unwrap_or_default();
    if !releases.contains(version) {
        let newest: Vec<String> = releases
            .iter()
            .rev()
            .take(5)
            .map(|v| format!("`{v}`"))
            .collect();
        return Absent {
            whole_release: true,
            message: format!(
                "Flux `{version}` is not a release of the {}; newest releases: {}",
                source.describe(),
                if newest.is_empty() {
                    "none".into()
                } else {
                    newest.join(", ")
                }
            ),
        };
    }
    let known: Vec<String> = source
        .variants(version)
        .unwrap_or_default()
        .iter()
        .map(|v| format!("`{v}`"))
        .collect();
    Absent {
        whole_release: false,
        message: format!(
            "unknown variant `{variant}`: the {} has no `images/{version}/{variant}.yaml`; variants of {version}: {}",
            source.describe(),
            known.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_releases_and_variants_of_a_checkout() {
        let dir = tempfile::tempdir().unwrap();
        for (v, f) in [
            ("v2.9.4", "upstream-alpine"),
            ("v2.10.0", "upstream-alpine"),
            ("v2.9.4", "enterprise-alpine"),
        ] {
            let d = dir.path().join("images").join(v);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("{f}.yaml")), "images: []\n").unwrap();
        }
        std::fs::write(dir.path().join("images/VERSION"), "v2.10.0\n").unwrap();
        let s = DirSource::open(dir.path()).unwrap();
        let r: Vec<String> = s
            .releases()
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(r, ["v2.9.4", "v2.10.0"]);
        let v: FluxVersion = "v2.9.4".parse().unwrap();
        assert_eq!(
            s.variants(&v).unwrap(),
            ["enterprise-alpine", "upstream-alpine"]
        );
        let f = s.fetch(&v, "upstream-alpine").unwrap().unwrap();
        assert_eq!(f.sha256, sha256_hex(b"images: []\n"));
        assert!(s.fetch(&v, "enterprise-distroless").unwrap().is_none());
        assert!(s.fetch(&v, "../../etc/passwd").unwrap().is_none());
        assert!(DirSource::open(&dir.path().join("images")).is_err());
    }
}
