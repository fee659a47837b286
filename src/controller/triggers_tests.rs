use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, store::Writer};
use kube::runtime::watcher::Event;
use serde_json::json;

use super::*;
use crate::api::{AccessApproval, AccessRequest};
use crate::cache::Indexes;
use crate::cache::compact::{GrantBindings, LevelRoles};
use crate::cache::namespace_labels::NamespaceLabels;

const GRANT_UID: &str = "0b4e7a62-9f3c-4c1d-8a2b-7e5f6d4c3b2a";

/// Caches filled by hand, the way the watches fill them: each store, then its indexes.
struct World {
    caches: Caches,
    partners: Writer<Partner>,
    links: Writer<ClientLink>,
    grants: Writer<AccessGrant>,
    requests: Writer<AccessRequest>,
}

impl World {
    fn new() -> World {
        let (partners_store, partners) = reflector::store();
        let (links_store, links) = reflector::store();
        let (grants_store, grants) = reflector::store();
        let (requests_store, requests) = reflector::store();
        let caches = Caches {
            partners: partners_store,
            links: links_store,
            grants: grants_store,
            namespaces: Arc::new(NamespaceLabels::default()),
            cluster_roles: reflector::store().0,
            roles: reflector::store().0,
            role_bindings: reflector::store().0,
            grant_bindings: Arc::new(GrantBindings::default()),
            level_roles: Arc::new(LevelRoles::default()),
            service_accounts: reflector::store().0,
            cluster_role_bindings: reflector::store().0,
            managed_namespaces: reflector::store().0,
            requests: requests_store,
            approvals: reflector::store().0,
            by: Indexes::default(),
            grant_statuses: Default::default(),
            link_grants: Default::default(),
            partner_clients: Default::default(),
            holders: Default::default(),
        };
        World { caches, partners, links, grants, requests }
    }

    fn partner(mut self, name: &str, home: &str) -> World {
        let partner: Partner = from(json!({
            "metadata": {"name": name},
            "spec": {"homeNamespace": home, "responsibleParty": {"kind": "Group", "name": "vendor-managers"}}
        }));
        self.partners.apply_watcher_event(&Event::Apply(partner));
        self
    }

    fn link(mut self, namespace: &str, partner: &str, levels: serde_json::Value) -> World {
        let link: ClientLink = from(json!({
            "metadata": {"name": partner, "namespace": namespace},
            "spec": {"partner": partner, "accessLevels": levels}
        }));
        let event = Event::Apply(link);
        self.links.apply_watcher_event(&event);
        for index in [&self.caches.by.links_by_namespace, &self.caches.by.links_by_partner] {
            index.observe(&event, &self.caches.links);
        }
        self
    }

    fn grant(mut self, home: &str, name: &str, clients: &[&str]) -> World {
        let grant: AccessGrant = from(json!({
            "metadata": {"name": name, "namespace": home, "uid": GRANT_UID},
            "spec": {"clients": clients, "accessLevel": "support", "subjects": [{"kind": "User", "name": "bob@techhelp.example"}]}
        }));
        let event = Event::Apply(grant);
        self.grants.apply_watcher_event(&event);
        for index in [&self.caches.by.grants_by_client, &self.caches.by.grants_by_namespace] {
            index.observe(&event, &self.caches.grants);
        }
        self
    }

    /// TechHelp's admin asks, in its home, for `grant`'s level in `client`.
    fn request(mut self, name: &str, grant: &str, client: &str) -> World {
        self.requests.apply_watcher_event(&Event::Apply(request(name, grant, client)));
        self
    }

    /// A binding Liaison made for the grant in `namespace`, still there.
    fn grant_binding(self, namespace: &str) -> World {
        self.caches.grant_bindings.apply(&Event::Apply(grant_binding(namespace)));
        self
    }
}

fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a valid object")
}

fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: namespace.map(String::from), ..Default::default() }
}

