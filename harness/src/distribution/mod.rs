//! The distribution and the other upstream sources the matrix is computed from: opening a
//! distribution source from `--distribution DIR|URL` (a checkout, or the repository on GitHub),
//! and the HTTP client every network source shares. Reading only; the matrix file and the
//! committed copies are written by `update`.

pub mod github;
pub mod http;

use crate::config::pins::{DirSource, PinSource};
use crate::runner::secret::Secret;
use std::path::Path;

/// The repository users read when they name none (`matrix update` without `--distribution` and
/// without `distribution.repository` in the matrix).
pub const DEFAULT_REPOSITORY: &str = "https://github.com/controlplaneio-fluxcd/distribution";

/// The token sent to the GitHub API (rate limits), when the environment has one.
pub fn github_token() -> Option<Secret> {
    Secret::from_env("GITHUB_TOKEN")
}

/// Open `--distribution DIR|URL`. A URL must be a GitHub repository
/// (`https://github.com/OWNER/REPO[/tree/REF]`); `offline` refuses it.
pub fn open(arg: &str, offline: bool) -> Result<Box<dyn PinSource>, String> {
    if arg.starts_with("https://") || arg.starts_with("http://") {
        let repo = github::Repo::parse(arg).ok_or_else(|| {
            format!("`{arg}` is not a GitHub repository URL; expected `https://github.com/OWNER/REPO[/tree/REF]` or a directory")
        })?;
        if offline {
            return Err(format!(
                "`--offline` reads local sources only, but `--distribution {arg}` is a URL; pass a checkout directory"
            ));
        }
        let http = http::Http::new(http::Policy::default())?;
        let cache = crate::flux::manifests::default_cache_dir().join("distribution");
        let source = github::GitHubSource::new(
            repo,
            github::Endpoints::from_env(),
            http,
            github_token(),
            Some(cache),
        );
        return Ok(Box::new(source));
    }
    Ok(Box::new(DirSource::open(Path::new(arg))?))
}
