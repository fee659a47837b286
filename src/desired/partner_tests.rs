//! Tests of a partner's guest suite: what its admins and responsible party may do there, and
//! that nothing is bound to nobody.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject as RbacSubject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use proptest::prelude::*;

use super::*;
use crate::api::{Identities, PartnerSpec};
use crate::desired::coverage::covers;
use crate::desired::test_builders::{group, named, rbac_group, rbac_sa, rbac_user, sa, strings, user};

const HOME: &str = "partner-techhelp";
const RBAC: &str = "rbac.authorization.k8s.io";
const READ: &[&str] = &["get", "list", "watch"];

fn partner(name: &str, home: &str, admins: Vec<Subject>, responsible_party: Option<Subject>) -> Partner {
    let mut p = Partner::new(
        name,
        PartnerSpec {
            display_name: None,
            home_namespace: home.into(),
            responsible_party,
            admins,
            identities: Identities {
                user_suffixes: vec![format!("@{name}.example")],
                groups: vec![format!("{name}:analysts")],
            },
            client_namespace_selector: None,
            adopt_existing_home: None,
        },
    );
    p.metadata.uid = Some(format!("uid-partner-{name}"));
    p.metadata.creation_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
    p
}

/// DESIGN.md's TechHelp: alice administers, the vendor managers are responsible.
fn techhelp() -> Partner {
    partner("techhelp", HOME, vec![user("alice@techhelp.example")], Some(group("vendor-managers")))
}

fn home_access() -> HomeAccess {
    HomeAccess {
        service_account: "liaison".into(),
        namespace: "liaison-system".into(),
        cluster_role: "liaison-home-access".into(),
    }
}

fn labels(component: &str, partner: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/managed-by".to_string(), "liaison".to_string()),
        (names::COMPONENT.to_string(), component.to_string()),
        (names::PARTNER.to_string(), partner.to_string()),
        (names::OWNER_UID.to_string(), format!("uid-partner-{partner}")),
    ])
}

