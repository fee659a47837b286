//! Table tests of the per-namespace plan against DESIGN.md, and properties that must hold for
//! any input.
//!
//! Builders keep the tables readable: `partner(name, home)`, `link(ns, name, partner, levels)`,
//! `grant(home, name, clients, level, subjects)`. A `World` holds every object of a small
//! cluster and plans one namespace at a time, handing `plan` what the controller's caches
//! would: the links of that namespace and the grants whose `clients` name it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject as RbacSubject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference, Time};
use kube::Resource;
use proptest::prelude::*;

use super::*;
use crate::api::{AccessGrantSpec, AccessKey, ClientLinkSpec, ClientLinkStatus, Expiry, Identities, PartnerSpec, Subject};
use crate::desired::coverage::covers;
use crate::desired::identity::is_allowed;
use crate::desired::test_builders::*;

// ---- builders -----------------------------------------------------------------------------

const BETA: &str = "beta";
const GAMMA: &str = "gamma";
const DELTA: &str = "delta";
const HOME: &str = "partner-techhelp";
const OTHER_HOME: &str = "partner-other";
const RBAC: &str = "rbac.authorization.k8s.io";
const BOB: &str = "bob@techhelp.example";
const ANALYSTS: &str = "techhelp:analysts";
const JAN: &str = "2026-01-01T00:00:00Z";
const FEB: &str = "2026-02-01T00:00:00Z";
const READ: &[&str] = &["get", "list", "watch"];
/// UIDs the builders give the story's link and grant.
const LINK_UID: &str = "uid-link-beta-techhelp";
const GRANT_UID: &str = "uid-grant-partner-techhelp-beta-support";

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn now() -> Timestamp {
    t("2026-06-01T12:00:00Z")
}

fn from_now(seconds: i64) -> Timestamp {
    now() + SignedDuration::from_secs(seconds)
}

fn access_rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> AccessRule {
    AccessRule { api_groups: strings(groups), resources: strings(resources), verbs: strings(verbs), resource_names: vec![] }
}

fn inline(name: &str, rules: Vec<AccessRule>) -> AccessLevel {
    AccessLevel { name: name.into(), cluster_role: None, role: None, rules: Some(rules), on_request: None }
}

fn from_role(name: &str, role: &str) -> AccessLevel {
    AccessLevel { name: name.into(), cluster_role: None, role: Some(role.into()), rules: None, on_request: None }
}

fn from_cluster_role(name: &str, cluster_role: &str) -> AccessLevel {
    AccessLevel { name: name.into(), cluster_role: Some(cluster_role.into()), role: None, rules: None, on_request: None }
}

/// The platform's ceiling: read-only, no Secrets.
fn ceiling() -> Vec<PolicyRule> {
    vec![
        rule(
            &["", "apps", "batch"],
            &["pods", "pods/log", "configmaps", "services", "endpoints", "events", "deployments", "replicasets", "jobs", "cronjobs"],
            READ,
        ),
        rule(&["apps"], &["*/scale"], &["get"]),
    ]
}

/// The ClusterRole the story's `support` level names.
fn view() -> Vec<PolicyRule> {
    vec![rule(&[""], &["pods", "pods/log", "configmaps", "services"], READ), rule(&["apps"], &["deployments"], READ)]
}

/// The Role in beta the story's `tickets` level names.
fn ticket_reader() -> Vec<PolicyRule> {
    vec![named(rule(&[""], &["configmaps"], &["get"]), &["tickets"])]
}

fn settings_rules() -> Vec<AccessRule> {
    vec![access_rule(&[""], &["configmaps"], READ)]
}

fn created<K: Resource>(mut object: K, at: &str) -> K {
    object.meta_mut().creation_timestamp = Some(Time(t(at)));
    object
}

fn deleting<K: Resource>(mut object: K) -> K {
    object.meta_mut().deletion_timestamp = Some(Time(now()));
    object
}

fn with_uid<K: Resource>(mut object: K, uid: &str) -> K {
    object.meta_mut().uid = Some(uid.into());
    object
}

/// A partner whose people are `*@<name>.example` and the group `<name>:analysts`.
fn partner(name: &str, home: &str) -> Partner {
    let mut p = Partner::new(
        name,
        PartnerSpec {
            display_name: None,
            home_namespace: home.into(),
            responsible_party: None,
            admins: vec![],
            identities: Identities { user_suffixes: vec![format!("@{name}.example")], groups: vec![format!("{name}:analysts")] },
            client_namespace_selector: None,
            adopt_existing_home: None,
        },
    );
    p.metadata.uid = Some(format!("uid-partner-{name}"));
    created(p, JAN)
}

fn link(ns: &str, name: &str, partner: &str, levels: Vec<AccessLevel>) -> ClientLink {
    let mut l = ClientLink::new(
        name,
        ClientLinkSpec {
            partner: partner.into(),
            access_levels: levels,
            access_key: None,
            expires_at: None,
            suspended: None,
            partner_uid: None,
            review: None,
            approvers: vec![],
        },
    );
    l.metadata.namespace = Some(ns.into());
    l.metadata.uid = Some(format!("uid-link-{ns}-{name}"));
    created(l, JAN)
}

fn grant(home: &str, name: &str, clients: &[&str], level: &str, subjects: Vec<Subject>) -> AccessGrant {
    let mut g = AccessGrant::new(
        name,
        AccessGrantSpec { clients: strings(clients).into(), access_level: level.into(), subjects, expires_at: None, review: None },
    );
    g.metadata.namespace = Some(home.into());
    g.metadata.uid = Some(format!("uid-grant-{home}-{name}"));
    created(g, JAN)
}

