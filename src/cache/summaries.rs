//! The summaries in links' and partners' statuses, kept compactly so that the caches can leave
//! them out.
//!
//! A link's status lists grants naming its namespace, with their level, subject count and
//! verdict; a partner's lists its clients, with their grants: the largest part of each cached
//! object. Reconciles read a list only to know whether a freshly planned one differs from the
//! written one (before writing the status), so each watch records a digest of it here.

use std::collections::HashMap;
use std::marker::PhantomData;

use kube::Resource;
use kube::runtime::watcher;
use serde::Serialize;

use crate::api::{ClientLink, LinkGrantSummary, Partner, PartnerClient};
use crate::cache::fed::{Fed, Keeps};
use crate::cache::keys::{Key, digest, key_of};
use crate::cache::views::Cached;

/// A kind whose status carries a summary list that the caches leave out.
pub trait Summarized: Resource<DynamicType = ()> {
    type Entry: Serialize + PartialEq;

    /// The list in the object's status (empty without one).
    fn summary(&self) -> &[Self::Entry];

    /// Leaves the list out of the object.
    fn leave_out_summary(&mut self);
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

/// By object (a hash of namespace and name): a digest of its list as last seen. Taken like
/// kube's cache takes the objects, so a re-list replaces both once complete.
#[derive(Default)]
struct ListedByObject(HashMap<Key, u64>);

impl<K: Summarized> Keeps<K> for ListedByObject {
    fn keep(&mut self, object: &K) {
        self.0.insert(key_of(object), digest(&object.summary()));
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
            Some(listed) => *listed == digest(&summary),
            None => object.summary() == summary,
        }
    }
}

#[cfg(test)]
#[path = "summaries_tests.rs"]
mod tests;
