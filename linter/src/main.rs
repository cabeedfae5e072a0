//! `apiload`: finds Kubernetes workloads whose API-server load multiplies with
//! cluster size, before they ship.

mod audit;
mod baseline;
mod chart;
mod fix;
mod learn;
mod lsp;
mod mitigate;
mod origin;
mod output;
mod paths;
mod render;
mod select;

use apiload::{load, setup};
use apiload_rules::{Input, Severity, SourceId, Sources, rules};
use apiload_yaml::Limits;
use clap::{Parser, Subcommand, ValueEnum};
use output::{Color, Format, Spec};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "apiload",
    version,
    about = "Finds Kubernetes workloads whose API-server load multiplies with cluster size"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lint manifests: files, folders (recursively) or `-` for stdin.
    Lint(LintArgs),
    /// Estimate the API-server load of every workload that talks to it, most expensive first.
    Estimate(EstimateArgs),
    /// Learn what agents really call from the API server's audit log: profiles, a summary, RBAC (docs/learn.md).
    Learn(learn::LearnArgs),
    /// Audit a running cluster: lint's findings for its live objects (docs/audit.md).
    Audit(audit::AuditArgs),
    /// Write the FlowSchemas and priority levels that contain the fan-out until it is fixed,
    /// and the rules' fixes as a patch (docs/mitigate.md).
    Mitigate(Box<mitigate::MitigateArgs>),
    /// Print a rule's documentation.
    Explain {
        /// Rule id (AL101) or name (per-node-cluster-watch).
        rule: String,
    },
    /// List the rules, or print the rule reference as Markdown.
    Rules {
        /// Print the rule reference (docs/rules.md) as Markdown instead of the list.
        #[arg(long)]
        markdown: bool,
    },
    /// Run the language server on stdin/stdout, for editors (docs/editors.md).
    Lsp {
        /// Accepted for clients that pass it; stdio is the only transport.
        #[arg(long)]
        stdio: bool,
    },
}

/// What lint and estimate share: the input and the cluster it is for.
#[derive(clap::Args)]
struct InputArgs {
    /// Manifest files or folders (default `.`); `-` reads stdin.
    #[arg(default_value = ".")]
    paths: Vec<String>,
    /// Namespace of objects that have none (default `default`).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Node count of the production cluster (default 5,000, or the cluster profile's).
    #[arg(long)]
    nodes: Option<u64>,
    /// Cluster profile file: size, object sizes, churn (docs/cost-model.md).
    #[arg(long, value_name = "FILE")]
    cluster_profile: Option<String>,
    /// Largest input file, in bytes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_BYTES)]
    max_file_size: usize,
    /// Folder of agent profiles to add to the built-in ones (docs/profiles.md).
    #[arg(long, value_name = "DIR")]
    profiles: Vec<String>,
    /// Configuration file (default: `.apiload.yaml` in this folder or the nearest parent).
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// Ignore any `.apiload.yaml`.
    #[arg(long, conflicts_with = "config")]
    no_config: bool,
    /// The file stdin stands for: its name in findings, and for `helm template`
    /// or `kustomize build` output, the chart or kustomization it was built from.
    #[arg(long, value_name = "PATH")]
    stdin_filename: Option<String>,
    /// Repository root: paths in findings are relative to it (default: the
    /// nearest folder up from here with `.git`, else this folder).
    #[arg(long, value_name = "DIR")]
    root: Option<String>,
    /// Render the Helm charts among the paths (folders with a Chart.yaml) and
    /// lint what they render, with findings at the template lines. Needs
    /// `helm` on the PATH or the Python package helm-python-sdk.
    #[arg(long)]
    helm: bool,
    /// Values file for `--helm` (repeatable; later files win).
    #[arg(long = "values", short = 'f', value_name = "FILE", requires = "helm")]
    values: Vec<String>,
    /// Release name for `--helm`.
    #[arg(long, value_name = "NAME", default_value = "release", requires = "helm")]
    release_name: String,
    /// The API server's audit log (repeatable; a folder reads every log in
    /// it, `.gz` too; `-` is stdin): the calls it shows get basis `observed`
    /// (docs/learn.md).
    #[arg(long, value_name = "FILE")]
    audit_log: Vec<String>,
}

