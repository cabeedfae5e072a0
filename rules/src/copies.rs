//! How many copies of a workload run at production size, and what says so.
//!
//! - A DaemonSet runs on every node it schedules on: with the cluster
//!   profile's node pools, the pools whose labels its `nodeSelector` and
//!   required node affinity match and whose `NoSchedule`/`NoExecute` taints
//!   it tolerates; without pools, on every node (an assumption findings
//!   state); with `apiload.dev/expected-nodes`, on that many.
//! - A Deployment, StatefulSet, ReplicaSet or ReplicationController runs its
//!   HorizontalPodAutoscaler's `maxReplicas`, or what a
//!   cluster-proportional-autoscaler (kubernetes-sigs) computes for the
//!   profile's nodes and cores, or its `replicas`.
//! - A Job runs `parallelism` pods; a bare Pod, one.

use crate::inventory::Inventory;
use crate::object::Object;
use crate::options::{ClusterProfile, NodePool, Options};
use crate::source::Location;
use crate::workload::{NodeRequirement, Placement, Workload, WorkloadKind};
use std::collections::HashMap;

/// Annotation on a workload declaring how many nodes a DaemonSet pinned to a
/// node pool runs on.
pub const EXPECTED_NODES_ANNOTATION: &str = "apiload.dev/expected-nodes";

#[derive(Clone, Debug)]
pub struct FanOut {
    /// How many copies run at production size.
    pub copies: u64,
    /// True when the copies follow the node count (a DaemonSet) or are at
    /// least `fanout_min_replicas`: every copy's API traffic multiplies.
    pub per_node: bool,
    pub basis: FanOutBasis,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FanOutBasis {
    /// One copy per node it schedules on.
    DaemonSet(DaemonSetNodes),
    Replicas(Option<Location>),
    Hpa(Location),
    /// Scaled with the cluster by a cluster-proportional-autoscaler.
    Proportional(Proportional),
    Parallelism(Option<Location>),
    Pod,
}

/// Which nodes a DaemonSet is counted on.
#[derive(Clone, Debug, PartialEq)]
pub enum DaemonSetNodes {
    /// `apiload.dev/expected-nodes`.
    Declared(Location),
    /// The cluster profile's pools it schedules on.
    Pools(Vec<String>),
    /// Every node: the cluster profile names no pools. `restricted` when its
    /// `nodeSelector` or node affinity narrows it to nodes the profile does
    /// not describe.
    Assumed { restricted: bool },
}

/// A cluster-proportional-autoscaler scaling a workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Proportional {
    /// `Deployment kube-system/coredns-autoscaler`.
    pub autoscaler: String,
    /// What the parameters say, in words: "one per 16 nodes", "by ladder".
    pub rule: String,
    /// The parameters (the ConfigMap key, or `--default-params`).
    pub location: Location,
}

/// The cluster-proportional-autoscalers of an input, by the workload they
/// scale: `(namespace, lower-case kind, name)`.
pub type Autoscalers = HashMap<(Box<str>, String, Box<str>), Autoscaler>;

/// What one autoscaler says.
#[derive(Clone, Debug)]
pub struct Autoscaler {
    pub workload: String,
    pub params: Option<(Params, Location)>,
}

/// `linear` or `ladder` parameters (cluster-proportional-autoscaler
/// `pkg/autoscaler/controller/{linearcontroller,laddercontroller}`).
#[derive(Clone, Debug, PartialEq)]
pub enum Params {
    Linear { cores_per_replica: f64, nodes_per_replica: f64, min: u64, max: u64, prevent_single_point_failure: bool },
    Ladder { cores_to_replicas: Vec<(f64, u64)>, nodes_to_replicas: Vec<(f64, u64)> },
}

