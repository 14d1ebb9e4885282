//! Image inspection: an OCI/Docker registry client (manifest list → platform manifest → config →
//! layers, digest-verified), parallel layer extraction on rayon, entrypoint resolution through
//! the merged filesystem, the Go classification of that binary, and base detection (distroless
//! or Alpine) from filesystem evidence. Registry secrets live only in request headers.

use super::classify::{InspectError, Inspection, inspect_bytes};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Mutex;

const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image reference `{0}`: {1}")]
    BadReference(String, String),
    #[error("invalid platform `{0}` (expected os/arch[/variant], e.g. linux/amd64)")]
    BadPlatform(String),
    #[error("request `{url}` failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("`{url}` answered {status}")]
    Status { url: String, status: u16 },
    #[error(
        "registry `{registry}` asks for credentials: give a token with --registry-token-env or --registry-token-file"
    )]
    Unauthorized { registry: String },
    #[error(
        "registry `{registry}` refused the credentials of user `{username}`: check the user name (FLUX_COMPAT_REGISTRY_USERNAME) and that the token may pull this image"
    )]
    Rejected { registry: String, username: String },
    #[error("`{what}` has digest `{actual}`, expected `{expected}`")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("cannot parse {what}: {reason}")]
    Parse { what: String, reason: String },
    #[error("image `{reference}` has no manifest for `{wanted}` (available: {available})")]
    NoPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    #[error("layer `{digest}` has unsupported media type `{media_type}`")]
    UnsupportedLayer { digest: String, media_type: String },
    #[error("cannot extract layer `{digest}`: {reason}")]
    Layer { digest: String, reason: String },
    #[error("image config has neither Entrypoint nor Cmd")]
    NoEntrypoint,
    #[error("entrypoint `{0}` is not in the image filesystem")]
    EntrypointMissing(String),
    #[error("entrypoint `{path}`")]
    Binary {
        path: String,
        #[source]
        source: InspectError,
    },
}

impl ImageError {
    /// Bad input (reference, platform, not-Go entrypoint) rather than an infrastructure problem.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ImageError::BadReference(..) | ImageError::BadPlatform(_) | ImageError::Binary { .. }
        )
    }
}

/// `registry/repository[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef, ImageError> {
        let bad = |why: &str| ImageError::BadReference(s.to_string(), why.to_string());
        if s.is_empty() || s.chars().any(|c| c.is_whitespace()) {
            return Err(bad("empty or contains whitespace"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("digest must be `sha256:<64 hex>`"))?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("digest must be `sha256:<64 hex>`"));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if tag.as_deref() == Some("") {
            return Err(bad("empty tag"));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, repo))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), repo.to_string())
            }
            Some(_) => ("docker.io".to_string(), name.to_string()),
            None => ("docker.io".to_string(), format!("library/{name}")),
        };
        if repository.is_empty()
            || !repository
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
        {
            return Err(bad("repository must be lower-case `[a-z0-9._-/]`"));
        }
        if tag.is_none() && digest.is_none() {
            return Ok(ImageRef {
                registry,
                repository,
                tag: Some("latest".into()),
                digest,
            });
        }
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the manifests endpoint for: the digest when pinned, else the tag.
    fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Registry credentials. The secret is never printed (`Debug` redacts it).
