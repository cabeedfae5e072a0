//! Pod-running objects, read into the shape the analysis needs: how many
//! copies run, which identity they use, and what each container is told.

use crate::fields::{FieldResult, Fields, IntOrStr, Spanned};
use crate::object::Object;
use apiload_yaml::{Node, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    DaemonSet,
    Deployment,
    StatefulSet,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob,
    Pod,
}

impl WorkloadKind {
    pub fn from_kind(kind: &str) -> Option<WorkloadKind> {
        Some(match kind {
            "DaemonSet" => WorkloadKind::DaemonSet,
            "Deployment" => WorkloadKind::Deployment,
            "StatefulSet" => WorkloadKind::StatefulSet,
            "ReplicaSet" => WorkloadKind::ReplicaSet,
            "ReplicationController" => WorkloadKind::ReplicationController,
            "Job" => WorkloadKind::Job,
            "CronJob" => WorkloadKind::CronJob,
            "Pod" => WorkloadKind::Pod,
            _ => return None,
        })
    }

    /// Path from the object to its pod template's `metadata`/`spec` parent.
    fn template_path(self) -> &'static [&'static str] {
        match self {
            WorkloadKind::Pod => &[],
            WorkloadKind::CronJob => &["spec", "jobTemplate", "spec", "template"],
            _ => &["spec", "template"],
        }
    }
}

#[derive(Clone, Debug)]
pub struct Workload {
    /// Index of the object in the inventory.
    pub object: usize,
    pub kind: WorkloadKind,
    /// `spec.replicas` (Deployment, StatefulSet, ReplicaSet, ReplicationController)
    /// or `parallelism` (Job, CronJob).
    pub replicas: Option<Spanned<i64>>,
    /// DaemonSet, Deployment and StatefulSet update strategy.
    pub update: Option<UpdateStrategy>,
    /// Annotations of the pod template.
    pub template_annotations: Vec<Annotation>,
    /// Span of the pod template's `metadata` (or of the template).
    pub template_span: Span,
    pub pod: PodSpec,
}

/// An annotation: key and value with their spans.
pub type Annotation = (Spanned<Box<str>>, Spanned<Box<str>>);

/// `items` of a ConfigMap or Secret volume: key → path.
pub type KeyPaths = Vec<(Box<str>, Box<str>)>;

/// One ConfigMap or Secret of a projected volume.
#[derive(Clone, Debug)]
pub struct ProjectedRef {
    pub kind: RefKind,
    pub name: Box<str>,
    pub items: KeyPaths,
}

#[derive(Clone, Debug)]
pub struct UpdateStrategy {
    /// `RollingUpdate` (default), `OnDelete`, `Recreate`.
    pub kind: Spanned<Box<str>>,
    pub max_unavailable: Option<Spanned<IntOrString>>,
    pub max_surge: Option<Spanned<IntOrString>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntOrString {
    Int(i64),
    Str(Box<str>),
}

#[derive(Clone, Debug, Default)]
pub struct PodSpec {
    /// The pod spec mapping.
    pub span: Span,
    /// `serviceAccountName`, or the deprecated `serviceAccount` when that is all there is.
    pub service_account: Option<Spanned<Box<str>>>,
    pub automount_token: Option<Spanned<bool>>,
    /// `hostNetwork: true`, and where.
    pub host_network: Option<Span>,
    /// Where the pod may be scheduled: `nodeSelector`, required node
    /// affinity and tolerations.
    pub placement: Placement,
    pub containers: Vec<Container>,
    pub volumes: Vec<Volume>,
}

/// The fields that decide which nodes a pod may run on.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    pub node_selector: Vec<(Box<str>, Box<str>)>,
    /// `nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`: any
    /// term may match; within a term every expression must.
    pub required_terms: Vec<Vec<NodeRequirement>>,
    pub tolerations: Vec<Toleration>,
    /// The `nodeSelector` or `affinity` field, when there is one.
    pub span: Option<Span>,
}

impl Placement {
    /// Narrowed to some nodes by `nodeSelector` or required node affinity.
    pub fn restricted(&self) -> bool {
        !self.node_selector.is_empty() || !self.required_terms.is_empty()
    }
}

