//! Properties that must hold for any input.

use super::*;

/// An access level's source, before it is given a name.
#[derive(Debug, Clone)]
enum Source {
    Rules(Vec<AccessRule>),
    Role(&'static str),
    ClusterRole(&'static str),
}

fn arb_subject() -> impl Strategy<Value = Subject> {
    prop_oneof![
        6 => "[a-c]{1,3}@techhelp\\.example".prop_map(|n| user(&n)),
        2 => "[a-c]{1,3}@(other|squatter|evil)\\.example".prop_map(|n| user(&n)),
        2 => prop::sample::select(vec!["system:admin", "system:anonymous", "@techhelp.example", "system:a@techhelp.example"]).prop_map(user),
        4 => prop::sample::select(vec![
            ANALYSTS, "other:analysts", "squatter:analysts", "techhelp:admins",
            "system:masters", "system:authenticated", "system:serviceaccounts",
        ]).prop_map(group),
        3 => "[a-c]{1,3}".prop_map(|n| sa(&n)),
        1 => prop::sample::select(vec!["system:serviceaccount:kube-system:default", "Bad_Name"]).prop_map(sa),
        1 => ("[a-c]{1,3}", prop::sample::select(vec!["kube-system", HOME, BETA]), any::<bool>()).prop_map(|(n, ns, is_sa)| {
            let kind = if is_sa { SubjectKind::ServiceAccount } else { SubjectKind::User };
            Subject { kind, name: if is_sa { n } else { format!("{n}@techhelp.example") }, namespace: Some(ns.into()) }
        }),
    ]
}

/// Mostly grants of the partner's own people only (so that bindings happen), sometimes a mix.
fn arb_subjects() -> impl Strategy<Value = Vec<Subject>> {
    let own = prop_oneof![
        "[a-c]{1,3}@techhelp\\.example".prop_map(|n| user(&n)),
        Just(group(ANALYSTS)),
        "[a-c]{1,3}".prop_map(|n| sa(&n)),
    ];
    prop_oneof![3 => prop::collection::vec(own, 1..4), 2 => prop::collection::vec(arb_subject(), 0..4)]
}

fn arb_access_rule() -> impl Strategy<Value = AccessRule> {
    let anything = (
        prop::sample::subsequence(vec!["", "apps", "*"], 1..3),
        prop::sample::subsequence(
            vec!["pods", "secrets", "configmaps", "*", "pods/log", "pods/exec", "deployments/scale"],
            1..3,
        ),
        prop::sample::subsequence(vec!["get", "list", "delete", "escalate", "*"], 1..3),
        prop::sample::subsequence(vec!["a", "b"], 0..2),
    )
        .prop_map(|(g, r, v, n)| AccessRule {
            api_groups: strings(&g),
            resources: strings(&r),
            verbs: strings(&v),
            resource_names: strings(&n),
        });
    let within = (
        prop::sample::subsequence(vec!["pods", "configmaps", "pods/log"], 1..3),
        prop::sample::subsequence(vec!["get", "list", "watch"], 1..4),
        prop::sample::subsequence(vec!["a", "b"], 0..2),
    )
        .prop_map(|(r, v, n)| AccessRule {
            api_groups: strings(&[""]),
            resources: strings(&r),
            verbs: strings(&v),
            resource_names: strings(&n),
        });
    // Stored before the schema refused it: a rule the API server would refuse in a Role.
    let malformed = prop::sample::select(vec!["pods", "configmaps"]).prop_map(|r| AccessRule {
        api_groups: vec![],
        resources: strings(&[r]),
        verbs: strings(&["get"]),
        resource_names: vec![],
    });
    prop_oneof![8 => within, 2 => anything, 1 => malformed]
}

fn arb_source() -> impl Strategy<Value = Source> {
    prop_oneof![
        4 => prop::collection::vec(arb_access_rule(), 1..3).prop_map(Source::Rules),
        1 => prop::sample::select(vec!["reader", "deleter", "absent"]).prop_map(Source::Role),
        1 => prop::sample::select(vec!["view", "edit", "urls", "absent"]).prop_map(Source::ClusterRole),
    ]
}

/// Seconds from now: often none, sometimes in the past, at the instant, or in the future.
fn arb_expiry() -> impl Strategy<Value = Option<Expiry>> {
    prop_oneof![
        4 => Just(None),
        1 => prop::sample::select(vec![-3600i64, -1, 0, 1, 3600]).prop_map(|s| Some(Expiry::from(from_now(s)))),
    ]
}

prop_compose! {
    fn arb_link()(sources in prop::collection::vec(arb_source(), 1..4),
                  partner in prop_oneof![16 => Just("techhelp"), 2 => Just("other"), 1 => Just("squatter"), 1 => Just("ghost")],
                  key in prop::option::weighted(0.4, 0usize..4),
                  suspended in prop::option::of(prop::bool::weighted(0.15)),
                  deleting in prop::bool::weighted(0.1),
                  expires in arb_expiry(),
                  accepted in prop_oneof![12 => Just(None), 2 => Just(Some("uid-partner-techhelp")), 1 => Just(Some("uid-of-a-deleted-partner"))],
                  accepted_in_spec in prop::bool::ANY,
                  max_grants in prop::option::weighted(0.3, 0i32..3),
                  month in 1u8..4) -> ClientLink {
        let levels = sources.into_iter().enumerate().map(|(i, source)| {
            let name = format!("l{i}");
            match source {
                Source::Rules(rules) => inline(&name, rules),
                Source::Role(role) => from_role(&name, role),
                Source::ClusterRole(cluster_role) => from_cluster_role(&name, cluster_role),
            }
        }).collect();
        let mut l = created(link(BETA, "unnamed", partner, levels), &format!("2026-0{month}-01T00:00:00Z"));
        l.spec.access_key = key.map(|i| AccessKey { access_level: format!("l{i}") });
        l.spec.suspended = suspended;
        l.spec.max_grants = max_grants;
        l.spec.expires_at = expires;
        // The partner it accepted, in its spec or as recorded: the one that exists, or one
        // deleted since.
        match accepted {
            Some(uid) if accepted_in_spec => l.spec.partner_uid = Some(uid.into()),
            Some(uid) => l.status = Some(ClientLinkStatus { partner_uid: Some(uid.into()), ..Default::default() }),
            None => {}
        }
        if deleting { l = self::deleting(l); }
        l
    }
}

prop_compose! {
    fn arb_grant()(home in prop_oneof![6 => Just(HOME), 1 => Just(OTHER_HOME), 1 => Just("stray")],
                   level in prop::sample::select(vec!["l0", "l0", "l1", "l2", "l9"]),
                   subjects in arb_subjects(),
                   expires in arb_expiry(),
                   deleting in prop::bool::weighted(0.1)) -> AccessGrant {
        let mut g = grant(home, "unnamed", &[BETA], level, subjects);
        g.spec.expires_at = expires;
        if deleting { g = self::deleting(g); }
        g
    }
}

fn arb_ceiling() -> impl Strategy<Value = Option<Vec<PolicyRule>>> {
    prop_oneof![
        10 => Just(Some(ceiling())),
        2 => Just(None),
        1 => Just(Some(vec![])),
        1 => Just(Some(vec![rule(&["*"], &["*"], &["*"])])),
        1 => Just(Some(vec![named(rule(&[""], &["pods", "configmaps"], &["get", "list"]), &["a"])])),
    ]
}

fn arb_selector() -> impl Strategy<Value = Option<LabelSelector>> {
    prop_oneof![
        8 => Just(None),
        2 => Just(Some(selector(&[("allowed", "true")], &[]))),
        1 => Just(Some(selector(&[], &[("tier", "NotIn", Some(vec![]))]))),
        1 => Just(Some(selector(&[], &[("tier", "In", Some(vec!["gold"]))]))),
    ]
}

prop_compose! {
    fn arb_world()(links in prop_oneof![1 => prop::collection::vec(arb_link(), 0..1), 5 => prop::collection::vec(arb_link(), 1..2), 3 => prop::collection::vec(arb_link(), 2..4)],
                   grants in prop::collection::vec(arb_grant(), 1..5),
                   ceiling in arb_ceiling(),
                   selector in arb_selector(),
                   labelled in prop::bool::weighted(0.8),
                   techhelp_deleting in prop::bool::weighted(0.05),
                   squatter in prop::option::weighted(0.15, prop::sample::select(vec!["2025-12-01T00:00:00Z", JAN, FEB]))) -> World {
        let mut world = World::story_with_other();
        world.links = links.into_iter().enumerate().map(|(i, mut l)| {
            l.metadata.name = Some(format!("link{i}"));
            l.metadata.uid = Some(format!("uid-link-{i}"));
            l
        }).collect();
        world.grants = grants.into_iter().enumerate().map(|(i, mut g)| {
            g.metadata.name = Some(format!("g{i}"));
            g.metadata.uid = Some(format!("uid-grant-{i}"));
            g
        }).collect();
        world.roles.get_mut(BETA).unwrap().extend([
            ("reader".to_string(), vec![rule(&[""], &["pods"], &["get"])]),
            ("deleter".to_string(), vec![rule(&[""], &["pods"], &["get", "delete"])]),
        ]);
        world.cluster_roles.extend([
            ("edit".to_string(), vec![rule(&["apps"], &["deployments"], &["create"])]),
            ("urls".to_string(), vec![
                rule(&[""], &["pods"], &["get"]),
                PolicyRule { non_resource_urls: Some(strings(&["/healthz"])), verbs: strings(&["get"]), ..Default::default() },
            ]),
        ]);
        world.ceiling = ceiling;
        world.partner_mut("techhelp").spec.client_namespace_selector = selector;
        if labelled {
            world.label(BETA, "allowed", "true");
            world.label(BETA, "tier", "gold");
        }
        if techhelp_deleting {
            let p = world.partner_mut("techhelp").clone();
            *world.partner_mut("techhelp") = deleting(p);
        }
        if let Some(at) = squatter {
            world.partners.push(created(partner("squatter", HOME), at));
        }
        world
    }
}

/// The link in force and its partner, if any.
fn in_force<'a>(world: &'a World, plan: &ClientPlan) -> Option<(&'a ClientLink, &'a Partner)> {
    let uid = plan.active_link_uid.as_deref()?;
    let link = world
        .links
        .iter()
        .find(|l| l.metadata.uid.as_deref() == Some(uid))
        .expect("the active link is one of the inputs");
    let partner = world
        .partners
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(link.spec.partner.as_str()))
        .expect("its partner exists");
    Some((link, partner))
}

