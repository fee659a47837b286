//! AccessGrant: reports, per client, whether the grant is in force, and revokes its bindings
//! when it is deleted. The bindings themselves are written by the client namespace's link,
//! which sees every grant naming it.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as Finalizer;
use kube::{Api, ResourceExt};

use super::status::{patch_status, publish, ready_condition, transitioned};
use super::{Context, Error, failures, requeue_at, review, with_finalizer};
use crate::api::READY;
use crate::api::{AccessGrant, AccessGrantStatus, ClientAccess, Expiry};
use crate::cache::views::{CachedGrant, CachedLink};
use crate::desired::names::{self, Component};
use crate::desired::ownership;
use crate::desired::review::Judged;
use crate::desired::{ClientPlan, GrantPlan, Reason, Verdict};

const KIND: &str = "AccessGrant";

pub async fn reconcile(grant: Arc<AccessGrant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<AccessGrant> = Api::namespaced(ctx.client.clone(), &grant.namespace().unwrap_or_default());
    with_finalizer(&api, grant, &ctx, |event| async {
        match event {
            Finalizer::Apply(grant) => apply(&grant.into(), &ctx).await,
            Finalizer::Cleanup(grant) => cleanup(&grant.into(), &ctx).await,
        }
    })
    .await
}

/// How long a new grant waits, silent, for its bindings before it reports `Pending`: most
/// grants are bound well within it, and their first status write is then the final one.
const SETTLE: Duration = Duration::from_secs(5);

/// How long, at most, a grant stays silent while a link of one of its clients is revoked.
const REVOCATION_FIRST: Duration = Duration::from_secs(10);

async fn apply(grant: &CachedGrant, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    let links = grant.spec().clients.iter().flat_map(|client| ctx.caches.links_in(client));
    if let Some(left) = revocation_in_flight(links, now) {
        // The link's removal from the cache brings this grant back.
        return Ok(Action::requeue(left));
    }
    let home = grant.namespace().unwrap_or_default();
    let name = grant.name_any();
    let mut clients = Vec::new();
    let mut wake = None;
    // What the rules judge it by.
    let judged = grant.clone().into_trimmed();
    for client in &grant.spec().clients {
        let world = ctx.grant_world(client, &judged);
        let plan = world.plan(now);
        wake = [wake, plan.wake_at].into_iter().flatten().min();
        let outcome = match plan.grant(&home, &name) {
            Some(found) => ClientVerdict {
                namespace: client.clone(),
                verdict: confirmed(found, &plan, ctx, grant.uid().as_deref().unwrap_or_default(), client),
                role_binding: found.role_binding.clone(),
                ends_at: found.ends_at,
            },
            // The rules judge every grant they are given; were one left out, it is refused
            // rather than reported as granted.
            None => ClientVerdict {
                namespace: client.clone(),
                verdict: Verdict::new(Reason::LinkNotReady, format!("no verdict for {client}")),
                role_binding: None,
                ends_at: None,
            },
        };
        clients.push(outcome);
    }
    let previous = ctx.caches.grant_statuses.previous(grant);
    if let Some(left) = settling_for(grant, &previous, &clients, now) {
        // The binding's own watch event brings this grant back as soon as it is in place.
        return Ok(Action::requeue(left));
    }
    let review = crate::desired::review::of_grant(grant.trimmed(), now);
    wake = [wake, review.as_ref().and_then(|judged| judged.next_change(now))].into_iter().flatten().min();
    write_status(ctx, grant, previous, &clients, review.as_ref(), now).await?;
    Ok(requeue_at(wake, now, ctx.settings.resync))
}

