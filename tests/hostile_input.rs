//! Hostile input at the parsing boundary and through the pure planning code: valid documents
//! mutated at random (wrong types, huge or odd strings, extreme timestamps, `system:*` names,
//! missing and extra fields) and parsed as Liaison's resources must never panic, and whatever
//! parses must plan within the rules: no foreign or system subject bound, no Role beyond the
//! ceiling, nothing for a suspended or expired link or grant, valid names, a deterministic plan.
//! No control plane: this is the fuzzing half of the security issue.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::rbac::v1::PolicyRule;
use liaison::api::{AccessGrant, ClientLink, Expiry, Partner};
use liaison::desired::coverage::covers;
use liaison::desired::{ClientInputs, plan_client};
use proptest::prelude::*;
use serde_json::{Value, json};

const HOME: &str = "techhelp";
const CLIENT: &str = "beta";

fn partner() -> Value {
    json!({
        "apiVersion": "liaison.dev/v1alpha1", "kind": "Partner",
        "metadata": {"name": "techhelp", "uid": "p-uid", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "homeNamespace": HOME,
            "admins": [{"kind": "User", "name": "ann@techhelp.example"}],
            "identities": {"userSuffixes": ["@techhelp.example"], "groups": ["techhelp:staff"]},
            "clientNamespaceSelector": {"matchLabels": {"partners": "allowed"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["prod"]}]}
        }
    })
}

fn link() -> Value {
    json!({
        "apiVersion": "liaison.dev/v1alpha1", "kind": "ClientLink",
        "metadata": {"name": "techhelp", "namespace": CLIENT, "uid": "l-uid", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "partner": "techhelp",
            "accessLevels": [
                {"name": "read", "rules": [{"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list"]}]},
                {"name": "role", "role": "existing"},
                {"name": "cluster", "clusterRole": "viewer"}
            ],
            "accessKey": {"accessLevel": "read"}
        }
    })
}

fn grant() -> Value {
    json!({
        "apiVersion": "liaison.dev/v1alpha1", "kind": "AccessGrant",
        "metadata": {"name": "support", "namespace": HOME, "uid": "g-uid", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "clients": [CLIENT],
            "accessLevel": "read",
            "subjects": [
                {"kind": "User", "name": "bob@techhelp.example"},
                {"kind": "Group", "name": "techhelp:staff"},
                {"kind": "ServiceAccount", "name": "robot"}
            ]
        }
    })
}

/// Where mutations land: every field the rules read, and a few they do not.
const PATHS: &[&str] = &[
    "/metadata/name",
    "/metadata/creationTimestamp",
    "/metadata/deletionTimestamp",
    "/metadata/uid",
    "/spec",
    "/spec/homeNamespace",
    "/spec/identities",
    "/spec/identities/userSuffixes",
    "/spec/identities/userSuffixes/0",
    "/spec/identities/groups/0",
    "/spec/clientNamespaceSelector",
    "/spec/clientNamespaceSelector/matchExpressions/0/operator",
    "/spec/clientNamespaceSelector/matchExpressions/0/values",
    "/spec/partner",
    "/spec/suspended",
    "/spec/expiresAt",
    "/spec/accessLevels",
    "/spec/accessLevels/0/rules/0/verbs",
    "/spec/accessLevels/0/rules/0/resources/0",
    "/spec/accessLevels/0/rules/0/apiGroups",
    "/spec/accessLevels/0/rules/0/resourceNames",
    "/spec/accessLevels/1/role",
    "/spec/accessLevels/2/clusterRole",
    "/spec/accessKey",
    "/spec/clients",
    "/spec/clients/0",
    "/spec/accessLevel",
    "/spec/subjects",
    "/spec/subjects/0/name",
    "/spec/subjects/0/kind",
    "/spec/subjects/1/name",
    "/spec/subjects/2/namespace",
    "/spec/extra",
];

fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("system:masters".to_string()),
        Just("system:serviceaccount:kube-system:default".to_string()),
        Just("@techhelp.example".to_string()),
        Just("mallory@techhelp.example.evil".to_string()),
        Just("*".to_string()),
        Just("NotIn".to_string()),
        Just("Exists".to_string()),
        Just("9999-12-31T23:59:59Z".to_string()),
        Just("0001-01-01T00:00:00Z".to_string()),
        Just("2026-13-45T99:99:99Z".to_string()),
        Just("x".repeat(70_000)),
        "\\PC{0,40}",
        "[a-z0-9.-]{0,300}",
    ]
}

