//! ClientLink: materializes everything Liaison grants in the link's namespace.
//!
//! Every link of a namespace computes the same plan for the whole namespace (the winner's
//! roles and bindings, nothing for conflicting links), so links never undo each other.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as Finalizer;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};

use super::status::{patch_status, publish, ready_condition, transitioned};
use super::{Context, Error, FirstFailure, requeue_at, review, with_finalizer};
use crate::api::{ClientLink, ClientLinkStatus};
use crate::desired::client::{AccessKeyPlan, accepted_partner, outranked};
use crate::desired::names::{self, Component};
use crate::desired::ownership;
use crate::desired::review::Judged;
use crate::desired::{ClientPlan, LinkPlan, Reason, Verdict};
use crate::materialize::{Outcome, access_key, empty_roles, ensure, ensure_compact, listed, prune_cached, prune_named, revoke};

const KIND: &str = "ClientLink";

pub async fn reconcile(link: Arc<ClientLink>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<ClientLink> = Api::namespaced(ctx.client.clone(), &link.namespace().unwrap_or_default());
    with_finalizer(&api, link, &ctx, |event| async {
        match event {
            Finalizer::Apply(link) => apply(&link, &ctx).await,
            Finalizer::Cleanup(link) => cleanup(&link, &ctx).await,
        }
    })
    .await
}

async fn apply(link: &ClientLink, ctx: &Context) -> Result<Action, Error> {
    let namespace = link.namespace().unwrap_or_default();
    let now = Timestamp::now();
    // A link that an older one outranks only says so: the winner's reconcile plans and writes
    // the namespace (and every change there brings it back).
    let neighbours = ctx.caches.by.links_by_namespace.get(&namespace, &ctx.caches.links);
    let review = crate::desired::review::of_link(link, ctx.partner(&link.spec.partner).as_deref(), now);
    let review_changes = review.as_ref().and_then(|judged| judged.next_change(now));
    if let Some(verdict) = outranked(link, neighbours.iter().map(AsRef::as_ref)) {
        let partner_uid = accepted_partner(link).cloned();
        let mine = LinkPlan { verdict, partner_uid, ends_at: None, grants: vec![], access_key_secret: None, requests: vec![] };
        write_status(ctx, link, &mine, review.as_ref(), now).await?;
        return Ok(requeue_at(review_changes, now, ctx.settings.resync));
    }
    let _room = ctx.reserve_plan(&namespace).await;
    let world = ctx.client_world(&namespace);
    let plan = world.plan(now);
    let key_refresh = materialize_namespace(ctx, &namespace, &plan, now).await?;
    let mine = plan.links.get(&link.name_any()).cloned().unwrap_or_else(|| LinkPlan {
        verdict: Verdict::new(Reason::LinkNotReady, "the link is not yet in the operator's cache"),
        partner_uid: None,
        ends_at: None,
        grants: vec![],
        access_key_secret: None,
        requests: vec![],
    });
    super::access_request::report(ctx, link, &plan, now).await?;
    let summary_held = write_status(ctx, link, &mine, review.as_ref(), now).await?;
    let summary_due = summary_held.map(|wait| now + SignedDuration::try_from(wait).unwrap_or_default());
    let wake = [plan.wake_at, key_refresh, summary_due, review_changes].into_iter().flatten().min();
    Ok(requeue_at(wake, now, ctx.settings.resync))
}

/// Writes what the plan wants in the namespace, then removes what it no longer wants.
/// Grants go in the order role → account → key Secret → binding; removal in the reverse order.
/// Returns when the access key's token must next be refreshed.
///
/// Fails closed: a write the API server refuses (a Role it finds invalid, an admission policy)
/// is reported only after every removal has been tried, so that no failure elsewhere keeps
/// access that should go. A failed removal does not stop the others either.
pub async fn materialize_namespace(ctx: &Context, namespace: &str, plan: &ClientPlan, now: Timestamp) -> Result<Option<Timestamp>, Error> {
    let mut failure = FirstFailure::default();
    let (key_refresh, access_written) = write_wanted(ctx, plan, now, &mut failure).await;
    let pruned = prune_unwanted(ctx, namespace, plan, &mut failure).await;
    if access_written || pruned {
        ctx.access_writes.made(std::time::Instant::now());
    }
    failure.into_result().map(|()| key_refresh)
}

