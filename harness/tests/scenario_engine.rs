//! The scenario engine against in-memory doubles of the cluster (watch-notified store with a
//! scripted controller), the fixture plane and the Flux installer: success and failure paths for
//! every step kind, timeouts, cancellation, `finally` and diagnostics limited to touched objects.

use flux_compat::config::Diagnostics;
use flux_compat::config::scenario::{Context, load};
use flux_compat::model::scenario::Scenario;
use flux_compat::model::{Component, FluxVersion, KubeMinor, Status};
use flux_compat::scenario::{
    Artifacts, Cell, Check, Engine, FixtureOps, FluxOps, GitPushRequest, KubeOps, ListQuery,
    ObjectRef, Observed, OpsError, Target, Verdict, WaitOutcome,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------
// Doubles

#[derive(Default)]
struct World {
    objects: BTreeMap<ObjectRef, Value>,
    /// The fixture repository's head commit, as the scripted controller reports it.
    commit: String,
    greeting: String,
}

type Script = dyn Fn(&mut World, &ObjectRef) + Send + Sync;

struct FakeCluster {
    world: Mutex<World>,
    tx: tokio::sync::watch::Sender<u64>,
    script: Box<Script>,
    fail_apply: BTreeSet<String>,
    gets: Mutex<Vec<ObjectRef>>,
    posts: Mutex<Vec<String>>,
}

const CLUSTER_SCOPED: &[&str] = &["Namespace", "ClusterRole", "ClusterRoleBinding"];

impl FakeCluster {
    fn new(script: Box<Script>) -> Arc<Self> {
        Arc::new(Self {
            world: Mutex::new(World {
                commit: "0000000".into(),
                greeting: "hello".into(),
                ..Default::default()
            }),
            tx: tokio::sync::watch::channel(0).0,
            script,
            fail_apply: BTreeSet::new(),
            gets: Mutex::new(Vec::new()),
            posts: Mutex::new(Vec::new()),
        })
    }

    fn notify(&self) {
        self.tx.send_modify(|v| *v += 1);
    }

    fn react(&self, key: &ObjectRef) {
        {
            let mut w = self.world.lock().unwrap();
            (self.script)(&mut w, key);
        }
        self.notify();
    }

    fn has(&self, kind: &str, name: &str) -> bool {
        self.world
            .lock()
            .unwrap()
            .objects
            .keys()
            .any(|k| k.kind == kind && k.name == name)
    }

    fn query(w: &World, q: &ListQuery) -> Vec<Value> {
        let sel: Vec<(String, String)> = q
            .label_selector
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.split_once('='))
            .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
            .collect();
        w.objects
            .iter()
            .filter(|(k, _)| {
                k.kind == q.kind && k.api_version == q.api_version && k.namespace == q.namespace
            })
            .filter(|(_, v)| {
                sel.iter().all(|(a, b)| {
                    v.pointer(&format!("/metadata/labels/{a}"))
                        .and_then(Value::as_str)
                        == Some(b)
                })
            })
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

impl KubeOps for FakeCluster {
    async fn apply(
        &self,
        objects: &[Value],
        default_namespace: Option<&str>,
    ) -> Result<Vec<ObjectRef>, OpsError> {
        let mut keys = Vec::new();
        for o in objects {
            let mut o = o.clone();
            let kind = o["kind"].as_str().unwrap_or_default().to_string();
            if self.fail_apply.contains(&kind) {
                return Err(OpsError::infra("apply", "connection refused"));
            }
            if !CLUSTER_SCOPED.contains(&kind.as_str())
                && o.pointer("/metadata/namespace").is_none()
            {
                o["metadata"]["namespace"] = json!(default_namespace.unwrap());
            }
            let key = ObjectRef::of_value(&o).expect("well-formed object");
            {
                let mut w = self.world.lock().unwrap();
                let generation = match w.objects.get(&key) {
                    Some(old) => {
                        let g = old.pointer("/metadata/generation").and_then(Value::as_i64);
                        let g = g.unwrap_or(1);
                        if old.get("spec") != o.get("spec") {
                            g + 1
                        } else {
                            g
                        }
                    }
                    None => 1,
                };
                if let Some(status) = w.objects.get(&key).and_then(|x| x.get("status")).cloned() {
                    o["status"] = status;
                }
                o["metadata"]["generation"] = json!(generation);
                w.objects.insert(key.clone(), o);
            }
            self.react(&key);
            keys.push(key);
        }
        Ok(keys)
    }

    async fn get(&self, key: &ObjectRef) -> Result<Option<Value>, OpsError> {
        self.gets.lock().unwrap().push(key.clone());
        Ok(self.world.lock().unwrap().objects.get(key).cloned())
    }

    async fn list(&self, q: &ListQuery) -> Result<Vec<Value>, OpsError> {
        Ok(FakeCluster::query(&self.world.lock().unwrap(), q))
    }

    async fn delete(&self, key: &ObjectRef) -> Result<(), OpsError> {
        {
            let mut w = self.world.lock().unwrap();
            let Some(obj) = w.objects.get_mut(key) else {
                return Err(OpsError::NotFound(key.to_string()));
            };
            let finalizers = obj
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            if finalizers {
                obj["metadata"]["deletionTimestamp"] = json!("2026-11-23T06:00:00Z");
            } else {
                w.objects.remove(key);
                // Namespace deletion and owner-reference garbage collection.
                let name = key.name.clone();
                let kind = key.kind.clone();
                w.objects.retain(|k, v| {
                    let in_ns = kind == "Namespace" && k.namespace.as_deref() == Some(&name);
                    let owned = v
                        .pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|o| {
                            o.iter()
                                .any(|r| r["kind"] == json!(kind) && r["name"] == json!(name))
                        });
                    !(in_ns || owned)
                });
            }
        }
        self.notify();
        Ok(())
    }

    async fn patch_merge(&self, key: &ObjectRef, patch: &Value) -> Result<(), OpsError> {
        {
            let mut w = self.world.lock().unwrap();
            let Some(obj) = w.objects.get_mut(key) else {
                return Err(OpsError::NotFound(key.to_string()));
            };
            let before = obj.get("spec").cloned();
            merge(obj, patch);
            if obj.get("spec").cloned() != before {
                let g = obj["metadata"]["generation"].as_i64().unwrap_or(1);
                obj["metadata"]["generation"] = json!(g + 1);
            }
        }
        self.react(key);
        Ok(())
    }

    async fn http_post_from_pod(
        &self,
        namespace: &str,
        url: &str,
    ) -> Result<Option<u16>, OpsError> {
        self.posts
            .lock()
            .unwrap()
            .push(format!("{namespace} {url}"));
        let path = url.split_once(".svc.cluster.local").map_or("", |(_, p)| p);
        // The receiver asks its resources to reconcile, as notification-controller does.
        let keys: Vec<ObjectRef> = {
            let mut w = self.world.lock().unwrap();
            let keys: Vec<ObjectRef> = w
                .objects
                .keys()
                .filter(|k| k.kind == "GitRepository")
                .cloned()
                .collect();
            for k in &keys {
                let o = w.objects.get_mut(k).unwrap();
                o["metadata"]["annotations"] = json!({"reconcile.fluxcd.io/requestedAt": "t1"});
                o["status"] = json!({"lastHandledReconcileAt": "t1"});
            }
            keys
        };
        self.notify();
        drop(keys);
        Ok(Some(if path.starts_with("/hook/") { 200 } else { 404 }))
    }

    async fn wait(
        &self,
        target: &Target,
        check: Check<'_>,
        timeout: Duration,
    ) -> Result<WaitOutcome, OpsError> {
        let mut rx = self.tx.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let verdict = {
                let w = self.world.lock().unwrap();
                match target {
                    Target::Object(k) => check(Observed::Object(w.objects.get(k))),
                    Target::List(q) => check(Observed::List(&FakeCluster::query(&w, q))),
                }
            };
            match verdict {
                Verdict::Done(()) => return Ok(WaitOutcome::Done),
                Verdict::Failed(f) => {
                    return Ok(WaitOutcome::Failed(format!("{}: {}", f.reason, f.message)));
                }
                Verdict::Pending(m) => {
                    if tokio::time::timeout_at(deadline, rx.changed())
                        .await
                        .is_err()
                    {
                        return Ok(WaitOutcome::TimedOut(m));
                    }
                }
            }
        }
    }
}