impl Params {
    /// Replicas at `nodes` nodes with `cores` cores, as the controllers compute them.
    pub fn replicas(&self, nodes: f64, cores: f64) -> u64 {
        match self {
            Params::Linear { cores_per_replica, nodes_per_replica, min, max, prevent_single_point_failure } => {
                // `min: 0` defaults to 1; `max: 0` means no maximum; a zero
                // per-replica ratio contributes 1.
                let min = (*min).max(1);
                let from = |amount: f64, per: f64| -> u64 {
                    if per <= 0.0 {
                        return 1;
                    }
                    let n = (amount / per).ceil() as u64;
                    let n = if *max > 0 { n.min(*max) } else { n };
                    n.max(min)
                };
                let n = from(cores, *cores_per_replica).max(from(nodes, *nodes_per_replica));
                if *prevent_single_point_failure && nodes > 1.0 { n.max(2) } else { n }
            }
            Params::Ladder { cores_to_replicas, nodes_to_replicas } => {
                // The entry of the highest threshold not above the amount
                // (the first entry below every threshold); 1 without entries.
                let step = |amount: f64, entries: &[(f64, u64)]| -> u64 {
                    let pos = entries.iter().position(|(at, _)| amount < *at).unwrap_or(entries.len());
                    entries.get(pos.saturating_sub(1)).map_or(1, |(_, n)| *n)
                };
                step(cores, cores_to_replicas).max(step(nodes, nodes_to_replicas))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Params::Linear { nodes_per_replica, cores_per_replica, .. } if *nodes_per_replica > 0.0 => {
                format!("linear, one per {nodes_per_replica} nodes or {cores_per_replica} cores")
            }
            Params::Linear { cores_per_replica, .. } => format!("linear, one per {cores_per_replica} cores"),
            Params::Ladder { .. } => "ladder".into(),
        }
    }
}

/// What a cluster-proportional-autoscaler container is told: which workload
/// it scales (`--target=KIND/NAME`, in `--namespace`, else its own), where
/// its parameters are (`--configmap`), and `--default-params` (which only
/// seed the ConfigMap when it is absent).
#[derive(Clone, Debug, PartialEq)]
pub struct AutoscalerSpec {
    pub namespace: Box<str>,
    /// Lower case: the flag is not case sensitive.
    pub kind: String,
    pub name: Box<str>,
    pub config_map: Option<Box<str>>,
    /// The default parameters' text and where it is.
    pub default_params: Option<(String, Location)>,
}

/// The autoscaler a workload runs, when it runs one.
pub fn autoscaler_spec(w: &Workload, obj: &Object) -> Option<AutoscalerSpec> {
    w.containers().find_map(|c| {
        let image = c.image.as_ref().map_or("", |i| &*i.value);
        let repository = crate::profile::context::split_image(image).0;
        let runs = |s: &str| s.rsplit('/').next().unwrap_or(s).starts_with("cluster-proportional-autoscaler");
        if !runs(repository) && !c.command.first().is_some_and(|a| runs(&a.value)) {
            return None;
        }
        let args: Vec<_> = c.command.iter().chain(&c.args).collect();
        let flag = |name: &str| {
            args.iter().enumerate().find_map(|(i, a)| match a.value.strip_prefix(name) {
                Some(rest) if rest.starts_with('=') => Some((rest[1..].to_string(), obj.loc(a.span))),
                Some("") => args.get(i + 1).map(|v| (v.value.to_string(), obj.loc(v.span))),
                _ => None,
            })
        };
        let (target, _) = flag("--target")?;
        let (kind, name) = target.split_once('/')?;
        Some(AutoscalerSpec {
            namespace: flag("--namespace").map_or_else(|| obj.ns().into(), |(n, _)| n.into()),
            kind: kind.to_ascii_lowercase(),
            name: name.into(),
            config_map: flag("--configmap").map(|(c, _)| c.into()),
            default_params: flag("--default-params"),
        })
    })
}

/// Finds the input's cluster-proportional-autoscalers and reads their
/// parameters: the ConfigMap's `linear` or `ladder` key, else the defaults.
pub fn autoscalers(inv: &Inventory) -> Autoscalers {
    let mut out = Autoscalers::new();
    for w in &inv.workloads {
        let obj = inv.object(w.object);
        let Some(spec) = autoscaler_spec(w, obj) else { continue };
        let from_config_map = spec.config_map.as_deref().and_then(|cm| {
            let holder = inv.config_map(&spec.namespace, cm)?;
            let data = holder.node.get("data")?;
            ["linear", "ladder"].iter().find_map(|mode| {
                let value = data.get(mode)?;
                Some((parse_params(mode, value.as_str()?)?, holder.loc(value.span)))
            })
        });
        let from_defaults = || {
            let (text, at) = spec.default_params.as_ref()?;
            let json: serde_json::Value = serde_json::from_str(text).ok()?;
            let (mode, params) = json.as_object()?.iter().next()?;
            Some((parse_params(mode, &params.to_string())?, *at))
        };
        let params = from_config_map.or_else(from_defaults);
        out.insert((spec.namespace, spec.kind, spec.name), Autoscaler { workload: obj.display(), params });
    }
    out
}

fn parse_params(mode: &str, text: &str) -> Option<Params> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let num = |k: &str| v.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    let steps = |k: &str| -> Vec<(f64, u64)> {
        v.get(k)
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let pair = e.as_array()?;
                Some((pair.first()?.as_f64()?, pair.get(1)?.as_u64()?))
            })
            .collect()
    };
    match mode {
        "linear" => Some(Params::Linear {
            cores_per_replica: num("coresPerReplica"),
            nodes_per_replica: num("nodesPerReplica"),
            min: num("min").max(0.0) as u64,
            max: num("max").max(0.0) as u64,
            prevent_single_point_failure: v.get("preventSinglePointFailure").and_then(|b| b.as_bool()) == Some(true),
        }),
        "ladder" => {
            let (mut cores, mut nodes) = (steps("coresToReplicas"), steps("nodesToReplicas"));
            cores.sort_by(|a, b| a.0.total_cmp(&b.0));
            nodes.sort_by(|a, b| a.0.total_cmp(&b.0));
            Some(Params::Ladder { cores_to_replicas: cores, nodes_to_replicas: nodes })
        }
        _ => None,
    }
}