fn is_expired(at: &Option<Expiry>, now: Timestamp) -> bool {
    at.as_ref().is_some_and(|at| at.instant().is_none_or(|at| at <= now))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// (1) No subject outside the partner's identities, nor any system:* name, is ever bound.
    #[test]
    fn only_the_partners_own_people_are_ever_bound(world in arb_world()) {
        let plan = world.plan();
        if plan.bindings.is_empty() && plan.access_key.is_none() {
            return Ok(());
        }
        let (link, partner) = in_force(&world, &plan).expect("objects are planned only for a link in force");
        prop_assert!(partner_standing(partner, &world.partners).is_ok());
        for binding in &plan.bindings {
            for subject in binding.subjects.iter().flatten() {
                prop_assert!(!subject.name.starts_with("system:"), "{:?}", subject);
                match subject.kind.as_str() {
                    "ServiceAccount" => {
                        prop_assert_eq!(subject.namespace.as_deref(), Some(partner.spec.home_namespace.as_str()));
                        prop_assert!(is_allowed(&partner.spec.identities, &sa(&subject.name)), "{:?}", subject);
                    }
                    "User" => {
                        prop_assert_eq!(subject.namespace.as_deref(), None);
                        prop_assert!(is_allowed(&partner.spec.identities, &user(&subject.name)), "{:?}", subject);
                    }
                    "Group" => {
                        prop_assert_eq!(subject.namespace.as_deref(), None);
                        prop_assert!(is_allowed(&partner.spec.identities, &group(&subject.name)), "{:?}", subject);
                    }
                    other => prop_assert!(false, "unknown subject kind {}", other),
                }
            }
        }
        if let Some(key) = &plan.access_key {
            let name = names::access_key(link.metadata.uid.as_deref().unwrap());
            prop_assert_eq!(key.binding.subjects.clone(), Some(vec![rbac_sa(&name, &partner.spec.home_namespace)]));
            prop_assert_eq!(&key.secret_namespace, &partner.spec.home_namespace);
        }
    }

    /// The compact cache of grant bindings compares exactly `GRANT_BINDING_LABELS` and the
    /// access-ends-at annotation: a grant binding carrying anything else would go unchecked.
    #[test]
    fn grant_bindings_carry_exactly_the_labels_their_cache_compares(world in arb_world()) {
        for binding in &world.plan().bindings {
            let keys: BTreeSet<&str> = binding.metadata.labels.iter().flatten().map(|(k, _)| k.as_str()).collect();
            prop_assert_eq!(keys, BTreeSet::from(names::GRANT_BINDING_LABELS));
            let annotations: Vec<&str> = binding.metadata.annotations.iter().flatten().map(|(k, _)| k.as_str()).collect();
            prop_assert!(annotations.iter().all(|k| *k == names::ACCESS_ENDS_AT), "{:?}", annotations);
        }
    }

    /// Likewise level Roles and `LEVEL_ROLE_LABELS`, with no annotation at all.
    #[test]
    fn level_roles_carry_exactly_the_labels_their_cache_compares(world in arb_world()) {
        for role in &world.plan().roles {
            let keys: BTreeSet<&str> = role.metadata.labels.iter().flatten().map(|(k, _)| k.as_str()).collect();
            prop_assert_eq!(keys, BTreeSet::from(names::LEVEL_ROLE_LABELS));
            prop_assert!(role.metadata.annotations.is_none(), "{:?}", role.metadata.annotations);
        }
    }

    /// (2) Every planned Role is covered by the ceiling; without a ceiling nothing is planned.
    #[test]
    fn no_rule_beyond_the_ceiling_is_ever_materialized(world in arb_world()) {
        let plan = world.plan();
        match &world.ceiling {
            None => prop_assert!(nothing_granted(&plan)),
            Some(ceiling) => for role in &plan.roles {
                let rules = role.rules.as_deref().unwrap_or_default();
                prop_assert!(covers(ceiling, rules), "{:?}", role);
                prop_assert!(rules.iter().all(|r| r.non_resource_urls.as_ref().is_none_or(|u| u.is_empty())));
            },
        }
    }

    /// (3) A link being deleted, expired or suspended yields no Role, binding or key.
    #[test]
    fn an_inert_link_yields_nothing(world in arb_world()) {
        let plan = world.plan();
        let owners = owner_uids(&plan);
        for link in &world.links {
            let uid = link.metadata.uid.clone().unwrap();
            let inert = link.metadata.deletion_timestamp.is_some()
                || is_expired(&link.spec.expires_at, world.now)
                || link.spec.is_suspended();
            let partner_refused = world
                .partners
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(link.spec.partner.as_str()))
                .is_none_or(|p| partner_standing(p, &world.partners).is_err());
            if inert || partner_refused {
                prop_assert!(!owners.contains(&uid), "{} is inert but owns objects", uid);
                prop_assert!(plan.active_link_uid.as_deref() != Some(uid.as_str()));
                prop_assert!(!plan.links[link.metadata.name.as_deref().unwrap()].verdict.is_ok());
            }
        }
    }

    /// (4) At most one link of the namespace is not in Conflict (nor Deleting), it is the oldest
    /// live one, and every object is its.
    #[test]
    fn one_link_holds_the_namespace(world in arb_world()) {
        let plan = world.plan();
        prop_assert_eq!(plan.links.len(), world.links.len(), "every link gets a verdict");
        let holders: Vec<&String> = plan.links.iter()
            .filter(|(_, l)| !matches!(l.verdict.reason, Reason::Conflict | Reason::Deleting))
            .map(|(name, _)| name)
            .collect();
        prop_assert!(holders.len() <= 1, "{:?}", plan.links);
        let oldest = world.links.iter()
            .filter(|l| l.metadata.deletion_timestamp.is_none())
            .min_by_key(|l| (l.metadata.creation_timestamp.clone().map(|t| t.0), l.metadata.name.clone()));
        prop_assert_eq!(holders.first().map(|n| n.as_str()), oldest.and_then(|l| l.metadata.name.as_deref()));
        for (name, verdict) in &plan.links {
            let link = world.links.iter().find(|l| l.metadata.name.as_deref() == Some(name.as_str())).unwrap();
            prop_assert_eq!(verdict.verdict.reason == Reason::Deleting, link.metadata.deletion_timestamp.is_some());
        }
        let owners = owner_uids(&plan);
        prop_assert!(owners.len() <= 1);
        if let Some(owner) = owners.first() {
            prop_assert_eq!(Some(owner), plan.active_link_uid.as_ref());
        }
        if let Some(uid) = &plan.active_link_uid {
            let link = world.links.iter().find(|l| l.metadata.uid.as_ref() == Some(uid)).unwrap();
            prop_assert_eq!(holders.first().map(|n| n.as_str()), link.metadata.name.as_deref());
        }
    }

    /// (5) Every binding refers to a planned Role, and every planned Role is used.
    #[test]
    fn every_binding_refers_to_a_planned_role(world in arb_world()) {
        let plan = world.plan();
        let roles = role_names(&plan);
        prop_assert_eq!(roles.len(), plan.roles.len(), "Role names are unique");
        let mut used = BTreeSet::new();
        for binding in plan.bindings.iter().chain(plan.access_key.as_ref().map(|k| &k.binding)) {
            prop_assert_eq!(&binding.role_ref.kind, "Role");
            prop_assert_eq!(&binding.role_ref.api_group, RBAC);
            prop_assert!(roles.contains(&binding.role_ref.name), "{:?}", binding.role_ref);
            prop_assert_eq!(binding.metadata.namespace.as_deref(), Some(BETA));
            used.insert(binding.role_ref.name.clone());
        }
        prop_assert_eq!(used, roles);
    }

    /// (6) The same inputs give the same plan; the order of the lists changes no verdict.
    #[test]
    fn plans_are_deterministic(world in arb_world()) {
        let plan = world.plan();
        prop_assert_eq!(&plan, &world.plan());
        let mut shuffled = world.clone();
        shuffled.links.reverse();
        shuffled.grants.reverse();
        shuffled.partners.reverse();
        let other = shuffled.plan();
        prop_assert_eq!(&plan.links, &other.links);
        prop_assert_eq!(&plan.active_link_uid, &other.active_link_uid);
        prop_assert_eq!(&plan.access_key, &other.access_key);
        prop_assert_eq!(&plan.wake_at, &other.wake_at);
        prop_assert_eq!(role_names(&plan), role_names(&other));
        // Reasons, bindings and end times; a LinkNotReady message may name either of two losing links.
        let verdicts = |p: &ClientPlan| p.grants.iter()
            .map(|g| ((g.grant_namespace.clone(), g.grant_name.clone()), (g.verdict.reason, g.role_binding.clone(), g.ends_at)))
            .collect::<BTreeMap<_, _>>();
        prop_assert_eq!(verdicts(&plan), verdicts(&other));
        let bindings = |p: &ClientPlan| p.bindings.iter().map(|b| (b.metadata.name.clone(), b.clone())).collect::<BTreeMap<_, _>>();
        prop_assert_eq!(bindings(&plan), bindings(&other));
    }

    /// A grant is Granted exactly when its binding is planned, and only while everything holds.
    #[test]
    fn granted_means_bound_and_in_time(world in arb_world()) {
        let plan = world.plan();
        prop_assert_eq!(plan.grants.len(), world.grants.len(), "every grant gets a verdict");
        let granted: Vec<&GrantPlan> = plan.grants.iter().filter(|g| g.verdict.reason == Reason::Granted).collect();
        prop_assert_eq!(granted.len(), plan.bindings.len());
        let binding_names: BTreeSet<String> = plan.bindings.iter().map(|b| b.metadata.name.clone().unwrap()).collect();
        prop_assert_eq!(binding_names.len(), plan.bindings.len(), "binding names are unique");
        for g in &plan.grants {
            prop_assert_eq!(g.verdict.reason == Reason::Granted, g.role_binding.is_some());
            prop_assert!(!g.verdict.is_ok() || g.verdict.reason == Reason::Granted);
        }
        for g in granted {
            prop_assert!(binding_names.contains(g.role_binding.as_ref().unwrap()));
            let (link, partner) = in_force(&world, &plan).unwrap();
            prop_assert_eq!(&g.grant_namespace, &partner.spec.home_namespace);
            let grant = world.grants.iter().find(|x| x.metadata.namespace.as_deref() == Some(g.grant_namespace.as_str()) && x.metadata.name.as_deref() == Some(g.grant_name.as_str())).unwrap();
            prop_assert!(grant.metadata.deletion_timestamp.is_none());
            prop_assert!(!is_expired(&grant.spec.expires_at, world.now) && !is_expired(&link.spec.expires_at, world.now));
            prop_assert!(!grant.spec.subjects.is_empty());
            prop_assert!(g.ends_at.is_none_or(|at| at > world.now));
        }
        prop_assert!(plan.wake_at.is_none_or(|at| at > world.now));
    }
}

