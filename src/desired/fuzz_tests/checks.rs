//! The checks each plan must pass.

use super::*;

/// What holds whatever the plan was given, even objects no cluster would hand over.
pub(super) fn check_always(world: &World, plan: &ClientPlan) -> Result<(), TestCaseError> {
    // (e) The same inputs, twice and cloned, give the same plan.
    prop_assert_eq!(plan, &world.plan());
    prop_assert_eq!(plan, &world.clone().plan());

    // (a) Nobody system:*, only the three kinds, robots always of a namespace.
    let role_names: BTreeSet<&str> = plan.roles.iter().filter_map(|r| r.metadata.name.as_deref()).collect();
    for binding in plan.bindings.iter().chain(plan.access_key.as_ref().map(|k| &k.binding)) {
        prop_assert_eq!(&binding.role_ref.kind, "Role", "only Roles the plan makes are bound");
        prop_assert_eq!(&binding.role_ref.api_group, RBAC);
        prop_assert!(
            role_names.contains(binding.role_ref.name.as_str()),
            "{:?} binds a Role not planned",
            binding.metadata.name
        );
        prop_assert!(binding.subjects.as_ref().is_some_and(|s| !s.is_empty()), "a binding binds somebody");
        for s in binding.subjects.iter().flatten() {
            prop_assert!(!s.name.starts_with("system:"), "{:?} bound", s);
            match s.kind.as_str() {
                "ServiceAccount" => prop_assert!(s.namespace.is_some() && s.api_group.is_none(), "{:?}", s),
                "User" | "Group" => {
                    prop_assert!(s.namespace.is_none() && s.api_group.as_deref() == Some(RBAC), "{:?}", s)
                }
                other => prop_assert!(false, "subject kind {}", other),
            }
        }
    }

    // (b) Every Role within the ceiling, resource rules only; without a ceiling, nothing.
    match world.ceiling.as_deref() {
        None => prop_assert!(plan.roles.is_empty() && plan.bindings.is_empty() && plan.access_key.is_none()),
        Some(ceiling) => {
            for role in &plan.roles {
                let rules = role.rules.as_deref().unwrap_or_default();
                prop_assert!(
                    covers(ceiling, rules),
                    "{:?} exceeds the ceiling: {:?}",
                    role.metadata.name,
                    uncovered(ceiling, rules)
                );
                prop_assert!(
                    kubernetes_covers(ceiling, rules),
                    "{:?} exceeds the ceiling as Kubernetes judges it",
                    role.metadata.name
                );
                prop_assert!(rules.iter().all(|r| r.non_resource_urls.as_ref().is_none_or(|u| u.is_empty())));
            }
        }
    }

    // Time: a grant is granted only while in time, and the plan wakes only in the future.
    for g in &plan.grants {
        prop_assert_eq!(g.verdict.reason == Reason::Granted, g.role_binding.is_some(), "{:?}", g);
        prop_assert!(
            g.role_binding.is_none() || g.ends_at.is_none_or(|at| at > world.now),
            "{:?} granted after its end",
            g
        );
    }
    prop_assert!(plan.wake_at.is_none_or(|at| at > world.now));
    Ok(())
}

