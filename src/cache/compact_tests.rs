use std::collections::BTreeMap;

use futures::FutureExt;
use k8s_openapi::api::rbac::v1::{RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use super::*;

const LINK_UID: &str = "6c0f0a57-2b8e-4d4c-9d0e-1f7a3b5c9e21";
const GRANT_UID: &str = "0b4e7a62-9f3c-4c1d-8a2b-7e5f6d4c3b2a";
const OTHER_GRANT_UID: &str = "f3a1c2d4-5b6e-4f70-8192-a3b4c5d6e7f8";

fn owner(uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "liaison.dev/v1alpha1".into(),
        kind: "ClientLink".into(),
        name: "techhelp".into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A grant binding as Liaison plans it: every label of `GRANT_BINDING_LABELS`.
fn wanted(namespace: &str, name: &str, grant_uid: &str) -> RoleBinding {
    let labels = [
        (names::MANAGED_BY, names::MANAGER),
        (names::COMPONENT, "grant-binding"),
        (names::PARTNER, "techhelp"),
        (names::OWNER_UID, LINK_UID),
        (names::CLIENT_LINK, "techhelp"),
        (names::ACCESS_GRANT, "beta-support"),
        (names::GRANT_NAMESPACE, "partner-techhelp"),
        (names::GRANT_UID, grant_uid),
        (names::ACCESS_LEVEL, "support"),
    ];
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            annotations: Some(BTreeMap::from([(
                names::ACCESS_ENDS_AT.to_string(),
                "2026-12-31T00:00:00Z".to_string(),
            )])),
            owner_references: Some(vec![owner(LINK_UID)]),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "liaison-support-1a2b3c4d5e".into(),
        },
        subjects: Some(vec![
            Subject {
                kind: "User".into(),
                name: "bob@techhelp.example".into(),
                api_group: Some("rbac.authorization.k8s.io".into()),
                namespace: None,
            },
            Subject {
                kind: "ServiceAccount".into(),
                name: "ticket-bot".into(),
                api_group: None,
                namespace: Some("partner-techhelp".into()),
            },
        ]),
    }
}

/// The object as the API server hands it back.
fn live<K: Compact>(mut object: K, resource_version: &str) -> K {
    let meta = object.meta_mut();
    meta.resource_version = Some(resource_version.into());
    meta.uid = Some("11111111-2222-4333-8444-555555555555".into());
    object
}

fn cache_with<K: Compact + Clone>(objects: &[K]) -> CompactCache<K> {
    let cache = CompactCache::default();
    for object in objects {
        cache.apply(&watcher::Event::Apply(object.clone()));
    }
    cache
}

fn label(binding: &mut RoleBinding, key: &str, value: &str) {
    binding.metadata.labels.get_or_insert_default().insert(key.into(), value.into());
}

#[test]
fn a_binding_as_written_is_seen_to_match() {
    let desired = wanted("beta", "b", GRANT_UID);
    let cache = cache_with(&[live(desired.clone(), "7")]);
    let seen = cache.seen(&desired);
    assert_eq!(seen, Some(Comparison { matches: true, needs_recreate: false, version: Some("7".into()) }));
}

#[test]
fn what_others_add_is_not_compared() {
    let desired = wanted("beta", "b", GRANT_UID);
    let mut tenants = live(desired.clone(), "7");
    label(&mut tenants, "team", "blue");
    tenants.metadata.annotations.get_or_insert_default().insert("note".into(), "audited".into());
    tenants.metadata.owner_references.get_or_insert_default().push(OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "x".into(),
        uid: "99999999-2222-4333-8444-555555555555".into(),
        ..Default::default()
    });
    tenants.metadata.creation_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
    assert!(cache_with(&[tenants]).seen(&desired).is_some_and(|s| s.matches));
}

