//! `--format policyreport` (`apiload audit` only): the audit's findings as
//! `wgpolicyk8s.io/v1alpha2` PolicyReports and a ClusterPolicyReport, a YAML
//! stream for `kubectl apply -f` (`apiload_cluster::policyreport` builds
//! them; the webhook's scheduled audit writes the same objects).

use apiload_cluster::audit::Audit;

pub fn render(audit: &Audit, now: i64) -> String {
    let reports = apiload_cluster::policyreport::reports(audit, now);
    let mut out = String::from("# apiload audit: PolicyReports (wgpolicyk8s.io/v1alpha2), for kubectl apply -f\n");
    out.push_str(&apiload_cluster::policyreport::yaml_stream(&reports));
    out
}
