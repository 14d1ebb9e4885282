//! The plan as libtest trials: `cargo test --test matrix -- <filter>` lists and runs the default
//! plan's cells × scenarios. Each cell runs once, through the real `flux-compat run --cell`, on
//! one shared tokio runtime; its scenarios' results become the trials' outcomes. Without docker
//! and kind (or without the opt-in `FLUX_COMPAT_E2E=1`) every trial is reported ignored with the
//! reason, never passed.

#[allow(unused_imports, clippy::type_complexity)]
// the shared support also carries the API server double
mod support;

use flux_compat::cluster::process::{self, Cmd, ProcessError};
use flux_compat::config::{self, Sources};
use flux_compat::model::{CellResult, Status};
use flux_compat::plan::{self, Filter};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why nothing can run here, if so.
fn skip_reason() -> Option<String> {
    let mut missing = Vec::new();
    if !support::docker_available() {
        missing.push("no docker engine answers");
    }
    if support::which("kind").is_none() {
        missing.push("`kind` is not on PATH");
    }
    if !missing.is_empty() {
        return Some(format!(
            "{}: kind clusters cannot be created here",
            missing.join(" and ")
        ));
    }
    if std::env::var("FLUX_COMPAT_E2E").as_deref() != Ok("1") {
        return Some("set FLUX_COMPAT_E2E=1 to create real kind clusters from cargo test".into());
    }
    None
}

/// One cell, run at most once however many of its trials are selected.
type CellRun = Arc<OnceLock<Result<CellResult, String>>>;

fn run_cell(rt: &tokio::runtime::Runtime, cell: &str) -> Result<CellResult, String> {
    let dir = support::root().join("target/matrix-trials").join(cell);
    let _ = std::fs::remove_dir_all(&dir);
    let cmd = Cmd::new(support::binary())
        .args(["--matrix"])
        .arg(support::root().join("matrix.yaml"))
        .args(["--no-progress", "run", "--cell", cell, "--report-dir"])
        .arg(&dir);
    let out = rt.block_on(process::run(
        &cmd,
        Duration::from_secs(3600),
        &CancellationToken::new(),
    ));
    match out {
        Ok(_) | Err(ProcessError::Exit { code: Some(1), .. }) => {}
        Err(ProcessError::Exit {
            code: Some(3),
            stderr,
            ..
        }) => {
            return Err(format!("IGNORE:{}", stderr.trim()));
        }
        Err(e) => return Err(e.to_string()),
    }
    let run = flux_compat::report::files::read_results(&dir.join("results.json"))
        .map_err(|e| e.to_string())?;
    run.cells
        .into_iter()
        .find(|c| c.id == cell)
        .ok_or_else(|| format!("results.json has no cell `{cell}`"))
}

fn main() {
    let args = Arguments::from_args();
    let root = support::root();
    let mut loaded = config::load(&Sources {
        matrix: root.join("matrix.yaml"),
        scenarios_dir: None,
    })
    .unwrap_or_else(|problems| {
        for p in &problems {
            eprintln!("{p}");
        }
        panic!("the default matrix does not load");
    });
    // The trials are the default run: profile `newest`.
    loaded
        .matrix
        .select_profile(flux_compat::model::matrix::PROFILE_NEWEST)
        .expect("the default matrix has the newest profile");
    let plan = plan::build(&loaded.matrix, &loaded.scenarios, &Filter::default(), None);
    let reason = skip_reason();
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime"),
    );
    let runs: Arc<Mutex<BTreeMap<String, CellRun>>> = Arc::default();
    let mut trials = Vec::new();
    for cell in &plan.cells {
        for s in &cell.scenarios {
            let name = format!("{}::{}", cell.id, s.name);
            let planned_skip = cell.skip.clone().or_else(|| s.skip.clone());
            let reason = reason.clone();
            let (rt, runs, cell_id, scenario) =
                (rt.clone(), runs.clone(), cell.id.clone(), s.name.clone());
            trials.push(
                Trial::ignorable_test(name, move || {
                    if let Some(r) = planned_skip.or(reason) {
                        return Ok(Completion::ignored_with(r));
                    }
                    let once = runs
                        .lock()
                        .unwrap()
                        .entry(cell_id.clone())
                        .or_default()
                        .clone();
                    let cell = once.get_or_init(|| run_cell(&rt, &cell_id));
                    let cell = match cell {
                        Err(e) if e.starts_with("IGNORE:") => {
                            return Ok(Completion::ignored_with(&e["IGNORE:".len()..]));
                        }
                        Err(e) => return Err(Failed::from(e.as_str())),
                        Ok(c) => c,
                    };
                    let Some(r) = cell.scenarios.iter().find(|r| r.name == scenario) else {
                        return Err(format!(
                            "cell `{cell_id}` reported no result for `{scenario}`"
                        )
                        .into());
                    };
                    let msg = r.message.clone().unwrap_or_default();
                    match r.status {
                        Status::Pass => Ok(Completion::Completed),
                        Status::Skip => Ok(Completion::ignored_with(msg)),
                        Status::Fail | Status::Error => {
                            Err(format!("{}: {msg}", r.status.as_str()).into())
                        }
                    }
                })
                .with_kind(if cell.fips { "fips" } else { "" }),
            );
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