/// Writes the plan's Roles, access key and bindings. Returns when the key's token must be
/// refreshed, and whether a grant binding was written.
async fn write_wanted(ctx: &Context, plan: &ClientPlan, now: Timestamp, failure: &mut FirstFailure) -> (Option<Timestamp>, bool) {
    let (client, caches, metrics) = (&ctx.client, &ctx.caches, &ctx.metrics);
    for role in &plan.roles {
        failure.note(ensure_compact(client, &caches.level_roles, role, metrics, &ctx.recent_writes).await);
    }
    let mut key_refresh = None;
    if let Some(key) = &plan.access_key {
        key_refresh = failure.note(write_access_key(ctx, key, now).await).flatten();
    }
    let mut access_written = false;
    for binding in &plan.bindings {
        let outcome = failure.note(ensure_compact(client, &caches.grant_bindings, binding, metrics, &ctx.recent_writes).await);
        access_written |= outcome == Some(Outcome::Written);
    }
    (key_refresh, access_written)
}

async fn write_access_key(ctx: &Context, key: &AccessKeyPlan, now: Timestamp) -> Result<Option<Timestamp>, Error> {
    let (client, caches, metrics) = (&ctx.client, &ctx.caches, &ctx.metrics);
    ensure(client, &caches.service_accounts, &key.service_account, metrics, &ctx.recent_writes).await?;
    ensure(client, &caches.role_bindings, &key.binding, metrics, &ctx.recent_writes).await?;
    let account = current_service_account(ctx, &key.service_account).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &key.secret_namespace);
    let existing = secrets.get_opt(&key.secret_name).await.map_err(Error::Read)?;
    let settings = &ctx.settings.access_key;
    Ok(Some(access_key::ensure_secret(client, key, &account, existing.as_ref(), settings, now, metrics).await?))
}

/// Removes what Liaison made in the namespace for a link and the plan no longer wants: grant
/// and key bindings first, then key Secrets and accounts, then Roles. Returns whether a grant
/// binding went.
async fn prune_unwanted(ctx: &Context, namespace: &str, plan: &ClientPlan, failure: &mut FirstFailure) -> bool {
    let (client, caches, metrics) = (&ctx.client, &ctx.caches, &ctx.metrics);
    let wanted: BTreeSet<String> = plan
        .roles
        .iter()
        .map(|r| r.name_any())
        .chain(plan.bindings.iter().map(|b| b.name_any()))
        .chain(plan.access_key.iter().flat_map(|k| [k.service_account.name_any(), k.secret_name.clone()]))
        .collect();
    // Only what a link's reconcile made: a partner's suite in its home namespace is not a
    // link's to prune, whatever link stands there.
    let stale = |meta: &ObjectMeta| {
        meta.namespace.as_deref() == Some(namespace)
            && ownership::is_link_made(meta)
            && !wanted.contains(meta.name.as_deref().unwrap_or_default())
    };
    let unwanted =
        |owned: Vec<String>| owned.into_iter().filter(|name| !wanted.contains(name)).map(|name| (namespace.to_string(), name)).collect();
    // Access through a level that goes ends with the first write: its Role loses its rules
    // (every binding to it, the key's included, then grants nothing), then the rest goes.
    let unwanted_roles: Vec<(String, String)> = unwanted(caches.level_roles.owned_in(namespace));
    failure.note(empty_roles(client, unwanted_roles.clone(), metrics).await);
    let key_bindings = caches.by.bindings_by_namespace.get(namespace, &caches.role_bindings);
    failure.note(prune_cached(client, key_bindings, |o: &RoleBinding| stale(&o.metadata), metrics).await);
    let grant_bindings =
        failure.note(prune_named::<RoleBinding>(client, unwanted(caches.grant_bindings.owned_in(namespace)), metrics).await);
    // An access key's Secret is written after its ServiceAccount and removed before it, so
    // only a namespace losing a key account can hold an unwanted key Secret. The operator caches
    // no Secret; listing them on every reconcile was the API server's largest cost at scale.
    // Key accounts serving this namespace (in the partner's home; an older Liaison's, here)
    // other than the one the plan wants, where it wants it.
    let wanted_account = plan.access_key.as_ref().map(|k| (k.service_account.namespace(), k.service_account.name_any()));
    let stale_account = |o: &ServiceAccount| {
        ownership::is_link_made(&o.metadata) && wanted_account.as_ref().is_none_or(|wanted| *wanted != (o.namespace(), o.name_any()))
    };
    let serving = caches.by.accounts_by_client.get(namespace, &caches.service_accounts);
    let stale_accounts: Vec<_> = serving.into_iter().filter(|o| stale_account(o)).collect();
    if !stale_accounts.is_empty()
        && let Some(home) = &plan.partner_home
    {
        let selector = format!("{},{}={namespace}", names::managed_selector(Some(Component::AccessKey)), names::CLIENT_NAMESPACE);
        let unwanted_key = |meta: &ObjectMeta| ownership::is_link_made(meta) && !wanted.contains(meta.name.as_deref().unwrap_or_default());
        failure.note(revoke::<Secret>(client, Some(home), &selector, unwanted_key, metrics).await);
    }
    // The account goes even if its Secret could not: deleting it voids every token minted for
    // it, which is what ends the key's access.
    failure.note(prune_cached(client, stale_accounts, |_: &ServiceAccount| true, metrics).await);
    failure.note(prune_named::<Role>(client, unwanted_roles, metrics).await);
    // A link-made Role without the level label (made by an older Liaison, or relabelled).
    let roles = caches.by.roles_by_namespace.get(namespace, &caches.roles);
    failure.note(prune_cached(client, roles, |o: &Role| stale(&o.metadata), metrics).await);
    grant_bindings.is_some_and(|count| count > 0)
}

