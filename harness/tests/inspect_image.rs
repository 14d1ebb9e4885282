//! The image path end to end: OCI layouts built here (Go binaries built here, distroless-like
//! and Alpine-like file sets, a multi-arch index, a whiteout), pushed with skopeo to the CNCF
//! distribution registry on loopback, inspected through `flux-compat inspect image`; channel
//! checks with reports; a token-protected registry whose token must never reach the output.

mod support;

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

const TOKEN: &str = "tok-7f3a9c1e5b2d4f60a8e9";

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn go_build(name: &str, env: &[(&str, &str)], tags: &str) -> PathBuf {
    let root = support::root();
    let out = root.join("target/inspect-go-image").join(name);
    let mut cmd = Command::new(support::go("1.27.3"));
    cmd.current_dir(root.join("fixtures/go/fipsprobe"))
        .args(["build", "-trimpath", "-o"])
        .arg(&out)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", root.join("target/go-cache"))
        .env("GOPATH", root.join("target/go-path"))
        .env_remove("GOFIPS140")
        .env_remove("GOEXPERIMENT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    if !tags.is_empty() {
        cmd.arg(format!("-tags={tags}"));
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

enum E {
    File(&'static str, Vec<u8>, u32),
    Dir(&'static str),
    Link(&'static str, &'static str),
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for e in entries {
        let mut h = tar::Header::new_gnu();
        match e {
            E::File(p, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(*mode);
                b.append_data(&mut h, p, &data[..]).unwrap();
            }
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// An OCI image layout with one tag; `arches` > 1 makes it an index.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn new(dir: PathBuf) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout { dir }
    }
    fn blob(&self, data: &[u8]) -> (String, usize) {
        let d = sha(data);
        std::fs::write(self.dir.join("blobs/sha256").join(&d[7..]), data).unwrap();
        (d, data.len())
    }
    fn image(&self, layers: &[Vec<u8>], arch: &str, entrypoint: &[&str]) -> (String, usize) {
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|l| {
                let mut raw = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&l[..]), &mut raw)
                    .unwrap();
                sha(&raw)
            })
            .collect();
        let config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Entrypoint": entrypoint, "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "User": "65532:65532"},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let (cd, cs) = self.blob(config.to_string().as_bytes());
        let layer_descs: Vec<serde_json::Value> = layers
            .iter()
            .map(|l| {
                let (d, s) = self.blob(l);
                serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
            })
            .collect();
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": layer_descs,
        });
        self.blob(m.to_string().as_bytes())
    }
    fn tag(&self, tag: &str, desc: serde_json::Value) {
        let mut desc = desc;
        desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
        let idx = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [desc]});
        std::fs::write(self.dir.join("index.json"), idx.to_string()).unwrap();
    }
}

fn distroless_files() -> Vec<E> {
    vec![
        E::Dir("etc"),
        E::File("etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n".to_vec(), 0o644),
        E::File("etc/os-release", b"PRETTY_NAME=\"Distroless\"\nID=debian\n".to_vec(), 0o644),
        E::File("var/lib/dpkg/status.d/base", b"Package: base-files\n".to_vec(), 0o644),
        E::File("etc/ssl/certs/ca-certificates.crt", b"-----BEGIN CERTIFICATE-----\n".to_vec(), 0o644),
    ]
}

fn alpine_files(busybox: &[u8]) -> Vec<E> {
    vec![
        E::File("etc/alpine-release", b"3.22.0\n".to_vec(), 0o644),
        E::File(
            "etc/os-release",
            b"NAME=\"Alpine Linux\"\nPRETTY_NAME=\"Alpine Linux v3.22\"\n".to_vec(),
            0o644,
        ),
        E::File("bin/busybox", busybox.to_vec(), 0o755),
        E::Link("bin/sh", "/bin/busybox"),
        E::File("sbin/apk", busybox.to_vec(), 0o755),
        E::File("lib/apk/db/installed", b"P:musl\n".to_vec(), 0o644),
        E::File("tmp/to-be-deleted", b"x".to_vec(), 0o644),
    ]
}

