//! Documents of the three kinds, well-formed or wild.

use super::*;

pub(super) const PARTNER_NAMES: &[&str] =
    &["techhelp", "techhelp", "techhelp", "techhelp", "other", "t.help", "ghost"];
pub(super) const HOMES: &[&str] = &[
    "partner-techhelp",
    "partner-techhelp",
    "partner-techhelp",
    "partner-techhelp",
    "partner-other",
    "beta",
];
/// The namespace planned: mostly a client, sometimes the partner's own home.
pub(super) const NAMESPACES: &[&str] =
    &["beta", "beta", "beta", "beta", "beta", "beta", "beta", "beta", "gamma", "partner-techhelp"];
pub(super) const CLIENTS: &[&str] = &["beta", "beta", "beta", "gamma"];
pub(super) const LINK_NAMES: &[&str] = &["techhelp", "link-a", "link-b"];
pub(super) const GRANT_NAMES: &[&str] =
    &["beta-support", "g.1", "g-2", "a-long-grant-name-that-is-cut-down-to-fit-a.into-binding-name"];
pub(super) const LEVELS: &[&str] = &["support", "support", "l0", "l1"];
pub(super) const ROLE_NAMES: &[&str] = &["reader", "deleter", "absent"];
pub(super) const CLUSTER_ROLE_NAMES: &[&str] = &["view", "view", "edit", "urls", "absent"];
pub(super) const USERS: &[&str] = &[
    "bob@techhelp.example",
    "bob@techhelp.example",
    "ann@techhelp.example",
    "bob@other.example",
    "@techhelp.example",
    "system:admin",
    "system:a@techhelp.example",
    "bob@techhelp.example.evil",
];
pub(super) const GROUPS: &[&str] =
    &["techhelp:analysts", "techhelp:analysts", "other:analysts", "system:masters", "system:authenticated"];
pub(super) const SERVICE_ACCOUNTS: &[&str] =
    &["ticket-bot", "ticket-bot", "bot.v2", "Bad_Name", "system:serviceaccount:kube-system:default"];
pub(super) const SUFFIXES: &[&str] =
    &["@techhelp.example", "@techhelp.example", "@other.example", "@", "e", "system:"];
pub(super) const LABEL_KEYS: &[&str] =
    &["allowed", "tier", "liaison.dev/partners-allowed", "kubernetes.io/metadata.name"];
pub(super) const LABEL_VALUES: &[&str] = &["true", "gold", "beta", ""];
pub(super) const OPERATORS: &[&str] = &[
    "In",
    "NotIn",
    "Exists",
    "DoesNotExist",
    "In",
    "NotIn",
    "Exists",
    "DoesNotExist",
    "in",
    "Equals",
    "Gt",
    "",
];
pub(super) const API_GROUPS: &[&str] = &["", "apps", "*", "batch", "rbac.authorization.k8s.io"];
pub(super) const RESOURCES: &[&str] = &[
    "pods",
    "pods/log",
    "pods/exec",
    "secrets",
    "configmaps",
    "deployments",
    "deployments/scale",
    "*",
    "*/scale",
    "*/*",
    "",
    "a/b/c",
];
pub(super) const VERBS: &[&str] =
    &["get", "list", "watch", "create", "delete", "escalate", "bind", "impersonate", "*", "", "GET"];
pub(super) const RESOURCE_NAMES: &[&str] = &["a", "b", "*", ""];
pub(super) const URLS: &[&str] = &["/healthz", "*", "/api/*", ""];

pub(super) fn uid() -> BoxedStrategy<String> {
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
pub(super) enum Shape {
    Wild,
    Typed,
}

/// Some with probability `p` when wild, else never.
pub(super) fn when_wild<T: Debug + Clone + 'static>(
    shape: Shape,
    p: f64,
    strategy: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    match shape {
        Shape::Wild => prop::option::weighted(p, strategy).boxed(),
        Shape::Typed => Just(None).boxed(),
    }
}

/// `typed`, or when wild now and then anything at all.
pub(super) fn or_anything(shape: Shape, typed: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    match shape {
        Shape::Wild => prop_oneof![9 => typed, 1 => arb_json()].boxed(),
        Shape::Typed => typed,
    }
}

/// An extra field: wild ones may collide with real fields, typed ones are unknown names.
pub(super) fn extra(shape: Shape) -> BoxedStrategy<Option<(String, Value)>> {
    match shape {
        Shape::Wild => prop::option::weighted(0.1, (field_name(), arb_json())).boxed(),
        Shape::Typed => prop::option::weighted(0.05, ("x-[a-z]{1,8}", arb_json())).boxed(),
    }
}

/// A timestamp slot: mostly text jiff reads; when wild, also other types.
pub(super) fn timestamp_json(shape: Shape) -> BoxedStrategy<Value> {
    match shape {
        Shape::Wild => prop_oneof![
            12 => timestamp_text().prop_map(Value::String),
            1 => number(),
            1 => Just(Value::Null),
            1 => Just(json!(true)),
        ]
        .boxed(),
        Shape::Typed => prop_oneof![16 => one_of(GOOD_TIMES), 1 => one_of(EDGE_TIMES), 1 => odd_string()]
            .prop_map(Value::String)
            .boxed(),
    }
}

