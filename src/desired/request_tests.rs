//! Just-in-time access: a request grants nothing until an approver of the link approves it,
//! nobody approves their own access, a denial outweighs approvals, and approved access ends
//! at its instant.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use super::*;
use crate::desired::Reason;
use crate::desired::client::ClientPlan;
use crate::desired::test_builders::plan_in_beta;

const NOW: &str = "2026-06-01T12:00:00Z";
const HOME: &str = "partner-techhelp";
const BOB: &str = "bob@techhelp.example";
const ALICE: &str = "alice@techhelp.example";
const CAROL: &str = "carol@beta.example";

fn at(seconds: i64) -> Timestamp {
    NOW.parse::<Timestamp>().unwrap() + SignedDuration::from_secs(seconds)
}

fn object<K: serde::de::DeserializeOwned + kube::Resource>(value: Value, created: Timestamp) -> K {
    let mut object: K = serde_json::from_value(value).unwrap();
    object.meta_mut().creation_timestamp = Some(Time(created));
    object
}

fn partner() -> crate::api::Partner {
    object(
        json!({"apiVersion": "liaison.dev/v1alpha1", "kind": "Partner", "metadata": {"name": "techhelp", "uid": "uid-partner"},
               "spec": {"homeNamespace": HOME, "identities": {"userSuffixes": ["@techhelp.example"]}}}),
        at(-100_000),
    )
}

fn link(approvers: &[&str]) -> ClientLink {
    object(
        json!({"apiVersion": "liaison.dev/v1alpha1", "kind": "ClientLink",
               "metadata": {"name": "techhelp", "namespace": "beta", "uid": "uid-link"},
               "spec": {"partner": "techhelp", "approvers": approvers, "accessLevels": [
                   {"name": "read", "clusterRole": "view"},
                   {"name": "break-glass", "clusterRole": "view", "onRequest": {"maxDuration": "4h"}}]}}),
        at(-100_000),
    )
}

fn grant(name: &str, level: &str, subjects: &[&str]) -> Arc<AccessGrant> {
    let subjects: Vec<Value> = subjects.iter().map(|s| json!({"kind": "User", "name": s})).collect();
    Arc::new(object(
        json!({"apiVersion": "liaison.dev/v1alpha1", "kind": "AccessGrant",
               "metadata": {"name": name, "namespace": HOME, "uid": format!("uid-{name}")},
               "spec": {"clients": ["beta"], "accessLevel": level, "subjects": subjects}}),
        at(-100_000),
    ))
}

fn request(name: &str, grant: &str, duration: &str, by: &str, created: Timestamp) -> Arc<AccessRequest> {
    Arc::new(object(
        json!({"apiVersion": "liaison.dev/v1alpha1", "kind": "AccessRequest",
               "metadata": {"name": name, "namespace": HOME, "uid": format!("uid-{name}")},
               "spec": {"grant": grant, "client": "beta", "duration": duration, "reason": "INC-42", "requestedBy": by,
                        "subjects": [{"kind": "User", "name": BOB}]}}),
        created,
    ))
}

fn answer(name: &str, to: &str, decision: &str, by: &str, created: Timestamp) -> Arc<AccessApproval> {
    Arc::new(object(
        json!({"apiVersion": "liaison.dev/v1alpha1", "kind": "AccessApproval",
               "metadata": {"name": name, "namespace": "beta"},
               "spec": {"request": {"namespace": HOME, "name": to, "uid": format!("uid-{to}")},
                        "decision": decision, "decidedBy": by, "reason": "ok"}}),
        created,
    ))
}

fn plan_at(
    link: ClientLink,
    grants: Vec<Arc<AccessGrant>>,
    requests: Requests,
    now: Timestamp,
) -> ClientPlan {
    plan_in_beta(partner(), link, grants, requests, now)
}

fn grant_reason(plan: &ClientPlan, name: &str) -> Reason {
    plan.grants.iter().find(|g| g.grant_name == name).unwrap().verdict.reason
}

fn request_plan<'a>(plan: &'a ClientPlan, name: &str) -> &'a RequestPlan {
    plan.requests.iter().find(|r| r.name == name).unwrap()
}

#[test]
fn an_on_request_level_grants_nothing_by_a_grant_alone() {
    let grants = vec![grant("standing", "read", &[BOB]), grant("eligible", "break-glass", &[BOB])];
    let plan = plan_at(link(&[CAROL]), grants, Requests::default(), at(0));
    assert_eq!(grant_reason(&plan, "standing"), Reason::Granted);
    assert_eq!(grant_reason(&plan, "eligible"), Reason::OnRequest);
    assert_eq!(plan.bindings.len(), 1, "only the standing grant is bound");
}

