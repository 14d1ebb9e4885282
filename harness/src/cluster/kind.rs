//! The kind provider: a typed wrapper over the kind CLI (no kind library exists for Rust).
//! Builds exact argument lists, generates the cluster config (containerd `config_path` and the
//! image-cache `hosts.toml` mount), creates with `--wait` into a kubeconfig of its own, exports
//! logs into the cell's artifacts when creation fails, deletes at the end.

use super::process::{self, Cmd, ProcessError};
use super::{Cluster, ClusterError, ClusterSpec, Provider, docker};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where containerd looks for per-registry `hosts.toml` files inside kind nodes.
pub const CERTS_D: &str = "/etc/containerd/certs.d";

/// The kind CLI.
#[derive(Clone, Debug)]
pub struct KindCli {
    pub program: PathBuf,
    /// `KIND_EXPERIMENTAL_PROVIDER=podman` and similar.
    pub env: Vec<(String, String)>,
}

impl Default for KindCli {
    fn default() -> Self {
        Self {
            program: PathBuf::from("kind"),
            env: Vec::new(),
        }
    }
}

impl KindCli {
    fn cmd(&self) -> Cmd {
        let mut c = Cmd::new(&self.program);
        for (k, v) in &self.env {
            c = c.env(k, v);
        }
        c
    }

    pub fn version_cmd(&self) -> Cmd {
        self.cmd().arg("version")
    }

    /// `kind create cluster` from a config file into a kubeconfig of its own. The node image is
    /// in the config; `--wait` makes kind wait for the control-plane node to be Ready.
    pub fn create_cmd(&self, name: &str, config: &Path, kubeconfig: &Path, wait: Duration) -> Cmd {
        self.cmd()
            .args(["create", "cluster", "--name", name, "--config"])
            .arg(config)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--wait")
            .arg(format!("{}s", wait.as_secs().max(1)))
    }

    pub fn delete_cmd(&self, name: &str, kubeconfig: Option<&Path>) -> Cmd {
        let c = self.cmd().args(["delete", "cluster", "--name", name]);
        match kubeconfig {
            Some(k) => c.arg("--kubeconfig").arg(k),
            None => c,
        }
    }

    pub fn export_logs_cmd(&self, name: &str, dir: &Path) -> Cmd {
        self.cmd()
            .args(["export", "logs"])
            .arg(dir)
            .args(["--name", name])
    }

    pub fn get_clusters_cmd(&self) -> Cmd {
        self.cmd().args(["get", "clusters"])
    }

    /// `kind load docker-image`: the fallback image cache when no mirror runs.
    pub fn load_image_cmd(&self, name: &str, images: &[String]) -> Cmd {
        self.cmd()
            .args(["load", "docker-image"])
            .args(images)
            .args(["--name", name])
    }

    pub async fn version(&self, cancel: &CancellationToken) -> Result<String, ProcessError> {
        let out = process::run(&self.version_cmd(), Duration::from_secs(30), cancel).await?;
        Ok(out.stdout)
    }

    /// Names of all kind clusters on this host.
    pub async fn clusters(&self, cancel: &CancellationToken) -> Result<Vec<String>, ProcessError> {
        let out = process::run(&self.get_clusters_cmd(), Duration::from_secs(60), cancel).await?;
        Ok(parse_clusters(&out.stdout))
    }

