//! Rendering an error with its causes (`failed: cause: cause`) for messages and reports, and
//! making any text safe for one terminal line. Pure; the one place this formatting lives.

use std::borrow::Cow;

/// `error: source: source`, following `source()` to the end.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(x) = cur {
        s.push_str(": ");
        s.push_str(&x.to_string());
        cur = x.source();
    }
    s
}

/// Whether `c` must not reach a terminal as is: C0 and C1 controls, DEL, and the Unicode
/// bidirectional and zero-width controls that reorder or hide text.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character escaped (`\n`, `\t`, `\u{1b}`), so it stays one line and
/// cannot move the cursor, change colours or reorder what follows.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("read `matrix.yaml`")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            super::escape_controls("a\nb\u{1b}[31mc\u{202e}d"),
            "a\\nb\\u{1b}[31mc\\u{202e}d"
        );
        assert!(matches!(
            super::escape_controls("plain"),
            super::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn joins_every_cause() {
        let e = Outer(std::io::Error::other("permission denied"));
        assert_eq!(super::chain(&e), "read `matrix.yaml`: permission denied");
    }
}