fn partner_owner_ref(name: &str) -> OwnerReference {
    OwnerReference {
        api_version: "liaison.dev/v1alpha1".into(),
        kind: "Partner".into(),
        name: name.into(),
        uid: format!("uid-partner-{name}"),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

fn meta(name: &str, namespace: Option<&str>, component: &str, partner: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels(component, partner)),
        owner_references: Some(vec![partner_owner_ref(partner)]),
        ..Default::default()
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef { api_group: RBAC.into(), kind: kind.into(), name: name.into() }
}

#[test]
fn the_suite_of_techhelp() {
    let plan = plan(&techhelp(), Some(&home_access()), HomeClaim::Create);
    let reader = names::partner_reader("techhelp");
    let expected = PartnerPlan {
        operator_binding: Some(RoleBinding {
            metadata: meta("liaison-operator", Some(HOME), "operator-access", "techhelp"),
            role_ref: role_ref("ClusterRole", "liaison-home-access"),
            subjects: Some(vec![rbac_sa("liaison", "liaison-system")]),
        }),
        home_namespace: Namespace {
            metadata: ObjectMeta {
                name: Some(HOME.into()),
                labels: Some(BTreeMap::from([
                    ("app.kubernetes.io/managed-by".to_string(), "liaison".to_string()),
                    (names::HOME_OF.to_string(), "techhelp".to_string()),
                    (names::HOME_OF_UID.to_string(), "uid-partner-techhelp".to_string()),
                    (names::HOME_ADOPTED.to_string(), "false".to_string()),
                ])),
                // Never deleted with the partner: no owner.
                owner_references: None,
                ..Default::default()
            },
            ..Default::default()
        },
        admin_role: Role {
            metadata: meta("liaison-partner-admin", Some(HOME), "partner-admin", "techhelp"),
            rules: Some(admin_rules()),
        },
        admin_binding: Some(RoleBinding {
            metadata: meta("liaison-partner-admin", Some(HOME), "partner-admin", "techhelp"),
            role_ref: role_ref("Role", "liaison-partner-admin"),
            subjects: Some(vec![rbac_user("alice@techhelp.example")]),
        }),
        observer_role: Role {
            metadata: meta("liaison-partner-observer", Some(HOME), "partner-observer", "techhelp"),
            rules: Some(observer_rules()),
        },
        observer_binding: Some(RoleBinding {
            metadata: meta("liaison-partner-observer", Some(HOME), "partner-observer", "techhelp"),
            role_ref: role_ref("Role", "liaison-partner-observer"),
            subjects: Some(vec![rbac_group("vendor-managers")]),
        }),
        reader_role: ClusterRole {
            metadata: meta(&reader, None, "partner-reader", "techhelp"),
            rules: Some(vec![named(
                rule(&["liaison.dev"], &["partners", "partners/status"], &["get", "watch"]),
                &["techhelp"],
            )]),
            aggregation_rule: None,
        },
        reader_binding: Some(ClusterRoleBinding {
            metadata: meta(&reader, None, "partner-reader", "techhelp"),
            role_ref: role_ref("ClusterRole", &reader),
            subjects: Some(vec![rbac_user("alice@techhelp.example"), rbac_group("vendor-managers")]),
        }),
    };
    assert_eq!(plan, expected);
}

#[test]
fn admins_manage_grants_and_robots_and_only_read_secrets() {
    let admin = admin_rules();
    let may = |groups: &[&str], resources: &[&str], verbs: &[&str]| {
        covers(&admin, &[rule(groups, resources, verbs)])
    };
    let allowed: &[(&[&str], &[&str], &[&str])] = &[
        (
            &["liaison.dev"],
            &["accessgrants"],
            &["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"],
        ),
        (&["liaison.dev"], &["accessgrants/status"], READ),
        (&[""], &["serviceaccounts"], &["create", "delete", "patch"]),
        (&[""], &["serviceaccounts/token"], &["create"]),
        (&[""], &["secrets"], READ),
        (&["", "events.k8s.io"], &["events"], READ),
    ];
    for (groups, resources, verbs) in allowed {
        assert!(may(groups, resources, verbs), "{groups:?} {resources:?} {verbs:?}");
    }
    let refused: &[(&[&str], &[&str], &[&str])] = &[
        (&[""], &["secrets"], &["create"]),
        (&[""], &["secrets"], &["update"]),
        (&[""], &["secrets"], &["delete"]),
        (&["liaison.dev"], &["accessgrants/status"], &["update"]),
        (&["liaison.dev"], &["clientlinks"], &["get"]),
        (&["liaison.dev"], &["partners"], &["get"]),
        (&["rbac.authorization.k8s.io"], &["roles", "rolebindings"], &["create"]),
        (&["rbac.authorization.k8s.io"], &["roles"], &["escalate", "bind"]),
        (&[""], &["pods"], &["create"]),
        (&[""], &["pods/exec"], &["create"]),
        (&[""], &["serviceaccounts"], &["impersonate"]),
        (&[""], &["namespaces"], &["delete"]),
        (&[""], &["events"], &["create"]),
        (&["*"], &["*"], &["*"]),
    ];
    for (groups, resources, verbs) in refused {
        assert!(!may(groups, resources, verbs), "{groups:?} {resources:?} {verbs:?}");
    }
    let no_wildcards = |rules: &[PolicyRule]| {
        rules.iter().all(|r| {
            !r.verbs
                .iter()
                .chain(r.resources.iter().flatten())
                .chain(r.api_groups.iter().flatten())
                .any(|x| x.contains('*'))
        })
    };
    assert!(no_wildcards(&admin));
    assert!(no_wildcards(&observer_rules()));
}

#[test]
fn the_responsible_party_reads_but_never_secrets_nor_writes() {
    let observer = observer_rules();
    assert!(covers(&observer, &[rule(&["liaison.dev"], &["accessgrants", "accessgrants/status"], READ)]));
    assert!(covers(&observer, &[rule(&[""], &["serviceaccounts"], READ)]));
    assert!(covers(&observer, &[rule(&["", "events.k8s.io"], &["events"], READ)]));
    for (groups, resources, verbs) in [
        (&[""][..], &["secrets"][..], &["get"][..]),
        (&[""], &["secrets"], &["list"]),
        (&[""], &["serviceaccounts/token"], &["create"]),
        (&["liaison.dev"], &["accessgrants"], &["create"]),
        (&["liaison.dev"], &["accessgrants"], &["delete"]),
        (&[""], &["serviceaccounts"], &["create"]),
    ] {
        assert!(!covers(&observer, &[rule(groups, resources, verbs)]), "{groups:?} {resources:?} {verbs:?}");
    }
}

#[test]
fn nothing_is_bound_to_nobody() {
    // (admins, responsible party) → (admin binding, observer binding, reader binding)
    type Case = (&'static str, Vec<Subject>, Option<Subject>, bool, bool, bool);
    let cases: Vec<Case> = vec![
        ("neither", vec![], None, false, false, false),
        ("admins only", vec![user("alice@techhelp.example")], None, true, false, true),
        ("responsible party only", vec![], Some(user("manager@client.example")), false, true, true),
        ("both", vec![group("techhelp:admins")], Some(group("vendor-managers")), true, true, true),
    ];
    for (what, admins, responsible_party, admin, observer, reader) in cases {
        let plan = plan(&partner("techhelp", HOME, admins, responsible_party), None, HomeClaim::Create);
        assert_eq!(plan.admin_binding.is_some(), admin, "{what}");
        assert_eq!(plan.observer_binding.is_some(), observer, "{what}");
        assert_eq!(plan.reader_binding.is_some(), reader, "{what}");
        // The roles themselves always exist, so that they can be kept as the operator wrote them.
        assert_eq!(plan.admin_role.rules, Some(admin_rules()), "{what}");
        assert_eq!(plan.observer_role.rules, Some(observer_rules()), "{what}");
        for binding in plan.admin_binding.iter().chain(&plan.observer_binding) {
            assert!(!binding.subjects.as_deref().unwrap_or_default().is_empty(), "{what}");
        }
        if let Some(binding) = &plan.reader_binding {
            assert!(!binding.subjects.as_deref().unwrap_or_default().is_empty(), "{what}");
        }
    }
}

#[test]
fn service_account_admins_are_those_of_the_home_namespace() {
    let plan = plan(
        &partner(
            "techhelp",
            HOME,
            vec![sa("grant-bot"), user("alice@techhelp.example"), group("techhelp:admins")],
            None,
        ),
        None,
        HomeClaim::Create,
    );
    let expected =
        vec![rbac_sa("grant-bot", HOME), rbac_user("alice@techhelp.example"), rbac_group("techhelp:admins")];
    assert_eq!(plan.admin_binding.unwrap().subjects, Some(expected.clone()));
    assert_eq!(plan.reader_binding.unwrap().subjects, Some(expected));
}

#[test]
fn the_reader_role_reads_only_its_own_partner() {
    let techhelp = plan(&techhelp(), None, HomeClaim::Create);
    let other = plan(
        &partner("other", "partner-other", vec![user("olga@other.example")], None),
        None,
        HomeClaim::Create,
    );
    let rules = techhelp.reader_role.rules.clone().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].resource_names, Some(strings(&["techhelp"])));
    assert!(covers(
        &rules,
        &[named(rule(&["liaison.dev"], &["partners", "partners/status"], &["get", "watch"]), &["techhelp"])]
    ));
    assert!(
        !covers(&rules, &[named(rule(&["liaison.dev"], &["partners"], &["get"]), &["other"])]),
        "another partner"
    );
    assert!(!covers(&rules, &[rule(&["liaison.dev"], &["partners"], &["get"])]), "every partner");
    assert!(!covers(&rules, &[rule(&["liaison.dev"], &["partners"], &["list"])]), "listing every partner");
    assert!(!covers(
        &rules,
        &[named(rule(&["liaison.dev"], &["partners"], &["update", "patch", "delete"]), &["techhelp"])]
    ));
    assert!(!covers(
        &rules,
        &[named(rule(&["liaison.dev"], &["partners/status"], &["update"]), &["techhelp"])]
    ));
    // One ClusterRole per partner, each bound to that partner's people only.
    assert_ne!(techhelp.reader_role.metadata.name, other.reader_role.metadata.name);
    assert_eq!(other.reader_role.rules.unwrap()[0].resource_names, Some(strings(&["other"])));
    assert_eq!(other.reader_binding.unwrap().subjects, Some(vec![rbac_user("olga@other.example")]));
    assert_eq!(techhelp.reader_binding.unwrap().role_ref.name, techhelp.reader_role.metadata.name.unwrap());
}

