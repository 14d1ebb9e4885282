//! Existing clusters as a neighbour on the network and a customer would see them (issue 16): the
//! fixture plane binds only the advertised address and demands per-run credentials, only the
//! harness may push; everything a run creates (the pull Secret with the token included) is
//! labelled and removed at teardown; a Flux the run did not create is never overwritten
//! silently. The cluster is the in-process API server TEST DOUBLE.

#[allow(unused_imports, clippy::type_complexity)]
mod support;

use flux_compat::cluster::existing::ExistingProvider;
use flux_compat::cluster::{Cluster, Provider};
use flux_compat::config::Loaded;
use flux_compat::flux::manifests::ManifestSource;
use flux_compat::model::Status;
use flux_compat::plan::{self, Filter, PlannedCell};
use flux_compat::runner::cleanup::{Registry, Scope};
use flux_compat::runner::events::Recorder;
use flux_compat::runner::fixture_stage::FixtureStage;
use flux_compat::runner::flux_stage::ChannelStage;
use flux_compat::runner::scenario_stage::ScenarioStage;
use flux_compat::runner::secret::Secret;
use flux_compat::runner::stages::{CellCtx, FixturePlane, Properties};
use flux_compat::runner::{self, Keep, RunConfig, Stages};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use support::apiserver::{ApiServer, CONTEXT, Options};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "ghp_existingClusterCanary0123456789ABCDEF";

fn loaded_with_double(kc: &std::path::Path) -> Loaded {
    support::apiserver::matrix_with_double(kc, None)
}

fn cell(loaded: &Loaded, channel: &str) -> PlannedCell {
    let filter = Filter {
        providers: vec!["double".into()],
        channels: vec![channel.into()],
        // A name no scenario has: the cell runs its phases only.
        scenarios: vec!["none-selected".into()],
        ..Filter::default()
    };
    let plan = plan::build(&loaded.matrix, &loaded.scenarios, &filter, None);
    assert_eq!(plan.cells.len(), 1);
    plan.cells[0].clone()
}

