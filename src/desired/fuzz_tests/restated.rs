//! The rules, restated here independently of the planner.

use super::*;

/// Passed, or not an instant at all (fail closed).
pub(super) fn expired(at: Option<&Expiry>, now: Timestamp) -> bool {
    at.is_some_and(|at| at.as_str().parse::<Timestamp>().ok().is_none_or(|at| at <= now))
}

/// Rule 4, written out: the partner's own users, listed groups and home robots, never `system:*`.
pub(super) fn may_grant(partner: &Partner, s: &Subject) -> bool {
    let ids = &partner.spec.identities;
    if s.name.starts_with("system:") || s.namespace.is_some() {
        return false;
    }
    match s.kind {
        SubjectKind::User => ids
            .user_suffixes
            .iter()
            .any(|suffix| s.name.len() > suffix.len() && s.name.ends_with(suffix.as_str())),
        SubjectKind::Group => ids.groups.contains(&s.name),
        SubjectKind::ServiceAccount => is_dns_subdomain(&s.name),
    }
}

pub(super) fn rbac_subject(s: &Subject, home: &str) -> RbacSubject {
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
pub(super) fn selector_allows(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| is_label_key(k) && is_label_value(v) && labels.get(k) == Some(v));
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

pub(super) fn selector_is_valid(selector: &LabelSelector) -> bool {
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
pub(super) fn level_rules(world: &World, level: &AccessLevel) -> Option<Vec<PolicyRule>> {
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
pub(super) fn uncovered_atoms(owner: &[PolicyRule], servant: &[PolicyRule]) -> Vec<Atom> {
    let mut missing: Vec<Atom> =
        atoms(servant).into_iter().filter(|atom| !owner.iter().any(|rule| rule_covers(rule, atom))).collect();
    missing.sort();
    missing.dedup();
    missing
}

pub(super) fn kubernetes_covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> bool {
    pub(super) fn has(set: &[String], item: &str) -> bool {
        set.iter().any(|s| s == item)
    }
    let covered = |group: &str, resource: &str, verb: &str, name: Option<&str>| {
        owner.iter().any(|o| {
            let (groups, resources) =
                (o.api_groups.as_deref().unwrap_or_default(), o.resources.as_deref().unwrap_or_default());
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
        rule.api_groups.iter().flatten().all(|g| {
            rule.resources
                .iter()
                .flatten()
                .all(|r| rule.verbs.iter().all(|v| names.iter().all(|n| covered(g, r, v, *n))))
        })
    })
}

pub(super) fn age(meta: &ObjectMeta) -> (Option<Timestamp>, Option<String>) {
    (meta.creation_timestamp.as_ref().map(|t| t.0), meta.name.clone())
}
