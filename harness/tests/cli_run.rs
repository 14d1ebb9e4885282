//! `flux-compat run` and `gc` from the command line: exit 3 with the exact install hint when kind
//! is missing, `--dry-run` changes nothing, enterprise channels demand a token, gc by prefix.

#[allow(unused_imports, clippy::type_complexity)]
// the shared support also carries the API server double
mod support;

use std::path::Path;
use std::process::{Command, Output};

/// A PATH holding only `docker` (when present) and `sh`, so `kind` is surely missing.
fn bare_path(dir: &Path) -> String {
    for tool in ["docker", "sh"] {
        if let Some(p) = support::which(tool) {
            let _ = std::os::unix::fs::symlink(p, dir.join(tool));
        }
    }
    dir.display().to_string()
}

fn flux_compat(args: &[&str], path: &str, envs: &[(&str, &str)]) -> Output {
    let root = support::root();
    let mut c = Command::new(support::binary());
    c.current_dir(&root)
        .args(["--matrix", "matrix.yaml", "--no-progress"])
        .args(args)
        .env("PATH", path)
        .env_remove("FLUX_COMPAT_REGISTRY_TOKEN");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn missing_kind_exits_3_with_the_install_hint() {
    let dir = tempfile::tempdir().unwrap();
    let out = flux_compat(
        &[
            "run",
            "--k8s",
            "1.37",
            "--channel",
            "upstream",
            "--report-dir",
            "target/cli-run-no-kind",
        ],
        &bare_path(dir.path()),
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    if support::docker_available() {
        assert!(
            err.contains("`go install sigs.k8s.io/kind@v0.33.0`"),
            "{err}"
        );
        assert!(err.contains("/v0.33.0/kind-"), "{err}");
    } else {
        assert!(err.contains("docker info"), "{err}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn dry_run_prints_what_it_would_create_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = flux_compat(
        &[
            "run",
            "--dry-run",
            "--k8s",
            "1.37",
            "--channel",
            "upstream",
            "--run-id",
            "dry1",
        ],
        &bare_path(dir.path()),
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("cell 1.37-upstream-v2.9.4-kind:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("kind cluster `flux-compat-dry1-1.37-upstream-v2.9.4-kind`"),
        "{stdout}"
    );
    assert!(stdout.contains("kindest/node:v1.37.0@sha256:"), "{stdout}");
    assert!(
        stdout.contains("run scenario `git-kustomization`"),
        "{stdout}"
    );
    assert!(
        !support::root().join("reports/dry1").exists(),
        "a dry run writes no report"
    );
}

#[test]
fn enterprise_channels_need_a_token_from_env_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = flux_compat(
        &["run", "--k8s", "1.37", "--channel", "mainline"],
        &bare_path(dir.path()),
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("`mainline` need a registry token"), "{err}");
    assert!(err.contains("FLUX_COMPAT_REGISTRY_TOKEN"), "{err}");
    let missing = flux_compat(
        &[
            "run",
            "--channel",
            "mainline",
            "--registry-token-file",
            "/nonexistent/token",
        ],
        &bare_path(dir.path()),
        &[],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read registry token file"));
}

#[test]
fn gc_removes_only_flux_compat_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let kind = dir.path().join("kind");
    let log = dir.path().join("log");
    std::fs::write(
        &kind,
        format!(
            "#!/bin/sh\necho \"$*\" >> {log}\ncase \"$1\" in get) printf 'flux-compat-a-1.37\\nkind\\nflux-compat-b-1.36\\n';; esac\n",
            log = log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&kind, std::fs::Permissions::from_mode(0o755)).unwrap();
    // No docker on this PATH: the image-cache sweep finds nothing, so only kind is exercised
    // (and no container of a concurrent run on this host is touched).
    let bin = tempfile::tempdir().unwrap();
    let _ = std::os::unix::fs::symlink(support::which("sh").unwrap(), bin.path().join("sh"));
    let path = bin.path().display().to_string();
    let out = flux_compat(&["gc", "--kind", kind.to_str().unwrap()], &path, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "flux-compat-a-1.37\nflux-compat-b-1.36\n"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(!calls.contains("--name kind"), "{calls}");
    let none = flux_compat(&["gc", "--kind", "kind"], &path, &[]);
    assert_eq!(none.status.code(), Some(3));
}
