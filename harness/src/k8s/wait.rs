//! Watch-based waits. Every wait is one `kube::runtime::watcher` on the one object (its initial
//! list, then a watch from that resourceVersion), bounded by its own timeout; nothing polls.

use super::client::{Kube, ResolveError};
use super::objects::{ListQuery, ObjectRef, to_value};
use super::status::{
    self, ConditionExpectation, Failure, ObservedFailure, UNEXPECTEDLY_READY, Verdict,
};
use crate::model::Status;
use futures::StreamExt;
use kube::api::DynamicObject;
use kube::runtime::watcher;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("wait for `{object}`")]
    Resolve {
        object: String,
        #[source]
        source: ResolveError,
    },
    /// A product failure: `Stalled=True`, a deadline exceeded, suspended.
    #[error("wait for `{object}` to become ready: it failed with reason `{reason}`: {message}")]
    Failed {
        object: String,
        reason: String,
        message: String,
    },
    #[error("wait for `{object}` to {what}: timed out after {}; last state: {last}", humantime::format_duration(*.timeout))]
    Timeout {
        object: String,
        what: String,
        timeout: Duration,
        last: String,
    },
    /// An expect-failure wait saw the object become ready instead.
    #[error("wait for `{object}` to {expected}: it became ready instead")]
    UnexpectedlyReady { object: String, expected: String },
    #[error("watch `{object}` while waiting for it to {what}")]
    Watch {
        object: String,
        what: String,
        #[source]
        source: watcher::Error,
    },
}

impl WaitError {
    /// Fail for product misbehaviour (failed, timed out, ready when it should fail), error for
    /// harness or infrastructure trouble (the watch broke, the kind is unknown).
    pub fn status(&self) -> Status {
        match self {
            WaitError::Failed { .. }
            | WaitError::Timeout { .. }
            | WaitError::UnexpectedlyReady { .. } => Status::Fail,
            WaitError::Resolve { .. } | WaitError::Watch { .. } => Status::Error,
        }
    }

    /// Whether the API server went away (connection refused, 5xx).
    pub fn is_unreachable(&self) -> bool {
        match self {
            WaitError::Watch { source, .. } => match source {
                watcher::Error::InitialListFailed(e)
                | watcher::Error::WatchStartFailed(e)
                | watcher::Error::WatchFailed(e) => super::objects::is_unreachable(e),
                watcher::Error::WatchError(s) => s.code >= 500,
                watcher::Error::NoResourceVersion => false,
            },
            WaitError::Resolve {
                source: ResolveError::Discovery { source, .. },
                ..
            } => super::objects::is_unreachable(source),
            _ => false,
        }
    }
}

/// Reconnects of a broken watch before a wait gives up with [`WaitError::Watch`].
const WATCH_RETRIES: u32 = 3;
/// First reconnect delay, doubled for each further one (0.1 + 0.2 + 0.4 s at most).
const WATCH_BACKOFF: Duration = Duration::from_millis(100);

fn is_transient(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => match e {
            kube::Error::Api(s) => matches!(s.code, 429 | 500 | 503 | 504),
            _ => super::objects::is_unreachable(e),
        },
        watcher::Error::WatchError(s) => matches!(s.code, 429 | 500 | 503 | 504),
        watcher::Error::NoResourceVersion => false,
    }
}

/// How a verdict ends a wait: `None` (and `last` updated) while pending.
fn ended<T>(
    verdict: Verdict<T>,
    object: &str,
    what: &str,
    last: &mut String,
) -> Option<Result<T, WaitError>> {
    match verdict {
        Verdict::Done(t) => Some(Ok(t)),
        Verdict::Pending(state) => {
            *last = state;
            None
        }
        Verdict::Failed(Failure { reason, message }) => {
            Some(Err(if reason == UNEXPECTEDLY_READY {
                WaitError::UnexpectedlyReady {
                    object: object.to_string(),
                    expected: what.to_string(),
                }
            } else {
                WaitError::Failed {
                    object: object.to_string(),
                    reason,
                    message,
                }
            }))
        }
    }
}

