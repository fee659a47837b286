//! The link's standing: refusals, partners replaced, homes, the client selector.

use super::*;

#[test]
fn a_link_revoked_outright_is_planned_no_role() {
    type Change = fn(&mut World);
    let cases: Vec<(&str, Change, Option<Reason>)> = vec![
        ("in force", |_| {}, None),
        ("expiring later", |w| w.beta().spec.expires_at = Some(Expiry::from(from_now(60))), None),
        ("being deleted", |w| *w.beta() = deleting(w.beta().clone()), Some(Reason::Deleting)),
        ("suspended", |w| w.beta().spec.suspended = Some(true), Some(Reason::Suspended)),
        (
            "expired at this very instant",
            |w| w.beta().spec.expires_at = Some(Expiry::from(now())),
            Some(Reason::Expired),
        ),
        ("no such partner", |w| w.partners.clear(), Some(Reason::PartnerNotFound)),
        (
            "partner being deleted",
            |w| *w.partner_mut("techhelp") = deleting(w.partner_mut("techhelp").clone()),
            Some(Reason::PartnerNotReady),
        ),
        (
            "partner created again",
            |w| w.beta().spec.partner_uid = Some("uid-of-an-earlier-partner".into()),
            Some(Reason::PartnerReplaced),
        ),
    ];
    for (what, change, revoked) in cases {
        let mut world = World::story();
        change(&mut world);
        let link = world.links[0].clone();
        let partner = world.partners.iter().find(|p| p.metadata.name.as_deref() == Some("techhelp"));
        assert_eq!(revoked_outright(&link, partner, world.now), revoked, "{what}");
        let plan = world.plan();
        let roles_of_link = link
            .spec
            .access_levels
            .iter()
            .filter(|level| role_of(&plan, LINK_UID, &level.name).is_some())
            .count();
        match revoked {
            Some(_) => assert_eq!(roles_of_link, 0, "{what}: a link revoked outright is planned no Role"),
            None => assert!(roles_of_link > 0, "{what}: a link in force keeps its Roles"),
        }
    }
}

#[test]
fn link_refusals_grant_nothing() {
    type Change = fn(&mut World);
    let cases: Vec<(&str, Change, Reason)> = vec![
        ("no such partner", |w| w.partners.clear(), Reason::PartnerNotFound),
        (
            "partner being deleted",
            |w| *w.partner_mut("techhelp") = deleting(w.partner_mut("techhelp").clone()),
            Reason::PartnerNotReady,
        ),
        (
            "an older partner holds the same home",
            |w| w.partners.push(created(partner("squatter", HOME), "2025-01-01T00:00:00Z")),
            Reason::PartnerNotReady,
        ),
        (
            "a partner as old, first by name, holds the same home",
            |w| w.partners.push(partner("atechhelp", HOME)),
            Reason::PartnerNotReady,
        ),
        (
            "the link is in the partner's own home namespace",
            |w| w.partner_mut("techhelp").spec.home_namespace = BETA.into(),
            Reason::NamespaceNotAllowed,
        ),
        (
            "the namespace does not match the selector",
            |w| {
                w.partner_mut("techhelp").spec.client_namespace_selector =
                    Some(selector(&[("liaison.dev/partners-allowed", "true")], &[]))
            },
            Reason::NamespaceNotAllowed,
        ),
        (
            "expired at this very instant",
            |w| w.beta().spec.expires_at = Some(Expiry::from(now())),
            Reason::Expired,
        ),
        (
            "expired long ago",
            |w| w.beta().spec.expires_at = Some(Expiry::from(t("2025-01-01T00:00:00Z"))),
            Reason::Expired,
        ),
        ("suspended", |w| w.beta().spec.suspended = Some(true), Reason::Suspended),
    ];
    for (what, change, reason) in cases {
        let mut world = World::story();
        change(&mut world);
        let plan = world.plan();
        assert_eq!(link_reason(&plan, "techhelp"), reason, "{what}: {:?}", plan.links["techhelp"].verdict);
        assert!(nothing_granted(&plan), "{what}: nothing is granted");
        assert_eq!(plan.active_link_uid, None, "{what}");
        assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::LinkNotReady, "{what}");
        assert!(plan.grants[0].role_binding.is_none() && plan.grants[0].ends_at.is_none(), "{what}");
        assert_eq!(plan.links["techhelp"].access_key_secret, None, "{what}");
    }
}

