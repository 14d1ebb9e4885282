//! Inspector benchmark (run with `cargo bench --bench inspect`): classify a ~60 MB Go binary
//! (target < 100 ms) next to `go version -m` on the same file, and inspect a 5-layer ~50 MB image
//! from a loopback registry (target < 1 s). Prints a table; times are medians.

#[path = "../tests/support/mod.rs"]
mod support;

use flux_compat::fips::inspect::image::{Credentials, Platform, Registry, inspect_image};
use flux_compat::fips::inspect::inspect_file;
use sha2::{Digest, Sha256};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// (min, median) of `n` timed runs after one warm-up. The minimum is the figure least
/// distorted by other load on a shared machine; the median is printed beside it.
fn time<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let _ = f();
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    v.sort();
    (v[0], v[v.len() / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Deterministic incompressible bytes (xorshift), so sizes mean what they say.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn go_env(cmd: &mut Command, root: &Path) {
    cmd.env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", root.join("target/go-cache"))
        .env("GOPATH", root.join("target/go-path"));
}

fn big_binary(root: &Path) -> PathBuf {
    let dir = root.join("target/bench-go/bigblob");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["main.go", "go.mod"] {
        std::fs::copy(root.join("fixtures/go/bigblob").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("blob.bin"), noise(54 << 20, 7)).unwrap();
    let out = dir.join("bigblob");
    let mut cmd = Command::new(support::go("1.27.3"));
    cmd.current_dir(&dir)
        .args(["build", "-trimpath", "-o"])
        .arg(&out);
    go_env(&mut cmd, root);
    cmd.env("CGO_ENABLED", "0").env("GOFIPS140", "latest");
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (p, d) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o755);
        b.append_data(&mut h, p, *d).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// A 5-layer OCI layout: four ~11 MB data layers and the Go binary on top.
fn layout(dir: &Path, binary: &[u8]) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let put = |d: &[u8]| {
        let s = sha(d);
        std::fs::write(dir.join("blobs/sha256").join(&s[7..]), d).unwrap();
        serde_json::json!({"digest": s, "size": d.len()})
    };
    let mut layers: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            let data = noise(11 << 20, i + 11);
            let name = format!("usr/share/data-{i}.bin");
            tar_gz(&[(name.as_str(), &data[..])])
        })
        .collect();
    layers.push(tar_gz(&[("usr/local/bin/manager", binary)]));
    let descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            let mut d = put(l);
            d["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip".into();
            d
        })
        .collect();
    let cfg = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/usr/local/bin/manager"]}, "rootfs": {"type": "layers", "diff_ids": []}});
    let mut c = put(cfg.to_string().as_bytes());
    c["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": descs});
    let mut md = put(m.to_string().as_bytes());
    md["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    md["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "v1"});
    let idx = serde_json::json!({"schemaVersion": 2, "manifests": [md]});
    std::fs::write(dir.join("index.json"), idx.to_string()).unwrap();
}

fn main() {
    let root = support::root();
    let big = big_binary(&root);
    let size = std::fs::metadata(&big).unwrap().len();
    let ours = time(20, || inspect_file(&big).unwrap());
    let go = support::go("1.27.3");
    let theirs = time(10, || {
        let o = Command::new(&go)
            .args(["version", "-m"])
            .arg(&big)
            .env("GOTOOLCHAIN", "local")
            .output()
            .unwrap();
        assert!(o.status.success());
    });

    // Image: registry on loopback, 5 layers pushed with skopeo.
    let tmp = tempfile::tempdir().unwrap();
    let small = std::fs::read(root.join("target/inspect-go-image/native"))
        .unwrap_or_else(|_| std::fs::read(&big).unwrap());
    layout(&tmp.path().join("layout"), &small);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = tmp.path().join("registry.yml");
    std::fs::write(&cfg, format!("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n", tmp.path().join("storage").display())).unwrap();
    let mut child = Command::new(support::require("docker-registry"))
        .arg("serve")
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() && t0.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = Command::new(support::require("skopeo"))
        .args([
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}", tmp.path().join("layout").display()))
        .arg(format!("docker://127.0.0.1:{port}/bench/image:v1"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let image_bytes: u64 = std::fs::read_dir(tmp.path().join("layout/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reference = format!("127.0.0.1:{port}/bench/image:v1");
    let platform = Platform::parse("linux/amd64").unwrap();
    let image = time(5, || {
        let reg = Registry::new(true, Credentials::default());
        let i = inspect_image(&rt, &reg, &reference, &platform).unwrap();
        assert_eq!(i.layers, 5);
    });
    let _ = child.kill();
    let _ = child.wait();

    println!("times: min / median");
    println!(
        "| benchmark | size | flux-compat | go version -m | flux-compat ÷ go (min) | target |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| classify Go binary | {:.1} MB | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {:.2} | < 100 ms |",
        size as f64 / 1e6,
        ms(ours.0),
        ms(ours.1),
        ms(theirs.0),
        ms(theirs.1),
        ms(ours.0) / ms(theirs.0)
    );
    println!(
        "| inspect 5-layer image (loopback registry) | {:.1} MB | {:.1} / {:.1} ms | - | - | < 1000 ms |",
        image_bytes as f64 / 1e6,
        ms(image.0),
        ms(image.1)
    );
}
