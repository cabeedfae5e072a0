//! The terminal report: miette snippets at the offending field, the rest of
//! the chain as related snippets, and the fix. Plain text when `NO_COLOR` is
//! set or the output is not a terminal.

use apiload_rules::Severity;
use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan,
    SpanContents,
};
use std::fmt;

/// A source file, cut to the lines around a span before miette reads it
/// (miette would otherwise scan the whole file for every snippet).
struct FileCode<'a> {
    name: String,
    source: &'a apiload_rules::Source,
}

impl SourceCode for FileCode<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'b> + 'b>, MietteError> {
        // `apiload lint` reads back the text of every file it shows (`Source::restore`).
        let text = self.source.text().ok_or(MietteError::OutOfBounds)?;
        let lines = &self.source.lines;
        let start = span.offset().min(text.len());
        let end = (span.offset() + span.len()).min(text.len());
        let first = lines.line_col(start as u32).line;
        let last = lines.line_col(end as u32).line;
        let window_line = first.saturating_sub(context_lines_before as u32).max(1);
        let ws = lines.line_start(window_line) as usize;
        let we = lines.line_start(last + context_lines_after as u32 + 1) as usize;
        let window = &text[ws..we.max(ws).min(text.len())];
        let inner = SourceSpan::new((start - ws).into(), end - start);
        let c = window.read_span(&inner, context_lines_before, context_lines_after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            c.data(),
            SourceSpan::new((c.span().offset() + ws).into(), c.span().len()),
            c.line() + window_line as usize - 1,
            c.column(),
            c.line_count(),
        )))
    }
}

struct Report<'a> {
    code: String,
    severity: miette::Severity,
    message: String,
    source: FileCode<'a>,
    label: LabeledSpan,
    help: Option<String>,
    url: Option<String>,
    related: Vec<Report<'a>>,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        if self.code.is_empty() { None } else { Some(Box::new(&self.code)) }
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn url<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.url.as_ref().map(|u| Box::new(u) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(self.label.clone())))
    }
    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn miette::Diagnostic> + 'b>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)))
        }
    }
}

fn span(loc: apiload_rules::Location) -> SourceSpan {
    SourceSpan::new((loc.span.start as usize).into(), loc.span.len() as usize)
}

fn severity(s: Severity) -> miette::Severity {
    match s {
        Severity::Error => miette::Severity::Error,
        Severity::Warning => miette::Severity::Warning,
        Severity::Info => miette::Severity::Advice,
    }
}

pub struct Style {
    pub color: bool,
    pub width: usize,
    /// Findings only, no summary line.
    pub quiet: bool,
}

pub fn render(run: &super::Report, style: &Style) -> String {
    let (sources, locator) = (run.sources, run.locator);
    let theme = if style.color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(style.width).with_links(false);
    let mut out = String::new();
    for w in run.warnings {
        out.push_str(&format!("warning: {w}\n\n"));
    }
    for d in run.diagnostics {
        // The snippet is the text that was read; generated input names the
        // file it was attributed to, and how.
        let file = |loc: apiload_rules::Location| {
            let s = sources.get(loc.source);
            let p = locator.position(loc);
            let name = match (p.input_line, p.attribution) {
                (Some(_), Some("rendered")) => {
                    format!("{} ({}, line {} of the rendered document)", s.name, p.file, p.line)
                }
                (Some(_), _) => format!("{} ({}:{}:{})", s.name, p.file, p.line, p.column),
                (None, _) => p.file,
            };
            FileCode { name, source: s }
        };
        let mut report = Report {
            code: format!("{} {}", d.rule.id, d.rule.name),
            severity: severity(d.severity),
            message: d.message.clone(),
            source: file(d.location),
            label: LabeledSpan::new_primary_with_span(Some(d.rule.category.as_str().to_string()), span(d.location)),
            help: d.help.clone(),
            url: Some(super::help_uri(d.rule.id, d.rule.name)),
            related: d
                .related
                .iter()
                .map(|r| Report {
                    code: String::new(),
                    severity: miette::Severity::Advice,
                    message: r.message.clone(),
                    source: file(r.location),
                    label: LabeledSpan::new_with_span(None, span(r.location)),
                    help: None,
                    url: None,
                    related: Vec::new(),
                })
                .collect(),
        };
        // The chain is rendered report by report, indented under the
        // finding: as miette's related reports, each would carry an empty
        // "Advice:" heading.
        let related = std::mem::take(&mut report.related);
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&format!("{}: {}\n", d.rule.id, d.message));
        }
        for r in &related {
            let mut text = String::new();
            if handler.render_report(&mut text, r).is_err() {
                text = format!("☞ {}\n", r.message);
            }
            for line in text.lines() {
                out.push_str(if line.is_empty() { "" } else { "  " });
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
    }
    if !style.quiet {
        out.push_str(&run.summary());
        out.push('\n');
    }
    out
}
