//! Kubernetes minors, Flux versions and the version ranges scenarios gate on.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A Kubernetes minor such as `1.37`; ordered numerically (1.9 < 1.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KubeMinor {
    pub major: u32,
    pub minor: u32,
}

impl KubeMinor {
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// The minor of a full version string such as `v1.36.4`, `1.33.12-eks-abc` or `v1.37.0-rc.1`.
    pub fn of_version(version: &str) -> Option<Self> {
        let trimmed = version.trim().trim_start_matches('v');
        let mut parts = trimmed.split(['.', '-', '+']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.trim_end_matches('+').parse().ok()?;
        Some(Self { major, minor })
    }

    /// As a semver version `major.minor.0`, for matching against ranges.
    pub fn as_semver(&self) -> semver::Version {
        semver::Version::new(self.major.into(), self.minor.into(), 0)
    }
}

impl fmt::Display for KubeMinor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a string is not a Kubernetes minor.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a Kubernetes minor (expected MAJOR.MINOR such as `1.37`)")]
pub struct BadMinor(pub String);

impl FromStr for KubeMinor {
    type Err = BadMinor;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().trim_start_matches('v');
        let (a, b) = t.split_once('.').ok_or_else(|| BadMinor(s.to_string()))?;
        let major = a.parse().map_err(|_| BadMinor(s.to_string()))?;
        let minor = b.parse().map_err(|_| BadMinor(s.to_string()))?;
        Ok(Self { major, minor })
    }
}

impl Serialize for KubeMinor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KubeMinor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A Flux distribution version such as `v2.9.4`; displayed with the leading `v`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FluxVersion(pub semver::Version);

impl FluxVersion {
    /// The `major.minor` line, e.g. `2.9`.
    pub fn minor_line(&self) -> String {
        format!("{}.{}", self.0.major, self.0.minor)
    }
}

impl fmt::Display for FluxVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// Why a string is not a Flux version.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a Flux version (expected vMAJOR.MINOR.PATCH such as `v2.9.4`)")]
pub struct BadFluxVersion(pub String);

impl FromStr for FluxVersion {
    type Err = BadFluxVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        semver::Version::parse(t)
            .map(FluxVersion)
            .map_err(|_| BadFluxVersion(s.to_string()))
    }
}

impl Serialize for FluxVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FluxVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A semver range such as `>=2.7, <3` that also accepts bare minors (`>=1.33`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionRange {
    text: String,
    req: semver::VersionReq,
}

/// Why a string is not a version range.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{text}` is not a version range ({reason}); expected e.g. `>=2.7.0` or `>=1.33, <1.38`")]
pub struct BadRange {
    pub text: String,
    pub reason: String,
}

impl VersionRange {
    pub fn parse(text: &str) -> Result<Self, BadRange> {
        // `v` prefixes are common in Flux docs (`>=v2.7.0`); semver does not accept them.
        let cleaned = text.replace(['v', 'V'], "");
        semver::VersionReq::parse(&cleaned)
            .map(|req| Self {
                text: text.to_string(),
                req,
            })
            .map_err(|e| BadRange {
                text: text.to_string(),
                reason: e.to_string(),
            })
    }

    pub fn matches(&self, v: &semver::Version) -> bool {
        // Compare release numbers only: `-rc.1` or vendor suffixes must not exclude a version.
        let plain = semver::Version::new(v.major, v.minor, v.patch);
        self.req.matches(&plain)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for VersionRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minors_order_numerically() {
        let a: KubeMinor = "1.9".parse().unwrap();
        let b: KubeMinor = "1.10".parse().unwrap();
        assert!(a < b);
        assert_eq!(b.to_string(), "1.10");
    }

    #[test]
    fn minor_of_vendor_versions() {
        assert_eq!(
            KubeMinor::of_version("v1.33.12-eks-a1b2"),
            Some(KubeMinor::new(1, 33))
        );
        assert_eq!(
            KubeMinor::of_version("v1.37.0-rc.1"),
            Some(KubeMinor::new(1, 37))
        );
        assert_eq!(KubeMinor::of_version("1.30+"), Some(KubeMinor::new(1, 30)));
        assert_eq!(KubeMinor::of_version("garbage"), None);
    }

    #[test]
    fn bad_minor_is_an_error() {
        assert!("1".parse::<KubeMinor>().is_err());
        assert!("one.two".parse::<KubeMinor>().is_err());
    }

    #[test]
    fn flux_versions_accept_v_prefix() {
        let v: FluxVersion = "v2.9.4".parse().unwrap();
        assert_eq!(v.to_string(), "v2.9.4");
        assert_eq!(v.minor_line(), "2.9");
        assert!("2.9".parse::<FluxVersion>().is_err());
    }

    #[test]
    fn ranges_accept_minors_and_v_prefix() {
        let r = VersionRange::parse(">=v2.7.0, <3").unwrap();
        assert!(r.matches(&semver::Version::new(2, 9, 4)));
        assert!(!r.matches(&semver::Version::new(2, 6, 9)));
        let k = VersionRange::parse(">=1.33").unwrap();
        assert!(k.matches(&KubeMinor::new(1, 33).as_semver()));
        assert!(!k.matches(&KubeMinor::new(1, 32).as_semver()));
        let pre = semver::Version::parse("1.37.0-rc.1").unwrap();
        assert!(k.matches(&pre));
        assert!(VersionRange::parse(">>2").is_err());
    }
}
