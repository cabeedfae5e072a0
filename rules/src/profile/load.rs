//! Reading profiles: strict (unknown keys are errors), every error at its span.

use super::model::*;
use crate::agent_config::Format;
use crate::source::SpanError;
use apiload_yaml::{Node, Span, Value};

type R<T> = Result<T, SpanError>;

fn err<T>(span: Span, message: impl Into<String>) -> R<T> {
    Err(SpanError { span, message: message.into() })
}

/// Checks that a mapping has only `allowed` keys.
fn keys(node: &Node, what: &str, allowed: &[&str]) -> R<()> {
    let Some(entries) = node.as_map() else { return err(node.span, format!("{what} must be a mapping")) };
    for e in entries {
        if !allowed.contains(&&*e.key) {
            return err(
                e.key_span,
                format!("unknown key `{}` in {what}; expected one of: {}", e.key, allowed.join(", ")),
            );
        }
    }
    Ok(())
}

fn string(node: &Node, what: &str) -> R<String> {
    match &node.value {
        Value::Str(s) => Ok(s.to_string()),
        Value::Int(_) | Value::Float(_) => Ok(node.scalar_text().unwrap_or_default().into_owned()),
        _ => err(node.span, format!("{what} must be a string, not a {}", node.type_name())),
    }
}

fn req<'a>(node: &'a Node, key: &str, what: &str) -> R<&'a Node> {
    match node.get(key) {
        Some(n) if !n.is_null() => Ok(n),
        _ => err(node.span, format!("{what} needs `{key}`")),
    }
}

fn opt_string(node: &Node, key: &str, what: &str) -> R<Option<String>> {
    node.get(key).filter(|n| !n.is_null()).map(|n| string(n, &format!("`{key}` of {what}"))).transpose()
}

/// A string or a list of strings.
fn strings(node: &Node, what: &str) -> R<Vec<String>> {
    match &node.value {
        Value::Seq(items) => items.iter().map(|i| string(i, what)).collect(),
        _ => Ok(vec![string(node, what)?]),
    }
}

fn path(node: &Node, what: &str) -> R<Path> {
    let text = string(node, what)?;
    match jsonpath_rust::parser::parse_json_path(&text) {
        Ok(query) => Ok(Path { text, query }),
        Err(e) => {
            err(node.span, format!("{what}: invalid JSONPath `{text}`: {}", e.to_string().lines().next().unwrap_or("")))
        }
    }
}

fn number(node: &Node, what: &str) -> R<f64> {
    node.as_f64().map_or_else(|| err(node.span, format!("{what} must be a number")), Ok)
}

/// Reads one profile document; `text` is the profile file's text, for the
/// positions of errors inside embedded configurations.
pub fn read_profile(root: &Node, origin: &str, text: &str) -> R<Profile> {
    keys(root, "a profile", &["id", "name", "description", "sources", "match", "config", "client", "uses"])?;
    let id = string(req(root, "id", "a profile")?, "`id`")?;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return err(root.get("id").map_or(root.span, |n| n.span), "`id` must be kebab-case (a-z, 0-9, -)");
    }
    let name = string(req(root, "name", "a profile")?, "`name`")?;
    let m = req(root, "match", "a profile")?;
    keys(m, "`match`", &["images", "commands", "exclude_images", "exclude_commands"])?;
    let list = |key: &str| -> R<Vec<String>> {
        m.get(key).map(|n| strings(n, &format!("`match.{key}`"))).transpose().map(Option::unwrap_or_default)
    };
    let (images, commands) = (list("images")?, list("commands")?);
    let (exclude_images, exclude_commands) = (list("exclude_images")?, list("exclude_commands")?);
    if images.is_empty() && commands.is_empty() {
        return err(m.span, "`match` needs `images` or `commands`");
    }
    let config = match root.get("config") {
        Some(n) => n
            .as_seq()
            .ok_or(SpanError { span: n.span, message: "`config` must be a list".into() })?
            .iter()
            .map(|c| config_source(c, text))
            .collect::<R<_>>()?,
        None => Vec::new(),
    };
    let client = root.get("client").map(client_spec).transpose()?.unwrap_or_default();
    let uses = match root.get("uses") {
        Some(n) => n
            .as_seq()
            .ok_or(SpanError { span: n.span, message: "`uses` must be a list".into() })?
            .iter()
            .map(read_use)
            .collect::<R<_>>()?,
        None => Vec::new(),
    };
    Ok(Profile {
        id,
        name,
        description: opt_string(root, "description", "a profile")?.unwrap_or_default(),
        sources: root.get("sources").map(|n| strings(n, "`sources`")).transpose()?.unwrap_or_default(),
        images,
        commands,
        exclude_images,
        exclude_commands,
        config,
        client,
        uses,
        origin: origin.to_string(),
    })
}

