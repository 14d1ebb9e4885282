//! flux-compat: proves a Flux distribution (a Flux version and an image channel) works on a set of
//! Kubernetes versions, with evidence: JUnit, JSON and Markdown reports.
//!
//! Module map (see DESIGN in the project docs): `model` (pure types) ← `config` (load + validate)
//! ← `plan` (expand, filter, partition) ← `report` (the only writer of terminal and files).

pub mod app;
pub mod app_run;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod distribution;
pub mod errors;
pub mod exit;
pub mod fips;
pub mod fixtures;
pub mod flux;
pub mod k8s;
pub mod model;
pub mod plan;
pub mod redact;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod schema_check;
pub mod scratch;
pub mod update;
