//! Which objects are Liaison's, and whose: the one rule that every prune, revocation, sweep
//! and trigger asks.
//!
//! Labels only find objects: whoever may write an object may write its labels. What decides
//! is what Liaison itself recorded when it made the object: for the objects it makes per
//! link (level Roles, grant bindings, access keys), the name it derives from the owner's UID;
//! for the few objects with fixed names (a partner's suite), that name and a controlling owner
//! reference to the owner. So a binding whose owner references a client admin removed is still
//! Liaison's (put back while wanted, removed once not), and an object merely labelled as
//! Liaison's under any other name is never touched.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::names::{self, Component};

/// Every component, to read one back from its label.
const COMPONENTS: [Component; 7] = [
    Component::LevelRole,
    Component::GrantBinding,
    Component::AccessKey,
    Component::PartnerAdmin,
    Component::PartnerObserver,
    Component::PartnerReader,
    Component::OperatorAccess,
];

impl Component {
    /// Made by a ClientLink's reconcile in its namespace (the access key's Secret, in the
    /// partner's home), as opposed to a Partner's suite.
    pub fn is_link_component(self) -> bool {
        matches!(self, Component::LevelRole | Component::GrantBinding | Component::AccessKey)
    }

    fn parse(text: &str) -> Option<Component> {
        COMPONENTS.into_iter().find(|c| c.as_str() == text)
    }
}

/// An object that is Liaison's: what it is for, and the UID of the Liaison object it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owned<'a> {
    pub component: Component,
    pub owner_uid: &'a str,
}

/// The owner of `meta`'s object if it is Liaison's by the rule above, `None` otherwise.
pub fn owner(meta: &ObjectMeta) -> Option<Owned<'_>> {
    let labels = meta.labels.as_ref()?;
    if labels.get(names::MANAGED_BY).map(String::as_str) != Some(names::MANAGER) {
        return None;
    }
    let component = Component::parse(labels.get(names::COMPONENT)?)?;
    let owner_uid = labels.get(names::OWNER_UID)?.as_str();
    let name = meta.name.as_deref()?;
    let label = |key: &str| labels.get(key).map(String::as_str).unwrap_or_default();
    let named_by_liaison = match component {
        Component::LevelRole => name == names::level_role(owner_uid, label(names::ACCESS_LEVEL)),
        Component::GrantBinding => {
            name == names::grant_binding(owner_uid, label(names::GRANT_UID), label(names::ACCESS_GRANT))
        }
        // The key's ServiceAccount and RoleBinding share a name; its Secret has its own.
        Component::AccessKey => {
            name == names::access_key(owner_uid)
                || name == names::access_key_secret(label(names::CLIENT_NAMESPACE), owner_uid)
        }
        // Fixed names, which anyone could give an object: the owner reference decides.
        Component::PartnerAdmin => name == names::PARTNER_ADMIN && controlled_by(meta, owner_uid),
        Component::PartnerObserver => name == names::PARTNER_OBSERVER && controlled_by(meta, owner_uid),
        Component::OperatorAccess => name == names::OPERATOR_HOME_ACCESS && controlled_by(meta, owner_uid),
        Component::PartnerReader => {
            name == names::partner_reader(label(names::PARTNER)) && controlled_by(meta, owner_uid)
        }
    };
    named_by_liaison.then_some(Owned { component, owner_uid })
}

/// Whether the object is Liaison's and serves the object with this UID.
pub fn is_owned_by(meta: &ObjectMeta, uid: &str) -> bool {
    owner(meta).is_some_and(|owned| owned.owner_uid == uid)
}

/// Whether the object is one a ClientLink's reconcile made (and so may prune).
pub fn is_link_made(meta: &ObjectMeta) -> bool {
    owner(meta).is_some_and(|owned| owned.component.is_link_component())
}

