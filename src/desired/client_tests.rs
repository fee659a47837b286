//! Table tests of the per-namespace plan, and properties that must hold for any input.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, Time};
use proptest::prelude::*;

use super::*;
use crate::api::{AccessGrantSpec, AccessKey, ClientLinkSpec, Identities, PartnerSpec, Subject};
use crate::desired::coverage::covers;
use crate::desired::identity::is_allowed;

const NS: &str = "beta";
const HOME: &str = "partner-techhelp";

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn now() -> Timestamp {
    t("2026-06-01T12:00:00Z")
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    PolicyRule { api_groups: Some(strings(groups)), resources: Some(strings(resources)), verbs: strings(verbs), ..Default::default() }
}

fn ceiling() -> Vec<PolicyRule> {
    vec![rule(&[""], &["pods", "configmaps", "services"], &["get", "list", "watch"])]
}

fn partner(name: &str, home: &str, created: &str) -> Partner {
    let mut p = Partner::new(
        name,
        PartnerSpec {
            display_name: None,
            home_namespace: home.into(),
            responsible_party: None,
            admins: vec![],
            identities: Identities { user_suffixes: vec![format!("@{name}.example")], groups: vec![format!("{name}:analysts")] },
            client_namespace_selector: None,
        },
    );
    p.metadata.uid = Some(format!("uid-partner-{name}"));
    p.metadata.creation_timestamp = Some(Time(t(created)));
    p
}

fn level(name: &str, rules: Vec<AccessRule>) -> AccessLevel {
    AccessLevel { name: name.into(), cluster_role: None, role: None, rules: Some(rules) }
}

fn read_pods() -> Vec<AccessRule> {
    vec![AccessRule {
        api_groups: vec!["".into()],
        resources: vec!["pods".into()],
        verbs: vec!["get".into(), "list".into()],
        resource_names: vec![],
    }]
}

fn link(name: &str, partner: &str, created: &str, levels: Vec<AccessLevel>) -> ClientLink {
    let mut l = ClientLink::new(
        name,
        ClientLinkSpec { partner: partner.into(), access_levels: levels, access_key: None, expires_at: None, suspended: None },
    );
    l.metadata.namespace = Some(NS.into());
    l.metadata.uid = Some(format!("uid-link-{name}-{created}"));
    l.metadata.creation_timestamp = Some(Time(t(created)));
    l
}

fn grant(home: &str, name: &str, level: &str, subjects: Vec<Subject>) -> AccessGrant {
    let mut g =
        AccessGrant::new(name, AccessGrantSpec { clients: vec![NS.into()], access_level: level.into(), subjects, expires_at: None });
    g.metadata.namespace = Some(home.into());
    g.metadata.uid = Some(format!("uid-grant-{home}-{name}"));
    g
}

fn user(name: &str) -> Subject {
    Subject::new(SubjectKind::User, name)
}

#[derive(Debug, Clone)]
struct World {
    labels: BTreeMap<String, String>,
    links: Vec<ClientLink>,
    partners: Vec<Partner>,
    grants: Vec<AccessGrant>,
    roles: BTreeMap<String, Vec<PolicyRule>>,
    cluster_roles: BTreeMap<String, Vec<PolicyRule>>,
    ceiling: Option<Vec<PolicyRule>>,
    now: Timestamp,
}

impl World {
    /// TechHelp linked to beta with a `read` level, bob granted it.
    fn story() -> World {
        World {
            labels: BTreeMap::new(),
            links: vec![link("techhelp", "techhelp", "2026-01-01T00:00:00Z", vec![level("read", read_pods())])],
            partners: vec![partner("techhelp", HOME, "2026-01-01T00:00:00Z")],
            grants: vec![grant(HOME, "g", "read", vec![user("bob@techhelp.example")])],
            roles: BTreeMap::new(),
            cluster_roles: BTreeMap::new(),
            ceiling: Some(ceiling()),
            now: now(),
        }
    }

    fn plan(&self) -> ClientPlan {
        plan(&ClientInputs {
            namespace: NS,
            namespace_labels: &self.labels,
            links: &self.links,
            partners: &self.partners,
            grants: &self.grants,
            roles: &self.roles,
            cluster_roles: &self.cluster_roles,
            ceiling: self.ceiling.as_deref(),
            now: self.now,
        })
    }
}

fn link_reason(plan: &ClientPlan, name: &str) -> Reason {
    plan.links[name].verdict.reason
}

