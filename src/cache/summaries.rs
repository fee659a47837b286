//! The summaries in links' and partners' statuses, kept compactly so that the caches can leave
//! them out.
//!
//! A link's status lists every grant naming its namespace, with its level, subject count and
//! verdict; a partner's lists its clients, with their grants: the largest part of each cached
//! object. Reconciles read a link's list for two things only: whether a freshly planned list
//! differs from the written one (the link's own status write), and which grants the link
//! reports granted (its partner's summary). So the link watch records both here, a digest of
//! the list and the granted grants' names; the partner watch records a digest of its list.

use std::collections::HashMap;
use std::marker::PhantomData;

use kube::Resource;
use kube::runtime::watcher;
use serde::Serialize;

use crate::api::{ClientLink, LinkGrantSummary, Partner, PartnerClient};
use crate::cache::fed::{Fed, Keeps};
use crate::cache::keys::{Key, digest, key_of};
use crate::cache::views::{Cached, CachedLink};

/// A kind whose status carries a summary list that the caches leave out.
pub trait Summarized: Resource<DynamicType = ()> {
    type Entry: Serialize + PartialEq;

    /// The list in the object's status (empty without one).
    fn summary(&self) -> &[Self::Entry];

    /// Leaves the list out of the object.
    fn leave_out_summary(&mut self);

    /// What reconciles read of the list besides whether it changed, an item each.
    fn noted(_summary: &[Self::Entry]) -> Vec<&str> {
        Vec::new()
    }
}

impl Summarized for ClientLink {
    type Entry = LinkGrantSummary;

    fn summary(&self) -> &[LinkGrantSummary] {
        self.status.as_ref().map(|s| &s.grants[..]).unwrap_or_default()
    }

    fn leave_out_summary(&mut self) {
        if let Some(status) = self.status.as_mut() {
            status.grants = Vec::new();
        }
    }

    /// `namespace/name` of each grant reported granted: what its partner's summary reads.
    fn noted(grants: &[LinkGrantSummary]) -> Vec<&str> {
        grants.iter().filter(|g| g.granted).map(|g| g.grant.as_str()).collect()
    }
}

impl Summarized for Partner {
    type Entry = PartnerClient;

    fn summary(&self) -> &[PartnerClient] {
        self.status.as_ref().map(|s| &s.clients[..]).unwrap_or_default()
    }

    fn leave_out_summary(&mut self) {
        if let Some(status) = self.status.as_mut() {
            status.clients = Vec::new();
        }
    }
}

/// The summary lists of one kind's objects as last seen.
pub struct Summaries<K> {
    seen: Fed<ListedByObject>,
    kind: PhantomData<fn(&K)>,
}

/// What each link's status lists of the grants using it.
pub type LinkGrants = Summaries<ClientLink>;
/// What each partner's status lists of its clients.
pub type PartnerClients = Summaries<Partner>;

impl<K> Default for Summaries<K> {
    fn default() -> Self {
        Summaries { seen: Fed::default(), kind: PhantomData }
    }
}

/// By object (a hash of namespace and name): its list as last seen. Taken like kube's cache
/// takes the objects, so a re-list replaces both once complete.
#[derive(Default)]
struct ListedByObject(HashMap<Key, Listed>);

struct Listed {
    /// Of the whole list.
    digest: u64,
    /// `Summarized::noted`, one item per line: one allocation an object, none when empty.
    noted: Box<str>,
}

impl<K: Summarized> Keeps<K> for ListedByObject {
    fn keep(&mut self, object: &K) {
        let summary = object.summary();
        self.0.insert(
            key_of(object),
            Listed { digest: digest(&summary), noted: K::noted(summary).join("\n").into() },
        );
    }

    fn forget(&mut self, object: &K) {
        self.0.remove(&key_of(object));
    }
}

impl<K: Summarized> Summaries<K> {
    /// Records what an event's object lists, then leaves the list out of it.
    pub fn observe(&self, event: &mut watcher::Event<K>) {
        self.seen.apply_and_trim(event, K::leave_out_summary);
    }

    /// Whether `object`'s status, as last seen, lists exactly `summary`. An object never seen
    /// (so not trimmed): its own list.
    pub fn lists(&self, object: &Cached<K>, summary: &[K::Entry]) -> bool {
        let object = object.0.as_ref();
        match self.seen.read().0.get(&key_of(object)) {
            Some(listed) => listed.digest == digest(&summary),
            None => object.summary() == summary,
        }
    }

    /// `Summarized::noted` of `object`'s list as last seen.
    fn noted(&self, object: &Cached<K>) -> Vec<String> {
        let object = object.0.as_ref();
        match self.seen.read().0.get(&key_of(object)) {
            Some(listed) => {
                listed.noted.split('\n').filter(|item| !item.is_empty()).map(str::to_string).collect()
            }
            None => K::noted(object.summary()).into_iter().map(str::to_string).collect(),
        }
    }
}

impl LinkGrants {
    /// `namespace/name` of the grants `link`'s status reports granted, as last seen.
    pub fn granted(&self, link: &CachedLink) -> Vec<String> {
        self.noted(link)
    }
}

#[cfg(test)]
#[path = "summaries_tests.rs"]
mod tests;
