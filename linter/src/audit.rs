//! `apiload audit`: the running cluster judged like manifests. It reads
//! the cluster once with `apiload_cluster` (paged lists from the watch cache,
//! its own rate limit, no watch, no Secret), runs the same engine as `lint`
//! on the live objects, and writes every format of `lint` plus
//! `policyreport` (docs/audit.md).

use crate::output::{self, Color, Format, Spec};
use crate::{EXIT_FINDINGS, EXIT_USAGE, FailOn, baseline, render};
use apiload::setup;
use apiload_cluster::client::{self, Connect};
use apiload_cluster::snapshot::{self, Progress, ReadOptions};
use apiload_rules::Sources;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How to reach the cluster and how hard to ask it.
#[derive(clap::Args, Clone)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else the
    /// in-cluster ServiceAccount).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Requests per second to the API server, on average.
    #[arg(long, default_value_t = 20.0, value_name = "QPS")]
    pub kube_api_qps: f64,
    /// Requests the client may send at once before the average applies.
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub kube_api_burst: u32,
    /// Deadline of each request (`30s`, `500ms`, `2m`).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub request_timeout: Duration,
    /// Objects per page of a list.
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub page_size: u32,
    /// The Node label that names node pools (default: the cloud providers'
    /// and Karpenter's pool labels; docs/audit.md).
    #[arg(long, value_name = "KEY")]
    pub pool_label: Option<String>,
    /// Progress on stderr: auto (on a terminal), always or never.
    #[arg(long, value_enum, default_value_t = Color::Auto, value_name = "WHEN")]
    pub progress: Color,
}

/// `30s`, `500ms`, `2m`, or seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = number.parse().map_err(|_| format!("`{s}` is not a duration (`30s`, `500ms`, `2m`)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{s}`: the unit is ms, s or m")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("`{s}` must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Node count to judge for instead of the cluster's own (docs/cost-model.md).
    #[arg(long)]
    pub nodes: Option<u64>,
    /// Cluster profile to judge for instead of the cluster's own Nodes.
    #[arg(long, value_name = "FILE")]
    pub cluster_profile: Option<String>,
    /// Write the cluster profile read from the cluster (Nodes, node pools,
    /// version) to FILE, for `apiload lint --cluster-profile`.
    #[arg(long, value_name = "FILE")]
    pub write_cluster_profile: Option<PathBuf>,
    /// Folder of agent profiles to add to the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub profiles: Vec<String>,
    /// Configuration file (default: `.apiload.yaml` in this folder or the nearest parent).
    #[arg(long, value_name = "FILE")]
    pub config: Option<String>,
    /// Ignore any `.apiload.yaml`.
    #[arg(long, conflicts_with = "config")]
    pub no_config: bool,
    /// Report format, or FORMAT=FILE; repeatable. Formats: human, json,
    /// sarif, github, junit, markdown, policyreport.
    #[arg(long, value_name = "FORMAT[=FILE]", value_parser = output::parse_spec)]
    pub format: Vec<Spec>,
    /// Write the report that has no `=FILE` to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit with 1 when a finding has at least this severity (default error).
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
    /// Report only these rules (ids, id prefixes, names or categories).
    #[arg(long, value_name = "RULES")]
    pub select: Vec<String>,
    /// Do not report these rules.
    #[arg(long, value_name = "RULES")]
    pub ignore: Vec<String>,
    /// Findings only: no summary, no notes on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Colour in the human report: auto, always or never.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Report only findings that are not in this baseline file.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<String>,
    /// Write the current findings to this baseline file and exit 0.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<String>,
    /// Also report configuration exemptions that exempted nothing.
    #[arg(long)]
    pub report_unused_exemptions: bool,
}

/// A one-line progress bar on stderr, redrawn at most ten times a second.
struct Bar {
    last: Mutex<Option<Instant>>,
}

impl Progress for Bar {
    fn update(&self, done: usize, total: usize, objects: usize, now: &str) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) && done < total {
            return;
        }
        *last = Some(Instant::now());
        const WIDTH: usize = 24;
        let filled = (done * WIDTH).checked_div(total).unwrap_or(0);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K[{}{}] {done}/{total} collections, {} objects ({now})",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            apiload_rules::text::thousands(objects as u64)
        );
        let _ = err.flush();
    }
}

impl Bar {
    fn clear(&self) {
        if self.last.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

/// Connects and reads the cluster; errors are printed and become exit code 2.
pub fn read(
    args: &ClusterArgs,
    profiles: &apiload_rules::profile::ProfileSet,
    quiet: bool,
) -> Result<snapshot::Snapshot, ExitCode> {
    let connect = Connect {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        qps: args.kube_api_qps,
        burst: args.kube_api_burst,
        timeout: args.request_timeout,
        kube_retries: false,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    };
    let show = match args.progress {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => !quiet && std::io::stderr().is_terminal(),
    };
    let bar = Bar { last: Mutex::new(None) };
    let options =
        ReadOptions { page_size: args.page_size, pool_label: args.pool_label.clone(), ..ReadOptions::default() };
    let result = runtime.block_on(async {
        let conn = client::connect(&connect).await?;
        let progress: &dyn Progress = if show { &bar } else { &snapshot::Quiet };
        snapshot::read(&conn, &options, profiles, progress).await
    });
    bar.clear();
    result.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_USAGE)
    })
}

