//! The link's limit on grants: the oldest admitted up to `maxGrants`, the rest refused.

use super::*;

/// The story (`beta-support`, created first) with four more grants of the partner, created
/// `g2`, `g3`, `g4`, then `g1` (names out of age order on purpose), and `limit` on the link.
fn crowded(limit: Option<i32>) -> World {
    let mut world = World::story();
    world.beta().spec.max_grants = limit;
    for (name, at) in [
        ("g4", "2026-01-05T00:00:00Z"),
        ("g3", "2026-01-04T00:00:00Z"),
        ("g2", "2026-01-03T00:00:00Z"),
        ("g1", FEB),
    ] {
        world.grants.push(created(grant(HOME, name, &[BETA], "support", vec![user(BOB)]), at));
    }
    world
}

fn reasons(plan: &ClientPlan) -> BTreeMap<String, Reason> {
    plan.grants.iter().map(|g| (g.grant_name.clone(), g.verdict.reason)).collect()
}

#[test]
fn a_link_admits_the_oldest_grants_up_to_its_limit() {
    let plan = crowded(Some(3)).plan();
    let expected = BTreeMap::from([
        ("beta-support".to_string(), Reason::Granted),
        ("g2".into(), Reason::Granted),
        ("g3".into(), Reason::Granted),
        ("g4".into(), Reason::GrantLimitReached),
        ("g1".into(), Reason::GrantLimitReached),
    ]);
    assert_eq!(reasons(&plan), expected, "oldest first by creation, whatever the order handed over");
    let bound: BTreeSet<String> =
        plan.bindings.iter().filter_map(|b| b.labels().get(names::ACCESS_GRANT).cloned()).collect();
    assert_eq!(
        bound,
        BTreeSet::from(["beta-support".to_string(), "g2".into(), "g3".into()]),
        "no binding beyond the limit"
    );
    let refused = plan.grant(HOME, "g1").unwrap();
    assert_eq!((refused.role_binding.as_ref(), refused.ends_at), (None, None));
    assert!(refused.verdict.message.contains("at most 3 grants"), "{}", refused.verdict.message);
    let link = &plan.links["techhelp"];
    assert_eq!(
        (link.verdict.reason, link.over_limit),
        (Reason::Active, 2),
        "the link works, and says how many it refused"
    );
    let summary = link.grants.iter().find(|s| s.grant.ends_with("/g4")).unwrap();
    assert_eq!((summary.granted, summary.reason.as_deref()), (false, Some("GrantLimitReached")));
    assert!(plan.access_key.is_some(), "the access key is the link's own, not a grant: never held back");

    let mut shuffled = crowded(Some(3));
    shuffled.grants.reverse();
    assert_eq!(reasons(&shuffled.plan()), expected, "deterministic");
}

#[test]
fn only_grants_that_would_be_in_force_count_against_the_limit() {
    let mut world = crowded(Some(2));
    // The oldest grants: one naming a foreign subject, one of a level the link lacks, another
    // partner's. None takes a place.
    world.grants.push(created(
        grant(HOME, "foreign", &[BETA], "support", vec![user("eve@elsewhere.example")]),
        "2025-01-01T00:00:00Z",
    ));
    world
        .grants
        .push(created(grant(HOME, "no-level", &[BETA], "nope", vec![user(BOB)]), "2025-01-01T00:00:00Z"));
    world.partners.push(partner("other", OTHER_HOME));
    world.grants.push(created(
        grant(OTHER_HOME, "theirs", &[BETA], "support", vec![user("x@other.example")]),
        "2025-01-01T00:00:00Z",
    ));
    let reasons = reasons(&world.plan());
    assert_eq!(reasons["foreign"], Reason::SubjectNotAllowed);
    assert_eq!(reasons["no-level"], Reason::LevelNotFound);
    assert_eq!(reasons["theirs"], Reason::LinkNotFound);
    assert_eq!(
        (reasons["beta-support"], reasons["g2"], reasons["g3"]),
        (Reason::Granted, Reason::Granted, Reason::GrantLimitReached)
    );
}

#[test]
fn grants_created_at_the_same_instant_are_admitted_by_name() {
    let mut world = crowded(Some(1));
    for g in &mut world.grants {
        g.metadata.creation_timestamp = Some(Time(t(JAN)));
    }
    let reasons = reasons(&world.plan());
    assert_eq!(reasons["beta-support"], Reason::Granted);
    assert!(["g1", "g2", "g3", "g4"].iter().all(|g| reasons[*g] == Reason::GrantLimitReached), "{reasons:?}");
}

#[test]
fn the_default_limit_admits_everyday_numbers_and_zero_admits_none() {
    assert!(reasons(&crowded(None).plan()).values().all(|r| *r == Reason::Granted));
    assert_eq!(crowded(None).beta().spec.grant_limit(), crate::api::DEFAULT_MAX_GRANTS as usize);
    let none = crowded(Some(0)).plan();
    assert!(reasons(&none).values().all(|r| *r == Reason::GrantLimitReached));
    assert!(none.bindings.is_empty() && none.access_key.is_some());
    assert_eq!(none.links["techhelp"].over_limit, 5);
}

#[test]
fn a_grant_judged_with_the_older_ones_gets_the_verdict_it_gets_among_all() {
    for limit in [None, Some(0), Some(1), Some(3), Some(5)] {
        let world = crowded(limit);
        let among_all = world.plan();
        let naming: Vec<Arc<AccessGrant>> = world.grants.iter().cloned().map(Arc::new).collect();
        let smallest = smallest_grant_limit(&world.links);
        for grant in &naming {
            let judged = judged_with(grant, &naming, smallest);
            let alone =
                World { grants: judged.iter().map(|g| (**g).clone()).collect(), ..world.clone() }.plan();
            let name = grant.name_any();
            assert_eq!(alone.grant(HOME, &name), among_all.grant(HOME, &name), "{name} with limit {limit:?}");
        }
    }
}

#[test]
fn the_link_lists_a_bounded_number_of_grants_the_refused_first_and_counts_the_rest() {
    let mut world = World::story();
    world.beta().spec.max_grants = Some(55);
    for n in 0..60 {
        let at = format!("2026-01-05T00:{n:02}:00Z");
        world
            .grants
            .push(created(grant(HOME, &format!("g{n:02}"), &[BETA], "support", vec![user(BOB)]), &at));
    }
    let plan = world.plan();
    let link = &plan.links["techhelp"];
    let listed = |granted: bool| link.grants.iter().filter(|g| g.granted == granted).count();
    assert_eq!(link.grants.len(), crate::desired::client::GRANTS_LISTED_AT_MOST);
    assert_eq!(
        (link.grant_count, link.over_limit, link.grants_unlisted),
        (55, 6, 11),
        "counted, listed or not"
    );
    assert_eq!((listed(false), listed(true)), (6, 44), "every refused one is listed");
    let refused: Vec<String> = (54..60).map(|n| format!("{HOME}/g{n}")).collect();
    assert_eq!(link.grants[..6].iter().map(|g| g.grant.clone()).collect::<Vec<_>>(), refused);
    assert!(link.grants[6..].windows(2).all(|w| w[0].grant < w[1].grant), "then those in force, by name");

    let few = World::story().plan();
    assert_eq!((few.links["techhelp"].grants.len(), few.links["techhelp"].grants_unlisted), (1, 0));
}
