//! The distribution repository on GitHub as a pin source: releases and variants listed through
//! the contents API, images files read from raw.githubusercontent.com once per run and kept in
//! the cache with their ETag (a conditional request on the next run; a 304 reuses the copy).
//! Both hosts can be pointed elsewhere (`FLUX_COMPAT_GITHUB_API`, `FLUX_COMPAT_GITHUB_RAW`) for
//! a mirror, or a loopback server in tests.

use super::http::{Http, HttpError};
use crate::config::pins::{Fetched, PinSource, is_variant_name, sha256_hex};
use crate::model::FluxVersion;
use crate::runner::secret::Secret;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

pub const DEFAULT_API: &str = "https://api.github.com";
pub const DEFAULT_RAW: &str = "https://raw.githubusercontent.com";

/// `owner/repo` at a ref.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repo {
    pub owner: String,
    pub name: String,
    pub reference: String,
}

impl Repo {
    /// `https://github.com/OWNER/REPO[.git][/tree/REF]`; the ref defaults to `main`.
    pub fn parse(url: &str) -> Option<Repo> {
        let rest = url
            .strip_prefix("https://github.com/")
            .or_else(|| url.strip_prefix("http://github.com/"))?;
        let mut parts = rest.trim_end_matches('/').splitn(4, '/');
        let owner = parts.next().filter(|s| !s.is_empty())?;
        let name = parts.next().filter(|s| !s.is_empty())?;
        let reference = match (parts.next(), parts.next()) {
            (None, _) => "main",
            (Some("tree"), Some(r)) if !r.is_empty() => r,
            _ => return None,
        };
        let ok = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        let name = name.trim_end_matches(".git");
        (ok(owner) && ok(name) && ok(reference.replace('/', "").as_str())).then(|| Repo {
            owner: owner.into(),
            name: name.into(),
            reference: reference.into(),
        })
    }
}

/// Where the API and raw files are served.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub api: String,
    pub raw: String,
}

impl Endpoints {
    /// GitHub, unless the environment points elsewhere.
    pub fn from_env() -> Self {
        let get = |var: &str, default: &str| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
                .trim_end_matches('/')
                .to_string()
        };
        Self {
            api: get("FLUX_COMPAT_GITHUB_API", DEFAULT_API),
            raw: get("FLUX_COMPAT_GITHUB_RAW", DEFAULT_RAW),
        }
    }
}

/// The repository as a source; everything read is remembered for the rest of the run.
#[derive(Debug)]
pub struct GitHubSource {
    pub repo: Repo,
    endpoints: Endpoints,
    http: Http,
    token: Option<Secret>,
    cache: Option<PathBuf>,
    listings: Mutex<BTreeMap<String, Vec<(String, String)>>>,
    files: Mutex<BTreeMap<String, Option<Fetched>>>,
}

impl GitHubSource {
    pub fn new(
        repo: Repo,
        endpoints: Endpoints,
        http: Http,
        token: Option<Secret>,
        cache: Option<PathBuf>,
    ) -> Self {
        Self {
            repo,
            endpoints,
            http,
            token,
            cache,
            listings: Mutex::default(),
            files: Mutex::default(),
        }
    }

    fn url(&self) -> String {
        format!("https://github.com/{}/{}", self.repo.owner, self.repo.name)
    }

    fn api_get(&self, path: &str, accept: &str) -> Result<Vec<u8>, HttpError> {
        let url = format!(
            "{}/repos/{}/{}/{path}",
            self.endpoints.api, self.repo.owner, self.repo.name
        );
        let headers = [("accept", accept.to_string())];
        self.http
            .get(&url, &headers, self.token.as_ref())
            .map(|r| r.body)
    }

    /// `(name, type)` of each entry of a directory, from the contents API.
    fn list(&self, dir: &str) -> Result<Vec<(String, String)>, String> {
        if let Some(hit) = self.listings.lock().expect("not poisoned").get(dir) {
            return Ok(hit.clone());
        }
        let path = format!("contents/{dir}?ref={}", self.repo.reference);
        let body = match self.api_get(&path, "application/vnd.github+json") {
            Err(HttpError::Status { status: 404, .. }) => return Ok(Vec::new()),
            other => other.map_err(|e| format!("list `{dir}` of {}: {e}", self.describe()))?,
        };
        let entries = parse_listing(&body).map_err(|e| {
            format!(
                "list `{dir}` of {}: not a GitHub contents listing ({e})",
                self.describe()
            )
        })?;
        self.listings
            .lock()
            .expect("not poisoned")
            .insert(dir.to_string(), entries.clone());
        Ok(entries)
    }

    fn cached(&self, rel: &str) -> Option<(PathBuf, PathBuf)> {
        let dir = self
            .cache
            .as_ref()?
            .join(&self.repo.owner)
            .join(&self.repo.name)
            .join(&self.repo.reference);
        Some((dir.join(rel), dir.join(format!("{rel}.etag"))))
    }

