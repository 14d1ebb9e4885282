//! The `flux` module against the API server test double: install from the release manifests
//! (and the Flux Operator route), image verification (match, mismatch, pull back-off), the
//! manifest cache, and a canary registry token that must appear nowhere but the Secret.

mod support;

use flux_compat::flux::manifests::{self, ManifestSource};
use flux_compat::flux::{
    InstallError, InstallRequest, RegistryCredentials, TokenSource, VerifyOptions, install, verify,
};
use flux_compat::k8s::{ApplyOptions, Kube};
use flux_compat::model::matrix::{Base, Channel, ChannelRelease, ImagePin, InstallRoute};
use flux_compat::model::{Component, FluxVersion, Status};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::apiserver::{ApiServer, CONTEXT, DeploymentBehaviour, FluxBehaviour, Options, Script};

const UPSTREAM: [(Component, &str, &str); 4] = [
    (
        Component::SourceController,
        "v1.9.4",
        "sha256:8a8ed0a57b8b86f561d5a4309a69f65e62f0cebe4de8801593c5ff35a3bc3c23",
    ),
    (
        Component::KustomizeController,
        "v1.9.4",
        "sha256:2b8bec54ffb6caf421bd2a6c005d27f567d5dd4db7feb55794fb51fcabd69b8f",
    ),
    (
        Component::HelmController,
        "v1.6.3",
        "sha256:16ada99456385100698a5d7adf90aba8a2089d987ab541c9566b6d7b0e897038",
    ),
    (
        Component::NotificationController,
        "v1.9.3",
        "sha256:071c351a0fb163eeb6a2bb82f1e894f51b6b0734216d2e97d3d99c9ab9d710b9",
    ),
];

fn version() -> FluxVersion {
    "v2.9.4".parse().unwrap()
}

fn channel(
    name: &str,
    registry: &str,
    pull_secret: Option<&str>,
    install: InstallRoute,
) -> Channel {
    let images = UPSTREAM
        .iter()
        .map(|(c, tag, digest)| {
            (
                *c,
                ImagePin {
                    repository: format!("{registry}/{c}"),
                    tag: tag.to_string(),
                    digest: digest.to_string(),
                },
            )
        })
        .collect();
    let mut releases = BTreeMap::new();
    releases.insert(
        version(),
        ChannelRelease {
            images_file: None,
            images,
        },
    );
    Channel {
        name: name.into(),
        registry: registry.into(),
        operator_variant: "upstream-alpine".into(),
        pull_secret: pull_secret.map(str::to_string),
        fips: false,
        base: Base::Alpine,
        install,
        releases,
    }
}

fn fixture() -> ManifestSource {
    ManifestSource::File(support::flux_manifests("v2.9.4"))
}

struct Env {
    server: ApiServer,
    kube: Kube,
    dir: tempfile::TempDir,
}

async fn env(script: Script) -> Env {
    let server = ApiServer::start(Options {
        script,
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kube = Kube::connect(&server.write_kubeconfig(dir.path()), CONTEXT)
        .await
        .unwrap();
    Env { server, kube, dir }
}

fn request<'a>(
    channel: &'a Channel,
    source: &'a ManifestSource,
    credentials: Option<&'a RegistryCredentials>,
    version: &'a FluxVersion,
) -> InstallRequest<'a> {
    InstallRequest {
        flux_version: version,
        channel,
        components: &Component::DEFAULTS,
        manifests: source,
        credentials,
        namespace: "flux-system",
        timeout: Duration::from_secs(10),
        run_id: None,
        replace_existing: false,
    }
}

fn verify_options(dir: &std::path::Path, timeout: Duration) -> VerifyOptions<'_> {
    VerifyOptions {
        timeout,
        artifacts_dir: Some(dir),
        scrub: Vec::new(),
    }
}

