//! Whether a live object already says what Liaison wants it to say.
//!
//! Only what Liaison sets is compared: labels and annotations it sets must be present with its
//! values (others may add their own), owner references likewise, and the payload (rules,
//! subjects, roleRef, data) must be equal. Anything else a tenant changed is not ours.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use super::keys::Version;

/// What a cache says about an object Liaison wants: the comparison of the two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// It says what Liaison wants.
    pub matches: bool,
    /// A field that cannot be changed in place differs: delete, then create.
    pub needs_recreate: bool,
    pub version: Option<Version>,
}

pub trait Materialized: Resource<DynamicType = ()> {
    /// The payload compared besides metadata.
    fn same_payload(&self, existing: &Self) -> bool;

    /// A field that cannot be updated in place differs: delete, then create.
    fn needs_recreate(&self, _existing: &Self) -> bool {
        false
    }

    /// Fields the API server refuses to change in place.
    fn immutable_fields(&self) -> &'static [&'static str] {
        &[]
    }

    fn is_matched_by(&self, existing: &Self) -> bool {
        meta_matches(self.meta(), existing.meta()) && self.same_payload(existing)
    }
}

fn subset(wanted: &Option<BTreeMap<String, String>>, have: &Option<BTreeMap<String, String>>) -> bool {
    let have = have.as_ref();
    wanted.iter().flatten().all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
}

fn meta_matches(wanted: &ObjectMeta, have: &ObjectMeta) -> bool {
    let owners = have.owner_references.as_deref().unwrap_or_default();
    subset(&wanted.labels, &have.labels)
        && subset(&wanted.annotations, &have.annotations)
        && wanted.owner_references.iter().flatten().all(|w| owners.contains(w))
}

fn same_or_empty<T: PartialEq>(a: &Option<Vec<T>>, b: &Option<Vec<T>>) -> bool {
    a.as_deref().unwrap_or_default() == b.as_deref().unwrap_or_default()
}

impl Materialized for Role {
    fn same_payload(&self, existing: &Self) -> bool {
        same_or_empty(&self.rules, &existing.rules)
    }
}

impl Materialized for ClusterRole {
    fn same_payload(&self, existing: &Self) -> bool {
        same_or_empty(&self.rules, &existing.rules) && self.aggregation_rule == existing.aggregation_rule
    }
}

/// Bindings compare the same whatever their scope; `roleRef` is immutable, so a different one
/// means delete and create.
macro_rules! binding {
    ($($t:ty),*) => {$(
        impl Materialized for $t {
            fn same_payload(&self, existing: &Self) -> bool {
                self.role_ref == existing.role_ref && same_or_empty(&self.subjects, &existing.subjects)
            }
            fn needs_recreate(&self, existing: &Self) -> bool {
                self.role_ref != existing.role_ref
            }
            fn immutable_fields(&self) -> &'static [&'static str] {
                &["roleRef"]
            }
        }
    )*};
}
binding!(RoleBinding, ClusterRoleBinding);

impl Materialized for ServiceAccount {
    fn same_payload(&self, existing: &Self) -> bool {
        self.automount_service_account_token == existing.automount_service_account_token
    }
}

impl Materialized for Secret {
    fn same_payload(&self, existing: &Self) -> bool {
        self.data == existing.data && self.type_ == existing.type_
    }
}

impl Materialized for Namespace {
    /// A namespace is only ever labelled, never otherwise changed.
    fn same_payload(&self, _existing: &Self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};

    fn binding(role: &str, subjects: &[&str], labels: &[(&str, &str)]) -> RoleBinding {
        RoleBinding {
            metadata: ObjectMeta {
                name: Some("b".into()),
                labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "Role".into(),
                name: role.into(),
            },
            subjects: Some(
                subjects
                    .iter()
                    .map(|s| Subject { kind: "User".into(), name: s.to_string(), ..Default::default() })
                    .collect(),
            ),
        }
    }

    #[test]
    fn extra_labels_of_others_are_tolerated_but_ours_must_hold() {
        let desired = binding("r", &["bob"], &[("a", "1")]);
        assert!(desired.is_matched_by(&binding("r", &["bob"], &[("a", "1"), ("team", "x")])));
        assert!(!desired.is_matched_by(&binding("r", &["bob"], &[("a", "2")])));
        assert!(!desired.is_matched_by(&binding("r", &["bob"], &[])));
    }

    #[test]
    fn an_added_subject_is_a_difference() {
        let desired = binding("r", &["bob"], &[]);
        assert!(!desired.is_matched_by(&binding("r", &["bob", "mallory"], &[])));
    }

    #[test]
    fn a_changed_role_ref_forces_recreation() {
        let desired = binding("r", &["bob"], &[]);
        let existing = binding("other", &["bob"], &[]);
        assert!(!desired.is_matched_by(&existing));
        assert!(desired.needs_recreate(&existing));
        assert!(!desired.needs_recreate(&binding("r", &["eve"], &[])));
    }

    #[test]
    fn role_rules_compare_exactly() {
        let rule = |verb: &str| PolicyRule { verbs: vec![verb.into()], ..Default::default() };
        let role = |rules: Vec<PolicyRule>| Role { metadata: ObjectMeta::default(), rules: Some(rules) };
        assert!(role(vec![rule("get")]).is_matched_by(&role(vec![rule("get")])));
        assert!(!role(vec![rule("get")]).is_matched_by(&role(vec![rule("get"), rule("delete")])));
        assert!(role(vec![]).is_matched_by(&Role { metadata: ObjectMeta::default(), rules: None }));
    }
}
