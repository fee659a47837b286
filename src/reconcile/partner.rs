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
use kube::{Api, ResourceExt};

use super::status::{patch_status, publish, ready_condition, transitioned};
use super::{Context, Error, with_finalizer};
use crate::api::READY;
use crate::api::{Partner, PartnerClient, PartnerStatus, condition_is_true};
use crate::cache::views::{CachedGrant, CachedPartner};
use crate::desired::names::{self, Component};
use crate::desired::ownership;
use crate::desired::{HomeClaim, HomeFacts, Reason, Verdict, home_claim, partner_standing, plan_partner};
use crate::materialize::{FirstFailure, suite};

const KIND: &str = "Partner";

pub async fn reconcile(partner: Arc<Partner>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<Partner> = Api::all(ctx.client.clone());
    with_finalizer(&api, partner, &ctx, |event| async {
        match event {
            Finalizer::Apply(partner) => apply(&partner.into(), &ctx).await,
            Finalizer::Cleanup(partner) => cleanup(&partner.into(), &ctx).await,
        }
    })
    .await
}

async fn apply(partner: &CachedPartner, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    let home = &partner.spec().home_namespace;
    let standing = partner_standing(partner.trimmed(), &ctx.partners_at_home(home))
        .and_then(|()| claim_home(ctx, partner));
    let mut home_adopted = None;
    let verdict = match standing {
        Ok(claim) => {
            let plan = plan_partner(partner.trimmed(), ctx.settings.home_access.as_ref(), claim);
            if claim == HomeClaim::Create && !suite::create_home(&ctx.writer, &plan.home_namespace).await? {
                // Someone created the namespace meanwhile: it is judged again as an existing one.
                return Ok(Action::requeue(Duration::from_secs(2)));
            }
            suite::apply(&ctx.writer, &ctx.caches, &plan).await?;
            if claim == HomeClaim::Adopt {
                let message = format!("adopted the existing namespace {home} as the partner's home");
                publish(ctx, partner.trimmed(), false, "HomeAdopted", "Adopt", message).await;
            }
            home_adopted = Some(claim.adopted());
            Verdict::new(Reason::Active, format!("guest suite {home} is ready"))
        }
        // A partner without a home of its own must not touch the namespace it names.
        Err(verdict) => verdict,
    };
    let held = write_status(ctx, partner, verdict, home_adopted, now).await?;
    Ok(held.map_or_else(Action::await_change, Action::requeue))
}

/// Whether the namespace the partner names may be its home, from what the caches say of it.
fn claim_home(ctx: &Context, partner: &CachedPartner) -> Result<HomeClaim, Verdict> {
    let home = &partner.spec().home_namespace;
    let labels = ctx.caches.namespaces.get(home);
    let link = ctx.caches.links_in(home).first().map(|l| l.name_any());
    let mark = labels.as_ref().and_then(|l| l.get(names::HOME_OF_UID)).cloned();
    let other = mark
        .filter(|uid| Some(uid) != partner.meta().uid.as_ref())
        .and_then(|uid| {
            ctx.caches.partners.state().into_iter().find(|p| p.metadata.uid.as_ref() == Some(&uid))
        })
        .map(|p| p.name_any());
    let facts = HomeFacts {
        labels: labels.as_ref(),
        link: link.as_deref(),
        operator_namespace: ctx.settings.operator_namespace.as_deref(),
        marked_by_other: other.as_deref(),
    };
    home_claim(partner.trimmed(), &facts)
}

/// Who reaches which client: the partner's grants that one of Liaison's RoleBindings serves in
/// the namespace of a link in force. (The links' statuses list at most 50 grants each.)
fn client_summary(ctx: &Context, partner: &CachedPartner, home_grants: &[CachedGrant]) -> Vec<PartnerClient> {
    let mut reaching: BTreeMap<String, Vec<&CachedGrant>> = BTreeMap::new();
    for grant in home_grants {
        for namespace in ctx.caches.grant_bindings.namespaces_of_grant(&grant.uid().unwrap_or_default()) {
            reaching.entry(namespace).or_default().push(grant);
        }
    }
    let mut clients: Vec<PartnerClient> = ctx
        .caches
        .links_of_partner(&partner.name_any())
        .iter()
        .map(|link| {
            let namespace = link.namespace().unwrap_or_default();
            let active = condition_is_true(link.conditions(), READY);
            let granted = reaching.get(&namespace).filter(|_| active).map(Vec::as_slice).unwrap_or_default();
            let subjects: BTreeSet<String> =
                granted.iter().flat_map(|g| g.spec().subjects.iter().map(|s| s.to_string())).collect();
            let mut grants: Vec<String> = granted.iter().map(|g| g.name_any()).collect();
            grants.sort();
            PartnerClient {
                namespace,
                link: link.name_any(),
                active,
                grants,
                subjects: subjects.len() as i32,
            }
        })
        .collect();
    clients.sort_by(|a, b| (!a.active, &a.namespace, &a.link).cmp(&(!b.active, &b.namespace, &b.link)));
    clients
}

