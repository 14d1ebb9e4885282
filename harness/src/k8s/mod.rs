//! Kubernetes operations over kube-rs: a client bound to an explicit kubeconfig context, discovery,
//! server-side apply of multi-document YAML, watch-based readiness waits (kstatus and Flux rules)
//! and failure diagnostics. Knows nothing about channels or scenarios (that is `flux`, `scenario`).

pub mod apply;
pub mod client;
pub mod diagnostics;
pub mod objects;
pub mod probe;
pub mod schema;
pub mod status;
pub mod wait;

pub use apply::{ApplyError, ApplyOptions, FIELD_MANAGER, ParseError, parse_documents};
pub use client::{ConnectError, Kube, ResolveError, Resolved, ServerVersion, VersionError};
pub use diagnostics::{Diagnostics, DiagnosticsRequest};
pub use objects::{ListQuery, ObjectError, ObjectRef};
pub use probe::ProbeError;
pub use status::{
    Condition, ConditionExpectation, Failure, ObservedFailure, Readiness, Verdict, judge_condition,
    judge_failure, judge_ready,
};
pub use wait::WaitError;
