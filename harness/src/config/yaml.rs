//! YAML with positions: parses documents into JSON values plus an index from each value's path
//! (`channels[1].images`) to its `line:col`, so every validation problem can point into the file.
//! Built on yaml-rust2's marked events; scalars resolve by the YAML 1.2 core schema.

use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based position in a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn of(m: &Marker) -> Self {
        Pos {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

/// Where a value sits, and where its key sits when it is a mapping value.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    pub key: Option<Pos>,
    pub value: Pos,
    /// Block scalars (`|`, `>`): the parser marks them at their first content line and column.
    pub block_scalar: bool,
}

/// One parsed YAML document.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    pub spans: HashMap<String, Span>,
    pub start: Pos,
}

impl Document {
    /// The best position for a path: the key for mapping entries, else the value; walks up to the
    /// nearest known ancestor when the path itself is not in the document (a missing field).
    pub fn pos(&self, path: &str) -> Pos {
        let mut p = path.to_string();
        loop {
            if let Some(s) = self.spans.get(&p) {
                return s.key.unwrap_or(s.value);
            }
            match parent(&p) {
                Some(up) => p = up,
                None => return self.start,
            }
        }
    }

    /// The position of a value (not its key).
    pub fn value_pos(&self, path: &str) -> Pos {
        self.spans
            .get(path)
            .map(|s| s.value)
            .unwrap_or_else(|| self.pos(path))
    }

    /// The value at a path such as `spec.steps[1]` (keys containing `.` or `[` are not addressable).
    pub fn value_at(&self, path: &str) -> Option<&Value> {
        let mut cur = &self.value;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let (key, indices) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !key.is_empty() {
                cur = cur.get(key)?;
            }
            for idx in indices.split(['[', ']']).filter(|x| !x.is_empty()) {
                cur = cur.get(idx.parse::<usize>().ok()?)?;
            }
        }
        Some(cur)
    }

    /// The position in the file of line `n` (1-based) inside a block scalar at `path`.
    pub fn line_inside(&self, path: &str, n: usize) -> Pos {
        self.pos_inside(path, n, 1)
    }

    /// The position in the file of line `n`, column `col` (both 1-based) of a block scalar's
    /// content at `path`; the value's own position for other scalars.
    pub fn pos_inside(&self, path: &str, n: usize, col: usize) -> Pos {
        match self.spans.get(path) {
            Some(s) if s.block_scalar => Pos {
                line: s.value.line + n - 1,
                col: s.value.col + col - 1,
            },
            Some(s) => s.value,
            None => self.pos(path),
        }
    }
}

/// The parent of a path: `a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``.
pub fn parent(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(path[..cut].to_string())
}

