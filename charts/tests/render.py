#!/usr/bin/env python3
"""Renders charts/apiload-webhook the way Helm v4 does, for the chart's tests.

    python3 charts/tests/render.py OUT_DIR

Uses helm-python-sdk (Helm v4's Go SDK as a library; no helm binary): every
values combination of CASES is rendered (`helm template`) and linted (`helm lint
--strict`), every values set of REJECTED must be refused by values.schema.json,
and the chart-generated certificate is checked twice: it must be reused when the
cluster already holds it (Helm `lookup`, answered by a stub API server on
loopback) and it must complete a real TLS handshake for the Service's name
against the caBundle.

Writes OUT_DIR/index.json and one OUT_DIR/cases/<name>.yaml manifest stream per
case (with helm template's `# Source:` comments). The Rust tests in
charts/tests/tests/ read them. Exit status: 0 done, 3 helm_python missing,
1 anything else.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import re
import ssl
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

HELM_PYTHON_SDK = "0.2.2"
INSTALL_HINT = f"python3 -m pip install helm-python-sdk=={HELM_PYTHON_SDK}"
CHART = Path(__file__).resolve().parent.parent / "apiload-webhook"
NAMESPACE = "apiload-system"
RELEASE = "apiload"

try:
    import helm_python as helm
except ImportError:
    print(
        f"render.py: the Python module helm_python is not installed; install it with:\n  {INSTALL_HINT}",
        file=sys.stderr,
    )
    sys.exit(3)


def case(name: str, values: dict[str, Any], *, release: str = RELEASE, namespace: str = NAMESPACE) -> dict[str, Any]:
    return {"name": name, "release": release, "namespace": namespace, "values": values}


# The matrix the issue asks for: cert-manager on and off, each mode.
CASES = [
    case(f"cert-manager-{'on' if cm else 'off'}-{mode}", {"mode": mode, "certManager": {"enabled": cm}})
    for cm in (False, True)
    for mode in ("enforce", "warn", "audit")
]
CASES += [
    # The chart's defaults, untouched.
    case("defaults", {}),
    # Every knob turned.
    case(
        "everything",
        {
            "mode": "enforce",
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
            "requestTimeout": "4500ms",
            "exemptNamespaces": ["monitoring", "cert-manager", "kube-system"],
            "exemptNamespaceLabels": {"apiload.dev/webhook": "disabled"},
            "networkPolicy": {
                "enabled": True,
                "webhookFrom": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
                "metricsFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
            },
            "shutdown": {"preStopSeconds": 15, "graceSeconds": 30},
            "nodes": 3000,
            "kubeAPI": {"qps": 50, "burst": 100},
            "audit": {"enabled": True, "interval": "15m"},
            "replicaCount": 3,
            "image": {
                "repository": "registry.example.com/apiload/apiload-webhook",
                "digest": "sha256:" + "ab" * 32,
                "pullPolicy": "Always",
            },
            "imagePullSecrets": [{"name": "registry"}],
            "priorityClassName": "platform-critical",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "platform", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}
                        ]
                    }
                }
            },
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "apiload-webhook"}},
                }
            ],
            "podLabels": {"team": "platform"},
            "podAnnotations": {"example.com/owner": "platform"},
            "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
            "serviceAccount": {"annotations": {"example.com/role": "apiload"}},
            "certManager": {
                "enabled": True,
                "issuerRef": {"name": "platform-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"},
                "duration": "720h",
                "renewBefore": "240h",
            },
            "clientCA": {"configMap": "apiserver-webhook-client-ca", "key": "ca.crt"},
            "metrics": {"serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prometheus"}}},
            "config": {
                "failOn": "error",
                "rules": {"AL401": "off", "per-node-capability-only": "error"},
                "cluster": {"nodes": 3000, "kubernetesVersion": "1.34"},
                "exemptions": [
                    {
                        "match": {"kind": "DaemonSet", "namespace": "monitoring", "name": "node-exporter*"},
                        "rules": ["*"],
                        "reason": "reviewed by the platform team (PLAT-42)",
                        "expires": "2027-06-30",
                    }
                ],
                "annotationExemptions": {"namespaces": ["team-*"]},
            },
            "extraArgs": ["--log-format=json"],
            "extraVolumes": [{"name": "profiles", "configMap": {"name": "apiload-profiles"}}],
            "extraVolumeMounts": [{"name": "profiles", "mountPath": "/etc/apiload/profiles", "readOnly": True}],
        },
    ),
    # The scheduled audit at its default interval.
    case("audit-enabled", {"audit": {"enabled": True}}),
    # A release named like the chart, an existing ServiceAccount, one replica.
    case(
        "single-replica-existing-account",
        {
            "replicaCount": 1,
            "serviceAccount": {"create": False, "name": "apiload"},
            "config": {"annotationExemptions": {"namespaces": "*"}},
            "networkPolicy": {"enabled": False},
        },
        release="apiload-webhook",
        namespace="security",
    ),
]

# Values the schema must refuse, each with why.
REJECTED = [
    ("an unknown mode", {"mode": "block"}),
    ("a failure policy in the wrong case", {"failurePolicy": "fail"}),
    ("a zero timeout", {"timeoutSeconds": 0}),
    ("a timeout over the API server's 30 s", {"timeoutSeconds": 31}),
    ("no replica", {"replicaCount": 0}),
    ("an unknown top-level value", {"replicas": 2}),
    ("an unknown configuration key", {"config": {"exemption": []}}),
    ("an exemption without a reason", {"config": {"exemptions": [{"rules": ["*"], "match": {"kind": "DaemonSet"}}]}}),
    ("a privileged port for a non-root webhook", {"ports": {"webhook": 443}}),
    ("an unknown pull policy", {"image": {"pullPolicy": "Sometimes"}}),
    ("namespaces as a string", {"exemptNamespaces": "monitoring"}),
    ("a malformed duration", {"certManager": {"duration": "90 days"}}),
    ("a review deadline the webhook cannot parse", {"requestTimeout": "1m30s"}),
    ("a namespace label whose value is not a string", {"exemptNamespaceLabels": {"team": 1}}),
    ("an unknown network policy setting", {"networkPolicy": {"from": []}}),
    ("a negative preStop sleep", {"shutdown": {"preStopSeconds": -1}}),
    ("an audit interval the webhook cannot parse", {"audit": {"enabled": True, "interval": "10 minutes"}}),
    ("an audit without an interval", {"audit": {"enabled": True, "interval": ""}}),
    ("an audit interval of zero", {"audit": {"enabled": True, "interval": "0s"}}),
]


def manifest_stream(rendered: dict[str, str]) -> str:
    """`helm template`'s output: documents with their `# Source:` comments, NOTES.txt left out."""
    out = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            continue
        for doc in re.split(r"(?m)^---[ \t]*$", rendered[path]):
            body = doc.strip("\n")
            if not [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]:
                continue
            out.append(f"---\n# Source: {path}\n{body}\n")
    return "".join(out)


