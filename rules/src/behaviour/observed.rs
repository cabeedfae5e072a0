//! What the audit log showed of a workload, joined with what else is known
//! of its calls (docs/learn.md, "How observations combine").
//!
//! - An observation wins over inference: the calls inferred from the grants
//!   are dropped, the observed ones take their place. A grant the workload
//!   was never seen to use is then an over-grant (AL103), no longer a
//!   possible fan-out.
//! - A profile or a declaration and an observation are both evidence that a
//!   call is made: the profile reads the configuration being linted, the log
//!   shows what the agent did in staging (perhaps another version or
//!   configuration). Neither hides the other's fan-out: an observed call
//!   that a profiled or declared call already covers (same collection, a
//!   scope at least as wide, the same verbs) adds nothing; one that goes
//!   further replaces the calls it covers.
//! - An observed call the grants of the manifests do not allow would be
//!   refused there, and is left out (as declared ones are).

use super::{Behaviour, granted};
use crate::access::Access;
use crate::calls::{ApiCall, CallScope};

/// The observation's numbers, for the cost model and the front ends.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// Copies seen in the log.
    pub copies: usize,
    /// Seconds the log covers for the workload's ServiceAccount.
    pub seconds: f64,
    /// Every request of a copy, per second, on average.
    pub requests_per_copy_per_second: f64,
    /// Requests the API server refused (403).
    pub refused: u64,
}

/// Joins the observed `calls` into the behaviour.
pub fn apply(b: &mut Behaviour, access: &Access, calls: Vec<ApiCall>, observed: Observed) {
    b.calls.retain(|c| c.basis.is_known());
    for call in calls.into_iter().filter(|c| granted(access, c)) {
        if b.calls.iter().any(|k| covers(k, &call)) {
            continue;
        }
        b.calls.retain(|k| !covers(&call, k));
        b.calls.push(call);
    }
    b.observed = Some(observed);
}

/// Whether everything `b` makes the API server do, `a` does too.
fn covers(a: &ApiCall, b: &ApiCall) -> bool {
    let central = |c: &ApiCall| c.origin.as_ref().is_some_and(|o| o.central);
    a.group == b.group
        && a.resource == b.resource
        && (a.list || !b.list)
        && (a.watch || !b.watch)
        && (a.get || a.list || a.watch || !b.get)
        && (!central(a) || central(b))
        && scope_covers(&a.scope, &b.scope)
}

fn scope_covers(a: &CallScope, b: &CallScope) -> bool {
    match (a, b) {
        (CallScope::Cluster, _) | (_, CallScope::Object) => true,
        (CallScope::Namespaces(x), CallScope::Namespaces(y)) => y.iter().all(|n| x.contains(n)),
        (CallScope::Node, CallScope::Node) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::Basis;
    use crate::kube::resources::lookup;

    fn call(resource: &str, scope: CallScope, basis: Basis) -> ApiCall {
        ApiCall {
            group: "".into(),
            resource: resource.into(),
            info: lookup("", resource),
            list: true,
            watch: true,
            get: false,
            scope,
            basis,
            origin: None,
        }
    }

    fn observed() -> Observed {
        Observed { copies: 1, seconds: 60.0, requests_per_copy_per_second: 0.1, refused: 0 }
    }

    fn granted_everything() -> Access {
        let mut access = Access::default();
        for r in ["pods", "services", "nodes"] {
            access.collections.insert(
                ("".into(), r.into()),
                crate::access::CollectionAccess {
                    group: "".into(),
                    resource: r.into(),
                    info: lookup("", r),
                    list: true,
                    watch: true,
                    cluster_wide: true,
                    namespaces: Vec::new(),
                    wildcard: false,
                    via: Vec::new(),
                },
            );
        }
        access
    }

    #[test]
    fn an_observation_replaces_the_inference() {
        let inferred = Basis::Inferred(crate::calls::Inference::Unscoped);
        let mut b = Behaviour {
            calls: vec![
                call("pods", CallScope::Cluster, inferred.clone()),
                call("services", CallScope::Cluster, inferred),
            ],
            ..Behaviour::default()
        };
        apply(&mut b, &granted_everything(), vec![call("pods", CallScope::Node, Basis::Observed)], observed());
        assert_eq!(b.calls.len(), 1);
        assert_eq!((b.calls[0].scope.clone(), b.calls[0].basis.clone()), (CallScope::Node, Basis::Observed));
        assert!(b.observed.is_some());
    }

    #[test]
    fn a_profile_and_an_observation_keep_the_wider_call() {
        let mut b = Behaviour {
            calls: vec![
                call("pods", CallScope::Node, Basis::Profile),
                call("nodes", CallScope::Cluster, Basis::Profile),
            ],
            ..Behaviour::default()
        };
        let seen = vec![
            call("pods", CallScope::Cluster, Basis::Observed),
            call("nodes", CallScope::Node, Basis::Observed),
            call("services", CallScope::Cluster, Basis::Observed),
        ];
        apply(&mut b, &granted_everything(), seen, observed());
        let got: Vec<(String, CallScope, &str)> =
            b.calls.iter().map(|c| (c.resource.to_string(), c.scope.clone(), c.basis.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("nodes".into(), CallScope::Cluster, "profile"),
                ("pods".into(), CallScope::Cluster, "observed"),
                ("services".into(), CallScope::Cluster, "observed"),
            ]
        );
    }

    #[test]
    fn calls_the_grants_refuse_are_left_out() {
        let mut b = Behaviour::default();
        apply(&mut b, &Access::default(), vec![call("pods", CallScope::Cluster, Basis::Observed)], observed());
        assert!(b.calls.is_empty());
    }
}