fn selector(labels: &[(&str, &str)], expressions: &[(&str, &str, Option<Vec<&str>>)]) -> LabelSelector {
    LabelSelector {
        match_labels: (!labels.is_empty()).then(|| labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        match_expressions: (!expressions.is_empty()).then(|| {
            expressions
                .iter()
                .map(|(key, operator, values)| LabelSelectorRequirement {
                    key: key.to_string(),
                    operator: operator.to_string(),
                    values: values.as_deref().map(strings),
                })
                .collect()
        }),
    }
}

/// A small cluster: every Liaison object, the Roles of each namespace, the ClusterRoles.
#[derive(Debug, Clone)]
struct World {
    namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    partners: Vec<Partner>,
    links: Vec<ClientLink>,
    grants: Vec<AccessGrant>,
    /// namespace → Role name → rules
    roles: BTreeMap<String, BTreeMap<String, Vec<PolicyRule>>>,
    cluster_roles: BTreeMap<String, Vec<PolicyRule>>,
    ceiling: Option<Vec<PolicyRule>>,
    now: Timestamp,
}

impl World {
    /// DESIGN.md's story: Beta links TechHelp with three levels and an access key on `support`;
    /// TechHelp grants `support` to bob, its analysts and its ticket-bot.
    fn story() -> World {
        let mut techhelp = partner("techhelp", HOME);
        techhelp.spec.display_name = Some("TechHelp".into());
        techhelp.spec.admins = vec![user("alice@techhelp.example")];
        techhelp.spec.responsible_party = Some(group("vendor-managers"));
        let mut beta = link(
            BETA,
            "techhelp",
            "techhelp",
            vec![from_cluster_role("support", "view"), from_role("tickets", "ticket-reader"), inline("settings", settings_rules())],
        );
        beta.spec.access_key = Some(AccessKey { access_level: "support".into() });
        beta.spec.expires_at = Some(Expiry::from(t("2027-06-30T00:00:00Z")));
        let mut support = grant(HOME, "beta-support", &[BETA], "support", vec![user(BOB), group(ANALYSTS), sa("ticket-bot")]);
        support.spec.expires_at = Some(Expiry::from(t("2026-12-31T00:00:00Z")));
        World {
            namespace_labels: BTreeMap::new(),
            partners: vec![techhelp],
            links: vec![beta],
            grants: vec![support],
            roles: BTreeMap::from([(BETA.to_string(), BTreeMap::from([("ticket-reader".to_string(), ticket_reader())]))]),
            cluster_roles: BTreeMap::from([("view".to_string(), view())]),
            ceiling: Some(ceiling()),
            now: now(),
        }
    }

    /// The story, with a second partner (`other`, home `partner-other`) known to the cluster.
    fn story_with_other() -> World {
        let mut world = World::story();
        world.partners.push(partner("other", OTHER_HOME));
        world
    }

    /// What the controller's caches hand `plan` for one namespace.
    fn plan_in(&self, ns: &str) -> ClientPlan {
        let links: Vec<ClientLink> = self.links.iter().filter(|l| l.metadata.namespace.as_deref() == Some(ns)).cloned().collect();
        let grants: Vec<Arc<AccessGrant>> =
            self.grants.iter().filter(|g| g.spec.clients.iter().any(|c| c == ns)).cloned().map(Arc::new).collect();
        let (no_labels, no_roles) = (BTreeMap::new(), BTreeMap::new());
        let homes = marked_homes(&self.partners);
        plan(&ClientInputs {
            namespace: ns,
            namespace_labels: self.namespace_labels.get(ns).unwrap_or(&no_labels),
            links: &links,
            partners: &self.partners,
            homes: &homes,
            grants: &grants,
            roles: self.roles.get(ns).unwrap_or(&no_roles),
            cluster_roles: &self.cluster_roles,
            ceiling: self.ceiling.as_deref(),
            now: self.now,
        })
    }

    fn plan(&self) -> ClientPlan {
        self.plan_in(BETA)
    }

    fn link_mut(&mut self, ns: &str, name: &str) -> &mut ClientLink {
        self.links.iter_mut().find(|l| l.metadata.namespace.as_deref() == Some(ns) && l.metadata.name.as_deref() == Some(name)).unwrap()
    }

    /// The story's link.
    fn beta(&mut self) -> &mut ClientLink {
        self.link_mut(BETA, "techhelp")
    }

    fn grant_mut(&mut self, name: &str) -> &mut AccessGrant {
        self.grants.iter_mut().find(|g| g.metadata.name.as_deref() == Some(name)).unwrap()
    }

    fn partner_mut(&mut self, name: &str) -> &mut Partner {
        self.partners.iter_mut().find(|p| p.metadata.name.as_deref() == Some(name)).unwrap()
    }

    fn label(&mut self, ns: &str, key: &str, value: &str) {
        self.namespace_labels.entry(ns.into()).or_default().insert(key.into(), value.into());
    }
}

// ---- expectations -------------------------------------------------------------------------

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn link_owner_ref(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "liaison.dev/v1alpha1".into(),
        kind: "ClientLink".into(),
        name: name.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

fn rbac_user(name: &str) -> RbacSubject {
    RbacSubject { kind: "User".into(), name: name.into(), namespace: None, api_group: Some(RBAC.into()) }
}

fn rbac_group(name: &str) -> RbacSubject {
    RbacSubject { kind: "Group".into(), name: name.into(), namespace: None, api_group: Some(RBAC.into()) }
}

fn rbac_sa(name: &str, ns: &str) -> RbacSubject {
    RbacSubject { kind: "ServiceAccount".into(), name: name.into(), namespace: Some(ns.into()), api_group: None }
}

fn role_ref_to(name: &str) -> RoleRef {
    RoleRef { api_group: RBAC.into(), kind: "Role".into(), name: name.into() }
}

fn link_reason(plan: &ClientPlan, name: &str) -> Reason {
    plan.links.get(name).unwrap_or_else(|| panic!("no verdict for link {name}: {:?}", plan.links)).verdict.reason
}

fn grant_reason(plan: &ClientPlan, home: &str, name: &str) -> Reason {
    plan.grant(home, name).unwrap_or_else(|| panic!("no verdict for grant {home}/{name}")).verdict.reason
}

fn role_names(plan: &ClientPlan) -> BTreeSet<String> {
    plan.roles.iter().map(|r| r.metadata.name.clone().unwrap()).collect()
}

/// The binding planned for a grant, found through the grant's verdict.
fn binding_of<'a>(plan: &'a ClientPlan, home: &str, name: &str) -> Option<&'a RoleBinding> {
    let binding = plan.grant(home, name)?.role_binding.as_deref()?;
    Some(plan.bindings.iter().find(|b| b.metadata.name.as_deref() == Some(binding)).expect("a granted grant's binding is planned"))
}

