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