struct Registry {
    child: Child,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_registry(storage: &Path, auth: bool) -> Registry {
    let port = free_port();
    let cfg = storage.with_extension(format!("{port}.yml"));
    let auth = if auth {
        "auth:\n  silly:\n    realm: http://127.0.0.1:9/token\n    service: flux-compat-test\n"
    } else {
        ""
    };
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            storage.display()
        ),
    )
    .unwrap();
    let child = Command::new(support::require("docker-registry"))
        .arg("serve")
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let reg = Registry { child, port };
    // Readiness: the listener accepting connections (bounded; the registry starts in milliseconds).
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "registry did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    reg
}

struct Env {
    _tmp: tempfile::TempDir,
    tmp: PathBuf,
    open: Registry,
    locked: Registry,
    /// Digest of each pushed tag.
    digests: std::collections::BTreeMap<&'static str, String>,
}

fn push(layout: &Path, port: u16, repo_tag: &str, all: bool) {
    let mut cmd = Command::new(support::require("skopeo"));
    cmd.args([
        "copy",
        "--quiet",
        "--preserve-digests",
        "--dest-tls-verify=false",
    ]);
    if all {
        cmd.arg("--all");
    }
    let o = cmd
        .arg(format!("oci:{}", layout.display()))
        .arg(format!("docker://127.0.0.1:{port}/{repo_tag}"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn setup() -> Env {
    {
        let tmp_dir = tempfile::tempdir().unwrap();
        let tmp = tmp_dir.path().to_path_buf();
        let storage = tmp.join("storage");
        let open = start_registry(&storage, false);
        let native = std::fs::read(go_build(
            "native",
            &[("CGO_ENABLED", "0"), ("GOFIPS140", "latest")],
            "",
        ))
        .unwrap();
        let boring = std::fs::read(go_build(
            "boring",
            &[("CGO_ENABLED", "1"), ("GOEXPERIMENT", "boringcrypto")],
            "",
        ))
        .unwrap();
        let plain = std::fs::read(go_build("plain", &[("CGO_ENABLED", "0")], "")).unwrap();
        let busybox = std::fs::read("/bin/true").unwrap();
        let mut digests = std::collections::BTreeMap::new();

        // Distroless native FIPS, multi-arch index (amd64 + arm64).
        let l = Layout::new(tmp.join("native"));
        let base = layer(&distroless_files());
        let app = layer(&[E::File(
            "usr/local/bin/source-controller",
            native.clone(),
            0o755,
        )]);
        let (amd, amd_s) = l.image(
            &[base.clone(), app.clone()],
            "amd64",
            &["source-controller"],
        );
        let (arm, arm_s) = l.image(&[base.clone(), app], "arm64", &["source-controller"]);
        let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": arm_s, "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": amd_s, "platform": {"os": "linux", "architecture": "amd64"}},
        ]});
        let (idx, idx_s) = l.blob(index.to_string().as_bytes());
        l.tag("v1", serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idx, "size": idx_s}));
        push(&l.dir, open.port, "fips/source-controller:v1", true);
        digests.insert("native", idx);

        // Distroless BoringCrypto without fipsonly: not FIPS for TLS.
        let l = Layout::new(tmp.join("boring"));
        let app = layer(&[E::File("usr/local/bin/kustomize-controller", boring, 0o755)]);
        let (m, s) = l.image(
            &[base, app],
            "amd64",
            &["/usr/local/bin/kustomize-controller"],
        );
        l.tag("v1", serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m, "size": s}));
        push(&l.dir, open.port, "fips/kustomize-controller:v1", false);
        digests.insert("boring", m);

        // Alpine-like, plain Go, entrypoint through a symlinked directory, a whiteout layer.
        let l = Layout::new(tmp.join("alpine"));
        let os = layer(&alpine_files(&busybox));
        let app = layer(&[
            E::File("opt/flux/manager", plain, 0o755),
            E::Link("usr/local/bin", "/opt/flux"),
        ]);
        let wh = layer(&[E::File("tmp/.wh.to-be-deleted", Vec::new(), 0o644)]);
        let (m, s) = l.image(
            &[os, app, wh],
            "amd64",
            &["/usr/local/bin/manager", "--log-level=info"],
        );
        l.tag("v1", serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m, "size": s}));
        push(&l.dir, open.port, "alpine/source-controller:v1", false);
        push(&l.dir, open.port, "alpine/kustomize-controller:v1", false);
        digests.insert("alpine", m);

        // The same storage behind an authenticating registry.
        let locked = start_registry(&storage, true);
        Env {
            _tmp: tmp_dir,
            tmp,
            open,
            locked,
            digests,
        }
    }
}

