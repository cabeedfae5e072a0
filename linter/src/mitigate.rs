//! `apiload mitigate`: the engine's plan (`apiload_rules::mitigate`) written
//! out as YAML with the figures it came from — a FlowSchema and a
//! PriorityLevelConfiguration per fanning-out ServiceAccount — and the
//! rules' mechanical fixes as a unified diff (docs/mitigate.md). The input
//! is read as `lint` reads it, or from the cluster as `apiload audit` does.

use crate::output;
use crate::{EXIT_FINDINGS, EXIT_USAGE, audit, fix, render};
use apiload::setup;
use apiload_rules::mitigate::{self, Mitigation, Plan, ServerLimits};
use apiload_rules::text::thousands;
use apiload_rules::{Diagnostic, Severity, SourceId, Sources};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct MitigateArgs {
    #[command(flatten)]
    pub input: crate::InputArgs,
    /// Read the running cluster instead of paths, as `apiload audit` does
    /// (with --kubeconfig, --context and the other connection flags).
    #[arg(long)]
    pub cluster: bool,
    #[command(flatten)]
    pub connection: audit::ClusterArgs,
    /// The API server's --max-requests-inflight (its concurrency limit under
    /// API Priority and Fairness is the sum of this and the next).
    #[arg(long, value_name = "N", default_value_t = mitigate::DEFAULT_MAX_REQUESTS_INFLIGHT)]
    pub max_requests_inflight: u64,
    /// The API server's --max-mutating-requests-inflight.
    #[arg(long, value_name = "N", default_value_t = mitigate::DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT)]
    pub max_mutating_requests_inflight: u64,
    /// Write the FlowSchemas and priority levels to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the rules' mechanical fixes as a unified diff to FILE (apply it
    /// from the repository root with `git apply FILE` or `patch -p1 < FILE`).
    #[arg(long, value_name = "FILE")]
    pub patches: Option<PathBuf>,
    /// No summary lines on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// What was read, analysed and can be patched.
struct Read {
    sources: Sources,
    report: apiload_rules::Report,
    /// Files on disk by source (what a patch may change), with the root
    /// their patch paths are relative to.
    files: HashMap<SourceId, PathBuf>,
    root: PathBuf,
    generated: Vec<(SourceId, Option<PathBuf>)>,
    /// Something could not be read: exit 2 after writing the rest.
    incomplete: bool,
    /// Where the input came from, for the header.
    scope: String,
}

pub fn run(args: MitigateArgs) -> ExitCode {
    let limits = ServerLimits {
        max_requests_inflight: args.max_requests_inflight,
        max_mutating_requests_inflight: args.max_mutating_requests_inflight,
    };
    if limits.max_requests_inflight + limits.max_mutating_requests_inflight == 0 {
        eprintln!(
            "error: --max-requests-inflight and --max-mutating-requests-inflight add up to 0: the API server refuses that configuration"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let read = if args.cluster { read_cluster(&args) } else { read_paths(&args) };
    let Read { sources, report, files, root, generated, incomplete, scope } = match read {
        Ok(r) => r,
        Err(code) => return code,
    };
    let locator = render::Locator::new(&sources, &root, &generated);
    // Documents that could not be read are named; the rest is planned for.
    let broken: Vec<&Diagnostic> = report
        .diagnostics
        .iter()
        .filter(|d| d.rule.stage == apiload_rules::diagnostic::Stage::Input && d.severity == Severity::Error)
        .collect();
    for d in &broken {
        let p = locator.position(d.location);
        eprintln!("error: {}:{}:{}: {} ({})", p.file, p.line, p.column, d.message, d.rule.id);
    }
    let plan = mitigate::plan(&report, limits);
    let mut failed = incomplete;
    if let Err(e) = output::write(args.output.as_deref(), &yaml(&plan, &scope)) {
        eprintln!("error: {e}");
        failed = true;
    }
    if let Some(path) = &args.patches {
        if args.cluster {
            eprintln!(
                "note: --patches with --cluster: no patches; the live objects belong to whatever installed them (docs/mitigate.md)"
            );
        } else {
            let (diff, notes) = patches(&sources, &report.diagnostics, &files, &root);
            for n in notes {
                eprintln!("note: {n}");
            }
            if let Err(e) = std::fs::write(path, diff) {
                eprintln!("error: cannot write {}: {e}", path.display());
                failed = true;
            }
        }
    }
    if !args.quiet {
        for line in summary(&plan) {
            eprintln!("{line}");
        }
    }
    if failed {
        ExitCode::from(EXIT_USAGE)
    } else if !broken.is_empty() {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

fn read_paths(args: &MitigateArgs) -> Result<Read, ExitCode> {
    let Ok(observed) = crate::learn::observe(&args.input, args.quiet) else { return Err(ExitCode::from(EXIT_USAGE)) };
    let a = crate::analyze(&args.input, false, observed.as_ref(), crate::load::KeepText::Whole)?;
    for w in &a.warnings {
        eprintln!("warning: {w}");
    }
    let scope = match args.input.paths.as_slice() {
        [one] => one.clone(),
        many => many.join(" "),
    };
    Ok(Read {
        sources: a.sources,
        report: a.report,
        files: a.files,
        root: a.root,
        generated: a.generated,
        incomplete: !a.read_errors.is_empty(),
        scope,
    })
}

fn read_cluster(args: &MitigateArgs) -> Result<Read, ExitCode> {
    let i = &args.input;
    if i.paths != ["."] || i.helm || i.stdin_filename.is_some() || !i.audit_log.is_empty() {
        eprintln!("error: --cluster reads the cluster: give no paths, --helm, --stdin-filename or --audit-log with it");
        return Err(ExitCode::from(EXIT_USAGE));
    }
    let mut sources = Sources::new();
    let request = setup::Request {
        config: i.config.as_deref(),
        no_config: i.no_config,
        cluster_profile: i.cluster_profile.as_deref(),
        profiles: &i.profiles,
        flags: apiload_rules::setup::Flags { nodes: i.nodes, ..Default::default() },
    };
    let mut setup = match setup::setup(&request, &mut sources) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return Err(ExitCode::from(EXIT_USAGE));
        }
    };
    let snap = audit::read(&args.connection, &setup.profiles, args.quiet)?;
    for p in &snap.problems {
        eprintln!("error: not read: {p}");
    }
    if i.nodes.is_none() && i.cluster_profile.is_none() {
        apiload_cluster::audit::use_cluster(&mut setup.options.cluster, &snap);
    }
    let scope = audit::describe(&snap);
    let incomplete = !snap.problems.is_empty();
    let audited = apiload_cluster::audit::analyze(&snap, setup, sources);
    Ok(Read {
        sources: audited.sources,
        report: audited.report,
        files: HashMap::new(),
        root: std::env::current_dir().unwrap_or_default(),
        generated: Vec::new(),
        incomplete,
        scope,
    })
}

/// One line per fan-out workload, for stderr.
fn summary(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for m in &plan.mitigations {
        let l = &m.level;
        for (w, copies) in &m.workloads {
            out.push(format!(
                "{w}: {} copies → FlowSchema {} (precedence {}) and a level of {} seats ({} shares, lends {}%, borrows {}%, queue {}); all copies start in about {}",
                thousands(*copies),
                m.name,
                m.precedence,
                l.nominal_cl,
                l.shares,
                l.lendable_percent,
                l.borrowing_limit_percent,
                thousands(l.queue_length_limit),
                duration(l.herd_seconds)
            ));
        }
    }
    for c in &plan.covered {
        out.push(format!(
            "{}: {} copies, already in FlowSchema {}: nothing written",
            c.workload,
            thousands(c.copies),
            c.flow_schema
        ));
    }
    if plan.mitigations.is_empty() && plan.covered.is_empty() {
        out.push("no workload fans out with LISTs or WATCHes: nothing to contain".into());
    }
    out
}

/// `45 s`, `12 min`, `2.7 h`.
fn duration(secs: f64) -> String {
    if secs < 90.0 {
        format!("{:.0} s", secs.max(0.0).ceil())
    } else if secs < 5400.0 {
        format!("{:.0} min", (secs / 60.0).round())
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

/// `0.4`, `12`, `1,250`.
fn num(x: f64) -> String {
    apiload_rules::cost::rate(x)
}

/// Comment lines wrapped at 96 columns, at `indent` spaces; a text that
/// starts with `- ` is a list item, its later lines indented under it.
fn comment(out: &mut String, indent: usize, text: &str) {
    const WIDTH: usize = 96;
    let lead = format!("{}# ", " ".repeat(indent));
    let hang = if text.starts_with("- ") { "  " } else { "" };
    let mut line = String::new();
    let mut first = true;
    for word in text.split_whitespace() {
        let prefix = if first { "" } else { hang };
        if !line.is_empty() && lead.len() + prefix.len() + line.chars().count() + 1 + word.chars().count() > WIDTH {
            let _ = writeln!(out, "{lead}{prefix}{line}");
            line.clear();
            first = false;
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{lead}{}{line}", if first { "" } else { hang });
    }
}

/// The plan as YAML with comments, ready for `kubectl apply -f -`.
pub fn yaml(plan: &Plan, scope: &str) -> String {
    let mut out = String::new();
    let added: u64 = plan.mitigations.iter().map(|m| m.level.shares).sum();
    comment(
        &mut out,
        0,
        &format!(
            "apiload mitigate of {scope}: API Priority and Fairness for the workloads that fan out, until they \
             are fixed (docs/mitigate.md). Sized for {} nodes and one API server with a concurrency limit of {} \
             (--max-requests-inflight {} + --max-mutating-requests-inflight {}), divided among the existing \
             priority levels' {} shares and the {} added here ({} in all).",
            thousands(plan.nodes),
            plan.server_cl,
            plan.server.max_requests_inflight,
            plan.server.max_mutating_requests_inflight,
            plan.existing_shares,
            added,
            plan.total_shares
        ),
    );
    if plan.scaled_down {
        comment(
            &mut out,
            0,
            "The levels below together wanted more than half of the server's seats; each was scaled down to \
             its part of half: the workloads will queue even in steady state. Fix them.",
        );
    }
    if plan.mitigations.is_empty() {
        comment(
            &mut out,
            0,
            "Nothing to contain: no workload fans out with LISTs or WATCHes outside a FlowSchema of its own.",
        );
    }
    for m in &plan.mitigations {
        flow_schema(&mut out, m);
        priority_level(&mut out, m, plan);
    }
    out
}

fn workloads_text(m: &Mitigation) -> String {
    let list: Vec<String> = m.workloads.iter().map(|(w, c)| format!("{w} ({} copies)", thousands(*c))).collect();
    list.join(", ")
}

fn metadata(out: &mut String, m: &Mitigation) {
    let _ = write!(
        out,
        "metadata:\n  name: {}\n  labels:\n    app.kubernetes.io/managed-by: apiload\n  annotations:\n    apiload.dev/service-account: {}/{}\n",
        m.name, m.namespace, m.service_account
    );
}

fn flow_schema(out: &mut String, m: &Mitigation) {
    let bootstrap = if m.namespace == "kube-system" {
        "the bootstrap `kube-system-service-accounts` schema (900) puts them in workload-high, in one flow \
         with kube-system's controllers"
    } else {
        "they go to the bootstrap `service-accounts` schema (9000): workload-low, shared with every \
         ServiceAccount"
    };
    out.push_str("---\n");
    comment(
        out,
        0,
        &format!(
            "{} runs as ServiceAccount {}/{}. No FlowSchema of the input takes its requests, so {bootstrap}. \
             This one takes them first.",
            workloads_text(m),
            m.namespace,
            m.service_account
        ),
    );
    out.push_str("apiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: FlowSchema\n");
    metadata(out, m);
    out.push_str("spec:\n");
    comment(
        out,
        2,
        &format!(
            "{}: after the bootstrap schemas that must keep their requests (leader election 100, the nodes' \
             400 and 500, the controller manager's and the scheduler's 800), before \
             kube-system-service-accounts (900) and service-accounts (9000).",
            m.precedence
        ),
    );
    let _ =
        writeln!(out, "  matchingPrecedence: {}\n  priorityLevelConfiguration:\n    name: {}", m.precedence, m.name);
    comment(out, 2, "Every copy authenticates as the one ServiceAccount: one flow.");
    out.push_str("  distinguisherMethod:\n    type: ByUser\n");
    let _ = write!(
        out,
        "  rules:\n  - subjects:\n    - kind: ServiceAccount\n      serviceAccount:\n        namespace: {}\n        name: {}\n",
        m.namespace, m.service_account
    );
    comment(out, 4, "Every request of the ServiceAccount, resource or not, goes to its level.");
    out.push_str(
        "    resourceRules:\n    - verbs: [\"*\"]\n      apiGroups: [\"*\"]\n      resources: [\"*\"]\n      clusterScope: true\n      namespaces: [\"*\"]\n    nonResourceRules:\n    - verbs: [\"*\"]\n      nonResourceURLs: [\"*\"]\n",
    );
}

fn priority_level(out: &mut String, m: &Mitigation, plan: &Plan) {
    let l = &m.level;
    out.push_str("---\n");
    comment(
        out,
        0,
        &format!(
            "The priority level of {}. One start of all {} copies ({}) sends:",
            workloads_text(m),
            thousands(m.copies),
            if m.workloads.iter().any(|(w, _)| w.kind == "DaemonSet") {
                "a rollout, or the creation, which the DaemonSet controller never throttles"
            } else {
                "a rollout that restarts them all, or a scale-up from none"
            }
        ),
    );
    for r in &m.requests {
        if r.verb == "WATCH" {
            comment(
                out,
                0,
                &format!("- {} WATCHes of {} ({}): 1 seat each.", thousands(r.copies), r.resource, r.scope),
            );
            continue;
        }
        let memory = r.collection_objects * r.object_bytes;
        let counted = if r.from_cache && memory > 1e6 {
            "counted as 1 MB from the watch cache".to_string()
        } else {
            format!("from {}", if r.from_cache { "the watch cache" } else { "etcd" })
        };
        comment(
            out,
            0,
            &format!(
                "- {} LISTs of {} ({}): the work estimator counts the whole collection, {} objects × {} = {}, \
                 {counted}: {} seats each; each returns {} and holds its seats about {}.",
                thousands(r.copies),
                r.resource,
                r.scope,
                thousands(r.collection_objects.round() as u64),
                apiload_rules::cost::bytes(r.object_bytes),
                apiload_rules::cost::bytes(memory),
                r.seats,
                apiload_rules::cost::bytes(r.bytes),
                seconds(r.hold_seconds)
            ),
        );
    }
    comment(
        out,
        0,
        &format!(
            "In all {} requests, {} seats, {} seat-seconds; the widest takes {} seats.",
            thousands(m.herd.requests),
            thousands(m.herd.seats),
            thousands(m.herd.seat_seconds.round() as u64),
            m.herd.widest_seats
        ),
    );
    if m.steady.is_empty() {
        comment(out, 0, "In steady state it sends nothing apiload knows of besides its open watches.");
    } else {
        comment(out, 0, "In steady state (seats held at once = rate × seats × hold):");
        for s in &m.steady {
            comment(
                out,
                0,
                &format!(
                    "- {}: {}/s × {} seat{} × {} = {} seats.",
                    s.what,
                    num(s.per_second),
                    s.seats,
                    if s.seats == 1 { "" } else { "s" },
                    seconds(s.hold_seconds),
                    num(s.per_second * s.seats as f64 * s.hold_seconds)
                ),
            );
        }
        comment(out, 0, &format!("In all {} seats at once.", num(m.steady_seats)));
    }
    comment(
        out,
        0,
        &format!(
            "Hold times are assumed: {} for a small request, LIST bytes at {}/s (docs/mitigate.md).",
            seconds(mitigate::HOLD_SECONDS),
            apiload_rules::cost::bytes(mitigate::LIST_BYTES_PER_SECOND)
        ),
    );
    out.push_str("apiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: PriorityLevelConfiguration\n");
    metadata(out, m);
    out.push_str("spec:\n  type: Limited\n  limited:\n");
    let steady_cl = m.steady_seats.ceil() as u64;
    let steady_note = if l.steady_capped {
        format!(
            "the steady traffic's {steady_cl} seats, more than the {} (a tenth of the server) a level of \
             apiload's may take: it will queue in steady state too — fix the workload",
            l.cap_cl
        )
    } else {
        format!("the steady traffic's {steady_cl} (at most {}, a tenth of the server)", l.cap_cl)
    };
    comment(
        out,
        4,
        &format!(
            "{} shares: ceil({} × {} / {}) = {} seats. Asked for {}: the larger of what its widest \
             request needs, {} (a level's largest request takes max(1, min(ceil(0.15 × CL), CL / \
             handSize)) seats; {} seats are costed in full from {}), and {}.",
            l.shares,
            plan.server_cl,
            l.shares,
            plan.total_shares,
            l.nominal_cl,
            l.target_cl,
            l.width_cl,
            m.herd.widest_seats,
            l.width_cl,
            steady_note
        ),
    );
    let _ = writeln!(out, "    nominalConcurrencyShares: {}", l.shares);
    let lendable = l.nominal_cl - l.guaranteed;
    comment(
        out,
        4,
        &format!(
            "Lends round({} × {} / 100) = {} seats to other levels while it does not use them and keeps {}: \
             the larger of its steady traffic's {} and one widest request's {}.",
            l.nominal_cl,
            l.lendable_percent,
            lendable,
            l.guaranteed,
            steady_cl,
            m.herd.widest_seats.min(l.max_seats)
        ),
    );
    let _ = writeln!(out, "    lendablePercent: {}", l.lendable_percent);
    comment(
        out,
        4,
        &format!(
            "Borrows nothing: it never holds more than its {} seats, and a herd waits in its queue instead of \
             taking the seats of every other level.",
            l.nominal_cl
        ),
    );
    let _ = writeln!(out, "    borrowingLimitPercent: {}", l.borrowing_limit_percent);
    out.push_str("    limitResponse:\n      type: Queue\n      queuing:\n");
    comment(out, 8, "One flow (one ServiceAccount) is dealt handSize queues; more queues would only add length.");
    let _ = writeln!(out, "        queues: {}\n        handSize: {}", l.queues, l.hand_size);
    comment(
        out,
        8,
        &format!(
            "At {} seats (a request at most {}) the level dispatches about {} of these requests per second, \
             and a request waits at most {} (a quarter of the 60 s request timeout): a queue of \
             ceil({} × {}/s) = {} holds what it can serve in time (at most the herd's {}); the rest are \
             rejected with 429 and retried. All copies start in about {}.",
            l.nominal_cl,
            l.max_seats,
            num(l.dispatch_per_second),
            seconds(mitigate::QUEUE_WAIT_SECONDS),
            seconds(mitigate::QUEUE_WAIT_SECONDS),
            num(l.dispatch_per_second),
            thousands(l.queue_length_limit),
            thousands(m.herd.requests),
            duration(l.herd_seconds)
        ),
    );
    let _ = writeln!(out, "        queueLengthLimit: {}", l.queue_length_limit);
}

/// `0.1 s`, `12 s`.
fn seconds(s: f64) -> String {
    let text = if s < 1.0 {
        format!("{s:.2}")
    } else if s < 10.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.0}")
    };
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
    format!("{text} s")
}

/// The preferred fixes of the findings (those `lint --fix` applies) as one
/// unified diff of the files on disk, paths relative to `root`; notes say
/// what could not be patched.
pub fn patches(
    sources: &Sources,
    diagnostics: &[Diagnostic],
    files: &HashMap<SourceId, PathBuf>,
    root: &Path,
) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut notes = Vec::new();
    for (id, edits) in fix::plan(diagnostics) {
        let source = sources.get(id);
        let Some(path) = files.get(&id) else {
            notes.push(format!(
                "{}: its fixes are not a patch (stdin or a rendered chart is not a file; fix its source)",
                source.name
            ));
            continue;
        };
        let shown = crate::paths::display(root, &path.display().to_string());
        if Path::new(&shown).is_absolute() {
            notes.push(format!("{shown}: outside the repository root ({}): no patch", root.display()));
            continue;
        }
        let Some(text) = source.text() else { continue };
        let Some(fixed) = fix::apply(text, &edits) else { continue };
        if fixed == text {
            continue;
        }
        let diff = similar::TextDiff::from_lines(text, &fixed);
        let _ = write!(
            out,
            "diff --git a/{shown} b/{shown}\n{}",
            diff.unified_diff().context_radius(3).header(&format!("a/{shown}"), &format!("b/{shown}"))
        );
    }
    (out, notes)
}
