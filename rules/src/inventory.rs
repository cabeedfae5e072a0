//! The objects of one input, indexed for the joins the analysis makes.

use crate::diagnostic::Diagnostic;
use crate::fields::Fields;
use crate::input;
use crate::object::Object;
use crate::rbac::Rbac;
use crate::source::Location;
use crate::workload::Workload;
use apiload_yaml::Span;
use std::collections::HashMap;

/// A HorizontalPodAutoscaler, by the workload it scales.
#[derive(Clone, Debug)]
pub struct Hpa {
    pub object: usize,
    pub max_replicas: i64,
    pub max_location: Location,
}

#[derive(Debug, Default)]
pub struct Inventory {
    pub objects: Vec<Object>,
    pub workloads: Vec<Workload>,
    pub rbac: Rbac,
    service_accounts: HashMap<String, usize>,
    config_maps: HashMap<String, usize>,
    secrets: HashMap<String, usize>,
    hpas: HashMap<String, Hpa>,
    /// FlowSchemas (API Priority and Fairness).
    pub flow_schemas: Vec<usize>,
}

use crate::kube::kinds::is_analyzed_kind;

fn key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

impl Inventory {
    /// Indexes `objects`, reporting objects defined twice (the later wins, as
    /// with `kubectl apply`) and objects whose fields have the wrong types.
    pub fn build(objects: Vec<Object>, diagnostics: &mut Vec<Diagnostic>) -> Inventory {
        // One pass over borrowed keys: a later definition replaces an
        // earlier one (reported), as with `kubectl apply`.
        let mut dropped = vec![false; objects.len()];
        {
            let mut latest: HashMap<(&str, &str, &str), usize> = HashMap::with_capacity(objects.len());
            for (i, obj) in objects.iter().enumerate() {
                if !is_analyzed_kind(&obj.kind) {
                    dropped[i] = true;
                    continue;
                }
                if let Some(previous) = latest.insert((&obj.kind, obj.ns(), &obj.name), i) {
                    let earlier = &objects[previous];
                    diagnostics.push(input::duplicate(
                        obj.loc(obj.name_span),
                        earlier.loc(earlier.name_span),
                        &obj.display(),
                    ));
                    dropped[previous] = true;
                }
            }
        }
        let objects: Vec<Object> =
            objects.into_iter().zip(dropped).filter(|(_, dropped)| !dropped).map(|(o, _)| o).collect();

        let rbac = Rbac::build(&objects, diagnostics);
        let mut inv = Inventory { rbac, ..Inventory::default() };
        // Reading pod templates is most of the work here, and independent per object.
        let mut read = crate::parallel::map(&objects, 256, Workload::read).into_iter();
        for (i, obj) in objects.iter().enumerate() {
            let workload = read.next().flatten();
            let k = key(obj.ns(), &obj.name);
            match &*obj.kind {
                "ServiceAccount" => {
                    if let Err(e) = Fields::new(&obj.node, "").and_then(|f| f.bool("automountServiceAccountToken")) {
                        diagnostics.push(input::invalid(obj.loc(e.span), e.message));
                        continue;
                    }
                    inv.service_accounts.insert(k, i);
                }
                "ConfigMap" => {
                    if let Err(e) = Fields::new(&obj.node, "").and_then(|f| f.str_map("data")) {
                        diagnostics.push(input::invalid(obj.loc(e.span), e.message));
                        continue;
                    }
                    inv.config_maps.insert(k, i);
                }
                "Secret" => {
                    let checked =
                        Fields::new(&obj.node, "").and_then(|f| f.str_map("data").and(f.str_map("stringData")));
                    if let Err(e) = checked {
                        diagnostics.push(input::invalid(obj.loc(e.span), e.message));
                        continue;
                    }
                    inv.secrets.insert(k, i);
                }
                "HorizontalPodAutoscaler" => match read_hpa(obj) {
                    Ok(Some((target, max, span))) => {
                        inv.hpas.insert(target, Hpa { object: i, max_replicas: max, max_location: obj.loc(span) });
                    }
                    Ok(None) => {}
                    Err(e) => diagnostics.push(input::invalid(obj.loc(e.span), e.message)),
                },
                "FlowSchema" => inv.flow_schemas.push(i),
                _ => {
                    if let Some(w) = workload {
                        match w {
                            Ok(w) => inv.workloads.push(w),
                            Err(e) => diagnostics.push(input::invalid(obj.loc(e.span), e.message)),
                        }
                    }
                }
            }
        }
        inv.objects = objects;
        inv
    }

    pub fn object(&self, index: usize) -> &Object {
        &self.objects[index]
    }

    pub fn service_account(&self, namespace: &str, name: &str) -> Option<&Object> {
        self.service_accounts.get(&key(namespace, name)).map(|&i| &self.objects[i])
    }

    pub fn config_map(&self, namespace: &str, name: &str) -> Option<&Object> {
        self.config_maps.get(&key(namespace, name)).map(|&i| &self.objects[i])
    }

    /// Every ConfigMap, in input order.
    pub fn config_maps(&self) -> impl Iterator<Item = &Object> {
        let mut idx: Vec<usize> = self.config_maps.values().copied().collect();
        idx.sort_unstable();
        idx.into_iter().map(|i| &self.objects[i])
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<&Object> {
        self.secrets.get(&key(namespace, name)).map(|&i| &self.objects[i])
    }

    /// The HPA that scales `kind namespace/name`, if any.
    pub fn hpa_for(&self, namespace: &str, kind: &str, name: &str) -> Option<&Hpa> {
        self.hpas.get(&format!("{namespace}/{kind}/{name}"))
    }
}

fn read_hpa(obj: &Object) -> crate::fields::FieldResult<Option<(String, i64, Span)>> {
    let f = Fields::new(&obj.node, "")?;
    let Some(spec) = f.map("spec")? else {
        return Ok(None);
    };
    let sf = spec.fields();
    let Some(target) = sf.map("scaleTargetRef")? else {
        return Ok(None);
    };
    let tf = target.fields();
    let (Some(kind), Some(name)) = (tf.str("kind")?, tf.str("name")?) else {
        return Ok(None);
    };
    let Some(max) = sf.int32("maxReplicas", 1)? else {
        return Ok(None);
    };
    Ok(Some((format!("{}/{}/{}", obj.ns(), kind.value, name.value), max.value, max.span)))
}
