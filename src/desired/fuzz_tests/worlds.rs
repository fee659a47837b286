//! Worlds: what the controller's caches would hold, raw, normalized and admitted.

use super::*;

/// What the controller's caches would hold, as documents.
#[derive(Debug, Clone)]
pub(super) struct Cluster {
    pub(super) partners: Vec<Value>,
    pub(super) links: Vec<Value>,
    pub(super) grants: Vec<Value>,
    pub(super) namespace: String,
    pub(super) namespace_labels: BTreeMap<String, String>,
    pub(super) roles: BTreeMap<String, Vec<PolicyRule>>,
    pub(super) cluster_roles: BTreeMap<String, Vec<PolicyRule>>,
    pub(super) ceiling: Option<Vec<PolicyRule>>,
    pub(super) now: Timestamp,
    pub(super) home_access: Option<HomeAccess>,
}

/// The inputs of one namespace's plan, as objects.
#[derive(Debug, Clone)]
pub(super) struct World {
    pub(super) namespace: String,
    pub(super) namespace_labels: BTreeMap<String, String>,
    pub(super) partners: Vec<Partner>,
    pub(super) links: Vec<ClientLink>,
    pub(super) grants: Vec<AccessGrant>,
    pub(super) roles: BTreeMap<String, Vec<PolicyRule>>,
    pub(super) cluster_roles: BTreeMap<String, Vec<PolicyRule>>,
    pub(super) ceiling: Option<Vec<PolicyRule>>,
    pub(super) now: Timestamp,
}

impl Cluster {
    pub(super) fn read(&self) -> World {
        World {
            namespace: self.namespace.clone(),
            namespace_labels: self.namespace_labels.clone(),
            partners: self.partners.iter().filter_map(read).collect(),
            links: self.links.iter().filter_map(read).collect(),
            grants: self.grants.iter().filter_map(read).collect(),
            roles: self.roles.clone(),
            cluster_roles: self.cluster_roles.clone(),
            ceiling: self.ceiling.clone(),
            now: self.now,
        }
    }
}

impl World {
    pub(super) fn plan(&self) -> ClientPlan {
        let grants: Vec<Arc<AccessGrant>> = self.grants.iter().cloned().map(Arc::new).collect();
        let homes = crate::desired::client::marked_homes(&self.partners);
        plan_client(&ClientInputs {
            namespace: &self.namespace,
            namespace_labels: &self.namespace_labels,
            links: &self.links,
            partners: &self.partners,
            homes: &homes,
            grants: &grants,
            roles: &self.roles,
            cluster_roles: &self.cluster_roles,
            ceiling: self.ceiling.as_deref(),
            now: self.now,
        })
    }

    /// What a cluster could hand over: names unique per kind and namespace, UIDs unique, the
    /// namespace's links, the grants whose `clients` name it.
    pub(super) fn normalized(&self) -> World {
        let mut world = self.clone();
        let mut seen = BTreeSet::new();
        world.partners.retain(|p| seen.insert(p.name_any()));
        for (i, p) in world.partners.iter_mut().enumerate() {
            p.metadata.uid = Some(format!("uid-partner-{i}"));
        }
        let mut seen = BTreeSet::new();
        world.links.retain(|l| seen.insert(l.name_any()));
        for (i, l) in world.links.iter_mut().enumerate() {
            l.metadata.namespace = Some(world.namespace.clone());
            l.metadata.uid = Some(format!("uid-link-{i}"));
        }
        let mut seen = BTreeSet::new();
        let ns = world.namespace.clone();
        world.grants.retain(|g| g.spec.clients.contains(&ns) && seen.insert((g.namespace(), g.name_any())));
        for (i, g) in world.grants.iter_mut().enumerate() {
            g.metadata.uid = Some(format!("uid-grant-{i}"));
        }
        world
    }

    /// The objects the CRDs' schema and CEL rules admit, in a namespace that can exist.
    pub(super) fn admitted(&self) -> Option<World> {
        if !is_dns_label(&self.namespace) {
            return None;
        }
        let mut world = self.clone();
        world.partners.retain(admissible_partner);
        world.links.retain(admissible_link);
        world.grants.retain(admissible_grant);
        Some(world)
    }
}

