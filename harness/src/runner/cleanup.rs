//! The cleanup registry: everything created is registered before (or as) it is created and torn
//! down in reverse order, per cell at the end of the cell and for the whole run after all cells
//! ended, so a panicking cell or an interrupted run still leaves nothing behind.

use futures::future::BoxFuture;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

type Action = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), String>> + Send>;

/// One registered teardown action.
pub struct Entry {
    pub id: u64,
    pub scope: String,
    pub label: String,
    action: Action,
}

/// A failed teardown action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanupFailure {
    pub label: String,
    pub message: String,
}

#[derive(Default)]
pub struct Registry {
    entries: Mutex<Vec<Entry>>,
    next: AtomicU64,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `action` under `scope` (a cell id, or `run`).
    pub fn register<F>(&self, scope: &str, label: impl Into<String>, action: F) -> u64
    where
        F: FnOnce() -> BoxFuture<'static, Result<(), String>> + Send + 'static,
    {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Entry {
            id,
            scope: scope.to_string(),
            label: label.into(),
            action: Box::new(action),
        });
        id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // A panic while holding the lock must not stop cleanup: the data is still valid.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remove and return the entries of one scope, in registration order.
    pub fn take_scope(&self, scope: &str) -> Vec<Entry> {
        let mut all = self.lock();
        let (mine, rest): (Vec<_>, Vec<_>) = all.drain(..).partition(|e| e.scope == scope);
        *all = rest;
        mine
    }

    /// Remove and return everything left.
    pub fn take_all(&self) -> Vec<Entry> {
        std::mem::take(&mut *self.lock())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Labels still registered (for messages about kept resources).
    pub fn labels(&self, scope: &str) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|e| e.scope == scope)
            .map(|e| e.label.clone())
            .collect()
    }
}

/// Run entries newest first, each under `timeout`; every action runs even when others fail.
pub async fn tear_down(entries: Vec<Entry>, timeout: Duration) -> Vec<CleanupFailure> {
    let mut failures = Vec::new();
    for e in entries.into_iter().rev() {
        let label = e.label;
        // Each action runs in its own task: a panicking action is a failure, not the end of
        // cleanup. A timed-out action is aborted (its child processes are killed on drop).
        let task = tokio::spawn((e.action)());
        let abort = task.abort_handle();
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(message))) => failures.push(CleanupFailure { label, message }),
            Ok(Err(join)) => failures.push(CleanupFailure {
                label,
                message: format!("panicked: {join}"),
            }),
            Err(_) => {
                abort.abort();
                failures.push(CleanupFailure {
                    label,
                    message: format!("timed out after {}", humantime::format_duration(timeout)),
                })
            }
        }
    }
    failures
}

/// What a stage sees: registration into its cell's scope only.
#[derive(Clone)]
pub struct Scope {
    pub registry: std::sync::Arc<Registry>,
    pub scope: String,
}

impl Scope {
    pub fn register<F>(&self, label: impl Into<String>, action: F) -> u64
    where
        F: FnOnce() -> BoxFuture<'static, Result<(), String>> + Send + 'static,
    {
        self.registry.register(&self.scope, label, action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn tears_down_in_reverse_and_continues_after_failures() {
        let reg = Registry::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        for (i, fail) in [(1, false), (2, true), (3, false)] {
            let log = log.clone();
            reg.register("c", format!("item {i}"), move || {
                Box::pin(async move {
                    log.lock().unwrap().push(i);
                    if fail { Err("boom".into()) } else { Ok(()) }
                })
            });
        }
        reg.register("other", "x", || Box::pin(async { Ok(()) }));
        let failures = tear_down(reg.take_scope("c"), Duration::from_secs(1)).await;
        assert_eq!(*log.lock().unwrap(), vec![3, 2, 1]);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].label, "item 2");
        assert_eq!(reg.len(), 1);
    }

    #[tokio::test]
    async fn a_panicking_action_does_not_stop_cleanup() {
        let reg = Registry::new();
        let ran = Arc::new(Mutex::new(false));
        let r2 = ran.clone();
        reg.register("c", "first", move || {
            Box::pin(async move {
                *r2.lock().unwrap() = true;
                Ok(())
            })
        });
        reg.register("c", "boom", || Box::pin(async { panic!("provider bug") }));
        let f = tear_down(reg.take_all(), Duration::from_secs(1)).await;
        assert!(f[0].message.contains("panicked"), "{f:?}");
        assert!(*ran.lock().unwrap());
    }

    #[tokio::test]
    async fn a_hanging_action_times_out() {
        let reg = Registry::new();
        reg.register("c", "hang", || Box::pin(std::future::pending()));
        let f = tear_down(reg.take_all(), Duration::from_millis(20)).await;
        assert!(f[0].message.contains("timed out"));
    }
}