fn grant_reason(plan: &ClientPlan, name: &str) -> Reason {
    plan.grant(HOME, name).unwrap().verdict.reason
}

#[test]
fn the_story_grants_bob_through_a_role_of_exactly_the_level() {
    let plan = World::story().plan();
    assert_eq!(link_reason(&plan, "techhelp"), Reason::Active);
    assert_eq!(grant_reason(&plan, "g"), Reason::Granted);
    assert_eq!(plan.roles.len(), 1);
    assert_eq!(plan.roles[0].rules.as_ref().unwrap(), &vec![to_policy_rule(&read_pods()[0])]);
    let binding = &plan.bindings[0];
    assert_eq!(binding.role_ref.name, plan.roles[0].metadata.name.clone().unwrap());
    assert_eq!(binding.subjects.as_ref().unwrap()[0].name, "bob@techhelp.example");
    let labels = binding.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[names::MANAGED_BY], "liaison");
    assert_eq!(labels[names::GRANT_UID], "uid-grant-partner-techhelp-g");
    assert_eq!(binding.metadata.owner_references.as_ref().unwrap()[0].kind, "ClientLink");
    assert!(plan.access_key.is_none());
}

#[test]
fn service_account_subjects_belong_to_the_home_namespace() {
    let mut world = World::story();
    world.grants = vec![grant(HOME, "g", "read", vec![Subject::new(SubjectKind::ServiceAccount, "bot")])];
    let subject = &world.plan().bindings[0].subjects.clone().unwrap()[0];
    assert_eq!((subject.kind.as_str(), subject.namespace.as_deref(), subject.api_group.as_deref()), ("ServiceAccount", Some(HOME), None));
}

#[test]
fn the_oldest_link_wins_then_the_name() {
    let mut world = World::story();
    world.partners.push(partner("other", "partner-other", "2026-01-01T00:00:00Z"));
    world.links.push(link("a-other", "other", "2026-02-01T00:00:00Z", vec![level("read", read_pods())]));
    let plan = world.plan();
    assert_eq!(link_reason(&plan, "techhelp"), Reason::Active);
    assert_eq!(link_reason(&plan, "a-other"), Reason::Conflict);
    // Same instant: the name decides.
    world.links[1].metadata.creation_timestamp = world.links[0].metadata.creation_timestamp.clone();
    let plan = world.plan();
    assert_eq!(link_reason(&plan, "a-other"), Reason::Active);
    assert_eq!(link_reason(&plan, "techhelp"), Reason::Conflict);
    assert_eq!(grant_reason(&plan, "g"), Reason::LinkNotReady, "the loser's grants are refused");
    assert!(plan.bindings.is_empty());
}

#[test]
fn a_deleting_link_does_not_hold_the_namespace() {
    let mut world = World::story();
    world.partners.push(partner("other", "partner-other", "2026-01-01T00:00:00Z"));
    world.links.push(link("other", "other", "2026-02-01T00:00:00Z", vec![level("read", read_pods())]));
    world.links[0].metadata.deletion_timestamp = Some(Time(now()));
    let plan = world.plan();
    assert_eq!(link_reason(&plan, "techhelp"), Reason::Deleting);
    assert_eq!(link_reason(&plan, "other"), Reason::Active);
    assert!(plan.bindings.is_empty(), "techhelp's grant no longer applies");
}

#[test]
fn link_refusals() {
    type Change = fn(&mut World);
    let cases: Vec<(&str, Change, Reason)> = vec![
        ("no such partner", |w| w.partners.clear(), Reason::PartnerNotFound),
        ("partner being deleted", |w| w.partners[0].metadata.deletion_timestamp = Some(Time(now())), Reason::PartnerNotReady),
        ("older partner owns the home", |w| w.partners.push(partner("squatter", HOME, "2025-01-01T00:00:00Z")), Reason::PartnerNotReady),
        ("link in the partner's own home", |w| w.partners[0].spec.home_namespace = NS.into(), Reason::NamespaceNotAllowed),
        (
            "selector does not match",
            |w| w.partners[0].spec.client_namespace_selector = Some(selector_labels("allowed", "true")),
            Reason::NamespaceNotAllowed,
        ),
        ("expired", |w| w.links[0].spec.expires_at = Some(Time(now())), Reason::Expired),
        ("suspended", |w| w.links[0].spec.suspended = Some(true), Reason::Suspended),
    ];
    for (what, change, reason) in cases {
        let mut world = World::story();
        change(&mut world);
        let plan = world.plan();
        assert_eq!(link_reason(&plan, "techhelp"), reason, "{what}");
        assert!(plan.bindings.is_empty() && plan.roles.is_empty() && plan.access_key.is_none(), "{what}: nothing is granted");
        assert_eq!(grant_reason(&plan, "g"), Reason::LinkNotReady, "{what}");
    }
}

