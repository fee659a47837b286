//! Partner: its guest suite (home namespace, admin and observer roles, read access to itself)
//! and the summary of its clients. Deleting it revokes everything granted in its name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as Finalizer;
use kube::{Api, Resource, ResourceExt};

use super::status::{patch_status, publish, ready_condition, transitioned};
use super::{Context, Error, with_finalizer};
use crate::api::{AccessGrant, Partner, PartnerClient, PartnerStatus, condition_is_true};
use crate::desired::names::{self, Component};
use crate::desired::{PartnerPlan, Reason, Verdict, partner_standing, plan_partner};
use crate::materialize::{controlled_by, ensure, prune_cached, revoke};

const KIND: &str = "Partner";

pub async fn reconcile(partner: Arc<Partner>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<Partner> = Api::all(ctx.client.clone());
    with_finalizer(&api, partner, &ctx, |event| async {
        match event {
            Finalizer::Apply(partner) => apply(&partner, &ctx).await,
            Finalizer::Cleanup(partner) => cleanup(&partner, &ctx).await,
        }
    })
    .await
}

async fn apply(partner: &Partner, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    let verdict = match partner_standing(partner, &ctx.partners_at_home(&partner.spec.home_namespace)) {
        Ok(()) => {
            materialize_suite(ctx, &plan_partner(partner, ctx.settings.home_access.as_ref())).await?;
            Verdict::new(Reason::Active, format!("guest suite {} is ready", partner.spec.home_namespace))
        }
        // A partner that lost its home namespace to another must not touch it.
        Err(verdict) => verdict,
    };
    let held = write_status(ctx, partner, verdict, now).await?;
    Ok(held.map_or_else(Action::await_change, Action::requeue))
}

async fn materialize_suite(ctx: &Context, plan: &PartnerPlan) -> Result<(), Error> {
    let (client, caches, metrics) = (&ctx.client, &ctx.caches, &ctx.metrics);
    ensure(client, &caches.managed_namespaces, &plan.home_namespace, metrics, &ctx.recent_writes).await?;
    if let Some(binding) = &plan.operator_binding {
        ensure(client, &caches.role_bindings, binding, metrics, &ctx.recent_writes).await?;
    }
    ensure(client, &caches.roles, &plan.admin_role, metrics, &ctx.recent_writes).await?;
    ensure(client, &caches.roles, &plan.observer_role, metrics, &ctx.recent_writes).await?;
    ensure(client, &caches.cluster_roles, &plan.reader_role, metrics, &ctx.recent_writes).await?;
    let bindings = [&plan.operator_binding, &plan.admin_binding, &plan.observer_binding];
    for binding in bindings.into_iter().flatten() {
        ensure(client, &caches.role_bindings, binding, metrics, &ctx.recent_writes).await?;
    }
    if let Some(binding) = &plan.reader_binding {
        ensure(client, &caches.cluster_role_bindings, binding, metrics, &ctx.recent_writes).await?;
    }
    // Bindings the plan no longer wants (no admins, no responsible party) go.
    let uid = plan.admin_role.metadata.labels.as_ref().and_then(|l| l.get(names::OWNER_UID)).cloned().unwrap_or_default();
    let wanted: BTreeSet<String> = bindings.into_iter().flatten().map(|b| b.name_any()).collect();
    let stale = |meta: &ObjectMeta| controlled_by(meta, &uid) && !wanted.contains(meta.name.as_deref().unwrap_or_default());
    prune_cached(client, caches.role_bindings.state(), |o: &RoleBinding| stale(&o.metadata), metrics).await?;
    if plan.reader_binding.is_none() {
        prune_cached(client, caches.cluster_role_bindings.state(), |o: &ClusterRoleBinding| controlled_by(&o.metadata, &uid), metrics)
            .await?;
    }
    Ok(())
}

/// Who reaches which client, read from the links' and grants' own statuses.
fn client_summary(ctx: &Context, partner: &Partner, home_grants: &[Arc<AccessGrant>]) -> Vec<PartnerClient> {
    let home = partner.spec.home_namespace.as_str();
    let grants: BTreeMap<String, &AccessGrant> = home_grants.iter().map(|g| (format!("{home}/{}", g.name_any()), g.as_ref())).collect();
    let mut clients: Vec<PartnerClient> = ctx
        .links_of_partner(&partner.name_any())
        .iter()
        .map(|link| {
            let conditions = link.status.as_ref().map(|s| &s.conditions[..]).unwrap_or_default();
            let granted = ctx.link_grants.granted(link);
            let subjects: BTreeSet<String> =
                granted.iter().filter_map(|g| grants.get(g.as_str())).flat_map(|g| g.spec.subjects.iter().map(|s| s.to_string())).collect();
            PartnerClient {
                namespace: link.namespace().unwrap_or_default(),
                link: link.name_any(),
                active: condition_is_true(conditions, "Ready"),
                grants: granted.iter().map(|g| g.rsplit('/').next().unwrap_or(g).to_string()).collect(),
                subjects: subjects.len() as i32,
            }
        })
        .collect();
    clients.sort_by(|a, b| (&a.namespace, &a.link).cmp(&(&b.namespace, &b.link)));
    clients
}

