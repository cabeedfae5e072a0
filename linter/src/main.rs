//! `apiload`: finds Kubernetes workloads whose API-server load multiplies with
//! cluster size, before they ship.

mod cluster_profile;
mod load;
mod render;

use apiload_rules::profile::ProfileSet;
use apiload_rules::{Input, Options, Severity, Sources, rules};
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
}

/// What lint and estimate share: the input and the cluster it is for.
#[derive(clap::Args)]
struct InputArgs {
    /// Manifest files or folders; `-` reads stdin.
    #[arg(required = true)]
    paths: Vec<String>,
    /// Namespace of objects that have none.
    #[arg(long, short = 'n', default_value = "default")]
    namespace: String,
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
}

#[derive(clap::Args)]
struct LintArgs {
    #[command(flatten)]
    input: InputArgs,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Exit with 1 when a finding has at least this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    fail_on: FailOn,
}

#[derive(clap::Args)]
struct EstimateArgs {
    #[command(flatten)]
    input: InputArgs,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
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
                for r in rules::ALL {
                    println!("{}  {:<28} {:<24} {:<8} {}", r.id, r.name, r.category.as_str(), r.severity, r.summary);
                }
            }
            ExitCode::SUCCESS
        }
    }
}

fn estimate(args: EstimateArgs) -> ExitCode {
    let (_sources, report, read_errors) = match analyze(&args.input) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let rows = render::estimate::rows(&report);
    let out = match args.format {
        Format::Json => render::estimate::json(&rows, &report.options.cluster),
        Format::Human => render::estimate::table(&rows, &report.options.cluster),
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(out.as_bytes()).and_then(|_| stdout.flush()).is_err() || !read_errors.is_empty() {
        return ExitCode::from(EXIT_USAGE);
    }
    ExitCode::SUCCESS
}

/// Loads and analyses the input; `Err` carries the exit code of a usage error.
fn analyze(args: &InputArgs) -> Result<(Sources, apiload_rules::Report, Vec<load::ReadError>), ExitCode> {
    let limits = Limits { max_bytes: args.max_file_size, ..Limits::default() };
    let mut options = Options { default_namespace: args.namespace.clone(), ..Options::default() };
    if let Some(path) = &args.cluster_profile
        && let Err(e) = read_cluster_profile(path, &mut options.cluster) {
            eprintln!("error: {e}");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    if let Some(n) = args.nodes {
        if n == 0 {
            eprintln!("error: --nodes must be at least 1");
            return Err(ExitCode::from(EXIT_USAGE));
        }
        options.cluster.nodes = n;
    }
    let profiles = match load_profiles(&args.profiles) {
        Ok(p) => p,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return Err(ExitCode::from(EXIT_USAGE));
        }
    };
    let (files, mut read_errors) = load::expand(&args.paths);
    let (loaded, errors) = load::load_all(&files, &limits);
    read_errors.extend(errors);
    let mut sources = Sources::new();
    let mut input = Input::with_profiles(options, profiles);
    for l in loaded {
        let id = sources.push(l.source);
        input.add_documents(id, l.documents);
    }
    let report = input.analyze(&sources);
    for e in &read_errors {
        eprintln!("error: cannot read {}: {}", e.path, e.message);
    }
    Ok((sources, report, read_errors))
}

fn read_cluster_profile(path: &str, profile: &mut apiload_rules::ClusterProfile) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let at = |span: apiload_yaml::Span| {
        let lc = apiload_yaml::LineIndex::new(text.as_bytes()).line_col_in(
            &text,
            span.start,
            apiload_yaml::ColumnUnit::Chars,
        );
        format!("{path}:{}:{}", lc.line, lc.column)
    };
    let mut docs = apiload_yaml::load_str(&text, &Limits::default());
    let root = match docs.is_empty() {
        true => return Ok(()),
        false => docs.remove(0).map_err(|e| format!("{}: {}", at(e.span), e.message))?.root,
    };
    cluster_profile::apply(&root, profile)
        .map_err(|e| format!("{}: invalid cluster profile: {}", at(e.span), e.message))
}

fn lint(args: LintArgs) -> ExitCode {
    let (sources, report, read_errors) = match analyze(&args.input) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let counts = render::json::Counts {
        files: sources.len(),
        objects: report.inventory.objects.len(),
        workloads: report.inventory.workloads.len(),
    };
    let output = match args.format {
        Format::Json => render::json::render(&sources, &report.diagnostics, counts),
        Format::Human => {
            let stdout = std::io::stdout();
            let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let count = |s: Severity| report.diagnostics.iter().filter(|d| d.severity == s).count();
            let summary = format!(
                "{} errors, {} warnings, {} infos in {} files ({} objects, {} workloads)",
                count(Severity::Error),
                count(Severity::Warning),
                count(Severity::Info),
                counts.files,
                counts.objects,
                counts.workloads
            );
            render::human::render(&sources, &report.diagnostics, &render::human::Style { color, width: 100 }, &summary)
        }
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(output.as_bytes()).and_then(|_| stdout.flush()).is_err() {
        return ExitCode::from(EXIT_USAGE);
    }
    if !read_errors.is_empty() {
        return ExitCode::from(EXIT_USAGE);
    }
    let failed = args.fail_on.threshold().is_some_and(|t| report.diagnostics.iter().any(|d| d.severity >= t));
    if failed { ExitCode::from(EXIT_FINDINGS) } else { ExitCode::SUCCESS }
}

/// The built-in profiles plus those in `dirs`; errors as `file:line:column: message`.
fn load_profiles(dirs: &[String]) -> Result<ProfileSet, Vec<String>> {
    let mut set = ProfileSet::builtin();
    let mut errors = Vec::new();
    for dir in dirs {
        let (files, read_errors) = load::expand(std::slice::from_ref(dir));
        errors.extend(read_errors.into_iter().map(|e| format!("cannot read {}: {}", e.path, e.message)));
        for file in files {
            let name = file.display().to_string();
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(format!("cannot read {name}: {e}"));
                    continue;
                }
            };
            if let Err(errs) = set.add_text(&name, &text) {
                let lines = apiload_yaml::LineIndex::new(text.as_bytes());
                for e in errs {
                    let lc = lines.line_col_in(&text, e.span.start, apiload_yaml::ColumnUnit::Chars);
                    errors.push(format!("{name}:{}:{}: invalid profile: {}", lc.line, lc.column, e.message));
                }
            }
        }
    }
    if errors.is_empty() { Ok(set) } else { Err(errors) }
}

fn explain(r: &rules::RuleMeta) -> String {
    format!(
        "{} {} ({}, default severity {})\n\n{}\n\nWhat it detects\n\n{}\n\nWhy it matters\n\n{}\n\nExample that fires\n\n{}\nFix\n\n{}\n",
        r.id,
        r.name,
        r.category,
        r.severity,
        r.summary,
        r.detects,
        r.why,
        indent(r.example),
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
    for r in rules::ALL {
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
    for r in rules::ALL {
        out.push_str(&format!(
            "\n## {} {}\n\nCategory `{}`, default severity **{}**. {}\n\n### What it detects\n\n{}\n\n### Why it matters\n\n{}\n\n### Example that fires\n\n```yaml\n{}```\n\n### Fix\n\n{}\n",
            r.id, r.name, r.category, r.severity, r.summary, r.detects, r.why, r.example, r.fix
        ));
    }
    out
}