/// A grant is `Granted` in a client only once its binding, and the Role it binds, are in place
/// as planned: `kubectl wait --for=condition=Ready` then means the access works. Likewise a
/// refusal is reported as such only once its binding is gone: until then it is `Revoking`.
fn confirmed(found: &GrantPlan, plan: &ClientPlan, ctx: &Context, grant_uid: &str, client: &str) -> Verdict {
    if found.verdict.reason != Reason::Granted {
        let still_bound =
            ctx.caches.grant_bindings.namespaces_of_grant(grant_uid).iter().any(|ns| ns == client);
        if !still_bound {
            return found.verdict.clone();
        }
        let why = failing_link(ctx, client)
            .map(|(link, reason)| format!(": ClientLink {link} reports {reason}"))
            .unwrap_or_default();
        let refused = &found.verdict;
        return Verdict::new(
            Reason::Revoking,
            format!(
                "{} ({}); its RoleBinding in {client} is still in place and is being removed{why}",
                refused.reason, refused.message
            ),
        );
    }
    let Some(binding) = found
        .role_binding
        .as_ref()
        .and_then(|name| plan.bindings.iter().find(|b| b.metadata.name.as_ref() == Some(name)))
    else {
        return found.verdict.clone();
    };
    let binding_ready = ctx.caches.grant_bindings.seen(binding).is_some_and(|seen| seen.matches);
    let role_ready = plan
        .roles
        .iter()
        .filter(|role| {
            binding.role_ref.kind == "Role"
                && role.metadata.name.as_deref() == Some(binding.role_ref.name.as_str())
        })
        .all(|role| ctx.caches.level_roles.seen(role).is_some_and(|seen| seen.matches));
    if binding_ready && role_ready {
        return found.verdict.clone();
    }
    let namespace = binding.namespace().unwrap_or_default();
    let why = failing_link(ctx, &namespace)
        .map(|(link, reason)| format!(": ClientLink {link} reports {reason}"))
        .unwrap_or_default();
    Verdict::new(Reason::Pending, format!("RoleBinding {} is being written{why}", binding.name_any()))
}

/// The link of `namespace` whose reconciles keep failing, and its reason: a grant `Pending`
/// there says why it lasts. The failure's own words stay in the link, the client's.
fn failing_link(ctx: &Context, namespace: &str) -> Option<(String, String)> {
    let links = ctx.caches.links_in(namespace);
    links.iter().find_map(|link| {
        failures::reported_in(link.conditions()).map(|reason| (link.name_any(), reason.to_string()))
    })
}

/// While a new grant's bindings are being written, how long it may still stay silent.
fn settling_for(
    grant: &CachedGrant,
    previous: &AccessGrantStatus,
    clients: &[ClientVerdict],
    now: Timestamp,
) -> Option<Duration> {
    let never_reported = previous.conditions.is_empty();
    let pending = clients.iter().any(|c| c.verdict.reason == Reason::Pending);
    let created = grant.meta().creation_timestamp.as_ref().map(|t| t.0).unwrap_or(now);
    let age: Duration = now.duration_since(created).try_into().unwrap_or_default();
    (never_reported && pending && age < SETTLE).then(|| SETTLE - age)
}

/// While a link of one of its clients is being deleted, a grant does not report: the link's
/// revocation deletes every binding of the namespace, and a hundred grants rewriting their
/// statuses at that moment slowed it threefold at the API server. Bounded, so that a revocation
/// stuck on its finalizer does not silence the grants naming it.
fn revocation_in_flight(links: impl IntoIterator<Item = CachedLink>, now: Timestamp) -> Option<Duration> {
    links
        .into_iter()
        .filter_map(|link| link.meta().deletion_timestamp.as_ref().map(|t| t.0))
        .filter_map(|since| {
            REVOCATION_FIRST.checked_sub(now.duration_since(since).try_into().unwrap_or_default())
        })
        .filter(|left| !left.is_zero())
        .max()
}

struct ClientVerdict {
    namespace: String,
    verdict: Verdict,
    role_binding: Option<String>,
    ends_at: Option<Timestamp>,
}

/// Ready only when granted in every client; otherwise the refusals, each client named, or
/// `Pending` while bindings that are allowed are still being written.
fn overall(clients: &[ClientVerdict]) -> (bool, Verdict) {
    let not_granted: Vec<&ClientVerdict> =
        clients.iter().filter(|c| c.verdict.reason != Reason::Granted).collect();
    let Some(first) = not_granted.first() else {
        return (
            true,
            Verdict::new(Reason::Granted, format!("granted in {} client namespaces", clients.len())),
        );
    };
    let refused = not_granted.iter().filter(|c| c.verdict.reason != Reason::Pending).count();
    let reason = match refused {
        0 => Reason::Pending,
        n if n < clients.len() => Reason::PartiallyGranted,
        _ => first.verdict.reason,
    };
    let details: Vec<String> = not_granted
        .iter()
        .map(|c| format!("{}: {} ({})", c.namespace, c.verdict.reason, c.verdict.message))
        .collect();
    (false, Verdict::new(reason, details.join("; ")))
}

