//! The shipped `fips-tls` scenario end to end against the API server TEST DOUBLE: the engine
//! applies the Git/Helm/OCI sources through the real `k8s` paths, the double's scripted
//! source-controller fetches each URL with a real Go TLS client (boring+fipsonly standing in for
//! the `fips` channel, a plain build for `mainline`) against the real challenge endpoints, and the
//! `tlsChallenges` step judges what the endpoints recorded. Negative cases: a `fips` cell whose
//! controller is really a plain build fails; a `mainline` cell whose controller refuses what its
//! policy accepts is inconclusive (an error); a controller that never connects is an error.

mod support;

use flux_compat::config::Diagnostics;
use flux_compat::config::scenario::{Context, load};
use flux_compat::fips::tls::challenge::{ChallengeConfig, ChallengeSet};
use flux_compat::fips::tls::policy::{Family, GoVersion};
use flux_compat::k8s::{ApplyOptions, Kube};
use flux_compat::model::scenario::{Action, ExpectFailure, ObjectRef, Scenario, Step};
use flux_compat::model::{Component, FluxVersion, KubeMinor, ScenarioResult, Status};
use flux_compat::scenario::tls::ChallengeSetOps;
use flux_compat::scenario::{
    Artifacts, Cell, ChallengeOps, Check, ControllerCrypto, Engine, FixtureOps, FluxOps,
    GitPushRequest, Observed, OpsError, Verdict, WaitOutcome,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use support::apiserver::{ApiServer, CONTEXT, Options, Script, SourceTls};
use tokio_util::sync::CancellationToken;

const GO: &str = "1.27.3";

/// A Go client variant: (name, environment, build tags).
type Variant = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

const VARIANTS: &[Variant] = &[
    ("plain", &[("CGO_ENABLED", "0")], ""),
    (
        "boringfips",
        &[("CGO_ENABLED", "1"), ("GOEXPERIMENT", "boringcrypto")],
        "fipsonly",
    ),
];

/// Build both clients once per test binary, in parallel. Own directory names, so this binary
/// never races `fips_tls` over the same sources (the Go build cache is safe to share).
fn clients() -> &'static HashMap<&'static str, PathBuf> {
    static BUILT: OnceLock<HashMap<&'static str, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = support::root().join("target/go-fixtures");
        let handles: Vec<_> = VARIANTS
            .iter()
            .map(|v| {
                let target = target.clone();
                std::thread::spawn(move || (v.0, build(v, &target)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("build thread"))
            .collect()
    })
}

fn build(v: &Variant, target: &Path) -> PathBuf {
    let (name, env, tags) = *v;
    let src = target.join("src").join(format!("scenario-{name}"));
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(&src).unwrap();
    let fixture = support::root().join("fixtures/go/tlspeer");
    for f in ["main.go", "fipsonly.go"] {
        std::fs::copy(fixture.join(f), src.join(f)).unwrap();
    }
    std::fs::write(src.join("go.mod"), format!("module tlspeer\n\ngo {GO}\n")).unwrap();
    let out = target.join("bin").join(format!("scenario-{name}"));
    let mut cmd = Command::new(support::go(GO));
    cmd.current_dir(&src)
        .args(["build", "-o"])
        .arg(&out)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", target.join("cache"))
        .env("GOPATH", target.join("path"))
        .env_remove("GOEXPERIMENT")
        .env_remove("GOFIPS140")
        .env_remove("GODEBUG");
    if !tags.is_empty() {
        cmd.args(["-tags", tags]);
    }
    cmd.arg(".");
    for (k, val) in env {
        cmd.env(k, val);
    }
    let o = cmd.output().expect("run go build");
    assert!(
        o.status.success(),
        "go build {name} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// What installing Flux provides for this scenario: the source CRDs (status subresource).
fn crd(kind: &str, plural: &str) -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.source.toolkit.fluxcd.io}}
spec:
  group: source.toolkit.fluxcd.io
  names: {{kind: {kind}, listKind: {kind}List, plural: {plural}, singular: {singular}}}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}
    subresources: {{status: {{}}}}
"#,
        singular = kind.to_lowercase()
    )
}

/// The fixture plane of the cell as far as this scenario needs it: the challenge endpoints.
struct Fixtures {
    challenges: ChallengeSetOps,
}

