//! Shape errors: YAML that does not fit the plan model, as positioned diagnostics.
//!
//! serde-saphyr stops at the first shape problem (a typo'd key, a list where a map
//! belongs, broken YAML) and knows its line and column. This module turns that error
//! into a [`Diagnostic`] with the YAML path of the offending node (looked up in the
//! [`SourceMap`]) and a hint: for an unknown key or step kind the closest expected
//! name ("did you mean `include`?"), else the list of expected names.

use std::borrow::Cow;

use serde_saphyr::{Error, MessageFormatter, UserMessageFormatter};

use crate::Diagnostic;
use crate::source_map::{Position, SourceMap};

/// The diagnostic for a deserialisation error of the plan in `file`.
pub(crate) fn diagnose(err: &Error, file: &str, map: &SourceMap) -> Diagnostic {
    let err = err.without_snippet();
    let at = err
        .location()
        .map(|l| Position {
            line: l.line() as usize,
            column: l.column() as usize,
        })
        .unwrap_or(Position { line: 1, column: 1 });
    let mut yaml_path = map.path_at(at).unwrap_or_default().to_owned();
    let mut at = at;
    if matches!(err, Error::SerdeMissingField { .. }) {
        // serde notices a missing key at the mapping's last entry; point at the mapping.
        if let Some((parent, node)) = enclosing_mapping(map, &yaml_path) {
            yaml_path = parent;
            at = node;
        }
    }
    let (message, hint) = explain(err, &yaml_path);
    Diagnostic {
        file: file.to_owned(),
        line: at.line,
        column: at.column,
        yaml_path,
        message,
        hint,
    }
}

/// `(message, hint)` for an error.
fn explain(err: &Error, yaml_path: &str) -> (String, String) {
    match err {
        Error::SerdeUnknownField {
            field, expected, ..
        } => (
            format!("unknown key `{field}`"),
            suggest(field, expected, "key"),
        ),
        Error::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            format!("unknown kind `{variant}`"),
            suggest(variant, expected, "kind"),
        ),
        Error::SerdeMissingField { field, .. } => (
            format!("missing key `{field}`"),
            format!("add `{field}: …` here"),
        ),
        Error::DuplicateMappingKey { .. } => (
            plain_message(err).into_owned(),
            "each key may appear once; remove or rename one".to_owned(),
        ),
        Error::ExternalMessage { .. } => (
            format!("YAML syntax error: {}", plain_message(err)),
            "check brackets, quotes and indentation here and on the lines just before".to_owned(),
        ),
        Error::InvalidScalar { ty, .. } => (
            format!("`{}` must be {}", leaf(yaml_path), scalar_kind(ty)),
            generic_hint(yaml_path),
        ),
        other => (plain_message(other).into_owned(), generic_hint(yaml_path)),
    }
}

/// The mapping that holds the entry at `path`, and where it starts.
fn enclosing_mapping(map: &SourceMap, path: &str) -> Option<(String, Position)> {
    let parent = path.rsplit_once('.').map(|(p, _)| p)?;
    map.find(parent).map(|node| (parent.to_owned(), node.value))
}

/// The last segment of a YAML path.
fn leaf(yaml_path: &str) -> &str {
    yaml_path.rsplit(['.', '[']).next().unwrap_or_default()
}

/// A scalar type as a reader says it.
fn scalar_kind(ty: &str) -> &'static str {
    match ty {
        "bool" => "`true` or `false`",
        t if t.starts_with('u') => "a whole number, 0 or more",
        t if t.starts_with('i') => "a whole number",
        _ => "a value of another type",
    }
}

/// The error's message without serde-saphyr's location suffix, on one line.
fn plain_message(err: &Error) -> Cow<'_, str> {
    let text = UserMessageFormatter.format_message(err);
    if text.chars().any(char::is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect(),
        )
    } else {
        text
    }
}

/// What the node at `yaml_path` should look like, for errors serde cannot explain.
fn generic_hint(yaml_path: &str) -> String {
    let leaf = leaf(yaml_path);
    if yaml_path.contains("signoff") {
        return "write `signoff: [approver, …]` or `signoff: { approvers: [a, b], threshold: 1 }`"
            .to_owned();
    }
    if yaml_path.contains("steps") {
        return "a step is a one-key map such as `{ copy: telemetry }` or `{ run: [\"cmd\", \"arg\"] }`"
            .to_owned();
    }
    if yaml_path.starts_with("workloads")
        && !yaml_path.contains("objects")
        && !yaml_path.contains("kubernetes")
    {
        return "a workload is `{ objects: { from, to, … } }` or `{ kubernetes: { from, to, namespace, … } }`"
            .to_owned();
    }
    if leaf == "options" || yaml_path.contains(".options.") {
        return "store options are string values; quote them, e.g. `allow_http: \"true\"`"
            .to_owned();
    }
    "`relocate plan schema` prints the expected shape".to_owned()
}