def notes(rendered: dict[str, str]) -> str:
    return next((text for path, text in rendered.items() if path.endswith("NOTES.txt")), "")


def documents(rendered: dict[str, str]) -> list[dict[str, Any]]:
    docs = []
    for doc in re.split(r"(?m)^---[ \t]*$", manifest_stream(rendered)):
        if doc.strip():
            docs.append(helm.values_from_yaml(doc))
    return docs


def find(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    matches = [d for d in docs if d.get("kind") == kind]
    if len(matches) != 1:
        raise AssertionError(f"expected one {kind}, found {len(matches)}")
    return matches[0]


# --- the certificate the chart generates -------------------------------------------------------


def tls_handshake(crt: bytes, key: bytes, ca: bytes, hostname: str) -> str | None:
    """A TLS handshake in memory: the webhook serving crt/key, the API server trusting ca and
    dialling hostname. None when it succeeds, else the client's error."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, data in (("tls.crt", crt), ("tls.key", key), ("ca.crt", ca)):
            paths[name] = os.path.join(tmp, name)
            Path(paths[name]).write_bytes(data)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(paths["tls.crt"], paths["tls.key"])
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.load_verify_locations(cafile=paths["ca.crt"])
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    try:
        for _ in range(20):
            for side, conn in (("client", c), ("server", s)):
                if not done[side]:
                    try:
                        conn.do_handshake()
                        done[side] = True
                    except ssl.SSLWantReadError:
                        pass
            s_in.write(c_out.read())
            c_in.write(s_out.read())
            if all(done.values()):
                return None
        return "handshake did not complete"
    except ssl.SSLError as e:
        return f"{type(e).__name__}: {e}"


def check_generated_certificate(name: str, rendered: dict[str, str], namespace: str) -> dict[str, Any]:
    docs = documents(rendered)
    secret = find(docs, "Secret")
    vwc = find(docs, "ValidatingWebhookConfiguration")
    service = find(docs, "Service")["metadata"]["name"]
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    ca_bundle = base64.b64decode(vwc["webhooks"][0]["clientConfig"]["caBundle"])
    host = f"{service}.{namespace}.svc"
    return {
        "case": name,
        "hostname": host,
        "ca_bundle_is_secret_ca": ca_bundle == data["ca.crt"],
        "handshake_error": tls_handshake(data["tls.crt"], data["tls.key"], ca_bundle, host),
        "wrong_name_error": tls_handshake(data["tls.crt"], data["tls.key"], ca_bundle, f"other.{namespace}.svc"),
    }


# --- Helm lookup against a stub API server ----------------------------------------------------


class StubAPIServer:
    """Answers the two requests Helm's `lookup` makes for a Secret: discovery of v1, then a GET.
    Loopback only; serves the Secrets it is given and 404 for everything else."""

    def __init__(self, secrets: dict[tuple[str, str], dict[str, Any]]):
        self.requests: list[str] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?")[0]
                stub.requests.append(path)
                body: dict[str, Any] | None = None
                if path == "/api/v1":
                    body = {
                        "kind": "APIResourceList",
                        "groupVersion": "v1",
                        "resources": [
                            {
                                "name": "secrets",
                                "singularName": "secret",
                                "namespaced": True,
                                "kind": "Secret",
                                "verbs": ["get", "list"],
                            }
                        ],
                    }
                else:
                    m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets/([^/]+)", path)
                    if m:
                        body = secrets.get((m.group(1), m.group(2)))
                code = 200 if body is not None else 404
                if body is None:
                    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
                payload = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubAPIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def check_upgrade_keeps_certificate(chart: Any) -> list[dict[str, Any]]:
    """Renders as `helm upgrade` would against a cluster that holds the TLS Secret (complete,
    incomplete) or none, and reports what the Secret and the caBundle became."""
    secret_name = f"{RELEASE}-apiload-webhook-tls"
    complete = {"tls.crt": b64("existing certificate"), "tls.key": b64("existing key"), "ca.crt": b64("existing CA")}
    scenarios = [
        ("secret with all three keys", complete),
        ("secret without ca.crt", {k: v for k, v in complete.items() if k != "ca.crt"}),
        ("no secret", None),
    ]
    results = []
    for scenario, data in scenarios:
        secrets = {}
        if data is not None:
            secrets[(NAMESPACE, secret_name)] = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": secret_name, "namespace": NAMESPACE},
                "type": "kubernetes.io/tls",
                "data": data,
            }
        with StubAPIServer(secrets) as api:
            config = helm.Config(kube_apiserver=api.url, kube_token="stub", namespace=NAMESPACE)
            try:
                rendered = config.render(chart, {}, name=RELEASE, namespace=NAMESPACE, is_upgrade=True)
            finally:
                config.close()
            requests = list(api.requests)
        docs = documents(rendered)
        secret = find(docs, "Secret")
        vwc = find(docs, "ValidatingWebhookConfiguration")
        results.append(
            {
                "scenario": scenario,
                "existing": data,
                "rendered": secret["data"],
                "ca_bundle": vwc["webhooks"][0]["clientConfig"]["caBundle"],
                "requests": requests,
            }
        )
    return results


# --- main -------------------------------------------------------------------------------------


def main(out_dir: Path) -> None:
    (out_dir / "cases").mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {
        "helm_python": getattr(helm, "__version__", "?"),
        "helm_sdk": helm.helm_sdk_version(),
        "chart": str(CHART),
        "cases": [],
        "rejected": [],
        "certificates": [],
    }
    chart = helm.Chart.load(CHART)
    try:
        for c in CASES:
            rendered = chart.render(c["values"], name=c["release"], namespace=c["namespace"], is_install=True)
            path = out_dir / "cases" / f"{c['name']}.yaml"
            path.write_text(manifest_stream(rendered))
            lint = helm.lint(CHART, c["values"], strict=True, namespace=c["namespace"])
            index["cases"].append({**c, "manifest": str(path), "notes": notes(rendered), "lint": lint})
            if not c["values"].get("certManager", {}).get("enabled"):
                index["certificates"].append(check_generated_certificate(c["name"], rendered, c["namespace"]))
        index["lint_defaults"] = helm.lint(CHART, strict=True)
        for why, values in REJECTED:
            try:
                chart.render(values, name=RELEASE, namespace=NAMESPACE)
                error = None
            except helm.HelmError as e:
                error = f"{type(e).__name__}: {e}"
            index["rejected"].append({"why": why, "values": values, "error": error})
        index["upgrades"] = check_upgrade_keeps_certificate(chart)
    finally:
        chart.close()
    (out_dir / "index.json").write_text(json.dumps(index, indent=2))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        main(Path(sys.argv[1]))
    except Exception:
        traceback.print_exc()
        sys.exit(1)
