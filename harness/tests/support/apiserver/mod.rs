//! TEST DOUBLE of a Kubernetes API server, for tests and benchmarks only: an in-process HTTP
//! server speaking the real REST protocol kube-rs uses (discovery, get/list/watch with
//! resourceVersion and bookmarks, server-side apply, merge patch, status, delete, events, pod
//! logs), a scripted controller standing in for kube-controller-manager, the kubelet and the
//! Flux controllers, request counters, and a switch that makes the API unreachable. The
//! production code talks to it through an ordinary kubeconfig; it never replaces the real path.

pub mod controller;
pub mod flux;
pub mod http;
pub mod store;
pub mod tls;

// Every test binary compiles test support; each uses a subset of these.
#[allow(unused_imports)]
pub use controller::{DeploymentBehaviour, FluxBehaviour, Script, SourceTls};
#[allow(unused_imports)]
pub use store::Store;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

/// Requests served, by (verb, resource): verbs `discovery`, `get`, `list`, `watch`, `apply`,
/// `patch`, `create`, `delete`, `log`; resources are plurals, `plural/status` for the subresource.
#[derive(Clone, Default)]
pub struct Counters(Arc<Mutex<BTreeMap<(String, String), usize>>>);

impl Counters {
    pub fn add(&self, verb: &str, resource: &str) {
        *self
            .0
            .lock()
            .unwrap()
            .entry((verb.to_string(), resource.to_string()))
            .or_default() += 1;
    }

    pub fn get(&self, verb: &str, resource: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .get(&(verb.to_string(), resource.to_string()))
            .copied()
            .unwrap_or(0)
    }

    pub fn snapshot(&self) -> BTreeMap<(String, String), usize> {
        self.0.lock().unwrap().clone()
    }

    pub fn reset(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// The availability switch: 503 for every request, or closed watches.
#[derive(Clone)]
pub struct Health {
    unavailable: Arc<AtomicBool>,
    closed: tokio::sync::watch::Sender<u64>,
}

impl Health {
    fn new() -> Self {
        Self {
            unavailable: Arc::default(),
            closed: tokio::sync::watch::channel(0).0,
        }
    }
    pub fn unavailable(&self) -> bool {
        self.unavailable.load(Ordering::SeqCst)
    }
    /// Changes when open watches must end.
    pub fn closed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.closed.subscribe()
    }
    fn close_watches(&self) {
        self.closed.send_modify(|n| *n += 1);
    }
}

/// Options for starting the double.
#[derive(Clone, Debug)]
pub struct Options {
    /// Reported by `/version`.
    pub version: (u32, u32, u32),
    /// Interval of BOOKMARK events on watches that allow them.
    pub bookmark_interval: Duration,
    pub script: Script,
    /// Serve https with a throwaway CA (put into the kubeconfig), like a kind API server.
    pub tls: bool,
    /// Programs the imitated Flux controllers run (the Helm template renderer).
    pub flux_tools: flux::common::Tools,
    /// Where to listen (an ephemeral 127.0.0.1 port by default; a kind node's `0.0.0.0:6443`).
    pub listen: SocketAddr,
    /// Names the serving certificate carries besides 127.0.0.1 and localhost.
    pub tls_names: Vec<String>,
    /// A validating admission webhook denies every Secret and echoes the object in its message,
    /// as policy engines' denials do (`admission webhook "..." denied the request: ...`): the
    /// harness must keep every encoding of the token out of what it prints and writes.
    pub admission_echo: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            version: (1, 36, 4),
            bookmark_interval: Duration::from_millis(500),
            script: Script::default(),
            tls: false,
            flux_tools: flux::common::Tools::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls_names: Vec::new(),
            admission_echo: false,
        }
    }
}

/// A running API server double. Dropping it stops the server.
pub struct ApiServer {
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    pub counters: Counters,
    pub script: Arc<Mutex<Script>>,
    health: Health,
    accept: AbortHandle,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    controller: AbortHandle,
    flux: AbortHandle,
    /// The CA certificate (PEM) when serving https.
    ca_pem: Option<String>,
}

async fn serve<I>(io: I, shared: Arc<http::Shared>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| http::handle(shared.clone(), req));
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// The context name the written kubeconfig uses.
pub const CONTEXT: &str = "flux-compat-double";