#[test]
fn a_request_grants_nothing_until_an_approver_approves_it() {
    let grants = vec![grant("eligible", "break-glass", &[BOB])];
    let requests = [request("inc-42", "eligible", "2h", ALICE, at(-60))];
    let pending =
        plan_at(link(&[CAROL]), grants.clone(), Requests { requests: &requests, approvals: &[] }, at(0));
    assert_eq!(grant_reason(&pending, "eligible"), Reason::OnRequest);
    assert!(pending.bindings.is_empty());
    let asked = request_plan(&pending, "inc-42");
    assert_eq!(asked.phase, Phase::Pending);
    assert!(asked.message.contains(CAROL), "names who may approve: {}", asked.message);

    let approvals = [answer("yes", "inc-42", "Approve", CAROL, at(-30))];
    let approved = plan_at(
        link(&[CAROL]),
        grants.clone(),
        Requests { requests: &requests, approvals: &approvals },
        at(0),
    );
    assert_eq!(grant_reason(&approved, "eligible"), Reason::Granted);
    assert_eq!(approved.bindings.len(), 1);
    let it = request_plan(&approved, "inc-42");
    assert_eq!(
        (it.phase, it.decided_by.as_deref(), it.decided_at),
        (Phase::Approved, Some(CAROL), Some(at(-30)))
    );
    let until = at(-30) + SignedDuration::from_hours(2);
    assert_eq!(it.ends_at, Some(until), "from the approval, for the requested duration");
    assert_eq!(approved.wake_at, Some(until), "the plan wakes to remove the binding at that instant");
    let grant_plan = approved.grants.iter().find(|g| g.grant_name == "eligible").unwrap();
    assert_eq!(grant_plan.ends_at, Some(until));
    assert!(
        grant_plan.verdict.message.contains("inc-42 approved by carol@beta.example"),
        "{}",
        grant_plan.verdict.message
    );

    let ended =
        plan_at(link(&[CAROL]), grants, Requests { requests: &requests, approvals: &approvals }, until);
    assert_eq!(grant_reason(&ended, "eligible"), Reason::OnRequest);
    assert!(ended.bindings.is_empty(), "approved access ends at its instant");
    assert_eq!(request_plan(&ended, "inc-42").phase, Phase::Ended);
}

#[test]
fn nobody_approves_their_own_access_and_only_the_links_approvers_approve() {
    let grants = vec![grant("eligible", "break-glass", &[BOB])];
    // Carol both asked and approved; bob is a partner identity (the grant's subjects all are);
    // eve is no approver; an answer to another request (uid) counts for nothing.
    let requests = [request("inc-42", "eligible", "1h", CAROL, at(-60))];
    let mut other_request =
        (*answer("elsewhere", "inc-43", "Approve", "frank@beta.example", at(-10))).clone();
    other_request.spec.request.name = "inc-42".into();
    let approvals = [
        answer("self", "inc-42", "Approve", CAROL, at(-50)),
        answer("partner", "inc-42", "Approve", BOB, at(-40)),
        answer("stranger", "inc-42", "Approve", "eve@beta.example", at(-30)),
        Arc::new(other_request),
    ];
    let approvers = [CAROL, BOB, "frank@beta.example"];
    let plan =
        plan_at(link(&approvers), grants, Requests { requests: &requests, approvals: &approvals }, at(0));
    assert_eq!(grant_reason(&plan, "eligible"), Reason::OnRequest);
    assert!(plan.bindings.is_empty());
    let it = request_plan(&plan, "inc-42");
    assert_eq!(it.phase, Phase::Pending);
    for why in [
        "AccessApproval self does not count: carol@beta.example made the request",
        "AccessApproval partner does not count: bob@techhelp.example is one of partner techhelp's own identities",
        "AccessApproval stranger does not count: eve@beta.example is not one of ClientLink techhelp's approvers",
    ] {
        assert!(it.message.contains(why), "{why}: {}", it.message);
    }
    assert!(!it.message.contains("elsewhere"), "an answer to another request is not this request's business");
}