/// One test owns the registries so they are killed (Drop) even when a check panics; the checks
/// run in sequence against the same pushed images.
#[test]
fn image_inspection_end_to_end() {
    let e = setup();
    images_classify_with_base_and_digest(&e);
    bad_references_and_missing_platforms(&e);
    token_from_env_or_file_authenticates_and_never_appears_in_output(&e);
    channel_check_fails_a_non_fips_image_and_writes_reports(&e);
}

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(support::binary());
    c.args(args).env_remove("FLUX_COMPAT_MATRIX");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn images_classify_with_base_and_digest(e: &Env) {
    let p = e.open.port;
    let native = format!("127.0.0.1:{p}/fips/source-controller:v1");
    let boring = format!(
        "127.0.0.1:{p}/fips/kustomize-controller:v1@{}",
        e.digests["boring"]
    );
    let alpine = format!("127.0.0.1:{p}/alpine/source-controller:v1");
    let o = run(
        &[
            "inspect",
            "image",
            "--plain-http",
            "--format",
            "json",
            &native,
            &boring,
            &alpine,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["binary"]["family"], "native");
    assert_eq!(v[0]["binary"]["fipsModule"], "latest");
    assert_eq!(v[0]["digest"], e.digests["native"].as_str());
    assert_eq!(v[0]["platform"], "linux/amd64");
    assert_eq!(v[0]["binaryPath"], "/usr/local/bin/source-controller");
    assert_eq!(v[0]["base"]["kind"], "distroless");
    assert_eq!(v[1]["binary"]["family"], "boringcrypto");
    assert_eq!(v[1]["binary"]["goVersionRaw"], "go1.27.3-X:boringcrypto");
    assert_eq!(v[1]["base"]["kind"], "distroless");
    assert_eq!(v[2]["binary"]["family"], "none");
    assert_eq!(v[2]["binaryPath"], "/opt/flux/manager");
    assert_eq!(v[2]["base"]["kind"], "alpine");
    assert_eq!(v[2]["layers"], 3);
    let ev = v[2]["base"]["evidence"].to_string();
    assert!(ev.contains("3.22.0") && ev.contains("/bin/sh"), "{ev}");

    // Table output carries the evidence; arm64 is picked from the index when asked.
    let o = run(
        &[
            "inspect",
            "image",
            "--plain-http",
            "--platform",
            "linux/arm64",
            &native,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains("linux/arm64")
            && t.contains("native-fips: `DefaultGODEBUG` contains `fips140=on`"),
        "{t}"
    );
}

fn bad_references_and_missing_platforms(e: &Env) {
    let p = e.open.port;
    let o = run(&["inspect", "image", "--plain-http", "Not A Ref"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("invalid image reference"));
    let o = run(
        &[
            "inspect",
            "image",
            "--plain-http",
            "--platform",
            "linux",
            "x/y:z",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    let o = run(
        &[
            "inspect",
            "image",
            "--plain-http",
            "--platform",
            "linux/s390x",
            &format!("127.0.0.1:{p}/fips/source-controller:v1"),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("available: linux/arm64, linux/amd64"),
        "{}",
        text(&o)
    );
    let o = run(
        &[
            "inspect",
            "image",
            "--plain-http",
            &format!("127.0.0.1:{p}/nope/nothing:v1"),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("answered 404"), "{}", text(&o));
}

fn token_from_env_or_file_authenticates_and_never_appears_in_output(e: &Env) {
    let r = format!("127.0.0.1:{}/fips/source-controller:v1", e.locked.port);
    let o = run(&["inspect", "image", "--plain-http", &r], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("asks for credentials"), "{}", text(&o));

    for fmt in ["table", "json"] {
        let o = run(
            &[
                "-vvv",
                "inspect",
                "image",
                "--plain-http",
                "--format",
                fmt,
                "--registry-token-env",
                "FC_TEST_TOKEN",
                &r,
            ],
            &[("FC_TEST_TOKEN", TOKEN), ("RUST_LOG", "trace")],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(text(&o).contains("native"));
        assert!(!text(&o).contains(TOKEN), "token leaked: {}", text(&o));
    }
    let f = e.tmp.join("token");
    std::fs::write(&f, format!("{TOKEN}\n")).unwrap();
    let o = run(
        &[
            "inspect",
            "image",
            "--plain-http",
            "--registry-token-file",
            f.to_str().unwrap(),
            &r,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!text(&o).contains(TOKEN));
    // A missing variable is a usage error that names the variable, not a value.
    let o = run(
        &[
            "inspect",
            "image",
            "--plain-http",
            "--registry-token-env",
            "FC_UNSET_VAR",
            &r,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("`FC_UNSET_VAR` is not set"));
}

fn channel_check_fails_a_non_fips_image_and_writes_reports(e: &Env) {
    let dir = e.tmp.join("matrix");
    std::fs::create_dir_all(&dir).unwrap();
    // The matrix resolves scenarios and their fixtures relative to itself. The library names the
    // real channels, so this test's own channels get the minimal shared scenario instead.
    std::os::unix::fs::symlink(
        support::root().join("fixtures/invalid/_common/scenarios"),
        dir.join("scenarios"),
    )
    .unwrap();
    std::os::unix::fs::symlink(support::root().join("fixtures"), dir.join("fixtures")).unwrap();
    let p = e.open.port;
    let matrix = format!(
        r#"apiVersion: flux-compat/v1alpha1
kind: Matrix
kindVersion: v0.33.0
kubernetes:
  - minor: "1.37"
    version: v1.37.0
    nodeImage: kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5
flux:
  - version: v2.9.4
components: [source-controller, kustomize-controller]
channels:
  - name: fips-test
    registry: 127.0.0.1:{p}/fips
    operatorVariant: enterprise-distroless-fips
    fips: true
    base: distroless
    releases:
      - flux: v2.9.4
        images:
          source-controller: {{tag: v1, digest: "{n}"}}
          kustomize-controller: {{tag: v1, digest: "{b}"}}
  - name: alpine-test
    registry: 127.0.0.1:{p}/alpine
    operatorVariant: upstream-alpine
    fips: false
    base: alpine
    releases:
      - flux: v2.9.4
        images:
          source-controller: {{tag: v1, digest: "{a}"}}
          kustomize-controller: {{tag: v1, digest: "{a}"}}
providers:
  - name: kind
    type: kind
scenarios:
  directory: scenarios
"#,
        n = e.digests["native"],
        b = e.digests["boring"],
        a = e.digests["alpine"],
    );
    let mfile = dir.join("matrix.yaml");
    std::fs::write(&mfile, matrix).unwrap();
    let m = mfile.to_str().unwrap();
    let reports = dir.join("reports");
    let o = run(
        &[
            "--matrix",
            m,
            "inspect",
            "image",
            "--plain-http",
            "--channel",
            "fips-test",
            "--flux",
            "v2.9.4",
            "--report",
            reports.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains(
            "channel `fips-test` declares FIPS but `kustomize-controller` is `boringcrypto`"
        ),
        "{t}"
    );
    let results = std::fs::read_to_string(reports.join("results.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&results).unwrap();
    let cases = v["cells"][0]["scenarios"].as_array().unwrap();
    let status = |n: &str| cases.iter().find(|c| c["name"] == n).unwrap()["status"].clone();
    assert_eq!(status("source-controller/fips"), "pass");
    assert_eq!(status("source-controller/base"), "pass");
    assert_eq!(status("kustomize-controller/fips"), "fail");
    assert_eq!(status("kustomize-controller/base"), "pass");
    let sc = cases
        .iter()
        .find(|c| c["name"] == "source-controller/fips")
        .unwrap();
    assert_eq!(sc["properties"]["family"], "native");
    assert_eq!(sc["properties"]["goVersion"], "go1.27.3");
    assert_eq!(sc["properties"]["fipsModule"], "latest");
    assert_eq!(sc["properties"]["digest"], e.digests["native"].as_str());
    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    assert!(
        junit.contains("kustomize-controller/fips") && junit.contains("<failure"),
        "{junit}"
    );

    let o = run(
        &[
            "--matrix",
            m,
            "inspect",
            "image",
            "--plain-http",
            "--channel",
            "alpine-test",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(
        &[
            "--matrix",
            m,
            "inspect",
            "image",
            "--plain-http",
            "--channel",
            "nope",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("unknown channel `nope` (known: `fips-test`, `alpine-test`)"),
        "{}",
        text(&o)
    );
}