/// The rules of DESIGN.md, for inputs a cluster could hand over (unique names and UIDs).
pub(super) fn check_rules(world: &World, plan: &ClientPlan) -> Result<(), TestCaseError> {
    let ns = world.namespace.as_str();
    let now = world.now;
    prop_assert_eq!(plan.links.len(), world.links.len(), "every link gets a verdict");
    prop_assert_eq!(plan.grants.len(), world.grants.len(), "every grant gets a verdict");
    let granted = plan.grants.iter().filter(|g| g.verdict.reason == Reason::Granted).count();
    prop_assert_eq!(granted, plan.bindings.len(), "one binding per granted grant");
    if plan.roles.is_empty() && plan.bindings.is_empty() && plan.access_key.is_none() {
        return Ok(());
    }

    // (c) The link in force: the oldest live link, in time, not suspended.
    let uid = plan.active_link_uid.as_deref();
    prop_assert!(uid.is_some(), "objects without a link in force");
    let link =
        world.links.iter().find(|l| l.metadata.uid.as_deref() == uid).expect("the active link is an input");
    prop_assert!(link.metadata.deletion_timestamp.is_none(), "a deleted link grants");
    prop_assert!(!expired(link.spec.expires_at.as_ref(), now), "an expired link grants");
    prop_assert!(!link.spec.suspended.unwrap_or(false), "a suspended link grants");
    let oldest = world
        .links
        .iter()
        .filter(|l| l.metadata.deletion_timestamp.is_none())
        .min_by_key(|l| age(&l.metadata));
    prop_assert_eq!(
        oldest.and_then(|l| l.metadata.uid.as_deref()),
        uid,
        "a younger link holds the namespace"
    );

    // (c) Its partner stands, owns its home, and admits this namespace.
    let partner = world.partners.iter().find(|p| p.name_any() == link.spec.partner);
    prop_assert!(partner.is_some(), "objects for a link without its partner");
    let partner = partner.unwrap();
    let home = partner.spec.home_namespace.as_str();
    prop_assert!(partner.metadata.deletion_timestamp.is_none(), "a deleted partner grants");
    for other in world
        .partners
        .iter()
        .filter(|p| p.spec.home_namespace == home && p.metadata.deletion_timestamp.is_none())
    {
        prop_assert!(
            age(&other.metadata) >= age(&partner.metadata),
            "partner {} is younger than {} for {}",
            partner.name_any(),
            other.name_any(),
            home
        );
    }
    prop_assert_ne!(home, ns, "a partner is granted its own home");
    if let Some(selector) = &partner.spec.client_namespace_selector {
        prop_assert!(
            selector_allows(selector, &world.namespace_labels),
            "{:?} does not allow {:?}",
            selector,
            world.namespace_labels
        );
    }

    // (b) The ceiling exists and holds every Role, each in this namespace.
    let ceiling = world.ceiling.as_deref().expect("nothing is planned without a ceiling");
    for role in &plan.roles {
        prop_assert!(covers(ceiling, role.rules.as_deref().unwrap_or_default()));
        prop_assert_eq!(role.metadata.namespace.as_deref(), Some(ns));
    }
    let role_rules = |name: &str| {
        plan.roles.iter().find(|r| r.metadata.name.as_deref() == Some(name)).and_then(|r| r.rules.clone())
    };
    let is_level_of = |level: &str, rules: Option<Vec<PolicyRule>>| {
        link.spec.access_levels.iter().filter(|l| l.name == level).any(|l| level_rules(world, l) == rules)
    };

    // (a), (c) Each binding is a granted grant of the partner, in time, of its own people.
    for binding in &plan.bindings {
        let name = binding.metadata.name.as_deref();
        prop_assert_eq!(binding.metadata.namespace.as_deref(), Some(ns));
        let plans: Vec<_> = plan.grants.iter().filter(|g| g.role_binding.as_deref() == name).collect();
        prop_assert_eq!(plans.len(), 1, "{:?} is one grant's binding", name);
        let grant = world
            .grants
            .iter()
            .find(|g| {
                g.namespace().unwrap_or_default() == plans[0].grant_namespace
                    && g.name_any() == plans[0].grant_name
            })
            .expect("a granted grant is an input");
        let grant_namespace = grant.namespace();
        prop_assert_eq!(
            grant_namespace.as_deref(),
            Some(home),
            "a grant of another namespace than the partner's home"
        );
        prop_assert!(grant.metadata.deletion_timestamp.is_none(), "a deleted grant grants");
        prop_assert!(!expired(grant.spec.expires_at.as_ref(), now), "an expired grant grants");
        prop_assert!(grant.spec.clients.iter().any(|c| c == ns), "a grant not naming {} grants there", ns);
        prop_assert!(!grant.spec.subjects.is_empty());
        for s in &grant.spec.subjects {
            prop_assert!(may_grant(partner, s), "{:?} is not partner {}'s to grant", s, partner.name_any());
        }
        let expected: Vec<RbacSubject> = grant.spec.subjects.iter().map(|s| rbac_subject(s, home)).collect();
        prop_assert_eq!(
            binding.subjects.as_ref(),
            Some(&expected),
            "the binding binds exactly the grant's subjects"
        );
        prop_assert!(
            is_level_of(&grant.spec.access_level, role_rules(&binding.role_ref.name)),
            "{:?} is not bound to level {}",
            name,
            grant.spec.access_level
        );
    }

    // The access key: only if declared, bound to its level, its Secret in the partner's home.
    if let Some(key) = &plan.access_key {
        let declared = link.spec.access_key.as_ref();
        prop_assert!(declared.is_some(), "an access key nobody asked for");
        let sa = key.service_account.metadata.name.clone().unwrap_or_default();
        // Outside the client namespace: no member of its ServiceAccounts' group.
        prop_assert_eq!(key.service_account.metadata.namespace.as_deref(), Some(home));
        prop_assert_eq!(key.service_account.automount_service_account_token, Some(false));
        let expected = vec![RbacSubject {
            kind: "ServiceAccount".into(),
            name: sa,
            namespace: Some(home.to_string()),
            api_group: None,
        }];
        prop_assert_eq!(key.binding.subjects.as_ref(), Some(&expected));
        prop_assert!(is_level_of(&declared.unwrap().access_level, role_rules(&key.binding.role_ref.name)));
        prop_assert_eq!(key.secret_namespace.as_str(), home);
    }
    Ok(())
}

pub(super) fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), TestCaseError> {
    for (k, v) in labels {
        prop_assert!(is_label_key(k), "label key {:?}", k);
        prop_assert!(is_label_value(v), "label {} has value {:?}", k, v);
    }
    Ok(())
}

