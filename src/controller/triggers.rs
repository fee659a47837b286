//! Which objects a watch event brings back to a controller.
//!
//! Each trigger is a named function of the caches and the event's object. A trigger that
//! misses an object shows only as access changing at the next resync, minutes later, so each
//! one is unit-tested here against caches filled by hand.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use crate::api::{AccessApproval, AccessGrant, AccessRequest, ClientLink, Partner};
use crate::cache::{Caches, client_served_by};
use crate::desired::client::{holder, successor};
use crate::desired::names;

// ---- links: they write and prune a namespace's access ----

/// Anything Liaison made in a namespace (level Role, binding): the namespace's links. Found by
/// namespace, not by owner references, which a client admin can remove.
pub fn links_of_made<K: Resource>(caches: &Caches, made: &K) -> Vec<ObjectRef<ClientLink>> {
    links_in(caches, made.meta().namespace.as_deref().unwrap_or_default())
}

/// An access key's account lives in the partner's home; its label names the client it serves.
pub fn links_of_key(caches: &Caches, account: &ServiceAccount) -> Vec<ObjectRef<ClientLink>> {
    links_in(caches, &client_served_by(account).unwrap_or_default())
}

/// The namespaces a grant names now, and those where it still has bindings: a client dropped
/// from the grant must lose its binding.
pub fn links_of_grant(caches: &Caches, grant: &AccessGrant) -> Vec<ObjectRef<ClientLink>> {
    let mut namespaces: BTreeSet<String> = grant.spec.clients.iter().cloned().collect();
    namespaces.extend(caches.grant_bindings.namespaces_of_grant(&grant.uid().unwrap_or_default()));
    namespaces.iter().flat_map(|namespace| links_in(caches, namespace)).collect()
}

/// A partner's links, and those of every partner sharing its home namespace: they decide each
/// other's standing.
pub fn links_of_partner(caches: &Caches, partner: &Partner) -> Vec<ObjectRef<ClientLink>> {
    let home = &partner.spec.home_namespace;
    let mut affected: BTreeSet<String> = caches
        .partners
        .state()
        .iter()
        .filter(|p| &p.spec.home_namespace == home)
        .map(|p| p.name_any())
        .collect();
    affected.insert(partner.name_any());
    links_where(&caches.links, |link| affected.contains(&link.spec.partner))
}

/// A namespace's labels decide its own links and, marking a home, the links of the partner
/// whose home it is.
pub fn links_of_namespace(
    caches: &Caches,
    namespace: &PartialObjectMeta<Namespace>,
) -> Vec<ObjectRef<ClientLink>> {
    let name = namespace.name_any();
    let homed: BTreeSet<String> = caches
        .partners
        .state()
        .iter()
        .filter(|p| p.spec.home_namespace == name)
        .map(|p| p.name_any())
        .collect();
    let mut links = links_in(caches, &name);
    if !homed.is_empty() {
        links.extend(links_where(&caches.links, |link| homed.contains(&link.spec.partner)));
    }
    links
}

/// A Role some level of its namespace's links names.
pub fn links_using_role(caches: &Caches, role: &Role) -> Vec<ObjectRef<ClientLink>> {
    let name = role.name_any();
    let uses_role = |link: &ClientLink| {
        link.spec.access_levels.iter().any(|level| level.role.as_deref() == Some(name.as_str()))
    };
    let in_namespace = caches.by.links_by_namespace.get(&role.namespace().unwrap_or_default(), &caches.links);
    in_namespace
        .iter()
        .filter(|link| uses_role(link))
        .map(|link| ObjectRef::from_obj(link.as_ref()))
        .collect()
}

/// A ClusterRole a level names, or the ceiling (which every link is checked against).
pub fn links_using_cluster_role(
    caches: &Caches,
    ceiling: &str,
    role: &ClusterRole,
) -> Vec<ObjectRef<ClientLink>> {
    let name = role.name_any();
    let is_ceiling = name == ceiling;
    links_where(&caches.links, |link| is_ceiling || uses_cluster_role(link, &name))
}

/// A partner deleted, or gone from the cache: each of its links is revoked (the revocation
/// queue's only trigger besides the links themselves).
pub fn links_of_departing_partner(caches: &Caches, partner: &Partner) -> Vec<ObjectRef<ClientLink>> {
    let gone = partner.metadata.deletion_timestamp.is_some()
        || caches.partners.get(&ObjectRef::from_obj(partner)).is_none();
    if !gone {
        return vec![];
    }
    let links = caches.by.links_by_partner.get(&partner.name_any(), &caches.links);
    links.iter().map(|link| ObjectRef::from_obj(link.as_ref())).collect()
}