#[test]
fn every_change_to_what_liaison_set_is_seen() {
    let desired = wanted("beta", "b", GRANT_UID);
    type Edit = fn(&mut RoleBinding);
    let edits: [(&str, Edit); 9] = [
        ("a subject renamed", |b| b.subjects.as_mut().unwrap()[0].name = "mallory@techhelp.example".into()),
        ("a subject added", |b| {
            b.subjects.as_mut().unwrap().push(Subject {
                kind: "Group".into(),
                name: "x".into(),
                ..Default::default()
            })
        }),
        ("subjects removed", |b| b.subjects = None),
        ("a label of Liaison's changed", |b| label(b, names::ACCESS_LEVEL, "admin")),
        ("a label of Liaison's removed", |b| {
            b.metadata.labels.as_mut().unwrap().remove(names::PARTNER);
        }),
        ("the expiry annotation changed", |b| {
            b.metadata
                .annotations
                .as_mut()
                .unwrap()
                .insert(names::ACCESS_ENDS_AT.into(), "2030-01-01T00:00:00Z".into());
        }),
        ("the expiry annotation removed", |b| b.metadata.annotations = None),
        ("the owning link replaced", |b| {
            b.metadata.owner_references = Some(vec![owner("aaaaaaaa-2222-4333-8444-555555555555")])
        }),
        ("the owner reference removed", |b| b.metadata.owner_references = None),
    ];
    for (what, edit) in edits {
        let mut edited = live(desired.clone(), "8");
        edit(&mut edited);
        let seen = cache_with(&[edited]).seen(&desired).expect("cached");
        assert!(!seen.matches, "{what} went unnoticed");
        assert!(!seen.needs_recreate, "{what} can be put back in place");
    }
    let mut other_role = live(desired.clone(), "9");
    other_role.role_ref.name = "cluster-admin".into();
    let seen = cache_with(&[other_role]).seen(&desired).expect("cached");
    assert!(!seen.matches && seen.needs_recreate, "a roleRef cannot be changed in place");
}

#[test]
fn an_expiry_liaison_no_longer_wants_is_seen() {
    let mut desired = wanted("beta", "b", GRANT_UID);
    let before = live(desired.clone(), "7");
    desired.metadata.annotations = None;
    assert!(!cache_with(&[before]).seen(&desired).expect("cached").matches);
}

#[test]
fn deleted_and_never_seen_bindings_are_absent() {
    let desired = wanted("beta", "b", GRANT_UID);
    let cache = cache_with(&[live(desired.clone(), "7")]);
    assert!(cache.seen(&wanted("beta", "other", GRANT_UID)).is_none());
    assert!(cache.seen(&wanted("gamma", "b", GRANT_UID)).is_none());
    cache.apply(&watcher::Event::Delete(live(desired.clone(), "8")));
    assert!(cache.seen(&desired).is_none());
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.len(), 0);
}

#[test]
fn a_grants_namespaces_follow_its_bindings() {
    let (in_beta, in_gamma) =
        (live(wanted("beta", "b", GRANT_UID), "1"), live(wanted("gamma", "g", GRANT_UID), "2"));
    let cache =
        cache_with(&[in_beta.clone(), in_gamma.clone(), live(wanted("beta", "other", OTHER_GRANT_UID), "3")]);
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(cache.namespaces_of_grant(GRANT_UID)), ["beta", "gamma"]);
    assert_eq!(cache.namespaces_of_grant(OTHER_GRANT_UID), ["beta"]);
    assert_eq!(cache.len(), 3);

    cache.apply(&watcher::Event::Delete(in_beta));
    assert_eq!(cache.namespaces_of_grant(GRANT_UID), ["gamma"]);
    assert_eq!(cache.namespaces_of_grant(OTHER_GRANT_UID), ["beta"], "another grant's binding in beta stays");

    let mut relabelled = in_gamma;
    label(&mut relabelled, names::GRANT_UID, OTHER_GRANT_UID);
    cache.apply(&watcher::Event::Apply(relabelled));
    assert!(cache.namespaces_of_grant(GRANT_UID).is_empty());
    assert_eq!(sorted(cache.namespaces_of_grant(OTHER_GRANT_UID)), ["beta", "gamma"]);
}

