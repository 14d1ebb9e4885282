//! Real Go binaries, built here in every FIPS variant with three toolchains, must classify
//! correctly (family, Go version, module, CGO, linkage) through the library and the CLI, agree
//! with `go version`, survive zeroed section headers, and bad input must give clear errors.

mod support;

use flux_compat::fips::inspect::classify::Linkage;
use flux_compat::fips::inspect::{Family, inspect_bytes, inspect_file};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[derive(Clone, Copy)]
struct Spec {
    name: &'static str,
    go: &'static str,
    dir: &'static str,
    env: &'static [(&'static str, &'static str)],
    tags: &'static str,
    static_ext: bool,
    family: Family,
    module: Option<&'static str>,
    cgo: bool,
    linkage: Linkage,
}

const CGO0: &[(&str, &str)] = &[("CGO_ENABLED", "0")];
const CGO1: &[(&str, &str)] = &[("CGO_ENABLED", "1")];
const BORING: &[(&str, &str)] = &[("CGO_ENABLED", "1"), ("GOEXPERIMENT", "boringcrypto")];
const LATEST: &[(&str, &str)] = &[("CGO_ENABLED", "0"), ("GOFIPS140", "latest")];
const V100: &[(&str, &str)] = &[("CGO_ENABLED", "0"), ("GOFIPS140", "v1.0.0")];

const fn spec(
    name: &'static str,
    go: &'static str,
    env: &'static [(&'static str, &'static str)],
    family: Family,
    module: Option<&'static str>,
) -> Spec {
    let cgo = matches!(family, Family::Boring | Family::BoringFipsOnly);
    Spec {
        name,
        go,
        dir: "fipsprobe",
        env,
        tags: if matches!(family, Family::BoringFipsOnly) {
            "fipsonly"
        } else {
            ""
        },
        static_ext: false,
        family,
        module,
        cgo,
        linkage: if cgo {
            Linkage::Dynamic
        } else {
            Linkage::Static
        },
    }
}

fn specs() -> Vec<Spec> {
    let mut v = Vec::new();
    for go in ["1.27.3", "1.24.11"] {
        v.push(spec("plain", go, CGO0, Family::None, None));
        v.push(Spec {
            cgo: true,
            linkage: Linkage::Dynamic,
            ..spec("plain-cgo", go, CGO1, Family::None, None)
        });
        v.push(spec("boring", go, BORING, Family::Boring, None));
        v.push(spec("boringfips", go, BORING, Family::BoringFipsOnly, None));
        v.push(Spec {
            static_ext: true,
            linkage: Linkage::Static,
            ..spec(
                "boringfips-static",
                go,
                BORING,
                Family::BoringFipsOnly,
                None,
            )
        });
        v.push(spec(
            "fips-latest",
            go,
            LATEST,
            Family::Native,
            Some("latest"),
        ));
        v.push(spec(
            "fips-v1.0.0",
            go,
            V100,
            Family::Native,
            Some("v1.0.0-c2097c7c"),
        ));
        v.push(Spec {
            dir: "fipsprobe-godebug",
            ..spec("godebug-on", go, CGO0, Family::Native, Some("latest"))
        });
    }
    let go = "1.22.10";
    v.push(spec("plain", go, CGO0, Family::None, None));
    v.push(spec("boring", go, BORING, Family::Boring, None));
    v.push(spec("boringfips", go, BORING, Family::BoringFipsOnly, None));
    v.push(Spec {
        static_ext: true,
        linkage: Linkage::Static,
        ..spec(
            "boringfips-static",
            go,
            BORING,
            Family::BoringFipsOnly,
            None,
        )
    });
    v
}

struct Built {
    spec: Spec,
    stripped: bool,
    path: PathBuf,
}

impl Built {
    fn label(&self) -> String {
        format!(
            "go{}/{}{}",
            self.spec.go,
            self.spec.name,
            if self.stripped { "-stripped" } else { "" }
        )
    }
}

fn out_dir() -> PathBuf {
    support::root().join("target/inspect-go")
}

