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
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference, Time,
};
use kube::Resource;
use proptest::prelude::*;

use super::*;
use crate::api::{
    AccessGrantSpec, AccessKey, ClientLinkSpec, ClientLinkStatus, Expiry, Identities, PartnerSpec, Subject,
};
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
    AccessRule {
        api_groups: strings(groups),
        resources: strings(resources),
        verbs: strings(verbs),
        resource_names: vec![],
    }
}

fn inline(name: &str, rules: Vec<AccessRule>) -> AccessLevel {
    AccessLevel { name: name.into(), cluster_role: None, role: None, rules: Some(rules), on_request: None }
}

fn from_role(name: &str, role: &str) -> AccessLevel {
    AccessLevel {
        name: name.into(),
        cluster_role: None,
        role: Some(role.into()),
        rules: None,
        on_request: None,
    }
}

fn from_cluster_role(name: &str, cluster_role: &str) -> AccessLevel {
    AccessLevel {
        name: name.into(),
        cluster_role: Some(cluster_role.into()),
        role: None,
        rules: None,
        on_request: None,
    }
}

/// The platform's ceiling: read-only, no Secrets.
fn ceiling() -> Vec<PolicyRule> {
    vec![
        rule(
            &["", "apps", "batch"],
            &[
                "pods",
                "pods/log",
                "configmaps",
                "services",
                "endpoints",
                "events",
                "deployments",
                "replicasets",
                "jobs",
                "cronjobs",
            ],
            READ,
        ),
        rule(&["apps"], &["*/scale"], &["get"]),
    ]
}

/// The ClusterRole the story's `support` level names.
fn view() -> Vec<PolicyRule> {
    vec![
        rule(&[""], &["pods", "pods/log", "configmaps", "services"], READ),
        rule(&["apps"], &["deployments"], READ),
    ]
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
            identities: Identities {
                user_suffixes: vec![format!("@{name}.example")],
                groups: vec![format!("{name}:analysts")],
            },
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
        ClientLinkSpec { partner: partner.into(), access_levels: levels, ..Default::default() },
    );
    l.metadata.namespace = Some(ns.into());
    l.metadata.uid = Some(format!("uid-link-{ns}-{name}"));
    created(l, JAN)
}

fn grant(home: &str, name: &str, clients: &[&str], level: &str, subjects: Vec<Subject>) -> AccessGrant {
    let mut g = AccessGrant::new(
        name,
        AccessGrantSpec {
            clients: strings(clients).into(),
            access_level: level.into(),
            subjects,
            expires_at: None,
            review: None,
        },
    );
    g.metadata.namespace = Some(home.into());
    g.metadata.uid = Some(format!("uid-grant-{home}-{name}"));
    created(g, JAN)
}

fn selector(labels: &[(&str, &str)], expressions: &[(&str, &str, Option<Vec<&str>>)]) -> LabelSelector {
    LabelSelector {
        match_labels: (!labels.is_empty())
            .then(|| labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
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
            vec![
                from_cluster_role("support", "view"),
                from_role("tickets", "ticket-reader"),
                inline("settings", settings_rules()),
            ],
        );
        beta.spec.access_key = Some(AccessKey { access_level: "support".into() });
        beta.spec.expires_at = Some(Expiry::from(t("2027-06-30T00:00:00Z")));
        let mut support = grant(
            HOME,
            "beta-support",
            &[BETA],
            "support",
            vec![user(BOB), group(ANALYSTS), sa("ticket-bot")],
        );
        support.spec.expires_at = Some(Expiry::from(t("2026-12-31T00:00:00Z")));
        World {
            namespace_labels: BTreeMap::new(),
            partners: vec![techhelp],
            links: vec![beta],
            grants: vec![support],
            roles: BTreeMap::from([(
                BETA.to_string(),
                BTreeMap::from([("ticket-reader".to_string(), ticket_reader())]),
            )]),
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
        let links: Vec<ClientLink> =
            self.links.iter().filter(|l| l.metadata.namespace.as_deref() == Some(ns)).cloned().collect();
        let grants: Vec<Arc<AccessGrant>> = self
            .grants
            .iter()
            .filter(|g| g.spec.clients.iter().any(|c| c == ns))
            .cloned()
            .map(Arc::new)
            .collect();
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
        self.links
            .iter_mut()
            .find(|l| l.metadata.namespace.as_deref() == Some(ns) && l.metadata.name.as_deref() == Some(name))
            .unwrap()
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

fn role_ref_to(name: &str) -> RoleRef {
    RoleRef { api_group: RBAC.into(), kind: "Role".into(), name: name.into() }
}

fn link_reason(plan: &ClientPlan, name: &str) -> Reason {
    plan.links
        .get(name)
        .unwrap_or_else(|| panic!("no verdict for link {name}: {:?}", plan.links))
        .verdict
        .reason
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
    Some(
        plan.bindings
            .iter()
            .find(|b| b.metadata.name.as_deref() == Some(binding))
            .expect("a granted grant's binding is planned"),
    )
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

/// The story plus a younger link in beta to `other`, with a grant and a key of its own.
fn contested() -> World {
    let mut world = World::story_with_other();
    let mut rival = created(link(BETA, "other", "other", vec![inline("support", settings_rules())]), FEB);
    rival.spec.access_key = Some(AccessKey { access_level: "support".into() });
    world.links.push(rival);
    world.grants.push(grant(OTHER_HOME, "beta-help", &[BETA], "support", vec![user("carol@other.example")]));
    world
}

mod access_key;
mod beyond_the_ceiling;
mod finalizer;
mod grant_limit;
mod grants;
mod naming;
mod one_partner_per_namespace;
mod properties;
mod standing;
mod story;
mod time;
