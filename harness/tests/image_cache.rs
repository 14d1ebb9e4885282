//! The image cache for real: a distribution registry image built locally (no registry is
//! reachable here) runs twice through testcontainers, once as the "upstream" holding an image and
//! once as the pull-through mirror. Pulling twice through the mirror fetches each blob from
//! upstream once, and the mirror's own counters say so.

#[allow(unused_imports, clippy::type_complexity)]
// the shared support also carries the API server double
mod support;

use flux_compat::cluster::docker::Docker;
use flux_compat::cluster::mirror::{MirrorSpec, Mirrors, Upstream};
use sha2::{Digest, Sha256};
use std::process::{Command, Stdio};
use std::time::Duration;
use testcontainers::core::{ContainerPort, IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};
use tokio_util::sync::CancellationToken;

const IMAGE: &str = "flux-compat-test/registry";
const TAG: &str = "local";

/// Build the registry image from the host's `docker-registry` binary and the libraries `ldd`
/// lists, with `docker import` (no base image to pull).
fn build_registry_image() -> Result<(), String> {
    let exists = Command::new("docker")
        .args(["image", "inspect", &format!("{IMAGE}:{TAG}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?
        .success();
    if exists {
        return Ok(());
    }
    let bin = support::which("docker-registry")
        .ok_or("`docker-registry` is not on PATH: run scripts/setup-test-deps.sh")?;
    let ldd = Command::new("ldd")
        .arg(&bin)
        .output()
        .map_err(|e| e.to_string())?;
    let mut files = vec![bin.clone()];
    for l in String::from_utf8_lossy(&ldd.stdout).lines() {
        if let Some(p) = l.split_whitespace().find(|w| w.starts_with('/')) {
            files.push(p.into());
        }
    }
    let mut ar = tar::Builder::new(Vec::new());
    ar.follow_symlinks(true);
    for f in &files {
        let inside = f.strip_prefix("/").unwrap();
        ar.append_path_with_name(f, inside)
            .map_err(|e| e.to_string())?;
    }
    let config = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: :5000\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(config.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    ar.append_data(&mut h, "etc/docker/registry/config.yml", config.as_bytes())
        .map_err(|e| e.to_string())?;
    for d in ["var/lib/registry", "tmp"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o1777);
        h.set_size(0);
        h.set_cksum();
        ar.append_data(&mut h, d, std::io::empty())
            .map_err(|e| e.to_string())?;
    }
    let data = ar.into_inner().map_err(|e| e.to_string())?;
    let mut child = Command::new("docker")
        .args([
            "import",
            "--change",
            r#"ENTRYPOINT ["/usr/bin/docker-registry"]"#,
            "--change",
            r#"CMD ["serve", "/etc/docker/registry/config.yml"]"#,
            "-",
            &format!("{IMAGE}:{TAG}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&data)
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(())
}

fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// Push a two-blob image (config + one layer) with the registry HTTP API.
async fn push(client: &reqwest::Client, base: &str, repo: &str, tag: &str) -> Vec<String> {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layer = b"not really a tarball, but the registry stores bytes".to_vec();
    let mut digests = Vec::new();
    for blob in [&config, &layer] {
        let d = digest(blob);
        let r = client
            .post(format!("{base}/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "start upload");
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        let url = if loc.starts_with("http") {
            loc
        } else {
            format!("{base}{loc}")
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let r = client
            .put(format!("{url}{sep}digest={d}"))
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "finish upload");
        digests.push(d);
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": digests[0]},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer.len(), "digest": digests[1]}]
    });
    let r = client
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header(
            "content-type",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .body(serde_json::to_vec(&manifest).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "put manifest");
    digests
}

/// Pull like containerd does: resolve the tag, then fetch every blob.
async fn pull(client: &reqwest::Client, base: &str, repo: &str, tag: &str) -> Vec<String> {
    let r = client
        .get(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "manifest through the mirror");
    let m: serde_json::Value = r.json().await.unwrap();
    let mut got = Vec::new();
    let mut blobs = vec![m["config"]["digest"].as_str().unwrap().to_string()];
    blobs.extend(
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string()),
    );
    for d in blobs {
        let r = client
            .get(format!("{base}/v2/{repo}/blobs/{d}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "blob {d} through the mirror");
        let body = r.bytes().await.unwrap();
        assert_eq!(digest(&body), d, "content is intact");
        got.push(d);
    }
    got
}

/// Blob GETs the upstream registry logged, in order.
async fn blob_gets(c: &testcontainers::ContainerAsync<GenericImage>) -> Vec<String> {
    let log = String::from_utf8_lossy(&c.stderr_to_vec().await.unwrap()).into_owned();
    log.lines()
        .filter(|l| l.contains("response completed") && l.contains("http.request.method=GET"))
        .filter_map(|l| l.split("http.request.uri=").nth(1))
        .map(|u| {
            u.split(' ')
                .next()
                .unwrap_or("")
                .trim_matches('"')
                .to_string()
        })
        .filter(|u| u.contains("/blobs/sha256:"))
        .collect()
}

#[tokio::test]
async fn the_mirror_pulls_each_blob_from_upstream_once() {
    if !support::docker_available() {
        eprintln!("ignored: no docker engine answers here; the image cache runs as containers");
        return;
    }
    build_registry_image().expect("build the local registry image");
    let tag = format!("it{}", std::process::id());
    let net = format!("flux-compat-{tag}");
    let out = Command::new("docker")
        .args(["network", "create", &net])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let result = async {
        let upstream_name = format!("flux-compat-{tag}-upstream");
        let upstream = GenericImage::new(IMAGE, TAG)
            .with_exposed_port(5000.tcp())
            .with_wait_for(WaitFor::message_on_stderr("listening on"))
            .with_container_name(&upstream_name)
            .with_network(&net)
            .start()
            .await
            .expect("upstream registry starts");
        let up_port = upstream
            .get_host_port_ipv4(ContainerPort::Tcp(5000))
            .await
            .unwrap();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let pushed = push(
            &client,
            &format!("http://127.0.0.1:{up_port}"),
            "fluxcd/app",
            "v1",
        )
        .await;

        let mirrors = Mirrors::start(&MirrorSpec {
            image: format!("{IMAGE}:{TAG}"),
            name_prefix: format!("flux-compat-{tag}"),
            upstreams: vec![Upstream {
                host: "upstream.test".into(),
                remote_url: format!("http://{upstream_name}:5000"),
            }],
            network: Some(net.clone()),
            startup_timeout: Duration::from_secs(60),
        })
        .await
        .expect("mirror starts");
        let m = &mirrors.mirrors[0];
        let base = format!("http://127.0.0.1:{}", m.host_port);
        let first = pull(&client, &base, "fluxcd/app", "v1").await;
        // The mirror stores what it fetched in the background; let it finish.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after_first = mirrors.stats().await.expect("mirror counters")["upstream.test"];
        let upstream_log_first = blob_gets(&upstream).await;
        let second = pull(&client, &base, "fluxcd/app", "v1").await;
        assert_eq!(first, pushed);
        assert_eq!(second, pushed);

        let stats = mirrors.stats().await.expect("mirror counters");
        let upstream_log_second = blob_gets(&upstream).await;
        // The upstream's own log: the first pull fetched every blob, the second none.
        for d in &pushed {
            assert!(
                upstream_log_first.iter().any(|u| u.ends_with(d.as_str())),
                "{upstream_log_first:?}"
            );
        }
        assert_eq!(
            upstream_log_first, upstream_log_second,
            "the second pull went upstream for blobs"
        );
        // The mirror's counters agree: bytes from upstream came with the first pull only.
        let s = stats["upstream.test"];
        assert!(after_first.bytes_pulled > 0, "{after_first:?}");
        assert_eq!(s.bytes_pulled, after_first.bytes_pulled, "{s:?}");
        assert!(s.blob_requests > after_first.blob_requests, "{s:?}");
        let props = flux_compat::cluster::mirror::stats_properties(&stats);
        assert_eq!(
            props["imageCache.upstream.test.bytesPulledFromUpstream"],
            after_first.bytes_pulled.to_string()
        );

        // The kind side: hosts.toml for containerd, and attaching the mirror to a network.
        let hosts = tempfile::tempdir().unwrap();
        mirrors.write_hosts_dir(hosts.path()).unwrap();
        let toml = std::fs::read_to_string(hosts.path().join("upstream.test/hosts.toml")).unwrap();
        assert!(
            toml.contains(&format!("[host.\"http://{}:5000\"]", m.name)),
            "{toml}"
        );
        let net2 = format!("{net}-kind");
        let out = Command::new("docker")
            .args(["network", "create", &net2])
            .output()
            .unwrap();
        assert!(out.status.success());
        let d = Docker::default();
        let never = CancellationToken::new();
        let attached = async {
            d.connect_network(&net2, &m.name, &never).await?;
            // A second attach (another cell) is fine.
            d.connect_network(&net2, &m.name, &never).await?;
            d.network(&net2, &never).await
        }
        .await;
        let names = mirrors.container_names();
        mirrors.stop().await;
        let _ = Command::new("docker")
            .args(["network", "rm", &net2])
            .output();
        let n = attached.expect("attach").expect("network exists");
        assert_eq!(n.containers, names);
        let left = Command::new("docker")
            .args([
                "ps",
                "-a",
                "--filter",
                &format!("name={}", names[0]),
                "--format",
                "{{.Names}}",
            ])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&left.stdout).trim().is_empty(),
            "mirror container removed"
        );
        drop(upstream);
    };
    // Catch the panic so the network is removed either way.
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(result)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = Command::new("docker")
        .args(["network", "rm", &net])
        .output();
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}

#[tokio::test]
async fn gc_removes_leftover_mirror_containers_only() {
    if !support::docker_available() {
        eprintln!("ignored: no docker engine answers here; the image cache runs as containers");
        return;
    }
    build_registry_image().expect("build the local registry image");
    let id = std::process::id();
    let ours = format!("flux-compat-gc{id}-mirror-ghcr.io");
    let foreign = format!("someone-else-gc{id}");
    for name in [&ours, &foreign] {
        let out = Command::new("docker")
            .args([
                "run",
                "-d",
                "--name",
                name,
                "--label",
                &format!("{}=ghcr.io", flux_compat::cluster::mirror::LABEL),
            ])
            .arg(format!("{IMAGE}:{TAG}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let d = Docker::default();
    let never = CancellationToken::new();
    // Scoped to this test's prefix: the other test's mirror may be running right now.
    let prefix = format!("flux-compat-gc{id}-");
    let dry = flux_compat::cluster::gc::gc_mirrors(&d, &prefix, true, &never).await;
    let real = flux_compat::cluster::gc::gc_mirrors(&d, &prefix, false, &never).await;
    let left = d
        .containers_with_label(flux_compat::cluster::mirror::LABEL, &never)
        .await;
    let _ = Command::new("docker")
        .args(["rm", "-f", &ours, &foreign])
        .output();
    assert!(dry.unwrap().would_delete.contains(&ours));
    let real = real.unwrap();
    assert!(
        real.deleted.contains(&ours) && !real.deleted.contains(&foreign),
        "{real:?}"
    );
    let left = left.unwrap();
    assert!(left.contains(&foreign) && !left.contains(&ours), "{left:?}");
}
