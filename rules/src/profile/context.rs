//! The document a profile's conditions query, for one container:
//!
//! ```text
//! {config: <the agent's configuration, normalised by format>,
//!  env:    {NAME: value},          // resolved; "@node-name@" when from spec.nodeName
//!  args:   ["--flag=value", ...],  // command and args, $(VAR) expanded
//!  flags:  {"--flag": "value"},
//!  image:  {repository, tag, version},
//!  workload: {kind, namespace, name},
//!  item:   <the current for_each item>}
//! ```
//!
//! References to environment variables inside the configuration
//! (`${env:X}`, `${X}`, `$(X)`, `#{ENV['X']}`, `sys.env("X")`) are replaced by
//! the variable's value, so a selector built from the node name reads
//! `spec.nodeName=@node-name@`.

use super::model::{Condition, Path, VersionOp};
use crate::agent_config::resolve::{Environment, NODE_NAME};
use crate::source::{Location, Sources};
use apiload_yaml::{Node, Value};
use jsonpath_rust::query::js_path_process;
use serde_json::Value as Json;

/// The configuration of one container, its spans already offsets into `source`.
#[derive(Clone, Debug)]
pub struct ConfigDoc {
    pub node: Node,
    /// The source the spans are offsets into; `None` for a configuration
    /// that is not in the input (an image's built-in one).
    pub source: Option<crate::source::SourceId>,
    /// `ConfigMap monitoring/agent key `relay``.
    pub describe: String,
}

/// A command-line token of the container.
#[derive(Clone, Debug)]
pub struct Arg {
    pub text: String,
    pub location: Location,
}

pub struct Context<'a> {
    pub sources: &'a Sources,
    pub json: Json,
    pub config: Option<ConfigDoc>,
    pub env: Environment,
    pub args: Vec<Arg>,
    pub version: Option<Vec<u64>>,
    /// Where findings point when nothing more precise is known.
    pub fallback: Location,
}

pub fn to_json(node: &Node) -> Json {
    match &node.value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.to_string()),
        Value::Seq(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(entries.iter().map(|e| (e.key.to_string(), to_json(&e.value))).collect()),
    }
}

/// `v0.158.0`, `3.5.1-debug`, `7.81` → its numbers; `latest` → `None`.
pub fn parse_version(tag: &str) -> Option<Vec<u64>> {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    let end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let nums: Vec<u64> = t[..end].split('.').filter(|p| !p.is_empty()).map_while(|p| p.parse().ok()).collect();
    if nums.is_empty() { None } else { Some(nums) }
}

/// Splits an image reference into repository and tag (`latest` when absent;
/// the tag of a digest-pinned `repo:tag@sha256:…` is kept).
pub fn split_image(image: &str) -> (&str, Option<&str>) {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(i) => (&without_digest[..last_slash + i], Some(&without_digest[last_slash + i + 1..])),
        None => (without_digest, None),
    }
}