/// The link that held its namespace deleted, or being deleted: the one that holds it next,
/// which its going may put in force. An outranked link carries no finalizer (nothing to
/// revoke), so nothing else re-plans the namespace for it, as the revocation of the one that
/// goes used to (#26).
pub fn successor_of_departed(caches: &Caches, link: &ClientLink) -> Vec<ObjectRef<ClientLink>> {
    let gone =
        link.metadata.deletion_timestamp.is_some() || caches.links.get(&ObjectRef::from_obj(link)).is_none();
    if !gone {
        return vec![];
    }
    let namespace = link.namespace().unwrap_or_default();
    let remaining = caches.by.links_by_namespace.get(&namespace, &caches.links);
    successor(link, remaining.iter().map(AsRef::as_ref)).map(ObjectRef::from_obj).into_iter().collect()
}

/// A link just created that holds its namespace: the namespace's other links. Links created
/// within the same second are ranked by name, so in a burst the holder may arrive after links
/// that took another for it; each says which link holds the namespace, and without a
/// finalizer write to bring it back, a refused link kept naming the wrong one (#26). Only at
/// creation (no status yet): a holder's later edits change nobody's standing.
///
/// The remembered holder answers for most newcomers: a burst of 4,000 links in one namespace
/// otherwise looked at every link of it for each one, 16 million lookups.
pub fn outranked_by_newcomer(caches: &Caches, link: &ClientLink) -> Vec<ObjectRef<ClientLink>> {
    if link.status.is_some() || caches.outranked(link).is_some() {
        return vec![];
    }
    let namespace = link.namespace().unwrap_or_default();
    let links = caches.by.links_by_namespace.get(&namespace, &caches.links);
    let is_it = |l: &ClientLink| l.name_any() == link.name_any() && l.metadata.uid == link.metadata.uid;
    if !holder(links.iter().map(AsRef::as_ref)).is_some_and(is_it) {
        return vec![];
    }
    links.iter().filter(|l| !is_it(l)).map(|l| ObjectRef::from_obj(l.as_ref())).collect()
}

/// A request for an on-request level: the link of the client it asks.
pub fn links_of_request(caches: &Caches, request: &AccessRequest) -> Vec<ObjectRef<ClientLink>> {
    links_in(caches, &request.spec.client)
}

/// An answer to a request, in the client namespace: that namespace's link binds or unbinds.
pub fn links_of_approval(caches: &Caches, approval: &AccessApproval) -> Vec<ObjectRef<ClientLink>> {
    links_in(caches, &approval.namespace().unwrap_or_default())
}

// ---- grants: they report whether they are in force ----

/// A link's spec: the grants naming its namespace.
pub fn grants_of_link(caches: &Caches, link: &ClientLink) -> Vec<ObjectRef<AccessGrant>> {
    grants_naming(caches, &link.namespace().unwrap_or_default())
}

/// A link whose writes keep failing says so in its status; its grants waiting for a binding
/// then say which link to ask. Other status changes of links are not news to grants.
pub fn grants_of_failing_link(caches: &Caches, link: &ClientLink) -> Vec<ObjectRef<AccessGrant>> {
    let conditions = link.status.as_ref().map(|s| &s.conditions[..]).unwrap_or_default();
    match crate::reconcile::failures::reported_in(conditions) {
        Some(_) => grants_of_link(caches, link),
        None => vec![],
    }
}

/// A grant reports `Granted` once its binding is in place: the binding's arrival completes it.
/// Labels only pick which grant to look at again.
pub fn grant_of_binding(binding: &RoleBinding) -> Option<ObjectRef<AccessGrant>> {
    let labels = binding.labels();
    let grant = labels.get(names::ACCESS_GRANT).zip(labels.get(names::GRANT_NAMESPACE));
    grant.map(|(name, namespace)| ObjectRef::new(name).within(namespace))
}

/// A request: the grant it asks through (in the same home).
pub fn grant_of_request(request: &AccessRequest) -> Option<ObjectRef<AccessGrant>> {
    Some(ObjectRef::new(&request.spec.grant).within(&request.namespace()?))
}

/// An answer: the grant of the request it answers, if that request is cached.
pub fn grant_of_approval(caches: &Caches, approval: &AccessApproval) -> Option<ObjectRef<AccessGrant>> {
    let asked = &approval.spec.request;
    let request = caches.requests.get(&ObjectRef::new(&asked.name).within(&asked.namespace))?;
    Some(ObjectRef::new(&request.spec.grant).within(&asked.namespace))
}

