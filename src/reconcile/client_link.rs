//! ClientLink: a link's reconcile plans its whole namespace, not only itself.
//!
//! What a namespace grants depends on every link and grant naming it (the oldest link holds
//! it; grants go through the link in force), so each reconcile plans the namespace
//! (`desired::plan_client`), applies that plan (`materialize::namespace`) and writes its own
//! link's status. Every link of a namespace computes the same plan, so links never undo each
//! other; a link that an older one outranks only says so and plans nothing.
//!
//! Only a link that may be put in force carries the finalizer (`desired::client::
//! needs_finalizer`): one outranked or refused outright, never granted anything, is reconciled
//! without it, and nothing is written in a link's name before it carries it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as Finalizer;
use kube::{Api, ResourceExt};

use super::context::ClientWorld;
use super::status::{patch_status, publish, ready_condition, transitioned};
use super::{Context, Error, requeue_at, review, with_finalizer, without_finalizer};
use crate::api::READY;
use crate::api::{ClientLink, ClientLinkStatus, ready_condition as ready_of};
use crate::cache::keys;
use crate::cache::views::CachedLink;
use crate::desired::client::{
    accepted_partner, link_plan, needs_finalizer, revoked_outright, unguarded_in_force,
};
use crate::desired::names;
use crate::desired::ownership;
use crate::desired::review::Judged;
use crate::desired::{ClientPlan, LinkPlan, Reason, Verdict};
use crate::materialize::{FirstFailure, namespace};

const KIND: &str = "ClientLink";

/// Refused links (never granted, so without a finalizer) reconciled at once. Their writes, a
/// status and an Event each, only tell; another tenant's 4,000 of them written sixteen at a
/// time kept the API server so busy that a revocation elsewhere, on the same cores, waited
/// for it (#26). Paced, they leave it room; the links that grant keep the full concurrency.
pub const REFUSALS_AT_ONCE: usize = 2;

/// Refused links of one namespace told per second, after the first twenty at once
/// (`reconcile::pace`): two at a time, the 4,000 of one tenant still kept the API server
/// busy writing 440 statuses and Events a second, for 18-49 s; at 25 a second a revocation
/// elsewhere still measured up to 2.8x its quiet p99. A namespace holds one partner's link,
/// so only a mistake or an attack has more refused links than the first twenty.
pub const REFUSALS_PER_SECOND: u32 = 10;
pub const REFUSALS_TOLD_AT_ONCE: u32 = 20;

pub async fn reconcile(object: Arc<ClientLink>, ctx: Arc<Context>) -> Result<Action, Error> {
    let link = CachedLink::from(object.clone());
    let api: Api<ClientLink> = Api::namespaced(ctx.client.clone(), &link.namespace().unwrap_or_default());
    let mut now = Timestamp::now();
    let mut outranked = ctx.caches.outranked(link.trimmed());
    // Held until the reconcile ends.
    let mut _paced = None;
    if !guarded(&link, outranked.is_some(), &ctx, now) {
        // A refused link not yet told waits for its namespace's turn away from the queue's
        // slots, then for a permit; then it is decided again, as the wait may be long.
        if !told(&link)
            && let Some(wait) = ctx.refusal_pace.turn(
                &link.namespace().unwrap_or_default(),
                keys::key_of(link.trimmed()),
                Instant::now(),
            )
        {
            return Ok(Action::requeue(wait));
        }
        _paced = Some(ctx.refusals.acquire().await);
        now = Timestamp::now();
        outranked = ctx.caches.outranked(link.trimmed());
    }
    if !guarded(&link, outranked.is_some(), &ctx, now) {
        let ctx = ctx.as_ref();
        return without_finalizer(
            &api,
            link,
            ctx,
            |link| async move { apply(&link, outranked, ctx, now).await },
        )
        .await;
    }
    with_finalizer(&api, object, &ctx, |event| async {
        match event {
            Finalizer::Apply(link) => apply(&link.into(), outranked, &ctx, now).await,
            Finalizer::Cleanup(link) => cleanup(&link.into(), &ctx).await,
        }
    })
    .await
}

/// Whether the link's `Ready` condition speaks of its current spec: told once, a refused link
/// has nothing more to write until its spec or standing changes.
fn told(link: &CachedLink) -> bool {
    ready_of(link.conditions()).is_some_and(|ready| ready.observed_generation == link.meta().generation)
}

/// Whether the reconcile goes through the finalizer (`desired::client::needs_finalizer`). A
/// link being deleted always does: kube's helper revokes it if it carries the finalizer, and
/// lets it go if not.
fn guarded(link: &CachedLink, outranked: bool, ctx: &Context, now: Timestamp) -> bool {
    let carries = link.meta().finalizers.iter().flatten().any(|f| f == names::FINALIZER);
    let partner = ctx.caches.partner(&link.spec().partner);
    let revoked = revoked_outright(link.trimmed(), partner.as_ref().map(|p| p.trimmed()), now).is_some();
    link.meta().deletion_timestamp.is_some() || needs_finalizer(carries, outranked, revoked)
}

