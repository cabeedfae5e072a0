//! The editor set-ups of docs/editors.md, run as written there: each
//! `<!-- snippet: NAME -->` block is taken from the document itself and run
//! in the editor it is for, when that editor is on the machine, against a
//! workspace whose DaemonSet gets AL101 through a ClusterRole in another
//! file. Editors that are not installed are skipped, and say so.

mod common;
mod lsp_client;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The code block after `<!-- snippet: NAME -->` in docs/editors.md.
fn snippet(name: &str) -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/editors.md")).unwrap();
    let marker = format!("<!-- snippet: {name} -->");
    let after = &doc[doc.find(&marker).unwrap_or_else(|| panic!("{marker} in docs/editors.md")) + marker.len()..];
    let start = after.find("```").unwrap();
    let body = &after[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_string()
}

/// `PATH` with the binary under test first, so that snippets can say `apiload`.
fn path_with_apiload() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_apiload")).parent().unwrap().display().to_string();
    format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
}

/// The workspace of the LSP tests, as a repository (its `.git` is a root marker).
fn workspace(name: &str) -> PathBuf {
    let root = lsp_client::workspace("lsp/workspace", name);
    std::fs::create_dir_all(root.join(".git")).unwrap();
    root
}

/// Runs a child to completion within `limit`, killing it past that.
fn run_bounded(mut cmd: Command, limit: Duration) -> Option<std::process::ExitStatus> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().ok()?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Neovim's binary (`NVIM_BIN`, else `nvim`) and its version.
fn neovim() -> Option<(String, (u32, u32))> {
    let bin = std::env::var("NVIM_BIN").unwrap_or_else(|_| "nvim".into());
    let out = Command::new(&bin).arg("--version").output().ok()?;
    let first = String::from_utf8_lossy(&out.stdout).lines().next()?.to_string();
    let v = first.strip_prefix("NVIM v")?;
    let mut parts = v.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    Some((bin, (parts.next()?, parts.next()?)))
}

/// Waits in Neovim for AL101 on the current buffer and writes what it saw.
const NEOVIM_CHECK: &str = r#"
local out = assert(io.open(os.getenv('APILOAD_OUT'), 'w'))
local function al101()
  for _, d in ipairs(vim.diagnostic.get(0)) do
    if d.code == 'AL101' then return d end
  end
end
local found = vim.wait(30000, function() return al101() ~= nil end, 50)
local clients = (vim.lsp.get_clients or vim.lsp.get_active_clients)()
out:write('filetype ' .. vim.bo.filetype .. '\n')
out:write('clients ' .. #clients .. '\n')
out:write(found and ('AL101 ' .. al101().lnum) or 'timeout', '\n')
out:close()
vim.cmd('qa!')
"#;

/// Runs a documented Neovim snippet as `init.lua`; `None` when no Neovim of
/// at least `min` is installed.
fn neovim_snippet(name: &str, min: (u32, u32)) -> Option<String> {
    let Some((bin, version)) = neovim() else {
        tool("Neovim (`nvim`)", false);
        return None;
    };
    if version < min {
        skip(&format!(
            "the {name} snippet needs Neovim {}.{}+, and this machine has {}.{} (set NVIM_BIN to a newer one)",
            min.0, min.1, version.0, version.1
        ));
        return None;
    }
    let root = workspace(&format!("editors-{name}"));
    let dir = root.with_extension("nvim");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("init.lua"), snippet(name)).unwrap();
    std::fs::write(dir.join("check.lua"), NEOVIM_CHECK).unwrap();
    let out = dir.join("seen");
    let mut cmd = Command::new(bin);
    cmd.args(["--headless", "-n", "-i", "NONE", "-u"])
        .arg(dir.join("init.lua"))
        .arg("agents/node-agent.yaml")
        .arg("-c")
        .arg(format!("luafile {}", dir.join("check.lua").display()))
        .current_dir(&root)
        .env("PATH", path_with_apiload())
        .env("XDG_CONFIG_HOME", &dir)
        .env("XDG_DATA_HOME", &dir)
        .env("XDG_STATE_HOME", &dir)
        .env("APILOAD_OUT", &out);
    let status = run_bounded(cmd, Duration::from_secs(120));
    Some(format!("{status:?}\n{}", std::fs::read_to_string(&out).unwrap_or_default()))
}

fn assert_neovim_saw_al101(seen: &str) {
    // The finding is on `serviceAccountName`, line 21 (0-based 20), as in lsp_neovim.rs.
    assert!(seen.contains("filetype yaml\nclients 1\nAL101 20"), "{seen}");
}

#[test]
fn neovim_0_7_snippet() {
    if let Some(seen) = neovim_snippet("neovim-0.7", (0, 7)) {
        assert_neovim_saw_al101(&seen);
    }
}