fn go_build(spec: &Spec, stripped: bool, out: &Path) -> Result<(), String> {
    let root = support::root();
    let mut ld = Vec::new();
    if stripped {
        ld.push("-s -w".to_string());
    }
    if spec.static_ext {
        ld.push("-linkmode external -extldflags -static".to_string());
    }
    let mut cmd = Command::new(support::go(spec.go));
    cmd.current_dir(root.join("fixtures/go").join(spec.dir))
        .args(["build", "-trimpath", "-o"])
        .arg(out)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", root.join("target/go-cache"))
        .env("GOPATH", root.join("target/go-path"))
        .env_remove("GOFIPS140")
        .env_remove("GOEXPERIMENT")
        .env_remove("GODEBUG");
    for (k, v) in spec.env {
        cmd.env(k, v);
    }
    if !spec.tags.is_empty() {
        cmd.arg(format!("-tags={}", spec.tags));
    }
    if !ld.is_empty() {
        cmd.arg(format!("-ldflags={}", ld.join(" ")));
    }
    let o = cmd.output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    Ok(())
}

/// Every variant, plain and stripped, built once per test process on a few threads.
fn built() -> &'static Vec<Built> {
    static BUILT: OnceLock<Vec<Built>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = out_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let jobs: Vec<(Spec, bool)> = specs()
            .into_iter()
            .flat_map(|s| [(s, false), (s, true)])
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some((spec, stripped)) = jobs.get(i).copied() else {
                            break;
                        };
                        let path = dir.join(format!(
                            "{}-{}{}",
                            spec.go,
                            spec.name,
                            if stripped { "-stripped" } else { "" }
                        ));
                        if let Err(e) = go_build(&spec, stripped, &path) {
                            panic!("building go{} {}: {e}", spec.go, spec.name);
                        }
                        results.lock().unwrap().push(Built {
                            spec,
                            stripped,
                            path,
                        });
                    }
                });
            }
        });
        let mut v = results.into_inner().unwrap();
        v.sort_by_key(|b| b.label());
        v
    })
}

