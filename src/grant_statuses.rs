//! What each grant's status said when the watch last saw it, as a digest.
//!
//! A grant's status lists a verdict per client, with its message and binding name: the largest
//! part of a cached grant, and read only to decide whether a freshly computed status differs
//! from the written one. So the grant watch records a digest of the whole status here and
//! caches the grant without its per-client entries and its conditions' messages (each
//! condition's type, status, reason and times, and the counts stay: they are read for
//! `lastTransitionTime`, for Events, for settling and for metrics).

use std::collections::HashMap;

use kube::ResourceExt;
use kube::runtime::watcher;

use crate::api::{AccessGrant, AccessGrantStatus};
use crate::fed::{Fed, Keeps};
use crate::materialize::recent::{digest, hash_of};

#[derive(Default)]
pub struct GrantStatuses {
    digests: Fed<Digests>,
}

/// By grant (a hash of namespace and name): the digest of its status as last seen. Taken like
/// kube's cache takes the grants, so a re-list replaces both once complete.
#[derive(Default)]
struct Digests(HashMap<u64, u64>);

impl Keeps<AccessGrant> for Digests {
    fn keep(&mut self, grant: &AccessGrant) {
        self.0.insert(key_of(grant), status_digest(grant.status.as_ref()));
    }

    fn forget(&mut self, grant: &AccessGrant) {
        self.0.remove(&key_of(grant));
    }
}

impl GrantStatuses {
    /// Records what an event's grant says, then leaves the per-client entries and the
    /// conditions' messages out of it.
    pub fn observe(&self, event: &mut watcher::Event<AccessGrant>) {
        self.digests.apply(event);
        if let watcher::Event::InitApply(grant) | watcher::Event::Apply(grant) = event
            && let Some(status) = grant.status.as_mut()
        {
            status.clients = Vec::new();
            status.conditions.iter_mut().for_each(|condition| condition.message = String::new());
        }
    }

    /// Whether `grant`'s status, as last seen, is `next`. Unknown: only if the cached status
    /// (which then still has its entries) equals it.
    pub fn says(&self, grant: &AccessGrant, next: &AccessGrantStatus) -> bool {
        let seen = self.digests.read().0.get(&key_of(grant)).copied();
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
