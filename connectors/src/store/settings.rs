//! The plan's `multipart` and `retry` settings of a store, parsed and checked once.

use std::time::Duration;

use object_store::{BackoffConfig, RetryConfig};

use super::StoreError;

/// When and how the copy engine uploads an object in parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultipartSettings {
    /// Objects of at least this many bytes are uploaded in parts.
    pub threshold: u64,
    /// Bytes per part (S3 wants at least 5 MiB for all parts but the last).
    pub part_size: u64,
    /// Parts of one object in flight at once.
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

/// The smallest part S3 accepts (except for an object's last part).
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

pub(crate) fn multipart(
    store: &str,
    plan: Option<&plans::Multipart>,
) -> Result<MultipartSettings, StoreError> {
    let mut settings = MultipartSettings::default();
    let Some(plan) = plan else {
        return Ok(settings);
    };
    let invalid = |setting, reason| StoreError::InvalidSetting {
        store: store.to_owned(),
        setting,
        reason,
    };
    if let Some(t) = &plan.threshold {
        settings.threshold =
            plans::units::parse_bytes(t).map_err(|r| invalid("multipart.threshold", r))?;
    }
    if let Some(p) = &plan.part_size {
        settings.part_size =
            plans::units::parse_bytes(p).map_err(|r| invalid("multipart.partSize", r))?;
        if settings.part_size < MIN_PART_SIZE {
            return Err(invalid(
                "multipart.partSize",
                format!("`{p}` is below the 5MiB minimum part size"),
            ));
        }
    }
    if let Some(c) = plan.concurrency {
        if c == 0 {
            return Err(invalid(
                "multipart.concurrency",
                "must be at least 1".to_owned(),
            ));
        }
        settings.concurrency = c;
    }
    Ok(settings)
}

/// object_store's retry policy from the plan; unset values keep object_store's defaults
/// (10 retries, 3 minutes, exponential backoff with jitter from 100 ms to 15 s).
pub(crate) fn retry(
    store: &str,
    plan: Option<&plans::RetrySettings>,
) -> Result<RetryConfig, StoreError> {
    let mut config = RetryConfig {
        backoff: BackoffConfig::default(),
        ..RetryConfig::default()
    };
    let Some(plan) = plan else { return Ok(config) };
    if let Some(n) = plan.max_retries {
        config.max_retries = n;
    }
    if let Some(t) = &plan.timeout {
        config.retry_timeout =
            plans::units::parse_duration(t).map_err(|reason| StoreError::InvalidSetting {
                store: store.to_owned(),
                setting: "retry.timeout",
                reason,
            })?;
        if config.retry_timeout == Duration::ZERO {
            config.max_retries = 0;
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_defaults_and_overrides() {
        assert_eq!(
            multipart("s", None).expect("defaults"),
            MultipartSettings::default()
        );
        let plan = plans::Multipart {
            threshold: Some("128MiB".into()),
            part_size: Some("8MiB".into()),
            concurrency: Some(2),
        };
        let m = multipart("s", Some(&plan)).expect("parses");
        assert_eq!(
            (m.threshold, m.part_size, m.concurrency),
            (128 << 20, 8 << 20, 2)
        );
    }

    #[test]
    fn tiny_parts_are_refused() {
        let plan = plans::Multipart {
            threshold: None,
            part_size: Some("1MiB".into()),
            concurrency: None,
        };
        let err = multipart("s", Some(&plan)).expect_err("fails");
        assert!(
            matches!(
                err,
                StoreError::InvalidSetting {
                    setting: "multipart.partSize",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn retry_settings_reach_the_config() {
        let plan = plans::RetrySettings {
            max_retries: Some(3),
            timeout: Some("30s".into()),
        };
        let r = retry("s", Some(&plan)).expect("parses");
        assert_eq!(
            (r.max_retries, r.retry_timeout),
            (3, Duration::from_secs(30))
        );
        let bad = plans::RetrySettings {
            max_retries: None,
            timeout: Some("soon".into()),
        };
        assert!(retry("s", Some(&bad)).is_err());
    }
}