/// The properties are only as good as the worlds they see: the generator must reach bindings,
/// keys, conflicts and each kind of refusal.
#[test]
fn the_generator_reaches_grants_and_refusals() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut bindings, mut keys) = (0, 0);
    let mut reasons: BTreeMap<Reason, usize> = BTreeMap::new();
    for _ in 0..2000 {
        let world = arb_world().new_tree(&mut runner).unwrap().current();
        let plan = world.plan();
        bindings += plan.bindings.len();
        keys += usize::from(plan.access_key.is_some());
        for reason in
            plan.links.values().map(|l| l.verdict.reason).chain(plan.grants.iter().map(|g| g.verdict.reason))
        {
            *reasons.entry(reason).or_default() += 1;
        }
    }
    assert!(bindings > 150 && keys > 50, "bindings {bindings}, keys {keys}");
    // Every reason the plan gives: `Pending` and `PartiallyGranted` are the grant reconciler's,
    // `HomeNamespaceConflict` the partner's own (its links and grants say `PartnerNotReady`).
    let planned = Reason::ALL.into_iter().filter(|r| {
        // Judged by the reconcilers or of a Partner alone, not by a namespace's plan.
        !matches!(
            r,
            Reason::Pending
                | Reason::PartiallyGranted
                | Reason::HomeNamespaceConflict
                | Reason::HomeNotOwned
                | Reason::HomeRefused
                | Reason::Revoking
                // Generated by review_tests.rs's and request_tests.rs's own worlds.
                | Reason::ReviewOverdue
                | Reason::OnRequest
        )
    });
    for reason in planned {
        assert!(reasons.get(&reason).copied().unwrap_or_default() >= 5, "{reason} reached {:?}", reasons);
    }
}

