//! Periodic reviews: the period's arithmetic at every boundary, which reviews count, and the
//! planner's verdicts and wake-ups for links and grants whose reviews lapse.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use super::*;
use crate::desired::test_builders::plan_in_beta;

const NOW: &str = "2026-06-01T12:00:00Z";

fn t(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn at(seconds: i64) -> Timestamp {
    t(NOW) + SignedDuration::from_secs(seconds)
}

fn review(every: &str, grace: Option<&str>, reviewed: Option<(&str, Timestamp)>) -> Review {
    let mut value = json!({"every": every});
    if let Some(grace) = grace {
        value["grace"] = json!(grace);
    }
    if let Some((by, when)) = reviewed {
        value["reviewed"] = json!({"by": by, "at": when.to_string()});
    }
    serde_json::from_value(value).unwrap()
}

fn recorded(since: Timestamp, by: Option<(&str, Timestamp)>) -> ReviewStatus {
    ReviewStatus {
        since: Time(since),
        reviewed_by: by.map(|(who, _)| who.to_string()),
        reviewed_at: by.map(|(_, when)| when.to_string()),
        due_at: Time(since),
        suspends_at: Time(since),
    }
}

fn anyone(_: &str) -> Option<String> {
    None
}

#[test]
fn periods_are_days_hours_minutes_seconds_in_that_order() {
    let secs = |s: i64| Some(SignedDuration::from_secs(s));
    assert_eq!(period("90d"), secs(90 * 86_400));
    assert_eq!(period("1d12h"), secs(36 * 3_600));
    assert_eq!(period("2h30m15s"), secs(9_015));
    assert_eq!(period("30s"), secs(30));
    assert_eq!(period("0s"), secs(0));
    for refused in ["", "d", "12", "1h1d", "1h1h", "1w", "-1d", "1.5h", " 1h", "1h ", "99999999999999999999d"]
    {
        assert_eq!(period(refused), None, "{refused:?}");
    }
    // What the schema's pattern admits, the parser reads.
    let pattern = regex::Regex::new(crate::api::PERIOD_PATTERN).unwrap();
    for text in ["90d", "1d12h", "99999d999999h99999999m999999999s", "5s"] {
        assert!(pattern.is_match(text) && period(text).is_some(), "{text}");
    }
}

#[test]
fn a_review_is_announced_a_grace_before_it_is_due_and_suspends_a_grace_after() {
    // Never reviewed, first seen 100 s ago: due at +0 (every 100 s), grace 10 s.
    let requirement = review("100s", Some("10s"), None);
    let previous = recorded(at(-100), None);
    let standing = |now| judge(&requirement, Some(&previous), anyone, now).standing;
    assert_eq!(standing(at(-11)), Standing::Current);
    assert_eq!(standing(at(-10)), Standing::Due, "announced a grace before it is due");
    assert_eq!(standing(at(0)), Standing::Due);
    assert_eq!(standing(at(9)), Standing::Due, "access goes on through the grace");
    assert_eq!(standing(at(10)), Standing::Overdue, "suspended at the grace's end");
    let judged = judge(&requirement, Some(&previous), anyone, at(-50));
    assert_eq!(judged.status.due_at, Time(at(0)));
    assert_eq!(judged.status.suspends_at, Time(at(10)));
    assert_eq!(judged.next_change(at(-50)), Some(at(-10)), "wakes to announce");
    assert_eq!(judged.next_change(at(-10)), Some(at(10)), "then to suspend");
    assert_eq!(judged.next_change(at(10)), None, "then only a review changes anything");
    assert!(judged.overdue("link").is_none());
    let overdue = judge(&requirement, Some(&previous), anyone, at(10)).overdue("link").unwrap();
    assert_eq!(overdue.reason, Reason::ReviewOverdue);
    assert!(!overdue.is_ok());
}

#[test]
fn without_grace_access_ends_at_the_due_instant_unannounced() {
    let requirement = review("1h", None, None);
    let previous = recorded(at(-3_600), None);
    assert_eq!(judge(&requirement, Some(&previous), anyone, at(-1)).standing, Standing::Current);
    assert_eq!(judge(&requirement, Some(&previous), anyone, at(0)).standing, Standing::Overdue);
}

#[test]
fn a_new_requirement_starts_its_period_when_first_seen() {
    let judged = judge(&review("1d", Some("1h"), None), None, anyone, at(0));
    assert_eq!(judged.status.since, Time(at(0)));
    assert_eq!(judged.status.due_at, Time(at(86_400)));
    assert_eq!(judged.standing, Standing::Current);
    assert_eq!(judged.condition().1, REVIEWED);
}

#[test]
fn a_review_counts_from_the_earlier_of_its_claim_and_its_first_sight() {
    let previous = recorded(at(-100), None);
    // Dated back: counts from its claim, never before the period already recorded.
    let back = judge(&review("1h", None, Some(("carol", at(-30)))), Some(&previous), anyone, at(0));
    assert_eq!(back.status.since, Time(at(-30)));
    assert_eq!(back.status.reviewed_by.as_deref(), Some("carol"));
    let too_far_back =
        judge(&review("1h", None, Some(("carol", at(-1_000)))), Some(&previous), anyone, at(0));
    assert_eq!(too_far_back.status.since, Time(at(-100)), "a review never moves a recorded period backwards");
    // Dated forward: counts from when Liaison first saw it, and stays so once recorded.
    let forward =
        judge(&review("1h", None, Some(("carol", at(86_400 * 365)))), Some(&previous), anyone, at(0));
    assert_eq!(forward.status.since, Time(at(0)));
    let later = judge(
        &review("1h", None, Some(("carol", at(86_400 * 365)))),
        Some(&forward.status),
        anyone,
        at(7_200),
    );
    assert_eq!(later.status.since, Time(at(0)), "the recorded review is the same review: not counted again");
    assert_eq!(later.standing, Standing::Overdue);
    // Never recorded before (a new object): its claim, bounded by now.
    let fresh = judge(&review("1h", None, Some(("carol", at(-60)))), None, anyone, at(0));
    assert_eq!(fresh.status.since, Time(at(-60)));
}

#[test]
fn the_next_review_by_the_same_person_counts_again() {
    let first = judge(&review("1h", None, Some(("carol", at(0)))), None, anyone, at(0));
    let overdue = judge(&review("1h", None, Some(("carol", at(0)))), Some(&first.status), anyone, at(3_600));
    assert_eq!(overdue.standing, Standing::Overdue);
    let again =
        judge(&review("1h", None, Some(("carol", at(3_700)))), Some(&overdue.status), anyone, at(3_700));
    assert_eq!(again.standing, Standing::Current);
    assert_eq!(again.status.since, Time(at(3_700)));
}

#[test]
fn an_untrusted_reviewer_changes_nothing_and_is_told() {
    let previous = recorded(at(-7_200), Some(("carol", at(-7_200))));
    let partner_user = |by: &str| by.ends_with("@techhelp.example").then(|| "the partner's own".to_string());
    let judged = judge(
        &review("1h", None, Some(("bob@techhelp.example", at(0)))),
        Some(&previous),
        partner_user,
        at(0),
    );
    assert_eq!(judged.standing, Standing::Overdue, "still overdue");
    assert_eq!(judged.status.reviewed_by.as_deref(), Some("carol"), "the counted review stays");
    let (ok, reason, message) = judged.condition();
    assert!(!ok);
    assert_eq!(reason, REVIEW_REFUSED);
    assert!(message.contains("bob@techhelp.example does not count: the partner's own"), "{message}");
    assert!(judged.overdue("link").is_some());
}

#[test]
fn an_unreadable_review_or_period_fails_closed() {
    let previous = recorded(at(-10), None);
    let mut unreadable = review("1h", None, Some(("carol", at(0))));
    unreadable.reviewed.as_mut().unwrap().at =
        serde_json::from_value(json!("2026-06-01T12:00:00+99:00")).unwrap();
    let judged = judge(&unreadable, Some(&previous), anyone, at(0));
    assert_eq!(judged.status.reviewed_by, None, "not counted");
    assert_eq!(judged.condition().1, REVIEW_REFUSED);
    for (every, grace) in [("1w", None), ("0s", None), ("1h", Some("soon"))] {
        let judged = judge(&review(every, grace, None), Some(&previous), anyone, at(0));
        assert_eq!(judged.standing, Standing::Overdue, "{every} {grace:?}");
        assert!(judged.overdue("grant").is_some());
    }
}

#[test]
fn the_condition_says_who_reviewed_and_what_is_due() {
    let judged = judge(&review("1h", Some("10m"), Some(("carol", at(0)))), None, anyone, at(0));
    let (ok, reason, message) = judged.condition();
    assert!(ok);
    assert_eq!(reason, REVIEWED);
    assert!(
        message.contains("last reviewed by carol")
            && message.contains("next review due at 2026-06-01T13:00:00Z"),
        "{message}"
    );
    let due =
        judge(&review("1h", Some("10m"), Some(("carol", at(0)))), Some(&judged.status), anyone, at(3_000));
    assert_eq!(due.condition().1, REVIEW_DUE);
    assert!(due.condition().2.contains("suspended at 2026-06-01T13:10:00Z"), "{}", due.condition().2);
}

// ---- who may not review ------------------------------------------------------------------

fn partner() -> Partner {
    let mut partner: Partner = serde_json::from_value(json!({
        "apiVersion": "liaison.dev/v1alpha1", "kind": "Partner",
        "metadata": {"name": "techhelp", "uid": "uid-partner"},
        "spec": {"homeNamespace": "partner-techhelp",
                 "identities": {"userSuffixes": ["@techhelp.example"], "groups": ["techhelp:analysts"]}}
    }))
    .unwrap();
    partner.metadata.creation_timestamp = Some(Time(t("2026-01-01T00:00:00Z")));
    partner
}

#[test]
fn the_partners_own_identities_never_review_its_links() {
    let p = partner();
    assert!(partners_own(&p, "bob@techhelp.example").is_some());
    assert!(partners_own(&p, "system:serviceaccount:partner-techhelp:bot").is_some());
    assert!(partners_own(&p, "carol@beta.example").is_none());
    assert!(partners_own(&p, "bob@techhelp.example.evil").is_none());
    assert!(partners_own(&p, "system:serviceaccount:beta:bot").is_none());
}

fn grant(subjects: Value, review: Option<Value>) -> AccessGrant {
    let mut spec = json!({"clients": ["beta"], "accessLevel": "read", "subjects": subjects});
    if let Some(review) = review {
        spec["review"] = review;
    }
    let mut grant: AccessGrant = serde_json::from_value(json!({
        "apiVersion": "liaison.dev/v1alpha1", "kind": "AccessGrant",
        "metadata": {"name": "g", "namespace": "partner-techhelp", "uid": "uid-grant"},
        "spec": spec
    }))
    .unwrap();
    grant.metadata.creation_timestamp = Some(Time(t("2026-01-01T00:00:00Z")));
    grant
}

#[test]
fn a_grants_own_subjects_never_review_it() {
    let g = grant(
        json!([{"kind": "User", "name": "bob@techhelp.example"}, {"kind": "ServiceAccount", "name": "bot"},
               {"kind": "Group", "name": "techhelp:analysts"}]),
        None,
    );
    assert!(grants_own(&g, "bob@techhelp.example").is_some());
    assert!(grants_own(&g, "system:serviceaccount:partner-techhelp:bot").is_some());
    assert!(grants_own(&g, "system:serviceaccount:other:bot").is_none());
    assert!(grants_own(&g, "admin@techhelp.example").is_none());
}

// ---- the planner -------------------------------------------------------------------------

fn link(review: Option<Value>, recorded: Option<&ReviewStatus>) -> ClientLink {
    let mut spec = json!({"partner": "techhelp", "accessLevels": [{"name": "read", "clusterRole": "view"}]});
    if let Some(review) = review {
        spec["review"] = review;
    }
    let mut link: ClientLink = serde_json::from_value(json!({
        "apiVersion": "liaison.dev/v1alpha1", "kind": "ClientLink",
        "metadata": {"name": "techhelp", "namespace": "beta", "uid": "uid-link"},
        "spec": spec
    }))
    .unwrap();
    link.metadata.creation_timestamp = Some(Time(t("2026-01-01T00:00:00Z")));
    link.status =
        recorded.map(|r| crate::api::ClientLinkStatus { review: Some(r.clone()), ..Default::default() });
    link
}

fn plan_at(link: ClientLink, grant: AccessGrant, now: Timestamp) -> crate::desired::ClientPlan {
    plan_in_beta(partner(), link, vec![Arc::new(grant)], Default::default(), now)
}

fn bob() -> Value {
    json!([{"kind": "User", "name": "bob@techhelp.example"}])
}

#[test]
fn a_link_whose_review_lapses_is_revoked_as_a_suspended_one_until_reviewed() {
    let every = json!({"every": "1h", "grace": "5m"});
    let since = recorded(at(-3_600), None);
    let current = plan_at(link(Some(every.clone()), Some(&since)), grant(bob(), None), at(-301));
    assert_eq!(current.links["techhelp"].verdict.reason, Reason::Active);
    assert_eq!(current.bindings.len(), 1);
    assert_eq!(current.wake_at, Some(at(-300)), "wakes to announce the review");
    let due = plan_at(link(Some(every.clone()), Some(&since)), grant(bob(), None), at(299));
    assert_eq!(due.links["techhelp"].verdict.reason, Reason::Active, "access goes on through the grace");
    assert_eq!(due.wake_at, Some(at(300)), "wakes to suspend");

    let overdue = plan_at(link(Some(every.clone()), Some(&since)), grant(bob(), None), at(300));
    assert_eq!(overdue.links["techhelp"].verdict.reason, Reason::ReviewOverdue);
    assert!(overdue.bindings.is_empty() && overdue.roles.is_empty(), "no access at all");
    assert_eq!(overdue.grants[0].verdict.reason, Reason::LinkNotReady);

    let mut reviewed = every.clone();
    reviewed["reviewed"] = json!({"by": "carol@beta.example", "at": at(400).to_string()});
    let restored = plan_at(link(Some(reviewed.clone()), Some(&since)), grant(bob(), None), at(400));
    assert_eq!(restored.links["techhelp"].verdict.reason, Reason::Active);
    assert_eq!(restored.bindings.len(), 1);

    reviewed["reviewed"]["by"] = json!("bob@techhelp.example");
    let by_the_partner = plan_at(link(Some(reviewed), Some(&since)), grant(bob(), None), at(400));
    assert_eq!(
        by_the_partner.links["techhelp"].verdict.reason,
        Reason::ReviewOverdue,
        "the partner cannot review itself in"
    );
}

#[test]
fn a_grant_whose_review_lapses_loses_its_binding_and_the_link_wakes_for_it() {
    let review = json!({"every": "1h", "grace": "5m"});
    let mut g = grant(bob(), Some(review.clone()));
    g.status = Some(crate::api::AccessGrantStatus {
        review: Some(Box::new(recorded(at(-3_600), None))),
        ..Default::default()
    });
    let current = plan_at(link(None, None), g.clone(), at(0));
    assert_eq!(current.grants[0].verdict.reason, Reason::Granted);
    assert_eq!(current.wake_at, Some(at(300)), "the link wakes to remove the binding");
    let overdue = plan_at(link(None, None), g.clone(), at(300));
    assert_eq!(overdue.grants[0].verdict.reason, Reason::ReviewOverdue);
    assert!(overdue.bindings.is_empty());
    assert_eq!(overdue.links["techhelp"].verdict.reason, Reason::Active, "the link itself stays in force");

    let mut by_subject = review.clone();
    by_subject["reviewed"] = json!({"by": "bob@techhelp.example", "at": at(300).to_string()});
    g.spec.review = Some(Box::new(serde_json::from_value(by_subject).unwrap()));
    assert_eq!(plan_at(link(None, None), g.clone(), at(300)).grants[0].verdict.reason, Reason::ReviewOverdue);
    let mut by_admin = review;
    by_admin["reviewed"] = json!({"by": "admin@techhelp.example", "at": at(300).to_string()});
    g.spec.review = Some(Box::new(serde_json::from_value(by_admin).unwrap()));
    assert_eq!(plan_at(link(None, None), g, at(300)).grants[0].verdict.reason, Reason::Granted);
}

// ---- properties ----------------------------------------------------------------------------

use proptest::prelude::*;

/// A review requirement on the link or the grant, a period recorded some time ago, perhaps a
/// review in the spec by someone trusted or not, judged at some instant.
#[derive(Debug, Clone)]
struct Case {
    every: i64,
    grace: i64,
    on_link: bool,
    since: i64,
    reviewer: Option<(&'static str, i64)>,
    now: i64,
}

fn arb_case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![60i64, 3_600, 86_400]),
        prop::sample::select(vec![0i64, 1, 30, 600]),
        prop::bool::ANY,
        -200_000i64..0,
        prop::option::of((
            prop::sample::select(vec![
                "carol@beta.example",
                "bob@techhelp.example",
                "admin@techhelp.example",
            ]),
            -200_000i64..200_000,
        )),
        -1i64..200_000,
    )
        .prop_map(|(every, grace, on_link, since, reviewer, now)| Case {
            every,
            grace,
            on_link,
            since,
            reviewer,
            now,
        })
}