fn format_of(node: &Node) -> R<Format> {
    let f = string(req(node, "format", "a `config` entry")?, "`format`")?;
    Format::parse(&f).map_or_else(
        || {
            err(
                node.get("format").map_or(node.span, |n| n.span),
                format!("unknown format `{f}`; expected one of: {}", Format::NAMES.join(", ")),
            )
        },
        Ok,
    )
}

fn config_source(node: &Node, profile_text: &str) -> R<ConfigSource> {
    keys(
        node,
        "a `config` entry",
        &[
            "flag",
            "directory_flag",
            "arg_after",
            "env",
            "dir",
            "config_map",
            "key",
            "path",
            "directory",
            "builtin",
            "format",
            "optional",
            "when",
        ],
    )?;
    let format = format_of(node)?;
    let kind = if let Some(f) = node.get("flag") {
        ConfigSourceKind::Flag(strings(f, "`flag`")?)
    } else if let Some(f) = node.get("directory_flag") {
        ConfigSourceKind::DirectoryFlag(strings(f, "`directory_flag`")?)
    } else if let Some(e) = node.get("env") {
        ConfigSourceKind::Env { name: string(e, "`env`")?, dir: opt_string(node, "dir", "a `config` entry")? }
    } else if let Some(a) = node.get("arg_after") {
        ConfigSourceKind::ArgAfter(strings(a, "`arg_after`")?)
    } else if let Some(c) = node.get("config_map") {
        ConfigSourceKind::ConfigMap {
            name: string(c, "`config_map`")?,
            key: opt_string(node, "key", "a `config` entry")?,
        }
    } else if let Some(p) = node.get("path") {
        ConfigSourceKind::File(string(p, "`path`")?)
    } else if let Some(p) = node.get("directory") {
        ConfigSourceKind::Directory(string(p, "`directory`")?)
    } else if let Some(b) = node.get("builtin") {
        let name = node.get("format").and_then(Node::as_str).unwrap_or_default();
        builtin(b, format, name, profile_text)?
    } else {
        return err(
            node.span,
            "a `config` entry needs `flag`, `directory_flag`, `arg_after`, `env`, `config_map`, `path`, `directory` or `builtin`",
        );
    };
    let optional = match node.get("optional") {
        Some(n) => n.as_bool().ok_or(SpanError { span: n.span, message: "`optional` must be a boolean".into() })?,
        None => false,
    };
    let when = node.get("when").map(condition).transpose()?;
    Ok(ConfigSource { kind, format, optional, when })
}

/// An image's built-in configuration, parsed now so that a broken one is an
/// error of the profile (at its line in the profile file), not of every lint.
fn builtin(node: &Node, format: Format, format_name: &str, profile_text: &str) -> R<ConfigSourceKind> {
    let text = string(node, "`builtin`")?;
    if format == Format::KeyValue {
        return err(node.span, "`builtin` takes a configuration text; format `keyvalue` reads directories");
    }
    match crate::agent_config::parse(format, &text) {
        Ok(parsed) => Ok(ConfigSourceKind::Builtin { text, node: parsed }),
        Err(e) => {
            let at = apiload_yaml::embedded_offset(profile_text, node.span, &text, e.offset);
            err(
                Span::new(at, at),
                format!("the built-in configuration does not parse as `{format_name}`: {}", e.message),
            )
        }
    }
}

