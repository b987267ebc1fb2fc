//! Resolving a store's options: `${env:NAME}` and `${file:PATH}` references become values, and
//! every value that must never be shown is remembered by a [`Redactor`].
//!
//! Errors name the option key and the variable or file, never a value.

use std::ffi::OsString;
use std::path::Path;

use plans::secret::{OptionValue, is_secret_key};

use super::StoreError;

/// Values shorter than this are not redacted from messages: hiding every `1` or `true` would
/// mangle messages without protecting anything.
const MIN_REDACTED_LEN: usize = 4;

/// Remembers the secret values of one store and blanks them out of any text shown to a human.
///
/// Its `Debug` shows only how many values it holds.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} values)", self.secrets.len())
    }
}

impl Redactor {
    fn remember(&mut self, value: &str) {
        if value.len() >= MIN_REDACTED_LEN && !self.secrets.iter().any(|s| s == value) {
            self.secrets.push(value.to_owned());
            // Longest first, so a secret that contains another is blanked whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every remembered value replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |acc, secret| {
            acc.replace(secret.as_str(), "***")
        })
    }
}

/// A store's options with references resolved, in the plan's order.
pub(crate) struct ResolvedOptions {
    pub(crate) pairs: Vec<(String, String)>,
    pub(crate) redactor: Redactor,
}

impl ResolvedOptions {
    /// The value of the first option whose key is one of `keys` (case-insensitive).
    pub(crate) fn get(&self, keys: &[&str]) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| keys.iter().any(|want| k.eq_ignore_ascii_case(want)))
            .map(|(_, v)| v.as_str())
    }
}

/// Resolve every option of store `store`; `${file:…}` paths are relative to `base_dir` (the
/// plan's directory). Referenced values, and literal values of secret keys, are redacted from
/// every later message, whether or not the key looks secret: an access key id is not a secret to
/// the plan but has no business in an error message either.
///
/// `env` looks a variable up (the process environment in production, a map in tests: edition
/// 2024 makes `set_var` unsafe and the workspace forbids unsafe code).
pub(crate) fn resolve_options<'a>(
    store: &str,
    options: impl IntoIterator<Item = (&'a String, &'a String)>,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<ResolvedOptions, StoreError> {
    let mut pairs = Vec::new();
    let mut redactor = Redactor::default();
    for (key, raw) in options {
        let parsed = OptionValue::parse(raw);
        let value = match &parsed {
            OptionValue::Literal(v) => v.clone(),
            OptionValue::Env(name) => {
                resolve_env(env, name).map_err(|reason| secret_error(store, key, reason))?
            }
            OptionValue::File(path) => {
                resolve_file(base_dir, path).map_err(|reason| secret_error(store, key, reason))?
            }
        };
        let is_reference = !matches!(parsed, OptionValue::Literal(_));
        if is_reference || is_secret_key(key) {
            if value.is_empty() && is_secret_key(key) {
                return Err(secret_error(
                    store,
                    key,
                    "resolves to an empty value".to_owned(),
                ));
            }
            redactor.remember(&value);
        }
        pairs.push((key.clone(), value));
    }
    Ok(ResolvedOptions { pairs, redactor })
}

fn secret_error(store: &str, key: &str, reason: String) -> StoreError {
    StoreError::Secret {
        store: store.to_owned(),
        key: key.to_owned(),
        reason,
    }
}

fn resolve_env(env: &dyn Fn(&str) -> Option<OsString>, name: &str) -> Result<String, String> {
    match env(name) {
        None => Err(format!("environment variable `{name}` is not set")),
        Some(v) => v
            .into_string()
            .map_err(|_| format!("environment variable `{name}` is not valid UTF-8")),
    }
}