/// `outranked`: the verdict on the link if an older one of its namespace holds it.
async fn apply(
    link: &CachedLink,
    outranked: Option<Verdict>,
    ctx: &Context,
    now: Timestamp,
) -> Result<Action, Error> {
    let namespace = link.namespace().unwrap_or_default();
    // A link that an older one outranks only says so: the winner's reconcile plans and writes
    // the namespace (and every change there brings it back).
    let partner = ctx.caches.partner(&link.spec().partner);
    let review = crate::desired::review::of_link(link.trimmed(), partner.as_ref().map(|p| p.trimmed()), now);
    let review_changes = review.as_ref().and_then(|judged| judged.next_change(now));
    if let Some(verdict) = outranked {
        let partner_uid = accepted_partner(link.trimmed()).cloned();
        let mine = LinkPlan { partner_uid, ..link_plan(verdict, None) };
        write_status(ctx, link, &mine, review.as_ref(), now).await?;
        return Ok(requeue_at(review_changes, now, ctx.settings.resync));
    }
    let _room = ctx.reserve_plan(&namespace).await;
    let world = ctx.client_world(&namespace);
    let plan = world.plan(now);
    let key_refresh = materialize_namespace(ctx, &world, &plan, now).await?;
    let mine = plan.links.get(&link.name_any()).cloned().unwrap_or_else(|| {
        link_plan(Verdict::new(Reason::LinkNotReady, "the link is not yet in the operator's cache"), None)
    });
    super::access_request::report(ctx, link, &plan, now).await?;
    let summary_held = write_status(ctx, link, &mine, review.as_ref(), now).await?;
    let summary_due = summary_held.map(|wait| now + SignedDuration::try_from(wait).unwrap_or_default());
    let wake = [plan.wake_at, key_refresh, summary_due, review_changes].into_iter().flatten().min();
    Ok(requeue_at(wake, now, ctx.settings.resync))
}

/// Makes the namespace match its plan (`materialize::namespace`). Returns when the access
/// key's token must next be refreshed. Nothing is written while the link the plan puts in
/// force carries no finalizer yet (one refused until now): that link's own reconcile, which a
/// change of its standing brings (`triggers::successor_of_departed`, its partner's watch),
/// adds the finalizer first and then applies the plan.
async fn materialize_namespace(
    ctx: &Context,
    world: &ClientWorld,
    plan: &ClientPlan,
    now: Timestamp,
) -> Result<Option<Timestamp>, Error> {
    if let Some(link) = unguarded_in_force(plan, &world.links) {
        tracing::debug!(
            link = link.name_any(),
            "put in force, not yet guarded by the finalizer: written later"
        );
        return Ok(None);
    }
    let namespace = world.namespace.as_str();
    let keys = &ctx.settings.access_key;
    let (applied, result) = namespace::apply(&ctx.writer, &ctx.caches, keys, namespace, plan, now).await;
    if applied.access_changed {
        ctx.access_writes.made(std::time::Instant::now());
    }
    result?;
    Ok(applied.key_refresh)
}

/// Writes the link's status, unless only its list of grants changed and that change is being
/// coalesced: then returns how long it is held.
async fn write_status(
    ctx: &Context,
    link: &CachedLink,
    plan: &LinkPlan,
    review: Option<&Judged>,
    now: Timestamp,
) -> Result<Option<Duration>, Error> {
    // As cached: without its list of grants (`LinkGrants` knows what that says).
    let previous = link.status_without_grants();
    let ready = plan.verdict.reason == Reason::Active;
    let generation = link.meta().generation;
    let conditions = ready_condition(ready, &plan.verdict, generation, &previous.conditions, now);
    let status = ClientLinkStatus {
        observed_generation: generation,
        conditions: review::with_condition(conditions, review, generation, now),
        grant_count: i32::try_from(plan.grant_count).unwrap_or(i32::MAX),
        grants: plan.grants.clone(),
        grants_unlisted: shown_if_any(plan.grants_unlisted),
        access_key_secret: plan.access_key_secret.clone(),
        access_ends_at: plan.ends_at.map(Time),
        // Once recorded, kept: only the spec's word replaces it.
        partner_uid: link
            .spec()
            .partner_uid
            .clone()
            .or(previous.partner_uid.clone())
            .or(plan.partner_uid.clone()),
        grant_limit: Some(i32::try_from(link.spec().grant_limit()).unwrap_or(i32::MAX)),
        grants_over_limit: shown_if_any(plan.over_limit),
        review: review.map(|judged| judged.status.clone()),
        requests: plan.requests.clone(),
        requests_unlisted: shown_if_any(plan.requests_unlisted),
    };
    let key = format!("{}/{}", link.namespace().unwrap_or_default(), link.name_any());
    let rest_as_seen = without_grants(&status) == without_grants(&previous);
    if rest_as_seen
        && status.grant_count == previous.grant_count
        && status.grants_unlisted == previous.grants_unlisted
        && ctx.caches.link_grants.lists(link, &status.grants)
    {
        ctx.link_summaries.settled(&key);
        return Ok(None);
    }
    // Only the grants using the link changed: a summary, coalesced over a burst.
    let reported = previous.conditions.iter().any(|c| c.type_ == READY);
    if rest_as_seen
        && reported
        && let Some(wait) = ctx.link_summaries.hold(&key, Instant::now())
    {
        return Ok(Some(wait));
    }
    let api: Api<ClientLink> = Api::namespaced(ctx.client.clone(), &link.namespace().unwrap_or_default());
    let sent = patch_status(ctx, &api, link.meta(), &previous, &status).await.map_err(Error::Status)?;
    ctx.link_summaries.settled(&key);
    if sent {
        let before = review::Said { conditions: &previous.conditions, review: previous.review.as_ref() };
        let after = review::Said { conditions: &status.conditions, review: status.review.as_ref() };
        review::announce(ctx, link.trimmed(), before, after).await;
    }
    if sent && transitioned(&previous.conditions, &status.conditions) {
        if plan.verdict.reason == Reason::Expired
            && let Some(at) = plan.ends_at
        {
            ctx.metrics.expiry_lag.observe(now.duration_since(at).as_secs_f64().max(0.0));
        }
        let action = if ready { "Grant" } else { "Refuse" };
        let message = plan.verdict.message.clone();
        publish(ctx, link.trimmed(), !ready, plan.verdict.reason.as_str(), action, message).await;
    }
    if sent && status.grants_over_limit > previous.grants_over_limit {
        let note = format!(
            "{} of partner {}'s grants refused: this link puts at most {} in force (spec.maxGrants)",
            plan.over_limit,
            link.spec().partner,
            link.spec().grant_limit()
        );
        publish(ctx, link.trimmed(), true, Reason::GrantLimitReached.as_str(), "Refuse", note).await;
    }
    Ok(None)
}