/// (d) For admitted inputs: every name a DNS subdomain of at most 63, every label valid.
pub(super) fn check_names(plan: &ClientPlan) -> Result<(), TestCaseError> {
    let mut metas: Vec<&ObjectMeta> =
        plan.roles.iter().map(|r| &r.metadata).chain(plan.bindings.iter().map(|b| &b.metadata)).collect();
    if let Some(key) = &plan.access_key {
        metas.extend([&key.service_account.metadata, &key.binding.metadata]);
        prop_assert!(
            is_dns_subdomain(&key.secret_name) && key.secret_name.len() <= 63,
            "Secret name {:?}",
            key.secret_name
        );
        prop_assert!(is_dns_label(&key.secret_namespace));
        check_labels(&key.secret_labels)?;
    }
    for meta in metas {
        let name = meta.name.as_deref().unwrap_or_default();
        prop_assert!(is_dns_subdomain(name) && name.len() <= 63, "name {:?}", name);
        prop_assert!(meta.namespace.as_deref().is_some_and(is_dns_label));
        check_labels(meta.labels.as_ref().unwrap_or(&BTreeMap::new()))?;
        for (k, v) in meta.annotations.iter().flatten() {
            prop_assert!(is_label_key(k), "annotation key {:?}", k);
            if k == names::ACCESS_ENDS_AT {
                prop_assert!(v.parse::<Timestamp>().is_ok(), "{} = {:?} does not read back", k, v);
            }
        }
    }
    Ok(())
}

/// The partner's own suite: fixed rules, exactly the declared people, valid names if admitted.
pub(super) fn check_partner_plan(
    partner: &Partner,
    access: Option<&HomeAccess>,
    admitted: bool,
) -> Result<(), TestCaseError> {
    let plan = plan_partner(partner, access, HomeClaim::Create);
    prop_assert_eq!(&plan, &plan_partner(&partner.clone(), access, HomeClaim::Create), "deterministic");
    let name = partner.name_any();
    let home = partner.spec.home_namespace.as_str();
    prop_assert_eq!(
        plan.admin_role.rules.clone(),
        Some(admin_rules()),
        "nothing in a spec widens the admins' Role"
    );
    prop_assert_eq!(plan.observer_role.rules.clone(), Some(observer_rules()));
    let reader_rules = plan.reader_role.rules.clone().unwrap_or_default();
    prop_assert_eq!(reader_rules.len(), 1);
    prop_assert_eq!(
        reader_rules[0].resource_names.clone(),
        Some(vec![name.clone()]),
        "the reader reads its own partner only"
    );

    let admins: Vec<RbacSubject> = partner.spec.admins.iter().map(|s| rbac_subject(s, home)).collect();
    let observers: Vec<RbacSubject> =
        partner.spec.responsible_party.iter().map(|s| rbac_subject(s, home)).collect();
    let readers: Vec<RbacSubject> = admins.iter().chain(&observers).cloned().collect();
    prop_assert_eq!(
        plan.admin_binding.as_ref().and_then(|b| b.subjects.clone()),
        (!admins.is_empty()).then_some(admins)
    );
    prop_assert_eq!(
        plan.observer_binding.as_ref().and_then(|b| b.subjects.clone()),
        (!observers.is_empty()).then_some(observers)
    );
    prop_assert_eq!(
        plan.reader_binding.as_ref().and_then(|b| b.subjects.clone()),
        (!readers.is_empty()).then_some(readers)
    );
    prop_assert_eq!(plan.operator_binding.is_some(), access.is_some());
    for binding in plan.admin_binding.iter().chain(&plan.observer_binding).chain(&plan.operator_binding) {
        prop_assert_eq!(binding.metadata.namespace.as_deref(), Some(home));
    }
    if admitted {
        prop_assert!(is_dns_label(plan.home_namespace.metadata.name.as_deref().unwrap_or_default()));
        check_labels(plan.home_namespace.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))?;
        let mut metas =
            vec![&plan.admin_role.metadata, &plan.observer_role.metadata, &plan.reader_role.metadata];
        metas.extend(
            plan.operator_binding
                .iter()
                .chain(&plan.admin_binding)
                .chain(&plan.observer_binding)
                .map(|b| &b.metadata),
        );
        metas.extend(plan.reader_binding.iter().map(|b| &b.metadata));
        for meta in metas {
            let object = meta.name.as_deref().unwrap_or_default();
            prop_assert!(is_dns_subdomain(object) && object.len() <= 63, "name {:?}", object);
            check_labels(meta.labels.as_ref().unwrap_or(&BTreeMap::new()))?;
        }
        for s in
            plan.admin_binding.iter().chain(&plan.observer_binding).flat_map(|b| b.subjects.iter().flatten())
        {
            prop_assert!(!s.name.starts_with("system:"), "{:?}", s);
        }
    }
    Ok(())
}
