//! Reports: the only place that writes `reports/` files or renders human output of results.
//! Everything is rendered from one results model (`model::results`).

pub mod attest;
pub mod expect;
pub mod files;
pub mod html;
pub mod junit;
pub mod live;
pub mod merge;
pub mod plan_table;
pub mod summary;
pub mod terminal;
pub mod text;

/// The JSON Schema of `results.json` (`flux-compat report schema` prints it).
pub const RESULTS_SCHEMA_JSON: &str = include_str!("results.schema.json");

/// `2026-11-23T05:10:11Z` style UTC timestamps for results.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}