/// A count the status shows only when there is something to count.
fn shown_if_any(count: usize) -> Option<i32> {
    (count > 0).then(|| i32::try_from(count).unwrap_or(i32::MAX))
}

/// The verdict, key and end of access: a status but for the grants using the link.
fn without_grants(status: &ClientLinkStatus) -> ClientLinkStatus {
    ClientLinkStatus { grants: vec![], grant_count: 0, grants_unlisted: None, ..status.clone() }
}

/// Revocation, in DESIGN order: bindings, then the access key (account, then Secret), then
/// roles. Lists come from the API server, so a stale cache cannot hide anything.
async fn cleanup(link: &CachedLink, ctx: &Context) -> Result<Action, Error> {
    let namespace = link.namespace().unwrap_or_default();
    let uid = link.uid().unwrap_or_default();
    ctx.link_summaries.settled(&format!("{namespace}/{}", link.name_any()));
    let metrics = &ctx.metrics;
    let selector = format!("{}={},{}={uid}", names::MANAGED_BY, names::MANAGER, names::OWNER_UID);
    let owned = |meta: &ObjectMeta| ownership::is_owned_by(meta, &uid);
    // Every step runs whatever another failed: a binding the API server will not delete loses
    // its Role, which voids it; an account whose Secret stays voids the Secret's token. The
    // finalizer stays until all of them succeed.
    let mut failure = FirstFailure::default();
    // Access ends with the first write: the level Roles lose their rules, all at once; the
    // same Roles are removed last.
    let roles = failure.note(ctx.writer.listed::<Role>(Some(&namespace), &selector, owned).await);
    if let Some(roles) = &roles {
        failure.note(ctx.writer.empty_roles(roles.clone()).await);
    }
    let bindings =
        failure.note(ctx.writer.revoke::<RoleBinding>(Some(&namespace), &selector, owned).await).unwrap_or(0);
    // The key's account and Secret live in the partner's home namespace (an older Liaison's
    // account, here) and are owned by the Partner; with the Partner gone, garbage collection
    // has them, and the sweep any account left.
    let home = ctx.caches.partner(&link.spec().partner).map(|p| p.spec().home_namespace.clone());
    let mut accounts = failure
        .note(ctx.writer.revoke::<ServiceAccount>(Some(&namespace), &selector, owned).await)
        .unwrap_or(0);
    let mut secrets = 0;
    if let Some(home) = &home {
        accounts += failure
            .note(ctx.writer.revoke::<ServiceAccount>(Some(home), &selector, owned).await)
            .unwrap_or(0);
        secrets = failure.note(ctx.writer.revoke::<Secret>(Some(home), &selector, owned).await).unwrap_or(0);
    }
    let roles = match roles {
        Some(roles) => failure.note(ctx.writer.prune_named::<Role>(roles).await).unwrap_or(0),
        None => 0,
    };
    failure.into_result()?;
    materialize_others(ctx, &namespace).await?;
    let latency = deletion_latency(link.meta());
    metrics.revoked(KIND, latency);
    publish(
        ctx,
        link.trimmed(),
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
    materialize_namespace(ctx, &world, &plan, now).await.map(|_| ())
}

pub fn deletion_latency(meta: &ObjectMeta) -> f64 {
    meta.deletion_timestamp
        .as_ref()
        .map(|t| Timestamp::now().duration_since(t.0).as_secs_f64().max(0.0))
        .unwrap_or_default()
}
