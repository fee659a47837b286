//! The ceiling: each level judged by it, whatever its source.

use super::*;

#[test]
fn escalation_is_denied_per_level() {
    let mut world = World::story();
    world.beta().spec.access_levels.extend([
        inline("secrets", vec![access_rule(&[""], &["secrets"], &["get"])]),
        inline("exec", vec![access_rule(&[""], &["pods/exec"], &["create"])]),
        from_role("deleter", "pod-deleter"),
        from_cluster_role("edit", "edit"),
        inline("everything", vec![access_rule(&["*"], &["*"], &["*"])]),
    ]);
    world
        .roles
        .get_mut(BETA)
        .unwrap()
        .insert("pod-deleter".into(), vec![rule(&[""], &["pods"], &["get", "delete"])]);
    world.cluster_roles.insert("edit".into(), vec![rule(&["apps"], &["deployments"], &["get", "create"])]);
    for level in ["secrets", "exec", "deleter", "edit", "everything"] {
        world.grants.push(grant(HOME, &format!("g-{level}"), &[BETA], level, vec![user(BOB)]));
    }
    world.beta().spec.access_key = Some(AccessKey { access_level: "deleter".into() });
    let plan = world.plan();

    for level in ["secrets", "exec", "deleter", "edit", "everything"] {
        assert_eq!(grant_reason(&plan, HOME, &format!("g-{level}")), Reason::EscalationDenied, "{level}");
        assert!(role_of(&plan, LINK_UID, level).is_none(), "{level}: no Role");
    }
    assert_eq!(
        grant_reason(&plan, HOME, "beta-support"),
        Reason::Granted,
        "the level within the ceiling still works"
    );
    assert_eq!(plan.bindings.len(), 1);
    assert_eq!(role_names(&plan), BTreeSet::from([names::level_role(LINK_UID, "support")]));
    assert!(plan.access_key.is_none(), "the key's level exceeds the ceiling");
    let verdict = &plan.links["techhelp"].verdict;
    assert_eq!(verdict.reason, Reason::EscalationDenied);
    assert_eq!(plan.active_link_uid.as_deref(), Some(LINK_UID), "the link is still the one in force");
    for atom in ["get secrets.core", "create pods/exec.core", "delete pods.core", "create deployments.apps"] {
        assert!(verdict.message.contains(atom), "{atom} in {}", verdict.message);
    }
    let grant_message = &plan.grant(HOME, "g-deleter").unwrap().verdict.message;
    assert!(
        grant_message.contains("delete pods.core") && !grant_message.contains("get pods.core"),
        "{grant_message}"
    );
}

