//! Shared test support: locating the real peers installed by `scripts/setup-test-deps.sh`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The project root (where Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tools directory the setup script fills (`.tools`, or `$FLUX_COMPAT_TOOLS`).
pub fn tools_dir() -> PathBuf {
    std::env::var_os("FLUX_COMPAT_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".tools"))
}

/// The `go` binary of a toolchain version installed by the setup script (e.g. "1.27.3").
/// Panics with the fix when it is missing: the test command installs it, so absence is a setup bug.
pub fn go(version: &str) -> PathBuf {
    let p = tools_dir().join(format!("go-{version}")).join("go/bin/go");
    assert!(
        p.is_file(),
        "Go {version} is missing at {}: run scripts/setup-test-deps.sh",
        p.display()
    );
    p
}

/// A command that must be on PATH (installed by the setup script).
pub fn require(tool: &str) -> PathBuf {
    which(tool).unwrap_or_else(|| panic!("`{tool}` is not on PATH: run scripts/setup-test-deps.sh"))
}

/// Look a command up on PATH.
pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// Whether a Docker engine answers.
pub fn docker_available() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The built `flux-compat` binary, for CLI tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flux-compat"))
}

/// The Kubernetes API server test double (see its module docs).
pub mod apiserver;
