//! Diagnostics (`file:line:col: message`) and typed deserialisation that turns every serde error
//! into one, continuing past unknown fields so a file's problems are reported together.

use super::yaml::{Document, Pos, YamlProblem};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display().to_string();
        write!(
            f,
            "{}:{}:{}: {}",
            crate::errors::escape_controls(&file),
            self.pos.line,
            self.pos.col,
            self.message
        )
    }
}

/// Longest quoted value kept whole in a message.
const MAX_QUOTE: usize = 80;

/// A value quoted in a message (between backticks or double quotes): its first line, at most
/// [`MAX_QUOTE`] characters, so a message never carries a whole file or block of one.
fn shorten(quoted: &str) -> String {
    let first = quoted.split(['\n', '\r']).next().unwrap_or("");
    let cut: String = first.chars().take(MAX_QUOTE).collect();
    if cut.len() < quoted.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// A message made safe for one terminal line: every quoted value shortened (see [`shorten`]) and
/// every control character escaped. Applied to every diagnostic as it is recorded.
pub fn sanitise(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(['`', '"']) {
        let quote = rest.as_bytes()[i] as char;
        out.push_str(&rest[..=i]);
        let after = &rest[i + 1..];
        // Inside double quotes (serde's `string "..."`), a backslash escapes the next character.
        let mut end = None;
        let mut escaped = false;
        for (j, c) in after.char_indices() {
            match c {
                '\\' if quote == '"' && !escaped => escaped = true,
                c if c == quote && !escaped => {
                    end = Some(j);
                    break;
                }
                _ => escaped = false,
            }
        }
        match end {
            Some(j) => {
                out.push_str(&shorten(&after[..j]));
                out.push(quote);
                rest = &after[j + 1..];
            }
            None => {
                rest = after;
                break;
            }
        }
    }
    out.push_str(rest);
    crate::errors::escape_controls(&out).into_owned()
}

/// Problems collected across files.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, file: &Path, pos: Pos, message: impl Into<String>) {
        self.items.push(Diagnostic {
            file: file.to_path_buf(),
            pos,
            message: sanitise(&message.into()),
        });
    }

    pub fn yaml(&mut self, file: &Path, problems: Vec<YamlProblem>) {
        for p in problems {
            self.push(file, p.pos, p.message);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Sorted by file and position, duplicates removed.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort();
        self.items.dedup();
        self.items
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }
}

#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

fn segments(path: &serde_path_to_error::Path) -> Vec<Seg> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(Seg::Key(key.clone())),
            Segment::Seq { index } => Some(Seg::Index(*index)),
            Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

fn render(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => out = super::yaml::join_key(&out, k),
            Seg::Index(i) => out = super::yaml::join_index(&out, *i),
        }
    }
    out
}

fn remove_at(value: &mut Value, segs: &[Seg]) -> bool {
    let Some((last, parents)) = segs.split_last() else {
        return false;
    };
    let mut cur = value;
    for s in parents {
        cur = match (s, cur) {
            (Seg::Key(k), Value::Object(m)) => match m.get_mut(k) {
                Some(v) => v,
                None => return false,
            },
            (Seg::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, cur) {
        (Seg::Key(k), Value::Object(m)) => m.remove(k).is_some(),
        _ => false,
    }
}

/// Deserialize `value` (at `base` inside `doc`) into `T`, recording problems. Unknown fields are
/// reported and dropped so the rest of the document is still checked; the first other error
/// ends the attempt. Returns the value when it could be built (even if unknown fields were
/// dropped: the caller's diagnostics are then non-empty and the load fails anyway).
pub fn deserialize<T: DeserializeOwned>(
    doc: &Document,
    value: &Value,
    base: &str,
    file: &Path,
    diags: &mut Diagnostics,
) -> Option<T> {
    let mut value = value.clone();
    for _ in 0..200 {
        match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(t) => return Some(t),
            Err(err) => {
                let mut segs = segments(err.path());
                let message = err.inner().to_string();
                if let Some(field) = unknown_field(&message) {
                    if !matches!(segs.last(), Some(Seg::Key(k)) if k == field) {
                        segs.push(Seg::Key(field.to_string()));
                    }
                    let path = join(base, &render(&segs));
                    diags.push(file, doc.pos(&path), message);
                    if remove_at(&mut value, &segs) {
                        continue;
                    }
                    return None;
                }
                let path = join(base, &render(&segs));
                diags.push(file, doc.value_pos(&path), with_hint(message));
                return None;
            }
        }
    }
    None
}

fn join(base: &str, rel: &str) -> String {
    match (base.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (_, true) => base.to_string(),
        _ if rel.starts_with('[') => format!("{base}{rel}"),
        _ => format!("{base}.{rel}"),
    }
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn with_hint(message: String) -> String {
    if message.contains("invalid type: floating point") && message.contains("expected a string") {
        format!("{message} (quote it: YAML reads an unquoted 1.30 as the number 1.3)")
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse_single;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Inner {
        name: String,
        #[serde(default)]
        count: u32,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[test]
    fn every_unknown_field_is_reported_with_its_position() {
        let text = "items:\n  - name: a\n    colour: red\n  - name: b\n    size: 2\n";
        let doc = parse_single(text).unwrap();
        let mut d = Diagnostics::default();
        let out: Option<Outer> = deserialize(&doc, &doc.value, "", Path::new("m.yaml"), &mut d);
        assert!(out.is_some());
        let all: Vec<String> = d.into_sorted().iter().map(|x| x.to_string()).collect();
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(
            all[0].starts_with("m.yaml:3:5: unknown field `colour`"),
            "{}",
            all[0]
        );
        assert!(
            all[1].starts_with("m.yaml:5:5: unknown field `size`"),
            "{}",
            all[1]
        );
    }

    #[test]
    fn type_errors_point_at_the_value() {
        let doc = parse_single("items:\n  - name: a\n    count: many\n").unwrap();
        let mut d = Diagnostics::default();
        let out: Option<Outer> = deserialize(&doc, &doc.value, "", Path::new("m.yaml"), &mut d);
        assert!(out.is_none());
        let all = d.into_sorted();
        assert_eq!(all[0].pos, Pos { line: 3, col: 12 });
        assert!(
            all[0].message.contains("invalid type"),
            "{}",
            all[0].message
        );
    }

    #[test]
    fn quoted_values_are_one_short_line_and_controls_escaped() {
        let long = "x".repeat(200);
        let m = sanitise(&format!(
            "invalid type: string \"tok\\\"en\\nline2 {long}\", expected `a\nb` \u{1b}[2J"
        ));
        assert!(!m.contains('\n') && !m.contains('\u{1b}'), "{m}");
        assert!(m.contains('…') && m.len() < 200, "{m}");
        assert!(m.contains("`a…`"), "{m}");
        assert!(m.ends_with("\\u{1b}[2J"), "{m}");
        // Known-value lists (many short quotes) stay whole.
        let list = "known: `a`, `b`, `c`";
        assert_eq!(sanitise(list), list);
    }

    #[test]
    fn missing_fields_point_at_the_enclosing_mapping() {
        let doc = parse_single("items:\n  - count: 1\n").unwrap();
        let mut d = Diagnostics::default();
        let _: Option<Outer> = deserialize(&doc, &doc.value, "", Path::new("m.yaml"), &mut d);
        let all = d.into_sorted();
        assert!(
            all[0].message.contains("missing field `name`"),
            "{}",
            all[0].message
        );
        assert_eq!(all[0].pos.line, 2);
    }
}
