//! Exemptions: findings a team has decided to accept, each with a reason.
//!
//! Two forms, read the same way by every front end:
//!
//! - In the configuration file: a selector (kind, namespace, name glob,
//!   labels), the rules, a required reason and an optional expiry date. This
//!   exempts third-party charts without editing them. An expired exemption
//!   stops applying and becomes a finding of its own.
//! - As annotations on the workload itself or on its pod template:
//!   `apiload.dev/exempt: "AL101,per-node-node-watch"` with
//!   `apiload.dev/exempt-reason: "..."`. Without a reason, on an object where
//!   it has no effect, or in a namespace where the policy does not honour
//!   annotations, it is reported and ignored.

use crate::diagnostic::{Diagnostic, ObjectRef};
use crate::inventory::Inventory;
use crate::object::Object;
use crate::options::AnnotationPolicy;
use crate::rbac::LabelSelector;
use crate::rules::{self, expired_exemption, ineffective_exemption, unused_exemption};
use crate::source::Location;

pub const EXEMPT_ANNOTATION: &str = "apiload.dev/exempt";
pub const REASON_ANNOTATION: &str = "apiload.dev/exempt-reason";

/// Which objects an exemption covers.
#[derive(Clone, Debug, Default)]
pub struct ObjectSelector {
    pub kind: Option<String>,
    pub namespace: Option<String>,
    /// A glob (`*`, `?`).
    pub name: Option<String>,
    pub labels: LabelSelector,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    Config,
    Annotation(ObjectRef),
}

#[derive(Clone, Debug)]
pub struct Exemption {
    /// Rule ids, or `*`.
    pub rules: Vec<&'static str>,
    pub selector: ObjectSelector,
    pub reason: String,
    /// `YYYY-MM-DD`; the exemption applies through that day.
    pub expires: Option<String>,
    pub location: Option<Location>,
    pub origin: Origin,
}

/// Days since 1970-01-01 as a proleptic Gregorian date, `YYYY-MM-DD` (Howard
/// Hinnant's `civil_from_days`). Front ends read the clock; the engine only
/// compares dates.
pub fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// How exemptions are applied to one analysis.
#[derive(Clone, Debug)]
pub struct ExemptionPolicy {
    pub config: Vec<Exemption>,
    pub annotations: AnnotationPolicy,
    /// Today, `YYYY-MM-DD`, for expiry.
    pub today: String,
    /// Report configuration exemptions that exempted nothing.
    pub report_unused: bool,
}

impl Default for ExemptionPolicy {
    fn default() -> ExemptionPolicy {
        ExemptionPolicy {
            config: Vec::new(),
            annotations: AnnotationPolicy::Everywhere,
            today: "1970-01-01".into(),
            report_unused: false,
        }
    }
}

/// A finding an exemption removed, and the exemption's reason.
#[derive(Clone, Debug)]
pub struct Suppressed {
    pub diagnostic: Diagnostic,
    pub reason: String,
    pub by: Option<Location>,
}

impl ObjectSelector {
    pub fn matches(&self, obj: &Object) -> bool {
        self.kind.as_deref().is_none_or(|k| k.eq_ignore_ascii_case(&obj.kind))
            && self.namespace.as_deref().is_none_or(|n| crate::text::glob(n, obj.ns()))
            && self.name.as_deref().is_none_or(|n| crate::text::glob(n, &obj.name))
            && self.labels.matches(&labels(obj))
    }
}

fn labels(obj: &Object) -> Vec<(Box<str>, Box<str>)> {
    obj.node
        .path(&["metadata", "labels"])
        .and_then(|l| l.as_map())
        .unwrap_or(&[])
        .iter()
        .filter_map(|e| e.value.as_str().map(|v| (e.key.as_str().into(), v.into())))
        .collect()
}

impl Exemption {
    fn covers(&self, rule: &str) -> bool {
        self.rules.iter().any(|r| *r == "*" || *r == rule)
    }

    fn expired(&self, today: &str) -> bool {
        self.expires.as_deref().is_some_and(|e| e < today)
    }
}