#[tokio::test]
async fn installs_the_upstream_channel_and_verifies_every_running_digest() {
    let e = env(Script::default()).await;
    let ch = channel("upstream", "ghcr.io/fluxcd", None, InstallRoute::Manifests);
    let (src, v) = (fixture(), version());
    let installed = install(&e.kube, &request(&ch, &src, None, &v))
        .await
        .unwrap();
    assert_eq!(installed.controllers.len(), 4);
    let crds = installed
        .applied
        .iter()
        .filter(|r| r.kind == "CustomResourceDefinition")
        .count();
    assert_eq!(
        crds, 11,
        "CRDs of the four default components only (6 source, 1, 1, 3 notification)"
    );
    assert!(
        !installed
            .applied
            .iter()
            .any(|r| r.name == "image-reflector-controller")
    );
    assert!(installed.properties["flux.manifests.sha256"].starts_with("sha256:"));
    // The applied Deployment carries the pinned reference.
    let d = e
        .kube
        .get(&installed.controllers[0].deployment)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        d.data["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("ghcr.io/fluxcd/source-controller:v1.9.4@{}", UPSTREAM[0].2)
    );

    e.server.counters.reset();
    let out = e.dir.path().join("artifacts");
    let v = verify(
        &e.kube,
        &installed.controllers,
        &verify_options(&out, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(v.status, Status::Pass, "{}", v.message);
    assert!(v.diagnostics.is_none());
    for (c, _, digest) in UPSTREAM {
        assert_eq!(v.properties[&format!("image.{c}.digest")], digest);
        assert_eq!(v.properties[&format!("image.{c}.expected")], digest);
    }
    // Four Deployment waits: at most one list and one watch each, never a polling get.
    assert!(e.server.counters.get("watch", "deployments") <= 4);
    assert_eq!(e.server.counters.get("list", "deployments"), 4);
    let phase = v.to_phase("verify-images", Duration::from_millis(5));
    assert!(phase.is_test_case());
}

#[tokio::test]
async fn a_running_digest_other_than_the_pin_is_a_failure_naming_both() {
    let wrong = format!("sha256:{}", "e".repeat(64));
    let mut script = Script::default();
    script
        .running_digest
        .insert("kustomize-controller".into(), wrong.clone());
    let e = env(script).await;
    let ch = channel("upstream", "ghcr.io/fluxcd", None, InstallRoute::Manifests);
    let (src, v) = (fixture(), version());
    let installed = install(&e.kube, &request(&ch, &src, None, &v))
        .await
        .unwrap();
    let out = e.dir.path().join("artifacts");
    let v = verify(
        &e.kube,
        &installed.controllers,
        &verify_options(&out, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(v.status, Status::Fail);
    assert!(
        v.message.contains(&wrong) && v.message.contains(UPSTREAM[1].2),
        "{}",
        v.message
    );
    assert!(
        v.message
            .starts_with("`kustomize-controller`: pod `kustomize-controller-"),
        "{}",
        v.message
    );
    assert_eq!(v.properties["image.kustomize-controller.digest"], wrong);
    assert!(
        v.diagnostics
            .as_ref()
            .unwrap()
            .files
            .iter()
            .any(|f| f.ends_with("objects/deployment-flux-system-kustomize-controller.yaml"))
    );
}

#[tokio::test]
async fn a_deployment_image_other_than_the_pin_is_a_failure() {
    let e = env(Script::default()).await;
    let ch = channel("upstream", "ghcr.io/fluxcd", None, InstallRoute::Manifests);
    let (src, v) = (fixture(), version());
    let installed = install(&e.kube, &request(&ch, &src, None, &v))
        .await
        .unwrap();
    // Someone re-applies a tag-only image over the pin.
    e.kube
        .apply_yaml(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: source-controller, namespace: flux-system}\nspec:\n  template:\n    spec:\n      containers: [{name: manager, image: 'ghcr.io/fluxcd/source-controller:v1.9.4'}]\n",
            "drift.yaml",
            &ApplyOptions::default(),
        )
        .await
        .unwrap();
    let out = e.dir.path().join("artifacts");
    let v = verify(
        &e.kube,
        &installed.controllers,
        &verify_options(&out, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(v.status, Status::Fail);
    assert!(v.message.contains("Deployment image is `ghcr.io/fluxcd/source-controller:v1.9.4`, expected `ghcr.io/fluxcd/source-controller:v1.9.4@sha256:8a8e"), "{}", v.message);
}

/// Wait until the scripted controller reported the back-off, so a short verify timeout is about
/// verification and not about a slow test machine.
async fn until_unavailable(kube: &Kube, name: &str) {
    kube.wait_condition(
        &flux_compat::k8s::ObjectRef::new("apps/v1", "Deployment", Some("flux-system"), name),
        &flux_compat::k8s::ConditionExpectation::new("Available").status("False"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn image_pull_back_off_is_an_error_with_diagnostics() {
    let mut script = Script::default();
    script.deployment_overrides.insert(
        "helm-controller".into(),
        DeploymentBehaviour::ImagePullBackOff,
    );
    let e = env(script).await;
    let ch = channel("upstream", "ghcr.io/fluxcd", None, InstallRoute::Manifests);
    let (src, v) = (fixture(), version());
    let installed = install(&e.kube, &request(&ch, &src, None, &v))
        .await
        .unwrap();
    let out = e.dir.path().join("artifacts");
    until_unavailable(&e.kube, "helm-controller").await;
    let v = verify(
        &e.kube,
        &installed.controllers,
        &verify_options(&out, Duration::from_millis(800)),
    )
    .await;
    assert_eq!(v.status, Status::Error, "{}", v.message);
    assert!(
        v.message.contains(
            "`helm-controller` cannot pull its image (ImagePullBackOff: Back-off pulling image"
        ),
        "{}",
        v.message
    );
    let d = v.diagnostics.expect("diagnostics on failure");
    assert!(
        d.summary
            .contains("Deployment/flux-system/helm-controller: Available=False"),
        "{}",
        d.summary
    );
    assert!(
        d.summary.contains("Warning Failed Pod/helm-controller-"),
        "{}",
        d.summary
    );
    assert!(
        out.join("objects/deployment-flux-system-helm-controller.yaml")
            .is_file()
    );
    assert!(
        std::fs::read_dir(out.join("logs/flux-system"))
            .unwrap()
            .count()
            >= 3,
        "logs of the running controllers"
    );
    assert!(d.summary.len() <= 4010, "the report summary stays short");
}

/// A writer collecting everything logged at TRACE level during a test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            walk(&p, out)
        } else {
            out.push(p)
        }
    }
}

#[tokio::test]
async fn a_canary_token_reaches_the_pull_secret_and_nothing_else() {
    use base64::Engine as _;
    let canary = "flux-compat-canary-5b1f0c9e";
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // Global, not thread-local: tracing caches callsite interest process-wide, so a thread-local
    // subscriber can miss events other tests' threads registered first. Only this test sets it.
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets a subscriber");

    let mut script = Script::default();
    script.deployment_overrides.insert(
        "source-controller".into(),
        DeploymentBehaviour::ImagePullBackOff,
    );
    let e = env(script).await;
    let token_file = e.dir.path().join("token");
    std::fs::write(&token_file, format!("{canary}\n")).unwrap();
    let credentials = RegistryCredentials {
        username: "flux".into(),
        token: TokenSource::File(token_file).read().unwrap(),
    };
    let ch = channel(
        "mainline",
        "ghcr.io/controlplaneio-fluxcd/alpine",
        Some("flux-enterprise-auth"),
        InstallRoute::Manifests,
    );
    let (src, v) = (fixture(), version());

    // Without credentials the channel refuses, naming the secret, not a token.
    let err = install(&e.kube, &request(&ch, &src, None, &v))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "install channel `mainline`: it needs pull secret `flux-enterprise-auth` but no registry credentials were given"
    );

    let installed = install(&e.kube, &request(&ch, &src, Some(&credentials), &v))
        .await
        .unwrap();
    let out = e.dir.path().join("artifacts");
    let mut options = verify_options(&out, Duration::from_millis(800));
    options.scrub = vec![credentials.token.expose().to_string()];
    until_unavailable(&e.kube, "source-controller").await;
    let verification = verify(&e.kube, &installed.controllers, &options).await;
    assert_eq!(verification.status, Status::Error);
    // The diagnostics dump the pull Secret itself (it is in the flux-system namespace).
    let diag = e
        .kube
        .collect_diagnostics(
            &flux_compat::k8s::DiagnosticsRequest {
                objects: vec![flux_compat::k8s::ObjectRef::new(
                    "v1",
                    "Secret",
                    Some("flux-system"),
                    "flux-enterprise-auth",
                )],
                namespaces: vec!["flux-system".into()],
                log_tail_lines: 10,
                scrub: Vec::new(),
                event_namespaces: Vec::new(),
            },
            &out.join("secret"),
        )
        .await;

    // The token really reached the cluster: the Secret holds it, and controllers reference it.
    let stored = serde_json::to_string(&e.server.store.dump()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let secret = e
        .kube
        .get(&flux_compat::k8s::ObjectRef::new(
            "v1",
            "Secret",
            Some("flux-system"),
            "flux-enterprise-auth",
        ))
        .await
        .unwrap()
        .unwrap();
    let config = b64
        .decode(secret.data["data"][".dockerconfigjson"].as_str().unwrap())
        .unwrap();
    assert!(String::from_utf8(config).unwrap().contains(canary));
    assert!(stored.contains("\"imagePullSecrets\":[{\"name\":\"flux-enterprise-auth\"}]"));

    // ...and appears nowhere else: logs, results, messages, diagnostics (plain or encoded).
    let encoded_forms = [
        canary.to_string(),
        b64.encode(canary),
        b64.encode(format!("flux:{canary}")),
    ];
    let mut texts = vec![
        (
            "logs".to_string(),
            String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned(),
        ),
        ("installed".into(), format!("{installed:?}")),
        ("verification".into(), format!("{verification:?}")),
        ("credentials".into(), format!("{credentials:?}")),
        (
            "phase".into(),
            serde_json::to_string(&verification.to_phase("verify", Duration::ZERO)).unwrap(),
        ),
        ("error".into(), format!("{err:?}")),
        ("summary".into(), diag.summary.clone()),
    ];
    let mut files = Vec::new();
    walk(&out, &mut files);
    assert!(files.len() > 5);
    for f in files {
        texts.push((
            f.display().to_string(),
            std::fs::read_to_string(&f).unwrap(),
        ));
    }
    assert!(texts[0].1.len() > 1000, "trace logs were captured");
    for (what, text) in texts {
        for form in &encoded_forms {
            assert!(!text.contains(form.as_str()), "{what} leaks the token");
        }
        // The dockerconfigjson is base64 of JSON containing the token: its encoding must not leak either.
        assert!(
            !text.contains(secret.data["data"][".dockerconfigjson"].as_str().unwrap()),
            "{what} leaks the pull secret"
        );
    }
}

#[tokio::test]
async fn operator_route_needs_the_operator_and_waits_for_the_instance() {
    let e = env(Script::default()).await;
    let ch = channel("upstream", "ghcr.io/fluxcd", None, InstallRoute::Operator);
    let (src, v) = (fixture(), version());
    let err = install(&e.kube, &request(&ch, &src, None, &v))
        .await
        .unwrap_err();
    assert!(matches!(err, InstallError::OperatorMissing { .. }), "{err}");
    assert_eq!(err.status(), Status::Error);
    assert!(err.to_string().contains("install the Flux Operator first"));

    // Stand in for the operator's CRD; the scripted controller plays the operator's status.
    e.kube
        .apply_yaml(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: fluxinstances.fluxcd.controlplane.io}\nspec:\n  group: fluxcd.controlplane.io\n  names: {kind: FluxInstance, listKind: FluxInstanceList, plural: fluxinstances, singular: fluxinstance}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}\n    subresources: {status: {}}\n",
            "operator-crd.yaml",
            &ApplyOptions::default(),
        )
        .await
        .unwrap();
    let installed = install(&e.kube, &request(&ch, &src, None, &v))
        .await
        .unwrap();
    assert_eq!(installed.route, InstallRoute::Operator);
    assert_eq!(installed.controllers.len(), 4);
    let instance = e
        .kube
        .get(&flux_compat::k8s::ObjectRef::new(
            "fluxcd.controlplane.io/v1",
            "FluxInstance",
            Some("flux-system"),
            "flux",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(instance.data["spec"]["distribution"]["version"], "2.9.4");
    assert_eq!(
        instance.data["spec"]["distribution"]["registry"],
        "ghcr.io/fluxcd"
    );
    assert_eq!(
        instance.data["spec"]["distribution"]["variant"],
        "upstream-alpine"
    );
    assert_eq!(
        instance.data["spec"]["components"][3],
        "notification-controller"
    );

    e.server.script(|s| {
        s.flux = FluxBehaviour::Stalled {
            reason: "BuildFailed".into(),
            message: "unsupported registry".into(),
        }
    });
    e.kube
        .delete(&flux_compat::k8s::ObjectRef::new(
            "fluxcd.controlplane.io/v1",
            "FluxInstance",
            Some("flux-system"),
            "flux",
        ))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = install(&e.kube, &request(&ch, &src, None, &v))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Status::Fail, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a stalled instance fails fast"
    );
    let chain = flux_compat::k8s::diagnostics::error_chain(&err);
    assert!(
        chain.ends_with("it failed with reason `BuildFailed`: unsupported registry"),
        "{chain}"
    );
}

#[tokio::test]
async fn unreachable_api_during_install_is_an_error() {
    let e = env(Script::default()).await;
    e.server.make_unreachable();
    let ch = channel("upstream", "ghcr.io/fluxcd", None, InstallRoute::Manifests);
    let (src, v) = (fixture(), version());
    let err = install(&e.kube, &request(&ch, &src, None, &v))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Status::Error);
    match &err {
        InstallError::Apply { source, .. } => assert!(source.is_unreachable(), "{source:?}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn release_manifests_download_once_and_are_checked_against_their_recorded_sha256() {
    use axum::{Router, routing::get};
    use sha2::Digest;
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let text = std::fs::read_to_string(support::flux_manifests("v2.9.4")).unwrap();
    let sum = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    // goreleaser's checksums file: every asset, install.yaml among them.
    let listed = format!(
        "{}  flux_2.9.4_linux_amd64.tar.gz\n{sum}  install.yaml\n",
        "0".repeat(64)
    );
    // v2.8.8's file lists a sum its install.yaml does not have; v2.7.0's lists no install.yaml.
    let wrong = format!("{}  install.yaml\n", "1".repeat(64));
    let app = Router::new()
        .route(
            "/v2.9.4/install.yaml",
            get(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let text = text.clone();
                async move { text }
            }),
        )
        .route(
            "/v2.9.4/flux_2.9.4_checksums.txt",
            get(move || async move { listed }),
        )
        .route("/v2.8.8/install.yaml", get(|| async { "kind: List\n" }))
        .route(
            "/v2.8.8/flux_2.8.8_checksums.txt",
            get(move || async move { wrong }),
        )
        .route("/v2.7.0/install.yaml", get(|| async { "kind: List\n" }))
        .route(
            "/v2.7.0/flux_2.7.0_checksums.txt",
            get(|| async { "abc  manifests.tar.gz\n" }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let cache = tempfile::tempdir().unwrap();
    let source = ManifestSource::Release {
        base_url: base_url.clone(),
        cache_dir: cache.path().to_path_buf(),
    };
    let first = manifests::load(&version(), &source).await.unwrap();
    let second = manifests::load(&version(), &source).await.unwrap();
    assert!(first.downloaded && !second.downloaded);
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(first.origin, format!("{base_url}/v2.9.4/install.yaml"));
    let sum =
        std::fs::read_to_string(cache.path().join("flux/v2.9.4/install.yaml.sha256")).unwrap();
    assert_eq!(sum.trim(), first.sha256);

    std::fs::write(cache.path().join("flux/v2.9.4/install.yaml"), "tampered").unwrap();
    let err = manifests::load(&version(), &source).await.unwrap_err();
    assert!(
        err.to_string().contains("differs from the recorded"),
        "{err}"
    );

    // Not trusted on first download: a sum the release does not list is refused, uncached.
    let mismatch = manifests::load(&"v2.8.8".parse().unwrap(), &source)
        .await
        .unwrap_err();
    let msg = mismatch.to_string();
    assert!(
        msg.contains(&format!("{base_url}/v2.8.8/install.yaml"))
            && msg.contains("differs from `sha256:1111")
            && msg.contains("flux_2.8.8_checksums.txt"),
        "{msg}"
    );
    assert!(!cache.path().join("flux/v2.8.8/install.yaml").exists());
    let unlisted = manifests::load(&"v2.7.0".parse().unwrap(), &source)
        .await
        .unwrap_err();
    assert!(
        unlisted.to_string().contains("list no `install.yaml`"),
        "{unlisted}"
    );

    let missing = manifests::load(&"v2.6.0".parse().unwrap(), &source)
        .await
        .unwrap_err();
    assert_eq!(
        missing.to_string(),
        format!(
            "download Flux install manifests `{base_url}/v2.6.0/install.yaml`: the server answered 404"
        )
    );
}