fn value_source(node: &Node) -> R<ValueSource> {
    keys(node, "a value source", &["flag", "env", "path"])?;
    if let Some(f) = node.get("flag") {
        Ok(ValueSource::Flag(strings(f, "`flag`")?))
    } else if let Some(e) = node.get("env") {
        Ok(ValueSource::Env(string(e, "`env`")?))
    } else if let Some(p) = node.get("path") {
        Ok(ValueSource::Path(path(p, "`path`")?))
    } else {
        err(node.span, "a value source needs `flag`, `env` or `path`")
    }
}

fn client_spec(node: &Node) -> R<ClientSpec> {
    keys(node, "`client`", &["qps", "burst", "qps_from", "burst_from"])?;
    let list = |key: &str| -> R<Vec<ValueSource>> {
        match node.get(key) {
            Some(n) => n
                .as_seq()
                .ok_or(SpanError { span: n.span, message: format!("`{key}` must be a list") })?
                .iter()
                .map(value_source)
                .collect(),
            None => Ok(Vec::new()),
        }
    };
    Ok(ClientSpec {
        qps: node.get("qps").map(|n| number(n, "`qps`")).transpose()?,
        burst: node.get("burst").map(|n| number(n, "`burst`")).transpose()?,
        qps_from: list("qps_from")?,
        burst_from: list("burst_from")?,
    })
}

fn read_use(node: &Node) -> R<Use> {
    keys(
        node,
        "a `uses` entry",
        &["id", "description", "for_each", "label", "when", "central_when", "inherent", "calls"],
    )?;
    let calls = req(node, "calls", "a `uses` entry")?;
    let calls = calls
        .as_seq()
        .ok_or(SpanError { span: calls.span, message: "`calls` must be a list".into() })?
        .iter()
        .map(call_spec)
        .collect::<R<_>>()?;
    Ok(Use {
        id: string(req(node, "id", "a `uses` entry")?, "`id`")?,
        description: opt_string(node, "description", "a `uses` entry")?.unwrap_or_default(),
        for_each: node.get("for_each").map(|n| path(n, "`for_each`")).transpose()?,
        label: node.get("label").map(|n| path(n, "`label`")).transpose()?,
        when: node.get("when").map(condition).transpose()?,
        central_when: node.get("central_when").map(condition).transpose()?,
        inherent: opt_string(node, "inherent", "a `uses` entry")?,
        calls,
    })
}

fn call_spec(node: &Node) -> R<CallSpec> {
    keys(
        node,
        "a call",
        &[
            "resource",
            "resource_from",
            "group_from",
            "verbs",
            "scope",
            "node_scoped_when",
            "namespaces",
            "when",
            "key",
            "because",
            "fix",
            "every",
            "consistent_list_when",
        ],
    )?;
    let resource_from = node.get("resource_from").map(|n| path(n, "`resource_from`")).transpose()?;
    let resource = match (node.get("resource"), &resource_from) {
        (Some(r), _) => string(r, "`resource`")?,
        (None, Some(_)) => String::new(),
        (None, None) => return err(node.span, "a call needs `resource` or `resource_from`"),
    };
    let (resource, group) = match resource.split_once('.') {
        Some((r, g)) => (r.to_string(), g.to_string()),
        None => (resource, String::new()),
    };
    let verbs = match node.get("verbs") {
        Some(v) => strings(v, "`verbs`")?,
        None => vec!["list".into(), "watch".into()],
    };
    for v in &verbs {
        if !["list", "watch", "get"].contains(&v.as_str()) {
            return err(
                node.get("verbs").map_or(node.span, |n| n.span),
                format!("unknown verb `{v}`; expected list, watch or get"),
            );
        }
    }
    let scope = match opt_string(node, "scope", "a call")?.as_deref() {
        None | Some("cluster") => ScopeSpec::Cluster,
        Some("node") => ScopeSpec::Node,
        Some("object") => ScopeSpec::Object,
        Some(other) => {
            return err(
                node.get("scope").map_or(node.span, |n| n.span),
                format!("unknown scope `{other}`; expected cluster, node or object"),
            );
        }
    };
    Ok(CallSpec {
        group,
        resource,
        resource_from,
        group_from: node.get("group_from").map(|n| path(n, "`group_from`")).transpose()?,
        list: verbs.iter().any(|v| v == "list"),
        watch: verbs.iter().any(|v| v == "watch"),
        get: verbs.iter().any(|v| v == "get"),
        scope,
        node_scoped_when: node.get("node_scoped_when").map(condition).transpose()?,
        namespaces: node.get("namespaces").map(|n| path(n, "`namespaces`")).transpose()?,
        when: node.get("when").map(condition).transpose()?,
        key: node.get("key").map(|n| path(n, "`key`")).transpose()?,
        because: opt_string(node, "because", "a call")?,
        fix: opt_string(node, "fix", "a call")?,
        every: node.get("every").map(|n| number(n, "`every` (seconds)")).transpose()?,
        consistent_list_when: node.get("consistent_list_when").map(condition).transpose()?,
    })
}

