//! Names, labels and owners of what is planned.

use super::*;

fn all_object_names(plan: &ClientPlan) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = role_names(plan);
    names.extend(plan.bindings.iter().map(|b| b.metadata.name.clone().unwrap()));
    if let Some(key) = &plan.access_key {
        names.insert(key.service_account.metadata.name.clone().unwrap());
        names.insert(key.binding.metadata.name.clone().unwrap());
        names.insert(key.secret_name.clone());
    }
    names
}

#[test]
fn a_recreated_link_or_grant_gets_new_object_names() {
    let first = World::story().plan();
    assert_eq!(all_object_names(&World::story().plan()), all_object_names(&first), "names are stable");

    // Same link name, new UID: nothing of the old link's objects may be reused.
    let mut world = World::story();
    *world.beta() = with_uid(world.beta().clone(), "uid-link-beta-techhelp-reborn");
    let reborn = world.plan();
    assert_eq!(all_object_names(&first).len(), all_object_names(&reborn).len());
    assert!(
        all_object_names(&first).is_disjoint(&all_object_names(&reborn)),
        "{:?} vs {:?}",
        all_object_names(&first),
        all_object_names(&reborn)
    );
    assert_eq!(owner_uids(&reborn), BTreeSet::from(["uid-link-beta-techhelp-reborn".to_string()]));

    // Same grant name, new UID: a new binding, the same Role.
    let mut world = World::story();
    *world.grant_mut("beta-support") = with_uid(world.grant_mut("beta-support").clone(), "uid-grant-reborn");
    let regranted = world.plan();
    assert_ne!(regranted.bindings[0].metadata.name, first.bindings[0].metadata.name);
    assert_eq!(regranted.bindings[0].metadata.labels.as_ref().unwrap()[names::GRANT_UID], "uid-grant-reborn");
    assert_eq!(role_names(&regranted), role_names(&first));

    // Same grant name in another partner's home: different UIDs, different bindings.
    let mut world = World::story();
    let mut twin = world.grants[0].clone();
    twin.metadata.uid = Some("uid-twin".into());
    twin.metadata.namespace = Some("partner-techhelp-2".into());
    world.grants.push(twin);
    let plan = world.plan();
    assert_eq!(plan.bindings.len(), 1, "the twin is not the partner's");
    assert_eq!(grant_reason(&plan, "partner-techhelp-2", "beta-support"), Reason::LinkNotFound);
}

#[test]
fn every_object_carries_the_labels_and_owner_that_find_it() {
    let mut world = World::story();
    world.grants.push(grant(HOME, "beta-settings", &[BETA], "settings", vec![group(ANALYSTS)]));
    let plan = world.plan();
    let owner = link_owner_ref("techhelp", LINK_UID);
    let key = plan.access_key.as_ref().unwrap();
    let metas = plan
        .roles
        .iter()
        .map(|r| &r.metadata)
        .chain(plan.bindings.iter().map(|b| &b.metadata))
        .chain([&key.service_account.metadata, &key.binding.metadata]);
    for meta in metas {
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels["app.kubernetes.io/managed-by"], "liaison", "{:?}", meta.name);
        assert_eq!(labels[names::OWNER_UID], LINK_UID, "{:?}", meta.name);
        assert_eq!(labels[names::PARTNER], "techhelp", "{:?}", meta.name);
        assert_eq!(labels[names::CLIENT_LINK], "techhelp", "{:?}", meta.name);
        let name = meta.name.as_deref().unwrap();
        assert!(name.len() <= 63 && name.starts_with("liaison-"), "{name}");
        if meta == &key.service_account.metadata {
            // Outside the client namespace, so that it is no member of its ServiceAccounts'
            // group; owned by the Partner (owner references do not cross namespaces).
            assert_eq!(meta.namespace.as_deref(), Some(HOME));
            assert_eq!(meta.owner_references.as_ref().unwrap()[0].kind, "Partner");
            assert_eq!(labels[names::CLIENT_NAMESPACE], BETA);
            continue;
        }
        assert_eq!(meta.owner_references, Some(vec![owner.clone()]), "{:?}", meta.name);
        assert_eq!(meta.namespace.as_deref(), Some(BETA), "{:?}", meta.name);
    }
    for binding in &plan.bindings {
        let labels = binding.metadata.labels.as_ref().unwrap();
        let grant = labels[names::ACCESS_GRANT].clone();
        assert_eq!(labels[names::GRANT_UID], format!("uid-grant-{HOME}-{grant}"));
        assert_eq!(labels[names::GRANT_NAMESPACE], HOME);
        assert_eq!(labels[names::COMPONENT], "grant-binding");
    }
    assert_eq!(key.secret_labels["app.kubernetes.io/managed-by"], "liaison");
    assert_eq!(key.secret_labels[names::OWNER_UID], LINK_UID);
    assert_eq!(key.secret_labels[names::CLIENT_NAMESPACE], BETA);
}