#[derive(Clone, Default)]
pub struct Credentials {
    pub username: Option<String>,
    pub secret: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(s: &str) -> Result<Platform, ImageError> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(ImageError::BadPlatform(s.to_string())),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A registry client for pulling; one per run, tokens cached per repository.
pub struct Registry {
    http: reqwest::Client,
    plain_http: bool,
    creds: Credentials,
    tokens: Mutex<BTreeMap<String, String>>,
}

struct Fetched {
    body: Vec<u8>,
    content_type: Option<String>,
}

impl Registry {
    pub fn new(plain_http: bool, creds: Credentials) -> Registry {
        let http = reqwest::Client::builder()
            .user_agent(concat!("flux-compat/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .unwrap_or_default();
        Registry {
            http,
            plain_http,
            creds,
            tokens: Mutex::new(BTreeMap::new()),
        }
    }

    fn url(&self, r: &ImageRef, kind: &str, what: &str) -> String {
        let scheme = if self.plain_http { "http" } else { "https" };
        format!(
            "{scheme}://{}/v2/{}/{kind}/{what}",
            r.api_host(),
            r.repository
        )
    }

    async fn get(&self, r: &ImageRef, url: &str, accept: &str) -> Result<Fetched, ImageError> {
        let key = format!("{}/{}", r.registry, r.repository);
        let http_err = |source| ImageError::Http {
            url: url.to_string(),
            source,
        };
        for attempt in 0..2 {
            let mut req = self.http.get(url).header(reqwest::header::ACCEPT, accept);
            let cached = self.tokens.lock().ok().and_then(|t| t.get(&key).cloned());
            if let Some(tok) = &cached {
                req = req.bearer_auth(tok);
            } else if attempt == 1
                && let (Some(u), Some(s)) = (&self.creds.username, &self.creds.secret)
            {
                req = req.basic_auth(u, Some(s));
            }
            let resp = req.send().await.map_err(http_err)?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                let challenge = resp
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                self.authenticate(r, &key, &challenge).await?;
                continue;
            }
            if status == reqwest::StatusCode::UNAUTHORIZED {
                return Err(self.refused(r));
            }
            if !status.is_success() {
                return Err(ImageError::Status {
                    url: url.to_string(),
                    status: status.as_u16(),
                });
            }
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp.bytes().await.map_err(http_err)?.to_vec();
            return Ok(Fetched { body, content_type });
        }
        Err(self.refused(r))
    }

    /// A final 401: credentials were sent and refused, or there were none to send.
    fn refused(&self, r: &ImageRef) -> ImageError {
        match (&self.creds.secret, &self.creds.username) {
            (Some(_), username) => ImageError::Rejected {
                registry: r.registry.clone(),
                username: username
                    .clone()
                    .unwrap_or_else(|| "(none: token as bearer)".into()),
            },
            (None, _) => ImageError::Unauthorized {
                registry: r.registry.clone(),
            },
        }
    }

    /// Answer a 401 challenge: a Bearer realm gets a token (with basic auth when a username is
    /// given, else the secret is itself the bearer token); a Basic challenge needs a username.
    async fn authenticate(
        &self,
        r: &ImageRef,
        key: &str,
        challenge: &str,
    ) -> Result<(), ImageError> {
        let unauthorized = || self.refused(r);
        let Some(secret) = &self.creds.secret else {
            return Err(unauthorized());
        };
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            // Basic auth is sent on the retry; without a username there is nothing to send.
            return if self.creds.username.is_some() {
                Ok(())
            } else {
                Err(unauthorized())
            };
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(unauthorized());
        }
        let token = match &self.creds.username {
            None => secret.clone(),
            Some(user) => {
                let p = challenge_params(params);
                let realm = p.get("realm").ok_or_else(unauthorized)?;
                let scope = p
                    .get("scope")
                    .cloned()
                    .unwrap_or_else(|| format!("repository:{}:pull", r.repository));
                let mut q: Vec<(&str, String)> = vec![("scope", scope)];
                if let Some(s) = p.get("service") {
                    q.push(("service", s.clone()));
                }
                let resp = self
                    .http
                    .get(realm)
                    .query(&q)
                    .basic_auth(user, Some(secret))
                    .send()
                    .await
                    .map_err(|source| ImageError::Http {
                        url: realm.clone(),
                        source,
                    })?;
                if !resp.status().is_success() {
                    return Err(unauthorized());
                }
                let v: serde_json::Value =
                    resp.json().await.map_err(|source| ImageError::Http {
                        url: realm.clone(),
                        source,
                    })?;
                v.get("token")
                    .or_else(|| v.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(unauthorized)?
                    .to_string()
            }
        };
        if let Ok(mut t) = self.tokens.lock() {
            t.insert(key.to_string(), token);
        }
        Ok(())
    }
}

fn challenge_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let re = regex::Regex::new(r#"(\w+)="([^"]*)""#).expect("constant pattern");
    for c in re.captures_iter(s) {
        out.insert(c[1].to_ascii_lowercase(), c[2].to_string());
    }
    out
}

fn sha256_digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn parse_json(what: &str, b: &[u8]) -> Result<serde_json::Value, ImageError> {
    serde_json::from_slice(b).map_err(|e| ImageError::Parse {
        what: what.into(),
        reason: e.to_string(),
    })
}

fn media_type(v: &serde_json::Value, fallback: Option<&str>) -> String {
    v.get("mediaType")
        .and_then(|m| m.as_str())
        .or(fallback)
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// What was downloaded for one platform.
pub struct Pulled {
    /// Digest of what the reference resolves to (the index for multi-arch images).
    pub digest: String,
    pub platform_digest: String,
    pub platform: Platform,
    pub config: serde_json::Value,
    /// (media type, digest, compressed bytes), bottom layer first.
    pub layers: Vec<(String, String, Vec<u8>)>,
}

/// Download manifest(s), config and all layers (concurrently) for one platform.
pub async fn pull(reg: &Registry, r: &ImageRef, platform: &Platform) -> Result<Pulled, ImageError> {
    let url = reg.url(r, "manifests", r.manifest_ref());
    let top = reg.get(r, &url, ACCEPT_MANIFESTS).await?;
    let digest = sha256_digest(&top.body);
    if let Some(want) = &r.digest
        && !want.eq_ignore_ascii_case(&digest)
    {
        return Err(ImageError::DigestMismatch {
            what: r.to_string(),
            expected: want.clone(),
            actual: digest,
        });
    }
    let v = parse_json("manifest", &top.body)?;
    let mt = media_type(&v, top.content_type.as_deref());
    let (manifest, platform_digest) = if mt.contains("index") || mt.contains("manifest.list") {
        let entries = v
            .get("manifests")
            .and_then(|m| m.as_array())
            .cloned()
            .unwrap_or_default();
        let plat = |e: &serde_json::Value, k: &str| {
            e.pointer(&format!("/platform/{k}"))
                .and_then(|x| x.as_str())
                .map(str::to_string)
        };
        let chosen = entries.iter().find(|e| {
            plat(e, "os").as_deref() == Some(platform.os.as_str())
                && plat(e, "architecture").as_deref() == Some(platform.architecture.as_str())
                && (platform.variant.is_none() || plat(e, "variant") == platform.variant)
        });
        let Some(chosen) = chosen else {
            let available = entries
                .iter()
                .filter_map(|e| Some(format!("{}/{}", plat(e, "os")?, plat(e, "architecture")?)))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ImageError::NoPlatform {
                reference: r.to_string(),
                wanted: platform.to_string(),
                available,
            });
        };
        let d = chosen
            .get("digest")
            .and_then(|d| d.as_str())
            .ok_or_else(|| ImageError::Parse {
                what: "image index".into(),
                reason: "manifest entry without digest".into(),
            })?
            .to_string();
        let m = reg
            .get(r, &reg.url(r, "manifests", &d), ACCEPT_MANIFESTS)
            .await?;
        let actual = sha256_digest(&m.body);
        if actual != d {
            return Err(ImageError::DigestMismatch {
                what: format!("{r} ({platform})"),
                expected: d,
                actual,
            });
        }
        (parse_json("platform manifest", &m.body)?, d)
    } else {
        (v, digest.clone())
    };
    let config_digest = manifest
        .pointer("/config/digest")
        .and_then(|d| d.as_str())
        .ok_or_else(|| ImageError::Parse {
            what: "manifest".into(),
            reason: "no config digest".into(),
        })?
        .to_string();
    let cfg = reg
        .get(r, &reg.url(r, "blobs", &config_digest), "*/*")
        .await?;
    let actual = sha256_digest(&cfg.body);
    if actual != config_digest {
        return Err(ImageError::DigestMismatch {
            what: "image config".into(),
            expected: config_digest,
            actual,
        });
    }
    let config = parse_json("image config", &cfg.body)?;
    // Single-platform images: the config says what the platform is.
    let cfg_str = |k: &str| config.get(k).and_then(|x| x.as_str()).map(str::to_string);
    if let (Some(os), Some(arch)) = (cfg_str("os"), cfg_str("architecture"))
        && (os != platform.os || arch != platform.architecture)
    {
        return Err(ImageError::NoPlatform {
            reference: r.to_string(),
            wanted: platform.to_string(),
            available: format!("{os}/{arch}"),
        });
    }
    let descs = manifest
        .get("layers")
        .and_then(|l| l.as_array())
        .cloned()
        .unwrap_or_default();
    let fetches = descs.iter().map(|d| async move {
        let digest = d
            .get("digest")
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_string();
        let mt = d
            .get("mediaType")
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_string();
        let body = reg.get(r, &reg.url(r, "blobs", &digest), "*/*").await?.body;
        Ok::<_, ImageError>((mt, digest, body))
    });
    let layers = futures::future::try_join_all(fetches).await?;
    Ok(Pulled {
        digest,
        platform_digest,
        platform: platform.clone(),
        config,
        layers,
    })
}

/// A filesystem node after merging layers.
#[derive(Clone, Debug)]
enum Node {
    File {
        data: Option<std::sync::Arc<Vec<u8>>>,
    },
    Dir,
    Symlink(String),
    Hardlink(String),
}

enum Op {
    Put(String, Node),
    Whiteout(String),
    Opaque(String),
}

fn normalize(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// Decompress and list one layer, keeping the bytes of ELF files and small `/etc` files only.
fn read_layer(media_type: &str, digest: &str, blob: &[u8]) -> Result<Vec<Op>, ImageError> {
    let layer_err = |reason: String| ImageError::Layer {
        digest: digest.to_string(),
        reason,
    };
    let actual = sha256_digest(blob);
    if actual != digest {
        return Err(ImageError::DigestMismatch {
            what: format!("layer `{digest}`"),
            expected: digest.to_string(),
            actual,
        });
    }
    let gz = blob.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read + '_> =
        if media_type.ends_with("gzip") || (media_type.is_empty() && gz) {
            Box::new(flate2::read::GzDecoder::new(blob))
        } else if media_type.ends_with(".tar") || media_type.is_empty() {
            Box::new(blob)
        } else {
            return Err(ImageError::UnsupportedLayer {
                digest: digest.into(),
                media_type: media_type.into(),
            });
        };
    let mut archive = tar::Archive::new(reader);
    let mut ops = Vec::new();
    let entries = archive.entries().map_err(|e| layer_err(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| layer_err(e.to_string()))?;
        let raw_path = entry
            .path()
            .map_err(|e| layer_err(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        let path = normalize(&raw_path);
        let name = path.rsplit('/').next().unwrap_or("");
        if name == ".wh..wh..opq" {
            ops.push(Op::Opaque(parent(&path).to_string()));
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            ops.push(Op::Whiteout(normalize(&format!(
                "{}/{hidden}",
                parent(&path)
            ))));
            continue;
        }
        let kind = entry.header().entry_type();
        let link = || -> Result<String, ImageError> {
            Ok(entry
                .link_name()
                .map_err(|e| layer_err(e.to_string()))?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default())
        };
        let node = match kind {
            tar::EntryType::Directory => Node::Dir,
            tar::EntryType::Symlink => Node::Symlink(link()?),
            tar::EntryType::Link => Node::Hardlink(normalize(&link()?)),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                // A decompressing reader may return short reads: take up to 4 bytes properly.
                let mut head = Vec::with_capacity(4);
                (&mut entry)
                    .take(4)
                    .read_to_end(&mut head)
                    .map_err(|e| layer_err(e.to_string()))?;
                let small_etc = path.starts_with("/etc/") && size <= 64 * 1024;
                let data = if head == b"\x7fELF" || small_etc {
                    // The header size is untrusted: cap the up-front allocation.
                    let mut buf = Vec::with_capacity(size.min(256 << 20) as usize);
                    buf.extend_from_slice(&head);
                    entry
                        .read_to_end(&mut buf)
                        .map_err(|e| layer_err(e.to_string()))?;
                    Some(std::sync::Arc::new(buf))
                } else {
                    None
                };
                Node::File { data }
            }
            _ => continue,
        };
        ops.push(Op::Put(path, node));
    }
    Ok(ops)
}

/// The merged filesystem of an image.
pub struct Filesystem {
    nodes: BTreeMap<String, Node>,
}

impl Filesystem {
    fn merge(layers: Vec<Vec<Op>>) -> Filesystem {
        let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
        let remove_under = |nodes: &mut BTreeMap<String, Node>, dir: &str, incl: bool| {
            let prefix = if dir == "/" {
                "/".to_string()
            } else {
                format!("{dir}/")
            };
            nodes.retain(|k, _| !(k.starts_with(&prefix) || (incl && k == dir)));
        };
        for ops in layers {
            // Whiteouts hide lower layers only, so they apply before this layer's own entries.
            for op in &ops {
                match op {
                    Op::Whiteout(p) => remove_under(&mut nodes, p, true),
                    Op::Opaque(d) => remove_under(&mut nodes, d, false),
                    Op::Put(..) => {}
                }
            }
            for op in ops {
                if let Op::Put(p, n) = op {
                    nodes.insert(p, n);
                }
            }
        }
        Filesystem { nodes }
    }

    /// Resolve symlinks (in every component) and hard links; `None` if the path does not exist.
    fn resolve(&self, path: &str) -> Option<(String, &Node)> {
        let mut pending: Vec<String> = normalize(path)
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(str::to_string)
            .collect();
        let mut cur = String::from("/");
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            let next = normalize(&format!("{cur}/{c}"));
            match self.nodes.get(&next) {
                Some(Node::Symlink(target)) => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    let t = if target.starts_with('/') {
                        target.clone()
                    } else {
                        format!("{cur}/{target}")
                    };
                    let comps: Vec<String> = normalize(&t)
                        .split('/')
                        .filter(|c| !c.is_empty())
                        .map(str::to_string)
                        .collect();
                    pending.extend(comps.into_iter().rev());
                    cur = "/".into();
                }
                Some(Node::Hardlink(target)) if pending.is_empty() => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    let t = target.clone();
                    pending.extend(
                        t.split('/')
                            .filter(|c| !c.is_empty())
                            .map(str::to_string)
                            .rev(),
                    );
                    cur = "/".into();
                }
                Some(_) => cur = next,
                // Directories are often implicit in layers: allow them when something lies below.
                None if !pending.is_empty()
                    && self
                        .nodes
                        .range(format!("{next}/")..)
                        .next()
                        .is_some_and(|(k, _)| k.starts_with(&format!("{next}/"))) =>
                {
                    cur = next
                }
                None => return None,
            }
        }
        self.nodes.get(&cur).map(|n| (cur.clone(), n))
    }