/// Join a key onto a path.
pub fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Join an index onto a path.
pub fn join_index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A YAML syntax error or a structural problem (non-scalar key, duplicate key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlProblem {
    pub pos: Pos,
    pub message: String,
}

#[derive(Debug)]
enum Node {
    Scalar(String, TScalarStyle, bool, Marker),
    Seq(Vec<Node>, Marker),
    Map(Vec<(Node, Node)>, Marker),
}

impl Clone for Node {
    fn clone(&self) -> Self {
        match self {
            Node::Scalar(s, st, tagged, m) => Node::Scalar(s.clone(), *st, *tagged, *m),
            Node::Seq(v, m) => Node::Seq(v.clone(), *m),
            Node::Map(v, m) => Node::Map(v.clone(), *m),
        }
    }
}

/// Most nodes a stream may expand to, every copy an alias makes counted: a 1 KB "billion
/// laughs" document must fail here instead of growing to gigabytes.
pub const MAX_NODES: usize = 200_000;
/// Most scalar bytes a stream may expand to.
pub const MAX_SCALAR_BYTES: usize = 16 << 20;
/// Deepest nesting of sequences and mappings (aliases included); keeps every recursive walk
/// over the tree (conversion, deserialisation, drop) far from the stack limit.
pub const MAX_DEPTH: usize = 100;

/// Size of a finished subtree: nodes, scalar bytes, height.
#[derive(Clone, Copy, Default)]
struct Size {
    nodes: usize,
    bytes: usize,
    height: usize,
}

impl Size {
    fn add_child(&mut self, c: Size) {
        self.nodes += c.nodes;
        self.bytes += c.bytes;
        self.height = self.height.max(c.height + 1);
    }
}

#[derive(Default)]
struct Builder {
    docs: Vec<(Node, Marker)>,
    /// Open collections with their anchor and the size gathered so far.
    stack: Vec<(Node, usize, Size)>,
    anchors: HashMap<usize, (Node, Size)>,
    doc_start: Option<Marker>,
    pending_key: Vec<Option<Node>>,
    problems: Vec<YamlProblem>,
    /// Everything materialised so far, alias copies included.
    total: Size,
    /// A problem that ends the parse (budget or depth exceeded).
    fatal: Option<YamlProblem>,
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize, size: Size) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => {
                let start = self.doc_start.unwrap_or(*marker_of(&node));
                self.docs.push((node, start));
            }
            Some((Node::Seq(items, _), _, s)) => {
                s.add_child(size);
                items.push(node)
            }
            Some((Node::Map(entries, _), _, s)) => {
                s.add_child(size);
                let slot = self.pending_key.last_mut().expect("map has a key slot");
                match slot.take() {
                    None => *slot = Some(node),
                    Some(key) => entries.push((key, node)),
                }
            }
            Some((Node::Scalar(..), _, _)) => unreachable!("scalars are never on the stack"),
        }
    }

    /// Count `size` more materialised content; false (and a fatal problem) past the budget.
    fn charge(&mut self, size: Size, mark: &Marker) -> bool {
        self.total.nodes += size.nodes;
        self.total.bytes += size.bytes;
        let depth = self.stack.len() + size.height;
        let message = if self.total.nodes > MAX_NODES {
            format!(
                "alias expansion exceeds the budget of {MAX_NODES} nodes; the document expands aliases too far"
            )
        } else if self.total.bytes > MAX_SCALAR_BYTES {
            format!(
                "alias expansion exceeds the budget of {MAX_SCALAR_BYTES} bytes of text; the document expands aliases too far"
            )
        } else if depth > MAX_DEPTH {
            format!("nesting deeper than {MAX_DEPTH} levels")
        } else {
            return true;
        };
        self.fatal = Some(YamlProblem {
            pos: Pos::of(mark),
            message,
        });
        false
    }

    fn open(&mut self, node: Node, anchor: usize, mark: &Marker) {
        let one = Size {
            nodes: 1,
            bytes: 0,
            height: 1,
        };
        if self.charge(one, mark) {
            self.stack.push((
                node,
                anchor,
                Size {
                    nodes: 1,
                    ..Size::default()
                },
            ));
        }
    }
}

