//! The scenario engine on the API server TEST DOUBLE loaded with the real Flux v2.9.4 CRDs: the
//! engine talks to it through `k8s::Kube` like a real cell. Flux objects are reconciled by the
//! double's stand-in for controllers that are not installed (Ready, NotReady, Stalled, never, per
//! object name), Receivers by its notification-controller imitation, installed from the real
//! manifests with its Service and NetworkPolicies. Fixture plane and Flux installer are
//! recording doubles (they are not Kubernetes). Covers success and failure of every step kind,
//! timeouts, cancellation, `finally`, diagnostics limited to touched objects, fail vs error.

#[allow(unused_imports, clippy::type_complexity)]
mod support;

use flux_compat::config::Diagnostics;
use flux_compat::config::scenario::{Context, load};
use flux_compat::k8s::{ApplyOptions, Kube, ObjectRef, parse_documents};
use flux_compat::model::scenario::Scenario;
use flux_compat::model::{Component, FluxVersion, KubeMinor, ScenarioResult, Status, StepResult};
use flux_compat::scenario::{
    Artifacts, Cell, Check, Engine, FixtureOps, FluxOps, GitPushRequest, Observed, OpsError,
    Verdict, WaitOutcome, namespace_for,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;
use support::apiserver::{ApiServer, CONTEXT, FluxBehaviour, Options};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------
// Collaborators that are not Kubernetes: recording doubles

struct Fixtures {
    vars: BTreeMap<String, String>,
    pushes: Mutex<Vec<GitPushRequest>>,
    push_fails: bool,
    webhook: Vec<Value>,
}

impl Fixtures {
    fn new() -> Self {
        let mut vars = BTreeMap::new();
        vars.insert("fixtures.gitUrl".into(), "https://git.fixtures:8443".into());
        vars.insert("fixtures.caSecret".into(), "fixtures-ca".into());
        Self {
            vars,
            pushes: Mutex::new(Vec::new()),
            push_fails: false,
            webhook: Vec::new(),
        }
    }
}

impl FixtureOps for Fixtures {
    fn variables(&self) -> BTreeMap<String, String> {
        self.vars.clone()
    }

    fn namespace_objects(&self, namespace: &str) -> Result<Vec<Value>, OpsError> {
        Ok(vec![json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "fixtures-ca", "namespace": namespace},
            "stringData": {"ca.crt": "-----BEGIN CERTIFICATE-----"}
        })])
    }

    async fn git_push(&self, push: &GitPushRequest) -> Result<String, OpsError> {
        if self.push_fails {
            return Err(OpsError::infra(
                "git push",
                "HTTP 503 from the fixture git server",
            ));
        }
        self.pushes.lock().unwrap().push(push.clone());
        Ok("abc1234".into())
    }

    async fn wait_webhook(&self, check: Check<'_>, _: Duration) -> Result<WaitOutcome, OpsError> {
        // The sink receives nothing more after setup, so one judgement is final.
        Ok(match check(Observed::List(&self.webhook)) {
            Verdict::Done(()) => WaitOutcome::Done,
            Verdict::Failed(f) => WaitOutcome::Failed(f.message),
            Verdict::Pending(m) => WaitOutcome::TimedOut(m),
        })
    }
}

#[derive(Default)]
struct Flux {
    calls: Mutex<Vec<String>>,
    upgrade_misbehaves: bool,
}