    pub fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_some()
    }

    fn text(&self, path: &str) -> Option<String> {
        match self.resolve(path)?.1 {
            Node::File { data: Some(d), .. } => Some(String::from_utf8_lossy(d).into_owned()),
            _ => None,
        }
    }

    pub fn file_count(&self) -> usize {
        self.nodes.len()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseKind {
    Distroless,
    Alpine,
    Other,
}

impl BaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BaseKind::Distroless => "distroless",
            BaseKind::Alpine => "alpine",
            BaseKind::Other => "other",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct BaseInfo {
    pub kind: BaseKind,
    pub shells: Vec<String>,
    pub package_managers: Vec<String>,
    pub evidence: Vec<String>,
}

const SHELLS: [&str; 7] = [
    "/bin/sh",
    "/bin/bash",
    "/bin/ash",
    "/bin/dash",
    "/bin/busybox",
    "/usr/bin/bash",
    "/usr/bin/sh",
];
const PACKAGE_MANAGERS: [&str; 9] = [
    "/sbin/apk",
    "/usr/bin/apk",
    "/usr/bin/apt",
    "/usr/bin/apt-get",
    "/usr/bin/dpkg",
    "/usr/bin/yum",
    "/usr/bin/dnf",
    "/usr/bin/microdnf",
    "/usr/bin/rpm",
];

/// Distroless = no shell and no package manager; Alpine = `/etc/alpine-release` (and apk).
pub fn detect_base(fs: &Filesystem) -> BaseInfo {
    let shells: Vec<String> = SHELLS
        .iter()
        .filter(|p| fs.exists(p))
        .map(|p| p.to_string())
        .collect();
    let pms: Vec<String> = PACKAGE_MANAGERS
        .iter()
        .filter(|p| fs.exists(p))
        .map(|p| p.to_string())
        .collect();
    let mut evidence = Vec::new();
    let alpine_release = fs.text("/etc/alpine-release");
    if let Some(v) = &alpine_release {
        evidence.push(format!("`/etc/alpine-release` is `{}`", v.trim()));
    } else if fs.exists("/etc/alpine-release") {
        evidence.push("`/etc/alpine-release` exists".into());
    }
    if fs.exists("/lib/apk/db/installed") {
        evidence.push("apk database `/lib/apk/db/installed` exists".into());
    }
    if let Some(osr) = fs.text("/etc/os-release")
        && let Some(line) = osr.lines().find(|l| l.starts_with("PRETTY_NAME="))
    {
        evidence.push(format!("`/etc/os-release` {line}"));
    }
    if shells.is_empty() {
        evidence.push("no shell (checked /bin/sh, bash, ash, dash, busybox)".into());
    } else {
        evidence.push(format!("shell(s): {}", shells.join(", ")));
    }
    if pms.is_empty() {
        evidence.push("no package manager (checked apk, apt, dpkg, yum, dnf, rpm)".into());
    } else {
        evidence.push(format!("package manager(s): {}", pms.join(", ")));
    }
    let kind = if alpine_release.is_some() || fs.exists("/etc/alpine-release") {
        BaseKind::Alpine
    } else if shells.is_empty() && pms.is_empty() {
        BaseKind::Distroless
    } else {
        BaseKind::Other
    };
    BaseInfo {
        kind,
        shells,
        package_managers: pms,
        evidence,
    }
}

/// The result of inspecting one image for one platform.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInspection {
    pub reference: String,
    pub digest: String,
    pub platform: String,
    pub platform_digest: String,
    pub layers: usize,
    pub entrypoint: Vec<String>,
    pub binary_path: String,
    pub base: BaseInfo,
    pub binary: Inspection,
}

fn string_list(v: Option<&serde_json::Value>) -> Vec<String> {
    v.and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// CPU stage: extract layers in parallel, merge, find and classify the entrypoint binary.
pub fn analyse(reference: &str, pulled: Pulled) -> Result<ImageInspection, ImageError> {
    let cfg = pulled.config.get("config");
    let entrypoint = string_list(cfg.and_then(|c| c.get("Entrypoint")));
    let cmd = string_list(cfg.and_then(|c| c.get("Cmd")));
    let argv: Vec<String> = if entrypoint.is_empty() {
        cmd
    } else {
        entrypoint.into_iter().chain(cmd).collect()
    };
    let argv0 = argv.first().cloned().ok_or(ImageError::NoEntrypoint)?;
    let env = string_list(cfg.and_then(|c| c.get("Env")));
    let workdir = cfg
        .and_then(|c| c.get("WorkingDir"))
        .and_then(|w| w.as_str())
        .filter(|w| !w.is_empty())
        .unwrap_or("/")
        .to_string();
    let layers = pulled
        .layers
        .par_iter()
        .map(|(mt, d, blob)| read_layer(mt, d, blob))
        .collect::<Result<Vec<_>, _>>()?;
    let nlayers = layers.len();
    let fs = Filesystem::merge(layers);
    let candidates: Vec<String> = if argv0.contains('/') {
        vec![if argv0.starts_with('/') {
            argv0.clone()
        } else {
            format!("{workdir}/{argv0}")
        }]
    } else {
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{d}/{argv0}"))
            .collect()
    };
    let (binary_path, data) = candidates
        .iter()
        .find_map(|c| match fs.resolve(c) {
            Some((p, Node::File { data, .. })) => Some((p, data.clone())),
            _ => None,
        })
        .ok_or_else(|| ImageError::EntrypointMissing(argv0.clone()))?;
    let data = data.ok_or_else(|| ImageError::Binary {
        path: binary_path.clone(),
        source: InspectError::NotGo("not an ELF file".into()),
    })?;
    let binary = inspect_bytes(&data).map_err(|source| ImageError::Binary {
        path: binary_path.clone(),
        source,
    })?;
    Ok(ImageInspection {
        reference: reference.to_string(),
        digest: pulled.digest,
        platform: pulled.platform.to_string(),
        platform_digest: pulled.platform_digest,
        layers: nlayers,
        entrypoint: argv,
        binary_path,
        base: detect_base(&fs),
        binary,
    })
}

/// Pull and analyse one image: I/O on the given runtime, CPU work on rayon.
pub fn inspect_image(
    rt: &tokio::runtime::Runtime,
    reg: &Registry,
    reference: &str,
    platform: &Platform,
) -> Result<ImageInspection, ImageError> {
    let r = ImageRef::parse(reference)?;
    let pulled = rt.block_on(pull(reg, &r, platform))?;
    analyse(reference, pulled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = ImageRef::parse("ghcr.io/fluxcd/source-controller:v1.9.4").unwrap();
        assert_eq!(r.registry, "ghcr.io");
        assert_eq!(r.repository, "fluxcd/source-controller");
        assert_eq!(r.tag.as_deref(), Some("v1.9.4"));
        let r = ImageRef::parse("127.0.0.1:5000/x/y@sha256:".to_string().as_str());
        assert!(r.is_err());
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("127.0.0.1:5000/x/y:t@{d}")).unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.manifest_ref(), d);
        let r = ImageRef::parse("alpine").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "library/alpine")
        );
        assert!(ImageRef::parse("Bad/Name").is_err());
        assert!(ImageRef::parse("x:").is_err());
    }

    #[test]
    fn credentials_debug_redacts() {
        let c = Credentials {
            username: Some("u".into()),
            secret: Some("s3cr3t".into()),
        };
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn symlinks_and_whiteouts() {
        let f = |d: &[u8]| Node::File {
            data: Some(std::sync::Arc::new(d.to_vec())),
        };
        let fs = Filesystem::merge(vec![
            vec![
                Op::Put("/usr/bin/busybox".into(), f(b"x")),
                Op::Put("/bin".into(), Node::Symlink("usr/bin".into())),
                Op::Put("/usr/bin/sh".into(), Node::Symlink("busybox".into())),
                Op::Put("/etc/alpine-release".into(), f(b"3.22.0\n")),
            ],
            vec![Op::Whiteout("/usr/bin/sh".into())],
        ]);
        assert!(fs.exists("/bin/busybox"));
        assert!(!fs.exists("/bin/sh"));
        let b = detect_base(&fs);
        assert_eq!(b.kind, BaseKind::Alpine);
        assert_eq!(b.shells, vec!["/bin/busybox".to_string()]);
    }
}
