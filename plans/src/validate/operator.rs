//! The operator's pinned key (`operator.publicKey`): exactly `ed25519:` followed by the
//! standard base64 of 32 bytes, nothing around or inside it. The check is strict (no
//! trimming) because a key that validates must also be the one every later comparison
//! accepts: `relocate run` and `relocate verify --plan` compare it with real keys.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::Report;
use crate::Plan;

/// Prefix of a pinned public key, as `relocate keys generate` writes it.
const PREFIX: &str = "ed25519:";

pub(super) fn check(plan: &Plan, report: &mut Report) {
    let Some(operator) = &plan.operator else {
        return;
    };
    if let Err(why) = strict_public_key(&operator.public_key) {
        report.value(
            "operator.publicKey",
            format!("the operator's public key is not valid: {why}"),
            "paste the `.pub` line `relocate keys generate` wrote, as is: `ed25519:<base64 of 32 bytes>`",
        );
    }
}

/// The 32 key bytes of `ed25519:<base64>` written with nothing else, or why not.
pub(crate) fn strict_public_key(text: &str) -> Result<[u8; 32], String> {
    if text.chars().any(char::is_whitespace) {
        return Err("it contains whitespace".to_owned());
    }
    let body = text
        .strip_prefix(PREFIX)
        .ok_or_else(|| format!("it does not start with `{PREFIX}`"))?;
    let bytes = STANDARD
        .decode(body)
        .map_err(|e| format!("not base64 ({e})"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{} bytes instead of 32", bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{BASE, expect_one};

    const KEY: &str = "ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn with_operator(key: &str) -> String {
        BASE.replacen(
            "stages:\n",
            &format!("operator:\n  publicKey: \"{key}\"\nstages:\n"),
            1,
        )
    }

    #[test]
    fn finding_02_a_well_formed_operator_key_validates() {
        crate::parse(&with_operator(KEY), std::path::Path::new("plan.yaml"))
            .expect("a pinned operator key is valid");
    }

    #[test]
    fn finding_02_a_malformed_operator_key_is_refused_at_its_position() {
        for (bad, why) in [
            (
                "ed25519: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                "whitespace",
            ),
            (
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                "does not start with",
            ),
            ("ed25519:AAAA", "3 bytes instead of 32"),
            ("ed25519:!!", "not base64"),
        ] {
            expect_one(&with_operator(bad), 31, 14, why, "relocate keys generate");
        }
    }
}