impl Case {
    fn review(&self) -> Value {
        let mut review = json!({"every": format!("{}s", self.every), "grace": format!("{}s", self.grace)});
        if let Some((by, when)) = self.reviewer {
            review["reviewed"] = json!({"by": by, "at": at(when).to_string()});
        }
        review
    }

    fn plan(&self) -> crate::desired::ClientPlan {
        let since = recorded(at(self.since), None);
        let (link, grant) = if self.on_link {
            (link(Some(self.review()), Some(&since)), grant(bob(), None))
        } else {
            let mut g = grant(bob(), Some(self.review()));
            g.status =
                Some(crate::api::AccessGrantStatus { review: Some(Box::new(since)), ..Default::default() });
            (link(None, None), g)
        };
        plan_at(link, grant, at(self.now))
    }

    /// The period's start by the rules written out plainly: a trusted review counts from the
    /// earlier of its claim and now, never before the recorded start.
    fn expected_start(&self) -> i64 {
        let trusted = |by: &str| {
            if self.on_link { !by.ends_with("@techhelp.example") } else { by != "bob@techhelp.example" }
        };
        match self.reviewer {
            Some((by, when)) if trusted(by) => when.min(self.now).max(self.since),
            _ => self.since,
        }
    }
}

proptest! {
    /// Access flows exactly while the review is not a grace past due; the plan wakes at the
    /// next instant the standing changes, never in the past.
    #[test]
    fn access_flows_exactly_until_a_grace_past_due(case in arb_case()) {
        let plan = case.plan();
        let suspends = case.expected_start() + case.every + case.grace;
        let overdue = case.now >= suspends;
        prop_assert_eq!(plan.bindings.is_empty(), overdue, "{:?}", plan.grants);
        let refused = if case.on_link { plan.links["techhelp"].verdict.reason } else { plan.grants[0].verdict.reason };
        prop_assert_eq!(refused == Reason::ReviewOverdue, overdue);
        let announce = case.expected_start() + case.every - case.grace;
        let next = [announce, suspends].into_iter().filter(|s| *s > case.now).min();
        prop_assert!(plan.wake_at.is_none_or(|w| w > at(case.now)));
        if !overdue || case.on_link {
            // A refused link wakes only for its expiry; a link in force for its own review or
            // its grants'.
            let expected = if overdue { None } else { next.map(at) };
            prop_assert_eq!(plan.wake_at, expected);
        }
    }
}

#[test]
fn the_properties_see_both_standings_and_both_kinds() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut overdue, mut granted, mut links, mut refused_reviewers) = (0, 0, 0, 0);
    for _ in 0..500 {
        let case = arb_case().new_tree(&mut runner).unwrap().current();
        let plan = case.plan();
        if plan.bindings.is_empty() {
            overdue += 1
        } else {
            granted += 1
        }
        links += usize::from(case.on_link);
        refused_reviewers += usize::from(case.reviewer.is_some() && case.expected_start() == case.since);
    }
    assert!(
        overdue > 50 && granted > 50 && links > 50 && links < 450 && refused_reviewers > 20,
        "{overdue} {granted} {links} {refused_reviewers}"
    );
}
