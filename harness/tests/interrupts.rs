//! Interrupts (issue 16 items 9-11): a killed kind takes its children with it; a second Ctrl-C
//! exits at once saying what may be left; scratch directories never outlive an interrupt, also
//! an early one; `fixtures serve` exits 130. Stand-in `kind` and `docker` scripts play the tools.

#[allow(unused_imports, clippy::type_complexity)]
mod support;

use flux_compat::cluster::process::{self, Cmd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// Item 10: cancelling (or timing out) a tool kills its whole process group.
#[tokio::test]
async fn a_cancelled_tool_takes_its_children_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let tool = script(
        dir.path(),
        "tool",
        &format!("sleep 1000 &\necho $! > {}\nwait\n", pidfile.display()),
    );
    for cancel_it in [true, false] {
        let _ = std::fs::remove_file(&pidfile);
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        let pf = pidfile.clone();
        tokio::spawn(async move {
            while !pf.exists() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if cancel_it {
                c2.cancel();
            }
        });
        let timeout = if cancel_it { 60 } else { 1 };
        let r = process::run(&Cmd::new(&tool), Duration::from_secs(timeout), &cancel).await;
        assert!(r.is_err());
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gone = Instant::now() + Duration::from_secs(5);
        while alive(pid) && Instant::now() < gone {
            // A killed child lingers as a zombie until its parent (init) reaps it.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.split_whitespace().nth(2) == Some("Z") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z"),
            "the tool's child survived (cancel: {cancel_it}): {stat}"
        );
    }
}

/// A `kind` whose create (and, when asked, delete) hangs, and a `docker` that answers `info`.
struct Tools {
    dir: tempfile::TempDir,
    tmp: tempfile::TempDir,
}

impl Tools {
    fn new(delete_hangs: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let started = dir.path().join("create-started");
        let delete = if delete_hangs {
            "exec sleep 1000"
        } else {
            "exit 0"
        };
        script(
            dir.path(),
            "kind",
            &format!(
                "case \"$1 $2\" in\n  \"version \"*) echo 'kind v0.33.0 go1.25.3 linux/amd64' ;;\n  \"create cluster\") touch {}; exec sleep 1000 ;;\n  \"delete cluster\") {delete} ;;\n  *) exit 0 ;;\nesac\n",
                started.display()
            ),
        );
        script(dir.path(), "docker", "echo 27.0.0\n");
        Self {
            dir,
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn spawn(&self, args: &[&str]) -> Child {
        let path = format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new(support::binary())
            .current_dir(support::root())
            .args(args)
            .env("PATH", path)
            .env("TMPDIR", self.tmp.path())
            .env_remove("FLUX_COMPAT_REGISTRY_TOKEN")
            .env_remove("FLUX_COMPAT_MATRIX")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn run(&self, reports: &Path) -> Child {
        let kind = self.dir.path().join("kind");
        self.spawn(&[
            "--no-progress",
            "run",
            "--k8s",
            "1.37",
            "--channel",
            "upstream",
            "--image-cache",
            "off",
            "--run-id",
            "intr",
            "--kind",
            kind.to_str().unwrap(),
            "--report-dir",
            reports.to_str().unwrap(),
        ])
    }

    fn create_started(&self) -> bool {
        self.dir.path().join("create-started").exists()
    }

    fn scratch_left(&self) -> Vec<String> {
        std::fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

fn interrupt(child: &Child) {
    // SAFETY: sends SIGINT to the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
}

fn finish(mut child: Child, limit: Duration) -> (Option<i32>, String, Duration) {
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err, t0.elapsed())
}

// Items 9 and 11: one Ctrl-C tears down and exits 130 with reports and no scratch left; a second
// one during a teardown that hangs exits within seconds, says what may be left and how to remove
// it, and still leaves no scratch directory.
#[test]
fn interrupts_during_create_and_during_teardown() {
    let tools = Tools::new(false);
    let reports = tools.tmp.path().join("reports");
    let child = tools.run(&reports);
    wait_for("kind create", Duration::from_secs(60), || {
        tools.create_started()
    });
    interrupt(&child);
    let (code, err, _) = finish(child, Duration::from_secs(60));
    assert_eq!(code, Some(130), "{err}");
    assert!(reports.join("results.json").is_file(), "{err}");
    std::fs::remove_dir_all(&reports).unwrap();
    assert_eq!(tools.scratch_left(), Vec::<String>::new(), "{err}");

    let tools = Tools::new(true);
    let reports = tools.tmp.path().join("reports");
    let child = tools.run(&reports);
    wait_for("kind create", Duration::from_secs(60), || {
        tools.create_started()
    });
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(500));
    interrupt(&child);
    let (code, err, took) = finish(child, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
    assert!(err.contains("interrupted again"), "{err}");
    assert!(
        err.contains("`flux-compat gc`") && err.contains("flux-compat-intr-"),
        "{err}"
    );
    std::fs::remove_dir_all(&reports).unwrap();
    assert_eq!(tools.scratch_left(), Vec::<String>::new(), "{err}");
}

// Item 11: `fixtures serve` interrupted while it builds its fixtures, or while serving, exits
// 130 and leaves no work directory.
#[test]
fn fixtures_serve_exits_130_and_cleans_up_when_interrupted_early() {
    let tools = Tools::new(false);
    let fixtures = support::root().join("fixtures");
    let child = tools.spawn(&[
        "fixtures",
        "serve",
        "--fixtures",
        fixtures.to_str().unwrap(),
    ]);
    wait_for("a scratch directory", Duration::from_secs(30), || {
        !tools.scratch_left().is_empty()
    });
    interrupt(&child);
    let (code, err, _) = finish(child, Duration::from_secs(60));
    assert_eq!(code, Some(130), "{err}");
    assert_eq!(tools.scratch_left(), Vec::<String>::new(), "{err}");
}
