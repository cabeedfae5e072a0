//! Where a run's reports go: `--format FORMAT[=FILE]` (repeatable, so that
//! one run writes SARIF for code scanning and annotations for the log),
//! `-o FILE` for the report without a file of its own, and colour.

use clap::ValueEnum;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Sarif,
    Github,
    Junit,
    Markdown,
    /// `apiload audit` only: PolicyReport objects.
    Policyreport,
}

/// One report: its format and file (`None`: stdout, or `-o`).
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub format: Format,
    pub path: Option<PathBuf>,
}

/// `FORMAT` or `FORMAT=FILE`, for clap.
pub fn parse_spec(s: &str) -> Result<Spec, String> {
    let (name, path) = match s.split_once('=') {
        Some((n, p)) if !p.is_empty() => (n, Some(PathBuf::from(p))),
        Some((n, _)) => return Err(format!("`{n}=` needs a file name after `=`")),
        None => (s, None),
    };
    let format = Format::from_str(name, true).map_err(|_| {
        let names: Vec<String> = Format::value_variants()
            .iter()
            .filter_map(|f| f.to_possible_value())
            .map(|v| v.get_name().to_string())
            .collect();
        format!("unknown format `{name}`; one of {}", names.join(", "))
    })?;
    Ok(Spec { format, path })
}

/// The reports of a run with `-o` applied: at most one goes to stdout.
pub fn destinations(specs: &[Spec], output: Option<&Path>) -> Result<Vec<Spec>, String> {
    let mut specs: Vec<Spec> =
        if specs.is_empty() { vec![Spec { format: Format::Human, path: None }] } else { specs.to_vec() };
    if let Some(o) = output {
        let unnamed: Vec<&mut Spec> = specs.iter_mut().filter(|s| s.path.is_none()).collect();
        if unnamed.len() != 1 {
            return Err("-o names the file of the one --format without `=FILE`".into());
        }
        for s in unnamed {
            s.path = Some(o.to_path_buf());
        }
    }
    if specs.iter().filter(|s| s.path.is_none()).count() > 1 {
        return Err(
            "only one --format can go to stdout; give the others a file (`--format sarif=apiload.sarif`)".into()
        );
    }
    Ok(specs)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// Whether to colour: `--color always|never` decides; with `auto`,
/// `NO_COLOR` (non-empty, https://no-color.org) turns colour off, then
/// `FORCE_COLOR` (non-empty and not `0`, https://force-color.org) on, and
/// otherwise colour is used on a terminal.
pub fn use_color(choice: Color, terminal: bool, env: &dyn Fn(&str) -> Option<String>) -> bool {
    match choice {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            if env("NO_COLOR").is_some_and(|v| !v.is_empty()) {
                false
            } else if env("FORCE_COLOR").is_some_and(|v| !v.is_empty() && v != "0") {
                true
            } else {
                terminal
            }
        }
    }
}

/// Writes a report to its file, or stdout. The file named by
/// `$GITHUB_STEP_SUMMARY` is appended to, as GitHub asks of every step that
/// writes there; others are replaced.
pub fn write(path: Option<&Path>, text: &str) -> Result<(), String> {
    let Some(path) = path else {
        let mut stdout = std::io::stdout().lock();
        return stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()).map_err(|e| format!("stdout: {e}"));
    };
    let append = std::env::var_os("GITHUB_STEP_SUMMARY").is_some_and(|s| Path::new(&s) == path);
    let file = std::fs::OpenOptions::new().write(true).create(true).append(append).truncate(!append).open(path);
    file.and_then(|mut f| f.write_all(text.as_bytes())).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_destinations() {
        assert_eq!(parse_spec("sarif=a.sarif").unwrap(), Spec { format: Format::Sarif, path: Some("a.sarif".into()) });
        assert_eq!(parse_spec("github").unwrap().path, None);
        assert!(parse_spec("nope").unwrap_err().contains("markdown"));
        assert!(parse_spec("json=").is_err());
        let two = [parse_spec("json").unwrap(), parse_spec("github").unwrap()];
        assert!(destinations(&two, None).is_err());
        let d = destinations(&two[..1], Some(Path::new("out.json"))).unwrap();
        assert_eq!(d[0].path.as_deref(), Some(Path::new("out.json")));
        assert_eq!(destinations(&[], None).unwrap()[0].format, Format::Human);
    }

    #[test]
    fn colour_follows_the_flag_then_no_color_then_force_color() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert!(use_color(Color::Always, false, &env(&[("NO_COLOR", "1")])));
        assert!(!use_color(Color::Never, true, &env(&[("FORCE_COLOR", "1")])));
        assert!(!use_color(Color::Auto, true, &env(&[("NO_COLOR", "1"), ("FORCE_COLOR", "1")])));
        assert!(use_color(Color::Auto, false, &env(&[("FORCE_COLOR", "1")])));
        assert!(!use_color(Color::Auto, false, &env(&[("FORCE_COLOR", "0")])));
        assert!(use_color(Color::Auto, true, &env(&[("NO_COLOR", "")])));
        assert!(!use_color(Color::Auto, false, &env(&[])));
    }
}
