//! The record header (line 1): its signature by the operator key, the keys it pins,
//! and its list of entries, against which the lines that follow must match exactly —
//! so a removed, inserted, reordered or edited line shows even when the chain alone
//! would not reveal it (e.g. the last approval cut off).

use std::collections::{BTreeMap, BTreeSet};

use crate::keys::PublicKey;
use crate::record::{Bundle, RECORD_PREDICATE_TYPE, RecordHeader};
use crate::report::Report;
use crate::statement::{Statement, evidence_digest};

/// The header and the keys it pins: operator, and approver name → key.
pub(crate) type Keys = (RecordHeader, PublicKey, BTreeMap<String, PublicKey>);

/// Parse line 1 and check its signature (and the pinned operator key, if given).
pub(crate) fn check_header(
    bundle: &Bundle,
    pinned_operator: Option<&PublicKey>,
    report: &mut Report,
) -> Option<Keys> {
    let path = bundle.path.display();
    let envelope = match bundle.lines.first() {
        None => return fail(report, format!("{path} is empty: no record header")),
        Some(Err(e)) => return fail(report, format!("line 1 is not a DSSE envelope: {e}")),
        Some(Ok(env)) => env,
    };
    let header = match Statement::parse_with::<RecordHeader>(envelope, RECORD_PREDICATE_TYPE) {
        Ok((_, header)) => header,
        Err(e) => {
            return fail(
                report,
                format!("line 1 is not a relocate record header: {e}"),
            );
        }
    };
    let operator = match PublicKey::parse(&header.operator_key) {
        Ok(k) => k,
        Err(e) => return fail(report, format!("record header: operator key: {e}")),
    };
    if let Some(pinned) = pinned_operator.filter(|p| **p != operator) {
        return fail(
            report,
            format!(
                "the record is signed by operator key {}, not by the pinned key {}",
                operator.key_id(),
                pinned.key_id()
            ),
        );
    }
    if let Err(e) = envelope.verify_with(&operator) {
        return fail(report, format!("line 1 (record header): {e}"));
    }
    let mut approvers = BTreeMap::new();
    for (name, pinned) in &header.approvers {
        match PublicKey::parse(&pinned.public_key) {
            Ok(k) => {
                approvers.insert(name.clone(), k);
            }
            Err(e) => report.fail(format!("record header: approver `{name}`: {e}")),
        }
    }
    report.pass(format!(
        "record header of plan `{}` ({}) is signed by operator key {}; approvers pinned: {}",
        header.plan,
        header.plan_digest,
        operator.key_id(),
        approvers
            .iter()
            .map(|(n, k)| format!("{n} ({})", k.key_id()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Some((header, operator, approvers))
}

fn fail<T>(report: &mut Report, text: String) -> Option<T> {
    report.fail(text);
    None
}

/// The lines after the header are exactly the entries the signed header lists, in order.
pub(crate) fn check_entry_list(bundle: &Bundle, header: &RecordHeader, report: &mut Report) {
    let actual: Vec<Option<String>> = bundle
        .lines
        .iter()
        .skip(1)
        .map(|l| l.as_ref().ok().map(evidence_digest))
        .collect();
    let expected: Vec<&str> = header.entries.iter().map(|e| e.digest.as_str()).collect();
    if actual.len() == expected.len()
        && actual
            .iter()
            .zip(&expected)
            .all(|(a, e)| a.as_deref() == Some(*e))
    {
        return report.pass(format!(
            "the record holds exactly the {} entries its signed header lists, in order",
            expected.len()
        ));
    }
    let present: BTreeSet<&str> = actual.iter().flatten().map(String::as_str).collect();
    let listed: BTreeSet<&str> = expected.iter().copied().collect();
    let mut found = false;
    for (k, entry) in header
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| !present.contains(e.digest.as_str()))
    {
        found = true;
        report.fail(format!(
            "header entry {} ({}) is missing from the record: a line was removed or changed",
            k + 1,
            entry.describe()
        ));
    }
    for (i, digest) in actual.iter().enumerate() {
        if let Some(d) = digest.as_deref().filter(|d| !listed.contains(d)) {
            found = true;
            report.fail(format!(
                "line {} ({d}) is not listed in the signed header: it was inserted or changed",
                i + 2
            ));
        }
    }
    if found || actual.len() != expected.len() {
        return;
    }
    if let Some(i) = actual
        .iter()
        .zip(&expected)
        .position(|(a, e)| a.as_deref() != Some(*e))
    {
        report.fail(format!(
            "line {} holds {} where the signed header lists {}: lines were reordered",
            i + 2,
            header
                .entries
                .iter()
                .find(|e| actual[i].as_deref() == Some(e.digest.as_str()))
                .map_or("an entry".to_owned(), |e| e.describe()),
            header.entries[i].describe()
        ));
    }
}