/// The key's ServiceAccount as the API server has it: its UID binds the token.
async fn current_service_account(ctx: &Context, desired: &ServiceAccount) -> Result<ServiceAccount, Error> {
    let namespace = desired.namespace().unwrap_or_default();
    let reference = ObjectRef::new(&desired.name_any()).within(&namespace);
    if let Some(cached) = ctx.caches.service_accounts.get(&reference) {
        return Ok((*cached).clone());
    }
    Api::<ServiceAccount>::namespaced(ctx.client.clone(), &namespace).get(&desired.name_any()).await.map_err(Error::Read)
}

/// Writes the link's status, unless only its list of grants changed and that change is being
/// coalesced: then returns how long it is held.
async fn write_status(
    ctx: &Context,
    link: &ClientLink,
    plan: &LinkPlan,
    review: Option<&Judged>,
    now: Timestamp,
) -> Result<Option<Duration>, Error> {
    // As cached: without its list of grants (`LinkGrants` knows what that says).
    let previous = link.status.clone().unwrap_or_default();
    let ready = plan.verdict.reason == Reason::Active;
    let generation = link.meta().generation;
    let conditions = ready_condition(ready, &plan.verdict, generation, &previous.conditions, now);
    let status = ClientLinkStatus {
        observed_generation: generation,
        conditions: review::with_condition(conditions, review, generation, now),
        grant_count: plan.grants.iter().filter(|g| g.granted).count() as i32,
        grants: plan.grants.clone(),
        access_key_secret: plan.access_key_secret.clone(),
        access_ends_at: plan.ends_at.map(Time),
        // Once recorded, kept: only the spec's word replaces it.
        partner_uid: link.spec.partner_uid.clone().or(previous.partner_uid.clone()).or(plan.partner_uid.clone()),
        review: review.map(|judged| judged.status.clone()),
        requests: plan.requests.clone(),
    };
    let key = format!("{}/{}", link.namespace().unwrap_or_default(), link.name_any());
    let rest_as_seen = without_grants(&status) == without_grants(&previous);
    if rest_as_seen && status.grant_count == previous.grant_count && ctx.link_grants.lists(link, &status.grants) {
        ctx.link_summaries.settled(&key);
        return Ok(None);
    }
    // Only the grants using the link changed: a summary, coalesced over a burst.
    let reported = previous.conditions.iter().any(|c| c.type_ == "Ready");
    if rest_as_seen
        && reported
        && let Some(wait) = ctx.link_summaries.hold(&key, Instant::now())
    {
        return Ok(Some(wait));
    }
    let api: Api<ClientLink> = Api::namespaced(ctx.client.clone(), &link.namespace().unwrap_or_default());
    let sent = patch_status(ctx, &api, link, &previous, &status).await.map_err(Error::Status)?;
    ctx.link_summaries.settled(&key);
    if sent {
        let before = review::Said { conditions: &previous.conditions, review: previous.review.as_ref() };
        let after = review::Said { conditions: &status.conditions, review: status.review.as_ref() };
        review::announce(ctx, link, before, after).await;
    }
    if sent && transitioned(&previous.conditions, &status.conditions) {
        if plan.verdict.reason == Reason::Expired
            && let Some(at) = plan.ends_at
        {
            ctx.metrics.expiry_lag.observe(now.duration_since(at).as_secs_f64().max(0.0));
        }
        let action = if ready { "Grant" } else { "Refuse" };
        publish(ctx, link, !ready, plan.verdict.reason.as_str(), action, plan.verdict.message.clone()).await;
    }
    Ok(None)
}