#[test]
fn ownership_follows_liaisons_rules() {
    const THIRD_GRANT_UID: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
    let named = |grant: &str| names::grant_binding(LINK_UID, grant, "beta-support");
    let ours = live(wanted("beta", &named(GRANT_UID), GRANT_UID), "1");
    // A client admin removed Liaison's owner reference: the name Liaison derived still decides.
    let mut detached = live(wanted("beta", &named(OTHER_GRANT_UID), OTHER_GRANT_UID), "2");
    detached.metadata.owner_references = None;
    // Liaison's labels and owner on a name Liaison never derives: not Liaison's.
    let foreign_name = live(wanted("beta", "tenant-binding", GRANT_UID), "3");
    let mut going = live(wanted("beta", &named(THIRD_GRANT_UID), THIRD_GRANT_UID), "4");
    going.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
    let cache = cache_with(&[ours, detached, foreign_name, going]);

    let mut owned = cache.owned_in("beta");
    owned.sort();
    let mut expected = vec![named(GRANT_UID), named(OTHER_GRANT_UID), named(THIRD_GRANT_UID)];
    expected.sort();
    assert_eq!(
        owned, expected,
        "labels on another name make nothing Liaison's; a detached object stays Liaison's"
    );
    assert!(cache.owned_in("gamma").is_empty());

    let link_alive = BTreeSet::from([LINK_UID.to_string()]);
    assert!(cache.orphans(&link_alive).is_empty());
    let mut orphans = cache.orphans(&BTreeSet::new());
    orphans.sort();
    let mut expected =
        vec![("beta".to_string(), named(GRANT_UID)), ("beta".to_string(), named(OTHER_GRANT_UID))];
    expected.sort();
    assert_eq!(orphans, expected, "one already being deleted is left to finish");
}

#[test]
fn a_relist_replaces_what_was_cached_once_complete() {
    let (gone, new) = (wanted("beta", "gone", GRANT_UID), wanted("beta", "new", GRANT_UID));
    let cache = GrantBindings::default();
    assert!(cache.wait_until_ready().now_or_never().is_none(), "not ready before the first list");
    cache.apply(&watcher::Event::Init);
    cache.apply(&watcher::Event::InitApply(live(gone.clone(), "1")));
    cache.apply(&watcher::Event::InitDone);
    assert!(cache.wait_until_ready().now_or_never().is_some());
    assert!(cache.seen(&gone).is_some());

    // The watch broke; `gone` was deleted meanwhile; the re-list brings `new`.
    cache.apply(&watcher::Event::Init);
    cache.apply(&watcher::Event::InitApply(live(new.clone(), "2")));
    assert!(
        cache.seen(&gone).is_some() && cache.seen(&new).is_none(),
        "the old list serves until the new one is complete"
    );
    cache.apply(&watcher::Event::InitDone);
    assert!(cache.seen(&gone).is_none() && cache.seen(&new).is_some());
    assert!(cache.namespaces_of_grant(GRANT_UID) == ["beta"]);
}

#[test]
fn uids_are_kept_whole() {
    assert_ne!(Uid::of(LINK_UID), Uid::of(GRANT_UID));
    assert_eq!(u128::from_be_bytes(Uid::of(LINK_UID).0), 0x6c0f0a572b8e4d4c9d0e1f7a3b5c9e21);
    assert_eq!(Uid::of("uid-link-a"), Uid::of("uid-link-a"));
    assert_ne!(Uid::of("uid-link-a"), Uid::of("uid-link-b"));
}

/// A level Role as Liaison plans it: every label of `LEVEL_ROLE_LABELS`.
fn level_role(namespace: &str, name: &str) -> Role {
    let labels = [
        (names::MANAGED_BY, names::MANAGER),
        (names::COMPONENT, "level-role"),
        (names::PARTNER, "techhelp"),
        (names::OWNER_UID, LINK_UID),
        (names::CLIENT_LINK, "techhelp"),
        (names::ACCESS_LEVEL, "support"),
    ];
    let read = |resource: &str| PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec![resource.into()]),
        verbs: vec!["get".into(), "list".into()],
        ..Default::default()
    };
    Role {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            owner_references: Some(vec![owner(LINK_UID)]),
            ..Default::default()
        },
        rules: Some(vec![read("pods"), read("configmaps")]),
    }
}

#[test]
fn a_level_role_as_written_is_seen_to_match_whatever_others_add() {
    let desired = level_role("beta", "r");
    assert_eq!(
        cache_with(&[live(desired.clone(), "7")]).seen(&desired),
        Some(Comparison { matches: true, needs_recreate: false, version: Some("7".into()) })
    );
    let mut tenants = live(desired.clone(), "8");
    tenants.metadata.labels.as_mut().unwrap().insert("team".into(), "blue".into());
    tenants.metadata.annotations = Some(BTreeMap::from([("note".to_string(), "audited".to_string())]));
    assert!(cache_with(&[tenants]).seen(&desired).is_some_and(|s| s.matches));

    let mut no_rules = level_role("beta", "empty");
    no_rules.rules = Some(vec![]);
    let mut absent = live(no_rules.clone(), "9");
    absent.rules = None;
    assert!(
        cache_with(&[absent]).seen(&no_rules).is_some_and(|s| s.matches),
        "absent rules and no rules are the same Role"
    );
}