#[test]
fn one_denial_outweighs_any_approval() {
    let grants = vec![grant("eligible", "break-glass", &[BOB])];
    let requests = [request("inc-42", "eligible", "1h", ALICE, at(-60))];
    let approvals = [
        answer("yes", "inc-42", "Approve", CAROL, at(-50)),
        answer("no", "inc-42", "Deny", "frank@beta.example", at(-10)),
    ];
    let plan = plan_at(
        link(&[CAROL, "frank@beta.example"]),
        grants,
        Requests { requests: &requests, approvals: &approvals },
        at(0),
    );
    let it = request_plan(&plan, "inc-42");
    assert_eq!((it.phase, it.decided_by.as_deref()), (Phase::Denied, Some("frank@beta.example")));
    assert!(plan.bindings.is_empty());
}

#[test]
fn requests_that_cannot_be_granted_are_refused_and_say_why() {
    let grants = vec![grant("eligible", "break-glass", &[BOB]), grant("standing", "read", &[BOB])];
    let requests = [
        request("too-long", "eligible", "5h", ALICE, at(-60)),
        request("standing", "standing", "1h", ALICE, at(-60)),
        request("no-grant", "ghost", "1h", ALICE, at(-60)),
        request("max", "eligible", "4h", ALICE, at(-60)),
    ];
    let approvals: Vec<_> = requests
        .iter()
        .map(|r| {
            answer(
                &format!("yes-{}", r.spec.grant),
                &r.metadata.name.clone().unwrap(),
                "Approve",
                CAROL,
                at(-1),
            )
        })
        .collect();
    let plan =
        plan_at(link(&[CAROL]), grants, Requests { requests: &requests, approvals: &approvals }, at(0));
    let refused = |name: &str, says: &str| {
        let it = request_plan(&plan, name);
        assert_eq!(it.phase, Phase::Refused, "{name}");
        assert!(it.message.contains(says), "{name}: {}", it.message);
    };
    refused("too-long", "granted for at most 4h");
    refused("standing", "not an on-request level");
    refused("no-grant", "no AccessGrant partner-techhelp/ghost");
    assert_eq!(request_plan(&plan, "max").phase, Phase::Approved, "exactly the longest allowed");
}

#[test]
fn a_request_of_another_partner_and_a_request_while_the_link_is_refused_grant_nothing() {
    let grants = vec![grant("eligible", "break-glass", &[BOB])];
    let mut foreign = (*request("inc-1", "eligible", "1h", ALICE, at(-60))).clone();
    foreign.metadata.namespace = Some("partner-other".into());
    let requests = [Arc::new(foreign)];
    let approvals = [answer("yes", "inc-1", "Approve", CAROL, at(-1))];
    let plan = plan_at(
        link(&[CAROL]),
        grants.clone(),
        Requests { requests: &requests, approvals: &approvals },
        at(0),
    );
    assert_eq!(request_plan(&plan, "inc-1").phase, Phase::Refused);
    assert!(plan.bindings.is_empty());
    let mut suspended = link(&[CAROL]);
    suspended.spec.suspended = Some(true);
    let requests = [request("inc-42", "eligible", "1h", ALICE, at(-60))];
    let approvals = [answer("yes", "inc-42", "Approve", CAROL, at(-1))];
    let plan = plan_at(suspended, grants, Requests { requests: &requests, approvals: &approvals }, at(0));
    assert!(plan.bindings.is_empty() && plan.requests.is_empty());
}

#[test]
fn an_approval_before_its_request_counts_from_the_request() {
    // Clocks and caches aside, access never starts before it was asked for.
    let grants = vec![grant("eligible", "break-glass", &[BOB])];
    let requests = [request("inc-42", "eligible", "1h", ALICE, at(-10))];
    let approvals = [answer("yes", "inc-42", "Approve", CAROL, at(-3_000))];
    let plan =
        plan_at(link(&[CAROL]), grants, Requests { requests: &requests, approvals: &approvals }, at(0));
    assert_eq!(request_plan(&plan, "inc-42").ends_at, Some(at(-10) + SignedDuration::from_hours(1)));
}

