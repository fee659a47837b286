//! What a Partner itself should have: its guest suite and the roles of the people around it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject as RbacSubject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::client::partner_owner;
use super::names::{self, Component};
use super::verdict::{Reason, Verdict};
use crate::api::{Partner, Subject, SubjectKind};

/// Who the operator is, and the ClusterRole (Secrets of one namespace) it binds itself to in
/// each partner home namespace. Without it (a development run with admin credentials), no
/// binding is made.
#[derive(Debug, Clone, PartialEq)]
pub struct HomeAccess {
    pub service_account: String,
    pub namespace: String,
    pub cluster_role: String,
}

/// What Liaison may do with the namespace a Partner names as its home. A home's Secrets
/// (access keys) and ServiceAccounts become readable by the partner's admins, so a namespace is
/// a home only if Liaison created it for this Partner, or it was adopted with the consent of
/// both the Partner's spec and whoever administers the namespace (`adoption`); either way it
/// carries the Partner's UID in a label only the operator may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeClaim {
    /// It does not exist: create it, marked as this Partner's.
    Create,
    /// It is marked as this Partner's.
    Own { adopted: bool },
    /// It exists, unmarked or marked by a Partner that is gone; the spec asks to adopt it and the
    /// namespace is labelled adoptable by this Partner.
    Adopt,
}

impl HomeClaim {
    pub fn adopted(self) -> bool {
        matches!(self, HomeClaim::Adopt | HomeClaim::Own { adopted: true })
    }
}

/// What is known of a home namespace when a Partner claims it.
#[derive(Debug, Clone, Default)]
pub struct HomeFacts<'a> {
    /// The namespace's labels, if it exists.
    pub labels: Option<&'a BTreeMap<String, String>>,
    /// A ClientLink in it, if any.
    pub link: Option<&'a str>,
    /// The operator's own namespace.
    pub operator_namespace: Option<&'a str>,
    /// The name of the live Partner the namespace is marked as the home of, if another.
    pub marked_by_other: Option<&'a str>,
}

/// Whether the Partner may have its home, and how; refused with the reason otherwise.
pub fn home_claim(partner: &Partner, facts: &HomeFacts) -> Result<HomeClaim, Verdict> {
    let home = &partner.spec.home_namespace;
    let refused = |why: String| {
        Err(Verdict::new(Reason::HomeRefused, format!("namespace {home} is never a home: {why}")))
    };
    if home == "default" || home.starts_with("kube-") {
        return refused("it is a system namespace".into());
    }
    if facts.operator_namespace == Some(home.as_str()) {
        return refused("it is Liaison's own namespace".into());
    }
    let Some(labels) = facts.labels else { return Ok(HomeClaim::Create) };
    let mark = labels.get(names::HOME_OF_UID);
    if mark.is_some() && mark == partner.metadata.uid.as_ref() {
        return Ok(HomeClaim::Own { adopted: labels.get(names::HOME_ADOPTED).is_some_and(|v| v == "true") });
    }
    if let Some(other) = facts.marked_by_other {
        return Err(Verdict::new(
            Reason::HomeNamespaceConflict,
            format!("namespace {home} is partner {other}'s home"),
        ));
    }
    if let Some(link) = facts.link {
        return refused(format!("it holds ClientLink {link}, and a home holds no link"));
    }
    adoption(partner, labels)
}

/// An existing namespace that is not the Partner's becomes its home only if both sides asked:
/// the Partner (`spec.adoptExistingHome`) and whoever administers namespaces, by labelling it
/// `liaison.dev/adoptable-by: <partner>`, a label the operator cannot write (so its stolen
/// credentials cannot adopt a tenant's namespace and read its Secrets).
fn adoption(partner: &Partner, labels: &BTreeMap<String, String>) -> Result<HomeClaim, Verdict> {
    let (home, name) = (&partner.spec.home_namespace, partner.name_any());
    let asked = partner.spec.adopt_existing_home == Some(true);
    let adoptable_by = labels.get(names::ADOPTABLE_BY);
    if asked && adoptable_by == Some(&name) {
        return Ok(HomeClaim::Adopt);
    }
    let mut missing = Vec::new();
    if !asked {
        missing.push("spec.adoptExistingHome is not true".to_string());
    }
    match adoptable_by {
        None => missing.push(format!("the namespace has no {} label", names::ADOPTABLE_BY)),
        Some(other) if *other != name => {
            missing.push(format!("the namespace is adoptable by partner {other}"))
        }
        Some(_) => {}
    }
    let overwrite = if adoptable_by.is_some_and(|other| *other != name) { " --overwrite" } else { "" };
    Err(Verdict::new(
        Reason::HomeNotOwned,
        format!(
            "namespace {home} already exists and is not partner {name}'s home: {}. Adopting it (its \
             Secrets and ServiceAccounts become readable by the partner's admins) takes \
             spec.adoptExistingHome: true and the consent of whoever administers namespaces: \
             kubectl label namespace {home} {}={name}{overwrite}. Or choose a new namespace",
            missing.join(", and "),
            names::ADOPTABLE_BY,
        ),
    ))
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartnerPlan {
    /// Lets the operator manage access key Secrets in the home namespace, and only there.
    pub operator_binding: Option<RoleBinding>,
    /// Labels the home namespace must carry (it is created if absent, never deleted).
    pub home_namespace: Namespace,
    pub admin_role: Role,
    pub admin_binding: Option<RoleBinding>,
    pub observer_role: Role,
    pub observer_binding: Option<RoleBinding>,
    pub reader_role: ClusterRole,
    pub reader_binding: Option<ClusterRoleBinding>,
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        ..Default::default()
    }
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];