impl FixtureOps for Fixtures {
    fn variables(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
    fn namespace_objects(&self, _: &str) -> Result<Vec<Value>, OpsError> {
        Ok(vec![])
    }
    async fn git_push(&self, _: &GitPushRequest) -> Result<String, OpsError> {
        Err(OpsError::infra("git push", "no git fixtures in this test"))
    }
    async fn wait_webhook(&self, check: Check<'_>, _: Duration) -> Result<WaitOutcome, OpsError> {
        Ok(match check(Observed::List(&[])) {
            Verdict::Done(()) => WaitOutcome::Done,
            Verdict::Failed(f) => WaitOutcome::Failed(f.message),
            Verdict::Pending(m) => WaitOutcome::TimedOut(m),
        })
    }
    fn challenges(&self) -> Option<&dyn ChallengeOps> {
        Some(&self.challenges)
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

fn shipped_scenario() -> Scenario {
    let path = support::root().join("scenarios/fips-tls.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut d = Diagnostics::default();
    let ctx = Context {
        channels: None,
        fixtures_root: None,
        default_timeout: Duration::from_secs(60),
        flux_versions: None,
    };
    let s = load(&path, &text, &ctx, &mut d);
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

fn cell(channel: &str, fips: bool) -> Cell {
    Cell {
        run_id: "r1".into(),
        cell_id: format!("1.36-{channel}-v2.9.4-double"),
        kubernetes: KubeMinor::new(1, 36),
        flux: "v2.9.4".parse().unwrap(),
        previous_flux: None,
        flux_namespace: "flux-system".into(),
        channel: channel.into(),
        channel_fips: fips,
        components: Component::ALL.to_vec(),
        step_timeout: Duration::from_secs(30),
        teardown_timeout: Duration::from_secs(10),
    }
}

/// How a cell's source-controller is made up for one run.
struct Setup {
    channel: &'static str,
    channel_fips: bool,
    /// What static inspection reports for source-controller.
    family: Family,
    /// The Go client that actually connects; `None`: the controller never fetches over TLS.
    client: Option<&'static str>,
    /// Budget of the judging step (the shipped 3m is for real clusters).
    judge_timeout: Option<Duration>,
    /// Extra checks run before the judging step: (source name, pattern its `Ready=False`
    /// message must match), proving the double set conditions from the real handshake.
    conditions: &'static [(&'static str, &'static str)],
}

/// An `expectFailure` on a GitRepository's Ready condition.
fn ready_false(name: &str, message: &str) -> Step {
    Step {
        name: format!("condition of {name}"),
        timeout: Some(Duration::from_secs(20)),
        action: Action::ExpectFailure(ExpectFailure {
            object: ObjectRef {
                api_version: None,
                kind: "GitRepository".into(),
                name: name.into(),
                namespace: None,
            },
            condition: "Ready".into(),
            reason: Some("GitOperationFailed".into()),
            message: Some(message.into()),
        }),
    }
}

async fn run(setup: Setup) -> ScenarioResult {
    let client = setup.client.map(|c| clients()[c].clone());
    let set = tokio::task::spawn_blocking(|| ChallengeSet::start(&ChallengeConfig::default()))
        .await
        .unwrap()
        .expect("start the challenge endpoints");
    let challenges = ChallengeSetOps {
        set: Arc::new(set),
        host: "127.0.0.1".into(),
        crypto: BTreeMap::from([(
            Component::SourceController,
            ControllerCrypto {
                family: setup.family,
                go_version: GO.parse::<GoVersion>().unwrap(),
            },
        )]),
    };
    let endpoints = challenges.endpoints().into_iter().map(|(_, a)| a).collect();
    let server = ApiServer::start(Options {
        script: Script {
            source_tls: client.map(|client| SourceTls { client, endpoints }),
            ..Script::default()
        },
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kube = Kube::connect(&server.write_kubeconfig(dir.path()), CONTEXT)
        .await
        .unwrap();
    for (kind, plural) in [
        ("GitRepository", "gitrepositories"),
        ("HelmRepository", "helmrepositories"),
        ("OCIRepository", "ocirepositories"),
    ] {
        kube.apply_yaml(&crd(kind, plural), "crd", &ApplyOptions::default())
            .await
            .unwrap();
    }
    let mut scenario = shipped_scenario();
    let judge = scenario
        .steps
        .iter()
        .position(|s| matches!(s.action, Action::TlsChallenges(_)))
        .expect("the shipped scenario judges");
    for (name, message) in setup.conditions.iter().rev() {
        scenario.steps.insert(judge, ready_false(name, message));
    }
    if let Some(t) = setup.judge_timeout {
        for s in &mut scenario.steps {
            if matches!(s.action, Action::TlsChallenges(_)) {
                s.timeout = Some(t);
            }
        }
    }
    let fixtures = Fixtures { challenges };
    let engine = Engine {
        kube: &kube,
        fixtures: &fixtures,
        flux: &NoFlux,
    };
    let artifacts = Artifacts {
        dir: dir.path().join("artifacts"),
        relative: "artifacts/c/fips-tls".into(),
    };
    engine
        .run(
            &scenario,
            &cell(setup.channel, setup.channel_fips),
            &artifacts,
            &CancellationToken::new(),
        )
        .await
}

/// Challenge id → status of its result.
fn per_challenge(r: &ScenarioResult) -> BTreeMap<String, Status> {
    r.steps
        .iter()
        .filter(|s| s.kind == "tlsChallenge")
        .map(|s| (s.name.rsplit(": ").next().unwrap().to_string(), s.status))
        .collect()
}

fn expect(pass: &[&str], skip: &[&str]) -> BTreeMap<String, Status> {
    flux_compat::model::scenario::CHALLENGE_IDS
        .iter()
        .map(|id| {
            let s = if skip.contains(id) {
                Status::Skip
            } else {
                assert!(pass.contains(id) || pass.is_empty(), "{id} unaccounted");
                Status::Pass
            };
            (id.to_string(), s)
        })
        .collect()
}

fn message_of<'a>(r: &'a ScenarioResult, id: &str) -> &'a str {
    r.steps
        .iter()
        .find(|s| s.kind == "tlsChallenge" && s.name.ends_with(&format!(": {id}")))
        .and_then(|s| s.message.as_deref())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fips_channel_with_a_boring_fipsonly_controller_passes() {
    let r = run(Setup {
        channel: "fips",
        channel_fips: true,
        family: Family::BoringFipsOnly,
        client: Some("boringfips"),
        judge_timeout: None,
        conditions: &[
            (
                "git-tls12-chacha20",
                "unable to clone .*tls: handshake failure",
            ),
            ("git-control-tls13", "unexpected response .*TLS 1.3"),
        ],
    })
    .await;
    assert_eq!(r.status, Status::Pass, "{r:#?}");
    // Plain Go 1.27 refuses TLS 1.1 and static RSA by default: those prove nothing.
    assert_eq!(
        per_challenge(&r),
        expect(&[], &["tls11", "static-rsa"]),
        "{r:#?}"
    );
    assert!(
        message_of(&r, "tls12-chacha20").starts_with("refused as required"),
        "{r:#?}"
    );
    assert!(
        message_of(&r, "control-tls13").starts_with("accepted"),
        "{r:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mainline_channel_with_a_plain_controller_accepts_the_violators() {
    let r = run(Setup {
        channel: "mainline",
        channel_fips: false,
        family: Family::None,
        client: Some("plain"),
        judge_timeout: None,
        conditions: &[("git-tls12-chacha20", "unexpected response .*TLS 1.2")],
    })
    .await;
    assert_eq!(r.status, Status::Pass, "{r:#?}");
    assert_eq!(
        per_challenge(&r),
        expect(&[], &["tls11", "static-rsa"]),
        "{r:#?}"
    );
    assert!(
        message_of(&r, "tls12-chacha20").starts_with("accepted"),
        "{r:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fips_channel_whose_controller_is_really_plain_fails() {
    let r = run(Setup {
        channel: "fips",
        channel_fips: true,
        family: Family::BoringFipsOnly,
        client: Some("plain"),
        judge_timeout: None,
        conditions: &[],
    })
    .await;
    assert_eq!(r.status, Status::Fail, "{r:#?}");
    let got = per_challenge(&r);
    for id in ["tls12-chacha20", "x25519-tls13", "cbc-sha1", "leaf-ed25519"] {
        assert_eq!(got[id], Status::Fail, "{id}: {r:#?}");
    }
    assert!(
        message_of(&r, "tls12-chacha20").contains("accepted a forbidden offer"),
        "{r:#?}"
    );
    // Even where the handshake outcome is right, the plain ClientHello offers forbidden groups.
    assert!(
        message_of(&r, "control-tls13").contains("ClientHello offers forbidden"),
        "{r:#?}"
    );
    let judge = r.steps.iter().find(|s| s.kind == "tlsChallenges").unwrap();
    assert_eq!(judge.status, Status::Fail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_that_never_connects_is_an_error() {
    let r = run(Setup {
        channel: "fips",
        channel_fips: true,
        family: Family::BoringFipsOnly,
        client: None,
        judge_timeout: Some(Duration::from_secs(2)),
        conditions: &[],
    })
    .await;
    assert_eq!(r.status, Status::Error, "{r:#?}");
    let got = per_challenge(&r);
    assert_eq!(got.len(), 15, "{r:#?}");
    assert!(got.values().all(|s| *s == Status::Error), "{r:#?}");
    assert!(
        message_of(&r, "control-tls13").contains("never connected"),
        "{r:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mainline_channel_refusing_what_its_policy_accepts_is_inconclusive() {
    // Inspection says plain Go, but the client is really boring+fipsonly: its refusals cannot
    // be told from a broken endpoint, so they prove nothing and must not pass.
    let r = run(Setup {
        channel: "mainline",
        channel_fips: false,
        family: Family::None,
        client: Some("boringfips"),
        judge_timeout: None,
        conditions: &[],
    })
    .await;
    assert_eq!(r.status, Status::Error, "{r:#?}");
    let got = per_challenge(&r);
    assert_eq!(got["tls12-chacha20"], Status::Error, "{r:#?}");
    assert!(
        message_of(&r, "tls12-chacha20").starts_with("inconclusive"),
        "{r:#?}"
    );
    assert_eq!(got["control-tls13"], Status::Pass, "{r:#?}");
    assert_eq!(got["tls11"], Status::Skip, "{r:#?}");
}