pub(super) fn meta_doc(
    shape: Shape,
    names: &'static [&'static str],
    namespaces: Option<&'static [&'static str]>,
) -> BoxedStrategy<Value> {
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

pub(super) fn arb_labels() -> BoxedStrategy<BTreeMap<String, String>> {
    prop::collection::btree_map(mostly(LABEL_KEYS), mostly(LABEL_VALUES), 0..4).boxed()
}

/// Selectors: the pools, and keys and values Kubernetes refuses more often than elsewhere.
pub(super) fn arb_selector() -> BoxedStrategy<LabelSelector> {
    let key = || prop_oneof![3 => one_of(LABEL_KEYS), 1 => odd_string()];
    let value = || prop_oneof![3 => one_of(LABEL_VALUES), 1 => odd_string()];
    let requirement =
        (key(), mostly(OPERATORS), prop::option::weighted(0.8, prop::collection::vec(value(), 0..3)))
            .prop_map(|(key, operator, values)| LabelSelectorRequirement { key, operator, values });
    let labels = prop::collection::btree_map(key(), value(), 0..3);
    (prop::option::of(labels), prop::option::of(prop::collection::vec(requirement, 0..3)))
        .prop_map(|(match_labels, match_expressions)| LabelSelector { match_labels, match_expressions })
        .boxed()
}

pub(super) fn subject_doc(shape: Shape) -> BoxedStrategy<Value> {
    let odd_kind =
        (prop_oneof![one_of(&["user", "Robot", "", "SERVICEACCOUNT"]), odd_string()], odd_string());
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
            object(
                vec![
                    ("kind", Some(json!(kind))),
                    ("name", Some(json!(name))),
                    ("namespace", namespace.map(Value::String)),
                ],
                extra,
            )
        })
        .boxed()
}

/// Mostly only TechHelp's own people (so that grants bind), else anybody.
pub(super) fn subjects_doc(shape: Shape) -> BoxedStrategy<Value> {
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
pub(super) fn word(pool: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![9 => one_of(pool), 1 => odd_string()].boxed()
}

pub(super) fn arb_policy_rule() -> BoxedStrategy<PolicyRule> {
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

pub(super) fn rule_doc(shape: Shape) -> BoxedStrategy<Value> {
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

pub(super) fn level_doc(shape: Shape) -> BoxedStrategy<Value> {
    let one_source = prop_oneof![
        8 => prop::collection::vec(rule_doc(shape), 1..3).prop_map(|r| vec![("rules", json!(r))]),
        2 => mostly(ROLE_NAMES).prop_map(|r| vec![("role", json!(r))]),
        2 => mostly(CLUSTER_ROLE_NAMES).prop_map(|r| vec![("clusterRole", json!(r))]),
    ];
    // What the schema refuses: no rules, no source, several sources.
    let odd_source = prop_oneof![
        Just(vec![("rules", json!([]))]),
        Just(vec![]),
        (mostly(ROLE_NAMES), mostly(CLUSTER_ROLE_NAMES), prop::collection::vec(rule_doc(shape), 1..2))
            .prop_map(|(r, c, rules)| vec![
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
pub(super) fn status_doc() -> BoxedStrategy<Value> {
    let condition =
        (odd_string(), timestamp_json(Shape::Wild), extra(Shape::Wild)).prop_map(|(reason, at, extra)| {
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

pub(super) fn suspended_json(shape: Shape) -> BoxedStrategy<Option<Value>> {
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

pub(super) fn resource_doc(
    kind: &str,
    metadata: Value,
    spec: Value,
    status: Option<Value>,
    extra: Option<(String, Value)>,
) -> Value {
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

pub(super) fn partner_doc(shape: Shape) -> BoxedStrategy<Value> {
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
        .prop_map(
            |(
                (metadata, home),
                display,
                responsible,
                admins,
                identities,
                selector,
                status,
                spec_extra,
                extra,
            )| {
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
            },
        )
        .boxed()
}

/// TechHelp, at home in partner-techhelp, often with the people of DESIGN.md's story.
pub(super) fn techhelp_doc() -> BoxedStrategy<Value> {
    (partner_doc(Shape::Typed), prop::bool::weighted(0.6))
        .prop_map(|(mut doc, story)| {
            doc["metadata"]["name"] = json!("techhelp");
            doc["spec"]["homeNamespace"] = json!("partner-techhelp");
            if story {
                doc["spec"]["admins"] = json!([{"kind": "User", "name": "alice@techhelp.example"}]);
                doc["spec"]["responsibleParty"] = json!({"kind": "Group", "name": "vendor-managers"});
                doc["spec"]["identities"] =
                    json!({"userSuffixes": ["@techhelp.example"], "groups": ["techhelp:analysts"]});
            }
            doc
        })
        .boxed()
}

pub(super) fn link_doc(shape: Shape) -> BoxedStrategy<Value> {
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

pub(super) fn grant_doc(shape: Shape) -> BoxedStrategy<Value> {
    (
        (meta_doc(shape, GRANT_NAMES, Some(HOMES)), prop::bool::weighted(0.75)).prop_map(
            |(mut metadata, at_home)| {
                // Mostly in TechHelp's home, so that it is TechHelp's grant.
                if at_home && metadata.get("namespace").is_some() {
                    metadata["namespace"] = json!("partner-techhelp");
                }
                metadata
            },
        ),
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
