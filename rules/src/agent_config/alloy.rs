//! Grafana Alloy's configuration syntax into a tree:
//!
//! ```text
//! {blocks: [{name: "discovery.kubernetes", label: "pods",
//!            body: {role: "pod", selectors: [{role: "pod", field: "..."}]}}]}
//! ```
//!
//! Attributes whose value is a literal (string, number, boolean, array,
//! object) keep their value; any other expression is kept as its source text
//! (`"spec.nodeName=" + sys.env("HOSTNAME")`), which is what conditions need.
//! Nested blocks become lists under their name.

use super::{ConfigError, entry, map, push_to_list, seq, span, string};
use apiload_yaml::{Entry, Node, Span, Value};

pub fn parse(text: &str) -> Result<Node, ConfigError> {
    let mut p = Parser { src: text, pos: 0, depth: 0 };
    let (entries, _) = p.body(false)?;
    let mut top = Vec::new();
    let mut blocks = Vec::new();
    for e in entries {
        match e {
            Item::Block(b) => blocks.push(b),
            Item::Attr(a) => top.push(a),
        }
    }
    top.insert(0, entry("blocks", span(0, 0), seq(blocks, span(0, text.len()))));
    Ok(map(top, span(0, text.len())))
}

enum Item {
    Block(Node),
    Attr(Entry),
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 64;

impl<'a> Parser<'a> {
    fn err<T>(&self, msg: impl Into<String>) -> Result<T, ConfigError> {
        Err(ConfigError::new(self.pos, format!("Alloy: {}", msg.into())))
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Skips blanks and comments; newlines too when `newlines`.
    fn skip(&mut self, newlines: bool) {
        loop {
            let r = self.rest();
            if r.starts_with("//") || r.starts_with('#') {
                self.pos += r.find('\n').unwrap_or(r.len());
            } else if r.starts_with("/*") {
                self.pos += r.find("*/").map_or(r.len(), |i| i + 2);
            } else if let Some(c) = self.peek() {
                if c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n') {
                    self.pos += 1;
                } else {
                    return;
                }
            } else {
                return;
            }
        }
    }

    fn ident(&mut self) -> Option<(String, Span)> {
        let start = self.pos;
        let len =
            self.rest().find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')).unwrap_or(self.rest().len());
        if len == 0 {
            return None;
        }
        self.pos += len;
        Some((self.src[start..self.pos].to_string(), span(start, self.pos)))
    }