struct FakeFixtures {
    cluster: Arc<FakeCluster>,
    vars: BTreeMap<String, String>,
    pushes: Mutex<Vec<GitPushRequest>>,
    push_fails: bool,
    webhook: Vec<Value>,
}

impl FakeFixtures {
    fn new(cluster: &Arc<FakeCluster>) -> Self {
        let mut vars = BTreeMap::new();
        vars.insert("fixtures.gitUrl".into(), "https://git.fixtures:8443".into());
        vars.insert("fixtures.caSecret".into(), "fixtures-ca".into());
        Self {
            cluster: cluster.clone(),
            vars,
            pushes: Mutex::new(Vec::new()),
            push_fails: false,
            webhook: Vec::new(),
        }
    }
}

impl FixtureOps for FakeFixtures {
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
        let keys: Vec<ObjectRef> = {
            let mut w = self.cluster.world.lock().unwrap();
            w.commit = "abc1234".into();
            if let Some(g) = push.files.get("deploy/configmap.yaml")
                && g.contains("changed")
            {
                w.greeting = "changed".into();
            }
            w.objects
                .keys()
                .filter(|k| k.kind == "Kustomization")
                .cloned()
                .collect()
        };
        // The source controller sees the new revision and the Kustomization reconciles it.
        for k in keys {
            self.cluster.react(&k);
        }
        Ok("abc1234".into())
    }

    async fn wait_webhook(
        &self,
        check: Check<'_>,
        _timeout: Duration,
    ) -> Result<WaitOutcome, OpsError> {
        // The double's sink receives nothing more after setup, so one judgement is final.
        Ok(match check(Observed::List(&self.webhook)) {
            Verdict::Done(()) => WaitOutcome::Done,
            Verdict::Failed(f) => WaitOutcome::Failed(f.message),
            Verdict::Pending(m) => WaitOutcome::TimedOut(m),
        })
    }
}

