//! `apiload lsp` driven by a real editor: Neovim, headless, with its own LSP
//! client (testdata/lsp/neovim.lua). The DaemonSet and its ClusterRole are in
//! different files; the finding must arrive at the right line and column, and
//! go when the ClusterRole is edited in its buffer to drop `watch`.
//!
//! Neovim is required, not optional: CI installs it (`.ci/run`).

mod lsp_client;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn neovim_shows_the_finding_and_drops_it_after_an_edit_of_the_cluster_role() {
    let nvim = std::env::var("NVIM_BIN").unwrap_or_else(|_| "nvim".into());
    let version = Command::new(&nvim).arg("--version").output();
    let Ok(version) = version else {
        panic!(
            "`{nvim}` cannot be run: this test drives apiload lsp with Neovim. Install it \
             (`apt-get install -y neovim`, as .ci/run does) or set NVIM_BIN."
        );
    };
    let version = String::from_utf8_lossy(&version.stdout).lines().next().unwrap_or("").to_string();
    let root = lsp_client::workspace("lsp/workspace", "neovim");
    let out = root.with_extension("out");
    let _ = std::fs::remove_file(&out);
    let script = lsp_client::testdata("lsp/neovim.lua");
    let mut child = Command::new(&nvim)
        .args(["--headless", "--clean", "-n", "-i", "NONE", "-c"])
        .arg(format!("luafile {}", script.display()))
        .env("APILOAD_BIN", env!("CARGO_BIN_EXE_apiload"))
        .env("APILOAD_ROOT", &root)
        .env("APILOAD_OUT", &out)
        .env("APILOAD_TODAY", "2026-01-01")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The script bounds each of its waits; this bounds the whole run.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{version} did not finish; it wrote:\n{}", std::fs::read_to_string(&out).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seen = std::fs::read_to_string(&out).unwrap_or_default();
    // Line 21, after "    spec: {tolerations: [{key: \"zône-é😀\", …}], serviceAccountName: ":
    // Neovim counts bytes (87), the server sent UTF-16 (83) and Neovim converted.
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        ["AL101 20:87-20:97", "related 2", "edited true", "gone"],
        "{version} ({status}) saw:\n{seen}"
    );
}
