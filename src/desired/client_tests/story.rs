//! The story of DESIGN.md: what a granted level materializes.

use super::*;

#[test]
fn the_story_materializes_exactly_the_support_level_for_beta() {
    let plan = World::story().plan();
    let owner = link_owner_ref("techhelp", LINK_UID);

    assert_eq!(link_reason(&plan, "techhelp"), Reason::Active);
    assert_eq!(plan.active_link_uid.as_deref(), Some(LINK_UID));
    assert_eq!(plan.partner_home.as_deref(), Some(HOME));

    // One Role, for the only level in use (by the grant and by the key), holding view's rules.
    let role_name = names::level_role(LINK_UID, "support");
    assert_eq!(
        plan.roles,
        vec![Role {
            metadata: ObjectMeta {
                name: Some(role_name.clone()),
                namespace: Some(BETA.into()),
                labels: Some(labels(&[
                    ("app.kubernetes.io/managed-by", "liaison"),
                    (names::COMPONENT, "level-role"),
                    (names::PARTNER, "techhelp"),
                    (names::OWNER_UID, LINK_UID),
                    (names::CLIENT_LINK, "techhelp"),
                    (names::ACCESS_LEVEL, "support"),
                ])),
                owner_references: Some(vec![owner.clone()]),
                ..Default::default()
            },
            rules: Some(view()),
        }]
    );

    // One binding: bob, the analysts, and the ticket-bot of the home namespace.
    let binding_name = names::grant_binding(LINK_UID, GRANT_UID, "beta-support");
    assert_eq!(
        plan.bindings,
        vec![RoleBinding {
            metadata: ObjectMeta {
                name: Some(binding_name.clone()),
                namespace: Some(BETA.into()),
                labels: Some(labels(&[
                    ("app.kubernetes.io/managed-by", "liaison"),
                    (names::COMPONENT, "grant-binding"),
                    (names::PARTNER, "techhelp"),
                    (names::OWNER_UID, LINK_UID),
                    (names::CLIENT_LINK, "techhelp"),
                    (names::ACCESS_GRANT, "beta-support"),
                    (names::GRANT_NAMESPACE, HOME),
                    (names::GRANT_UID, GRANT_UID),
                    (names::ACCESS_LEVEL, "support"),
                ])),
                annotations: Some(labels(&[(names::ACCESS_ENDS_AT, "2026-12-31T00:00:00Z")])),
                owner_references: Some(vec![owner.clone()]),
                ..Default::default()
            },
            role_ref: role_ref_to(&role_name),
            subjects: Some(vec![rbac_user(BOB), rbac_group(ANALYSTS), rbac_sa("ticket-bot", HOME)]),
        }]
    );
    assert_eq!(
        plan.grants,
        vec![GrantPlan {
            grant_namespace: HOME.into(),
            grant_name: "beta-support".into(),
            verdict: Verdict::new(Reason::Granted, "bound to level support in beta"),
            role_binding: Some(binding_name),
            ends_at: Some(t("2026-12-31T00:00:00Z")),
        }]
    );

    // The access key: its binding here; its ServiceAccount (the Partner's, outside the client
    // namespace) and its Secret in the home namespace.
    let key = plan.access_key.as_ref().expect("the key's level is fine");
    let key_name = names::access_key(LINK_UID);
    let key_labels = labels(&[
        ("app.kubernetes.io/managed-by", "liaison"),
        (names::COMPONENT, "access-key"),
        (names::PARTNER, "techhelp"),
        (names::OWNER_UID, LINK_UID),
        (names::CLIENT_LINK, "techhelp"),
        (names::CLIENT_NAMESPACE, BETA),
    ]);
    let partner_owner = OwnerReference {
        kind: "Partner".into(),
        name: "techhelp".into(),
        uid: "uid-partner-techhelp".into(),
        ..owner.clone()
    };
    assert_eq!(
        key.service_account,
        ServiceAccount {
            metadata: ObjectMeta {
                name: Some(key_name.clone()),
                namespace: Some(HOME.into()),
                labels: Some(key_labels.clone()),
                owner_references: Some(vec![partner_owner]),
                ..Default::default()
            },
            automount_service_account_token: Some(false),
            ..Default::default()
        }
    );
    let mut key_binding_labels = key_labels.clone();
    key_binding_labels.insert(names::ACCESS_LEVEL.into(), "support".into());
    assert_eq!(
        key.binding,
        RoleBinding {
            metadata: ObjectMeta {
                name: Some(key_name.clone()),
                namespace: Some(BETA.into()),
                labels: Some(key_binding_labels.clone()),
                owner_references: Some(vec![owner]),
                ..Default::default()
            },
            role_ref: role_ref_to(&role_name),
            subjects: Some(vec![rbac_sa(&key_name, HOME)]),
        }
    );
    assert_eq!(key.secret_namespace, HOME);
    assert_eq!(key.secret_name, names::access_key_secret(BETA, LINK_UID));
    assert_eq!(key.secret_labels, key_binding_labels);
    assert_eq!(
        key.partner_owner,
        OwnerReference {
            api_version: "liaison.dev/v1alpha1".into(),
            kind: "Partner".into(),
            name: "techhelp".into(),
            uid: "uid-partner-techhelp".into(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    );

    // What the link's status shows.
    let link = &plan.links["techhelp"];
    assert_eq!(link.ends_at, Some(t("2027-06-30T00:00:00Z")));
    assert_eq!(link.access_key_secret, Some(format!("{HOME}/{}", key.secret_name)));
    assert_eq!(
        link.grants,
        vec![LinkGrantSummary {
            grant: format!("{HOME}/beta-support"),
            access_level: "support".into(),
            subjects: 3,
            granted: true,
            reason: None,
        }]
    );
    // The grant ends first; the plan wakes then.
    assert_eq!(plan.wake_at, Some(t("2026-12-31T00:00:00Z")));
}

#[test]
fn role_and_inline_levels_get_roles_of_exactly_their_rules() {
    let mut world = World::story();
    world.grants.push(grant(HOME, "beta-tickets", &[BETA], "tickets", vec![user(BOB)]));
    world.grants.push(grant(HOME, "beta-settings", &[BETA], "settings", vec![user(BOB)]));
    let mut with_names = access_rule(&[""], &["configmaps"], &["get"]);
    with_names.resource_names = strings(&["app-settings"]);
    world.beta().spec.access_levels[2] =
        inline("settings", vec![access_rule(&[""], &["pods"], READ), with_names]);
    let plan = world.plan();

    assert_eq!(role_names(&plan).len(), 3);
    assert_eq!(
        role_of(&plan, LINK_UID, "support").unwrap().rules,
        Some(view()),
        "a ClusterRole's rules, copied"
    );
    assert_eq!(
        role_of(&plan, LINK_UID, "tickets").unwrap().rules,
        Some(ticket_reader()),
        "a Role's rules, resourceNames kept"
    );
    assert_eq!(
        role_of(&plan, LINK_UID, "settings").unwrap().rules,
        Some(vec![
            rule(&[""], &["pods"], READ),
            named(rule(&[""], &["configmaps"], &["get"]), &["app-settings"])
        ]),
        "inline rules, resourceNames only when given"
    );
    for (grant, level) in [("beta-tickets", "tickets"), ("beta-settings", "settings")] {
        assert_eq!(grant_reason(&plan, HOME, grant), Reason::Granted);
        let binding = binding_of(&plan, HOME, grant).unwrap();
        assert_eq!(binding.role_ref, role_ref_to(&names::level_role(LINK_UID, level)));
        assert_eq!(binding.subjects, Some(vec![rbac_user(BOB)]));
        assert_eq!(binding.metadata.labels.as_ref().unwrap()[names::ACCESS_LEVEL], level);
        assert_eq!(
            binding.metadata.labels.as_ref().unwrap()[names::GRANT_UID],
            format!("uid-grant-{HOME}-{grant}")
        );
    }
    for role in &plan.roles {
        assert_eq!(role.metadata.owner_references, Some(vec![link_owner_ref("techhelp", LINK_UID)]));
        assert_eq!(role.metadata.namespace.as_deref(), Some(BETA));
    }
}

#[test]
fn only_levels_in_use_get_a_role() {
    type Change = fn(&mut World);
    let cases: Vec<(&str, Change, &[&str])> = vec![
        ("the story: grant and key on support", |_| {}, &["support"]),
        ("no grant, the key alone", |w| w.grants.clear(), &["support"]),
        ("no key, the grant alone", |w| w.beta().spec.access_key = None, &["support"]),
        (
            "neither",
            |w| {
                w.grants.clear();
                w.beta().spec.access_key = None;
            },
            &[],
        ),
        (
            "key on settings",
            |w| w.beta().spec.access_key = Some(AccessKey { access_level: "settings".into() }),
            &["support", "settings"],
        ),
        (
            "a refused grant uses nothing",
            |w| w.grant_mut("beta-support").spec.subjects = vec![user("eve@evil.example")],
            &["support"],
        ),
    ];
    for (what, change, levels) in cases {
        let mut world = World::story();
        change(&mut world);
        let plan = world.plan();
        let expected: BTreeSet<String> = levels.iter().map(|l| names::level_role(LINK_UID, l)).collect();
        assert_eq!(role_names(&plan), expected, "{what}");
        assert_eq!(
            link_reason(&plan, "techhelp"),
            Reason::Active,
            "{what}: unused levels are still judged fine"
        );
    }
}

#[test]
fn a_grant_over_several_clients_is_planned_in_each_namespace_on_its_own() {
    let mut world = World::story();
    world.grant_mut("beta-support").spec.clients = strings(&[BETA, GAMMA, DELTA]).into();
    world.links.push(link(
        GAMMA,
        "support-vendor",
        "techhelp",
        vec![inline("support", vec![access_rule(&[""], &["pods"], READ)])],
    ));

    let beta = world.plan_in(BETA);
    let gamma = world.plan_in(GAMMA);
    let delta = world.plan_in(DELTA);

    assert_eq!(grant_reason(&beta, HOME, "beta-support"), Reason::Granted);
    assert_eq!(grant_reason(&gamma, HOME, "beta-support"), Reason::Granted);
    assert_eq!(grant_reason(&delta, HOME, "beta-support"), Reason::LinkNotFound);
    assert!(nothing_granted(&delta));

    let gamma_uid = "uid-link-gamma-support-vendor";
    let (in_beta, in_gamma) =
        (binding_of(&beta, HOME, "beta-support").unwrap(), binding_of(&gamma, HOME, "beta-support").unwrap());
    assert_eq!(in_beta.metadata.namespace.as_deref(), Some(BETA));
    assert_eq!(in_gamma.metadata.namespace.as_deref(), Some(GAMMA));
    assert_ne!(in_beta.metadata.name, in_gamma.metadata.name, "one binding per (grant, client) pair");
    assert_eq!(in_gamma.metadata.name, Some(names::grant_binding(gamma_uid, GRANT_UID, "beta-support")));
    assert_eq!(in_gamma.metadata.owner_references, Some(vec![link_owner_ref("support-vendor", gamma_uid)]));
    assert_eq!(in_gamma.role_ref, role_ref_to(&names::level_role(gamma_uid, "support")));
    // Each client's own level: gamma's support level is pods only.
    assert_eq!(
        role_of(&gamma, gamma_uid, "support").unwrap().rules,
        Some(vec![rule(&[""], &["pods"], READ)])
    );
    // Same subjects in both; the ServiceAccount is always the home namespace's.
    assert_eq!(in_beta.subjects, in_gamma.subjects);
    assert!(in_gamma.subjects.as_ref().unwrap().contains(&rbac_sa("ticket-bot", HOME)));
    // gamma's link has no key; beta's does.
    assert!(gamma.access_key.is_none() && beta.access_key.is_some());
}

#[test]
fn service_account_subjects_always_belong_to_the_grants_home_namespace() {
    let mut world = World::story();
    world.grant_mut("beta-support").spec.subjects = vec![sa("ticket-bot"), sa("deploy.bot-2")];
    let plan = world.plan();
    assert_eq!(
        binding_of(&plan, HOME, "beta-support").unwrap().subjects,
        Some(vec![rbac_sa("ticket-bot", HOME), rbac_sa("deploy.bot-2", HOME)])
    );
}
