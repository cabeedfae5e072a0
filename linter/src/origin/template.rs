//! Go templates as Helm writes them, read just far enough to tell which
//! template line produced which rendered line: each line becomes a pattern
//! (its literal text, with `*` where an action prints something), an action
//! that prints an unknown number of lines (`toYaml … | nindent`), a call of a
//! named template (`include "x" .`, `template "x"`), or nothing (control
//! flow, comments, `define` bodies, which are collected by name instead).

use std::collections::HashMap;

/// A piece of a literal line's pattern.
#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    Text(String),
    /// What an action printed on this line.
    Any,
}

/// What one template line contributes to the output.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// Exactly one output line, matching the pattern.
    Literal(Vec<Piece>),
    /// Any number of output lines (including none).
    Output,
    /// The output of a named template, at this line.
    Call(String),
}

/// A template file: its lines' contributions (1-based line numbers) to the
/// output, and the named templates it defines.
#[derive(Debug, Default)]
pub struct Parsed {
    pub body: Vec<(u32, Line)>,
    pub defines: HashMap<String, Vec<(u32, Line)>>,
}

#[derive(Debug)]
enum Token<'a> {
    Text(&'a str),
    Action(&'a str),
}

/// Cuts a template into text and `{{ … }}` actions, each with the 1-based line it starts on.
fn tokens(text: &str) -> Vec<(u32, Token<'_>)> {
    let mut out = Vec::new();
    let mut line = 1u32;
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find("{{") {
            Some(0) => {
                let end = rest.find("}}").map_or(rest.len(), |i| i + 2);
                let action = &rest[..end];
                out.push((line, Token::Action(action)));
                line += action.matches('\n').count() as u32;
                rest = &rest[end..];
            }
            Some(i) => {
                out.push((line, Token::Text(&rest[..i])));
                line += rest[..i].matches('\n').count() as u32;
                rest = &rest[i..];
            }
            None => {
                out.push((line, Token::Text(rest)));
                rest = "";
            }
        }
    }
    out
}

/// An action's words, without the delimiters and trim markers.
fn inner(action: &str) -> &str {
    let a = action.strip_prefix("{{").unwrap_or(action);
    let a = a.strip_suffix("}}").unwrap_or(a);
    let a = a.strip_prefix('-').unwrap_or(a);
    let a = a.strip_suffix('-').unwrap_or(a);
    a.trim()
}

enum Kind {
    /// Opens a block that ends with `end` (`if`, `range`, `with`).
    Open,
    /// `define "name"` / `block "name"`: opens a named template.
    Define(String, bool),
    End,
    /// Prints nothing (comments, `else`, assignments, `break`).
    Silent,
    /// `template "name"` or an `include "name"` anywhere in a pipeline.
    Call(String),
    /// Prints something.
    Prints,
}

fn quoted_name(s: &str) -> Option<String> {
    let s = s.trim_start();
    let q = s.chars().next().filter(|c| *c == '"' || *c == '`')?;
    let rest = &s[1..];
    rest.find(q).map(|end| rest[..end].to_string())
}

fn kind(action: &str) -> Kind {
    let a = inner(action);
    if a.starts_with("/*") {
        return Kind::Silent;
    }
    let word = a.split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or("");
    match word {
        "if" | "range" | "with" => Kind::Open,
        "define" | "block" => match quoted_name(&a[word.len()..]) {
            Some(name) => Kind::Define(name, word == "block"),
            None => Kind::Open,
        },
        "end" => Kind::End,
        "else" | "break" | "continue" => Kind::Silent,
        "template" => quoted_name(&a[word.len()..]).map_or(Kind::Prints, Kind::Call),
        _ if word.starts_with('$') && (a.contains(":=") || a.contains(" = ")) && !a.contains('|') => Kind::Silent,
        _ => match a.find("include") {
            Some(i) if a[..i].ends_with(|c: char| c.is_whitespace() || c == '(') || i == 0 => {
                quoted_name(&a[i + "include".len()..]).map_or(Kind::Prints, Kind::Call)
            }
            _ => Kind::Prints,
        },
    }
}

/// Where the lines of the template go: the output, or a named template.
enum Target {
    Body,
    Define(String),
}