/// The fan-out of one workload.
pub fn fan_out(inv: &Inventory, autoscalers: &Autoscalers, w: &Workload, obj: &Object, options: &Options) -> FanOut {
    let threshold = options.fanout_min_replicas;
    let replicated = |copies: u64, basis: FanOutBasis| FanOut { copies, per_node: copies >= threshold, basis };
    let cluster = &options.cluster;
    match w.kind {
        WorkloadKind::DaemonSet => {
            let declared = obj
                .annotation(EXPECTED_NODES_ANNOTATION)
                .and_then(|(v, span)| v.trim().parse::<u64>().ok().map(|n| (n, obj.loc(span))));
            let (copies, nodes) = match declared {
                Some((n, at)) => (n, DaemonSetNodes::Declared(at)),
                None if cluster.node_pools.is_empty() => {
                    (cluster.nodes, DaemonSetNodes::Assumed { restricted: w.pod.placement.restricted() })
                }
                None => scheduled(cluster, &w.pod.placement),
            };
            // A DaemonSet that schedules on no node of the profile runs nowhere.
            FanOut { copies, per_node: copies > 0, basis: FanOutBasis::DaemonSet(nodes) }
        }
        WorkloadKind::Pod => FanOut { copies: 1, per_node: false, basis: FanOutBasis::Pod },
        WorkloadKind::Job | WorkloadKind::CronJob => {
            let n = w.replicas.as_ref().map_or(1, |r| r.value.max(0) as u64);
            replicated(n, FanOutBasis::Parallelism(w.replicas.as_ref().map(|r| obj.loc(r.span))))
        }
        _ => {
            if let Some(hpa) = inv.hpa_for(obj.ns(), &obj.kind, &obj.name) {
                return replicated(hpa.max_replicas.max(0) as u64, FanOutBasis::Hpa(hpa.max_location));
            }
            let key = (Box::from(obj.ns()), obj.kind.as_str().to_ascii_lowercase(), Box::from(obj.name.as_str()));
            if let Some(a) = autoscalers.get(&key)
                && let Some((params, location)) = &a.params
            {
                let n = params.replicas(cluster.nodes as f64, cluster.cores());
                let basis =
                    Proportional { autoscaler: a.workload.clone(), rule: params.describe(), location: *location };
                return replicated(n, FanOutBasis::Proportional(basis));
            }
            let n = w.replicas.as_ref().map_or(1, |r| r.value.max(0) as u64);
            replicated(n, FanOutBasis::Replicas(w.replicas.as_ref().map(|r| obj.loc(r.span))))
        }
    }
}

/// The nodes of the pools a pod schedules on, and those pools' names. The
/// part of the cluster no pool describes (when `nodes` exceeds the pools)
/// has no labels and no taints.
fn scheduled(cluster: &ClusterProfile, placement: &Placement) -> (u64, DaemonSetNodes) {
    let mut copies = 0;
    let mut names = Vec::new();
    for pool in &cluster.node_pools {
        if schedules_on(placement, pool) {
            copies += pool.nodes;
            names.push(pool.name.clone());
        }
    }
    let described: u64 = cluster.node_pools.iter().map(|p| p.nodes).sum();
    let rest = cluster.nodes.saturating_sub(described);
    if rest > 0 && schedules_on(placement, &NodePool { name: "other".into(), nodes: rest, ..NodePool::default() }) {
        copies += rest;
        names.push("the rest".into());
    }
    (copies, DaemonSetNodes::Pools(names))
}

/// Whether a pod with `placement` may run on the nodes of `pool`: its node
/// selector and one of its required terms match the pool's labels, and it
/// tolerates every `NoSchedule` and `NoExecute` taint (as the scheduler and
/// the DaemonSet controller decide).
pub fn schedules_on(placement: &Placement, pool: &NodePool) -> bool {
    let label = |k: &str| pool.labels.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let selected = placement.node_selector.iter().all(|(k, v)| label(k) == Some(&**v));
    let term = |t: &[NodeRequirement]| t.iter().all(|r| requirement_matches(r, label(&r.key)));
    let affine = placement.required_terms.is_empty() || placement.required_terms.iter().any(|t| term(t));
    let tolerated = pool.taints.iter().filter(|t| t.effect != "PreferNoSchedule").all(|taint| {
        placement.tolerations.iter().any(|t| {
            let key = t.key.is_empty() && &*t.operator == "Exists" || *t.key == *taint.key;
            let value = &*t.operator == "Exists" || *t.value == *taint.value;
            let effect = t.effect.is_empty() || *t.effect == *taint.effect;
            key && value && effect
        })
    });
    selected && affine && tolerated
}

