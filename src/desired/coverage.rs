//! Does one set of RBAC rules cover another? Kubernetes' own semantics, so that the ceiling
//! check agrees with the API server's escalation check.
//!
//! Each rule the servant asks for is broken into atoms (one group, one resource, one verb,
//! at most one resourceName); every atom must be allowed by some single owner rule. Wildcards
//! (`*`) in verbs, apiGroups and resources cover anything; `*/sub` covers that subresource of
//! every resource; an owner rule without resourceNames covers every name.

use k8s_openapi::api::rbac::v1::PolicyRule;

const ALL: &str = "*";

/// One indivisible permission.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Atom {
    pub api_group: String,
    pub resource: String,
    pub verb: String,
    pub resource_name: Option<String>,
}

impl std::fmt::Display for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.api_group.is_empty() { "core" } else { &self.api_group };
        write!(f, "{} {}.{}", self.verb, self.resource, group)?;
        if let Some(name) = &self.resource_name {
            write!(f, "/{name}")?;
        }
        Ok(())
    }
}

/// Splits resource rules into atoms. Non-resource URLs are ignored: they cannot be granted
/// by a namespaced Role, so they never reach a client namespace.
pub fn atoms(rules: &[PolicyRule]) -> Vec<Atom> {
    let mut out = Vec::new();
    for rule in rules {
        let groups = rule.api_groups.as_deref().unwrap_or_default();
        let resources = rule.resources.as_deref().unwrap_or_default();
        let names: Vec<Option<&String>> = match rule.resource_names.as_deref() {
            Some(names) if !names.is_empty() => names.iter().map(Some).collect(),
            _ => vec![None],
        };
        for group in groups {
            for resource in resources {
                for verb in &rule.verbs {
                    for name in &names {
                        out.push(Atom {
                            api_group: group.clone(),
                            resource: resource.clone(),
                            verb: verb.clone(),
                            resource_name: name.cloned(),
                        });
                    }
                }
            }
        }
    }
    out
}

/// The servant's atoms that no owner rule covers; empty means fully covered.
pub fn uncovered(owner: &[PolicyRule], servant: &[PolicyRule]) -> Vec<Atom> {
    let mut missing: Vec<Atom> = atoms(servant).into_iter().filter(|atom| !owner.iter().any(|rule| rule_covers(rule, atom))).collect();
    missing.sort();
    missing.dedup();
    missing
}

pub fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> bool {
    uncovered(owner, servant).is_empty()
}

fn rule_covers(owner: &PolicyRule, atom: &Atom) -> bool {
    let listed = |list: &Option<Vec<String>>, value: &str| list.as_deref().unwrap_or_default().iter().any(|v| v == ALL || v == value);
    listed(&Some(owner.verbs.clone()), &atom.verb)
        && listed(&owner.api_groups, &atom.api_group)
        && resource_covers(owner.resources.as_deref().unwrap_or_default(), &atom.resource)
        && name_covers(owner.resource_names.as_deref().unwrap_or_default(), atom.resource_name.as_deref())
}

fn resource_covers(owned: &[String], wanted: &str) -> bool {
    if owned.iter().any(|r| r == ALL || r == wanted) {
        return true;
    }
    // `*/scale` covers `deployments/scale`, never the wildcard `*` itself.
    match wanted.split_once('/') {
        Some((_, sub)) => owned.iter().any(|r| r.strip_prefix("*/") == Some(sub)),
        None => false,
    }
}