fn selector_labels(key: &str, value: &str) -> LabelSelector {
    LabelSelector { match_labels: Some(BTreeMap::from([(key.into(), value.into())])), match_expressions: None }
}

#[test]
fn selectors_match_labels_and_expressions() {
    let mut world = World::story();
    world.partners[0].spec.client_namespace_selector = Some(selector_labels("allowed", "true"));
    world.labels.insert("allowed".into(), "true".into());
    assert_eq!(link_reason(&world.plan(), "techhelp"), Reason::Active);
    world.partners[0].spec.client_namespace_selector = Some(LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "tier".into(),
            operator: "In".into(),
            values: Some(vec!["gold".into()]),
        }]),
    });
    assert_eq!(link_reason(&world.plan(), "techhelp"), Reason::NamespaceNotAllowed);
    world.labels.insert("tier".into(), "gold".into());
    assert_eq!(link_reason(&world.plan(), "techhelp"), Reason::Active);
    world.partners[0].spec.client_namespace_selector = Some(LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![LabelSelectorRequirement { key: "tier".into(), operator: "Bogus".into(), values: None }]),
    });
    assert_eq!(link_reason(&world.plan(), "techhelp"), Reason::NamespaceNotAllowed, "an invalid selector allows nothing");
}

#[test]
fn grant_refusals() {
    type Change = fn(&mut World);
    let cases: Vec<(&str, Change, Reason)> = vec![
        ("unknown level", |w| w.grants[0].spec.access_level = "admin".into(), Reason::LevelNotFound),
        ("foreign user", |w| w.grants[0].spec.subjects.push(user("eve@evil.example")), Reason::SubjectNotAllowed),
        ("system group", |w| w.grants[0].spec.subjects.push(Subject::new(SubjectKind::Group, "system:masters")), Reason::SubjectNotAllowed),
        (
            "unlisted group",
            |w| w.grants[0].spec.subjects.push(Subject::new(SubjectKind::Group, "techhelp:admins")),
            Reason::SubjectNotAllowed,
        ),
        ("no subjects", |w| w.grants[0].spec.subjects.clear(), Reason::NoSubjects),
        ("expired at the instant", |w| w.grants[0].spec.expires_at = Some(Time(now())), Reason::Expired),
        ("being deleted", |w| w.grants[0].metadata.deletion_timestamp = Some(Time(now())), Reason::Deleting),
        ("from another partner's home", |w| w.grants[0].metadata.namespace = Some("partner-other".into()), Reason::LinkNotFound),
    ];
    for (what, change, reason) in cases {
        let mut world = World::story();
        change(&mut world);
        let plan = world.plan();
        assert_eq!(plan.grants[0].verdict.reason, reason, "{what}");
        assert!(plan.bindings.is_empty(), "{what}: no binding");
        assert_eq!(link_reason(&plan, "techhelp"), Reason::Active, "{what}: the link itself is fine");
    }
}

#[test]
fn no_link_means_link_not_found() {
    let mut world = World::story();
    world.links.clear();
    let plan = world.plan();
    assert_eq!(grant_reason(&plan, "g"), Reason::LinkNotFound);
    assert!(plan.bindings.is_empty());
}

