use kube::runtime::watcher::Event;
use serde_json::json;

use super::*;

/// How a reconcile holds a cached object.
fn view<K: Clone>(object: &K) -> crate::cache::views::Cached<K> {
    crate::cache::views::Cached(std::sync::Arc::new(object.clone()))
}

fn grant(name: &str, clients: &[(&str, bool)]) -> AccessGrant {
    let spec = serde_json::from_value(json!({"clients": ["c"], "accessLevel": "l", "subjects": []})).unwrap();
    let mut grant = AccessGrant::new(name, spec);
    grant.metadata.namespace = Some("home".into());
    grant.status = Some(status(clients));
    grant
}

fn status(clients: &[(&str, bool)]) -> AccessGrantStatus {
    let entries = clients.iter().map(
        |(ns, granted)| json!({"namespace": ns, "granted": granted, "reason": "Granted", "message": "m"}),
    );
    let ready = json!({"type": "Ready", "status": "True", "reason": "Granted", "message": "granted in every client",
        "lastTransitionTime": "2026-12-02T00:00:00Z"});
    serde_json::from_value(
        json!({"clients": entries.collect::<Vec<_>>(), "conditions": [ready], "grantedClients": 1}),
    )
    .unwrap()
}

fn seen(statuses: &GrantStatuses, event: Event<AccessGrant>) -> Event<AccessGrant> {
    let mut event = event;
    statuses.observe(&mut event);
    event
}

#[test]
fn the_cache_keeps_a_grant_without_its_entries_and_still_knows_what_it_says() {
    let statuses = GrantStatuses::default();
    let Event::Apply(cached) = seen(&statuses, Event::Apply(grant("g", &[("a", true)]))) else { panic!() };
    let kept = cached.status.as_ref().unwrap();
    assert!(kept.clients.is_empty(), "the entries are left out");
    assert!(kept.conditions.is_empty(), "and the Ready condition");
    assert_eq!(kept.granted_clients, 1, "the counts stay");
    assert!(statuses.says(&view(&cached), &status(&[("a", true)])));
    assert!(!statuses.says(&view(&cached), &status(&[("a", false)])), "a verdict changed");
    assert!(!statuses.says(&view(&cached), &status(&[("a", true), ("b", true)])), "a client more");
    let mut reworded = status(&[("a", true)]);
    reworded.conditions[0].message = "granted everywhere".into();
    assert!(!statuses.says(&view(&cached), &reworded), "a message changed");
}

#[test]
fn the_ready_condition_comes_back_for_the_next_status_without_its_message_or_generation() {
    let statuses = GrantStatuses::default();
    let mut whole = grant("g", &[("a", true)]);
    let other = json!({"type": "Audited", "status": "True", "reason": "ByHand", "message": "kept", "lastTransitionTime": "2026-12-01T00:00:00Z"});
    let conditions = &mut whole.status.as_mut().unwrap().conditions;
    *conditions =
        [serde_json::from_value(other).unwrap()].into_iter().chain(conditions.iter().cloned()).collect();
    whole.status.as_mut().unwrap().conditions[1].observed_generation = Some(3);
    let Event::Apply(cached) = seen(&statuses, Event::Apply(whole.clone())) else { panic!() };
    assert_eq!(
        cached.status.as_ref().unwrap().conditions.len(),
        1,
        "a condition that is not Liaison's stays in the cache"
    );

    let previous = statuses.previous(&view(&cached));
    let mut expected = whole.status.clone().unwrap().conditions;
    expected[1].message = String::new();
    expected[1].observed_generation = None;
    assert_eq!(previous.conditions, expected);
    assert_eq!(previous.granted_clients, 1);

    let never_seen = grant("never", &[("a", true)]);
    assert_eq!(
        statuses.previous(&view(&never_seen)),
        never_seen.status.clone().unwrap(),
        "a grant never seen: its own status"
    );
}

#[test]
fn a_grant_never_seen_is_judged_by_its_own_status() {
    let statuses = GrantStatuses::default();
    let whole = grant("g", &[("a", true)]);
    assert!(statuses.says(&view(&whole), &status(&[("a", true)])));
    assert!(!statuses.says(&view(&whole), &status(&[("a", false)])));
}

#[test]
fn deletions_and_relists_forget_grants_that_are_gone() {
    let statuses = GrantStatuses::default();
    let (kept, deleted, vanished) =
        (grant("kept", &[("a", true)]), grant("deleted", &[("a", true)]), grant("vanished", &[("a", true)]));
    for g in [&kept, &deleted, &vanished] {
        seen(&statuses, Event::Apply(g.clone()));
    }
    seen(&statuses, Event::Delete(deleted.clone()));
    // Re-listed while `vanished` was deleted unseen.
    seen(&statuses, Event::Init);
    seen(&statuses, Event::InitApply(kept.clone()));
    seen(&statuses, Event::InitDone);
    let remembered = statuses.seen.read().0.len();
    assert_eq!(remembered, 1, "only the grant still listed is remembered");
    let mut other = status(&[("a", true)]);
    other.granted_clients = 0;
    // Forgotten grants are judged by their own (whole) status again.
    assert!(statuses.says(&view(&deleted), &status(&[("a", true)])));
    assert!(!statuses.says(&view(&vanished), &other));
}

#[test]
fn a_reason_liaison_does_not_write_comes_back_as_it_was() {
    let statuses = GrantStatuses::default();
    let mut edited = grant("g", &[("a", true)]);
    edited.status.as_mut().unwrap().conditions[0].reason = "EditedByHand".into();
    let Event::Apply(cached) = seen(&statuses, Event::Apply(edited)) else { panic!() };
    assert_eq!(statuses.previous(&view(&cached)).conditions[0].reason, "EditedByHand");
}

#[test]
fn a_grant_costs_the_table_forty_bytes() {
    assert!(std::mem::size_of::<Said>() <= 40, "{} bytes", std::mem::size_of::<Said>());
}