#[derive(Default)]
struct FakeFlux {
    calls: Mutex<Vec<String>>,
    upgrade_misbehaves: bool,
}

impl FluxOps for FakeFlux {
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

/// The scripted controller: Kustomizations named `app` succeed and create an owned ConfigMap
/// plus an untouched bystander; `broken` fails to build; `stalled` stalls; `slow` never reports.
fn controller() -> Box<Script> {
    Box::new(|w: &mut World, key: &ObjectRef| {
        if key.kind == "ArtifactGenerator" {
            // source-watcher's real CRD has no `status.observedGeneration` (the API server prunes
            // it): the generation lives only in the Ready condition.
            let Some(obj) = w.objects.get_mut(key) else {
                return;
            };
            let generation = obj["metadata"]["generation"].clone();
            obj["status"] = json!({"conditions": [{"type": "Ready", "status": "True",
                "reason": "Succeeded", "message": "reconciliation succeeded",
                "observedGeneration": generation}]});
            return;
        }
        if key.kind != "Kustomization" {
            return;
        }
        let ns = key.namespace.clone().unwrap();
        let commit = w.commit.clone();
        let greeting = w.greeting.clone();
        let Some(obj) = w.objects.get_mut(key) else {
            return;
        };
        let generation = obj["metadata"]["generation"].clone();
        let cond = |t: &str, s: &str, r: &str, m: &str| json!({"type": t, "status": s, "reason": r, "message": m});
        let conditions = match key.name.as_str() {
            "app" => vec![cond(
                "Ready",
                "True",
                "ReconciliationSucceeded",
                &format!("Applied revision: main@sha1:{commit}"),
            )],
            "broken" => vec![cond(
                "Ready",
                "False",
                "BuildFailed",
                "kustomize build failed: accumulating resources",
            )],
            "stalled" => vec![
                cond("Ready", "False", "InvalidPath", "path not found"),
                cond("Stalled", "True", "InvalidPath", "path not found"),
            ],
            _ => return,
        };
        obj["status"] = json!({"observedGeneration": generation, "conditions": conditions});
        if key.name != "app" {
            return;
        }
        let owner =
            json!([{"apiVersion": key.api_version, "kind": "Kustomization", "name": "app"}]);
        for (name, owned) in [("app-config", true), ("bystander", false)] {
            let k = ObjectRef {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some(ns.clone()),
                name: name.into(),
            };
            let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns, "labels": {"app": "demo"}},
                "data": {"greeting": greeting}});
            if owned {
                cm["metadata"]["ownerReferences"] = owner.clone();
            }
            w.objects.insert(k, cm);
        }
        let ev = ObjectRef {
            api_version: "v1".into(),
            kind: "Event".into(),
            namespace: Some(ns.clone()),
            name: format!("app.{commit}"),
        };
        w.objects.insert(
            ev,
            json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("app.{commit}"), "namespace": ns},
            "involvedObject": {"kind": "Kustomization", "name": "app", "namespace": ns},
            "type": "Normal", "reason": "ReconciliationSucceeded",
            "message": format!("Reconciliation finished, revision main@sha1:{commit}")}),
        );
    })
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
        cell_id: "1.37-upstream-v2.9.4-kind".into(),
        kubernetes: KubeMinor::new(1, 37),
        flux: "v2.9.4".parse().unwrap(),
        previous_flux: Some("v2.8.8".parse().unwrap()),
        flux_namespace: "flux-system".into(),
        channel: "upstream".into(),
        channel_fips: false,
        components: Component::ALL.to_vec(),
        step_timeout: Duration::from_secs(2),
        teardown_timeout: Duration::from_secs(2),
    }
}

