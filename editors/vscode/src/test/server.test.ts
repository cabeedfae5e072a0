// The extension's server command, run the way vscode-languageclient runs it:
// the same command and arguments, over stdio, spoken to with the LSP library
// the client is built on (vscode-languageserver-protocol). VS Code itself is
// not started here (see docs/editors.md for what that leaves untested).

import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import {
  createProtocolConnection,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  PublishDiagnosticsNotification,
  PublishDiagnosticsParams,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
} from "vscode-languageserver-protocol/node";
import { documentSelector, serverCommand } from "../server";

test("the server is `apiload lsp`, with the user's binary, arguments and environment", () => {
  assert.deepEqual(serverCommand({}, { PATH: "/bin" }), {
    command: "apiload",
    args: ["lsp"],
    options: { env: { PATH: "/bin" } },
  });
  const c = serverCommand({ path: "/opt/apiload", args: ["--stdio"], env: { APILOAD_LSP_TIMINGS: "1" } }, { A: "b" });
  assert.equal(c.command, "/opt/apiload");
  assert.deepEqual(c.args, ["lsp", "--stdio"]);
  assert.deepEqual(c.options.env, { A: "b", APILOAD_LSP_TIMINGS: "1" });
  assert.equal(serverCommand({ path: "  " }, {}).command, "apiload");
  assert.ok(documentSelector.some((d) => d.language === "yaml" && d.scheme === "file"));
});

const MANIFEST = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: mon
spec:
  template:
    spec:
      serviceAccountName: agent
      containers: [{name: agent, image: agent:1}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: agent}
rules:
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: agent}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agent}
subjects: [{kind: ServiceAccount, name: agent, namespace: mon}]
`;

/** The apiload binary of this checkout (built by `cargo xtask test`), or APILOAD_BIN. */
function binary(): string | undefined {
  const bin = process.env.APILOAD_BIN ?? path.resolve(__dirname, "../../../../target/debug/apiload");
  return fs.existsSync(bin) ? bin : undefined;
}

test("the extension's command starts the server, which publishes the finding", async (t) => {
  const bin = binary();
  if (!bin) {
    if (process.env.APILOAD_REQUIRE_TOOLS === "1") {
      assert.fail("no apiload binary: build it (cargo build -p apiload) or set APILOAD_BIN");
    }
    t.skip("no apiload binary: build it (cargo build -p apiload) or set APILOAD_BIN");
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "apiload-vscode-"));
  const file = path.join(dir, "agent.yaml");
  fs.writeFileSync(file, MANIFEST);
  const cmd = serverCommand({ path: bin }, { ...process.env, APILOAD_TODAY: "2026-01-01" });
  const child = spawn(cmd.command, cmd.args, { env: cmd.options.env, stdio: ["pipe", "pipe", "inherit"] });
  const connection = createProtocolConnection(
    new StreamMessageReader(child.stdout!),
    new StreamMessageWriter(child.stdin!),
  );
  const uri = pathToFileURL(file).toString();
  const published = new Promise<PublishDiagnosticsParams>((resolve) => {
    connection.onNotification(PublishDiagnosticsNotification.type, (p) => {
      if (p.uri === uri && p.diagnostics.some((d) => d.code === "AL101")) {
        resolve(p);
      }
    });
  });
  connection.listen();
  try {
    const init = await connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: pathToFileURL(dir).toString(),
      workspaceFolders: [{ uri: pathToFileURL(dir).toString(), name: "w" }],
      capabilities: { textDocument: { publishDiagnostics: { relatedInformation: true } } },
    });
    assert.ok(init.capabilities.hoverProvider, "hover");
    assert.ok(init.capabilities.codeActionProvider, "code actions");
    await connection.sendNotification(InitializedNotification.type, {});
    await connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri, languageId: "yaml", version: 1, text: MANIFEST },
    });
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error("no AL101 within 30 s")), 30_000).unref(),
    );
    const p = await Promise.race([published, timeout]);
    const d = p.diagnostics.find((x) => x.code === "AL101")!;
    // `serviceAccountName: agent` on line 9 (0-based 8), the value at character 26.
    assert.deepEqual(d.range.start, { line: 8, character: 26 });
    assert.ok((d.relatedInformation ?? []).length >= 2, "the binding and the role rule");
    await connection.sendRequest(ShutdownRequest.type);
    await connection.sendNotification(ExitNotification.type);
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 0);
  } finally {
    connection.dispose();
    child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