#[test]
fn the_operator_binds_itself_only_when_told_who_it_is() {
    assert_eq!(plan(&techhelp(), None, HomeClaim::Create).operator_binding, None);
    let binding = plan(&techhelp(), Some(&home_access()), HomeClaim::Create).operator_binding.unwrap();
    assert_eq!(
        binding.metadata.namespace.as_deref(),
        Some(HOME),
        "Secrets of the home namespace, and only there"
    );
    assert_eq!(binding.role_ref, role_ref("ClusterRole", "liaison-home-access"));
    assert_eq!(binding.subjects, Some(vec![rbac_sa("liaison", "liaison-system")]));
}

#[test]
fn a_home_is_the_partners_only_if_liaison_made_or_adopted_it() {
    let techhelp = techhelp();
    let labels = |uid: &str, adopted: &str| {
        BTreeMap::from([
            (names::HOME_OF_UID.to_string(), uid.to_string()),
            (names::HOME_ADOPTED.to_string(), adopted.to_string()),
        ])
    };
    let (mine, bare) = (labels("uid-partner-techhelp", "false"), BTreeMap::new());
    fn facts(labels: Option<&BTreeMap<String, String>>) -> HomeFacts<'_> {
        HomeFacts { labels, ..Default::default() }
    }
    let reason = |partner: &Partner, facts: &HomeFacts| home_claim(partner, facts).unwrap_err().reason;

    assert_eq!(home_claim(&techhelp, &facts(None)), Ok(HomeClaim::Create), "absent: Liaison creates it");
    assert_eq!(home_claim(&techhelp, &facts(Some(&mine))), Ok(HomeClaim::Own { adopted: false }));
    let adopted = labels("uid-partner-techhelp", "true");
    assert_eq!(
        home_claim(&techhelp, &facts(Some(&adopted))),
        Ok(HomeClaim::Own { adopted: true }),
        "a home adopted once stays the partner's (its mark is the record)"
    );
    assert_eq!(
        reason(&techhelp, &facts(Some(&bare))),
        Reason::HomeNotOwned,
        "an existing tenant namespace is refused"
    );
    let old_mark = labels("uid-of-a-deleted-partner", "false");
    assert_eq!(
        reason(&techhelp, &facts(Some(&old_mark))),
        Reason::HomeNotOwned,
        "a re-created partner does not inherit a home"
    );

    let mut adopting = techhelp.clone();
    adopting.spec.adopt_existing_home = Some(true);
    let consented = |labels: &BTreeMap<String, String>, partner: &str| {
        let mut labels = labels.clone();
        labels.insert(names::ADOPTABLE_BY.to_string(), partner.to_string());
        labels
    };
    let (bare_for_techhelp, old_mark_for_techhelp) =
        (consented(&bare, "techhelp"), consented(&old_mark, "techhelp"));
    assert_eq!(home_claim(&adopting, &facts(Some(&bare_for_techhelp))), Ok(HomeClaim::Adopt));
    assert_eq!(home_claim(&adopting, &facts(Some(&old_mark_for_techhelp))), Ok(HomeClaim::Adopt));
    let taken = HomeFacts {
        labels: Some(&old_mark_for_techhelp),
        marked_by_other: Some("other"),
        ..Default::default()
    };
    assert_eq!(reason(&adopting, &taken), Reason::HomeNamespaceConflict, "never another live partner's home");
    let linked = HomeFacts { labels: Some(&bare_for_techhelp), link: Some("techhelp"), ..Default::default() };
    assert_eq!(reason(&adopting, &linked), Reason::HomeRefused, "a namespace holding a link is never a home");

    for system in ["default", "kube-system", "kube-public"] {
        let mut partner = adopting.clone();
        partner.spec.home_namespace = system.into();
        let labelled = consented(&bare, "techhelp");
        assert_eq!(reason(&partner, &facts(Some(&labelled))), Reason::HomeRefused, "{system}");
    }
    let operator =
        HomeFacts { labels: Some(&bare_for_techhelp), operator_namespace: Some(HOME), ..Default::default() };
    assert_eq!(reason(&adopting, &operator), Reason::HomeRefused, "the operator's own namespace");
}

