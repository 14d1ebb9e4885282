//! The `k8s` module through its real kube-rs paths, against the API server test double:
//! connect from a kubeconfig context, server version, server-side apply with CRDs first,
//! watch-based waits (one watch each, never polling), failures, API outages and diagnostics.

mod support;

use flux_compat::k8s::{
    ApplyOptions, ConditionExpectation, DiagnosticsRequest, Kube, ObjectRef, WaitError,
};
use flux_compat::model::{KubeMinor, Status};
use regex::Regex;
use serde_json::json;
use std::time::{Duration, Instant};
use support::apiserver::{ApiServer, CONTEXT, DeploymentBehaviour, FluxBehaviour, Options};

struct Env {
    server: ApiServer,
    kube: Kube,
    dir: tempfile::TempDir,
}

async fn env(options: Options) -> Env {
    let server = ApiServer::start(options).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path());
    let kube = Kube::connect(&kubeconfig, CONTEXT).await.unwrap();
    Env { server, kube, dir }
}

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: apps, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "registry.example/web:1.0@sha256:1111111111111111111111111111111111111111111111111111111111111111"}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: podinfo, namespace: apps}
spec: {interval: 1m, url: "https://example.invalid/podinfo"}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gitrepositories.source.toolkit.fluxcd.io}
spec:
  group: source.toolkit.fluxcd.io
  names: {kind: GitRepository, listKind: GitRepositoryList, plural: gitrepositories, singular: gitrepository}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
    subresources: {status: {}}
---
apiVersion: v1
kind: Namespace
metadata: {name: apps}
"#;

fn git_repo() -> ObjectRef {
    ObjectRef::new(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        Some("apps"),
        "podinfo",
    )
}

fn web() -> ObjectRef {
    ObjectRef::new("apps/v1", "Deployment", Some("apps"), "web")
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn connects_through_an_explicit_context_and_maps_the_server_version() {
    let e = env(Options::default()).await;
    let v = e.kube.server_version().await.unwrap();
    assert_eq!(v.git_version, "v1.36.4");
    assert_eq!(v.minor, KubeMinor::new(1, 36));

    let kubeconfig = e.dir.path().join("kubeconfig");
    let err = Kube::connect(&kubeconfig, "prod").await.err().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "use context `prod` of kubeconfig `{}`; known contexts: `{CONTEXT}`",
            kubeconfig.display()
        )
    );
    assert!(Kube::connect(&kubeconfig, "").await.is_err());
    assert!(
        Kube::connect(&e.dir.path().join("missing"), CONTEXT)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn works_over_tls_with_the_ca_from_the_kubeconfig() {
    let e = env(Options {
        tls: true,
        ..Options::default()
    })
    .await;
    assert!(e.server.url().starts_with("https://"));
    assert_eq!(
        e.kube.server_version().await.unwrap().minor,
        KubeMinor::new(1, 36)
    );
    e.kube
        .apply_yaml(APP, "app.yaml", &ApplyOptions::default())
        .await
        .unwrap();
    e.kube.wait_ready(&web(), 10 * SECOND).await.unwrap();
}

#[tokio::test]
async fn applies_crds_first_then_namespaces_then_the_rest_and_waits_with_one_watch_each() {
    let e = env(Options::default()).await;
    let applied = e
        .kube
        .apply_yaml(APP, "app.yaml", &ApplyOptions::default())
        .await
        .unwrap();
    let order: Vec<String> = applied.iter().map(|r| r.kind.clone()).collect();
    assert_eq!(
        order,
        [
            "CustomResourceDefinition",
            "Namespace",
            "Deployment",
            "GitRepository"
        ]
    );
    // The CRD wait was one watch; nothing polled.
    assert_eq!(
        e.server.counters.get("watch", "customresourcedefinitions"),
        1
    );
    assert_eq!(e.server.counters.get("get", "customresourcedefinitions"), 0);

    e.server.counters.reset();
    e.kube.wait_ready(&web(), 10 * SECOND).await.unwrap();
    e.kube.wait_ready(&git_repo(), 10 * SECOND).await.unwrap();
    let counts = e.server.counters.snapshot();
    let n = |verb: &str, res: &str| counts.get(&(verb.into(), res.into())).copied().unwrap_or(0);
    assert_eq!(n("watch", "deployments"), 1, "{counts:?}");
    assert_eq!(n("list", "deployments"), 1, "{counts:?}");
    assert_eq!(n("get", "deployments"), 0, "{counts:?}");
    // Already ready at the initial list: that list is the whole wait.
    assert_eq!(n("list", "gitrepositories"), 1, "{counts:?}");
    assert!(n("watch", "gitrepositories") <= 1, "{counts:?}");
    assert_eq!(n("get", "gitrepositories"), 0, "{counts:?}");

    // The Deployment's ReplicaSet and Pods exist with digests, reachable through list helpers.
    let pods = e
        .kube
        .list("v1", "Pod", Some("apps"), Some("app=web"))
        .await
        .unwrap();
    assert_eq!(pods.len(), 2);
    let image_id = pods[0].data["status"]["containerStatuses"][0]["imageID"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        image_id
            .ends_with("@sha256:1111111111111111111111111111111111111111111111111111111111111111")
    );

    // Re-applying unchanged objects changes nothing (no generation bump).
    let before = e.kube.get(&web()).await.unwrap().unwrap();
    e.kube
        .apply_yaml(APP, "app.yaml", &ApplyOptions::default())
        .await
        .unwrap();
    let after = e.kube.get(&web()).await.unwrap().unwrap();
    assert_eq!(before.metadata.generation, after.metadata.generation);
    assert_eq!(
        before.metadata.resource_version,
        after.metadata.resource_version
    );
}

#[tokio::test]
async fn apply_rejects_unknown_kinds_and_bad_documents_with_clear_errors() {
    let e = env(Options::default()).await;
    let err = e
        .kube
        .apply_yaml(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: default}\n",
            "w.yaml",
            &ApplyOptions::default(),
        )
        .await
        .unwrap_err();
    let chain = flux_compat::k8s::diagnostics::error_chain(&err);
    assert!(
        chain.starts_with("apply `Widget/default/w`: find kind `Widget` in `example.com/v1`"),
        "{chain}"
    );
    let err = e
        .kube
        .apply_yaml("kind: Widget\n", "w.yaml", &ApplyOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "read document 1 of `w.yaml`: missing `apiVersion`"
    );
    // A namespaced object in a namespace that does not exist is refused by the server.
    let err = e
        .kube
        .apply_yaml(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: nowhere}\n",
            "c.yaml",
            &ApplyOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(!err.is_unreachable());
    assert!(
        flux_compat::k8s::diagnostics::error_chain(&err)
            .contains("namespaces \"nowhere\" not found")
    );
}

