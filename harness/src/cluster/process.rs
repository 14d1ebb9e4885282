//! Running external programs (kind, docker) with a timeout and cancellation: each runs in a
//! process group of its own, and the whole group (kind's `docker` children included) is killed
//! when either fires or the caller goes away; stdout/stderr are captured for error messages.
//! Never prints.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

/// One external command, built up before it runs so tests can inspect the exact argv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
        }
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// The command line for messages: program and arguments, lossily converted.
    pub fn display(&self) -> String {
        std::iter::once(self.program.to_string_lossy().into_owned())
            .chain(self.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a finished command produced.
#[derive(Clone, Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A command that did not complete successfully.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` exited with {}: {}", code.map_or("a signal".to_string(), |c| format!("status {c}")), tail(stderr))]
    Exit {
        command: String,
        code: Option<i32>,
        stdout: String,
        stderr: String,
    },
    #[error("`{command}` did not finish within {}; it was killed. Last output: {}", humantime::format_duration(*timeout), tail(stderr))]
    Timeout {
        command: String,
        timeout: Duration,
        stderr: String,
    },
    #[error("`{command}` was cancelled and killed")]
    Cancelled { command: String },
    #[error("i/o with `{command}` failed")]
    Io {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

impl ProcessError {
    /// The captured stderr, when the program ran.
    pub fn stderr(&self) -> Option<&str> {
        match self {
            ProcessError::Exit { stderr, .. } | ProcessError::Timeout { stderr, .. } => {
                Some(stderr)
            }
            _ => None,
        }
    }

    pub fn is_cancelled(&self) -> bool {
        matches!(self, ProcessError::Cancelled { .. })
    }
}

/// The last few lines of `s`, trimmed, so error messages stay readable.
pub fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.trim_end().lines().collect();
    let start = lines.len().saturating_sub(12);
    let t = lines[start..].join("\n");
    if t.is_empty() {
        "(no output)".into()
    } else {
        t
    }
}

/// Kills a child's whole process group when dropped, unless disarmed after a normal exit.
struct GroupKill(Option<i32>);

impl GroupKill {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: killpg only sends a signal; a group that no longer exists gives ESRCH.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Run `cmd` to completion, killing it (and every process it started) on `timeout` or when
/// `cancel` fires. A non-zero exit is an error carrying stdout and stderr.
pub async fn run(
    cmd: &Cmd,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Output, ProcessError> {
    let command = cmd.display();
    let mut c = tokio::process::Command::new(&cmd.program);
    c.args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's Ctrl-C reaches only the harness, which then
        // kills the group (kind's `docker` children too), never just the direct child.
        .process_group(0)
        // Dropping the future (cancellation, timeout, panic unwinding) must not leave the child behind.
        .kill_on_drop(true);
    let mut child = c.spawn().map_err(|source| ProcessError::Spawn {
        program: cmd.program.display().to_string(),
        source,
    })?;
    let mut group = GroupKill(child.id().and_then(|p| i32::try_from(p).ok()));
    if let (Some(data), Some(mut stdin)) = (cmd.stdin.clone(), child.stdin.take()) {
        stdin
            .write_all(&data)
            .await
            .map_err(|source| ProcessError::Io {
                command: command.clone(),
                source,
            })?;
        drop(stdin);
    }
    // Read both pipes concurrently so a chatty child never blocks on a full pipe.
    let mut out_pipe = child.stdout.take().expect("stdout is piped");
    let mut err_pipe = child.stderr.take().expect("stderr is piped");
    let stderr_buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let err_sink = stderr_buf.clone();
    let err_task = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut chunk = [0u8; 8192];
        loop {
            match err_pipe.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => err_sink
                    .lock()
                    .expect("stderr buffer")
                    .extend_from_slice(&chunk[..n]),
            }
        }
    });
    let out_task = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf).await;
        buf
    });
    let stderr_now =
        || String::from_utf8_lossy(&stderr_buf.lock().expect("stderr buffer")).into_owned();
    let status = tokio::select! {
        s = child.wait() => s.map_err(|source| ProcessError::Io { command: command.clone(), source })?,
        _ = tokio::time::sleep(timeout) => {
            group.kill();
            let _ = child.kill().await;
            err_task.abort();
            out_task.abort();
            return Err(ProcessError::Timeout { command, timeout, stderr: stderr_now() });
        }
        _ = cancel.cancelled() => {
            group.kill();
            let _ = child.kill().await;
            err_task.abort();
            out_task.abort();
            return Err(ProcessError::Cancelled { command });
        }
    };
    // A normal exit: the group is the program's own business from here.
    group.0 = None;
    // Grandchildren may hold the pipes open; do not wait on them forever.
    let stdout = tokio::time::timeout(Duration::from_secs(5), out_task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let _ = tokio::time::timeout(Duration::from_secs(5), err_task).await;
    let out = Output {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: stderr_now(),
    };
    if status.success() {
        Ok(out)
    } else {
        Err(ProcessError::Exit {
            command,
            code: out.code,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}