/// `previous`: the status as last seen (`GrantStatuses::previous`).
async fn write_status(
    ctx: &Context,
    grant: &CachedGrant,
    previous: AccessGrantStatus,
    verdicts: &[ClientVerdict],
    review: Option<&Judged>,
    now: Timestamp,
) -> Result<(), Error> {
    let (ready, verdict) = overall(verdicts);
    let clients: Vec<ClientAccess> = verdicts
        .iter()
        .map(|c| ClientAccess {
            namespace: c.namespace.clone(),
            granted: c.verdict.reason == Reason::Granted,
            reason: c.verdict.reason.to_string(),
            message: c.verdict.message.clone(),
            role_binding: c.role_binding.clone(),
            access_ends_at: c.ends_at.map(Time),
        })
        .collect();
    let generation = grant.meta().generation;
    let conditions = ready_condition(ready, &verdict, generation, &previous.conditions, now);
    let status = AccessGrantStatus {
        observed_generation: generation.and_then(std::num::NonZeroI64::new),
        conditions: review::with_condition(conditions, review, generation, now).into(),
        subject_count: grant.spec().subjects.len() as i32,
        granted_clients: clients.iter().filter(|c| c.granted).count() as i32,
        clients: clients.into(),
        review: review.map(|judged| Box::new(judged.status.clone())),
    };
    if ctx.caches.grant_statuses.says(grant, &status) {
        return Ok(());
    }
    let api: Api<AccessGrant> = Api::namespaced(ctx.client.clone(), &grant.namespace().unwrap_or_default());
    let sent = patch_status(ctx, &api, grant.meta(), &previous, &status).await.map_err(Error::Status)?;
    if sent {
        let before = review::Said { conditions: &previous.conditions, review: previous.review.as_deref() };
        let after = review::Said { conditions: &status.conditions, review: status.review.as_deref() };
        review::announce(ctx, grant.trimmed(), before, after).await;
    }
    if sent && transitioned(&previous.conditions, &status.conditions) {
        if verdict.reason == Reason::Expired
            && let Some(at) = grant.spec().expires_at.as_ref().and_then(Expiry::instant)
        {
            ctx.metrics.expiry_lag.observe(now.duration_since(at).as_secs_f64().max(0.0));
        }
        if worth_an_event(&previous.conditions, verdict.reason) {
            let action = if ready { "Grant" } else { "Refuse" };
            publish(ctx, grant.trimmed(), !ready, verdict.reason.as_str(), action, verdict.message).await;
        }
    }
    Ok(())
}

/// Events tell what changed for someone who did not ask: a refusal, a revocation, a grant
/// restored after a refusal. A grant bound after creation (at once, or after `Pending` under
/// load) says so in its status; `Pending` itself is transient.
fn worth_an_event(previous: &[Condition], reason: Reason) -> bool {
    let before = previous.iter().find(|c| c.type_ == READY).map(|c| c.reason.as_str());
    match reason {
        // Transient, and followed by the refusal itself.
        Reason::Pending | Reason::Revoking => false,
        Reason::Granted => !matches!(before, None | Some("Pending")),
        _ => true,
    }
}