/// One `matchExpressions` entry of a node selector term.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRequirement {
    pub key: Box<str>,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`.
    pub operator: Box<str>,
    pub values: Vec<Box<str>>,
}

/// A pod toleration.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Toleration {
    pub key: Box<str>,
    /// `Equal` (the default) or `Exists`.
    pub operator: Box<str>,
    pub value: Box<str>,
    /// Empty: every effect.
    pub effect: Box<str>,
}

#[derive(Clone, Debug, Default)]
pub struct Container {
    pub name: Box<str>,
    pub span: Span,
    /// Init containers run before the others (sidecars, with `restartPolicy: Always`, run alongside).
    pub init: bool,
    pub image: Option<Spanned<Box<str>>>,
    pub command: Vec<Spanned<Box<str>>>,
    pub args: Vec<Spanned<Box<str>>>,
    pub env: Vec<EnvVar>,
    pub env_from: Vec<EnvFrom>,
    pub volume_mounts: Vec<VolumeMount>,
}

#[derive(Clone, Debug)]
pub struct EnvVar {
    pub name: Spanned<Box<str>>,
    pub source: EnvSource,
    /// The whole entry.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvSource {
    Value(Spanned<Box<str>>),
    /// `valueFrom.fieldRef.fieldPath` (the downward API).
    FieldRef(Box<str>),
    ConfigMapKey {
        name: Box<str>,
        key: Box<str>,
    },
    SecretKey {
        name: Box<str>,
        key: Box<str>,
    },
    /// `resourceFieldRef` or nothing at all.
    Other,
}

#[derive(Clone, Debug)]
pub struct EnvFrom {
    pub prefix: Box<str>,
    pub source: RefKind,
    pub name: Box<str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefKind {
    ConfigMap,
    Secret,
}

impl RefKind {
    /// The object kind it refers to.
    pub fn kind(self) -> &'static str {
        match self {
            RefKind::ConfigMap => "ConfigMap",
            RefKind::Secret => "Secret",
        }
    }
}

#[derive(Clone, Debug)]
pub struct VolumeMount {
    pub name: Box<str>,
    pub mount_path: Box<str>,
    pub sub_path: Option<Box<str>>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Volume {
    pub name: Box<str>,
    pub source: VolumeSource,
}

#[derive(Clone, Debug)]
pub enum VolumeSource {
    /// A ConfigMap or Secret; `items` maps keys to paths (all keys when empty).
    Ref {
        kind: RefKind,
        name: Box<str>,
        items: KeyPaths,
    },
    /// A projected volume: several ConfigMaps/Secrets, and maybe a ServiceAccount token.
    Projected {
        sources: Vec<ProjectedRef>,
        service_account_token: bool,
    },
    HostPath(Box<str>),
    Other,
}

impl Workload {
    /// Reads a workload object; `None` when the kind runs no pods.
    pub fn read(index: usize, obj: &Object) -> Option<FieldResult<Workload>> {
        let kind = WorkloadKind::from_kind(&obj.kind)?;
        Some(read_workload(index, obj, kind))
    }

    pub fn is_daemonset(&self) -> bool {
        self.kind == WorkloadKind::DaemonSet
    }

    pub fn containers(&self) -> impl Iterator<Item = &Container> {
        self.pod.containers.iter()
    }

    /// The ConfigMaps and Secrets of its own namespace the pod reads: volumes
    /// (projected ones included), `envFrom` and `valueFrom`. Sorted, without repeats.
    pub fn references(&self) -> Vec<(RefKind, Box<str>)> {
        let mut refs = Vec::new();
        for v in &self.pod.volumes {
            match &v.source {
                VolumeSource::Ref { kind, name, .. } => refs.push((*kind, name.clone())),
                VolumeSource::Projected { sources, .. } => {
                    refs.extend(sources.iter().map(|p| (p.kind, p.name.clone())))
                }
                VolumeSource::HostPath(_) | VolumeSource::Other => {}
            }
        }
        for c in self.containers() {
            refs.extend(c.env_from.iter().map(|e| (e.source, e.name.clone())));
            for e in &c.env {
                match &e.source {
                    EnvSource::ConfigMapKey { name, .. } => refs.push((RefKind::ConfigMap, name.clone())),
                    EnvSource::SecretKey { name, .. } => refs.push((RefKind::Secret, name.clone())),
                    _ => {}
                }
            }
        }
        refs.sort_by(|a, b| (a.0.kind(), &a.1).cmp(&(b.0.kind(), &b.1)));
        refs.dedup();
        refs
    }

    pub fn template_annotation(&self, key: &str) -> Option<&Spanned<Box<str>>> {
        self.template_annotations.iter().find(|(k, _)| &*k.value == key).map(|(_, v)| v)
    }
}

fn own(s: Spanned<&str>) -> Spanned<Box<str>> {
    Spanned::new(s.value.into(), s.span)
}

fn read_workload(index: usize, obj: &Object, kind: WorkloadKind) -> FieldResult<Workload> {
    let root = Fields::new(&obj.node, "")?;
    let spec = root.map("spec")?;
    let replicas = match (kind, &spec) {
        (WorkloadKind::Job, Some(s)) => s.fields().int32("parallelism", 0)?,
        (WorkloadKind::CronJob, Some(s)) => match s.fields().map("jobTemplate")? {
            Some(jt) => match jt.fields().map("spec")? {
                Some(js) => js.fields().int32("parallelism", 0)?,
                None => None,
            },
            None => None,
        },
        (WorkloadKind::DaemonSet | WorkloadKind::Pod, _) => None,
        (_, Some(s)) => s.fields().int32("replicas", 0)?,
        (_, None) => None,
    };
    let update = match (kind, &spec) {
        (WorkloadKind::DaemonSet | WorkloadKind::StatefulSet | WorkloadKind::Deployment, Some(s)) => {
            let key = if kind == WorkloadKind::Deployment { "strategy" } else { "updateStrategy" };
            read_update(&s.fields(), key)?
        }
        _ => None,
    };
    // The pod template: the object itself for a Pod.
    let path = kind.template_path();
    let mut node: &Node = &obj.node;
    for (i, key) in path.iter().enumerate() {
        let walked = path[..i].join(".");
        // Checks the type; the node itself is taken below, outliving `walked`.
        let present = Fields::new(node, &walked)?.map(key)?.is_some();
        match node.get(key).filter(|_| present) {
            Some(next) => node = next,
            None => {
                return Err(crate::source::SpanError::new(
                    node.span,
                    format!("{} has no `{}`", obj.display(), path[..=i].join(".")),
                ));
            }
        }
    }
    let walked = path.join(".");
    let template = Fields::new(node, &walked)?;
    let (template_annotations, template_span) = match template.map("metadata")? {
        Some(m) if kind != WorkloadKind::Pod => {
            let anns = m.fields().str_map("annotations")?.into_iter().map(|(k, v)| (own(k), own(v))).collect();
            (anns, m.node.span)
        }
        _ if kind == WorkloadKind::Pod => {
            let anns = match template.map("metadata")? {
                Some(m) => m.fields().str_map("annotations")?.into_iter().map(|(k, v)| (own(k), own(v))).collect(),
                None => Vec::new(),
            };
            (anns, obj.name_span)
        }
        _ => (Vec::new(), node.span),
    };
    let pod_spec = template
        .map("spec")?
        .ok_or_else(|| crate::source::SpanError::new(node.span, format!("{} has no pod `spec`", obj.display())))?;
    let pod = read_pod_spec(&pod_spec.fields())?;
    Ok(Workload { object: index, kind, replicas, update, template_annotations, template_span, pod })
}

fn read_update(spec: &Fields<'_>, key: &str) -> FieldResult<Option<UpdateStrategy>> {
    let Some(s) = spec.map(key)? else {
        return Ok(None);
    };
    let sf = s.fields();
    let kind = sf.str("type")?.map(own).unwrap_or_else(|| Spanned::new("RollingUpdate".into(), s.node.span));
    let (mut max_unavailable, mut max_surge) = (None, None);
    if let Some(ru) = sf.map("rollingUpdate")? {
        let rf = ru.fields();
        let conv = |v: Spanned<IntOrStr<'_>>| {
            Spanned::new(
                match v.value {
                    IntOrStr::Int(i) => IntOrString::Int(i),
                    IntOrStr::Str(s) => IntOrString::Str(s.into()),
                },
                v.span,
            )
        };
        max_unavailable = rf.int_or_str("maxUnavailable")?.map(conv);
        max_surge = rf.int_or_str("maxSurge")?.map(conv);
    }
    Ok(Some(UpdateStrategy { kind, max_unavailable, max_surge }))
}

fn read_pod_spec(f: &Fields<'_>) -> FieldResult<PodSpec> {
    let service_account = match f.str("serviceAccountName")? {
        Some(sa) if !sa.value.is_empty() => Some(own(sa)),
        _ => f.str("serviceAccount")?.filter(|s| !s.value.is_empty()).map(own),
    };
    let placement = read_placement(f)?;
    let mut containers = Vec::new();
    for (key, init) in [("initContainers", true), ("containers", false)] {
        for c in f.maps(key)? {
            containers.push(read_container(&c.fields(), init)?);
        }
    }
    let mut volumes = Vec::new();
    for v in f.maps("volumes")? {
        volumes.push(read_volume(&v.fields())?);
    }
    Ok(PodSpec {
        span: f.node.span,
        service_account,
        automount_token: f.bool("automountServiceAccountToken")?,
        host_network: f.bool("hostNetwork")?.filter(|b| b.value).map(|b| b.span),
        placement,
        containers,
        volumes,
    })
}

fn read_placement(f: &Fields<'_>) -> FieldResult<Placement> {
    let node_selector: Vec<(Box<str>, Box<str>)> =
        f.str_map("nodeSelector")?.into_iter().map(|(k, v)| (k.value.into(), v.value.into())).collect();
    let mut required_terms = Vec::new();
    let mut span = f.node.get("nodeSelector").filter(|_| !node_selector.is_empty()).map(|n| n.span);
    if let Some(affinity) = f.map("affinity")?
        && let Some(node_affinity) = affinity.fields().map("nodeAffinity")?
        && let Some(required) = node_affinity.fields().map("requiredDuringSchedulingIgnoredDuringExecution")?
    {
        span = span.or(Some(required.node.span));
        for term in required.fields().maps("nodeSelectorTerms")? {
            let mut requirements = Vec::new();
            for e in term.fields().maps("matchExpressions")? {
                let ef = e.fields();
                requirements.push(NodeRequirement {
                    key: ef.str("key")?.map_or("", |k| k.value).into(),
                    operator: ef.str("operator")?.map_or("In", |o| o.value).into(),
                    values: ef.strs("values")?.into_iter().map(|v| v.value.into()).collect(),
                });
            }
            required_terms.push(requirements);
        }
    }
    let mut tolerations = Vec::new();
    for t in f.maps("tolerations")? {
        let tf = t.fields();
        let text = |k: &str| -> FieldResult<Box<str>> { Ok(tf.str(k)?.map_or("", |v| v.value).into()) };
        tolerations.push(Toleration {
            key: text("key")?,
            operator: tf.str("operator")?.map_or("Equal", |o| o.value).into(),
            value: text("value")?,
            effect: text("effect")?,
        });
    }
    Ok(Placement { node_selector, required_terms, tolerations, span })
}

fn read_container(f: &Fields<'_>, init: bool) -> FieldResult<Container> {
    let strs = |key: &str| -> FieldResult<Vec<Spanned<Box<str>>>> { Ok(f.strs(key)?.into_iter().map(own).collect()) };
    let mut env = Vec::new();
    for e in f.maps("env")? {
        let ef = e.fields();
        let Some(name) = ef.str("name")? else {
            continue;
        };
        let source = if let Some(v) = ef.str("value")? {
            EnvSource::Value(own(v))
        } else if let Some(vf) = ef.map("valueFrom")? {
            let vff = vf.fields();
            if let Some(fr) = vff.map("fieldRef")? {
                EnvSource::FieldRef(fr.fields().str("fieldPath")?.map(|s| s.value).unwrap_or_default().into())
            } else if let Some(cm) = vff.map("configMapKeyRef")? {
                let c = cm.fields();
                EnvSource::ConfigMapKey {
                    name: c.str("name")?.map(|s| s.value).unwrap_or_default().into(),
                    key: c.str("key")?.map(|s| s.value).unwrap_or_default().into(),
                }
            } else if let Some(sk) = vff.map("secretKeyRef")? {
                let s = sk.fields();
                EnvSource::SecretKey {
                    name: s.str("name")?.map(|s| s.value).unwrap_or_default().into(),
                    key: s.str("key")?.map(|s| s.value).unwrap_or_default().into(),
                }
            } else {
                EnvSource::Other
            }
        } else {
            EnvSource::Value(Spanned::new("".into(), name.span))
        };
        env.push(EnvVar { name: own(name), source, span: e.node.span });
    }
    let mut env_from = Vec::new();
    for e in f.maps("envFrom")? {
        let ef = e.fields();
        let prefix = ef.str("prefix")?.map(|s| s.value).unwrap_or_default().into();
        for (key, kind) in [("configMapRef", RefKind::ConfigMap), ("secretRef", RefKind::Secret)] {
            if let Some(r) = ef.map(key)? {
                let name = r.fields().str("name")?.map(|s| s.value).unwrap_or_default().into();
                env_from.push(EnvFrom { prefix: Box::clone(&prefix), source: kind, name });
            }
        }
    }
    let mut volume_mounts = Vec::new();
    for m in f.maps("volumeMounts")? {
        let mf = m.fields();
        volume_mounts.push(VolumeMount {
            name: mf.str("name")?.map(|s| s.value).unwrap_or_default().into(),
            mount_path: mf.str("mountPath")?.map(|s| s.value).unwrap_or_default().into(),
            sub_path: mf.str("subPath")?.filter(|s| !s.value.is_empty()).map(|s| s.value.into()),
            span: m.node.span,
        });
    }
    Ok(Container {
        name: f.str("name")?.map(|s| s.value).unwrap_or_default().into(),
        span: f.node.span,
        init,
        image: f.str("image")?.map(own),
        command: strs("command")?,
        args: strs("args")?,
        env,
        env_from,
        volume_mounts,
    })
}

fn read_items(f: &Fields<'_>) -> FieldResult<KeyPaths> {
    let mut items = Vec::new();
    for i in f.maps("items")? {
        let itf = i.fields();
        let key = itf.str("key")?.map(|s| s.value).unwrap_or_default();
        let path = itf.str("path")?.map(|s| s.value).unwrap_or(key);
        items.push((key.into(), path.into()));
    }
    Ok(items)
}

fn read_volume(f: &Fields<'_>) -> FieldResult<Volume> {
    let name: Box<str> = f.str("name")?.map(|s| s.value).unwrap_or_default().into();
    let source = if let Some(cm) = f.map("configMap")? {
        let c = cm.fields();
        VolumeSource::Ref {
            kind: RefKind::ConfigMap,
            name: c.str("name")?.map(|s| s.value).unwrap_or_default().into(),
            items: read_items(&c)?,
        }
    } else if let Some(sec) = f.map("secret")? {
        let s = sec.fields();
        VolumeSource::Ref {
            kind: RefKind::Secret,
            name: s.str("secretName")?.map(|s| s.value).unwrap_or_default().into(),
            items: read_items(&s)?,
        }
    } else if let Some(p) = f.map("projected")? {
        let mut sources = Vec::new();
        let mut service_account_token = false;
        for s in p.fields().maps("sources")? {
            let sf = s.fields();
            if sf.map("serviceAccountToken")?.is_some() {
                service_account_token = true;
            }
            for (key, kind) in [("configMap", RefKind::ConfigMap), ("secret", RefKind::Secret)] {
                if let Some(r) = sf.map(key)? {
                    let rf = r.fields();
                    sources.push(ProjectedRef {
                        kind,
                        name: rf.str("name")?.map(|s| s.value).unwrap_or_default().into(),
                        items: read_items(&rf)?,
                    });
                }
            }
        }
        VolumeSource::Projected { sources, service_account_token }
    } else if let Some(hp) = f.map("hostPath")? {
        VolumeSource::HostPath(hp.fields().str("path")?.map(|s| s.value).unwrap_or_default().into())
    } else {
        VolumeSource::Other
    };
    Ok(Volume { name, source })
}

/// The controller that owns an object, when it is one whose objects the
/// state judges through their owner (a Deployment's ReplicaSets, a
/// CronJob's Jobs, any controller's Pods).
pub fn controlling_owner(obj: &Object) -> Option<String> {
    let owners = obj.node.path(&["metadata", "ownerReferences"])?.as_seq()?;
    let owner = owners.iter().find(|o| o.get("controller").and_then(|c| c.as_bool()) == Some(true))?;
    let kind = owner.get("kind")?.as_str()?;
    let name = owner.get("name").and_then(|n| n.as_str()).unwrap_or("");
    let judged_through_owner = match &*obj.kind {
        "Pod" => true,
        "ReplicaSet" => kind == "Deployment",
        "Job" => kind == "CronJob",
        _ => false,
    };
    judged_through_owner.then(|| format!("{kind} {}/{name}", obj.ns()))
}
