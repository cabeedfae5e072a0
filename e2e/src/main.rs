//! apiload's end-to-end suite against a real control plane. e2e/run builds
//! the binaries and runs this; see e2e/README.md.

mod audit;
mod checks;
mod cluster;
mod kubectl;
mod manifests;
mod metrics;
mod pki;
mod plain_http;
mod process;
mod webhook;

use clap::Parser;
use futures::FutureExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub type Result<T> = std::result::Result<T, String>;

/// Fails the check with a message when the condition does not hold.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err(format!($($msg)+));
        }
    };
}

#[derive(Parser, Debug)]
#[command(about = "apiload's end-to-end suite against kube-apiserver (run it through e2e/run)")]
pub struct Args {
    /// Folder of etcd, kube-apiserver, kube-controller-manager and kubectl.
    #[arg(long)]
    pub control_plane_bin: PathBuf,
    /// Folder of the release build of apiload and apiload-webhook.
    #[arg(long)]
    pub apiload_bin: PathBuf,
    /// Scratch folder for this run (certificates, etcd data, logs, audit log).
    #[arg(long)]
    pub work: PathBuf,
    /// The repository's root.
    #[arg(long)]
    pub repo: PathBuf,
    /// Run only the checks whose name contains one of these.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Write rules/src/rbac/bootstrap.txt from the server's bootstrap policy and stop.
    #[arg(long)]
    pub regenerate_bootstrap: bool,
    /// Write the recorded audit logs to testdata/audit/.
    #[arg(long)]
    pub record_audit: bool,
}

/// What every check gets: the running control plane and where things are.
pub struct Suite {
    pub args: Args,
    pub cp: cluster::ControlPlane,
    pub admin: kube::Client,
    pub kubectl: kubectl::Kubectl,
    /// `../shared` beside the repository, when present.
    pub shared: Option<PathBuf>,
    /// The chart rendered by charts/tests/render.py (once).
    pub chart: Option<apiload_chart_tests::Rendered>,
    /// The running webhook, once the admission checks started it, and the
    /// chart objects it was installed from.
    pub webhook: Option<webhook::Webhook>,
    pub install: Option<webhook::ChartInstall>,
    /// Figures the checks measured, written to `work/measured.json`.
    pub measured: serde_json::Map<String, serde_json::Value>,
}

impl Suite {
    pub fn work(&self, name: &str) -> PathBuf {
        self.args.work.join(name)
    }
}

type CheckFuture<'a> = Pin<Box<dyn std::future::Future<Output = Result<()>> + 'a>>;

/// One named check of the suite, bounded in time.
pub struct Check {
    pub name: &'static str,
    pub limit: Duration,
    pub run: for<'a> fn(&'a mut Suite) -> CheckFuture<'a>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let started = Instant::now();
    let _ = std::fs::create_dir_all(&args.work);
    let bins = cluster::Binaries { dir: args.control_plane_bin.clone() };
    eprintln!("e2e: starting etcd, kube-apiserver and kube-controller-manager in {}", args.work.display());
    let cp = match cluster::ControlPlane::start(&args.work, bins.clone()).await {
        Ok(cp) => cp,
        Err(e) => {
            eprintln!("e2e: the control plane did not start: {e}");
            println!("0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "e2e: control plane ready after {:.1} s (API server {})",
        started.elapsed().as_secs_f64(),
        cp.server_url()
    );
    let admin = match cp.admin().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("e2e: {e}");
            println!("0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
    };
    let kubectl = kubectl::Kubectl { bin: bins.path("kubectl"), kubeconfig: cp.admin_kubeconfig.clone() };
    let shared = args.repo.parent().map(|p| p.join("shared")).filter(|p| p.is_dir());
    let mut suite = Suite {
        args,
        cp,
        admin,
        kubectl,
        shared,
        chart: None,
        webhook: None,
        install: None,
        measured: serde_json::Map::new(),
    };

    if suite.args.regenerate_bootstrap {
        let code = match checks::bootstrap::regenerate(&mut suite).await {
            Ok(path) => {
                eprintln!("e2e: wrote {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("e2e: {e}");
                ExitCode::FAILURE
            }
        };
        suite.cp.stop();
        return code;
    }

    let mut passed = 0;
    let mut skipped = 0;
    let mut known_failures = Vec::new();
    let mut failed = Vec::new();
    for check in checks::ALL {
        if !suite.args.only.is_empty() && !suite.args.only.iter().any(|o| check.name.contains(o.as_str())) {
            continue;
        }
        let t = Instant::now();
        eprintln!("e2e: RUN  {}", check.name);
        let outcome =
            tokio::time::timeout(check.limit, std::panic::AssertUnwindSafe((check.run)(&mut suite)).catch_unwind())
                .await;
        let result = match outcome {
            Err(_) => Err(format!("did not finish within {:?}", check.limit)),
            Ok(Err(panic)) => Err(format!(
                "panicked: {}",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
            Ok(Ok(r)) => r,
        };
        let secs = t.elapsed().as_secs_f64();
        let known = checks::KNOWN_FAILURES.iter().find(|(n, _)| *n == check.name).map(|(_, why)| *why);
        let result = match (known, result) {
            (Some(why), Err(e)) => {
                eprintln!("e2e: KNOWN FAILURE {} ({secs:.1} s): {e}\n      known defect: {why}", check.name);
                known_failures.push(check.name);
                continue;
            }
            (Some(_), Ok(())) => {
                Err("passes now: the defect it records is fixed; remove it from checks::KNOWN_FAILURES".to_string())
            }
            (None, r) => r,
        };
        match result {
            Ok(()) => {
                passed += 1;
                eprintln!("e2e: PASS {} ({secs:.1} s)", check.name);
            }
            Err(e) if e.starts_with(checks::SKIP) => {
                skipped += 1;
                eprintln!("e2e: SKIP {}: {}", check.name, &e[checks::SKIP.len()..]);
            }
            Err(e) => {
                eprintln!("e2e: FAIL {} ({secs:.1} s): {e}", check.name);
                failed.push(check.name);
            }
        }
    }
    if let Some(mut w) = suite.webhook.take() {
        w.stop();
    }
    suite.measured.insert("suite_seconds".into(), started.elapsed().as_secs_f64().into());
    let measured = serde_json::Value::Object(std::mem::take(&mut suite.measured));
    let _ = std::fs::write(suite.work("measured.json"), serde_json::to_string_pretty(&measured).unwrap_or_default());
    suite.cp.stop();
    if !failed.is_empty() {
        eprintln!("e2e: failed: {}", failed.join(", "));
    }
    if !known_failures.is_empty() {
        eprintln!("e2e: known failures, counted as skipped: {}", known_failures.join(", "));
    }
    let skipped = skipped + known_failures.len();
    if skipped > 0 {
        println!("{passed} passed, {} failed, {skipped} skipped", failed.len());
    } else {
        println!("{passed} passed, {} failed", failed.len());
    }
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
