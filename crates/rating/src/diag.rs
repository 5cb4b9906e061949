//! Diagnostics: every problem found while loading a tariff, with file, line and column.
//!
//! Loading never stops at the first problem: an operator fixing a 50,000-line tariff wants the
//! whole list in one run.

use std::fmt;
use std::sync::Arc;

/// Where something was written: file, 1-based line, 1-based column (for CSV: the field number).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
}

impl Pos {
    pub fn new(file: &Arc<str>, line: u32, column: u32) -> Pos {
        Pos {
            file: Arc::clone(file),
            line,
            column,
        }
    }

    /// Same place, another column.
    pub fn at_column(&self, column: u32) -> Pos {
        Pos {
            file: Arc::clone(&self.file),
            line: self.line,
            column,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{}: {sev}: {}", self.pos, self.message)
    }
}

/// An ordered list of diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// No more than this many diagnostics are kept: a wrong delimiter can make every one of
    /// 200,000 lines bad, and nobody reads past the first thousand.
    pub const LIMIT: usize = 1000;

    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(Diagnostic {
            severity: Severity::Error,
            pos,
            message: message.into(),
        });
    }

    pub fn warning(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(Diagnostic {
            severity: Severity::Warning,
            pos,
            message: message.into(),
        });
    }

    fn push(&mut self, d: Diagnostic) {
        if self.items.len() < Self::LIMIT {
            self.items.push(d);
        } else if self.items.len() == Self::LIMIT {
            let pos = d.pos.clone();
            self.items.push(Diagnostic {
                severity: Severity::Error,
                pos,
                message: format!("more than {} problems; stopping the list here", Self::LIMIT),
            });
        }
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    pub fn extend(&mut self, other: Diagnostics) {
        for d in other.items {
            self.push(d);
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.items {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