impl FluxOps for Flux {
    async fn install(&self, version: &FluxVersion) -> Result<(), OpsError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("install {version}"));
        Ok(())
    }
    async fn upgrade(&self, version: &FluxVersion) -> Result<(), OpsError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("upgrade {version}"));
        if self.upgrade_misbehaves {
            return Err(OpsError::Misbehaved(
                "kustomize-controller never became ready".into(),
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster: the double with the real Flux CRDs

/// Of the real install: CRDs, the namespace, and notification-controller with the Service and
/// NetworkPolicies in front of it (so Receivers are served the way they are in a cell).
fn wanted(kind: &str, name: &str) -> bool {
    matches!(
        kind,
        "CustomResourceDefinition" | "Namespace" | "NetworkPolicy"
    ) || (kind == "Deployment" && name == "notification-controller")
        || (kind == "Service" && name == "webhook-receiver")
}

struct Harness {
    server: ApiServer,
    kube: Kube,
    fixtures: Fixtures,
    flux: Flux,
    dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// A double whose stand-in controller treats the Flux objects named in `faults` so.
    async fn with(faults: impl FnOnce(&mut BTreeMap<&'static str, FluxBehaviour>)) -> Self {
        let server = ApiServer::start(Options::default()).await;
        let mut f = BTreeMap::from([
            (
                "broken",
                not_ready(
                    "BuildFailed",
                    "kustomize build failed: accumulating resources",
                ),
            ),
            ("stalled", stalled("InvalidPath", "path not found")),
            ("slow", FluxBehaviour::Ignore),
        ]);
        faults(&mut f);
        server.script(|s| {
            for (name, b) in f {
                s.flux_overrides.insert(name.to_string(), b);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = server.write_kubeconfig(dir.path());
        let kube = Kube::connect(&kubeconfig, CONTEXT).await.unwrap();
        let text = std::fs::read_to_string(support::flux_manifests("v2.9.4")).unwrap();
        let objects = parse_documents(&text, "install-v2.9.4.yaml").unwrap();
        let objects = objects
            .into_iter()
            .filter(|o| {
                let kind = o.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("");
                wanted(kind, o.metadata.name.as_deref().unwrap_or(""))
            })
            .collect();
        kube.apply_objects(objects, &ApplyOptions::default())
            .await
            .unwrap();
        Self {
            server,
            kube,
            fixtures: Fixtures::new(),
            flux: Flux::default(),
            dir,
        }
    }

    async fn run(&self, s: &Scenario, cancel: &CancellationToken) -> ScenarioResult {
        let engine = Engine {
            kube: &self.kube,
            fixtures: &self.fixtures,
            flux: &self.flux,
        };
        let artifacts = Artifacts {
            dir: self.dir.path().join("artifacts"),
            relative: "artifacts/c/t".into(),
        };
        engine.run(s, &cell(), &artifacts, cancel).await
    }

    async fn go(&self, text: &str) -> ScenarioResult {
        self.run(&scenario(text), &CancellationToken::new()).await
    }

    async fn exists(&self, api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> bool {
        let r = ObjectRef::new(api_version, kind, ns, name);
        self.kube.get(&r).await.unwrap().is_some()
    }
}

fn not_ready(reason: &str, message: &str) -> FluxBehaviour {
    FluxBehaviour::NotReady {
        reason: reason.into(),
        message: message.into(),
    }
}

fn stalled(reason: &str, message: &str) -> FluxBehaviour {
    FluxBehaviour::Stalled {
        reason: reason.into(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn scenario(text: &str) -> Scenario {
    let mut d = Diagnostics::default();
    let ctx = Context {
        channels: None,
        fixtures_root: None,
        default_timeout: Duration::from_secs(30),
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

fn cell() -> Cell {
    Cell {
        run_id: "r1".into(),
        cell_id: "1.36-upstream-v2.9.4-double".into(),
        kubernetes: KubeMinor::new(1, 36),
        flux: "v2.9.4".parse().unwrap(),
        previous_flux: Some("v2.8.8".parse().unwrap()),
        flux_namespace: "flux-system".into(),
        channel: "upstream".into(),
        channel_fips: false,
        components: Component::ALL.to_vec(),
        step_timeout: Duration::from_secs(3),
        teardown_timeout: Duration::from_secs(3),
    }
}

const HEAD: &str = "apiVersion: flux-compat/v1alpha1\nkind: Scenario\nmetadata:\n  name: t\nspec:\n  fixtures: [git/app]\n";

/// A Kustomization named `NAME` plus the ConfigMap its build would produce.
const APPLY_APP: &str = r#"
    - name: create
      apply:
        manifests: |
          apiVersion: kustomize.toolkit.fluxcd.io/v1
          kind: Kustomization
          metadata:
            name: NAME
          spec:
            interval: 1m
            path: ./deploy
            prune: true
            sourceRef: {kind: GitRepository, name: app}
          ---
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: app-config, labels: {app: demo}}
          data: {greeting: hello}
"#;

fn apply(name: &str) -> String {
    APPLY_APP.replace("NAME", name)
}

fn step<'a>(r: &'a ScenarioResult, name: &str) -> &'a StepResult {
    r.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step `{name}` in {:#?}", r.steps))
}

fn message<'a>(r: &'a ScenarioResult, name: &str) -> &'a str {
    step(r, name).message.as_deref().unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// Success paths

#[tokio::test]
async fn every_step_kind_passes_on_a_behaving_cluster() {
    let mut h = Harness::new().await;
    let ns = namespace_for("t", &cell());
    h.fixtures.webhook = vec![
        json!({"involvedObject": {"kind": "Kustomization", "name": "app", "namespace": ns}, "reason": "ReconciliationSucceeded", "message": "Reconciliation finished"}),
    ];
    let text = format!(
        "{HEAD}  timeout: 30s\n  steps:\n    - installFlux: {{version: \"${{{{ flux.previousVersion }}}}\"}}\n{}{}",
        apply("app"),
        r#"
          ---
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: bystander, labels: {app: demo}}
    - waitFor: {kind: Kustomization, name: app}
    - name: named
      waitFor: {kind: Kustomization, name: app, condition: Ready, status: "True", reason: ReconciliationSucceeded, message: "succeeded"}
    - name: fields
      assert:
        object: {kind: ConfigMap, name: app-config}
        fields:
          - {path: data.greeting, equals: hello}
          - {path: metadata.labels.app, matches: "^de"}
          - {path: data.missing, exists: false}
        contains: {data: {greeting: hello}}
    - name: count
      assert:
        count: {apiVersion: v1, kind: ConfigMap, labelSelector: app=demo, equals: 2}
    - name: event
      assert:
        event: {object: {kind: Kustomization, name: app}, reason: ReconciliationSucceeded, message: "succeeded"}
    - name: webhook
      assert:
        webhook: {object: {kind: Kustomization, name: app}, message: finished}
    - name: push
      gitPush:
        repository: app
        message: change greeting
        files:
          deploy/configmap.yaml: "greeting: changed in ${{ namespace }}"
    - name: record the commit
      apply:
        manifests: |
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: pushed}
          data: {commit: "${{ git.lastCommit }}"}
    - name: the commit is threaded
      assert:
        object: {kind: ConfigMap, name: pushed}
        fields: [{path: data.commit, equals: abc1234}]
    - patch: {kind: Kustomization, name: app, merge: {spec: {interval: 2m}}}
    - name: patched and reconciled
      waitFor: {kind: Kustomization, name: app}
    - name: at the new generation
      assert:
        object: {kind: Kustomization, name: app}
        fields: [{path: status.observedGeneration, equals: 2}, {path: spec.interval, equals: 2m}]
    - upgradeFlux: {}
    - name: prune
      delete:
        kind: Kustomization
        name: app
        gone: [{kind: ConfigMap, name: never-created}]
  finally:
    - name: cleanup
      delete: {kind: ConfigMap, name: bystander}
"#
    );
    let r = h.go(&text).await;
    assert_eq!(r.status, Status::Pass, "{r:#?}");
    assert!(
        r.steps.iter().all(|s| s.status == Status::Pass),
        "{:#?}",
        r.steps
    );
    assert_eq!(r.steps.len(), 1 + 16 + 1, "{:#?}", r.steps);
    assert!(r.diagnostics.is_none() && r.artifacts.is_none());
    assert_eq!(
        *h.flux.calls.lock().unwrap(),
        vec!["install v2.8.8", "upgrade v2.9.4"]
    );
    let pushes = h.fixtures.pushes.lock().unwrap().clone();
    assert_eq!(
        pushes[0].files["deploy/configmap.yaml"],
        format!("greeting: changed in {ns}")
    );
    // The namespace and everything in it are gone.
    assert!(!h.exists("v1", "Namespace", None, &ns).await);
    assert!(!h.exists("v1", "Secret", Some(&ns), "fixtures-ca").await);
    assert_eq!(r.properties["namespace"], ns);
}

#[tokio::test]
async fn the_namespace_is_labelled_with_the_run_and_holds_the_fixture_secrets() {
    let h = Harness::new().await;
    let r = h
        .go(&format!(
            "{HEAD}  steps:\n    - name: labels\n      assert:\n        object: {{kind: Namespace, name: \"${{{{ namespace }}}}\"}}\n        fields: [{{path: \"metadata.labels[\\\"flux-compat.io/run\\\"]\", equals: r1}}, {{path: \"metadata.labels[\\\"flux-compat.io/scenario\\\"]\", equals: t}}]\n    - name: secret\n      assert:\n        object: {{kind: Secret, name: fixtures-ca}}\n        fields: [{{path: \"data[\\\"ca.crt\\\"]\", equals: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t}}]\n"
        ))
        .await;
    assert_eq!(r.status, Status::Pass, "{r:#?}");
}

#[tokio::test]
async fn not_applicable_scenarios_are_skipped_with_the_reason() {
    let h = Harness::new().await;
    let text = format!(
        "{HEAD}  applicability: {{flux: \">=3.0.0\"}}\n  steps:\n{}",
        apply("app")
    );
    let r = h.go(&text).await;
    assert_eq!(r.status, Status::Skip);
    assert_eq!(
        r.message.as_deref(),
        Some("needs Flux >=3.0.0; cell runs v2.9.4")
    );
    assert!(r.steps.is_empty());
    let ns = namespace_for("t", &cell());
    assert!(
        !h.exists("v1", "Namespace", None, &ns).await,
        "nothing is created for a skipped scenario"
    );
}

/// Defect 1 of issue 10: the engine required `status.observedGeneration`, which the real
/// ArtifactGenerator CRD does not have (the double prunes it like the API server), and waited
/// forever; the one readiness library reads the Ready condition's `observedGeneration`.
#[tokio::test]
async fn kinds_without_status_observed_generation_become_ready_by_their_condition() {
    let h = Harness::new().await;
    let text = format!(
        "{HEAD}  steps:\n{}",
        r#"    - apply:
        manifests: |
          apiVersion: source.extensions.fluxcd.io/v1beta1
          kind: ArtifactGenerator
          metadata: {name: gen}
          spec:
            sources: [{alias: app, kind: GitRepository, name: app}]
            artifacts: [{name: out, copy: [{from: "@app/deploy/configmap.yaml", to: "@artifact/"}]}]
    - {name: ready, timeout: 3s, waitFor: {kind: ArtifactGenerator, name: gen}}
    - name: pruned
      assert:
        object: {kind: ArtifactGenerator, name: gen}
        fields: [{path: status.observedGeneration, exists: false}, {path: "status.conditions[0].observedGeneration", equals: 1}]
"#
    );
    let r = h.go(&text).await;
    assert_eq!(r.status, Status::Pass, "{:#?}", r.steps);
}

// ---------------------------------------------------------------------------------------------
// Failure paths

#[tokio::test]
async fn a_wait_that_never_succeeds_fails_later_steps_skip_and_finally_runs() {
    let h = Harness::new().await;
    let text = format!(
        "{HEAD}  steps:\n{}{}",
        apply("broken"),
        r#"
    - name: ready
      timeout: 300ms
      waitFor: {kind: Kustomization, name: broken}
    - name: after
      assert: {count: {apiVersion: v1, kind: ConfigMap, equals: 0}}
  finally:
    - name: tidy
      delete: {kind: Kustomization, name: broken}
"#
    );
    let r = h.go(&text).await;
    assert_eq!(r.status, Status::Fail, "{r:#?}");
    let ready = step(&r, "ready");
    assert_eq!(ready.status, Status::Fail);
    let m = message(&r, "ready");
    assert!(
        m.contains("not reached within 300ms") && m.contains("BuildFailed"),
        "{m}"
    );
    let after = step(&r, "after");
    assert_eq!(after.status, Status::Skip);
    assert_eq!(message(&r, "after"), "not run: step `ready` failed");
    assert_eq!(step(&r, "finally: tidy").status, Status::Pass);
    assert!(
        r.message
            .as_deref()
            .unwrap()
            .starts_with("step `ready` (waitFor):")
    );
    assert_eq!(r.artifacts.as_deref(), Some("artifacts/c/t"));
    // Captured before `finally` removed the object the failure is about.
    let diag = r.diagnostics.as_deref().unwrap();
    assert!(diag.contains("broken: Ready=False (BuildFailed)"), "{diag}");
}

#[tokio::test]
async fn diagnostics_cover_exactly_the_touched_objects() {
    let h = Harness::new().await;
    // An object in the scenario's namespace that no step touches.
    let ns = namespace_for("t", &cell());
    let bystander = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bystander"}, "data": {"greeting": "hello"}});
    h.kube.apply_values(&[bystander], None).await.unwrap();
    h.kube.apply_values(&[cm], Some(&ns)).await.unwrap();
    let text = format!(
        "{HEAD}  steps:\n{}{}",
        apply("app"),
        r#"
    - waitFor: {kind: Kustomization, name: app}
    - name: wrong content
      timeout: 200ms
      assert:
        object: {kind: ConfigMap, name: app-config}
        fields: [{path: data.greeting, equals: bonjour}]
"#
    );
    let r = h.go(&text).await;
    assert_eq!(r.status, Status::Fail);
    let m = message(&r, "wrong content");
    assert!(
        m.contains("`data.greeting` is \"hello\", expected \"bonjour\""),
        "{m}"
    );
    let diag = r.diagnostics.unwrap();
    assert!(
        diag.contains("Kustomization/") && diag.contains("Ready=True (ReconciliationSucceeded)"),
        "{diag}"
    );
    assert!(diag.contains("app-config"), "{diag}");
    for untouched in ["bystander", "fixtures-ca"] {
        assert!(
            !diag.contains(untouched),
            "an untouched object leaked into diagnostics: {diag}"
        );
    }
    assert!(
        diag.contains("ReconciliationSucceeded Kustomization/app"),
        "namespace events: {diag}"
    );
    let art = h.dir.path().join("artifacts");
    let mut files: Vec<String> = std::fs::read_dir(art.join("objects"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    // The `k8s` collector's file names: `kind-namespace-name.yaml`.
    assert!(
        files[0].starts_with("configmap-") && files[0].ends_with("-app-config.yaml"),
        "{files:?}"
    );
    assert!(files[1].starts_with("kustomization-"), "{files:?}");
    assert!(art.join(format!("events/namespace-{ns}.txt")).is_file());
    assert!(!art.join("pods").exists(), "no pods of the namespace");
}

#[tokio::test]
async fn stalled_fails_fast() {
    let h = Harness::new().await;
    let text = format!(
        "{HEAD}  steps:\n{}    - {{name: ready, timeout: 20s, waitFor: {{kind: Kustomization, name: stalled}}}}\n",
        apply("stalled")
    );
    let t0 = std::time::Instant::now();
    let r = h.go(&text).await;
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(r.status, Status::Fail);
    let m = message(&r, "ready");
    assert!(m.contains("Ready cannot be reached: InvalidPath"), "{m}");
}

#[tokio::test]
async fn expect_failure_passes_on_the_expected_reason_and_fails_otherwise() {
    let h = Harness::new().await;
    let text = format!(
        "{HEAD}  steps:\n{}    - {{name: denied, expectFailure: {{kind: Kustomization, name: broken, reason: BuildFailed, message: \"accumulating\"}}}}\n",
        apply("broken")
    );
    assert_eq!(h.go(&text).await.status, Status::Pass);

    let text = format!(
        "{HEAD}  steps:\n{}    - {{name: denied, timeout: 2s, expectFailure: {{kind: Kustomization, name: app, reason: BuildFailed}}}}\n",
        apply("app")
    );
    let r = h.go(&text).await;
    assert_eq!(r.status, Status::Fail);
    // The readiness library ends an expect-failure wait at once when the object becomes ready.
    let m = message(&r, "denied");
    assert!(
        m.contains("the expected failure Ready=False with reason `BuildFailed` cannot be reached")
            && m.contains("became ready instead"),
        "{m}"
    );
}

#[tokio::test]
async fn count_event_and_webhook_assertions_fail_when_absent() {
    let h = Harness::new().await;
    let base = format!(
        "{HEAD}  steps:\n{}    - waitFor: {{kind: Kustomization, name: app}}\n",
        apply("app")
    );
    let r = h.go(&format!("{base}    - {{name: c, timeout: 200ms, assert: {{count: {{apiVersion: v1, kind: ConfigMap, labelSelector: app=demo, equals: 0}}}}}}\n")).await;
    assert_eq!(step(&r, "c").status, Status::Fail);
    let m = message(&r, "c");
    assert!(
        m.contains("expected 0 ConfigMap(s) matching `app=demo`") && m.contains("app-config"),
        "{m}"
    );

    let r = h.go(&format!("{base}    - {{name: e, timeout: 200ms, assert: {{event: {{reason: HealthCheckFailed}}}}}}\n")).await;
    assert_eq!(step(&r, "e").status, Status::Fail);
    let m = message(&r, "e");
    assert!(
        m.starts_with("an event reason `HealthCheckFailed` is not among the 1 event(s) seen; latest: Kustomization/app ReconciliationSucceeded"),
        "{m}"
    );

    let r = h
        .go(&format!(
            "{base}    - {{name: w, timeout: 200ms, assert: {{webhook: {{message: finished}}}}}}\n"
        ))
        .await;
    assert_eq!(step(&r, "w").status, Status::Fail);
    assert_eq!(
        message(&r, "w"),
        "webhook sink: an event message matching `finished` is not among the 0 event(s) seen"
    );
}

#[tokio::test]
async fn patch_and_delete_of_missing_objects_fail_and_stuck_deletions_time_out() {
    let h = Harness::new().await;
    let r = h.go(&format!("{HEAD}  steps:\n    - {{name: p, patch: {{kind: Kustomization, name: nope, merge: {{spec: {{suspend: true}}}}}}}}\n")).await;
    assert_eq!(step(&r, "p").status, Status::Fail);
    assert!(message(&r, "p").contains("not found"), "{r:#?}");

    let r = h
        .go(&format!(
            "{HEAD}  steps:\n    - {{name: d, delete: {{kind: ConfigMap, name: nope}}}}\n"
        ))
        .await;
    assert_eq!(step(&r, "d").status, Status::Fail);
    assert!(message(&r, "d").contains("not found"), "{r:#?}");

    let text = format!(
        "{HEAD}  steps:\n{}",
        r#"
    - apply:
        manifests: |
          apiVersion: v1
          kind: ConfigMap
          metadata:
            name: held
            finalizers: [example.com/hold]
    - name: d
      timeout: 200ms
      delete: {kind: ConfigMap, name: held}
  finally:
    - name: release
      patch: {kind: ConfigMap, name: held, merge: {metadata: {finalizers: null}}}
"#
    );
    let r = h.go(&text).await;
    let d = step(&r, "d");
    assert_eq!(d.status, Status::Fail);
    assert!(
        message(&r, "d").contains("still present, deleting, finalizers: example.com/hold"),
        "{d:?}"
    );
    // `finally` released it, so the namespace went too.
    assert_eq!(step(&r, "finally: release").status, Status::Pass);
    assert!(
        r.steps.iter().all(|s| s.kind != "teardown"),
        "{:#?}",
        r.steps
    );
}

#[tokio::test]
async fn prune_checks_fail_when_objects_survive() {
    let h = Harness::new().await;
    let text = format!(
        "{HEAD}  steps:\n{}    - {{name: prune, timeout: 200ms, delete: {{kind: Kustomization, name: app, gone: [{{kind: ConfigMap, name: app-config}}]}}}}\n",
        apply("app")
    );
    let r = h.go(&text).await;
    assert_eq!(step(&r, "prune").status, Status::Fail);
    let m = message(&r, "prune");
    assert!(
        m.contains("pruning / garbage collection not reached") && m.contains("app-config"),
        "{m}"
    );
}

#[tokio::test]
async fn what_the_api_server_refuses_fails_and_harness_problems_are_errors() {
    // The API server answers and refuses (strict field validation of the real CRD): the product.
    let h = Harness::new().await;
    let text = apply("app").replace("prune: true", "prune: true\n            prnue: true");
    let r = h.go(&format!("{HEAD}  steps:\n{text}")).await;
    assert_eq!(step(&r, "create").status, Status::Fail, "{r:#?}");
    assert!(message(&r, "create").contains("prnue"), "{r:#?}");

    // A template variable the cell does not provide.
    let mut h = Harness::new().await;
    h.fixtures.vars.remove("fixtures.gitUrl");
    let text = format!(
        "{HEAD}  steps:\n    - name: a\n      apply:\n        manifests: |\n          apiVersion: v1\n          kind: ConfigMap\n          metadata: {{name: u}}\n          data: {{url: \"${{{{ fixtures.gitUrl }}}}\"}}\n"
    );
    let r = h.go(&text).await;
    assert_eq!(step(&r, "a").status, Status::Error);
    assert!(message(&r, "a").contains("`fixtures.gitUrl` has no value"));

    // The fixture push fails.
    h.fixtures.push_fails = true;
    let r = h.go(&format!("{HEAD}  steps:\n    - {{name: g, gitPush: {{repository: app, message: m, tag: v2.0.0}}}}\n")).await;
    assert_eq!(r.status, Status::Error);
    assert!(
        message(&r, "g").contains("push to fixture `app`: git push: HTTP 503"),
        "{r:#?}"
    );

    // The API server is gone.
    h.server.make_unreachable();
    let r = h.go(&format!("{HEAD}  steps:\n{}", apply("app"))).await;
    assert_eq!(r.status, Status::Error);
    assert_eq!(step(&r, "create namespace").status, Status::Error);
    assert_eq!(step(&r, "create").status, Status::Skip);
}

#[tokio::test]
async fn the_scenario_timeout_bounds_steps_and_finally_still_runs() {
    let h = Harness::new().await;
    let text = format!(
        "{HEAD}  timeout: 1s\n  steps:\n{}    - {{name: wait, waitFor: {{kind: Kustomization, name: slow}}}}\n    - {{name: never, waitFor: {{kind: Kustomization, name: slow}}}}\n  finally:\n    - {{name: tidy, delete: {{kind: Kustomization, name: slow}}}}\n",
        apply("slow")
    );
    let t0 = std::time::Instant::now();
    let r = h.go(&text).await;
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let w = step(&r, "wait");
    assert_eq!(w.status, Status::Fail);
    assert!(
        message(&r, "wait").contains("by the scenario timeout 1s"),
        "{w:?}"
    );
    assert_eq!(step(&r, "never").status, Status::Skip);
    assert_eq!(step(&r, "finally: tidy").status, Status::Pass);
}

#[tokio::test]
async fn cancellation_stops_the_steps_but_not_finally_or_teardown() {
    let h = Harness::new().await;
    let text = format!(
        "{HEAD}  steps:\n{}    - {{name: wait, timeout: 20s, waitFor: {{kind: Kustomization, name: slow}}}}\n  finally:\n    - {{name: tidy, delete: {{kind: Kustomization, name: slow}}}}\n",
        apply("slow")
    );
    let s = scenario(&text);
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    let t0 = std::time::Instant::now();
    let (r, _) = tokio::join!(h.run(&s, &cancel), async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c2.cancel();
    });
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(r.status, Status::Error, "{r:#?}");
    assert_eq!(message(&r, "wait"), "cancelled");
    assert_eq!(step(&r, "finally: tidy").status, Status::Pass);
    let ns = namespace_for("t", &cell());
    assert!(!h.exists("v1", "Namespace", None, &ns).await);
}

#[tokio::test]
async fn flux_is_restored_after_an_unfinished_upgrade_and_a_bad_upgrade_fails() {
    let h = Harness::new().await;
    let text = format!(
        "{HEAD}  steps:\n    - installFlux: {{version: \"${{{{ flux.previousVersion }}}}\"}}\n{}    - {{name: ready, timeout: 200ms, waitFor: {{kind: Kustomization, name: broken}}}}\n    - upgradeFlux: {{}}\n",
        apply("broken")
    );
    let r = h.go(&text).await;
    assert_eq!(r.status, Status::Fail);
    assert_eq!(step(&r, "upgradeFlux").status, Status::Skip);
    assert_eq!(step(&r, "restore Flux v2.9.4").status, Status::Pass);
    assert_eq!(
        *h.flux.calls.lock().unwrap(),
        vec!["install v2.8.8", "upgrade v2.9.4"]
    );

    let mut h = h;
    h.flux = Flux {
        upgrade_misbehaves: true,
        ..Flux::default()
    };
    let r = h
        .go(&format!(
            "{HEAD}  steps:\n    - installFlux: {{version: v2.8.8}}\n    - upgradeFlux: {{}}\n"
        ))
        .await;
    assert_eq!(step(&r, "upgradeFlux").status, Status::Fail);
    assert!(message(&r, "upgradeFlux").contains("never became ready"));
}

const RECEIVER: &str = r#"
    - apply:
        manifests: |
          apiVersion: source.toolkit.fluxcd.io/v1
          kind: GitRepository
          metadata: {name: app}
          spec: {interval: 1h, url: "https://git.fixtures:8443/app.git"}
          ---
          apiVersion: v1
          kind: Secret
          metadata: {name: token}
          stringData: {token: s3cr3t}
          ---
          apiVersion: notification.toolkit.fluxcd.io/v1
          kind: Receiver
          metadata: {name: hook}
          spec: {type: generic, resources: [{kind: GitRepository, name: app}], secretRef: {name: SECRET}}
"#;

#[tokio::test]
async fn trigger_receiver_posts_the_webhook_path_and_fails_without_one() {
    let h = Harness::new().await;
    let nc = ObjectRef::new(
        "apps/v1",
        "Deployment",
        Some("flux-system"),
        "notification-controller",
    );
    h.kube
        .wait_ready(&nc, Duration::from_secs(5))
        .await
        .unwrap();
    let text = format!(
        "{HEAD}  steps:\n{}{}",
        RECEIVER.replace("SECRET", "token"),
        r#"    - {name: ready, waitFor: {kind: Receiver, name: hook}}
    - triggerReceiver: {name: hook}
    - name: reconcile requested
      assert:
        object: {kind: GitRepository, name: app}
        fields: [{path: "metadata.annotations[\"reconcile.fluxcd.io/requestedAt\"]", exists: true}]
"#
    );
    let r = h.go(&text).await;
    assert_eq!(r.status, Status::Pass, "{r:#?}");

    // Defect 4 of issue 10: sent from a pod (past `allow-webhooks`), so a NetworkPolicy that
    // admits no pods on the webhook port stops it, as a policy-enforcing CNI does.
    let deny = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-webhooks", "namespace": "flux-system"},
        "spec": {"podSelector": {"matchLabels": {"app": "notification-controller"}},
            "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {"matchLabels": {"nobody": "x"}}}]}]}});
    h.kube.apply_values(&[deny], None).await.unwrap();
    let r = h.go(&text).await;
    assert_eq!(step(&r, "triggerReceiver").status, Status::Fail, "{r:#?}");
    assert!(
        message(&r, "triggerReceiver").contains("no HTTP answer"),
        "{r:#?}"
    );

    let text = format!(
        "{HEAD}  steps:\n{}    - triggerReceiver: {{name: hook}}\n",
        RECEIVER.replace("SECRET", "missing")
    );
    let r = h.go(&text).await;
    assert_eq!(step(&r, "triggerReceiver").status, Status::Fail);
    assert!(
        message(&r, "triggerReceiver").contains("has no `status.webhookPath`"),
        "{r:#?}"
    );
}
