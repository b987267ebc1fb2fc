//! Secret references in store options: `${env:NAME}` and `${file:PATH}`.
//!
//! A plan is reviewed and committed like code, so it must never hold a credential:
//! options whose key names a secret ([`is_secret_key`]) must be references, resolved
//! at run time by the connectors (reading the environment or a file). This module only
//! parses; it never reads a variable or a file, and it never prints a value.

/// A store option value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    /// A literal value (never allowed for a secret key).
    Literal(String),
    /// `${env:NAME}`.
    Env(String),
    /// `${file:PATH}`, relative to the plan's directory.
    File(String),
}

impl OptionValue {
    /// Parse an option value. Anything that is not exactly one well-formed reference
    /// is a [`OptionValue::Literal`]; [`check_reference`] says why a `${…}` is malformed.
    pub fn parse(raw: &str) -> Self {
        let inner = raw.strip_prefix("${").and_then(|r| r.strip_suffix('}'));
        if let Some(inner) = inner {
            if let Some(name) = inner.strip_prefix("env:") {
                return OptionValue::Env(name.to_owned());
            }
            if let Some(path) = inner.strip_prefix("file:") {
                return OptionValue::File(path.to_owned());
            }
        }
        OptionValue::Literal(raw.to_owned())
    }

    /// Whether the value is a reference rather than a literal.
    pub fn is_reference(&self) -> bool {
        !matches!(self, OptionValue::Literal(_))
    }
}

/// Why a value that uses `${…}` is not a well-formed reference, or `Ok` if the value
/// either is a well-formed reference or does not use `${` at all.
///
/// The error text never contains the value itself (it may be a secret).
pub fn check_reference(raw: &str) -> Result<(), String> {
    if !raw.contains("${") {
        return Ok(());
    }
    match OptionValue::parse(raw) {
        OptionValue::Env(name) if is_env_name(&name) => Ok(()),
        OptionValue::Env(_) => Err(
            "`${env:…}` needs a variable name of letters, digits and `_`, \
                                    not starting with a digit"
                .to_owned(),
        ),
        OptionValue::File(path) if !path.trim().is_empty() => Ok(()),
        OptionValue::File(_) => Err("`${file:…}` needs a path".to_owned()),
        OptionValue::Literal(_) => Err("a reference must be the whole value and read \
                                        `${env:NAME}` or `${file:PATH}`"
            .to_owned()),
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether an `object_store` option key carries a secret (so must be a reference, and
/// must never be printed).
pub fn is_secret_key(key: &str) -> bool {
    const SECRET_PARTS: [&str; 11] = [
        "secret",
        "password",
        "token",
        "access_key",
        "sas",
        "credential",
        "service_account_key",
        "client_secret",
        "master_key",
        "account_key",
        "private_key",
    ];
    let k = key.to_ascii_lowercase();
    SECRET_PARTS.iter().any(|s| k.contains(s)) && k != "access_key_id" && k != "aws_access_key_id"
}

/// Whether an option key names a credential component, secret or not (an access key id, a
/// client id): its value is redacted from every message even where the plan may write it.
pub fn is_credential_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    is_secret_key(&k) || k.contains("key_id") || k.contains("client_id") || k.contains("sas")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        assert_eq!(
            OptionValue::parse("${env:ZRH_SECRET}"),
            OptionValue::Env("ZRH_SECRET".into())
        );
        assert_eq!(
            OptionValue::parse("${file:keys/s3}"),
            OptionValue::File("keys/s3".into())
        );
        assert_eq!(
            OptionValue::parse("eu-central-2"),
            OptionValue::Literal("eu-central-2".into())
        );
        assert!(!OptionValue::parse("x${env:A}").is_reference());
    }

    #[test]
    fn malformed_references_are_explained_without_the_value() {
        assert!(check_reference("plain").is_ok());
        assert!(check_reference("${env:GOOD_1}").is_ok());
        let err = check_reference("${env:1bad}").expect_err("digit first");
        assert!(err.contains("variable name"));
        assert!(check_reference("${file:}").is_err());
        let err = check_reference("hunter2${env:X}").expect_err("not whole value");
        assert!(!err.contains("hunter2"));
        assert!(check_reference("${vault:x}").is_err());
    }

    #[test]
    fn secret_keys_are_recognised() {
        assert!(is_secret_key("secret_access_key"));
        assert!(is_secret_key("AWS_SESSION_TOKEN"));
        assert!(is_secret_key("azure_storage_account_key"));
        assert!(!is_secret_key("access_key_id"));
        assert!(!is_secret_key("endpoint"));
        assert!(!is_secret_key("allow_http"));
    }
}
