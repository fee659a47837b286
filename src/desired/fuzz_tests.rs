//! Hostile input at the parsing boundary, then through the pure desired-state code.
//!
//! The other property suites build well-formed objects. These start one step earlier, from
//! documents: random JSON, random bytes, and valid CRD documents mutated (wrong types, missing
//! and extra fields, huge, empty and unicode strings, numbers out of range, malformed or extreme
//! timestamps, deep nesting), read as JSON (as kube reads the API server) and as YAML. Reading
//! must answer Ok or Err, never panic. Whatever reads is planned with arbitrary namespace labels,
//! Roles, ClusterRoles, ceiling and time, in three worlds:
//!
//! - raw: the objects exactly as read (duplicate names and UIDs, links of other namespaces,
//!   grants not naming the namespace), which no cluster hands over: no panic, the same plan
//!   twice, no `system:*` subject, nothing beyond the ceiling;
//! - normalized: what a cluster could hand over (unique names and UIDs, the namespace's links,
//!   the grants naming it): every rule below, checked against restatements written here;
//! - admitted: the normalized objects the CRDs' schema and CEL rules would let in: also valid
//!   names and labels on everything materialized.
//!
//! The rules: (a) only the partner's own people are bound, never `system:*`; (b) every Role is
//! covered by the ceiling; (c) nothing for a namespace outside the partner's selector, nor
//! through an expired, suspended or deleted link or grant, nor for a partner that does not
//! stand; (d) valid names and labels; (e) the same inputs give the same plan. Label selectors
//! and arbitrary PolicyRules are also thrown at kube's selector parser and at `coverage`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::rbac::v1::{PolicyRule, Subject as RbacSubject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use kube::ResourceExt;
use kube::core::{ObjectList, Selector, SelectorExt};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::client::{ClientInputs, ClientPlan, judged_with, plan as plan_client, smallest_grant_limit};
use super::coverage::{Atom, Uncovered, atoms, covers, rule_covers, uncovered};
use super::names;
use super::partner::{HomeAccess, HomeClaim, admin_rules, observer_rules, plan as plan_partner};
use super::test_builders::*;
use super::verdict::Reason;
use crate::api::{AccessGrant, AccessLevel, AccessRule, ClientLink, Expiry, Partner, Subject, SubjectKind};

const API_VERSION: &str = "liaison.dev/v1alpha1";
const RBAC: &str = "rbac.authorization.k8s.io";
const READ: &[&str] = &["get", "list", "watch"];

// ---- Kubernetes' syntax rules, written out here ---------------------------------------------

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63: namespaces, level names.
fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && is_dns_part(s)
}

fn is_dns_part(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// DNS-1123 subdomain: dot-separated labels, at most 253.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_part)
}

/// `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`, at most 63.
fn is_label_value(s: &str) -> bool {
    let alnum = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    s.is_empty()
        || (s.len() <= 63
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && alnum(s.as_bytes().first())
            && alnum(s.as_bytes().last()))
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a non-empty name of at most 63.
fn is_label_key(s: &str) -> bool {
    let (prefix, name) = match s.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, s),
    };
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && is_label_value(name)
}

/// A custom resource's name: a DNS subdomain, and at most 63 by the CRDs' CEL rule.
fn is_object_name(meta: &ObjectMeta) -> bool {
    meta.name.as_deref().is_some_and(|n| n.len() <= 63 && is_dns_subdomain(n))
}

// ---- hostile values -------------------------------------------------------------------------

const HOSTILE: &[&str] = &[
    "",
    " ",
    "-",
    ".",
    "..",
    "*",
    "/",
    "a/b",
    "a b",
    "-a",
    "a-",
    "a.",
    "UPPER",
    "Mixed.Case",
    "a_b",
    "\u{0}",
    "\t",
    "\n",
    "\u{202e}cba",
    "\u{feff}x",
    "é",
    "日本",
    "🦀",
    "ǅ",
    "İ",
    "system:",
    "system:masters",
    "System:masters",
    " system:masters",
    "system:serviceaccount:kube-system:default",
    "system:serviceaccounts",
    "null",
    "true",
    "0",
    "~",
    "- a",
    "{}",
    "'",
    "\"",
    "\\",
    "a:b",
    "&a",
    "*a",
    "!!str",
    "#",
    "@",
];

fn one_of(pool: &'static [&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(pool).prop_map(str::to_string).boxed()
}

/// Strings that are not huge: odd characters, unicode, lengths around the limits.
fn odd_string() -> BoxedStrategy<String> {
    prop_oneof![
        6 => one_of(HOSTILE),
        3 => "\\PC{0,24}",
        2 => "(?s).{0,16}",
        2 => (62usize..=66).prop_map(|n| "a".repeat(n)),
        1 => (250usize..=256).prop_map(|n| "b".repeat(n)),
    ]
    .boxed()
}

/// Any of the above, and now and then a huge one.
fn hostile_string() -> BoxedStrategy<String> {
    prop_oneof![
        20 => odd_string(),
        1 => prop::sample::select(vec![10_000usize, 100_000]).prop_map(|n| "ü".repeat(n)),
    ]
    .boxed()
}

/// Mostly one of `pool`, sometimes hostile.
fn mostly(pool: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![9 => one_of(pool), 1 => hostile_string()].boxed()
}

/// Timestamps jiff reads, the extremes of its range and the instants around "now" included.
const GOOD_TIMES: &[&str] = &[
    "2026-01-01T00:00:00Z",
    "2026-02-01T00:00:00Z",
    "2026-06-01T12:00:00Z",
    "2026-06-01T12:00:01Z",
    "2026-06-01T11:59:59Z",
    "2026-06-01T12:00:00.000000001Z",
    "2026-06-01T12:00:00+14:00",
    "2026-06-01T12:00:00-23:59",
    "2027-06-30T00:00:00Z",
    "2028-02-29T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "9999-12-30T00:00:00Z",
];

/// Malformed, out of range, or of another format.
const EDGE_TIMES: &[&str] = &[
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999999Z",
    "2026-06-01T12:00:00.1234567891Z",
    "2026-06-01T12:00:00+99:00",
    "2026-06-01t12:00:00z",
    "2026-06-01T12:00:00x5Z",
    "2026-02-30T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-06-01T24:00:00Z",
    "2026-12-31T23:59:60Z",
    "2026-06-01",
    "2026-06-01T12:00:00",
    "2026-06-01 12:00:00Z",
    "-009999-01-01T00:00:00Z",
    "+010000-01-01T00:00:00Z",
    "+002026-06-01T12:00:00Z",
    "2026-06-01T12:00:00Z[Europe/Paris]",
    "now",
    "1780000000",
    "2026-W22-1T00:00:00Z",
];

fn timestamp_text() -> BoxedStrategy<String> {
    prop_oneof![6 => one_of(GOOD_TIMES), 2 => one_of(EDGE_TIMES), 1 => odd_string()].boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => prop::sample::select(vec![
            json!(0),
            json!(1),
            json!(-1),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(2_147_483_648u64),
            json!(-2_147_483_649i64),
            json!(1.5),
            json!(-0.0),
            json!(1e300),
            json!(f64::MIN_POSITIVE),
        ]),
        1 => any::<i64>().prop_map(Value::from),
    ]
    .boxed()
}

/// Every field name of the three kinds, so that random documents often hit real fields.
const FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "spec",
    "status",
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "generation",
    "labels",
    "partner",
    "accessLevels",
    "clusterRole",
    "role",
    "rules",
    "apiGroups",
    "resources",
    "verbs",
    "resourceNames",
    "accessKey",
    "accessLevel",
    "expiresAt",
    "suspended",
    "maxGrants",
    "clients",
    "subjects",
    "homeNamespace",
    "displayName",
    "responsibleParty",
    "admins",
    "identities",
    "userSuffixes",
    "groups",
    "clientNamespaceSelector",
    "matchLabels",
    "matchExpressions",
    "key",
    "operator",
    "values",
    "conditions",
    "observedGeneration",
    "subjectCount",
];

fn field_name() -> BoxedStrategy<String> {
    prop_oneof![3 => one_of(FIELDS), 1 => odd_string()].boxed()
}

/// Any JSON document of modest size.
fn arb_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        hostile_string().prop_map(Value::String),
        timestamp_text().prop_map(Value::String),
        one_of(FIELDS).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..5).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

fn object(fields: Vec<(&str, Option<Value>)>, extra: Option<(String, Value)>) -> Value {
    let mut map: Map<String, Value> = fields.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_string(), v))).collect();
    if let Some((k, v)) = extra {
        map.insert(k, v);
    }
    Value::Object(map)
}

// ---- documents ------------------------------------------------------------------------------

const PARTNER_NAMES: &[&str] = &["techhelp", "techhelp", "techhelp", "techhelp", "other", "t.help", "ghost"];
const HOMES: &[&str] = &["partner-techhelp", "partner-techhelp", "partner-techhelp", "partner-techhelp", "partner-other", "beta"];
/// The namespace planned: mostly a client, sometimes the partner's own home.
const NAMESPACES: &[&str] = &["beta", "beta", "beta", "beta", "beta", "beta", "beta", "beta", "gamma", "partner-techhelp"];
const CLIENTS: &[&str] = &["beta", "beta", "beta", "gamma"];
const LINK_NAMES: &[&str] = &["techhelp", "link-a", "link-b"];
const GRANT_NAMES: &[&str] = &["beta-support", "g.1", "g-2", "a-long-grant-name-that-is-cut-down-to-fit-a.into-binding-name"];
const LEVELS: &[&str] = &["support", "support", "l0", "l1"];
const ROLE_NAMES: &[&str] = &["reader", "deleter", "absent"];
const CLUSTER_ROLE_NAMES: &[&str] = &["view", "view", "edit", "urls", "absent"];
const USERS: &[&str] = &[
    "bob@techhelp.example",
    "bob@techhelp.example",
    "ann@techhelp.example",
    "bob@other.example",
    "@techhelp.example",
    "system:admin",
    "system:a@techhelp.example",
    "bob@techhelp.example.evil",
];
const GROUPS: &[&str] = &["techhelp:analysts", "techhelp:analysts", "other:analysts", "system:masters", "system:authenticated"];
const SERVICE_ACCOUNTS: &[&str] = &["ticket-bot", "ticket-bot", "bot.v2", "Bad_Name", "system:serviceaccount:kube-system:default"];
const SUFFIXES: &[&str] = &["@techhelp.example", "@techhelp.example", "@other.example", "@", "e", "system:"];
const LABEL_KEYS: &[&str] = &["allowed", "tier", "liaison.dev/partners-allowed", "kubernetes.io/metadata.name"];
const LABEL_VALUES: &[&str] = &["true", "gold", "beta", ""];
const OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist", "In", "NotIn", "Exists", "DoesNotExist", "in", "Equals", "Gt", ""];
const API_GROUPS: &[&str] = &["", "apps", "*", "batch", "rbac.authorization.k8s.io"];
const RESOURCES: &[&str] =
    &["pods", "pods/log", "pods/exec", "secrets", "configmaps", "deployments", "deployments/scale", "*", "*/scale", "*/*", "", "a/b/c"];
