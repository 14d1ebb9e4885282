//! The scenario engine: runs one `Scenario` in one cell and returns its `ScenarioResult`.
//! Owns step semantics (fail vs error vs skip, timeouts, `finally`, cancellation, diagnostics of
//! touched objects); reaches the cluster through `k8s::Kube`, the fixture plane and the Flux
//! installer through the `ops` traits.

pub mod checks;
pub mod ops;
pub mod tls;

pub use ops::{
    CHALLENGE_CA_SECRET, ChallengeOps, Check, ControllerCrypto, FixtureOps, FluxOps,
    GitPushRequest, ObjectRef, Observed, OpsError, Verdict, WaitOutcome,
};

use crate::errors::chain;
use crate::k8s::{self, ApplyError, ConditionExpectation, Kube, ListQuery, ObjectError, WaitError};
use crate::model::results::{ScenarioResult, Status, StepResult};
use crate::model::scenario::{
    Action, CellTraits, ObjectRef as StepRef, Scenario, Step, install_version,
};
use crate::model::{Component, FluxVersion, KubeMinor, flux_api, template};
use checks::EventWant;
use regex::Regex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;

/// Label put on every scenario namespace, so leftovers can be found by run.
pub const RUN_LABEL: &str = "flux-compat.io/run";
/// Label naming the scenario that owns a namespace.
pub const SCENARIO_LABEL: &str = "flux-compat.io/scenario";

/// The notification-controller Service that serves Receiver webhooks (port 80 → 9292).
pub const RECEIVER_SERVICE: &str = "webhook-receiver";

/// The in-cluster URL of a Receiver's webhook path, as a webhook sender inside the cluster uses it.
pub fn receiver_url(flux_namespace: &str, path: &str) -> String {
    format!("http://{RECEIVER_SERVICE}.{flux_namespace}.svc.cluster.local{path}")
}

/// Grace on top of a wait's own timeout before the engine gives up on the operation itself, so a
/// wait reports what it last saw instead of being cut off.
const WAIT_GRACE: Duration = Duration::from_secs(5);

/// Everything about the cell a scenario runs in.
#[derive(Clone, Debug)]
pub struct Cell {
    pub run_id: String,
    pub cell_id: String,
    pub kubernetes: KubeMinor,
    pub flux: FluxVersion,
    /// The newest patch of the previous Flux minor (`flux.previousVersion`), if the matrix has one.
    pub previous_flux: Option<FluxVersion>,
    pub flux_namespace: String,
    pub channel: String,
    pub channel_fips: bool,
    pub components: Vec<Component>,
    /// Default step timeout (matrix `timeouts.step`).
    pub step_timeout: Duration,
    /// Time allowed for deleting the scenario namespace.
    pub teardown_timeout: Duration,
}

impl Cell {
    fn traits(&self) -> CellTraits<'_> {
        CellTraits {
            flux: &self.flux,
            kubernetes: self.kubernetes,
            channel: &self.channel,
            channel_fips: self.channel_fips,
            components: &self.components,
        }
    }
}

/// Where a scenario's diagnostics go: `dir` on disk, `relative` as recorded in the report.
#[derive(Clone, Debug)]
pub struct Artifacts {
    pub dir: PathBuf,
    pub relative: String,
}

/// The engine over the cluster and the two collaborators the runner provides.
pub struct Engine<'a, F, X> {
    pub kube: &'a Kube,
    pub fixtures: &'a F,
    pub flux: &'a X,
}

/// A skipped scenario (not applicable to the cell, or the cell itself is skipped).
pub fn skipped(scenario: &Scenario, reason: impl Into<String>) -> ScenarioResult {
    ScenarioResult {
        name: scenario.name.clone(),
        tags: scenario.tags.clone(),
        status: Status::Skip,
        message: Some(reason.into()),
        duration_ms: 0,
        steps: Vec::new(),
        diagnostics: None,
        artifacts: None,
        properties: BTreeMap::new(),
    }
}

/// The scenario's own namespace: `<scenario>-<8 hex of run and cell>`, at most 49 characters.
pub fn namespace_for(scenario: &str, cell: &Cell) -> String {
    let mut h = Sha256::new();
    h.update(cell.run_id.as_bytes());
    h.update([0]);
    h.update(cell.cell_id.as_bytes());
    let digest = hex::encode(h.finalize());
    format!("{scenario}-{}", &digest[..8])
}

/// How one step ended.
struct Outcome {
    status: Status,
    message: Option<String>,
    /// Results of the step's parts (one per TLS challenge), reported after the step's own.
    details: Vec<StepResult>,
}

impl Outcome {
    fn pass() -> Self {
        Self {
            status: Status::Pass,
            message: None,
            details: Vec::new(),
        }
    }
    fn fail(m: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            message: Some(m.into()),
            details: Vec::new(),
        }
    }
    fn error(m: impl Into<String>) -> Self {
        Self {
            status: Status::Error,
            message: Some(m.into()),
            details: Vec::new(),
        }
    }
    /// Operation errors: `NotFound`/`Misbehaved` are the product's, `Infra` the harness's.
    fn from_ops(e: OpsError) -> Self {
        match e {
            OpsError::Infra { .. } => Self::error(e.to_string()),
            _ => Self::fail(e.to_string()),
        }
    }
    /// An API server that answered and refused (validation, RBAC, unknown kind) is the product
    /// under test answering; an unreachable one, or manifests that are no objects, the harness's.
    fn from_apply(e: ApplyError) -> Self {
        if e.is_unreachable() || matches!(e, ApplyError::Parse(_)) {
            Self::error(chain(&e))
        } else {
            Self::fail(chain(&e))
        }
    }
    fn from_object(e: ObjectError) -> Self {
        if e.is_unreachable() {
            Self::error(chain(&e))
        } else {
            Self::fail(chain(&e))
        }
    }
}