/// Removes every binding of this grant in every client, then lets the grant go.
async fn cleanup(grant: &CachedGrant, ctx: &Context) -> Result<Action, Error> {
    let uid = grant.uid().unwrap_or_default();
    let selector = format!("{}={},{}={uid}", names::MANAGED_BY, names::MANAGER, names::GRANT_UID);
    // The grant's label finds its bindings; the name Liaison derived for them decides.
    let is_grant_binding = |meta: &ObjectMeta| {
        ownership::owner(meta).is_some_and(|o| o.component == Component::GrantBinding)
            && meta.labels.as_ref().and_then(|l| l.get(names::GRANT_UID)) == Some(&uid)
    };
    let removed = ctx.writer.revoke::<RoleBinding>(None, &selector, is_grant_binding).await?;
    let latency = super::client_link::deletion_latency(grant.meta());
    ctx.metrics.revoked(KIND, latency);
    let note = format!("removed {removed} bindings in {latency:.3}s");
    publish(ctx, grant.trimmed(), false, "Revoked", "Revoke", note).await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ClientLink;

    fn verdict(ns: &str, reason: Reason) -> ClientVerdict {
        ClientVerdict {
            namespace: ns.into(),
            verdict: Verdict::new(reason, "m"),
            role_binding: None,
            ends_at: None,
        }
    }

    #[test]
    fn overall_verdicts() {
        assert!(overall(&[verdict("a", Reason::Granted), verdict("b", Reason::Granted)]).0);
        let (ready, v) = overall(&[verdict("a", Reason::Granted), verdict("b", Reason::Expired)]);
        assert!(!ready);
        assert_eq!(v.reason, Reason::PartiallyGranted);
        assert!(v.message.contains("b: Expired"));
        let (ready, v) = overall(&[verdict("a", Reason::SubjectNotAllowed)]);
        assert!(!ready);
        assert_eq!(v.reason, Reason::SubjectNotAllowed);
    }

    #[test]
    fn bindings_being_written_are_pending_not_refused() {
        let (ready, v) = overall(&[verdict("a", Reason::Granted), verdict("b", Reason::Pending)]);
        assert!(!ready);
        assert_eq!(v.reason, Reason::Pending);
        assert!(v.message.contains("b: Pending"));
        let (_, v) = overall(&[verdict("a", Reason::Pending), verdict("b", Reason::Expired)]);
        assert_eq!(
            v.reason,
            Reason::PartiallyGranted,
            "a refusal is reported even while another client is pending"
        );
    }

    #[test]
    fn events_for_what_changed_unasked() {
        let ready = |reason: Reason| {
            ready_condition(true, &Verdict::new(reason, "m"), Some(1), &[], Timestamp::UNIX_EPOCH)
        };
        let refused =
            ready_condition(false, &Verdict::new(Reason::Expired, "m"), Some(1), &[], Timestamp::UNIX_EPOCH);
        assert!(!worth_an_event(&[], Reason::Granted), "granted on creation: the status says it");
        let pending =
            ready_condition(false, &Verdict::new(Reason::Pending, "m"), Some(1), &[], Timestamp::UNIX_EPOCH);
        assert!(!worth_an_event(&pending, Reason::Granted), "granted after Pending (a slow first binding)");
        assert!(worth_an_event(&refused, Reason::Granted), "granted after a refusal");
        assert!(worth_an_event(&[], Reason::SubjectNotAllowed), "refused on creation");
        assert!(worth_an_event(&ready(Reason::Granted), Reason::Expired));
        assert!(!worth_an_event(&ready(Reason::Granted), Reason::Pending));
    }

    #[test]
    fn a_new_grant_waits_silently_for_its_bindings_but_not_forever() {
        let created: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut grant = AccessGrant::new(
            "g",
            serde_json::from_value(serde_json::json!({"clients": ["c"], "accessLevel": "l", "subjects": []}))
                .unwrap(),
        );
        grant.metadata.creation_timestamp = Some(Time(created));
        let grant = CachedGrant::from(Arc::new(grant));
        let pending = [verdict("c", Reason::Pending)];
        let at = |secs: i64| created + jiff::SignedDuration::from_secs(secs);
        let silent = AccessGrantStatus::default();
        assert_eq!(settling_for(&grant, &silent, &pending, at(1)), Some(Duration::from_secs(4)));
        assert_eq!(settling_for(&grant, &silent, &pending, at(5)), None, "after SETTLE it reports Pending");
        assert_eq!(settling_for(&grant, &silent, &[verdict("c", Reason::Granted)], at(1)), None);
        let reported = AccessGrantStatus {
            conditions: ready_condition(true, &Verdict::new(Reason::Granted, "m"), Some(1), &[], at(0))
                .into(),
            ..Default::default()
        };
        assert_eq!(
            settling_for(&grant, &reported, &pending, at(1)),
            None,
            "a grant that already reported says Pending at once"
        );
    }

    #[test]
    fn a_grant_is_silent_while_a_client_is_revoked_but_not_forever() {
        let deleted: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let at = |secs: i64| deleted + jiff::SignedDuration::from_secs(secs);
        let link = |deleted_at: Option<Timestamp>| {
            let spec =
                serde_json::from_value(serde_json::json!({"partner": "p", "accessLevels": []})).unwrap();
            let mut link = ClientLink::new("l", spec);
            link.metadata.deletion_timestamp = deleted_at.map(Time);
            CachedLink::from(Arc::new(link))
        };
        assert_eq!(revocation_in_flight([link(None), link(None)], at(1)), None, "no link is going");
        assert_eq!(
            revocation_in_flight([link(None), link(Some(at(0)))], at(3)),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            revocation_in_flight([link(Some(at(0))), link(Some(at(4)))], at(6)),
            Some(Duration::from_secs(8)),
            "silent until no revocation is young"
        );
        assert_eq!(
            revocation_in_flight([link(Some(at(0)))], at(10)),
            None,
            "a stuck revocation does not silence it"
        );
        assert_eq!(revocation_in_flight([link(Some(at(0)))], at(60)), None);
    }
}
