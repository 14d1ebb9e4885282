//! The vendor support data file (`support/vendor-lts.yaml`): per cloud vendor, the date each
//! Kubernetes minor leaves its last support tier (EKS extended, AKS LTS, GKE Extended channel,
//! OpenShift maintenance or EUS), each vendor with the source of its dates. The `lts` profile is
//! every minor some vendor still supports on the run date.

use crate::config::diag::{Diagnostic, Diagnostics, deserialize};
use crate::config::yaml;
use crate::model::KubeMinor;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSupport {
    api_version: String,
    kind: String,
    compiled: String,
    vendors: Vec<RawVendor>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawVendor {
    name: String,
    title: String,
    source: String,
    minors: Vec<RawMinor>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMinor {
    minor: String,
    until: String,
    #[serde(default)]
    release: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// One vendor's support of one minor.
#[derive(Clone, Debug)]
pub struct Window {
    pub vendor: String,
    pub minor: KubeMinor,
    /// Last day of support, `YYYY-MM-DD`.
    pub until: String,
}

/// The parsed file.
#[derive(Clone, Debug)]
pub struct Support {
    pub compiled: String,
    pub windows: Vec<Window>,
}

/// A `YYYY-MM-DD` date, checked.
pub fn is_date(s: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &format).is_ok()
}

/// Read and check the data file; every problem at `file:line:col`.
pub fn load(file: &Path) -> Result<Support, Vec<Diagnostic>> {
    let mut d = Diagnostics::default();
    let text = crate::config::read(file, &mut d);
    let support = text.and_then(|t| parse(file, &t, &mut d));
    match support {
        Some(s) if d.is_empty() => Ok(s),
        _ => Err(d.into_sorted()),
    }
}

fn parse(file: &Path, text: &str, d: &mut Diagnostics) -> Option<Support> {
    let doc = yaml::parse_single(text).map_err(|p| d.yaml(file, p)).ok()?;
    let raw: RawSupport = deserialize(&doc, &doc.value, "", file, d)?;
    if raw.api_version != crate::config::matrix::API_VERSION || raw.kind != "VendorSupport" {
        d.push(
            file,
            doc.pos("kind"),
            "expected `apiVersion: flux-compat/v1alpha1` and `kind: VendorSupport`",
        );
    }
    if !is_date(&raw.compiled) {
        d.push(
            file,
            doc.value_pos("compiled"),
            format!("`{}` is not a date (YYYY-MM-DD)", raw.compiled),
        );
    }
    let mut windows = Vec::new();
    for (i, v) in raw.vendors.iter().enumerate() {
        let _ = (&v.title, &v.source);
        for (j, m) in v.minors.iter().enumerate() {
            let at = format!("vendors[{i}].minors[{j}]");
            let _ = (&m.release, &m.note);
            let minor = m.minor.parse::<KubeMinor>();
            if let Err(e) = &minor {
                d.push(file, doc.value_pos(&format!("{at}.minor")), e.to_string());
            }
            if !is_date(&m.until) {
                d.push(
                    file,
                    doc.value_pos(&format!("{at}.until")),
                    format!("`{}` is not a date (YYYY-MM-DD)", m.until),
                );
            }
            if let Ok(minor) = minor {
                windows.push(Window {
                    vendor: v.name.clone(),
                    minor,
                    until: m.until.clone(),
                });
            }
        }
    }
    Some(Support {
        compiled: raw.compiled,
        windows,
    })
}

impl Support {
    /// Minors some vendor supports on `date` (YYYY-MM-DD), with the vendors that do.
    pub fn supported_on(&self, date: &str) -> BTreeMap<KubeMinor, Vec<String>> {
        let mut out: BTreeMap<KubeMinor, Vec<String>> = BTreeMap::new();
        for w in self.windows.iter().filter(|w| w.until.as_str() >= date) {
            out.entry(w.minor).or_default().push(w.vendor.clone());
        }
        out
    }

    /// The latest date a vendor supports `minor` (for "dropped: support ended" notes).
    pub fn ended(&self, minor: KubeMinor) -> Option<&str> {
        self.windows
            .iter()
            .filter(|w| w.minor == minor)
            .map(|w| w.until.as_str())
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minors_supported_on_a_date() {
        let text = "apiVersion: flux-compat/v1alpha1\nkind: VendorSupport\ncompiled: \"2026-11-23\"\nvendors:\n  - name: eks\n    title: EKS\n    source: x\n    minors:\n      - {minor: \"1.31\", until: \"2026-11-26\"}\n      - {minor: \"1.32\", until: \"2027-03-23\"}\n";
        let mut d = Diagnostics::default();
        let s = parse(Path::new("s.yaml"), text, &mut d).unwrap();
        assert!(d.is_empty());
        let on = |date| {
            s.supported_on(date)
                .keys()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(on("2026-11-26"), ["1.31", "1.32"]);
        assert_eq!(on("2026-11-27"), ["1.32"]);
        let bad = text.replace("2027-03-23", "2027-13-01");
        let mut d = Diagnostics::default();
        parse(Path::new("s.yaml"), &bad, &mut d);
        let all: Vec<String> = d.into_sorted().iter().map(|x| x.to_string()).collect();
        assert!(
            all[0].starts_with("s.yaml:10:") && all[0].contains("`2027-13-01` is not a date"),
            "{all:?}"
        );
    }
}