#[test]
fn neovim_0_8_snippet() {
    if let Some(seen) = neovim_snippet("neovim-0.8", (0, 8)) {
        assert_neovim_saw_al101(&seen);
    }
}

#[test]
fn neovim_0_11_snippet() {
    if let Some(seen) = neovim_snippet("neovim-0.11", (0, 11)) {
        assert_neovim_saw_al101(&seen);
    }
}

/// Helix cannot be installed here: the snippet is checked to be TOML that
/// starts `apiload lsp` for YAML and JSON, next to their usual servers.
#[test]
fn helix_snippet_is_a_valid_languages_toml() {
    let text = snippet("helix");
    let doc = toml::de::DeTable::parse(&text).expect("valid TOML");
    let doc = doc.get_ref();
    let server = doc.get("language-server").and_then(|s| s.get_ref().as_table()).and_then(|t| t.get("apiload"));
    let server = server.and_then(|s| s.get_ref().as_table()).expect("[language-server.apiload]");
    assert_eq!(server.get("command").and_then(|c| c.get_ref().as_str()), Some("apiload"));
    let args: Vec<&str> = server
        .get("args")
        .and_then(|a| a.get_ref().as_array())
        .unwrap()
        .iter()
        .filter_map(|a| a.get_ref().as_str())
        .collect();
    assert_eq!(args, ["lsp"]);
    let languages = doc.get("language").and_then(|l| l.get_ref().as_array()).expect("[[language]]");
    let mut named = Vec::new();
    for l in languages {
        let l = l.get_ref().as_table().unwrap();
        let servers: Vec<&str> = l
            .get("language-servers")
            .and_then(|s| s.get_ref().as_array())
            .unwrap()
            .iter()
            .filter_map(|s| s.get_ref().as_str())
            .collect();
        assert!(servers.contains(&"apiload") && servers.len() == 2, "{servers:?}");
        named.push(l.get("name").and_then(|n| n.get_ref().as_str()).unwrap().to_string());
    }
    assert_eq!(named, ["yaml", "json"]);
}

/// Loads the snippet in a batch Emacs, opens the DaemonSet (yaml-mode, whose
/// hook runs `eglot-ensure`) and waits for AL101 among Flymake's diagnostics.
const EMACS_CHECK: &str = r#"
(setq debug-on-error nil)
(require 'yaml-mode)
(require 'eglot)
(require 'flymake)
(load (getenv "APILOAD_SNIPPET") nil t)
(find-file (getenv "APILOAD_FILE"))
;; eglot-ensure connects from the command loop, which batch mode has not.
(run-hooks 'post-command-hook)
(let ((deadline (+ (float-time) 60)) (seen nil))
  (while (and (not seen) (< (float-time) deadline))
    (accept-process-output nil 0.2)
    (dolist (d (flymake-diagnostics))
      (when (string-match-p "AL101" (format "%s" (flymake-diagnostic-text d)))
        (setq seen (line-number-at-pos (flymake-diagnostic-beg d))))))
  (let ((report (format "mode %s\neglot %s\n%s\n" major-mode (if (eglot-current-server) "yes" "no")
                        (if seen (format "AL101 %d" seen) "timeout"))))
    (with-temp-file (getenv "APILOAD_OUT") (insert report))))
(kill-emacs 0)
"#;

#[test]
fn emacs_eglot_snippet() {
    let emacs = std::env::var("EMACS_BIN").unwrap_or_else(|_| "emacs".into());
    let has = |feature: &str| {
        Command::new(&emacs)
            .args(["--batch", "--eval", &format!("(kill-emacs (if (require '{feature} nil t) 0 1))")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !tool(
        "Emacs with Eglot and yaml-mode (apt-get install emacs-nox elpa-eglot elpa-yaml-mode)",
        has("eglot") && has("yaml-mode"),
    ) {
        return;
    }
    let root = workspace("editors-emacs");
    let dir = root.with_extension("emacs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("snippet.el"), snippet("emacs")).unwrap();
    std::fs::write(dir.join("check.el"), EMACS_CHECK).unwrap();
    let out = dir.join("seen");
    let mut cmd = Command::new(&emacs);
    cmd.args(["--batch", "-l"])
        .arg(dir.join("check.el"))
        .current_dir(&root)
        .env("HOME", &dir)
        .env("PATH", path_with_apiload())
        .env("APILOAD_SNIPPET", dir.join("snippet.el"))
        .env("APILOAD_FILE", root.join("agents/node-agent.yaml"))
        .env("APILOAD_OUT", &out);
    let status = run_bounded(cmd, Duration::from_secs(120));
    let seen = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(seen.contains("mode yaml-mode\neglot yes\nAL101 21"), "{status:?}\n{seen}");
}
