//! The scenarios phase of a cell: runs each planned scenario through the scenario engine, with the
//! cluster reached through `k8s`, the cell's fixture plane behind `FixtureOps`, and Flux
//! (re)installs for upgrade scenarios behind `FluxOps`.

use super::fixture_stage::Planes;
use super::stages::{CellCtx, ScenarioRunner};
use crate::fips::tls::policy::{Family as TlsFamily, GoVersion};
use crate::fixtures::plane::{AUTH_SECRET, Plane};
use crate::flux::credentials::{RegistryCredentials, Token};
use crate::flux::install::{InstallRequest, install};
use crate::flux::manifests::ManifestSource;
use crate::flux::verify::{VerifyOptions, verify};
use crate::k8s::Kube;
use crate::model::Component;
use crate::model::matrix::{Channel, Matrix};
use crate::model::scenario::Scenario;
use crate::model::{FluxVersion, ScenarioResult, Status};
use crate::plan::PlannedScenario;
use crate::scenario::tls::ChallengeSetOps;
use crate::scenario::{
    Artifacts, Cell, ChallengeOps, Check, ControllerCrypto, Engine, FixtureOps, FluxOps,
    GitPushRequest, Observed, OpsError, Verdict, WaitOutcome,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub struct ScenarioStage {
    pub matrix: Arc<Matrix>,
    pub scenarios: HashMap<String, Scenario>,
    pub planes: Arc<Planes>,
    pub manifests: ManifestSource,
    pub registry_username: String,
}

fn errored(planned: &PlannedScenario, message: String) -> ScenarioResult {
    ScenarioResult {
        name: planned.name.clone(),
        tags: planned.tags.clone(),
        status: Status::Error,
        message: Some(message),
        duration_ms: 0,
        steps: Vec::new(),
        diagnostics: None,
        artifacts: None,
        properties: BTreeMap::new(),
    }
}

impl ScenarioRunner for ScenarioStage {
    fn run<'a>(
        &'a self,
        ctx: &'a CellCtx,
        planned: &'a PlannedScenario,
    ) -> BoxFuture<'a, ScenarioResult> {
        Box::pin(async move {
            let Some(scenario) = self.scenarios.get(&planned.name) else {
                return errored(
                    planned,
                    format!("scenario `{}` is not loaded", planned.name),
                );
            };
            if let Some(reason) = &planned.skip {
                return crate::scenario::skipped(scenario, reason.clone());
            }
            let Some(cell_fixtures) = self.planes.get(&ctx.cell.id) else {
                return errored(
                    planned,
                    "the fixture plane is not running in this cell".into(),
                );
            };
            let Some(channel) = self.matrix.channel(&ctx.cell.channel) else {
                return errored(
                    planned,
                    format!("the matrix has no channel `{}`", ctx.cell.channel),
                );
            };
            let kube = match Kube::connect(&ctx.cluster.kubeconfig, &ctx.cluster.context).await {
                Ok(k) => k,
                Err(e) => return errored(planned, format!("connect to the cell's cluster: {e}")),
            };
            let cell = Cell {
                run_id: ctx.run_id.clone(),
                cell_id: ctx.cell.id.clone(),
                kubernetes: ctx.cell.kubernetes,
                flux: ctx.cell.flux.clone(),
                previous_flux: self
                    .matrix
                    .flux
                    .iter()
                    .find(|f| f.version == ctx.cell.flux)
                    .and_then(|f| f.previous.clone()),
                flux_namespace: super::flux_stage::NAMESPACE.to_string(),
                channel: ctx.cell.channel.clone(),
                channel_fips: ctx.cell.fips,
                components: self.matrix.components.clone(),
                step_timeout: ctx.timeouts.step,
                teardown_timeout: ctx.timeouts.teardown,
            };
            let artifacts = Artifacts {
                dir: ctx.artifacts_dir.join(&scenario.name),
                relative: format!("artifacts/{}/{}", ctx.cell.id, scenario.name),
            };
            let fixtures = PlaneOps {
                plane: cell_fixtures.plane,
                challenges: cell_fixtures.challenges.map(|set| ChallengeSetOps {
                    set,
                    host: cell_fixtures.host,
                    crypto: controller_crypto(&ctx.properties),
                }),
            };
            let flux = CellFlux {
                kube: kube.clone(),
                channel: channel.clone(),
                matrix: &self.matrix,
                manifests: &self.manifests,
                credentials: ctx.registry_token.as_ref().map(|t| RegistryCredentials {
                    username: self.registry_username.clone(),
                    token: Token::new(t.expose()),
                }),
                install_timeout: ctx.timeouts.install,
                verify_timeout: ctx.timeouts.verify,
                run_id: &ctx.run_id,
            };
            let engine = Engine {
                kube: &kube,
                fixtures: &fixtures,
                flux: &flux,
            };
            engine.run(scenario, &cell, &artifacts, &ctx.cancel).await
        })
    }
}

