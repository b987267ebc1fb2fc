//! An approver's hook read once into a typed value: exactly one way of asking (a command,
//! a webhook or a file drop) and its timeout.
//!
//! Validation (`validate::approvers`) reports what is wrong with a hook, positioned in the
//! plan; this is the one place that turns a hook into what the gate runs, so the engine and
//! the connectors match on [`HookKind`] instead of re-reading three optional keys.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::Hook;
use crate::units::parse_duration;

/// How an approver is asked for a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookKind {
    /// A command (argv, program first, never empty) that reads the evidence on stdin and
    /// prints a signed approval.
    Command {
        /// The program and its arguments as the plan wrote them.
        argv: Vec<String>,
    },
    /// A URL the evidence is POSTed to.
    Webhook {
        /// The parsed URL.
        url: Url,
        /// Whether plain `http` is allowed (loopback auditors, tests).
        allow_http: bool,
    },
    /// Wait for `<stage>/<approver>.json` in a directory.
    File {
        /// The directory as written (relative to the plan), or `None` for the state's
        /// `approvals/`.
        dir: Option<PathBuf>,
    },
}

/// An approver's hook, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSpec {
    /// How the approver is asked.
    pub kind: HookKind,
    /// How long the gate waits (`None`: the hook's default).
    pub timeout: Option<Duration>,
}

impl HookSpec {
    /// Read a hook as written in a plan; the error says what is wrong in a few words
    /// (validation has already positioned the same problem in a plan that was loaded).
    pub fn from_hook(hook: &Hook) -> Result<Self, String> {
        let timeout = hook.timeout.as_deref().map(parse_duration).transpose()?;
        let kind = match (&hook.command, &hook.webhook, &hook.file) {
            (Some(argv), None, None) => {
                if argv.first().is_none_or(|p| p.is_empty()) {
                    return Err("`command` needs at least a program".to_owned());
                }
                HookKind::Command { argv: argv.clone() }
            }
            (None, Some(url), None) => HookKind::Webhook {
                url: Url::parse(url).map_err(|e| format!("webhook `{url}` is not a URL: {e}"))?,
                allow_http: hook.allow_http,
            },
            (None, None, Some(file)) => HookKind::File {
                dir: file.dir.as_ref().map(PathBuf::from),
            },
            _ => return Err("set exactly one of `command`, `webhook` or `file`".to_owned()),
        };
        Ok(Self { kind, timeout })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_12_a_hook_is_read_into_one_typed_kind() {
        let command = HookSpec::from_hook(&Hook {
            command: Some(vec!["./sign.sh".into()]),
            timeout: Some("2m".into()),
            ..Default::default()
        })
        .expect("command");
        assert_eq!(
            command,
            HookSpec {
                kind: HookKind::Command {
                    argv: vec!["./sign.sh".into()]
                },
                timeout: Some(Duration::from_secs(120)),
            }
        );
        for bad in [
            Hook::default(),
            Hook {
                command: Some(vec![]),
                ..Default::default()
            },
            Hook {
                webhook: Some("not a url".into()),
                ..Default::default()
            },
            Hook {
                command: Some(vec!["a".into()]),
                timeout: Some("soon".into()),
                ..Default::default()
            },
        ] {
            assert!(HookSpec::from_hook(&bad).is_err(), "{bad:?} accepted");
        }
    }
}
