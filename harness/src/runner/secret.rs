//! Registry tokens: read from an environment variable or a file only (never argv), and opaque
//! everywhere else: `Debug` and `Display` print a mask, and every value is registered with the
//! redaction layer (`crate::redact`) the moment it exists, so no sink can print any encoding of it.

use std::path::Path;

/// A secret value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        crate::redact::register(&value);
        Self(value)
    }

    /// The value, for the one place that must send it (a pull secret's data).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Read from environment variable `var`; unset or empty is `None`.
    pub fn from_env(var: &str) -> Option<Secret> {
        std::env::var(var)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(Secret::new)
    }

    /// Read from a file (trailing newline stripped): a regular file of at most 64 KiB. The
    /// message names the file, never content.
    pub fn from_file(path: &Path) -> Result<Secret, String> {
        let v = crate::config::source::read_text(path, 64 << 10)
            .map_err(|e| format!("cannot read registry token file `{}`: {e}", path.display()))?;
        let v = v.trim();
        if v.is_empty() {
            return Err(format!("registry token file `{}` is empty", path.display()));
        }
        Ok(Secret::new(v))
    }

    /// Mask every encoding of every registered secret in `text` (the one redaction layer).
    pub fn redact(&self, text: &str) -> String {
        crate::redact::text(text).into_owned()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let s = Secret::new("canary-123");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.redact("x canary-123 y"), "x *** y");
    }
}