/// Mutable state of one scenario run.
struct Run {
    namespace: String,
    vars: BTreeMap<String, String>,
    /// Objects applied or referenced, in first-touch order, for diagnostics.
    touched: Vec<ObjectRef>,
    /// Kind → apiVersion of applied objects, to resolve references that give only a kind.
    applied_kinds: BTreeMap<String, String>,
    /// Set by `installFlux` until a successful `upgradeFlux`: the cell's Flux must be restored.
    flux_displaced: bool,
    /// When the scenario started: TLS challenge attempts from before it are not its evidence.
    started: SystemTime,
}

impl Run {
    fn touch(&mut self, key: &ObjectRef) {
        if !self.touched.contains(key) {
            self.touched.push(key.clone());
        }
    }

    fn resolve(&self, r: &StepRef, flux: &FluxVersion) -> Result<ObjectRef, String> {
        let api_version = r
            .api_version
            .clone()
            .or_else(|| self.applied_kinds.get(&r.kind).cloned())
            .or_else(|| {
                flux_api::is_flux_kind(&r.kind)
                    .then(|| flux_api::latest_api_version(flux, &r.kind))
                    .flatten()
            })
            .or_else(|| flux_api::default_api_version(&r.kind))
            .ok_or_else(|| format!("cannot tell the apiVersion of kind `{}`", r.kind))?;
        Ok(ObjectRef {
            api_version,
            kind: r.kind.clone(),
            namespace: if flux_api::CLUSTER_SCOPED_KINDS.contains(&r.kind.as_str()) {
                None
            } else {
                Some(self.render(r.namespace.as_deref().unwrap_or("${{ namespace }}"))?)
            },
            name: self.render(&r.name)?,
        })
    }

    fn render(&self, text: &str) -> Result<String, String> {
        template::render(text, &self.vars).map_err(|e| e.to_string())
    }
}

