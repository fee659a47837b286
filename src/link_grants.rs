//! What each link's status says of the grants using it, kept compactly.
//!
//! A link's status lists every grant naming its namespace, with its level, subject count and
//! verdict: the largest part of a cached link. Reconciles read that list for two things only:
//! whether a freshly planned list differs from the written one (the link's own status write),
//! and which grants the link reports granted (its partner's summary). So the link watch
//! records both here, a digest of the list and the granted grants' names, and caches the link
//! without the list.

use std::collections::HashMap;

use kube::ResourceExt;
use kube::runtime::watcher;

use crate::api::{ClientLink, LinkGrantSummary};
use crate::fed::{Fed, Keeps};
use crate::materialize::recent::{digest, hash_of};

#[derive(Default)]
pub struct LinkGrants {
    seen: Fed<Seen>,
}

/// By link (a hash of namespace and name): its list as last seen. Taken like kube's cache
/// takes the links, so a re-list replaces both once complete.
#[derive(Default)]
struct Seen(HashMap<u64, Listed>);

struct Listed {
    /// Of the whole list.
    digest: u64,
    /// `namespace/name` of each grant reported granted, one per line: one allocation a link.
    granted: Box<str>,
}

impl Keeps<ClientLink> for Seen {
    fn keep(&mut self, link: &ClientLink) {
        let grants = listed_in(link);
        let granted: Vec<&str> = grants.iter().filter(|g| g.granted).map(|g| g.grant.as_str()).collect();
        self.0.insert(key_of(link), Listed { digest: digest(&grants), granted: granted.join("\n").into() });
    }

    fn forget(&mut self, link: &ClientLink) {
        self.0.remove(&key_of(link));
    }
}

impl LinkGrants {
    /// Records what an event's link lists, then leaves the list out of it.
    pub fn observe(&self, event: &mut watcher::Event<ClientLink>) {
        self.seen.apply(event);
        if let watcher::Event::InitApply(link) | watcher::Event::Apply(link) = event
            && let Some(status) = link.status.as_mut()
        {
            status.grants = Vec::new();
        }
    }

    /// Whether `link`'s status, as last seen, lists exactly `grants`. A link never seen: its
    /// own list.
    pub fn lists(&self, link: &ClientLink, grants: &[LinkGrantSummary]) -> bool {
        match self.seen.read().0.get(&key_of(link)) {
            Some(listed) => listed.digest == digest(&grants),
            None => listed_in(link) == grants,
        }
    }

    /// `namespace/name` of the grants `link`'s status reports granted, as last seen.
    pub fn granted(&self, link: &ClientLink) -> Vec<String> {
        match self.seen.read().0.get(&key_of(link)) {
            Some(listed) => listed.granted.split('\n').filter(|name| !name.is_empty()).map(str::to_string).collect(),
            None => listed_in(link).iter().filter(|g| g.granted).map(|g| g.grant.clone()).collect(),
        }
    }
}

fn listed_in(link: &ClientLink) -> &[LinkGrantSummary] {
    link.status.as_ref().map(|s| &s.grants[..]).unwrap_or_default()
}

fn key_of(link: &ClientLink) -> u64 {
    hash_of(&(link.namespace(), link.name_any()))
}

#[cfg(test)]
#[path = "link_grants_tests.rs"]
mod tests;