/// Partner Admins manage grants, requests for on-request levels and robots in their suite, and
/// read their access keys.
pub fn admin_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["liaison.dev"], &["accessgrants"], WRITE),
        rule(&["liaison.dev"], &["accessgrants/status"], READ),
        rule(&["liaison.dev"], &["accessrequests"], WRITE),
        rule(&["liaison.dev"], &["accessrequests/status"], READ),
        rule(&[""], &["serviceaccounts"], WRITE),
        rule(&[""], &["serviceaccounts/token"], &["create"]),
        rule(&[""], &["secrets"], READ),
        rule(&["", "events.k8s.io"], &["events"], READ),
    ]
}

/// The Responsible Party sees who was granted what, but no credentials.
pub fn observer_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["liaison.dev"], &["accessgrants", "accessgrants/status"], READ),
        rule(&["liaison.dev"], &["accessrequests", "accessrequests/status"], READ),
        rule(&[""], &["serviceaccounts"], READ),
        rule(&["", "events.k8s.io"], &["events"], READ),
    ]
}

pub fn plan(partner: &Partner, home_access: Option<&HomeAccess>, claim: HomeClaim) -> PartnerPlan {
    let name = partner.name_any();
    let uid = partner.metadata.uid.clone().unwrap_or_default();
    let home = partner.spec.home_namespace.clone();
    let owner = partner_owner(partner);
    let meta = |object_name: &str, namespace: Option<&str>, component: Component| ObjectMeta {
        name: Some(object_name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(names::base_labels(component, &name, &uid)),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    };
    let role_ref = |kind: &str, role: &str| RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: role.into(),
    };

    let admins = rbac_subjects(&partner.spec.admins, &home);
    let observers = rbac_subjects(partner.spec.responsible_party.as_slice(), &home);
    let readers: Vec<RbacSubject> = admins.iter().chain(&observers).cloned().collect();
    let reader_name = names::partner_reader(&name);

    PartnerPlan {
        operator_binding: home_access.map(|access| RoleBinding {
            metadata: meta(names::OPERATOR_HOME_ACCESS, Some(&home), Component::OperatorAccess),
            role_ref: role_ref("ClusterRole", &access.cluster_role),
            subjects: Some(vec![RbacSubject {
                kind: "ServiceAccount".into(),
                name: access.service_account.clone(),
                namespace: Some(access.namespace.clone()),
                api_group: None,
            }]),
        }),
        home_namespace: Namespace {
            metadata: ObjectMeta {
                name: Some(home.clone()),
                labels: Some(
                    [
                        (names::MANAGED_BY, names::MANAGER),
                        (names::HOME_OF, name.as_str()),
                        (names::HOME_OF_UID, uid.as_str()),
                        (names::HOME_ADOPTED, if claim.adopted() { "true" } else { "false" }),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        },
        admin_role: Role {
            metadata: meta(names::PARTNER_ADMIN, Some(&home), Component::PartnerAdmin),
            rules: Some(admin_rules()),
        },
        admin_binding: (!admins.is_empty()).then(|| RoleBinding {
            metadata: meta(names::PARTNER_ADMIN, Some(&home), Component::PartnerAdmin),
            role_ref: role_ref("Role", names::PARTNER_ADMIN),
            subjects: Some(admins.clone()),
        }),
        observer_role: Role {
            metadata: meta(names::PARTNER_OBSERVER, Some(&home), Component::PartnerObserver),
            rules: Some(observer_rules()),
        },
        observer_binding: (!observers.is_empty()).then(|| RoleBinding {
            metadata: meta(names::PARTNER_OBSERVER, Some(&home), Component::PartnerObserver),
            role_ref: role_ref("Role", names::PARTNER_OBSERVER),
            subjects: Some(observers.clone()),
        }),
        reader_role: ClusterRole {
            metadata: meta(&reader_name, None, Component::PartnerReader),
            rules: Some(vec![PolicyRule {
                resource_names: Some(vec![name.clone()]),
                ..rule(&["liaison.dev"], &["partners", "partners/status"], &["get", "watch"])
            }]),
            aggregation_rule: None,
        },
        reader_binding: (!readers.is_empty()).then(|| ClusterRoleBinding {
            metadata: meta(&reader_name, None, Component::PartnerReader),
            role_ref: role_ref("ClusterRole", &reader_name),
            subjects: Some(readers),
        }),
    }
}

/// Admins and the responsible party are named by the platform admin, who is trusted; only
/// ServiceAccounts need a namespace, and theirs is always the home namespace.
fn rbac_subjects(subjects: &[Subject], home: &str) -> Vec<RbacSubject> {
    subjects
        .iter()
        .map(|s| RbacSubject {
            kind: s.kind.as_str().into(),
            name: s.name.clone(),
            namespace: (s.kind == SubjectKind::ServiceAccount).then(|| home.to_string()),
            api_group: (s.kind != SubjectKind::ServiceAccount).then(|| "rbac.authorization.k8s.io".into()),
        })
        .collect()
}

#[cfg(test)]
#[path = "partner_tests.rs"]
mod tests;
