//! The cluster's Nodes as the copies model counts them (the cluster
//! profile's `nodePools`, `rules/src/options.rs`): Nodes with the same
//! scheduling-relevant labels and taints form one pool, so that a
//! DaemonSet's `nodeSelector`, node affinity and tolerations select exactly
//! the Nodes they would select in the cluster.
//!
//! Labels that name one Node (`kubernetes.io/hostname`, any label whose
//! value is the Node's own name, and a label that 20 Nodes or more carry
//! with a different value on each) are left out: they would
//! make a pool of every Node. A pool is named after its provider's node
//! pool label when it has one — GKE `cloud.google.com/gke-nodepool`, EKS
//! `eks.amazonaws.com/nodegroup`, eksctl `alpha.eksctl.io/nodegroup-name`,
//! AKS `kubernetes.azure.com/agentpool` and `agentpool`, Karpenter
//! `karpenter.sh/nodepool`, DigitalOcean `doks.digitalocean.com/node-pool`
//! (their documented Node labels) — or a label the caller names.

use apiload_rules::options::{NodePool, Taint};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Provider labels that name a Node's pool, most specific first.
pub const POOL_LABELS: &[&str] = &[
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "alpha.eksctl.io/nodegroup-name",
    "kubernetes.azure.com/agentpool",
    "agentpool",
    "karpenter.sh/nodepool",
    "doks.digitalocean.com/node-pool",
];

/// Pools beyond this are merged by their pool label (or their taints):
/// so many distinct label sets mean a label that varies per Node.
const MAX_POOLS: usize = 200;

/// What is kept of one Node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<(String, String, String)>,
}

/// A Node's name, labels and taints from its JSON; the rest is dropped at once.
pub fn facts(node: &Value) -> Option<NodeFacts> {
    let name = node.pointer("/metadata/name")?.as_str()?.to_string();
    let labels = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    let taints = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    let key = s("key");
                    (!key.is_empty()).then(|| (key, s("value"), s("effect")))
                })
                .collect()
        })
        .unwrap_or_default();
    Some(NodeFacts { name, labels, taints })
}

/// The pools of a set of Nodes, largest first (ties by name).
pub fn pools(nodes: &[NodeFacts], pool_label: Option<&str>) -> Vec<NodePool> {
    if nodes.is_empty() {
        return Vec::new();
    }
    // Per label: its distinct values, and how many Nodes carry it.
    let mut distinct: HashMap<&str, (BTreeSet<&str>, usize)> = HashMap::new();
    for n in nodes {
        for (k, v) in &n.labels {
            let e = distinct.entry(k).or_default();
            e.0.insert(v);
            e.1 += 1;
        }
    }
    let per_node = |key: &str, value: &str, node: &NodeFacts| {
        key == "kubernetes.io/hostname"
            || value == node.name
            || distinct.get(key).is_some_and(|(values, carriers)| *carriers >= 20 && values.len() == *carriers)
    };
    let label_keys: Vec<&str> = match pool_label {
        Some(l) => vec![l],
        None => POOL_LABELS.to_vec(),
    };
    let pool_name = |n: &NodeFacts| label_keys.iter().find_map(|k| n.labels.get(*k).filter(|v| !v.is_empty()).cloned());
    type Key = (Option<String>, Vec<(String, String)>, Vec<(String, String, String)>);
    let key_of = |n: &NodeFacts, with_labels: bool| -> Key {
        let labels = if with_labels {
            n.labels.iter().filter(|(k, v)| !per_node(k, v, n)).map(|(k, v)| (k.clone(), v.clone())).collect()
        } else {
            Vec::new()
        };
        let mut taints = n.taints.clone();
        taints.sort();
        (pool_name(n), labels, taints)
    };
    let mut groups: BTreeMap<Key, Vec<&NodeFacts>> = BTreeMap::new();
    for n in nodes {
        groups.entry(key_of(n, true)).or_default().push(n);
    }
    if groups.len() > MAX_POOLS {
        groups.clear();
        for n in nodes {
            groups.entry(key_of(n, false)).or_default().push(n);
        }
    }
    let mut out: Vec<(Option<String>, NodePool)> = groups
        .into_iter()
        .map(|((name, _, _), members)| {
            // What every member shares: the labels selectors can count on.
            let mut labels: BTreeMap<&str, &str> = members[0]
                .labels
                .iter()
                .filter(|(k, v)| !per_node(k, v, members[0]))
                .map(|(k, v)| (&**k, &**v))
                .collect();
            let mut taints: Vec<&(String, String, String)> = members[0].taints.iter().collect();
            for m in &members[1..] {
                labels.retain(|k, v| m.labels.get(*k).is_some_and(|x| x == v));
                taints.retain(|t| m.taints.contains(t));
            }
            let pool = NodePool {
                name: String::new(),
                nodes: members.len() as u64,
                labels: labels.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                taints: taints
                    .into_iter()
                    .map(|(key, value, effect)| Taint {
                        key: key.clone(),
                        value: value.clone(),
                        effect: effect.clone(),
                    })
                    .collect(),
            };
            (name, pool)
        })
        .collect();
    out.sort_by(|a, b| b.1.nodes.cmp(&a.1.nodes).then_with(|| a.0.cmp(&b.0)).then_with(|| a.1.labels.cmp(&b.1.labels)));
    // Names: the pool label's value, made unique; `nodes-N` without one.
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut unnamed = 0;
    out.into_iter()
        .map(|(name, mut pool)| {
            let base = name.unwrap_or_else(|| {
                unnamed += 1;
                format!("nodes-{unnamed}")
            });
            let n = used.entry(base.clone()).or_insert(0);
            *n += 1;
            pool.name = if *n == 1 { base } else { format!("{base}-{n}") };
            pool
        })
        .collect()
}

