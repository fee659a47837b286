//! The `Reviewed` condition and its Events: how a periodic review's standing reaches users.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Resource;

use super::Context;
use super::status::publish;
use crate::api::ReviewStatus;
use crate::desired::review::{Judged, REVIEWED};

pub const CONDITION: &str = "Reviewed";

/// `conditions` with the `Reviewed` condition for `judged` (none without a review
/// requirement), keeping its `lastTransitionTime` while its status holds.
pub fn with_condition(
    conditions: Vec<Condition>,
    judged: Option<&Judged>,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let before = conditions.iter().find(|c| c.type_ == CONDITION).cloned();
    let mut kept: Vec<Condition> = conditions.into_iter().filter(|c| c.type_ != CONDITION).collect();
    if let Some(judged) = judged {
        let (ok, reason, message) = judged.condition();
        let status = if ok { "True" } else { "False" };
        let last_transition_time = match &before {
            Some(c) if c.status == status => c.last_transition_time.clone(),
            _ => Time(now),
        };
        kept.push(Condition {
            type_: CONDITION.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            observed_generation: generation,
            last_transition_time,
        });
    }
    kept
}

/// The `Reviewed` condition's reason, if any.
fn reason_of(conditions: &[Condition]) -> Option<&str> {
    conditions.iter().find(|c| c.type_ == CONDITION).map(|c| c.reason.as_str())
}

/// A review's conditions and record, as a status holds them.
pub struct Said<'a> {
    pub conditions: &'a [Condition],
    pub review: Option<&'a ReviewStatus>,
}

/// An Event when the review's standing changed: announced, overdue, refused (Warnings), or
/// reviewed again (the reviewer and the next due instant).
pub async fn announce<K>(ctx: &Context, object: &K, previous: Said<'_>, next: Said<'_>)
where
    K: Resource<DynamicType = ()>,
{
    let Some(condition) = next.conditions.iter().find(|c| c.type_ == CONDITION) else {
        return;
    };
    let (before, reason) = (reason_of(previous.conditions), condition.reason.as_str());
    // A newly required review that is current is no news; a new review counted is.
    let changed = before != Some(reason) && !(before.is_none() && reason == REVIEWED);
    let counted = |said: &Said| said.review.and_then(|r| r.reviewed_at.clone().zip(r.reviewed_by.clone()));
    let reviewed_again = reason == REVIEWED
        && before == Some(REVIEWED)
        && counted(&next).is_some()
        && counted(&previous) != counted(&next);
    if changed || reviewed_again {
        publish(ctx, object, reason != REVIEWED, reason, "Review", condition.message.clone()).await;
    }
}