/// The verdict, key and end of access: a status but for the grants using the link.
fn without_grants(status: &ClientLinkStatus) -> ClientLinkStatus {
    ClientLinkStatus { grants: vec![], grant_count: 0, ..status.clone() }
}

/// Revocation, in DESIGN order: bindings, then the access key (account, then Secret), then
/// roles. Lists come from the API server, so a stale cache cannot hide anything.
async fn cleanup(link: &ClientLink, ctx: &Context) -> Result<Action, Error> {
    let namespace = link.namespace().unwrap_or_default();
    let uid = link.uid().unwrap_or_default();
    ctx.link_summaries.settled(&format!("{namespace}/{}", link.name_any()));
    let (client, metrics) = (&ctx.client, &ctx.metrics);
    let selector = format!("{}={},{}={uid}", names::MANAGED_BY, names::MANAGER, names::OWNER_UID);
    let owned = |meta: &ObjectMeta| ownership::is_owned_by(meta, &uid);
    // Every step runs whatever another failed: a binding the API server will not delete loses
    // its Role, which voids it; an account whose Secret stays voids the Secret's token. The
    // finalizer stays until all of them succeed.
    let mut failure = FirstFailure::default();
    // Access ends with the first write: the level Roles lose their rules, all at once; the
    // same Roles are removed last.
    let roles = failure.note(listed::<Role>(client, Some(&namespace), &selector, owned).await);
    if let Some(roles) = &roles {
        failure.note(empty_roles(client, roles.clone(), metrics).await);
    }
    let bindings = failure.note(revoke::<RoleBinding>(client, Some(&namespace), &selector, owned, metrics).await).unwrap_or(0);
    // The key's account and Secret live in the partner's home namespace (an older Liaison's
    // account, here) and are owned by the Partner; with the Partner gone, garbage collection
    // has them, and the sweep any account left.
    let home = ctx.partner(&link.spec.partner).map(|p| p.spec.home_namespace.clone());
    let mut accounts = failure.note(revoke::<ServiceAccount>(client, Some(&namespace), &selector, owned, metrics).await).unwrap_or(0);
    let mut secrets = 0;
    if let Some(home) = &home {
        accounts += failure.note(revoke::<ServiceAccount>(client, Some(home), &selector, owned, metrics).await).unwrap_or(0);
        secrets = failure.note(revoke::<Secret>(client, Some(home), &selector, owned, metrics).await).unwrap_or(0);
    }
    let roles = match roles {
        Some(roles) => failure.note(prune_named::<Role>(client, roles, metrics).await).unwrap_or(0),
        None => 0,
    };
    failure.into_result()?;
    materialize_others(ctx, &namespace).await?;
    let latency = deletion_latency(link.meta());
    metrics.revoked(KIND, latency);
    publish(
        ctx,
        link,
        false,
        "Revoked",
        "Revoke",
        format!("removed {bindings} bindings, {accounts} access key accounts, {secrets} key secrets and {roles} roles in {latency:.3}s"),
    )
    .await;
    Ok(Action::await_change())
}

/// After a link goes, another link of the namespace may take over: apply its plan now rather
/// than waiting for its own reconcile.
async fn materialize_others(ctx: &Context, namespace: &str) -> Result<(), Error> {
    let _room = ctx.reserve_plan(namespace).await;
    let world = ctx.client_world(namespace);
    let now = Timestamp::now();
    let plan = world.plan(now);
    materialize_namespace(ctx, namespace, &plan, now).await.map(|_| ())
}

pub fn deletion_latency(meta: &ObjectMeta) -> f64 {
    meta.deletion_timestamp.as_ref().map(|t| Timestamp::now().duration_since(t.0).as_secs_f64().max(0.0)).unwrap_or_default()
}