/// Adoption takes both sides: the Partner's spec and the namespace administrator's label naming
/// this Partner. Either alone is refused, with a message that says what is missing and the exact
/// label to set.
#[test]
fn adopting_an_existing_namespace_takes_the_consent_of_its_administrator() {
    let mut adopting = techhelp();
    adopting.spec.adopt_existing_home = Some(true);
    let labelled = |partner: Option<&str>| -> BTreeMap<String, String> {
        partner.map(|p| (names::ADOPTABLE_BY.to_string(), p.to_string())).into_iter().collect()
    };
    let refusal = |partner: &Partner, labels: &BTreeMap<String, String>| {
        let verdict =
            home_claim(partner, &HomeFacts { labels: Some(labels), ..Default::default() }).unwrap_err();
        assert_eq!(verdict.reason, Reason::HomeNotOwned, "{}", verdict.message);
        verdict.message
    };
    let the_label = format!("kubectl label namespace {HOME} liaison.dev/adoptable-by=techhelp");

    assert_eq!(
        home_claim(&adopting, &HomeFacts { labels: Some(&labelled(Some("techhelp"))), ..Default::default() }),
        Ok(HomeClaim::Adopt),
        "both sides asked"
    );

    let unlabelled = refusal(&adopting, &labelled(None));
    assert!(unlabelled.contains("the namespace has no liaison.dev/adoptable-by label"), "{unlabelled}");
    assert!(unlabelled.contains(&the_label) && !unlabelled.contains("--overwrite"), "{unlabelled}");
    assert!(!unlabelled.contains("is not true"), "the spec did ask: {unlabelled}");

    let for_another = refusal(&adopting, &labelled(Some("other")));
    assert!(for_another.contains("the namespace is adoptable by partner other"), "{for_another}");
    assert!(for_another.contains(&format!("{the_label} --overwrite")), "{for_another}");

    let techhelp = techhelp();
    let unasked = refusal(&techhelp, &labelled(Some("techhelp")));
    assert!(unasked.contains("spec.adoptExistingHome is not true"), "{unasked}");
    assert!(!unasked.contains("has no") && !unasked.contains("adoptable by partner"), "{unasked}");

    let neither = refusal(&techhelp, &labelled(None));
    assert!(
        neither.contains("spec.adoptExistingHome is not true, and the namespace has no liaison.dev/"),
        "{neither}"
    );
    assert!(neither.contains(&the_label), "{neither}");
}