/// The Role planned for a level of a link.
fn role_of<'a>(plan: &'a ClientPlan, link_uid: &str, level: &str) -> Option<&'a Role> {
    let name = names::level_role(link_uid, level);
    plan.roles.iter().find(|r| r.metadata.name.as_deref() == Some(name.as_str()))
}

fn nothing_granted(plan: &ClientPlan) -> bool {
    plan.roles.is_empty() && plan.bindings.is_empty() && plan.access_key.is_none()
}

/// Every UID any planned object names as its owner, by ownerReference and by label.
fn owner_uids(plan: &ClientPlan) -> BTreeSet<String> {
    let metas = plan
        .roles
        .iter()
        .map(|r| &r.metadata)
        .chain(plan.bindings.iter().map(|b| &b.metadata))
        .chain(plan.access_key.iter().flat_map(|k| [&k.service_account.metadata, &k.binding.metadata]));
    let mut uids = BTreeSet::new();
    for meta in metas {
        // The key's account is the Partner's by owner reference (it lives in the partner's
        // home), and the link's by Liaison's own rule: its owner label and name.
        let link_made = meta.owner_references.iter().flatten().filter(|o| o.kind == "ClientLink");
        uids.extend(link_made.map(|o| o.uid.clone()));
        uids.extend(meta.labels.as_ref().and_then(|l| l.get(names::OWNER_UID)).cloned());
    }
    if let Some(key) = &plan.access_key {
        uids.extend(key.secret_labels.get(names::OWNER_UID).cloned());
    }
    uids
}

// ---- the story ----------------------------------------------------------------------------

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
    let partner_owner =
        OwnerReference { kind: "Partner".into(), name: "techhelp".into(), uid: "uid-partner-techhelp".into(), ..owner.clone() };
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
    world.beta().spec.access_levels[2] = inline("settings", vec![access_rule(&[""], &["pods"], READ), with_names]);
    let plan = world.plan();

    assert_eq!(role_names(&plan).len(), 3);
    assert_eq!(role_of(&plan, LINK_UID, "support").unwrap().rules, Some(view()), "a ClusterRole's rules, copied");
    assert_eq!(role_of(&plan, LINK_UID, "tickets").unwrap().rules, Some(ticket_reader()), "a Role's rules, resourceNames kept");
    assert_eq!(
        role_of(&plan, LINK_UID, "settings").unwrap().rules,
        Some(vec![rule(&[""], &["pods"], READ), named(rule(&[""], &["configmaps"], &["get"]), &["app-settings"])]),
        "inline rules, resourceNames only when given"
    );
    for (grant, level) in [("beta-tickets", "tickets"), ("beta-settings", "settings")] {
        assert_eq!(grant_reason(&plan, HOME, grant), Reason::Granted);
        let binding = binding_of(&plan, HOME, grant).unwrap();
        assert_eq!(binding.role_ref, role_ref_to(&names::level_role(LINK_UID, level)));
        assert_eq!(binding.subjects, Some(vec![rbac_user(BOB)]));
        assert_eq!(binding.metadata.labels.as_ref().unwrap()[names::ACCESS_LEVEL], level);
        assert_eq!(binding.metadata.labels.as_ref().unwrap()[names::GRANT_UID], format!("uid-grant-{HOME}-{grant}"));
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
        ("key on settings", |w| w.beta().spec.access_key = Some(AccessKey { access_level: "settings".into() }), &["support", "settings"]),
        ("a refused grant uses nothing", |w| w.grant_mut("beta-support").spec.subjects = vec![user("eve@evil.example")], &["support"]),
    ];
    for (what, change, levels) in cases {
        let mut world = World::story();
        change(&mut world);
        let plan = world.plan();
        let expected: BTreeSet<String> = levels.iter().map(|l| names::level_role(LINK_UID, l)).collect();
        assert_eq!(role_names(&plan), expected, "{what}");
        assert_eq!(link_reason(&plan, "techhelp"), Reason::Active, "{what}: unused levels are still judged fine");
    }
}