impl Kube {
    /// Wait until `check` accepts the object's state. One watcher on the object, the whole wait
    /// bounded by `timeout`. `what` completes "wait for `X` to ...".
    pub async fn wait_for<T>(
        &self,
        target: &ObjectRef,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(Option<&Value>) -> Verdict<T>,
    ) -> Result<T, WaitError> {
        let object = target.to_string();
        let (api, _) = self
            .api(
                &target.api_version,
                &target.kind,
                target.namespace.as_deref(),
                &target.name,
            )
            .await
            .map_err(|source| WaitError::Resolve {
                object: object.clone(),
                source,
            })?;
        let config = watcher::Config::default().fields(&format!("metadata.name={}", target.name));
        let mut last = "not observed yet".to_string();
        let watch = async {
            let mut stream = watcher(api, config).boxed();
            let mut seen_in_init = false;
            let mut transient = 0u32;
            while let Some(event) = stream.next().await {
                if event.is_ok() {
                    transient = 0;
                }
                let verdict = match event {
                    Ok(watcher::Event::Init) => {
                        seen_in_init = false;
                        continue;
                    }
                    Ok(watcher::Event::InitApply(obj)) => {
                        seen_in_init = true;
                        check(Some(&to_value(&obj)))
                    }
                    Ok(watcher::Event::InitDone) if seen_in_init => continue,
                    Ok(watcher::Event::InitDone) | Ok(watcher::Event::Delete(_)) => check(None),
                    Ok(watcher::Event::Apply(obj)) => check(Some(&to_value(&obj))),
                    // 410 Gone: the watcher re-lists by itself on the next poll.
                    Err(watcher::Error::WatchError(s)) if s.code == 410 => continue,
                    // A brief outage (throttling, a restarting API server) gets a few reconnects
                    // with backoff; a lasting one ends the wait as an error.
                    Err(e) if is_transient(&e) && transient < WATCH_RETRIES => {
                        tokio::time::sleep(WATCH_BACKOFF * 2u32.pow(transient)).await;
                        transient += 1;
                        continue;
                    }
                    Err(source) => {
                        return Err(WaitError::Watch {
                            object: object.clone(),
                            what: what.to_string(),
                            source,
                        });
                    }
                };
                if let Some(end) = ended(verdict, &object, what, &mut last) {
                    return end;
                }
            }
            Err(WaitError::Timeout {
                object: object.clone(),
                what: what.to_string(),
                timeout,
                last: format!("{last} (the watch ended)"),
            })
        };
        tracing::debug!(object = %object, what, ?timeout, "waiting");
        let outcome = tokio::time::timeout(timeout, watch).await;
        match &outcome {
            Ok(Ok(_)) => tracing::debug!(object = %object, what, "wait satisfied"),
            Ok(Err(e)) => tracing::debug!(object = %object, what, error = %e, "wait ended"),
            Err(_) => tracing::debug!(object = %object, what, "wait timed out"),
        }
        match outcome {
            Ok(result) => result,
            Err(_) => Err(WaitError::Timeout {
                object: object.clone(),
                what: what.to_string(),
                timeout,
                last,
            }),
        }
    }

