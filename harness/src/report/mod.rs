//! Reports: the only place that writes `reports/` files or renders human output of results.
//! Everything is rendered from one results model (`model::results`).

pub mod files;
pub mod junit;
pub mod live;
pub mod merge;
pub mod plan_table;
pub mod summary;
pub mod terminal;

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
