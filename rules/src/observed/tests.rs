use super::*;
use crate::calls::CallScope;

fn event<'a>(user: &'a str, verb: &'a str, uri: &'a str, resource: &'a str, pod: Option<&'a str>) -> Event<'a> {
    Event {
        stage: Stage::ResponseComplete,
        audit_id: "a",
        verb,
        request_uri: uri,
        username: user,
        pod_name: pod,
        node_name: None,
        source_ip: Some("10.0.0.1"),
        user_agent: None,
        object_ref: Some(ObjectRef { resource, ..ObjectRef::default() }),
        code: Some(200),
        request_received: "2026-12-01T00:00:00Z",
        stage_timestamp: "2026-12-01T00:00:00Z",
    }
}

#[test]
fn a_node_selector_from_every_pod_is_node_scope() {
    let mut r = Recorder::new(UserFilter::ServiceAccounts);
    let user = "system:serviceaccount:agents:node-agent";
    let uris: Vec<(String, String, String)> = (0..3)
        .map(|i| {
            (
                format!("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-{i}&resourceVersion=0"),
                format!("node-agent-abcd{i}"),
                format!("node-{i}"),
            )
        })
        .collect();
    for (uri, pod, node) in &uris {
        let mut e = event(user, "list", uri, "pods", Some(pod));
        e.node_name = Some(node);
        r.record(&e).unwrap();
    }
    let o = r.finish();
    let seen = o.seen("agents", "node-agent", WorkloadKind::DaemonSet, "node-agent", false).unwrap();
    let calls = seen.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].node, Some(NodeEvidence::OwnNode));
    assert_eq!(calls[0].scope(), CallScope::Node);
    assert_eq!(calls[0].shape.field_selector.as_deref(), Some("spec.nodeName=<node>"));
    assert_eq!(calls[0].shape.list, Some(ListSemantics::Any));
    assert_eq!(calls[0].copies, 3);
    // Pods of other workloads of the account are not this one's.
    assert!(o.seen("agents", "node-agent", WorkloadKind::DaemonSet, "other", false).is_none());
}