    /// Wait until `check` accepts the set of objects `q` selects. One watcher over the kind
    /// (namespace and label selector applied); the current set is judged after the initial list
    /// and after every change, the whole wait bounded by `timeout`.
    pub async fn wait_list<T>(
        &self,
        q: &ListQuery,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&[Value]) -> Verdict<T>,
    ) -> Result<T, WaitError> {
        let object = q.to_string();
        let api = match q.namespace.as_deref() {
            Some(ns) => self.api(&q.api_version, &q.kind, Some(ns), "*").await,
            None => self.api_all(&q.api_version, &q.kind).await,
        }
        .map_err(|source| WaitError::Resolve {
            object: object.clone(),
            source,
        })?
        .0;
        let mut config = watcher::Config::default();
        if let Some(sel) = &q.label_selector {
            config = config.labels(sel);
        }
        let mut last = "not observed yet".to_string();
        let watch = async {
            let mut stream = watcher(api, config).boxed();
            let (mut current, mut initial) = (BTreeMap::new(), BTreeMap::new());
            let key = |o: &DynamicObject| {
                let m = &o.metadata;
                (
                    m.namespace.clone().unwrap_or_default(),
                    m.name.clone().unwrap_or_default(),
                )
            };
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::Init) => {
                        initial.clear();
                        continue;
                    }
                    Ok(watcher::Event::InitApply(o)) => {
                        initial.insert(key(&o), to_value(&o));
                        continue;
                    }
                    Ok(watcher::Event::InitDone) => current = std::mem::take(&mut initial),
                    Ok(watcher::Event::Apply(o)) => {
                        current.insert(key(&o), to_value(&o));
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        current.remove(&key(&o));
                    }
                    Err(watcher::Error::WatchError(s)) if s.code == 410 => continue,
                    Err(source) => {
                        return Err(WaitError::Watch {
                            object: object.clone(),
                            what: what.to_string(),
                            source,
                        });
                    }
                }
                let items: Vec<Value> = current.values().cloned().collect();
                if let Some(end) = ended(check(&items), &object, what, &mut last) {
                    return end;
                }
            }
            Err(WaitError::Timeout {
                object: object.clone(),
                what: what.to_string(),
                timeout,
                last: format!("{last} (the watch ended)"),
            })
        };
        match tokio::time::timeout(timeout, watch).await {
            Ok(result) => result,
            Err(_) => Err(WaitError::Timeout {
                object: object.clone(),
                what: what.to_string(),
                timeout,
                last,
            }),
        }
    }

    /// Wait until the object is ready by kstatus and Flux rules ([`status::judge_ready`]): fails
    /// fast on `Stalled=True`; while not ready, the last reason/message lands in the timeout error.
    pub async fn wait_ready(&self, target: &ObjectRef, timeout: Duration) -> Result<(), WaitError> {
        self.wait_for(target, "become ready", timeout, status::judge_ready)
            .await
    }

    /// Wait for a named condition with the expected status / reason / message
    /// ([`status::judge_condition`]).
    pub async fn wait_condition(
        &self,
        target: &ObjectRef,
        expected: &ConditionExpectation,
        timeout: Duration,
    ) -> Result<status::Condition, WaitError> {
        let what = format!("report {expected}");
        self.wait_for(target, &what, timeout, |obj| {
            status::judge_condition(obj, expected)
        })
        .await
    }

    /// Wait for the object to fail as expected ([`status::judge_failure`]). Becoming ready
    /// instead ends the wait at once with [`WaitError::UnexpectedlyReady`].
    pub async fn wait_failure(
        &self,
        target: &ObjectRef,
        expected: &ConditionExpectation,
        timeout: Duration,
    ) -> Result<ObservedFailure, WaitError> {
        let what = format!("fail with {expected}");
        self.wait_for(target, &what, timeout, |obj| {
            status::judge_failure(obj, expected)
        })
        .await
    }

    /// Wait until the object no longer exists.
    pub async fn wait_deleted(
        &self,
        target: &ObjectRef,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        self.wait_for(target, "be deleted", timeout, |obj| match obj {
            None => Verdict::Done(()),
            Some(_) => Verdict::Pending("still present".to_string()),
        })
        .await
    }

    /// Wait for several objects to become ready at once (one watch each, one shared deadline).
    pub async fn wait_all_ready(
        &self,
        targets: &[ObjectRef],
        timeout: Duration,
    ) -> Result<(), WaitError> {
        futures::future::try_join_all(targets.iter().map(|t| self.wait_ready(t, timeout))).await?;
        Ok(())
    }
}
