//! `cargo xtask`: the project's tasks, so that a fresh clone needs only cargo.
//!
//! ```sh
//! cargo xtask test            # install what the tests need, then run every test
//! cargo xtask setup           # only the installs
//! cargo xtask pre-commit      # the hook of .pre-commit-hooks.yaml, installed and run by the real pre-commit
//! ```
//!
//! What the tests need besides Rust: Neovim and Emacs with Eglot and
//! yaml-mode (linter/tests/lsp_neovim.rs and editors.rs drive the language
//! server with them), Python packages (helm-python-sdk renders the
//! webhook's chart and `lint --helm` charts; jsonschema and xmlschema check
//! SARIF and JUnit against their published schemas) and npm (the VS Code
//! extension in editors/vscode). Each is installed only when missing, with
//! the machine's own package managers (apt-get as root, pip, npm). The tests
//! then run with `APILOAD_REQUIRE_TOOLS=1`, so that a test whose tool is
//! still missing fails instead of skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// Python packages the tests import, pinned: (module, distribution, version).
const PYTHON_PACKAGES: &[(&str, &str, &str)] = &[
    ("helm_python", "helm-python-sdk", "0.2.2"),
    ("jsonschema", "jsonschema", "4.26.0"),
    ("xmlschema", "xmlschema", "4.3.2"),
    // jsonschema's check of the `uri` and `uri-reference` formats.
    ("rfc3987", "rfc3987", "1.3.8"),
];

/// The pre-commit release the hook is tried with.
const PRE_COMMIT: (&str, &str, &str) = ("pre_commit", "pre-commit", "4.7.0");

const USAGE: &str = "usage: cargo xtask test [CARGO TEST ARGS...] | setup | pre-commit";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let started = Instant::now();
    let result = match args.first().map(String::as_str) {
        Some("test") => setup().and_then(|()| test(&args[1..])),
        Some("setup") => setup(),
        Some("pre-commit") => pre_commit(),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => {
            eprintln!("xtask: done in {:.0} s", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ sits in the workspace").to_path_buf()
}

/// Runs a command with the terminal's stdio; `Err` names it when it fails.
fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: {shown}");
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{shown} failed ({s})")),
        Err(e) => Err(format!("cannot run {shown}: {e}")),
    }
}

/// Whether a command can be run and exits 0 (output discarded).
fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn setup() -> Result<(), String> {
    editors()?;
    python(PYTHON_PACKAGES)?;
    Ok(())
}

/// Editors the tests drive, from the system's packages: Neovim (Debian's is
/// 0.7, which the tests' Lua script and the documented 0.7 snippet are for;
/// newer versions run them too) and Emacs with Eglot and yaml-mode (the
/// documented Eglot snippet).
fn editors() -> Result<(), String> {
    let emacs_ready = || {
        succeeds(Command::new("emacs").args([
            "--batch",
            "--eval",
            "(kill-emacs (if (and (require 'eglot nil t) (require 'yaml-mode nil t)) 0 1))",
        ]))
    };
    let mut missing = Vec::new();
    if !succeeds(Command::new("nvim").arg("--version")) {
        missing.push("neovim");
    }
    if !emacs_ready() {
        missing.extend(["emacs-nox", "elpa-eglot", "elpa-yaml-mode"]);
    }
    if missing.is_empty() {
        return Ok(());
    }
    if !(is_root() && succeeds(Command::new("apt-get").arg("--version"))) {
        return Err(format!(
            "missing: {} (Debian: `apt-get install {}`); install and run again",
            missing.join(", "),
            missing.join(" ")
        ));
    }
    let apt = |args: &[&str]| {
        let mut c = Command::new("apt-get");
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut c)
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install)
}

/// Installs the pinned Python packages that are missing or at another version.
fn python(packages: &[(&str, &str, &str)]) -> Result<(), String> {
    let missing: Vec<String> = packages
        .iter()
        .filter(|(_, dist, version)| {
            let check = format!(
                "import importlib.metadata as m, sys\ntry:\n    sys.exit(m.version({dist:?}) != {version:?})\nexcept m.PackageNotFoundError:\n    sys.exit(1)"
            );
            !succeeds(Command::new("python3").args(["-c", &check]))
        })
        .map(|(_, dist, version)| format!("{dist}=={version}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let pip = |extra: &[&str]| {
        let mut c = Command::new("python3");
        c.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]).args(extra).args(&missing);
        eprintln!("xtask: {c:?}");
        c.output()
    };
    let out = pip(&[]).map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    // PEP 668: a distribution's Python that pip may not change by default.
    if stderr.contains("externally-managed-environment") {
        let again = pip(&["--break-system-packages"]).map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
        if again.status.success() {
            return Ok(());
        }
        return Err(format!(
            "pip could not install {}:\n{}",
            missing.join(" "),
            String::from_utf8_lossy(&again.stderr)
        ));
    }
    Err(format!("pip could not install {}:\n{stderr}", missing.join(" ")))
}

