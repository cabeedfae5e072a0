#!/usr/bin/env python3
"""Writes an audit log of a busy cluster for `apiload learn`'s benchmark
(BENCHMARKS.md): audit.k8s.io/v1 Events at Metadata level, one JSON line
each, shaped like kube-apiserver v1.34's (testdata/audit/): kubelets and
controllers (most of the volume), ServiceAccounts of node agents with bound
tokens (pod and node names in user.extra), and people.

    python3 bench/learn/gen_log.py --bytes 1000000000 --out /tmp/audit.log

Deterministic for a seed. The mix, by lines: 45% kubelets
(`system:node:*`), 25% controllers (kube-system ServiceAccounts), 25% two
DaemonSets' agents, 5% users.
"""

import argparse
import json
import random
import uuid

NODES = 200


def pod_suffix(i):
    """The five characters the DaemonSet controller's generateName adds, one set per node."""
    r = random.Random(i)
    return "".join(r.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))


POD_SUFFIXES = [pod_suffix(i) for i in range(NODES)]


ADDRESSES = {}


def address(user):
    if user not in ADDRESSES:
        r = random.Random(user)
        ADDRESSES[user] = "10.%d.%d.%d" % (r.randrange(256), r.randrange(256), r.randrange(256))
    return ADDRESSES[user]


def ts(t):
    s = int(t)
    micro = int((t - s) * 1e6)
    days, rem = divmod(s, 86400)
    # 2026-12-01 is day 20788 since the epoch.
    day = 1 + (days - 20788) % 28
    return "2026-12-%02dT%02d:%02d:%02d.%06dZ" % (day, rem // 3600, rem % 3600 // 60, rem % 60, micro)


def event(rng, t, user, groups, verb, uri, obj, code=200, extra=None, stage="ResponseComplete", ua=None):
    e = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": str(uuid.UUID(int=rng.getrandbits(128))),
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "uid": str(uuid.UUID(int=rng.getrandbits(128))), "groups": groups},
        # A client's address is its own (its pod's, its node's).
        "sourceIPs": [address(user)],
    }
    if extra:
        e["user"]["extra"] = extra
    if ua:
        e["userAgent"] = ua
    if obj:
        e["objectRef"] = obj
    e["responseStatus"] = {"metadata": {}, "code": code}
    e["requestReceivedTimestamp"] = ts(t)
    e["stageTimestamp"] = ts(t + 0.003)
    e["annotations"] = {
        "authorization.k8s.io/decision": "allow" if code != 403 else "forbid",
        "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding \"system:controller:x\" of ClusterRole \"system:controller:x\" to ServiceAccount \"x/kube-system\"",
    }
    return json.dumps(e, separators=(",", ":")).replace("&", "\\u0026")


def kubelet(rng, t):
    n = "node-%04d" % rng.randrange(NODES)
    user, groups = "system:node:" + n, ["system:nodes", "system:authenticated"]
    ua = "kubelet/v1.34.4 (linux/amd64) kubernetes/$Format"
    pick = rng.random()
    if pick < 0.5:
        return event(rng, t, user, groups, "update", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + n,
                     {"resource": "leases", "namespace": "kube-node-lease", "name": n, "apiGroup": "coordination.k8s.io", "apiVersion": "v1"}, ua=ua)
    if pick < 0.8:
        pod = "app-%05d" % rng.randrange(30000)
        return event(rng, t, user, groups, "patch", "/api/v1/namespaces/team-%d/pods/%s/status" % (rng.randrange(50), pod),
                     {"resource": "pods", "namespace": "team-1", "name": pod, "apiVersion": "v1", "subresource": "status"}, ua=ua)
    return event(rng, t, user, groups, "get", "/api/v1/namespaces/team-1/configmaps/kube-root-ca.crt",
                 {"resource": "configmaps", "namespace": "team-1", "name": "kube-root-ca.crt", "apiVersion": "v1"}, ua=ua)


