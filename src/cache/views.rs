//! Views of the objects the caches keep trimmed, so that a read of what they leave out does not
//! compile.
//!
//! The caches keep grants, links and partners without the bulky parts of their statuses: a
//! grant's per-client entries and its `Ready` condition (`grant_statuses`), a link's list of
//! grants and a partner's list of clients (`summaries`). Their types still have those fields,
//! empty in the cache. A reconcile holds a `Cached` view instead: metadata, spec and the status
//! fields the cache keeps, and no `Deref` to the object. What the left-out fields said is asked
//! of the side tables (`Caches::grant_statuses`, `link_grants`, `partner_clients`), which take
//! views.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::{Resource, ResourceExt};

use crate::api::{
    AccessGrant, AccessGrantSpec, ClientLink, ClientLinkSpec, ClientLinkStatus, Partner, PartnerSpec,
    PartnerStatus,
};

/// An object as a cache holds it (shared, not copied), with its trimmed fields out of reach.
pub struct Cached<K>(pub(super) Arc<K>);

pub type CachedLink = Cached<ClientLink>;
pub type CachedGrant = Cached<AccessGrant>;
pub type CachedPartner = Cached<Partner>;

impl<K> Clone for Cached<K> {
    fn clone(&self) -> Self {
        Cached(self.0.clone())
    }
}

impl<K> From<Arc<K>> for Cached<K> {
    fn from(object: Arc<K>) -> Self {
        Cached(object)
    }
}

impl<K: Resource> Cached<K> {
    pub fn meta(&self) -> &ObjectMeta {
        self.0.meta()
    }

    pub fn name_any(&self) -> String {
        self.0.name_any()
    }

    pub fn namespace(&self) -> Option<String> {
        self.0.namespace()
    }

    pub fn uid(&self) -> Option<String> {
        self.0.uid()
    }

    /// The object as cached, its left-out fields empty: only for what reads metadata, spec and
    /// the kept status fields. That is kube's side of Events and patches (the object's
    /// reference, its metadata) and the pure rules of `desired`, whose only status reads are a
    /// link's `partnerUid` (`client::accepted_partner`) and the `review` record of links and
    /// grants (`review::of_link`, `of_grant`), all kept.
    pub fn trimmed(&self) -> &K {
        &self.0
    }

    /// `trimmed`, shared: the rules hold the grants they judge without copying them.
    pub fn into_trimmed(self) -> Arc<K> {
        self.0
    }
}

impl Cached<ClientLink> {
    pub fn spec(&self) -> &ClientLinkSpec {
        &self.0.spec
    }

    pub fn conditions(&self) -> &[Condition] {
        self.0.status.as_ref().map(|s| &s.conditions[..]).unwrap_or_default()
    }

    /// The status but for its list of grants: what the link's status write compares and
    /// patches over (`LinkGrants::lists` says whether the list changed).
    pub fn status_without_grants(&self) -> ClientLinkStatus {
        let status = self.0.status.clone().unwrap_or_default();
        ClientLinkStatus { grants: Vec::new(), ..status }
    }
}

impl Cached<Partner> {
    pub fn spec(&self) -> &PartnerSpec {
        &self.0.spec
    }

    pub fn conditions(&self) -> &[Condition] {
        self.0.status.as_ref().map(|s| &s.conditions[..]).unwrap_or_default()
    }

    /// The status but for its list of clients (`PartnerClients::lists` says whether it changed).
    pub fn status_without_clients(&self) -> PartnerStatus {
        let status = self.0.status.clone().unwrap_or_default();
        PartnerStatus { clients: Vec::new(), ..status }
    }
}

/// Of a grant's status, reconciles read only what `GrantStatuses` says of it.
impl Cached<AccessGrant> {
    pub fn spec(&self) -> &AccessGrantSpec {
        &self.0.spec
    }
}
