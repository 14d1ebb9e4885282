//! Benchmarks against the API server test double: the harness's own per-cell overhead for
//! installing and verifying a channel (scripted controller delay zero, so what is measured is
//! the harness plus the double), and how fast a wait returns after the watch event that
//! satisfies it.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use flux_compat::flux::{InstallRequest, ManifestSource, VerifyOptions, install, verify};
use flux_compat::k8s::{ApplyOptions, Kube, ObjectRef};
use flux_compat::model::matrix::{Base, Channel, ChannelRelease, ImagePin, InstallRoute};
use flux_compat::model::{Component, FluxVersion, Status};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::apiserver::{ApiServer, CONTEXT, FluxBehaviour, Options, Script};

fn channel(version: &FluxVersion) -> Channel {
    let images = Component::DEFAULTS
        .iter()
        .map(|c| {
            (
                *c,
                ImagePin {
                    repository: format!("ghcr.io/fluxcd/{c}"),
                    tag: "v1.0.0".into(),
                    digest: format!("sha256:{}", "ab".repeat(32)),
                },
            )
        })
        .collect();
    let mut releases = BTreeMap::new();
    releases.insert(
        version.clone(),
        ChannelRelease {
            images_file: None,
            images,
        },
    );
    Channel {
        name: "upstream".into(),
        registry: "ghcr.io/fluxcd".into(),
        operator_variant: "upstream-alpine".into(),
        pull_secret: None,
        fips: false,
        base: Base::Alpine,
        install: InstallRoute::Manifests,
        releases,
    }
}

async fn double(script: Script) -> (ApiServer, Kube, tempfile::TempDir) {
    let server = ApiServer::start(Options {
        script,
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kube = Kube::connect(&server.write_kubeconfig(dir.path()), CONTEXT)
        .await
        .unwrap();
    (server, kube, dir)
}

fn install_and_verify(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let version: FluxVersion = "v2.9.4".parse().unwrap();
    let ch = channel(&version);
    let source = ManifestSource::File(support::flux_manifests("v2.9.4"));
    let mut group = c.benchmark_group("cell");
    group.sample_size(10);
    group.bench_function("install_and_verify_overhead", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let script = Script {
                        delay: Duration::ZERO,
                        ..Script::default()
                    };
                    let (_server, kube, dir) = double(script).await;
                    let started = Instant::now();
                    let installed = install(
                        &kube,
                        &InstallRequest {
                            flux_version: &version,
                            channel: &ch,
                            components: &Component::DEFAULTS,
                            manifests: &source,
                            credentials: None,
                            namespace: "flux-system",
                            timeout: Duration::from_secs(30),
                            run_id: None,
                            replace_existing: false,
                        },
                    )
                    .await
                    .unwrap();
                    let v = verify(
                        &kube,
                        &installed.controllers,
                        &VerifyOptions {
                            timeout: Duration::from_secs(30),
                            artifacts_dir: Some(dir.path()),
                            scrub: Vec::new(),
                        },
                    )
                    .await;
                    total += started.elapsed();
                    assert_eq!(v.status, Status::Pass, "{}", v.message);
                }
                total
            })
        })
    });
    group.finish();
}

const REPO: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gitrepositories.source.toolkit.fluxcd.io}
spec:
  group: source.toolkit.fluxcd.io
  names: {kind: GitRepository, listKind: GitRepositoryList, plural: gitrepositories, singular: gitrepository}
  scope: Namespaced
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}, subresources: {status: {}}}
---
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: podinfo, namespace: apps}
spec: {interval: 1m, url: https://example.invalid/podinfo}
";

fn wait_reaction(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (server, kube, _dir) = rt.block_on(async {
        let (server, kube, dir) = double(Script {
            flux: FluxBehaviour::Ignore,
            ..Script::default()
        })
        .await;
        kube.apply_yaml(REPO, "repo.yaml", &ApplyOptions::default())
            .await
            .unwrap();
        (server, kube, dir)
    });
    let target = ObjectRef::new(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        Some("apps"),
        "podinfo",
    );
    let mut group = c.benchmark_group("wait");
    group.sample_size(20);
    group.bench_function("reaction_after_watch_event", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    // Not ready (an older generation), then start a wait and let it reach its watch.
                    let set = |ready: bool| {
                        server.set_status(
                            "source.toolkit.fluxcd.io/v1",
                            "GitRepository",
                            "apps",
                            "podinfo",
                            json!({"observedGeneration": 1, "conditions": [{"type": "Ready",
                                "status": if ready { "True" } else { "False" },
                                "reason": if ready { "Succeeded" } else { "Progressing" },
                                "message": format!("iteration {i}")}]}),
                        )
                    };
                    set(false);
                    let watches = server.counters.get("watch", "gitrepositories");
                    let k = kube.clone();
                    let t = target.clone();
                    let wait = tokio::spawn(async move {
                        k.wait_ready(&t, Duration::from_secs(10)).await.unwrap();
                        Instant::now()
                    });
                    while server.counters.get("watch", "gitrepositories") == watches {
                        tokio::task::yield_now().await;
                    }
                    // The watch request has arrived; give its stream a moment to be served.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let event_at = Instant::now();
                    set(true);
                    let returned_at = wait.await.unwrap();
                    total += returned_at - event_at;
                }
                total
            })
        })
    });
    group.finish();
}

criterion_group!(benches, install_and_verify, wait_reaction);
criterion_main!(benches);
