//! `apiload learn`: what agents really call, from the API server's audit
//! log — a summary per workload (or ServiceAccount), a profile per workload
//! image (`--out`), the smallest RBAC for what was seen (`--suggest-rbac`).
//! Also the reading of `--audit-log` for `lint` and `estimate`. The
//! engine's `observed` module interprets the requests; `least_privilege`
//! compares them with the grants. docs/learn.md is the workflow.

mod profile;
mod rbac;
mod summary;

use crate::{EXIT_USAGE, InputArgs, analyze};
use apiload::audit_log::{self, LogFile};
use apiload_rules::observed::{Account, Observations, ObservedCall, Recorder, UserFilter};
use apiload_rules::{Report, WorkloadAnalysis, least_privilege};
use apiload_yaml::Limits;
use clap::ValueEnum;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct LearnArgs {
    /// The API server's audit log: JSON lines of audit.k8s.io/v1 Events
    /// (repeatable; a folder reads every log in it, `.gz` too; `-` is stdin).
    #[arg(long, value_name = "FILE", required = true)]
    audit_log: Vec<String>,
    /// Manifests of the workloads to learn (files, folders, `-`): their
    /// ServiceAccounts' requests, attributed to them. Without, every
    /// ServiceAccount in the log.
    paths: Vec<String>,
    /// Write a profile per workload image to this folder, for `--profiles DIR` (needs PATHS).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the smallest RBAC that allows every call seen, as YAML on
    /// stdout (the summary then goes to stderr).
    #[arg(long)]
    suggest_rbac: bool,
    /// The summary's format.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Human)]
    format: SummaryFormat,
    /// No summary (and no notes on stderr).
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Namespace of objects that have none (default `default`).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Folder of agent profiles to add to the built-in ones.
    #[arg(long, value_name = "DIR")]
    profiles: Vec<String>,
    /// Configuration file (default: `.apiload.yaml` here or in a parent).
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// Ignore any `.apiload.yaml`.
    #[arg(long, conflicts_with = "config")]
    no_config: bool,
    /// Render the Helm charts among the paths.
    #[arg(long)]
    helm: bool,
    /// Values file for `--helm` (repeatable).
    #[arg(long = "values", short = 'f', value_name = "FILE", requires = "helm")]
    values: Vec<String>,
    /// Release name for `--helm`.
    #[arg(long, value_name = "NAME", default_value = "release", requires = "helm")]
    release_name: String,
    /// Largest manifest file, in bytes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_BYTES)]
    max_file_size: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SummaryFormat {
    Human,
    Json,
}

/// Reads `--audit-log` for `lint` and `estimate`: every ServiceAccount's
/// requests. Problems with lines are warnings; a log that cannot be read is
/// an error (`Err`, already reported).
pub fn observe(input: &InputArgs, quiet: bool) -> Result<Option<Arc<Observations>>, ()> {
    let paths = &input.audit_log;
    if paths.is_empty() {
        return Ok(None);
    }
    if stdin_twice(paths, &input.paths) {
        return Err(());
    }
    let (files, errors) = audit_log::expand(paths);
    if !errors.is_empty() {
        for e in errors {
            eprintln!("error: cannot read audit log {e}");
        }
        return Err(());
    }
    let (observations, report) = read(paths, &files, UserFilter::ServiceAccounts);
    report_problems(&report, &observations, quiet)?;
    Ok(Some(Arc::new(observations)))
}

/// Whether both the audit log and the manifests are to be read from stdin
/// (reported: only one of them can be).
fn stdin_twice(logs: &[String], manifests: &[String]) -> bool {
    let twice = logs.iter().any(|l| l == "-") && manifests.iter().any(|p| p == "-");
    if twice {
        eprintln!(
            "error: `--audit-log -` and the path `-` both read stdin: give the audit log or the manifests as files"
        );
    }
    twice
}

fn read(paths: &[String], files: &[LogFile], filter: UserFilter) -> (Observations, audit_log::ReadReport) {
    let mut recorder = Recorder::new(filter);
    let report = audit_log::read(files, &mut recorder);
    let mut observations = recorder.finish();
    observations.source = audit_log::name_logs(paths, files);
    (observations, report)
}

/// Prints what went wrong reading the logs; `Err` when a log could not be read.
fn report_problems(report: &audit_log::ReadReport, o: &Observations, quiet: bool) -> Result<(), ()> {
    for p in &report.problems {
        eprintln!("warning: {p}");
    }
    let unreported = report.problem_count.saturating_sub(report.problems.len() as u64);
    if unreported > 0 {
        eprintln!("warning: {unreported} more lines of the audit log are not events");
    }
    if o.counts.dropped > 0 {
        eprintln!(
            "warning: {} requests left out: more ServiceAccounts, pods or distinct requests than apiload keeps",
            o.counts.dropped
        );
    }
    for e in &report.errors {
        eprintln!("error: cannot read audit log {e}");
    }
    if !report.errors.is_empty() {
        return Err(());
    }
    if o.counts.requests == 0 {
        eprintln!("warning: the audit log holds no request of the ServiceAccounts looked for");
    } else if !quiet {
        let lines: u64 = report.files.iter().map(|f| f.lines).sum();
        eprintln!(
            "note: read {} lines of {}: {} requests of {} ServiceAccounts",
            lines,
            o.source,
            o.counts.requests,
            o.accounts.len()
        );
    }
    Ok(())
}

/// One workload (or, without manifests, one ServiceAccount) as learned.
pub struct Entry<'a> {
    pub account: &'a Account,
    pub copies: Vec<u32>,
    pub calls: Vec<ObservedCall>,
    pub workload: Option<Workload<'a>>,
    /// Grants of the account the log leaves unused (with manifests).
    pub unused: Vec<least_privilege::GrantUse>,
    /// Where its profile was written, or why none was.
    pub profile: Option<Result<PathBuf, String>>,
}

