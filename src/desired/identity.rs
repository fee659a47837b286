//! Which subjects a partner may grant: only its own people and robots, never `system:*`.

use crate::api::{Identities, Subject, SubjectKind};

/// Why a subject may not be granted by this partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignSubject {
    pub subject: Subject,
    pub why: &'static str,
}

impl std::fmt::Display for ForeignSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.subject, self.why)
    }
}

/// Every subject the partner may not grant; empty means all are the partner's own.
pub fn foreign_subjects(identities: &Identities, subjects: &[Subject]) -> Vec<ForeignSubject> {
    subjects
        .iter()
        .filter_map(|subject| {
            refusal(identities, subject).map(|why| ForeignSubject { subject: subject.clone(), why })
        })
        .collect()
}

pub fn is_allowed(identities: &Identities, subject: &Subject) -> bool {
    refusal(identities, subject).is_none()
}

fn refusal(identities: &Identities, subject: &Subject) -> Option<&'static str> {
    if subject.name.starts_with("system:") {
        return Some("system identities are never granted");
    }
    if subject.namespace.is_some() {
        return Some("subjects carry no namespace");
    }
    match subject.kind {
        SubjectKind::User => {
            // A suffix the schema would now refuse (stored before it did) matches nobody.
            let owned =
                identities.user_suffixes.iter().filter(|suffix| is_domain_suffix(suffix)).any(|suffix| {
                    subject.name.len() > suffix.len() && subject.name.ends_with(suffix.as_str())
                });
            (!owned).then_some("user name does not end with one of the partner's userSuffixes")
        }
        SubjectKind::Group => {
            let listed = identities.groups.iter().any(|g| g == &subject.name);
            (!listed).then_some("group is not listed in the partner's identities.groups")
        }
        SubjectKind::ServiceAccount => {
            let valid = is_dns_subdomain(&subject.name);
            (!valid).then_some("not a valid ServiceAccount name")
        }
    }
}

/// `@` and a domain of at least two labels: `example` alone would match `eve@not-techhelp.example`,
/// `.com` every organisation's users.
pub fn is_domain_suffix(suffix: &str) -> bool {
    let Some(domain) = suffix.strip_prefix('@') else { return false };
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

pub(crate) fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn techhelp() -> Identities {
        Identities {
            user_suffixes: vec!["@techhelp.example".into()],
            groups: vec!["techhelp:analysts".into()],
        }
    }

    #[test]
    fn table() {
        use SubjectKind::*;
        let cases = [
            (User, "bob@techhelp.example", true),
            (User, "@techhelp.example", false),
            (User, "bob@techhelp.example.evil", false),
            (User, "bob@evil.example", false),
            (User, "system:admin@techhelp.example", false),
            (User, "system:anonymous", false),
            (Group, "techhelp:analysts", true),
            (Group, "techhelp:admins", false),
            (Group, "system:masters", false),
            (Group, "system:authenticated", false),
            (ServiceAccount, "ticket-bot", true),
            (ServiceAccount, "Ticket_Bot", false),
            (ServiceAccount, "", false),
        ];
        for (kind, name, allowed) in cases {
            assert_eq!(is_allowed(&techhelp(), &Subject::new(kind, name)), allowed, "{kind:?} {name}");
        }
    }

    #[test]
    fn a_suffix_is_an_at_sign_and_a_domain_with_a_dot() {
        for good in ["@techhelp.example", "@eu.techhelp.example", "@TechHelp.example"] {
            assert!(is_domain_suffix(good), "{good}");
        }
        for bad in [
            "example",
            ".com",
            "@com",
            "@.example",
            "@techhelp..example",
            "techhelp.example",
            "@-x.example",
            "@a b.example",
            "",
        ] {
            assert!(!is_domain_suffix(bad), "{bad}");
        }
        let loose = Identities { user_suffixes: vec!["example".into(), ".com".into()], groups: vec![] };
        for user in ["eve@not-techhelp.example", "anyone@corp.com"] {
            assert!(
                !is_allowed(&loose, &Subject::new(SubjectKind::User, user)),
                "a stored loose suffix matches nobody: {user}"
            );
        }
    }

    #[test]
    fn a_namespaced_subject_is_refused() {
        let mut sa = Subject::new(SubjectKind::ServiceAccount, "bot");
        sa.namespace = Some("kube-system".into());
        assert!(!is_allowed(&techhelp(), &sa));
    }

    #[test]
    fn system_groups_are_refused_even_when_listed() {
        let ids = Identities { user_suffixes: vec![], groups: vec!["system:masters".into()] };
        assert!(!is_allowed(&ids, &Subject::new(SubjectKind::Group, "system:masters")));
    }

    #[test]
    fn foreign_subjects_lists_each_refused_one() {
        let subjects = vec![
            Subject::new(SubjectKind::User, "bob@techhelp.example"),
            Subject::new(SubjectKind::User, "eve@other.example"),
            Subject::new(SubjectKind::Group, "system:masters"),
        ];
        let foreign = foreign_subjects(&techhelp(), &subjects);
        assert_eq!(foreign.len(), 2);
        assert_eq!(foreign[0].subject.name, "eve@other.example");
        assert_eq!(foreign[1].subject.name, "system:masters");
    }
}