CONTROLLERS = ["replicaset-controller", "endpointslice-controller", "deployment-controller", "node-controller", "job-controller"]


def controller(rng, t):
    c = rng.choice(CONTROLLERS)
    user = "system:serviceaccount:kube-system:" + c
    groups = ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
    ua = "kube-controller-manager/v1.34.4 (linux/amd64) kubernetes/$Format/system:serviceaccount:kube-system:" + c
    ns = "team-%d" % rng.randrange(50)
    if rng.random() < 0.7:
        name = "app-%d-%x" % (rng.randrange(40), rng.getrandbits(32))
        return event(rng, t, user, groups, "update", "/apis/apps/v1/namespaces/%s/replicasets/%s/status" % (ns, name),
                     {"resource": "replicasets", "namespace": ns, "name": name, "apiGroup": "apps", "apiVersion": "v1", "subresource": "status"}, ua=ua)
    return event(rng, t, user, groups, "create", "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices" % ns,
                 {"resource": "endpointslices", "namespace": ns, "apiGroup": "discovery.k8s.io", "apiVersion": "v1"}, code=201, ua=ua)


def agent(rng, t):
    kind = "node-agent" if rng.random() < 0.5 else "cluster-agent"
    i = rng.randrange(NODES)
    n = "node-%04d" % i
    user = "system:serviceaccount:monitoring:" + kind
    groups = ["system:serviceaccounts", "system:serviceaccounts:monitoring", "system:authenticated"]
    extra = {
        "authentication.kubernetes.io/credential-id": ["JTI=%s" % uuid.UUID(int=rng.getrandbits(128))],
        "authentication.kubernetes.io/node-name": [n],
        "authentication.kubernetes.io/node-uid": [str(uuid.UUID(int=i))],
        # One pod per node, named as the DaemonSet controller names them.
        "authentication.kubernetes.io/pod-name": ["%s-%s" % (kind, POD_SUFFIXES[i])],
        "authentication.kubernetes.io/pod-uid": [str(uuid.UUID(int=i + 1_000_000))],
    }
    sel = "&fieldSelector=spec.nodeName%3D" + n if kind == "node-agent" else ""
    obj = {"resource": "pods", "apiVersion": "v1"}
    pick = rng.random()
    if pick < 0.3:
        return event(rng, t, user, groups, "list", "/api/v1/pods?resourceVersion=0" + sel, obj, extra=extra)
    if pick < 0.65:
        return event(rng, t, user, groups, "watch", "/api/v1/pods?watch=true&timeoutSeconds=%d%s" % (300 + rng.randrange(300), sel),
                     obj, extra=extra, stage="ResponseStarted")
    return event(rng, t, user, groups, "get", "/api/v1/nodes/" + n, {"resource": "nodes", "name": n, "apiVersion": "v1"}, extra=extra)


def person(rng, t):
    user = rng.choice(["alice@example.com", "bob@example.com", "ci-deployer"])
    return event(rng, t, user, ["developers", "system:authenticated"], "get",
                 "/apis/apps/v1/namespaces/team-3/deployments/web", {"resource": "deployments", "namespace": "team-3", "name": "web", "apiGroup": "apps", "apiVersion": "v1"},
                 ua="kubectl/v1.34.4 (linux/amd64) kubernetes/$Format")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bytes", type=int, default=1_000_000_000)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    rng = random.Random(a.seed)
    t = 1_796_083_200.0  # 2026-12-01T00:00:00Z
    written = 0
    with open(a.out, "w", buffering=1 << 20) as f:
        while written < a.bytes:
            t += rng.expovariate(2000.0)
            r = rng.random()
            if r < 0.45:
                line = kubelet(rng, t)
            elif r < 0.70:
                line = controller(rng, t)
            elif r < 0.95:
                line = agent(rng, t)
            else:
                line = person(rng, t)
            f.write(line)
            f.write("\n")
            written += len(line) + 1
    print("wrote %d bytes to %s" % (written, a.out))


if __name__ == "__main__":
    main()
