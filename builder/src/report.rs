//! What a build hands back: the output, what a browser showing the site must do about it,
//! and the report (counts and diagnostics, each an error or a warning at `file:line:col`).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::output::Output;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The build is not clean: `sited build` writes nothing, the server shows an overlay.
    Error,
    /// Worth knowing, not blocking (e.g. a link that leads nowhere).
    Warning,
}

/// One problem found by a build, where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file at fault, relative to the site root when it is inside it.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column, when known (only with a line).
    pub column: Option<u32>,
    pub message: String,
}

impl Diagnostic {
    /// An error about a whole file.
    pub fn error(file: impl Into<PathBuf>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: file.into(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// A warning about a whole file: worth knowing, not failing the build.
    pub fn warning(file: impl Into<PathBuf>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, message)
        }
    }

    /// The same diagnostic, at a line (and column) of its file.
    pub fn at(mut self, line: Option<u32>, column: Option<u32>) -> Diagnostic {
        self.line = line;
        self.column = column;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: message`, as compilers print it (editors and terminals link it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// The counts and diagnostics of one build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// HTML pages in the output (content pages, section and tag listings, home, 404).
    pub pages: usize,
    /// Everything else in the output (static files, assets, the stylesheet, feeds).
    pub files: usize,
    /// Pages whose HTML this build rendered; the others were unchanged and reused.
    pub rendered: usize,
    pub duration: Duration,
    /// Sorted by file and line; a build reports every problem, not the first.
    pub diagnostics: Vec<Diagnostic>,
    /// Nothing the output depends on changed since the build that made it: nothing was
    /// built or written, and the counts and diagnostics are that build's
    /// ([`crate::write::inputs`]).
    pub up_to_date: bool,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}

/// What a browser showing the site must do after a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// Anything may have changed (a first build, the config, the whole site re-read).
    Full,
    /// Only these stylesheets changed (URL paths): swap them, keep the page.
    Styles(Vec<String>),
    /// Only these URLs changed (added, removed or new bytes), sorted.
    Pages(Vec<String>),
    /// The output is what it was.
    Nothing,
}

/// One build's result.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The whole output, shared: publishing it is cloning a pointer.
    pub output: Arc<Output>,
    pub reload: Reload,
    pub report: Report,
}

/// Why a build gave no result. The site starts the next build from scratch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Its [`Cancel`](crate::Cancel) flag was raised; the output would be incomplete.
    #[error("the build was cancelled")]
    Cancelled,
    /// A bug in the builder (a template panic is one page's error, not this).
    #[error("the builder panicked: {0}")]
    Panicked(String),
}

/// What a caught panic said (its payload is a `&str` or a `String` for `panic!`).
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_read_as_file_line_column() {
        let error = Diagnostic::error("content/post.md", "expected `=`").at(Some(3), Some(7));
        assert_eq!(error.to_string(), "content/post.md:3:7: expected `=`");
        let no_col = error.clone().at(Some(3), None);
        assert_eq!(no_col.to_string(), "content/post.md:3: expected `=`");
        let report = Report {
            diagnostics: vec![Diagnostic {
                severity: Severity::Warning,
                ..error
            }],
            ..Report::default()
        };
        assert!(!report.has_errors(), "a warning does not fail a build");
        assert_eq!(report.warnings().count(), 1);
    }
}