const HEAD: &str = "apiVersion: flux-compat/v1alpha1\nkind: Scenario\nmetadata:\n  name: t\nspec:\n  fixtures: [git/app]\n";

const APPLY_APP: &str = r#"
    - name: create
      apply:
        manifests: |
          apiVersion: kustomize.toolkit.fluxcd.io/v1
          kind: Kustomization
          metadata:
            name: ${{ kind_name }}
          spec:
            interval: 1m
            path: ./deploy
            prune: true
            sourceRef: {kind: GitRepository, name: app}
"#;

fn apply(name: &str) -> String {
    APPLY_APP.replace("${{ kind_name }}", name)
}

struct Harness {
    cluster: Arc<FakeCluster>,
    fixtures: FakeFixtures,
    flux: FakeFlux,
    dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let cluster = FakeCluster::new(controller());
        Self {
            fixtures: FakeFixtures::new(&cluster),
            cluster,
            flux: FakeFlux::default(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn run(
        &self,
        s: &Scenario,
        cancel: &CancellationToken,
    ) -> flux_compat::model::ScenarioResult {
        let engine = Engine {
            kube: &*self.cluster,
            fixtures: &self.fixtures,
            flux: &self.flux,
        };
        let artifacts = Artifacts {
            dir: self.dir.path().to_path_buf(),
            relative: "artifacts/c/t".into(),
        };
        engine.run(s, &cell(), &artifacts, cancel).await
    }

    async fn go(&self, text: &str) -> flux_compat::model::ScenarioResult {
        self.run(&scenario(text), &CancellationToken::new()).await
    }
}

fn step<'a>(
    r: &'a flux_compat::model::ScenarioResult,
    name: &str,
) -> &'a flux_compat::model::StepResult {
    r.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step `{name}` in {:#?}", r.steps))
}

// ---------------------------------------------------------------------------------------------
// Success paths

#[tokio::test]
async fn every_step_kind_passes_on_a_behaving_cluster() {
    let mut h = Harness::new();
    h.fixtures.webhook = vec![
        json!({"involvedObject": {"kind": "Kustomization", "name": "app", "namespace": "NS"}, "reason": "ReconciliationSucceeded", "message": "Reconciliation finished"}),
    ];
    let text = format!(
        "{HEAD}  steps:\n    - installFlux: {{version: \"${{{{ flux.previousVersion }}}}\"}}\n{}{}",
        apply("app"),
        r#"
    - waitFor: {kind: Kustomization, name: app}
    - name: named
      waitFor: {kind: Kustomization, name: app, condition: Ready, status: "True", reason: ReconciliationSucceeded, message: "main@sha1:0000000"}
    - name: fields
      assert:
        object: {kind: ConfigMap, name: app-config}
        fields:
          - {path: data.greeting, equals: hello}
          - {path: metadata.labels.app, matches: "^de"}
          - {path: "metadata.ownerReferences[0].kind", equals: Kustomization}
          - {path: data.missing, exists: false}
        contains: {data: {greeting: hello}}
    - name: count
      assert:
        count: {apiVersion: v1, kind: ConfigMap, labelSelector: app=demo, equals: 2}
    - name: event
      assert:
        event: {object: {kind: Kustomization, name: app}, reason: ReconciliationSucceeded, message: "finished"}
    - name: webhook
      assert:
        webhook: {object: {kind: Kustomization, name: app}, message: finished}
    - name: push
      gitPush:
        repository: app
        message: change greeting
        files:
          deploy/configmap.yaml: "greeting: changed in ${{ namespace }}"
    - name: new revision
      waitFor: {kind: Kustomization, name: app, condition: Ready, message: "main@sha1:${{ git.lastCommit }}"}
    - name: changed
      assert:
        object: {kind: ConfigMap, name: app-config}
        fields: [{path: data.greeting, equals: changed}]
    - patch: {kind: Kustomization, name: app, merge: {spec: {interval: 2m}}}
    - name: patched and reconciled
      waitFor: {kind: Kustomization, name: app}
    - upgradeFlux: {}
    - name: prune
      delete:
        kind: Kustomization
        name: app
        gone: [{kind: ConfigMap, name: app-config}]
  finally:
    - name: cleanup
      delete: {kind: ConfigMap, name: bystander}
"#
    );
    let mut s = scenario(&text);
    // The webhook payload must name the scenario's own namespace.
    let ns = flux_compat::scenario::namespace_for("t", &cell());
    h.fixtures.webhook[0]["involvedObject"]["namespace"] = json!(ns);
    s.timeout = Duration::from_secs(20);
    let r = h.run(&s, &CancellationToken::new()).await;
    assert_eq!(r.status, Status::Pass, "{:#?}", r);
    assert!(
        r.steps.iter().all(|s| s.status == Status::Pass),
        "{:#?}",
        r.steps
    );
    assert_eq!(r.steps.len(), 1 + 15 + 1, "{:#?}", r.steps);
    assert!(r.diagnostics.is_none() && r.artifacts.is_none());
    assert_eq!(
        *h.flux.calls.lock().unwrap(),
        vec!["install v2.8.8", "upgrade v2.9.4"]
    );
    let pushes = h.fixtures.pushes.lock().unwrap();
    assert_eq!(
        pushes[0].files["deploy/configmap.yaml"],
        format!("greeting: changed in {ns}")
    );
    // The namespace and everything in it are gone.
    assert!(!h.cluster.has("Namespace", &ns));
    assert!(!h.cluster.has("Secret", "fixtures-ca"));
    assert_eq!(r.properties["namespace"], ns);
}

#[tokio::test]
async fn the_namespace_is_labelled_with_the_run_and_holds_the_fixture_secrets() {
    let h = Harness::new();
    let r = h
        .go(&format!(
            "{HEAD}  steps:\n    - name: labels\n      assert:\n        object: {{kind: Namespace, name: \"${{{{ namespace }}}}\"}}\n        fields: [{{path: \"metadata.labels[\\\"flux-compat.io/run\\\"]\", equals: r1}}, {{path: \"metadata.labels[\\\"flux-compat.io/scenario\\\"]\", equals: t}}]\n    - name: secret\n      assert:\n        object: {{kind: Secret, name: fixtures-ca}}\n        fields: [{{path: \"stringData[\\\"ca.crt\\\"]\", matches: BEGIN}}]\n"
        ))
        .await;
    assert_eq!(r.status, Status::Pass, "{r:#?}");
}

#[tokio::test]
async fn not_applicable_scenarios_are_skipped_with_the_reason() {
    let h = Harness::new();
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
    assert!(
        h.cluster.world.lock().unwrap().objects.is_empty(),
        "nothing is created for a skipped scenario"
    );
}

// ---------------------------------------------------------------------------------------------
// Failure paths

#[tokio::test]
async fn a_wait_that_never_succeeds_fails_later_steps_skip_and_finally_runs() {
    let h = Harness::new();
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
    let m = ready.message.as_deref().unwrap();
    assert!(
        m.contains("not reached within 300ms") && m.contains("BuildFailed"),
        "{m}"
    );
    let after = step(&r, "after");
    assert_eq!(after.status, Status::Skip);
    assert_eq!(
        after.message.as_deref(),
        Some("not run: step `ready` failed")
    );
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
    let h = Harness::new();
    let text = format!(
        "{HEAD}  steps:\n{}{}",
        apply("app"),
        r#"
    - name: wrong content
      timeout: 200ms
      assert:
        object: {kind: ConfigMap, name: app-config}
        fields: [{path: data.greeting, equals: bonjour}]
"#
    );
    let r = h.go(&text).await;
    assert_eq!(r.status, Status::Fail);
    let m = step(&r, "wrong content").message.clone().unwrap();
    assert!(
        m.contains("`data.greeting` is \"hello\", expected \"bonjour\""),
        "{m}"
    );
    let diag = r.diagnostics.unwrap();
    assert!(
        diag.contains("Kustomization/") && diag.contains("Ready=True (ReconciliationSucceeded)"),
        "{diag}"
    );
    assert!(
        diag.contains("ConfigMap/") && diag.contains("app-config"),
        "{diag}"
    );
    assert!(
        !diag.contains("bystander"),
        "an untouched object leaked into diagnostics: {diag}"
    );
    assert!(
        diag.contains("ReconciliationSucceeded Kustomization/app"),
        "namespace events: {diag}"
    );
    let mut files: Vec<String> = std::fs::read_dir(h.dir.path().join("objects"))
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
    assert!(h.dir.path().join("events.yaml").is_file());
    // Only touched objects were read back.
    assert!(
        h.cluster
            .gets
            .lock()
            .unwrap()
            .iter()
            .all(|k| k.name != "bystander")
    );
}

/// Defect 1 of issue 10: the engine required `status.observedGeneration`, which ArtifactGenerator
/// and ExternalArtifact do not have, and waited forever; the one readiness library reads the
/// Ready condition's `observedGeneration` for them.
#[tokio::test]
async fn kinds_without_status_observed_generation_become_ready_by_their_condition() {
    let h = Harness::new();
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
"#
    );
    let r = h.go(&text).await;
    assert_eq!(r.status, Status::Pass, "{:#?}", r.steps);
}

