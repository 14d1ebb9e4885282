//! The scenario engine through the real `k8s` paths (kube-rs client, server-side apply,
//! watch-based waits) against the API server TEST DOUBLE and its scripted controller: a passing
//! scenario over apply/waitFor/assert/patch/delete/expectFailure, a stalled object failing fast
//! with diagnostics of the touched objects only (not the fixture Secret the engine set up), and an unreachable API server as an error.

mod support;

use flux_compat::config::Diagnostics;
use flux_compat::config::scenario::{Context, load};
use flux_compat::k8s::{ApplyOptions, Kube};
use flux_compat::model::scenario::Scenario;
use flux_compat::model::{Component, FluxVersion, KubeMinor, ScenarioResult, Status};
use flux_compat::scenario::{
    Artifacts, Cell, Check, Engine, FixtureOps, FluxOps, GitPushRequest, Observed, OpsError,
    Verdict, WaitOutcome, namespace_for,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use support::apiserver::{ApiServer, CONTEXT, DeploymentBehaviour, FluxBehaviour, Options, Script};
use tokio_util::sync::CancellationToken;

/// Fixture plane and Flux installer are not under test here: minimal doubles.
struct NoFixtures;

impl FixtureOps for NoFixtures {
    fn variables(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(
            "fixtures.gitUrl".to_string(),
            "https://git.invalid".to_string(),
        )])
    }
    fn namespace_objects(&self, namespace: &str) -> Result<Vec<Value>, OpsError> {
        Ok(vec![json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "fixtures-ca", "namespace": namespace},
            "stringData": {"ca.crt": "pem"}})])
    }
    async fn git_push(&self, _: &GitPushRequest) -> Result<String, OpsError> {
        Err(OpsError::infra("git push", "no fixture plane in this test"))
    }
    async fn wait_webhook(&self, check: Check<'_>, _: Duration) -> Result<WaitOutcome, OpsError> {
        Ok(match check(Observed::List(&[])) {
            Verdict::Done(()) => WaitOutcome::Done,
            Verdict::Failed(f) => WaitOutcome::Failed(f.message),
            Verdict::Pending(m) => WaitOutcome::TimedOut(m),
        })
    }
}

struct NoFlux;

impl FluxOps for NoFlux {
    async fn install(&self, v: &FluxVersion) -> Result<(), OpsError> {
        Err(OpsError::infra(
            format!("install Flux {v}"),
            "not in this test",
        ))
    }
    async fn upgrade(&self, v: &FluxVersion) -> Result<(), OpsError> {
        Err(OpsError::infra(
            format!("upgrade Flux {v}"),
            "not in this test",
        ))
    }
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: kustomizations.kustomize.toolkit.fluxcd.io}
spec:
  group: kustomize.toolkit.fluxcd.io
  names: {kind: Kustomization, listKind: KustomizationList, plural: kustomizations, singular: kustomization}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
    subresources: {status: {}}
"#;

struct Env {
    server: ApiServer,
    kube: Kube,
    dir: tempfile::TempDir,
}

async fn env() -> Env {
    let options = Options {
        script: Script {
            deployments: DeploymentBehaviour::Available,
            ..Script::default()
        },
        ..Options::default()
    };
    let server = ApiServer::start(options).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path());
    let kube = Kube::connect(&kubeconfig, CONTEXT).await.unwrap();
    // What installing Flux provides: the CRD.
    kube.apply_yaml(CRD, "crd", &ApplyOptions::default())
        .await
        .unwrap();
    Env { server, kube, dir }
}

fn cell() -> Cell {
    Cell {
        run_id: "r1".into(),
        cell_id: "1.36-upstream-v2.9.4-double".into(),
        kubernetes: KubeMinor::new(1, 36),
        flux: "v2.9.4".parse().unwrap(),
        previous_flux: None,
        flux_namespace: "flux-system".into(),
        channel: "upstream".into(),
        channel_fips: false,
        components: Component::ALL.to_vec(),
        step_timeout: Duration::from_secs(5),
        teardown_timeout: Duration::from_secs(5),
    }
}

fn scenario(text: &str) -> Scenario {
    let mut d = Diagnostics::default();
    let ctx = Context {
        channels: None,
        fixtures_root: None,
        default_timeout: Duration::from_secs(60),
        flux_versions: None,
    };
    let s = load(Path::new("t.yaml"), text, &ctx, &mut d);
    assert!(
        d.is_empty(),
        "{:?}",
        d.into_sorted()
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
    );
    s.unwrap()
}

async fn run(e: &Env, text: &str) -> ScenarioResult {
    let engine = Engine {
        kube: &e.kube,
        fixtures: &NoFixtures,
        flux: &NoFlux,
    };
    let artifacts = Artifacts {
        dir: e.dir.path().join("artifacts"),
        relative: "artifacts/c/t".into(),
    };
    engine
        .run(
            &scenario(text),
            &cell(),
            &artifacts,
            &CancellationToken::new(),
        )
        .await
}