fn marker_of(n: &Node) -> &Marker {
    match n {
        Node::Scalar(_, _, _, m) | Node::Seq(_, m) | Node::Map(_, m) => m,
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::DocumentStart => {
                self.doc_start = Some(mark);
                // Anchors belong to their document.
                self.anchors.clear();
            }
            Event::Scalar(v, style, anchor, tag) => {
                let size = Size {
                    nodes: 1,
                    bytes: v.len(),
                    height: 0,
                };
                if !self.charge(size, &mark) {
                    return;
                }
                // An explicit `!!str` (or any tag) keeps the text as a string.
                let tagged = tag.is_some_and(|t| t.suffix == "str");
                self.push_value(Node::Scalar(v, style, tagged, mark), anchor, size)
            }
            Event::SequenceStart(anchor, _) => {
                self.open(Node::Seq(Vec::new(), mark), anchor, &mark)
            }
            Event::MappingStart(anchor, _) => {
                self.open(Node::Map(Vec::new(), mark), anchor, &mark);
                self.pending_key.push(None);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, anchor, mut size)) = self.stack.pop() {
                    if matches!(node, Node::Map(..)) {
                        self.pending_key.pop();
                    }
                    size.height = size.height.max(1);
                    self.push_value(node, anchor, size);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).map(|(_, s)| *s) {
                Some(size) => {
                    if !self.charge(size, &mark) {
                        return;
                    }
                    let node = self.anchors[&id].0.clone();
                    self.push_value(node, 0, size)
                }
                None => self.problems.push(YamlProblem {
                    pos: Pos::of(&mark),
                    message: "alias refers to an unknown anchor".into(),
                }),
            },
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

/// Parse every document in `text`. Syntax errors stop the parse (YAML cannot resync), so they come
/// back as a single problem, as does exceeding the expansion budget or the nesting depth;
/// structural problems (duplicate keys) are all collected.
pub fn parse(text: &str) -> Result<Vec<Document>, Vec<YamlProblem>> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    // The parser's own event loop, driven here: its document loader recurses once per nesting
    // level, and a budget must be able to stop the stream.
    loop {
        let (ev, mark) = match parser.next_token() {
            Ok(x) => x,
            Err(e) => {
                return Err(vec![YamlProblem {
                    pos: Pos::of(e.marker()),
                    message: format!("malformed YAML: {}", e.info()),
                }]);
            }
        };
        let end = ev == Event::StreamEnd;
        b.on_event(ev, mark);
        if let Some(p) = b.fatal.take() {
            return Err(vec![p]);
        }
        if end {
            break;
        }
    }
    let mut problems = std::mem::take(&mut b.problems);
    let mut docs = Vec::new();
    for (node, start) in std::mem::take(&mut b.docs) {
        let mut spans = HashMap::new();
        let value = convert(&node, "", None, &mut spans, &mut problems);
        docs.push(Document {
            value,
            spans,
            start: Pos::of(&start),
        });
    }
    if problems.is_empty() {
        Ok(docs)
    } else {
        Err(problems)
    }
}

/// Parse a file that must hold exactly one document (an empty file is an error).
pub fn parse_single(text: &str) -> Result<Document, Vec<YamlProblem>> {
    let mut docs = parse(text)?;
    match docs.len() {
        1 => Ok(docs.remove(0)),
        0 => Err(vec![YamlProblem {
            pos: Pos { line: 1, col: 1 },
            message: "the file is empty: expected one YAML document".into(),
        }]),
        n => Err(vec![YamlProblem {
            pos: docs[1].start,
            message: format!("expected one YAML document, found {n}"),
        }]),
    }
}

fn convert(
    node: &Node,
    path: &str,
    key: Option<Pos>,
    spans: &mut HashMap<String, Span>,
    problems: &mut Vec<YamlProblem>,
) -> Value {
    // A mapping is best located by its first key: parsers mark block mappings after that key.
    let m = match node {
        Node::Map(entries, m) => entries.first().map(|(k, _)| marker_of(k)).unwrap_or(m),
        other => marker_of(other),
    };
    let block = matches!(
        node,
        Node::Scalar(_, TScalarStyle::Literal | TScalarStyle::Folded, _, _)
    );
    spans.insert(
        path.to_string(),
        Span {
            key,
            value: Pos::of(m),
            block_scalar: block,
        },
    );
    match node {
        Node::Scalar(s, style, tagged, _) => resolve_scalar(s, *style, *tagged),
        Node::Seq(items, _) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, n)| convert(n, &join_index(path, i), None, spans, problems))
                .collect(),
        ),
        Node::Map(entries, _) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key_pos = Pos::of(marker_of(k));
                let Node::Scalar(ks, _, _, _) = k else {
                    problems.push(YamlProblem {
                        pos: key_pos,
                        message: "mapping keys must be scalars".into(),
                    });
                    continue;
                };
                if map.contains_key(ks) {
                    problems.push(YamlProblem {
                        pos: key_pos,
                        message: format!("duplicate key `{ks}`"),
                    });
                    continue;
                }
                let child = convert(v, &join_key(path, ks), Some(key_pos), spans, problems);
                map.insert(ks.clone(), child);
            }
            Value::Object(map)
        }
    }
}

/// YAML 1.2 core schema resolution for plain scalars; quoted and block scalars are strings.
fn resolve_scalar(s: &str, style: TScalarStyle, tagged_str: bool) -> Value {
    if style != TScalarStyle::Plain || tagged_str {
        return Value::String(s.to_string());
    }
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::String(s.to_string());
        }
        _ => {}
    }
    if is_decimal_int(s) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Number(i.into());
        }
        if let Ok(u) = s.parse::<u64>() {
            return Value::Number(u.into());
        }
    }
    if let Some(hex) = s.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::Number(i.into());
    }
    if let Some(oct) = s.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Value::Number(i.into());
    }
    if is_float(s)
        && let Ok(f) = s.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(s.to_string())
}