#[test]
fn a_grant_over_several_clients_is_planned_in_each_namespace_on_its_own() {
    let mut world = World::story();
    world.grant_mut("beta-support").spec.clients = strings(&[BETA, GAMMA, DELTA]).into();
    world.links.push(link(GAMMA, "support-vendor", "techhelp", vec![inline("support", vec![access_rule(&[""], &["pods"], READ)])]));

    let beta = world.plan_in(BETA);
    let gamma = world.plan_in(GAMMA);
    let delta = world.plan_in(DELTA);

    assert_eq!(grant_reason(&beta, HOME, "beta-support"), Reason::Granted);
    assert_eq!(grant_reason(&gamma, HOME, "beta-support"), Reason::Granted);
    assert_eq!(grant_reason(&delta, HOME, "beta-support"), Reason::LinkNotFound);
    assert!(nothing_granted(&delta));

    let gamma_uid = "uid-link-gamma-support-vendor";
    let (in_beta, in_gamma) = (binding_of(&beta, HOME, "beta-support").unwrap(), binding_of(&gamma, HOME, "beta-support").unwrap());
    assert_eq!(in_beta.metadata.namespace.as_deref(), Some(BETA));
    assert_eq!(in_gamma.metadata.namespace.as_deref(), Some(GAMMA));
    assert_ne!(in_beta.metadata.name, in_gamma.metadata.name, "one binding per (grant, client) pair");
    assert_eq!(in_gamma.metadata.name, Some(names::grant_binding(gamma_uid, GRANT_UID, "beta-support")));
    assert_eq!(in_gamma.metadata.owner_references, Some(vec![link_owner_ref("support-vendor", gamma_uid)]));
    assert_eq!(in_gamma.role_ref, role_ref_to(&names::level_role(gamma_uid, "support")));
    // Each client's own level: gamma's support level is pods only.
    assert_eq!(role_of(&gamma, gamma_uid, "support").unwrap().rules, Some(vec![rule(&[""], &["pods"], READ)]));
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

// ---- the access key -----------------------------------------------------------------------

#[test]
fn the_access_key_follows_its_level() {
    type Change = fn(&mut World);
    let cases: Vec<(&str, Change, Option<&str>)> = vec![
        ("a ClusterRole level", |_| {}, Some("support")),
        ("an inline level", |w| w.beta().spec.access_key = Some(AccessKey { access_level: "settings".into() }), Some("settings")),
        ("a Role level", |w| w.beta().spec.access_key = Some(AccessKey { access_level: "tickets".into() }), Some("tickets")),
        (
            "its ClusterRole exceeds the ceiling",
            |w| {
                w.cluster_roles.insert("view".into(), vec![rule(&[""], &["secrets"], &["get"])]);
            },
            None,
        ),
        (
            "its Role is missing",
            |w| {
                w.roles.clear();
                w.beta().spec.access_key = Some(AccessKey { access_level: "tickets".into() });
            },
            None,
        ),
        ("its level is not declared", |w| w.beta().spec.access_key = Some(AccessKey { access_level: "nope".into() }), None),
        ("no key asked for", |w| w.beta().spec.access_key = None, None),
    ];
    for (what, change, level) in cases {
        let mut world = World::story();
        change(&mut world);
        let plan = world.plan();
        match level {
            Some(level) => {
                let key = plan.access_key.as_ref().unwrap_or_else(|| panic!("{what}: a key"));
                assert_eq!(key.binding.role_ref, role_ref_to(&names::level_role(LINK_UID, level)), "{what}");
                assert_eq!(key.binding.metadata.labels.as_ref().unwrap()[names::ACCESS_LEVEL], level, "{what}");
                assert_eq!(key.secret_labels[names::ACCESS_LEVEL], level, "{what}");
                assert!(role_of(&plan, LINK_UID, level).is_some(), "{what}: the key's level has its Role");
                assert_eq!(key.secret_namespace, HOME, "{what}");
                assert_eq!(plan.links["techhelp"].access_key_secret, Some(format!("{HOME}/{}", key.secret_name)), "{what}");
            }
            None => {
                assert!(plan.access_key.is_none(), "{what}: no key");
                assert_eq!(plan.links["techhelp"].access_key_secret, None, "{what}");
            }
        }
    }
}

#[test]
fn a_refused_key_level_leaves_the_other_levels_working() {
    let mut world = World::story();
    world.beta().spec.access_key = Some(AccessKey { access_level: "settings".into() });
    world.beta().spec.access_levels[2] = inline("settings", vec![access_rule(&[""], &["secrets"], READ)]);
    let plan = world.plan();
    assert!(plan.access_key.is_none());
    assert_eq!(link_reason(&plan, "techhelp"), Reason::EscalationDenied);
    assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::Granted);
    assert_eq!(role_names(&plan), BTreeSet::from([names::level_role(LINK_UID, "support")]));
}

// ---- one partner per namespace ------------------------------------------------------------

/// The story plus a younger link in beta to `other`, with a grant and a key of its own.
fn contested() -> World {
    let mut world = World::story_with_other();
    let mut rival = created(link(BETA, "other", "other", vec![inline("support", settings_rules())]), FEB);
    rival.spec.access_key = Some(AccessKey { access_level: "support".into() });
    world.links.push(rival);
    world.grants.push(grant(OTHER_HOME, "beta-help", &[BETA], "support", vec![user("carol@other.example")]));
    world
}

#[test]
fn the_oldest_link_holds_the_namespace() {
    let plan = contested().plan();
    assert_eq!(link_reason(&plan, "techhelp"), Reason::Active);
    assert_eq!(link_reason(&plan, "other"), Reason::Conflict);
    assert!(plan.links["other"].verdict.message.contains("techhelp"), "{}", plan.links["other"].verdict.message);
    assert_eq!(plan.active_link_uid.as_deref(), Some(LINK_UID));
    assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::Granted);
    assert_eq!(grant_reason(&plan, OTHER_HOME, "beta-help"), Reason::LinkNotReady, "the loser's partner grants nothing");
    assert_eq!(owner_uids(&plan), BTreeSet::from([LINK_UID.to_string()]), "every object is the winner's");
    assert_eq!(plan.access_key.as_ref().unwrap().binding.metadata.owner_references, Some(vec![link_owner_ref("techhelp", LINK_UID)]));
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
    assert!(plan.bindings.iter().all(|b| b.subjects.as_ref().unwrap() == &vec![rbac_user("carol@other.example")]));
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
        assert!(verdict.grants.is_empty() && verdict.access_key_secret.is_none() && verdict.ends_at.is_none(), "{loser}");
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
    let binding_names = |p: &ClientPlan| p.bindings.iter().map(|b| b.metadata.name.clone()).collect::<BTreeSet<_>>();
    assert_eq!(binding_names(&a), binding_names(&b));
}

// ---- the link's standing ------------------------------------------------------------------

