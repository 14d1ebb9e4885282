//! Registry tokens: read from an environment variable or a file only (never argv), and opaque
//! everywhere else: `Debug` and `Display` print a mask, so a token cannot leak into logs or reports.

use std::path::Path;

/// A secret value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
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
            .map(Secret)
    }

    /// Read from a file (trailing newline stripped). The message names the file, never content.
    pub fn from_file(path: &Path) -> Result<Secret, String> {
        let v = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read registry token file `{}`: {e}", path.display()))?;
        let v = v.trim();
        if v.is_empty() {
            return Err(format!("registry token file `{}` is empty", path.display()));
        }
        Ok(Secret(v.to_string()))
    }

    /// Replace every occurrence of the secret in `text` (diagnostics, captured output).
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.0, "***")
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