/// The cluster profile of what was read, as `--cluster-profile` takes it
/// (docs/cost-model.md): so that `apiload lint` judges manifests for this cluster.
pub fn cluster_profile(nodes: u64, minor: Option<u32>, pools: &[NodePool]) -> Value {
    let mut profile = json!({"nodes": nodes.max(1)});
    if let Some(m) = minor {
        profile["kubernetesVersion"] = json!(format!("1.{m}"));
    }
    if !pools.is_empty() {
        profile["nodePools"] = pools
            .iter()
            .map(|p| {
                let mut v = json!({"name": p.name, "nodes": p.nodes});
                if !p.labels.is_empty() {
                    v["labels"] =
                        p.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>().into();
                }
                if !p.taints.is_empty() {
                    v["taints"] =
                        p.taints.iter().map(|t| json!({"key": t.key, "value": t.value, "effect": t.effect})).collect();
                }
                v
            })
            .collect();
    }
    profile
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str, &str)]) -> NodeFacts {
        facts(&json!({
            "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()},
            "spec": {"taints": taints.iter().map(|(k, v, e)| json!({"key": k, "value": v, "effect": e})).collect::<Vec<_>>()},
            "status": {"images": [{"names": ["x"]}]},
        }))
        .unwrap()
    }

    #[test]
    fn pools_by_labels_and_taints_named_by_the_provider() {
        let mut nodes = Vec::new();
        for i in 0..30 {
            let name = format!("general-{i}");
            let zone = if i % 2 == 0 { "a" } else { "b" };
            nodes.push(node(
                &name,
                &[
                    ("kubernetes.io/hostname", name.as_str()),
                    ("cloud.google.com/gke-nodepool", "general"),
                    ("topology.kubernetes.io/zone", zone),
                    ("node.example.com/id", name.as_str()),
                ],
                &[],
            ));
        }
        for i in 0..5 {
            let name = format!("gpu-{i}");
            nodes.push(node(
                &name,
                &[("cloud.google.com/gke-nodepool", "gpu"), ("accelerator", "nvidia")],
                &[("nvidia.com/gpu", "present", "NoSchedule")],
            ));
        }
        let p = pools(&nodes, None);
        let summary: Vec<(&str, u64)> = p.iter().map(|p| (p.name.as_str(), p.nodes)).collect();
        // The zone splits the general pool; the hostname and id do not.
        assert_eq!(summary, [("general", 15), ("general-2", 15), ("gpu", 5)]);
        assert!(p[0].labels.contains(&("topology.kubernetes.io/zone".into(), "a".into())));
        assert!(!p[0].labels.iter().any(|(k, _)| k == "kubernetes.io/hostname" || k == "node.example.com/id"));
        assert_eq!(
            p[2].taints,
            [Taint { key: "nvidia.com/gpu".into(), value: "present".into(), effect: "NoSchedule".into() }]
        );
        let profile = cluster_profile(35, Some(34), &p);
        assert_eq!(profile["nodePools"][2]["labels"]["accelerator"], "nvidia");
        assert_eq!(profile["kubernetesVersion"], "1.34");
    }

    #[test]
    fn nodes_without_a_pool_label_are_numbered() {
        let nodes = [node("a", &[("role", "x")], &[]), node("b", &[("role", "x")], &[]), node("c", &[], &[])];
        let p = pools(&nodes, None);
        assert_eq!(p.iter().map(|p| (p.name.as_str(), p.nodes)).collect::<Vec<_>>(), [("nodes-1", 2), ("nodes-2", 1)]);
        assert!(pools(&[], None).is_empty());
    }
}
