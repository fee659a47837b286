//! Conditions and Events: how verdicts reach users.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Context;
use crate::api::READY;
use crate::api::{AccessGrant, ClientLink, Partner, ready_condition as ready_of};
use crate::cache::Caches;
use crate::cache::keys;
use crate::cache::keys::Version;
use crate::cache::views::{Cached, CachedGrant, CachedLink, CachedPartner};
use crate::desired::Verdict;
use crate::events::Note;
use crate::materialize::{Write, said};

/// The `Ready` condition for a verdict, keeping `lastTransitionTime` when the status is
/// unchanged so that `kubectl get` shows how long things have been the way they are.
pub fn ready_condition(
    ready: bool,
    verdict: &Verdict,
    generation: Option<i64>,
    previous: &[Condition],
    now: Timestamp,
) -> Vec<Condition> {
    let before = previous.iter().find(|c| c.type_ == READY);
    let mut conditions: Vec<Condition> = previous.iter().filter(|c| c.type_ != READY).cloned().collect();
    conditions.push(ready_as(ready, verdict.reason.as_str(), &verdict.message, generation, before, now));
    conditions
}

fn ready_as(
    ready: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    before: Option<&Condition>,
    now: Timestamp,
) -> Condition {
    let status = if ready { "True" } else { "False" };
    let last_transition_time = match before {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(now),
    };
    Condition {
        type_: READY.into(),
        status: status.into(),
        reason: reason.to_string(),
        message: truncate(message, 1024),
        observed_generation: generation,
        last_transition_time,
    }
}

/// The kinds whose `Ready` condition Liaison writes.
pub trait Reported: Resource<DynamicType = ()> + Sized {
    /// `Ready` as last seen.
    fn ready_as_seen(object: &Cached<Self>, caches: &Caches) -> Option<Condition>;
}

impl Reported for ClientLink {
    fn ready_as_seen(link: &CachedLink, _: &Caches) -> Option<Condition> {
        ready_of(link.conditions()).cloned()
    }
}

impl Reported for Partner {
    fn ready_as_seen(partner: &CachedPartner, _: &Caches) -> Option<Condition> {
        ready_of(partner.conditions()).cloned()
    }
}

impl Reported for AccessGrant {
    fn ready_as_seen(grant: &CachedGrant, caches: &Caches) -> Option<Condition> {
        // The cache keeps grants without their `Ready` condition.
        ready_of(&caches.grant_statuses.previous(grant).conditions).cloned()
    }
}

/// Tells the users of `object` that its reconcile keeps failing: `Ready=False` with the
/// failure's reason and description, and a Warning Event. The verdict's own status comes back
/// with the first reconcile that succeeds. Best effort: what failed may be the API server
/// itself.
pub async fn report_failure<K>(
    ctx: &Context,
    api: &Api<K>,
    object: &Cached<K>,
    reason: &str,
    description: &str,
) where
    K: Reported + Clone + DeserializeOwned + Debug,
{
    let before = K::ready_as_seen(object, &ctx.caches);
    let ready =
        ready_as(false, reason, description, object.meta().generation, before.as_ref(), Timestamp::now());
    // `Ready` is the only condition of Liaison's kinds, so the list can be replaced whole.
    let patch = serde_json::json!({ "status": { "conditions": [ready] } });
    let name = object.meta().name.clone().unwrap_or_default();
    ctx.metrics.write(&K::kind(&()));
    if let Err(error) = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch)).await {
        tracing::warn!(error = %said(&error), reason, "writing a failure to the status failed");
    }
    publish(ctx, object.trimmed(), true, reason, "Reconcile", description.to_string()).await;
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// The JSON merge patch that turns status `previous` into `next`. Fields that `next` leaves
/// out are sent as `null`: a merge patch keeps whatever it does not mention, so a link whose
/// access key went would have gone on naming the removed Secret.
fn status_patch<T: Serialize>(previous: &T, next: &T) -> serde_json::Value {
    let (previous, mut next) =
        (serde_json::to_value(previous).unwrap_or_default(), serde_json::to_value(next).unwrap_or_default());
    if let (Some(before), Some(after)) = (previous.as_object(), next.as_object_mut()) {
        for field in before.keys() {
            after.entry(field.clone()).or_insert(serde_json::Value::Null);
        }
    }
    serde_json::json!({ "status": next })
}

