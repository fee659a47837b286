//! The periodic sweep: objects Liaison made whose owner no longer exists (a finalizer removed
//! by hand while the operator was down, a garbage collector that is behind) are removed.
//!
//! What counts as Liaison's is `desired::ownership`'s rule: labels alone, which tenants can
//! write, never make Liaison delete anything.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::desired::ownership;

/// Whether `meta` is Liaison's and its owner is not among `live_owners`.
pub fn is_orphan(meta: &ObjectMeta, live_owners: &BTreeSet<String>) -> bool {
    ownership::owner(meta).is_some_and(|owned| !live_owners.contains(owned.owner_uid)) && meta.deletion_timestamp.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::names::{self, Component};

    fn role(owner: &str, named_for: &str) -> ObjectMeta {
        let mut labels = names::base_labels(Component::LevelRole, "p", owner);
        labels.insert(names::ACCESS_LEVEL.into(), "support".into());
        ObjectMeta { name: Some(names::level_role(named_for, "support")), labels: Some(labels), ..Default::default() }
    }

    #[test]
    fn only_liaison_objects_of_vanished_owners_are_orphans() {
        let live = BTreeSet::from(["alive".to_string()]);
        assert!(is_orphan(&role("gone", "gone"), &live));
        assert!(!is_orphan(&role("alive", "alive"), &live), "owner exists");
        assert!(!is_orphan(&role("gone", "someone-else"), &live), "labels alone prove nothing");
        let mut deleting = role("gone", "gone");
        deleting.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        assert!(!is_orphan(&deleting, &live), "already going");
    }
}
