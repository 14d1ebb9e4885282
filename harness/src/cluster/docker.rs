//! The few docker CLI calls the providers need: engine info (preflight), network discovery of
//! kind's `kind` network, attaching the image-cache containers to it. Uses the CLI rather than
//! the API so podman's docker-compatible CLI works the same.

use super::process::{self, Cmd, ProcessError};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct Docker {
    pub program: PathBuf,
}

impl Default for Docker {
    fn default() -> Self {
        Self {
            program: PathBuf::from("docker"),
        }
    }
}

/// What `docker network inspect` tells about a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    pub subnets: Vec<String>,
    pub gateways: Vec<String>,
    /// Names of attached containers.
    pub containers: Vec<String>,
}

impl Docker {
    pub fn info_cmd(&self) -> Cmd {
        Cmd::new(&self.program).args(["info", "--format", "{{.ServerVersion}}"])
    }

    pub fn network_inspect_cmd(&self, name: &str) -> Cmd {
        Cmd::new(&self.program).args(["network", "inspect", name])
    }

    /// Names of containers (running or not) carrying `label`.
    pub async fn containers_with_label(
        &self,
        label: &str,
        cancel: &CancellationToken,
    ) -> Result<Vec<String>, ProcessError> {
        let cmd = Cmd::new(&self.program).args([
            "ps",
            "-a",
            "--filter",
            &format!("label={label}"),
            "--format",
            "{{.Names}}",
        ]);
        let out = process::run(&cmd, Duration::from_secs(30), cancel).await?;
        Ok(out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    pub async fn remove_container(
        &self,
        name: &str,
        cancel: &CancellationToken,
    ) -> Result<(), ProcessError> {
        let cmd = Cmd::new(&self.program).args(["rm", "--force", "--volumes", name]);
        process::run(&cmd, Duration::from_secs(60), cancel)
            .await
            .map(|_| ())
    }

    pub fn network_connect_cmd(&self, network: &str, container: &str) -> Cmd {
        Cmd::new(&self.program).args(["network", "connect", network, container])
    }

    /// The engine's server version: proves the daemon answers, not just that the CLI exists.
    pub async fn server_version(&self, cancel: &CancellationToken) -> Result<String, ProcessError> {
        let out = process::run(&self.info_cmd(), Duration::from_secs(30), cancel).await?;
        Ok(out.stdout.trim().to_string())
    }

    /// Inspect a network; `Ok(None)` when it does not exist.
    pub async fn network(
        &self,
        name: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<Network>, ProcessError> {
        match process::run(
            &self.network_inspect_cmd(name),
            Duration::from_secs(30),
            cancel,
        )
        .await
        {
            Ok(out) => Ok(parse_network(&out.stdout)),
            Err(ProcessError::Exit { stderr, .. })
                if stderr.to_lowercase().contains("no such network")
                    || stderr.to_lowercase().contains("not found") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Attach a container to a network; already attached is fine.
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        cancel: &CancellationToken,
    ) -> Result<(), ProcessError> {
        if let Some(n) = self.network(network, cancel).await?
            && n.containers.iter().any(|c| c == container)
        {
            return Ok(());
        }
        match process::run(
            &self.network_connect_cmd(network, container),
            Duration::from_secs(30),
            cancel,
        )
        .await
        {
            Ok(_) => Ok(()),
            // Two cells attaching at once: the loser sees "already exists".
            Err(ProcessError::Exit { stderr, .. }) if stderr.contains("already exists") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Parse `docker network inspect` JSON (an array with one object).
pub fn parse_network(json: &str) -> Option<Network> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let n = v.as_array()?.first()?;
    let configs = n["IPAM"]["Config"].as_array().cloned().unwrap_or_default();
    let pick = |key: &str| {
        configs
            .iter()
            .filter_map(|c| c[key].as_str().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let mut containers: Vec<String> = n["Containers"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|c| c["Name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    containers.sort();
    Some(Network {
        name: n["Name"].as_str()?.to_string(),
        subnets: pick("Subnet"),
        gateways: pick("Gateway"),
        containers,
    })
}