#[test]
fn levels_beyond_the_ceiling_are_denied_alone() {
    let mut world = World::story();
    let secrets =
        AccessRule { api_groups: vec!["".into()], resources: vec!["secrets".into()], verbs: vec!["get".into()], resource_names: vec![] };
    world.links[0].spec.access_levels.push(level("secrets", vec![secrets]));
    world.links[0].spec.access_levels.push(AccessLevel {
        name: "role".into(),
        cluster_role: None,
        role: Some("deleter".into()),
        rules: None,
    });
    world.links[0].spec.access_levels.push(AccessLevel {
        name: "cluster".into(),
        cluster_role: Some("edit".into()),
        role: None,
        rules: None,
    });
    world.links[0].spec.access_levels.push(AccessLevel {
        name: "missing".into(),
        cluster_role: None,
        role: Some("nope".into()),
        rules: None,
    });
    world.roles.insert("deleter".into(), vec![rule(&[""], &["pods"], &["delete"])]);
    world.cluster_roles.insert("edit".into(), vec![rule(&["apps"], &["deployments"], &["create"])]);
    for (name, level) in [("s", "secrets"), ("r", "role"), ("c", "cluster"), ("m", "missing")] {
        world.grants.push(grant(HOME, name, level, vec![user("bob@techhelp.example")]));
    }
    let plan = world.plan();
    assert_eq!(grant_reason(&plan, "g"), Reason::Granted, "the level within the ceiling still works");
    for name in ["s", "r", "c"] {
        assert_eq!(grant_reason(&plan, name), Reason::EscalationDenied, "{name}");
    }
    assert_eq!(grant_reason(&plan, "m"), Reason::RoleNotFound);
    assert_eq!(link_reason(&plan, "techhelp"), Reason::EscalationDenied);
    assert!(plan.links["techhelp"].verdict.message.contains("get secrets.core"));
    assert_eq!(plan.bindings.len(), 1);
    assert_eq!(plan.roles.len(), 1);
}

#[test]
fn role_and_cluster_role_levels_are_copied_into_a_role_of_their_own() {
    let mut world = World::story();
    world.links[0].spec.access_levels =
        vec![AccessLevel { name: "read".into(), cluster_role: Some("view".into()), role: None, rules: None }];
    world.cluster_roles.insert("view".into(), vec![rule(&[""], &["pods"], &["list"])]);
    let plan = world.plan();
    assert_eq!(plan.roles[0].rules.as_ref().unwrap(), &vec![rule(&[""], &["pods"], &["list"])]);
    assert_eq!(plan.bindings[0].role_ref.kind, "Role");
}

#[test]
fn without_a_ceiling_nothing_is_granted() {
    let mut world = World::story();
    world.ceiling = None;
    let plan = world.plan();
    assert_eq!(grant_reason(&plan, "g"), Reason::CeilingNotFound);
    assert!(plan.bindings.is_empty() && plan.roles.is_empty());
}

#[test]
fn the_access_key_follows_its_level() {
    let mut world = World::story();
    world.links[0].spec.access_key = Some(AccessKey { access_level: "read".into() });
    let plan = world.plan();
    let key = plan.access_key.as_ref().unwrap();
    assert_eq!(key.secret_namespace, HOME);
    assert_eq!(key.binding.subjects.as_ref().unwrap()[0].namespace.as_deref(), Some(NS));
    assert_eq!(key.binding.role_ref.name, plan.roles[0].metadata.name.clone().unwrap());
    assert_eq!(plan.links["techhelp"].access_key_secret.as_deref(), Some(format!("{HOME}/{}", key.secret_name).as_str()));
    world.ceiling = Some(vec![]);
    assert!(world.plan().access_key.is_none(), "no key when its level is refused");
}

#[test]
fn wake_at_is_the_earliest_future_expiry() {
    let mut world = World::story();
    world.links[0].spec.expires_at = Some(Time(t("2026-06-01T13:00:00Z")));
    world.grants[0].spec.expires_at = Some(Time(t("2026-06-01T12:30:00Z")));
    let plan = world.plan();
    assert_eq!(plan.wake_at, Some(t("2026-06-01T12:30:00Z")));
    assert_eq!(plan.grants[0].ends_at, Some(t("2026-06-01T12:30:00Z")));
    world.grants[0].spec.expires_at = Some(Time(t("2026-06-01T11:00:00Z")));
    assert_eq!(world.plan().wake_at, Some(t("2026-06-01T13:00:00Z")), "a past expiry wakes nobody");
}

#[test]
fn a_recreated_link_gets_new_object_names() {
    let first = World::story().plan();
    let mut world = World::story();
    world.links[0].metadata.uid = Some("uid-link-reborn".into());
    let second = world.plan();
    assert_ne!(first.bindings[0].metadata.name, second.bindings[0].metadata.name);
    assert_ne!(first.roles[0].metadata.name, second.roles[0].metadata.name);
}

// ---- properties ---------------------------------------------------------------------------