/// "did you mean `x`?" when one expected name is close to `given`, else the list.
fn suggest(given: &str, expected: &[&str], what: &str) -> String {
    if let Some(best) = closest(given, expected) {
        return format!("did you mean `{best}`?");
    }
    if expected.is_empty() {
        return format!("no {what}s are expected here");
    }
    let list: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
    format!("expected one of: {}", list.join(", "))
}

/// The expected name closest to `given`, if it is within a third of its length in
/// edits (rounded up, at least one), ignoring ASCII case.
pub(crate) fn closest<'a>(given: &str, expected: &[&'a str]) -> Option<&'a str> {
    let limit = given.chars().count().div_ceil(3).max(1);
    expected
        .iter()
        .map(|e| {
            (
                edit_distance(&given.to_ascii_lowercase(), &e.to_ascii_lowercase()),
                *e,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, e)| e)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::testing::{base_with, expect_one};

    #[test]
    fn unknown_key_is_positioned_with_a_suggestion() {
        let text = base_with("include: [", "includes: [");
        let d = expect_one(
            &text,
            23,
            36,
            "unknown key `includes`",
            "did you mean `include`?",
        );
        assert_eq!(d.yaml_path, "workloads.data.objects.includes");
        assert_eq!(
            d.to_string(),
            "plan.yaml:23:36: unknown key `includes` — did you mean `include`?"
        );
    }

    #[test]
    fn unknown_key_far_from_any_lists_expected_keys() {
        let text = base_with("include: [", "speed: 3, include: [");
        expect_one(
            &text,
            23,
            36,
            "unknown key `speed`",
            "expected one of: `from`, `to`, `include`",
        );
    }

    #[test]
    fn unknown_step_kind() {
        let text = base_with("{ freeze: app }", "{ freez: app }");
        expect_one(
            &text,
            35,
            16,
            "unknown kind `freez`",
            "did you mean `freeze`?",
        );
    }

    #[test]
    fn missing_key() {
        let text = base_with(", namespace: analysis", "");
        let d = expect_one(
            &text,
            25,
            17,
            "missing key `namespace`",
            "add `namespace: …`",
        );
        assert_eq!(d.yaml_path, "workloads.app.kubernetes");
    }

    #[test]
    fn duplicate_key() {
        let text = base_with("name: demo\n", "name: demo\nname: other\n");
        expect_one(&text, 4, 1, "duplicate", "each key may appear once");
    }

    #[test]
    fn wrong_type() {
        let text = base_with("include: [", "concurrency: many, include: [");
        expect_one(
            &text,
            23,
            49,
            "`concurrency` must be a whole number, 0 or more",
            "relocate plan schema",
        );
    }

    #[test]
    fn broken_yaml() {
        let text = base_with(
            "steps: [ { copy: data }, { verify: data } ]",
            "steps: [ { copy: data }, { verify: data }",
        );
        let d = expect_one(
            &text,
            33,
            12,
            "YAML syntax error: ",
            "check brackets, quotes and indentation",
        );
        assert!(!d.message.contains('\n'));
    }

    #[test]
    fn malformed_signoff_gets_a_shape_hint() {
        let text = base_with(
            "signoff: [auditor]",
            "signoff: { approvers: [auditor], treshold: 1 }",
        );
        expect_one(
            &text,
            33,
            14,
            "",
            "signoff: { approvers: [a, b], threshold: 1 }",
        );
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("include", "include"), 0);
        assert_eq!(edit_distance("includes", "include"), 1);
        assert_eq!(edit_distance("inclde", "include"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions_pick_close_names_only() {
        let fields = ["from", "to", "include", "exclude"];
        assert_eq!(
            suggest("includes", &fields, "key"),
            "did you mean `include`?"
        );
        assert_eq!(
            suggest("bandwidthh_limit", &fields, "key"),
            "expected one of: `from`, `to`, `include`, `exclude`"
        );
        assert_eq!(closest("cpy", &["copy", "verify"]), Some("copy"));
    }
}