#[test]
fn link_refusals_grant_nothing() {
    type Change = fn(&mut World);
    let cases: Vec<(&str, Change, Reason)> = vec![
        ("no such partner", |w| w.partners.clear(), Reason::PartnerNotFound),
        ("partner being deleted", |w| *w.partner_mut("techhelp") = deleting(w.partner_mut("techhelp").clone()), Reason::PartnerNotReady),
        (
            "an older partner holds the same home",
            |w| w.partners.push(created(partner("squatter", HOME), "2025-01-01T00:00:00Z")),
            Reason::PartnerNotReady,
        ),
        ("a partner as old, first by name, holds the same home", |w| w.partners.push(partner("atechhelp", HOME)), Reason::PartnerNotReady),
        (
            "the link is in the partner's own home namespace",
            |w| w.partner_mut("techhelp").spec.home_namespace = BETA.into(),
            Reason::NamespaceNotAllowed,
        ),
        (
            "the namespace does not match the selector",
            |w| w.partner_mut("techhelp").spec.client_namespace_selector = Some(selector(&[("liaison.dev/partners-allowed", "true")], &[])),
            Reason::NamespaceNotAllowed,
        ),
        ("expired at this very instant", |w| w.beta().spec.expires_at = Some(Expiry::from(now())), Reason::Expired),
        ("expired long ago", |w| w.beta().spec.expires_at = Some(Expiry::from(t("2025-01-01T00:00:00Z"))), Reason::Expired),
        ("suspended", |w| w.beta().spec.suspended = Some(true), Reason::Suspended),
    ];
    for (what, change, reason) in cases {
        let mut world = World::story();
        change(&mut world);
        let plan = world.plan();
        assert_eq!(link_reason(&plan, "techhelp"), reason, "{what}: {:?}", plan.links["techhelp"].verdict);
        assert!(nothing_granted(&plan), "{what}: nothing is granted");
        assert_eq!(plan.active_link_uid, None, "{what}");
        assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::LinkNotReady, "{what}");
        assert!(plan.grants[0].role_binding.is_none() && plan.grants[0].ends_at.is_none(), "{what}");
        assert_eq!(plan.links["techhelp"].access_key_secret, None, "{what}");
    }
}

#[test]
fn a_younger_partner_with_a_taken_home_grants_nothing_anywhere() {
    let mut world = World::story();
    world.partners.push(created(partner("copycat", HOME), FEB));
    world.links.push(link(GAMMA, "copycat", "copycat", vec![inline("support", settings_rules())]));
    world.grants.push(grant(HOME, "gamma-support", &[GAMMA], "support", vec![user("eve@copycat.example")]));

    let beta = world.plan_in(BETA);
    assert_eq!(link_reason(&beta, "techhelp"), Reason::Active, "the older partner keeps its home and its clients");
    assert_eq!(grant_reason(&beta, HOME, "beta-support"), Reason::Granted);

    let gamma = world.plan_in(GAMMA);
    assert_eq!(link_reason(&gamma, "copycat"), Reason::PartnerNotReady);
    assert!(gamma.links["copycat"].verdict.message.contains("already belongs to partner techhelp"), "{:?}", gamma.links["copycat"]);
    assert_eq!(grant_reason(&gamma, HOME, "gamma-support"), Reason::LinkNotReady);
    assert!(nothing_granted(&gamma));
}

#[test]
fn a_partner_created_again_under_the_same_name_grants_nothing_until_the_client_accepts_it() {
    let mut world = World::story();
    let first = world.plan();
    assert_eq!(first.links["techhelp"].partner_uid.as_deref(), Some("uid-partner-techhelp"), "the link records whom it accepted");
    world.link_mut(BETA, "techhelp").status =
        Some(ClientLinkStatus { partner_uid: Some("uid-partner-techhelp".into()), ..Default::default() });

    // The Partner is deleted and created again: same name and home, another UID (its home
    // adopted by the platform admin).
    world.partners[0].metadata.uid = Some("uid-partner-techhelp-again".into());
    let replaced = world.plan();
    assert_eq!(link_reason(&replaced, "techhelp"), Reason::PartnerReplaced);
    assert!(replaced.links["techhelp"].verdict.message.contains("uid-partner-techhelp-again"), "{:?}", replaced.links["techhelp"]);
    assert_eq!(replaced.links["techhelp"].partner_uid.as_deref(), Some("uid-partner-techhelp"), "the record is kept");
    assert!(nothing_granted(&replaced), "no old grant revives");

    world.link_mut(BETA, "techhelp").spec.partner_uid = Some("uid-partner-techhelp-again".into());
    let accepted = world.plan();
    assert_eq!(link_reason(&accepted, "techhelp"), Reason::Active, "the client accepted the new Partner");
    assert_eq!(accepted.links["techhelp"].partner_uid.as_deref(), Some("uid-partner-techhelp-again"));
    world.link_mut(BETA, "techhelp").spec.partner_uid = Some("uid-someone-else".into());
    assert_eq!(link_reason(&world.plan(), "techhelp"), Reason::PartnerReplaced, "the spec's word binds too");
}

#[test]
fn partner_standing_decides_who_owns_a_home_namespace() {
    let older = partner("techhelp", HOME);
    let younger = created(partner("copycat", HOME), FEB);
    let same_age_first_by_name = partner("atechhelp", HOME);
    let elsewhere = partner("other", OTHER_HOME);
    let reason = |p: &Partner, all: &[Partner]| partner_standing(p, all).err().map(|v| v.reason);

    assert_eq!(reason(&older, std::slice::from_ref(&older)), None);
    assert_eq!(reason(&older, &[older.clone(), younger.clone(), elsewhere.clone()]), None);
    assert_eq!(reason(&younger, &[older.clone(), younger.clone()]), Some(Reason::HomeNamespaceConflict));
    assert_eq!(reason(&younger, &[younger.clone(), older.clone()]), Some(Reason::HomeNamespaceConflict), "order of the list");
    assert_eq!(reason(&older, &[older.clone(), same_age_first_by_name.clone()]), Some(Reason::HomeNamespaceConflict));
    assert_eq!(reason(&same_age_first_by_name, &[older.clone(), same_age_first_by_name.clone()]), None);
    assert_eq!(reason(&elsewhere, &[older.clone(), younger.clone(), elsewhere.clone()]), None);
    // A partner being deleted grants nothing and no longer holds its home.
    let leaving = deleting(older.clone());
    assert_eq!(reason(&leaving, &[leaving.clone(), younger.clone()]), Some(Reason::Deleting));
    assert_eq!(reason(&younger, &[leaving.clone(), younger.clone()]), None);
}

