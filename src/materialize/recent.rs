//! Writes the caches have not shown yet.
//!
//! A reconcile that runs right after a write, before the write's watch event reached the
//! cache, reads the object as it was and would send the same write again: while 5,000 grants
//! converged, about one binding apply in nine and one finalizer patch in ten repeated a
//! write just made. A write is remembered with the cached state it was made over, and is not
//! sent again while the cache still shows that state. Any watch event of the object (the write's
//! own, anyone else's change, a deletion) forgets it: the cache decides again. (The cached state
//! alone cannot tell: an object created, then deleted by someone, is absent again.) It lapses
//! after `ttl` in any case, so a write whose event never comes (a no-op) is at worst sent again
//! then.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::Resource;

use crate::cache::keys::{Key, Version, key};

/// Beyond this many objects with remembered writes, lapsed ones are dropped when the next
/// write is recorded.
const TIDY_ABOVE: usize = 4096;

/// What Liaison writes to one object.
#[derive(Debug, Clone, Copy)]
pub enum Write {
    Object,
    Status,
    Finalizer,
}

pub struct RecentWrites {
    ttl: Duration,
    /// Per object (`key`), its remembered writes, by `Write`.
    writes: Mutex<HashMap<Key, [Option<Made>; 3]>>,
}

struct Made {
    /// The cached version the write was decided on; `None`: the object was not cached.
    over: Option<Version>,
    digest: u64,
    at: Instant,
}

impl RecentWrites {
    pub fn new(ttl: Duration) -> Self {
        RecentWrites { ttl, writes: Mutex::default() }
    }

    /// Whether this very write (`digest`) was made, within `ttl`, over the state the cache
    /// still shows (`over`).
    pub fn just_made(
        &self,
        key: Key,
        write: Write,
        over: Option<Version>,
        digest: u64,
        now: Instant,
    ) -> bool {
        let mut writes = self.writes.lock().expect("recent writes");
        let Some(slot) = writes.get_mut(&key).map(|made| &mut made[write as usize]) else { return false };
        let Some(made) = slot else { return false };
        let still = made.over == over && now.saturating_duration_since(made.at) < self.ttl;
        let same = still && made.digest == digest;
        if !still {
            *slot = None;
        }
        same
    }

    /// Remembers a write decided on the cached state `over`.
    pub fn made(&self, key: Key, write: Write, over: Option<Version>, digest: u64, now: Instant) {
        let mut writes = self.writes.lock().expect("recent writes");
        if writes.len() > TIDY_ABOVE {
            let young = |made: &Option<Made>| {
                made.as_ref().is_some_and(|m| now.saturating_duration_since(m.at) < self.ttl)
            };
            writes.retain(|_, made| made.iter().any(young));
        }
        writes.entry(key).or_default()[write as usize] = Some(Made { over, digest, at: now });
    }

    /// A watch event of the object: the cache has moved on, whatever it shows now.
    pub fn observed<K: Resource<DynamicType = ()>>(&self, object: &K) {
        let mut writes = self.writes.lock().expect("recent writes");
        if !writes.is_empty() {
            writes.remove(&key::<K>(
                object.meta().namespace.as_deref(),
                object.meta().name.as_deref().unwrap_or_default(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::rbac::v1::RoleBinding;

    use super::*;

    fn k(name: &str) -> Key {
        key::<RoleBinding>(Some("ns"), name)
    }

    #[test]
    fn a_write_is_held_back_only_while_the_cache_shows_the_state_it_was_made_over() {
        let recent = RecentWrites::new(Duration::from_secs(30));
        let t0 = Instant::now();
        assert!(!recent.just_made(k("k"), Write::Object, Some("1".into()), 7, t0), "nothing written yet");
        recent.made(k("k"), Write::Object, Some("1".into()), 7, t0);
        assert!(
            recent.just_made(k("k"), Write::Object, Some("1".into()), 7, t0 + Duration::from_secs(1)),
            "the cache has not caught up"
        );
        assert!(
            !recent.just_made(k("k"), Write::Object, Some("1".into()), 8, t0 + Duration::from_secs(1)),
            "a different write goes out"
        );
        assert!(
            !recent.just_made(k("k"), Write::Object, Some("2".into()), 7, t0 + Duration::from_secs(1)),
            "the cache moved on: it decides"
        );
        assert!(
            !recent.just_made(k("k"), Write::Object, Some("1".into()), 7, t0 + Duration::from_secs(2)),
            "and the memory is gone"
        );
    }

    #[test]
    fn creations_are_remembered_until_the_object_appears_and_everything_lapses() {
        let recent = RecentWrites::new(Duration::from_secs(30));
        let t0 = Instant::now();
        recent.made(k("k"), Write::Object, None, 7, t0);
        assert!(recent.just_made(k("k"), Write::Object, None, 7, t0 + Duration::from_secs(29)));
        assert!(!recent.just_made(k("k"), Write::Object, None, 7, t0 + Duration::from_secs(30)), "lapsed");
        recent.made(k("k"), Write::Object, None, 7, t0);
        assert!(
            !recent.just_made(k("k"), Write::Object, Some("5".into()), 7, t0),
            "it appeared (or was deleted and came back): the cache decides"
        );
    }

    #[test]
    fn any_event_of_the_object_forgets_its_writes() {
        let recent = RecentWrites::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let mut binding = RoleBinding::default();
        binding.metadata.name = Some("b".into());
        binding.metadata.namespace = Some("ns".into());
        let object = k("b");
        recent.made(object, Write::Object, None, 7, t0);
        recent.made(object, Write::Status, None, 7, t0);
        let mut other = binding.clone();
        other.metadata.name = Some("c".into());
        recent.observed(&other);
        assert!(
            recent.just_made(object, Write::Object, None, 7, t0),
            "another object's event changes nothing"
        );
        // Created, then deleted by someone: absent again, as when the write was made.
        recent.observed(&binding);
        assert!(!recent.just_made(object, Write::Object, None, 7, t0));
        assert!(!recent.just_made(object, Write::Status, None, 7, t0));
    }

    #[test]
    fn lapsed_writes_are_tidied_away() {
        let recent = RecentWrites::new(Duration::from_secs(1));
        let t0 = Instant::now();
        for i in 0..=TIDY_ABOVE {
            recent.made(k(&format!("k{i}")), Write::Object, None, 1, t0);
        }
        recent.made(k("last"), Write::Object, None, 1, t0 + Duration::from_secs(2));
        assert_eq!(recent.writes.lock().unwrap().len(), 1);
    }
}