const VERBS: &[&str] = &["get", "list", "watch", "create", "delete", "escalate", "bind", "impersonate", "*", "", "GET"];
const RESOURCE_NAMES: &[&str] = &["a", "b", "*", ""];
const URLS: &[&str] = &["/healthz", "*", "/api/*", ""];

fn uid() -> BoxedStrategy<String> {
    prop_oneof![
        4 => one_of(&["uid-a", "uid-b", "uid-c"]),
        2 => "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        1 => hostile_string(),
    ]
    .boxed()
}

/// How hostile a document is: `Wild` also breaks types (numbers out of range, objects for
/// strings, unknown enum values, colliding extra fields); `Typed` keeps every field of its type
/// (hostile strings included), so that most documents read and the worlds made of them grant.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Wild,
    Typed,
}

/// Some with probability `p` when wild, else never.
fn when_wild<T: Debug + Clone + 'static>(shape: Shape, p: f64, strategy: impl Strategy<Value = T> + 'static) -> BoxedStrategy<Option<T>> {
    match shape {
        Shape::Wild => prop::option::weighted(p, strategy).boxed(),
        Shape::Typed => Just(None).boxed(),
    }
}

/// `typed`, or when wild now and then anything at all.
fn or_anything(shape: Shape, typed: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    match shape {
        Shape::Wild => prop_oneof![9 => typed, 1 => arb_json()].boxed(),
        Shape::Typed => typed,
    }
}

/// An extra field: wild ones may collide with real fields, typed ones are unknown names.
fn extra(shape: Shape) -> BoxedStrategy<Option<(String, Value)>> {
    match shape {
        Shape::Wild => prop::option::weighted(0.1, (field_name(), arb_json())).boxed(),
        Shape::Typed => prop::option::weighted(0.05, ("x-[a-z]{1,8}", arb_json())).boxed(),
    }
}

/// A timestamp slot: mostly text jiff reads; when wild, also other types.
fn timestamp_json(shape: Shape) -> BoxedStrategy<Value> {
    match shape {
        Shape::Wild => prop_oneof![
            12 => timestamp_text().prop_map(Value::String),
            1 => number(),
            1 => Just(Value::Null),
            1 => Just(json!(true)),
        ]
        .boxed(),
        Shape::Typed => prop_oneof![16 => one_of(GOOD_TIMES), 1 => one_of(EDGE_TIMES), 1 => odd_string()].prop_map(Value::String).boxed(),
    }
}

fn meta_doc(shape: Shape, names: &'static [&'static str], namespaces: Option<&'static [&'static str]>) -> BoxedStrategy<Value> {
    let namespace = match namespaces {
        Some(pool) => prop::option::weighted(0.97, mostly(pool)).boxed(),
        None => prop::option::weighted(0.03, hostile_string()).boxed(),
    };
    let created = prop_oneof![12 => one_of(GOOD_TIMES).prop_map(Value::String), 1 => timestamp_json(shape)];
    let generation = match shape {
        Shape::Wild => number(),
        Shape::Typed => any::<i64>().prop_map(Value::from).boxed(),
    };
    (
        prop::option::weighted(0.98, mostly(names)),
        namespace,
        prop::option::weighted(0.9, uid()),
        prop::option::weighted(0.95, created),
        prop::option::weighted(0.05, timestamp_json(shape)),
        prop::option::weighted(0.2, generation),
        prop::option::weighted(0.2, or_anything(shape, arb_labels().prop_map(|l| json!(l)).boxed())),
        extra(shape),
    )
        .prop_map(|(name, namespace, uid, created, deleted, generation, labels, extra)| {
            object(
                vec![
                    ("name", name.map(Value::String)),
                    ("namespace", namespace.map(Value::String)),
                    ("uid", uid.map(Value::String)),
                    ("creationTimestamp", created),
                    ("deletionTimestamp", deleted),
                    ("generation", generation),
                    ("labels", labels),
                ],
                extra,
            )
        })
        .boxed()
}

fn arb_labels() -> BoxedStrategy<BTreeMap<String, String>> {
    prop::collection::btree_map(mostly(LABEL_KEYS), mostly(LABEL_VALUES), 0..4).boxed()
}

/// Selectors: the pools, and keys and values Kubernetes refuses more often than elsewhere.
fn arb_selector() -> BoxedStrategy<LabelSelector> {
    let key = || prop_oneof![3 => one_of(LABEL_KEYS), 1 => odd_string()];
    let value = || prop_oneof![3 => one_of(LABEL_VALUES), 1 => odd_string()];
    let requirement = (key(), mostly(OPERATORS), prop::option::weighted(0.8, prop::collection::vec(value(), 0..3)))
        .prop_map(|(key, operator, values)| LabelSelectorRequirement { key, operator, values });
    let labels = prop::collection::btree_map(key(), value(), 0..3);
    (prop::option::of(labels), prop::option::of(prop::collection::vec(requirement, 0..3)))
        .prop_map(|(match_labels, match_expressions)| LabelSelector { match_labels, match_expressions })
        .boxed()
}

fn subject_doc(shape: Shape) -> BoxedStrategy<Value> {
    let odd_kind = (prop_oneof![one_of(&["user", "Robot", "", "SERVICEACCOUNT"]), odd_string()], odd_string());
    let named = prop_oneof![
        4 => mostly(USERS).prop_map(|n| ("User".to_string(), n)),
        3 => mostly(GROUPS).prop_map(|n| ("Group".to_string(), n)),
        3 => mostly(SERVICE_ACCOUNTS).prop_map(|n| ("ServiceAccount".to_string(), n)),
    ];
    let named = match shape {
        Shape::Wild => prop_oneof![10 => named, 1 => odd_kind].boxed(),
        Shape::Typed => named.boxed(),
    };
    (named, prop::option::weighted(0.05, mostly(&["kube-system", "partner-techhelp", "beta"])), extra(shape))
        .prop_map(|((kind, name), namespace, extra)| {
            object(vec![("kind", Some(json!(kind))), ("name", Some(json!(name))), ("namespace", namespace.map(Value::String))], extra)
        })
        .boxed()
}

/// Mostly only TechHelp's own people (so that grants bind), else anybody.
fn subjects_doc(shape: Shape) -> BoxedStrategy<Value> {
    let own = prop_oneof![
        "[a-c]{1,3}@techhelp\\.example".prop_map(|n| json!({"kind": "User", "name": n})),
        Just(json!({"kind": "Group", "name": "techhelp:analysts"})),
        "[a-c]{1,3}-bot".prop_map(|n| json!({"kind": "ServiceAccount", "name": n})),
    ];
    let subjects = prop_oneof![
        5 => prop::collection::vec(own, 1..4).prop_map(Value::Array),
        4 => prop::collection::vec(subject_doc(shape), 0..4).prop_map(Value::Array),
    ];
    or_anything(shape, subjects.boxed())
}

/// Words of a rule: the pool, sometimes odd, never huge (rules multiply into atoms).
fn word(pool: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![9 => one_of(pool), 1 => odd_string()].boxed()
}

fn arb_policy_rule() -> BoxedStrategy<PolicyRule> {
    (
        prop::option::weighted(0.9, prop::collection::vec(word(API_GROUPS), 0..3)),
        prop::option::weighted(0.9, prop::collection::vec(word(RESOURCES), 0..4)),
        prop::collection::vec(word(VERBS), 0..4),
        prop::option::weighted(0.4, prop::collection::vec(word(RESOURCE_NAMES), 0..3)),
        prop::option::weighted(0.15, prop::collection::vec(word(URLS), 0..2)),
    )
        .prop_map(|(api_groups, resources, verbs, resource_names, non_resource_urls)| PolicyRule {
            api_groups,
            resources,
            verbs,
            resource_names,
            non_resource_urls,
        })
        .boxed()
}

fn rule_doc(shape: Shape) -> BoxedStrategy<Value> {
    let within = (
        prop::sample::subsequence(vec!["pods", "configmaps", "pods/log"], 1..3),
        prop::sample::subsequence(READ.to_vec(), 1..4),
        prop::sample::subsequence(vec!["a", "b"], 0..2),
    )
        .prop_map(|(r, v, n)| json!({"apiGroups": [""], "resources": r, "verbs": v, "resourceNames": n}));
    let anything = (
        prop::collection::vec(word(API_GROUPS), 0..3),
        prop::collection::vec(word(RESOURCES), 0..4),
        prop::collection::vec(word(VERBS), 0..4),
        prop::option::weighted(0.3, prop::collection::vec(word(RESOURCE_NAMES), 0..3)),
        extra(shape),
    )
        .prop_map(|(g, r, v, n, extra)| {
            object(
                vec![
                    ("apiGroups", Some(json!(g))),
                    ("resources", Some(json!(r))),
                    ("verbs", Some(json!(v))),
                    ("resourceNames", n.map(|n| json!(n))),
                ],
                extra,
            )
        });
    match shape {
        Shape::Wild => prop_oneof![3 => within, 2 => anything].boxed(),
        Shape::Typed => prop_oneof![5 => within, 1 => anything].boxed(),
    }
}

fn level_doc(shape: Shape) -> BoxedStrategy<Value> {
    let one_source = prop_oneof![
        8 => prop::collection::vec(rule_doc(shape), 1..3).prop_map(|r| vec![("rules", json!(r))]),
        2 => mostly(ROLE_NAMES).prop_map(|r| vec![("role", json!(r))]),
        2 => mostly(CLUSTER_ROLE_NAMES).prop_map(|r| vec![("clusterRole", json!(r))]),
    ];
    // What the schema refuses: no rules, no source, several sources.
    let odd_source = prop_oneof![
        Just(vec![("rules", json!([]))]),
        Just(vec![]),
        (mostly(ROLE_NAMES), mostly(CLUSTER_ROLE_NAMES), prop::collection::vec(rule_doc(shape), 1..2)).prop_map(|(r, c, rules)| vec![
            ("role", json!(r)),
            ("clusterRole", json!(c)),
            ("rules", json!(rules))
        ]),
    ];
    let source = match shape {
        Shape::Wild => prop_oneof![3 => one_source, 1 => odd_source].boxed(),
        Shape::Typed => prop_oneof![19 => one_source, 1 => odd_source].boxed(),
    };
    (mostly(LEVELS), source, extra(shape))
        .prop_map(|(name, source, extra)| {
            let mut fields = vec![("name", Some(json!(name)))];
            fields.extend(source.into_iter().map(|(k, v)| (k, Some(v))));
            object(fields, extra)
        })
        .boxed()
}

