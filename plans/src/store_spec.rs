//! A store as validation leaves it: typed values the connectors open without parsing text.
//!
//! [`crate::ValidatedPlan::store`] hands these out for the plan's stores; a store built
//! elsewhere (the auditor's `verify --digests --store URL`) goes through
//! [`StoreSpec::from_store`], which runs the same rules. The multipart defaults and S3's
//! minimum part size are defined here once.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::secret::OptionValue;
use crate::store_url::{StoreLocation, display_url};
use crate::{Credentials, Store};

/// The smallest part S3 accepts (except for an object's last part).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// When and how the copy engine uploads an object in parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultipartSettings {
    /// Objects of at least this many bytes are uploaded in parts.
    pub threshold: u64,
    /// Bytes per part (at least [`MIN_PART_SIZE`]).
    pub part_size: u64,
    /// Parts of one object in flight at once (at least 1).
    pub concurrency: usize,
}

impl Default for MultipartSettings {
    /// 32 MiB / 8 MiB / 4: small objects take one request, a large one keeps four 8 MiB
    /// parts (plus the one being filled: 40 MiB of memory) in flight. The copy engine
    /// grows the part size for objects so large that 8 MiB parts would pass S3's
    /// 10,000-part limit.
    fn default() -> Self {
        Self {
            threshold: 32 * 1024 * 1024,
            part_size: 8 * 1024 * 1024,
            concurrency: 4,
        }
    }
}

/// The plan's retry settings; unset values keep the client library's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub max_retries: Option<usize>,
    /// Give up retrying one request after this long (zero: never retry).
    pub timeout: Option<Duration>,
}

/// A validated store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSpec {
    /// The plan's name for the store.
    pub name: String,
    /// The region it is in.
    pub region: String,
    /// Where it is; a local path is absolute.
    pub location: StoreLocation,
    /// The URL as it may be shown (no credentials, no query).
    pub display_url: String,
    /// Option keys as written, values parsed (literal or `${env:…}`/`${file:…}`).
    pub options: Vec<(String, OptionValue)>,
    /// Where credentials come from.
    pub credentials: Credentials,
    /// Multipart upload tuning.
    pub multipart: MultipartSettings,
    /// Retry tuning.
    pub retry: RetryPolicy,
}

/// Why a store built outside a plan was refused: every problem, each with its fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidStore {
    /// `(what is wrong, how to fix it)`, in the order found.
    pub problems: Vec<(String, String)>,
}

impl fmt::Display for InvalidStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self
            .problems
            .iter()
            .map(|(message, hint)| format!("{message} — {hint}"))
            .collect();
        f.write_str(&lines.join("; "))
    }
}

impl std::error::Error for InvalidStore {}

impl StoreSpec {
    /// Check `store` by the plan's rules (all but its region) and type it. A relative local
    /// path stays relative: [`StoreSpec::resolve`] or the connectors join it to a directory.
    pub fn from_store(name: &str, store: &Store) -> Result<Self, InvalidStore> {
        let mut report = crate::validate::Report::default();
        let spec = crate::validate::stores::check_store(&mut report, name, store);
        match spec {
            Some(spec) if report.is_empty() => Ok(spec),
            _ => Err(InvalidStore {
                problems: report
                    .into_problems()
                    .into_iter()
                    .map(|p| (p.message, p.hint))
                    .collect(),
            }),
        }
    }

    /// The same store with a relative local path joined to `base_dir`.
    pub fn resolve(mut self, base_dir: &Path) -> Self {
        self.location = self.location.resolve(base_dir);
        self
    }

    /// The typed store for `store` once its checks passed (called by validation).
    pub(crate) fn typed(
        name: &str,
        store: &Store,
        location: StoreLocation,
        multipart: MultipartSettings,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            name: name.to_owned(),
            region: store.region.clone(),
            location,
            display_url: display_url(&store.url),
            options: store
                .options
                .iter()
                .map(|(k, v)| (k.clone(), OptionValue::parse(v)))
                .collect(),
            credentials: store.credentials,
            multipart,
            retry,
        }
    }
}