/// Refused links listed in a partner's status at most: any namespace admin may create links
/// naming any partner, and thousands of them made its status a megabyte.
const REFUSED_LISTED: usize = 16;

/// The clients a partner's status lists (every active one, the first refused ones), and how
/// many links are refused in all.
fn bounded(clients: Vec<PartnerClient>) -> (Vec<PartnerClient>, i32) {
    let refused = clients.iter().filter(|c| !c.active).count();
    let mut refused_listed = 0;
    let listed = clients
        .into_iter()
        .filter(|c| {
            refused_listed += usize::from(!c.active);
            c.active || refused_listed <= REFUSED_LISTED
        })
        .collect();
    (listed, refused as i32)
}

/// Writes the partner's status, unless only its summary of clients and grants changed and that
/// change is being coalesced: then returns how long it is held.
async fn write_status(
    ctx: &Context,
    partner: &CachedPartner,
    verdict: Verdict,
    home_adopted: Option<bool>,
    now: Timestamp,
) -> Result<Option<Duration>, Error> {
    // As cached: without its list of clients (`PartnerClients` knows what that says).
    let previous = partner.status_without_clients();
    let ready = verdict.reason == Reason::Active;
    let home_grants = ctx.caches.grants_in(&partner.spec().home_namespace);
    let (clients, refused) = bounded(client_summary(ctx, partner, &home_grants));
    let grant_count = home_grants.len() as i32;
    let status = PartnerStatus {
        observed_generation: partner.meta().generation,
        conditions: ready_condition(ready, &verdict, partner.meta().generation, &previous.conditions, now),
        client_count: clients.iter().filter(|c| c.active).count() as i32,
        grant_count,
        clients,
        refused_links: (refused > 0).then_some(refused),
        home_adopted,
    };
    let key = partner.name_any();
    let without_clients = |s: &PartnerStatus| PartnerStatus { clients: vec![], ..s.clone() };
    if without_clients(&status) == without_clients(&previous)
        && ctx.caches.partner_clients.lists(partner, &status.clients)
    {
        ctx.partner_summaries.settled(&key);
        return Ok(None);
    }
    if only_summary_differs(&status, &previous)
        && let Some(wait) = ctx.partner_summaries.hold(&key, Instant::now())
    {
        return Ok(Some(wait));
    }
    let api: Api<Partner> = Api::all(ctx.client.clone());
    let sent = patch_status(ctx, &api, partner.meta(), &previous, &status).await.map_err(Error::Status)?;
    ctx.partner_summaries.settled(&key);
    if sent && transitioned(&previous.conditions, &status.conditions) {
        publish(
            ctx,
            partner.trimmed(),
            !ready,
            verdict.reason.as_str(),
            if ready { "Activate" } else { "Refuse" },
            verdict.message,
        )
        .await;
    }
    Ok(None)
}

/// The standing is the same and only the counts and lists moved: what each grant of a burst
/// changes.
fn only_summary_differs(next: &PartnerStatus, previous: &PartnerStatus) -> bool {
    let standing = |s: &PartnerStatus| (s.observed_generation, s.conditions.clone());
    previous.conditions.iter().any(|c| c.type_ == READY) && standing(next) == standing(previous)
}

