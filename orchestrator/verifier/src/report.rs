//! The verdict of `relocate verify`: one line per check, `✔` when it holds and `✘`
//! with the reason when it does not, printed as they are made so a long target check
//! shows progress. The exit code follows from whether any check failed.

use std::fmt;
use std::io::Write;

/// Print one line of the verdict as it is made. A closed stdout (`relocate verify … | head`)
/// is not an error of the record: the line is dropped and the checks go on, so the exit code
/// still says whether the record holds.
fn echo(line: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// One check and whether it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Whether the check held.
    pub holds: bool,
    /// What was checked, or why it does not hold.
    pub text: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.holds { '✔' } else { '✘' };
        write!(f, "{mark} {}", self.text)
    }
}

/// Every check made, in order.
#[derive(Debug, Default)]
pub struct Report {
    checks: Vec<Check>,
    notes: Vec<String>,
    limits: Vec<String>,
    echo: bool,
}

impl Report {
    /// A report that prints each check to stdout as it is made.
    pub fn printing() -> Self {
        Self {
            echo: true,
            ..Self::default()
        }
    }

    /// A report that only collects (tests, JSON output).
    pub fn quiet() -> Self {
        Self::default()
    }

    /// Record a check that holds.
    pub fn pass(&mut self, text: impl Into<String>) {
        self.push(Check {
            holds: true,
            text: text.into(),
        });
    }

    /// Record a check that does not hold, with the reason naming the problem.
    pub fn fail(&mut self, text: impl Into<String>) {
        self.push(Check {
            holds: false,
            text: text.into(),
        });
    }

    /// Record `holds`/`fails` by a condition.
    pub fn check(&mut self, holds: bool, pass: impl Into<String>, fail: impl FnOnce() -> String) {
        if holds {
            self.pass(pass)
        } else {
            self.fail(fail())
        }
    }

    /// An informational line (neither holds nor fails), e.g. a proof's hashes.
    pub fn note(&mut self, text: impl AsRef<str>) {
        if self.echo {
            echo(format_args!("  {}", text.as_ref()));
        }
        self.notes.push(text.as_ref().to_owned());
    }

    /// The informational lines, in order.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// A limit on what the verdict proves (e.g. "integrity only: operator key not
    /// pinned"): named in the verdict line itself, so it cannot be overlooked.
    pub fn limit(&mut self, text: impl Into<String>) {
        self.limits.push(text.into());
    }

    /// The limits named in the verdict.
    pub fn limits(&self) -> &[String] {
        &self.limits
    }

    fn push(&mut self, check: Check) {
        if self.echo {
            echo(format_args!("{check}"));
        }
        self.checks.push(check);
    }

    /// The checks made.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// Checks that failed.
    pub fn failures(&self) -> usize {
        self.checks.iter().filter(|c| !c.holds).count()
    }

    /// Whether every check held (and at least one was made).
    pub fn all_hold(&self) -> bool {
        !self.checks.is_empty() && self.failures() == 0
    }

    /// The closing line.
    pub fn summary(&self) -> String {
        let failed = self.failures();
        if self.all_hold() && !self.limits.is_empty() {
            format!(
                "verified ({}): all {} checks hold",
                self.limits.join("; "),
                self.checks.len()
            )
        } else if self.all_hold() {
            format!("verified: all {} checks hold", self.checks.len())
        } else if self.checks.is_empty() {
            "verification FAILED: nothing was checked".to_owned()
        } else {
            format!(
                "verification FAILED: {failed} of {} checks do not hold",
                self.checks.len()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_failure_fails_the_report_and_marks_are_right() {
        let mut r = Report::quiet();
        r.pass("signature");
        assert!(r.all_hold());
        r.fail("chain broken at line 3");
        assert!(!r.all_hold());
        assert_eq!(r.failures(), 1);
        assert_eq!(r.checks()[0].to_string(), "✔ signature");
        assert_eq!(r.checks()[1].to_string(), "✘ chain broken at line 3");
        assert_eq!(
            r.summary(),
            "verification FAILED: 1 of 2 checks do not hold"
        );
        assert!(
            !Report::quiet().all_hold(),
            "an empty report proves nothing"
        );
    }

    #[test]
    fn finding_02_a_limit_is_named_in_the_verdict_line() {
        let mut r = Report::quiet();
        r.pass("signature");
        r.limit("integrity only: operator key not pinned");
        assert_eq!(
            r.summary(),
            "verified (integrity only: operator key not pinned): all 1 checks hold"
        );
    }
}