fn test(cargo_args: &[String]) -> Result<(), String> {
    let root = root();
    let vscode = root.join("editors/vscode");
    if !succeeds(Command::new("npm").arg("--version")) {
        return Err("npm is missing: the VS Code extension's tests (editors/vscode) need Node.js 20 and npm".into());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .args(["test", "--workspace", "--locked"])
        .args(cargo_args)
        .current_dir(&root)
        .env("APILOAD_REQUIRE_TOOLS", "1"))?;
    // The extension's tests start the binary the Rust tests just built.
    let target = target_dir(&root);
    if !vscode.join("node_modules").is_dir() {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&vscode))?;
    }
    run(Command::new("npm")
        .arg("test")
        .current_dir(&vscode)
        .env("APILOAD_BIN", target.join("debug/apiload"))
        .env("APILOAD_REQUIRE_TOOLS", "1"))
}

/// Where cargo builds for this checkout.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// The hook of `.pre-commit-hooks.yaml` as a user gets it: pre-commit itself
/// (from PyPI) installs it from this repository at its `HEAD` commit
/// (`pre-commit try-repo --ref`, which builds it as pre-commit's `python`
/// language does) and runs it in a fresh repository, once on a clean manifest
/// (must pass) and once on a risky one (must fail and name the finding).
/// Uncommitted changes are not tried. try-repo keeps no environment between
/// runs, so the hook is built twice; the second build reuses the first's
/// dependencies.
fn pre_commit() -> Result<(), String> {
    python(&[PRE_COMMIT])?;
    let root = root();
    let scratch = std::env::temp_dir().join(format!("apiload-pre-commit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("deploy")).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let testdata = root.join("testdata/rules/per-node-cluster-watch");
    let copy = |from: &str, to: &str| {
        std::fs::copy(testdata.join(from), scratch.join(to)).map_err(|e| format!("{from}: {e}")).map(|_| ())
    };
    let git = |args: &[&str]| run(Command::new("git").args(args).current_dir(&scratch));
    git(&["init", "-q"])?;
    git(&["config", "user.email", "xtask@localhost"])?;
    git(&["config", "user.name", "xtask"])?;
    copy("passes.yaml", "deploy/agent.yaml")?;
    git(&["add", "."])?;
    let head = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(&root).output();
    let head = head.map_err(|e| format!("git: {e}"))?;
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let dirty = Command::new("git").args(["status", "--porcelain"]).current_dir(&root).output();
    if dirty.is_ok_and(|o| !o.stdout.is_empty()) {
        eprintln!("xtask: the hook is tried at {head}; uncommitted changes are not in it");
    }
    let try_repo = |expect_ok: bool| -> Result<String, String> {
        let out = Command::new("python3")
            .args(["-m", "pre_commit", "try-repo"])
            .arg(&root)
            .args(["apiload", "--ref", &head, "--all-files", "--color", "never"])
            .current_dir(&scratch)
            .env("PRE_COMMIT_HOME", scratch.with_extension("cache"))
            // maturin builds with cargo in a folder kept between the two
            // runs, so the second one reuses the dependencies the first built
            // (the hook is still built from pre-commit's own clone).
            .env("CARGO_TARGET_DIR", target_dir(&root).join("pre-commit"))
            .output()
            .map_err(|e| format!("cannot run pre-commit: {e}"))?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        eprintln!("{text}");
        if out.status.success() != expect_ok {
            return Err(format!(
                "pre-commit try-repo {} on a {} manifest",
                if expect_ok { "failed" } else { "passed" },
                if expect_ok { "clean" } else { "risky" }
            ));
        }
        Ok(text)
    };
    try_repo(true)?;
    copy("fires.yaml", "deploy/agent.yaml")?;
    git(&["add", "."])?;
    let text = try_repo(false)?;
    if !text.contains("AL101") {
        return Err("the failing hook did not name AL101".into());
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = std::fs::remove_dir_all(scratch.with_extension("cache"));
    Ok(())
}