// Item 3: bound to the advertised address only; every request needs the per-run credentials;
// the read credentials cannot push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_plane_of_an_existing_cluster_is_closed_to_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let loaded = loaded_with_double(&kc);
    let stage = FixtureStage::new(
        Arc::new(loaded.matrix.clone()),
        support::root().join("fixtures"),
        Some("127.0.0.1".into()),
    );
    let registry = Arc::new(Registry::new());
    let planned = cell(&loaded, "upstream");
    let ctx = CellCtx {
        run_id: "r1".into(),
        cell: planned.clone(),
        cluster: Cluster {
            name: CONTEXT.into(),
            kubeconfig: kc,
            context: CONTEXT.into(),
            kubernetes_version: None,
            properties: BTreeMap::new(),
        },
        artifacts_dir: dir.path().join("artifacts"),
        work_dir: dir.path().join("work"),
        cleanup: Scope {
            registry: registry.clone(),
            scope: planned.id.clone(),
        },
        cancel: CancellationToken::new(),
        timeouts: loaded.matrix.timeouts.clone(),
        registry_token: None,
        properties: Properties::new(),
    };
    stage.up(&ctx).await.unwrap();
    let fx = stage.planes().get(&planned.id).unwrap();
    let listen = fx.plane.endpoints().listen;
    assert_eq!(
        listen.ip().to_string(),
        "127.0.0.1",
        "bound to the advertised address"
    );

    // A neighbour reaching this machine on another address gets no connection at all.
    let other = std::net::SocketAddr::from(([127, 0, 0, 2], listen.port()));
    assert!(
        tokio::net::TcpStream::connect(other).await.is_err(),
        "the plane answers on {other}"
    );
    let challenges = fx
        .challenges
        .as_ref()
        .expect("the challenge listeners start");
    for e in challenges.endpoints() {
        assert_eq!(
            e.addr.ip(),
            listen.ip(),
            "challenge bound to the advertised address"
        );
        let other = std::net::SocketAddr::from(([127, 0, 0, 2], e.addr.port()));
        assert!(tokio::net::TcpStream::connect(other).await.is_err());
    }

    let read = fx.plane.auth().cloned().expect("per-run read credentials");
    let push = fx
        .plane
        .push_credentials()
        .cloned()
        .expect("per-run push credentials");
    assert_ne!(read.password, push.password);
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(fx.plane.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let base = format!("https://{}", fx.plane.endpoints().address);
    let get = |path: &str, creds: Option<&flux_compat::fixtures::Credentials>| {
        let mut r = client.get(format!("{base}{path}"));
        if let Some(c) = creds {
            r = r.basic_auth(&c.username, Some(&c.password));
        }
        r
    };
    let status =
        |r: reqwest::RequestBuilder| async move { r.send().await.unwrap().status().as_u16() };
    let clone = "/git/app.git/info/refs?service=git-upload-pack";
    let push_refs = "/git/app.git/info/refs?service=git-receive-pack";
    assert_eq!(status(get(clone, None)).await, 401, "anonymous clone");
    assert_eq!(
        status(get(clone, Some(&read))).await,
        200,
        "clone with the read credentials"
    );
    assert_eq!(status(get(push_refs, None)).await, 401, "anonymous push");
    assert_eq!(
        status(get(push_refs, Some(&read))).await,
        403,
        "push with the read credentials"
    );
    assert_eq!(
        status(get(push_refs, Some(&push))).await,
        200,
        "push with the push credentials"
    );
    assert_eq!(status(get("/helm/index.yaml", None)).await, 401);
    assert_eq!(
        status(get("/events", None)).await,
        401,
        "the event list is private"
    );
    assert_eq!(status(get("/events", Some(&read))).await, 200);
    let post = client.post(format!("{base}/webhook")).body("{}");
    assert_eq!(
        status(post).await,
        401,
        "anonymous webhook events are refused"
    );
    assert_eq!(status(get("/v2/", None)).await, 401, "anonymous registry");
    assert_eq!(status(get("/v2/", Some(&read))).await, 200);
    let upload = |c: &flux_compat::fixtures::Credentials| {
        client
            .post(format!("{base}/v2/app/blobs/uploads/"))
            .basic_auth(&c.username, Some(&c.password))
    };
    assert_eq!(
        status(upload(&read)).await,
        403,
        "OCI push with the read credentials"
    );
    assert_eq!(status(upload(&push)).await, 202);

    // The Secrets the cluster gets: read credentials (and webhook headers) in caSecret, push
    // credentials only in pushSecret.
    let ca = fx.plane.ca_secret_manifest("ns");
    assert!(ca.contains(&read.password) && !ca.contains(&push.password));
    assert!(ca.contains("Authorization: Basic"));
    assert!(fx.plane.push_secret_manifest("ns").contains(&push.password));
    drop(fx);
    flux_compat::runner::cleanup::tear_down(registry.take_all(), Duration::from_secs(10)).await;
}

async fn run_on_double(
    server: &ApiServer,
    dir: &std::path::Path,
    replace_existing: bool,
) -> flux_compat::model::RunResult {
    let kc = server.write_kubeconfig(dir);
    let loaded = loaded_with_double(&kc);
    let planned = cell(&loaded, "mainline");
    let plan = plan::Plan {
        cells: vec![planned],
        ..plan::build(&loaded.matrix, &loaded.scenarios, &Filter::default(), None)
    };
    let root = support::root();
    let matrix = Arc::new(loaded.matrix.clone());
    let manifests = ManifestSource::File(support::flux_manifests("v2.9.4"));
    let fixtures = Arc::new(FixtureStage::new(
        matrix.clone(),
        root.join("fixtures"),
        Some("127.0.0.1".into()),
    ));
    let mut timeouts = loaded.matrix.timeouts.clone();
    timeouts.install = Duration::from_secs(30);
    timeouts.verify = Duration::from_secs(30);
    timeouts.teardown = Duration::from_secs(20);
    let cfg = RunConfig {
        run_id: "r16".into(),
        report_dir: dir.join("reports"),
        work_dir: dir.join("work"),
        jobs: 1,
        cluster_creates: 1,
        fail_fast: false,
        keep: Keep::None,
        timeouts,
        partitions: vec![],
        registry_token: Some(Secret::new(TOKEN)),
    };
    let stages = Stages {
        providers: BTreeMap::from([(
            "double".to_string(),
            Arc::new(ExistingProvider::new(Some(&kc), CONTEXT).unwrap()) as Arc<dyn Provider>,
        )]),
        fixtures: Some(fixtures.clone()),
        flux: Arc::new(
            ChannelStage::new(matrix.clone(), manifests.clone(), "flux-compat".into())
                .replacing_existing(replace_existing),
        ),
        fips: None,
        scenarios: Arc::new(ScenarioStage {
            matrix,
            scenarios: Default::default(),
            planes: fixtures.planes(),
            manifests,
            registry_username: "flux-compat".into(),
        }),
        diagnostics: None,
    };
    runner::run(
        &plan,
        cfg,
        stages,
        Arc::new(Recorder::default()),
        CancellationToken::new(),
    )
    .await
}

