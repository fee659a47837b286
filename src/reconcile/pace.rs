//! A tenant's refusals are told at a bounded pace. Each refused link writes a status and an
//! Event; another tenant's 4,000 of them, written as fast as the API server took them (two at
//! a time), kept it so busy that a revocation elsewhere, on the same cores, took 2-4 times its
//! quiet time (#26). Per namespace, the first few are told at once and the rest at a steady
//! rate: a pipeline's typo is reported as it happens, a flood only slowly, and never at the
//! cost of another tenant's revocation.
//!
//! A link waiting for its turn is requeued, not held: it occupies none of the controller's
//! slots meanwhile, so other tenants' links go on being reconciled.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cache::keys::Key;

pub struct Pace {
    interval: Duration,
    /// Turns a namespace quiet for a while may take at once (at least one).
    burst: u32,
    state: Mutex<Turns>,
}

#[derive(Default)]
struct Turns {
    /// The next free turn of each namespace.
    next: HashMap<String, Instant>,
    /// Turns given to links that were told to come back: kept for them, so that coming back
    /// they go first and are not sent to the end of the line again.
    kept: HashMap<Key, Instant>,
    /// The number of entries after the last clean-up, and when it was: the next one comes
    /// when they double, or a minute later.
    after_cleanup: usize,
    cleaned_at: Option<Instant>,
}

/// A kept turn not taken within this long is forgotten (the link was deleted or corrected).
const FORGOTTEN_AFTER: Duration = Duration::from_secs(600);
const CLEAN_UP_EVERY: Duration = Duration::from_secs(60);

impl Pace {
    pub fn new(per_second: u32, burst: u32) -> Pace {
        Pace {
            interval: Duration::from_secs(1) / per_second.max(1),
            burst: burst.max(1),
            state: Mutex::default(),
        }
    }

    /// `None`: the link `key` of `namespace` may write now. `Some(wait)`: its turn comes in
    /// `wait`, and is kept for it.
    pub fn turn(&self, namespace: &str, key: Key, now: Instant) -> Option<Duration> {
        let mut turns = self.state.lock().expect("pace");
        if let Some(at) = turns.kept.get(&key).copied() {
            if at <= now {
                turns.kept.remove(&key);
                return None;
            }
            return Some(at - now);
        }
        // A namespace quiet for a while has `burst` turns in hand, no more.
        let in_hand = self.interval * (self.burst - 1);
        turns.clean_up(now, in_hand);
        let earliest = now.checked_sub(in_hand).unwrap_or(now);
        let slot = turns.next.get(namespace).map_or(earliest, |next| (*next).max(earliest));
        turns.next.insert(namespace.to_string(), slot + self.interval);
        if slot <= now {
            return None;
        }
        turns.kept.insert(key, slot);
        Some(slot - now)
    }
}

impl Turns {
    /// Forgets what no longer holds anything back: namespaces whose next turn is long past
    /// (as good as never seen), and kept turns nobody came back for.
    fn clean_up(&mut self, now: Instant, in_hand: Duration) {
        let entries = self.next.len() + self.kept.len();
        let grown = entries >= (2 * self.after_cleanup).max(64);
        let due = self.cleaned_at.is_none_or(|at| now >= at + CLEAN_UP_EVERY);
        if !(grown || due) {
            return;
        }
        self.next.retain(|_, next| *next > now.checked_sub(in_hand).unwrap_or(now));
        self.kept.retain(|_, at| *at + FORGOTTEN_AFTER > now);
        (self.after_cleanup, self.cleaned_at) = (self.next.len() + self.kept.len(), Some(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ClientLink;
    use crate::cache::keys::key;

    const MS: Duration = Duration::from_millis(1);

    /// A link's key: `link("ns/a")`.
    fn link(reference: &str) -> Key {
        let (namespace, name) = reference.split_once('/').expect("namespace/name");
        key::<ClientLink>(Some(namespace), name)
    }

    #[test]
    fn a_quiet_namespace_has_its_burst_at_once_then_one_turn_per_interval() {
        let pace = Pace::new(50, 3);
        let t0 = Instant::now() + Duration::from_secs(1);
        let waits: Vec<_> = (0..6).map(|i| pace.turn("ns", link(&format!("ns/l{i}")), t0)).collect();
        assert_eq!(waits, [None, None, None, Some(20 * MS), Some(40 * MS), Some(60 * MS)]);
    }

    #[test]
    fn a_link_told_to_wait_keeps_its_turn_and_takes_it_when_it_comes_back() {
        let pace = Pace::new(50, 1);
        let t0 = Instant::now() + Duration::from_secs(1);
        assert_eq!(pace.turn("ns", link("ns/a"), t0), None);
        assert_eq!(pace.turn("ns", link("ns/b"), t0), Some(20 * MS));
        assert_eq!(pace.turn("ns", link("ns/c"), t0), Some(40 * MS));
        assert_eq!(pace.turn("ns", link("ns/b"), t0 + 10 * MS), Some(10 * MS), "too early: the same turn");
        assert_eq!(pace.turn("ns", link("ns/b"), t0 + 25 * MS), None, "back at its turn: it goes");
        assert_eq!(pace.turn("ns", link("ns/c"), t0 + 40 * MS), None);
        assert_eq!(pace.turn("ns", link("ns/d"), t0 + 40 * MS), Some(20 * MS), "after the turns given out");
    }

    #[test]
    fn each_namespace_has_its_own_pace() {
        let pace = Pace::new(10, 1);
        let t0 = Instant::now() + Duration::from_secs(1);
        assert_eq!(pace.turn("flood", link("flood/a"), t0), None);
        assert_eq!(pace.turn("flood", link("flood/b"), t0), Some(100 * MS));
        assert_eq!(pace.turn("quiet", link("quiet/a"), t0), None, "another tenant is not held by the flood");
    }

    #[test]
    fn a_namespace_quiet_long_enough_has_its_burst_again() {
        let pace = Pace::new(10, 2);
        let t0 = Instant::now() + Duration::from_secs(1);
        for i in 0..5 {
            pace.turn("ns", link(&format!("ns/l{i}")), t0);
        }
        let later = t0 + Duration::from_secs(5);
        let waits: Vec<_> = (0..4).map(|i| pace.turn("ns", link(&format!("ns/m{i}")), later)).collect();
        assert_eq!(waits, [None, None, Some(100 * MS), Some(200 * MS)]);
    }

    #[test]
    fn turns_nobody_needs_are_forgotten() {
        let pace = Pace::new(1000, 1);
        let t0 = Instant::now() + Duration::from_secs(1);
        for i in 0..200 {
            pace.turn(&format!("ns{i}"), link(&format!("ns{i}/a")), t0);
            pace.turn(&format!("ns{i}"), link(&format!("ns{i}/b")), t0);
        }
        let much_later = t0 + FORGOTTEN_AFTER + Duration::from_secs(1);
        pace.turn("other", link("other/a"), much_later);
        let turns = pace.state.lock().unwrap();
        assert_eq!((turns.next.len(), turns.kept.len()), (1, 0), "only the namespace just seen");
    }
}
