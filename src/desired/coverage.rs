//! Does one set of RBAC rules cover another? Kubernetes' own semantics, so that the ceiling
//! check agrees with the API server's escalation check.
//!
//! Each rule the servant asks for stands for atoms (one group, one resource, one verb, at most
//! one resourceName); every atom must be allowed by some single owner rule. Wildcards
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

/// How many of the servant's permissions no owner rule covers, and the first few of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uncovered {
    /// The smallest uncovered atoms (in `Atom` order), at most `SHOWN` of them.
    pub first: Vec<Atom>,
    /// How many uncovered atoms there are in all (one asked for twice counts twice).
    pub count: u64,
}

impl Uncovered {
    pub const SHOWN: usize = 5;

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn add(&mut self, atom: Atom) {
        self.count += 1;
        let at = self.first.binary_search(&atom).unwrap_or_else(|at| at);
        if at < Self::SHOWN && self.first.get(at) != Some(&atom) {
            self.first.insert(at, atom);
            self.first.truncate(Self::SHOWN);
        }
    }

    fn add_many(&mut self, atoms: u64) {
        self.count += atoms;
    }
}

/// What the servant asks that no owner rule covers.
///
/// Never expands rules into atoms: a client admin's level of a few rules with many groups,
/// resources, verbs and names is a product of tens of millions of atoms (one such level drove
/// the operator past its memory limit). The servant's rule is walked group by resource by
/// verb, narrowing the owner rules that could cover it at each step, and only the names are
/// compared as sets: memory is bounded by the rules' size, and time by the groups, resources
/// and verbs of each rule (the schema caps their product) times the owner's rules.
pub fn uncovered(owner: &[PolicyRule], servant: &[PolicyRule]) -> Uncovered {
    let mut out = Uncovered::default();
    for rule in servant {
        let names = distinct(rule.resource_names.as_deref().unwrap_or_default());
        for group in distinct(rule.api_groups.as_deref().unwrap_or_default()) {
            let by_group: Vec<&PolicyRule> =
                owner.iter().filter(|o| listed(o.api_groups.as_deref(), group)).collect();
            for resource in distinct(rule.resources.as_deref().unwrap_or_default()) {
                let by_resource: Vec<&PolicyRule> = by_group
                    .iter()
                    .copied()
                    .filter(|o| resource_covers(o.resources.as_deref().unwrap_or_default(), resource))
                    .collect();
                for verb in distinct(&rule.verbs) {
                    let by_verb = by_resource.iter().copied().filter(|o| listed(Some(&o.verbs), verb));
                    let atom = |name: Option<&str>| Atom {
                        api_group: group.to_string(),
                        resource: resource.to_string(),
                        verb: verb.to_string(),
                        resource_name: name.map(str::to_string),
                    };
                    match names_left(by_verb, &names) {
                        Left::None => {}
                        Left::Every => out.add(atom(None)),
                        Left::Some(left) => {
                            left.iter().take(Uncovered::SHOWN).for_each(|name| out.add(atom(Some(name))));
                            out.add_many(left.len().saturating_sub(Uncovered::SHOWN) as u64);
                        }
                    }
                }
            }
        }
    }
    out
}

pub fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> bool {
    uncovered(owner, servant).is_empty()
}

/// The names of one (group, resource, verb) the owner rules leave uncovered.
enum Left<'a> {
    None,
    /// Every name was asked for, and no owner rule covers every name.
    Every,
    Some(Vec<&'a str>),
}

fn names_left<'a, 'o>(owners: impl Iterator<Item = &'o PolicyRule>, asked: &[&'a str]) -> Left<'a> {
    let mut covered: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for owner in owners {
        match owner.resource_names.as_deref() {
            // An owner rule without names covers every name.
            None | Some([]) => return Left::None,
            Some(names) => covered.extend(names.iter().map(String::as_str)),
        }
    }
    if asked.is_empty() {
        return Left::Every;
    }
    let left: Vec<&str> = asked.iter().copied().filter(|name| !covered.contains(name)).collect();
    if left.is_empty() { Left::None } else { Left::Some(left) }
}

/// Each value once, in order: a rule that repeats a value asks for it once.
fn distinct(values: &[String]) -> Vec<&str> {
    let mut seen = std::collections::BTreeSet::new();
    values.iter().map(String::as_str).filter(|v| seen.insert(*v)).collect()
}

fn listed(list: Option<&[String]>, value: &str) -> bool {
    list.unwrap_or_default().iter().any(|v| v == ALL || v == value)
}

/// Whether one owner rule covers one atom: the atom-by-atom reading of the rules, kept as the
/// oracle the tests hold `uncovered` to.
pub fn rule_covers(owner: &PolicyRule, atom: &Atom) -> bool {
    listed(Some(&owner.verbs), &atom.verb)
        && listed(owner.api_groups.as_deref(), &atom.api_group)
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
            rule(
                &["", "apps"],
                &["pods", "pods/log", "configmaps", "deployments", "services"],
                &["get", "list", "watch"],
                &[],
            ),
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
            (
                "*/scale covers deployments/scale",
                rule(&["apps"], &["deployments/scale"], &["get"], &[]),
                true,
            ),
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
        let missing = uncovered(
            &read_only_ceiling(),
            &[rule(&[""], &["secrets", "pods"], &["get", "get", "delete"], &[])],
        );
        let shown: Vec<String> = missing.first.iter().map(ToString::to_string).collect();
        assert_eq!(shown, vec!["delete pods.core", "delete secrets.core", "get secrets.core"]);
        assert_eq!(missing.count, 3);
    }

    #[test]
    fn the_largest_admitted_level_is_judged_without_expanding_it() {
        // 32 rules of 16 groups × 32 resources × 16 verbs × 64 names: 268 million atoms, which
        // the atom-by-atom reading would have held in memory.
        let many = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();
        let big = PolicyRule {
            api_groups: Some(many("g", 16)),
            resources: Some(many("r", 32)),
            verbs: many("v", 16),
            resource_names: Some(many("n", 64)),
            non_resource_urls: None,
        };
        let level = vec![big; 32];
        let missing = uncovered(&read_only_ceiling(), &level);
        assert_eq!(missing.count, 32 * 16 * 32 * 16 * 64);
        assert_eq!(missing.first.len(), Uncovered::SHOWN);
        assert!(covers(&[rule(&["*"], &["*"], &["*"], &[])], &level));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn word() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("*".to_string()),
                Just("".to_string()),
                "[a-c]{1,2}",
                "[a-c]{1,2}/[x-y]",
                Just("*/x".to_string())
            ]
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
                for atom in uncovered(&owner, &servant).first {
                    prop_assert!(!owner.iter().any(|r| rule_covers(r, &atom)));
                }
            }
        }
    }
}