#[test]
fn client_namespace_selector() {
    const KEY: &str = "liaison.dev/partners-allowed";
    type Case<'a> = (&'a str, LabelSelector, &'a [(&'a str, &'a str)], bool);
    let cases: Vec<Case> = vec![
        ("matchLabels, matching", selector(&[(KEY, "true")], &[]), &[(KEY, "true"), ("team", "b")], true),
        ("matchLabels, other value", selector(&[(KEY, "true")], &[]), &[(KEY, "false")], false),
        ("matchLabels, unlabelled", selector(&[(KEY, "true")], &[]), &[], false),
        ("In, matching", selector(&[], &[("tier", "In", Some(vec!["gold", "silver"]))]), &[("tier", "silver")], true),
        ("In, not matching", selector(&[], &[("tier", "In", Some(vec!["gold"]))]), &[("tier", "bronze")], false),
        ("In, label absent", selector(&[], &[("tier", "In", Some(vec!["gold"]))]), &[], false),
        ("NotIn, other value", selector(&[], &[("tier", "NotIn", Some(vec!["free"]))]), &[("tier", "gold")], true),
        ("NotIn, listed value", selector(&[], &[("tier", "NotIn", Some(vec!["free"]))]), &[("tier", "free")], false),
        ("Exists, present", selector(&[], &[("tier", "Exists", None)]), &[("tier", "")], true),
        ("Exists, absent", selector(&[], &[("tier", "Exists", None)]), &[], false),
        ("DoesNotExist, absent", selector(&[], &[("quarantine", "DoesNotExist", None)]), &[], true),
        ("DoesNotExist, present", selector(&[], &[("quarantine", "DoesNotExist", None)]), &[("quarantine", "yes")], false),
        (
            "labels and expressions, both match",
            selector(&[(KEY, "true")], &[("tier", "In", Some(vec!["gold"]))]),
            &[(KEY, "true"), ("tier", "gold")],
            true,
        ),
        ("labels and expressions, one fails", selector(&[(KEY, "true")], &[("tier", "In", Some(vec!["gold"]))]), &[(KEY, "true")], false),
        ("the empty selector matches everything", selector(&[], &[]), &[], true),
        // Selectors Kubernetes itself would reject allow nothing.
        ("unknown operator", selector(&[], &[("tier", "Bogus", None)]), &[("tier", "gold")], false),
        ("In without values", selector(&[], &[("tier", "In", None)]), &[("tier", "gold")], false),
        ("In with an empty value list", selector(&[], &[("tier", "In", Some(vec![]))]), &[("tier", "gold")], false),
        ("NotIn without values", selector(&[], &[("tier", "NotIn", None)]), &[("tier", "gold")], false),
        ("NotIn with an empty value list", selector(&[], &[("tier", "NotIn", Some(vec![]))]), &[("tier", "gold")], false),
        ("Exists with values", selector(&[], &[("tier", "Exists", Some(vec!["gold"]))]), &[("tier", "gold")], false),
        ("DoesNotExist with values", selector(&[], &[("quarantine", "DoesNotExist", Some(vec!["yes"]))]), &[], false),
    ];
    for (what, selector, namespace_labels, allowed) in cases {
        let mut world = World::story();
        world.partner_mut("techhelp").spec.client_namespace_selector = Some(selector);
        for (k, v) in namespace_labels {
            world.label(BETA, k, v);
        }
        let plan = world.plan();
        let expected = if allowed { Reason::Active } else { Reason::NamespaceNotAllowed };
        assert_eq!(link_reason(&plan, "techhelp"), expected, "{what}");
        assert_eq!(!plan.bindings.is_empty(), allowed, "{what}");
    }
}

#[test]
fn a_link_in_a_partners_home_namespace_is_not_allowed() {
    let mut world = World::story();
    world.links.push(link(HOME, "self", "techhelp", vec![inline("support", settings_rules())]));
    world.grants.push(grant(HOME, "self-grant", &[HOME], "support", vec![user(BOB)]));
    let plan = world.plan_in(HOME);
    assert_eq!(link_reason(&plan, "self"), Reason::NamespaceNotAllowed);
    assert_eq!(grant_reason(&plan, HOME, "self-grant"), Reason::LinkNotReady);
    assert!(nothing_granted(&plan));
}

// ---- time ---------------------------------------------------------------------------------

#[test]
fn expiry_is_at_the_instant() {
    // (what, link expires, grant expires, link reason, grant reason)
    type Case<'a> = (&'a str, Option<i64>, Option<i64>, Reason, Reason);
    let cases: Vec<Case> = vec![
        ("no expiry", None, None, Reason::Active, Reason::Granted),
        ("link a second away", Some(1), None, Reason::Active, Reason::Granted),
        ("link at the instant", Some(0), None, Reason::Expired, Reason::LinkNotReady),
        ("link a second ago", Some(-1), None, Reason::Expired, Reason::LinkNotReady),
        ("grant a second away", None, Some(1), Reason::Active, Reason::Granted),
        ("grant at the instant", None, Some(0), Reason::Active, Reason::Expired),
        ("grant a second ago", None, Some(-1), Reason::Active, Reason::Expired),
        ("both past", Some(-5), Some(-1), Reason::Expired, Reason::LinkNotReady),
    ];
    for (what, link_at, grant_at, link_expected, grant_expected) in cases {
        let mut world = World::story();
        world.beta().spec.expires_at = link_at.map(|s| Expiry::from(from_now(s)));
        world.grant_mut("beta-support").spec.expires_at = grant_at.map(|s| Expiry::from(from_now(s)));
        let plan = world.plan();
        assert_eq!(link_reason(&plan, "techhelp"), link_expected, "{what}");
        assert_eq!(grant_reason(&plan, HOME, "beta-support"), grant_expected, "{what}");
        assert_eq!(binding_of(&plan, HOME, "beta-support").is_some(), grant_expected == Reason::Granted, "{what}");
        if link_expected == Reason::Expired {
            assert!(nothing_granted(&plan), "{what}: an expired link grants nothing, not even its key");
        }
        if grant_expected == Reason::Expired {
            assert!(plan.access_key.is_some(), "{what}: the grant's expiry does not touch the link's key");
        }
    }
}

