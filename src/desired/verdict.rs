//! Outcomes of the rules, as condition reasons users read.

/// Why something is granted or not. Each variant is a condition `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Link or partner: in force.
    Active,
    /// Grant: bound in every client it names.
    Granted,
    /// Grant: bound in some clients, refused in others.
    PartiallyGranted,
    /// Grant: allowed, but its RoleBinding is not yet seen in place (only the reconciler,
    /// which sees the cluster, can tell; the pure plan never says it).
    Pending,
    PartnerNotFound,
    PartnerNotReady,
    /// Link: the Partner it names is not the one it accepted (deleted and created again).
    PartnerReplaced,
    HomeNamespaceConflict,
    /// Partner: its home namespace exists and is not its own (not created by Liaison for it,
    /// nor adopted: `spec.adoptExistingHome` and the namespace's `liaison.dev/adoptable-by`
    /// label naming the Partner, both).
    HomeNotOwned,
    /// Partner: its home namespace can never be a home (a system namespace, the operator's,
    /// or one holding a ClientLink).
    HomeRefused,
    Conflict,
    NamespaceNotAllowed,
    Expired,
    Suspended,
    /// Link or grant: its periodic review is overdue past its grace (`spec.review`).
    ReviewOverdue,
    /// Grant: its level is granted on request only, and no approved request is in force.
    OnRequest,
    EscalationDenied,
    /// A level's inline rules are ones the API server would refuse in a Role.
    InvalidLevel,
    RoleNotFound,
    CeilingNotFound,
    LinkNotFound,
    LinkNotReady,
    LevelNotFound,
    SubjectNotAllowed,
    NoSubjects,
    /// Grant: the link already puts `spec.maxGrants` older grants of the partner in force.
    GrantLimitReached,
    Deleting,
    /// Grant: refused in a client, but its RoleBinding there is still in place (only the
    /// reconciler, which sees the cluster, can tell): a status never claims a revocation that
    /// has not happened.
    Revoking,
}

impl Reason {
    pub const ALL: [Reason; 28] = [
        Reason::Active,
        Reason::Granted,
        Reason::PartiallyGranted,
        Reason::Pending,
        Reason::PartnerNotFound,
        Reason::PartnerNotReady,
        Reason::PartnerReplaced,
        Reason::HomeNamespaceConflict,
        Reason::HomeNotOwned,
        Reason::HomeRefused,
        Reason::Conflict,
        Reason::NamespaceNotAllowed,
        Reason::Expired,
        Reason::Suspended,
        Reason::ReviewOverdue,
        Reason::OnRequest,
        Reason::EscalationDenied,
        Reason::InvalidLevel,
        Reason::RoleNotFound,
        Reason::CeilingNotFound,
        Reason::LinkNotFound,
        Reason::LinkNotReady,
        Reason::LevelNotFound,
        Reason::SubjectNotAllowed,
        Reason::NoSubjects,
        Reason::GrantLimitReached,
        Reason::Deleting,
        Reason::Revoking,
    ];

    /// The reason a condition's `reason` text names, if it is one of these.
    pub fn parse(text: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|reason| reason.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Active => "Active",
            Reason::Granted => "Granted",
            Reason::PartiallyGranted => "PartiallyGranted",
            Reason::Pending => "Pending",
            Reason::PartnerNotFound => "PartnerNotFound",
            Reason::PartnerNotReady => "PartnerNotReady",
            Reason::PartnerReplaced => "PartnerReplaced",
            Reason::HomeNamespaceConflict => "HomeNamespaceConflict",
            Reason::HomeNotOwned => "HomeNotOwned",
            Reason::HomeRefused => "HomeRefused",
            Reason::Conflict => "Conflict",
            Reason::NamespaceNotAllowed => "NamespaceNotAllowed",
            Reason::Expired => "Expired",
            Reason::Suspended => "Suspended",
            Reason::ReviewOverdue => "ReviewOverdue",
            Reason::OnRequest => "OnRequest",
            Reason::EscalationDenied => "EscalationDenied",
            Reason::InvalidLevel => "InvalidLevel",
            Reason::RoleNotFound => "RoleNotFound",
            Reason::CeilingNotFound => "CeilingNotFound",
            Reason::LinkNotFound => "LinkNotFound",
            Reason::LinkNotReady => "LinkNotReady",
            Reason::LevelNotFound => "LevelNotFound",
            Reason::SubjectNotAllowed => "SubjectNotAllowed",
            Reason::NoSubjects => "NoSubjects",
            Reason::GrantLimitReached => "GrantLimitReached",
            Reason::Deleting => "Deleting",
            Reason::Revoking => "Revoking",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decision with the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub reason: Reason,
    pub message: String,
}

impl Verdict {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Verdict { reason, message: message.into() }
    }

    /// Whether access flows.
    pub fn is_ok(&self) -> bool {
        matches!(self.reason, Reason::Active | Reason::Granted | Reason::PartiallyGranted)
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn every_reason_is_listed_once_and_parses_back() {
        // Exhaustive: a new variant does not compile here until it is listed in `ALL` as well.
        let listed = |reason: Reason| match reason {
            Reason::Active
            | Reason::Granted
            | Reason::PartiallyGranted
            | Reason::Pending
            | Reason::PartnerNotFound
            | Reason::PartnerNotReady
            | Reason::PartnerReplaced
            | Reason::HomeNamespaceConflict
            | Reason::HomeNotOwned
            | Reason::HomeRefused
            | Reason::Conflict
            | Reason::NamespaceNotAllowed
            | Reason::Expired
            | Reason::Suspended
            | Reason::ReviewOverdue
            | Reason::OnRequest
            | Reason::EscalationDenied
            | Reason::InvalidLevel
            | Reason::RoleNotFound
            | Reason::CeilingNotFound
            | Reason::LinkNotFound
            | Reason::LinkNotReady
            | Reason::LevelNotFound
            | Reason::SubjectNotAllowed
            | Reason::NoSubjects
            | Reason::GrantLimitReached
            | Reason::Deleting
            | Reason::Revoking => Reason::ALL.iter().filter(|r| **r == reason).count(),
        };
        for reason in Reason::ALL {
            assert_eq!(listed(reason), 1, "{reason}");
            assert_eq!(Reason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(Reason::parse("ByHand"), None);
    }

    #[test]
    fn every_reason_is_explained_in_the_readme() {
        let readme = include_str!("../../README.md");
        for reason in Reason::ALL {
            assert!(
                readme.contains(&format!("`{reason}`")),
                "README.md's table of reasons does not explain {reason}"
            );
        }
    }
}
