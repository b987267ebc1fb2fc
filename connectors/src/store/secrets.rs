//! Resolving a store's options: `${env:NAME}` and `${file:PATH}` references become values, and
//! every value that must never be shown is remembered by a [`Redactor`].
//!
//! Errors name the option key and the variable or file, never a value.

use std::ffi::OsString;
use std::path::Path;

use plans::secret::{OptionValue, is_credential_key, is_secret_key};

use super::StoreError;

/// Values shorter than this are not redacted from messages: hiding every `1` or `true` would
/// mangle messages without protecting anything.
const MIN_REDACTED_LEN: usize = 4;

/// Remembers the credential values of one store and blanks them out of any text.
///
/// A value is remembered in every form a server or a transport may print it in: as given,
/// percent-decoded, percent-encoded (upper and lower-case hex, `+` or `%20` for a space),
/// base64 and XML-escaped; a SAS token also parameter by parameter (`sig=` above all), as
/// object_store re-encodes its parameters into each request URL.
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
    /// Remember `value` and the forms it may be printed in.
    pub(crate) fn remember(&mut self, value: &str) {
        for form in forms_of(value) {
            if form.len() >= MIN_REDACTED_LEN && !self.secrets.contains(&form) {
                self.secrets.push(form);
            }
        }
        // Longest first, so a secret that contains another is blanked whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Remember a SAS token (`sv=…&sig=…`, with or without a leading `?`): whole, and the
    /// value of each parameter that is not a plain public field (version, services,
    /// permissions, times), as object_store sends them one by one.
    pub(crate) fn remember_query(&mut self, query: &str) {
        /// SAS fields that say what the token allows, not who holds it.
        const PUBLIC: [&str; 14] = [
            "sv", "ss", "srt", "sp", "se", "st", "spr", "sr", "sip", "sdd", "skt", "ske", "sks",
            "skv",
        ];
        self.remember(query);
        let query = query.strip_prefix('?').unwrap_or(query);
        for pair in query.split('&') {
            if let Some((name, value)) = pair.split_once('=')
                && !PUBLIC.contains(&name)
            {
                self.remember(value);
            }
        }
    }

    /// `text` with every remembered value replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |acc, secret| {
            acc.replace(secret.as_str(), "***")
        })
    }
}

/// `value` as given and as it may be printed once decoded or re-encoded.
fn forms_of(value: &str) -> Vec<String> {
    use base64::Engine as _;
    use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

    let mut bases = vec![value.to_owned()];
    let decoded = percent_decode_str(value).decode_utf8_lossy().into_owned();
    let form_decoded = url::form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    bases.extend([decoded, form_decoded]);
    let mut forms = Vec::new();
    for base in &bases {
        let encoded = [
            url::form_urlencoded::byte_serialize(base.as_bytes()).collect::<String>(),
            utf8_percent_encode(base, NON_ALPHANUMERIC).to_string(),
        ];
        for e in encoded {
            forms.push(lower_hex(&e));
            forms.push(e);
        }
        forms.push(base.replace('&', "&amp;"));
        forms.push(base64::engine::general_purpose::STANDARD.encode(base));
        forms.push(base.clone());
    }
    forms.sort();
    forms.dedup();
    forms
}

/// `%2B` as `%2b`: servers differ in the case of the hex digits they print.
fn lower_hex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        out.push_str(&escape.to_ascii_lowercase());
        rest = &rest[at + escape.len()..];
    }
    out.push_str(rest);
    out
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
/// plan's directory). Referenced values, and values of every credential component (an access
/// key id is not a secret to the plan but has no business in an error message either), are
/// redacted from every later message.
///
/// `env` looks a variable up (the process environment in production, a map in tests: edition
/// 2024 makes `set_var` unsafe and the workspace forbids unsafe code).
pub(crate) fn resolve_options(
    store: &str,
    options: &[(String, OptionValue)],
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<ResolvedOptions, StoreError> {
    let mut pairs = Vec::new();
    let mut redactor = Redactor::default();
    for (key, parsed) in options {
        let value = match parsed {
            OptionValue::Literal(v) => v.clone(),
            OptionValue::Env(name) => {
                resolve_env(env, name).map_err(|reason| secret_error(store, key, reason))?
            }
            OptionValue::File(path) => {
                resolve_file(base_dir, path).map_err(|reason| secret_error(store, key, reason))?
            }
        };
        let is_reference = parsed.is_reference();
        if value.is_empty() && is_secret_key(key) {
            return Err(secret_error(
                store,
                key,
                "resolves to an empty value".to_owned(),
            ));
        }
        if key.to_ascii_lowercase().contains("sas") {
            redactor.remember_query(&value);
        } else if is_reference || is_credential_key(key) {
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
        let o: Vec<(String, OptionValue)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OptionValue::parse(v)))
            .collect();
        resolve_options("dst", &o, base, &fake_env)
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
    fn finding_03_every_form_of_a_credential_is_redacted() {
        let mut r = Redactor::default();
        r.remember("Fwo/Token+Part=end");
        for shown in [
            "Fwo/Token+Part=end",
            "Fwo%2FToken%2BPart%3Dend",
            "Fwo%2fToken%2bPart%3dend",
            "RndvL1Rva2VuK1BhcnQ9ZW5k",
        ] {
            assert_eq!(
                r.redact(&format!("<T>{shown}</T>")),
                "<T>***</T>",
                "{shown}"
            );
        }
    }

    #[test]
    fn finding_03_sas_signature_is_redacted_however_it_is_encoded() {
        let mut r = Redactor::default();
        r.remember_query("?sv=2022-11-02&sp=rl&sig=Ab%2Bcd%2Fef%3D12345");
        for shown in [
            "sig=Ab%2Bcd%2Fef%3D12345",
            "sig=Ab%2bcd%2fef%3d12345",
            "sig=Ab+cd/ef=12345",
            "sig=Ab%2Bcd%2Fef%3D12345&sv",
        ] {
            let out = r.redact(shown);
            assert!(!out.contains("12345"), "{shown} -> {out}");
        }
        assert_eq!(
            r.redact("sv=2022-11-02"),
            "sv=2022-11-02",
            "public fields stay"
        );
    }

    #[test]
    fn redactor_debug_shows_no_values() {
        let mut r = Redactor::default();
        r.remember("hidden-value");
        let debug = format!("{r:?}");
        assert!(
            debug.starts_with("Redactor(") && !debug.contains("hidden"),
            "{debug}"
        );
    }
}
