//! Names and labels of materialized objects.
//!
//! Names derive from the owners' UIDs, so that a link or grant re-created under the same name
//! never inherits the objects (and so the access) of its predecessor. Labels are only used to
//! find objects; what an object grants is always recomputed from the owners' specs.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGER: &str = "liaison";
pub const COMPONENT: &str = "liaison.dev/component";
pub const PARTNER: &str = "liaison.dev/partner";
pub const CLIENT_LINK: &str = "liaison.dev/client-link";
pub const CLIENT_NAMESPACE: &str = "liaison.dev/client-namespace";
pub const ACCESS_GRANT: &str = "liaison.dev/access-grant";
pub const GRANT_NAMESPACE: &str = "liaison.dev/grant-namespace";
pub const ACCESS_LEVEL: &str = "liaison.dev/access-level";
/// The UID of the Liaison object whose reconciler writes (and prunes) the object.
pub const OWNER_UID: &str = "liaison.dev/owner-uid";
/// On grant bindings: the UID of the grant, so that deleting a grant finds its bindings.
pub const GRANT_UID: &str = "liaison.dev/grant-uid";
/// Annotation on grant bindings: when the access ends by itself, if it does.
pub const ACCESS_ENDS_AT: &str = "liaison.dev/access-ends-at";
/// The labels Liaison writes on every grant binding (the compact cache compares these).
pub const GRANT_BINDING_LABELS: [&str; 9] = [
    MANAGED_BY,
    COMPONENT,
    PARTNER,
    OWNER_UID,
    CLIENT_LINK,
    ACCESS_GRANT,
    GRANT_NAMESPACE,
    GRANT_UID,
    ACCESS_LEVEL,
];
/// The labels of every level Role, all of them compared by the compact cache of level Roles.
pub const LEVEL_ROLE_LABELS: [&str; 6] =
    [MANAGED_BY, COMPONENT, PARTNER, OWNER_UID, CLIENT_LINK, ACCESS_LEVEL];
/// Label on a Partner's home namespace: the Partner's name, for people and selectors.
pub const HOME_OF: &str = "liaison.dev/home-of";
/// Label on a Partner's home namespace: the Partner's UID. It is what makes the namespace that
/// Partner's (`desired::partner::home_claim`); the chart's admission policy lets only the
/// operator write it.
pub const HOME_OF_UID: &str = "liaison.dev/home-of-uid";
/// Label on a home namespace that existed before its Partner and was adopted
/// (`spec.adoptExistingHome`) rather than created by Liaison.
pub const HOME_ADOPTED: &str = "liaison.dev/home-adopted";
/// Label on an existing namespace, set by whoever administers namespaces (never by the
/// operator: the chart's operator-bounds policy lets it add no label but its own): the name of
/// the one Partner that may adopt it as its home. The consent the operator cannot forge.
pub const ADOPTABLE_BY: &str = "liaison.dev/adoptable-by";

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "liaison";
pub const FINALIZER: &str = "liaison.dev/revoke-access";

/// What a materialized object is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    LevelRole,
    GrantBinding,
    AccessKey,
    PartnerAdmin,
    PartnerObserver,
    PartnerReader,
    OperatorAccess,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::LevelRole => "level-role",
            Component::GrantBinding => "grant-binding",
            Component::AccessKey => "access-key",
            Component::PartnerAdmin => "partner-admin",
            Component::PartnerObserver => "partner-observer",
            Component::PartnerReader => "partner-reader",
            Component::OperatorAccess => "operator-access",
        }
    }
}

/// A label selector for everything Liaison manages, optionally of one component.
pub fn managed_selector(component: Option<Component>) -> String {
    match component {
        Some(c) => format!("{MANAGED_BY}={MANAGER},{COMPONENT}={}", c.as_str()),
        None => format!("{MANAGED_BY}={MANAGER}"),
    }
}

/// A label selector for everything Liaison manages except one component.
pub fn managed_selector_except(component: Component) -> String {
    format!("{MANAGED_BY}={MANAGER},{COMPONENT}!={}", component.as_str())
}

pub fn base_labels(component: Component, partner: &str, owner_uid: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_string(), MANAGER.to_string()),
        (COMPONENT.to_string(), component.as_str().to_string()),
        (PARTNER.to_string(), partner.to_string()),
        (OWNER_UID.to_string(), owner_uid.to_string()),
    ])
}

/// A short digest of the given parts, stable across runs and versions: it is part of names.
fn name_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..5])
}

/// `liaison-<readable>-<digest>`, the readable part cut so that the whole is a DNS label.
fn derived(readable: &str, parts: &[&str]) -> String {
    let hash = name_hash(parts);
    let room = 63 - "liaison--".len() - hash.len();
    let readable: String = readable.chars().take(room).collect();
    let readable = readable.trim_end_matches(['-', '.']);
    format!("liaison-{readable}-{hash}")
}

pub fn level_role(link_uid: &str, level: &str) -> String {
    derived(level, &["level", link_uid, level])
}

pub fn grant_binding(link_uid: &str, grant_uid: &str, grant_name: &str) -> String {
    derived(grant_name, &["grant", link_uid, grant_uid])
}

/// The access key's ServiceAccount and its RoleBinding share this name.
pub fn access_key(link_uid: &str) -> String {
    derived("key", &["key", link_uid])
}

/// The Secret in the partner's home namespace: readable by client, unique by link.
pub fn access_key_secret(client_namespace: &str, link_uid: &str) -> String {
    derived(&format!("key-{client_namespace}"), &["key-secret", link_uid])
}

pub const PARTNER_ADMIN: &str = "liaison-partner-admin";
pub const PARTNER_OBSERVER: &str = "liaison-partner-observer";
pub const OPERATOR_HOME_ACCESS: &str = "liaison-operator";

pub fn partner_reader(partner: &str) -> String {
    derived(&format!("partner-{partner}"), &["partner-reader", partner])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels_even_for_long_inputs() {
        let long = "a".repeat(63);
        for name in [
            level_role("uid", &long),
            grant_binding("l", "g", &long),
            access_key("uid"),
            access_key_secret(&long, "uid"),
            partner_reader(&long),
        ] {
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name}"
            );
            assert!(!name.ends_with('-'));
        }
    }

    #[test]
    fn names_change_with_the_owner_uid() {
        assert_ne!(grant_binding("link-1", "grant", "g"), grant_binding("link-2", "grant", "g"));
        assert_ne!(grant_binding("link", "grant-1", "g"), grant_binding("link", "grant-2", "g"));
        assert_ne!(access_key("a"), access_key("b"));
        assert_eq!(level_role("a", "support"), level_role("a", "support"));
    }
}