/// Every object in the double, as JSON text, and those labelled with the run.
fn store_dump(server: &ApiServer) -> (String, usize) {
    let all = server.store.dump();
    let labelled = all
        .iter()
        .filter(|o| o.pointer("/metadata/labels/flux-compat.io~1run").is_some())
        .count();
    (serde_json::to_string(&all).unwrap(), labelled)
}

// Item 4: the pull Secret (the token) and everything else the run applied are gone after the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_cluster_keeps_nothing_of_the_run() {
    let server = ApiServer::start(Options::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let r = run_on_double(&server, dir.path(), false).await;
    let c = &r.cells[0];
    let install = c.phases.iter().find(|p| p.name == "install").unwrap();
    assert_eq!(install.status, Status::Pass, "{:?}", install.message);
    let teardown = c.phases.iter().find(|p| p.name == "teardown").unwrap();
    assert_eq!(teardown.status, Status::Pass, "{:?}", teardown.message);
    let (dump, labelled) = store_dump(&server);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("flux-compat:{TOKEN}"));
    assert!(
        !dump.contains(TOKEN) && !dump.contains(&b64),
        "the token stayed in the cluster"
    );
    assert!(!dump.contains("\"flux-system\""), "the namespace stayed");
    assert!(!dump.contains("toolkit.fluxcd.io\""), "Flux CRDs stayed");
    assert_eq!(labelled, 0, "objects labelled with the run stayed");
}

// Item 4: a Flux the run did not create is not overwritten without the flag, and the refusal
// says what would be replaced; with the flag it is, and the report says what was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_flux_needs_the_explicit_flag() {
    let server = ApiServer::start(Options::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = server.write_kubeconfig(dir.path());
    let kube = flux_compat::k8s::Kube::connect(&kc, CONTEXT).await.unwrap();
    let theirs = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: source-controller\n  namespace: flux-system\nspec:\n  selector:\n    matchLabels: {app: source-controller}\n  template:\n    metadata:\n      labels: {app: source-controller}\n    spec:\n      containers:\n        - name: manager\n          image: ghcr.io/fluxcd/source-controller:v1.0.0\n";
    kube.apply_yaml(theirs, "theirs", &Default::default())
        .await
        .unwrap();
    let r = run_on_double(&server, dir.path(), false).await;
    let install = r.cells[0]
        .phases
        .iter()
        .find(|p| p.name == "install")
        .unwrap();
    assert_eq!(install.status, Status::Error);
    let m = install.message.clone().unwrap();
    assert!(
        m.contains("Flux is already installed")
            && m.contains("namespace `flux-system`")
            && m.contains("Deployment `flux-system/source-controller`")
            && m.contains("--replace-existing-flux"),
        "{m}"
    );
    assert!(
        store_dump(&server).0.contains("source-controller:v1.0.0"),
        "their Flux was touched"
    );

    let dir2 = tempfile::tempdir().unwrap();
    let r = run_on_double(&server, dir2.path(), true).await;
    let c = &r.cells[0];
    let install = c.phases.iter().find(|p| p.name == "install").unwrap();
    assert_eq!(install.status, Status::Pass, "{:?}", install.message);
    assert!(
        c.properties
            .get("flux.replaced")
            .is_some_and(|v| v.contains("Deployment `flux-system/source-controller`")),
        "{:?}",
        c.properties
    );
}
