//! When an attempt is worth repeating, and how long to wait first.

use std::time::Duration;

use crate::config::RetryPolicy;
use crate::executor::AttemptReport;

/// Why a failed attempt may be retried, or `None` if it must not be.
///
/// Retryable: a timeout, an exit code from `retryable_exit_codes`, output matching one of
/// `retryable_messages`. Never retried: success, cancellation, an agent that could not start, and
/// any other failure.
pub(crate) fn retry_reason(policy: &RetryPolicy, report: &AttemptReport) -> Option<String> {
    if report.cancelled {
        return None;
    }
    if let Some(why) = &report.transient {
        return Some(why.clone());
    }
    if report.error.is_some() {
        return None;
    }
    if report.timed_out {
        return Some("timed out".into());
    }
    match report.exit_code {
        Some(0) => None,
        Some(code) if policy.retryable_exit_codes.contains(&code) => Some(format!("exit code {code} is retryable")),
        _ => report.matched_message.as_ref().map(|m| format!("output matched retryable message \"{m}\"")),
    }
}

/// The wait after failed attempt number `attempt` (1-based): `base_delay · backoff^(attempt-1)`,
/// moved by up to ± `jitter` × that delay. `unit` is a uniform sample in [0, 1).
pub(crate) fn delay(policy: &RetryPolicy, attempt: u32, unit: f64) -> Duration {
    let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
    let base = policy.base_delay * policy.backoff.powi(exp);
    let jittered = base + base * policy.jitter * (2.0 * unit - 1.0);
    Duration::try_from_secs_f64(jittered.max(0.0)).unwrap_or(Duration::from_secs(86400))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(exit: Option<i32>) -> AttemptReport {
        AttemptReport { exit_code: exit, ..Default::default() }
    }

    #[test]
    fn decides_by_exit_code_message_and_timeout_only() {
        let p = RetryPolicy::default();
        assert_eq!(retry_reason(&p, &report(Some(75))).as_deref(), Some("exit code 75 is retryable"));
        assert_eq!(retry_reason(&p, &report(Some(1))), None);
        assert_eq!(retry_reason(&p, &report(Some(0))), None);
        let msg = AttemptReport { matched_message: Some("rate limit".into()), ..report(Some(1)) };
        assert_eq!(retry_reason(&p, &msg).as_deref(), Some("output matched retryable message \"rate limit\""));
        let timeout = AttemptReport { timed_out: true, ..report(None) };
        assert_eq!(retry_reason(&p, &timeout).as_deref(), Some("timed out"));
        let cancelled = AttemptReport { cancelled: true, timed_out: true, ..report(None) };
        assert_eq!(retry_reason(&p, &cancelled), None);
        let rate_limited = AttemptReport {
            error: Some("HTTP 429".into()),
            transient: Some("HTTP 429 is transient".into()),
            ..report(None)
        };
        assert_eq!(retry_reason(&p, &rate_limited).as_deref(), Some("HTTP 429 is transient"));
        let bad_key = AttemptReport { error: Some("HTTP 401".into()), ..report(None) };
        assert_eq!(retry_reason(&p, &bad_key), None);
    }

    #[test]
    fn delay_grows_exponentially_within_jitter() {
        let p = RetryPolicy { base_delay: 1.0, backoff: 2.0, jitter: 0.25, ..RetryPolicy::default() };
        assert_eq!(delay(&p, 1, 0.5), Duration::from_secs(1));
        assert_eq!(delay(&p, 3, 0.5), Duration::from_secs(4));
        assert_eq!(delay(&p, 3, 0.0), Duration::from_secs(3));
        assert_eq!(delay(&p, 3, 1.0), Duration::from_secs(5));
    }
}