/// Whether the object names `uid` as its controlling owner, a Liaison object.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|o| o.uid == uid && o.controller == Some(true) && o.api_version.starts_with("liaison.dev/"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    const LINK: &str = "0b8a1f9e-link";
    const GRANT: &str = "77c2-grant";

    fn meta(name: &str, component: Component, extra: &[(&str, &str)], owner_ref: Option<&str>) -> ObjectMeta {
        let mut labels = names::base_labels(component, "techhelp", LINK);
        labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            owner_references: owner_ref.map(|uid| {
                vec![OwnerReference {
                    api_version: "liaison.dev/v1alpha1".into(),
                    kind: "ClientLink".into(),
                    name: "l".into(),
                    uid: uid.into(),
                    controller: Some(true),
                    block_owner_deletion: None,
                }]
            }),
            ..Default::default()
        }
    }

    fn binding(name: &str, owner_ref: Option<&str>) -> ObjectMeta {
        meta(
            name,
            Component::GrantBinding,
            &[(names::GRANT_UID, GRANT), (names::ACCESS_GRANT, "beta-support")],
            owner_ref,
        )
    }

    #[test]
    fn the_name_liaison_derives_decides_not_the_owner_reference() {
        let ours = names::grant_binding(LINK, GRANT, "beta-support");
        assert_eq!(
            owner(&binding(&ours, Some(LINK))),
            Some(Owned { component: Component::GrantBinding, owner_uid: LINK })
        );
        assert!(
            is_owned_by(&binding(&ours, None), LINK),
            "owner references removed by hand: still Liaison's"
        );
        assert!(
            !is_owned_by(&binding("tenant-binding", Some(LINK)), LINK),
            "labels and an owner reference under another name"
        );
        let other_grant = names::grant_binding(LINK, "another-grant", "beta-support");
        assert!(
            owner(&binding(&other_grant, Some(LINK))).is_none(),
            "the name must be the one derived from the labelled grant"
        );
    }

    #[test]
    fn each_link_component_is_recognised_by_its_derived_name() {
        let role = meta(
            &names::level_role(LINK, "support"),
            Component::LevelRole,
            &[(names::ACCESS_LEVEL, "support")],
            None,
        );
        assert!(is_owned_by(&role, LINK) && is_link_made(&role));
        let relabelled = meta(
            &names::level_role(LINK, "support"),
            Component::LevelRole,
            &[(names::ACCESS_LEVEL, "other")],
            None,
        );
        assert!(owner(&relabelled).is_none());
        let account = meta(&names::access_key(LINK), Component::AccessKey, &[], None);
        assert!(is_owned_by(&account, LINK));
        let secret = meta(
            &names::access_key_secret("beta", LINK),
            Component::AccessKey,
            &[(names::CLIENT_NAMESPACE, "beta")],
            None,
        );
        assert!(is_owned_by(&secret, LINK));
        let a_partners_secret =
            meta("credentials", Component::AccessKey, &[(names::CLIENT_NAMESPACE, "beta")], Some(LINK));
        assert!(owner(&a_partners_secret).is_none(), "a Secret labelled as a key is not one");
    }

    #[test]
    fn fixed_names_need_the_owner_reference_and_are_never_a_links() {
        let admin = meta(names::PARTNER_ADMIN, Component::PartnerAdmin, &[], Some(LINK));
        assert!(is_owned_by(&admin, LINK));
        assert!(!is_link_made(&admin), "a link's reconcile never prunes a partner's suite");
        assert!(owner(&meta(names::PARTNER_ADMIN, Component::PartnerAdmin, &[], None)).is_none());
        assert!(
            owner(&meta(names::PARTNER_ADMIN, Component::PartnerAdmin, &[], Some("someone-else"))).is_none()
        );
        let operator = meta(names::OPERATOR_HOME_ACCESS, Component::OperatorAccess, &[], Some(LINK));
        assert!(is_owned_by(&operator, LINK) && !is_link_made(&operator));
    }

    #[test]
    fn without_liaisons_labels_nothing_is_liaisons() {
        let name = names::grant_binding(LINK, GRANT, "beta-support");
        let mut unmanaged = binding(&name, Some(LINK));
        unmanaged.labels.as_mut().unwrap().insert(names::MANAGED_BY.into(), "someone".into());
        assert!(owner(&unmanaged).is_none());
        let mut unknown = binding(&name, Some(LINK));
        unknown.labels.as_mut().unwrap().insert(names::COMPONENT.into(), "mystery".into());
        assert!(owner(&unknown).is_none());
        let bare = ObjectMeta { name: Some(name), labels: Some(BTreeMap::new()), ..Default::default() };
        assert!(owner(&bare).is_none());
    }
}