#[test]
fn a_recreated_partner_owns_its_suite_anew() {
    let first = plan(&techhelp(), Some(&home_access()), HomeClaim::Create);
    let mut reborn = techhelp();
    reborn.metadata.uid = Some("uid-partner-techhelp-reborn".into());
    let second = plan(&reborn, Some(&home_access()), HomeClaim::Create);
    for meta in metas(&second) {
        assert_eq!(
            meta.labels.as_ref().unwrap()[names::OWNER_UID],
            "uid-partner-techhelp-reborn",
            "{:?}",
            meta.name
        );
        assert_eq!(
            meta.owner_references.as_ref().unwrap()[0].uid,
            "uid-partner-techhelp-reborn",
            "{:?}",
            meta.name
        );
    }
    assert_eq!(first.admin_role.rules, second.admin_role.rules);
}

/// Every object the plan makes, but the home namespace (which is never owned).
fn metas(plan: &PartnerPlan) -> Vec<&ObjectMeta> {
    let mut metas = vec![&plan.admin_role.metadata, &plan.observer_role.metadata, &plan.reader_role.metadata];
    metas.extend(plan.operator_binding.iter().map(|b| &b.metadata));
    metas.extend(plan.admin_binding.iter().map(|b| &b.metadata));
    metas.extend(plan.observer_binding.iter().map(|b| &b.metadata));
    metas.extend(plan.reader_binding.iter().map(|b| &b.metadata));
    metas
}

// ---- properties ---------------------------------------------------------------------------

fn arb_subject() -> impl Strategy<Value = Subject> {
    prop_oneof![
        "[a-c]{1,3}@techhelp\\.example".prop_map(|n| user(&n)),
        "techhelp:[a-c]{1,3}".prop_map(|n| group(&n)),
        "[a-c]{1,3}-bot".prop_map(|n| sa(&n)),
    ]
}

