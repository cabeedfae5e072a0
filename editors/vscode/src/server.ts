// How the extension starts the server and which documents it sends it: kept
// free of the `vscode` module so that the tests run under plain Node.

/** What the user configured (`apiload.path`, `apiload.args`, `apiload.env`). */
export interface Settings {
  path?: string;
  args?: string[];
  env?: Record<string, string>;
}

/** A process to start: the `Executable` of vscode-languageclient. */
export interface Command {
  command: string;
  args: string[];
  options: { env: Record<string, string | undefined> };
}

/** `apiload lsp` over stdio, with the user's binary, arguments and environment. */
export function serverCommand(settings: Settings, env: Record<string, string | undefined>): Command {
  const command = settings.path && settings.path.trim() !== "" ? settings.path : "apiload";
  return {
    command,
    args: ["lsp", ...(settings.args ?? [])],
    options: { env: { ...env, ...(settings.env ?? {}) } },
  };
}

/** The documents the server analyses: YAML and JSON files on disk and unsaved ones. */
export const documentSelector = [
  { scheme: "file", language: "yaml" },
  { scheme: "file", language: "json" },
  { scheme: "untitled", language: "yaml" },
];

/** Files whose changes on disk the server is told of (it re-reads the workspace). */
export const watchedFiles = "**/{*.yaml,*.yml,*.json,.apiload.yaml}";
