//! Just-in-time access: whether a request for an on-request level is pending, approved (and
//! until when), denied or over, decided from the request, the grant it names, the client's
//! link, the approvals in the client namespace and the time.
//!
//! An approval counts only if one of the link's `approvers` made it (the admission policy
//! checks that `decidedBy` is its writer), and never the requester, one of the partner's
//! identities or one of the grant's subjects: nobody approves their own access. One valid
//! denial outweighs any approval. Approved access runs from the approval's creation (set by
//! the API server) for the requested duration, at most the level's `maxDuration`.

use std::sync::Arc;

use jiff::Timestamp;
use kube::ResourceExt;

use super::review::{partners_own, period};
use crate::api::{AccessApproval, AccessGrant, AccessRequest, ClientLink, Decision, Partner, Subject};

/// The requests naming a client namespace and the approvals written there.
#[derive(Clone, Copy, Default)]
pub struct Requests<'a> {
    pub requests: &'a [Arc<AccessRequest>],
    pub approvals: &'a [Arc<AccessApproval>],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Pending,
    Approved,
    Denied,
    Ended,
    /// The request itself cannot be granted (no such grant, not an on-request level, too long).
    Refused,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Approved => "Approved",
            Phase::Denied => "Denied",
            Phase::Ended => "Ended",
            Phase::Refused => "Refused",
        }
    }
}

/// The verdict on one request, with what its status shows.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestPlan {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The grant it names, in the request's namespace.
    pub grant: String,
    pub requested_by: String,
    /// Who gets the level while it is approved.
    pub subjects: Vec<Subject>,
    pub duration: String,
    pub reason: String,
    pub phase: Phase,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub decision_reason: Option<String>,
    pub ends_at: Option<Timestamp>,
    pub message: String,
}

impl RequestPlan {
    /// As the client's link lists it.
    pub fn summary(&self) -> crate::api::LinkRequestSummary {
        crate::api::LinkRequestSummary {
            request: format!("{}/{}", self.namespace, self.name),
            uid: self.uid.clone(),
            requested_by: self.requested_by.clone(),
            grant: self.grant.clone(),
            subjects: self.subjects.iter().map(ToString::to_string).collect(),
            duration: self.duration.clone(),
            reason: self.reason.clone(),
            phase: self.phase.as_str().to_string(),
            decided_by: self.decided_by.clone(),
            ends_at: self.ends_at.map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time),
        }
    }

    /// The end of the access it gives, while it gives some.
    pub fn in_force_until(&self) -> Option<Timestamp> {
        self.ends_at.filter(|_| self.phase == Phase::Approved)
    }
}

/// At most this many of a partner's open requests are listed in the client's link: the
/// partner writes as many requests as it likes, and the link's status must stay small.
pub const LISTED_AT_MOST: usize = 50;

/// The requests a client's approvers find in the link's status: the partner's open ones
/// (pending, or approved and in force), at most [`LISTED_AT_MOST`], and how many more there
/// are. Answered and ended requests keep their record in their own status, in the partner's
/// home.
pub fn listed_for_approvers<'a>(
    plans: impl IntoIterator<Item = &'a RequestPlan>,
) -> (Vec<crate::api::LinkRequestSummary>, usize) {
    let open: Vec<&RequestPlan> =
        plans.into_iter().filter(|r| matches!(r.phase, Phase::Pending | Phase::Approved)).collect();
    let unlisted = open.len().saturating_sub(LISTED_AT_MOST);
    (open.into_iter().take(LISTED_AT_MOST).map(RequestPlan::summary).collect(), unlisted)
}

/// What the request is judged against: the link in force, its partner, the grants naming the
/// namespace.
pub struct Context<'a> {
    pub namespace: &'a str,
    pub link: &'a ClientLink,
    pub partner: &'a Partner,
    pub grants: &'a [Arc<AccessGrant>],
    pub now: Timestamp,
}

/// Every live request naming the namespace, judged.
pub fn judge_all(context: &Context, requests: Requests) -> Vec<RequestPlan> {
    let mut plans: Vec<RequestPlan> = requests
        .requests
        .iter()
        .filter(|r| r.spec.client == context.namespace && r.metadata.deletion_timestamp.is_none())
        .map(|request| judge(context, request, requests.approvals))
        .collect();
    plans.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    plans
}