/// Grant subjects drawn from the partner's own people, other people and system identities.
fn subject() -> impl Strategy<Value = Value> {
    let kinds = prop::sample::select(&["User", "Group", "ServiceAccount"][..]);
    let names = prop::sample::select(
        &[
            "bob@techhelp.example",
            "@techhelp.example",
            "bob@techhelp.example.evil",
            "mallory@evil.example",
            "system:masters",
            "system:admin@techhelp.example",
            "system:authenticated",
            "techhelp:staff",
            "evil:staff",
            "robot",
            "system:serviceaccount:kube-system:default",
        ][..],
    );
    (kinds, names).prop_map(|(kind, name)| json!({"kind": kind, "name": name}))
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        odd_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(odd_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces (or creates, when the parent is an object) the value at `path`.
fn mutate(document: &mut Value, path: &str, value: Value) {
    let (parent, last) = path.rsplit_once('/').expect("an absolute path");
    let target = if parent.is_empty() { Some(&mut *document) } else { document.pointer_mut(parent) };
    match target {
        Some(Value::Object(map)) => {
            map.insert(last.to_string(), value);
        }
        Some(Value::Array(items)) => {
            if let Some(slot) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *slot = value;
            }
        }
        _ => {}
    }
}

fn mutated(base: Value) -> impl Strategy<Value = Value> {
    // Often none or one: most cases should still be plannable for the invariants to bite.
    let count = prop_oneof![3 => Just(0usize), 2 => Just(1usize), 1 => 2usize..5];
    count.prop_flat_map(|n| prop::collection::vec((prop::sample::select(PATHS), any_json()), n)).prop_map(
        move |mutations| {
            let mut document = base.clone();
            for (path, value) in mutations {
                mutate(&mut document, path, value);
            }
            document
        },
    )
}

fn ceiling() -> Vec<PolicyRule> {
    vec![PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec!["pods".into(), "configmaps".into(), "services".into()]),
        verbs: vec!["get".into(), "list".into(), "watch".into()],
        ..Default::default()
    }]
}

fn any_rules() -> impl Strategy<Value = Vec<PolicyRule>> {
    let words = |xs: &'static [&'static str]| {
        prop::collection::vec(prop::sample::select(xs).prop_map(String::from), 0..3)
    };
    prop::collection::vec(
        (
            words(&["", "apps", "*"]),
            words(&["pods", "secrets", "configmaps", "*", "pods/log"]),
            words(&["get", "list", "delete", "*"]),
            prop::option::of(words(&["a", "b"])),
            prop::option::of(words(&["/healthz", "*"])),
        )
            .prop_map(|(api_groups, resources, verbs, resource_names, non_resource_urls)| {
                PolicyRule {
                    api_groups: Some(api_groups),
                    resources: Some(resources),
                    verbs,
                    resource_names,
                    non_resource_urls,
                }
            }),
        0..4,
    )
}