proptest! {
    /// No link puts more of its partner's grants in force than its limit, and a grant refused
    /// for the limit is no older than any grant in force.
    #[test]
    fn a_link_never_puts_more_grants_in_force_than_its_limit(world in arb_world()) {
        let plan = world.plan();
        let Some((link, _)) = in_force(&world, &plan) else { return Ok(()) };
        let in_force_count = plan.grants.iter().filter(|g| g.verdict.is_ok()).count();
        prop_assert!(in_force_count <= link.spec.grant_limit());
        let created = |g: &GrantPlan| world.grants.iter()
            .find(|x| x.metadata.namespace.as_deref() == Some(g.grant_namespace.as_str()) && x.metadata.name.as_deref() == Some(g.grant_name.as_str()))
            .and_then(|x| x.metadata.creation_timestamp.clone()).map(|t| t.0);
        let held: Vec<&GrantPlan> = plan.grants.iter().filter(|g| g.verdict.reason == Reason::GrantLimitReached).collect();
        prop_assert_eq!(plan.links[link.metadata.name.as_deref().unwrap()].over_limit, held.len());
        if !held.is_empty() {
            prop_assert_eq!(in_force_count, link.spec.grant_limit(), "refused only once the limit is full");
        }
        for refused in held {
            for admitted in plan.grants.iter().filter(|g| g.verdict.is_ok()) {
                prop_assert!(created(admitted) <= created(refused));
            }
        }
    }
}
