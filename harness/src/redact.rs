//! The one redaction layer. Every secret the harness holds (the registry token, the fixture
//! plane's per-run passwords) is registered here together with every encoding the harness itself
//! produces from it: the raw value, base64 of the value, of `user:value` and of the
//! dockerconfigjson built from it, each standard and URL-safe, padded and unpadded, and the JSON
//! string form. Every sink (stderr, `tracing` logs at any level, reports, diagnostics, artifacts)
//! passes its text through [`text`] before it leaves the process, so a server that echoes a Secret
//! back in an error cannot carry the token into a terminal or a file.
//!
//! The registry is process-wide because the sinks are: the log writer is installed before any
//! secret is read, and reports and diagnostics are written from many tasks.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use std::borrow::Cow;
use std::sync::RwLock;

/// What a secret is replaced with.
pub const MASK: &str = "***";

static NEEDLES: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Every encoding of `bytes` in base64 the harness could produce (four alphabets/paddings).
fn base64_forms(bytes: &[u8]) -> [String; 4] {
    [
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ]
}

/// The forms of one secret value: raw, JSON-escaped, and base64 of the value.
fn forms_of(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string()];
    let json = serde_json::to_string(value).unwrap_or_default();
    out.push(json.trim_matches('"').to_string());
    out.extend(base64_forms(value.as_bytes()));
    out
}

fn add(needles: Vec<String>) {
    let mut all = NEEDLES.write().unwrap_or_else(|p| p.into_inner());
    for n in needles {
        if !n.is_empty() && !all.contains(&n) {
            all.push(n);
        }
    }
    // Longest first: a dockerconfigjson holding the token is masked whole, not around the token.
    all.sort_by_key(|n| std::cmp::Reverse(n.len()));
}

/// Register a secret and its own encodings.
pub fn register(secret: &str) {
    add(forms_of(secret));
}

/// Register a credential pair: the password's forms plus `user:password` in base64 (HTTP basic
/// auth, the `auth` field of a dockerconfigjson).
pub fn register_credentials(username: &str, password: &str) {
    let mut needles = forms_of(password);
    needles.extend(base64_forms(format!("{username}:{password}").as_bytes()));
    add(needles);
}

/// Register a document the harness builds around a secret (a dockerconfigjson): the text itself
/// and its base64 forms, as it travels in a Secret's `data`.
pub fn register_document(document: &str) {
    add(forms_of(document));
}

/// `text` with every registered needle masked.
pub fn text(text: &str) -> Cow<'_, str> {
    let needles = NEEDLES.read().unwrap_or_else(|p| p.into_inner());
    if !needles.iter().any(|n| text.contains(n.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for n in needles.iter() {
        if out.contains(n.as_str()) {
            out = out.replace(n.as_str(), MASK);
        }
    }
    Cow::Owned(out)
}

/// Owned convenience for `Option<String>` fields.
pub fn owned(s: String) -> String {
    match text(&s) {
        Cow::Borrowed(_) => s,
        Cow::Owned(o) => o,
    }
}

/// Whether any registered needle occurs in `bytes` (for files that are not text).
pub fn contains_secret(bytes: &[u8]) -> bool {
    let needles = NEEDLES.read().unwrap_or_else(|p| p.into_inner());
    needles
        .iter()
        .any(|n| bytes.windows(n.len()).any(|w| w == n.as_bytes()))
}

/// Every registered needle (diagnostics that scrub with their own list take these).
pub fn needles() -> Vec<String> {
    NEEDLES.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// A writer that masks secrets in everything written through it, for `tracing` and any other
/// stream. Each `write` is redacted as a whole; `tracing`'s formatter writes one event per call.
pub struct Writer<W>(pub W);

impl<W: std::io::Write> std::io::Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let s = String::from_utf8_lossy(buf);
        self.0.write_all(text(&s).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// `eprintln!` through the redaction layer: the one way the application prints to stderr.
#[macro_export]
macro_rules! eprintln_redacted {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        eprintln!("{}", $crate::redact::text(&line));
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_is_masked_and_context_kept() {
        let token = "redact-unit-Zq9+/x";
        register_credentials("flux", token);
        let b64 = STANDARD.encode(format!("flux:{token}"));
        let url = URL_SAFE_NO_PAD.encode(token);
        let msg = format!("rejected {token} and {b64} and {url}.");
        assert_eq!(text(&msg), "rejected *** and *** and ***.");
        assert!(matches!(text("nothing here"), Cow::Borrowed(_)));
        assert!(contains_secret(token.as_bytes()));
    }
}