/// What the `verify-fips` phase found per controller, as the TLS policy needs it. Controllers it
/// did not inspect are absent, so a `tlsChallenges` step on them errors instead of guessing.
pub fn controller_crypto(
    props: &BTreeMap<String, String>,
) -> BTreeMap<Component, ControllerCrypto> {
    let mut out = BTreeMap::new();
    for c in Component::ALL {
        let get = |k: &str| props.get(&format!("fips.{}.{k}", c.name()));
        let (Some(family), Some(go)) = (get("family"), get("goVersion")) else {
            continue;
        };
        let family = match (family.as_str(), get("nativeMode").map(String::as_str)) {
            ("none", _) => TlsFamily::None,
            ("boringcrypto", _) => TlsFamily::BoringNoFipsOnly,
            ("boringcrypto+fipsonly", _) => TlsFamily::BoringFipsOnly,
            ("native", Some("only")) => TlsFamily::NativeOnly,
            ("native", _) => TlsFamily::NativeOn,
            _ => continue,
        };
        if let Ok(go_version) = go.parse::<GoVersion>() {
            out.insert(c, ControllerCrypto { family, go_version });
        }
    }
    out
}

/// `FixtureOps` over a running fixture plane and the cell's TLS challenge endpoints.
pub struct PlaneOps {
    pub plane: Arc<Plane>,
    pub challenges: Option<ChallengeSetOps>,
}

fn yaml_object(text: &str) -> Result<Value, OpsError> {
    serde_norway::from_str::<Value>(text).map_err(|e| OpsError::infra("render fixture secret", e))
}

impl FixtureOps for PlaneOps {
    fn variables(&self) -> BTreeMap<String, String> {
        self.plane.template_variables()
    }

    fn challenges(&self) -> Option<&dyn ChallengeOps> {
        self.challenges.as_ref().map(|c| c as &dyn ChallengeOps)
    }

    fn namespace_objects(&self, namespace: &str) -> Result<Vec<Value>, OpsError> {
        let mut out = vec![
            yaml_object(&self.plane.ca_secret_manifest(namespace))?,
            yaml_object(&self.plane.push_secret_manifest(namespace))?,
        ];
        match self.plane.auth_secret_manifest(namespace) {
            Some(auth) => out.push(yaml_object(&auth)?),
            // Scenarios reference the auth Secret unconditionally; without auth it holds no credentials.
            None => out.push(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/dockerconfigjson",
                "metadata": {"name": AUTH_SECRET, "namespace": namespace},
                "stringData": {".dockerconfigjson": "{\"auths\":{}}"},
            })),
        }
        Ok(out)
    }

    async fn git_push(&self, push: &GitPushRequest) -> Result<String, OpsError> {
        let mut changes: Vec<(String, Option<Vec<u8>>)> = push
            .files
            .iter()
            .map(|(p, c)| (p.clone(), Some(c.clone().into_bytes())))
            .collect();
        changes.extend(push.remove.iter().map(|p| (p.clone(), None)));
        self.plane
            .git_push(
                &push.repository,
                "main",
                &push.message,
                &changes,
                push.tag.as_deref(),
            )
            .await
            .map_err(|e| {
                OpsError::infra(
                    format!("push to fixture repository `{}`", push.repository),
                    e,
                )
            })
    }

    async fn wait_webhook(
        &self,
        check: Check<'_>,
        timeout: Duration,
    ) -> Result<WaitOutcome, OpsError> {
        let bodies = || {
            self.plane
                .webhook_events()
                .into_iter()
                .map(|e| e.body)
                .collect::<Vec<_>>()
        };
        let judge = |list: &[Value]| check(Observed::List(list));
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let last = match judge(&bodies()) {
                Verdict::Done(()) => return Ok(WaitOutcome::Done),
                Verdict::Failed(f) => return Ok(WaitOutcome::Failed(f.message)),
                Verdict::Pending(m) => m,
            };
            let seen = self.plane.webhook_events().len();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            // Wake on the next event (one notification per arrival), never on a timer.
            let more = self
                .plane
                .wait_for_event(left, |_| self.plane.webhook_events().len() > seen)
                .await;
            if more.is_none() {
                return Ok(WaitOutcome::TimedOut(last));
            }
        }
    }
}