/// Patches the status of the object `meta` describes from `previous` to `next`, unless the same
/// status was just written over the object as the cache still shows it (a reconcile reading
/// the cache from before its own write). Returns whether it was sent.
pub async fn patch_status<K, S>(
    ctx: &Context,
    api: &Api<K>,
    meta: &ObjectMeta,
    previous: &S,
    next: &S,
) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize,
{
    let name = meta.name.clone().unwrap_or_default();
    let key = keys::key::<K>(meta.namespace.as_deref(), &name);
    let (over, digest, now) = (Version::of(meta), status_digest(next), Instant::now());
    if ctx.writer.recent().just_made(key, Write::Status, over, digest, now) {
        return Ok(false);
    }
    ctx.metrics.write(&K::kind(&()));
    let patch = status_patch(previous, next);
    tracing::debug!(kind = %K::kind(&()), name, patch = %patch, "writing a status");
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    ctx.writer.recent().made(key, Write::Status, over, digest, now);
    Ok(true)
}

/// What a status says, but when its conditions last changed: computed from a stale cache, the
/// same status carries a later `lastTransitionTime`.
fn status_digest<S: Serialize>(status: &S) -> u64 {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    if let Some(conditions) = value.get_mut("conditions").and_then(serde_json::Value::as_array_mut) {
        conditions.iter_mut().filter_map(serde_json::Value::as_object_mut).for_each(|c| {
            c.remove("lastTransitionTime");
        });
    }
    keys::digest(&value)
}

/// Whether the Ready condition changed in status or reason (what users react to).
pub fn transitioned(previous: &[Condition], next: &[Condition]) -> bool {
    let ready =
        |cs: &[Condition]| cs.iter().find(|c| c.type_ == READY).map(|c| (c.status.clone(), c.reason.clone()));
    ready(previous) != ready(next)
}

/// Publishes an Event about `object`; failures are logged, never fatal: the status already
/// says the same.
pub async fn publish<K>(ctx: &Context, object: &K, warning: bool, reason: &str, action: &str, note: String)
where
    K: Resource<DynamicType = ()>,
{
    let note =
        Note { warning, reason: reason.to_string(), action: action.to_string(), note: truncate(&note, 1000) };
    ctx.metrics.write("Event");
    if let Err(error) = ctx.events.publish(note, object.object_ref(&())).await {
        tracing::warn!(%error, reason, "publishing an Event failed");
    }
}

/// When Liaison last wrote or removed a grant's binding, in any namespace. Summaries
/// wait while it keeps doing so: under a burst they competed with the bindings for the API
/// server, and a link's status patch cost it about twice a grant's (it carries the list).
#[derive(Default)]
pub struct AccessWrites {
    last: Mutex<Option<Instant>>,
}

/// Access writes this close together make a burst.
const BURST_GAP: Duration = Duration::from_secs(2);

impl AccessWrites {
    pub fn made(&self, now: Instant) {
        *self.last.lock().expect("access writes") = Some(now);
    }

    fn ongoing(&self, now: Instant) -> bool {
        self.last
            .lock()
            .expect("access writes")
            .is_some_and(|last| now.saturating_duration_since(last) < BURST_GAP)
    }
}

/// Holds back writes of summaries (which grants use a link) that change with every grant of a
/// burst: a held summary is written `delay` after it first differed, once, with all the
/// changes of the burst; while access is still being written, another `delay` at a time, and
/// never later than `longest` after it first differed. Verdicts are never held.
pub struct SummaryWrites {
    delay: Duration,
    longest: Duration,
    access: Arc<AccessWrites>,
    dirty_since: Mutex<HashMap<String, Instant>>,
}

impl SummaryWrites {
    pub fn new(delay: Duration, longest: Duration, access: Arc<AccessWrites>) -> Self {
        SummaryWrites { delay, longest, access, dirty_since: Mutex::default() }
    }

    /// `None`: write now. `Some(wait)`: hold it, and look again after `wait`.
    pub fn hold(&self, key: &str, now: Instant) -> Option<Duration> {
        let mut dirty = self.dirty_since.lock().expect("summary writes");
        let since = *dirty.entry(key.to_string()).or_insert(now);
        let held = now.saturating_duration_since(since);
        let wait = if held < self.delay {
            self.delay - held
        } else if self.access.ongoing(now) {
            self.delay.min(self.longest.saturating_sub(held))
        } else {
            Duration::ZERO
        };
        Some(wait).filter(|wait| !wait.is_zero())
    }

