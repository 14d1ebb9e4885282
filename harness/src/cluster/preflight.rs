//! Preflight for the kind provider: a container engine that answers (docker, else podman) and a
//! `kind` binary at a supported version. Failures carry the exact install hint (exit 3). Also the
//! opt-in install of a pinned kind release, verified by sha256 before it is made executable.

use super::kind::{KindCli, parse_version};
use super::process::{self, Cmd};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A missing or unusable prerequisite; the message says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "find a container engine: neither `docker info` nor `podman info` answered ({detail}); install Docker (https://docs.docker.com/engine/install/) and start it"
    )]
    NoEngine { detail: String },
    #[error("find `kind` on PATH; {}", install_hint(required))]
    NoKind { required: semver::Version },
    #[error(
        "use `{found}`: kind v{required} or newer is needed; {}",
        install_hint(required)
    )]
    OldKind {
        found: String,
        required: semver::Version,
    },
    #[error("read the version of `{program}`: {message}")]
    KindBroken { program: String, message: String },
    #[error("parse the matrix `kindVersion` `{0}`")]
    BadRequirement(String),
}

/// The install command for a kind release.
pub fn install_hint(v: &semver::Version) -> String {
    let url = release_url(v);
    format!(
        "install kind v{v} with `go install sigs.k8s.io/kind@v{v}`, or download {url} and verify it with {url}.sha256sum"
    )
}

/// What preflight found.
#[derive(Clone, Debug)]
pub struct Found {
    /// `docker` or `podman`.
    pub engine: String,
    pub engine_version: String,
    pub kind: KindCli,
    /// `kind version` output.
    pub kind_version: String,
}

/// Check the engine and kind. `kind_program` is `kind` (looked up on PATH) unless overridden.
pub async fn check(
    kind_program: &Path,
    required: &str,
    cancel: &CancellationToken,
) -> Result<Found, PreflightError> {
    let required = semver::Version::parse(required.trim_start_matches('v'))
        .map_err(|_| PreflightError::BadRequirement(required.to_string()))?;
    let mut details = Vec::new();
    let mut engine = None;
    for e in ["docker", "podman"] {
        let cmd = Cmd::new(e).args(["info", "--format", "{{.ServerVersion}}"]);
        let cmd = if e == "podman" {
            Cmd::new(e).args(["info", "--format", "{{.Version.Version}}"])
        } else {
            cmd
        };
        match process::run(&cmd, Duration::from_secs(30), cancel).await {
            Ok(out) => {
                engine = Some((e.to_string(), out.stdout.trim().to_string()));
                break;
            }
            Err(err) => details.push(format!("{e}: {err}")),
        }
    }
    let (engine, engine_version) = engine.ok_or_else(|| PreflightError::NoEngine {
        detail: details.join("; "),
    })?;
    let program = resolve(kind_program).ok_or(PreflightError::NoKind {
        required: required.clone(),
    })?;
    let mut cli = KindCli {
        program: program.clone(),
        env: Vec::new(),
    };
    if engine == "podman" {
        cli.env
            .push(("KIND_EXPERIMENTAL_PROVIDER".into(), "podman".into()));
    }
    let out = cli
        .version(cancel)
        .await
        .map_err(|e| PreflightError::KindBroken {
            program: program.display().to_string(),
            message: e.to_string(),
        })?;
    let found = parse_version(&out).ok_or_else(|| PreflightError::KindBroken {
        program: program.display().to_string(),
        message: format!("unexpected output `{}`", out.trim()),
    })?;
    if found < required {
        return Err(PreflightError::OldKind {
            found: out.trim().to_string(),
            required,
        });
    }
    Ok(Found {
        engine,
        engine_version,
        kind: cli,
        kind_version: out.trim().to_string(),
    })
}

/// A path with a directory part is taken as is; a bare name is looked up on PATH.
pub fn resolve(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Installing kind failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("download `{url}`")]
    Download {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("verify `{url}`: sha256 is {actual}, expected {expected}")]
    Checksum {
        url: String,
        actual: String,
        expected: String,
    },
    #[error("write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The release asset URL for this platform.
pub fn release_url(v: &semver::Version) -> String {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    format!(
        "https://github.com/kubernetes-sigs/kind/releases/download/v{v}/kind-{}-{arch}",
        std::env::consts::OS
    )
}

/// Opt-in: download a kind release into `dir/kind`, verify its sha256 against `expected_sha256`
/// (a pin the user supplies) before making it executable. Nothing is installed on mismatch.
pub async fn install_kind(
    v: &semver::Version,
    expected_sha256: &str,
    dir: &Path,
) -> Result<PathBuf, InstallError> {
    let url = release_url(v);
    let dl = |source| InstallError::Download {
        url: url.clone(),
        source,
    };
    let bytes = reqwest::get(&url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(dl)?
        .bytes()
        .await
        .map_err(dl)?;
    verify_sha256(&url, &bytes, expected_sha256)?;
    let path = dir.join("kind");
    let write = |source| InstallError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write)?;
    let tmp = dir.join(".kind.partial");
    std::fs::write(&tmp, &bytes).map_err(write)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).map_err(write)?;
    }
    std::fs::rename(&tmp, &path).map_err(write)?;
    Ok(path)
}

/// Compare the sha256 of `bytes` with a hex pin (case-insensitive, `sha256:` prefix allowed).
pub fn verify_sha256(url: &str, bytes: &[u8], expected: &str) -> Result<(), InstallError> {
    let actual = hex::encode(Sha256::digest(bytes));
    let expected = expected.trim().trim_start_matches("sha256:").to_lowercase();
    if actual == expected {
        Ok(())
    } else {
        Err(InstallError::Checksum {
            url: url.to_string(),
            actual,
            expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_names_the_exact_release() {
        let h = install_hint(&semver::Version::new(0, 33, 0));
        assert!(h.contains("`go install sigs.k8s.io/kind@v0.33.0`"), "{h}");
        assert!(h.contains("/v0.33.0/kind-"), "{h}");
        assert!(h.contains(".sha256sum"), "{h}");
    }

    #[test]
    fn checksum_mismatch_is_refused() {
        let good = hex::encode(Sha256::digest(b"kind"));
        assert!(verify_sha256("u", b"kind", &format!("sha256:{}", good.to_uppercase())).is_ok());
        assert!(matches!(
            verify_sha256("u", b"kind!", &good),
            Err(InstallError::Checksum { .. })
        ));
    }
}