pub fn judge(context: &Context, request: &AccessRequest, approvals: &[Arc<AccessApproval>]) -> RequestPlan {
    let namespace = request.namespace().unwrap_or_default();
    let mut plan = RequestPlan {
        namespace: namespace.clone(),
        name: request.name_any(),
        uid: request.metadata.uid.clone().unwrap_or_default(),
        grant: request.spec.grant.clone(),
        requested_by: request.spec.requested_by.clone(),
        subjects: request.spec.subjects.clone(),
        duration: request.spec.duration.clone(),
        reason: request.spec.reason.clone(),
        phase: Phase::Pending,
        decided_by: None,
        decided_at: None,
        decision_reason: None,
        ends_at: None,
        message: String::new(),
    };
    if let Err(why) = grantable(context, request, &namespace) {
        plan.phase = Phase::Refused;
        plan.message = why;
        return plan;
    }
    let mine = approvals.iter().filter(|a| {
        let to = &a.spec.request;
        to.uid == plan.uid
            && to.namespace == namespace
            && to.name == plan.name
            && a.metadata.deletion_timestamp.is_none()
    });
    let (valid, ignored): (Vec<_>, Vec<_>) =
        mine.map(|a| (a, disqualified(context, request, a))).partition(|(_, why)| why.is_none());
    let ignored: Vec<String> = ignored.into_iter().filter_map(|(_, why)| why).collect();
    let created = |o: &AccessApproval| o.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let first = |decision: Decision| {
        valid
            .iter()
            .map(|(a, _)| a)
            .filter(|a| a.spec.decision == decision)
            .min_by_key(|a| (created(a), a.name_any()))
            .cloned()
    };
    let decision = first(Decision::Deny).or_else(|| first(Decision::Approve));
    let Some(decision) = decision else {
        plan.message = waiting(context, &ignored);
        return plan;
    };
    let decided_at = created(decision).unwrap_or(context.now);
    plan.decided_by = Some(decision.spec.decided_by.clone());
    plan.decided_at = Some(decided_at);
    plan.decision_reason = decision.spec.reason.clone();
    if decision.spec.decision == Decision::Deny {
        plan.phase = Phase::Denied;
        plan.message = format!("denied by {} at {decided_at}", decision.spec.decided_by);
        return plan;
    }
    let requested_at = request.metadata.creation_timestamp.as_ref().map_or(decided_at, |t| t.0);
    let duration = period(&request.spec.duration).unwrap_or_default();
    let ends_at = decided_at.max(requested_at).checked_add(duration).unwrap_or(Timestamp::MAX);
    plan.ends_at = Some(ends_at);
    plan.phase = if context.now >= ends_at { Phase::Ended } else { Phase::Approved };
    let verb = if plan.phase == Phase::Ended { "ended" } else { "ends" };
    plan.message =
        format!("approved by {} at {decided_at}; access {verb} at {ends_at}", decision.spec.decided_by);
    plan
}

/// The grant the request names, if the request can be granted at all.
fn grantable(context: &Context, request: &AccessRequest, namespace: &str) -> Result<(), String> {
    let ns = context.namespace;
    if namespace != context.partner.spec.home_namespace {
        return Err(format!("namespace {ns} holds no ClientLink to this partner"));
    }
    let grant = context
        .grants
        .iter()
        .find(|g| g.namespace().as_deref() == Some(namespace) && g.name_any() == request.spec.grant)
        .ok_or_else(|| format!("no AccessGrant {namespace}/{} names client {ns}", request.spec.grant))?;
    let others: Vec<String> = request
        .spec
        .subjects
        .iter()
        .filter(|s| !grant.spec.subjects.contains(s))
        .map(ToString::to_string)
        .collect();
    if !others.is_empty() {
        return Err(format!("not subjects of AccessGrant {}: {}", request.spec.grant, others.join(", ")));
    }
    let level_name = &grant.spec.access_level;
    let level = context.link.spec.level(level_name).ok_or_else(|| {
        format!("ClientLink {ns}/{} has no access level {level_name}", context.link.name_any())
    })?;
    let on_request = level.on_request.as_ref().ok_or_else(|| {
        format!(
            "level {level_name} is not an on-request level: AccessGrant {} grants it without a request",
            request.spec.grant
        )
    })?;
    let (asked, most) = (period(&request.spec.duration), period(&on_request.max_duration));
    match (asked, most) {
        (Some(asked), Some(most)) if asked <= most => Ok(()),
        _ => Err(format!(
            "asks for {} of level {level_name}, which is granted for at most {}",
            request.spec.duration, on_request.max_duration
        )),
    }
}

/// Why an approval does not count, if it does not. (The grant's subjects are all the
/// partner's identities: none of them approves.)
fn disqualified(context: &Context, request: &AccessRequest, approval: &AccessApproval) -> Option<String> {
    let by = &approval.spec.decided_by;
    let why = if by == &request.spec.requested_by {
        Some(format!("{by} made the request"))
    } else if !context.link.spec.approvers.contains(by) {
        Some(format!("{by} is not one of ClientLink {}'s approvers", context.link.name_any()))
    } else {
        partners_own(context.partner, by)
    };
    why.map(|why| format!("AccessApproval {} does not count: {why}", approval.name_any()))
}

fn waiting(context: &Context, ignored: &[String]) -> String {
    let approvers = context.link.spec.approvers.join(", ");
    let mut message = format!("waiting for one of {approvers} to approve it in {}", context.namespace);
    for why in ignored {
        message.push_str("; ");
        message.push_str(why);
    }
    message
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
