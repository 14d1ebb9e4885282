//! Channel verification: every controller image of a channel release is checked against what
//! the channel declares (FIPS or not, distroless or Alpine) and turned into report results —
//! one case per controller image per check, with family, Go version, module and digest.

use super::classify::Family;
use super::image::{BaseKind, ImageError, ImageInspection};
pub use crate::errors::chain as error_chain;
use crate::model::matrix::Base;
use crate::model::{CellResult, ScenarioResult, Status};
use std::collections::BTreeMap;

/// The outcome of one check on one image.
#[derive(Clone, Debug)]
pub struct Check {
    pub component: String,
    pub check: &'static str,
    pub status: Status,
    pub message: String,
}

/// The FIPS check: a FIPS channel needs a FIPS family, a non-FIPS channel must not have one
/// (its images would then follow a different TLS policy than the channel claims).
pub fn check_fips(channel: &str, fips: bool, component: &str, i: &ImageInspection) -> Check {
    let b = &i.binary;
    let what = match (b.family, &b.fips_module) {
        (Family::Native, Some(m)) => format!(
            "`native` (fips140={}, module `{m}`)",
            b.native_mode.as_deref().unwrap_or("on")
        ),
        (f, _) => format!("`{f}`"),
    };
    let (status, message) = match (fips, b.family.is_fips()) {
        (true, true) | (false, false) => (
            Status::Pass,
            format!(
                "`{component}` is {what}, {} as channel `{channel}` declares",
                if fips { "FIPS" } else { "not FIPS" }
            ),
        ),
        (true, false) => (
            Status::Fail,
            format!(
                "channel `{channel}` declares FIPS but `{component}` is {what}{}",
                if b.family == Family::Boring {
                    " (BoringCrypto without `crypto/tls/fipsonly` does not restrict TLS)"
                } else {
                    ""
                }
            ),
        ),
        (false, true) => (
            Status::Fail,
            format!("channel `{channel}` declares no FIPS but `{component}` is {what}"),
        ),
    };
    Check {
        component: component.into(),
        check: "fips",
        status,
        message,
    }
}

pub fn check_base(channel: &str, declared: Base, component: &str, i: &ImageInspection) -> Check {
    let want = match declared {
        Base::Alpine => BaseKind::Alpine,
        Base::Distroless => BaseKind::Distroless,
    };
    let got = i.base.kind;
    let status = if got == want {
        Status::Pass
    } else {
        Status::Fail
    };
    let message = format!(
        "`{component}` base is `{}`, channel `{channel}` declares `{}`: {}",
        got.as_str(),
        want.as_str(),
        i.base.evidence.join("; ")
    );
    Check {
        component: component.into(),
        check: "base",
        status,
        message,
    }
}

/// Report properties for one inspected image.
pub fn properties(reference: &str, i: Option<&ImageInspection>) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    p.insert("image".into(), reference.to_string());
    if let Some(i) = i {
        p.insert("digest".into(), i.digest.clone());
        p.insert("platformDigest".into(), i.platform_digest.clone());
        p.insert("platform".into(), i.platform.clone());
        p.insert("family".into(), i.binary.family.as_str().into());
        p.insert("goVersion".into(), i.binary.go_version_raw.clone());
        p.insert(
            "fipsModule".into(),
            i.binary.fips_module.clone().unwrap_or_else(|| "-".into()),
        );
        p.insert("base".into(), i.base.kind.as_str().into());
        p.insert("binary".into(), i.binary_path.clone());
    }
    p
}

/// Cases for one component: both checks on success, both errored when the image could not be
/// inspected (a check that could not run is never a pass).
pub fn component_cases(
    channel: &str,
    fips: bool,
    base: Base,
    component: &str,
    reference: &str,
    result: &Result<ImageInspection, ImageError>,
    duration_ms: u64,
) -> Vec<ScenarioResult> {
    let checks = match result {
        Ok(i) => vec![
            check_fips(channel, fips, component, i),
            check_base(channel, base, component, i),
        ],
        Err(e) => {
            let msg = format!("could not inspect `{reference}`: {}", error_chain(e));
            ["fips", "base"]
                .into_iter()
                .map(|c| Check {
                    component: component.into(),
                    check: c,
                    status: Status::Error,
                    message: msg.clone(),
                })
                .collect()
        }
    };
    let evidence = result.as_ref().ok().map(|i| {
        i.binary
            .evidence
            .iter()
            .map(|e| format!("{}: {} ({})", e.conclusion, e.detail, e.source))
            .chain(i.binary.warnings.iter().map(|w| format!("warning: {w}")))
            .collect::<Vec<_>>()
            .join("\n")
    });
    checks
        .into_iter()
        .map(|c| ScenarioResult {
            name: format!("{}/{}", c.component, c.check),
            tags: vec!["inspect".into(), c.check.into()],
            status: c.status,
            message: Some(c.message),
            duration_ms,
            steps: Vec::new(),
            diagnostics: evidence.clone(),
            artifacts: None,
            properties: properties(reference, result.as_ref().ok()),
        })
        .collect()
}

/// One report cell for a channel release.
pub fn cell(
    channel: &str,
    flux: &str,
    started_at: String,
    duration_ms: u64,
    scenarios: Vec<ScenarioResult>,
) -> CellResult {
    let status = scenarios
        .iter()
        .fold(Status::Skip, |acc, s| acc.worst(s.status));
    let failed = scenarios
        .iter()
        .filter(|s| matches!(s.status, Status::Fail | Status::Error))
        .count();
    CellResult {
        id: format!("inspect-{channel}-{flux}"),
        kubernetes_minor: "-".into(),
        kubernetes_version: None,
        node_image: None,
        channel: channel.into(),
        flux_version: flux.into(),
        provider: "none".into(),
        status,
        message: (failed > 0).then(|| format!("{failed} image check(s) failed or errored")),
        started_at,
        duration_ms,
        properties: BTreeMap::new(),
        phases: Vec::new(),
        scenarios,
    }
}
