//! The compressed index lists of an Indexed Job's status (`completedIndexes`,
//! `failedIndexes`): comma-separated indexes and inclusive ranges, `"0-3,5,7-9"`, in
//! increasing order. [`parse_indexes`] reads them, [`format_indexes`] writes them (the fake
//! API server and tests use it).

use std::collections::BTreeSet;

/// More indexes than any Job can have (Kubernetes caps Indexed Jobs with per-index
/// retries at 100 000 completions): a list naming more is refused before it is expanded,
/// so a hostile or corrupt status cannot make the coordinator allocate billions of entries.
pub const MAX_INDEXES: u64 = 1_000_000;

/// An index list the API server should not have written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed index list `{text}`: {problem}")]
pub struct IndexListError {
    /// The whole list as received.
    pub text: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Indexes in `text`, e.g. `"0-3,5,7-9"`; an empty (or blank) list is the empty set.
pub fn parse_indexes(text: &str) -> Result<BTreeSet<u32>, IndexListError> {
    let fail = |problem: String| IndexListError {
        text: text.to_owned(),
        problem,
    };
    let mut out = BTreeSet::new();
    let mut count: u64 = 0;
    if text.trim().is_empty() {
        return Ok(out);
    }
    for part in text.split(',').map(str::trim) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a, &fail)?, number(b, &fail)?),
            None => {
                let n = number(part, &fail)?;
                (n, n)
            }
        };
        if first > last {
            return Err(fail(format!("range `{part}` runs backwards")));
        }
        count += u64::from(last - first) + 1;
        if count > MAX_INDEXES {
            return Err(fail(format!("more than {MAX_INDEXES} indexes")));
        }
        out.extend(first..=last);
    }
    Ok(out)
}

fn number(text: &str, fail: &impl Fn(String) -> IndexListError) -> Result<u32, IndexListError> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail(format!("`{text}` is not an index")));
    }
    text.parse()
        .map_err(|_| fail(format!("`{text}` is out of range")))
}

/// `indexes` in the API server's compressed form: runs of two or more as `a-b`.
pub fn format_indexes(indexes: &BTreeSet<u32>) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &i in indexes {
        match runs.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(i) => *last = i,
            _ => runs.push((i, i)),
        }
    }
    runs.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(items: &[u32]) -> BTreeSet<u32> {
        items.iter().copied().collect()
    }

    #[test]
    fn reads_ranges_singles_and_blanks() {
        assert_eq!(
            parse_indexes("0-3,5,7-9"),
            Ok(set(&[0, 1, 2, 3, 5, 7, 8, 9]))
        );
        assert_eq!(parse_indexes(""), Ok(set(&[])));
        assert_eq!(parse_indexes("  "), Ok(set(&[])));
        assert_eq!(parse_indexes(" 1 , 4 - 5 "), Ok(set(&[1, 4, 5])));
        assert_eq!(parse_indexes("7"), Ok(set(&[7])));
    }

    #[test]
    fn refuses_garbage_naming_it() {
        for bad in [
            "a",
            "1,,2",
            "3-1",
            "1-",
            "-1",
            "1-2-3",
            "4294967296",
            "+1",
            "1;2",
        ] {
            let err = parse_indexes(bad).expect_err(bad);
            assert_eq!(err.text, bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn a_huge_range_is_refused_before_it_is_expanded() {
        let err = parse_indexes("0-4294967295").expect_err("four billion indexes");
        assert!(err.problem.contains("more than 1000000 indexes"), "{err}");
        let err = parse_indexes("0-999999,1000000").expect_err("one too many");
        assert!(err.problem.contains("more than"), "{err}");
        assert_eq!(parse_indexes("0-999999").map(|s| s.len()), Ok(1_000_000));
    }

    #[test]
    fn writes_the_api_servers_form() {
        assert_eq!(format_indexes(&set(&[0, 1, 2, 3, 5, 7, 8, 9])), "0-3,5,7-9");
        assert_eq!(format_indexes(&set(&[])), "");
        assert_eq!(format_indexes(&set(&[4, u32::MAX])), "4,4294967295");
    }

    proptest! {
        #[test]
        fn round_trips(indexes in proptest::collection::btree_set(0u32..2000, 0..200)) {
            let text = format_indexes(&indexes);
            prop_assert_eq!(parse_indexes(&text), Ok(indexes));
        }

        #[test]
        fn never_panics(text in "[0-9, -]{0,30}") {
            let _ = parse_indexes(&text);
        }
    }
}
