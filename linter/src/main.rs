//! `apiload`: finds Kubernetes workloads whose API-server load multiplies with
//! cluster size, before they ship.

mod baseline;
mod lsp;
mod render;

use apiload::{load, setup};
use apiload_rules::{Input, Severity, Sources, rules};
use apiload_yaml::Limits;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
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
    /// Print a rule's documentation.
    Explain {
        /// Rule id (AL101) or name (per-node-cluster-watch).
        rule: String,
    },
    /// List the rules, or print the rule reference as Markdown.
    Rules {
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
    /// Manifest files or folders; `-` reads stdin.
    #[arg(required = true)]
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
}

#[derive(clap::Args)]
struct LintArgs {
    #[command(flatten)]
    input: InputArgs,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Exit with 1 when a finding has at least this severity (default error, or the configuration's `failOn`).
    #[arg(long, value_enum)]
    fail_on: Option<FailOn>,
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
enum Format {
    Human,
    Json,
    Sarif,
    Github,
    Junit,
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
            if markdown {
                print!("{}", rules_markdown());
            } else {
                for r in rules::all() {
                    println!("{}  {:<28} {:<24} {:<8} {}", r.id, r.name, r.category.as_str(), r.severity, r.summary);
                }
            }
            ExitCode::SUCCESS
        }
        Command::Lsp { stdio: _ } => lsp::run(),
    }
}

fn estimate(args: EstimateArgs) -> ExitCode {
    let analysis = match analyze(&args.input, false) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let rows = render::estimate::rows(&analysis.report);
    let out = match args.format {
        EstimateFormat::Json => render::estimate::json(&rows, &analysis.report.options.cluster),
        EstimateFormat::Human => render::estimate::table(&rows, &analysis.report.options.cluster),
    };
    if !emit(&out) || !analysis.read_errors.is_empty() {
        return ExitCode::from(EXIT_USAGE);
    }
    ExitCode::SUCCESS
}

/// An analysed input.
struct Analysis {
    sources: Sources,
    report: apiload_rules::Report,
    read_errors: Vec<load::ReadError>,
    /// Paths the walk left out (not manifests, FIFOs, link cycles).
    skipped: Vec<load::Skipped>,
    fail_on: Option<String>,
}

/// Loads the configuration and the input and analyses it; `Err` carries the
/// exit code of a usage error (already reported on stderr).
fn analyze(args: &InputArgs, report_unused_exemptions: bool) -> Result<Analysis, ExitCode> {
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
    let load::Walk { files, skipped, errors: mut read_errors } = load::walk(&args.paths);
    let (loaded, errors) = load::load_all(&files, &limits);
    read_errors.extend(errors);
    for s in skipped.iter().filter(|s| s.why.is_notable()) {
        eprintln!("note: skipped {}: {}", s.path.display(), s.why);
    }
    let mut input = Input::with_profiles(setup.options, setup.profiles);
    input.set_exemptions(setup.exemptions);
    for l in loaded {
        let id = sources.push(l.source);
        input.add_documents(id, l.documents);
    }
    let report = input.analyze(&sources);
    for e in &read_errors {
        eprintln!("error: cannot read {}: {}", e.path, e.message);
    }
    Ok(Analysis { sources, report, read_errors, skipped, fail_on: setup.fail_on })
}

fn emit(text: &str) -> bool {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()).is_ok()
}

fn lint(args: LintArgs) -> ExitCode {
    let Analysis { sources, mut report, read_errors, skipped, fail_on } =
        match analyze(&args.input, args.report_unused_exemptions) {
            Ok(a) => a,
            Err(code) => return code,
        };
    if let Some(path) = &args.write_baseline {
        return match baseline::write(path, &sources, &report.diagnostics) {
            Ok(()) => {
                eprintln!("wrote {} findings to {path}", report.diagnostics.len());
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
    let counts = render::json::Counts {
        files: sources.len(),
        objects: report.inventory.objects.len(),
        workloads: report.inventory.workloads.len(),
        suppressed: report.suppressed.len(),
        baselined,
    };
    let diagnostics = &report.diagnostics;
    let output = match args.format {
        Format::Json => render::json::render(&sources, diagnostics, counts, &skipped),
        Format::Sarif => render::sarif::render(&sources, diagnostics, |d| baseline::fingerprint(&sources, d)),
        Format::Github => render::github::render(&sources, diagnostics),
        Format::Junit => render::junit::render(&sources, diagnostics, counts.files),
        Format::Human => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let count = |s: Severity| diagnostics.iter().filter(|d| d.severity == s).count();
            let mut summary = format!(
                "{} errors, {} warnings, {} infos in {} files ({} objects, {} workloads)",
                count(Severity::Error),
                count(Severity::Warning),
                count(Severity::Info),
                counts.files,
                counts.objects,
                counts.workloads
            );
            if counts.suppressed > 0 {
                summary.push_str(&format!("; {} exempted", counts.suppressed));
            }
            if counts.baselined > 0 {
                summary.push_str(&format!("; {} in the baseline", counts.baselined));
            }
            if let Some(skips) = render::skipped_summary(&skipped) {
                summary.push_str(&format!("; {skips}"));
            }
            render::human::render(&sources, diagnostics, &render::human::Style { color, width: 100 }, &summary)
        }
    };
    if !emit(&output) || !read_errors.is_empty() {
        return ExitCode::from(EXIT_USAGE);
    }
    let fail_on = args.fail_on.or_else(|| fail_on.as_deref().and_then(FailOn::parse)).unwrap_or(FailOn::Error);
    let failed = fail_on.threshold().is_some_and(|t| diagnostics.iter().any(|d| d.severity >= t));
    if failed { ExitCode::from(EXIT_FINDINGS) } else { ExitCode::SUCCESS }
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
