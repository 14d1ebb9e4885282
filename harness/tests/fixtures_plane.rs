//! The fixture plane against real clients over TLS with the per-run CA: git (clone, ls-remote,
//! push), skopeo (inspect, copy, push) compared byte for byte with the CNCF distribution registry,
//! curl for Helm and the webhook sink, bad input, and the `fixtures serve` CLI.

mod support;

use flux_compat::fixtures::{Credentials, Plane, PlaneConfig};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use tokio::process::Command;

fn fixtures_dir() -> PathBuf {
    support::root().join("fixtures")
}

async fn start(auth: Option<Credentials>) -> Plane {
    let mut config = PlaneConfig::loopback(fixtures_dir());
    config.auth = auth;
    Plane::start(config).await.expect("fixture plane starts")
}

async fn run(cmd: &mut Command) -> Output {
    cmd.output().await.expect("command runs")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn git(ca: &Path) -> Command {
    let mut c = Command::new(support::require("git"));
    c.env("GIT_SSL_CAINFO", ca)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid");
    c
}

fn client(plane: &Plane) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(plane.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clone_ls_remote_and_push_over_tls() {
    let plane = start(None).await;
    let ca = plane.ca_file().to_path_buf();
    let url = format!("{}/app.git", plane.endpoints().git);
    let main = plane.git_rev("app", "main").unwrap();
    assert_eq!(main, plane.git_rev("app", "v1.0.0").unwrap());

    let refs = ok(
        &run(git(&ca).args(["ls-remote", &url])).await,
        "git ls-remote",
    );
    assert!(refs.contains(&format!("{main}\trefs/heads/main")), "{refs}");
    assert!(
        refs.contains(&format!("{main}\trefs/tags/v1.0.0")),
        "{refs}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("app");
    ok(
        &run(git(&ca).args(["clone", "-q", &url]).arg(&work)).await,
        "git clone",
    );
    assert!(work.join("deploy/configmap.yaml").is_file());

    // Push over smart HTTP (receive-pack), as image automation does.
    std::fs::write(work.join("deploy/extra.yaml"), "kind: Extra\n").unwrap();
    ok(
        &run(git(&ca).current_dir(&work).args(["add", "-A"])).await,
        "git add",
    );
    ok(
        &run(git(&ca)
            .current_dir(&work)
            .args(["commit", "-q", "-m", "pushed by test"]))
        .await,
        "git commit",
    );
    ok(
        &run(git(&ca)
            .current_dir(&work)
            .args(["push", "-q", "origin", "main"]))
        .await,
        "git push",
    );
    let pushed = ok(
        &run(git(&ca).current_dir(&work).args(["rev-parse", "HEAD"])).await,
        "rev-parse",
    );
    assert_eq!(plane.git_rev("app", "main").unwrap(), pushed.trim());

    // The harness-side push used by the `gitPush` scenario step.
    let sha = plane
        .git_push(
            "app",
            "main",
            "harness change",
            &[
                ("deploy/extra.yaml".into(), None),
                ("deploy/new.yaml".into(), Some(b"kind: New\n".to_vec())),
            ],
            Some("v1.1.0"),
        )
        .await
        .unwrap();
    let tags = ok(
        &run(git(&ca).args(["ls-remote", "--tags", &url])).await,
        "ls-remote --tags",
    );
    assert!(tags.contains(&format!("{sha}\trefs/tags/v1.1.0")), "{tags}");
    assert!(
        plane
            .git_push("app", "main", "x", &[], Some("bad tag"))
            .await
            .is_err()
    );
    let refs = ok(
        &run(git(&ca).args(["ls-remote", &url, "refs/heads/main"])).await,
        "ls-remote",
    );
    assert!(refs.starts_with(&sha), "{refs} vs {sha}");
    assert!(
        plane
            .git_push("app", "main", "x", &[("../escape".into(), None)], None)
            .await
            .is_err()
    );
    assert!(
        plane
            .git_push("nope", "main", "x", &[], None)
            .await
            .is_err()
    );
    plane.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provides_every_declared_fixture_variable_and_the_ca_secret() {
    let plane = start(None).await;
    let vars = plane.template_variables();
    for (name, _) in flux_compat::model::template::KNOWN_VARIABLES {
        if name.starts_with("fixtures.") {
            assert!(
                vars.contains_key(*name),
                "`{name}` is declared but not provided"
            );
        }
    }
    assert!(
        vars.keys()
            .all(|k| flux_compat::model::template::is_known(k))
    );
    let secret: serde_json::Value =
        serde_norway::from_str(&plane.ca_secret_manifest("team-a")).unwrap();
    assert_eq!(secret["metadata"]["name"], vars["fixtures.caSecret"]);
    assert_eq!(secret["metadata"]["namespace"], "team-a");
    assert_eq!(secret["stringData"]["ca.crt"], plane.ca_pem());
    assert!(secret["stringData"].get("password").is_none());
    assert!(plane.auth_secret_manifest("team-a").is_none());
    assert_eq!(
        std::fs::read_to_string(plane.ca_file()).unwrap(),
        plane.ca_pem()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_commits_are_deterministic_across_planes() {
    let a = start(None).await;
    let b = start(None).await;
    assert_eq!(
        a.git_rev("app", "main").unwrap(),
        b.git_rev("app", "main").unwrap()
    );
    assert_eq!(
        a.registry().resolve("manifests", "1.0.0"),
        b.registry().resolve("manifests", "1.0.0")
    );
}

/// A CNCF distribution registry child process on loopback (plain HTTP), killed on drop.
struct Distribution {
    child: tokio::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

async fn distribution() -> Distribution {
    let bin = support::require("docker-registry");
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http
            .get(format!("http://{addr}/v2/"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Distribution {
                child,
                addr,
                _dir: dir,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("docker-registry did not come up on {addr}");
}

async fn raw_manifest(http: &reqwest::Client, url: &str) -> (Vec<u8>, String, String) {
    let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json";
    let r = http.get(url).header("accept", accept).send().await.unwrap();
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    let digest = r.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    (r.bytes().await.unwrap().to_vec(), digest, ct)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_inspect_and_copy_match_the_distribution_registry() {
    let skopeo = support::require("skopeo");
    let plane = start(None).await;
    let dist = distribution().await;
    let cert_dir = plane.ca_file().parent().unwrap().to_path_buf();
    let host = plane.endpoints().oci_host.clone();
    let ours = client(&plane);
    let plain = reqwest::Client::new();

    for (repo, tag) in [
        ("manifests", "1.0.0"),
        ("manifests", "1.1.0"),
        ("charts/demo", "1.0.0"),
        ("app", "1.2.0"),
    ] {
        let src = format!("docker://{host}/{repo}:{tag}");
        let raw = ok(
            &run(Command::new(&skopeo)
                .args(["inspect", "--raw", "--cert-dir"])
                .arg(&cert_dir)
                .arg(&src))
            .await,
            "skopeo inspect --raw",
        );
        let (ours_bytes, ours_digest, ours_type) =
            raw_manifest(&ours, &format!("https://{host}/v2/{repo}/manifests/{tag}")).await;
        assert_eq!(
            raw.as_bytes(),
            ours_bytes.as_slice(),
            "skopeo sees our bytes"
        );
        assert_eq!(
            Some(ours_digest.clone()),
            plane.registry().resolve(repo, tag)
        );

        let dst = format!("docker://{}/{repo}:{tag}", dist.addr);
        ok(
            &run(Command::new(&skopeo)
                .args([
                    "copy",
                    "-q",
                    "--preserve-digests",
                    "--dest-tls-verify=false",
                    "--src-cert-dir",
                ])
                .arg(&cert_dir)
                .args([&src, &dst]))
            .await,
            "skopeo copy to docker-registry",
        );
        let (their_bytes, their_digest, their_type) = raw_manifest(
            &plain,
            &format!("http://{}/v2/{repo}/manifests/{tag}", dist.addr),
        )
        .await;
        assert_eq!(ours_bytes, their_bytes, "{repo}:{tag} manifest bytes");
        assert_eq!(ours_digest, their_digest, "{repo}:{tag} digest");
        assert_eq!(ours_type, their_type, "{repo}:{tag} media type");
    }

    // Flux media types and annotations on the artifact.
    let (bytes, _, _) = raw_manifest(
        &ours,
        &format!("https://{host}/v2/manifests/manifests/1.0.0"),
    )
    .await;
    let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.cncf.flux.config.v1+json"
    );
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.cncf.flux.content.v1.tar+gzip"
    );
    assert!(
        m["annotations"]["org.opencontainers.image.revision"]
            .as_str()
            .unwrap()
            .starts_with("1.0.0@sha256:")
    );

    // Push into our registry with skopeo (uploads + manifest PUT), then compare again.
    let back = format!("docker://{host}/pushed/manifests:2.0.0");
    ok(
        &run(Command::new(&skopeo)
            .args([
                "copy",
                "-q",
                "--preserve-digests",
                "--src-tls-verify=false",
                "--dest-cert-dir",
            ])
            .arg(&cert_dir)
            .arg(format!("docker://{}/manifests:1.1.0", dist.addr))
            .arg(&back))
        .await,
        "skopeo copy into the fixture registry",
    );
    let (pushed, pushed_digest, _) = raw_manifest(
        &ours,
        &format!("https://{host}/v2/pushed/manifests/manifests/2.0.0"),
    )
    .await;
    let (orig, orig_digest, _) = raw_manifest(
        &ours,
        &format!("https://{host}/v2/manifests/manifests/1.1.0"),
    )
    .await;
    assert_eq!(pushed, orig);
    assert_eq!(pushed_digest, orig_digest);
    let tags: serde_json::Value = ours
        .get(format!("https://{host}/v2/app/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["1.0.0", "1.1.0", "1.2.0"]));
    drop(dist.child);
    plane.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_enforced_for_every_client() {
    let creds = Credentials {
        username: "flux".into(),
        password: "fixture-pass".into(),
    };
    let plane = start(Some(creds.clone())).await;
    let ca = plane.ca_file().to_path_buf();
    let cert_dir = ca.parent().unwrap().to_path_buf();
    let host = plane.endpoints().oci_host.clone();
    let skopeo = support::require("skopeo");
    let src = format!("docker://{host}/manifests:1.0.0");

    let anon = run(Command::new(&skopeo)
        .args(["inspect", "--raw", "--cert-dir"])
        .arg(&cert_dir)
        .arg(&src))
    .await;
    assert!(!anon.status.success(), "anonymous pull must fail");
    let wrong = run(Command::new(&skopeo)
        .args(["inspect", "--raw", "--creds", "flux:nope", "--cert-dir"])
        .arg(&cert_dir)
        .arg(&src))
    .await;
    assert!(!wrong.status.success(), "wrong password must fail");
    ok(
        &run(Command::new(&skopeo)
            .args([
                "inspect",
                "--raw",
                "--creds",
                "flux:fixture-pass",
                "--cert-dir",
            ])
            .arg(&cert_dir)
            .arg(&src))
        .await,
        "skopeo inspect with credentials (bearer token flow)",
    );

    let base = plane.endpoints().git.replace("https://", "");
    let bad = run(git(&ca).args(["ls-remote", &format!("https://flux:nope@{base}/app.git")])).await;
    assert!(!bad.status.success());
    ok(
        &run(git(&ca).args([
            "ls-remote",
            &format!("https://flux:fixture-pass@{base}/app.git"),
        ]))
        .await,
        "git with credentials",
    );

    let index = format!("{}/index.yaml", plane.endpoints().helm);
    let code = ok(
        &run(Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(&ca)
            .arg(&index))
        .await,
        "curl",
    );
    assert_eq!(code, "401");
    ok(
        &run(Command::new("curl")
            .args(["-fsS", "-u", "flux:fixture-pass", "--cacert"])
            .arg(&ca)
            .arg(&index))
        .await,
        "curl with credentials",
    );

    let secret = plane.ca_secret_manifest("demo");
    assert!(secret.contains("ca.crt") && secret.contains("username"));
    assert!(
        plane
            .auth_secret_manifest("demo")
            .unwrap()
            .contains("kubernetes.io/dockerconfigjson")
    );
    plane.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_fetches_the_helm_index_and_chart() {
    let plane = start(None).await;
    let ca = plane.ca_file().to_path_buf();
    let index = ok(
        &run(Command::new(support::require("curl"))
            .args(["-fsS", "--cacert"])
            .arg(&ca)
            .arg(format!("{}/index.yaml", plane.endpoints().helm)))
        .await,
        "curl index.yaml",
    );
    let v: serde_json::Value = serde_norway::from_str(&index).unwrap();
    let entry = &v["entries"]["demo"][0];
    assert_eq!(entry["version"], "1.0.0");
    let url = entry["urls"][0].as_str().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let tgz = tmp.path().join("demo.tgz");
    ok(
        &run(Command::new("curl")
            .args(["-fsS", "--cacert"])
            .arg(&ca)
            .arg("-o")
            .arg(&tgz)
            .arg(&url))
        .await,
        "curl chart",
    );
    let bytes = std::fs::read(&tgz).unwrap();
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&bytes)),
        entry["digest"].as_str().unwrap()
    );
    let list = ok(
        &run(Command::new("tar").arg("tzf").arg(&tgz)).await,
        "tar tzf",
    );
    assert!(list.lines().any(|l| l == "demo/Chart.yaml"), "{list}");
    plane.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_sink_records_posted_events() {
    let plane = start(None).await;
    let ca = plane.ca_file().to_path_buf();
    let event = r#"{"involvedObject":{"kind":"GitRepository","name":"app"},"severity":"info","reason":"Succeeded","message":"stored artifact"}"#;
    ok(
        &run(Command::new("curl")
            .args([
                "-fsS",
                "-H",
                "content-type: application/json",
                "--data",
                event,
                "--cacert",
            ])
            .arg(&ca)
            .arg(format!("{}/flux", plane.endpoints().webhook)))
        .await,
        "curl POST event",
    );
    let got = plane
        .wait_for_event(Duration::from_secs(5), |e| e.body["reason"] == "Succeeded")
        .await
        .expect("event recorded");
    assert_eq!(got.path, "/flux");
    let listed = ok(
        &run(Command::new("curl")
            .args(["-fsS", "--cacert"])
            .arg(&ca)
            .arg(&plane.endpoints().events))
        .await,
        "curl GET events",
    );
    let v: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(v[0]["body"]["involvedObject"]["name"], "app");
    let bad = ok(
        &run(Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--data",
                "not json",
                "--cacert",
            ])
            .arg(&ca)
            .arg(&plane.endpoints().webhook))
        .await,
        "curl",
    );
    assert_eq!(bad, "400");
    assert_eq!(plane.webhook_events().len(), 1);
    plane.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_4xx_and_never_takes_the_plane_down() {
    let plane = start(None).await;
    let http = client(&plane);
    let host = plane.endpoints().oci_host.clone();
    let base = format!("https://{host}");
    let ca = plane.ca_file().to_path_buf();

    // Path traversal, sent verbatim (curl normalises `..` unless told not to).
    for path in [
        "/git/../../etc/passwd",
        "/git/app.git/../../../etc/passwd",
        "/helm/../Cargo.toml",
        "/helm/..%2fCargo.toml",
        "/v2/../etc/manifests/latest",
    ] {
        let code = ok(
            &run(Command::new("curl")
                .args([
                    "-sS",
                    "--path-as-is",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--cacert",
                ])
                .arg(&ca)
                .arg(format!("{base}{path}")))
            .await,
            "curl",
        );
        assert!(code.starts_with('4'), "{path} gave {code}");
    }

    let unknown = format!("sha256:{}", "0".repeat(64));
    let r = http
        .get(format!("{base}/v2/manifests/blobs/{unknown}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "BLOB_UNKNOWN");
    let r = http
        .get(format!("{base}/v2/manifests/manifests/9.9.9"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(format!("{base}/v2/manifests/blobs/sha256:xyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Malformed and oversized manifests.
    let put = |body: Vec<u8>| {
        http.put(format!("{base}/v2/evil/manifests/1.0.0"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(body)
            .send()
    };
    assert_eq!(put(b"{not json".to_vec()).await.unwrap().status(), 400);
    // The plane answers 413 from Content-Length without reading the body and resets the stream, so
    // the client either reads the 413 or sees the reset while still sending; both are a refusal.
    match put(vec![b' '; 5 << 20]).await {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => assert!(
            !e.is_timeout() && !e.is_connect(),
            "unexpected client error: {e}"
        ),
    }
    let dangling = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": unknown, "size": 2}, "layers": []});
    let r = put(dangling.to_string().into_bytes()).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");

    // Upload with a wrong digest, and to an unknown session.
    let r = http
        .post(format!("{base}/v2/evil/blobs/uploads/?digest={unknown}"))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .patch(format!("{base}/v2/evil/blobs/uploads/nope"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Accept that excludes the stored type.
    let r = http
        .get(format!("{base}/v2/manifests/manifests/1.0.0"))
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // An oversized chunked body (no Content-Length) is cut off at the limit while reading.
    let chunks =
        futures::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])));
    match http
        .post(plane.endpoints().webhook.clone())
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
    {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => assert!(
            !e.is_timeout() && !e.is_connect(),
            "unexpected client error: {e}"
        ),
    }
    assert!(plane.webhook_events().is_empty());

    // Tag list pagination.
    let r = http
        .get(format!("{base}/v2/app/tags/list?n=2"))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["link"].to_str().unwrap().contains("last=1.1.0"));
    let page: serde_json::Value = r.json().await.unwrap();
    assert_eq!(page["tags"], serde_json::json!(["1.0.0", "1.1.0"]));
    let page: serde_json::Value = http
        .get(format!("{base}/v2/app/tags/list?n=2&last=1.1.0"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["tags"], serde_json::json!(["1.2.0"]));

    // Garbage instead of a TLS handshake, and a connection dropped mid-handshake.
    {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(plane.endpoints().listen)
            .await
            .unwrap();
        let _ = s.write_all(b"GET / HTTP/1.1\r\n\r\n").await;
        drop(
            tokio::net::TcpStream::connect(plane.endpoints().listen)
                .await
                .unwrap(),
        );
    }

    // Still serving.
    assert_eq!(
        http.get(format!("{base}/v2/"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let refs = ok(
        &run(git(&ca).args(["ls-remote", &format!("{}/app.git", plane.endpoints().git)])).await,
        "ls-remote after bad input",
    );
    assert!(refs.contains("refs/heads/main"));
    plane.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_upload_through_the_api() {
    let plane = start(None).await;
    let http = client(&plane);
    let base = format!("https://{}", plane.endpoints().oci_host);
    let data = b"0123456789abcdef".repeat(1000);
    let digest = flux_compat::fixtures::oci::digest_of(&data);
    let r = http
        .post(format!("{base}/v2/chunky/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mut loc = r.headers()["location"].to_str().unwrap().to_string();
    for (i, chunk) in data.chunks(7000).enumerate() {
        let start = i * 7000;
        let r = http
            .patch(format!("{base}{loc}"))
            .header(
                "content-range",
                format!("{start}-{}", start + chunk.len() - 1),
            )
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        loc = r.headers()["location"].to_str().unwrap().to_string();
    }
    let r = http
        .put(format!("{base}{loc}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["docker-content-digest"].to_str().unwrap(),
        digest
    );
    let r = http
        .head(format!("{base}/v2/chunky/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"].to_str().unwrap(),
        data.len().to_string()
    );
    plane.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_serve_prints_endpoints_and_stops_on_sigterm() {
    use tokio::io::AsyncBufReadExt;
    let mut child = Command::new(support::binary())
        .args(["fixtures", "serve", "--fixtures"])
        .arg(fixtures_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("serve prints within a minute")
        .unwrap()
        .expect("one JSON line");
    let info: serde_json::Value = serde_json::from_str(&line).unwrap();
    let ca = PathBuf::from(info["caFile"].as_str().unwrap());
    assert!(ca.is_file());
    assert!(info["git"].as_array().unwrap().iter().any(|g| g == "app"));
    let helm = info["variables"]["fixtures.helmUrl"].as_str().unwrap();
    let index = ok(
        &run(Command::new("curl")
            .args(["-fsS", "--cacert"])
            .arg(&ca)
            .arg(format!("{helm}/index.yaml")))
        .await,
        "curl index via CLI plane",
    );
    assert!(index.contains("demo"));
    let git_url = info["variables"]["fixtures.gitUrl"].as_str().unwrap();
    ok(
        &run(git(&ca).args(["ls-remote", &format!("{git_url}/app.git")])).await,
        "git ls-remote via CLI plane",
    );

    ok(
        &run(Command::new("kill").args(["-TERM", &child.id().unwrap().to_string()])).await,
        "kill -TERM",
    );
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    // Interrupted by a signal: exit 130 like every other command (issue 16 item 11).
    assert_eq!(status.code(), Some(130), "exit status {status}");
    assert!(
        !ca.exists(),
        "the temporary CA directory is removed on exit"
    );

    // Secrets never on argv: a password flag does not exist.
    let out = run(Command::new(support::binary())
        .args(["fixtures", "serve", "--auth-user", "u", "--fixtures"])
        .arg(fixtures_dir())
        .env_remove("FLUX_COMPAT_FIXTURES_PASSWORD"))
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
