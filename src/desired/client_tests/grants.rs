//! Grants: refusals, foreign subjects, the link's list of grants.

use super::*;

#[test]
fn grant_refusals() {
    type Change = fn(&mut AccessGrant);
    let cases: Vec<(&str, Change, Reason)> = vec![
        ("unknown level", |g| g.spec.access_level = "admin".into(), Reason::LevelNotFound),
        ("a foreign user", |g| g.spec.subjects.push(user("eve@evil.example")), Reason::SubjectNotAllowed),
        (
            "a user who is only the suffix",
            |g| g.spec.subjects.push(user("@techhelp.example")),
            Reason::SubjectNotAllowed,
        ),
        (
            "a user with the suffix inside",
            |g| g.spec.subjects.push(user("eve@techhelp.example.evil")),
            Reason::SubjectNotAllowed,
        ),
        ("an unlisted group", |g| g.spec.subjects.push(group("techhelp:admins")), Reason::SubjectNotAllowed),
        ("system:masters", |g| g.spec.subjects.push(group("system:masters")), Reason::SubjectNotAllowed),
        (
            "system:authenticated",
            |g| g.spec.subjects.push(group("system:authenticated")),
            Reason::SubjectNotAllowed,
        ),
        ("a system user", |g| g.spec.subjects.push(user("system:admin")), Reason::SubjectNotAllowed),
        (
            "a system user with the suffix",
            |g| g.spec.subjects.push(user("system:x@techhelp.example")),
            Reason::SubjectNotAllowed,
        ),
        (
            "a system service account name",
            |g| g.spec.subjects.push(sa("system:serviceaccount:kube-system:default")),
            Reason::SubjectNotAllowed,
        ),
        (
            "an invalid service account name",
            |g| g.spec.subjects.push(sa("Ticket_Bot")),
            Reason::SubjectNotAllowed,
        ),
        (
            "a service account of another namespace",
            |g| {
                g.spec.subjects.push(Subject {
                    kind: SubjectKind::ServiceAccount,
                    name: "default".into(),
                    namespace: Some("kube-system".into()),
                })
            },
            Reason::SubjectNotAllowed,
        ),
        (
            "a service account naming the home namespace explicitly",
            |g| {
                g.spec.subjects.push(Subject {
                    kind: SubjectKind::ServiceAccount,
                    name: "bot".into(),
                    namespace: Some(HOME.into()),
                })
            },
            Reason::SubjectNotAllowed,
        ),
        (
            "a namespaced user",
            |g| {
                g.spec.subjects.push(Subject {
                    kind: SubjectKind::User,
                    name: BOB.into(),
                    namespace: Some(BETA.into()),
                })
            },
            Reason::SubjectNotAllowed,
        ),
        ("no subjects", |g| g.spec.subjects.clear(), Reason::NoSubjects),
        ("expired at the instant", |g| g.spec.expires_at = Some(Expiry::from(now())), Reason::Expired),
        ("being deleted", |g| g.metadata.deletion_timestamp = Some(Time(now())), Reason::Deleting),
        (
            "in another partner's home",
            |g| g.metadata.namespace = Some(OTHER_HOME.into()),
            Reason::LinkNotFound,
        ),
        (
            "in a namespace that is nobody's home",
            |g| g.metadata.namespace = Some(GAMMA.into()),
            Reason::LinkNotFound,
        ),
        (
            "in the client namespace itself",
            |g| g.metadata.namespace = Some(BETA.into()),
            Reason::LinkNotFound,
        ),
    ];
    for (what, change, reason) in cases {
        let mut world = World::story_with_other();
        // A control grant that must stay bound whatever happens to the one under test.
        world.grants.push(grant(HOME, "control", &[BETA], "support", vec![user("carl@techhelp.example")]));
        let mut refused = grant(HOME, "refused", &[BETA], "settings", vec![user(BOB)]);
        change(&mut refused);
        let refused_ns = refused.metadata.namespace.clone().unwrap();
        world.grants.push(refused);
        let plan = world.plan();
        let verdict = &plan.grant(&refused_ns, "refused").unwrap().verdict;
        assert_eq!(verdict.reason, reason, "{what}: {}", verdict.message);
        assert!(binding_of(&plan, &refused_ns, "refused").is_none(), "{what}: no binding");
        assert!(
            plan.bindings
                .iter()
                .all(|b| b.metadata.labels.as_ref().unwrap()[names::ACCESS_GRANT] != "refused"),
            "{what}: no binding"
        );
        assert!(role_of(&plan, LINK_UID, "settings").is_none(), "{what}: its level is not in use");
        assert_eq!(grant_reason(&plan, HOME, "control"), Reason::Granted, "{what}: the others are untouched");
        assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::Granted, "{what}");
        assert_eq!(link_reason(&plan, "techhelp"), Reason::Active, "{what}: the link itself is fine");
        let summary =
            plan.links["techhelp"].grants.iter().find(|s| s.grant == format!("{refused_ns}/refused"));
        if refused_ns != HOME {
            // Not the linked partner's grant: it stays out of the client's view.
            assert!(summary.is_none(), "{what}: {summary:?}");
            continue;
        }
        let summary = summary.unwrap();
        assert!(!summary.granted, "{what}");
        assert_eq!(summary.reason.as_deref(), Some(reason.as_str()), "{what}");
    }
}

