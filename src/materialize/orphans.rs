//! Orphans: objects Liaison made whose owner no longer exists (a finalizer removed by hand
//! while the operator was down, a garbage collector that is behind), removed by the sweep.
//!
//! What counts as Liaison's is `desired::ownership`'s rule: labels alone, which tenants can
//! write, never make Liaison delete anything.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::{Error, Writer};
use crate::cache::Caches;
use crate::desired::ownership;

/// Removes every object Liaison made whose link or partner no longer exists. Returns how many.
pub async fn remove(writer: &Writer, caches: &Caches) -> Result<usize, Error> {
    let links = caches.links.state();
    let partners = caches.partners.state();
    let live: BTreeSet<String> =
        links.iter().filter_map(|l| l.uid()).chain(partners.iter().filter_map(|p| p.uid())).collect();
    let orphan = |meta: &ObjectMeta| is_orphan(meta, &live);
    Ok(writer.prune_cached(caches.role_bindings.state(), |o: &RoleBinding| orphan(&o.metadata)).await?
        + writer
            .prune_cached(caches.cluster_role_bindings.state(), |o: &ClusterRoleBinding| orphan(&o.metadata))
            .await?
        + writer
            .prune_cached(caches.service_accounts.state(), |o: &ServiceAccount| orphan(&o.metadata))
            .await?
        + writer.prune_cached(caches.roles.state(), |o: &Role| orphan(&o.metadata)).await?
        + writer.prune_cached(caches.cluster_roles.state(), |o: &ClusterRole| orphan(&o.metadata)).await?
        + writer.prune_named::<RoleBinding>(caches.grant_bindings.orphans(&live)).await?
        + writer.prune_named::<Role>(caches.level_roles.orphans(&live)).await?)
}

/// Whether `meta` is Liaison's and its owner is not among `live_owners`.
pub fn is_orphan(meta: &ObjectMeta, live_owners: &BTreeSet<String>) -> bool {
    ownership::owner(meta).is_some_and(|owned| !live_owners.contains(owned.owner_uid))
        && meta.deletion_timestamp.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::names::{self, Component};

    fn role(owner: &str, named_for: &str) -> ObjectMeta {
        let mut labels = names::base_labels(Component::LevelRole, "p", owner);
        labels.insert(names::ACCESS_LEVEL.into(), "support".into());
        ObjectMeta {
            name: Some(names::level_role(named_for, "support")),
            labels: Some(labels),
            ..Default::default()
        }
    }

    #[test]
    fn only_liaison_objects_of_vanished_owners_are_orphans() {
        let live = BTreeSet::from(["alive".to_string()]);
        assert!(is_orphan(&role("gone", "gone"), &live));
        assert!(!is_orphan(&role("alive", "alive"), &live), "owner exists");
        assert!(!is_orphan(&role("gone", "someone-else"), &live), "labels alone prove nothing");
        let mut deleting = role("gone", "gone");
        deleting.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        assert!(!is_orphan(&deleting, &live), "already going");
    }
}
