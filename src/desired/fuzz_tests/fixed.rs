//! Fixed hostile documents that once broke something, kept as regressions.

use super::*;

fn link_text(spec: &str) -> String {
    format!(
        "apiVersion: {API_VERSION}\nkind: ClientLink\nmetadata: {{name: l, namespace: beta}}\nspec:\n{spec}"
    )
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
            format!(
                "{}: &{} [{}]\n",
                (b'a' + i) as char,
                (b'a' + i) as char,
                vec![format!("*{}", (b'a' + i - 1) as char); 9].join(",")
            )
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
    assert_eq!(
        reason_with_expiry("2026-06-01T12:00:00+02:00"),
        Reason::Active,
        "the same link with a readable expiry stands"
    );
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
        for reason in
            plan.links.values().map(|l| l.verdict.reason).chain(plan.grants.iter().map(|g| g.verdict.reason))
        {
            *reasons.entry(reason).or_default() += 1;
        }
        if let Some(admitted) = normal.admitted() {
            admitted_bindings += admitted.plan().bindings.len();
        }
    }
    let report = format!(
        "docs {docs}, read {read_ok}, bindings {bindings}, keys {keys}, admitted bindings {admitted_bindings}, {reasons:?}"
    );
    assert!(
        read_ok * 2 > docs && read_ok * 20 < docs * 19,
        "most documents read, some are refused: {report}"
    );
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
    let allowed =
        world(json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["prod"]}]})).plan();
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