#[test]
fn every_change_to_a_level_role_is_seen_and_put_back_in_place() {
    let desired = level_role("beta", "r");
    type Edit = fn(&mut Role);
    let edits: [(&str, Edit); 8] = [
        ("a verb added", |r| r.rules.as_mut().unwrap()[0].verbs.push("delete".into())),
        ("a resource changed", |r| r.rules.as_mut().unwrap()[1].resources = Some(vec!["secrets".into()])),
        ("a rule added", |r| {
            r.rules.as_mut().unwrap().push(PolicyRule { verbs: vec!["*".into()], ..Default::default() })
        }),
        ("a resource name added", |r| r.rules.as_mut().unwrap()[0].resource_names = Some(vec!["x".into()])),
        ("the rules removed", |r| r.rules = None),
        ("a label of Liaison's changed", |r| {
            r.metadata.labels.as_mut().unwrap().insert(names::ACCESS_LEVEL.into(), "admin".into());
        }),
        ("a label of Liaison's removed", |r| {
            r.metadata.labels.as_mut().unwrap().remove(names::CLIENT_LINK);
        }),
        ("the owning link replaced", |r| {
            r.metadata.owner_references = Some(vec![owner("aaaaaaaa-2222-4333-8444-555555555555")])
        }),
    ];
    for (what, edit) in edits {
        let mut edited = live(desired.clone(), "8");
        edit(&mut edited);
        let seen = cache_with(&[edited]).seen(&desired).expect("cached");
        assert!(!seen.matches, "{what} went unnoticed");
        assert!(!seen.needs_recreate, "{what}: a Role is changed in place");
    }
}

#[test]
fn level_roles_are_owned_and_orphaned_by_liaisons_rules() {
    let ours_name = names::level_role(LINK_UID, "support");
    let ours = live(level_role("beta", &ours_name), "1");
    let foreign_name = live(level_role("beta", "tenant-role"), "2");
    let cache = cache_with(&[ours, foreign_name]);
    assert_eq!(cache.owned_in("beta"), std::slice::from_ref(&ours_name));
    assert!(cache.orphans(&BTreeSet::from([LINK_UID.to_string()])).is_empty());
    assert_eq!(cache.orphans(&BTreeSet::new()), [("beta".to_string(), ours_name)]);
    assert!(cache.namespaces_of_grant(GRANT_UID).is_empty(), "a Role serves no one grant");
}

#[test]
fn the_level_roles_a_revocation_empties_are_the_links_that_still_grant() {
    let (support, tickets) = (names::level_role(LINK_UID, "support"), names::level_role(LINK_UID, "tickets"));
    let mut emptied = live(level_role("beta", &tickets), "2");
    emptied.rules = Some(vec![]);
    let mut another_links = live(level_role("beta", "liaison-other-1a2b3c4d5e"), "3");
    another_links.metadata.owner_references = Some(vec![owner("aaaaaaaa-2222-4333-8444-555555555555")]);
    let cache = cache_with(&[
        live(level_role("beta", &support), "1"),
        emptied,
        another_links,
        live(level_role("gamma", "r"), "4"),
    ]);
    assert_eq!(cache.granting_of_link("beta", LINK_UID), [("beta".to_string(), support)]);
    assert!(cache.granting_of_link("delta", LINK_UID).is_empty());
}

#[test]
fn a_namespaces_names_behave_as_a_sorted_map() {
    use rand::{Rng, SeedableRng};
    let live = |content| Live {
        version: None,
        content,
        immutable: 0,
        grant: None,
        link_owner: None,
        deleting: false,
        grants_nothing: false,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut names, mut model) = (Names::default(), std::collections::BTreeMap::new());
    for step in 0..5_000u64 {
        let name = format!("n{}", rng.random_range(0..40));
        if rng.random_bool(0.6) {
            let before = names.insert(&name, live(step)).map(|l| l.content);
            assert_eq!(before, model.insert(name.clone(), step), "insert {name}");
        } else {
            assert_eq!(names.remove(&name).map(|l| l.content), model.remove(&name), "remove {name}");
        }
        assert_eq!(names.get(&name).map(|l| l.content), model.get(&name).copied());
        let listed: Vec<(&str, u64)> = names.iter().map(|(n, l)| (n, l.content)).collect();
        let expected: Vec<(&str, u64)> = model.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(listed, expected);
        assert_eq!(names.len(), model.len());
    }
}