/// `FluxOps` for upgrade scenarios: (re)install the cell's channel at another Flux version, then
/// wait until every controller runs the channel's pinned image.
pub struct CellFlux<'a> {
    pub kube: Kube,
    pub channel: Channel,
    pub matrix: &'a Matrix,
    pub manifests: &'a ManifestSource,
    pub credentials: Option<RegistryCredentials>,
    pub install_timeout: Duration,
    pub verify_timeout: Duration,
    /// Objects are labelled with the run; the run's own earlier install is not "existing".
    pub run_id: &'a str,
}

impl CellFlux<'_> {
    async fn install_and_wait(&self, version: &FluxVersion) -> Result<(), OpsError> {
        let req = InstallRequest {
            flux_version: version,
            channel: &self.channel,
            components: &self.matrix.components,
            manifests: self.manifests,
            credentials: self.credentials.as_ref(),
            namespace: super::flux_stage::NAMESPACE,
            timeout: self.install_timeout,
            run_id: Some(self.run_id),
            replace_existing: false,
        };
        let installed = install(&self.kube, &req)
            .await
            .map_err(|e| match e.status() {
                Status::Fail => OpsError::Misbehaved(format!("install Flux {version}: {e}")),
                _ => OpsError::infra(format!("install Flux {version}"), e),
            })?;
        let options = VerifyOptions {
            timeout: self.verify_timeout,
            artifacts_dir: None,
            scrub: Vec::new(),
        };
        let v = verify(&self.kube, &installed.controllers, &options).await;
        match v.status {
            Status::Pass => Ok(()),
            Status::Fail => Err(OpsError::Misbehaved(format!(
                "Flux {version}: {}",
                v.message
            ))),
            _ => Err(OpsError::infra(format!("verify Flux {version}"), v.message)),
        }
    }
}

impl FluxOps for CellFlux<'_> {
    async fn install(&self, version: &FluxVersion) -> Result<(), OpsError> {
        self.install_and_wait(version).await
    }

    async fn upgrade(&self, version: &FluxVersion) -> Result<(), OpsError> {
        // Server-side apply of the newer release over the running one is the upgrade.
        self.install_and_wait(version).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_crypto_comes_from_the_verify_fips_properties() {
        let props: BTreeMap<String, String> = [
            ("fips.source-controller.family", "native"),
            ("fips.source-controller.goVersion", "go1.26.6"),
            ("fips.source-controller.nativeMode", "only"),
            ("fips.helm-controller.family", "boringcrypto+fipsonly"),
            ("fips.helm-controller.goVersion", "go1.26.6-X:boringcrypto"),
            ("fips.kustomize-controller.family", "none"),
            ("fips.kustomize-controller.goVersion", "not a version"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = controller_crypto(&props);
        assert_eq!(
            c[&Component::SourceController].family,
            TlsFamily::NativeOnly
        );
        assert_eq!(
            c[&Component::SourceController].go_version,
            GoVersion::new(26, 6)
        );
        assert_eq!(
            c[&Component::HelmController].family,
            TlsFamily::BoringFipsOnly
        );
        // Unparseable or uninspected controllers are absent: their challenges error, never pass.
        assert!(!c.contains_key(&Component::KustomizeController));
        assert!(!c.contains_key(&Component::NotificationController));
    }
}