fn name_covers(owned: &[String], wanted: Option<&str>) -> bool {
    if owned.is_empty() {
        return true;
    }
    match wanted {
        Some(name) => owned.iter().any(|n| n == name),
        // An owner limited to names cannot cover a request for every name.
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str], names: &[&str]) -> PolicyRule {
        let list = |xs: &[&str]| Some(xs.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        PolicyRule {
            api_groups: list(groups),
            resources: list(resources),
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            resource_names: if names.is_empty() { None } else { list(names) },
            non_resource_urls: None,
        }
    }

    fn read_only_ceiling() -> Vec<PolicyRule> {
        vec![
            rule(&["", "apps"], &["pods", "pods/log", "configmaps", "deployments", "services"], &["get", "list", "watch"], &[]),
            rule(&["apps"], &["*/scale"], &["get"], &[]),
        ]
    }

    #[test]
    fn table() {
        let ceiling = read_only_ceiling();
        let cases: &[(&str, PolicyRule, bool)] = &[
            ("exact read", rule(&[""], &["pods"], &["get"], &[]), true),
            ("several reads", rule(&["", "apps"], &["configmaps"], &["get", "list", "watch"], &[]), true),
            ("write verb", rule(&[""], &["pods"], &["delete"], &[]), false),
            ("wildcard verb", rule(&[""], &["pods"], &["*"], &[]), false),
            ("wildcard resource", rule(&[""], &["*"], &["get"], &[]), false),
            ("wildcard group", rule(&["*"], &["pods"], &["get"], &[]), false),
            ("secrets", rule(&[""], &["secrets"], &["get"], &[]), false),
            ("listed subresource", rule(&[""], &["pods/log"], &["get"], &[]), true),
            ("unlisted subresource", rule(&[""], &["pods/exec"], &["get"], &[]), false),
            ("*/scale covers deployments/scale", rule(&["apps"], &["deployments/scale"], &["get"], &[]), true),
            ("*/scale is not */status", rule(&["apps"], &["deployments/status"], &["get"], &[]), false),
            ("*/scale in another group", rule(&["batch"], &["jobs/scale"], &["get"], &[]), false),
            ("named under unnamed owner", rule(&[""], &["configmaps"], &["get"], &["settings"]), true),
            ("other group", rule(&["batch"], &["jobs"], &["get"], &[]), false),
            ("no groups asks nothing", rule(&[], &["secrets"], &["*"], &[]), true),
        ];
        for (what, servant, expected) in cases {
            assert_eq!(covers(&ceiling, std::slice::from_ref(servant)), *expected, "{what}");
        }
    }

    #[test]
    fn resource_names_in_owner_limit_coverage() {
        let owner = vec![rule(&[""], &["configmaps"], &["get"], &["a", "b"])];
        assert!(covers(&owner, &[rule(&[""], &["configmaps"], &["get"], &["a"])]));
        assert!(covers(&owner, &[rule(&[""], &["configmaps"], &["get"], &["a", "b"])]));
        assert!(!covers(&owner, &[rule(&[""], &["configmaps"], &["get"], &["c"])]));
        assert!(!covers(&owner, &[rule(&[""], &["configmaps"], &["get"], &[])]));
    }

    #[test]
    fn wildcards_in_owner_cover_everything_of_their_axis() {
        let owner = vec![rule(&["*"], &["*"], &["*"], &[])];
        assert!(covers(&owner, &[rule(&["x.io"], &["things/sub"], &["escalate"], &["n"])]));
        let verbs_only = vec![rule(&[""], &["pods"], &["*"], &[])];
        assert!(covers(&verbs_only, &[rule(&[""], &["pods"], &["delete", "get"], &[])]));
        assert!(!covers(&verbs_only, &[rule(&[""], &["pods/log"], &["get"], &[])]));
    }

    #[test]
    fn atoms_may_be_covered_by_different_owner_rules() {
        let owner = vec![rule(&[""], &["pods"], &["get"], &[]), rule(&[""], &["pods"], &["list"], &[])];
        assert!(covers(&owner, &[rule(&[""], &["pods"], &["get", "list"], &[])]));
    }

    #[test]
    fn uncovered_names_each_missing_atom_once() {
        let missing = uncovered(&read_only_ceiling(), &[rule(&[""], &["secrets", "pods"], &["get", "get", "delete"], &[])]);
        let shown: Vec<String> = missing.iter().map(ToString::to_string).collect();
        assert_eq!(shown, vec!["delete pods.core", "delete secrets.core", "get secrets.core"]);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn word() -> impl Strategy<Value = String> {
            prop_oneof![Just("*".to_string()), Just("".to_string()), "[a-c]{1,2}", "[a-c]{1,2}/[x-y]", Just("*/x".to_string())]
        }

        fn arb_rule() -> impl Strategy<Value = PolicyRule> {
            (
                prop::collection::vec(word(), 0..3),
                prop::collection::vec(word(), 0..3),
                prop::collection::vec(word(), 1..3),
                prop::collection::vec("[a-c]", 0..2),
            )
                .prop_map(|(groups, resources, verbs, names)| PolicyRule {
                    api_groups: Some(groups),
                    resources: Some(resources),
                    verbs,
                    resource_names: Some(names),
                    non_resource_urls: None,
                })
        }

        proptest! {
            #[test]
            fn rules_cover_themselves(rules in prop::collection::vec(arb_rule(), 0..4)) {
                prop_assert!(covers(&rules, &rules));
            }

            #[test]
            fn coverage_is_transitive(a in prop::collection::vec(arb_rule(), 0..3),
                                      b in prop::collection::vec(arb_rule(), 0..3),
                                      c in prop::collection::vec(arb_rule(), 0..3)) {
                if covers(&a, &b) && covers(&b, &c) {
                    prop_assert!(covers(&a, &c));
                }
            }

            #[test]
            fn every_uncovered_atom_is_really_uncovered(owner in prop::collection::vec(arb_rule(), 0..3),
                                                        servant in prop::collection::vec(arb_rule(), 0..3)) {
                for atom in uncovered(&owner, &servant) {
                    prop_assert!(!owner.iter().any(|r| rule_covers(r, &atom)));
                }
            }
        }
    }
}