fn is_decimal_int(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_float(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((a, b)) => {
            (!a.is_empty() || !b.is_empty())
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = exp.is_none_or(|e| {
        let d = e.strip_prefix(['-', '+']).unwrap_or(e);
        !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())
    });
    mantissa_ok && exp_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_and_positions() {
        let doc = parse_single(
            "a: 1\nb:\n  - x\n  - 'y'\nc: {d: 1.5, e: ~, f: true, g: \"1.30\", h: 1.30}\n",
        )
        .unwrap();
        assert_eq!(
            doc.value,
            json!({"a": 1, "b": ["x", "y"], "c": {"d": 1.5, "e": null, "f": true, "g": "1.30", "h": 1.3}})
        );
        assert_eq!(doc.pos("b[1]"), Pos { line: 4, col: 5 });
        assert_eq!(doc.pos("c.e"), Pos { line: 5, col: 13 });
        assert_eq!(doc.pos("a"), Pos { line: 1, col: 1 });
        assert_eq!(doc.value_pos("a"), Pos { line: 1, col: 4 });
        // missing paths fall back to the nearest ancestor
        assert_eq!(doc.pos("c.zzz.q"), Pos { line: 5, col: 1 });
    }

    #[test]
    fn duplicate_keys_are_all_reported() {
        let err = parse("a: 1\na: 2\nb: {x: 1, x: 2}\n").unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(err[0].pos, Pos { line: 2, col: 1 });
        assert!(err[1].message.contains("duplicate key `x`"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(
            err[0].message.starts_with("malformed YAML"),
            "{}",
            err[0].message
        );
        assert!(err[0].pos.line >= 1);
    }

    #[test]
    fn multi_document_and_aliases() {
        let docs = parse("a: &x {k: v}\nb: *x\n---\nkind: Two\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].value["b"], json!({"k": "v"}));
        assert_eq!(docs[1].start.line, 3);
    }

    #[test]
    fn block_scalar_lines_map_into_the_file() {
        let doc = parse_single("x: 1\nm: |\n  first\n  second\n").unwrap();
        assert_eq!(doc.pos_inside("m", 2, 1), Pos { line: 4, col: 3 });
    }

    #[test]
    fn core_schema_scalars() {
        let doc = parse_single("[0x1f, 0o17, -3, 1e3, .5, yes, '', 12:30]").unwrap();
        assert_eq!(
            doc.value,
            json!([31, 15, -3, 1000.0, 0.5, "yes", "", "12:30"])
        );
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_bounded() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for c in b'b'..=b'j' {
            let (p, c) = ((c - 1) as char, c as char);
            bomb.push_str(&format!(
                "{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            ));
        }
        let err = parse(&bomb).unwrap_err();
        assert!(
            err[0].message.contains("alias expansion exceeds"),
            "{err:?}"
        );
        // Flow nesting stops in the scanner's own limit, block nesting in ours.
        let err = parse(&"[".repeat(100_000)).unwrap_err();
        assert!(err[0].message.contains("recursion limit"), "{err:?}");
        let block: String = (0..150)
            .map(|i| format!("{}- \n", "  ".repeat(i)))
            .collect();
        let err = parse(&block).unwrap_err();
        assert!(err[0].message.contains("nesting deeper"), "{err:?}");
        // Aliases that stack depth are caught too.
        let mut nested = String::from("a: &a [[[[[[[[[[1]]]]]]]]]]\n");
        for c in b'b'..=b'z' {
            let p = (c - 1) as char;
            nested.push_str(&format!(
                "{}: &{} [[[[[[[[[[*{p}]]]]]]]]]]\n",
                c as char, c as char
            ));
        }
        assert!(parse(&nested).is_err());
        // An ordinary anchor still works.
        assert!(parse("a: &x {k: v}\nb: *x\n").is_ok());
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(parse_single("").is_err());
        assert!(parse_single("# only a comment\n").is_err());
    }
}
