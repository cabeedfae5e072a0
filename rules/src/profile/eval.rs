//! Applying a profile to one container: find and read its configuration,
//! build the context, and turn the profile's `uses` into API calls.

use super::context::{Arg, ConfigDoc, Context, expand_env, parse_version, split_image, to_json};
use super::model::{ConfigSourceKind, Profile, ScopeSpec, ValueSource};
use crate::agent_config::resolve::{self, Missing};
use crate::agent_config::{self, Format};
use crate::calls::{ApiCall, Basis, CallOrigin, CallScope};
use crate::inventory::Inventory;
use crate::kube::resources;
use crate::object::Object;
use crate::source::{Location, Sources};
use crate::workload::{Container, Workload};
use serde_json::{Map, Value as Json};
use std::sync::Arc;

/// What one profiled container does.
#[derive(Clone, Debug)]
pub struct AgentRun {
    pub profile: Arc<Profile>,
    pub container: Box<str>,
    pub calls: Vec<ApiCall>,
    pub client: ClientLimits,
    /// Configuration that could not be found or read.
    pub problems: Vec<ConfigProblem>,
    /// True when the configuration was needed and not read: the container's
    /// calls are then inferred from its grants.
    pub fallback: bool,
    /// Where the configuration was read from.
    pub config: Option<(String, Location)>,
}

/// The client's rate limit, as configured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientLimits {
    /// Queries per second and where it is set (`None`: the agent's default).
    pub qps: Option<(f64, Location)>,
    pub burst: Option<(f64, Location)>,
    /// The agent's default QPS, when known.
    pub default_qps: Option<f64>,
}

