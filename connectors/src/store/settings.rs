//! The plan's retry settings as object_store's [`RetryConfig`]. Sizes and durations were
//! parsed once by validation (`plans::StoreSpec`); multipart settings pass through as they are.

use std::time::Duration;

use object_store::{BackoffConfig, RetryConfig};

/// object_store's retry policy from the plan; unset values keep object_store's defaults
/// (10 retries, 3 minutes, exponential backoff with jitter from 100 ms to 15 s).
pub(crate) fn retry(plan: &plans::RetryPolicy) -> RetryConfig {
    let mut config = RetryConfig {
        backoff: BackoffConfig::default(),
        ..RetryConfig::default()
    };
    if let Some(n) = plan.max_retries {
        config.max_retries = n;
    }
    if let Some(timeout) = plan.timeout {
        config.retry_timeout = timeout;
        if timeout == Duration::ZERO {
            config.max_retries = 0;
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_settings_reach_the_config() {
        let plan = plans::RetryPolicy {
            max_retries: Some(3),
            timeout: Some(Duration::from_secs(30)),
        };
        let r = retry(&plan);
        assert_eq!(
            (r.max_retries, r.retry_timeout),
            (3, Duration::from_secs(30))
        );
        let never = retry(&plans::RetryPolicy {
            max_retries: None,
            timeout: Some(Duration::ZERO),
        });
        assert_eq!(never.max_retries, 0);
    }
}