    pub async fn delete(
        &self,
        name: &str,
        kubeconfig: Option<&Path>,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<(), ProcessError> {
        process::run(&self.delete_cmd(name, kubeconfig), timeout, cancel)
            .await
            .map(|_| ())
    }

    pub async fn load_images(
        &self,
        name: &str,
        images: &[String],
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<(), ProcessError> {
        process::run(&self.load_image_cmd(name, images), timeout, cancel)
            .await
            .map(|_| ())
    }
}

/// `kind get clusters` prints one name per line, or "No kind clusters found." on stderr.
pub fn parse_clusters(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains(' '))
        .map(str::to_string)
        .collect()
}

/// `kind v0.33.0 go1.25.3 linux/amd64` → `0.33.0`.
pub fn parse_version(stdout: &str) -> Option<semver::Version> {
    stdout.split_whitespace().find_map(|w| {
        w.strip_prefix('v')
            .and_then(|v| semver::Version::parse(v).ok())
    })
}

/// The generated `kind.x-k8s.io/v1alpha4` cluster config.
#[derive(Clone, Debug, Default)]
pub struct KindConfig {
    pub node_image: Option<String>,
    /// A host directory of `<registry>/hosts.toml` files mounted at `/etc/containerd/certs.d`.
    pub registry_hosts_dir: Option<PathBuf>,
}

impl KindConfig {
    /// Render the config. containerd reads registry hosts from `config_path` only when told
    /// so (older node images do not set it), hence the patch whenever a mirror is used.
    pub fn render(&self) -> String {
        let mut y = String::from("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n");
        if self.registry_hosts_dir.is_some() {
            y.push_str(&format!(
                "containerdConfigPatches:\n- |-\n  [plugins.\"io.containerd.grpc.v1.cri\".registry]\n    config_path = \"{CERTS_D}\"\n"
            ));
        }
        y.push_str("nodes:\n- role: control-plane\n");
        if let Some(img) = &self.node_image {
            y.push_str(&format!("  image: {}\n", yaml_str(img)));
        }
        if let Some(dir) = &self.registry_hosts_dir {
            y.push_str(&format!(
                "  extraMounts:\n  - hostPath: {}\n    containerPath: {CERTS_D}\n    readOnly: true\n",
                yaml_str(&dir.display().to_string())
            ));
        }
        y
    }
}

/// A double-quoted YAML scalar (JSON string syntax is valid YAML).
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// The image cache as seen by kind clusters: the hosts directory to mount and the mirror
/// containers to attach to kind's docker network.
#[derive(Clone, Debug)]
pub struct MirrorAttachment {
    pub hosts_dir: PathBuf,
    pub containers: Vec<String>,
}

/// The kind provider.
#[derive(Clone, Debug)]
pub struct KindProvider {
    pub cli: KindCli,
    /// `kind version` output recorded in every cell's properties.
    pub kind_version: Option<String>,
    pub mirror: Option<MirrorAttachment>,
    pub docker: docker::Docker,
}

impl KindProvider {
    pub fn new(cli: KindCli) -> Self {
        Self {
            cli,
            kind_version: None,
            mirror: None,
            docker: docker::Docker::default(),
        }
    }

    fn config(&self, spec: &ClusterSpec) -> KindConfig {
        KindConfig {
            node_image: spec.node_image.clone(),
            registry_hosts_dir: self.mirror.as_ref().map(|m| m.hosts_dir.clone()),
        }
    }

    pub fn kubeconfig_path(spec: &ClusterSpec) -> PathBuf {
        spec.work_dir.join("kubeconfig")
    }

    async fn create(
        &self,
        spec: &ClusterSpec,
        cancel: &CancellationToken,
    ) -> Result<Cluster, ClusterError> {
        let prepare = |message: String| ClusterError::Prepare {
            name: spec.name.clone(),
            message,
        };
        std::fs::create_dir_all(&spec.work_dir)
            .map_err(|e| prepare(format!("cannot create `{}`: {e}", spec.work_dir.display())))?;
        let config_path = spec.work_dir.join("kind-config.yaml");
        std::fs::write(&config_path, self.config(spec).render())
            .map_err(|e| prepare(format!("cannot write `{}`: {e}", config_path.display())))?;
        let kubeconfig = Self::kubeconfig_path(spec);
        create_private_file(&kubeconfig)
            .map_err(|e| prepare(format!("cannot create `{}`: {e}", kubeconfig.display())))?;

        let cmd = self
            .cli
            .create_cmd(&spec.name, &config_path, &kubeconfig, spec.create_timeout);
        // kind's own --wait plus a margin for image extraction before it starts waiting.
        let limit = spec.create_timeout + Duration::from_secs(60);
        if let Err(source) = process::run(&cmd, limit, cancel).await {
            if !source.is_cancelled() {
                self.export_logs(spec).await;
            }
            return Err(ClusterError::Create {
                name: spec.name.clone(),
                source,
            });
        }
        // kind may rewrite the file; keep it private either way.
        set_private(&kubeconfig)
            .map_err(|e| prepare(format!("cannot chmod `{}`: {e}", kubeconfig.display())))?;
        if let Some(m) = &self.mirror {
            for c in &m.containers {
                self.docker
                    .connect_network("kind", c, cancel)
                    .await
                    .map_err(|e| prepare(format!("cannot attach image cache `{c}`: {e}")))?;
            }
        }
        let mut properties = BTreeMap::new();
        properties.insert("cluster.name".into(), spec.name.clone());
        if let Some(v) = &self.kind_version {
            properties.insert("kind.version".into(), v.trim().to_string());
        }
        if let Some(img) = &spec.node_image {
            properties.insert("kind.nodeImage".into(), img.clone());
        }
        Ok(Cluster {
            name: spec.name.clone(),
            context: format!("kind-{}", spec.name),
            kubeconfig,
            kubernetes_version: None,
            properties,
        })
    }