#[test]
fn every_variant_classifies_correctly() {
    let mut problems = Vec::new();
    for b in built() {
        let label = b.label();
        let i = match inspect_file(&b.path) {
            Ok(i) => i,
            Err(e) => {
                problems.push(format!("{label}: {e}"));
                continue;
            }
        };
        // The sparse file reader must conclude exactly what a whole-file read concludes.
        let whole = inspect_bytes(&std::fs::read(&b.path).unwrap()).unwrap();
        if whole.evidence != i.evidence || whole.warnings != i.warnings {
            problems.push(format!("{label}: sparse read differs from whole read"));
        }
        let s = &b.spec;
        if i.family != s.family {
            problems.push(format!("{label}: family {} != {}", i.family, s.family));
        }
        if i.go_version != format!("go{}", s.go) {
            problems.push(format!("{label}: go version {}", i.go_version));
        }
        let boring = matches!(s.family, Family::Boring | Family::BoringFipsOnly);
        if boring != (i.experiments == ["boringcrypto"]) {
            problems.push(format!("{label}: experiments {:?}", i.experiments));
        }
        if i.fips_module.as_deref() != s.module {
            problems.push(format!(
                "{label}: module {:?} != {:?}",
                i.fips_module, s.module
            ));
        }
        if i.cgo != Some(s.cgo) {
            problems.push(format!("{label}: cgo {:?}", i.cgo));
        }
        if i.linkage != s.linkage {
            problems.push(format!("{label}: linkage {:?}", i.linkage));
        }
        // Every family conclusion carries evidence of its own.
        let has = |c: &str| i.evidence.iter().any(|e| e.conclusion == c);
        let needed: &[&str] = match s.family {
            Family::BoringFipsOnly => &["boringcrypto", "fipsonly"],
            Family::Boring => &["boringcrypto"],
            Family::Native => &["native-fips", "fips-module"],
            Family::None => &["standard-crypto"],
        };
        for c in needed
            .iter()
            .chain(&["go-binary", "go-version", "cgo", "linkage"])
        {
            if !has(c) {
                problems.push(format!("{label}: no `{c}` evidence"));
            }
        }
        // pclntab survives -s -w: the fipsonly marker must come from it, not only the amd64 bytes.
        if s.family == Family::BoringFipsOnly
            && !i
                .evidence
                .iter()
                .any(|e| e.conclusion == "fipsonly" && e.source == "pclntab")
        {
            problems.push(format!("{label}: fipsonly not found in pclntab"));
        }
        if s.family == Family::Boring && !i.warnings.iter().any(|w| w.contains("fipsonly")) {
            problems.push(format!(
                "{label}: no warning for boringcrypto without fipsonly"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(built().len(), specs().len() * 2);
}

/// The version string must be exactly what the Go toolchain itself reads (both spellings).
#[test]
fn version_strings_match_go_version() {
    let go = support::go("1.27.3");
    let paths: Vec<&PathBuf> = built().iter().map(|b| &b.path).collect();
    let o = Command::new(&go)
        .arg("version")
        .args(&paths)
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.lines().count(), paths.len(), "{text}");
    for (line, b) in text.lines().zip(built()) {
        let theirs = line.split_once(": ").map(|(_, v)| v.trim()).unwrap();
        let ours = inspect_file(&b.path).unwrap().go_version_raw;
        assert_eq!(ours, theirs, "{}", b.label());
    }
    assert!(text.contains("go1.27.3-X:boringcrypto") && text.contains("go1.24.11 X:boringcrypto"));
}

/// Zero the section header fields and table: the build info must then come from the segment scan
/// and the pclntab from the read-only segment scan, with the same classification.
fn zero_section_headers(data: &mut [u8]) {
    let shoff = u64::from_le_bytes(data[40..48].try_into().unwrap()) as usize;
    let shentsize = u16::from_le_bytes([data[58], data[59]]) as usize;
    let shnum = u16::from_le_bytes([data[60], data[61]]) as usize;
    let end = (shoff + shentsize * shnum).min(data.len());
    data[shoff..end].fill(0);
    data[40..48].fill(0);
    data[58..64].fill(0);
}

#[test]
fn zeroed_section_headers_use_the_segment_fallback() {
    let picks = [
        "go1.27.3/boringfips-static-stripped",
        "go1.27.3/fips-v1.0.0",
        "go1.22.10/boring",
    ];
    for label in picks {
        let b = built().iter().find(|b| b.label() == label).unwrap();
        let mut data = std::fs::read(&b.path).unwrap();
        zero_section_headers(&mut data);
        let copy = out_dir().join(format!("{}-noshdr", label.replace('/', "-")));
        std::fs::write(&copy, &data).unwrap();
        let i = inspect_bytes(&data).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(i.family, b.spec.family, "{label}");
        assert_eq!(i.fips_module.as_deref(), b.spec.module, "{label}");
        assert!(
            i.evidence
                .iter()
                .any(|e| e.detail.contains("scan of the writable segment")),
            "{label}: {:?}",
            i.evidence
        );
        let syms = i.symbols.as_ref().expect("pclntab found by segment scan");
        assert_eq!(syms.located, "segment-scan", "{label}");
    }
}

#[test]
fn cli_prints_table_with_evidence_and_json() {
    let pick = |l: &str| {
        built()
            .iter()
            .find(|b| b.label() == l)
            .unwrap()
            .path
            .clone()
    };
    let a = pick("go1.27.3/boringfips-stripped");
    let n = pick("go1.24.11/fips-v1.0.0");
    let o = Command::new(support::binary())
        .args(["inspect", "binary"])
        .arg(&a)
        .arg(&n)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains("boringcrypto+fipsonly") && t.contains("go1.27.3-X:boringcrypto"),
        "{t}"
    );
    assert!(
        t.contains("fipsonly: function `crypto/tls/fipsonly.init.0` [pclntab]"),
        "{t}"
    );
    assert!(t.contains("v1.0.0-c2097c7c"), "{t}");
    let o = Command::new(support::binary())
        .args(["inspect", "binary", "--format", "json"])
        .arg(&n)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["family"], "native");
    assert_eq!(v[0]["nativeMode"], "on");
    assert_eq!(v[0]["goVersion"], "go1.24.11");
    assert_eq!(v[0]["fipsModule"], "v1.0.0-c2097c7c");
    assert!(v[0]["evidence"].as_array().unwrap().len() >= 5);
}

#[test]
fn bad_input_gives_clear_findings_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let real = &built()
        .iter()
        .find(|b| b.label() == "go1.27.3/plain")
        .unwrap()
        .path;
    let data = std::fs::read(real).unwrap();
    let i = inspect_bytes(&data).unwrap();
    let off = i.build_info.offset as usize;

    // Truncations at many points: never a panic, always an error or a (partial) success.
    for cut in [
        0,
        3,
        16,
        63,
        64,
        200,
        4096,
        data.len() / 2,
        off + 20,
        off + 40,
    ] {
        let _ = inspect_bytes(&data[..cut.min(data.len())]);
    }
    // Cut inside the build info: the tables and segments past the cut say "truncated".
    let e = inspect_bytes(&data[..off + 20]).unwrap_err().to_string();
    assert!(e.starts_with("truncated: "), "{e}");

    // A length past the end of the file.
    let mut long = data.clone();
    long[off + 32..off + 42]
        .copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0]);
    let e = inspect_bytes(&long).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "malformed build info at offset {}: length ",
            off + 32
        )) && e.ends_with("runs past the end of the file"),
        "{e}"
    );
    // A varint that never ends.
    let mut bad = data.clone();
    bad[off + 32..off + 43].fill(0xff);
    let e = inspect_bytes(&bad).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "malformed build info at offset {}: varint overflows 64 bits",
            off + 32
        )
    );

    let truncated = dir.path().join("truncated");
    std::fs::write(&truncated, &data[..off + 20]).unwrap();
    let corrupt = dir.path().join("corrupt");
    std::fs::write(&corrupt, &bad).unwrap();
    let not_elf = dir.path().join("notes.txt");
    std::fs::write(&not_elf, "hello").unwrap();
    let not_go = dir.path().join("true");
    std::fs::copy("/bin/true", &not_go).unwrap();
    let o = Command::new(support::binary())
        .args(["inspect", "binary"])
        .args([&truncated, &corrupt, &not_elf, &not_go])
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    // The missing path is bad usage (2); the others are findings about their files.
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("error: `") && err.contains("missing`"),
        "{err}"
    );
    assert!(err.contains("finding: `"), "{err}");
    assert!(
        err.contains("notes.txt`: not a Go binary: not an ELF file"),
        "{err}"
    );
    assert!(
        err.contains("true`: not a Go binary: no Go build info blob found"),
        "{err}"
    );
    assert!(err.contains("truncated`: truncated: "), "{err}");
    assert!(
        err.contains(&format!(
            "corrupt`: malformed build info at offset {}",
            off + 32
        )),
        "{err}"
    );
    assert!(err.contains("missing`"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Runs the CLI, killing it if it has not finished within `secs` (a FIFO must not hang it).
fn inspect_cli(args: &[&Path], secs: u64) -> std::process::Output {
    let mut child = Command::new(support::binary())
        .args(["inspect", "binary", "--format", "json"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("inspect binary did not finish within {secs}s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn fifos_truncation_huge_files_and_non_go_files_leave_other_results_intact() {
    let dir = tempfile::tempdir().unwrap();
    let real = &built()
        .iter()
        .find(|b| b.label() == "go1.27.3/plain")
        .unwrap()
        .path;
    let data = std::fs::read(real).unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let half = dir.path().join("half");
    std::fs::write(&half, &data[..data.len() / 2]).unwrap();
    let not_go = dir.path().join("true");
    std::fs::copy("/bin/true", &not_go).unwrap();
    // A real binary followed by a terabyte of holes: nothing may be allocated by file size.
    let huge = dir.path().join("huge");
    std::fs::copy(real, &huge).unwrap();
    let huge_ok = std::fs::OpenOptions::new()
        .write(true)
        .open(&huge)
        .and_then(|f| f.set_len(1 << 40))
        .is_ok();

    let o = inspect_cli(&[&fifo, &half, &not_go, &huge, real], 60);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let err = |i: usize, k: &str| v[i][k].as_str().unwrap_or("").to_string();
    assert!(
        err(0, "error").contains("is a FIFO, not a regular file"),
        "{v:#}"
    );
    assert!(err(1, "finding").starts_with("truncated: "), "{v:#}");
    assert!(err(2, "finding").contains("not a Go binary"), "{v:#}");
    if huge_ok {
        assert_eq!(v[3]["goVersion"], "go1.27.3", "{v:#}");
    }
    assert_eq!(v[4]["goVersion"], "go1.27.3", "{v:#}");
    assert_eq!(v[4]["family"], "none");

    // Without the FIFO only findings remain: exit 1, with the reason on stderr.
    let o = inspect_cli(&[&not_go, real], 60);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("finding: `") && e.contains("no Go build info blob found"),
        "{e}"
    );
}
