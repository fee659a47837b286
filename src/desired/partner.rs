//! What a Partner itself should have: its guest suite and the roles of the people around it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject as RbacSubject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::client::partner_owner;
use super::names::{self, Component};
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
    PolicyRule { api_groups: Some(strings(groups)), resources: Some(strings(resources)), verbs: strings(verbs), ..Default::default() }
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];

/// Partner Admins manage grants and robots in their suite and read their access keys.
pub fn admin_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["liaison.dev"], &["accessgrants"], WRITE),
        rule(&["liaison.dev"], &["accessgrants/status"], READ),
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
        rule(&[""], &["serviceaccounts"], READ),
        rule(&["", "events.k8s.io"], &["events"], READ),
    ]
}

pub fn plan(partner: &Partner, home_access: Option<&HomeAccess>) -> PartnerPlan {
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
    let role_ref = |kind: &str, role: &str| RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: kind.into(), name: role.into() };

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
                labels: Some(BTreeMap::from([
                    (names::MANAGED_BY.to_string(), names::MANAGER.to_string()),
                    (names::HOME_OF.to_string(), name.clone()),
                ])),
                ..Default::default()
            },
            ..Default::default()
        },
        admin_role: Role { metadata: meta(names::PARTNER_ADMIN, Some(&home), Component::PartnerAdmin), rules: Some(admin_rules()) },
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
