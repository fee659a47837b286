//! The access key: its level, and a refused level beside it.

use super::*;

#[test]
fn the_access_key_follows_its_level() {
    type Change = fn(&mut World);
    let cases: Vec<(&str, Change, Option<&str>)> = vec![
        ("a ClusterRole level", |_| {}, Some("support")),
        (
            "an inline level",
            |w| w.beta().spec.access_key = Some(AccessKey { access_level: "settings".into() }),
            Some("settings"),
        ),
        (
            "a Role level",
            |w| w.beta().spec.access_key = Some(AccessKey { access_level: "tickets".into() }),
            Some("tickets"),
        ),
        (
            "its ClusterRole exceeds the ceiling",
            |w| {
                w.cluster_roles.insert("view".into(), vec![rule(&[""], &["secrets"], &["get"])]);
            },
            None,
        ),
        (
            "its Role is missing",
            |w| {
                w.roles.clear();
                w.beta().spec.access_key = Some(AccessKey { access_level: "tickets".into() });
            },
            None,
        ),
        (
            "its level is not declared",
            |w| w.beta().spec.access_key = Some(AccessKey { access_level: "nope".into() }),
            None,
        ),
        ("no key asked for", |w| w.beta().spec.access_key = None, None),
    ];
    for (what, change, level) in cases {
        let mut world = World::story();
        change(&mut world);
        let plan = world.plan();
        match level {
            Some(level) => {
                let key = plan.access_key.as_ref().unwrap_or_else(|| panic!("{what}: a key"));
                assert_eq!(key.binding.role_ref, role_ref_to(&names::level_role(LINK_UID, level)), "{what}");
                assert_eq!(
                    key.binding.metadata.labels.as_ref().unwrap()[names::ACCESS_LEVEL],
                    level,
                    "{what}"
                );
                assert_eq!(key.secret_labels[names::ACCESS_LEVEL], level, "{what}");
                assert!(role_of(&plan, LINK_UID, level).is_some(), "{what}: the key's level has its Role");
                assert_eq!(key.secret_namespace, HOME, "{what}");
                assert_eq!(
                    plan.links["techhelp"].access_key_secret,
                    Some(format!("{HOME}/{}", key.secret_name)),
                    "{what}"
                );
            }
            None => {
                assert!(plan.access_key.is_none(), "{what}: no key");
                assert_eq!(plan.links["techhelp"].access_key_secret, None, "{what}");
            }
        }
    }
}

#[test]
fn a_refused_key_level_leaves_the_other_levels_working() {
    let mut world = World::story();
    world.beta().spec.access_key = Some(AccessKey { access_level: "settings".into() });
    world.beta().spec.access_levels[2] = inline("settings", vec![access_rule(&[""], &["secrets"], READ)]);
    let plan = world.plan();
    assert!(plan.access_key.is_none());
    assert_eq!(link_reason(&plan, "techhelp"), Reason::EscalationDenied);
    assert_eq!(grant_reason(&plan, HOME, "beta-support"), Reason::Granted);
    assert_eq!(role_names(&plan), BTreeSet::from([names::level_role(LINK_UID, "support")]));
}
