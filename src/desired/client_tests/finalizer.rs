//! Which links carry Liaison's finalizer: those that may have been granted something, and
//! nothing is written in a link's name before it carries it.

use super::*;

fn with_finalizer(mut link: ClientLink) -> ClientLink {
    link.metadata.finalizers = Some(vec![names::FINALIZER.to_string()]);
    link
}

fn carries(link: &ClientLink) -> bool {
    link.metadata.finalizers.iter().flatten().any(|f| f == names::FINALIZER)
}

/// The name of the link `plan` puts in force while it carries no finalizer.
fn unguarded(plan: &ClientPlan, world: &World) -> Option<String> {
    unguarded_in_force(plan, &world.links).map(|l| l.name_any())
}

fn named<'a>(world: &'a World, name: &str) -> &'a ClientLink {
    world.links.iter().find(|l| l.metadata.name.as_deref() == Some(name)).unwrap()
}

/// What the link's reconcile decides, from the same inputs it reads.
fn needs(world: &World, name: &str) -> bool {
    let link = named(world, name);
    let neighbours = world.links.iter().filter(|l| l.metadata.namespace == link.metadata.namespace);
    let partner = world.partners.iter().find(|p| p.metadata.name.as_deref() == Some(&link.spec.partner));
    needs_finalizer(
        carries(link),
        outranked(link, neighbours).is_some(),
        revoked_outright(link, partner, world.now).is_some(),
    )
}

#[test]
fn a_link_needs_the_finalizer_if_it_carries_it_or_may_be_put_in_force() {
    for carries in [false, true] {
        for outranked in [false, true] {
            for revoked in [false, true] {
                let expected = carries || (!outranked && !revoked);
                assert_eq!(
                    needs_finalizer(carries, outranked, revoked),
                    expected,
                    "carries {carries}, outranked {outranked}, revoked outright {revoked}"
                );
            }
        }
    }
}

#[test]
fn a_link_that_needs_no_finalizer_is_planned_nothing() {
    type Change = fn(&mut World);
    let cases: Vec<(&str, &str, Change, bool)> = vec![
        ("in force", "techhelp", |_| {}, true),
        ("outranked", "other", |_| {}, false),
        ("no such partner", "techhelp", |w| w.partners.retain(|p| p.name_any() != "techhelp"), false),
        ("suspended", "techhelp", |w| w.beta().spec.suspended = Some(true), false),
        ("expired", "techhelp", |w| w.beta().spec.expires_at = Some(Expiry::from(now())), false),
        (
            "partner created again",
            "techhelp",
            |w| w.beta().spec.partner_uid = Some("uid-of-an-earlier-partner".into()),
            false,
        ),
        // A link granted before keeps its finalizer whatever refuses it now: it is revoked
        // (fail-closed) before the finalizer goes.
        (
            "outranked, once in force",
            "other",
            |w| *w.link_mut(BETA, "other") = with_finalizer(w.link_mut(BETA, "other").clone()),
            true,
        ),
        (
            "suspended, once in force",
            "techhelp",
            |w| {
                *w.beta() = with_finalizer(w.beta().clone());
                w.beta().spec.suspended = Some(true)
            },
            true,
        ),
    ];
    for (what, name, change, expected) in cases {
        let mut world = contested();
        change(&mut world);
        assert_eq!(needs(&world, name), expected, "{what}");
        if !expected {
            let uid = named(&world, name).metadata.uid.clone().unwrap();
            assert!(!owner_uids(&world.plan()).contains(&uid), "{what}: the plan writes nothing in its name");
        }
    }
}

#[test]
fn nothing_is_written_for_a_link_in_force_until_it_carries_the_finalizer() {
    let mut world = contested();
    let plan = world.plan();
    assert_eq!(unguarded(&plan, &world).as_deref(), Some("techhelp"), "the winner without its finalizer");
    *world.beta() = with_finalizer(world.beta().clone());
    assert_eq!(unguarded(&world.plan(), &world), None, "the winner carries it");

    // The winner goes: the refused link, which carries no finalizer, is put in force, and
    // must get it before its access is written.
    *world.beta() = deleting(world.beta().clone());
    let plan = world.plan();
    assert_eq!(link_reason(&plan, "other"), Reason::Active);
    assert_eq!(unguarded(&plan, &world).as_deref(), Some("other"));
    *world.link_mut(BETA, "other") = with_finalizer(world.link_mut(BETA, "other").clone());
    assert_eq!(unguarded(&world.plan(), &world), None);
}

#[test]
fn a_namespace_with_no_link_in_force_has_none_to_guard() {
    let mut world = contested();
    world.partners.clear();
    let plan = world.plan();
    assert_eq!(plan.active_link_uid, None);
    assert_eq!(unguarded(&plan, &world), None);
}