/// Writes the partner's status, unless only its summary of clients and grants changed and that
/// change is being coalesced: then returns how long it is held.
async fn write_status(ctx: &Context, partner: &Partner, verdict: Verdict, now: Timestamp) -> Result<Option<Duration>, Error> {
    // As cached: without its list of clients (`PartnerClients` knows what that says).
    let previous = partner.status.clone().unwrap_or_default();
    let ready = verdict.reason == Reason::Active;
    let home_grants = ctx.grants_at_home(&partner.spec.home_namespace);
    let clients = client_summary(ctx, partner, &home_grants);
    let grant_count = home_grants.len() as i32;
    let status = PartnerStatus {
        observed_generation: partner.meta().generation,
        conditions: ready_condition(ready, &verdict, partner.meta().generation, &previous.conditions, now),
        client_count: clients.iter().filter(|c| c.active).count() as i32,
        grant_count,
        clients,
    };
    let key = partner.name_any();
    let without_clients = |s: &PartnerStatus| PartnerStatus { clients: vec![], ..s.clone() };
    if without_clients(&status) == without_clients(&previous) && ctx.partner_clients.lists(partner, &status.clients) {
        ctx.partner_summaries.settled(&key);
        return Ok(None);
    }
    if only_summary_differs(&status, &previous)
        && let Some(wait) = ctx.partner_summaries.hold(&key, Instant::now())
    {
        return Ok(Some(wait));
    }
    let api: Api<Partner> = Api::all(ctx.client.clone());
    let sent = patch_status(ctx, &api, partner, &previous, &status).await.map_err(Error::Status)?;
    ctx.partner_summaries.settled(&key);
    if sent && transitioned(&previous.conditions, &status.conditions) {
        publish(ctx, partner, !ready, verdict.reason.as_str(), if ready { "Activate" } else { "Refuse" }, verdict.message).await;
    }
    Ok(None)
}

/// The standing is the same and only the counts and lists moved: what each grant of a burst
/// changes.
fn only_summary_differs(next: &PartnerStatus, previous: &PartnerStatus) -> bool {
    let standing = |s: &PartnerStatus| (s.observed_generation, s.conditions.clone());
    previous.conditions.iter().any(|c| c.type_ == "Ready") && standing(next) == standing(previous)
}

/// Everything granted in the partner's name goes, bindings first; the home namespace stays.
async fn cleanup(partner: &Partner, ctx: &Context) -> Result<Action, Error> {
    ctx.partner_summaries.settled(&partner.name_any());
    let (client, metrics) = (&ctx.client, &ctx.metrics);
    let selector = format!("{}={},{}={}", names::MANAGED_BY, names::MANAGER, names::PARTNER, partner.name_any());
    let liaison_owned = |meta: &ObjectMeta| {
        meta.owner_references.iter().flatten().any(|o| o.api_version.starts_with("liaison.dev/") && o.controller == Some(true))
    };
    // Grant and key bindings first; the operator's own access to the home namespace last,
    // since it is what lets it remove the key Secrets there.
    let operator_access = |meta: &ObjectMeta| {
        meta.labels.as_ref().and_then(|l| l.get(names::COMPONENT)).map(String::as_str) == Some(Component::OperatorAccess.as_str())
    };
    let bindings = revoke::<RoleBinding>(client, None, &selector, |m| liaison_owned(m) && !operator_access(m), metrics).await?
        + revoke::<ClusterRoleBinding>(client, None, &selector, liaison_owned, metrics).await?;
    revoke::<ServiceAccount>(client, None, &selector, liaison_owned, metrics).await?;
    revoke::<Secret>(client, Some(&partner.spec.home_namespace), &selector, liaison_owned, metrics).await?;
    revoke::<Role>(client, None, &selector, liaison_owned, metrics).await?;
    revoke::<RoleBinding>(client, Some(&partner.spec.home_namespace), &selector, liaison_owned, metrics).await?;
    revoke::<ClusterRole>(client, None, &selector, liaison_owned, metrics).await?;
    let latency = super::client_link::deletion_latency(partner.meta());
    metrics.revoked(KIND, latency);
    publish(ctx, partner, false, "Revoked", "Revoke", format!("removed {bindings} bindings in {latency:.3}s; home namespace kept")).await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(reason: Reason, generation: i64, grant_count: i32) -> PartnerStatus {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let verdict = Verdict::new(reason, "m");
        PartnerStatus {
            observed_generation: Some(generation),
            conditions: ready_condition(reason == Reason::Active, &verdict, Some(generation), &[], t0),
            grant_count,
            ..PartnerStatus::default()
        }
    }

    #[test]
    fn only_counts_moving_may_wait_and_a_new_standing_never_does() {
        let before = status(Reason::Active, 1, 3);
        assert!(only_summary_differs(&status(Reason::Active, 1, 4), &before));
        assert!(!only_summary_differs(&status(Reason::HomeNamespaceConflict, 1, 3), &before), "a refusal is written at once");
        assert!(!only_summary_differs(&status(Reason::Active, 2, 3), &before), "a spec change is acknowledged at once");
        assert!(!only_summary_differs(&status(Reason::Active, 1, 4), &PartnerStatus::default()), "the first status is written at once");
    }
}