/// Read a secret file; one trailing newline (`\n` or `\r\n`) is dropped, as editors add one.
fn resolve_file(base_dir: &Path, path: &str) -> Result<String, String> {
    let full = base_dir.join(path);
    let text = std::fs::read_to_string(&full)
        .map_err(|e| format!("cannot read `{}`: {}", full.display(), e.kind()))?;
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_env(name: &str) -> Option<OsString> {
        match name {
            "RELOCATE_UNIT_SECRET_A" => Some("s3cr3t-value-A".into()),
            "RELOCATE_UNIT_KEY_ID" => Some("AKIA-unit-key-id".into()),
            "RELOCATE_UNIT_EMPTY" => Some("".into()),
            _ => None,
        }
    }

    fn resolve(pairs: &[(&str, &str)], base: &Path) -> Result<ResolvedOptions, StoreError> {
        let o: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        resolve_options("dst", o.iter().map(|(k, v)| (k, v)), base, &fake_env)
    }

    #[test]
    fn env_reference_resolves_and_is_redacted() {
        let r = resolve(
            &[
                ("secret_access_key", "${env:RELOCATE_UNIT_SECRET_A}"),
                ("region", "eu-central-1"),
            ],
            Path::new("."),
        )
        .expect("resolves");
        assert_eq!(r.get(&["secret_access_key"]), Some("s3cr3t-value-A"));
        assert_eq!(r.get(&["REGION"]), Some("eu-central-1"));
        assert_eq!(
            r.redactor.redact("x s3cr3t-value-A y eu-central-1"),
            "x *** y eu-central-1"
        );
    }

    #[test]
    fn referenced_access_key_id_is_redacted_too() {
        let r = resolve(
            &[("access_key_id", "${env:RELOCATE_UNIT_KEY_ID}")],
            Path::new("."),
        )
        .expect("resolves");
        assert_eq!(
            r.redactor.redact("key AKIA-unit-key-id denied"),
            "key *** denied"
        );
    }

    #[test]
    fn file_reference_is_relative_to_base_and_drops_one_trailing_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("key.txt"), "line-secret\n\n").expect("write");
        let r = resolve(&[("access_key", "${file:key.txt}")], dir.path()).expect("resolves");
        assert_eq!(r.get(&["access_key"]), Some("line-secret\n"));
        std::fs::write(dir.path().join("crlf.txt"), "crlf-secret\r\n").expect("write");
        let r = resolve(&[("access_key", "${file:crlf.txt}")], dir.path()).expect("resolves");
        assert_eq!(r.get(&["access_key"]), Some("crlf-secret"));
        assert_eq!(r.redactor.redact("crlf-secret!"), "***!");
    }

    #[test]
    fn missing_env_var_names_the_variable() {
        let err = resolve(
            &[("secret_access_key", "${env:RELOCATE_UNIT_SURELY_UNSET}")],
            Path::new("."),
        )
        .err()
        .expect("fails");
        assert!(
            matches!(err, StoreError::Secret { ref key, .. } if key == "secret_access_key"),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("RELOCATE_UNIT_SURELY_UNSET"),
            "{err}"
        );
    }

    #[test]
    fn failing_reference_does_not_leak_values_resolved_before_it() {
        let err = resolve(
            &[
                ("secret_access_key", "${env:RELOCATE_UNIT_SECRET_A}"),
                ("token", "${file:nope.txt}"),
            ],
            Path::new("/nonexistent-dir"),
        )
        .err()
        .expect("fails");
        let text = format!("{err} {err:?}");
        assert!(text.contains("nope.txt"), "{text}");
        assert!(!text.contains("s3cr3t-value-A"), "{text}");
    }

    #[test]
    fn empty_secret_is_refused() {
        let err = resolve(
            &[("secret_access_key", "${env:RELOCATE_UNIT_EMPTY}")],
            Path::new("."),
        )
        .err()
        .expect("fails");
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn redactor_debug_shows_no_values() {
        let mut r = Redactor::default();
        r.remember("hidden-value");
        assert_eq!(format!("{r:?}"), "Redactor(1 values)");
    }
}