#[tokio::test]
async fn stalled_fails_fast() {
    let h = Harness::new();
    let text = format!(
        "{HEAD}  steps:\n{}    - {{name: ready, timeout: 20s, waitFor: {{kind: Kustomization, name: stalled}}}}\n",
        apply("stalled")
    );
    let t0 = std::time::Instant::now();
    let r = h.go(&text).await;
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(r.status, Status::Fail);
    let m = step(&r, "ready").message.clone().unwrap();
    assert!(m.contains("Ready cannot be reached: InvalidPath"), "{m}");
}

#[tokio::test]
async fn expect_failure_passes_on_the_expected_reason_and_fails_otherwise() {
    let h = Harness::new();
    let text = format!(
        "{HEAD}  steps:\n{}    - {{name: denied, expectFailure: {{kind: Kustomization, name: broken, reason: BuildFailed, message: \"accumulating\"}}}}\n",
        apply("broken")
    );
    assert_eq!(h.go(&text).await.status, Status::Pass);

    let h = Harness::new();
    let text = format!(
        "{HEAD}  steps:\n{}    - {{name: denied, timeout: 200ms, expectFailure: {{kind: Kustomization, name: app, reason: BuildFailed}}}}\n",
        apply("app")
    );
    let r = h.go(&text).await;
    assert_eq!(r.status, Status::Fail);
    // The readiness library ends an expect-failure wait at once when the object becomes ready.
    let m = step(&r, "denied").message.clone().unwrap();
    assert!(
        m.contains("the expected failure Ready=False with reason `BuildFailed` cannot be reached")
            && m.contains("became ready instead"),
        "{m}"
    );
}