#[derive(clap::Args)]
struct LintArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Report format, or FORMAT=FILE to write it to a file; repeat for
    /// several reports in one run (`--format sarif=apiload.sarif --format github`).
    /// Formats: human, json, sarif, github, junit, markdown.
    #[arg(long, value_name = "FORMAT[=FILE]", value_parser = output::parse_spec)]
    format: Vec<Spec>,
    /// Write the report that has no `=FILE` to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Exit with 1 when a finding has at least this severity (default error, or the configuration's `failOn`).
    #[arg(long, value_enum)]
    fail_on: Option<FailOn>,
    /// Report only these rules: ids (AL101), id prefixes (AL1), names or categories; comma-separated or repeated.
    #[arg(long, value_name = "RULES")]
    select: Vec<String>,
    /// Do not report these rules (ids, id prefixes, names or categories); wins over --select.
    #[arg(long, value_name = "RULES")]
    ignore: Vec<String>,
    /// Apply the rules' mechanical fixes to the files (the language server's
    /// preferred quick fixes), then report what is left.
    #[arg(long)]
    fix: bool,
    /// Print findings only: no summary line and no notes on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Colour in the human report: auto (a terminal, unless NO_COLOR is set
    /// or FORCE_COLOR asks for it), always or never.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// Report only findings that are not in this baseline file.
    #[arg(long, value_name = "FILE")]
    baseline: Option<String>,
    /// Write the current findings to this baseline file and exit 0.
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<String>,
    /// Also report configuration exemptions that exempted nothing.
    #[arg(long)]
    report_unused_exemptions: bool,
}

#[derive(clap::Args)]
struct EstimateArgs {
    #[command(flatten)]
    input: InputArgs,
    #[arg(long, value_enum, default_value_t = EstimateFormat::Human)]
    format: EstimateFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum EstimateFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum FailOn {
    Error,
    Warning,
    Info,
    Never,
}

impl FailOn {
    fn parse(s: &str) -> Option<FailOn> {
        Some(match s {
            "error" => FailOn::Error,
            "warning" => FailOn::Warning,
            "info" => FailOn::Info,
            "never" => FailOn::Never,
            _ => return None,
        })
    }

    fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Error => Some(Severity::Error),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::Info => Some(Severity::Info),
            FailOn::Never => None,
        }
    }
}

/// Exit codes of the output contract.
const EXIT_FINDINGS: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match cli.command {
        Command::Lint(args) => lint(args),
        Command::Estimate(args) => estimate(args),
        Command::Learn(args) => learn::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Mitigate(args) => mitigate::run(*args),
        Command::Explain { rule } => match rules::find(&rule) {
            Some(r) => {
                print!("{}", explain(r));
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("error: no rule `{rule}`; `apiload rules` lists them");
                ExitCode::from(EXIT_USAGE)
            }
        },
        Command::Rules { markdown } => {
            print!("{}", if markdown { rules_markdown() } else { rules_table() });
            ExitCode::SUCCESS
        }
        Command::Lsp { stdio: _ } => lsp::run(),
    }
}

fn estimate(args: EstimateArgs) -> ExitCode {
    let Ok(observed) = learn::observe(&args.input, false) else { return ExitCode::from(EXIT_USAGE) };
    let analysis = match analyze(&args.input, false, observed.as_ref(), load::KeepText::WhatTheAnalysisReads) {
        Ok(a) => a,
        Err(code) => return code,
    };
    for w in &analysis.warnings {
        eprintln!("warning: {w}");
    }
    let rows = render::estimate::rows(&analysis.report);
    let out = match args.format {
        EstimateFormat::Json => render::estimate::json(&rows, &analysis.report.options.cluster),
        EstimateFormat::Human => render::estimate::table(&rows, &analysis.report.options.cluster),
    };
    if output::write(None, &out).is_err() || !analysis.read_errors.is_empty() {
        return ExitCode::from(EXIT_USAGE);
    }
    ExitCode::SUCCESS
}