fn arb_subject() -> impl Strategy<Value = Subject> {
    prop_oneof![
        6 => "[a-c]{1,3}@techhelp\\.example".prop_map(|n: String| user(&n)),
        2 => "[a-c]{1,3}@other\\.example".prop_map(|n: String| user(&n)),
        1 => Just(user("system:admin")),
        3 => "(techhelp:analysts|other:analysts|techhelp:admins|system:masters|system:authenticated)".prop_map(|g| Subject::new(SubjectKind::Group, g)),
        3 => "[a-c]{1,3}".prop_map(|n| Subject::new(SubjectKind::ServiceAccount, n)),
    ]
}

fn arb_rule() -> impl Strategy<Value = AccessRule> {
    let any_rule = (
        prop::sample::subsequence(vec!["", "apps", "*"], 1..3),
        prop::sample::subsequence(vec!["pods", "secrets", "configmaps", "*", "pods/log"], 1..3),
        prop::sample::subsequence(vec!["get", "list", "delete", "*"], 1..3),
    )
        .prop_map(|(g, r, v)| AccessRule {
            api_groups: g.into_iter().map(String::from).collect(),
            resources: r.into_iter().map(String::from).collect(),
            verbs: v.into_iter().map(String::from).collect(),
            resource_names: vec![],
        });
    let within =
        (prop::sample::subsequence(vec!["pods", "configmaps"], 1..3), prop::sample::subsequence(vec!["get", "list", "watch"], 1..4))
            .prop_map(|(r, v)| AccessRule {
                api_groups: vec!["".into()],
                resources: r.into_iter().map(String::from).collect(),
                verbs: v.into_iter().map(String::from).collect(),
                resource_names: vec![],
            });
    prop_oneof![4 => within, 1 => any_rule]
}

fn arb_time() -> impl Strategy<Value = Option<Time>> {
    prop_oneof![3 => Just(None), 1 => (-3i64..3).prop_map(|h| Some(Time(now() + jiff::SignedDuration::from_hours(h))))]
}

prop_compose! {
    fn arb_link(index: usize)(levels in prop::collection::vec(prop::collection::vec(arb_rule(), 1..3), 1..3),
                              partner in prop::sample::select(vec!["techhelp", "techhelp", "techhelp", "other", "ghost"]),
                              key in any::<bool>(), suspended in prop::bool::weighted(0.15), deleting in prop::bool::weighted(0.15),
                              expires in arb_time(), age in 0i64..3) -> ClientLink {
        let levels: Vec<AccessLevel> = levels.into_iter().enumerate().map(|(i, rules)| level(&format!("l{i}"), rules)).collect();
        let created = format!("2026-0{}-01T00:00:00Z", age + 1);
        let mut l = link(&format!("link{index}"), partner, &created, levels);
        l.spec.access_key = key.then(|| AccessKey { access_level: "l0".into() });
        l.spec.suspended = Some(suspended);
        l.spec.expires_at = expires;
        if deleting { l.metadata.deletion_timestamp = Some(Time(now())); }
        l
    }
}

prop_compose! {
    fn arb_grant(index: usize)(home in prop::sample::select(vec![HOME, HOME, "partner-other"]),
                               level in prop::sample::select(vec!["l0", "l0", "l1", "l2"]),
                               subjects in prop::collection::vec(arb_subject(), 0..4),
                               expires in arb_time(), deleting in prop::bool::weighted(0.15)) -> AccessGrant {
        let mut g = grant(home, &format!("g{index}"), level, subjects);
        g.spec.expires_at = expires;
        if deleting { g.metadata.deletion_timestamp = Some(Time(now())); }
        g
    }
}

prop_compose! {
    fn arb_world()(links in (arb_link(0), arb_link(1)), grants in (arb_grant(0), arb_grant(1), arb_grant(2)),
                   with_ceiling in prop::bool::weighted(0.85), selector in any::<bool>(), labelled in prop::bool::weighted(0.7)) -> World {
        let mut world = World::story();
        world.links = vec![links.0, links.1];
        world.grants = vec![grants.0, grants.1, grants.2];
        world.partners.push(partner("other", "partner-other", "2026-01-01T00:00:00Z"));
        if selector { world.partners[0].spec.client_namespace_selector = Some(selector_labels("allowed", "true")); }
        if labelled { world.labels.insert("allowed".into(), "true".into()); }
        world.ceiling = with_ceiling.then(ceiling);
        world
    }
}