#[tokio::test]
async fn count_event_and_webhook_assertions_fail_when_absent() {
    let h = Harness::new();
    let base = format!("{HEAD}  steps:\n{}", apply("app"));
    let r = h.go(&format!("{base}    - {{name: c, timeout: 200ms, assert: {{count: {{apiVersion: v1, kind: ConfigMap, labelSelector: app=demo, equals: 0}}}}}}\n")).await;
    let m = step(&r, "c").message.clone().unwrap();
    assert!(
        m.contains("expected 0 ConfigMap(s) matching `app=demo`")
            && m.contains("app-config, bystander"),
        "{m}"
    );

    let h = Harness::new();
    let r = h.go(&format!("{base}    - {{name: e, timeout: 200ms, assert: {{event: {{reason: HealthCheckFailed}}}}}}\n")).await;
    assert_eq!(step(&r, "e").status, Status::Fail);
    let m = step(&r, "e").message.clone().unwrap();
    assert!(m.starts_with("an event reason `HealthCheckFailed` is not among the 1 event(s) seen; latest: Kustomization/app ReconciliationSucceeded"), "{m}");

    let h = Harness::new();
    let r = h
        .go(&format!(
            "{base}    - {{name: w, timeout: 200ms, assert: {{webhook: {{message: finished}}}}}}\n"
        ))
        .await;
    assert_eq!(step(&r, "w").status, Status::Fail);
    let m = step(&r, "w").message.clone().unwrap();
    assert_eq!(
        m,
        "webhook sink: an event message matching `finished` is not among the 0 event(s) seen"
    );
}