#[test]
fn values_that_differ_per_pod_without_node_names() {
    let mut r = Recorder::new(UserFilter::ServiceAccounts);
    let user = "system:serviceaccount:agents:a";
    for (uri, pod) in [
        ("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1", "a-bcdfg"),
        ("/api/v1/pods?fieldSelector=spec.nodeName%3Dn2", "a-bcdfh"),
    ] {
        r.record(&event(user, "watch", uri, "pods", Some(pod))).unwrap();
    }
    let o = r.finish();
    let calls = o.seen("agents", "a", WorkloadKind::DaemonSet, "a", false).unwrap().calls();
    assert_eq!(calls[0].node, Some(NodeEvidence::DiffersPerCopy));
    let mut r = Recorder::new(UserFilter::ServiceAccounts);
    for pod in ["a-bcdfg", "a-bcdfh"] {
        r.record(&event(user, "watch", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1", "pods", Some(pod))).unwrap();
    }
    let calls = r.finish().account("agents", "a").unwrap().calls(&[0, 1]);
    assert_eq!(calls[0].node, Some(NodeEvidence::SameForAll("n1".into())));
    assert_eq!(calls[0].scope(), CallScope::Node);
}

#[test]
fn scopes_and_rates() {
    let mut r = Recorder::new(UserFilter::ServiceAccounts);
    let user = "system:serviceaccount:agents:poller";
    for t in 0..5 {
        let ts = format!("2026-12-01T00:00:0{t}Z");
        let mut e = event(user, "list", "/apis/discovery.k8s.io/v1/endpointslices", "endpointslices", None);
        e.object_ref =
            Some(ObjectRef { resource: "endpointslices", api_group: "discovery.k8s.io", ..ObjectRef::default() });
        e.request_received = &ts;
        e.stage_timestamp = &ts;
        r.record(&e).unwrap();
    }
    let mut get = event(user, "get", "/api/v1/namespaces/agents/configmaps/conf", "configmaps", None);
    get.object_ref =
        Some(ObjectRef { resource: "configmaps", namespace: "agents", name: "conf", ..ObjectRef::default() });
    r.record(&get).unwrap();
    let mut refused = event(user, "list", "/api/v1/secrets", "secrets", None);
    refused.code = Some(403);
    r.record(&refused).unwrap();
    let o = r.finish();
    let seen = o.seen("agents", "poller", WorkloadKind::Deployment, "poller", false).unwrap();
    let calls = seen.calls();
    let slices = calls.iter().find(|c| &*c.shape.resource == "endpointslices").unwrap();
    assert_eq!(slices.interval, Some(1.0));
    assert_eq!(slices.shape.list, Some(ListSemantics::MostRecent));
    assert_eq!(slices.scope(), CallScope::Cluster);
    let api = seen.api_calls(crate::source::Location::new(crate::source::SourceId(0), apiload_yaml::Span::new(0, 0)));
    let summary: Vec<(String, CallScope, bool, bool, bool)> =
        api.iter().map(|c| (c.display(), c.scope.clone(), c.list, c.watch, c.get)).collect();
    assert_eq!(
        summary,
        vec![
            ("configmaps".into(), CallScope::Object, false, false, true),
            ("endpointslices.discovery.k8s.io".into(), CallScope::Cluster, true, false, false),
        ],
        "the refused LIST of secrets is no call"
    );
    let slices = api.iter().find(|c| &*c.resource == "endpointslices").unwrap();
    let origin = slices.origin.as_ref().unwrap();
    assert_eq!((origin.every, origin.consistent_list), (Some(1.0), true));
    assert_eq!(calls.iter().find(|c| &*c.shape.resource == "secrets").unwrap().refused, 1);
}

#[test]
fn a_watch_counts_once_and_holds_until_it_ends() {
    let mut r = Recorder::new(UserFilter::ServiceAccounts);
    let user = "system:serviceaccount:agents:w";
    let mut start = event(user, "watch", "/api/v1/pods?watch=true", "pods", None);
    start.stage = Stage::ResponseStarted;
    start.audit_id = "w1";
    r.record(&start).unwrap();
    let mut end = start;
    end.stage = Stage::ResponseComplete;
    end.stage_timestamp = "2026-12-01T00:05:00Z";
    r.record(&end).unwrap();
    let mut received = start;
    received.stage = Stage::RequestReceived;
    r.record(&received).unwrap();
    let o = r.finish();
    assert_eq!((o.counts.requests, o.counts.other_stages), (1, 2));
    let calls = o.account("agents", "w").unwrap().calls(&[0]);
    assert_eq!((calls[0].requests, calls[0].long_running, calls[0].held), (1, 1, Some(300.0)));
}

#[test]
fn other_users_and_bad_times() {
    let mut r = Recorder::new(UserFilter::ServiceAccounts);
    r.record(&event("system:node:n1", "list", "/api/v1/pods", "pods", None)).unwrap();
    let mut e = event("system:serviceaccount:a:b", "list", "/api/v1/pods", "pods", None);
    e.request_received = "later";
    assert!(r.record(&e).unwrap_err().contains("RFC 3339"));
    let o = r.finish();
    assert_eq!((o.counts.events, o.counts.other_users, o.counts.requests), (2, 1, 0));
    assert!(o.accounts.is_empty());
}

#[test]
fn limits_bound_memory() {
    let limits = Limits { accounts: 1, shapes_per_account: 1, copies_per_account: 1, open_requests: 1 };
    let mut r = Recorder::with_limits(UserFilter::ServiceAccounts, limits);
    r.record(&event("system:serviceaccount:a:b", "list", "/api/v1/pods", "pods", None)).unwrap();
    r.record(&event("system:serviceaccount:a:c", "list", "/api/v1/pods", "pods", None)).unwrap();
    r.record(&event("system:serviceaccount:a:b", "list", "/api/v1/services", "services", None)).unwrap();
    assert_eq!(r.finish().counts.dropped, 2);
}

#[test]
fn pod_names_of_workloads() {
    use WorkloadKind::*;
    assert!(pod_of(DaemonSet, "agent", "agent-x7k2p"));
    assert!(!pod_of(DaemonSet, "agent", "agent-v2-x7k2p"));
    assert!(pod_of(Deployment, "web", "web-5d8f7c9b4-x7k2p"));
    assert!(!pod_of(Deployment, "web", "web-x7k2p"));
    assert!(pod_of(StatefulSet, "db", "db-12"));
    assert!(pod_of(CronJob, "sync", "sync-29012345-x7k2p"));
    assert!(pod_of(Pod, "one", "one"));
}

#[test]
fn many_object_names_share_one_shape() {
    let mut r = Recorder::new(UserFilter::ServiceAccounts);
    let names: Vec<String> = (0..100).map(|i| format!("rs-{i}")).collect();
    for n in &names {
        let mut e = event("system:serviceaccount:kube-system:rs", "update", "/apis/apps/v1/x", "replicasets", None);
        e.object_ref = Some(ObjectRef {
            resource: "replicasets",
            api_group: "apps",
            namespace: "a",
            name: n,
            ..ObjectRef::default()
        });
        r.record(&e).unwrap();
    }
    let o = r.finish();
    let a = o.account("kube-system", "rs").unwrap();
    assert_eq!(a.shapes.len(), 17);
    let calls = a.calls(&[0]);
    let many = calls.iter().find(|c| c.shape.name.as_deref() == Some("<name>")).unwrap();
    assert_eq!(many.requests, 84);
}
