//! The state of a cluster, indexed both ways for the joins a review makes:
//! forward from a workload to everything its analysis reads, and backward
//! from any object to the workloads whose analysis reads it.

use crate::object::Object;
use crate::rbac::{self, LabelSelector, Principal, RoleKind};
use crate::workload::{Workload, controlling_owner};
use apiload_yaml::CompactString;
use std::collections::{HashMap, HashSet};

/// Names one object of the cluster. `namespace` is empty for cluster-scoped kinds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub kind: CompactString,
    pub namespace: CompactString,
    pub name: CompactString,
}

impl ObjectKey {
    pub fn new(kind: &str, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey { kind: kind.into(), namespace: namespace.into(), name: name.into() }
    }

    pub fn of(obj: &Object) -> ObjectKey {
        ObjectKey::new(&obj.kind, obj.ns(), &obj.name)
    }
}

/// Kinds a [`ClusterState`] keeps: those the analysis of a workload reads.
pub fn is_state_kind(kind: &str) -> bool {
    crate::kube::kinds::is_analyzed_kind(kind)
}

/// What an object points at, read once when it enters the state.
#[derive(Clone, Debug)]
pub(crate) enum Links {
    Workload {
        service_account: Box<str>,
        /// `(kind, name)` of the ConfigMaps and Secrets it reads.
        configs: Vec<(&'static str, Box<str>)>,
        /// For a cluster-proportional-autoscaler: the workload it scales
        /// `(namespace, lower-case kind, name)` and its parameters' ConfigMap.
        autoscales: Option<(AutoscaledKey, Option<Box<str>>)>,
    },
    Binding {
        principals: Vec<Principal>,
        role: ObjectKey,
    },
    ClusterRole {
        labels: Vec<(Box<str>, Box<str>)>,
        aggregation: Option<Vec<LabelSelector>>,
    },
    Hpa {
        target: ObjectKey,
    },
    /// ServiceAccounts, Roles, ConfigMaps, Secrets, FlowSchemas and the
    /// rest, and objects whose fields cannot be read (the analysis reports those).
    Plain,
}

impl Links {
    pub(crate) fn read(obj: &Object) -> Links {
        match &*obj.kind {
            "RoleBinding" | "ClusterRoleBinding" => match rbac::parse_binding(obj) {
                Ok(b) => Links::Binding {
                    principals: b.subjects.iter().filter_map(|s| Principal::of(&s.kind)).collect(),
                    role: match b.role_kind {
                        RoleKind::Role => ObjectKey::new("Role", obj.ns(), &b.role_name),
                        RoleKind::ClusterRole => ObjectKey::new("ClusterRole", "", &b.role_name),
                    },
                },
                Err(_) => Links::Plain,
            },
            "ClusterRole" => match rbac::parse_role(obj) {
                Ok(r) => Links::ClusterRole { labels: r.labels, aggregation: r.aggregation },
                Err(_) => Links::Plain,
            },
            "HorizontalPodAutoscaler" => {
                let target = obj.node.path(&["spec", "scaleTargetRef"]);
                let field = |k: &str| target.and_then(|t| t.get(k)).and_then(|v| v.as_str());
                match (field("kind"), field("name")) {
                    (Some(kind), Some(name)) => Links::Hpa { target: ObjectKey::new(kind, obj.ns(), name) },
                    _ => Links::Plain,
                }
            }
            _ => match Workload::read(0, obj) {
                Some(Ok(w)) => Links::Workload {
                    service_account: w.pod.service_account.as_ref().map_or("default".into(), |s| s.value.clone()),
                    configs: w.references().into_iter().map(|(k, n)| (k.kind(), n)).collect(),
                    autoscales: crate::copies::autoscaler_spec(&w, obj)
                        .map(|a| ((a.namespace.clone(), a.kind, a.name), a.config_map)),
                },
                _ => Links::Plain,
            },
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub object: Object,
    pub links: Links,
}

type Index<K> = HashMap<K, HashSet<ObjectKey>>;

/// A workload as an autoscaler names it: `(namespace, lower-case kind, name)`.
pub(crate) type AutoscaledKey = (Box<str>, String, Box<str>);

/// The key an autoscaler would name `key` by.
pub(crate) fn autoscaled_key(key: &ObjectKey) -> AutoscaledKey {
    (key.namespace.as_str().into(), key.kind.as_str().to_ascii_lowercase(), key.name.as_str().into())
}

fn index_add<K: std::hash::Hash + Eq>(index: &mut Index<K>, k: K, v: &ObjectKey) {
    index.entry(k).or_default().insert(v.clone());
}

fn index_remove<K: std::hash::Hash + Eq>(index: &mut Index<K>, k: &K, v: &ObjectKey) {
    if let Some(set) = index.get_mut(k) {
        set.remove(v);
        if set.is_empty() {
            index.remove(k);
        }
    }
}

/// The objects of a cluster that workload analyses read, with the indexes
/// that find, for any object, the workloads it concerns and, for any
/// workload, the objects its analysis needs.
#[derive(Debug, Default)]
pub struct ClusterState {
    objects: HashMap<ObjectKey, Stored>,
    workloads: HashSet<ObjectKey>,
    /// `(namespace, ServiceAccount)` → workloads running as it.
    workloads_by_identity: Index<(Box<str>, Box<str>)>,
    workloads_by_namespace: Index<Box<str>>,
    /// `(namespace, kind, name)` of a ConfigMap or Secret → workloads reading it.
    workloads_by_config: Index<(Box<str>, &'static str, Box<str>)>,
    bindings_by_principal: Index<Principal>,
    /// Role or ClusterRole → bindings referring to it.
    bindings_by_role: Index<ObjectKey>,
    cluster_roles: HashSet<ObjectKey>,
    hpas_by_target: Index<ObjectKey>,
    /// Cluster-proportional-autoscalers by the workload they scale.
    autoscalers_by_target: Index<AutoscaledKey>,
    /// `(namespace, ConfigMap)` of an autoscaler's parameters → the autoscalers.
    autoscalers_by_config: Index<(Box<str>, Box<str>)>,
    /// FlowSchemas and PriorityLevelConfigurations: every analysis reads them.
    everywhere: HashSet<ObjectKey>,
}

impl ClusterState {
    pub fn new() -> ClusterState {
        ClusterState::default()
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Number of workloads kept (objects owned by a controller are not).
    pub fn workload_count(&self) -> usize {
        self.workloads.len()
    }

    pub fn get(&self, key: &ObjectKey) -> Option<&Object> {
        self.objects.get(key).map(|s| &s.object)
    }

    pub(crate) fn stored(&self, key: &ObjectKey) -> Option<&Stored> {
        self.objects.get(key)
    }

    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.objects.values().map(|s| &s.object)
    }

    /// Adds or replaces an object. Kinds no analysis reads, and workloads
    /// owned by a controller (judged through their owner), are not kept:
    /// the answer says whether the object was.
    pub fn upsert(&mut self, object: Object) -> bool {
        let key = ObjectKey::of(&object);
        self.remove(&key);
        if !is_state_kind(&object.kind) || controlling_owner(&object).is_some() {
            return false;
        }
        let links = Links::read(&object);
        self.index(&key, &object, &links, true);
        self.objects.insert(key, Stored { object, links });
        true
    }

    /// Removes an object; returns it when it was kept.
    pub fn remove(&mut self, key: &ObjectKey) -> Option<Object> {
        let old = self.objects.remove(key)?;
        self.index(key, &old.object, &old.links, false);
        Some(old.object)
    }

    /// Replaces every object of one kind at once (a relist).
    pub fn replace_kind(&mut self, kind: &str, objects: Vec<Object>) {
        let stale: Vec<ObjectKey> = self.objects.keys().filter(|k| &*k.kind == kind).cloned().collect();
        for k in &stale {
            self.remove(k);
        }
        for o in objects {
            self.upsert(o);
        }
    }

    fn index(&mut self, key: &ObjectKey, obj: &Object, links: &Links, add: bool) {
        let ns: Box<str> = obj.ns().into();
        match links {
            Links::Workload { service_account, configs, autoscales } => {
                if let Some((target, config_map)) = autoscales {
                    let config = config_map.as_ref().map(|c| (target.0.clone(), c.clone()));
                    if add {
                        index_add(&mut self.autoscalers_by_target, target.clone(), key);
                        if let Some(c) = config {
                            index_add(&mut self.autoscalers_by_config, c, key);
                        }
                    } else {
                        index_remove(&mut self.autoscalers_by_target, target, key);
                        if let Some(c) = config {
                            index_remove(&mut self.autoscalers_by_config, &c, key);
                        }
                    }
                }
                if add {
                    self.workloads.insert(key.clone());
                    index_add(&mut self.workloads_by_identity, (ns.clone(), service_account.clone()), key);
                    index_add(&mut self.workloads_by_namespace, ns.clone(), key);
                    for (kind, name) in configs {
                        index_add(&mut self.workloads_by_config, (ns.clone(), *kind, name.clone()), key);
                    }
                } else {
                    self.workloads.remove(key);
                    index_remove(&mut self.workloads_by_identity, &(ns.clone(), service_account.clone()), key);
                    index_remove(&mut self.workloads_by_namespace, &ns, key);
                    for (kind, name) in configs {
                        index_remove(&mut self.workloads_by_config, &(ns.clone(), *kind, name.clone()), key);
                    }
                }
            }
            Links::Binding { principals, role } => {
                for p in principals {
                    if add {
                        index_add(&mut self.bindings_by_principal, p.clone(), key);
                    } else {
                        index_remove(&mut self.bindings_by_principal, p, key);
                    }
                }
                if add {
                    index_add(&mut self.bindings_by_role, role.clone(), key);
                } else {
                    index_remove(&mut self.bindings_by_role, role, key);
                }
            }
            Links::Hpa { target } => {
                if add {
                    index_add(&mut self.hpas_by_target, target.clone(), key);
                } else {
                    index_remove(&mut self.hpas_by_target, target, key);
                }
            }
            Links::ClusterRole { .. } | Links::Plain => {}
        }
        if &*obj.kind == "ClusterRole" {
            if add {
                self.cluster_roles.insert(key.clone());
            } else {
                self.cluster_roles.remove(key);
            }
        }
        if matches!(&*obj.kind, "FlowSchema" | "PriorityLevelConfiguration") {
            if add {
                self.everywhere.insert(key.clone());
            } else {
                self.everywhere.remove(key);
            }
        }
    }

    pub(crate) fn workloads(&self) -> &HashSet<ObjectKey> {
        &self.workloads
    }

    pub(crate) fn workloads_of_identity(&self, namespace: &str, service_account: &str) -> Option<&HashSet<ObjectKey>> {
        self.workloads_by_identity.get(&(namespace.into(), service_account.into()))
    }

    pub(crate) fn workloads_in(&self, namespace: &str) -> Option<&HashSet<ObjectKey>> {
        self.workloads_by_namespace.get(namespace)
    }

    pub(crate) fn workloads_reading(
        &self,
        namespace: &str,
        kind: &'static str,
        name: &str,
    ) -> Option<&HashSet<ObjectKey>> {
        self.workloads_by_config.get(&(namespace.into(), kind, name.into()))
    }

    pub(crate) fn bindings_of(&self, principal: &Principal) -> Option<&HashSet<ObjectKey>> {
        self.bindings_by_principal.get(principal)
    }

    pub(crate) fn bindings_to(&self, role: &ObjectKey) -> Option<&HashSet<ObjectKey>> {
        self.bindings_by_role.get(role)
    }

    pub(crate) fn cluster_roles(&self) -> &HashSet<ObjectKey> {
        &self.cluster_roles
    }

    pub(crate) fn hpas_of(&self, target: &ObjectKey) -> Option<&HashSet<ObjectKey>> {
        self.hpas_by_target.get(target)
    }

    /// The workload an autoscaler names, when the state has it.
    pub(crate) fn workload_named(&self, target: &AutoscaledKey) -> Option<ObjectKey> {
        ["Deployment", "ReplicaSet", "ReplicationController", "StatefulSet"]
            .iter()
            .filter(|k| k.to_ascii_lowercase() == target.1)
            .map(|k| ObjectKey::new(k, &target.0, &target.2))
            .find(|k| self.workloads.contains(k))
    }

    pub(crate) fn autoscalers_of(&self, target: &ObjectKey) -> Option<&HashSet<ObjectKey>> {
        self.autoscalers_by_target.get(&autoscaled_key(target))
    }

    pub(crate) fn autoscalers_reading(&self, namespace: &str, config_map: &str) -> Option<&HashSet<ObjectKey>> {
        self.autoscalers_by_config.get(&(namespace.into(), config_map.into()))
    }

    pub(crate) fn everywhere(&self) -> &HashSet<ObjectKey> {
        &self.everywhere
    }
}
