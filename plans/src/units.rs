//! Human units in plans: byte sizes (`64MiB`), rates (`200MiB/s`) and durations (`5m`).

use std::time::Duration;

/// Parse a byte size such as `64MiB`, `1GB` or `512`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("`{s}` is not a size ({e}); write e.g. `64MiB`"))
}

/// Parse a rate such as `200MiB/s` into bytes per second.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let body = s
        .trim()
        .strip_suffix("/s")
        .ok_or_else(|| format!("`{s}` is not a rate; write e.g. `200MiB/s`"))?;
    parse_bytes(body)
}

/// Parse a duration such as `90s`, `5m` or `24h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. `5m`"))
}
