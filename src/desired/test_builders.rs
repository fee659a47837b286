//! Builders shared by the desired-state tests.

use k8s_openapi::api::rbac::v1::PolicyRule;

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