#[tokio::test]
async fn patch_and_delete_of_missing_objects_fail_and_stuck_deletions_time_out() {
    let h = Harness::new();
    let r = h.go(&format!("{HEAD}  steps:\n    - {{name: p, patch: {{kind: Kustomization, name: nope, merge: {{spec: {{suspend: true}}}}}}}}\n")).await;
    assert_eq!(step(&r, "p").status, Status::Fail);
    assert!(
        step(&r, "p")
            .message
            .as_deref()
            .unwrap()
            .contains("not found")
    );

    let h = Harness::new();
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
"#
    );
    let r = h.go(&text).await;
    let d = step(&r, "d");
    assert_eq!(d.status, Status::Fail);
    assert!(
        d.message
            .as_deref()
            .unwrap()
            .contains("finalizers: example.com/hold"),
        "{d:?}"
    );
    // The namespace cannot go either while the finalizer holds: a teardown error is recorded.
    let _ = r;
}

#[tokio::test]
async fn prune_checks_fail_when_objects_survive() {
    let h = Harness::new();
    let text = format!(
        "{HEAD}  steps:\n{}    - {{name: prune, timeout: 200ms, delete: {{kind: Kustomization, name: app, gone: [{{kind: ConfigMap, name: bystander}}]}}}}\n",
        apply("app")
    );
    let r = h.go(&text).await;
    let m = step(&r, "prune").message.clone().unwrap();
    assert!(
        m.contains("pruning / garbage collection not reached") && m.contains("bystander"),
        "{m}"
    );
}

#[tokio::test]
async fn harness_problems_are_errors_not_failures() {
    // API refuses the apply.
    let cluster = Arc::new(FakeCluster {
        fail_apply: ["Kustomization".to_string()].into(),
        ..Arc::try_unwrap(FakeCluster::new(controller()))
            .ok()
            .unwrap()
    });
    let h = Harness {
        fixtures: FakeFixtures::new(&cluster),
        cluster,
        flux: FakeFlux::default(),
        dir: tempfile::tempdir().unwrap(),
    };
    let r = h.go(&format!("{HEAD}  steps:\n{}", apply("app"))).await;
    assert_eq!(r.status, Status::Error);
    assert!(
        step(&r, "create")
            .message
            .as_deref()
            .unwrap()
            .contains("connection refused")
    );

    // A template variable the cell does not provide.
    let mut h = Harness::new();
    h.fixtures.vars.remove("fixtures.gitUrl");
    let text = format!(
        "{HEAD}  steps:\n    - name: a\n      apply:\n        manifests: |\n          apiVersion: v1\n          kind: ConfigMap\n          metadata: {{name: u}}\n          data: {{url: \"${{{{ fixtures.gitUrl }}}}\"}}\n"
    );
    let r = h.go(&text).await;
    assert_eq!(step(&r, "a").status, Status::Error);
    assert!(
        step(&r, "a")
            .message
            .as_deref()
            .unwrap()
            .contains("`fixtures.gitUrl` has no value")
    );

    // The fixture push fails.
    let mut h = Harness::new();
    h.fixtures.push_fails = true;
    let r = h.go(&format!("{HEAD}  steps:\n    - {{name: g, gitPush: {{repository: app, message: m, tag: v2.0.0}}}}\n")).await;
    assert_eq!(r.status, Status::Error);
    assert!(
        step(&r, "g")
            .message
            .as_deref()
            .unwrap()
            .contains("push to fixture `app`: git push: HTTP 503")
    );
}