/// Reads annotation exemptions from the workloads (own metadata and pod
/// template), reporting those that do not count.
fn annotation_exemptions(
    inv: &Inventory,
    policy: &ExemptionPolicy,
    out: &mut Vec<Diagnostic>,
) -> Vec<(usize, Exemption)> {
    let mut found = Vec::new();
    let mut workload_objects = std::collections::HashSet::new();
    for w in &inv.workloads {
        workload_objects.insert(w.object);
        let obj = inv.object(w.object);
        // (exempt annotation, reason annotation) of the workload and of its pod template.
        let mut places: Vec<[Option<(&str, apiload_yaml::Span)>; 2]> = Vec::new();
        places.push([obj.annotation(EXEMPT_ANNOTATION), obj.annotation(REASON_ANNOTATION)]);
        let template = |k: &str| w.template_annotation(k).map(|v| (&*v.value, v.span));
        if w.kind != crate::workload::WorkloadKind::Pod {
            places.push([template(EXEMPT_ANNOTATION), template(REASON_ANNOTATION)]);
        }
        for [exempt, reason] in places {
            let Some((list, span)) = exempt else { continue };
            let loc = obj.loc(span);
            let Some((reason, _)) = reason.filter(|(r, _)| !r.trim().is_empty()) else {
                out.push(ineffective_exemption::diagnostic(loc, format!("{}: `{EXEMPT_ANNOTATION}` without `{REASON_ANNOTATION}` is ignored: say why the finding is accepted", obj.display())).workload(obj.reference()));
                continue;
            };
            if !policy.annotations.allows(obj.ns()) {
                out.push(ineffective_exemption::diagnostic(loc, format!("{}: annotation exemptions are not honoured in namespace {} (see `annotationExemptions` in the configuration)", obj.display(), obj.ns())).workload(obj.reference()));
                continue;
            }
            let mut rule_ids = Vec::new();
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match (name, rules::find(name)) {
                    ("*", _) => rule_ids.push("*"),
                    (_, Some(r)) => rule_ids.push(r.id),
                    (_, None) => out.push(
                        ineffective_exemption::diagnostic(
                            loc,
                            format!("{}: `{EXEMPT_ANNOTATION}` names no rule `{name}`", obj.display()),
                        )
                        .workload(obj.reference()),
                    ),
                }
            }
            if rule_ids.is_empty() {
                continue;
            }
            found.push((
                w.object,
                Exemption {
                    rules: rule_ids,
                    selector: ObjectSelector::default(),
                    reason: reason.to_string(),
                    expires: None,
                    location: Some(loc),
                    origin: Origin::Annotation(obj.reference()),
                },
            ));
        }
    }
    // The annotation on anything but a workload exempts nothing.
    for (i, obj) in inv.objects.iter().enumerate() {
        if workload_objects.contains(&i) {
            continue;
        }
        if let Some((_, span)) = obj.annotation(EXEMPT_ANNOTATION) {
            out.push(ineffective_exemption::diagnostic(
                obj.loc(span),
                format!("`{EXEMPT_ANNOTATION}` on {} has no effect: put it on the workload the findings are about (or its pod template), or use a configuration exemption", obj.display()),
            ));
        }
    }
    found
}

/// The object a finding is about: its workload, or the object its primary location is in.
fn subject<'a>(
    inv: &'a Inventory,
    by_ref: &std::collections::HashMap<ObjectRef, usize>,
    d: &Diagnostic,
) -> Option<(usize, &'a Object)> {
    if let Some(w) = &d.workload {
        return by_ref.get(w).map(|&i| (i, inv.object(i)));
    }
    inv.objects.iter().enumerate().find(|(_, o)| {
        o.source == d.location.source
            && o.node.span.start <= d.location.span.start
            && d.location.span.end <= o.node.span.end.max(o.node.span.start)
    })
}

/// Removes exempted findings from `diagnostics` and adds the findings about
/// exemptions themselves. Returns what was removed.
pub fn apply(inv: &Inventory, policy: &ExemptionPolicy, diagnostics: &mut Vec<Diagnostic>) -> Vec<Suppressed> {
    let mut extra = Vec::new();
    let annotations = annotation_exemptions(inv, policy, &mut extra);
    let mut used = vec![false; policy.config.len()];
    for e in &policy.config {
        if e.expired(&policy.today)
            && let Some(loc) = e.location
        {
            extra.push(expired_exemption::diagnostic(loc, &e.reason, e.expires.as_deref().unwrap_or("")));
        }
    }
    let mut kept = Vec::with_capacity(diagnostics.len());
    let mut suppressed = Vec::new();
    if policy.config.is_empty() && annotations.is_empty() {
        diagnostics.extend(extra);
        return suppressed;
    }
    let by_ref: std::collections::HashMap<ObjectRef, usize> =
        inv.workloads.iter().map(|w| (inv.object(w.object).reference(), w.object)).collect();
    for d in diagnostics.drain(..) {
        let found = subject(inv, &by_ref, &d).and_then(|(index, obj)| {
            let by_config = policy
                .config
                .iter()
                .enumerate()
                .find(|(_, e)| !e.expired(&policy.today) && e.covers(d.rule.id) && e.selector.matches(obj));
            if let Some((i, e)) = by_config {
                used[i] = true;
                return Some(e.clone());
            }
            annotations.iter().find(|(o, e)| *o == index && e.covers(d.rule.id)).map(|(_, e)| e.clone())
        });
        match found {
            Some(e) => suppressed.push(Suppressed { diagnostic: d, reason: e.reason, by: e.location }),
            None => kept.push(d),
        }
    }
    if policy.report_unused {
        for (e, used) in policy.config.iter().zip(&used) {
            if !used
                && !e.expired(&policy.today)
                && let Some(loc) = e.location
            {
                kept.push(unused_exemption::diagnostic(loc, &e.reason));
            }
        }
    }
    kept.extend(extra);
    *diagnostics = kept;
    suppressed
}

#[cfg(test)]
mod date_tests {
    use super::civil_date;

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_499), "2026-02-15");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }
}
