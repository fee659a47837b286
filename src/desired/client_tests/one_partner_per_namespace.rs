//! One partner per namespace: the oldest link holds it.

use super::*;

#[test]
fn the_oldest_link_holds_the_namespace() {
    let plan = contested().plan();
    assert_eq!(link_reason(&plan, "techhelp"), Reason::Active);
    assert_eq!(link_reason(&plan, "other"), Reason::Conflict);
    assert!(
        plan.links["other"].verdict.message.contains("techhelp"),
        "{}",
        plan.links["other"].verdict.message
    );
    assert_eq!(plan.active_link_uid.as_deref(), Some(LINK_UID));
    assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::Granted);
    assert_eq!(
        grant_reason(&plan, OTHER_HOME, "beta-help"),
        Reason::LinkNotReady,
        "the loser's partner grants nothing"
    );
    assert_eq!(owner_uids(&plan), BTreeSet::from([LINK_UID.to_string()]), "every object is the winner's");
    assert_eq!(
        plan.access_key.as_ref().unwrap().binding.metadata.owner_references,
        Some(vec![link_owner_ref("techhelp", LINK_UID)])
    );
    assert_eq!(plan.partner_home.as_deref(), Some(HOME));

    // Make the rival older: it wins, and TechHelp's access is gone entirely.
    let mut world = contested();
    *world.beta() = created(world.beta().clone(), "2026-03-01T00:00:00Z");
    let plan = world.plan();
    assert_eq!(link_reason(&plan, "other"), Reason::Active);
    assert_eq!(link_reason(&plan, "techhelp"), Reason::Conflict);
    assert_eq!(grant_reason(&plan, OTHER_HOME, "beta-help"), Reason::Granted);
    assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::LinkNotReady);
    assert_eq!(owner_uids(&plan), BTreeSet::from(["uid-link-beta-other".to_string()]));
    assert_eq!(plan.partner_home.as_deref(), Some(OTHER_HOME));
    assert_eq!(plan.links["techhelp"].access_key_secret, None);
    assert!(
        plan.bindings.iter().all(|b| b.subjects.as_ref().unwrap() == &vec![rbac_user("carol@other.example")])
    );
}

#[test]
fn a_tie_in_age_is_broken_by_name() {
    let mut world = contested();
    let rival = world.link_mut(BETA, "other");
    *rival = created(rival.clone(), JAN);
    let plan = world.plan();
    // "other" < "techhelp"
    assert_eq!(link_reason(&plan, "other"), Reason::Active);
    assert_eq!(link_reason(&plan, "techhelp"), Reason::Conflict);
    assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::LinkNotReady);
    assert_eq!(owner_uids(&plan), BTreeSet::from(["uid-link-beta-other".to_string()]));
}

#[test]
fn a_deleting_link_does_not_hold_the_namespace() {
    let mut world = contested();
    *world.beta() = deleting(world.beta().clone());
    let plan = world.plan();
    assert_eq!(link_reason(&plan, "techhelp"), Reason::Deleting);
    assert_eq!(link_reason(&plan, "other"), Reason::Active);
    assert!(!plan.grant(HOME, "beta-support").unwrap().verdict.is_ok());
    assert_eq!(grant_reason(&plan, OTHER_HOME, "beta-help"), Reason::Granted);
    assert_eq!(owner_uids(&plan), BTreeSet::from(["uid-link-beta-other".to_string()]));
}

#[test]
fn losers_grant_nothing_whatever_they_declare() {
    // Three links to the same partner: the oldest binds each grant once, the others nothing.
    let mut world = World::story();
    for (name, at) in [("b-second", FEB), ("a-third", "2026-03-01T00:00:00Z")] {
        let mut l = created(link(BETA, name, "techhelp", vec![inline("support", settings_rules())]), at);
        l.spec.access_key = Some(AccessKey { access_level: "support".into() });
        world.links.push(l);
    }
    let plan = world.plan();
    assert_eq!(link_reason(&plan, "techhelp"), Reason::Active);
    assert_eq!(link_reason(&plan, "b-second"), Reason::Conflict);
    assert_eq!(link_reason(&plan, "a-third"), Reason::Conflict);
    assert_eq!(plan.bindings.len(), 1);
    assert_eq!(owner_uids(&plan), BTreeSet::from([LINK_UID.to_string()]));
    for loser in ["b-second", "a-third"] {
        let verdict = &plan.links[loser];
        assert!(
            verdict.grants.is_empty() && verdict.access_key_secret.is_none() && verdict.ends_at.is_none(),
            "{loser}"
        );
    }
}

#[test]
fn who_holds_the_namespace_does_not_depend_on_list_order() {
    let world = contested();
    let mut reversed = world.clone();
    reversed.links.reverse();
    reversed.grants.reverse();
    let (a, b) = (world.plan(), reversed.plan());
    assert_eq!(a.links, b.links);
    assert_eq!(a.active_link_uid, b.active_link_uid);
    assert_eq!(role_names(&a), role_names(&b));
    let binding_names =
        |p: &ClientPlan| p.bindings.iter().map(|b| b.metadata.name.clone()).collect::<BTreeSet<_>>();
    assert_eq!(binding_names(&a), binding_names(&b));
}

#[test]
fn any_older_live_link_is_proof_that_a_link_is_outranked() {
    let world = contested();
    let link = |name: &str| world.links.iter().find(|l| l.name_any() == name).unwrap().clone();
    let (techhelp, other) = (link("techhelp"), link("other"));
    let verdict = outranked_by(&other, &techhelp).expect("the older link outranks the younger");
    assert_eq!(Some(verdict), outranked(&other, &world.links), "the same verdict as from every link");
    assert_eq!(outranked_by(&techhelp, &other), None, "a younger link outranks nobody");
    assert_eq!(outranked_by(&techhelp, &techhelp), None, "nor does a link itself");
    assert_eq!(outranked_by(&other, &deleting(techhelp.clone())), None, "nor one being deleted");
    assert_eq!(outranked_by(&deleting(other.clone()), &techhelp), None, "a link being deleted is revoked");
    let same_age = created(other.clone(), JAN);
    assert_eq!(
        outranked_by(&techhelp, &same_age).map(|v| v.reason),
        Some(Reason::Conflict),
        "as old, first by name"
    );
}
