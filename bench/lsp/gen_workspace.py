#!/usr/bin/env python3
"""Generates the language-server benchmark's workspace.

    gen_workspace.py OUT [--files 1000 | --objects 20000] [--big-lines 5000]

OUT/apps/app-NNNN.yaml: FILES - 1 application bundles of 70 to 90 lines
(ServiceAccount, Deployment, Service, ConfigMap, Role, RoleBinding); every
20th is a per-node agent (DaemonSet) whose ClusterRole sits in the next file,
so RBAC is joined across files as in a real repository.

OUT/platform/big.yaml: one rendered platform chart of about BIG_LINES lines:
agents (DaemonSet, ServiceAccount, ClusterRole, ClusterRoleBinding, and a
ConfigMap holding the agent's configuration), the file the benchmark edits.

--objects N sizes the workspace by its objects instead: the big manifest as
above, then as many application files as it takes to reach at least N
objects (each holds 5 to 7 that the server keeps; Services are dropped as they are read, and are not counted). The output is deterministic.
"""

import argparse
import os


def app(i, agent, next_role):
    ns = f"team-{i % 37}"
    name = f"app-{i:04d}"
    kind = "DaemonSet" if agent else "Deployment"
    replicas = "" if agent else "  replicas: 3\n"
    out = f"""apiVersion: v1
kind: ServiceAccount
metadata:
  name: {name}
  namespace: {ns}
---
apiVersion: apps/v1
kind: {kind}
metadata:
  name: {name}
  namespace: {ns}
  labels:
    app.kubernetes.io/name: {name}
spec:
{replicas}  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {name}
    spec:
      serviceAccountName: {name}
      containers:
      - name: main
        image: registry.example.com/{name}:1.{i % 9}.0
        args: ["--listen=:8080", "--config=/etc/{name}/config.yaml"]
        ports:
        - containerPort: 8080
        volumeMounts:
        - name: config
          mountPath: /etc/{name}
        resources:
          requests: {{cpu: 100m, memory: 128Mi}}
      volumes:
      - name: config
        configMap:
          name: {name}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
spec:
  selector:
    app.kubernetes.io/name: {name}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: {ns}
data:
  config.yaml: |
    listen: ":8080"
    logLevel: info
    upstream: http://{name}.{ns}.svc
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {name}
  namespace: {ns}
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {name}
  namespace: {ns}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {name}
subjects:
- kind: ServiceAccount
  name: {name}
  namespace: {ns}
"""
    if agent:
        out += f"""---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {name}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {name}
subjects:
- kind: ServiceAccount
  name: {name}
  namespace: {ns}
"""
    if next_role is not None:
        out += f"""---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {next_role}
rules:
- apiGroups: [""]
  resources: ["pods", "nodes"]
  verbs: ["get", "list", "watch"]
"""
    return out


def agent(i):
    name = f"platform-agent-{i:03d}"
    return f"""---
# Source: platform/templates/agent-{i:03d}.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {name}
  namespace: platform
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {name}
  namespace: platform
  labels:
    app.kubernetes.io/name: {name}
    app.kubernetes.io/part-of: platform
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 1
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {name}
    spec:
      serviceAccountName: {name}
      tolerations:
      - operator: Exists
      containers:
      - name: agent
        image: registry.example.com/platform/agent:3.{i % 7}.1
        args:
        - --config=/etc/agent/agent.yaml
        - --metrics-addr=:9100
        env:
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        volumeMounts:
        - name: config
          mountPath: /etc/agent
        resources:
          requests: {{cpu: 50m, memory: 64Mi}}
          limits: {{memory: 256Mi}}
      volumes:
      - name: config
        configMap:
          name: {name}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: platform
data:
  agent.yaml: |
    scrape_interval: 30s
    targets:
    - name: node
      port: 9100
    - name: kubelet
      port: 10250
    labels:
      cluster: prod
      pool: general
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {name}
rules:
- apiGroups: [""]
  resources: ["pods", "services"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {name}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {name}
subjects:
- kind: ServiceAccount
  name: {name}
  namespace: platform
"""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--objects", type=int, help="application files until the workspace holds this many objects")
    p.add_argument("--big-lines", type=int, default=5000)
    a = p.parse_args()
    os.makedirs(os.path.join(a.out, "apps"), exist_ok=True)
    os.makedirs(os.path.join(a.out, "platform"), exist_ok=True)
    big = []
    lines = 0
    i = 0
    while lines < a.big_lines:
        chunk = agent(i)
        big.append(chunk)
        lines += chunk.count("\n")
        i += 1
    with open(os.path.join(a.out, "platform", "big.yaml"), "w") as f:
        f.write("".join(big))
    # Objects as the server counts them: Services are no analysis's business
    # and are dropped as they are read.
    def count(text):
        return ("\n" + text).count("\nkind: ") - text.count("\nkind: Service\n")

    objects = sum(count(chunk) for chunk in big)
    i = 0
    while (a.objects is None and i < a.files - 1) or (a.objects is not None and objects < a.objects):
        is_agent = i % 20 == 0
        # The ClusterRole of agent i lives in file i + 1.
        next_role = f"app-{i - 1:04d}" if i % 20 == 1 else None
        text = app(i, is_agent, next_role)
        objects += count(text)
        with open(os.path.join(a.out, "apps", f"app-{i:04d}.yaml"), "w") as f:
            f.write(text)
        i += 1
    print(f"{a.out}: {i + 1} files, {objects} objects")


if __name__ == "__main__":
    main()