    /// Best effort: the creation error is what matters; a failed export is noted in the dir.
    async fn export_logs(&self, spec: &ClusterSpec) {
        let dir = spec.artifacts_dir.join("kind-logs");
        let _ = std::fs::create_dir_all(&dir);
        let never = CancellationToken::new();
        if let Err(e) = process::run(
            &self.cli.export_logs_cmd(&spec.name, &dir),
            Duration::from_secs(120),
            &never,
        )
        .await
        {
            let _ = std::fs::write(dir.join("export-failed.txt"), format!("{e}\n"));
        }
    }
}

impl Provider for KindProvider {
    fn kind(&self) -> &'static str {
        "kind"
    }

    fn up<'a>(
        &'a self,
        spec: &'a ClusterSpec,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Cluster, ClusterError>> {
        Box::pin(self.create(spec, cancel))
    }

    fn down<'a>(&'a self, spec: &'a ClusterSpec) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            // Teardown runs after cancellation too, so it gets its own token: only the timeout stops it.
            let never = CancellationToken::new();
            let kubeconfig = Self::kubeconfig_path(spec);
            let kc = kubeconfig.is_file().then_some(kubeconfig.as_path());
            self.cli
                .delete(&spec.name, kc, spec.delete_timeout, &never)
                .await
                .map_err(|source| ClusterError::Delete {
                    name: spec.name.clone(),
                    source,
                })
        })
    }

    fn describe(&self, spec: &ClusterSpec) -> Vec<String> {
        vec![format!(
            "kind cluster `{}` from {} (kubeconfig {}), config:\n{}",
            spec.name,
            spec.node_image
                .as_deref()
                .unwrap_or("kind's default node image"),
            Self::kubeconfig_path(spec).display(),
            self.config(spec).render()
        )]
    }
}

/// Create (or truncate) a file readable by its owner only: kubeconfigs hold client keys.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)?;
    set_private(path)
}

fn set_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kind_version() {
        assert_eq!(
            parse_version("kind v0.33.0 go1.25.3 linux/amd64\n"),
            Some(semver::Version::new(0, 33, 0))
        );
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn parses_cluster_list() {
        assert_eq!(
            parse_clusters("flux-compat-a-b\nkind\n"),
            vec!["flux-compat-a-b", "kind"]
        );
        assert!(parse_clusters("No kind clusters found.\n").is_empty());
    }

    #[test]
    fn config_mounts_registry_hosts_and_sets_config_path() {
        let c = KindConfig {
            node_image: Some("kindest/node:v1.36.4@sha256:abc".into()),
            registry_hosts_dir: Some(PathBuf::from("/tmp/x/certs.d")),
        };
        let y = c.render();
        let v: serde_json::Value = serde_norway::from_str(&y).expect("valid yaml");
        assert_eq!(v["apiVersion"], "kind.x-k8s.io/v1alpha4");
        assert_eq!(v["nodes"][0]["image"], "kindest/node:v1.36.4@sha256:abc");
        assert_eq!(v["nodes"][0]["extraMounts"][0]["containerPath"], CERTS_D);
        assert!(
            v["containerdConfigPatches"][0]
                .as_str()
                .unwrap()
                .contains("config_path = \"/etc/containerd/certs.d\"")
        );
        let plain = KindConfig::default().render();
        assert!(!plain.contains("containerdConfigPatches"));
    }

    #[test]
    fn load_command_lists_images_then_name() {
        let c = KindCli::default().load_image_cmd("n", &["a:1".into(), "b:2".into()]);
        assert_eq!(c.display(), "kind load docker-image a:1 b:2 --name n");
    }
}
