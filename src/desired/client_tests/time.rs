//! Time: expiry at the instant, wake-ups, suspension.

use super::*;

#[test]
fn expiry_is_at_the_instant() {
    // (what, link expires, grant expires, link reason, grant reason)
    type Case<'a> = (&'a str, Option<i64>, Option<i64>, Reason, Reason);
    let cases: Vec<Case> = vec![
        ("no expiry", None, None, Reason::Active, Reason::Granted),
        ("link a second away", Some(1), None, Reason::Active, Reason::Granted),
        ("link at the instant", Some(0), None, Reason::Expired, Reason::LinkNotReady),
        ("link a second ago", Some(-1), None, Reason::Expired, Reason::LinkNotReady),
        ("grant a second away", None, Some(1), Reason::Active, Reason::Granted),
        ("grant at the instant", None, Some(0), Reason::Active, Reason::Expired),
        ("grant a second ago", None, Some(-1), Reason::Active, Reason::Expired),
        ("both past", Some(-5), Some(-1), Reason::Expired, Reason::LinkNotReady),
    ];
    for (what, link_at, grant_at, link_expected, grant_expected) in cases {
        let mut world = World::story();
        world.beta().spec.expires_at = link_at.map(|s| Expiry::from(from_now(s)));
        world.grant_mut("beta-support").spec.expires_at = grant_at.map(|s| Expiry::from(from_now(s)));
        let plan = world.plan();
        assert_eq!(link_reason(&plan, "techhelp"), link_expected, "{what}");
        assert_eq!(grant_reason(&plan, HOME, "beta-support"), grant_expected, "{what}");
        assert_eq!(
            binding_of(&plan, HOME, "beta-support").is_some(),
            grant_expected == Reason::Granted,
            "{what}"
        );
        if link_expected == Reason::Expired {
            assert!(nothing_granted(&plan), "{what}: an expired link grants nothing, not even its key");
        }
        if grant_expected == Reason::Expired {
            assert!(plan.access_key.is_some(), "{what}: the grant's expiry does not touch the link's key");
        }
    }
}

#[test]
fn wake_at_is_the_earliest_future_expiry_of_the_link_and_its_grants() {
    // (what, link expires, grant expires, other grant expires, wake at)
    type Case<'a> = (&'a str, Option<i64>, Option<i64>, Option<i64>, Option<i64>);
    let cases: Vec<Case> = vec![
        ("nothing expires", None, None, None, None),
        ("the link alone", Some(3600), None, None, Some(3600)),
        ("a grant alone", None, Some(60), None, Some(60)),
        ("the grant first", Some(3600), Some(1800), None, Some(1800)),
        ("the link first", Some(600), Some(1800), None, Some(600)),
        ("the earliest of two grants", None, Some(1800), Some(900), Some(900)),
        ("a past grant wakes nobody", Some(3600), Some(-60), None, Some(3600)),
        ("an expiry at this instant wakes nobody", None, Some(0), Some(120), Some(120)),
        ("all past", None, Some(-60), Some(-1), None),
        ("the link expired: nothing more will change", Some(-1), Some(60), None, None),
        ("a refused grant still ends", None, None, Some(300), Some(300)),
    ];
    for (what, link_at, grant_at, other_at, wake) in cases {
        let mut world = World::story();
        world.beta().spec.expires_at = link_at.map(|s| Expiry::from(from_now(s)));
        world.grant_mut("beta-support").spec.expires_at = grant_at.map(|s| Expiry::from(from_now(s)));
        let mut other = grant(HOME, "beta-later", &[BETA], "nope", vec![user(BOB)]);
        other.spec.expires_at = other_at.map(|s| Expiry::from(from_now(s)));
        world.grants.push(other);
        assert_eq!(world.plan().wake_at, wake.map(from_now), "{what}");
    }
}

#[test]
fn a_refused_link_wakes_when_it_expires_to_say_so() {
    // Suspended now; at its expiry the reason becomes Expired (rule 7), so the plan changes then.
    let mut world = World::story();
    world.beta().spec.suspended = Some(true);
    world.beta().spec.expires_at = Some(Expiry::from(from_now(60)));
    let plan = world.plan();
    assert_eq!(link_reason(&plan, "techhelp"), Reason::Suspended);
    assert_eq!(plan.links["techhelp"].ends_at, Some(from_now(60)));
    assert_eq!(plan.wake_at, Some(from_now(60)));
    world.now = from_now(60);
    let plan = world.plan();
    assert_eq!(link_reason(&plan, "techhelp"), Reason::Expired);
    assert_eq!(plan.wake_at, None);
}

#[test]
fn access_ends_at_the_earlier_of_the_link_and_the_grant() {
    // (link expires, grant expires, ends at)
    let cases: Vec<(Option<i64>, Option<i64>, Option<i64>)> = vec![
        (None, None, None),
        (Some(100), None, Some(100)),
        (None, Some(50), Some(50)),
        (Some(100), Some(50), Some(50)),
        (Some(50), Some(100), Some(50)),
    ];
    for (link_at, grant_at, ends) in cases {
        let mut world = World::story();
        world.beta().spec.expires_at = link_at.map(|s| Expiry::from(from_now(s)));
        world.grant_mut("beta-support").spec.expires_at = grant_at.map(|s| Expiry::from(from_now(s)));
        let plan = world.plan();
        let ends = ends.map(from_now);
        assert_eq!(plan.grant(HOME, "beta-support").unwrap().ends_at, ends, "{link_at:?} {grant_at:?}");
        let annotation = binding_of(&plan, HOME, "beta-support")
            .unwrap()
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(names::ACCESS_ENDS_AT))
            .cloned();
        assert_eq!(annotation, ends.map(|at| at.to_string()), "{link_at:?} {grant_at:?}");
        assert_eq!(plan.links["techhelp"].ends_at, link_at.map(from_now));
    }
}

#[test]
fn suspending_revokes_and_resuming_restores_the_same_objects() {
    let before = World::story().plan();
    let mut world = World::story();
    world.beta().spec.suspended = Some(true);
    let suspended = world.plan();
    assert_eq!(link_reason(&suspended, "techhelp"), Reason::Suspended);
    assert!(suspended.links["techhelp"].verdict.message.contains("spec.suspended"));
    assert!(nothing_granted(&suspended));
    assert_eq!(grant_reason(&suspended, HOME, "beta-support"), Reason::LinkNotReady);
    world.beta().spec.suspended = Some(false);
    assert_eq!(world.plan(), before, "resuming restores exactly the plan of before");
}