/// Replaces references to environment variables inside string values.
pub fn expand_env(node: &mut Node, env: &Environment) {
    match &mut node.value {
        Value::Str(s) if s.contains('$') || s.contains("env(") || s.contains("#{") => {
            let expanded = expand_references(s, env);
            if expanded != **s {
                *s = expanded.into();
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|i| expand_env(i, env)),
        Value::Map(entries) => entries.iter_mut().for_each(|e| expand_env(&mut e.value, env)),
        _ => {}
    }
}

fn expand_references(s: &str, env: &Environment) -> String {
    // Within the environment's expansion budget: a value referenced many
    // times would otherwise multiply the text.
    let lookup = |name: &str, reference: usize| {
        let v = env.get(name)?.value.as_deref()?;
        env.take_growth(v.len().saturating_sub(reference)).then(|| v.to_string())
    };
    let mut out = s.to_string();
    // (prefix, terminator) pairs; the name sits between them.
    let forms: &[(&str, &str)] = &[
        ("${env:", "}"),
        ("${", "}"),
        ("$(", ")"),
        ("#{ENV['", "']}"),
        ("#{ENV[\"", "\"]}"),
        ("sys.env(\"", "\")"),
        ("env(\"", "\")"),
    ];
    // Each form in one pass that copies into a new string: replacing in
    // place would move the rest of the text at every reference.
    for (open, close) in forms {
        if !out.contains(open) {
            continue;
        }
        let mut expanded = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find(open) {
            let name_start = i + open.len();
            let Some(len) = rest[name_start..].find(close) else { break };
            let inner = &rest[name_start..name_start + len];
            // `${NAME:-default}` and `${env:NAME:-default}`
            let name = inner.split(":-").next().unwrap_or(inner).split(':').next().unwrap_or(inner);
            let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let reference = open.len() + len + close.len();
            match valid.then(|| lookup(name, reference)).flatten() {
                Some(v) => {
                    expanded.push_str(&rest[..i]);
                    expanded.push_str(&v);
                    rest = &rest[name_start + len + close.len()..];
                }
                None => {
                    expanded.push_str(&rest[..name_start + len]);
                    rest = &rest[name_start + len..];
                }
            }
        }
        expanded.push_str(rest);
        out = expanded;
    }
    out
}

impl Context<'_> {
    /// Runs a JSONPath over `doc`; results with their paths. Errors (none
    /// after a successful parse) read as no result.
    pub fn query<'j>(&self, doc: &'j Json, path: &Path) -> Vec<(String, &'j Json)> {
        match js_path_process(&path.query, doc) {
            Ok(refs) => refs.into_iter().map(|r| (r.path, r.val)).collect(),
            Err(_) => Vec::new(),
        }
    }

    fn present<'j>(&self, doc: &'j Json, path: &Path) -> Vec<(String, &'j Json)> {
        self.query(doc, path).into_iter().filter(|(_, v)| !matches!(v, Json::Null) && v.as_str() != Some("")).collect()
    }

    pub fn eval(&self, doc: &Json, cond: &Condition) -> bool {
        match cond {
            Condition::Path { path, equals } => {
                let found = self.present(doc, path);
                if equals.is_empty() {
                    !found.is_empty()
                } else {
                    found.iter().any(|(_, v)| equals.iter().any(|e| loose_eq(v, e)))
                }
            }
            Condition::Absent(path) => self.present(doc, path).is_empty(),
            Condition::Version { op, version } => match &self.version {
                // An unknown version (`latest`, no tag) is taken as the newest.
                None => matches!(op, VersionOp::Gt | VersionOp::Ge),
                Some(v) => {
                    let ord = compare_versions(v, version);
                    match op {
                        VersionOp::Lt => ord.is_lt(),
                        VersionOp::Le => ord.is_le(),
                        VersionOp::Gt => ord.is_gt(),
                        VersionOp::Ge => ord.is_ge(),
                        VersionOp::Eq => ord.is_eq(),
                    }
                }
            },
            Condition::EnvNamesNode(path) => self.present(doc, path).iter().any(|(_, v)| {
                v.as_str().is_some_and(|name| {
                    let name = name.trim().trim_start_matches("${env:").trim_start_matches("${").trim_end_matches('}');
                    self.env.get(name).is_some_and(|e| e.value.as_deref() == Some(NODE_NAME))
                })
            }),
            Condition::Any(items) => items.iter().any(|c| self.eval(doc, c)),
            Condition::All(items) => items.iter().all(|c| self.eval(doc, c)),
            Condition::Not(c) => !self.eval(doc, c),
        }
    }

    /// The strings a path selects (a string, or the strings of a list).
    pub fn strings(&self, doc: &Json, path: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for (_, v) in self.present(doc, path) {
            match v {
                Json::String(s) => out.push(s.clone()),
                Json::Array(items) => out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_string))),
                Json::Number(n) => out.push(n.to_string()),
                _ => {}
            }
        }
        out
    }

    /// Where a query result sits in the input. `item` is the path of the
    /// current `for_each` item, which `$['item']…` results refer to.
    pub fn locate(&self, result_path: &str, item: Option<&str>) -> Location {
        let mut segs = parse_result_path(result_path);
        if segs.first().map(String::as_str) == Some("item")
            && let Some(item) = item
        {
            let mut full = parse_result_path(item);
            full.extend(segs.drain(1..));
            segs = full;
        }
        match segs.first().map(String::as_str) {
            Some("config") => self.locate_config(&segs[1..]).unwrap_or(self.fallback),
            Some("env") => segs.get(1).and_then(|n| self.env.get(n)).map_or(self.fallback, |e| e.location),
            Some("args") => segs
                .get(1)
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| self.args.get(i))
                .map_or(self.fallback, |a| a.location),
            Some("flags") => segs
                .get(1)
                .and_then(|f| self.args.iter().find(|a| a.text == *f || a.text.starts_with(&format!("{f}="))))
                .map_or(self.fallback, |a| a.location),
            _ => self.fallback,
        }
    }

    fn locate_config(&self, segs: &[String]) -> Option<Location> {
        let doc = self.config.as_ref()?;
        let source = doc.source?;
        let mut node = &doc.node;
        let mut span = node.span;
        for s in segs {
            match &node.value {
                Value::Map(entries) => {
                    let e = entries.iter().find(|e| &*e.key == s)?;
                    span = e.key_span;
                    node = &e.value;
                    if !matches!(node.value, Value::Map(_) | Value::Seq(_)) {
                        span = node.span;
                    }
                }
                Value::Seq(items) => {
                    node = items.get(s.parse::<usize>().ok()?)?;
                    span = node.span;
                }
                _ => return None,
            }
        }
        Some(Location::new(source, span))
    }
}