/// A partner's spec: every grant of its home.
pub fn grants_of_partner(caches: &Caches, partner: &Partner) -> Vec<ObjectRef<AccessGrant>> {
    grants_living_in(caches, &partner.spec.home_namespace)
}

/// A namespace's labels: the grants naming it as a client, and those living in it (its mark
/// as a home).
pub fn grants_of_namespace(
    caches: &Caches,
    namespace: &PartialObjectMeta<Namespace>,
) -> Vec<ObjectRef<AccessGrant>> {
    let name = namespace.name_any();
    let mut grants = grants_naming(caches, &name);
    grants.extend(grants_living_in(caches, &name));
    grants
}

/// A Role of a client namespace (a level names it, or it is the level Role a grant binds).
pub fn grants_of_role(caches: &Caches, role: &Role) -> Vec<ObjectRef<AccessGrant>> {
    grants_naming(caches, &role.namespace().unwrap_or_default())
}

/// A ClusterRole some link's level names, or the ceiling: the grants of those links' namespaces.
pub fn grants_using_cluster_role(
    caches: &Caches,
    ceiling: &str,
    role: &ClusterRole,
) -> Vec<ObjectRef<AccessGrant>> {
    let name = role.name_any();
    let is_ceiling = name == ceiling;
    let using: BTreeSet<String> = caches
        .links
        .state()
        .iter()
        .filter(|link| is_ceiling || uses_cluster_role(link, &name))
        .filter_map(|link| link.namespace())
        .collect();
    using.iter().flat_map(|namespace| grants_naming(caches, namespace)).collect()
}

// ---- partners: their home's objects, and the summary of their links and grants ----

/// Its links, and any link in its home, which a home must not hold.
pub fn partners_of_link(partners: &Store<Partner>, link: &ClientLink) -> Vec<ObjectRef<Partner>> {
    let namespace = link.namespace().unwrap_or_default();
    partners_where(partners, |p| p.name_any() == link.spec.partner || p.spec.home_namespace == namespace)
}

/// The partner whose home holds the grant.
pub fn partners_of_grant(partners: &Store<Partner>, grant: &AccessGrant) -> Vec<ObjectRef<Partner>> {
    let namespace = grant.namespace();
    partners_where(partners, |p| Some(&p.spec.home_namespace) == namespace.as_ref())
}

/// The partner whose home the namespace is.
pub fn partners_of_namespace(
    partners: &Store<Partner>,
    namespace: &PartialObjectMeta<Namespace>,
) -> Vec<ObjectRef<Partner>> {
    let name = namespace.name_any();
    partners_where(partners, |p| p.spec.home_namespace == name)
}

// ---- lookups ----

/// Whether one of the link's levels names ClusterRole `name`.
fn uses_cluster_role(link: &ClientLink, name: &str) -> bool {
    link.spec.access_levels.iter().any(|level| level.cluster_role.as_deref() == Some(name))
}

fn links_where(store: &Store<ClientLink>, keep: impl Fn(&ClientLink) -> bool) -> Vec<ObjectRef<ClientLink>> {
    store.state().iter().filter(|l| keep(l)).map(|l| ObjectRef::from_obj(l.as_ref())).collect()
}

fn links_in(caches: &Caches, namespace: &str) -> Vec<ObjectRef<ClientLink>> {
    caches
        .by
        .links_by_namespace
        .get(namespace, &caches.links)
        .iter()
        .map(|l| ObjectRef::from_obj(l.as_ref()))
        .collect()
}

fn grants_naming(caches: &Caches, namespace: &str) -> Vec<ObjectRef<AccessGrant>> {
    caches
        .by
        .grants_by_client
        .get(namespace, &caches.grants)
        .iter()
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}

fn grants_living_in(caches: &Caches, namespace: &str) -> Vec<ObjectRef<AccessGrant>> {
    caches
        .by
        .grants_by_namespace
        .get(namespace, &caches.grants)
        .iter()
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}

fn partners_where(store: &Store<Partner>, keep: impl Fn(&Partner) -> bool) -> Vec<ObjectRef<Partner>> {
    store.state().iter().filter(|p| keep(p)).map(|p| ObjectRef::from_obj(p.as_ref())).collect()
}

#[cfg(test)]
#[path = "triggers_tests.rs"]
mod tests;