pub struct Workload<'a> {
    pub analysis: &'a WorkloadAnalysis,
    /// `DaemonSet ns/name`.
    pub display: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// The container taken to make the calls, and its image.
    pub container: String,
    pub image: Option<String>,
}

pub fn run(args: LearnArgs) -> ExitCode {
    if stdin_twice(&args.audit_log, &args.paths) {
        return ExitCode::from(EXIT_USAGE);
    }
    let (files, errors) = audit_log::expand(&args.audit_log);
    if !errors.is_empty() {
        for e in errors {
            eprintln!("error: cannot read audit log {e}");
        }
        return ExitCode::from(EXIT_USAGE);
    }
    if args.out.is_some() && args.paths.is_empty() {
        eprintln!("error: --out writes profiles keyed by the workloads' images: give the workloads' manifests (PATHS)");
        return ExitCode::from(EXIT_USAGE);
    }
    let input = (!args.paths.is_empty()).then(|| input_args(&args));
    // First the manifests, to look only for their ServiceAccounts.
    let filter = match &input {
        Some(input) => match analyze(input, false, None, crate::load::KeepText::Whole) {
            Ok(a) => UserFilter::Only(users(&a.report)),
            Err(code) => return code,
        },
        None => UserFilter::ServiceAccounts,
    };
    let (observations, report) = read(&args.audit_log, &files, filter);
    if report_problems(&report, &observations, args.quiet).is_err() {
        return ExitCode::from(EXIT_USAGE);
    }
    let observations = Arc::new(observations);
    let analysis = match &input {
        Some(input) => match analyze(input, false, Some(&observations), crate::load::KeepText::Whole) {
            Ok(a) => Some(a),
            Err(code) => return code,
        },
        None => None,
    };
    let mut entries = match &analysis {
        Some(a) => workload_entries(&a.report, &observations),
        None => observations
            .accounts
            .iter()
            .map(|account| {
                let copies = account.all_copies();
                Entry {
                    account,
                    calls: account.calls(&copies),
                    copies,
                    workload: None,
                    unused: Vec::new(),
                    profile: None,
                }
            })
            .collect(),
    };
    let mut failed = false;
    if let (Some(dir), Some(_)) = (&args.out, &analysis) {
        failed |= profile::write_all(dir, &mut entries, &observations).is_err();
    }
    let today = apiload_rules::setup::today();
    let mut out = String::new();
    if args.suggest_rbac {
        out.push_str(&rbac::render(&entries, &observations.source));
    }
    if !args.quiet {
        let text = match args.format {
            SummaryFormat::Human => summary::human(&entries, &observations, &report, &today),
            SummaryFormat::Json => summary::json(&entries, &observations, &report),
        };
        if args.suggest_rbac {
            eprint!("{text}");
        } else {
            out.push_str(&text);
        }
    }
    if crate::output::write(None, &out).is_err() || failed {
        return ExitCode::from(EXIT_USAGE);
    }
    ExitCode::SUCCESS
}