prop_compose! {
    fn arb_partner()(name in "[a-z]{1,8}", home in "partner-[a-z]{1,8}",
                     admins in prop::collection::vec(arb_subject(), 0..4),
                     responsible_party in prop::option::of(prop_oneof!["[a-c]{1,3}@corp\\.example".prop_map(|n| user(&n)), Just(group("vendor-managers"))])) -> Partner {
        partner(&name, &home, admins, responsible_party)
    }
}

fn to_rbac(subject: &Subject, home: &str) -> RbacSubject {
    match subject.kind {
        SubjectKind::User => rbac_user(&subject.name),
        SubjectKind::Group => rbac_group(&subject.name),
        SubjectKind::ServiceAccount => rbac_sa(&subject.name, home),
    }
}

proptest! {
    #[test]
    fn the_suite_binds_exactly_the_declared_people(partner in arb_partner(), with_access in any::<bool>()) {
        let access = home_access();
        let plan = plan(&partner, with_access.then_some(&access), HomeClaim::Create);
        prop_assert_eq!(&plan, &super::plan(&partner, with_access.then_some(&access), HomeClaim::Create), "deterministic");
        let name = partner.metadata.name.clone().unwrap();
        let home = partner.spec.home_namespace.clone();

        let admins: Vec<RbacSubject> = partner.spec.admins.iter().map(|s| to_rbac(s, &home)).collect();
        let observers: Vec<RbacSubject> = partner.spec.responsible_party.iter().map(|s| to_rbac(s, &home)).collect();
        prop_assert_eq!(plan.admin_binding.as_ref().and_then(|b| b.subjects.clone()), (!admins.is_empty()).then(|| admins.clone()));
        prop_assert_eq!(plan.observer_binding.as_ref().and_then(|b| b.subjects.clone()), (!observers.is_empty()).then(|| observers.clone()));
        let readers: BTreeSet<String> = admins.iter().chain(&observers).map(|s| format!("{s:?}")).collect();
        let bound: BTreeSet<String> = plan.reader_binding.iter().flat_map(|b| b.subjects.iter().flatten()).map(|s| format!("{s:?}")).collect();
        prop_assert_eq!(bound, readers);
        prop_assert_eq!(plan.operator_binding.is_some(), with_access);

        for meta in metas(&plan) {
            let labels = meta.labels.as_ref().unwrap();
            prop_assert_eq!(&labels["app.kubernetes.io/managed-by"], "liaison");
            prop_assert_eq!(&labels[names::PARTNER], &name);
            prop_assert_eq!(meta.owner_references.clone(), Some(vec![partner_owner_ref(&name)]));
            prop_assert!(meta.name.as_ref().unwrap().len() <= 63);
        }
        for meta in [&plan.admin_role.metadata, &plan.observer_role.metadata] {
            prop_assert_eq!(meta.namespace.as_deref(), Some(home.as_str()));
        }
        for binding in plan.operator_binding.iter().chain(&plan.admin_binding).chain(&plan.observer_binding) {
            prop_assert_eq!(binding.metadata.namespace.as_deref(), Some(home.as_str()));
            prop_assert_eq!(&binding.role_ref.api_group, RBAC);
        }
        prop_assert_eq!(plan.reader_role.metadata.namespace.as_deref(), None);
        prop_assert_eq!(plan.reader_role.rules.as_ref().unwrap()[0].resource_names.clone(), Some(vec![name.clone()]));
        prop_assert_eq!(plan.home_namespace.metadata.name.as_deref(), Some(home.as_str()));
        prop_assert_eq!(&plan.home_namespace.metadata.labels.as_ref().unwrap()[names::HOME_OF], &name);
        // Every ServiceAccount bound in the suite is the home namespace's (or the operator's own).
        for binding in plan.admin_binding.iter().chain(&plan.observer_binding) {
            for subject in binding.subjects.iter().flatten().filter(|s| s.kind == "ServiceAccount") {
                prop_assert_eq!(subject.namespace.as_deref(), Some(home.as_str()));
            }
        }
    }
}
