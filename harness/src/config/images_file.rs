//! Distribution images files: the kustomize `images:` list (`name`, `newTag`, `digest`) that the
//! enterprise distribution publishes per release. The pre-release gate points a channel at one.

use super::diag::{Diagnostics, deserialize};
use super::matrix::is_sha256_digest;
use super::yaml;
use crate::model::Component;
use crate::model::matrix::ImagePin;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawImagesFile {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    images: Vec<RawImage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawImage {
    name: String,
    #[serde(default)]
    new_name: Option<String>,
    new_tag: String,
    digest: String,
}

/// Load an images file into per-component pins. Problems are reported against the images file.
pub fn load(file: &Path, d: &mut Diagnostics) -> Option<BTreeMap<Component, ImagePin>> {
    read(file, d).map(|(pins, _)| pins)
}

/// [`load`], also returning the sha256 (hex) of the bytes read, so results can name the exact
/// file the pins came from.
pub fn read(file: &Path, d: &mut Diagnostics) -> Option<(BTreeMap<Component, ImagePin>, String)> {
    let text = super::read(file, d)?;
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
    parse(file, &text, d).map(|pins| (pins, digest))
}

/// Parse images-file text.
pub fn parse(
    file: &Path,
    text: &str,
    d: &mut Diagnostics,
) -> Option<BTreeMap<Component, ImagePin>> {
    let doc = match yaml::parse_single(text) {
        Ok(doc) => doc,
        Err(p) => {
            d.yaml(file, p);
            return None;
        }
    };
    let raw: RawImagesFile = deserialize(&doc, &doc.value, "", file, d)?;
    if let Some(kind) = &raw.kind
        && kind != "Kustomization"
        && kind != "Component"
    {
        d.push(file, doc.value_pos("kind"), format!("unexpected kind `{kind}` in an images file; expected `Kustomization` or `Component`"));
    }
    let _ = raw.api_version;
    if raw.images.is_empty() {
        d.push(file, doc.pos("images"), "the images list is empty");
    }
    let mut out = BTreeMap::new();
    for (i, img) in raw.images.iter().enumerate() {
        let p = format!("images[{i}]");
        let repo = img.new_name.as_deref().unwrap_or(&img.name);
        let last = repo.rsplit('/').next().unwrap_or(repo);
        // Every problem of an entry is reported, so the digest is checked before the name.
        if !is_sha256_digest(&img.digest) {
            d.push(
                file,
                doc.value_pos(&format!("{p}.digest")),
                format!(
                    "digest `{}` must be `sha256:` followed by 64 lower-case hex digits",
                    img.digest
                ),
            );
        }
        let comp = match last.parse::<Component>() {
            Ok(c) => c,
            Err(e) => {
                d.push(file, doc.value_pos(&format!("{p}.name")), e.to_string());
                continue;
            }
        };
        let pin = ImagePin {
            repository: repo.to_string(),
            tag: img.new_tag.clone(),
            digest: img.digest.clone(),
        };
        if out.insert(comp, pin).is_some() {
            d.push(
                file,
                doc.value_pos(&format!("{p}.name")),
                format!("duplicate image for component `{comp}`"),
            );
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "images:\n- name: ghcr.io/x/distroless-fips/source-controller\n  newTag: v1.9.4\n  digest: sha256:7802668f9555f16a40d89220f00047a1c354c13fc31f0a0c28bd7979ae76c307\n";

    #[test]
    fn parses_kustomize_images() {
        let mut d = Diagnostics::default();
        let pins = parse(Path::new("i.yaml"), GOOD, &mut d).unwrap();
        assert!(d.is_empty());
        let pin = &pins[&Component::SourceController];
        assert_eq!(
            pin.repository,
            "ghcr.io/x/distroless-fips/source-controller"
        );
        assert!(pin.reference().ends_with(
            ":v1.9.4@sha256:7802668f9555f16a40d89220f00047a1c354c13fc31f0a0c28bd7979ae76c307"
        ));
    }

    #[test]
    fn unknown_components_and_bad_digests_are_reported() {
        let text = "images:\n- name: r/sauce-controller\n  newTag: v1\n  digest: sha256:abc\n";
        let mut d = Diagnostics::default();
        parse(Path::new("i.yaml"), text, &mut d);
        let all: Vec<String> = d.into_sorted().iter().map(|x| x.to_string()).collect();
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(
            all[0].contains("i.yaml:2:9: unknown component `sauce-controller`"),
            "{}",
            all[0]
        );
        assert!(
            all[1].contains("i.yaml:4:11: digest `sha256:abc`"),
            "{}",
            all[1]
        );
    }
}
