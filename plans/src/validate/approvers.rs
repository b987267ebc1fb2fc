//! Approver rules: pinned public keys and how each approver is asked.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{Anchor, Report, check_safe_name};
use crate::units::parse_duration;
use crate::{Hook, Plan};

/// Prefix of a pinned public key, as `relocate keys generate` writes it.
pub const PUBLIC_KEY_PREFIX: &str = "ed25519:";

pub(super) fn check(plan: &Plan, report: &mut Report) {
    let mut pinned: Vec<([u8; 32], &str)> = Vec::new();
    for (name, approver) in &plan.approvers {
        let path = format!("approvers.{name}");
        check_safe_name(report, path.clone(), "approver", name, Anchor::Key);
        match decode_public_key(&approver.public_key) {
            Err(why) => report.value(
                format!("{path}.publicKey"),
                format!("public key of approver `{name}` is not valid: {why}"),
                "paste the `.pub` line `relocate keys generate` wrote: `ed25519:<base64 of 32 bytes>`",
            ),
            // Two names for one key would let one signature count twice at a gate.
            Ok(key) => match pinned.iter().find(|(k, _)| *k == key) {
                Some((_, first)) => report.value(
                    format!("{path}.publicKey"),
                    format!("approver `{name}` pins the same public key as approver `{first}`"),
                    "each approver signs with a key of their own: generate one per approver with `relocate keys generate`",
                ),
                None => pinned.push((key, name)),
            },
        }
        check_hook(report, &format!("{path}.hook"), name, &approver.hook);
    }
}

/// The 32 key bytes of an `ed25519:<base64>` public key, or why it is not one.
///
/// Strict, exactly as the gates read it: no whitespace anywhere, standard base64 of
/// 32 bytes that are a valid Ed25519 point.
pub fn decode_public_key(text: &str) -> Result<[u8; 32], String> {
    if text.chars().any(char::is_whitespace) {
        return Err("it contains whitespace".to_owned());
    }
    let body = text
        .strip_prefix(PUBLIC_KEY_PREFIX)
        .ok_or_else(|| format!("it does not start with `{PUBLIC_KEY_PREFIX}`"))?;
    let bytes = STANDARD
        .decode(body)
        .map_err(|e| format!("not base64 ({e})"))?;
    let key = <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{} bytes instead of 32", bytes.len()))?;
    ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map_err(|_| "the 32 bytes are not an Ed25519 public key".to_owned())?;
    Ok(key)
}

fn check_hook(report: &mut Report, path: &str, approver: &str, hook: &Hook) {
    let given = [
        hook.command.is_some(),
        hook.webhook.is_some(),
        hook.file.is_some(),
    ];
    let count = given.iter().filter(|g| **g).count();
    if count != 1 {
        report.value(
            path,
            format!(
                "the hook of approver `{approver}` gives {count} ways to ask; exactly one is needed"
            ),
            "keep one of `command: [argv…]`, `webhook: https://…` or `file: {}`",
        );
    }
    if let Some(argv) = &hook.command
        && argv.first().is_none_or(|program| program.trim().is_empty())
    {
        report.value(
            format!("{path}.command"),
            "the hook command is empty",
            "write the argv, e.g. `[\"./auditor-hook.sh\"]`",
        );
    }
    if let Some(webhook) = &hook.webhook {
        check_webhook(report, &format!("{path}.webhook"), webhook, hook.allow_http);
    }
    match hook.timeout.as_deref().map(parse_duration) {
        Some(Err(why)) => report.value(
            format!("{path}.timeout"),
            "hook timeout is not a duration",
            why,
        ),
        Some(Ok(d)) if d.is_zero() => report.value(
            format!("{path}.timeout"),
            "hook timeout is zero: the gate would give up before the approver could answer",
            "write how long the approver may take, e.g. `24h`, or leave `timeout` out",
        ),
        _ => {}
    }
}

