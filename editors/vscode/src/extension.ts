// The VS Code extension: starts `apiload lsp` with vscode-languageclient, so
// that apiload's findings appear in the Problems panel and as squiggles, with
// hover on workloads and quick fixes (docs/editors.md).

import * as vscode from "vscode";
import { LanguageClient, LanguageClientOptions, ServerOptions, TransportKind } from "vscode-languageclient/node";
import { documentSelector, serverCommand, Settings, watchedFiles } from "./server";

let client: LanguageClient | undefined;

function settings(): Settings {
  const c = vscode.workspace.getConfiguration("apiload");
  return { path: c.get<string>("path"), args: c.get<string[]>("args"), env: c.get<Record<string, string>>("env") };
}

async function start(context: vscode.ExtensionContext): Promise<void> {
  const cmd = serverCommand(settings(), process.env);
  const run = { command: cmd.command, args: cmd.args, transport: TransportKind.stdio, options: cmd.options };
  const serverOptions: ServerOptions = { run, debug: run };
  const watcher = vscode.workspace.createFileSystemWatcher(watchedFiles);
  context.subscriptions.push(watcher);
  const clientOptions: LanguageClientOptions = {
    documentSelector,
    synchronize: { fileEvents: watcher },
    outputChannelName: "apiload",
  };
  client = new LanguageClient("apiload", "apiload", serverOptions, clientOptions);
  try {
    await client.start();
  } catch (e) {
    void vscode.window.showErrorMessage(
      `apiload: cannot start \`${cmd.command} lsp\` (${e}). Install apiload or set "apiload.path".`,
    );
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  context.subscriptions.push(
    vscode.commands.registerCommand("apiload.restart", async () => {
      await client?.stop();
      await start(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration("apiload")) {
        await client?.stop();
        await start(context);
      }
    }),
  );
  await start(context);
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