fn identities_of(world: &World, home: &str) -> Identities {
    world.partners.iter().find(|p| p.spec.home_namespace == home).unwrap().spec.identities.clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_foreign_or_system_subject_is_ever_bound(world in arb_world()) {
        let plan = world.plan();
        for binding in &plan.bindings {
            let home = binding.metadata.labels.as_ref().unwrap()[names::GRANT_NAMESPACE].clone();
            let identities = identities_of(&world, &home);
            for subject in binding.subjects.iter().flatten() {
                prop_assert!(!subject.name.starts_with("system:"));
                let kind = match subject.kind.as_str() { "User" => SubjectKind::User, "Group" => SubjectKind::Group, _ => SubjectKind::ServiceAccount };
                if kind == SubjectKind::ServiceAccount {
                    prop_assert_eq!(subject.namespace.as_deref(), Some(home.as_str()));
                } else {
                    prop_assert!(is_allowed(&identities, &Subject::new(kind, subject.name.clone())), "{:?}", subject);
                }
            }
        }
    }

    #[test]
    fn no_rule_beyond_the_ceiling_is_ever_materialized(world in arb_world()) {
        let plan = world.plan();
        match &world.ceiling {
            None => prop_assert!(plan.roles.is_empty() && plan.bindings.is_empty() && plan.access_key.is_none()),
            Some(ceiling) => for role in &plan.roles {
                prop_assert!(covers(ceiling, role.rules.as_deref().unwrap_or_default()));
            },
        }
    }

    #[test]
    fn a_deleting_expired_or_suspended_link_yields_nothing(world in arb_world()) {
        let plan = world.plan();
        for link in &world.links {
            let inert = link.metadata.deletion_timestamp.is_some()
                || link.spec.expires_at.as_ref().is_some_and(|t| t.0 <= world.now)
                || link.spec.is_suspended();
            if inert {
                let uid = link.metadata.uid.clone().unwrap();
                prop_assert!(plan.active_link_uid.as_deref() != Some(uid.as_str()));
                for binding in &plan.bindings {
                    prop_assert!(binding.metadata.owner_references.as_ref().unwrap()[0].uid != uid);
                }
            }
        }
    }

    #[test]
    fn at_most_one_link_is_in_force_and_every_object_is_its(world in arb_world()) {
        let plan = world.plan();
        let active: Vec<_> = plan.links.values().filter(|l| l.verdict.reason == Reason::Active || l.verdict.reason == Reason::EscalationDenied || l.verdict.reason == Reason::RoleNotFound || l.verdict.reason == Reason::CeilingNotFound).collect();
        prop_assert!(active.len() <= 1);
        let owners: std::collections::BTreeSet<String> = plan.bindings.iter().map(|b| b.metadata.owner_references.as_ref().unwrap()[0].uid.clone())
            .chain(plan.roles.iter().map(|r| r.metadata.owner_references.as_ref().unwrap()[0].uid.clone())).collect();
        prop_assert!(owners.len() <= 1);
        if let Some(owner) = owners.first() {
            prop_assert_eq!(Some(owner), plan.active_link_uid.as_ref());
        }
    }

    #[test]
    fn every_binding_refers_to_a_planned_role(world in arb_world()) {
        let plan = world.plan();
        let roles: Vec<String> = plan.roles.iter().map(|r| r.metadata.name.clone().unwrap()).collect();
        for binding in plan.bindings.iter().chain(plan.access_key.as_ref().map(|k| &k.binding)) {
            prop_assert!(roles.contains(&binding.role_ref.name));
        }
    }

    #[test]
    fn plans_are_deterministic(world in arb_world()) {
        prop_assert_eq!(world.plan(), world.plan());
    }
}

/// The properties above are only as good as the worlds they see: make sure the generator
/// reaches bindings, keys, conflicts and refusals alike.
#[test]
fn the_generator_reaches_grants_and_refusals() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut bindings, mut keys, mut conflicts, mut refused) = (0, 0, 0, 0);
    for _ in 0..500 {
        let world = arb_world().new_tree(&mut runner).unwrap().current();
        let plan = world.plan();
        bindings += plan.bindings.len();
        keys += usize::from(plan.access_key.is_some());
        conflicts += plan.links.values().filter(|l| l.verdict.reason == Reason::Conflict).count();
        refused += plan.grants.iter().filter(|g| !g.verdict.is_ok()).count();
    }
    assert!(
        bindings > 20 && keys > 5 && conflicts > 20 && refused > 100,
        "bindings {bindings}, keys {keys}, conflicts {conflicts}, refused {refused}"
    );
}