/// An analysed input.
struct Analysis {
    sources: Sources,
    report: apiload_rules::Report,
    read_errors: Vec<load::ReadError>,
    fail_on: Option<String>,
    root: PathBuf,
    /// The sources linted (the configuration file is a source too, but not an input).
    inputs: Vec<SourceId>,
    /// Inputs read from disk, by source: what `--fix` may edit.
    files: HashMap<SourceId, PathBuf>,
    /// Inputs read from stdin or rendered here, with what they were made from.
    generated: Vec<(SourceId, Option<PathBuf>)>,
    warnings: Vec<String>,
    /// Paths the walk left out, and why.
    skipped: Vec<load::Skipped>,
}

/// Loads the configuration and the input and analyses it, with what the
/// audit log showed when it was read; `Err` carries the exit code of a usage
/// error (already reported on stderr).
fn analyze(
    args: &InputArgs,
    report_unused_exemptions: bool,
    observed: Option<&std::sync::Arc<apiload_rules::observed::Observations>>,
    keep: load::KeepText,
) -> Result<Analysis, ExitCode> {
    let limits = Limits { max_bytes: args.max_file_size, ..Limits::default() };
    let mut sources = Sources::new();
    let request = setup::Request {
        config: args.config.as_deref(),
        no_config: args.no_config,
        cluster_profile: args.cluster_profile.as_deref(),
        profiles: &args.profiles,
        flags: apiload_rules::setup::Flags {
            namespace: args.namespace.clone(),
            nodes: args.nodes,
            report_unused_exemptions,
            ..Default::default()
        },
    };
    let setup = match setup::setup(&request, &mut sources) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return Err(ExitCode::from(EXIT_USAGE));
        }
    };
    let root = paths::root(args.root.as_deref());
    let mut read_errors = Vec::new();
    let mut rendered = Vec::new();
    let mut paths = args.paths.clone();
    let charts = if args.helm { chart::find(&args.paths) } else { Vec::new() };
    if args.helm {
        let namespace = args.namespace.as_deref().unwrap_or(&setup.options.default_namespace);
        let how = chart::Render { release: &args.release_name, namespace, values: &args.values };
        for dir in &charts {
            match chart::render(dir, &how) {
                Ok(bytes) => rendered.push((dir.clone(), bytes)),
                Err(message) => read_errors.push(load::ReadError { path: dir.display().to_string(), message }),
            }
        }
        paths.retain(|p| !charts.iter().any(|c| Path::new(p) == c.as_path()));
    }
    let load::Walk { mut files, skipped, errors } =
        if paths.is_empty() && !charts.is_empty() { load::Walk::default() } else { load::walk(&paths) };
    read_errors.extend(errors);
    for s in skipped.iter().filter(|s| s.why.is_notable()) {
        eprintln!("note: skipped {}: {}", s.path.display(), s.why);
    }
    // A rendered chart's own files are not manifests.
    files.retain(|f| !charts.iter().any(|c| f.starts_with(c)));
    let (loaded, errors) = load::load_all(&files, &limits, keep);
    read_errors.extend(errors);
    let mut input = Input::with_profiles(setup.options, setup.profiles);
    input.set_exemptions(setup.exemptions);
    if let Some(o) = observed {
        input.set_observations(o.clone());
    }
    let (mut inputs, mut on_disk, mut generated) = (Vec::new(), HashMap::new(), Vec::new());
    let mut empty_stdin = false;
    let mut any_object = false;
    for mut l in loaded {
        any_object |= l.holds_objects;
        let from_stdin = l.source.name == load::STDIN_NAME;
        let path = PathBuf::from(&l.source.name);
        if from_stdin && let Some(name) = &args.stdin_filename {
            l.source.name.clone_from(name);
        }
        empty_stdin |= from_stdin && l.source.text().is_some_and(|t| t.trim().is_empty());
        let id = sources.push(l.source);
        input.add_documents(id, l.documents);
        inputs.push(id);
        if from_stdin {
            generated.push((id, args.stdin_filename.as_ref().map(PathBuf::from)));
        } else {
            on_disk.insert(id, path);
        }
    }
    for (dir, bytes) in rendered {
        let documents = apiload_yaml::load_stream(&bytes, &limits);
        any_object |= documents.iter().any(|d| d.as_ref().is_ok_and(load::is_object));
        let id = sources.push(apiload_rules::Source::new(format!("<helm template {}>", dir.display()), bytes));
        input.add_documents(id, documents);
        inputs.push(id);
        generated.push((id, Some(dir)));
    }
    let report = input.analyze(&sources);
    for e in &read_errors {
        eprintln!("error: cannot read {}: {}", e.path, e.message);
    }
    let mut warnings = Vec::new();
    if !inputs.is_empty() && !any_object && report.inventory.objects.is_empty() {
        warnings.push(if empty_stdin {
            "stdin was empty: nothing was linted (did the command before the pipe fail?)".to_string()
        } else {
            "the input holds no Kubernetes object (no document with apiVersion and kind): nothing was linted"
                .to_string()
        });
    }
    Ok(Analysis {
        sources,
        report,
        read_errors,
        fail_on: setup.fail_on,
        root,
        inputs,
        files: on_disk,
        generated,
        warnings,
        skipped,
    })
}