/// A status of the wild kind: counts out of range, conditions with odd times.
fn status_doc() -> BoxedStrategy<Value> {
    let condition = (odd_string(), timestamp_json(Shape::Wild), extra(Shape::Wild)).prop_map(|(reason, at, extra)| {
        object(
            vec![
                ("type", Some(json!("Ready"))),
                ("status", Some(json!("True"))),
                ("reason", Some(json!(reason))),
                ("message", Some(json!(""))),
                ("lastTransitionTime", Some(at)),
            ],
            extra,
        )
    });
    (number(), number(), prop::collection::vec(condition, 0..2), extra(Shape::Wild))
        .prop_map(|(generation, count, conditions, extra)| {
            object(
                vec![
                    ("observedGeneration", Some(generation)),
                    ("subjectCount", Some(count.clone())),
                    ("grantCount", Some(count.clone())),
                    ("clientCount", Some(count)),
                    ("conditions", Some(json!(conditions))),
                ],
                extra,
            )
        })
        .boxed()
}

fn suspended_json(shape: Shape) -> BoxedStrategy<Option<Value>> {
    let odd = prop_oneof![Just(json!("true")), Just(json!("yes")), Just(json!(1)), Just(json!(0))];
    prop_oneof![
        8 => Just(None),
        3 => Just(Some(json!(false))),
        1 => Just(Some(json!(true))),
        1 => Just(Some(Value::Null)),
        1 => match shape {
            Shape::Wild => odd.prop_map(Some).boxed(),
            Shape::Typed => Just(None).boxed(),
        },
    ]
    .boxed()
}

fn resource_doc(kind: &str, metadata: Value, spec: Value, status: Option<Value>, extra: Option<(String, Value)>) -> Value {
    object(
        vec![
            ("apiVersion", Some(json!(API_VERSION))),
            ("kind", Some(json!(kind))),
            ("metadata", Some(metadata)),
            ("spec", Some(spec)),
            ("status", status),
        ],
        extra,
    )
}

fn partner_doc(shape: Shape) -> BoxedStrategy<Value> {
    // Mostly TechHelp's own people, and sometimes anything.
    let identities = (
        prop::bool::weighted(0.85),
        prop::collection::vec(mostly(SUFFIXES), 0..3),
        prop::bool::weighted(0.85),
        prop::collection::vec(mostly(GROUPS), 0..3),
        extra(shape),
    )
        .prop_map(|(own_users, mut suffixes, own_groups, mut groups, extra)| {
            if own_users {
                suffixes.push("@techhelp.example".into());
            }
            if own_groups {
                groups.push("techhelp:analysts".into());
            }
            object(vec![("userSuffixes", Some(json!(suffixes))), ("groups", Some(json!(groups)))], extra)
        });
    let selector = or_anything(shape, arb_selector().prop_map(|s| serde_json::to_value(s).unwrap()).boxed());
    // Mostly a partner and its own home, so that links find it; sometimes two claim one home.
    let name_and_home = prop_oneof![
        6 => prop::sample::select(vec![
            ("techhelp", "partner-techhelp"),
            ("techhelp", "partner-techhelp"),
            ("techhelp", "partner-techhelp"),
            ("other", "partner-other"),
            ("t.help", "partner-techhelp"),
        ])
        .prop_map(|(n, h)| (n.to_string(), h.to_string())),
        1 => (mostly(PARTNER_NAMES), mostly(HOMES)),
    ];
    (
        (meta_doc(shape, PARTNER_NAMES, None), name_and_home).prop_map(|(mut metadata, (name, home))| {
            if let Some(meta) = metadata.as_object_mut().filter(|m| m.contains_key("name")) {
                meta.insert("name".into(), json!(name));
            }
            (metadata, home)
        }),
        prop::option::weighted(0.3, hostile_string()),
        prop::option::weighted(0.4, subject_doc(shape)),
        prop::collection::vec(subject_doc(shape), 0..3),
        prop::option::weighted(0.95, identities),
        prop::option::weighted(0.2, selector),
        when_wild(shape, 0.1, status_doc()),
        extra(shape),
        extra(shape),
    )
        .prop_map(|((metadata, home), display, responsible, admins, identities, selector, status, spec_extra, extra)| {
            let spec = object(
                vec![
                    ("displayName", display.map(Value::String)),
                    ("homeNamespace", Some(json!(home))),
                    ("responsibleParty", responsible),
                    ("admins", Some(json!(admins))),
                    ("identities", identities),
                    ("clientNamespaceSelector", selector),
                ],
                spec_extra,
            );
            resource_doc("Partner", metadata, spec, status, extra)
        })
        .boxed()
}

/// TechHelp, at home in partner-techhelp, often with the people of DESIGN.md's story.
fn techhelp_doc() -> BoxedStrategy<Value> {
    (partner_doc(Shape::Typed), prop::bool::weighted(0.6))
        .prop_map(|(mut doc, story)| {
            doc["metadata"]["name"] = json!("techhelp");
            doc["spec"]["homeNamespace"] = json!("partner-techhelp");
            if story {
                doc["spec"]["admins"] = json!([{"kind": "User", "name": "alice@techhelp.example"}]);
                doc["spec"]["responsibleParty"] = json!({"kind": "Group", "name": "vendor-managers"});
                doc["spec"]["identities"] = json!({"userSuffixes": ["@techhelp.example"], "groups": ["techhelp:analysts"]});
            }
            doc
        })
        .boxed()
}

fn link_doc(shape: Shape) -> BoxedStrategy<Value> {
    (
        meta_doc(shape, LINK_NAMES, Some(CLIENTS)),
        prop_oneof![16 => Just("techhelp".to_string()), 1 => one_of(&["other", "ghost"]), 1 => hostile_string()],
        // Mostly support, l0, l1 in that order, so that grants find their level.
        prop::collection::vec((level_doc(shape), prop::bool::weighted(0.8)), 1..4).prop_map(|levels| {
            let slots = ["support", "l0", "l1"];
            let renamed = levels.into_iter().zip(slots).map(|((mut level, rename), slot)| {
                if rename && level.get("name").is_some() {
                    level["name"] = json!(slot);
                }
                level
            });
            renamed.collect::<Vec<_>>()
        }),
        prop::option::weighted(0.4, prop_oneof![3 => Just("support".to_string()), 1 => mostly(LEVELS)]),
        prop::option::weighted(0.2, timestamp_json(shape)),
        suspended_json(shape),
        // Small limits, so that grants meet them.
        prop::option::weighted(0.2, -1i64..3),
        when_wild(shape, 0.1, status_doc()),
        extra(shape),
        extra(shape),
    )
        .prop_map(|(metadata, partner, levels, key, expires, suspended, max_grants, status, spec_extra, extra)| {
            let spec = object(
                vec![
                    ("partner", Some(json!(partner))),
                    ("accessLevels", Some(json!(levels))),
                    ("accessKey", key.map(|k| json!({"accessLevel": k}))),
                    ("expiresAt", expires),
                    ("suspended", suspended),
                    ("maxGrants", max_grants.map(|n| json!(n))),
                ],
                spec_extra,
            );
            resource_doc("ClientLink", metadata, spec, status, extra)
        })
        .boxed()
}

fn grant_doc(shape: Shape) -> BoxedStrategy<Value> {
    (
        (meta_doc(shape, GRANT_NAMES, Some(HOMES)), prop::bool::weighted(0.75)).prop_map(|(mut metadata, at_home)| {
            // Mostly in TechHelp's home, so that it is TechHelp's grant.
            if at_home && metadata.get("namespace").is_some() {
                metadata["namespace"] = json!("partner-techhelp");
            }
            metadata
        }),
        prop_oneof![3 => Just(vec!["beta".to_string()]), 1 => prop::collection::vec(mostly(CLIENTS), 1..3)],
        prop_oneof![2 => Just("support".to_string()), 1 => mostly(LEVELS)],
        subjects_doc(shape),
        prop::option::weighted(0.3, timestamp_json(shape)),
        when_wild(shape, 0.1, status_doc()),
        extra(shape),
        extra(shape),
    )
        .prop_map(|(metadata, clients, level, subjects, expires, status, spec_extra, extra)| {
            let spec = object(
                vec![
                    ("clients", Some(json!(clients))),
                    ("accessLevel", Some(json!(level))),
                    ("subjects", Some(subjects)),
                    ("expiresAt", expires),
                ],
                spec_extra,
            );
            resource_doc("AccessGrant", metadata, spec, status, extra)
        })
        .boxed()
}

// ---- mutations ------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    At(usize),
}

#[derive(Debug, Clone)]
enum Mutation {
    Remove,
    Replace(Value),
    /// Wraps the node in this many arrays and objects.
    Nest(usize),
    AddField(String, Value),
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        3 => Just(Mutation::Remove),
        2 => arb_json().prop_map(Mutation::Replace),
        2 => hostile_string().prop_map(|s| Mutation::Replace(Value::String(s))),
        2 => timestamp_text().prop_map(|s| Mutation::Replace(Value::String(s))),
        2 => number().prop_map(Mutation::Replace),
        1 => prop_oneof![Just(Value::Null), Just(json!([])), Just(json!({})), Just(json!(true))].prop_map(Mutation::Replace),
        1 => (1usize..200).prop_map(Mutation::Nest),
        2 => (field_name(), arb_json()).prop_map(|(k, v)| Mutation::AddField(k, v)),
    ]
    .boxed()
}

