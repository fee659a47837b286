//! The periodic sweep: objects Liaison made whose owner no longer exists (a finalizer removed
//! by hand while the operator was down, a garbage collector that is behind) are removed.
//!
//! An object counts as Liaison's only if it carries Liaison's label, names its owner's UID in
//! a label, and has a controlling owner reference to a Liaison object with that UID: labels
//! alone, which tenants can write, never make Liaison delete anything.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::controlled_by;
use crate::desired::names;

/// The UID of the Liaison object that owns `meta`'s object: named in Liaison's label and by a
/// controlling owner reference, with Liaison's managed-by label.
pub fn liaison_owner(meta: &ObjectMeta) -> Option<&str> {
    let labels = meta.labels.as_ref()?;
    let managed = labels.get(names::MANAGED_BY).map(String::as_str) == Some(names::MANAGER);
    let owner = labels.get(names::OWNER_UID)?;
    (managed && controlled_by(meta, owner)).then_some(owner.as_str())
}

/// Whether `meta` is Liaison's and its owner is not among `live_owners`.
pub fn is_orphan(meta: &ObjectMeta, live_owners: &BTreeSet<String>) -> bool {
    liaison_owner(meta).is_some_and(|owner| !live_owners.contains(owner)) && meta.deletion_timestamp.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn meta(labels: &[(&str, &str)], owner: Option<(&str, &str)>) -> ObjectMeta {
        ObjectMeta {
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            owner_references: owner.map(|(api, uid)| {
                vec![OwnerReference {
                    api_version: api.into(),
                    kind: "ClientLink".into(),
                    name: "l".into(),
                    uid: uid.into(),
                    controller: Some(true),
                    block_owner_deletion: None,
                }]
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_liaison_objects_of_vanished_owners_are_orphans() {
        let live = BTreeSet::from(["alive".to_string()]);
        let ours = [(names::MANAGED_BY, names::MANAGER), (names::OWNER_UID, "gone")];
        assert!(is_orphan(&meta(&ours, Some(("liaison.dev/v1alpha1", "gone"))), &live));
        let alive = [(names::MANAGED_BY, names::MANAGER), (names::OWNER_UID, "alive")];
        assert!(!is_orphan(&meta(&alive, Some(("liaison.dev/v1alpha1", "alive"))), &live), "owner exists");
        assert!(!is_orphan(&meta(&ours, None), &live), "labels alone prove nothing");
        assert!(!is_orphan(&meta(&ours, Some(("v1", "gone"))), &live), "owner is not a Liaison object");
        assert!(!is_orphan(&meta(&ours, Some(("liaison.dev/v1alpha1", "other"))), &live), "owner reference and label disagree");
        assert!(
            !is_orphan(&meta(&[(names::OWNER_UID, "gone")], Some(("liaison.dev/v1alpha1", "gone"))), &live),
            "not labelled as Liaison's"
        );
    }
}