pub(super) fn chars_within(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.chars().count())
}

pub(super) fn list_within(list: &[String], min: usize, max: usize, item_min: usize, item_max: usize) -> bool {
    (min..=max).contains(&list.len()) && list.iter().all(|s| chars_within(s, item_min, item_max))
}

pub(super) fn admissible_subject(s: &Subject) -> bool {
    chars_within(&s.name, 1, 253) && !s.name.starts_with("system:") && s.namespace.is_none()
}

pub(super) fn admissible_partner(p: &Partner) -> bool {
    let spec = &p.spec;
    let ids = &spec.identities;
    is_object_name(&p.metadata)
        && is_dns_label(&spec.home_namespace)
        && spec.display_name.as_deref().is_none_or(|d| chars_within(d, 0, 128))
        && spec
            .responsible_party
            .as_ref()
            .is_none_or(|s| admissible_subject(s) && s.kind != SubjectKind::ServiceAccount)
        && spec.admins.len() <= 32
        && spec.admins.iter().all(admissible_subject)
        && list_within(&ids.user_suffixes, 0, 16, 2, 253)
        && list_within(&ids.groups, 0, 64, 1, 253)
        && ids.groups.iter().all(|g| !g.starts_with("system:"))
}

pub(super) fn admissible_level(level: &AccessLevel) -> bool {
    let sources = [level.cluster_role.is_some(), level.role.is_some(), level.rules.is_some()]
        .into_iter()
        .filter(|s| *s)
        .count();
    let rule_ok = |r: &AccessRule| {
        list_within(&r.api_groups, 0, 16, 0, 253)
            && list_within(&r.resources, 1, 32, 1, 253)
            && list_within(&r.verbs, 1, 16, 1, 63)
            && list_within(&r.resource_names, 0, 64, 1, 253)
    };
    is_dns_label(&level.name)
        && sources == 1
        && level.cluster_role.as_deref().is_none_or(|r| chars_within(r, 1, 253))
        && level.role.as_deref().is_none_or(|r| chars_within(r, 1, 253))
        && level
            .rules
            .as_ref()
            .is_none_or(|rules| (1..=32).contains(&rules.len()) && rules.iter().all(rule_ok))
}

pub(super) fn admissible_link(l: &ClientLink) -> bool {
    let levels = &l.spec.access_levels;
    let names: BTreeSet<&String> = levels.iter().map(|l| &l.name).collect();
    is_object_name(&l.metadata)
        && chars_within(&l.spec.partner, 1, 63)
        && (1..=16).contains(&levels.len())
        && levels.iter().all(admissible_level)
        && names.len() == levels.len()
        && l.spec.access_key.as_ref().is_none_or(|k| names.contains(&k.access_level))
}

pub(super) fn admissible_grant(g: &AccessGrant) -> bool {
    let clients: BTreeSet<&String> = g.spec.clients.iter().collect();
    is_object_name(&g.metadata)
        && g.metadata.namespace.as_deref().is_some_and(is_dns_label)
        && (1..=128).contains(&g.spec.clients.len())
        && g.spec.clients.iter().all(|c| is_dns_label(c))
        && clients.len() == g.spec.clients.len()
        && chars_within(&g.spec.access_level, 1, 63)
        && g.spec.subjects.len() <= 256
        && g.spec.subjects.iter().all(admissible_subject)
}

pub(super) fn read_only_ceiling() -> Vec<PolicyRule> {
    vec![
        rule(
            &["", "apps", "batch"],
            &["pods", "pods/log", "configmaps", "services", "deployments", "jobs"],
            READ,
        ),
        rule(&["apps"], &["*/scale"], &["get"]),
    ]
}

pub(super) fn arb_ceiling() -> BoxedStrategy<Option<Vec<PolicyRule>>> {
    prop_oneof![
        10 => Just(Some(read_only_ceiling())),
        1 => Just(None),
        1 => Just(Some(vec![])),
        1 => Just(Some(vec![rule(&["*"], &["*"], &["*"])])),
        2 => prop::collection::vec(arb_policy_rule(), 0..4).prop_map(Some),
    ]
    .boxed()
}

