//! How long a broken watch waits before it tries again.
//!
//! kube's default is client-go's (0.8 s, doubling up to 30 s) with backon's jitter on top,
//! which adds up to as much again: a watch that failed six times in a row, as every watch does
//! while an API server restarts for ten seconds or so, then slept up to a minute. A link
//! deleted in that minute kept its access until the link watch came back. Liaison's watches
//! wait half a second, doubling up to five: its dozen watches retrying every five seconds are
//! no burden to an API server coming back, and access follows the cluster within seconds of it.

use std::time::Duration;

use kube::runtime::watcher;

/// The first wait after a watch fails.
pub const FIRST: Duration = Duration::from_millis(500);
/// The longest wait, before jitter.
pub const LONGEST: Duration = Duration::from_secs(5);
/// Each wait is lengthened by up to this share of itself, so that the watches of one operator
/// do not all call again at the same instant.
const JITTER: f64 = 0.25;

/// The waits of one watch: doubling from `FIRST` to `LONGEST` while it keeps failing, back to
/// `FIRST` once it yields anything.
pub struct Retries {
    next: Duration,
    random: u64,
}

impl Retries {
    pub fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // Any seed will do as long as two watches are unlikely to share it.
        let seed = std::collections::hash_map::RandomState::new().build_hasher().finish();
        Retries { next: FIRST, random: seed | 1 }
    }

    /// How long to wait after `error` before the watch is polled again.
    ///
    /// A resource version the API server no longer keeps (410 Gone, which every watch gets from
    /// an API server that restarted: its cache starts afresh) is no failure of the server. The
    /// watcher lists again after the first wait, and the next failure's wait is not lengthened.
    pub fn wait_after(&mut self, error: &watcher::Error) -> Duration {
        if is_gone(error) { self.jittered(FIRST) } else { self.wait() }
    }

    /// The next wait of a watch that keeps failing.
    pub fn wait(&mut self) -> Duration {
        let base = self.next;
        self.next = (base * 2).min(LONGEST);
        self.jittered(base)
    }

    /// The watch yielded an event: it works again.
    pub fn succeeded(&mut self) {
        self.next = FIRST;
    }

    fn jittered(&mut self, base: Duration) -> Duration {
        base.mul_f64(1.0 + JITTER * self.unit())
    }

    /// A number in [0, 1): xorshift64, enough to spread a dozen watches.
    fn unit(&mut self) -> f64 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        (self.random >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for Retries {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether the watch failed because the resource version it resumed from is gone.
fn is_gone(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn within(wait: Duration, base: Duration) -> bool {
        wait >= base && wait <= base.mul_f64(1.0 + JITTER)
    }

    fn refused() -> watcher::Error {
        watcher::Error::WatchStartFailed(kube::Error::Service("client error (Connect)".into()))
    }

    fn gone() -> watcher::Error {
        watcher::Error::WatchError(Box::new(
            Status::failure("too old resource version: 233 (251)", "Expired").with_code(410),
        ))
    }

    #[test]
    fn waits_double_from_half_a_second_up_to_five_seconds() {
        let mut retries = Retries::new();
        let bases = [500, 1000, 2000, 4000, 5000, 5000, 5000].map(Duration::from_millis);
        for (attempt, base) in bases.into_iter().enumerate() {
            let wait = retries.wait_after(&refused());
            assert!(within(wait, base), "attempt {attempt}: waited {wait:?}, expected {base:?} plus jitter");
        }
    }

    #[test]
    fn a_watch_that_came_back_starts_again_from_the_first_wait() {
        let mut retries = Retries::new();
        (0..10).for_each(|_| {
            retries.wait();
        });
        retries.succeeded();
        assert!(within(retries.wait(), FIRST));
    }

    #[test]
    fn however_long_the_server_is_away_it_is_called_again_within_the_longest_wait() {
        let mut retries = Retries::new();
        let longest = (0..1000).map(|_| retries.wait()).max().unwrap();
        assert!(longest <= LONGEST.mul_f64(1.0 + JITTER), "{longest:?}");
    }

    #[test]
    fn an_expired_resource_version_lists_again_soon_and_does_not_lengthen_the_waits() {
        let mut retries = Retries::new();
        (0..10).for_each(|_| {
            retries.wait();
        });
        assert!(
            within(retries.wait_after(&gone()), FIRST),
            "a restarted API server's 410 is listed again at once"
        );
        assert!(
            within(retries.wait_after(&refused()), LONGEST),
            "a failing server is still called every few seconds"
        );

        let mut fresh = Retries::new();
        fresh.wait_after(&gone());
        assert!(within(fresh.wait_after(&refused()), FIRST));
    }

    #[test]
    fn only_an_expired_resource_version_counts_as_gone() {
        assert!(is_gone(&gone()));
        assert!(!is_gone(&refused()));
        let forbidden = Status::failure("forbidden", "Forbidden").with_code(403);
        assert!(!is_gone(&watcher::Error::WatchError(Box::new(forbidden.clone()))));
        assert!(is_gone(&watcher::Error::WatchStartFailed(kube::Error::Api(Box::new(
            Status::failure("gone", "Expired").with_code(410)
        )))));
        assert!(!is_gone(&watcher::Error::WatchFailed(kube::Error::Api(Box::new(forbidden)))));
    }

    #[test]
    fn watches_spread_their_retries() {
        let waits: std::collections::BTreeSet<Duration> = (0..12).map(|_| Retries::new().wait()).collect();
        assert!(waits.len() > 1, "twelve watches all waited {waits:?}");
    }
}