#[test]
fn a_younger_partner_with_a_taken_home_grants_nothing_anywhere() {
    let mut world = World::story();
    world.partners.push(created(partner("copycat", HOME), FEB));
    world.links.push(link(GAMMA, "copycat", "copycat", vec![inline("support", settings_rules())]));
    world.grants.push(grant(HOME, "gamma-support", &[GAMMA], "support", vec![user("eve@copycat.example")]));

    let beta = world.plan_in(BETA);
    assert_eq!(
        link_reason(&beta, "techhelp"),
        Reason::Active,
        "the older partner keeps its home and its clients"
    );
    assert_eq!(grant_reason(&beta, HOME, "beta-support"), Reason::Granted);

    let gamma = world.plan_in(GAMMA);
    assert_eq!(link_reason(&gamma, "copycat"), Reason::PartnerNotReady);
    assert!(
        gamma.links["copycat"].verdict.message.contains("already belongs to partner techhelp"),
        "{:?}",
        gamma.links["copycat"]
    );
    assert_eq!(grant_reason(&gamma, HOME, "gamma-support"), Reason::LinkNotReady);
    assert!(nothing_granted(&gamma));
}

#[test]
fn a_partner_created_again_under_the_same_name_grants_nothing_until_the_client_accepts_it() {
    let mut world = World::story();
    let first = world.plan();
    assert_eq!(
        first.links["techhelp"].partner_uid.as_deref(),
        Some("uid-partner-techhelp"),
        "the link records whom it accepted"
    );
    world.link_mut(BETA, "techhelp").status =
        Some(ClientLinkStatus { partner_uid: Some("uid-partner-techhelp".into()), ..Default::default() });

    // The Partner is deleted and created again: same name and home, another UID (its home
    // adopted by the platform admin).
    world.partners[0].metadata.uid = Some("uid-partner-techhelp-again".into());
    let replaced = world.plan();
    assert_eq!(link_reason(&replaced, "techhelp"), Reason::PartnerReplaced);
    assert!(
        replaced.links["techhelp"].verdict.message.contains("uid-partner-techhelp-again"),
        "{:?}",
        replaced.links["techhelp"]
    );
    assert_eq!(
        replaced.links["techhelp"].partner_uid.as_deref(),
        Some("uid-partner-techhelp"),
        "the record is kept"
    );
    assert!(nothing_granted(&replaced), "no old grant revives");

    world.link_mut(BETA, "techhelp").spec.partner_uid = Some("uid-partner-techhelp-again".into());
    let accepted = world.plan();
    assert_eq!(link_reason(&accepted, "techhelp"), Reason::Active, "the client accepted the new Partner");
    assert_eq!(accepted.links["techhelp"].partner_uid.as_deref(), Some("uid-partner-techhelp-again"));
    world.link_mut(BETA, "techhelp").spec.partner_uid = Some("uid-someone-else".into());
    assert_eq!(link_reason(&world.plan(), "techhelp"), Reason::PartnerReplaced, "the spec's word binds too");
}

#[test]
fn partner_standing_decides_who_owns_a_home_namespace() {
    let older = partner("techhelp", HOME);
    let younger = created(partner("copycat", HOME), FEB);
    let same_age_first_by_name = partner("atechhelp", HOME);
    let elsewhere = partner("other", OTHER_HOME);
    let reason = |p: &Partner, all: &[Partner]| partner_standing(p, all).err().map(|v| v.reason);

    assert_eq!(reason(&older, std::slice::from_ref(&older)), None);
    assert_eq!(reason(&older, &[older.clone(), younger.clone(), elsewhere.clone()]), None);
    assert_eq!(reason(&younger, &[older.clone(), younger.clone()]), Some(Reason::HomeNamespaceConflict));
    assert_eq!(
        reason(&younger, &[younger.clone(), older.clone()]),
        Some(Reason::HomeNamespaceConflict),
        "order of the list"
    );
    assert_eq!(
        reason(&older, &[older.clone(), same_age_first_by_name.clone()]),
        Some(Reason::HomeNamespaceConflict)
    );
    assert_eq!(reason(&same_age_first_by_name, &[older.clone(), same_age_first_by_name.clone()]), None);
    assert_eq!(reason(&elsewhere, &[older.clone(), younger.clone(), elsewhere.clone()]), None);
    // A partner being deleted grants nothing and no longer holds its home.
    let leaving = deleting(older.clone());
    assert_eq!(reason(&leaving, &[leaving.clone(), younger.clone()]), Some(Reason::Deleting));
    assert_eq!(reason(&younger, &[leaving.clone(), younger.clone()]), None);
}