pub fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    // Per line: its pieces, whether an action on it prints, the call it makes.
    struct Acc {
        pieces: Vec<Piece>,
        literal: bool,
        prints: bool,
        call: Option<String>,
    }
    let mut lines: Vec<(u32, Acc, usize)> = Vec::new(); // (line, acc, index of the target in `targets`)
    let mut targets: Vec<Target> = vec![Target::Body];
    // The block stack: the index of the target a `define` opened, or None.
    let mut stack: Vec<Option<usize>> = Vec::new();
    let mut current = 0usize;
    let mut acc = Acc { pieces: Vec::new(), literal: false, prints: false, call: None };
    let mut acc_line = 1u32;
    let mut acc_target = 0usize;
    let flush = |lines: &mut Vec<(u32, Acc, usize)>, acc: &mut Acc, line: u32, target: usize| {
        let done = std::mem::replace(acc, Acc { pieces: Vec::new(), literal: false, prints: false, call: None });
        lines.push((line, done, target));
    };
    for (line, token) in tokens(text) {
        match token {
            Token::Text(t) => {
                let mut parts = t.split('\n');
                if let Some(first) = parts.next()
                    && !first.is_empty()
                {
                    acc.literal |= !first.trim().is_empty();
                    acc.pieces.push(Piece::Text(first.to_string()));
                }
                let mut l = line;
                for part in parts {
                    flush(&mut lines, &mut acc, acc_line, acc_target);
                    l += 1;
                    acc_line = l;
                    acc_target = current;
                    if !part.is_empty() {
                        acc.literal |= !part.trim().is_empty();
                        acc.pieces.push(Piece::Text(part.to_string()));
                    }
                }
            }
            Token::Action(a) => {
                if acc.pieces.is_empty() && !acc.prints {
                    acc_line = line;
                    acc_target = current;
                }
                match kind(a) {
                    Kind::Open => stack.push(None),
                    Kind::Define(name, is_block) => {
                        targets.push(Target::Define(name));
                        stack.push(Some(current));
                        current = targets.len() - 1;
                        if is_block {
                            // A block is also called where it stands.
                            if let Target::Define(n) = &targets[current] {
                                acc.call = Some(n.clone());
                            }
                        }
                    }
                    Kind::End => {
                        if let Some(Some(outer)) = stack.pop() {
                            current = outer;
                        }
                    }
                    Kind::Silent => {}
                    Kind::Call(name) => {
                        acc.pieces.push(Piece::Any);
                        acc.prints = true;
                        acc.call.get_or_insert(name);
                    }
                    Kind::Prints => {
                        acc.pieces.push(Piece::Any);
                        acc.prints = true;
                    }
                }
            }
        }
    }
    flush(&mut lines, &mut acc, acc_line, acc_target);
    for (line, acc, target) in lines {
        let contribution = if acc.literal {
            Line::Literal(normalize(acc.pieces))
        } else if let Some(name) = acc.call {
            Line::Call(name)
        } else if acc.prints {
            Line::Output
        } else {
            continue;
        };
        match &targets[target] {
            Target::Body => parsed.body.push((line, contribution)),
            Target::Define(name) => parsed.defines.entry(name.clone()).or_default().push((line, contribution)),
        }
    }
    parsed
}

/// A literal line's pattern with its ends trimmed (indentation and trailing
/// spaces do not count: `nindent` moves named templates around), no empty
/// texts and no two `Any` in a row.
pub fn normalize(pieces: Vec<Piece>) -> Vec<Piece> {
    let last = pieces.len().saturating_sub(1);
    let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
    for (i, p) in pieces.into_iter().enumerate() {
        match p {
            Piece::Text(t) => {
                let mut s = t.as_str();
                if i == 0 {
                    s = s.trim_start();
                }
                if i == last {
                    s = s.trim_end();
                }
                if !s.is_empty() {
                    out.push(Piece::Text(s.to_string()));
                }
            }
            Piece::Any => {
                if out.last() != Some(&Piece::Any) {
                    out.push(Piece::Any);
                }
            }
        }
    }
    out
}

/// Whether a rendered line matches a normalized pattern.
pub fn matches(pattern: &[Piece], line: &str) -> bool {
    glob(pattern, line.trim())
}

/// `*`-style matching of text pieces with `Any` between them.
fn glob(pieces: &[Piece], text: &str) -> bool {
    match pieces.split_first() {
        None => text.is_empty(),
        Some((Piece::Text(t), rest)) => text.strip_prefix(t.as_str()).is_some_and(|r| glob(rest, r)),
        Some((Piece::Any, rest)) => match rest.first() {
            None => true,
            Some(Piece::Any) => glob(rest, text),
            Some(Piece::Text(t)) => {
                let mut from = 0;
                while let Some(i) = text[from..].find(t.as_str()) {
                    if glob(rest, &text[from + i..]) {
                        return true;
                    }
                    from += i + t.len();
                }
                false
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_patterns_outputs_and_calls() {
        let t = "{{- if .Values.enabled }}\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {{ include \"x.fullname\" . }}\nspec:\n  template:\n    {{- include \"x.pod\" . | nindent 4 }}\n    resources:\n      {{- toYaml .Values.resources | nindent 6 }}\n{{- end }}\n{{/* a\ncomment */}}\n{{- define \"local\" -}}\nlocal: 1\n{{- end }}\n";
        let p = parse(t);
        let lines: Vec<u32> = p.body.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(p.body[3].1, Line::Literal(vec![Piece::Text("name: ".into()), Piece::Any]));
        assert_eq!(p.body[6].1, Line::Call("x.pod".into()));
        assert_eq!(p.body[8].1, Line::Output);
        assert_eq!(p.defines["local"], vec![(15, Line::Literal(vec![Piece::Text("local: 1".into())]))]);
    }

    #[test]
    fn defines_nest_blocks_and_end_where_they_end() {
        let t = "{{- define \"x.pod\" -}}\nserviceAccountName: {{ .sa }}\n{{- if .x }}\nhostNetwork: true\n{{- end }}\ncontainers: []\n{{- end }}\nafter: 1\n";
        let p = parse(t);
        let d: Vec<u32> = p.defines["x.pod"].iter().map(|(l, _)| *l).collect();
        assert_eq!(d, [2, 4, 6]);
        assert_eq!(p.body.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [8]);
    }

    #[test]
    fn patterns_match_rendered_lines() {
        let pat = normalize(vec![Piece::Text("  name: ".into()), Piece::Any, Piece::Text("-agent".into())]);
        assert!(matches(&pat, "      name: telemetry-agent"));
        assert!(!matches(&pat, "  name: telemetry"));
        assert!(matches(&normalize(vec![Piece::Text("kind: DaemonSet ".into())]), "kind: DaemonSet  "));
        assert!(matches(&normalize(vec![Piece::Any, Piece::Text(": 1".into())]), "a: b: 1"));
        assert!(!matches(&normalize(vec![Piece::Any, Piece::Text(": 1".into())]), "a: b: 12"));
    }
}