#[test]
fn wake_at_is_the_earliest_future_expiry_of_the_link_and_its_grants() {
    // (what, link expires, grant expires, other grant expires, wake at)
    type Case<'a> = (&'a str, Option<i64>, Option<i64>, Option<i64>, Option<i64>);
    let cases: Vec<Case> = vec![
        ("nothing expires", None, None, None, None),
        ("the link alone", Some(3600), None, None, Some(3600)),
        ("a grant alone", None, Some(60), None, Some(60)),
        ("the grant first", Some(3600), Some(1800), None, Some(1800)),
        ("the link first", Some(600), Some(1800), None, Some(600)),
        ("the earliest of two grants", None, Some(1800), Some(900), Some(900)),
        ("a past grant wakes nobody", Some(3600), Some(-60), None, Some(3600)),
        ("an expiry at this instant wakes nobody", None, Some(0), Some(120), Some(120)),
        ("all past", None, Some(-60), Some(-1), None),
        ("the link expired: nothing more will change", Some(-1), Some(60), None, None),
        ("a refused grant still ends", None, None, Some(300), Some(300)),
    ];
    for (what, link_at, grant_at, other_at, wake) in cases {
        let mut world = World::story();
        world.beta().spec.expires_at = link_at.map(|s| Expiry::from(from_now(s)));
        world.grant_mut("beta-support").spec.expires_at = grant_at.map(|s| Expiry::from(from_now(s)));
        let mut other = grant(HOME, "beta-later", &[BETA], "nope", vec![user(BOB)]);
        other.spec.expires_at = other_at.map(|s| Expiry::from(from_now(s)));
        world.grants.push(other);
        assert_eq!(world.plan().wake_at, wake.map(from_now), "{what}");
    }
}

#[test]
fn a_refused_link_wakes_when_it_expires_to_say_so() {
    // Suspended now; at its expiry the reason becomes Expired (rule 7), so the plan changes then.
    let mut world = World::story();
    world.beta().spec.suspended = Some(true);
    world.beta().spec.expires_at = Some(Expiry::from(from_now(60)));
    let plan = world.plan();
    assert_eq!(link_reason(&plan, "techhelp"), Reason::Suspended);
    assert_eq!(plan.links["techhelp"].ends_at, Some(from_now(60)));
    assert_eq!(plan.wake_at, Some(from_now(60)));
    world.now = from_now(60);
    let plan = world.plan();
    assert_eq!(link_reason(&plan, "techhelp"), Reason::Expired);
    assert_eq!(plan.wake_at, None);
}

#[test]
fn access_ends_at_the_earlier_of_the_link_and_the_grant() {
    // (link expires, grant expires, ends at)
    let cases: Vec<(Option<i64>, Option<i64>, Option<i64>)> = vec![
        (None, None, None),
        (Some(100), None, Some(100)),
        (None, Some(50), Some(50)),
        (Some(100), Some(50), Some(50)),
        (Some(50), Some(100), Some(50)),
    ];
    for (link_at, grant_at, ends) in cases {
        let mut world = World::story();
        world.beta().spec.expires_at = link_at.map(|s| Expiry::from(from_now(s)));
        world.grant_mut("beta-support").spec.expires_at = grant_at.map(|s| Expiry::from(from_now(s)));
        let plan = world.plan();
        let ends = ends.map(from_now);
        assert_eq!(plan.grant(HOME, "beta-support").unwrap().ends_at, ends, "{link_at:?} {grant_at:?}");
        let annotation = binding_of(&plan, HOME, "beta-support")
            .unwrap()
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(names::ACCESS_ENDS_AT))
            .cloned();
        assert_eq!(annotation, ends.map(|at| at.to_string()), "{link_at:?} {grant_at:?}");
        assert_eq!(plan.links["techhelp"].ends_at, link_at.map(from_now));
    }
}

#[test]
fn suspending_revokes_and_resuming_restores_the_same_objects() {
    let before = World::story().plan();
    let mut world = World::story();
    world.beta().spec.suspended = Some(true);
    let suspended = world.plan();
    assert_eq!(link_reason(&suspended, "techhelp"), Reason::Suspended);
    assert!(suspended.links["techhelp"].verdict.message.contains("spec.suspended"));
    assert!(nothing_granted(&suspended));
    assert_eq!(grant_reason(&suspended, HOME, "beta-support"), Reason::LinkNotReady);
    world.beta().spec.suspended = Some(false);
    assert_eq!(world.plan(), before, "resuming restores exactly the plan of before");
}

// ---- the ceiling --------------------------------------------------------------------------

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
    world.roles.get_mut(BETA).unwrap().insert("pod-deleter".into(), vec![rule(&[""], &["pods"], &["get", "delete"])]);
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
    assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::Granted, "the level within the ceiling still works");
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
    assert!(grant_message.contains("delete pods.core") && !grant_message.contains("get pods.core"), "{grant_message}");
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
    let case = |what, level, role, cluster_role, reason, rules| Case { what, level, role, cluster_role, reason, rules };
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
        case("an empty Role is fine and grants nothing", from_role("x", "r"), vec![], vec![], Reason::Granted, Some(vec![])),
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
        case("ClusterRole missing", from_cluster_role("x", "absent"), vec![], vec![], Reason::RoleNotFound, None),
    ];
    for Case { what, level, role, cluster_role, reason, rules } in cases {
        let mut world = World::story();
        world.beta().spec.access_levels.push(level);
        world.roles.get_mut(BETA).unwrap().insert("r".into(), role);
        world.cluster_roles.insert("c".into(), cluster_role);
        world.grants.push(grant(HOME, "g-x", &[BETA], "x", vec![user(BOB)]));
        let plan = world.plan();
        assert_eq!(grant_reason(&plan, HOME, "g-x"), reason, "{what}");
        assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::Granted, "{what}: the other levels still work");
        let link_expected = if reason == Reason::Granted { Reason::Active } else { reason };
        assert_eq!(link_reason(&plan, "techhelp"), link_expected, "{what}");
        assert_eq!(role_of(&plan, LINK_UID, "x").map(|r| r.rules.clone().unwrap()), rules, "{what}");
        assert_eq!(binding_of(&plan, HOME, "g-x").is_some(), reason == Reason::Granted, "{what}");
    }
}