/// Reads back the text of the files whose lines a report shows: the loader
/// kept only the parts the analysis reads (`load::KeepText`). A file that
/// changed since it was read keeps its findings, without their lines.
fn restore_shown_texts(sources: &mut Sources, files: &HashMap<SourceId, PathBuf>, shown: &[apiload_rules::Diagnostic]) {
    let ids: std::collections::BTreeSet<SourceId> = shown
        .iter()
        .flat_map(|d| std::iter::once(d.location.source).chain(d.related.iter().map(|r| r.location.source)))
        .collect();
    for id in ids {
        let (Some(path), None) = (files.get(&id), sources.get(id).text()) else { continue };
        // The linter's table is its only holder.
        let Some(source) = sources.get_mut(id) else { continue };
        // One byte more than was read tells a file that grew.
        let result = apiload_yaml::files::read_bounded(path, source.len() as usize)
            .map_err(|e| e.to_string())
            .and_then(|bytes| source.restore(bytes));
        if let Err(e) = result {
            eprintln!("warning: the findings in {} are shown without their lines: {e}", source.name);
        }
    }
}

/// `--fix`: applies the preferred fixes of the findings to the files and
/// analyses again, until nothing is left to apply (at most a few rounds:
/// one fix can make room for another). Returns the last analysis and how
/// many fixes were applied, in how many files.
fn fix_files(
    args: &LintArgs,
    selection: &select::Selection,
    observed: Option<&std::sync::Arc<apiload_rules::observed::Observations>>,
) -> Result<(Analysis, usize, usize), ExitCode> {
    const ROUNDS: usize = 5;
    let (mut fixes, mut touched) = (0, std::collections::BTreeSet::new());
    for _ in 0..ROUNDS {
        let mut a = analyze(&args.input, args.report_unused_exemptions, observed, load::KeepText::Whole)?;
        selection.apply(&mut a.report.diagnostics);
        let plan = fix::plan(&a.report.diagnostics);
        let mut applied = 0;
        for (id, edits) in &plan {
            let Some(path) = a.files.get(id) else { continue };
            let Some(text) = a.sources.get(*id).text() else { continue };
            let Some(fixed) = fix::apply(text, edits) else { continue };
            if fixed == text {
                continue;
            }
            if let Err(e) = std::fs::write(path, &fixed) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return Err(ExitCode::from(EXIT_USAGE));
            }
            applied += a
                .report
                .diagnostics
                .iter()
                .filter(|d| fix::preferred(d).is_some_and(|f| f.edits.iter().any(|e| e.location.source == *id)))
                .count();
            touched.insert(path.clone());
        }
        if applied == 0 {
            return Ok((a, fixes, touched.len()));
        }
        fixes += applied;
    }
    analyze(&args.input, args.report_unused_exemptions, observed, load::KeepText::WhatTheAnalysisReads)
        .map(|a| (a, fixes, touched.len()))
}