/// Roles by name: some well known ones (reachable, within or beyond the ceiling), some random.
pub(super) fn role_map(
    names: &'static [&'static str],
    known: Vec<(&'static str, Vec<PolicyRule>)>,
) -> BoxedStrategy<BTreeMap<String, Vec<PolicyRule>>> {
    let rules = prop_oneof![
        2 => Just(vec![rule(&[""], &["pods"], &["get"])]),
        1 => Just(vec![rule(&["apps"], &["deployments"], &["create"])]),
        2 => prop::collection::vec(arb_policy_rule(), 0..3),
    ];
    prop::collection::vec((mostly(names), rules), 0..3)
        .prop_map(move |random| {
            let mut map: BTreeMap<String, Vec<PolicyRule>> =
                known.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            map.extend(random);
            map
        })
        .boxed()
}

pub(super) fn arb_now() -> BoxedStrategy<Timestamp> {
    let instants: Vec<Timestamp> = GOOD_TIMES.iter().filter_map(|t| t.parse().ok()).collect();
    let nudges = vec![
        SignedDuration::ZERO,
        SignedDuration::from_nanos(1),
        SignedDuration::from_nanos(-1),
        SignedDuration::from_secs(1),
        SignedDuration::from_secs(-1),
    ];
    prop_oneof![
        6 => (prop::sample::select(instants), prop::sample::select(nudges)).prop_map(|(t, d)| t.checked_add(d).unwrap_or(t)),
        2 => (Timestamp::MIN.as_second()..=Timestamp::MAX.as_second()).prop_map(|s| Timestamp::from_second(s).unwrap()),
        1 => prop::sample::select(vec![Timestamp::MIN, Timestamp::MAX, Timestamp::UNIX_EPOCH]),
    ]
    .boxed()
}

pub(super) fn home_access() -> HomeAccess {
    HomeAccess {
        service_account: "liaison".into(),
        namespace: "liaison-system".into(),
        cluster_role: "liaison-home-access".into(),
    }
}

prop_compose! {
    pub(super) fn arb_cluster()(techhelp in seldom_mutated(techhelp_doc()),
                     others in prop::collection::vec(seldom_mutated(partner_doc(Shape::Typed)), 0..2),
                     links in prop_oneof![1 => Just(vec![]), 6 => prop::collection::vec(seldom_mutated(link_doc(Shape::Typed)), 1..2),
                                          3 => prop::collection::vec(seldom_mutated(link_doc(Shape::Typed)), 2..4)],
                     grants in prop::collection::vec(seldom_mutated(grant_doc(Shape::Typed)), 1..5),
                     namespace in mostly(NAMESPACES),
                     namespace_labels in arb_labels(),
                     roles in role_map(ROLE_NAMES, vec![
                         ("reader", vec![rule(&[""], &["pods"], &["get"])]),
                         ("deleter", vec![rule(&[""], &["pods"], &["get", "delete"])]),
                     ]),
                     cluster_roles in role_map(CLUSTER_ROLE_NAMES, vec![
                         ("view", vec![rule(&[""], &["pods", "pods/log", "configmaps"], READ), rule(&["apps"], &["deployments"], READ)]),
                         ("edit", vec![rule(&["apps"], &["deployments"], &["create"])]),
                         ("urls", vec![
                             rule(&[""], &["pods"], &["get"]),
                             PolicyRule { non_resource_urls: Some(strings(&["/healthz"])), verbs: strings(&["get"]), ..Default::default() },
                         ]),
                     ]),
                     ceiling in arb_ceiling(),
                     now in arb_now(),
                     home_access in prop::option::of(Just(home_access()))) -> Cluster {
        let mut partners = others;
        partners.insert(0, techhelp);
        Cluster { partners, links, grants, namespace, namespace_labels, roles, cluster_roles, ceiling, now, home_access }
    }
}
