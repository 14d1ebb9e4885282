//! The terminal reporter: renders run events on stderr. On a terminal, an indicatif progress
//! display (one line per running cell); in CI, with `--no-progress` or when stderr is not a
//! terminal, one plain line per phase change. No colour codes are ever written, so `NO_COLOR`
//! and log files get clean text.

use crate::model::Status;
use crate::runner::events::{EventSink, RunEvent};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

enum Mode {
    Plain(Box<dyn Write + Send>),
    Progress {
        multi: MultiProgress,
        bars: BTreeMap<String, ProgressBar>,
        overall: ProgressBar,
    },
}

pub struct Terminal {
    start: Instant,
    mode: Mutex<Mode>,
}

/// Whether to draw progress bars: a terminal on stderr, not CI, not disabled.
pub fn wants_progress(no_progress: bool) -> bool {
    !no_progress
        && std::io::stderr().is_terminal()
        && std::env::var_os("CI").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

impl Terminal {
    /// Pick the mode for this process's stderr.
    pub fn for_stderr(no_progress: bool) -> Self {
        if wants_progress(no_progress) {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(0));
            overall.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} cells {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            Self {
                start: Instant::now(),
                mode: Mutex::new(Mode::Progress {
                    multi,
                    bars: BTreeMap::new(),
                    overall,
                }),
            }
        } else {
            Self::plain(Box::new(std::io::stderr()))
        }
    }

    /// Plain lines into any writer.
    pub fn plain(out: Box<dyn Write + Send>) -> Self {
        Self {
            start: Instant::now(),
            mode: Mutex::new(Mode::Plain(out)),
        }
    }
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// The one-line text of an event, or `None` for events that only move bars. Secrets are masked
/// and control characters escaped: nothing a cluster or a config file says can reach the
/// terminal raw.
pub fn line(event: &RunEvent) -> Option<String> {
    let raw = raw_line(event)?;
    Some(crate::errors::escape_controls(&crate::redact::text(&raw)).into_owned())
}

fn raw_line(event: &RunEvent) -> Option<String> {
    Some(match event {
        RunEvent::RunStarted {
            run_id,
            cells,
            report_dir,
            ..
        } => format!(
            "run {run_id}: {} cell(s), reports in {}",
            cells.len(),
            report_dir.display()
        ),
        RunEvent::CellStarted { cell } => format!("{cell}: started"),
        RunEvent::PhaseStarted { cell, phase } => format!("{cell}: {phase} ..."),
        RunEvent::PhaseFinished { cell, result } => match &result.message {
            None => format!(
                "{cell}: {} {} ({})",
                result.name,
                result.status.as_str(),
                secs(result.duration_ms)
            ),
            Some(m) => format!(
                "{cell}: {} {} ({}): {}",
                result.name,
                result.status.as_str(),
                secs(result.duration_ms),
                first_line(m)
            ),
        },
        RunEvent::ScenarioStarted { cell, scenario } => format!("{cell}: scenario {scenario} ..."),
        RunEvent::ScenarioFinished { cell, result } => format!(
            "{cell}: scenario {} {} ({}){}",
            result.name,
            result.status.as_str(),
            secs(result.duration_ms),
            result
                .message
                .as_deref()
                .map(|m| format!(": {}", first_line(m)))
                .unwrap_or_default()
        ),
        RunEvent::ClusterKept {
            cell,
            cluster,
            kubeconfig,
        } => format!(
            "{cell}: kept cluster {cluster} (KUBECONFIG={})",
            kubeconfig.display()
        ),
        RunEvent::CleanupFailed {
            cell,
            what,
            message,
        } => format!("{cell}: cleanup failed: {what}: {}", first_line(message)),
        RunEvent::CellFinished { result } => format!(
            "{}: {} ({}){}",
            result.id,
            result.status.as_str().to_uppercase(),
            secs(result.duration_ms),
            result
                .message
                .as_deref()
                .map(|m| format!(": {}", first_line(m)))
                .unwrap_or_default()
        ),
        RunEvent::CellRecorded { .. } => return None,
        RunEvent::DeadlinePassed { deadline } => format!(
            "the run deadline of {} passed: stopping the cells (their results are written as errors) and tearing down",
            humantime::format_duration(*deadline)
        ),
        RunEvent::Interrupted => {
            "interrupted: stopping cells and removing everything created (Ctrl-C again to exit now)"
                .to_string()
        }
        RunEvent::RunFinished { result } => {
            let c = result.case_counts();
            format!(
                "run {}{}: {} passed, {} failed, {} errored, {} skipped",
                result.run_id,
                if result.interrupted {
                    " interrupted"
                } else {
                    ""
                },
                c.pass,
                c.fail,
                c.error,
                c.skip
            )
        }
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

impl EventSink for Terminal {
    fn emit(&self, event: &RunEvent) {
        let mut mode = self.mode.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *mode {
            Mode::Plain(out) => {
                if let Some(l) = line(event) {
                    let t = self.start.elapsed().as_secs_f64();
                    // A closed stderr must not stop the run.
                    let _ = writeln!(out, "[{t:7.1}s] {l}");
                    let _ = out.flush();
                }
            }
            Mode::Progress {
                multi,
                bars,
                overall,
            } => match event {
                RunEvent::RunStarted { cells, .. } => {
                    overall.set_length(cells.len() as u64);
                    overall.enable_steady_tick(Duration::from_millis(250));
                }
                RunEvent::CellStarted { cell } => {
                    let b = multi.insert_before(overall, ProgressBar::new_spinner());
                    b.set_style(
                        ProgressStyle::with_template("{spinner} {prefix} {wide_msg} {elapsed}")
                            .expect("valid template"),
                    );
                    b.set_prefix(cell.clone());
                    b.enable_steady_tick(Duration::from_millis(120));
                    bars.insert(cell.clone(), b);
                }
                RunEvent::PhaseStarted { cell, phase } => {
                    if let Some(b) = bars.get(cell) {
                        b.set_message(phase.clone());
                    }
                }
                RunEvent::ScenarioStarted { cell, scenario } => {
                    if let Some(b) = bars.get(cell) {
                        b.set_message(format!("scenario {scenario}"));
                    }
                }
                RunEvent::CellFinished { result } => {
                    if let Some(b) = bars.remove(&result.id) {
                        b.finish_and_clear();
                    }
                    overall.inc(1);
                    let _ = multi.println(line(event).unwrap_or_default());
                    if result.status == Status::Error || result.status == Status::Fail {
                        overall.set_message(format!("(last problem: {})", result.id));
                    }
                }
                RunEvent::RunFinished { .. } => {
                    overall.finish_and_clear();
                    let _ = multi.println(line(event).unwrap_or_default());
                }
                RunEvent::PhaseFinished { result, .. } if result.status != Status::Pass => {
                    let _ = multi.println(line(event).unwrap_or_default());
                }
                RunEvent::ClusterKept { .. }
                | RunEvent::CleanupFailed { .. }
                | RunEvent::DeadlinePassed { .. }
                | RunEvent::Interrupted => {
                    let _ = multi.println(line(event).unwrap_or_default());
                }
                _ => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PhaseResult;
    use std::sync::{Arc, Mutex};

    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_mode_writes_one_line_per_phase_change_without_colour() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let t = Terminal::plain(Box::new(Buf(buf.clone())));
        t.emit(&RunEvent::PhaseStarted {
            cell: "c1".into(),
            phase: "cluster".into(),
        });
        t.emit(&RunEvent::PhaseFinished {
            cell: "c1".into(),
            result: PhaseResult {
                name: "cluster".into(),
                status: Status::Error,
                message: Some("kind failed\nsecond line".into()),
                duration_ms: 1500,
                diagnostics: None,
            },
        });
        let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].ends_with("c1: cluster ..."), "{out}");
        assert!(
            lines[1].ends_with("c1: cluster error (1.5s): kind failed"),
            "{out}"
        );
        assert!(!out.contains('\u{1b}'), "no escape sequences");
    }

    #[test]
    fn no_progress_flag_disables_bars() {
        assert!(!wants_progress(true));
    }
}