#[tokio::test]
async fn the_scenario_timeout_bounds_steps_and_finally_still_runs() {
    let h = Harness::new();
    let text = format!(
        "{HEAD}  timeout: 400ms\n  steps:\n{}    - {{name: wait, waitFor: {{kind: Kustomization, name: slow}}}}\n    - {{name: never, waitFor: {{kind: Kustomization, name: slow}}}}\n  finally:\n    - {{name: tidy, delete: {{kind: Kustomization, name: slow}}}}\n",
        apply("slow")
    );
    let t0 = std::time::Instant::now();
    let r = h.go(&text).await;
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let w = step(&r, "wait");
    assert_eq!(w.status, Status::Fail);
    assert!(
        w.message
            .as_deref()
            .unwrap()
            .contains("by the scenario timeout 400ms"),
        "{w:?}"
    );
    assert_eq!(step(&r, "never").status, Status::Skip);
    assert_eq!(step(&r, "finally: tidy").status, Status::Pass);
}

#[tokio::test]
async fn cancellation_stops_the_steps_but_not_finally_or_teardown() {
    let h = Harness::new();
    let text = format!(
        "{HEAD}  steps:\n{}    - {{name: wait, timeout: 20s, waitFor: {{kind: Kustomization, name: slow}}}}\n  finally:\n    - {{name: tidy, delete: {{kind: Kustomization, name: slow}}}}\n",
        apply("slow")
    );
    let s = scenario(&text);
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    let t0 = std::time::Instant::now();
    let (r, _) = tokio::join!(h.run(&s, &cancel), async move {
        tokio::task::yield_now().await;
        c2.cancel();
    });
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(r.status, Status::Error);
    assert_eq!(step(&r, "wait").message.as_deref(), Some("cancelled"));
    assert_eq!(step(&r, "finally: tidy").status, Status::Pass);
    assert!(!h.cluster.has("Kustomization", "slow"));
    let ns = flux_compat::scenario::namespace_for("t", &cell());
    assert!(!h.cluster.has("Namespace", &ns));
}

#[tokio::test]
async fn flux_is_restored_after_an_unfinished_upgrade_and_a_bad_upgrade_fails() {
    let h = Harness::new();
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

    let mut h = Harness::new();
    h.flux.upgrade_misbehaves = true;
    let r = h
        .go(&format!(
            "{HEAD}  steps:\n    - installFlux: {{version: v2.8.8}}\n    - upgradeFlux: {{}}\n"
        ))
        .await;
    assert_eq!(step(&r, "upgradeFlux").status, Status::Fail);
    assert!(
        step(&r, "upgradeFlux")
            .message
            .as_deref()
            .unwrap()
            .contains("never became ready")
    );
}

#[tokio::test]
async fn trigger_receiver_posts_the_webhook_path_and_fails_without_one() {
    let h = Harness::new();
    let text = format!(
        "{HEAD}  steps:\n{}",
        r#"
    - apply:
        manifests: |
          apiVersion: source.toolkit.fluxcd.io/v1
          kind: GitRepository
          metadata: {name: app}
          spec: {interval: 1h, url: "https://git/app.git"}
          ---
          apiVersion: notification.toolkit.fluxcd.io/v1
          kind: Receiver
          metadata: {name: hook}
          spec: {type: generic, resources: [{kind: GitRepository, name: app}], secretRef: {name: token}}
          status: {webhookPath: /hook/abc}
    - triggerReceiver: {name: hook}
    - name: reconciled
      assert:
        object: {kind: GitRepository, name: app}
        fields: [{path: status.lastHandledReconcileAt, exists: true}]
"#
    );
    let r = h.go(&text).await;
    assert_eq!(r.status, Status::Pass, "{r:#?}");
    // Defect 4 of issue 10: sent from a pod of the scenario namespace to the in-cluster
    // Service URL (past `allow-webhooks`), no longer through the API server's service proxy.
    let posts = h.cluster.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0].ends_with(" http://webhook-receiver.flux-system.svc.cluster.local/hook/abc")
            && posts[0].starts_with("t-"),
        "{posts:?}"
    );

    let h = Harness::new();
    let r = h
        .go(&text.replace("status: {webhookPath: /hook/abc}", "status: {}"))
        .await;
    assert_eq!(step(&r, "triggerReceiver").status, Status::Fail);
    assert!(
        step(&r, "triggerReceiver")
            .message
            .as_deref()
            .unwrap()
            .contains("has no `status.webhookPath`")
    );
}
