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

use kube::ResourceExt;
use kube::runtime::watcher;

use crate::api::{ClientLink, LinkGrantSummary, Partner, PartnerClient};
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

/// What each partner's status lists of its clients, as a digest.
#[derive(Default)]
pub struct PartnerClients {
    seen: Fed<Digests>,
}

/// By partner name (hashed): the digest of its list as last seen.
#[derive(Default)]
struct Digests(HashMap<u64, u64>);

impl Keeps<Partner> for Digests {
    fn keep(&mut self, partner: &Partner) {
        self.0.insert(hash_of(&partner.name_any()), digest(&clients_in(partner)));
    }

    fn forget(&mut self, partner: &Partner) {
        self.0.remove(&hash_of(&partner.name_any()));
    }
}

impl PartnerClients {
    /// Records what an event's partner lists, then leaves the list out of it.
    pub fn observe(&self, event: &mut watcher::Event<Partner>) {
        self.seen.apply(event);
        if let watcher::Event::InitApply(partner) | watcher::Event::Apply(partner) = event
            && let Some(status) = partner.status.as_mut()
        {
            status.clients = Vec::new();
        }
    }

    /// Whether `partner`'s status, as last seen, lists exactly `clients`. A partner never
    /// seen: its own list.
    pub fn lists(&self, partner: &Partner, clients: &[PartnerClient]) -> bool {
        match self.seen.read().0.get(&hash_of(&partner.name_any())) {
            Some(seen) => *seen == digest(&clients),
            None => clients_in(partner) == clients,
        }
    }
}

fn clients_in(partner: &Partner) -> &[PartnerClient] {
    partner.status.as_ref().map(|s| &s.clients[..]).unwrap_or_default()
}

fn listed_in(link: &ClientLink) -> &[LinkGrantSummary] {
    link.status.as_ref().map(|s| &s.grants[..]).unwrap_or_default()
}

fn key_of(link: &ClientLink) -> u64 {
    hash_of(&(link.namespace(), link.name_any()))
}

#[cfg(test)]
#[path = "summaries_tests.rs"]
mod tests;
