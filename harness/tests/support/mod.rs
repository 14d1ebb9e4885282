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

/// The stand-in kind CLI and its docker-backed node (see its module docs).
pub mod kind;

/// verify-fips for the double (see its module docs).
pub mod double_fips;

/// Where the real Flux release install manifests are looked for, in order.
pub const FLUX_MANIFESTS_ENV: &str = "FLUX_COMPAT_FLUX_MANIFESTS";

/// The harness's own manifest cache (`$XDG_CACHE_HOME` or `~/.cache`, then `flux-compat/flux`),
/// laid out as `<version>/install.yaml`; `scripts/setup-test-deps.sh` fills it from the Flux
/// GitHub release, verified against the release's checksums file.
pub fn flux_manifest_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("flux-compat/flux")
}

/// The real Flux release `install.yaml` of `version` (e.g. `v2.9.4`). Data from another project,
/// never copied into this repository: found in `$FLUX_COMPAT_FLUX_MANIFESTS` (a file
/// `install-<version>.yaml` or a directory `<version>/install.yaml` in it), then in
/// `../shared/reference/flux-install/`, then in the manifest cache. Panics naming all three places
/// when none has it: a test that needs the real manifests must not pass without them.
pub fn flux_manifests(version: &str) -> PathBuf {
    let mut tried = Vec::new();
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os(FLUX_MANIFESTS_ENV).map(PathBuf::from) {
        candidates.push(dir.join(format!("install-{version}.yaml")));
        candidates.push(dir.join(version).join("install.yaml"));
    } else {
        tried.push(format!("${FLUX_MANIFESTS_ENV} (not set)"));
    }
    let shared = root().join("../shared/reference/flux-install");
    candidates.push(shared.join(format!("install-{version}.yaml")));
    candidates.push(flux_manifest_cache().join(version).join("install.yaml"));
    for c in candidates {
        if c.is_file() {
            return c;
        }
        tried.push(c.display().to_string());
    }
    panic!(
        "the real Flux {version} install manifests were not found; looked in: {}. Set \
         {FLUX_MANIFESTS_ENV} to a directory holding install-{version}.yaml, put the shared \
         reference beside the checkout, or run scripts/setup-test-deps.sh on a machine that \
         reaches the Flux GitHub releases to fill the manifest cache",
        tried.join(", ")
    )
}

/// A directory laid out as `<version>/install.yaml` for the versions given (symlinks to the
/// located manifests), for `ManifestSource::Dir`.
pub fn flux_manifest_dir(versions: &[&str], into: &Path) -> PathBuf {
    let dir = into.join("flux-manifests");
    for v in versions {
        let d = dir.join(v);
        std::fs::create_dir_all(&d).expect("create manifest dir");
        let target = d.join("install.yaml");
        let _ = std::fs::remove_file(&target);
        std::os::unix::fs::symlink(flux_manifests(v), &target).expect("link manifests");
    }
    dir
}

/// A Go program of `fixtures/go/<name>` (standard library only), built once per test binary with
/// the newest toolchain the setup script installs, into `target/go-fixtures/bin/`.
pub fn go_fixture(name: &str) -> PathBuf {
    use std::sync::{Mutex, OnceLock};
    static BUILT: OnceLock<Mutex<std::collections::HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut guard = built.lock().unwrap();
    if let Some(p) = guard.get(name) {
        return p.clone();
    }
    let target = root().join("target/go-fixtures");
    let out = target.join("bin").join(name);
    let status = Command::new(go("1.27.3"))
        .current_dir(root().join("fixtures/go").join(name))
        .args(["build", "-trimpath", "-o"])
        .arg(&out)
        .arg(".")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", target.join("cache"))
        .env("GOPATH", target.join("path"))
        .env_remove("GOEXPERIMENT")
        .output()
        .expect("run go build");
    assert!(
        status.status.success(),
        "go build fixtures/go/{name} failed:\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    guard.insert(name.to_string(), out.clone());
    out
}

/// `fixtures/go/tlspeer` built as a controller's TLS stack: `plain` (CGO off, the toolchain's
/// default crypto) or `boringfips` (GOEXPERIMENT=boringcrypto with `crypto/tls/fipsonly`), once
/// per test binary into `target/go-fixtures/bin/tlspeer-<variant>`.
pub fn tlspeer(variant: &str) -> PathBuf {
    use std::sync::{Mutex, OnceLock};
    static BUILT: OnceLock<Mutex<std::collections::HashMap<String, PathBuf>>> = OnceLock::new();
    let mut guard = BUILT.get_or_init(Default::default).lock().unwrap();
    if let Some(p) = guard.get(variant) {
        return p.clone();
    }
    let target = root().join("target/go-fixtures");
    let out = target.join("bin").join(format!("tlspeer-{variant}"));
    // Built from a copy whose go.mod names the toolchain, as the controllers are: the `go` line
    // sets the GODEBUG defaults (X25519MLKEM768 is on only for go >= 1.24 modules).
    let src = target
        .join("src")
        .join(format!("library-tlspeer-{variant}"));
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(&src).unwrap();
    for f in ["main.go", "fipsonly.go"] {
        std::fs::copy(root().join("fixtures/go/tlspeer").join(f), src.join(f)).unwrap();
    }
    std::fs::write(src.join("go.mod"), "module tlspeer\n\ngo 1.27.3\n").unwrap();
    let mut cmd = Command::new(go("1.27.3"));
    cmd.current_dir(&src)
        .args(["build", "-o"])
        .arg(&out)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", target.join("cache"))
        .env("GOPATH", target.join("path"))
        .env_remove("GOFIPS140")
        .env_remove("GODEBUG");
    match variant {
        "plain" => {
            cmd.env("CGO_ENABLED", "0").env_remove("GOEXPERIMENT");
        }
        "boringfips" => {
            cmd.env("CGO_ENABLED", "1")
                .env("GOEXPERIMENT", "boringcrypto")
                .args(["-tags", "fipsonly"]);
        }
        other => panic!("unknown tlspeer variant `{other}`"),
    }
    let o = cmd.arg(".").output().expect("run go build");
    assert!(
        o.status.success(),
        "go build tlspeer ({variant}) failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    guard.insert(variant.to_string(), out.clone());
    out
}