#[test]
fn a_link_that_an_older_one_outranks_knows_it_without_planning() {
    let mut world = World::story();
    world
        .links
        .push(created(link(BETA, "newcomer", "other", vec![inline("support", settings_rules())]), FEB));
    let [winner, newcomer] = [&world.links[0], &world.links[1]];
    let verdict = outranked(newcomer, &world.links).expect("the younger link is outranked");
    assert_eq!(verdict, world.plan().links["newcomer"].verdict, "the same verdict as the namespace's plan");
    assert_eq!(outranked(winner, &world.links), None, "the oldest link plans");
    world.links[0].metadata.deletion_timestamp = Some(Time(now()));
    assert_eq!(outranked(&world.links[1], &world.links), None, "a deleted winner no longer outranks");
}

#[test]
fn one_foreign_subject_refuses_the_whole_grant_and_is_named() {
    let mut world = World::story();
    world.grant_mut("beta-support").spec.subjects.extend([user("eve@evil.example"), group("system:masters")]);
    let plan = world.plan();
    let verdict = &plan.grant(HOME, "beta-support").unwrap().verdict;
    assert_eq!(verdict.reason, Reason::SubjectNotAllowed);
    assert!(
        verdict.message.contains("eve@evil.example") && verdict.message.contains("system:masters"),
        "{}",
        verdict.message
    );
    assert!(!verdict.message.contains(BOB), "only the refused ones are named: {}", verdict.message);
    assert!(plan.bindings.is_empty(), "bob is not bound either: fail closed");
}

#[test]
fn the_partner_in_force_judges_identities_with_its_own_list() {
    let mut world = World::story();
    world.partner_mut("techhelp").spec.identities = Identities {
        user_suffixes: strings(&["@techhelp.example", "@th-contractors.example"]),
        groups: strings(&[ANALYSTS, "techhelp:oncall"]),
    };
    world.grant_mut("beta-support").spec.subjects =
        vec![user("dan@th-contractors.example"), group("techhelp:oncall"), user(BOB), group(ANALYSTS)];
    let plan = world.plan();
    assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::Granted);
    assert_eq!(
        binding_of(&plan, HOME, "beta-support").unwrap().subjects,
        Some(vec![
            rbac_user("dan@th-contractors.example"),
            rbac_group("techhelp:oncall"),
            rbac_user(BOB),
            rbac_group(ANALYSTS)
        ])
    );
    // A partner that lists a system group still cannot grant it (the schema refuses it too).
    world.partner_mut("techhelp").spec.identities.groups.push("system:masters".into());
    world.grant_mut("beta-support").spec.subjects = vec![group("system:masters")];
    assert_eq!(grant_reason(&world.plan(), HOME, "beta-support"), Reason::SubjectNotAllowed);
}

#[test]
fn a_grant_of_the_partner_that_lost_the_namespace_is_link_not_ready() {
    let plan = contested().plan();
    let verdict = &plan.grant(OTHER_HOME, "beta-help").unwrap().verdict;
    assert_eq!(verdict.reason, Reason::LinkNotReady);
    assert!(verdict.message.contains("ClientLink beta/other"), "{}", verdict.message);
}

#[test]
fn without_a_live_link_every_grant_is_link_not_found() {
    type Change = fn(&mut World);
    let cases: Vec<(&str, Change)> = vec![
        ("no link at all", |w| w.links.clear()),
        ("the only link is being deleted", |w| *w.beta() = deleting(w.beta().clone())),
    ];
    for (what, change) in cases {
        let mut world = World::story();
        world.grants.push(grant(OTHER_HOME, "stray", &[BETA], "support", vec![user(BOB)]));
        change(&mut world);
        let plan = world.plan();
        assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::LinkNotFound, "{what}");
        assert_eq!(grant_reason(&plan, OTHER_HOME, "stray"), Reason::LinkNotFound, "{what}");
        assert!(nothing_granted(&plan), "{what}");
        assert_eq!(plan.active_link_uid, None, "{what}");
        assert_eq!(plan.wake_at, None, "{what}");
    }
}

#[test]
fn the_link_status_lists_each_grant_that_names_it() {
    let mut world = World::story();
    world.grants.push(grant(HOME, "a-nobody", &[BETA], "support", vec![]));
    world.grants.push(grant(
        HOME,
        "z-tickets",
        &[BETA],
        "tickets",
        vec![user(BOB), user("carl@techhelp.example")],
    ));
    let plan = world.plan();
    let summary: Vec<(String, String, i32, bool, Option<String>)> = plan.links["techhelp"]
        .grants
        .iter()
        .map(|g| (g.grant.clone(), g.access_level.clone(), g.subjects, g.granted, g.reason.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (format!("{HOME}/a-nobody"), "support".into(), 0, false, Some("NoSubjects".into())),
            (format!("{HOME}/beta-support"), "support".into(), 3, true, None),
            (format!("{HOME}/z-tickets"), "tickets".into(), 2, true, None),
        ]
    );
}