    /// The summary was written (or its object is gone): nothing is held for it any more.
    pub fn settled(&self, key: &str) {
        self.dirty_since.lock().expect("summary writes").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_writes(access: &Arc<AccessWrites>) -> SummaryWrites {
        SummaryWrites::new(Duration::from_secs(1), Duration::from_secs(3), access.clone())
    }

    #[test]
    fn summaries_are_held_at_most_the_delay_from_their_first_change() {
        let writes = summary_writes(&Arc::default());
        let t0 = Instant::now();
        assert_eq!(writes.hold("ns/a", t0), Some(Duration::from_secs(1)));
        assert_eq!(
            writes.hold("ns/a", t0 + Duration::from_millis(600)),
            Some(Duration::from_millis(400)),
            "a later change does not restart the clock"
        );
        assert_eq!(
            writes.hold("ns/b", t0 + Duration::from_millis(600)),
            Some(Duration::from_secs(1)),
            "each summary has its own clock"
        );
        assert_eq!(writes.hold("ns/a", t0 + Duration::from_secs(1)), None);
        writes.settled("ns/a");
        assert_eq!(
            writes.hold("ns/a", t0 + Duration::from_secs(5)),
            Some(Duration::from_secs(1)),
            "after a write, the next change waits again"
        );
    }
    #[test]
    fn while_access_is_being_written_summaries_wait_up_to_the_longest_hold() {
        let access = Arc::new(AccessWrites::default());
        let writes = summary_writes(&access);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        access.made(t0);
        assert_eq!(writes.hold("ns/a", t0), Some(Duration::from_secs(1)));
        access.made(at(900));
        assert_eq!(
            writes.hold("ns/a", at(1000)),
            Some(Duration::from_secs(1)),
            "a burst goes on: another delay"
        );
        access.made(at(2500));
        assert_eq!(
            writes.hold("ns/a", at(2500)),
            Some(Duration::from_millis(500)),
            "never past the longest hold"
        );
        access.made(at(3000));
        assert_eq!(writes.hold("ns/a", at(3000)), None, "written at the longest hold, burst or not");
    }

    #[test]
    fn once_access_writes_pause_a_held_summary_goes_out() {
        let access = Arc::new(AccessWrites::default());
        let writes = summary_writes(&access);
        let t0 = Instant::now();
        access.made(t0);
        assert_eq!(writes.hold("ns/a", t0), Some(Duration::from_secs(1)));
        assert_eq!(writes.hold("ns/a", t0 + BURST_GAP), None, "no access written for a burst's gap: written");
        assert_eq!(
            writes.hold("ns/b", t0 + BURST_GAP),
            Some(Duration::from_secs(1)),
            "a new change still waits the delay"
        );
    }

    use crate::desired::Reason;

    #[test]
    fn transition_time_is_kept_while_status_holds() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let first = ready_condition(true, &Verdict::new(Reason::Active, "ok"), Some(1), &[], t0);
        let again = ready_condition(true, &Verdict::new(Reason::Active, "still ok"), Some(2), &first, t1);
        assert_eq!(again[0].last_transition_time, Time(t0));
        assert_eq!(again[0].observed_generation, Some(2));
        let flipped = ready_condition(false, &Verdict::new(Reason::Expired, "gone"), Some(2), &again, t1);
        assert_eq!(flipped[0].last_transition_time, Time(t1));
        assert_eq!(flipped.len(), 1);
        assert!(transitioned(&again, &flipped));
        assert!(!transitioned(&first, &again));
    }

    #[test]
    fn a_status_patch_clears_what_the_new_status_leaves_out() {
        use crate::api::ClientLinkStatus;
        let before = ClientLinkStatus {
            access_key_secret: Some("home/key".into()),
            grant_count: 2,
            ..Default::default()
        };
        let after = ClientLinkStatus { grant_count: 1, ..Default::default() };
        let patch = status_patch(&before, &after);
        assert_eq!(patch["status"]["accessKeySecret"], serde_json::Value::Null);
        assert!(patch["status"].as_object().unwrap().contains_key("accessKeySecret"));
        assert_eq!(patch["status"]["grantCount"], 1);
        let unchanged = status_patch(&after, &after);
        assert!(
            !unchanged["status"].as_object().unwrap().contains_key("accessKeySecret"),
            "nothing to clear: {unchanged}"
        );
    }

    #[test]
    fn the_same_status_decided_later_has_the_same_digest() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:00:07Z".parse().unwrap();
        let status = |at, reason| crate::api::ClientLinkStatus {
            conditions: ready_condition(true, &Verdict::new(reason, "m"), Some(1), &[], at),
            ..Default::default()
        };
        assert_eq!(status_digest(&status(t0, Reason::Active)), status_digest(&status(t1, Reason::Active)));
        assert_ne!(status_digest(&status(t0, Reason::Active)), status_digest(&status(t0, Reason::Expired)));
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(2000);
        let cut = truncate(&long, 1024);
        assert!(cut.len() <= 1024 && cut.ends_with("..."));
    }
}