async fn with_app(script: impl FnOnce(&mut support::apiserver::Script)) -> Env {
    let mut options = Options::default();
    script(&mut options.script);
    let e = env(options).await;
    e.kube
        .apply_yaml(APP, "app.yaml", &ApplyOptions::default())
        .await
        .unwrap();
    e
}

#[tokio::test]
async fn stalled_fails_fast_with_its_reason() {
    let e = with_app(|s| {
        s.flux = FluxBehaviour::Stalled {
            reason: "InvalidURL".into(),
            message: "invalid url: example.invalid".into(),
        }
    })
    .await;
    let started = Instant::now();
    let err = e
        .kube
        .wait_ready(&git_repo(), 30 * SECOND)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < 5 * SECOND,
        "stalled must not wait for the timeout"
    );
    assert_eq!(err.status(), Status::Fail);
    assert_eq!(
        err.to_string(),
        "wait for `GitRepository/apps/podinfo` to become ready: it failed with reason `InvalidURL`: invalid url: example.invalid"
    );
}

#[tokio::test]
async fn never_ready_times_out_with_the_last_reason_and_message() {
    let e = with_app(|s| {
        s.flux = FluxBehaviour::NotReady {
            reason: "GitOperationFailed".into(),
            message: "failed to checkout: authentication required".into(),
        }
    })
    .await;
    // Let the scripted controller report first, so the short timeout below is about the wait.
    e.kube
        .wait_condition(
            &git_repo(),
            &ConditionExpectation::new("Ready").reason("GitOperationFailed"),
            10 * SECOND,
        )
        .await
        .unwrap();
    e.server.counters.reset();
    let err = e
        .kube
        .wait_ready(&git_repo(), Duration::from_millis(700))
        .await
        .unwrap_err();
    assert!(matches!(err, WaitError::Timeout { .. }), "{err}");
    assert_eq!(err.status(), Status::Fail);
    assert_eq!(
        err.to_string(),
        "wait for `GitRepository/apps/podinfo` to become ready: timed out after 700ms; last state: GitOperationFailed: failed to checkout: authentication required"
    );
    // One list, then one watch that ran until the timeout: no polling.
    assert_eq!(e.server.counters.get("list", "gitrepositories"), 1);
    assert_eq!(e.server.counters.get("watch", "gitrepositories"), 1);
    assert_eq!(e.server.counters.get("get", "gitrepositories"), 0);
}

