//! The engine's view of what is not Kubernetes: the fixture plane (`FixtureOps`, with its TLS
//! challenge endpoints as `ChallengeOps`) and the Flux installer (`FluxOps`), both implemented by
//! the runner. The cluster itself the engine reaches through `k8s::Kube`.

use crate::fips::tls::challenge::{Attempt, ChallengeId};
use crate::fips::tls::policy::{Family, GoVersion};
use crate::model::{Component, FluxVersion};
use futures::future::BoxFuture;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

pub use crate::k8s::{ObjectRef, Verdict};
use std::time::Duration;

/// What a fixture-plane watch currently sees (the webhook sink's payloads).
#[derive(Clone, Copy, Debug)]
pub enum Observed<'a> {
    /// `None`: the object does not exist (yet, or any more).
    Object(Option<&'a Value>),
    List(&'a [Value]),
}

/// How a wait ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    Done,
    Failed(String),
    /// The timeout passed; the text is the last `Pending` description.
    TimedOut(String),
}

/// A predicate over observations, evaluated on every change.
pub type Check<'a> = &'a (dyn Fn(Observed<'_>) -> Verdict + Send + Sync);

/// Why an operation did not complete. The variant decides fail versus error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpsError {
    /// The object is not there; a product outcome when the scenario expected it.
    #[error("`{0}` not found")]
    NotFound(String),
    /// The product misbehaved (for example Flux controllers never became ready after an upgrade).
    #[error("{0}")]
    Misbehaved(String),
    /// The harness or infrastructure failed (API unreachable, fixture push rejected).
    #[error("{action}: {message}")]
    Infra { action: String, message: String },
}

impl OpsError {
    pub fn infra(action: impl Into<String>, message: impl fmt::Display) -> Self {
        OpsError::Infra {
            action: action.into(),
            message: message.to_string(),
        }
    }
}

/// A commit to push to a fixture git repository (templates already rendered).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitPushRequest {
    pub repository: String,
    pub message: String,
    pub files: BTreeMap<String, String>,
    pub remove: Vec<String>,
    pub tag: Option<String>,
}

/// The fixture plane as the engine needs it; the runner implements it over `fixtures`.
pub trait FixtureOps: Send + Sync {
    /// Values of the `fixtures.*` template variables for this cell.
    fn variables(&self) -> BTreeMap<String, String>;
    /// Objects every scenario namespace needs, for `namespace`: the Secrets named by
    /// `fixtures.caSecret` (`ca.crt`, plus git/Helm credentials when auth is on) and
    /// `fixtures.authSecret` (a dockerconfigjson). Scenarios reference both unconditionally, so
    /// with auth off the latter must still exist, e.g. with `{"auths":{}}`.
    fn namespace_objects(&self, namespace: &str) -> Result<Vec<Value>, OpsError>;
    /// Commit (and tag) on branch `main`; returns the new commit SHA.
    fn git_push(
        &self,
        push: &GitPushRequest,
    ) -> impl Future<Output = Result<String, OpsError>> + Send;
    /// Watch the webhook sink's received payloads until `check` (over the list of JSON bodies
    /// received so far) is done, or `timeout` passes.
    fn wait_webhook(
        &self,
        check: Check<'_>,
        timeout: Duration,
    ) -> impl Future<Output = Result<WaitOutcome, OpsError>> + Send;
    /// The cell's TLS challenge endpoints, when the fixture plane serves them. `None` (the
    /// default) makes `tlsChallenges` steps errors and leaves `challenges.*` variables unset.
    fn challenges(&self) -> Option<&dyn ChallengeOps> {
        None
    }
}

/// What static inspection found about a controller binary's TLS stack: the policy its
/// handshakes are judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControllerCrypto {
    pub family: Family,
    pub go_version: GoVersion,
}

/// The name of the Secret (key `ca.crt`) the engine creates in a scenario namespace that has a
/// `tlsChallenges` step; `challenges.caSecret` holds it.
pub const CHALLENGE_CA_SECRET: &str = "flux-compat-challenge-ca";

/// The TLS challenge endpoints of a cell (`fips::tls::challenge::ChallengeSet` behind the
/// runner). Object-safe, so `FixtureOps` can hand it out optionally.
pub trait ChallengeOps: Send + Sync {
    /// Each served challenge and its `host:port` as the cell's controllers reach it.
    fn endpoints(&self) -> Vec<(ChallengeId, String)>;
    /// The PEM the controllers must trust (`ca.crt`).
    fn ca_pem(&self) -> String;
    /// The TLS family and Go version of `controller`'s binary, from static inspection of the
    /// cell's image; `None` when inspection has not reported it (the step then cannot judge).
    fn controller_crypto(&self, controller: Component) -> Option<ControllerCrypto>;
    /// Wait until challenge `id` has recorded at least one attempt at or after `since`, or
    /// `timeout` passes; returns the attempts since `since` (empty when none came). `Err` only
    /// when the endpoints themselves cannot be queried.
    fn wait_attempts(
        &self,
        id: ChallengeId,
        since: std::time::SystemTime,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<Attempt>, OpsError>>;
}

/// Changing the cell's Flux installation; the runner implements it over `flux`.
pub trait FluxOps: Send + Sync {
    /// Replace the installed Flux with `version` (same channel) and wait until it runs.
    fn install(&self, version: &FluxVersion) -> impl Future<Output = Result<(), OpsError>> + Send;
    /// Upgrade the installed Flux in place to `version` and wait until it runs.
    /// `Misbehaved` when the controllers do not become ready (a failure of the product).
    fn upgrade(&self, version: &FluxVersion) -> impl Future<Output = Result<(), OpsError>> + Send;
}
