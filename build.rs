//! Records the git commit the harness is built from (`FLUX_COMPAT_COMMIT` at compile time), so
//! results and attestations name the exact harness. An explicit `FLUX_COMPAT_COMMIT` in the build
//! environment wins (a source tarball has no `.git`); without either the commit stays unknown.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn is_commit(s: &str) -> bool {
    (7..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn main() {
    println!("cargo:rerun-if-env-changed=FLUX_COMPAT_COMMIT");
    let commit = match std::env::var("FLUX_COMPAT_COMMIT") {
        Ok(c) if !c.is_empty() => Some(c),
        _ => {
            // Rebuild when HEAD moves: the HEAD file, the branch it points at, and packed refs.
            for path in ["HEAD", "packed-refs"]
                .into_iter()
                .map(String::from)
                .chain(git(&["symbolic-ref", "-q", "HEAD"]))
            {
                if let Some(p) = git(&["rev-parse", "--git-path", &path])
                    && std::path::Path::new(&p).exists()
                {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
            git(&["rev-parse", "HEAD"])
        }
    };
    match commit.filter(|c| is_commit(c)) {
        Some(c) => println!("cargo:rustc-env=FLUX_COMPAT_COMMIT={c}"),
        None => println!(
            "cargo:warning=the git commit of this build is unknown; results will not name it"
        ),
    }
}