fn input_args(args: &LearnArgs) -> InputArgs {
    InputArgs {
        paths: args.paths.clone(),
        namespace: args.namespace.clone(),
        nodes: None,
        cluster_profile: None,
        max_file_size: args.max_file_size,
        profiles: args.profiles.clone(),
        config: args.config.clone(),
        no_config: args.no_config,
        stdin_filename: None,
        root: None,
        helm: args.helm,
        values: args.values.clone(),
        release_name: args.release_name.clone(),
        audit_log: Vec::new(),
    }
}

/// The user names of the ServiceAccounts the input's workloads run as.
fn users(report: &Report) -> std::collections::HashSet<Box<str>> {
    report
        .analyses
        .iter()
        .map(|a| format!("system:serviceaccount:{}:{}", a.identity.namespace, a.identity.service_account).into())
        .collect()
}

/// An entry per workload the log showed (its own copies, as the analysis
/// attributed them).
fn workload_entries<'a>(report: &'a Report, o: &'a Observations) -> Vec<Entry<'a>> {
    let mut out = Vec::new();
    for a in &report.analyses {
        if a.behaviour.observed.is_none() {
            continue;
        }
        let w = &report.inventory.workloads[a.workload];
        let obj = report.inventory.object(w.object);
        let Some(seen) = o.seen(
            &a.identity.namespace,
            &a.identity.service_account,
            w.kind,
            &obj.name,
            !a.identity.shared_with.is_empty(),
        ) else {
            continue;
        };
        let all = seen.account.calls(&seen.account.all_copies());
        let (container, image) = pick_container(w, seen.account);
        out.push(Entry {
            account: seen.account,
            calls: seen.calls(),
            copies: seen.copies.clone(),
            unused: least_privilege::unused_grants(
                &report.inventory,
                &a.identity.namespace,
                &a.identity.service_account,
                &all,
            ),
            workload: Some(Workload {
                analysis: a,
                display: obj.display(),
                kind: obj.kind.to_string(),
                name: obj.name.to_string(),
                namespace: obj.ns().to_string(),
                container,
                image,
            }),
            profile: None,
        });
    }
    out
}

/// The container whose client made the calls: the only one with an image,
/// else the one its user agent names (client-go sends the program's name
/// first), else the first.
fn pick_container(w: &apiload_rules::workload::Workload, account: &Account) -> (String, Option<String>) {
    let containers: Vec<_> = w.containers().filter(|c| !c.init && c.image.is_some()).collect();
    let agent = account.user_agents.first().map(|ua| ua.split(['/', ' ']).next().unwrap_or("").to_string());
    let named = |c: &&apiload_rules::workload::Container| {
        let Some(agent) = agent.as_deref().filter(|a| !a.is_empty()) else { return false };
        let image = c.image.as_ref().map_or("", |i| &*i.value);
        let repo = apiload_rules::profile::context::split_image(image).0;
        repo.rsplit('/').next() == Some(agent)
            || c.command.first().is_some_and(|cmd| cmd.value.rsplit('/').next() == Some(agent))
    };
    let chosen = match containers.as_slice() {
        [] => None,
        [one] => Some(*one),
        many => many.iter().find(|c| named(c)).or(many.first()).copied(),
    };
    match chosen {
        Some(c) => (c.name.to_string(), c.image.as_ref().map(|i| i.value.to_string())),
        None => (String::new(), None),
    }
}

/// "3 pods" / "1 client" for a number of copies.
pub fn copies_phrase(account: &Account, n: usize) -> String {
    let what = if account.knows_pods() { ("pod", "pods") } else { ("client", "clients") };
    crate::render::plural(n, what.0, what.1)
}
