//! Shared fixtures for the hook tests, and tests of [`hook_for`].

use std::path::Path;

use super::*;
use crate::signoff::keys::SecretKey;
use crate::signoff::statement::tests::evidence;

pub(crate) const PLAN_DIGEST: &str = "sha256:feedface";

pub(crate) fn operator() -> SecretKey {
    SecretKey::from_seed(&[11; 32])
}

pub(crate) fn auditor() -> SecretKey {
    SecretKey::from_seed(&[12; 32])
}

/// A request to approver `auditor` for `stage`, with freshly signed evidence.
pub(crate) fn request(stage: &str) -> ApprovalRequest {
    let evidence = evidence(PLAN_DIGEST, stage, 1, &operator());
    ApprovalRequest {
        plan_name: "move-eu".to_owned(),
        stage: stage.to_owned(),
        approver: "auditor".to_owned(),
        evidence_json: evidence.to_json_pretty(),
        evidence,
        evidence_path: format!("/state/{stage}/evidence.json").into(),
    }
}

fn build(hook: plans::Hook) -> Result<Box<dyn ApprovalHook>, HookError> {
    let spec = plans::HookSpec::from_hook(&hook).map_err(|reason| HookError::InvalidConfig {
        approver: "auditor".to_owned(),
        reason,
    })?;
    hook_for(
        &spec,
        "auditor",
        Path::new("/plans"),
        Path::new("/state/approvals"),
    )
}

#[test]
fn hook_for_builds_each_kind() {
    let command = build(plans::Hook {
        command: Some(vec!["./sign.sh".into(), "--fast".into()]),
        ..Default::default()
    })
    .expect("command");
    assert_eq!(command.describe(), "command `./sign.sh --fast`");

    let webhook = build(plans::Hook {
        webhook: Some("https://audit.example/approve".into()),
        timeout: Some("10m".into()),
        ..Default::default()
    })
    .expect("webhook");
    assert_eq!(webhook.describe(), "webhook https://audit.example/approve");

    let default_dir = build(plans::Hook {
        file: Some(plans::FileHook { dir: None }),
        ..Default::default()
    })
    .expect("file");
    assert!(
        default_dir.describe().contains("/state/approvals/"),
        "{}",
        default_dir.describe()
    );
    let relative = build(plans::Hook {
        file: Some(plans::FileHook {
            dir: Some("drop".into()),
        }),
        ..Default::default()
    })
    .expect("file");
    assert!(
        relative.describe().contains("/plans/drop/"),
        "{}",
        relative.describe()
    );
}

#[test]
fn hook_for_refuses_bad_settings() {
    let plain_http = build(plans::Hook {
        webhook: Some("http://audit.example/approve".into()),
        ..Default::default()
    });
    assert!(matches!(plain_http, Err(HookError::InsecureUrl { .. })));
    let allowed = build(plans::Hook {
        webhook: Some("http://127.0.0.1:9/approve".into()),
        allow_http: true,
        ..Default::default()
    });
    assert!(allowed.is_ok());

    for bad in [
        plans::Hook::default(),
        plans::Hook {
            command: Some(vec![]),
            ..Default::default()
        },
        plans::Hook {
            command: Some(vec!["a".into()]),
            webhook: Some("https://x".into()),
            ..Default::default()
        },
        plans::Hook {
            command: Some(vec!["a".into()]),
            timeout: Some("soon".into()),
            ..Default::default()
        },
        plans::Hook {
            webhook: Some("not a url".into()),
            ..Default::default()
        },
    ] {
        let result = build(bad.clone());
        assert!(
            matches!(result, Err(HookError::InvalidConfig { .. })),
            "{bad:?} accepted"
        );
    }
}
