//! CoreDNS's Corefile (the Caddyfile syntax of coredns/caddy).
//!
//! A Corefile is a list of server blocks: one or more keys (zones with an
//! optional port, `.:53`, `cluster.local:53`) and, between braces, one
//! directive per line — a plugin name, its arguments up to the end of the
//! line, and an optional block of sub-directives in braces. `#` starts a
//! comment, `"..."` quotes a token, `{$VAR}` is an environment variable.
//! Snippets `(name) { ... }` are pasted where `import name` appears; imports
//! of files stay as `import` directives (the files are not in the input).
//!
//! The tree:
//!
//! ```text
//! {servers: [{keys: [".:53"], plugins: [{name, args: [...], block: [{name, args, block}]}]}]}
//! ```
//!
//! Every node's span is an offset into the Corefile; a directive's span is
//! its name.

use super::{ConfigError, entry, map, seq, span, string};
use apiload_yaml::{Node, Span};

/// One token with its byte range; `line` counts newlines before it.
#[derive(Clone, Debug)]
struct Token {
    text: String,
    start: usize,
    end: usize,
    line: usize,
    /// A quoted token is never a brace.
    quoted: bool,
}

impl Token {
    fn is(&self, s: &str) -> bool {
        !self.quoted && self.text == s
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, ConfigError> {
    let bytes = text.as_bytes();
    let (mut i, mut line, mut out) = (0, 0, Vec::new());
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if c == b'"' {
            let start = i;
            let mut value = String::new();
            i += 1;
            let token_line = line;
            loop {
                match bytes.get(i) {
                    None => return Err(ConfigError::new(start, "unterminated quoted string")),
                    Some(b'\\') if bytes.get(i + 1) == Some(&b'"') => {
                        value.push('"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
                        if ch == '\n' {
                            line += 1;
                        }
                        value.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            out.push(Token { text: value, start, end: i, line: token_line, quoted: true });
        } else {
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push(Token { text: text[start..i].to_string(), start, end: i, line, quoted: false });
        }
    }
    Ok(out)
}

/// `{$VAR}` (and `{%VAR%}`) as the `${VAR}` the profile engine expands.
fn env_form(s: &str) -> String {
    let mut out = s.to_string();
    for (open, close) in [("{$", "}"), ("{%", "%}")] {
        while let Some(i) = out.find(open) {
            let Some(len) = out[i + open.len()..].find(close) else { break };
            let name = out[i + open.len()..i + open.len() + len].to_string();
            out.replace_range(i..i + open.len() + len + close.len(), &format!("${{{name}}}"));
        }
    }
    out
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    snippets: Vec<(String, Vec<Node>)>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    /// Directives up to the closing brace (consumed) or, at the top of a
    /// braceless Corefile, the end.
    fn directives(&mut self, open: Option<&Token>, depth: usize) -> Result<Vec<Node>, ConfigError> {
        if depth > 32 {
            return Err(ConfigError::new(open.map_or(0, |t| t.start), "blocks nested too deeply"));
        }
        let mut out = Vec::new();
        loop {
            let Some(t) = self.peek().cloned() else {
                return match open {
                    Some(o) => Err(ConfigError::new(o.start, "this `{` is never closed")),
                    None => Ok(out),
                };
            };
            if t.is("}") {
                self.pos += 1;
                return match open {
                    Some(_) => Ok(out),
                    None => Err(ConfigError::new(t.start, "`}` without a matching `{`")),
                };
            }
            if t.is("{") {
                return Err(ConfigError::new(t.start, "`{` where a directive name was expected"));
            }
            self.pos += 1;
            let mut args = Vec::new();
            let mut block = None;
            let mut end = t.end;
            while let Some(a) = self.peek().cloned() {
                if a.line != t.line || a.is("}") {
                    break;
                }
                self.pos += 1;
                if a.is("{") {
                    block = Some(self.directives(Some(&a), depth + 1)?);
                    end = self.tokens.get(self.pos - 1).map_or(a.end, |c| c.end);
                    break;
                }
                end = a.end;
                args.push(string(&env_form(&a.text), span(a.start, a.end)));
            }
            if t.text == "import"
                && block.is_none()
                && let [only] = args.as_slice()
                && let Some((_, body)) = self.snippets.iter().find(|(n, _)| Some(n.as_str()) == only.as_str())
            {
                out.extend(body.iter().cloned());
                continue;
            }
            let name_span = span(t.start, t.end);
            let mut fields = vec![
                entry("name", name_span, string(&t.text, name_span)),
                entry("args", name_span, seq(args, span(t.start, end))),
            ];
            if let Some(b) = block {
                fields.push(entry("block", name_span, seq(b, span(t.start, end))));
            }
            out.push(map(fields, name_span));
        }
    }
}

pub fn parse(text: &str) -> Result<Node, ConfigError> {
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens: &tokens, pos: 0, snippets: Vec::new() };
    let mut servers = Vec::new();
    while let Some(first) = p.peek().cloned() {
        if first.is("{") || first.is("}") {
            return Err(ConfigError::new(
                first.start,
                format!("`{}` where a server block's zone was expected", first.text),
            ));
        }
        // Keys: the tokens of the first line, up to `{` (commas separate them too).
        let mut keys = Vec::new();
        while let Some(k) = p.peek().cloned() {
            if k.line != first.line || k.is("{") {
                break;
            }
            p.pos += 1;
            for part in k.text.split(',').filter(|s| !s.is_empty()) {
                keys.push(string(part, span(k.start, k.end)));
            }
        }
        let braced = p.peek().filter(|t| t.is("{")).cloned();
        if braced.is_some() {
            p.pos += 1;
        } else if !servers.is_empty() || p.peek().is_some_and(|t| t.line == first.line) {
            return Err(ConfigError::new(first.start, "a server block needs `{` after its zones"));
        }
        let plugins = p.directives(braced.as_ref(), 0)?;
        let end = p.tokens.get(p.pos.saturating_sub(1)).map_or(first.end, |t| t.end);
        // `(name) { ... }` defines a snippet for `import name`.
        if let [name] = keys.as_slice()
            && let Some(n) = name.as_str().and_then(|s| s.strip_prefix('(')).and_then(|s| s.strip_suffix(')'))
        {
            p.snippets.push((n.to_string(), plugins));
            continue;
        }
        let first_span = span(first.start, first.end);
        servers.push(map(
            vec![
                entry("keys", first_span, seq(keys, first_span)),
                entry("plugins", first_span, seq(plugins, span(first.start, end))),
            ],
            span(first.start, end),
        ));
    }
    Ok(map(vec![entry("servers", Span::point(0), seq(servers, span(0, text.len())))], span(0, text.len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiload_yaml::Value;
    use serde_json::{Value as Json, json};

    /// The tree as JSON, for comparing whole trees.
    fn to_json(node: &Node) -> Json {
        match &node.value {
            Value::Str(s) => Json::String(s.to_string()),
            Value::Seq(items) => Json::Array(items.iter().map(to_json).collect()),
            Value::Map(entries) => {
                Json::Object(entries.iter().map(|e| (e.key.to_string(), to_json(&e.value))).collect())
            }
            other => panic!("a Corefile tree holds strings, lists and mappings only, not {other:?}"),
        }
    }

    #[test]
    fn server_blocks_plugins_and_options() {
        let text = ".:53 {\n    errors\n    kubernetes cluster.local in-addr.arpa {\n      pods verified # a comment\n      fallthrough in-addr.arpa\n    }\n    forward . \"/etc/resolv.conf\"\n}\n";
        let node = parse(text).unwrap();
        assert_eq!(
            to_json(&node),
            json!({"servers": [{"keys": [".:53"], "plugins": [
                {"name": "errors", "args": []},
                {"name": "kubernetes", "args": ["cluster.local", "in-addr.arpa"], "block": [
                    {"name": "pods", "args": ["verified"]},
                    {"name": "fallthrough", "args": ["in-addr.arpa"]}]},
                {"name": "forward", "args": [".", "/etc/resolv.conf"]}]}]})
        );
        // Spans are offsets of the Corefile: the `pods` directive points at its name.
        let pods =
            node.path(&["servers"]).and_then(Node::as_seq).unwrap()[0].get("plugins").and_then(Node::as_seq).unwrap()
                [1]
            .get("block")
            .and_then(Node::as_seq)
            .unwrap()[0]
                .span;
        assert_eq!(&text[pods.start as usize..pods.end as usize], "pods");
    }

    #[test]
    fn snippets_several_keys_and_env() {
        let text = "(common) {\n  errors\n  cache 30\n}\nexample.org:53 other.org {\n  import common\n  import /etc/coredns/custom/*.override\n  hosts {$HOSTS_FILE}\n}\n";
        let node = to_json(&parse(text).unwrap());
        assert_eq!(
            node,
            json!({"servers": [{"keys": ["example.org:53", "other.org"], "plugins": [
                {"name": "errors", "args": []},
                {"name": "cache", "args": ["30"]},
                {"name": "import", "args": ["/etc/coredns/custom/*.override"]},
                {"name": "hosts", "args": ["${HOSTS_FILE}"]}]}]})
        );
    }

    #[test]
    fn a_braceless_single_server_block() {
        let node = to_json(&parse(".\nwhoami\nlog\n").unwrap());
        assert_eq!(
            node,
            json!({"servers": [{"keys": ["."], "plugins": [{"name": "whoami", "args": []}, {"name": "log", "args": []}]}]})
        );
    }

    #[test]
    fn errors_point_at_the_fault() {
        let unclosed = ".:53 {\n  kubernetes {\n    pods verified\n}\n";
        let e = parse(unclosed).unwrap_err();
        assert_eq!(e.offset, 5, "{e:?}");
        assert!(e.message.contains("never closed"), "{e:?}");
        let stray = ".:53 {\n  errors\n}\n}\n";
        let e = parse(stray).unwrap_err();
        assert_eq!(&stray[e.offset..e.offset + 1], "}");
        let quote = ".:53 {\n  hosts \"/etc/hosts\n}\n";
        assert!(parse(quote).unwrap_err().message.contains("unterminated"));
        assert_eq!(to_json(&parse("# only a comment\n").unwrap()), json!({"servers": []}));
    }
}