fn grant_binding(namespace: &str) -> RoleBinding {
    let mut binding: RoleBinding = from(json!({
        "metadata": {"name": "liaison-grant-1", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "liaison-support-1"}
    }));
    binding.metadata.labels = Some(
        [
            (names::GRANT_UID, GRANT_UID),
            (names::ACCESS_GRANT, "beta-support"),
            (names::GRANT_NAMESPACE, "partner-techhelp"),
            (names::COMPONENT, "grant-binding"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    binding
}

fn request(name: &str, grant: &str, client: &str) -> AccessRequest {
    from(json!({
        "metadata": {"name": name, "namespace": "partner-techhelp", "uid": "uid-request"},
        "spec": {"grant": grant, "client": client, "subjects": [{"kind": "User", "name": "bob@techhelp.example"}],
                 "duration": "1h", "reason": "INC-1", "requestedBy": "alice@techhelp.example"}
    }))
}

fn approval(namespace: &str, request: &str) -> AccessApproval {
    from(json!({
        "metadata": {"name": "yes", "namespace": namespace},
        "spec": {"request": {"namespace": "partner-techhelp", "name": request, "uid": "uid-request"},
                 "decision": "Approve", "decidedBy": "carol@beta.example"}
    }))
}

fn namespace(name: &str) -> PartialObjectMeta<Namespace> {
    PartialObjectMeta { metadata: meta(None, name), ..Default::default() }
}

fn role(namespace: &str, name: &str) -> Role {
    Role { metadata: meta(Some(namespace), name), ..Default::default() }
}

fn cluster_role(name: &str) -> ClusterRole {
    ClusterRole { metadata: meta(None, name), ..Default::default() }
}

fn view() -> serde_json::Value {
    json!([{"name": "support", "clusterRole": "view"}])
}

fn tickets() -> serde_json::Value {
    json!([{"name": "tickets", "role": "ticket-reader"}])
}

/// The `namespace/name` of each object, sorted: what a test compares.
fn named<K: Resource<DynamicType = ()>>(refs: Vec<ObjectRef<K>>) -> Vec<String> {
    let mut names: Vec<String> =
        refs.iter().map(|r| format!("{}/{}", r.namespace.as_deref().unwrap_or_default(), r.name)).collect();
    names.sort();
    names
}

/// Two clients of TechHelp (beta with a Role level, gamma with `view`), and Acme's link in delta.
fn clients() -> World {
    World::new()
        .partner("techhelp", "partner-techhelp")
        .partner("acme", "partner-acme")
        .link("beta", "techhelp", tickets())
        .link("gamma", "techhelp", view())
        .link("delta", "acme", json!([{"name": "ops", "clusterRole": "edit"}]))
}

#[test]
fn what_liaison_made_in_a_namespace_brings_back_that_namespaces_links_only() {
    let world = clients();
    assert_eq!(named(links_of_made(&world.caches, &role("beta", "liaison-tickets-1"))), ["beta/techhelp"]);
    assert_eq!(named(links_of_made(&world.caches, &grant_binding("delta"))), ["delta/acme"]);
    assert!(links_of_made(&world.caches, &role("nowhere", "x")).is_empty());
}

#[test]
fn an_access_key_brings_back_the_link_of_the_client_it_serves_not_of_its_home() {
    let world = clients().link("partner-techhelp", "acme", view());
    let mut key =
        ServiceAccount { metadata: meta(Some("partner-techhelp"), "liaison-key-1"), ..Default::default() };
    key.metadata.labels = Some([(names::CLIENT_NAMESPACE.to_string(), "gamma".to_string())].into());
    assert_eq!(named(links_of_key(&world.caches, &key)), ["gamma/techhelp"]);
    // Keys made before they moved to homes lived in the client namespace, unlabelled.
    let old_key = ServiceAccount { metadata: meta(Some("beta"), "liaison-key-0"), ..Default::default() };
    assert_eq!(named(links_of_key(&world.caches, &old_key)), ["beta/techhelp"]);
}

#[test]
fn a_grant_brings_back_the_clients_it_names_and_those_still_holding_its_bindings() {
    let world = clients().grant("partner-techhelp", "beta-support", &["beta"]).grant_binding("gamma");
    let grant = world.caches.grants.state()[0].clone();
    assert_eq!(
        named(links_of_grant(&world.caches, &grant)),
        ["beta/techhelp", "gamma/techhelp"],
        "gamma was dropped: it must lose its binding"
    );
}

#[test]
fn a_partner_brings_back_its_links_and_those_of_partners_sharing_its_home() {
    let world = clients().partner("squatter", "partner-techhelp").link("epsilon", "squatter", view());
    let techhelp = world.caches.partners.state().into_iter().find(|p| p.name_any() == "techhelp").unwrap();
    assert_eq!(
        named(links_of_partner(&world.caches, &techhelp)),
        ["beta/techhelp", "epsilon/squatter", "gamma/techhelp"]
    );
    let acme = world.caches.partners.state().into_iter().find(|p| p.name_any() == "acme").unwrap();
    assert_eq!(named(links_of_partner(&world.caches, &acme)), ["delta/acme"]);
}

#[test]
fn a_namespace_brings_back_its_links_and_as_a_home_its_partners_links() {
    let world = clients();
    assert_eq!(named(links_of_namespace(&world.caches, &namespace("delta"))), ["delta/acme"]);
    assert_eq!(
        named(links_of_namespace(&world.caches, &namespace("partner-techhelp"))),
        ["beta/techhelp", "gamma/techhelp"]
    );
    assert!(links_of_namespace(&world.caches, &namespace("unrelated")).is_empty());
}

#[test]
fn a_role_brings_back_only_the_links_of_its_namespace_whose_levels_name_it() {
    let world = clients().link("beta", "acme", view());
    assert_eq!(named(links_using_role(&world.caches, &role("beta", "ticket-reader"))), ["beta/techhelp"]);
    assert!(
        links_using_role(&world.caches, &role("gamma", "ticket-reader")).is_empty(),
        "gamma's link names no Role"
    );
    assert!(links_using_role(&world.caches, &role("beta", "other")).is_empty());
}

#[test]
fn a_cluster_role_brings_back_the_links_naming_it_and_the_ceiling_every_link() {
    let world = clients();
    assert_eq!(
        named(links_using_cluster_role(&world.caches, "liaison-ceiling", &cluster_role("view"))),
        ["gamma/techhelp"]
    );
    assert_eq!(
        named(links_using_cluster_role(&world.caches, "liaison-ceiling", &cluster_role("edit"))),
        ["delta/acme"]
    );
    assert_eq!(
        named(links_using_cluster_role(&world.caches, "liaison-ceiling", &cluster_role("liaison-ceiling")))
            .len(),
        3
    );
    assert!(links_using_cluster_role(&world.caches, "liaison-ceiling", &cluster_role("admin")).is_empty());
}

#[test]
fn a_link_brings_back_the_grants_naming_its_namespace() {
    let world = clients().grant("partner-techhelp", "beta-support", &["beta", "gamma"]).grant(
        "partner-acme",
        "delta-ops",
        &["delta"],
    );
    let beta =
        world.caches.links.state().into_iter().find(|l| l.namespace().as_deref() == Some("beta")).unwrap();
    assert_eq!(named(grants_of_link(&world.caches, &beta)), ["partner-techhelp/beta-support"]);
    assert!(
        grants_of_failing_link(&world.caches, &beta).is_empty(),
        "a link that reports no failure is not news to grants"
    );
}

#[test]
fn a_link_reporting_failed_writes_brings_back_its_grants() {
    let world = clients().grant("partner-techhelp", "beta-support", &["beta"]);
    let mut beta: ClientLink =
        (*world.caches.links.state().into_iter().find(|l| l.namespace().as_deref() == Some("beta")).unwrap())
            .clone();
    beta.status = Some(from(json!({"conditions": [{
        "type": "Ready", "status": "False", "reason": "ApplyFailed", "message": "quota", "lastTransitionTime": "2026-12-04T00:00:00Z"
    }]})));
    assert_eq!(named(grants_of_failing_link(&world.caches, &beta)), ["partner-techhelp/beta-support"]);
}

#[test]
fn a_grant_binding_brings_back_the_grant_its_labels_name() {
    assert_eq!(
        named(grant_of_binding(&grant_binding("beta")).into_iter().collect()),
        ["partner-techhelp/beta-support"]
    );
    let unlabelled = RoleBinding { metadata: meta(Some("beta"), "x"), ..Default::default() };
    assert_eq!(grant_of_binding(&unlabelled), None);
}

#[test]
fn a_partner_or_a_namespace_brings_back_the_grants_living_or_aimed_there() {
    let world = clients().grant("partner-techhelp", "beta-support", &["beta"]).grant(
        "partner-acme",
        "delta-ops",
        &["delta"],
    );
    let techhelp = world.caches.partners.state().into_iter().find(|p| p.name_any() == "techhelp").unwrap();
    assert_eq!(named(grants_of_partner(&world.caches, &techhelp)), ["partner-techhelp/beta-support"]);
    assert_eq!(named(grants_of_namespace(&world.caches, &namespace("delta"))), ["partner-acme/delta-ops"]);
    assert_eq!(
        named(grants_of_namespace(&world.caches, &namespace("partner-techhelp"))),
        ["partner-techhelp/beta-support"]
    );
    assert_eq!(
        named(grants_of_role(&world.caches, &role("beta", "ticket-reader"))),
        ["partner-techhelp/beta-support"]
    );
}

#[test]
fn a_cluster_role_brings_back_the_grants_of_the_links_naming_it() {
    let world = clients().grant("partner-techhelp", "beta-support", &["beta"]).grant(
        "partner-techhelp",
        "gamma-support",
        &["gamma"],
    );
    assert_eq!(
        named(grants_using_cluster_role(&world.caches, "liaison-ceiling", &cluster_role("view"))),
        ["partner-techhelp/gamma-support"]
    );
    assert_eq!(
        named(grants_using_cluster_role(&world.caches, "liaison-ceiling", &cluster_role("liaison-ceiling")))
            .len(),
        2
    );
}

#[test]
fn partners_are_brought_back_by_their_links_their_homes_grants_and_their_home() {
    let world = clients().link("partner-acme", "techhelp", view());
    let partners = &world.caches.partners;
    let link_in_acmes_home = world
        .caches
        .links
        .state()
        .into_iter()
        .find(|l| l.namespace().as_deref() == Some("partner-acme"))
        .unwrap();
    assert_eq!(
        named(partners_of_link(partners, &link_in_acmes_home)),
        ["/acme", "/techhelp"],
        "its partner, and the home it sits in"
    );
    let world = world.grant("partner-acme", "delta-ops", &["delta"]);
    let grant = world.caches.grants.state()[0].clone();
    assert_eq!(named(partners_of_grant(&world.caches.partners, &grant)), ["/acme"]);
    assert_eq!(
        named(partners_of_namespace(&world.caches.partners, &namespace("partner-techhelp"))),
        ["/techhelp"]
    );
    assert!(partners_of_namespace(&world.caches.partners, &namespace("beta")).is_empty());
}

#[test]
fn a_partner_deleted_or_gone_brings_back_its_links_for_revocation_and_a_live_one_nothing() {
    let world = clients();
    let techhelp =
        (*world.caches.partners.state().into_iter().find(|p| p.name_any() == "techhelp").unwrap()).clone();
    assert!(
        links_of_departing_partner(&world.caches, &techhelp).is_empty(),
        "a live partner revokes nothing"
    );
    let mut deleting = techhelp.clone();
    deleting.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
    assert_eq!(
        named(links_of_departing_partner(&world.caches, &deleting)),
        ["beta/techhelp", "gamma/techhelp"]
    );
    let mut gone = World::new().link("beta", "techhelp", tickets());
    gone.partners.apply_watcher_event(&Event::Delete(techhelp.clone()));
    assert_eq!(
        named(links_of_departing_partner(&gone.caches, &techhelp)),
        ["beta/techhelp"],
        "not in the cache: gone"
    );
}

#[test]
fn a_request_or_its_answer_brings_back_the_clients_link_and_the_grant_asked_through() {
    let world = clients().request("inc-1", "beta-support", "beta");
    assert_eq!(
        named(links_of_request(&world.caches, &request("inc-1", "beta-support", "beta"))),
        ["beta/techhelp"]
    );
    assert_eq!(named(links_of_approval(&world.caches, &approval("gamma", "inc-1"))), ["gamma/techhelp"]);
    let asked = grant_of_request(&request("inc-1", "beta-support", "beta"));
    assert_eq!(named(asked.into_iter().collect()), ["partner-techhelp/beta-support"]);
    let answered = grant_of_approval(&world.caches, &approval("beta", "inc-1"));
    assert_eq!(
        named(answered.into_iter().collect()),
        ["partner-techhelp/beta-support"],
        "the grant, in the request's home"
    );
    assert_eq!(
        grant_of_approval(&world.caches, &approval("beta", "unknown")),
        None,
        "a request not cached: nothing to wake"
    );
}

#[test]
fn the_link_holding_a_namespace_going_brings_back_the_one_that_holds_it_next() {
    // Same age: "a-first" holds beta by name, "b-second" and "c-third" are outranked.
    let world = World::new().link("beta", "a-first", tickets()).link("beta", "b-second", tickets());
    let mut world = world.link("beta", "c-third", tickets()).link("gamma", "other", tickets());
    let cached = |world: &World, name: &str| {
        (*world.caches.links.get(&ObjectRef::new(name).within("beta")).unwrap()).clone()
    };
    let (first, second) = (cached(&world, "a-first"), cached(&world, "b-second"));
    assert!(successor_of_departed(&world.caches, &first).is_empty(), "a live link changes nobody's standing");
    let mut deleting = first.clone();
    deleting.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
    assert_eq!(named(successor_of_departed(&world.caches, &deleting)), ["beta/b-second"], "being deleted");
    world.links.apply_watcher_event(&Event::Delete(second.clone()));
    world.caches.by.links_by_namespace.observe(&Event::Delete(second.clone()), &world.caches.links);
    assert!(
        successor_of_departed(&world.caches, &second).is_empty(),
        "an outranked link gone: the holder stays the holder"
    );
    world.links.apply_watcher_event(&Event::Delete(first.clone()));
    world.caches.by.links_by_namespace.observe(&Event::Delete(first.clone()), &world.caches.links);
    assert_eq!(named(successor_of_departed(&world.caches, &first)), ["beta/c-third"], "gone from the cache");
}

/// `cache::holders`: the remembered holder of a crowded namespace answers as a look at every
/// link would, and is looked for again once it goes. (Here beside the caches built by hand.)
#[test]
fn a_crowded_namespaces_holder_is_remembered_until_it_goes() {
    use crate::desired::client::outranked;
    let mut world = World::new();
    for i in 0..20 {
        world = world.link("crowded", &format!("link-{i:02}"), tickets());
    }
    let every = |world: &World, link: &ClientLink| {
        let links = world.caches.by.links_by_namespace.get("crowded", &world.caches.links);
        outranked(link, links.iter().map(AsRef::as_ref))
    };
    let cached =
        |world: &World, name: &str| world.caches.links.get(&ObjectRef::new(name).within("crowded")).unwrap();
    for name in ["link-00", "link-05", "link-19", "link-05"] {
        let link = cached(&world, name);
        assert_eq!(world.caches.outranked(&link), every(&world, &link), "{name}");
    }
    let first = cached(&world, "link-00");
    world.links.apply_watcher_event(&Event::Delete((*first).clone()));
    world.caches.by.links_by_namespace.observe(&Event::Delete((*first).clone()), &world.caches.links);
    let link = cached(&world, "link-05");
    let verdict = world.caches.outranked(&link).expect("link-01 holds it now");
    assert!(verdict.message.contains("link-01"), "{}", verdict.message);
    assert_eq!(world.caches.outranked(&cached(&world, "link-01")), None, "the new holder");
}

#[test]
fn a_link_created_holding_its_namespace_brings_back_the_others_there() {
    let world = World::new().link("beta", "b-second", tickets()).link("beta", "c-third", tickets());
    let world = world.link("beta", "a-first", tickets()).link("gamma", "other", tickets());
    let cached =
        |name: &str| (*world.caches.links.get(&ObjectRef::new(name).within("beta")).unwrap()).clone();
    assert_eq!(
        named(outranked_by_newcomer(&world.caches, &cached("a-first"))),
        ["beta/b-second", "beta/c-third"],
        "created within the same second as the others, first by name: it holds the namespace"
    );
    assert!(outranked_by_newcomer(&world.caches, &cached("c-third")).is_empty(), "an outranked newcomer");
    let mut reported = cached("a-first");
    reported.status = Some(Default::default());
    assert!(outranked_by_newcomer(&world.caches, &reported).is_empty(), "not at creation");
}

/// A burst into a crowded namespace, its links arriving out of order: the remembered holder
/// answers for the newcomers it outranks, and one created first by name still brings back
/// every other link there.
#[test]
fn in_a_burst_only_a_newcomer_that_holds_the_namespace_brings_back_the_others() {
    let mut world = World::new();
    let mut bringing_back = Vec::new();
    for i in (10..20).chain([3]).chain(20..25) {
        let name = format!("link-{i:02}");
        world = world.link("crowded", &name, tickets());
        let newcomer = world.caches.links.get(&ObjectRef::new(&name).within("crowded")).unwrap();
        let others = outranked_by_newcomer(&world.caches, &newcomer);
        if !others.is_empty() {
            bringing_back.push((name, others.len()));
        }
    }
    assert_eq!(bringing_back, [("link-03".to_string(), 10)]);
}
