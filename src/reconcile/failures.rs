//! Reconciles that fail: how long each object waits before its next try, and when its users
//! are told. A failure that a retry clears (a conflict, a moment of overload) is only logged;
//! one that persists is written to the object's `Ready` condition and sent as a Warning Event,
//! once per distinct message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::api::ready_condition;
use crate::cache::keys::Key;

/// The first retry's wait; each failure in a row doubles it, up to `LONGEST_RETRY`.
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// A failure that persists is retried at least this often: a fix made outside Liaison (an
/// admission policy lifted, a permission given) that no watched object reports takes effect
/// within it.
const LONGEST_RETRY: Duration = Duration::from_secs(120);
/// Failures in a row before users are told: one that the next try clears is noise.
const TOLD_AFTER: u32 = 2;

/// The `Ready` reasons of a failing reconcile (`super::Error::reason`), as against a verdict's.
pub const REASONS: [&str; 6] = [
    "ReadFailed",
    "ApplyFailed",
    "TokenRequestFailed",
    "StatusFailed",
    "RevocationFailed",
    "FinalizerFailed",
];

/// Whether a `Ready` reason says the object's reconcile keeps failing.
pub fn is_failure(reason: &str) -> bool {
    REASONS.contains(&reason)
}

/// The failure an object's `Ready` condition reports, if its reconciles keep failing.
pub fn reported_in(conditions: &[Condition]) -> Option<&str> {
    let ready = ready_condition(conditions)?;
    Some(ready.reason.as_str()).filter(|reason| is_failure(reason))
}

/// How long to wait after the `count`-th failure in a row.
pub fn retry_after(count: u32) -> Duration {
    let doublings = count.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(LONGEST_RETRY)
}

/// What to do about one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// Failures in a row, this one included.
    pub count: u32,
    /// Whether to write it to the object's status and send an Event.
    pub tell: bool,
}

/// The failures in a row of each object whose last reconcile failed.
#[derive(Default)]
pub struct Failures {
    streaks: Mutex<HashMap<Key, Streak>>,
}

struct Streak {
    count: u32,
    /// A digest of the failure last told (reason and message), if any was.
    told: Option<u64>,
}

impl Failures {
    /// Counts a failure of `object`, `said` being a digest of its reason and message.
    pub fn failed(&self, object: Key, said: u64) -> Failed {
        let mut streaks = self.streaks.lock().expect("failures");
        let streak = streaks.entry(object).or_insert(Streak { count: 0, told: None });
        streak.count = streak.count.saturating_add(1);
        let tell = streak.count >= TOLD_AFTER && streak.told != Some(said);
        if tell {
            streak.told = Some(said);
        }
        Failed { count: streak.count, tell }
    }

    /// Ends `object`'s streak: the next failure starts again from the first wait.
    pub fn succeeded(&self, object: Key) {
        self.streaks.lock().expect("failures").remove(&object);
    }

    /// Failures in a row of `object` (0 after a success).
    pub fn count(&self, object: Key) -> u32 {
        self.streaks.lock().expect("failures").get(&object).map_or(0, |s| s.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ClientLink;
    use crate::cache::keys::key;

    #[test]
    fn retries_double_from_two_seconds_up_to_two_minutes() {
        let waits: Vec<u64> = (1..=8).map(|n| retry_after(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 120, 120]);
        assert_eq!(retry_after(0), FIRST_RETRY, "no failure counted yet: the first wait");
        assert_eq!(retry_after(u32::MAX), LONGEST_RETRY, "no overflow however long it fails");
    }

    #[test]
    fn a_failure_is_told_once_it_persists_and_again_only_when_it_changes() {
        let failures = Failures::default();
        let link = key::<ClientLink>(Some("ns"), "link");
        let told = |f: Failed| f.tell;
        assert!(!told(failures.failed(link, 1)), "a single failure may be a moment's conflict");
        assert!(told(failures.failed(link, 1)), "the retry failed the same way: tell");
        assert!(!told(failures.failed(link, 1)), "told already");
        assert!(told(failures.failed(link, 2)), "another failure: tell that one");
        assert_eq!(failures.count(link), 4);

        failures.succeeded(link);
        assert_eq!(failures.count(link), 0, "a success ends the streak");
        assert!(!told(failures.failed(link, 2)), "a new streak starts quiet again");
        assert!(told(failures.failed(link, 2)), "and tells even what the last streak told");
    }

    #[test]
    fn objects_fail_apart() {
        let failures = Failures::default();
        let (a, b) = (key::<ClientLink>(Some("ns"), "a"), key::<ClientLink>(Some("ns"), "b"));
        failures.failed(a, 1);
        failures.failed(a, 1);
        assert_eq!(failures.failed(b, 1), Failed { count: 1, tell: false });
        failures.succeeded(b);
        assert_eq!(failures.count(a), 2, "b's success leaves a's streak");
    }
}
