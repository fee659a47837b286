//! AccessRequest: its status and Events, written by the reconcile of the client namespace's
//! link, which judges it (the request binds nothing itself: the link binds its grant).

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource};

use super::status::{patch_status, publish};
use super::{Context, Error};
use crate::api::{AccessRequest, AccessRequestStatus};
use crate::cache::views::CachedLink;
use crate::desired::ClientPlan;
use crate::desired::request::{Phase, RequestPlan};
use crate::materialize::FirstFailure;

/// Writes the status of every request the plan judged whose status says otherwise, and tells
/// each change of phase in Events: on the request (the partner's) and on the link (the client's).
pub async fn report(
    ctx: &Context,
    link: &CachedLink,
    plan: &ClientPlan,
    now: Timestamp,
) -> Result<(), Error> {
    let mut failure = FirstFailure::default();
    for judged in &plan.requests {
        let reference = ObjectRef::new(&judged.name).within(&judged.namespace);
        let Some(request) = ctx.caches.requests.get(&reference) else { continue };
        if request.metadata.uid.as_deref() != Some(judged.uid.as_str()) {
            continue;
        }
        failure.note(report_one(ctx, link, &request, judged, now).await);
    }
    failure.into_result()
}

async fn report_one(
    ctx: &Context,
    link: &CachedLink,
    request: &AccessRequest,
    judged: &RequestPlan,
    now: Timestamp,
) -> Result<(), Error> {
    let previous = request.status.clone().unwrap_or_default();
    let next = status_of(request, judged, &previous, now);
    if same_but_for_times(&previous, &next) {
        return Ok(());
    }
    let api: Api<AccessRequest> = Api::namespaced(ctx.client.clone(), &judged.namespace);
    let sent = patch_status(ctx, &api, request.meta(), &previous, &next).await.map_err(Error::Status)?;
    if sent && previous.phase.as_deref() != Some(judged.phase.as_str()) {
        let warning = matches!(judged.phase, Phase::Denied | Phase::Refused);
        let asked = format!(
            "AccessRequest {}/{} by {} for {} of grant {} ({})",
            judged.namespace,
            judged.name,
            request.spec.requested_by,
            request.spec.duration,
            judged.grant,
            request.spec.reason
        );
        let said = format!("{asked}: {}", judged.message);
        publish(ctx, request, warning, judged.phase.as_str(), "Request", said.clone()).await;
        if judged.phase != Phase::Refused {
            publish(
                ctx,
                link.trimmed(),
                warning,
                &format!("Request{}", judged.phase.as_str()),
                "Request",
                said,
            )
            .await;
        }
    }
    Ok(())
}

fn status_of(
    request: &AccessRequest,
    judged: &RequestPlan,
    previous: &AccessRequestStatus,
    now: Timestamp,
) -> AccessRequestStatus {
    let in_force = judged.phase == Phase::Approved;
    let before = previous.conditions.iter().find(|c| c.type_ == "Ready");
    let status = if in_force { "True" } else { "False" };
    let last_transition_time = match before {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(now),
    };
    let ready = Condition {
        type_: "Ready".into(),
        status: status.into(),
        reason: judged.phase.as_str().into(),
        message: judged.message.clone(),
        observed_generation: request.meta().generation,
        last_transition_time,
    };
    AccessRequestStatus {
        observed_generation: request.meta().generation,
        conditions: vec![ready],
        phase: Some(judged.phase.as_str().into()),
        decided_by: judged.decided_by.clone(),
        decided_at: judged.decided_at.map(Time),
        decision_reason: judged.decision_reason.clone(),
        ends_at: judged.ends_at.map(Time),
    }
}

/// Whether two statuses say the same, whenever their conditions last changed.
fn same_but_for_times(a: &AccessRequestStatus, b: &AccessRequestStatus) -> bool {
    let timeless = |s: &AccessRequestStatus| {
        let mut s = s.clone();
        s.conditions.iter_mut().for_each(|c| c.last_transition_time = Time(Timestamp::UNIX_EPOCH));
        s
    };
    timeless(a) == timeless(b)
}