fn valid_label_value(value: &str) -> bool {
    value.len() <= 63
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && value.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
        && value.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Whether every name and UID the plan may copy into names and labels is of a form the API
/// server would have admitted.
fn identifiers_are_admitted(partner: &Partner, link: &ClientLink, grant: &AccessGrant) -> bool {
    let metas = [&partner.metadata, &link.metadata, &grant.metadata];
    let names = metas.iter().filter_map(|m| m.name.as_deref());
    let uids = metas.iter().filter_map(|m| m.uid.as_deref());
    let levels = link.spec.access_levels.iter().map(|l| l.name.as_str());
    let references = [link.spec.partner.as_str(), grant.spec.access_level.as_str()];
    names.chain(uids).chain(levels).chain(references).all(|id| valid_name(id) && valid_label_value(id))
}

/// Passed, or not an instant at all (fail closed).
fn expired(at: &Option<Expiry>, now: Timestamp) -> bool {
    at.as_ref().is_some_and(|at| at.as_str().parse::<Timestamp>().ok().is_none_or(|at| at <= now))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics_the_parsers(document in any_json()) {
        let _ = serde_json::from_value::<Partner>(document.clone());
        let _ = serde_json::from_value::<ClientLink>(document.clone());
        let _ = serde_json::from_value::<AccessGrant>(document.clone());
        let text = serde_yaml::to_string(&document).unwrap_or_default();
        let _ = serde_yaml::from_str::<AccessGrant>(&text);
    }

    #[test]
    fn whatever_parses_plans_within_the_rules(
        partner in mutated(partner()),
        link in mutated(link()),
        grant in mutated(grant()),
        subjects in prop::option::of(prop::collection::vec(subject(), 0..5)),
        labels in prop_oneof![
            Just(BTreeMap::from([("partners".to_string(), "allowed".to_string())])),
            prop::collection::btree_map(
                prop::sample::select(&["partners", "tier", "other"][..]).prop_map(String::from),
                prop::sample::select(&["allowed", "prod", "", "x"][..]).prop_map(String::from),
                0..3,
            ),
        ],
        existing_role in any_rules(),
        viewer in any_rules(),
        now_seconds in -62_135_596_800i64..253_402_300_799i64,
    ) {
        let mut grant = grant;
        if let Some(subjects) = subjects {
            mutate(&mut grant, "/spec/subjects", Value::Array(subjects));
        }
        let (Ok(partner), Ok(link), Ok(grant)) = (
            serde_json::from_value::<Partner>(partner),
            serde_json::from_value::<ClientLink>(link),
            serde_json::from_value::<AccessGrant>(grant),
        ) else {
            return Ok(());
        };
        let now = Timestamp::from_second(now_seconds).unwrap();
        let ceiling = ceiling();
        let roles = BTreeMap::from([("existing".to_string(), existing_role)]);
        let cluster_roles = BTreeMap::from([("viewer".to_string(), viewer)]);
        let (partners, links, grants) = (vec![partner.clone()], vec![link.clone()], vec![std::sync::Arc::new(grant.clone())]);
        let homes = liaison::desired::client::marked_homes(&partners);
        let inputs = ClientInputs {
            namespace: CLIENT,
            namespace_labels: &labels,
            links: &links,
            partners: &partners,
            homes: &homes,
            grants: &grants,
            roles: &roles,
            cluster_roles: &cluster_roles,
            ceiling: Some(&ceiling),
            now,
        };
        let plan = plan_client(&inputs);
        prop_assert_eq!(&plan, &plan_client(&inputs), "the plan is deterministic");

        for role in &plan.roles {
            prop_assert!(covers(&ceiling, role.rules.as_deref().unwrap_or_default()), "a Role beyond the ceiling: {:?}", role.rules);
        }
        for binding in plan.bindings.iter().chain(plan.access_key.as_ref().map(|k| &k.binding)) {
            for subject in binding.subjects.iter().flatten() {
                prop_assert!(!subject.name.starts_with("system:"), "a system subject bound: {}", subject.name);
                // Rule 4 restated here, not through the operator's own identity code.
                let identities = &partner.spec.identities;
                let own = match subject.kind.as_str() {
                    "User" => identities.user_suffixes.iter().any(|x| subject.name.len() > x.len() && subject.name.ends_with(x.as_str())),
                    "Group" => identities.groups.contains(&subject.name),
                    "ServiceAccount" => subject.namespace.as_deref() == Some(CLIENT) || subject.namespace.as_deref() == Some(partner.spec.home_namespace.as_str()),
                    _ => false,
                };
                prop_assert!(own, "a foreign subject bound: {:?}", subject);
            }
        }
        let link_off = link.spec.suspended == Some(true) || expired(&link.spec.expires_at, now) || link.metadata.deletion_timestamp.is_some();
        if link_off || partner.metadata.deletion_timestamp.is_some() {
            prop_assert!(plan.bindings.is_empty() && plan.roles.is_empty() && plan.access_key.is_none(), "access through a link that is off");
        }
        if expired(&grant.spec.expires_at, now) {
            prop_assert!(plan.bindings.is_empty(), "an expired grant still bound");
        }
        // Names and label values are built from the inputs' names and UIDs, so they can only be
        // as valid as those; the API server admits no other kind (mutations here make any).
        let objects = plan.roles.iter().map(|r| &r.metadata).chain(plan.bindings.iter().map(|b| &b.metadata));
        let admitted = identifiers_are_admitted(&partner, &link, &grant);
        for meta in objects.filter(|_| admitted) {
            let name = meta.name.clone().unwrap_or_default();
            prop_assert!(valid_name(&name), "invalid name {:?}", name);
            for (key, value) in meta.labels.iter().flatten() {
                prop_assert!(valid_label_value(value), "invalid value of label {}: {:?}", key, value);
            }
        }
    }

    #[test]
    fn coverage_is_reflexive_and_monotone(rules in any_rules(), more in any_rules(), asked in any_rules()) {
        prop_assert!(covers(&rules, &rules), "rules cover themselves");
        if covers(&rules, &asked) {
            let wider: Vec<PolicyRule> = rules.iter().chain(&more).cloned().collect();
            prop_assert!(covers(&wider, &asked), "adding rules to the ceiling never removes coverage");
        }
    }
}