/// Everything granted in the partner's name goes, bindings first; the home namespace stays.
async fn cleanup(partner: &CachedPartner, ctx: &Context) -> Result<Action, Error> {
    ctx.partner_summaries.settled(&partner.name_any());
    let metrics = &ctx.metrics;
    let selector =
        format!("{}={},{}={}", names::MANAGED_BY, names::MANAGER, names::PARTNER, partner.name_any());
    // The partner's label finds; the ownership rule decides (objects of its links included).
    let liaison_owned = |meta: &ObjectMeta| ownership::owner(meta).is_some();
    // The operator's own access to the home namespace is what lets it remove the key Secrets
    // there: it is put back first (a retry after it went would otherwise never reach them) and
    // removed last. Every other step runs whatever another failed, and the whole is retried
    // until all succeed.
    let operator_access = |meta: &ObjectMeta| {
        meta.labels.as_ref().and_then(|l| l.get(names::COMPONENT)).map(String::as_str)
            == Some(Component::OperatorAccess.as_str())
    };
    let mut failure = FirstFailure::default();
    if let Some(binding) =
        plan_partner(partner.trimmed(), ctx.settings.home_access.as_ref(), HomeClaim::Create).operator_binding
    {
        failure.note(ctx.writer.ensure(&ctx.caches.role_bindings, &binding).await);
    }
    // Access ends with the first writes: every Role made in the partner's name (its links'
    // levels, its suite's) loses its rules, all at once.
    let roles = failure.note(ctx.writer.listed::<Role>(None, &selector, liaison_owned).await);
    if let Some(roles) = &roles {
        failure.note(ctx.writer.empty_roles(roles.clone()).await);
    }
    let bindings = failure
        .note(
            ctx.writer
                .revoke::<RoleBinding>(None, &selector, |m| liaison_owned(m) && !operator_access(m))
                .await,
        )
        .unwrap_or(0)
        + failure
            .note(ctx.writer.revoke::<ClusterRoleBinding>(None, &selector, liaison_owned).await)
            .unwrap_or(0);
    failure.note(ctx.writer.revoke::<ServiceAccount>(None, &selector, liaison_owned).await);
    let home = Some(partner.spec().home_namespace.as_str());
    failure.note(ctx.writer.revoke::<Secret>(home, &selector, liaison_owned).await);
    if let Some(roles) = roles {
        failure.note(ctx.writer.prune_named::<Role>(roles).await);
    }
    failure.note(ctx.writer.revoke::<ClusterRole>(None, &selector, liaison_owned).await);
    failure.into_result()?;
    // Last, and only once everything else went: the operator's own access to the home.
    ctx.writer.revoke::<RoleBinding>(home, &selector, liaison_owned).await?;
    let latency = super::client_link::deletion_latency(partner.meta());
    metrics.revoked(KIND, latency);
    publish(
        ctx,
        partner.trimmed(),
        false,
        "Revoked",
        "Revoke",
        format!("removed {bindings} bindings in {latency:.3}s; home namespace kept"),
    )
    .await;
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
    fn refused_links_are_listed_only_a_few_and_counted() {
        let client = |n: usize, active: bool| PartnerClient {
            namespace: format!("ns{n:05}"),
            link: "l".into(),
            active,
            grants: vec![],
            subjects: 0,
        };
        let mut clients: Vec<PartnerClient> = (0..4000).map(|n| client(n, false)).collect();
        clients.extend((0..3).map(|n| client(n, true)));
        clients.sort_by(|a, b| (!a.active, &a.namespace).cmp(&(!b.active, &b.namespace)));
        let (listed, refused) = bounded(clients);
        assert_eq!(refused, 4000);
        assert_eq!(listed.iter().filter(|c| c.active).count(), 3, "every active client is listed");
        assert_eq!(listed.len(), 3 + REFUSED_LISTED);
    }

    #[test]
    fn only_counts_moving_may_wait_and_a_new_standing_never_does() {
        let before = status(Reason::Active, 1, 3);
        assert!(only_summary_differs(&status(Reason::Active, 1, 4), &before));
        assert!(
            !only_summary_differs(&status(Reason::HomeNamespaceConflict, 1, 3), &before),
            "a refusal is written at once"
        );
        assert!(
            !only_summary_differs(&status(Reason::Active, 2, 3), &before),
            "a spec change is acknowledged at once"
        );
        assert!(
            !only_summary_differs(&status(Reason::Active, 1, 4), &PartnerStatus::default()),
            "the first status is written at once"
        );
    }
}