fn to_json(node: &Node) -> serde_json::Value {
    super::context::to_json(node)
}

pub fn condition(node: &Node) -> R<Condition> {
    if let Some(items) = node.as_seq() {
        return Ok(Condition::All(items.iter().map(condition).collect::<R<_>>()?));
    }
    let Some(entries) = node.as_map() else { return err(node.span, "a condition must be a mapping or a list") };
    let first = entries.first().map(|e| &*e.key).unwrap_or("");
    match first {
        "path" => {
            keys(node, "a `path` condition", &["path", "equals"])?;
            let equals = match node.get("equals") {
                None => Vec::new(),
                Some(n) => match &n.value {
                    Value::Seq(items) => items.iter().map(to_json).collect(),
                    _ => vec![to_json(n)],
                },
            };
            Ok(Condition::Path { path: path(req(node, "path", "a condition")?, "`path`")?, equals })
        }
        "absent" => {
            keys(node, "an `absent` condition", &["absent"])?;
            Ok(Condition::Absent(path(req(node, "absent", "a condition")?, "`absent`")?))
        }
        "env_names_node" => {
            keys(node, "an `env_names_node` condition", &["env_names_node"])?;
            Ok(Condition::EnvNamesNode(path(req(node, "env_names_node", "a condition")?, "`env_names_node`")?))
        }
        "version" => {
            keys(node, "a `version` condition", &["version"])?;
            let v = req(node, "version", "a condition")?;
            let text = string(v, "`version`")?;
            let (op, rest) = ["<=", ">=", "<", ">", "=="]
                .iter()
                .find_map(|op| text.trim().strip_prefix(op).map(|r| (*op, r)))
                .ok_or(SpanError { span: v.span, message: format!("`version: {text}` needs <, <=, >, >= or ==") })?;
            let version = super::context::parse_version(rest.trim())
                .ok_or(SpanError { span: v.span, message: format!("`{}` is not a version", rest.trim()) })?;
            let op = match op {
                "<" => VersionOp::Lt,
                "<=" => VersionOp::Le,
                ">" => VersionOp::Gt,
                ">=" => VersionOp::Ge,
                _ => VersionOp::Eq,
            };
            Ok(Condition::Version { op, version })
        }
        "any" | "all" => {
            keys(node, &format!("an `{first}` condition"), &[first])?;
            let list = req(node, first, "a condition")?;
            let items = list
                .as_seq()
                .ok_or(SpanError { span: list.span, message: format!("`{first}` must be a list") })?
                .iter()
                .map(condition)
                .collect::<R<Vec<_>>>()?;
            Ok(if first == "any" { Condition::Any(items) } else { Condition::All(items) })
        }
        "not" => {
            keys(node, "a `not` condition", &["not"])?;
            Ok(Condition::Not(Box::new(condition(req(node, "not", "a condition")?)?)))
        }
        _ => err(
            entries.first().map_or(node.span, |e| e.key_span),
            format!("unknown condition `{first}`; expected path, absent, version, env_names_node, any, all or not"),
        ),
    }
}