/// `$['a'][0]['b']` → `["a", "0", "b"]`.
pub fn parse_result_path(path: &str) -> Vec<String> {
    let mut segs = Vec::new();
    let mut chars = path.strip_prefix('$').unwrap_or(path).chars().peekable();
    while let Some(c) = chars.next() {
        if c != '[' {
            continue;
        }
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut s = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            s.push(n);
                        }
                    }
                    '\'' => break,
                    c => s.push(c),
                }
            }
            segs.push(s);
        } else {
            let s: String = chars.by_ref().take_while(|c| *c != ']').collect();
            segs.push(s);
        }
    }
    segs
}

fn compare_versions(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| a.get(i).copied().unwrap_or(0).cmp(&b.get(i).copied().unwrap_or(0)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// Equality that lets `"true"` match `true` and `"10"` match `10`, as agents
/// read their own string-typed settings.
fn loose_eq(a: &Json, b: &Json) -> bool {
    if a == b {
        return true;
    }
    let text = |v: &Json| match v {
        Json::String(s) => Some(s.to_ascii_lowercase()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    };
    matches!((text(a), text(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent_config::resolve::EnvValue;
    use apiload_yaml::Span;

    #[test]
    fn versions_and_images() {
        assert_eq!(parse_version("v0.158.0"), Some(vec![0, 158, 0]));
        assert_eq!(parse_version("3.5.1-debug"), Some(vec![3, 5, 1]));
        assert_eq!(parse_version("latest"), None);
        assert_eq!(split_image("otel/col:0.1@sha256:ab"), ("otel/col", Some("0.1")));
        assert_eq!(split_image("reg:5000/a/b"), ("reg:5000/a/b", None));
        assert_eq!(split_image("reg:5000/a/b:1.2"), ("reg:5000/a/b", Some("1.2")));
        assert_eq!(split_image("a@sha256:ff"), ("a", None));
        assert!(compare_versions(&[0, 152, 9], &[0, 153, 0]).is_lt());
        assert!(compare_versions(&[1], &[1, 0, 0]).is_eq());
    }

    #[test]
    fn result_paths() {
        assert_eq!(parse_result_path("$['a'][0]['b\\'c']"), vec!["a", "0", "b'c"]);
    }

    #[test]
    fn env_references_expand() {
        let loc = Location::new(crate::source::SourceId(0), Span::point(0));
        let env: Environment = [
            EnvValue { name: "NODE".into(), value: Some(NODE_NAME.into()), location: loc },
            EnvValue { name: "NS".into(), value: Some("kube-system".into()), location: loc },
        ]
        .into_iter()
        .collect();
        assert_eq!(expand_references("spec.nodeName=${env:NODE}", &env), "spec.nodeName=@node-name@");
        assert_eq!(expand_references("${NODE:-x} $(NS) ${OTHER}", &env), "@node-name@ kube-system ${OTHER}");
        assert_eq!(expand_references("\"a=\" + sys.env(\"NODE\")", &env), "\"a=\" + @node-name@");
        assert_eq!(expand_references("#{ENV['NODE']}", &env), "@node-name@");
    }
}
