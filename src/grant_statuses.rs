//! What each grant's status said when the watch last saw it, as a digest.
//!
//! A grant's status lists a verdict per client, with its message and binding name: the largest
//! part of a cached grant, and read only to decide whether a freshly computed status differs
//! from the written one. So the grant watch records a digest of the whole status here and
//! caches the grant without its per-client entries (`conditions` and the counts stay: they are
//! read for `lastTransitionTime`, for settling and for metrics).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use kube::ResourceExt;
use kube::runtime::watcher;

use crate::api::{AccessGrant, AccessGrantStatus};
use crate::materialize::recent::{digest, hash_of};

#[derive(Default)]
pub struct GrantStatuses {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// By grant (a hash of namespace and name): the digest of its status as last seen.
    seen: HashMap<u64, u64>,
    /// During a re-list, the grants listed so far.
    relisted: Option<HashSet<u64>>,
}

impl GrantStatuses {
    /// Records what an event's grant says, then leaves the per-client entries out of it.
    pub fn observe(&self, event: &mut watcher::Event<AccessGrant>) {
        let mut state = self.state.lock().expect("grant statuses");
        let relisting = matches!(event, watcher::Event::InitApply(_));
        match event {
            watcher::Event::Init => state.relisted = Some(HashSet::new()),
            watcher::Event::InitApply(grant) | watcher::Event::Apply(grant) => {
                let key = key_of(grant);
                state.seen.insert(key, status_digest(grant.status.as_ref()));
                if let Some(status) = grant.status.as_mut() {
                    status.clients = Vec::new();
                }
                if relisting && let Some(relisted) = state.relisted.as_mut() {
                    relisted.insert(key);
                }
            }
            watcher::Event::InitDone => {
                if let Some(relisted) = state.relisted.take() {
                    state.seen.retain(|key, _| relisted.contains(key));
                }
            }
            watcher::Event::Delete(grant) => {
                state.seen.remove(&key_of(grant));
            }
        }
    }

    /// Whether `grant`'s status, as last seen, is `next`. Unknown: only if the cached status
    /// (which then still has its entries) equals it.
    pub fn says(&self, grant: &AccessGrant, next: &AccessGrantStatus) -> bool {
        let seen = self.state.lock().expect("grant statuses").seen.get(&key_of(grant)).copied();
        match seen {
            Some(seen) => seen == status_digest(Some(next)),
            None => grant.status.as_ref() == Some(next),
        }
    }
}

fn key_of(grant: &AccessGrant) -> u64 {
    hash_of(&(grant.namespace(), grant.name_any()))
}

fn status_digest(status: Option<&AccessGrantStatus>) -> u64 {
    status.map(digest).unwrap_or_default()
}

#[cfg(test)]
#[path = "grant_statuses_tests.rs"]
mod tests;
