//! Plan errors: every problem positioned in the file, with a fix.

use std::fmt;
use std::path::PathBuf;

/// Why a plan was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The plan file could not be read.
    #[error("cannot read plan {}: {source}", path.display())]
    Io {
        /// The plan file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The plan was read but is not valid; every problem found is listed.
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One problem in a plan, positioned. Messages never contain a secret option's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The plan file as given.
    pub file: String,
    /// 1-based line; 0 when the plan was built in code and has no text.
    pub line: usize,
    /// 1-based column (in characters); 0 when the line is 0.
    pub column: usize,
    /// Where in the document, e.g. `stages[1].steps[0].copy`.
    pub yaml_path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if !self.hint.is_empty() {
            write!(f, " — {}", self.hint)?;
        }
        Ok(())
    }
}