impl ClientLimits {
    /// The QPS the client runs with: the configured value, 0 meaning the default (client-go).
    pub fn effective_qps(&self) -> Option<f64> {
        match self.qps {
            Some((q, _)) if q != 0.0 => Some(q),
            _ => self.default_qps,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ConfigProblem {
    pub location: Location,
    pub message: String,
}

/// The container's command line, `$(VAR)` expanded, with locations.
pub fn command_line(obj: &Object, c: &Container, env: &resolve::Environment) -> Vec<Arg> {
    c.command
        .iter()
        .chain(&c.args)
        .map(|a| Arg { text: resolve::expand_vars(&a.value, env), location: obj.loc(a.span) })
        .collect()
}

/// `--flag=value`, `--flag value`, `-f value`: the value of the first of `names` present.
pub fn flag_value<'a>(args: &'a [Arg], names: &[String]) -> Option<(String, &'a Arg)> {
    for (i, a) in args.iter().enumerate() {
        for name in names {
            if let Some(v) = a.text.strip_prefix(name.as_str()).and_then(|r| r.strip_prefix('=')) {
                return Some((v.to_string(), a));
            }
            if a.text == *name {
                let value = args.get(i + 1).filter(|n| !n.text.starts_with('-')).map(|n| n.text.clone());
                return Some((value.unwrap_or_default(), a));
            }
        }
    }
    None
}

fn flags_json(args: &[Arg]) -> Json {
    let mut map = Map::new();
    for (i, a) in args.iter().enumerate() {
        if !a.text.starts_with('-') {
            continue;
        }
        // `--flag=value` and `--flag value` hold a string; a flag alone holds `true`.
        let (name, value) = match a.text.split_once('=') {
            Some((n, v)) => (n.to_string(), Json::String(v.to_string())),
            None => {
                let v = args.get(i + 1).filter(|n| !n.text.starts_with('-')).map(|n| Json::String(n.text.clone()));
                (a.text.clone(), v.unwrap_or(Json::Bool(true)))
            }
        };
        map.insert(name, value);
    }
    Json::Object(map)
}

pub fn run(
    profile: &Arc<Profile>,
    sources: &Sources,
    inv: &Inventory,
    w: &Workload,
    obj: &Object,
    c: &Container,
) -> AgentRun {
    let env = resolve::environment(inv, obj, c);
    let args = command_line(obj, c, &env);
    let container_loc = obj.loc(c.image.as_ref().map_or(c.span, |i| i.span));
    let mut out = AgentRun {
        profile: profile.clone(),
        container: c.name.clone(),
        calls: Vec::new(),
        client: ClientLimits::default(),
        problems: Vec::new(),
        fallback: false,
        config: None,
    };

    let (repository, tag) = c.image.as_ref().map_or(("", None), |i| split_image(&i.value));
    let version = tag.and_then(parse_version);
    let mut root = Map::new();
    root.insert("config".into(), Json::Null);
    root.insert(
        "env".into(),
        Json::Object(env.iter().map(|e| (e.name.clone(), e.value.clone().map_or(Json::Null, Json::String))).collect()),
    );
    root.insert("args".into(), Json::Array(args.iter().map(|a| Json::String(a.text.clone())).collect()));
    root.insert("flags".into(), flags_json(&args));
    root.insert(
        "image".into(),
        serde_json::json!({"repository": repository, "tag": tag, "version": version.as_ref().map(|v| v.iter().map(u64::to_string).collect::<Vec<_>>().join("."))}),
    );
    root.insert("workload".into(), serde_json::json!({"kind": &*obj.kind, "namespace": obj.ns(), "name": &*obj.name}));
    // The document without the configuration decides which configuration
    // source applies (`when` on a source: the image's version, the arguments).
    let mut ctx =
        Context { sources, json: Json::Object(root), config: None, env, args, version, fallback: container_loc };
    let config = read_config(profile, &ctx, inv, w, obj, c, &mut out);
    if out.fallback {
        return out;
    }
    if let (Some(d), Json::Object(m)) = (&config, &mut ctx.json) {
        m.insert("config".into(), to_json(&d.node));
    }
    ctx.config = config;

    out.client = client_limits(profile, &ctx);
    for u in &profile.uses {
        let items: Vec<(Option<String>, Json)> = match &u.for_each {
            Some(path) => ctx.query(&ctx.json, path).into_iter().map(|(p, v)| (Some(p), v.clone())).collect(),
            None => vec![(None, Json::Null)],
        };
        for (item_path, item) in items {
            let mut doc = ctx.json.clone();
            if let Json::Object(m) = &mut doc {
                m.insert("item".into(), item);
            }
            if u.when.as_ref().is_some_and(|c| !ctx.eval(&doc, c)) {
                continue;
            }
            let central = u.central_when.as_ref().is_some_and(|c| ctx.eval(&doc, c));
            let label = u.label.as_ref().and_then(|l| ctx.strings(&doc, l).into_iter().next());
            let feature = match (&label, u.description.is_empty()) {
                (Some(l), false) => format!("{} `{l}`", u.description),
                (Some(l), true) => format!("`{l}`"),
                (None, false) => u.description.clone(),
                (None, true) => u.id.clone(),
            };
            let item_loc = item_path.as_deref().map_or(ctx.fallback, |p| ctx.locate(p, None));
            for spec in &u.calls {
                if spec.when.as_ref().is_some_and(|c| !ctx.eval(&doc, c)) {
                    continue;
                }
                let namespaces = spec.namespaces.as_ref().map(|p| ctx.strings(&doc, p)).unwrap_or_default();
                let scope = if spec.scope == ScopeSpec::Node
                    || spec.node_scoped_when.as_ref().is_some_and(|c| ctx.eval(&doc, c))
                {
                    CallScope::Node
                } else if spec.scope == ScopeSpec::Object {
                    CallScope::Object
                } else if !namespaces.is_empty() {
                    CallScope::Namespaces(namespaces.iter().map(|n| n.as_str().into()).collect())
                } else {
                    CallScope::Cluster
                };
                let evidence = spec
                    .key
                    .as_ref()
                    .and_then(|k| ctx.query(&doc, k).into_iter().next())
                    .map_or(item_loc, |(p, _)| ctx.locate(&p, item_path.as_deref()));
                for (group, resource) in call_resources(&ctx, &doc, spec) {
                    let info = resources::lookup(&group, &resource);
                    out.calls.push(ApiCall {
                        group: group.into(),
                        resource: resource.into(),
                        info,
                        list: spec.list,
                        watch: spec.watch,
                        get: spec.get,
                        scope: scope.clone(),
                        basis: Basis::Profile,
                        origin: Some(CallOrigin {
                            agent: profile.name.clone(),
                            feature: feature.clone(),
                            evidence,
                            because: spec.because.clone(),
                            fix: spec.fix.clone(),
                            central,
                            every: spec.every,
                            consistent_list: spec.consistent_list_when.as_ref().is_some_and(|c| ctx.eval(&doc, c)),
                            inherent: u.inherent.clone(),
                        }),
                    });
                }
            }
        }
    }
    out
}

/// Where a configuration source points, once the arguments and environment are known.
enum Target {
    File(String),
    Directory(String),
    ConfigMap { name: String, key: Option<String> },
}

/// Finds the configuration the profile names; records problems and falls back
/// to the grants when a needed configuration cannot be read. `ctx` holds the
/// container's environment and arguments (no configuration yet).
fn read_config(
    profile: &Profile,
    ctx: &Context<'_>,
    inv: &Inventory,
    w: &Workload,
    obj: &Object,
    c: &Container,
    out: &mut AgentRun,
) -> Option<ConfigDoc> {
    let (sources, env, args) = (ctx.sources, &ctx.env, ctx.args.as_slice());
    for src in &profile.config {
        if src.when.as_ref().is_some_and(|cond| !ctx.eval(&ctx.json, cond)) {
            continue;
        }
        // What the source names, and where it is named (None for defaults).
        let (target, named_at) = match &src.kind {
            ConfigSourceKind::Flag(names) | ConfigSourceKind::DirectoryFlag(names) => {
                let Some((v, arg)) = flag_value(args, names) else { continue };
                let v = v.strip_prefix("file:").unwrap_or(&v).to_string();
                let t =
                    if matches!(src.kind, ConfigSourceKind::Flag(_)) { Target::File(v) } else { Target::Directory(v) };
                (t, Some(arg.location))
            }
            ConfigSourceKind::ArgAfter(words) => {
                let Some(i) = args.iter().position(|a| words.contains(&a.text)) else { continue };
                let Some(a) = args[i + 1..].iter().find(|a| !a.text.starts_with('-')) else { continue };
                (Target::File(a.text.clone()), Some(a.location))
            }
            ConfigSourceKind::Env { name, dir } => {
                let Some(e) = env.iter().find(|e| &e.name == name) else { continue };
                let Some(v) = e.value.clone() else { continue };
                let path = match dir {
                    Some(d) if !v.starts_with('/') => format!("{}/{v}", d.trim_end_matches('/')),
                    _ => v,
                };
                (Target::File(path), Some(e.location))
            }
            ConfigSourceKind::ConfigMap { name, key } => {
                (Target::ConfigMap { name: name.clone(), key: key.clone() }, None)
            }
            ConfigSourceKind::File(p) => (Target::File(p.clone()), None),
            ConfigSourceKind::Directory(p) => (Target::Directory(p.clone()), None),
            ConfigSourceKind::Builtin { node, .. } => {
                // Nothing in the manifest configures the agent: it runs with
                // what its image ships. Findings point at the image.
                let mut node = node.clone();
                expand_env(&mut node, env);
                let describe = format!("the built-in configuration of the image (profile {})", profile.id);
                out.config = Some((describe.clone(), ctx.fallback));
                return Some(ConfigDoc { node, source: None, describe });
            }
        };
        let here = named_at.unwrap_or_else(|| obj.loc(c.span));
        let read: Result<Vec<(String, resolve::FileText)>, (Missing, String)> = match &target {
            Target::File(path) => {
                resolve::read_file(inv, w, obj, c, path).map(|f| vec![(path.clone(), f)]).map_err(|m| (m, path.clone()))
            }
            Target::Directory(path) => {
                resolve::read_directory_files(inv, w, obj, c, path).map_err(|m| (m, path.clone()))
            }
            Target::ConfigMap { name, key } => resolve::read_config_map(inv, obj.ns(), name, key.as_deref())
                .map_err(|m| (m, format!("ConfigMap {name}"))),
        };
        let files = match read {
            Ok(files) => files,
            // A default path the pod does not mount, or an optional source that is
            // not in the input: the next source may apply.
            Err((Missing::NotMounted, _)) if named_at.is_none() => continue,
            Err(_) if src.optional => continue,
            Err((m, path)) => {
                out.problems.push(ConfigProblem {
                    location: here,
                    message: format!("{}: {}; its calls are inferred from its grants", profile.name, m.describe(&path)),
                });
                out.fallback = true;
                return None;
            }
        };
        let Some(doc) = parse_files(profile, sources, src.format, files, out) else {
            out.fallback = true;
            return None;
        };
        let mut doc = doc;
        expand_env(&mut doc.node, env);
        out.config = doc.source.map(|source| (doc.describe.clone(), Location::new(source, doc.node.span)));
        return Some(doc);
    }
    if profile.config.iter().any(|s| !s.optional) {
        out.problems.push(ConfigProblem {
            location: obj.loc(c.span),
            message: format!(
                "{}: its configuration is not in the input (no flag, variable or mounted default names it); its calls are inferred from its grants",
                profile.name
            ),
        });
        out.fallback = true;
    }
    None
}

/// Parses the files of a configuration (one, or every file of a directory)
/// and merges them; spans are remapped to the input.
fn parse_files(
    profile: &Profile,
    sources: &Sources,
    format: Format,
    files: Vec<(String, resolve::FileText)>,
    out: &mut AgentRun,
) -> Option<ConfigDoc> {
    let describe = match files.as_slice() {
        [(_, f)] => f.describe.clone(),
        _ => files.first().map_or_else(String::new, |(_, f)| {
            f.describe.rsplit_once(" key ").map_or(f.describe.clone(), |(o, _)| o.to_string())
        }),
    };
    let mut source = None;
    if format == Format::KeyValue {
        // Each file is one key: its name and its text.
        let mut entries = Vec::new();
        for (name, f) in &files {
            let map = resolve::OffsetMap::new(sources, &f.origin, &f.text);
            source = Some(map.source());
            let key = name.rsplit('/').next().unwrap_or(name);
            let loc = map.location(apiload_yaml::Span::new(0, f.text.len() as u32));
            entries.push(agent_config::entry_node(key, loc.span, agent_config::string_node(&f.text, loc.span)));
        }
        let node = agent_config::map_node(entries, apiload_yaml::Span::point(0));
        return source.map(|source| ConfigDoc { node, source: Some(source), describe });
    }
    let mut docs = Vec::new();
    for (name, f) in &files {
        match agent_config::parse(format.for_file(name), &f.text) {
            Ok(mut node) => {
                let map = resolve::OffsetMap::new(sources, &f.origin, &f.text);
                map.remap(&mut node);
                source = Some(map.source());
                docs.push(node);
            }
            Err(e) => {
                out.problems.push(ConfigProblem {
                    location: f.origin.locate(sources, &f.text, e.offset),
                    message: format!(
                        "{} cannot read its configuration {} (`{name}`): {}; its calls are inferred from its grants",
                        profile.name, f.describe, e.message
                    ),
                });
                return None;
            }
        }
    }
    let node = if docs.len() == 1 { docs.pop()? } else { agent_config::merge(docs) };
    source.map(|source| ConfigDoc { node, source: Some(source), describe })
}

/// The (group, resource) pairs a call names.
fn call_resources(ctx: &Context<'_>, doc: &Json, spec: &super::model::CallSpec) -> Vec<(String, String)> {
    let Some(from) = &spec.resource_from else { return vec![(spec.group.clone(), spec.resource.clone())] };
    let group = spec.group_from.as_ref().and_then(|g| ctx.strings(doc, g).into_iter().next());
    let mut out = Vec::new();
    for s in ctx.strings(doc, from) {
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let name = name.to_ascii_lowercase();
            let (resource, group) = match (name.split_once('.'), &group) {
                (Some((r, g)), _) => (r.to_string(), g.to_string()),
                (None, Some(g)) => (name.clone(), g.clone()),
                (None, None) => {
                    (name.clone(), resources::lookup_any_group(&name).map_or(String::new(), |i| i.group.to_string()))
                }
            };
            if !out.contains(&(group.clone(), resource.clone())) {
                out.push((group, resource));
            }
        }
    }
    out
}

fn value_from(ctx: &Context<'_>, sources: &[ValueSource]) -> Option<(f64, Location)> {
    for s in sources {
        let found = match s {
            ValueSource::Flag(names) => flag_value(&ctx.args, names).map(|(v, a)| (v, a.location)),
            ValueSource::Env(name) => ctx.env.get(name).and_then(|e| e.value.clone().map(|v| (v, e.location))),
            ValueSource::Path(p) => ctx.query(&ctx.json, p).into_iter().next().and_then(|(path, v)| {
                let text = match v {
                    Json::String(s) => s.clone(),
                    Json::Number(n) => n.to_string(),
                    _ => return None,
                };
                Some((text, ctx.locate(&path, None)))
            }),
        };
        if let Some((text, loc)) = found
            && let Ok(n) = text.trim().trim_matches('"').parse::<f64>()
        {
            return Some((n, loc));
        }
    }
    None
}

fn client_limits(profile: &Profile, ctx: &Context<'_>) -> ClientLimits {
    ClientLimits {
        qps: value_from(ctx, &profile.client.qps_from),
        burst: value_from(ctx, &profile.client.burst_from),
        default_qps: profile.client.qps,
    }
}
