//! Rewriting `matrix.yaml` in place: the new values go where the old ones were, as text, so
//! every comment, blank line, quote style and key order the update does not change stays byte
//! for byte. Positions come from the YAML index (`config::yaml`); edits are applied bottom-up so
//! earlier positions stay valid.

use crate::config::yaml::{Document, Pos};

/// One change to the text.
#[derive(Clone, Debug)]
enum Edit {
    /// Replace the scalar that starts at `pos` (one line; quotes kept) with `value`.
    Scalar { pos: Pos, value: String },
    /// Remove lines `from..=to` (1-based).
    Delete { from: usize, to: usize },
    /// Insert whole lines before line `at` (1-based; one past the end appends).
    Insert { at: usize, lines: Vec<String> },
}

impl Edit {
    fn line(&self) -> usize {
        match self {
            Edit::Scalar { pos, .. } => pos.line,
            Edit::Delete { from, .. } => *from,
            Edit::Insert { at, .. } => *at,
        }
    }
}

/// Edits collected against one text.
#[derive(Default, Debug)]
pub struct Editor {
    edits: Vec<Edit>,
}

impl Editor {
    pub fn scalar(&mut self, pos: Pos, value: impl Into<String>) {
        self.edits.push(Edit::Scalar {
            pos,
            value: value.into(),
        });
    }

    pub fn delete(&mut self, from: usize, to: usize) {
        self.edits.push(Edit::Delete { from, to });
    }

    pub fn insert(&mut self, at: usize, lines: Vec<String>) {
        self.edits.push(Edit::Insert { at, lines });
    }

    /// Apply every edit to `text`.
    pub fn apply(self, text: &str) -> String {
        let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        // Bottom-up; on one line inserts go last so they land before the edited line, and
        // inserts at one line go in the order they were asked for (the later applied first).
        let mut edits: Vec<(usize, Edit)> = self.edits.into_iter().enumerate().collect();
        edits.sort_by_key(|(i, e)| {
            std::cmp::Reverse((e.line(), !matches!(e, Edit::Insert { .. }), *i))
        });
        for (_, e) in edits {
            match e {
                Edit::Scalar { pos, value } => {
                    if let Some(l) = lines.get_mut(pos.line - 1) {
                        *l = replace_scalar(l, pos.col, &value);
                    }
                }
                Edit::Delete { from, to } => {
                    lines.drain(from - 1..to.min(lines.len()));
                }
                Edit::Insert { at, lines: new } => {
                    let at = (at - 1).min(lines.len());
                    lines.splice(at..at, new);
                }
            }
        }
        lines.join("\n")
    }
}

/// `line` with the scalar starting at byte column `col` (1-based) replaced by `value`, in the
/// same quote style; a trailing comment stays.
fn replace_scalar(line: &str, col: usize, value: &str) -> String {
    let start = (col - 1).min(line.len());
    let rest = &line[start..];
    let (len, quoted) = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => (rest[1..].find(q).map_or(rest.len(), |i| i + 2), Some(q)),
        _ => {
            let end = rest.find(" #").unwrap_or(rest.len());
            let end = rest[..end]
                .find([',', '}', ']'])
                .filter(|_| is_flow(line, start))
                .unwrap_or(end);
            (rest[..end].trim_end().len(), None)
        }
    };
    let new = match quoted {
        Some(q) => format!("{q}{value}{q}"),
        None => value.to_string(),
    };
    format!("{}{new}{}", &line[..start], &rest[len..])
}

/// Whether position `start` is inside a flow collection (`{...}` or `[...]`) on this line.
fn is_flow(line: &str, start: usize) -> bool {
    let before = &line[..start];
    before.matches(['{', '[']).count() > before.matches(['}', ']']).count()
}

/// The last line any value of the node at `path` (and everything under it) sits on.
pub fn last_line(doc: &Document, path: &str) -> usize {
    doc.spans
        .iter()
        .filter(|(p, _)| {
            *p == path || p.starts_with(&format!("{path}.")) || p.starts_with(&format!("{path}["))
        })
        .map(|(_, s)| s.value.line.max(s.key.map_or(0, |k| k.line)))
        .max()
        .unwrap_or(doc.value_pos(path).line)
}

/// The text of line `n` (1-based) of `text`.
pub fn line_of(text: &str, n: usize) -> &str {
    text.split('\n').nth(n - 1).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_keep_quotes_and_comments() {
        assert_eq!(
            replace_scalar("  - minor: \"1.32\"  # old", 12, "1.38"),
            "  - minor: \"1.38\"  # old"
        );
        assert_eq!(
            replace_scalar("kindVersion: v0.33.0 # pinned", 14, "v0.34.0"),
            "kindVersion: v0.34.0 # pinned"
        );
        assert_eq!(
            replace_scalar("a: {tag: v1, digest: x}", 10, "v2"),
            "a: {tag: v2, digest: x}"
        );
    }

    #[test]
    fn edits_apply_bottom_up() {
        let text = "a: 1\nb: 2\nc: 3\n";
        let mut e = Editor::default();
        e.scalar(Pos { line: 1, col: 4 }, "9");
        e.delete(2, 2);
        e.insert(3, vec!["x: 0".into()]);
        e.insert(4, vec!["z: 5".into()]);
        e.insert(4, vec!["z: 6".into()]);
        assert_eq!(e.apply(text), "a: 9\nx: 0\nc: 3\nz: 5\nz: 6\n");
    }
}
