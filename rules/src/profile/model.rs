//! What a profile says, once read. The format is documented in
//! `docs/profiles.md`; `load.rs` reads it.

use crate::agent_config::Format;
use jsonpath_rust::parser::model::JpQuery;

/// A compiled JSONPath with its text (for messages).
#[derive(Clone, Debug)]
pub struct Path {
    pub text: String,
    pub query: JpQuery,
}

#[derive(Clone, Debug)]
pub struct Profile {
    pub id: String,
    pub name: String,
    pub description: String,
    pub sources: Vec<String>,
    pub images: Vec<String>,
    pub commands: Vec<String>,
    /// Images and commands of the same project that are other programs (an
    /// operator, a controller, a load generator): never this agent.
    pub exclude_images: Vec<String>,
    pub exclude_commands: Vec<String>,
    pub config: Vec<ConfigSource>,
    pub client: ClientSpec,
    pub uses: Vec<Use>,
    /// Where the profile came from (`built-in` or a file name), for messages.
    pub origin: String,
}

/// Where an agent's configuration lives. The first source that is present
/// in the container's arguments or environment decides; a `path` source
/// applies when nothing before it did.
#[derive(Clone, Debug)]
pub struct ConfigSource {
    pub kind: ConfigSourceKind,
    pub format: Format,
    /// When true, not finding this configuration in the input is normal.
    pub optional: bool,
    /// The source is considered only when this holds (evaluated on the
    /// document without `config`: env, args, flags, image, workload).
    pub when: Option<Condition>,
}

#[derive(Clone, Debug)]
pub enum ConfigSourceKind {
    /// A flag whose value is the file (`--config=/etc/x.yaml`, `--config /etc/x.yaml`).
    Flag(Vec<String>),
    /// A flag whose value is a directory of files (a mounted ConfigMap).
    DirectoryFlag(Vec<String>),
    /// An environment variable holding the file name, relative to `dir`.
    Env { name: String, dir: Option<String> },
    /// The argument after one of these words (`alloy run /etc/alloy/config.alloy`).
    ArgAfter(Vec<String>),
    /// A ConfigMap of the workload's namespace, read by the agent through the
    /// API (Cilium's `cilium-dbg build-config`): all keys, or one.
    ConfigMap { name: String, key: Option<String> },
    /// A fixed path (the agent's default).
    File(String),
    /// A fixed directory (the agent's default).
    Directory(String),
    /// The configuration the image runs with when nothing else applies (a
    /// default file baked into the image), as text in the profile; parsed
    /// when the profile is loaded.
    Builtin { text: String, node: apiload_yaml::Node },
}

#[derive(Clone, Debug, Default)]
pub struct ClientSpec {
    /// Default queries per second of the agent's API client (client-go's is 5).
    pub qps: Option<f64>,
    pub burst: Option<f64>,
    pub qps_from: Vec<ValueSource>,
    pub burst_from: Vec<ValueSource>,
}

#[derive(Clone, Debug)]
pub enum ValueSource {
    Flag(Vec<String>),
    Env(String),
    Path(Path),
}

/// One thing the agent does with the API, under conditions.
#[derive(Clone, Debug)]
pub struct Use {
    pub id: String,
    pub description: String,
    /// Evaluate once per selected item (`$.item` in the conditions below).
    pub for_each: Option<Path>,
    /// A display name of the item (`$.item.id`).
    pub label: Option<Path>,
    pub when: Option<Condition>,
    /// When true, only the elected leader makes these calls.
    pub central_when: Option<Condition>,
    /// The fan-out is inherent to the agent's role (a CNI must see every
    /// Service); reported, but at most as a warning.
    pub inherent: Option<String>,
    pub calls: Vec<CallSpec>,
}

#[derive(Clone, Debug)]
pub struct CallSpec {
    pub group: String,
    pub resource: String,
    /// Resources named by the configuration (`kinds: [pods, nodes]`,
    /// `--resources=pods,nodes`): strings are split at commas, and a name
    /// without a group takes the group the catalog knows it in.
    pub resource_from: Option<Path>,
    pub group_from: Option<Path>,
    pub list: bool,
    pub watch: bool,
    pub get: bool,
    pub scope: ScopeSpec,
    pub node_scoped_when: Option<Condition>,
    pub namespaces: Option<Path>,
    pub when: Option<Condition>,
    /// The configuration node a finding points at.
    pub key: Option<Path>,
    pub because: Option<String>,
    pub fix: Option<String>,
    /// Seconds between the LISTs of a call that polls instead of watching.
    pub every: Option<f64>,
    /// When true, the call LISTs with the most-recent semantic (resourceVersion
    /// unset): a quorum read the watch cache serves only on newer API servers.
    pub consistent_list_when: Option<Condition>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeSpec {
    Cluster,
    Node,
    /// One named object (`get` of the own Node, a Lease).
    Object,
}

#[derive(Clone, Debug)]
pub enum Condition {
    /// The path selects something; with `equals`, something equal to one of the values.
    Path {
        path: Path,
        equals: Vec<serde_json::Value>,
    },
    Absent(Path),
    Version {
        op: VersionOp,
        version: Vec<u64>,
    },
    /// The string the path selects names an environment variable set from `spec.nodeName`.
    EnvNamesNode(Path),
    Any(Vec<Condition>),
    All(Vec<Condition>),
    Not(Box<Condition>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}
