//! Requeue delays.
//!
//! Per-object capped exponential backoff with full jitter (AWS's "full jitter": a uniform draw
//! between a small floor and `min(cap, base * 2^attempt)`), so that thousands of objects failing
//! together spread out instead of retrying in lock-step. The attempt count lives with the object
//! (in `status.deletion.attempts` for drops, in memory for observations), so the delay is a pure
//! function of it. `backon` and friends model one retry loop inside one future; here every retry
//! is a new reconcile, which is why this is a function and not a crate.

use rand::Rng;
use std::time::Duration;

/// Backoff settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        }
    }
}

/// Longest `Retry-After` honoured as is; a larger one is clamped (a misconfigured proxy must not
/// park a drop for a day).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl Backoff {
    /// Upper bound of the draw for this attempt (0-based): `min(cap, base * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before retry number `attempt` (0-based), honouring `Retry-After` as a lower
    /// bound.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling(attempt);
        // a floor of a tenth of the base keeps a draw of ~0 from becoming a hot loop
        let floor = (self.base / 10).min(ceiling);
        let jittered = if ceiling > floor {
            rand::rng().random_range(floor..=ceiling)
        } else {
            ceiling
        };
        match retry_after {
            Some(ra) => jittered.max(ra.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }

    /// The slow retry for terminal errors: about the cap, jittered down by up to a fifth.
    pub fn slow(&self) -> Duration {
        let low = self.cap.mul_f64(0.8);
        rand::rng().random_range(low..=self.cap)
    }
}

/// A resync interval jittered by ±10 %, so re-observations do not come as one herd.
pub fn jittered(interval: Duration) -> Duration {
    if interval.is_zero() {
        return interval;
    }
    rand::rng().random_range(interval.mul_f64(0.9)..=interval.mul_f64(1.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_grows_then_caps() {
        let b = Backoff::default();
        assert_eq!(b.ceiling(0), Duration::from_secs(1));
        assert_eq!(b.ceiling(1), Duration::from_secs(2));
        assert_eq!(b.ceiling(5), Duration::from_secs(32));
        assert_eq!(b.ceiling(9), Duration::from_secs(300));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn delays_are_within_bounds_and_spread() {
        let b = Backoff::default();
        let draws: Vec<Duration> = (0..200).map(|_| b.delay(6, None)).collect();
        assert!(
            draws
                .iter()
                .all(|d| *d >= Duration::from_millis(100) && *d <= Duration::from_secs(64))
        );
        let distinct: std::collections::BTreeSet<_> = draws.iter().collect();
        assert!(distinct.len() > 100, "full jitter should spread the draws");
        // the mean of a full-jitter draw is about half the ceiling
        let mean = draws.iter().sum::<Duration>() / draws.len() as u32;
        assert!(
            mean > Duration::from_secs(20) && mean < Duration::from_secs(44),
            "{mean:?}"
        );
    }

    #[test]
    fn retry_after_is_a_floor_and_is_clamped() {
        let b = Backoff::default();
        assert!(b.delay(0, Some(Duration::from_secs(30))) >= Duration::from_secs(30));
        assert_eq!(
            b.delay(0, Some(Duration::from_secs(86_400))),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn slow_and_jittered() {
        let b = Backoff::default();
        for _ in 0..50 {
            let s = b.slow();
            assert!(s >= Duration::from_secs(240) && s <= Duration::from_secs(300));
            let j = jittered(Duration::from_secs(600));
            assert!(j >= Duration::from_secs(540) && j <= Duration::from_secs(660));
        }
    }
}