#[test]
fn levels_from_each_source_are_judged_by_the_same_ceiling() {
    struct Case {
        what: &'static str,
        level: AccessLevel,
        /// The Role `r` of beta and the ClusterRole `c`.
        role: Vec<PolicyRule>,
        cluster_role: Vec<PolicyRule>,
        /// The reason of a grant of the level, and the rules of its Role when granted.
        reason: Reason,
        rules: Option<Vec<PolicyRule>>,
    }
    let case = |what, level, role, cluster_role, reason, rules| Case {
        what,
        level,
        role,
        cluster_role,
        reason,
        rules,
    };
    let cases = vec![
        case(
            "inline within",
            inline("x", vec![access_rule(&["apps"], &["deployments"], &["list"])]),
            vec![],
            vec![],
            Reason::Granted,
            Some(vec![rule(&["apps"], &["deployments"], &["list"])]),
        ),
        case(
            "inline beyond",
            inline("x", vec![access_rule(&[""], &["configmaps"], &["update"])]),
            vec![],
            vec![],
            Reason::EscalationDenied,
            None,
        ),
        case(
            "Role within",
            from_role("x", "r"),
            vec![rule(&[""], &["pods/log"], &["get"])],
            vec![],
            Reason::Granted,
            Some(vec![rule(&[""], &["pods/log"], &["get"])]),
        ),
        case(
            "Role beyond",
            from_role("x", "r"),
            vec![rule(&[""], &["pods"], &["get"]), rule(&[""], &["secrets"], &["list"])],
            vec![],
            Reason::EscalationDenied,
            None,
        ),
        case("Role missing", from_role("x", "absent"), vec![], vec![], Reason::RoleNotFound, None),
        case(
            "an empty Role is fine and grants nothing",
            from_role("x", "r"),
            vec![],
            vec![],
            Reason::Granted,
            Some(vec![]),
        ),
        case(
            "ClusterRole within",
            from_cluster_role("x", "c"),
            vec![],
            vec![rule(&["apps"], &["deployments/scale"], &["get"])],
            Reason::Granted,
            Some(vec![rule(&["apps"], &["deployments/scale"], &["get"])]),
        ),
        case(
            "ClusterRole beyond",
            from_cluster_role("x", "c"),
            vec![],
            vec![rule(&["apps"], &["deployments/scale"], &["update"])],
            Reason::EscalationDenied,
            None,
        ),
        case(
            "ClusterRole with a wildcard verb",
            from_cluster_role("x", "c"),
            vec![],
            vec![rule(&[""], &["pods"], &["*"])],
            Reason::EscalationDenied,
            None,
        ),
        case(
            "ClusterRole with a wildcard resource",
            from_cluster_role("x", "c"),
            vec![],
            vec![rule(&[""], &["*"], &["get"])],
            Reason::EscalationDenied,
            None,
        ),
        case(
            "ClusterRole missing",
            from_cluster_role("x", "absent"),
            vec![],
            vec![],
            Reason::RoleNotFound,
            None,
        ),
    ];
    for Case { what, level, role, cluster_role, reason, rules } in cases {
        let mut world = World::story();
        world.beta().spec.access_levels.push(level);
        world.roles.get_mut(BETA).unwrap().insert("r".into(), role);
        world.cluster_roles.insert("c".into(), cluster_role);
        world.grants.push(grant(HOME, "g-x", &[BETA], "x", vec![user(BOB)]));
        let plan = world.plan();
        assert_eq!(grant_reason(&plan, HOME, "g-x"), reason, "{what}");
        assert_eq!(
            grant_reason(&plan, HOME, "beta-support"),
            Reason::Granted,
            "{what}: the other levels still work"
        );
        let link_expected = if reason == Reason::Granted { Reason::Active } else { reason };
        assert_eq!(link_reason(&plan, "techhelp"), link_expected, "{what}");
        assert_eq!(role_of(&plan, LINK_UID, "x").map(|r| r.rules.clone().unwrap()), rules, "{what}");
        assert_eq!(binding_of(&plan, HOME, "g-x").is_some(), reason == Reason::Granted, "{what}");
    }
}

#[test]
fn a_ceiling_limited_to_names_covers_only_those_names() {
    let mut world = World::story();
    world.ceiling =
        Some(vec![named(rule(&[""], &["configmaps"], &["get"]), &["tickets"]), rule(&[""], &["pods"], READ)]);
    world.cluster_roles.insert("view".into(), vec![rule(&[""], &["pods"], READ)]);
    world.grants.push(grant(HOME, "g-tickets", &[BETA], "tickets", vec![user(BOB)]));
    world.grants.push(grant(HOME, "g-settings", &[BETA], "settings", vec![user(BOB)]));
    let plan = world.plan();
    assert_eq!(grant_reason(&plan, HOME, "g-tickets"), Reason::Granted, "get configmaps/tickets is within");
    assert_eq!(grant_reason(&plan, HOME, "g-settings"), Reason::EscalationDenied, "every configmap is not");
    assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::Granted);
}

#[test]
fn non_resource_rules_never_reach_a_role() {
    let mut world = World::story();
    let mut rules = view();
    rules.push(PolicyRule {
        non_resource_urls: Some(strings(&["/healthz"])),
        verbs: strings(&["get"]),
        ..Default::default()
    });
    world.cluster_roles.insert("view".into(), rules);
    let plan = world.plan();
    assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::Granted);
    assert_eq!(role_of(&plan, LINK_UID, "support").unwrap().rules, Some(view()));
}

#[test]
fn without_a_ceiling_nothing_is_granted() {
    let mut world = World::story();
    world.ceiling = None;
    world.grants.push(grant(HOME, "g-settings", &[BETA], "settings", vec![user(BOB)]));
    world.grants.push(grant(HOME, "g-tickets", &[BETA], "tickets", vec![user(BOB)]));
    let plan = world.plan();
    assert!(nothing_granted(&plan));
    for g in ["beta-support", "g-settings", "g-tickets"] {
        assert_eq!(grant_reason(&plan, HOME, g), Reason::CeilingNotFound, "{g}");
    }
    assert_eq!(link_reason(&plan, "techhelp"), Reason::CeilingNotFound);
    assert!(
        plan.links["techhelp"]
            .grants
            .iter()
            .all(|g| !g.granted && g.reason.as_deref() == Some("CeilingNotFound"))
    );

    world.ceiling = Some(vec![]);
    let plan = world.plan();
    assert!(nothing_granted(&plan), "an empty ceiling covers nothing");
    assert_eq!(link_reason(&plan, "techhelp"), Reason::EscalationDenied);
}
