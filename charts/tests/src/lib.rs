//! Renders `charts/apiload-webhook` with Helm v4 (through `render.py` and the
//! `helm-python-sdk` package) and reads back what it produced, for the
//! chart's tests in `tests/`.
//!
//! `render.py` writes one manifest stream per values combination and an
//! `index.json` with the values, Helm's lint report, the values the schema
//! refused, and the certificate checks; [`Rendered`] is that index.

use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The helm-python-sdk version the chart's CI installs (`.ci/run`).
pub const HELM_PYTHON_SDK: &str = "0.2.2";

/// The longest a render may take; it takes a few seconds.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(180);

/// `charts/` in the repository.
pub fn charts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("charts/tests has a parent").to_path_buf()
}

/// One rendered values combination.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub release: String,
    pub namespace: String,
    /// The values given to Helm (over the chart's defaults).
    pub values: Value,
    /// The manifest stream, as `helm template` prints it.
    pub manifest: String,
    pub manifest_path: PathBuf,
    /// The rendered NOTES.txt.
    pub notes: String,
    /// `helm lint --strict` with these values: `{total_charts_linted, messages, errors}`.
    pub lint: Value,
}

/// Everything `render.py` produced.
#[derive(Debug)]
pub struct Rendered {
    pub cases: Vec<Case>,
    /// The whole `index.json`.
    pub index: Value,
}

impl Rendered {
    pub fn case(&self, name: &str) -> &Case {
        self.cases.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no rendered case {name}"))
    }
}

/// Runs `python3 charts/tests/render.py out_dir` (or `$APILOAD_PYTHON`),
/// bounded by [`RENDER_TIMEOUT`], and reads what it wrote.
///
/// Panics with the command to run when Python or helm-python-sdk is missing.
pub fn render(out_dir: &Path) -> Rendered {
    let _ = std::fs::remove_dir_all(out_dir);
    std::fs::create_dir_all(out_dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", out_dir.display()));
    let python = std::env::var("APILOAD_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = charts_dir().join("tests/render.py");
    let stdout_path = out_dir.join("render.stdout");
    let stderr_path = out_dir.join("render.stderr");
    let install = format!("python3 -m pip install helm-python-sdk=={HELM_PYTHON_SDK}");
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(out_dir)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("render.stdout"))
        .stderr(File::create(&stderr_path).expect("render.stderr"))
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `{python}` ({e}): the chart tests need Python 3.10+ with helm-python-sdk ({install})")
        });
    let started = Instant::now();
    let status = loop {
        match child.try_wait().expect("waiting for render.py") {
            Some(status) => break status,
            None if started.elapsed() > RENDER_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("render.py took more than {RENDER_TIMEOUT:?}; killed");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    match status.code() {
        Some(0) => {}
        Some(3) => panic!(
            "the Python package helm-python-sdk (module helm_python) is missing; the chart tests render the chart \
             with it. Install it with:\n    {install}\n{stderr}"
        ),
        _ => panic!("render.py failed ({status}):\n{stderr}"),
    }
    let index_text = std::fs::read_to_string(out_dir.join("index.json")).expect("render.py wrote no index.json");
    let index: Value = serde_json::from_str(&index_text).expect("index.json is JSON");
    let cases = index["cases"]
        .as_array()
        .expect("index.json has cases")
        .iter()
        .map(|c| {
            let text = |key: &str| c[key].as_str().unwrap_or_else(|| panic!("case without {key}: {c}")).to_string();
            let manifest_path = PathBuf::from(text("manifest"));
            Case {
                name: text("name"),
                release: text("release"),
                namespace: text("namespace"),
                values: c["values"].clone(),
                manifest: std::fs::read_to_string(&manifest_path)
                    .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display())),
                manifest_path,
                notes: text("notes"),
                lint: c["lint"].clone(),
            }
        })
        .collect();
    Rendered { cases, index }
}

/// `values[path…]` of a case, `None` when unset.
pub fn value<'a>(values: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(values, |v, key| v.get(key)).filter(|v| !v.is_null())
}
