use kube::runtime::watcher::Event;
use serde_json::json;

use super::*;

/// How a reconcile holds a cached object.
fn view<K: Clone>(object: &K) -> crate::cache::views::Cached<K> {
    crate::cache::views::Cached(std::sync::Arc::new(object.clone()))
}

fn link(name: &str, grants: &[(&str, bool)]) -> ClientLink {
    let spec = serde_json::from_value(
        json!({"partner": "p", "accessLevels": [{"name": "read", "clusterRole": "view"}]}),
    )
    .unwrap();
    let mut link = ClientLink::new(name, spec);
    link.metadata.namespace = Some("client".into());
    link.status =
        Some(serde_json::from_value(json!({"grants": summaries(grants), "grantCount": 1})).unwrap());
    link
}

fn summaries(grants: &[(&str, bool)]) -> Vec<LinkGrantSummary> {
    let entry = |(grant, granted): &(&str, bool)| json!({"grant": grant, "accessLevel": "read", "subjects": 2, "granted": granted});
    serde_json::from_value(json!(grants.iter().map(entry).collect::<Vec<_>>())).unwrap()
}

fn seen(links: &LinkGrants, event: Event<ClientLink>) -> Event<ClientLink> {
    let mut event = event;
    links.observe(&mut event);
    event
}

#[test]
fn the_cache_keeps_a_link_without_its_list_and_still_knows_what_it_lists() {
    let links = LinkGrants::default();
    let whole = link("l", &[("home/a", true), ("home/b", false), ("home/c", true)]);
    let Event::Apply(cached) = seen(&links, Event::Apply(whole)) else { panic!() };
    let kept = cached.status.as_ref().unwrap();
    assert!(kept.grants.is_empty(), "the list is left out");
    assert_eq!(kept.grant_count, 1, "the rest stays");
    assert!(
        links.lists(&view(&cached), &summaries(&[("home/a", true), ("home/b", false), ("home/c", true)]))
    );
    assert!(
        !links.lists(&view(&cached), &summaries(&[("home/a", true), ("home/b", true), ("home/c", true)])),
        "a verdict changed"
    );
    assert!(!links.lists(&view(&cached), &summaries(&[("home/a", true), ("home/c", true)])), "a grant fewer");
}

#[test]
fn a_link_that_lists_nothing_is_known_to_list_nothing() {
    let links = LinkGrants::default();
    let Event::Apply(empty) = seen(&links, Event::Apply(link("m", &[]))) else { panic!() };
    assert!(links.lists(&view(&empty), &[]));
    assert!(!links.lists(&view(&empty), &summaries(&[("home/a", false)])));
}

#[test]
fn a_link_never_seen_is_judged_by_its_own_list() {
    let links = LinkGrants::default();
    let whole = link("l", &[("home/a", true), ("home/b", false)]);
    assert!(links.lists(&view(&whole), &summaries(&[("home/a", true), ("home/b", false)])));
    assert!(!links.lists(&view(&whole), &summaries(&[("home/a", true)])));
}

#[test]
fn deletions_and_relists_forget_links_that_are_gone() {
    let links = LinkGrants::default();
    let (kept, deleted, vanished) = (
        link("kept", &[("home/a", true)]),
        link("deleted", &[("home/a", true)]),
        link("vanished", &[("home/a", true)]),
    );
    for l in [&kept, &deleted, &vanished] {
        seen(&links, Event::Apply(l.clone()));
    }
    seen(&links, Event::Delete(deleted.clone()));
    seen(&links, Event::Init);
    seen(&links, Event::InitApply(kept.clone()));
    seen(&links, Event::InitDone);
    assert_eq!(links.seen.read().0.len(), 1, "only the link still listed is remembered");
    // Forgotten links are judged by their own (whole) list again.
    assert!(links.lists(&view(&vanished), &summaries(&[("home/a", true)])));
}

fn partner(name: &str, clients: &[&str]) -> Partner {
    let spec = serde_json::from_value(json!({"homeNamespace": format!("partner-{name}")})).unwrap();
    let mut partner = Partner::new(name, spec);
    partner.status = Some(
        serde_json::from_value(json!({"clients": partner_clients(clients), "clientCount": clients.len()}))
            .unwrap(),
    );
    partner
}

fn partner_clients(namespaces: &[&str]) -> Vec<PartnerClient> {
    let entry =
        |ns: &&str| json!({"namespace": ns, "link": "l", "active": true, "grants": ["g"], "subjects": 2});
    serde_json::from_value(json!(namespaces.iter().map(entry).collect::<Vec<_>>())).unwrap()
}

#[test]
fn the_cache_keeps_a_partner_without_its_clients_and_still_knows_what_it_lists() {
    let partners = PartnerClients::default();
    let mut event = Event::Apply(partner("p", &["a", "b"]));
    partners.observe(&mut event);
    let Event::Apply(cached) = event else { panic!() };
    let kept = cached.status.as_ref().unwrap();
    assert!(kept.clients.is_empty(), "the list is left out");
    assert_eq!(kept.client_count, 2, "the counts stay");
    assert!(partners.lists(&view(&cached), &partner_clients(&["a", "b"])));
    assert!(!partners.lists(&view(&cached), &partner_clients(&["a"])), "a client fewer");
    let mut more_people = partner_clients(&["a", "b"]);
    more_people[1].subjects = 3;
    assert!(!partners.lists(&view(&cached), &more_people), "a count changed");

    let never_seen = partner("q", &["a"]);
    assert!(
        partners.lists(&view(&never_seen), &partner_clients(&["a"])),
        "a partner never seen: its own list"
    );
    partners.observe(&mut Event::Delete(cached.clone()));
    assert!(
        !partners.lists(&view(&cached), &partner_clients(&["a", "b"])),
        "a deleted partner is judged by what the cache keeps"
    );
}
