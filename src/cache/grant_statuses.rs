//! What each grant's status said when the watch last saw it, kept compactly.
//!
//! A grant's status lists a verdict per client, with its message and binding name: the largest
//! part of a cached grant, and read only to decide whether a freshly computed status differs
//! from the written one. So the grant watch records a digest of the whole status here, with the
//! few facts of its `Ready` condition that the next status reads (its status, reason and
//! `lastTransitionTime`), and caches the grant without its per-client entries and without that
//! condition: a `Condition` is four strings and a time, ~250 bytes a grant.
//! The counts and any other condition stay in the cached grant.

use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::watcher;

use crate::api::READY;
use crate::api::{AccessGrant, AccessGrantStatus};
use crate::cache::fed::{Fed, Keeps};
use crate::cache::keys::{Key, digest, key_of};
use crate::cache::views::CachedGrant;
use crate::desired::Reason;

#[derive(Default)]
pub struct GrantStatuses {
    seen: Fed<SaidByGrant>,
}

/// By grant (a hash of namespace and name): what its status said as last seen. Taken like
/// kube's cache takes the grants, so a re-list replaces both once complete.
#[derive(Default)]
struct SaidByGrant(HashMap<Key, Said>);

struct Said {
    /// Of the whole status.
    digest: u64,
    ready: Option<Ready>,
}

/// A `Ready` condition as far as the next status reads it: whether it held, why, and since
/// when. Its message is covered by the digest, and its generation is written anew. 32 bytes
/// and no allocation for a reason Liaison writes: the entries of this table are one per grant.
struct Ready {
    status: Truth,
    reason: Why,
    /// `lastTransitionTime` in seconds: the API server keeps no finer time for it.
    since: i64,
}

#[derive(Clone, Copy)]
enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn of(status: &str) -> Truth {
        match status {
            "True" => Truth::True,
            "False" => Truth::False,
            _ => Truth::Unknown,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Truth::True => "True",
            Truth::False => "False",
            Truth::Unknown => "Unknown",
        }
    }
}

/// A condition's reason: one Liaison writes, or any other text (a status edited by hand).
enum Why {
    Liaison(Reason),
    Other(Box<str>),
}

impl Why {
    fn of(reason: &str) -> Why {
        Reason::parse(reason).map_or_else(|| Why::Other(reason.into()), Why::Liaison)
    }

    fn as_str(&self) -> &str {
        match self {
            Why::Liaison(reason) => reason.as_str(),
            Why::Other(text) => text,
        }
    }
}

impl Ready {
    fn of(condition: &Condition) -> Ready {
        Ready {
            status: Truth::of(&condition.status),
            reason: Why::of(&condition.reason),
            since: condition.last_transition_time.0.as_second(),
        }
    }

    fn condition(&self) -> Condition {
        Condition {
            type_: READY.into(),
            status: self.status.as_str().into(),
            reason: self.reason.as_str().into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(Timestamp::from_second(self.since).unwrap_or_default()),
        }
    }
}

impl Keeps<AccessGrant> for SaidByGrant {
    fn keep(&mut self, grant: &AccessGrant) {
        let status = grant.status.as_ref();
        let ready = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == READY)).map(Ready::of);
        self.0.insert(key_of(grant), Said { digest: status_digest(status), ready });
    }

    fn forget(&mut self, grant: &AccessGrant) {
        self.0.remove(&key_of(grant));
    }
}

impl GrantStatuses {
    /// Records what an event's grant says, then leaves the per-client entries and the `Ready`
    /// condition out of it.
    pub fn observe(&self, event: &mut watcher::Event<AccessGrant>) {
        self.seen.apply_and_trim(event, |grant| {
            if let Some(status) = grant.status.as_mut() {
                status.clients = Box::default();
                if status.conditions.iter().any(|c| c.type_ == READY) {
                    status.conditions =
                        status.conditions.iter().filter(|c| c.type_ != READY).cloned().collect();
                }
            }
        });
    }

    /// The grant's status as last seen, as far as a reconcile reads it: the cached status with
    /// its `Ready` condition put back (without its message), still without its per-client
    /// entries (`says` compares those). A grant never seen: its own status.
    pub fn previous(&self, grant: &CachedGrant) -> AccessGrantStatus {
        let grant = grant.0.as_ref();
        let mut status = grant.status.clone().unwrap_or_default();
        if let Some(ready) = self.seen.read().0.get(&key_of(grant)).and_then(|said| said.ready.as_ref()) {
            status.conditions = status.conditions.iter().cloned().chain([ready.condition()]).collect();
        }
        status
    }

    /// Whether `grant`'s status, as last seen, is `next`. Unknown: only if the cached status
    /// (which then still has its entries) equals it.
    pub fn says(&self, grant: &CachedGrant, next: &AccessGrantStatus) -> bool {
        let grant = grant.0.as_ref();
        let seen = self.seen.read().0.get(&key_of(grant)).map(|said| said.digest);
        match seen {
            Some(seen) => seen == status_digest(Some(next)),
            None => grant.status.as_ref() == Some(next),
        }
    }
}

fn status_digest(status: Option<&AccessGrantStatus>) -> u64 {
    status.map(digest).unwrap_or_default()
}

#[cfg(test)]
#[path = "grant_statuses_tests.rs"]
mod tests;