#[test]
fn only_the_people_an_approved_request_names_are_bound() {
    // The grant makes bob and dan eligible; the request, approved, is for bob alone. Someone the
    // partner adds to the grant afterwards gets nothing through it.
    let dan = "dan@techhelp.example";
    let grants = vec![grant("eligible", "break-glass", &[BOB, dan, "eve@techhelp.example"])];
    let requests = [request("inc-42", "eligible", "1h", ALICE, at(-60))];
    let approvals = [answer("yes", "inc-42", "Approve", CAROL, at(-30))];
    let plan =
        plan_at(link(&[CAROL]), grants, Requests { requests: &requests, approvals: &approvals }, at(0));
    let bound: Vec<String> = plan.bindings[0].subjects.iter().flatten().map(|s| s.name.clone()).collect();
    assert_eq!(bound, [BOB]);
    assert_eq!(
        request_plan(&plan, "inc-42").summary().subjects,
        [format!("User:{BOB}")],
        "the approver sees who"
    );

    let mut for_a_stranger = (*request("inc-43", "eligible", "1h", ALICE, at(-60))).clone();
    for_a_stranger.spec.subjects[0].name = "mallory@techhelp.example".into();
    let requests = [Arc::new(for_a_stranger)];
    let approvals = [answer("yes", "inc-43", "Approve", CAROL, at(-30))];
    let plan = plan_at(
        link(&[CAROL]),
        vec![grant("eligible", "break-glass", &[BOB])],
        Requests { requests: &requests, approvals: &approvals },
        at(0),
    );
    let it = request_plan(&plan, "inc-43");
    assert_eq!(it.phase, Phase::Refused);
    assert!(
        it.message.contains("not subjects of AccessGrant eligible: User:mallory@techhelp.example"),
        "{}",
        it.message
    );
    assert!(plan.bindings.is_empty());
}

#[test]
fn overlapping_requests_bind_each_person_until_their_own_end() {
    let dan = "dan@techhelp.example";
    let grants = vec![grant("eligible", "break-glass", &[BOB, dan])];
    let mut for_dan = (*request("inc-43", "eligible", "3h", ALICE, at(-60))).clone();
    for_dan.spec.subjects[0].name = dan.into();
    let requests = [request("inc-42", "eligible", "1h", ALICE, at(-60)), Arc::new(for_dan)];
    let approvals = [
        answer("yes-42", "inc-42", "Approve", CAROL, at(0)),
        answer("yes-43", "inc-43", "Approve", CAROL, at(0)),
    ];
    let both = plan_at(
        link(&[CAROL]),
        grants.clone(),
        Requests { requests: &requests, approvals: &approvals },
        at(60),
    );
    assert_eq!(both.bindings[0].subjects.as_ref().unwrap().len(), 2);
    assert_eq!(both.wake_at, Some(at(3_600)), "wakes at the first end");
    let later =
        plan_at(link(&[CAROL]), grants, Requests { requests: &requests, approvals: &approvals }, at(3_600));
    let bound: Vec<String> = later.bindings[0].subjects.iter().flatten().map(|s| s.name.clone()).collect();
    assert_eq!(bound, [dan], "bob's hour is over; dan's three are not");
    assert_eq!(later.wake_at, Some(at(3 * 3_600)));
}

#[test]
fn the_link_lists_a_bounded_number_of_open_requests_and_counts_the_rest() {
    let grants = vec![grant("eligible", "break-glass", &[BOB])];
    let open = LISTED_AT_MOST + 7;
    let mut requests: Vec<_> =
        (0..open).map(|i| request(&format!("open-{i:03}"), "eligible", "1h", ALICE, at(-60))).collect();
    requests.push(request("denied", "eligible", "1h", ALICE, at(-60)));
    requests.push(request("ended", "eligible", "1h", ALICE, at(-9_000)));
    requests.push(request("approved", "eligible", "1h", ALICE, at(-60)));
    let approvals = [
        answer("no", "denied", "Deny", CAROL, at(-50)),
        answer("long-ago", "ended", "Approve", CAROL, at(-8_000)),
        answer("yes", "approved", "Approve", CAROL, at(-50)),
    ];
    let plan =
        plan_at(link(&[CAROL]), grants, Requests { requests: &requests, approvals: &approvals }, at(0));
    let link_plan = &plan.links["techhelp"];
    assert_eq!(link_plan.requests.len(), LISTED_AT_MOST);
    assert_eq!(link_plan.requests_unlisted, open + 1 - LISTED_AT_MOST, "the approved one is open too");
    let phases: std::collections::BTreeSet<&str> =
        link_plan.requests.iter().map(|r| r.phase.as_str()).collect();
    assert_eq!(phases, ["Approved", "Pending"].into(), "answered and ended ones are not listed");
    assert_eq!(request_plan(&plan, "denied").phase, Phase::Denied, "their own status keeps the record");
    assert_eq!(request_plan(&plan, "ended").phase, Phase::Ended);
}