fn requirement_matches(r: &NodeRequirement, value: Option<&str>) -> bool {
    let number = |s: &str| s.parse::<i64>().ok();
    match (&*r.operator, value) {
        ("In", Some(v)) => r.values.iter().any(|x| **x == *v),
        ("NotIn", v) => v.is_none_or(|v| !r.values.iter().any(|x| **x == *v)),
        ("Exists", v) => v.is_some(),
        ("DoesNotExist", v) => v.is_none(),
        ("Gt", Some(v)) => number(v).zip(r.values.first().and_then(|x| number(x))).is_some_and(|(a, b)| a > b),
        ("Lt", Some(v)) => number(v).zip(r.values.first().and_then(|x| number(x))).is_some_and(|(a, b)| a < b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Taint;
    use crate::workload::Toleration;

    #[test]
    fn linear_parameters_as_the_controller_computes_them() {
        // coredns' chart: one per 16 nodes or 256 cores, min 0 (→ 1), max 0 (none).
        let p = Params::Linear {
            cores_per_replica: 256.0,
            nodes_per_replica: 16.0,
            min: 0,
            max: 0,
            prevent_single_point_failure: true,
        };
        assert_eq!(p.replicas(5_000.0, 80_000.0), 313);
        assert_eq!(p.replicas(1.0, 16.0), 1);
        assert_eq!(p.replicas(3.0, 48.0), 2); // preventSinglePointFailure
        // The controller's own test table (`TestScaleFromMultipleParams`).
        let p = Params::Linear {
            cores_per_replica: 2.0,
            nodes_per_replica: 2.5,
            min: 1,
            max: 100,
            prevent_single_point_failure: true,
        };
        for (cores, nodes, want) in [(0.0, 0.0, 1), (6.0, 4.0, 3), (8.0, 16.0, 7), (23.0, 20.0, 12), (40.0, 20.0, 20)] {
            assert_eq!(p.replicas(nodes, cores), want, "{cores} cores, {nodes} nodes");
        }
    }

    #[test]
    fn ladder_parameters_take_the_step_reached() {
        let p = Params::Ladder {
            cores_to_replicas: vec![(1.0, 1), (64.0, 3), (512.0, 5)],
            nodes_to_replicas: vec![(1.0, 1), (2.0, 2)],
        };
        assert_eq!(p.replicas(1.0, 1.0), 1);
        assert_eq!(p.replicas(2.0, 100.0), 3);
        assert_eq!(p.replicas(5_000.0, 80_000.0), 5);
        assert_eq!(Params::Ladder { cores_to_replicas: vec![], nodes_to_replicas: vec![] }.replicas(9.0, 9.0), 1);
    }

    #[test]
    fn pools_are_matched_by_labels_affinity_and_taints() {
        let pool = |labels: &[(&str, &str)], taints: &[(&str, &str)]| NodePool {
            name: "p".into(),
            nodes: 10,
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            taints: taints
                .iter()
                .map(|(k, e)| Taint { key: k.to_string(), value: String::new(), effect: e.to_string() })
                .collect(),
        };
        let linux = pool(&[("kubernetes.io/os", "linux")], &[]);
        let windows = pool(&[("kubernetes.io/os", "windows")], &[]);
        let gpu = pool(&[("kubernetes.io/os", "linux"), ("gpu", "true")], &[("nvidia.com/gpu", "NoSchedule")]);
        let selector =
            Placement { node_selector: vec![("kubernetes.io/os".into(), "windows".into())], ..Placement::default() };
        assert!(schedules_on(&selector, &windows) && !schedules_on(&selector, &linux));
        let anywhere = Placement::default();
        assert!(schedules_on(&anywhere, &linux) && !schedules_on(&anywhere, &gpu));
        let tolerant = Placement {
            tolerations: vec![Toleration { operator: "Exists".into(), ..Toleration::default() }],
            ..Placement::default()
        };
        assert!(schedules_on(&tolerant, &gpu));
        let affinity = Placement {
            required_terms: vec![vec![NodeRequirement {
                key: "gpu".into(),
                operator: "In".into(),
                values: vec!["true".into()],
            }]],
            tolerations: vec![Toleration {
                key: "nvidia.com/gpu".into(),
                operator: "Exists".into(),
                ..Toleration::default()
            }],
            ..Placement::default()
        };
        assert!(schedules_on(&affinity, &gpu) && !schedules_on(&affinity, &linux));
    }
}