impl ApiServer {
    /// Start on `options.listen`, with the scripted controller running.
    pub async fn start(options: Options) -> Self {
        let listener = TcpListener::bind(options.listen)
            .await
            .expect("bind the double");
        let addr = listener.local_addr().expect("local addr");
        let store = Arc::new(Store::new());
        let counters = Counters::default();
        let health = Health::new();
        let shared = Arc::new(http::Shared {
            store: store.clone(),
            counters: counters.clone(),
            health: health.clone(),
            version: options.version,
            bookmark_interval: options.bookmark_interval,
            admission_echo: options.admission_echo,
        });
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let tls = options.tls.then(|| tls::serving(&options.tls_names));
        let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        let acceptor = tls.map(|t| t.acceptor);
        let conns = connections.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Like Go's net/http (the real API server): no Nagle delay on small watch events.
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let acceptor = acceptor.clone();
                let task = tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                serve(tls, shared).await;
                            }
                        }
                        None => serve(stream, shared).await,
                    }
                });
                conns.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        // The namespace every API server creates at start (probe pods run there).
        let namespaces = store
            .find_kind("v1", "Namespace")
            .expect("namespaces are built in");
        store
            .create(
                &namespaces,
                "",
                serde_json::json!({"metadata": {"name": "default"}}),
            )
            .expect("create namespace default");
        // One node, holding the images kind preloads (probe pods find their HTTP client there).
        let nodes = store.find_kind("v1", "Node").expect("nodes are built in");
        let node = store
            .create(
                &nodes,
                "",
                serde_json::json!({"metadata": {"name": "flux-compat-double-control-plane"}}),
            )
            .expect("create the node");
        let images: Vec<serde_json::Value> = flux::kubelet::NODE_IMAGES
            .iter()
            .map(|i| serde_json::json!({"names": [i], "sizeBytes": 1_000_000}))
            .collect();
        let _ = store.patch(&nodes, "", node["metadata"]["name"].as_str().unwrap_or_default(),
            &serde_json::json!({"status": {"images": images, "conditions": [{"type": "Ready", "status": "True"}]}}), true);
        let script = Arc::new(Mutex::new(options.script));
        let controller = controller::spawn(store.clone(), script.clone()).abort_handle();
        let flux =
            flux::spawn(store.clone(), script.clone(), options.flux_tools.clone()).abort_handle();
        Self {
            addr,
            store,
            counters,
            script,
            health,
            accept,
            connections,
            controller,
            flux,
            ca_pem,
        }
    }

    pub fn url(&self) -> String {
        match self.ca_pem {
            Some(_) => format!("https://{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// Write a kubeconfig pointing at the double (context [`CONTEXT`]) into `dir`.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig(&self.url())).expect("write kubeconfig");
        path
    }

    /// A kubeconfig (context [`CONTEXT`]) reaching the double at `server`.
    pub fn kubeconfig(&self, server: &str) -> String {
        use base64::Engine as _;
        let ca = match &self.ca_pem {
            Some(pem) => format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem)
            ),
            None => String::new(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: {server}\n{ca}\
             users:\n- name: double\n  user: {{}}\ncontexts:\n- name: {CONTEXT}\n  context:\n    cluster: double\n    user: double\n\
             current-context: {CONTEXT}\n"
        )
    }

    /// Every request answers 503 (`true`) or is served again (`false`); open watches end.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.health.unavailable.store(unavailable, Ordering::SeqCst);
        self.health.close_watches();
    }

    /// Stop listening and cut every open connection: clients get "connection refused".
    pub fn make_unreachable(&self) {
        self.accept.abort();
        self.health.close_watches();
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Set an object's whole status directly, as a controller would (tests of waits).
    pub fn set_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        status: serde_json::Value,
    ) {
        let t = self
            .store
            .find_kind(api_version, kind)
            .unwrap_or_else(|| panic!("the double serves no `{api_version}` `{kind}`"));
        self.store
            .set_status(&t, namespace, name, status)
            .unwrap_or_else(|r| panic!("set status of {kind} {name}: {}", r.message));
    }

    /// Change the scripted controller's behaviour.
    pub fn script(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.script.lock().unwrap());
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.accept.abort();
        self.controller.abort();
        self.flux.abort();
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

/// The shipped matrix (scenarios from `scenarios_dir`, else the library) plus an enabled
/// `existing` provider named `double` that points at a double's kubeconfig: the configuration
/// every end-to-end test on the double starts from.
pub fn matrix_with_double(
    kubeconfig: &Path,
    scenarios_dir: Option<PathBuf>,
) -> flux_compat::config::Loaded {
    use flux_compat::model::matrix::{Provider, ProviderKind};
    let mut loaded = flux_compat::config::load(&flux_compat::config::Sources {
        matrix: super::root().join("matrix.yaml"),
        scenarios_dir,
    })
    .unwrap_or_else(|p| panic!("{p:#?}"));
    loaded.matrix.providers.push(Provider {
        name: "double".into(),
        kind: ProviderKind::Existing {
            kubeconfig: Some(kubeconfig.to_path_buf()),
            context: CONTEXT.into(),
            kubernetes: "1.36".parse().unwrap(),
        },
        enabled: true,
    });
    loaded
}
