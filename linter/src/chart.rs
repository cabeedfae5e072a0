//! `apiload lint --helm`: Helm charts among the paths are rendered, as
//! `helm template` renders them, and the rendered stream is linted in their
//! place, its findings attributed to the templates (`crate::origin::helm`).
//! Rendering uses `helm` on the PATH (or `$APILOAD_HELM`) when there is one,
//! else the Python package helm-python-sdk (Helm's Go SDK as a library), so
//! that no binary download is needed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// How a chart is rendered.
pub struct Render<'a> {
    pub release: &'a str,
    pub namespace: &'a str,
    pub values: &'a [String],
}

/// The charts under `paths`: folders with a `Chart.yaml`, outermost only
/// (subcharts are rendered by their parent).
pub fn find(paths: &[String]) -> Vec<PathBuf> {
    let mut charts: Vec<PathBuf> = Vec::new();
    for p in paths {
        let p = Path::new(p);
        if !p.is_dir() {
            continue;
        }
        let mut found: Vec<PathBuf> = crate::origin::find_files(p, &|n| n == "Chart.yaml")
            .into_iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        if p.join("Chart.yaml").is_file() {
            found.push(p.to_path_buf());
        }
        found.sort_by_key(|d| d.components().count());
        for dir in found {
            if !charts.iter().any(|c| dir.starts_with(c)) {
                charts.push(dir);
            }
        }
    }
    charts
}

/// helm-python-sdk's rendering, written out as `helm template` writes it:
/// each document after a `# Source:` comment, NOTES.txt left out; values
/// files merged in order, maps deeply, as Helm merges them.
const PYTHON: &str = r##"
import re, sys
try:
    import helm_python as helm
except ImportError:
    sys.stderr.write("the Python package helm-python-sdk is not installed (python3 -m pip install helm-python-sdk)\n")
    sys.exit(3)
chart_dir, release, namespace = sys.argv[1:4]
def merge(base, top):
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base
values = {}
for path in sys.argv[4:]:
    with open(path) as f:
        merge(values, helm.values_from_yaml(f.read()) or {})
chart = helm.Chart.load(chart_dir)
try:
    rendered = chart.render(values, name=release, namespace=namespace, is_install=True)
except helm.HelmError as e:
    sys.stderr.write(f"{e}\n")
    sys.exit(1)
finally:
    chart.close()
out = []
for path in sorted(rendered):
    if path.endswith("NOTES.txt"):
        continue
    for doc in re.split(r"(?m)^---[ \t]*$", rendered[path]):
        body = doc.strip("\n")
        if [l for l in body.splitlines() if l.strip() and not l.lstrip().startswith("#")]:
            out.append(f"---\n# Source: {path}\n{body}\n")
sys.stdout.write("".join(out))
"##;

fn helm_binary() -> Option<String> {
    if let Ok(h) = std::env::var("APILOAD_HELM") {
        return Some(h);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("helm")).find(|p| p.is_file()).map(|p| p.display().to_string())
}

/// The rendered manifest stream of a chart; `Err` says why not.
pub fn render(chart: &Path, how: &Render) -> Result<Vec<u8>, String> {
    let mut cmd = match helm_binary() {
        Some(helm) => {
            let mut c = Command::new(helm);
            c.arg("template").arg(how.release).arg(chart).args(["--namespace", how.namespace]);
            for v in how.values {
                c.args(["--values", v]);
            }
            c
        }
        None => {
            let python = std::env::var("APILOAD_PYTHON").unwrap_or_else(|_| "python3".into());
            let mut c = Command::new(python);
            c.args(["-c", PYTHON]).arg(chart).arg(how.release).arg(how.namespace).args(how.values);
            c
        }
    };
    let out = cmd.output().map_err(|e| {
        format!("cannot render it: neither `helm` on the PATH nor python3 with helm-python-sdk can be run ({e})")
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = stderr.trim();
        return Err(if out.status.code() == Some(3) {
            format!("cannot render it: no `helm` on the PATH, and {why}")
        } else {
            format!("helm could not render it: {why}")
        });
    }
    Ok(out.stdout)
}