    fn download(&self, rel: &str) -> Result<Option<Fetched>, String> {
        let r = &self.repo;
        let url = format!(
            "{}/{}/{}/{}/{rel}",
            self.endpoints.raw, r.owner, r.name, r.reference
        );
        let cache = self.cached(rel);
        let prior = cache.as_ref().and_then(|(body, etag)| {
            Some((
                std::fs::read_to_string(body).ok()?,
                std::fs::read_to_string(etag).ok()?,
            ))
        });
        let headers: Vec<(&str, String)> = prior
            .iter()
            .map(|(_, etag)| ("if-none-match", etag.trim().to_string()))
            .collect();
        let resp = match self.http.get(&url, &headers, None) {
            Err(HttpError::Status { status: 404, .. }) => return Ok(None),
            other => {
                other.map_err(|e| format!("read an images file from {}: {e}", self.describe()))?
            }
        };
        let text = match (resp.status, prior) {
            (304, Some((text, _))) => text,
            _ => crate::config::source::decode(resp.body)
                .map_err(|e| format!("read `{url}`: {e}"))?,
        };
        if let (Some((body, etag_file)), Some(etag)) = (&cache, &resp.etag) {
            // A cache that cannot be written only costs a download next time.
            let _ = body.parent().map(std::fs::create_dir_all);
            let _ = std::fs::write(body, &text).and_then(|_| std::fs::write(etag_file, etag));
        }
        Ok(Some(Fetched {
            origin: url,
            sha256: sha256_hex(text.as_bytes()),
            text,
        }))
    }
}

/// The `name` and `type` of each entry of a contents listing (a JSON array).
fn parse_listing(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let list = value.as_array().ok_or("expected a JSON array")?;
    list.iter()
        .map(|e| {
            let field = |k: &str| e.get(k).and_then(|v| v.as_str()).map(str::to_string);
            match (field("name"), field("type")) {
                (Some(n), Some(t)) => Ok((n, t)),
                _ => Err("an entry lacks `name` or `type`".to_string()),
            }
        })
        .collect()
}

impl PinSource for GitHubSource {
    fn describe(&self) -> String {
        format!(
            "distribution repository `{}` (ref `{}`)",
            self.url(),
            self.repo.reference
        )
    }

    fn releases(&self) -> Result<Vec<FluxVersion>, String> {
        let mut out: Vec<FluxVersion> = self
            .list("images")?
            .iter()
            .filter(|(n, t)| t == "dir" && n.starts_with('v'))
            .filter_map(|(n, _)| n.parse().ok())
            .collect();
        out.sort();
        Ok(out)
    }

    fn variants(&self, version: &FluxVersion) -> Result<Vec<String>, String> {
        let mut out: Vec<String> = self
            .list(&format!("images/{version}"))?
            .iter()
            .filter(|(_, t)| t == "file")
            .filter_map(|(n, _)| n.strip_suffix(".yaml").map(str::to_string))
            .collect();
        out.sort();
        Ok(out)
    }

    fn fetch(&self, version: &FluxVersion, variant: &str) -> Result<Option<Fetched>, String> {
        if !is_variant_name(variant) {
            return Ok(None);
        }
        let rel = format!("images/{version}/{variant}.yaml");
        if let Some(hit) = self.files.lock().expect("not poisoned").get(&rel) {
            return Ok(hit.clone());
        }
        let got = self.download(&rel)?;
        self.files
            .lock()
            .expect("not poisoned")
            .insert(rel, got.clone());
        Ok(got)
    }

    fn commit(&self) -> Option<String> {
        let path = format!("commits/{}", self.repo.reference);
        let body = self.api_get(&path, "application/vnd.github.sha").ok()?;
        let sha = String::from_utf8(body).ok()?.trim().to_string();
        (sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then_some(sha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_urls() {
        let r = Repo::parse("https://github.com/controlplaneio-fluxcd/distribution").unwrap();
        assert_eq!(
            (r.owner.as_str(), r.name.as_str(), r.reference.as_str()),
            ("controlplaneio-fluxcd", "distribution", "main")
        );
        let r = Repo::parse("https://github.com/o/d.git/tree/release-2.9").unwrap();
        assert_eq!(
            (r.name.as_str(), r.reference.as_str()),
            ("d", "release-2.9")
        );
        for bad in [
            "https://gitlab.com/o/d",
            "https://github.com/o",
            "https://github.com/o/d/blob/x",
            "https://github.com/o/d/tree/a?b",
        ] {
            assert!(Repo::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn listings_are_checked() {
        let ok = br#"[{"name":"v2.9.4","type":"dir"},{"name":"VERSION","type":"file"}]"#;
        assert_eq!(parse_listing(ok).unwrap().len(), 2);
        assert!(parse_listing(b"<html>").is_err());
        assert!(parse_listing(br#"{"message":"Not Found"}"#).is_err());
        assert!(parse_listing(br#"[{"name":"x"}]"#).is_err());
    }
}