#[test]
fn client_namespace_selector() {
    const KEY: &str = "liaison.dev/partners-allowed";
    type Case<'a> = (&'a str, LabelSelector, &'a [(&'a str, &'a str)], bool);
    let cases: Vec<Case> = vec![
        ("matchLabels, matching", selector(&[(KEY, "true")], &[]), &[(KEY, "true"), ("team", "b")], true),
        ("matchLabels, other value", selector(&[(KEY, "true")], &[]), &[(KEY, "false")], false),
        ("matchLabels, unlabelled", selector(&[(KEY, "true")], &[]), &[], false),
        (
            "In, matching",
            selector(&[], &[("tier", "In", Some(vec!["gold", "silver"]))]),
            &[("tier", "silver")],
            true,
        ),
        (
            "In, not matching",
            selector(&[], &[("tier", "In", Some(vec!["gold"]))]),
            &[("tier", "bronze")],
            false,
        ),
        ("In, label absent", selector(&[], &[("tier", "In", Some(vec!["gold"]))]), &[], false),
        (
            "NotIn, other value",
            selector(&[], &[("tier", "NotIn", Some(vec!["free"]))]),
            &[("tier", "gold")],
            true,
        ),
        (
            "NotIn, listed value",
            selector(&[], &[("tier", "NotIn", Some(vec!["free"]))]),
            &[("tier", "free")],
            false,
        ),
        ("Exists, present", selector(&[], &[("tier", "Exists", None)]), &[("tier", "")], true),
        ("Exists, absent", selector(&[], &[("tier", "Exists", None)]), &[], false),
        ("DoesNotExist, absent", selector(&[], &[("quarantine", "DoesNotExist", None)]), &[], true),
        (
            "DoesNotExist, present",
            selector(&[], &[("quarantine", "DoesNotExist", None)]),
            &[("quarantine", "yes")],
            false,
        ),
        (
            "labels and expressions, both match",
            selector(&[(KEY, "true")], &[("tier", "In", Some(vec!["gold"]))]),
            &[(KEY, "true"), ("tier", "gold")],
            true,
        ),
        (
            "labels and expressions, one fails",
            selector(&[(KEY, "true")], &[("tier", "In", Some(vec!["gold"]))]),
            &[(KEY, "true")],
            false,
        ),
        ("the empty selector matches everything", selector(&[], &[]), &[], true),
        // Selectors Kubernetes itself would reject allow nothing.
        ("unknown operator", selector(&[], &[("tier", "Bogus", None)]), &[("tier", "gold")], false),
        ("In without values", selector(&[], &[("tier", "In", None)]), &[("tier", "gold")], false),
        (
            "In with an empty value list",
            selector(&[], &[("tier", "In", Some(vec![]))]),
            &[("tier", "gold")],
            false,
        ),
        ("NotIn without values", selector(&[], &[("tier", "NotIn", None)]), &[("tier", "gold")], false),
        (
            "NotIn with an empty value list",
            selector(&[], &[("tier", "NotIn", Some(vec![]))]),
            &[("tier", "gold")],
            false,
        ),
        (
            "Exists with values",
            selector(&[], &[("tier", "Exists", Some(vec!["gold"]))]),
            &[("tier", "gold")],
            false,
        ),
        (
            "DoesNotExist with values",
            selector(&[], &[("quarantine", "DoesNotExist", Some(vec!["yes"]))]),
            &[],
            false,
        ),
    ];
    for (what, selector, namespace_labels, allowed) in cases {
        let mut world = World::story();
        world.partner_mut("techhelp").spec.client_namespace_selector = Some(selector);
        for (k, v) in namespace_labels {
            world.label(BETA, k, v);
        }
        let plan = world.plan();
        let expected = if allowed { Reason::Active } else { Reason::NamespaceNotAllowed };
        assert_eq!(link_reason(&plan, "techhelp"), expected, "{what}");
        assert_eq!(!plan.bindings.is_empty(), allowed, "{what}");
    }
}

#[test]
fn a_link_in_a_partners_home_namespace_is_not_allowed() {
    let mut world = World::story();
    world.links.push(link(HOME, "self", "techhelp", vec![inline("support", settings_rules())]));
    world.grants.push(grant(HOME, "self-grant", &[HOME], "support", vec![user(BOB)]));
    let plan = world.plan_in(HOME);
    assert_eq!(link_reason(&plan, "self"), Reason::NamespaceNotAllowed);
    assert_eq!(grant_reason(&plan, HOME, "self-grant"), Reason::LinkNotReady);
    assert!(nothing_granted(&plan));
}