#[tokio::test]
async fn ready_requires_the_current_generation() {
    let e = with_app(|s| s.flux = FluxBehaviour::Ignore).await;
    // Ready=True, but for an older generation: keep waiting.
    e.server.set_status(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        "apps",
        "podinfo",
        json!({"observedGeneration": 0, "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "stored artifact"}]}),
    );
    let err = e
        .kube
        .wait_ready(&git_repo(), Duration::from_millis(400))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("observedGeneration 0 behind generation 1"),
        "{err}"
    );
    // The status catches up while a wait is running: it returns.
    let kube = e.kube.clone();
    let wait = tokio::spawn(async move { kube.wait_ready(&git_repo(), 10 * SECOND).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    e.server.set_status(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        "apps",
        "podinfo",
        json!({"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "stored artifact"}]}),
    );
    wait.await.unwrap().unwrap();
}

#[tokio::test]
async fn named_condition_and_expected_failure_waits() {
    let e = with_app(|s| {
        s.flux_overrides.insert(
            "podinfo".into(),
            FluxBehaviour::NotReady {
                reason: "GitOperationFailed".into(),
                message: "failed to checkout and determine revision: unable to clone".into(),
            },
        );
    })
    .await;
    let got = e
        .kube
        .wait_condition(
            &web(),
            &ConditionExpectation::new("Available")
                .status("True")
                .reason("MinimumReplicasAvailable"),
            10 * SECOND,
        )
        .await
        .unwrap();
    assert_eq!(got.message, "Deployment has minimum availability.");

    let failure = e
        .kube
        .wait_failure(
            &git_repo(),
            &ConditionExpectation::new("Ready")
                .reason("GitOperationFailed")
                .message(Regex::new("unable to clone").unwrap()),
            10 * SECOND,
        )
        .await
        .unwrap();
    assert_eq!(failure.reason, "GitOperationFailed");

    // Expecting a failure that does not come: it became ready instead.
    e.server.set_status(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        "apps",
        "podinfo",
        json!({"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "ok"}]}),
    );
    let err = e
        .kube
        .wait_failure(
            &git_repo(),
            &ConditionExpectation::new("Ready").reason("GitOperationFailed"),
            10 * SECOND,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, WaitError::UnexpectedlyReady { .. }), "{err}");
    assert_eq!(err.status(), Status::Fail);

    // A named condition that never matches times out naming what it saw.
    let err = e
        .kube
        .wait_condition(
            &web(),
            &ConditionExpectation::new("Available").status("False"),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("last state: Available=True (MinimumReplicasAvailable)"),
        "{err}"
    );
}

#[tokio::test]
async fn api_unreachable_mid_wait_is_an_error() {
    let e = with_app(|s| s.deployments = DeploymentBehaviour::Ignore).await;
    let kube = e.kube.clone();
    let wait = tokio::spawn(async move { kube.wait_ready(&web(), 30 * SECOND).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    e.server.make_unreachable();
    let err = wait.await.unwrap().unwrap_err();
    assert!(started.elapsed() < 10 * SECOND);
    assert_eq!(err.status(), Status::Error, "{err}");
    assert!(err.is_unreachable(), "{err:?}");
    assert!(
        err.to_string().starts_with("watch `Deployment/apps/web`"),
        "{err}"
    );
}

#[tokio::test]
async fn api_unavailable_mid_wait_is_an_error() {
    let e = with_app(|s| s.deployments = DeploymentBehaviour::Ignore).await;
    let kube = e.kube.clone();
    let wait = tokio::spawn(async move { kube.wait_ready(&web(), 30 * SECOND).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    e.server.set_unavailable(true);
    let err = wait.await.unwrap().unwrap_err();
    assert_eq!(err.status(), Status::Error, "{err}");
    assert!(err.is_unreachable(), "{err:?}");
}

#[tokio::test]
async fn object_helpers_get_list_patch_and_delete() {
    let e = with_app(|_| {}).await;
    let patched = e
        .kube
        .merge_patch(&git_repo(), &json!({"spec": {"suspend": true}}))
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(2));
    let status = e
        .kube
        .merge_patch_status(
            &git_repo(),
            &json!({"status": {"artifact": {"revision": "main@sha1:abc"}}}),
        )
        .await
        .unwrap();
    assert_eq!(
        status.data["status"]["artifact"]["revision"],
        "main@sha1:abc"
    );
    assert_eq!(
        status.metadata.generation,
        Some(2),
        "status writes do not bump generation"
    );
    // A suspended Flux object fails fast.
    let err = e
        .kube
        .wait_ready(&git_repo(), 10 * SECOND)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`Suspended`"), "{err}");
    assert!(e.kube.delete(&git_repo()).await.unwrap());
    assert!(!e.kube.delete(&git_repo()).await.unwrap());
    assert!(e.kube.get(&git_repo()).await.unwrap().is_none());
    e.kube.wait_deleted(&git_repo(), SECOND).await.unwrap();
    let cm = ObjectRef::new("v1", "ConfigMap", None, "c");
    let err = e.kube.get(&cm).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "address namespaced `ConfigMap` `c` without a namespace"
    );
}

#[tokio::test]
async fn diagnostics_capture_objects_events_logs_and_redact_secrets() {
    let e = with_app(|s| {
        s.deployment_overrides
            .insert("web".into(), DeploymentBehaviour::ImagePullBackOff);
    })
    .await;
    let canary = "canary-token-7f3a9b";
    e.kube
        .apply_yaml(
            &format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: pull, namespace: apps}}\ntype: Opaque\nstringData: {{token: {canary}}}\n---\n\
                 apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: logger, namespace: apps}}\nspec:\n  selector: {{matchLabels: {{app: logger}}}}\n  template:\n    metadata: {{labels: {{app: logger}}}}\n    spec:\n      containers: [{{name: main, image: \"r.example/logger:1\"}}]\n"
            ),
            "s.yaml",
            &ApplyOptions::default(),
        )
        .await
        .unwrap();
    e.kube
        .wait_condition(
            &web(),
            &ConditionExpectation::new("Available").status("False"),
            10 * SECOND,
        )
        .await
        .unwrap();
    let err = e
        .kube
        .wait_ready(&web(), Duration::from_millis(600))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("MinimumReplicasUnavailable"),
        "{err}"
    );
    e.kube
        .wait_ready(
            &ObjectRef::new("apps/v1", "Deployment", Some("apps"), "logger"),
            10 * SECOND,
        )
        .await
        .unwrap();
    let out = e.dir.path().join("artifacts");
    let request = DiagnosticsRequest {
        objects: vec![
            web(),
            git_repo(),
            ObjectRef::new("v1", "Secret", Some("apps"), "pull"),
        ],
        namespaces: vec!["apps".into()],
        log_tail_lines: 1,
        scrub: vec![canary.into()],
        event_namespaces: Vec::new(),
    };
    let d = e.kube.collect_diagnostics(&request, &out).await;
    assert!(
        d.summary
            .contains("Deployment/apps/web: Available=False (MinimumReplicasUnavailable)"),
        "{}",
        d.summary
    );
    assert!(
        d.summary.contains("waiting: ImagePullBackOff"),
        "{}",
        d.summary
    );
    assert!(
        d.summary.contains("Warning BackOff Pod/web-"),
        "{}",
        d.summary
    );
    assert!(out.join("objects/deployment-apps-web.yaml").is_file());
    assert!(out.join("objects/secret-apps-pull.yaml").is_file());
    let logs: Vec<_> = std::fs::read_dir(out.join("logs/apps")).unwrap().collect();
    assert_eq!(logs.len(), 1, "only the running pod has logs");
    let log = std::fs::read_to_string(logs[0].as_ref().unwrap().path()).unwrap();
    assert_eq!(
        log, "{\"level\":\"info\",\"msg\":\"all workers started\"}\n",
        "tail of 1 line"
    );
    assert!(
        !out.join("problems.txt").exists(),
        "containers that never started are not asked for logs"
    );
    for f in &d.files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(!text.contains(canary), "{} leaks the secret", f.display());
        assert!(
            !text.contains("Y2FuYXJ5"),
            "{} leaks the encoded secret",
            f.display()
        );
    }
    let secret = std::fs::read_to_string(out.join("objects/secret-apps-pull.yaml")).unwrap();
    assert!(secret.contains("token: <redacted>"), "{secret}");
}

/// The double's own protocol, read raw: a watch from a resourceVersion replays later changes,
/// sends BOOKMARKs when allowed, and ends at `timeoutSeconds`; lists honour label selectors.
#[tokio::test]
async fn the_double_speaks_list_and_watch_with_bookmarks_and_timeouts() {
    let e = env(Options {
        bookmark_interval: Duration::from_millis(200),
        ..Options::default()
    })
    .await;
    e.kube
        .apply_yaml(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: apps, labels: {tier: web}}\ndata: {k: v1}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: apps, labels: {tier: db}}\n",
            "cms.yaml",
            &ApplyOptions::default(),
        )
        .await
        .unwrap();
    let base = format!("{}/api/v1/namespaces/apps/configmaps", e.server.url());
    let list: serde_json::Value = reqwest::get(format!("{base}?labelSelector=tier%3Dweb"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    e.kube
        .merge_patch(
            &ObjectRef::new("v1", "ConfigMap", Some("apps"), "a"),
            &json!({"data": {"k": "v2"}}),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let body = reqwest::get(format!(
        "{base}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1"
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < 5 * SECOND,
        "{elapsed:?}"
    );
    let events: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["type"], "MODIFIED");
    assert_eq!(events[0]["object"]["data"]["k"], "v2");
    assert!(events.iter().any(|e| e["type"] == "BOOKMARK"), "{body}");
    assert_eq!(e.server.counters.get("watch", "configmaps"), 1);
}
