//! Rates, durations and pinned keys of workloads and approvers, parsed once when the plan
//! is loaded.
//!
//! Validation checks that every `bandwidth`, `waitTimeout`, hook `timeout` and approver
//! `publicKey` parses; this keeps what it parsed, so the engine and the connectors ask [`crate::ValidatedPlan`] for a
//! number or a [`Duration`] instead of parsing the text again (and never fall back to a
//! default on text that did not parse).

use std::collections::HashMap;
use std::time::Duration;

use crate::units::{parse_duration, parse_rate};
use crate::validate::approvers::decode_public_key;
use crate::validate::{Anchor, Problem};
use crate::{Plan, Workload};

/// The typed rates and durations of a plan, by workload or approver name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Values {
    /// `bandwidth` of object workloads, in bytes per second.
    pub(crate) bandwidth: HashMap<String, u64>,
    /// `waitTimeout` of Kubernetes workloads.
    pub(crate) wait_timeout: HashMap<String, Duration>,
    pub(crate) volume_timeout: HashMap<String, Duration>,
    /// Each approver's hook, typed.
    pub(crate) hook: HashMap<String, crate::HookSpec>,
    /// The Ed25519 key each approver's `publicKey` pins.
    pub(crate) approver_key: HashMap<String, ed25519_dalek::VerifyingKey>,
}

/// Parse them all; a value that does not parse is a problem (validation reports it first,
/// so this finds none in a plan that passed).
pub(crate) fn values(plan: &Plan) -> Result<Values, Vec<Problem>> {
    let mut values = Values::default();
    let mut problems = Vec::new();
    let mut keep = |path: String, parsed: Result<(), String>| {
        if let Err(hint) = parsed {
            problems.push(Problem {
                yaml_path: path,
                anchor: Anchor::Value,
                message: "not a valid value".to_owned(),
                hint,
            });
        }
    };
    for (name, workload) in &plan.workloads {
        match workload {
            Workload::Objects(w) => {
                if let Some(raw) = &w.bandwidth {
                    let parsed = parse_rate(raw).map(|r| {
                        values.bandwidth.insert(name.clone(), r);
                    });
                    keep(format!("workloads.{name}.objects.bandwidth"), parsed);
                }
            }
            Workload::Kubernetes(w) => {
                if let Some(raw) = &w.wait_timeout {
                    let parsed = parse_duration(raw).map(|d| {
                        values.wait_timeout.insert(name.clone(), d);
                    });
                    keep(format!("workloads.{name}.kubernetes.waitTimeout"), parsed);
                }
                if let Some(raw) = w.volumes.as_ref().and_then(|v| v.timeout.as_ref()) {
                    let parsed = parse_duration(raw).map(|d| {
                        values.volume_timeout.insert(name.clone(), d);
                    });
                    keep(
                        format!("workloads.{name}.kubernetes.volumes.timeout"),
                        parsed,
                    );
                }
            }
        }
    }
    for (name, approver) in &plan.approvers {
        let parsed = crate::HookSpec::from_hook(&approver.hook).map(|spec| {
            values.hook.insert(name.clone(), spec);
        });
        keep(format!("approvers.{name}.hook"), parsed);
        let parsed = decode_public_key(&approver.public_key)
            .and_then(|bytes| {
                ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map_err(|_| "the 32 bytes are not an Ed25519 public key".to_owned())
            })
            .map(|key| {
                values.approver_key.insert(name.clone(), key);
            });
        keep(format!("approvers.{name}.publicKey"), parsed);
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::validate::testing::{base_with, diagnostics};

    #[test]
    fn finding_12_durations_and_rates_are_handed_out_typed() {
        let text = base_with(
            "namespace: analysis }",
            "namespace: analysis, waitTimeout: 90s }",
        )
        .replace(
            r#"include: ["**/*.log"] }"#,
            r#"include: ["**/*.log"], bandwidth: 8MiB/s }"#,
        )
        .replace(
            r#"hook: { command: ["./hook.sh"] }"#,
            r#"hook: { command: ["./hook.sh"], timeout: 2m }"#,
        );
        let plan = crate::parse(&text, Path::new("plan.yaml")).expect("valid");
        assert_eq!(plan.wait_timeout("app"), Some(Duration::from_secs(90)));
        assert_eq!(plan.bandwidth("data"), Some(8 * 1024 * 1024));
        assert_eq!(plan.hook_timeout("auditor"), Some(Duration::from_secs(120)));
        assert_eq!(plan.wait_timeout("data"), None, "not a Kubernetes workload");
        assert_eq!(
            plan.approver_key("auditor").map(|k| k.to_bytes()),
            Some([0u8; 32]),
            "the pinned key, decoded once"
        );
        assert!(plan.approver_key("nobody").is_none());
    }

    #[test]
    fn finding_12_a_bad_wait_timeout_is_an_error_not_a_default() {
        let diags = diagnostics(&base_with(
            "namespace: analysis }",
            "namespace: analysis, waitTimeout: soon }",
        ));
        assert!(
            diags.iter().any(|d| d.yaml_path.ends_with("waitTimeout")),
            "{diags:#?}"
        );
    }
}