    /// A block body (or the file when `in_block` is false), up to its `}`.
    fn body(&mut self, in_block: bool) -> Result<(Vec<Item>, usize), ConfigError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("blocks nested too deeply");
        }
        let mut items = Vec::new();
        loop {
            self.skip(true);
            match self.peek() {
                None if in_block => return self.err("block is never closed with `}`"),
                None => break,
                Some('}') if in_block => {
                    self.pos += 1;
                    break;
                }
                _ => {}
            }
            let Some((name, name_span)) = self.ident() else {
                return self.err(format!("unexpected `{}`", self.peek().unwrap_or(' ')));
            };
            self.skip(false);
            match self.peek() {
                Some('=') => {
                    self.pos += 1;
                    self.skip(false);
                    let value = self.expr(&['\n', '}'])?;
                    items.push(Item::Attr(entry(&name, name_span, value)));
                }
                Some('"') | Some('{') => {
                    let label = if self.peek() == Some('"') {
                        let s = self.string_literal()?;
                        self.skip(false);
                        Some(s)
                    } else {
                        None
                    };
                    if self.peek() != Some('{') {
                        return self.err(format!("expected `{{` after block `{name}`"));
                    }
                    self.pos += 1;
                    let (inner, end) = self.body(true)?;
                    let mut fields = Vec::new();
                    let mut blocks: Vec<Entry> = Vec::new();
                    for i in inner {
                        match i {
                            Item::Attr(a) => fields.push(a),
                            Item::Block(b) => {
                                let bname = b.get("name").and_then(Node::as_str).unwrap_or("").to_string();
                                let bspan = b.span;
                                let body = b.get("body").cloned().unwrap_or_else(|| map(Vec::new(), bspan));
                                push_to_list(&mut blocks, &bname, bspan, body);
                            }
                        }
                    }
                    fields.extend(blocks);
                    let whole = span(name_span.start as usize, end);
                    let mut block = vec![entry("name", name_span, string(&name, name_span))];
                    if let Some((label, lspan)) = label {
                        block.push(entry("label", lspan, string(&label, lspan)));
                    }
                    block.push(entry("body", name_span, map(fields, whole)));
                    items.push(Item::Block(map(block, whole)));
                }
                _ => return self.err(format!("expected `=` or a block after `{name}`")),
            }
        }
        self.depth -= 1;
        Ok((items, self.pos))
    }

    fn string_literal(&mut self) -> Result<(String, Span), ConfigError> {
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        chars.next(); // opening quote
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok((out, span(start, self.pos)));
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, other)) => out.push(other),
                    None => break,
                },
                '\n' => break,
                c => out.push(c),
            }
        }
        self.err("unterminated string")
    }

    /// An expression ending before one of `ends` at nesting depth 0.
    fn expr(&mut self, ends: &[char]) -> Result<Node, ConfigError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("expression nested too deeply");
        }
        let start = self.pos;
        let end = self.expr_end(ends)?;
        let text = self.src[start..end].trim_end();
        let whole = span(start, start + text.len());
        let node = if text.starts_with('[') && text.ends_with(']') && self.balanced_at(start, start + text.len()) {
            self.pos += 1;
            let mut items = Vec::new();
            loop {
                self.skip(true);
                if self.peek() == Some(']') {
                    self.pos += 1;
                    break;
                }
                items.push(self.expr(&[',', ']'])?);
                self.skip(true);
                if self.peek() == Some(',') {
                    self.pos += 1;
                }
            }
            Node::new(Value::Seq(items.into()), whole)
        } else if text.starts_with('{') && text.ends_with('}') && self.balanced_at(start, start + text.len()) {
            self.pos += 1;
            let mut entries = Vec::new();
            loop {
                self.skip(true);
                if self.peek() == Some('}') {
                    self.pos += 1;
                    break;
                }
                let (key, kspan) = if self.peek() == Some('"') {
                    self.string_literal()?
                } else {
                    self.ident().ok_or_else(|| ConfigError::new(self.pos, "Alloy: expected an object key"))?
                };
                self.skip(false);
                if self.peek() != Some('=') {
                    return self.err("expected `=` in object");
                }
                self.pos += 1;
                self.skip(false);
                entries.push(entry(&key, kspan, self.expr(&[',', '}', '\n'])?));
                self.skip(true);
                if self.peek() == Some(',') {
                    self.pos += 1;
                }
            }
            Node::new(Value::Map(entries.into()), whole)
        } else {
            self.pos = end;
            literal(text, whole)
        };
        self.pos = self.pos.max(start + text.len());
        self.depth -= 1;
        Ok(node)
    }

    /// True when the bracket opening at `start` closes exactly at `end - 1`.
    fn balanced_at(&self, start: usize, end: usize) -> bool {
        let probe = Parser { src: self.src, pos: start + 1, depth: 0 };
        let close = if self.src[start..].starts_with('[') { ']' } else { '}' };
        probe.expr_end(&[close]).is_ok_and(|e| e == end - 1)
    }

    /// Where the expression starting at `pos` ends.
    fn expr_end(&self, ends: &[char]) -> Result<usize, ConfigError> {
        let mut depth = 0i32;
        let mut iter = self.rest().char_indices().peekable();
        while let Some((i, c)) = iter.next() {
            match c {
                '"' => {
                    let mut closed = false;
                    while let Some((_, d)) = iter.next() {
                        if d == '\\' {
                            iter.next();
                        } else if d == '"' {
                            closed = true;
                            break;
                        }
                    }
                    if !closed {
                        return Err(ConfigError::new(self.pos + i, "Alloy: unterminated string"));
                    }
                }
                '/' if matches!(iter.peek(), Some((_, '/'))) && depth == 0 => return Ok(self.pos + i),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' if depth > 0 => depth -= 1,
                c if depth == 0 && ends.contains(&c) => return Ok(self.pos + i),
                ')' | ']' | '}' => return Err(ConfigError::new(self.pos + i, format!("Alloy: unexpected `{c}`"))),
                _ => {}
            }
        }
        if depth != 0 {
            return Err(ConfigError::new(self.src.len(), "Alloy: unbalanced brackets"));
        }
        Ok(self.src.len())
    }
}

fn literal(text: &str, whole: Span) -> Node {
    if text.len() >= 2 && text.starts_with('"') && text.ends_with('"') && !text[1..text.len() - 1].contains('"') {
        return string(&text[1..text.len() - 1].replace("\\\\", "\\"), whole);
    }
    match text {
        "true" => return Node::new(Value::Bool(true), whole),
        "false" => return Node::new(Value::Bool(false), whole),
        "null" => return Node::new(Value::Null, whole),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Node::new(Value::Int(i), whole);
    }
    if let Ok(f) = text.parse::<f64>() {
        return Node::new(Value::Float(f), whole);
    }
    string(text, whole)
}