/// Every node's path, the root's first.
fn paths(doc: &Value) -> Vec<Vec<Step>> {
    fn walk(node: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        out.push(here.clone());
        match node {
            Value::Object(map) => {
                for (k, v) in map {
                    here.push(Step::Key(k.clone()));
                    walk(v, here, out);
                    here.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    here.push(Step::At(i));
                    walk(v, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, &mut Vec::new(), &mut out);
    out
}

fn node_mut<'a>(doc: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(doc, |node, step| match step {
        Step::Key(k) => &mut node[k.as_str()],
        Step::At(i) => &mut node[*i],
    })
}

fn mutate(doc: &mut Value, at: Index, mutation: Mutation) {
    let all = paths(doc);
    let path = &all[at.index(all.len())];
    match mutation {
        Mutation::Remove => match path.split_last() {
            None => *doc = Value::Null,
            Some((last, parent)) => match (node_mut(doc, parent), last) {
                (Value::Object(map), Step::Key(k)) => {
                    map.remove(k);
                }
                (Value::Array(items), Step::At(i)) => {
                    items.remove(*i);
                }
                _ => {}
            },
        },
        Mutation::Replace(value) => *node_mut(doc, path) = value,
        Mutation::Nest(depth) => {
            let node = node_mut(doc, path);
            let mut value = node.take();
            for i in 0..depth {
                value = if i % 2 == 0 { Value::Array(vec![value]) } else { json!({ "a": value }) };
            }
            *node = value;
        }
        Mutation::AddField(k, v) => {
            if let Value::Object(map) = node_mut(doc, path) {
                map.insert(k, v);
            }
        }
    }
}

/// The document, often untouched (so that worlds hold objects), else mutated a few times.
fn mutated(doc: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    (doc, prop_oneof![3 => Just(vec![]), 2 => prop::collection::vec((any::<Index>(), mutation()), 1..4)])
        .prop_map(|(mut doc, mutations)| {
            for (at, m) in mutations {
                mutate(&mut doc, at, m);
            }
            doc
        })
        .boxed()
}

/// For worlds: mostly the document as generated, so that objects meet and grant.
fn seldom_mutated(doc: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![4 => doc.clone(), 1 => mutated(doc)].boxed()
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

// ---- reading --------------------------------------------------------------------------------

/// Reads a document as kube does (JSON bytes), from a `Value`, and as YAML text. Each answers
/// Ok or Err; when two succeed they agree; whatever is read writes back without panicking.
fn read<K>(doc: &Value) -> Option<K>
where
    K: DeserializeOwned + Serialize,
{
    // The root types derive no PartialEq: compare what they write.
    let same = |a: &K, b: &K| serde_json::to_value(a).ok() == serde_json::to_value(b).ok();
    let bytes = serde_json::to_vec(doc).expect("a JSON value always writes");
    let from_json = serde_json::from_slice::<K>(&bytes);
    let from_value = serde_json::from_value::<K>(doc.clone());
    let from_yaml = serde_yaml::to_string(doc).ok().map(|text| serde_yaml::from_str::<K>(&text));
    if let (Ok(a), Ok(b)) = (&from_json, &from_value) {
        assert!(same(a, b), "JSON bytes and JSON value read {doc} differently");
    }
    if let (Ok(a), Some(Ok(b))) = (&from_json, &from_yaml) {
        assert!(same(a, b), "JSON and YAML read {doc} differently");
    }
    let object = from_json.ok()?;
    let _ = serde_json::to_vec(&object);
    let _ = serde_yaml::to_string(&object);
    Some(object)
}

/// Raw text or bytes, of any kind: Ok or Err, never a panic.
fn read_text(bytes: &[u8]) {
    fn both<K: DeserializeOwned>(bytes: &[u8]) {
        let _ = serde_json::from_slice::<K>(bytes);
        let _ = serde_yaml::from_slice::<K>(bytes);
    }
    both::<Partner>(bytes);
    both::<ClientLink>(bytes);
    both::<AccessGrant>(bytes);
    both::<ObjectList<ClientLink>>(bytes);
    both::<LabelSelector>(bytes);
    both::<PolicyRule>(bytes);
}

// ---- worlds ---------------------------------------------------------------------------------

/// What the controller's caches would hold, as documents.
#[derive(Debug, Clone)]
struct Cluster {
    partners: Vec<Value>,
    links: Vec<Value>,
    grants: Vec<Value>,
    namespace: String,
    namespace_labels: BTreeMap<String, String>,
    roles: BTreeMap<String, Vec<PolicyRule>>,
    cluster_roles: BTreeMap<String, Vec<PolicyRule>>,
    ceiling: Option<Vec<PolicyRule>>,
    now: Timestamp,
    home_access: Option<HomeAccess>,
}

/// The inputs of one namespace's plan, as objects.
#[derive(Debug, Clone)]
struct World {
    namespace: String,
    namespace_labels: BTreeMap<String, String>,
    partners: Vec<Partner>,
    links: Vec<ClientLink>,
    grants: Vec<AccessGrant>,
    roles: BTreeMap<String, Vec<PolicyRule>>,
    cluster_roles: BTreeMap<String, Vec<PolicyRule>>,
    ceiling: Option<Vec<PolicyRule>>,
    now: Timestamp,
}

impl Cluster {
    fn read(&self) -> World {
        World {
            namespace: self.namespace.clone(),
            namespace_labels: self.namespace_labels.clone(),
            partners: self.partners.iter().filter_map(read).collect(),
            links: self.links.iter().filter_map(read).collect(),
            grants: self.grants.iter().filter_map(read).collect(),
            roles: self.roles.clone(),
            cluster_roles: self.cluster_roles.clone(),
            ceiling: self.ceiling.clone(),
            now: self.now,
        }
    }
}

impl World {
    fn plan(&self) -> ClientPlan {
        let grants: Vec<Arc<AccessGrant>> = self.grants.iter().cloned().map(Arc::new).collect();
        let homes = crate::desired::client::marked_homes(&self.partners);
        plan_client(&ClientInputs {
            namespace: &self.namespace,
            namespace_labels: &self.namespace_labels,
            links: &self.links,
            partners: &self.partners,
            homes: &homes,
            grants: &grants,
            roles: &self.roles,
            cluster_roles: &self.cluster_roles,
            ceiling: self.ceiling.as_deref(),
            now: self.now,
        })
    }

    /// What a cluster could hand over: names unique per kind and namespace, UIDs unique, the
    /// namespace's links, the grants whose `clients` name it.
    fn normalized(&self) -> World {
        let mut world = self.clone();
        let mut seen = BTreeSet::new();
        world.partners.retain(|p| seen.insert(p.name_any()));
        for (i, p) in world.partners.iter_mut().enumerate() {
            p.metadata.uid = Some(format!("uid-partner-{i}"));
        }
        let mut seen = BTreeSet::new();
        world.links.retain(|l| seen.insert(l.name_any()));
        for (i, l) in world.links.iter_mut().enumerate() {
            l.metadata.namespace = Some(world.namespace.clone());
            l.metadata.uid = Some(format!("uid-link-{i}"));
        }
        let mut seen = BTreeSet::new();
        let ns = world.namespace.clone();
        world.grants.retain(|g| g.spec.clients.contains(&ns) && seen.insert((g.namespace(), g.name_any())));
        for (i, g) in world.grants.iter_mut().enumerate() {
            g.metadata.uid = Some(format!("uid-grant-{i}"));
        }
        world
    }

    /// The objects the CRDs' schema and CEL rules admit, in a namespace that can exist.
    fn admitted(&self) -> Option<World> {
        if !is_dns_label(&self.namespace) {
            return None;
        }
        let mut world = self.clone();
        world.partners.retain(admissible_partner);
        world.links.retain(admissible_link);
        world.grants.retain(admissible_grant);
        Some(world)
    }
}

fn chars_within(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.chars().count())
}

fn list_within(list: &[String], min: usize, max: usize, item_min: usize, item_max: usize) -> bool {
    (min..=max).contains(&list.len()) && list.iter().all(|s| chars_within(s, item_min, item_max))
}

fn admissible_subject(s: &Subject) -> bool {
    chars_within(&s.name, 1, 253) && !s.name.starts_with("system:") && s.namespace.is_none()
}

fn admissible_partner(p: &Partner) -> bool {
    let spec = &p.spec;
    let ids = &spec.identities;
    is_object_name(&p.metadata)
        && is_dns_label(&spec.home_namespace)
        && spec.display_name.as_deref().is_none_or(|d| chars_within(d, 0, 128))
        && spec.responsible_party.as_ref().is_none_or(|s| admissible_subject(s) && s.kind != SubjectKind::ServiceAccount)
        && spec.admins.len() <= 32
        && spec.admins.iter().all(admissible_subject)
        && list_within(&ids.user_suffixes, 0, 16, 2, 253)
        && list_within(&ids.groups, 0, 64, 1, 253)
        && ids.groups.iter().all(|g| !g.starts_with("system:"))
}

fn admissible_level(level: &AccessLevel) -> bool {
    let sources = [level.cluster_role.is_some(), level.role.is_some(), level.rules.is_some()].into_iter().filter(|s| *s).count();
    let rule_ok = |r: &AccessRule| {
        list_within(&r.api_groups, 0, 16, 0, 253)
            && list_within(&r.resources, 1, 32, 1, 253)
            && list_within(&r.verbs, 1, 16, 1, 63)
            && list_within(&r.resource_names, 0, 64, 1, 253)
    };
    is_dns_label(&level.name)
        && sources == 1
        && level.cluster_role.as_deref().is_none_or(|r| chars_within(r, 1, 253))
        && level.role.as_deref().is_none_or(|r| chars_within(r, 1, 253))
        && level.rules.as_ref().is_none_or(|rules| (1..=32).contains(&rules.len()) && rules.iter().all(rule_ok))
}

fn admissible_link(l: &ClientLink) -> bool {
    let levels = &l.spec.access_levels;
    let names: BTreeSet<&String> = levels.iter().map(|l| &l.name).collect();
    is_object_name(&l.metadata)
        && chars_within(&l.spec.partner, 1, 63)
        && (1..=16).contains(&levels.len())
        && levels.iter().all(admissible_level)
        && names.len() == levels.len()
        && l.spec.access_key.as_ref().is_none_or(|k| names.contains(&k.access_level))
}

fn admissible_grant(g: &AccessGrant) -> bool {
    let clients: BTreeSet<&String> = g.spec.clients.iter().collect();
    is_object_name(&g.metadata)
        && g.metadata.namespace.as_deref().is_some_and(is_dns_label)
        && (1..=128).contains(&g.spec.clients.len())
        && g.spec.clients.iter().all(|c| is_dns_label(c))
        && clients.len() == g.spec.clients.len()
        && chars_within(&g.spec.access_level, 1, 63)
        && g.spec.subjects.len() <= 256
        && g.spec.subjects.iter().all(admissible_subject)
}

fn read_only_ceiling() -> Vec<PolicyRule> {
    vec![
        rule(&["", "apps", "batch"], &["pods", "pods/log", "configmaps", "services", "deployments", "jobs"], READ),
        rule(&["apps"], &["*/scale"], &["get"]),
    ]
}

fn arb_ceiling() -> BoxedStrategy<Option<Vec<PolicyRule>>> {
    prop_oneof![
        10 => Just(Some(read_only_ceiling())),
        1 => Just(None),
        1 => Just(Some(vec![])),
        1 => Just(Some(vec![rule(&["*"], &["*"], &["*"])])),
        2 => prop::collection::vec(arb_policy_rule(), 0..4).prop_map(Some),
    ]
    .boxed()
}

/// Roles by name: some well known ones (reachable, within or beyond the ceiling), some random.
fn role_map(
    names: &'static [&'static str],
    known: Vec<(&'static str, Vec<PolicyRule>)>,
) -> BoxedStrategy<BTreeMap<String, Vec<PolicyRule>>> {
    let rules = prop_oneof![
        2 => Just(vec![rule(&[""], &["pods"], &["get"])]),
        1 => Just(vec![rule(&["apps"], &["deployments"], &["create"])]),
        2 => prop::collection::vec(arb_policy_rule(), 0..3),
    ];
    prop::collection::vec((mostly(names), rules), 0..3)
        .prop_map(move |random| {
            let mut map: BTreeMap<String, Vec<PolicyRule>> = known.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            map.extend(random);
            map
        })
        .boxed()
}

fn arb_now() -> BoxedStrategy<Timestamp> {
    let instants: Vec<Timestamp> = GOOD_TIMES.iter().filter_map(|t| t.parse().ok()).collect();
    let nudges = vec![
        SignedDuration::ZERO,
        SignedDuration::from_nanos(1),
        SignedDuration::from_nanos(-1),
        SignedDuration::from_secs(1),
        SignedDuration::from_secs(-1),
    ];
    prop_oneof![
        6 => (prop::sample::select(instants), prop::sample::select(nudges)).prop_map(|(t, d)| t.checked_add(d).unwrap_or(t)),
        2 => (Timestamp::MIN.as_second()..=Timestamp::MAX.as_second()).prop_map(|s| Timestamp::from_second(s).unwrap()),
        1 => prop::sample::select(vec![Timestamp::MIN, Timestamp::MAX, Timestamp::UNIX_EPOCH]),
    ]
    .boxed()
}

fn home_access() -> HomeAccess {
    HomeAccess { service_account: "liaison".into(), namespace: "liaison-system".into(), cluster_role: "liaison-home-access".into() }
}

prop_compose! {
    fn arb_cluster()(techhelp in seldom_mutated(techhelp_doc()),
                     others in prop::collection::vec(seldom_mutated(partner_doc(Shape::Typed)), 0..2),
                     links in prop_oneof![1 => Just(vec![]), 6 => prop::collection::vec(seldom_mutated(link_doc(Shape::Typed)), 1..2),
                                          3 => prop::collection::vec(seldom_mutated(link_doc(Shape::Typed)), 2..4)],
                     grants in prop::collection::vec(seldom_mutated(grant_doc(Shape::Typed)), 1..5),
                     namespace in mostly(NAMESPACES),
                     namespace_labels in arb_labels(),
                     roles in role_map(ROLE_NAMES, vec![
                         ("reader", vec![rule(&[""], &["pods"], &["get"])]),
                         ("deleter", vec![rule(&[""], &["pods"], &["get", "delete"])]),
                     ]),
                     cluster_roles in role_map(CLUSTER_ROLE_NAMES, vec![
                         ("view", vec![rule(&[""], &["pods", "pods/log", "configmaps"], READ), rule(&["apps"], &["deployments"], READ)]),
                         ("edit", vec![rule(&["apps"], &["deployments"], &["create"])]),
                         ("urls", vec![
                             rule(&[""], &["pods"], &["get"]),
                             PolicyRule { non_resource_urls: Some(strings(&["/healthz"])), verbs: strings(&["get"]), ..Default::default() },
                         ]),
                     ]),
                     ceiling in arb_ceiling(),
                     now in arb_now(),
                     home_access in prop::option::of(Just(home_access()))) -> Cluster {
        let mut partners = others;
        partners.insert(0, techhelp);
        Cluster { partners, links, grants, namespace, namespace_labels, roles, cluster_roles, ceiling, now, home_access }
    }
}

// ---- restatements of the rules --------------------------------------------------------------

/// Passed, or not an instant at all (fail closed).
fn expired(at: Option<&Expiry>, now: Timestamp) -> bool {
    at.is_some_and(|at| at.as_str().parse::<Timestamp>().ok().is_none_or(|at| at <= now))
}

/// Rule 4, written out: the partner's own users, listed groups and home robots, never `system:*`.
fn may_grant(partner: &Partner, s: &Subject) -> bool {
    let ids = &partner.spec.identities;
    if s.name.starts_with("system:") || s.namespace.is_some() {
        return false;
    }
    match s.kind {
        SubjectKind::User => ids.user_suffixes.iter().any(|suffix| s.name.len() > suffix.len() && s.name.ends_with(suffix.as_str())),
        SubjectKind::Group => ids.groups.contains(&s.name),
        SubjectKind::ServiceAccount => is_dns_subdomain(&s.name),
    }
}

fn rbac_subject(s: &Subject, home: &str) -> RbacSubject {
    let sa = s.kind == SubjectKind::ServiceAccount;
    RbacSubject {
        kind: s.kind.as_str().into(),
        name: s.name.clone(),
        namespace: sa.then(|| home.to_string()),
        api_group: (!sa).then(|| RBAC.to_string()),
    }
}

/// Kubernetes' selector semantics: every key and value well-formed, every operator known with
/// the values it takes, and every requirement met. An empty selector matches everything.
fn selector_allows(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector.match_labels.iter().flatten().all(|(k, v)| is_label_key(k) && is_label_value(v) && labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|r| {
        let values = r.values.as_deref().unwrap_or_default();
        let value = labels.get(&r.key);
        is_label_key(&r.key)
            && values.iter().all(|v| is_label_value(v))
            && match r.operator.as_str() {
                "In" => !values.is_empty() && value.is_some_and(|v| values.contains(v)),
                "NotIn" => !values.is_empty() && value.is_none_or(|v| !values.contains(v)),
                "Exists" => values.is_empty() && value.is_some(),
                "DoesNotExist" => values.is_empty() && value.is_none(),
                _ => false,
            }
    });
    by_labels && by_expressions
}

fn selector_is_valid(selector: &LabelSelector) -> bool {
    let by_labels = selector.match_labels.iter().flatten().all(|(k, v)| is_label_key(k) && is_label_value(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|r| {
        let values = r.values.as_deref().unwrap_or_default();
        is_label_key(&r.key)
            && values.iter().all(|v| is_label_value(v))
            && match r.operator.as_str() {
                "In" | "NotIn" => !values.is_empty(),
                "Exists" | "DoesNotExist" => values.is_empty(),
                _ => false,
            }
    });
    by_labels && by_expressions
}

/// A level's effective rules, resource rules only; `None` if what it names is missing.
fn level_rules(world: &World, level: &AccessLevel) -> Option<Vec<PolicyRule>> {
    let rules = match (&level.rules, &level.role, &level.cluster_role) {
        (Some(rules), _, _) => rules
            .iter()
            .map(|r| PolicyRule {
                api_groups: Some(r.api_groups.clone()),
                resources: Some(r.resources.clone()),
                verbs: r.verbs.clone(),
                resource_names: (!r.resource_names.is_empty()).then(|| r.resource_names.clone()),
                non_resource_urls: None,
            })
            .collect(),
        (None, Some(role), _) => world.roles.get(role)?.clone(),
        (None, None, Some(cluster_role)) => world.cluster_roles.get(cluster_role)?.clone(),
        (None, None, None) => return None,
    };
    Some(rules.into_iter().filter(|r| r.non_resource_urls.as_ref().is_none_or(|u| u.is_empty())).collect())
}

/// Kubernetes' escalation check (`rbac/validation.Covers` and `ruleCovers`), written after the
/// Go: every servant rule broken down to one group, resource, verb and name, each covered by a
/// single owner rule; `*` covers its axis, `*/sub` the subresource `sub` of any resource, an
/// owner without resourceNames every name. Non-resource URLs never reach a Role: not asked.
/// The atom-by-atom oracle: every atom asked for that no single owner rule covers, sorted once.
fn uncovered_atoms(owner: &[PolicyRule], servant: &[PolicyRule]) -> Vec<Atom> {
    let mut missing: Vec<Atom> = atoms(servant).into_iter().filter(|atom| !owner.iter().any(|rule| rule_covers(rule, atom))).collect();
    missing.sort();
    missing.dedup();
    missing
}

fn kubernetes_covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> bool {
    fn has(set: &[String], item: &str) -> bool {
        set.iter().any(|s| s == item)
    }
    let covered = |group: &str, resource: &str, verb: &str, name: Option<&str>| {
        owner.iter().any(|o| {
            let (groups, resources) = (o.api_groups.as_deref().unwrap_or_default(), o.resources.as_deref().unwrap_or_default());
            let names = o.resource_names.as_deref().unwrap_or_default();
            let resource_ok = has(resources, "*")
                || has(resources, resource)
                || resource.split_once('/').is_some_and(|(_, sub)| has(resources, &format!("*/{sub}")));
            (has(&o.verbs, "*") || has(&o.verbs, verb))
                && (has(groups, "*") || has(groups, group))
                && resource_ok
                && (names.is_empty() || name.is_some_and(|n| has(names, n)))
        })
    };
    servant.iter().all(|rule| {
        let names: Vec<Option<&str>> = match rule.resource_names.as_deref() {
            Some(names) if !names.is_empty() => names.iter().map(|n| Some(n.as_str())).collect(),
            _ => vec![None],
        };
        rule.api_groups
            .iter()
            .flatten()
            .all(|g| rule.resources.iter().flatten().all(|r| rule.verbs.iter().all(|v| names.iter().all(|n| covered(g, r, v, *n)))))
    })
}

fn age(meta: &ObjectMeta) -> (Option<Timestamp>, Option<String>) {
    (meta.creation_timestamp.as_ref().map(|t| t.0), meta.name.clone())
}

// ---- the checks -----------------------------------------------------------------------------

/// What holds whatever the plan was given, even objects no cluster would hand over.
fn check_always(world: &World, plan: &ClientPlan) -> Result<(), TestCaseError> {
    // (e) The same inputs, twice and cloned, give the same plan.
    prop_assert_eq!(plan, &world.plan());
    prop_assert_eq!(plan, &world.clone().plan());

    // (a) Nobody system:*, only the three kinds, robots always of a namespace.
    let role_names: BTreeSet<&str> = plan.roles.iter().filter_map(|r| r.metadata.name.as_deref()).collect();
    for binding in plan.bindings.iter().chain(plan.access_key.as_ref().map(|k| &k.binding)) {
        prop_assert_eq!(&binding.role_ref.kind, "Role", "only Roles the plan makes are bound");
        prop_assert_eq!(&binding.role_ref.api_group, RBAC);
        prop_assert!(role_names.contains(binding.role_ref.name.as_str()), "{:?} binds a Role not planned", binding.metadata.name);
        prop_assert!(binding.subjects.as_ref().is_some_and(|s| !s.is_empty()), "a binding binds somebody");
        for s in binding.subjects.iter().flatten() {
            prop_assert!(!s.name.starts_with("system:"), "{:?} bound", s);
            match s.kind.as_str() {
                "ServiceAccount" => prop_assert!(s.namespace.is_some() && s.api_group.is_none(), "{:?}", s),
                "User" | "Group" => prop_assert!(s.namespace.is_none() && s.api_group.as_deref() == Some(RBAC), "{:?}", s),
                other => prop_assert!(false, "subject kind {}", other),
            }
        }
    }

    // (b) Every Role within the ceiling, resource rules only; without a ceiling, nothing.
    match world.ceiling.as_deref() {
        None => prop_assert!(plan.roles.is_empty() && plan.bindings.is_empty() && plan.access_key.is_none()),
        Some(ceiling) => {
            for role in &plan.roles {
                let rules = role.rules.as_deref().unwrap_or_default();
                prop_assert!(covers(ceiling, rules), "{:?} exceeds the ceiling: {:?}", role.metadata.name, uncovered(ceiling, rules));
                prop_assert!(kubernetes_covers(ceiling, rules), "{:?} exceeds the ceiling as Kubernetes judges it", role.metadata.name);
                prop_assert!(rules.iter().all(|r| r.non_resource_urls.as_ref().is_none_or(|u| u.is_empty())));
            }
        }
    }

    // Time: a grant is granted only while in time, and the plan wakes only in the future.
    for g in &plan.grants {
        prop_assert_eq!(g.verdict.reason == Reason::Granted, g.role_binding.is_some(), "{:?}", g);
        prop_assert!(g.role_binding.is_none() || g.ends_at.is_none_or(|at| at > world.now), "{:?} granted after its end", g);
    }
    prop_assert!(plan.wake_at.is_none_or(|at| at > world.now));
    Ok(())
}

/// The rules of DESIGN.md, for inputs a cluster could hand over (unique names and UIDs).
fn check_rules(world: &World, plan: &ClientPlan) -> Result<(), TestCaseError> {
    let ns = world.namespace.as_str();
    let now = world.now;
    prop_assert_eq!(plan.links.len(), world.links.len(), "every link gets a verdict");
    prop_assert_eq!(plan.grants.len(), world.grants.len(), "every grant gets a verdict");
    let granted = plan.grants.iter().filter(|g| g.verdict.reason == Reason::Granted).count();
    prop_assert_eq!(granted, plan.bindings.len(), "one binding per granted grant");
    if plan.roles.is_empty() && plan.bindings.is_empty() && plan.access_key.is_none() {
        return Ok(());
    }

    // (c) The link in force: the oldest live link, in time, not suspended.
    let uid = plan.active_link_uid.as_deref();
    prop_assert!(uid.is_some(), "objects without a link in force");
    let link = world.links.iter().find(|l| l.metadata.uid.as_deref() == uid).expect("the active link is an input");
    prop_assert!(link.metadata.deletion_timestamp.is_none(), "a deleted link grants");
    prop_assert!(!expired(link.spec.expires_at.as_ref(), now), "an expired link grants");
    prop_assert!(!link.spec.suspended.unwrap_or(false), "a suspended link grants");
    let oldest = world.links.iter().filter(|l| l.metadata.deletion_timestamp.is_none()).min_by_key(|l| age(&l.metadata));
    prop_assert_eq!(oldest.and_then(|l| l.metadata.uid.as_deref()), uid, "a younger link holds the namespace");

    // (c) Its partner stands, owns its home, and admits this namespace.
    let partner = world.partners.iter().find(|p| p.name_any() == link.spec.partner);
    prop_assert!(partner.is_some(), "objects for a link without its partner");
    let partner = partner.unwrap();
    let home = partner.spec.home_namespace.as_str();
    prop_assert!(partner.metadata.deletion_timestamp.is_none(), "a deleted partner grants");
    for other in world.partners.iter().filter(|p| p.spec.home_namespace == home && p.metadata.deletion_timestamp.is_none()) {
        prop_assert!(
            age(&other.metadata) >= age(&partner.metadata),
            "partner {} is younger than {} for {}",
            partner.name_any(),
            other.name_any(),
            home
        );
    }
    prop_assert_ne!(home, ns, "a partner is granted its own home");
    if let Some(selector) = &partner.spec.client_namespace_selector {
        prop_assert!(selector_allows(selector, &world.namespace_labels), "{:?} does not allow {:?}", selector, world.namespace_labels);
    }

    // (b) The ceiling exists and holds every Role, each in this namespace.
    let ceiling = world.ceiling.as_deref().expect("nothing is planned without a ceiling");
    for role in &plan.roles {
        prop_assert!(covers(ceiling, role.rules.as_deref().unwrap_or_default()));
        prop_assert_eq!(role.metadata.namespace.as_deref(), Some(ns));
    }
    let role_rules = |name: &str| plan.roles.iter().find(|r| r.metadata.name.as_deref() == Some(name)).and_then(|r| r.rules.clone());
    let is_level_of = |level: &str, rules: Option<Vec<PolicyRule>>| {
        link.spec.access_levels.iter().filter(|l| l.name == level).any(|l| level_rules(world, l) == rules)
    };

    // (a), (c) Each binding is a granted grant of the partner, in time, of its own people.
    for binding in &plan.bindings {
        let name = binding.metadata.name.as_deref();
        prop_assert_eq!(binding.metadata.namespace.as_deref(), Some(ns));
        let plans: Vec<_> = plan.grants.iter().filter(|g| g.role_binding.as_deref() == name).collect();
        prop_assert_eq!(plans.len(), 1, "{:?} is one grant's binding", name);
        let grant = world
            .grants
            .iter()
            .find(|g| g.namespace().unwrap_or_default() == plans[0].grant_namespace && g.name_any() == plans[0].grant_name)
            .expect("a granted grant is an input");
        let grant_namespace = grant.namespace();
        prop_assert_eq!(grant_namespace.as_deref(), Some(home), "a grant of another namespace than the partner's home");
        prop_assert!(grant.metadata.deletion_timestamp.is_none(), "a deleted grant grants");
        prop_assert!(!expired(grant.spec.expires_at.as_ref(), now), "an expired grant grants");
        prop_assert!(grant.spec.clients.iter().any(|c| c == ns), "a grant not naming {} grants there", ns);
        prop_assert!(!grant.spec.subjects.is_empty());
        for s in &grant.spec.subjects {
            prop_assert!(may_grant(partner, s), "{:?} is not partner {}'s to grant", s, partner.name_any());
        }
        let expected: Vec<RbacSubject> = grant.spec.subjects.iter().map(|s| rbac_subject(s, home)).collect();
        prop_assert_eq!(binding.subjects.as_ref(), Some(&expected), "the binding binds exactly the grant's subjects");
        prop_assert!(
            is_level_of(&grant.spec.access_level, role_rules(&binding.role_ref.name)),
            "{:?} is not bound to level {}",
            name,
            grant.spec.access_level
        );
    }

    // The access key: only if declared, bound to its level, its Secret in the partner's home.
    if let Some(key) = &plan.access_key {
        let declared = link.spec.access_key.as_ref();
        prop_assert!(declared.is_some(), "an access key nobody asked for");
        let sa = key.service_account.metadata.name.clone().unwrap_or_default();
        // Outside the client namespace: no member of its ServiceAccounts' group.
        prop_assert_eq!(key.service_account.metadata.namespace.as_deref(), Some(home));
        prop_assert_eq!(key.service_account.automount_service_account_token, Some(false));
        let expected = vec![RbacSubject { kind: "ServiceAccount".into(), name: sa, namespace: Some(home.to_string()), api_group: None }];
        prop_assert_eq!(key.binding.subjects.as_ref(), Some(&expected));
        prop_assert!(is_level_of(&declared.unwrap().access_level, role_rules(&key.binding.role_ref.name)));
        prop_assert_eq!(key.secret_namespace.as_str(), home);
    }
    Ok(())
}

fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), TestCaseError> {
    for (k, v) in labels {
        prop_assert!(is_label_key(k), "label key {:?}", k);
        prop_assert!(is_label_value(v), "label {} has value {:?}", k, v);
    }
    Ok(())
}

/// (d) For admitted inputs: every name a DNS subdomain of at most 63, every label valid.
fn check_names(plan: &ClientPlan) -> Result<(), TestCaseError> {
    let mut metas: Vec<&ObjectMeta> = plan.roles.iter().map(|r| &r.metadata).chain(plan.bindings.iter().map(|b| &b.metadata)).collect();
    if let Some(key) = &plan.access_key {
        metas.extend([&key.service_account.metadata, &key.binding.metadata]);
        prop_assert!(is_dns_subdomain(&key.secret_name) && key.secret_name.len() <= 63, "Secret name {:?}", key.secret_name);
        prop_assert!(is_dns_label(&key.secret_namespace));
        check_labels(&key.secret_labels)?;
    }
    for meta in metas {
        let name = meta.name.as_deref().unwrap_or_default();
        prop_assert!(is_dns_subdomain(name) && name.len() <= 63, "name {:?}", name);
        prop_assert!(meta.namespace.as_deref().is_some_and(is_dns_label));
        check_labels(meta.labels.as_ref().unwrap_or(&BTreeMap::new()))?;
        for (k, v) in meta.annotations.iter().flatten() {
            prop_assert!(is_label_key(k), "annotation key {:?}", k);
            if k == names::ACCESS_ENDS_AT {
                prop_assert!(v.parse::<Timestamp>().is_ok(), "{} = {:?} does not read back", k, v);
            }
        }
    }
    Ok(())
}

/// The partner's own suite: fixed rules, exactly the declared people, valid names if admitted.
fn check_partner_plan(partner: &Partner, access: Option<&HomeAccess>, admitted: bool) -> Result<(), TestCaseError> {
    let plan = plan_partner(partner, access, HomeClaim::Create);
    prop_assert_eq!(&plan, &plan_partner(&partner.clone(), access, HomeClaim::Create), "deterministic");
    let name = partner.name_any();
    let home = partner.spec.home_namespace.as_str();
    prop_assert_eq!(plan.admin_role.rules.clone(), Some(admin_rules()), "nothing in a spec widens the admins' Role");
    prop_assert_eq!(plan.observer_role.rules.clone(), Some(observer_rules()));
    let reader_rules = plan.reader_role.rules.clone().unwrap_or_default();
    prop_assert_eq!(reader_rules.len(), 1);
    prop_assert_eq!(reader_rules[0].resource_names.clone(), Some(vec![name.clone()]), "the reader reads its own partner only");

    let admins: Vec<RbacSubject> = partner.spec.admins.iter().map(|s| rbac_subject(s, home)).collect();
    let observers: Vec<RbacSubject> = partner.spec.responsible_party.iter().map(|s| rbac_subject(s, home)).collect();
    let readers: Vec<RbacSubject> = admins.iter().chain(&observers).cloned().collect();
    prop_assert_eq!(plan.admin_binding.as_ref().and_then(|b| b.subjects.clone()), (!admins.is_empty()).then_some(admins));
    prop_assert_eq!(plan.observer_binding.as_ref().and_then(|b| b.subjects.clone()), (!observers.is_empty()).then_some(observers));
    prop_assert_eq!(plan.reader_binding.as_ref().and_then(|b| b.subjects.clone()), (!readers.is_empty()).then_some(readers));
    prop_assert_eq!(plan.operator_binding.is_some(), access.is_some());
    for binding in plan.admin_binding.iter().chain(&plan.observer_binding).chain(&plan.operator_binding) {
        prop_assert_eq!(binding.metadata.namespace.as_deref(), Some(home));
    }
    if admitted {
        prop_assert!(is_dns_label(plan.home_namespace.metadata.name.as_deref().unwrap_or_default()));
        check_labels(plan.home_namespace.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))?;
        let mut metas = vec![&plan.admin_role.metadata, &plan.observer_role.metadata, &plan.reader_role.metadata];
        metas.extend(plan.operator_binding.iter().chain(&plan.admin_binding).chain(&plan.observer_binding).map(|b| &b.metadata));
        metas.extend(plan.reader_binding.iter().map(|b| &b.metadata));
        for meta in metas {
            let object = meta.name.as_deref().unwrap_or_default();
            prop_assert!(is_dns_subdomain(object) && object.len() <= 63, "name {:?}", object);
            check_labels(meta.labels.as_ref().unwrap_or(&BTreeMap::new()))?;
        }
        for s in plan.admin_binding.iter().chain(&plan.observer_binding).flat_map(|b| b.subjects.iter().flatten()) {
            prop_assert!(!s.name.starts_with("system:"), "{:?}", s);
        }
    }
    Ok(())
}

