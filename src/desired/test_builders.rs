//! Builders shared by the desired-state tests.

use k8s_openapi::api::rbac::v1::{PolicyRule, Subject as RbacSubject};

use crate::api::{Subject, SubjectKind};

pub fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

pub fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        ..Default::default()
    }
}

pub fn named(rule: PolicyRule, names: &[&str]) -> PolicyRule {
    PolicyRule { resource_names: Some(strings(names)), ..rule }
}

pub fn user(name: &str) -> Subject {
    Subject::new(SubjectKind::User, name)
}

pub fn group(name: &str) -> Subject {
    Subject::new(SubjectKind::Group, name)
}

pub fn sa(name: &str) -> Subject {
    Subject::new(SubjectKind::ServiceAccount, name)
}

/// Subjects as a RoleBinding holds them.
pub fn rbac_user(name: &str) -> RbacSubject {
    RbacSubject { kind: "User".into(), name: name.into(), namespace: None, api_group: Some(RBAC.into()) }
}

pub fn rbac_group(name: &str) -> RbacSubject {
    RbacSubject { kind: "Group".into(), name: name.into(), namespace: None, api_group: Some(RBAC.into()) }
}

pub fn rbac_sa(name: &str, ns: &str) -> RbacSubject {
    RbacSubject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(ns.into()),
        api_group: None,
    }
}

const RBAC: &str = "rbac.authorization.k8s.io";

/// The plan of namespace `beta` with one partner and one link, under a ceiling (and a
/// ClusterRole `view`) of reading pods: the world the review and request tests judge in.
pub fn plan_in_beta(
    partner: crate::api::Partner,
    link: crate::api::ClientLink,
    grants: Vec<std::sync::Arc<crate::api::AccessGrant>>,
    requests: crate::desired::request::Requests,
    now: jiff::Timestamp,
) -> crate::desired::ClientPlan {
    use std::collections::BTreeMap;
    let partners = vec![partner];
    let homes = crate::desired::client::marked_homes(&partners);
    let view = vec![rule(&[""], &["pods"], &["get", "list"])];
    let cluster_roles = BTreeMap::from([("view".to_string(), view.clone())]);
    let (links, labels, roles) = (vec![link], BTreeMap::new(), BTreeMap::new());
    let inputs = crate::desired::ClientInputs {
        namespace: "beta",
        namespace_labels: &labels,
        links: &links,
        partners: &partners,
        homes: &homes,
        grants: &grants,
        roles: &roles,
        cluster_roles: &cluster_roles,
        ceiling: Some(&view as &[PolicyRule]),
        now,
    };
    crate::desired::client::plan_with(&inputs, requests)
}