/// `cluster kind-prod (https://127.0.0.1:6443)`.
pub fn describe(snap: &snapshot::Snapshot) -> String {
    match &snap.context {
        Some(c) => format!("cluster {c} ({})", snap.server),
        None => format!("cluster {}", snap.server),
    }
}

pub fn run(args: AuditArgs) -> ExitCode {
    let (destinations, selection) =
        match crate::reports_and_selection(&args.format, args.output.as_deref(), &args.select, &args.ignore) {
            Ok(r) => r,
            Err(code) => return code,
        };
    let mut sources = Sources::new();
    let request = setup::Request {
        config: args.config.as_deref(),
        no_config: args.no_config,
        cluster_profile: args.cluster_profile.as_deref(),
        profiles: &args.profiles,
        flags: apiload_rules::setup::Flags {
            nodes: args.nodes,
            report_unused_exemptions: args.report_unused_exemptions,
            ..Default::default()
        },
    };
    let mut setup = match setup::setup(&request, &mut sources) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let snap = match read(&args.cluster, &setup.profiles, args.quiet) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(path) = &args.write_cluster_profile {
        let text = format!(
            "# The cluster profile of {}, read by apiload audit (docs/cost-model.md).\n{}",
            describe(&snap),
            apiload_cluster::yaml_text::to_yaml(&snap.cluster_profile())
        );
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if args.nodes.is_none() && args.cluster_profile.is_none() {
        apiload_cluster::audit::use_cluster(&mut setup.options.cluster, &snap);
    }
    let fail_on_config = setup.fail_on.clone();
    let mut audit = apiload_cluster::audit::analyze(&snap, setup, sources);
    let deselected = selection.apply(&mut audit.report.diagnostics);
    if let Some(path) = &args.write_baseline {
        return match baseline::write(path, &audit.sources, &audit.report.diagnostics) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    let mut baselined = 0;
    if let Some(path) = &args.baseline {
        match baseline::read(path) {
            Ok(known) => {
                let before = audit.report.diagnostics.len();
                let sources = &audit.sources;
                audit.report.diagnostics.retain(|d| !known.contains(&baseline::fingerprint(sources, d)));
                baselined = before - audit.report.diagnostics.len();
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    // What could not be read makes the audit incomplete: said on stderr and
    // in the reports, and the exit status is 2, as for files lint cannot read.
    let mut warnings: Vec<String> = snap.problems.iter().map(|p| format!("not audited: {p}")).collect();
    if !args.quiet {
        for w in &warnings {
            eprintln!("error: {w}");
        }
        eprintln!(
            "note: read {} objects from {} in {} requests ({} owned by controllers and judged through them, {} objects of the API server's bootstrap policy left out; {} Nodes in {} pools)",
            audit.inputs.len(),
            describe(&snap),
            snap.requests,
            snap.owned,
            snap.bootstrap,
            snap.nodes,
            snap.pools.len()
        );
    }
    if snap.nodes == 0 && args.nodes.is_none() && args.cluster_profile.is_none() {
        warnings.push("the cluster has no Nodes: estimates assume 1 (use --nodes for the size to judge for)".into());
    }
    let fail_on = args.fail_on.or_else(|| fail_on_config.as_deref().and_then(FailOn::parse)).unwrap_or(FailOn::Error);
    let scope = describe(&snap);
    let root = std::env::current_dir().unwrap_or_default();
    let locator = render::Locator::new(&audit.sources, &root, &[]);
    let fingerprint = |d: &apiload_rules::Diagnostic| baseline::fingerprint(&audit.sources, d);
    let run = render::Report {
        sources: &audit.sources,
        locator: &locator,
        diagnostics: &audit.report.diagnostics,
        counts: render::json::Counts {
            files: audit.inputs.len(),
            objects: audit.report.inventory.objects.len(),
            workloads: audit.report.inventory.workloads.len(),
            suppressed: audit.report.suppressed.len(),
            baselined,
            deselected,
        },
        fail_on: fail_on.threshold(),
        inputs: &audit.inputs,
        skipped: &[],
        warnings: &warnings,
        fingerprint: &fingerprint,
        scope: Some(&scope),
    };
    let mut write_failed = false;
    for spec in &destinations {
        let text = match spec.format {
            Format::Json => render::json::render(&run),
            Format::Sarif => render::sarif::render(&run),
            Format::Github => render::github::render(&run),
            Format::Junit => render::junit::render(&run),
            Format::Markdown => render::markdown::render(&run),
            Format::Policyreport => render::policyreport::render(&audit, now()),
            Format::Human => {
                let terminal = spec.path.is_none() && std::io::stdout().is_terminal();
                let color = output::use_color(args.color, terminal, &|k| std::env::var(k).ok());
                render::human::render(&run, &render::human::Style { color, width: 100, quiet: args.quiet })
            }
        };
        if let Err(e) = output::write(spec.path.as_deref(), &text) {
            eprintln!("error: {e}");
            write_failed = true;
        }
    }
    if write_failed || !snap.problems.is_empty() {
        return ExitCode::from(EXIT_USAGE);
    }
    if audit.report.diagnostics.iter().any(|d| run.fails(d)) {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

/// Seconds since the epoch (PolicyReport timestamps); `APILOAD_NOW`
/// overrides it, for reproducible reports.
pub fn now() -> i64 {
    if let Some(n) = std::env::var("APILOAD_NOW").ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1h").unwrap_err().contains("ms, s or m"));
        assert!(parse_duration("soon").is_err());
    }
}