// ---- properties -----------------------------------------------------------------------------

/// `cases` cases, or as many as `PROPTEST_CASES` says (for a longer hunt).
fn config(cases: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { default.cases } else { cases };
    ProptestConfig { cases, max_shrink_iters: 4096, ..default }
}

proptest! {
    #![proptest_config(config(1024))]

    /// Random documents, and random documents shaped like the three kinds, read or are refused.
    #[test]
    fn random_documents_read_or_are_refused(doc in arb_json(), metadata in arb_json(), spec in arb_json(),
                                            kind in one_of(&["Partner", "ClientLink", "AccessGrant"])) {
        let shaped = json!({"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec});
        for doc in [&doc, &shaped] {
            let _ = read::<Partner>(doc);
            let _ = read::<ClientLink>(doc);
            let _ = read::<AccessGrant>(doc);
        }
    }

    /// Mutated CRD documents read or are refused, and a list reads exactly when all its items do
    /// (so one unreadable object is enough to fail a whole list, and the watch built on it).
    #[test]
    fn mutated_documents_read_or_are_refused(partners in prop::collection::vec(mutated(partner_doc(Shape::Wild)), 1..3),
                                             links in prop::collection::vec(mutated(link_doc(Shape::Wild)), 1..3),
                                             grants in prop::collection::vec(mutated(grant_doc(Shape::Wild)), 1..3)) {
        for doc in &partners { let _ = read::<Partner>(doc); }
        for doc in &grants { let _ = read::<AccessGrant>(doc); }
        let each: Vec<bool> = links.iter().map(|doc| read::<ClientLink>(doc).is_some()).collect();
        if links.iter().all(|doc| depth(doc) < 100) {
            let list = json!({"apiVersion": API_VERSION, "kind": "ClientLinkList", "metadata": {}, "items": links});
            let read_list = serde_json::from_slice::<ObjectList<ClientLink>>(&serde_json::to_vec(&list).unwrap());
            prop_assert_eq!(read_list.is_ok(), each.iter().all(|ok| *ok));
        }
    }

    /// Cut, spliced and random bytes, as JSON and as YAML.
    #[test]
    fn broken_text_reads_or_is_refused(doc in mutated(link_doc(Shape::Wild)), cut in any::<Index>(), at in any::<Index>(),
                                        junk in prop::collection::vec(any::<u8>(), 1..8),
                                        bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let json = serde_json::to_vec(&doc).unwrap();
        let yaml = serde_yaml::to_string(&doc).unwrap_or_default().into_bytes();
        for text in [&json, &yaml] {
            read_text(&text[..cut.index(text.len() + 1)]);
            let mut spliced = text.clone();
            let i = at.index(spliced.len() + 1);
            spliced.splice(i..i, junk.iter().copied());
            read_text(&spliced);
        }
        read_text(&bytes);
    }

}

proptest! {
    #![proptest_config(config(2048))]

    /// The worlds made of what reads keep the rules of DESIGN.md.
    #[test]
    fn hostile_worlds_keep_the_rules(cluster in arb_cluster()) {
        let raw = cluster.read();
        let access = cluster.home_access.as_ref();
        for partner in &raw.partners {
            check_partner_plan(partner, access, false)?;
        }
        check_always(&raw, &raw.plan())?;
        let normal = raw.normalized();
        let plan = normal.plan();
        check_always(&normal, &plan)?;
        check_rules(&normal, &plan)?;
        if let Some(admitted) = normal.admitted() {
            let plan = admitted.plan();
            check_always(&admitted, &plan)?;
            check_rules(&admitted, &plan)?;
            check_names(&plan)?;
            for partner in &admitted.partners {
                check_partner_plan(partner, access, true)?;
            }
        }
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// A grant is judged alone (or, once the grants could reach a link's `maxGrants`, with
    /// those older than it: `judged_with`) as it is among every grant naming the namespace: same
    /// verdict, same binding, same Role behind it, and the links' verdicts do not move. The
    /// grant reconciler relies on it to plan each of its clients without the other grants.
    #[test]
    fn a_grant_alone_is_judged_as_among_all(cluster in arb_cluster()) {
        let normal = cluster.read().normalized();
        for world in [Some(normal.clone()), normal.admitted()].iter().flatten() {
            let among_all = world.plan();
            let naming: Vec<Arc<AccessGrant>> = world.grants.iter().cloned().map(Arc::new).collect();
            let smallest = smallest_grant_limit(&world.links);
            for (grant, shared) in world.grants.iter().zip(&naming) {
                let judged = judged_with(shared, &naming, smallest).iter().map(|g| (**g).clone()).collect();
                let alone = World { grants: judged, ..world.clone() }.plan();
                let (namespace, name) = (grant.namespace().unwrap_or_default(), grant.name_any());
                let verdict = alone.grant(&namespace, &name);
                prop_assert!(verdict.is_some(), "every grant given to the rules gets a verdict");
                prop_assert_eq!(verdict, among_all.grant(&namespace, &name));
                let binding_in = |plan: &ClientPlan| {
                    let name = verdict.and_then(|v| v.role_binding.clone());
                    plan.bindings.iter().find(|b| name.is_some() && b.metadata.name == name).cloned()
                };
                prop_assert_eq!(binding_in(&alone), binding_in(&among_all));
                if let Some(binding) = binding_in(&alone) {
                    let role_in = |plan: &ClientPlan| plan.roles.iter().find(|r| r.metadata.name.as_deref() == Some(&binding.role_ref.name)).cloned();
                    prop_assert_eq!(role_in(&alone), role_in(&among_all));
                }
                let link_verdicts = |plan: &ClientPlan| plan.links.iter().map(|(n, l)| (n.clone(), l.verdict.clone())).collect::<Vec<_>>();
                prop_assert_eq!(link_verdicts(&alone), link_verdicts(&among_all));
            }
        }
    }
}

proptest! {
    #![proptest_config(config(2048))]

    /// Coverage of arbitrary rules (wildcards, empty verbs, resourceNames, nonResourceURLs): the
    /// same as Kubernetes' own, reflexive, monotone in the owner, split over the servant's rules.
    #[test]
    fn coverage_of_arbitrary_rules(a in prop::collection::vec(arb_policy_rule(), 0..4),
                                   b in prop::collection::vec(arb_policy_rule(), 0..4),
                                   c in prop::collection::vec(arb_policy_rule(), 0..4)) {
        prop_assert_eq!(covers(&a, &c), kubernetes_covers(&a, &c), "coverage is not Kubernetes' own");
        prop_assert_eq!(covers(&c, &a), kubernetes_covers(&c, &a), "coverage is not Kubernetes' own");
        prop_assert!(covers(&a, &a), "not reflexive");
        let ab: Vec<PolicyRule> = a.iter().chain(&b).cloned().collect();
        prop_assert!(covers(&ab, &a) && covers(&ab, &b));
        let before = uncovered_atoms(&a, &c);
        let after = uncovered_atoms(&ab, &c);
        prop_assert!(after.iter().all(|atom| before.contains(atom)), "more rules in the owner lost coverage");
        if before.is_empty() {
            prop_assert!(covers(&ab, &c));
        }
        let bc: Vec<PolicyRule> = b.iter().chain(&c).cloned().collect();
        prop_assert_eq!(covers(&a, &bc), covers(&a, &b) && covers(&a, &c));
        let asked = atoms(&c);
        prop_assert!(before.iter().all(|atom| asked.contains(atom)));
        // The walk that never expands rules says what the atom-by-atom oracle says.
        let walked = uncovered(&a, &c);
        prop_assert_eq!(walked.is_empty(), before.is_empty());
        prop_assert!(walked.first.iter().all(|atom| before.contains(atom)), "{:?} not in {:?}", walked.first, before);
        prop_assert!(walked.first.windows(2).all(|w| w[0] < w[1]) && walked.first.len() <= Uncovered::SHOWN);
        prop_assert!(walked.count >= before.len() as u64, "every distinct uncovered atom is counted");
        prop_assert!(walked.count <= asked.len() as u64, "no more than were asked");
        let shown = before.len().min(Uncovered::SHOWN);
        prop_assert_eq!(walked.first.len(), shown);
        prop_assert!(covers(&[rule(&["*"], &["*"], &["*"])], &c));
        prop_assert_eq!(covers(&[], &c), asked.is_empty());
    }

    /// kube parses any selector or refuses it, never panics, and where Kubernetes would accept
    /// the selector it matches as Kubernetes does.
    #[test]
    fn label_selectors_parse_or_are_refused(selector in arb_selector(), labels in arb_labels()) {
        let parsed = Selector::try_from(selector.clone());
        if let Ok(parsed) = &parsed {
            let _ = parsed.to_string();
            let matched = parsed.matches(&labels);
            if selector_is_valid(&selector) {
                prop_assert_eq!(matched, selector_allows(&selector, &labels));
            }
        }
        prop_assert!(parsed.is_ok() || !selector_is_valid(&selector), "kube refuses a valid selector");
    }
}

// ---- fixed hostile documents ----------------------------------------------------------------

fn link_text(spec: &str) -> String {
    format!("apiVersion: {API_VERSION}\nkind: ClientLink\nmetadata: {{name: l, namespace: beta}}\nspec:\n{spec}")
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    // (YAML is read whole before its depth is checked, and slowly in a debug build: 5000 will do.)
    for depth in [127, 129, 5_000] {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let json = format!(
            r#"{{"apiVersion":"{API_VERSION}","kind":"ClientLink","metadata":{{"name":"l"}},"spec":{{"partner":"p","accessLevels":[],"x":{nested}}}}}"#
        );
        read_text(json.as_bytes());
        read_text(link_text(&format!("  partner: p\n  accessLevels: []\n  x: {nested}\n")).as_bytes());
        let block: String = (0..depth.min(1_000)).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
        read_text(block.as_bytes());
    }
}

#[test]
fn yaml_tricks_read_or_are_refused() {
    let laughs: String = (1..10)
        .map(|i| {
            format!("{}: &{} [{}]\n", (b'a' + i) as char, (b'a' + i) as char, vec![format!("*{}", (b'a' + i - 1) as char); 9].join(","))
        })
        .collect();
    let cases = [
        format!(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n{laughs}{}",
            link_text("  partner: *j\n  accessLevels: []\n")
        ),
        link_text("  partner: &p techhelp\n  accessLevels: [{name: *p, role: *p}]\n"),
        link_text("  partner: !!binary dGVjaGhlbHA=\n  accessLevels: []\n"),
        link_text("  partner: !Custom techhelp\n  accessLevels: []\n"),
        link_text("  <<: {partner: techhelp}\n  accessLevels: []\n"),
        link_text("  partner: techhelp\n  partner: other\n  accessLevels: []\n"),
        link_text("  partner: techhelp\n  accessLevels: []\n  suspended: yes\n"),
        link_text("  partner: techhelp\n  accessLevels: []\n  suspended: ~\n"),
        link_text("  partner: techhelp\n  accessLevels: []\n  expiresAt: 2026-06-01 12:00:00\n"),
        link_text("  partner: techhelp\n  accessLevels: []\n  expiresAt: .inf\n"),
        link_text("  partner: 0x10\n  accessLevels: []\n"),
        link_text("  ? [partner]\n  : techhelp\n  accessLevels: []\n"),
        format!("{}\n---\n{}", link_text("  partner: a\n  accessLevels: []\n"), link_text("  partner: b\n  accessLevels: []\n")),
        "--- !!str\n".to_string(),
        "%YAML 1.1\n---\na: b\n".to_string(),
        "\u{feff}apiVersion: x\n".to_string(),
        r#"{"apiVersion":"liaison.dev/v1alpha1","kind":"ClientLink","kind":"ClientLink","metadata":{},"spec":{}}"#.to_string(),
        r#"{"metadata":{"name":"l","generation":1e400},"spec":{"partner":"p","accessLevels":[]}}"#.to_string(),
        r#"{"metadata":{"name":"l","generation":18446744073709551616},"spec":{"partner":"p","accessLevels":[]}}"#.to_string(),
        r#"{"metadata":{"name":"\ud800"},"spec":{"partner":"p","accessLevels":[]}}"#.to_string(),
    ];
    for case in cases {
        read_text(case.as_bytes());
    }
}

/// The API server validates `format: date-time` with kube-openapi's `strfmt.IsDateTime`: a Go
/// `2006-01-02` date, then `hh:mm:ss`, any one character and digits as a fraction, `z` or any
/// two-digit `±hh:mm`, case-insensitive. kube-apiserver v1.35 admitted every value below on a
/// ClientLink (and an AccessGrant, same type) before the schema got its pattern and CEL bound;
/// jiff reads none of them (its range ends at 9999-12-30T22:00:00.999999999Z, its fractions at 9
/// digits, its offsets at 25 hours). One such object stored earlier failed the whole typed list
/// and watch of its kind: it must read, and count as expired (fail closed).
#[test]
fn every_expiry_the_api_server_admits_reads() {
    let reason_with_expiry = |at: &str| {
        let doc = json!({"apiVersion": API_VERSION, "kind": "ClientLink", "metadata": {"name": "l", "namespace": "beta"},
                         "spec": {"partner": "p", "accessLevels": [{"name": "a", "role": "r"}], "expiresAt": at}});
        let link = serde_json::from_value::<ClientLink>(doc).unwrap_or_else(|e| panic!("{at}: {e}"));
        let partner = json!({"apiVersion": API_VERSION, "kind": "Partner", "metadata": {"name": "p", "uid": "uid-p"},
                             "spec": {"homeNamespace": "p-home", "identities": {"userSuffixes": ["@p.example"]}}});
        let world = World {
            namespace: "beta".into(),
            namespace_labels: BTreeMap::new(),
            partners: vec![serde_json::from_value(partner).unwrap()],
            links: vec![link],
            grants: vec![],
            roles: BTreeMap::from([("r".into(), read_only_ceiling())]),
            cluster_roles: BTreeMap::new(),
            ceiling: Some(read_only_ceiling()),
            now: "2026-01-01T00:00:00Z".parse().unwrap(),
        };
        world.plan().links["l"].verdict.reason
    };
    assert_eq!(reason_with_expiry("2026-06-01T12:00:00+02:00"), Reason::Active, "the same link with a readable expiry stands");
    for at in [
        "9999-12-31T23:59:59Z",
        "9999-12-31T00:00:00Z",
        "2026-06-01T12:00:00.1234567891Z",
        "2026-06-01T12:00:00+99:00",
        "2026-06-01T12:00:00x5Z",
    ] {
        assert_eq!(reason_with_expiry(at), Reason::Expired, "{at}");
    }
}

/// The properties are only as good as the worlds they see: the documents must often read, the
/// plans must often bind, and the admitted world must often be reached.
#[test]
fn the_hostile_generator_reaches_grants_and_refusals() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut docs, mut read_ok, mut bindings, mut keys, mut admitted_bindings) = (0, 0, 0, 0, 0);
    let mut reasons: BTreeMap<Reason, usize> = BTreeMap::new();
    for _ in 0..1000 {
        let cluster = arb_cluster().new_tree(&mut runner).unwrap().current();
        let raw = cluster.read();
        docs += cluster.partners.len() + cluster.links.len() + cluster.grants.len();
        read_ok += raw.partners.len() + raw.links.len() + raw.grants.len();
        let normal = raw.normalized();
        let plan = normal.plan();
        bindings += plan.bindings.len();
        keys += usize::from(plan.access_key.is_some());
        for reason in plan.links.values().map(|l| l.verdict.reason).chain(plan.grants.iter().map(|g| g.verdict.reason)) {
            *reasons.entry(reason).or_default() += 1;
        }
        if let Some(admitted) = normal.admitted() {
            admitted_bindings += admitted.plan().bindings.len();
        }
    }
    let report =
        format!("docs {docs}, read {read_ok}, bindings {bindings}, keys {keys}, admitted bindings {admitted_bindings}, {reasons:?}");
    assert!(read_ok * 2 > docs && read_ok * 20 < docs * 19, "most documents read, some are refused: {report}");
    assert!(bindings >= 50 && keys >= 30 && admitted_bindings >= 8, "{report}");
    for reason in [
        Reason::Granted,
        Reason::Conflict,
        Reason::PartnerNotFound,
        Reason::NamespaceNotAllowed,
        Reason::Expired,
        Reason::Suspended,
        Reason::EscalationDenied,
        Reason::LevelNotFound,
        Reason::SubjectNotAllowed,
        Reason::LinkNotReady,
        Reason::GrantLimitReached,
    ] {
        assert!(reasons.get(&reason).copied().unwrap_or_default() >= 3, "{reason} not reached: {report}");
    }
}

/// Found by `hostile_worlds_keep_the_rules`: kube parses a selector whose keys or values are
/// not label syntax, and a `NotIn` or `DoesNotExist` on one matched every namespace, though
/// Kubernetes refuses such a selector (and a selector it refuses must allow nothing).
#[test]
fn a_selector_kubernetes_would_refuse_allows_nothing() {
    let partner = |selector: Value| {
        json!({"apiVersion": API_VERSION, "kind": "Partner",
               "metadata": {"name": "techhelp", "uid": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
               "spec": {"homeNamespace": "partner-techhelp", "identities": {"groups": ["techhelp:analysts"]},
                        "clientNamespaceSelector": selector}})
    };
    let link = json!({"apiVersion": API_VERSION, "kind": "ClientLink",
                      "metadata": {"name": "techhelp", "namespace": "beta", "uid": "l", "creationTimestamp": "2026-01-01T00:00:00Z"},
                      "spec": {"partner": "techhelp", "accessLevels": [{"name": "support", "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}]}});
    let grant = json!({"apiVersion": API_VERSION, "kind": "AccessGrant",
                       "metadata": {"name": "g", "namespace": "partner-techhelp", "uid": "g", "creationTimestamp": "2026-01-01T00:00:00Z"},
                       "spec": {"clients": ["beta"], "accessLevel": "support", "subjects": [{"kind": "Group", "name": "techhelp:analysts"}]}});
    let world = |selector: Value| {
        Cluster {
            partners: vec![partner(selector)],
            links: vec![link.clone()],
            grants: vec![grant.clone()],
            namespace: "beta".into(),
            namespace_labels: BTreeMap::new(),
            roles: BTreeMap::new(),
            cluster_roles: BTreeMap::new(),
            ceiling: Some(read_only_ceiling()),
            now: "2026-06-01T12:00:00Z".parse().unwrap(),
            home_access: None,
        }
        .read()
    };
    let allowed = world(json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["prod"]}]})).plan();
    assert_eq!(allowed.bindings.len(), 1, "a valid selector still allows");
    for selector in [
        json!({"matchExpressions": [{"key": "allowed", "operator": "NotIn", "values": ["\u{0}"]}]}),
        json!({"matchExpressions": [{"key": "not a key", "operator": "DoesNotExist"}]}),
        json!({"matchExpressions": [{"key": "a/b/c", "operator": "DoesNotExist"}]}),
        json!({"matchLabels": {"Bad_Prefix/x": ""}}),
    ] {
        let plan = world(selector.clone()).plan();
        assert!(plan.bindings.is_empty(), "{selector} allowed beta");
        assert_eq!(plan.links["techhelp"].verdict.reason, Reason::NamespaceNotAllowed, "{selector}");
    }
}