/// The reports to write and the rules to report, from the flags `lint` and
/// `audit` share; a usage error is printed and ends the run.
fn reports_and_selection(
    format: &[output::Spec],
    output: Option<&std::path::Path>,
    select: &[String],
    ignore: &[String],
) -> Result<(Vec<output::Spec>, select::Selection), ExitCode> {
    let destinations = output::destinations(format, output).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_USAGE)
    })?;
    let selection = select::Selection::new(select, ignore).map_err(|errors| {
        for e in errors {
            eprintln!("error: {e}");
        }
        ExitCode::from(EXIT_USAGE)
    })?;
    Ok((destinations, selection))
}

fn lint(args: LintArgs) -> ExitCode {
    let (destinations, selection) =
        match reports_and_selection(&args.format, args.output.as_deref(), &args.select, &args.ignore) {
            Ok(r) => r,
            Err(code) => return code,
        };
    if destinations.iter().any(|s| s.format == Format::Policyreport) {
        eprintln!("error: --format policyreport is for `apiload audit`: PolicyReports describe objects in a cluster");
        return ExitCode::from(EXIT_USAGE);
    }
    let Ok(observed) = learn::observe(&args.input, args.quiet) else { return ExitCode::from(EXIT_USAGE) };
    let analysis = if args.fix {
        match fix_files(&args, &selection, observed.as_ref()) {
            Ok((a, fixes, files)) => {
                if !args.quiet {
                    eprintln!(
                        "fixed {} in {}",
                        render::plural(fixes, "finding", "findings"),
                        render::plural(files, "file", "files")
                    );
                }
                a
            }
            Err(code) => return code,
        }
    } else {
        match analyze(
            &args.input,
            args.report_unused_exemptions,
            observed.as_ref(),
            load::KeepText::WhatTheAnalysisReads,
        ) {
            Ok(a) => a,
            Err(code) => return code,
        }
    };
    let Analysis { mut sources, mut report, read_errors, fail_on, root, inputs, files, generated, warnings, skipped } =
        analysis;
    let deselected = selection.apply(&mut report.diagnostics);
    if let Some(path) = &args.write_baseline {
        return match baseline::write(path, &sources, &report.diagnostics) {
            Ok(()) => {
                if !args.quiet {
                    eprintln!("wrote {} to {path}", render::plural(report.diagnostics.len(), "finding", "findings"));
                }
                ExitCode::SUCCESS
            }
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
                let before = report.diagnostics.len();
                report.diagnostics.retain(|d| !known.contains(&baseline::fingerprint(&sources, d)));
                baselined = before - report.diagnostics.len();
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    let fail_on = args.fail_on.or_else(|| fail_on.as_deref().and_then(FailOn::parse)).unwrap_or(FailOn::Error);
    // The human report shows the lines of each finding; the others only positions.
    if destinations.iter().any(|s| s.format == Format::Human) {
        restore_shown_texts(&mut sources, &files, &report.diagnostics);
    }
    let locator = render::Locator::new(&sources, &root, &generated);
    let fingerprint = |d: &apiload_rules::Diagnostic| baseline::fingerprint(&sources, d);
    let run = render::Report {
        sources: &sources,
        locator: &locator,
        diagnostics: &report.diagnostics,
        counts: render::json::Counts {
            files: inputs.len(),
            objects: report.inventory.objects.len(),
            workloads: report.inventory.workloads.len(),
            suppressed: report.suppressed.len(),
            baselined,
            deselected,
        },
        fail_on: fail_on.threshold(),
        inputs: &inputs,
        skipped: &skipped,
        warnings: &warnings,
        fingerprint: &fingerprint,
        scope: None,
    };
    let mut write_failed = false;
    for spec in &destinations {
        let text = match spec.format {
            Format::Json => render::json::render(&run),
            Format::Sarif => render::sarif::render(&run),
            Format::Github => render::github::render(&run),
            Format::Junit => render::junit::render(&run),
            Format::Markdown => render::markdown::render(&run),
            // Refused above.
            Format::Policyreport => continue,
            Format::Human => {
                // Nothing was read: the errors above say it all.
                if inputs.is_empty() && !read_errors.is_empty() {
                    continue;
                }
                let terminal = spec.path.is_none() && std::io::stdout().is_terminal();
                let color = output::use_color(args.color, terminal, &|k| std::env::var(k).ok());
                let style = render::human::Style { color, width: 100, quiet: args.quiet };
                render::human::render(&run, &style)
            }
        };
        if let Err(e) = output::write(spec.path.as_deref(), &text) {
            eprintln!("error: {e}");
            write_failed = true;
        }
    }
    // Warnings reach stderr too when no report on the terminal shows them.
    if !args.quiet
        && !destinations.iter().any(|s| s.path.is_none() && matches!(s.format, Format::Human | Format::Github))
    {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
    }
    if write_failed || !read_errors.is_empty() {
        return ExitCode::from(EXIT_USAGE);
    }
    let failed = report.diagnostics.iter().any(|d| run.fails(d));
    // The process ends here: freeing the trees of every object one node at a
    // time took a seventh of a large lint's time (BENCHMARKS.md, "Memory and
    // time at scale"), so the memory is left to the operating system.
    drop(locator);
    std::mem::forget((report, sources));
    if failed { ExitCode::from(EXIT_FINDINGS) } else { ExitCode::SUCCESS }
}

/// `apiload rules`: one aligned row per rule.
fn rules_table() -> String {
    let rows: Vec<[&str; 5]> = std::iter::once(["ID", "NAME", "CATEGORY", "SEVERITY", "SUMMARY"])
        .chain(rules::all().iter().map(|r| [r.id, r.name, r.category.as_str(), r.severity.as_str(), r.summary]))
        .collect();
    let widths: Vec<usize> = (0..4).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        for (i, w) in widths.iter().enumerate() {
            out.push_str(&format!("{:<w$}  ", r[i], w = *w));
        }
        out.push_str(r[4]);
        out.push('\n');
    }
    out
}

fn explain(r: &rules::RuleInfo) -> String {
    format!(
        "{} {} ({}, default severity {})\n\n{}\n\nWhat it detects\n\n{}\n\nWhy it matters\n\n{}\n\nExample that fires\n\n{}\nFix\n\n{}\n",
        r.id,
        r.name,
        r.category,
        r.severity,
        r.summary,
        r.detects,
        r.why,
        match r.example_config {
            Some(c) => format!("{}\nwith this .apiload.yaml:\n\n{}", indent(r.example), indent(c)),
            None => indent(r.example),
        },
        r.fix
    )
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// The rule reference, generated from the rules' declarations (`docs/rules.md`).
fn rules_markdown() -> String {
    let mut out = String::from(
        "# Rule reference\n\n<!-- Generated by `apiload rules --markdown` from the rule declarations in rules/src/rules/. Do not edit. -->\n\n",
    );
    out.push_str("| id | name | category | severity | summary |\n|---|---|---|---|---|\n");
    for r in rules::all() {
        out.push_str(&format!(
            "| [{}](#{}-{}) | `{}` | `{}` | {} | {} |\n",
            r.id,
            r.id.to_lowercase(),
            r.name,
            r.name,
            r.category,
            r.severity,
            r.summary
        ));
    }
    for r in rules::all() {
        out.push_str(&format!(
            "\n## {} {}\n\nCategory `{}`, default severity **{}**. {}\n\n### What it detects\n\n{}\n\n### Why it matters\n\n{}\n\n### Example that fires\n\n```yaml\n{}```\n{}\n### Fix\n\n{}\n",
            r.id,
            r.name,
            r.category,
            r.severity,
            r.summary,
            r.detects,
            r.why,
            r.example,
            r.example_config.map_or(String::new(), |c| format!("\nwith this `.apiload.yaml`:\n\n```yaml\n{c}```\n")),
            r.fix
        ));
    }
    out
}