#[test]
fn a_ceiling_limited_to_names_covers_only_those_names() {
    let mut world = World::story();
    world.ceiling = Some(vec![named(rule(&[""], &["configmaps"], &["get"]), &["tickets"]), rule(&[""], &["pods"], READ)]);
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
    rules.push(PolicyRule { non_resource_urls: Some(strings(&["/healthz"])), verbs: strings(&["get"]), ..Default::default() });
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
    assert!(plan.links["techhelp"].grants.iter().all(|g| !g.granted && g.reason.as_deref() == Some("CeilingNotFound")));

    world.ceiling = Some(vec![]);
    let plan = world.plan();
    assert!(nothing_granted(&plan), "an empty ceiling covers nothing");
    assert_eq!(link_reason(&plan, "techhelp"), Reason::EscalationDenied);
}

// ---- grants -------------------------------------------------------------------------------

#[test]
fn grant_refusals() {
    type Change = fn(&mut AccessGrant);
    let cases: Vec<(&str, Change, Reason)> = vec![
        ("unknown level", |g| g.spec.access_level = "admin".into(), Reason::LevelNotFound),
        ("a foreign user", |g| g.spec.subjects.push(user("eve@evil.example")), Reason::SubjectNotAllowed),
        ("a user who is only the suffix", |g| g.spec.subjects.push(user("@techhelp.example")), Reason::SubjectNotAllowed),
        ("a user with the suffix inside", |g| g.spec.subjects.push(user("eve@techhelp.example.evil")), Reason::SubjectNotAllowed),
        ("an unlisted group", |g| g.spec.subjects.push(group("techhelp:admins")), Reason::SubjectNotAllowed),
        ("system:masters", |g| g.spec.subjects.push(group("system:masters")), Reason::SubjectNotAllowed),
        ("system:authenticated", |g| g.spec.subjects.push(group("system:authenticated")), Reason::SubjectNotAllowed),
        ("a system user", |g| g.spec.subjects.push(user("system:admin")), Reason::SubjectNotAllowed),
        ("a system user with the suffix", |g| g.spec.subjects.push(user("system:x@techhelp.example")), Reason::SubjectNotAllowed),
        (
            "a system service account name",
            |g| g.spec.subjects.push(sa("system:serviceaccount:kube-system:default")),
            Reason::SubjectNotAllowed,
        ),
        ("an invalid service account name", |g| g.spec.subjects.push(sa("Ticket_Bot")), Reason::SubjectNotAllowed),
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
            |g| g.spec.subjects.push(Subject { kind: SubjectKind::ServiceAccount, name: "bot".into(), namespace: Some(HOME.into()) }),
            Reason::SubjectNotAllowed,
        ),
        (
            "a namespaced user",
            |g| g.spec.subjects.push(Subject { kind: SubjectKind::User, name: BOB.into(), namespace: Some(BETA.into()) }),
            Reason::SubjectNotAllowed,
        ),
        ("no subjects", |g| g.spec.subjects.clear(), Reason::NoSubjects),
        ("expired at the instant", |g| g.spec.expires_at = Some(Expiry::from(now())), Reason::Expired),
        ("being deleted", |g| g.metadata.deletion_timestamp = Some(Time(now())), Reason::Deleting),
        ("in another partner's home", |g| g.metadata.namespace = Some(OTHER_HOME.into()), Reason::LinkNotFound),
        ("in a namespace that is nobody's home", |g| g.metadata.namespace = Some(GAMMA.into()), Reason::LinkNotFound),
        ("in the client namespace itself", |g| g.metadata.namespace = Some(BETA.into()), Reason::LinkNotFound),
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
        assert!(plan.bindings.iter().all(|b| b.metadata.labels.as_ref().unwrap()[names::ACCESS_GRANT] != "refused"), "{what}: no binding");
        assert!(role_of(&plan, LINK_UID, "settings").is_none(), "{what}: its level is not in use");
        assert_eq!(grant_reason(&plan, HOME, "control"), Reason::Granted, "{what}: the others are untouched");
        assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::Granted, "{what}");
        assert_eq!(link_reason(&plan, "techhelp"), Reason::Active, "{what}: the link itself is fine");
        let summary = plan.links["techhelp"].grants.iter().find(|s| s.grant == format!("{refused_ns}/refused"));
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
    world.links.push(created(link(BETA, "newcomer", "other", vec![inline("support", settings_rules())]), FEB));
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
    assert!(verdict.message.contains("eve@evil.example") && verdict.message.contains("system:masters"), "{}", verdict.message);
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
        Some(vec![rbac_user("dan@th-contractors.example"), rbac_group("techhelp:oncall"), rbac_user(BOB), rbac_group(ANALYSTS)])
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
    let cases: Vec<(&str, Change)> =
        vec![("no link at all", |w| w.links.clear()), ("the only link is being deleted", |w| *w.beta() = deleting(w.beta().clone()))];
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
    world.grants.push(grant(HOME, "z-tickets", &[BETA], "tickets", vec![user(BOB), user("carl@techhelp.example")]));
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

// ---- names, labels, owners ----------------------------------------------------------------

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

// ---- properties ---------------------------------------------------------------------------

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
    let own =
        prop_oneof!["[a-c]{1,3}@techhelp\\.example".prop_map(|n| user(&n)), Just(group(ANALYSTS)), "[a-c]{1,3}".prop_map(|n| sa(&n)),];
    prop_oneof![3 => prop::collection::vec(own, 1..4), 2 => prop::collection::vec(arb_subject(), 0..4)]
}

fn arb_access_rule() -> impl Strategy<Value = AccessRule> {
    let anything = (
        prop::sample::subsequence(vec!["", "apps", "*"], 1..3),
        prop::sample::subsequence(vec!["pods", "secrets", "configmaps", "*", "pods/log", "pods/exec", "deployments/scale"], 1..3),
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
    let link = world.links.iter().find(|l| l.metadata.uid.as_deref() == Some(uid)).expect("the active link is one of the inputs");
    let partner =
        world.partners.iter().find(|p| p.metadata.name.as_deref() == Some(link.spec.partner.as_str())).expect("its partner exists");
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
        for reason in plan.links.values().map(|l| l.verdict.reason).chain(plan.grants.iter().map(|g| g.verdict.reason)) {
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