impl<F: FixtureOps, X: FluxOps> Engine<'_, F, X> {
    /// Run `scenario` in `cell`. Never panics on cluster behaviour and always returns a result:
    /// skipped with the reason when the scenario does not apply, otherwise one `StepResult` per
    /// step (unreached steps are skipped with the reason), `finally` steps always run, and the
    /// namespace is always deleted. On fail/error, diagnostics of the touched objects are written
    /// under `artifacts.dir` and summarised in the result.
    pub async fn run(
        &self,
        scenario: &Scenario,
        cell: &Cell,
        artifacts: &Artifacts,
        cancel: &CancellationToken,
    ) -> ScenarioResult {
        if let Some(reason) = scenario.applicability.skip_reason(&cell.traits()) {
            return skipped(scenario, reason);
        }
        let started = Instant::now();
        // The declared timeout, capped: the runner's backstop sits above the cap.
        let limit = crate::model::matrix::Timeouts::scenario_budget(scenario.timeout);
        let deadline = started + limit;
        let namespace = namespace_for(&scenario.name, cell);
        let mut vars = variables(cell, &namespace, self.fixtures.variables());
        if let Some(c) = self.fixtures.challenges() {
            vars.extend(challenge_variables(c));
        }
        let mut run = Run {
            vars,
            namespace,
            touched: Vec::new(),
            applied_kinds: BTreeMap::new(),
            flux_displaced: false,
            started: SystemTime::now(),
        };
        let mut steps = Vec::new();

        let setup = self.setup_namespace(scenario, cell, &run).await;
        let setup_ok = setup.status == Status::Pass;
        steps.push(step_result("create namespace", "setup", setup, started));

        let mut blocked: Option<String> = (!setup_ok).then(|| "namespace setup failed".into());
        for step in &scenario.steps {
            if let Some(why) = &blocked {
                steps.push(StepResult {
                    name: step.name.clone(),
                    kind: step.action.kind().into(),
                    status: Status::Skip,
                    message: Some(format!("not run: {why}")),
                    duration_ms: 0,
                });
                continue;
            }
            let t0 = Instant::now();
            let remaining = deadline.saturating_duration_since(t0);
            let wanted = step.timeout.unwrap_or(cell.step_timeout);
            let (budget, by_scenario) = if remaining < wanted {
                (remaining, true)
            } else {
                (wanted, false)
            };
            let outcome = if cancel.is_cancelled() {
                Outcome::error("cancelled before the step started")
            } else if budget.is_zero() {
                Outcome::fail(format!(
                    "scenario timeout {} reached before the step started",
                    humantime::format_duration(limit)
                ))
            } else {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => Outcome::error("cancelled"),
                    o = self.guarded(step, cell, &mut run, budget) => o,
                }
            };
            let mut outcome = outcome;
            if by_scenario
                && outcome.status == Status::Fail
                && let Some(m) = &outcome.message
            {
                outcome.message = Some(format!(
                    "{m} (cut to {} by the scenario timeout {})",
                    humantime::format_duration(budget),
                    humantime::format_duration(limit)
                ));
            }
            if outcome.status != Status::Pass {
                blocked = Some(format!(
                    "step `{}` {}",
                    step.name,
                    if outcome.status == Status::Fail {
                        "failed"
                    } else {
                        "errored"
                    }
                ));
            }
            push_results(&mut steps, &step.name, step.action.kind(), outcome, t0);
        }

        // Evidence first: `finally` cleans up exactly the objects a failure is about.
        let failed = |steps: &[StepResult]| {
            steps
                .iter()
                .any(|s| matches!(s.status, Status::Fail | Status::Error))
        };
        let mut diagnostics = None;
        if failed(&steps) {
            diagnostics = Some(self.capture(&run, &artifacts.dir).await);
        }

        // `finally` always runs, also after failure, timeout and cancellation; each step is
        // bounded by its own timeout only, since the scenario budget may be spent.
        if setup_ok {
            for step in &scenario.finally {
                let t0 = Instant::now();
                let budget = step.timeout.unwrap_or(cell.step_timeout);
                let outcome = self.guarded(step, cell, &mut run, budget).await;
                push_results(
                    &mut steps,
                    &format!("finally: {}", step.name),
                    step.action.kind(),
                    outcome,
                    t0,
                );
            }
        }
        if run.flux_displaced {
            let t0 = Instant::now();
            let outcome = match self.flux.upgrade(&cell.flux).await {
                Ok(()) => Outcome::pass(),
                Err(e) => Outcome::from_ops(e),
            };
            steps.push(step_result(
                &format!("restore Flux {}", cell.flux),
                "upgradeFlux",
                outcome,
                t0,
            ));
        }

        let status = steps
            .iter()
            .fold(Status::Pass, |acc, s| acc.worst(s.status));
        let message = steps
            .iter()
            .find(|s| matches!(s.status, Status::Fail | Status::Error))
            .map(|s| {
                format!(
                    "step `{}` ({}): {}",
                    s.name,
                    s.kind,
                    s.message.as_deref().unwrap_or("")
                )
            });
        // Only cleanup failed: capture what is left now.
        if diagnostics.is_none() && failed(&steps) {
            diagnostics = Some(self.capture(&run, &artifacts.dir).await);
        }
        let artifacts_rel = diagnostics.as_ref().map(|_| artifacts.relative.clone());

        let t0 = Instant::now();
        let teardown = self.delete_namespace(&run.namespace, cell).await;
        if teardown.status != Status::Pass {
            steps.push(step_result("delete namespace", "teardown", teardown, t0));
        }
        let status = steps.iter().fold(status, |acc, s| acc.worst(s.status));
        let mut properties = BTreeMap::new();
        properties.insert("namespace".into(), run.namespace.clone());
        ScenarioResult {
            name: scenario.name.clone(),
            tags: scenario.tags.clone(),
            status,
            message: message.or_else(|| {
                steps
                    .iter()
                    .find(|s| s.status == Status::Error)
                    .and_then(|s| s.message.clone())
            }),
            duration_ms: started.elapsed().as_millis() as u64,
            steps,
            diagnostics,
            artifacts: artifacts_rel,
            properties,
        }
    }

    async fn setup_namespace(&self, scenario: &Scenario, cell: &Cell, run: &Run) -> Outcome {
        let ns = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": run.namespace,
                "labels": {
                    RUN_LABEL: label_value(&cell.run_id),
                    SCENARIO_LABEL: scenario.name,
                }
            }
        });
        if let Err(e) = self.kube.apply_values(&[ns], None).await {
            return Outcome::error(format!(
                "create namespace `{}`: {}",
                run.namespace,
                chain(&e)
            ));
        }
        let objects = match self.fixtures.namespace_objects(&run.namespace) {
            Ok(o) => o,
            Err(e) => return Outcome::error(format!("fixture objects: {e}")),
        };
        if !objects.is_empty()
            && let Err(e) = self.kube.apply_values(&objects, Some(&run.namespace)).await
        {
            return Outcome::error(format!("apply fixture Secrets: {}", chain(&e)));
        }
        // Only scenarios that judge TLS challenges get their CA: others' namespaces stay as before.
        let judges_tls = scenario
            .steps
            .iter()
            .chain(&scenario.finally)
            .any(|s| matches!(s.action, Action::TlsChallenges(_)));
        if judges_tls && let Some(c) = self.fixtures.challenges() {
            let secret = json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": CHALLENGE_CA_SECRET, "namespace": run.namespace},
                "type": "Opaque",
                "data": {"ca.crt": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, c.ca_pem())},
            });
            if let Err(e) = self
                .kube
                .apply_values(&[secret], Some(&run.namespace))
                .await
            {
                return Outcome::error(format!("apply the TLS challenge CA Secret: {}", chain(&e)));
            }
        }
        Outcome::pass()
    }

    async fn delete_namespace(&self, namespace: &str, cell: &Cell) -> Outcome {
        let key = ObjectRef {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: namespace.into(),
        };
        if let Err(e) = self.kube.delete(&key).await {
            return Outcome::error(format!("delete namespace: {}", chain(&e)));
        }
        let timeout = cell.teardown_timeout;
        match self
            .kube
            .wait_for(&key, "be deleted", timeout, gone_check)
            .await
        {
            Ok(()) => Outcome::pass(),
            Err(WaitError::Timeout { last, .. }) => Outcome::error(format!(
                "namespace `{namespace}` still present after {}: {last}",
                humantime::format_duration(timeout)
            )),
            Err(e) => Outcome::error(format!("delete namespace: {}", chain(&e))),
        }
    }

    /// Diagnostics of exactly the touched objects (with their events) and the scenario
    /// namespace's events, by the `k8s` collector; the summary goes into the result.
    async fn capture(&self, run: &Run, dir: &std::path::Path) -> String {
        let request = k8s::DiagnosticsRequest {
            objects: run.touched.clone(),
            event_namespaces: vec![run.namespace.clone()],
            ..k8s::DiagnosticsRequest::default()
        };
        self.kube.collect_diagnostics(&request, dir).await.summary
    }

    /// A step under its budget: waits get the budget themselves (to report what they last saw);
    /// the operation as a whole is cut off after a grace period as a harness error.
    async fn guarded(&self, step: &Step, cell: &Cell, run: &mut Run, budget: Duration) -> Outcome {
        match tokio::time::timeout(budget + WAIT_GRACE, self.execute(step, cell, run, budget)).await
        {
            Ok(o) => o,
            Err(_) => Outcome::error(format!(
                "the operation did not return within {}",
                humantime::format_duration(budget + WAIT_GRACE)
            )),
        }
    }

    async fn execute(&self, step: &Step, cell: &Cell, run: &mut Run, budget: Duration) -> Outcome {
        match &step.action {
            Action::Apply { manifests } => self.apply(manifests, cell, run).await,
            Action::WaitFor(w) => {
                let key = match run.resolve(&w.object, &cell.flux) {
                    Ok(k) => k,
                    Err(e) => return Outcome::error(e),
                };
                run.touch(&key);
                let message = match w.message.as_deref().map(|m| compile(run, m)).transpose() {
                    Ok(m) => m,
                    Err(e) => return Outcome::error(e),
                };
                let what = match &w.condition {
                    None => "Ready".to_string(),
                    Some(c) => format!("{c}={}", w.status),
                };
                let result = match &w.condition {
                    None => self.kube.wait_ready(&key, budget).await,
                    Some(c) => {
                        let mut want = ConditionExpectation::new(c).status(&w.status);
                        want.reason = w.reason.clone();
                        want.message = message;
                        self.kube
                            .wait_condition(&key, &want, budget)
                            .await
                            .map(drop)
                    }
                };
                judge_wait(result, &key, &what, budget)
            }
            Action::ExpectFailure(e) => {
                let key = match run.resolve(&e.object, &cell.flux) {
                    Ok(k) => k,
                    Err(err) => return Outcome::error(err),
                };
                run.touch(&key);
                let message = match e.message.as_deref().map(|m| compile(run, m)).transpose() {
                    Ok(m) => m,
                    Err(err) => return Outcome::error(err),
                };
                let mut want = ConditionExpectation::new(&e.condition).status("False");
                want.reason = e.reason.clone();
                want.message = message;
                let result = self.kube.wait_failure(&key, &want, budget).await;
                let mut what = format!("{}=False", e.condition);
                if let Some(r) = &e.reason {
                    what.push_str(&format!(" with reason `{r}`"));
                }
                if let Some(m) = &e.message {
                    what.push_str(&format!(" with message matching `{m}`"));
                }
                judge_wait(
                    result,
                    &key,
                    &format!("the expected failure {what}"),
                    budget,
                )
            }
            Action::Assert(a) => self.assert(a, cell, run, budget).await,
            Action::Delete { object, wait, gone } => {
                let key = match run.resolve(object, &cell.flux) {
                    Ok(k) => k,
                    Err(e) => return Outcome::error(e),
                };
                run.touch(&key);
                match self.kube.delete(&key).await {
                    Ok(true) => {}
                    Ok(false) => return Outcome::fail(format!("`{key}` not found")),
                    Err(e) => return Outcome::from_object(e),
                }
                if !*wait {
                    return Outcome::pass();
                }
                let until = Instant::now() + budget;
                let r = self
                    .kube
                    .wait_for(&key, "be deleted", budget, gone_check)
                    .await;
                let o = judge_wait(r, &key, "deletion", budget);
                if o.status != Status::Pass {
                    return o;
                }
                for g in gone {
                    let gk = match run.resolve(g, &cell.flux) {
                        Ok(k) => k,
                        Err(e) => return Outcome::error(e),
                    };
                    run.touch(&gk);
                    let left = until.saturating_duration_since(Instant::now());
                    let r = self
                        .kube
                        .wait_for(&gk, "be deleted", left, gone_check)
                        .await;
                    let o = judge_wait(r, &gk, "pruning / garbage collection", left);
                    if o.status != Status::Pass {
                        return o;
                    }
                }
                Outcome::pass()
            }
            Action::Patch { object, patch } => {
                let key = match run.resolve(object, &cell.flux) {
                    Ok(k) => k,
                    Err(e) => return Outcome::error(e),
                };
                run.touch(&key);
                match self.kube.merge_patch(&key, patch).await {
                    Ok(_) => Outcome::pass(),
                    Err(e) if e.is_not_found() => Outcome::fail(format!("`{key}` not found")),
                    Err(e) => Outcome::from_object(e),
                }
            }
            Action::GitPush(g) => {
                let mut files = BTreeMap::new();
                for (path, content) in &g.files {
                    match run.render(content) {
                        Ok(c) => files.insert(path.clone(), c),
                        Err(e) => return Outcome::error(format!("file `{path}`: {e}")),
                    };
                }
                let req = GitPushRequest {
                    repository: g.repository.clone(),
                    message: g.message.clone(),
                    files,
                    remove: g.remove.clone(),
                    tag: g.tag.clone(),
                };
                match self.fixtures.git_push(&req).await {
                    Ok(sha) => {
                        run.vars.insert("git.lastCommit".into(), sha);
                        Outcome::pass()
                    }
                    // A fixture that cannot be pushed to is the harness's problem, whatever the cause.
                    Err(e) => Outcome::error(format!("push to fixture `{}`: {e}", g.repository)),
                }
            }
            Action::InstallFlux { version } => {
                // The plan resolved the same template the same way (`install_version`).
                let v = match install_version(version, &cell.flux, cell.previous_flux.as_ref()) {
                    Ok(v) => v,
                    Err(e) => return Outcome::error(e),
                };
                run.flux_displaced = true;
                match self.flux.install(&v).await {
                    Ok(()) => Outcome::pass(),
                    Err(OpsError::Misbehaved(m)) => {
                        Outcome::error(format!("install Flux {v} (a setup step): {m}"))
                    }
                    Err(e) => Outcome::error(format!("install Flux {v}: {e}")),
                }
            }
            Action::TriggerReceiver { object } => {
                let key = match run.resolve(object, &cell.flux) {
                    Ok(k) => k,
                    Err(e) => return Outcome::error(e),
                };
                run.touch(&key);
                let receiver = match self.kube.get(&key).await {
                    Ok(Some(r)) => k8s::objects::to_value(&r),
                    Ok(None) => return Outcome::fail(format!("`{key}` not found")),
                    Err(e) => return Outcome::from_object(e),
                };
                let Some(path) = receiver
                    .pointer("/status/webhookPath")
                    .and_then(Value::as_str)
                else {
                    return Outcome::fail(format!(
                        "`{key}` has no `status.webhookPath`; wait for it to be Ready first"
                    ));
                };
                // From a pod, the way webhook traffic really arrives: Flux's `allow-webhooks`
                // NetworkPolicy admits pods on port 9292, not the API server's service proxy.
                let url = receiver_url(&cell.flux_namespace, path);
                match self.kube.http_post_from_pod(&run.namespace, &url).await {
                    Ok(Some(code)) if (200..300).contains(&code) => Outcome::pass(),
                    Ok(Some(code)) => Outcome::fail(format!(
                        "notification-controller answered HTTP {code} for `{url}`"
                    )),
                    Ok(None) => Outcome::fail(format!(
                        "no HTTP answer from `{url}` to a pod in `{}` (a NetworkPolicy or the receiver refused it)",
                        run.namespace
                    )),
                    // No probe pod could run: the harness cannot send, whatever the product.
                    Err(e) => Outcome::error(format!("POST `{url}` from a pod: {}", chain(&e))),
                }
            }
            Action::TlsChallenges(t) => self.tls_challenges(t, cell, run, budget).await,
            Action::UpgradeFlux => match self.flux.upgrade(&cell.flux).await {
                Ok(()) => {
                    run.flux_displaced = false;
                    Outcome::pass()
                }
                Err(e) => Outcome::from_ops(e),
            },
        }
    }

    /// Wait (within the budget, all challenges at once) for the controller's attempts at each
    /// challenge since the scenario started, then judge each; one detail result per challenge.
    async fn tls_challenges(
        &self,
        t: &crate::model::scenario::TlsChallenges,
        cell: &Cell,
        run: &Run,
        budget: Duration,
    ) -> Outcome {
        use crate::fips::tls::challenge::ChallengeId;
        let Some(ops) = self.fixtures.challenges() else {
            return Outcome::error(
                "the fixture plane of this cell serves no TLS challenge endpoints",
            );
        };
        let Some(crypto) = ops.controller_crypto(t.controller) else {
            return Outcome::error(format!(
                "static inspection has not reported the TLS family and Go version of `{}`: nothing to judge against",
                t.controller.name()
            ));
        };
        let policy = match tls::precheck(crypto, cell.channel_fips) {
            Ok(p) => p,
            Err(j) => {
                return Outcome {
                    status: j.status,
                    message: Some(j.message),
                    details: Vec::new(),
                };
            }
        };
        let mut ids = Vec::new();
        for raw in &t.challenges {
            match ChallengeId::parse(raw) {
                Ok(id) => ids.push(id),
                Err(e) => return Outcome::error(e),
            }
        }
        let t0 = Instant::now();
        let waits = ids
            .iter()
            .map(|id| ops.wait_attempts(*id, run.started, budget));
        let recorded = futures::future::join_all(waits).await;
        let waited = t0.elapsed().as_millis() as u64;
        let mut details = Vec::new();
        for (id, r) in ids.iter().zip(recorded) {
            let j = match r {
                Ok(attempts) => {
                    let mut j = tls::judge(&policy, cell.channel_fips, *id, &attempts);
                    if attempts.is_empty() {
                        j.message = format!(
                            "`{}` never connected to `{}` within {}: nothing was checked",
                            t.controller.name(),
                            id.id(),
                            humantime::format_duration(budget)
                        );
                    }
                    j
                }
                Err(e) => tls::Judgement {
                    status: Status::Error,
                    message: format!("query the challenge endpoint: {e}"),
                },
            };
            details.push(StepResult {
                name: format!("{}: {}", t.controller.name(), id.id()),
                kind: "tlsChallenge".into(),
                status: j.status,
                message: Some(format!("{} ({})", j.message, id.description())),
                duration_ms: waited,
            });
        }
        let count = |s: Status| details.iter().filter(|d| d.status == s).count();
        let names = |s: Status| {
            details
                .iter()
                .filter(|d| d.status == s)
                .map(|d| d.name.rsplit(": ").next().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let side = format!(
            "{} side, `{}` Go {}",
            if cell.channel_fips {
                "FIPS"
            } else {
                "non-FIPS"
            },
            crypto.family.name(),
            crypto.go_version
        );
        let (pass, skip) = (count(Status::Pass), count(Status::Skip));
        let (fail, error) = (count(Status::Fail), count(Status::Error));
        let (status, message) = if error > 0 {
            (
                Status::Error,
                format!(
                    "{side}: {error} challenge(s) could not be judged: {}",
                    names(Status::Error)
                ),
            )
        } else if fail > 0 {
            (
                Status::Fail,
                format!(
                    "{side}: {fail} challenge(s) failed: {}",
                    names(Status::Fail)
                ),
            )
        } else if pass == 0 {
            // Every challenge was skipped: nothing was proven, which is never a pass.
            (
                Status::Error,
                format!(
                    "{side}: none of the {skip} challenge(s) discriminates; nothing was proven"
                ),
            )
        } else {
            (
                Status::Pass,
                format!("{side}: {pass} passed, {skip} skipped (not discriminating)"),
            )
        };
        Outcome {
            status,
            message: Some(message),
            details,
        }
    }

    async fn apply(&self, manifests: &str, cell: &Cell, run: &mut Run) -> Outcome {
        let text = match run.render(manifests) {
            Ok(t) => t,
            Err(e) => return Outcome::error(e),
        };
        let objects = match parse_manifests(&text) {
            Ok(o) => o,
            Err(e) => return Outcome::error(e),
        };
        for o in &objects {
            let (Some(api), Some(kind)) = (
                o.get("apiVersion").and_then(Value::as_str),
                o.get("kind").and_then(Value::as_str),
            ) else {
                return Outcome::error("manifest without apiVersion or kind");
            };
            // Validation proves this for the matrix; this guards runs built outside it.
            if let flux_api::Served::No(why) = flux_api::served(&cell.flux, api, kind) {
                return Outcome::error(format!("manifest `{kind}`: {why}"));
            }
            run.applied_kinds.insert(kind.to_string(), api.to_string());
        }
        match self.kube.apply_values(&objects, Some(&run.namespace)).await {
            Ok(keys) => {
                for k in &keys {
                    run.touch(k);
                }
                Outcome::pass()
            }
            Err(e) => {
                // Record what was meant to be applied, so diagnostics show what did land.
                for k in objects.iter().filter_map(ObjectRef::of_value) {
                    run.touch(&k);
                }
                Outcome::from_apply(e)
            }
        }
    }

    async fn assert(
        &self,
        a: &crate::model::scenario::Assert,
        cell: &Cell,
        run: &mut Run,
        budget: Duration,
    ) -> Outcome {
        // Assertions hold eventually: each is watched until true or the step budget is spent.
        let until = Instant::now() + budget;
        let left = || until.saturating_duration_since(Instant::now());
        if let Some(obj) = &a.object
            && (!a.fields.is_empty() || a.contains.is_some())
        {
            let key = match run.resolve(obj, &cell.flux) {
                Ok(k) => k,
                Err(e) => return Outcome::error(e),
            };
            run.touch(&key);
            let mut compiled = Vec::new();
            for f in &a.fields {
                let path = match checks::parse_path(&f.path) {
                    Ok(p) => p,
                    Err(e) => return Outcome::error(e),
                };
                let re = match f.matches.as_deref().map(Regex::new).transpose() {
                    Ok(r) => r,
                    Err(e) => return Outcome::error(e.to_string()),
                };
                compiled.push((f, path, re));
            }
            let check = |o: Option<&Value>| {
                let Some(obj) = o else {
                    return Verdict::Pending("not found".into());
                };
                for (f, path, re) in &compiled {
                    let got = checks::lookup(obj, path);
                    let bad = match (got, &f.equals, re, f.exists) {
                        (_, _, _, Some(want)) if got.is_some() != want => Some(if want {
                            format!("`{}` does not exist", f.path)
                        } else {
                            format!("`{}` exists ({})", f.path, got.unwrap_or(&Value::Null))
                        }),
                        (Some(v), Some(want), _, _) if v != want => {
                            Some(format!("`{}` is {v}, expected {want}", f.path))
                        }
                        (Some(v), _, Some(re), _) => {
                            let text = v.as_str().map(str::to_string).unwrap_or(v.to_string());
                            (!re.is_match(&text)).then(|| {
                                format!("`{}` is {v}, expected to match `{}`", f.path, re.as_str())
                            })
                        }
                        (None, Some(_), _, _) | (None, _, Some(_), _) => {
                            Some(format!("`{}` does not exist", f.path))
                        }
                        _ => None,
                    };
                    if let Some(b) = bad {
                        return Verdict::Pending(b);
                    }
                }
                if let Some(c) = &a.contains
                    && let Err(e) = checks::contains(obj, c, "")
                {
                    return Verdict::Pending(e);
                }
                Verdict::Done(())
            };
            let r = self.kube.wait_for(&key, "match", left(), check).await;
            let o = judge_wait(r, &key, "the asserted content", budget);
            if o.status != Status::Pass {
                return o;
            }
        }
        if let Some(c) = &a.count {
            let api_version = match c
                .api_version
                .clone()
                .or_else(|| run.applied_kinds.get(&c.kind).cloned())
                .or_else(|| flux_api::default_api_version(&c.kind))
            {
                Some(a) => a,
                None => {
                    return Outcome::error(format!(
                        "cannot tell the apiVersion of kind `{}`",
                        c.kind
                    ));
                }
            };
            let namespace = if flux_api::CLUSTER_SCOPED_KINDS.contains(&c.kind.as_str()) {
                None
            } else {
                match run.render(c.namespace.as_deref().unwrap_or("${{ namespace }}")) {
                    Ok(n) => Some(n),
                    Err(e) => return Outcome::error(e),
                }
            };
            let q = ListQuery {
                api_version,
                kind: c.kind.clone(),
                namespace,
                label_selector: match c
                    .label_selector
                    .as_deref()
                    .map(|l| run.render(l))
                    .transpose()
                {
                    Ok(l) => l,
                    Err(e) => return Outcome::error(e),
                },
            };
            let want = c.equals as usize;
            let check = |items: &[Value]| match items {
                items if items.len() == want => Verdict::Done(()),
                items => Verdict::Pending(format!(
                    "{} {}(s) present: {}",
                    items.len(),
                    q.kind,
                    items
                        .iter()
                        .filter_map(|i| i.pointer("/metadata/name").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            match self.kube.wait_list(&q, "be counted", left(), check).await {
                Ok(()) => {}
                Err(WaitError::Failed { message: m, .. } | WaitError::Timeout { last: m, .. }) => {
                    return Outcome::fail(format!(
                        "expected {want} {}(s){} {}: {m}",
                        q.kind,
                        q.label_selector
                            .as_deref()
                            .map(|s| format!(" matching `{s}`"))
                            .unwrap_or_default(),
                        q.namespace
                            .as_deref()
                            .map(|n| format!("in `{n}`"))
                            .unwrap_or_else(|| "cluster-wide".into())
                    ));
                }
                Err(e) => return Outcome::error(chain(&e)),
            }
        }
        if let Some(e) = &a.event {
            let key = match e
                .object
                .as_ref()
                .map(|o| run.resolve(o, &cell.flux))
                .transpose()
            {
                Ok(k) => k,
                Err(err) => return Outcome::error(err),
            };
            if let Some(k) = &key {
                run.touch(k);
            }
            let re = match e.message.as_deref().map(Regex::new).transpose() {
                Ok(r) => r,
                Err(err) => return Outcome::error(err.to_string()),
            };
            let want = EventWant {
                kind: key.as_ref().map(|k| k.kind.as_str()),
                name: key.as_ref().map(|k| k.name.as_str()),
                namespace: None,
                reason: e.reason.as_deref(),
                message: re.as_ref(),
            };
            let q = ListQuery {
                api_version: "v1".into(),
                kind: "Event".into(),
                namespace: Some(run.namespace.clone()),
                label_selector: None,
            };
            let check = |items: &[Value]| checks::has_event(items, &want);
            match self
                .kube
                .wait_list(&q, "report the event", left(), check)
                .await
            {
                Ok(()) => {}
                Err(WaitError::Failed { message: m, .. } | WaitError::Timeout { last: m, .. }) => {
                    return Outcome::fail(m);
                }
                Err(err) => return Outcome::error(chain(&err)),
            }
        }
        if let Some(w) = &a.webhook {
            let key = match w
                .object
                .as_ref()
                .map(|o| run.resolve(o, &cell.flux))
                .transpose()
            {
                Ok(k) => k,
                Err(err) => return Outcome::error(err),
            };
            let re = match w.message.as_deref().map(Regex::new).transpose() {
                Ok(r) => r,
                Err(err) => return Outcome::error(err.to_string()),
            };
            // Only this scenario's deliveries count: the sink is shared by the cell.
            let want = EventWant {
                kind: key.as_ref().map(|k| k.kind.as_str()),
                name: key.as_ref().map(|k| k.name.as_str()),
                namespace: Some(&run.namespace),
                reason: w.reason.as_deref(),
                message: re.as_ref(),
            };
            let check = |o: Observed<'_>| match o {
                Observed::List(payloads) => checks::has_event(payloads, &want),
                Observed::Object(_) => Verdict::failed("Misuse", "payloads are a list"),
            };
            match self.fixtures.wait_webhook(&check, left()).await {
                Ok(WaitOutcome::Done) => {}
                Ok(WaitOutcome::Failed(m) | WaitOutcome::TimedOut(m)) => {
                    return Outcome::fail(format!("webhook sink: {m}"));
                }
                Err(err) => return Outcome::error(format!("webhook sink: {err}")),
            }
        }
        Outcome::pass()
    }
}

/// Deleted: gone, or still there with what holds it.
fn gone_check(o: Option<&Value>) -> Verdict {
    let Some(obj) = o else {
        return Verdict::Done(());
    };
    let finalizers = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
    Verdict::Pending(match (deleting, finalizers.is_empty()) {
        (true, false) => format!("still present, deleting, finalizers: {finalizers}"),
        (true, true) => "still present, deleting".into(),
        (false, _) => "still present, not being deleted".into(),
    })
}

/// A failure as a step reports it: `Reason: message`.
fn failure_text(reason: &str, message: &str) -> String {
    match reason {
        "" => message.to_string(),
        r => format!("{r}: {message}"),
    }
}

/// Turn a wait's result into a step outcome: not reaching the state is the product's failure,
/// an API problem the harness's error.
fn judge_wait<T>(
    r: Result<T, WaitError>,
    key: &ObjectRef,
    what: &str,
    budget: Duration,
) -> Outcome {
    let unreachable = |m: String| Outcome::fail(format!("`{key}`: {what} cannot be reached: {m}"));
    match r {
        Ok(_) => Outcome::pass(),
        Err(WaitError::Failed {
            reason, message, ..
        }) => unreachable(failure_text(&reason, &message)),
        Err(WaitError::UnexpectedlyReady { .. }) => {
            unreachable("it became ready instead of failing".into())
        }
        Err(WaitError::Timeout { last, .. }) => Outcome::fail(format!(
            "`{key}`: {what} not reached within {}; last seen: {last}",
            humantime::format_duration(budget)
        )),
        Err(e) => Outcome::error(format!("`{key}`: {}", chain(&e))),
    }
}

fn compile(run: &Run, pattern: &str) -> Result<Regex, String> {
    let rendered = run.render(pattern)?;
    Regex::new(&rendered).map_err(|e| format!("pattern `{rendered}`: {e}"))
}

fn step_result(name: &str, kind: &str, o: Outcome, t0: Instant) -> StepResult {
    StepResult {
        name: name.to_string(),
        kind: kind.to_string(),
        status: o.status,
        message: o.message,
        duration_ms: t0.elapsed().as_millis() as u64,
    }
}

/// The step's result, then its parts' (named `<step>: <part>`).
fn push_results(steps: &mut Vec<StepResult>, name: &str, kind: &str, mut o: Outcome, t0: Instant) {
    let details = std::mem::take(&mut o.details);
    steps.push(step_result(name, kind, o, t0));
    steps.extend(details.into_iter().map(|mut d| {
        d.name = format!("{name}: {}", d.name);
        d
    }));
}

/// The `challenges.*` template variables of a cell's challenge endpoints.
pub fn challenge_variables(c: &dyn ChallengeOps) -> BTreeMap<String, String> {
    let endpoints = c.endpoints();
    challenge_variables_of(endpoints.iter().map(|(id, a)| (id.id(), a.clone())))
}

/// The `challenges.*` template variables of endpoints given as (challenge id, `host:port`).
pub fn challenge_variables_of<'a>(
    endpoints: impl IntoIterator<Item = (&'a str, String)>,
) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("challenges.caSecret".into(), CHALLENGE_CA_SECRET.into());
    for (id, address) in endpoints {
        v.insert(
            template::challenge_variable(id, "url"),
            format!("https://{address}"),
        );
        v.insert(template::challenge_variable(id, "address"), address);
    }
    v
}

/// Label values are at most 63 characters of `[A-Za-z0-9._-]`.
fn label_value(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// The template variables of a scenario run in a cell.
pub fn variables(
    cell: &Cell,
    namespace: &str,
    fixtures: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut v = fixtures;
    v.insert("namespace".into(), namespace.into());
    v.insert("run.id".into(), cell.run_id.clone());
    v.insert("cell.id".into(), cell.cell_id.clone());
    v.insert("kubernetes.minor".into(), cell.kubernetes.to_string());
    v.insert("flux.version".into(), cell.flux.to_string());
    if let Some(p) = &cell.previous_flux {
        v.insert("flux.previousVersion".into(), p.to_string());
    }
    v.insert("flux.namespace".into(), cell.flux_namespace.clone());
    v.insert("channel.name".into(), cell.channel.clone());
    v.insert("channel.fips".into(), cell.channel_fips.to_string());
    v
}

/// Multi-document YAML into objects, skipping empty documents.
pub fn parse_manifests(text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let v: Value = serde::Deserialize::deserialize(doc)
            .map_err(|e| format!("manifest document {}: {e}", i + 1))?;
        match v {
            Value::Null => {}
            Value::Object(_) => out.push(v),
            _ => return Err(format!("manifest document {} is not a mapping", i + 1)),
        }
    }
    Ok(out)
}
