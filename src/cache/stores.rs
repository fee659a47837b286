//! The stores the controllers share, and the indexes over them.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::grant_statuses::GrantStatuses;
use super::holders::Holders;
use super::index::{Index, namespace_of};
use super::summaries::{LinkGrants, PartnerClients};
use super::views::{Cached, CachedGrant, CachedLink, CachedPartner};
use crate::api::{AccessApproval, AccessGrant, AccessRequest, ClientLink, Partner};
use crate::desired::Verdict;

/// Caches kept by shared watches. Materialized kinds are watched through Liaison's label only.
#[derive(Clone)]
pub struct Caches {
    /// Partners, links and grants, their statuses trimmed: reconciles read them as views
    /// (`partner`, `links_in`... below); the stores themselves serve kube's controllers and
    /// what reads only metadata and spec (triggers, indexes, the orphan sweep).
    pub partners: Store<Partner>,
    pub links: Store<ClientLink>,
    pub grants: Store<AccessGrant>,
    pub namespaces: Arc<crate::cache::namespace_labels::NamespaceLabels>,
    pub cluster_roles: Store<ClusterRole>,
    /// Every Role but Liaison's level Roles: those a level names, partners' own.
    pub roles: Store<Role>,
    /// Liaison's RoleBindings other than grant bindings.
    pub role_bindings: Store<RoleBinding>,
    pub grant_bindings: Arc<crate::cache::compact::GrantBindings>,
    pub level_roles: Arc<crate::cache::compact::LevelRoles>,
    pub service_accounts: Store<ServiceAccount>,
    pub cluster_role_bindings: Store<ClusterRoleBinding>,
    pub managed_namespaces: Store<Namespace>,
    /// Requests for on-request levels (in partner homes) and the answers to them (in client
    /// namespaces).
    pub requests: Store<AccessRequest>,
    pub approvals: Store<AccessApproval>,
    pub by: Indexes,
    /// What the statuses of cached grants, links and partners said of the parts the caches
    /// leave out of them (`views`): a grant's per-client entries and `Ready` condition, a
    /// link's list of grants, a partner's list of clients.
    pub grant_statuses: Arc<GrantStatuses>,
    pub link_grants: Arc<LinkGrants>,
    pub partner_clients: Arc<PartnerClients>,
    /// The link holding each crowded namespace, remembered.
    pub holders: Arc<Holders>,
}

/// Cached grants, links and partners as reconciles read them: views (`super::views`).
impl Caches {
    /// Whether an older link of its namespace outranks `link`, and how it is told so
    /// (`desired::client::outranked`), without looking at every link of a crowded namespace.
    pub fn outranked(&self, link: &ClientLink) -> Option<Verdict> {
        self.holders.outranked(link, self)
    }

    pub fn partner(&self, name: &str) -> Option<CachedPartner> {
        self.partners.get(&ObjectRef::new(name)).map(Cached::from)
    }

    pub fn links_in(&self, namespace: &str) -> Vec<CachedLink> {
        self.by.links_by_namespace.get(namespace, &self.links).into_iter().map(Cached::from).collect()
    }

    /// The links accepting partner `name`.
    pub fn links_of_partner(&self, name: &str) -> Vec<CachedLink> {
        self.by.links_by_partner.get(name, &self.links).into_iter().map(Cached::from).collect()
    }

    /// The grants living in `namespace`: a partner's home.
    pub fn grants_in(&self, namespace: &str) -> Vec<CachedGrant> {
        self.by.grants_by_namespace.get(namespace, &self.grants).into_iter().map(Cached::from).collect()
    }
}

/// Lookups a reconcile makes many times, which a scan of a whole cache would make grow with
/// the cluster.
#[derive(Clone)]
pub struct Indexes {
    pub grants_by_client: Arc<Index<AccessGrant>>,
    /// Grants by the namespace they live in: a partner's home.
    pub grants_by_namespace: Arc<Index<AccessGrant>>,
    pub links_by_namespace: Arc<Index<ClientLink>>,
    pub links_by_partner: Arc<Index<ClientLink>>,
    pub roles_by_namespace: Arc<Index<Role>>,
    pub bindings_by_namespace: Arc<Index<RoleBinding>>,
    /// Access key accounts by the client namespace they serve (they live in partner homes).
    pub accounts_by_client: Arc<Index<ServiceAccount>>,
    pub requests_by_client: Arc<Index<AccessRequest>>,
    pub approvals_by_namespace: Arc<Index<AccessApproval>>,
}

/// The client namespace an access key's account serves: its label (accounts made before keys
/// moved to partner homes lived in the client namespace itself, and carry no such label).
pub fn client_served_by(account: &ServiceAccount) -> Option<String> {
    account.labels().get(crate::desired::names::CLIENT_NAMESPACE).cloned().or_else(|| account.namespace())
}

impl Default for Indexes {
    fn default() -> Self {
        Indexes {
            grants_by_client: Index::new(|g: &AccessGrant| g.spec.clients.to_vec()),
            grants_by_namespace: Index::new(namespace_of::<AccessGrant>),
            links_by_namespace: Index::new(namespace_of::<ClientLink>),
            links_by_partner: Index::new(|l: &ClientLink| vec![l.spec.partner.clone()]),
            roles_by_namespace: Index::new(namespace_of::<Role>),
            bindings_by_namespace: Index::new(namespace_of::<RoleBinding>),
            accounts_by_client: Index::new(|account: &ServiceAccount| {
                client_served_by(account).into_iter().collect()
            }),
            requests_by_client: Index::new(|request: &AccessRequest| vec![request.spec.client.clone()]),
            approvals_by_namespace: Index::new(namespace_of::<AccessApproval>),
        }
    }
}
