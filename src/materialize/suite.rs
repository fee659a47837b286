//! A partner's guest suite made to match its plan: the home namespace, the admin and observer
//! Roles, the read-only view of its own Partner, and their bindings.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use super::{Error, Writer};
use crate::cache::Caches;
use crate::desired::PartnerPlan;
use crate::desired::names;
use crate::desired::ownership;

/// Creates the home namespace, marked as the partner's. A create, never an apply: an apply
/// would take a namespace that the cache has not seen yet as if Liaison had made it.
/// Returns false if the namespace already exists.
pub async fn create_home(writer: &Writer, home: &Namespace) -> Result<bool, Error> {
    let namespaces: Api<Namespace> = Api::all(writer.client().clone());
    writer.metrics().write("Namespace");
    let params = PostParams { field_manager: Some(names::FIELD_MANAGER.into()), ..Default::default() };
    match namespaces.create(&params, home).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(source) => Err(Error::Write { kind: "Namespace", name: home.name_any(), source }),
    }
}

/// Writes the suite, then removes the bindings the plan no longer wants (no admins, no
/// responsible party).
pub async fn apply(writer: &Writer, caches: &Caches, plan: &PartnerPlan) -> Result<(), Error> {
    writer.ensure(&caches.managed_namespaces, &plan.home_namespace).await?;
    // The operator's own access to the home first: the rest of the suite is written with it.
    if let Some(binding) = &plan.operator_binding {
        writer.ensure(&caches.role_bindings, binding).await?;
    }
    writer.ensure(&caches.roles, &plan.admin_role).await?;
    writer.ensure(&caches.roles, &plan.observer_role).await?;
    writer.ensure(&caches.cluster_roles, &plan.reader_role).await?;
    let bindings = [&plan.operator_binding, &plan.admin_binding, &plan.observer_binding];
    for binding in bindings.into_iter().flatten() {
        writer.ensure(&caches.role_bindings, binding).await?;
    }
    if let Some(binding) = &plan.reader_binding {
        writer.ensure(&caches.cluster_role_bindings, binding).await?;
    }
    let uid = plan
        .admin_role
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(names::OWNER_UID))
        .cloned()
        .unwrap_or_default();
    let wanted: BTreeSet<String> = bindings.into_iter().flatten().map(|b| b.name_any()).collect();
    let stale = |meta: &ObjectMeta| {
        ownership::is_owned_by(meta, &uid) && !wanted.contains(meta.name.as_deref().unwrap_or_default())
    };
    writer.prune_cached(caches.role_bindings.state(), |o: &RoleBinding| stale(&o.metadata)).await?;
    if plan.reader_binding.is_none() {
        let theirs = |o: &ClusterRoleBinding| ownership::is_owned_by(&o.metadata, &uid);
        writer.prune_cached(caches.cluster_role_bindings.state(), theirs).await?;
    }
    Ok(())
}