fn check_webhook(report: &mut Report, path: &str, webhook: &str, allow_http: bool) {
    let scheme = url::Url::parse(webhook).map(|u| u.scheme().to_owned());
    match scheme.as_deref() {
        Ok("https") => {}
        Ok("http") if allow_http => {}
        Ok("http") => report.value(
            path,
            format!("webhook `{webhook}` is plain http"),
            "use https, or add `allowHttp: true` to the hook to allow it explicitly",
        ),
        Ok(other) => report.value(
            path,
            format!("webhook scheme `{other}` is not http(s)"),
            "write an `https://` URL",
        ),
        Err(e) => report.value(
            path,
            format!("webhook `{webhook}` is not a URL ({e})"),
            "write an `https://` URL",
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_zero_hook_timeout_is_refused() {
        let text = crate::validate::testing::base_with(
            r#"hook: { command: ["./hook.sh"] }"#,
            r#"hook: { command: ["./hook.sh"], timeout: 0s }"#,
        );
        let found = crate::validate::testing::diagnostics(&text);
        assert!(
            found
                .iter()
                .any(|d| d.message.contains("hook timeout is zero") && d.line == 29),
            "{found:?}"
        );
    }

    use super::decode_public_key;
    use crate::validate::testing::{base_with, expect_one};

    const KEY: &str = "ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    const HOOK: &str = "hook: { command: [\"./hook.sh\"] }";

    #[test]
    fn public_key_must_be_32_base64_bytes() {
        assert_eq!(decode_public_key(KEY), Ok([0; 32]));
        let text = base_with(KEY, "ed25519:AAAA");
        expect_one(
            &text,
            28,
            16,
            "public key of approver `auditor` is not valid: 3 bytes instead of 32",
            "ed25519:<base64 of 32 bytes>",
        );
        let text = base_with(KEY, "rsa:AAAA");
        expect_one(
            &text,
            28,
            16,
            "does not start with `ed25519:`",
            "relocate keys generate",
        );
        let text = base_with(KEY, "ed25519:!!!");
        expect_one(&text, 28, 16, "not base64", "ed25519:");
    }

    /// A second approver `backup` with `key` and a file hook.
    fn with_backup(key: &str) -> String {
        base_with(
            "stages:",
            &format!("  backup:\n    publicKey: \"{key}\"\n    hook: {{ file: {{}} }}\nstages:"),
        )
    }

    #[test]
    fn finding_07_two_approvers_pinning_one_key_are_refused() {
        let text = with_backup(KEY);
        expect_one(
            &text,
            31,
            16,
            "approver `backup` pins the same public key as approver `auditor`",
            "a key of their own",
        );
    }

    #[test]
    fn finding_09_a_public_key_with_a_space_is_refused() {
        let text = base_with(KEY, &KEY.replace("ed25519:", "ed25519: "));
        expect_one(&text, 28, 16, "it contains whitespace", "ed25519:");
        let text = base_with(KEY, &format!("{KEY} "));
        expect_one(&text, 28, 16, "it contains whitespace", "ed25519:");
    }

    #[test]
    fn hook_needs_exactly_one_way() {
        let text = base_with(
            HOOK,
            "hook: { command: [\"./hook.sh\"], webhook: \"https://a.example\" }",
        );
        expect_one(
            &text,
            29,
            11,
            "gives 2 ways to ask; exactly one is needed",
            "keep one of",
        );
        let text = base_with(HOOK, "hook: {}");
        expect_one(&text, 29, 11, "gives 0 ways to ask", "`file: {}`");
    }

    #[test]
    fn empty_command() {
        let text = base_with(HOOK, "hook: { command: [] }");
        expect_one(
            &text,
            29,
            22,
            "the hook command is empty",
            "auditor-hook.sh",
        );
    }

    #[test]
    fn plain_http_webhook_needs_allow_http() {
        let text = base_with(HOOK, "hook: { webhook: \"http://127.0.0.1:8080/sign\" }");
        expect_one(
            &text,
            29,
            22,
            "webhook `http://127.0.0.1:8080/sign` is plain http",
            "`allowHttp: true`",
        );
        let allowed = base_with(
            HOOK,
            "hook: { webhook: \"http://127.0.0.1:8080/sign\", allowHttp: true }",
        );
        crate::parse(&allowed, std::path::Path::new("p.yaml")).expect("allowed explicitly");
        let text = base_with(HOOK, "hook: { webhook: \"ftp://a/b\" }");
        expect_one(
            &text,
            29,
            22,
            "webhook scheme `ftp` is not http(s)",
            "https://",
        );
    }

    #[test]
    fn file_hook_is_accepted() {
        let text = base_with(HOOK, "hook: { file: {}, timeout: 24h }");
        crate::parse(&text, std::path::Path::new("p.yaml")).expect("file hook valid");
    }
}
