//! Hostile values: strings, times, numbers and JSON that a document may hold.

use super::*;

pub(super) const HOSTILE: &[&str] = &[
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

pub(super) fn one_of(pool: &'static [&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(pool).prop_map(str::to_string).boxed()
}

/// Strings that are not huge: odd characters, unicode, lengths around the limits.
pub(super) fn odd_string() -> BoxedStrategy<String> {
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
pub(super) fn hostile_string() -> BoxedStrategy<String> {
    prop_oneof![
        20 => odd_string(),
        1 => prop::sample::select(vec![10_000usize, 100_000]).prop_map(|n| "ü".repeat(n)),
    ]
    .boxed()
}

/// Mostly one of `pool`, sometimes hostile.
pub(super) fn mostly(pool: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![9 => one_of(pool), 1 => hostile_string()].boxed()
}

/// Timestamps jiff reads, the extremes of its range and the instants around "now" included.
pub(super) const GOOD_TIMES: &[&str] = &[
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
pub(super) const EDGE_TIMES: &[&str] = &[
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

pub(super) fn timestamp_text() -> BoxedStrategy<String> {
    prop_oneof![6 => one_of(GOOD_TIMES), 2 => one_of(EDGE_TIMES), 1 => odd_string()].boxed()
}

pub(super) fn number() -> BoxedStrategy<Value> {
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
pub(super) const FIELDS: &[&str] = &[
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

pub(super) fn field_name() -> BoxedStrategy<String> {
    prop_oneof![3 => one_of(FIELDS), 1 => odd_string()].boxed()
}

/// Any JSON document of modest size.
pub(super) fn arb_json() -> BoxedStrategy<Value> {
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
            prop::collection::vec((field_name(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

pub(super) fn object(fields: Vec<(&str, Option<Value>)>, extra: Option<(String, Value)>) -> Value {
    let mut map: Map<String, Value> =
        fields.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_string(), v))).collect();
    if let Some((k, v)) = extra {
        map.insert(k, v);
    }
    Value::Object(map)
}