const SCENARIO: &str = r#"apiVersion: flux-compat/v1alpha1
kind: Scenario
metadata: {name: t}
spec:
  steps:
    - name: create
      apply:
        manifests: |
          apiVersion: kustomize.toolkit.fluxcd.io/v1
          kind: Kustomization
          metadata: {name: app, namespace: "${{ namespace }}"}
          spec: {interval: 1m, path: ./deploy, prune: true, sourceRef: {kind: GitRepository, name: app}}
          ---
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: app-config, namespace: "${{ namespace }}", labels: {app: demo}}
          data: {greeting: hello, url: "${{ fixtures.gitUrl }}/app.git"}
          ---
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: bystander-source, namespace: "${{ namespace }}"}
          data: {x: "1"}
    - waitFor: {kind: Kustomization, name: app}
    - name: named
      waitFor: {kind: Kustomization, name: app, condition: Ready, status: "True", reason: ReconciliationSucceeded}
    - name: content
      assert:
        object: {kind: ConfigMap, name: app-config}
        fields:
          - {path: data.greeting, equals: hello}
          - {path: data.url, matches: "^https://git.invalid/app.git$"}
        contains: {metadata: {labels: {app: demo}}}
    - name: count
      assert: {count: {kind: ConfigMap, labelSelector: app=demo, equals: 1}}
    - name: event
      assert: {event: {object: {kind: Kustomization, name: app}, reason: ReconciliationSucceeded}}
    - patch: {kind: Kustomization, name: app, merge: {spec: {interval: 2m}}}
    - name: reconciled again
      waitFor: {kind: Kustomization, name: app}
    - assert:
        object: {kind: Kustomization, name: app}
        fields: [{path: status.observedGeneration, equals: 2}]
    - name: remove
      delete: {kind: ConfigMap, name: app-config}
    - name: removed
      assert: {count: {kind: ConfigMap, labelSelector: app=demo, equals: 0}}
  finally:
    - delete: {kind: Kustomization, name: app}
"#;

#[tokio::test]
async fn a_scenario_passes_through_the_real_k8s_paths() {
    let e = env().await;
    let r = run(&e, SCENARIO).await;
    assert_eq!(r.status, Status::Pass, "{r:#?}");
    assert!(r.steps.iter().all(|s| s.status == Status::Pass));
    let ns = namespace_for("t", &cell());
    let gone = e
        .kube
        .get(&flux_compat::k8s::ObjectRef::new(
            "v1",
            "Namespace",
            None,
            &ns,
        ))
        .await
        .unwrap();
    assert!(gone.is_none(), "the scenario namespace is deleted");
}

#[tokio::test]
async fn expected_failures_pass_and_stalls_fail_fast_with_touched_diagnostics() {
    let e = env().await;
    e.server.script(|s| {
        s.flux_overrides.insert(
            "broken".into(),
            FluxBehaviour::NotReady {
                reason: "BuildFailed".into(),
                message: "kustomize build failed".into(),
            },
        );
        s.flux_overrides.insert(
            "app".into(),
            FluxBehaviour::Stalled {
                reason: "InvalidPath".into(),
                message: "path not found".into(),
            },
        );
    });
    let broken = SCENARIO.replace("name: app, namespace", "name: broken, namespace");
    let cut = broken.find("    - waitFor").unwrap();
    let text = format!(
        "{}    - expectFailure: {{kind: Kustomization, name: broken, reason: BuildFailed, message: \"build failed\"}}\n",
        &broken[..cut]
    );
    let r = run(&e, &text).await;
    assert_eq!(r.status, Status::Pass, "{r:#?}");

    let t0 = std::time::Instant::now();
    let r = run(&e, SCENARIO).await;
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "Stalled must fail fast"
    );
    assert_eq!(r.status, Status::Fail, "{r:#?}");
    let wait = r.steps.iter().find(|s| s.kind == "waitFor").unwrap();
    assert!(
        wait.message
            .as_deref()
            .unwrap()
            .contains("Ready cannot be reached: InvalidPath: path not found"),
        "{wait:?}"
    );
    let diag = r.diagnostics.unwrap();
    assert!(
        diag.contains("Kustomization/") && diag.contains("app-config"),
        "{diag}"
    );
    assert!(
        !diag.contains("fixtures-ca"),
        "only touched objects, not the namespace's others: {diag}"
    );
    let objects: Vec<_> = std::fs::read_dir(e.dir.path().join("artifacts/objects"))
        .unwrap()
        .collect();
    assert_eq!(
        objects.len(),
        3,
        "the Kustomization and the two applied ConfigMaps: {objects:?}"
    );
}

#[tokio::test]
async fn an_unreachable_api_server_is_an_error() {
    let e = env().await;
    e.server.make_unreachable();
    let r = run(&e, SCENARIO).await;
    assert_eq!(r.status, Status::Error, "{r:#?}");
    assert_eq!(r.steps[0].name, "create namespace");
    assert_eq!(r.steps[0].status, Status::Error);
}

#[tokio::test]
async fn cluster_scoped_objects_are_counted_and_deleted_cluster_wide() {
    let e = env().await;
    let text = r#"apiVersion: flux-compat/v1alpha1
kind: Scenario
metadata: {name: t}
spec:
  steps:
    - apply:
        manifests: |
          apiVersion: rbac.authorization.k8s.io/v1
          kind: ClusterRole
          metadata: {name: "${{ namespace }}-reader", labels: {owner: "${{ namespace }}"}}
          rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
    - name: one
      assert: {count: {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, labelSelector: "owner=${{ namespace }}", equals: 1}}
    - delete: {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, name: "${{ namespace }}-reader"}
    - name: none
      timeout: 2s
      assert: {count: {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, labelSelector: "owner=${{ namespace }}", equals: 0}}
"#;
    let r = run(&e, text).await;
    assert_eq!(r.status, Status::Pass, "{r:#?}");
}
