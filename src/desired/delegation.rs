//! Only holders delegate: the permissions a ClientLink's author must hold themselves, in the
//! link's namespace, for every inline level it writes, and the refusal that names those the
//! author lacks. The questions are asked of the API server's own authorizer (one
//! SubjectAccessReview each) by the operator's admission webhook; this module decides which
//! questions, and what the answers mean.
//!
//! Levels that name a Role or ClusterRole are judged by the chart's admission policy (`bind`
//! on the role, one authorizer check each); inline rules need one check per permission, which
//! no admission policy's CEL budget affords.

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::client::to_policy_rule;
use super::coverage::{Atom, atoms};
use crate::api::ClientLinkSpec;

/// At most this many questions for one link: a link whose inline levels ask more is refused
/// rather than judged in part. (The schema admits far more: 16 levels of 32 rules, each a
/// product of groups, resources, verbs and names.)
pub const MOST_QUESTIONS: usize = 512;

/// One permission, as a SubjectAccessReview asks it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Question {
    pub group: String,
    pub resource: String,
    pub subresource: Option<String>,
    pub verb: String,
    /// One object's name; `None` for every object.
    pub name: Option<String>,
}

impl std::fmt::Display for Question {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() { "core" } else { &self.group };
        write!(f, "{} {}", self.verb, self.resource)?;
        if let Some(sub) = &self.subresource {
            write!(f, "/{sub}")?;
        }
        write!(f, ".{group}")?;
        if let Some(name) = &self.name {
            write!(f, " named {name}")?;
        }
        Ok(())
    }
}

/// The questions the author of `spec` must be allowed, or why they are too many to ask.
pub fn questions(spec: &ClientLinkSpec) -> Result<Vec<Question>, usize> {
    let rules: Vec<PolicyRule> = spec
        .access_levels
        .iter()
        .filter_map(|level| level.rules.as_ref())
        .flatten()
        .map(to_policy_rule)
        .collect();
    // Counted before they are spelled out: the schema admits levels of millions of permissions.
    let named = |rule: &PolicyRule| rule.resource_names.as_ref().map_or(1, |names| names.len().max(1));
    let total = rules.iter().fold(0usize, |total, rule| {
        let permissions =
            rule.api_groups.as_ref().map_or(0, Vec::len) * rule.resources.as_ref().map_or(0, Vec::len);
        total.saturating_add(permissions * rule.verbs.len() * named(rule))
    });
    if total > MOST_QUESTIONS * 4 {
        return Err(total);
    }
    let asked: BTreeSet<Question> = atoms(&rules).into_iter().map(Question::from).collect();
    if asked.len() > MOST_QUESTIONS {
        return Err(asked.len());
    }
    Ok(asked.into_iter().collect())
}

/// An atom as a SubjectAccessReview asks it: `pods/log` is resource `pods`, subresource `log`.
impl From<Atom> for Question {
    fn from(atom: Atom) -> Question {
        let (resource, subresource) = match atom.resource.split_once('/') {
            Some((resource, sub)) => (resource.to_string(), Some(sub.to_string())),
            None => (atom.resource, None),
        };
        Question { group: atom.api_group, resource, subresource, verb: atom.verb, name: atom.resource_name }
    }
}

/// The refusal of a link whose author lacks `denied`, naming the first few.
pub fn refusal(namespace: &str, denied: &[Question]) -> Option<String> {
    const SHOWN: usize = 5;
    if denied.is_empty() {
        return None;
    }
    let shown: Vec<String> = denied.iter().take(SHOWN).map(ToString::to_string).collect();
    let more = denied.len().saturating_sub(SHOWN);
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    Some(format!(
        "you may not delegate what you may not do yourself in namespace {namespace}: {}{more} (a ClientLink's inline levels \
         grant an outside partner what its author holds; ask someone who holds it, a namespace admin, to write the link)",
        shown.join(", ")
    ))
}

/// The refusal of a link too large to judge.
pub fn too_many(count: usize) -> String {
    format!(
        "this link's inline levels ask for {count} permissions, more than the {MOST_QUESTIONS} that can be checked against \
         your own; use fewer groups, resources, verbs or names per rule, or a Role"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AccessLevel, AccessRule};

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str], names: &[&str]) -> AccessRule {
        let strings = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        AccessRule {
            api_groups: strings(groups),
            resources: strings(resources),
            verbs: strings(verbs),
            resource_names: strings(names),
        }
    }

    fn spec(levels: Vec<AccessLevel>) -> ClientLinkSpec {
        ClientLinkSpec { partner: "p".into(), access_levels: levels, ..Default::default() }
    }

    fn inline(name: &str, rules: Vec<AccessRule>) -> AccessLevel {
        AccessLevel {
            name: name.into(),
            cluster_role: None,
            role: None,
            rules: Some(rules),
            on_request: None,
        }
    }

    #[test]
    fn every_permission_of_every_inline_level_is_asked_once() {
        let link = spec(vec![
            inline("a", vec![rule(&[""], &["pods", "pods/log"], &["get", "list"], &[])]),
            inline(
                "b",
                vec![
                    rule(&[""], &["pods"], &["get"], &[]),
                    rule(&["apps"], &["deployments"], &["get"], &["web", "db"]),
                ],
            ),
            AccessLevel {
                name: "view".into(),
                cluster_role: Some("view".into()),
                role: None,
                rules: None,
                on_request: None,
            },
        ]);
        let asked: BTreeSet<String> = questions(&link).unwrap().iter().map(ToString::to_string).collect();
        let expected = [
            "get pods.core",
            "list pods.core",
            "get pods/log.core",
            "list pods/log.core",
            "get deployments.apps named web",
            "get deployments.apps named db",
        ];
        // `get pods` asked by two levels is one question; the ClusterRole level asks none here.
        assert_eq!(asked, expected.map(String::from).into_iter().collect());
    }

    #[test]
    fn wildcards_are_asked_as_wildcards() {
        let asked = questions(&spec(vec![inline("all", vec![rule(&["*"], &["*", "*/scale"], &["*"], &[])])]))
            .unwrap();
        assert!(asked.contains(&Question {
            group: "*".into(),
            resource: "*".into(),
            subresource: None,
            verb: "*".into(),
            name: None
        }));
        let scale = Question {
            group: "*".into(),
            resource: "*".into(),
            subresource: Some("scale".into()),
            verb: "*".into(),
            name: None,
        };
        assert!(asked.contains(&scale), "the author must hold the wildcard itself, as RBAC answers for it");
    }

    #[test]
    fn a_link_too_large_to_judge_is_refused_not_judged_in_part() {
        let many = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();
        let big = AccessRule {
            api_groups: many("g", 16),
            resources: many("r", 32),
            verbs: many("v", 16),
            resource_names: vec![],
        };
        let count = questions(&spec(vec![inline("big", vec![big])])).unwrap_err();
        assert!(count > MOST_QUESTIONS);
        assert!(too_many(count).contains("more than the 512"));
    }

    #[test]
    fn a_refusal_names_what_the_author_lacks() {
        assert_eq!(refusal("beta", &[]), None);
        let secrets = Question {
            group: "".into(),
            resource: "secrets".into(),
            subresource: None,
            verb: "list".into(),
            name: None,
        };
        let message = refusal("beta", std::slice::from_ref(&secrets)).unwrap();
        assert!(message.contains("in namespace beta: list secrets.core"), "{message}");
        let seven = vec![secrets; 7];
        assert!(refusal("beta", &seven).unwrap().contains("and 2 more"));
    }
}
