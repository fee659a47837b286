//! What every reconciler shares: the client, the caches, the settings, the Event publisher.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};

use crate::api::{AccessApproval, AccessGrant, AccessRequest, ClientLink, Partner};
use crate::cache::Caches;
use crate::cache::views::CachedPartner;
use crate::desired::request::Requests;
use crate::desired::{ClientInputs, ClientPlan, client, plan_client_with};
use crate::materialize::access_key::KeySettings;
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct Settings {
    /// The ClusterRole that bounds every access level.
    pub ceiling: String,
    pub access_key: KeySettings,
    /// How the operator reaches access key Secrets: it holds no Secret access cluster-wide,
    /// only in partner home namespaces, through a binding it makes there for itself.
    pub home_access: Option<crate::desired::partner::HomeAccess>,
    /// The period in which every object is reconciled again anyway (`crate::controller::resync`).
    pub resync: std::time::Duration,
    /// The namespace the operator runs in: never a partner's home.
    pub operator_namespace: Option<String>,
}

pub struct Context {
    pub client: Client,
    pub caches: Caches,
    pub settings: Settings,
    pub events: crate::events::Publisher,
    pub metrics: Metrics,
    /// Link summaries coalesced over bursts of grants.
    pub link_summaries: super::status::SummaryWrites,
    pub partner_summaries: super::status::SummaryWrites,
    /// When access was last written: summaries wait for a pause.
    pub access_writes: Arc<super::status::AccessWrites>,
    /// Every write and removal of materialized objects.
    pub writer: crate::materialize::Writer,
    pub plans: PlanBudget,
    /// Objects whose reconciles keep failing: their retry waits, and what their users were told.
    pub failures: super::failures::Failures,
    /// Links reconciled without a finalizer (refused, never granted) write at most this many
    /// statuses and Events at once (`client_link::REFUSALS_AT_ONCE`).
    pub refusals: tokio::sync::Semaphore,
    /// How fast each namespace's refused links are told (`client_link::REFUSALS_PER_SECOND`).
    pub refusal_pace: super::pace::Pace,
}

/// Bounds the memory of the namespace plans in flight. A plan holds a RoleBinding (about 3 KB)
/// for every grant naming its namespace; sixteen reconciles planning namespaces that 100 grants
/// name held 4.5 MB at once, and namespaces named by 1,000 grants would have held 45 MB. Each
/// plan takes a permit per grant: at least one, at most the whole budget (so it still runs, alone).
pub struct PlanBudget(tokio::sync::Semaphore);

impl PlanBudget {
    /// Grants planned at once: under 1 MB of planned bindings (the full-size benchmark peaks
    /// while its twenty namespaces of 100 grants each are planned).
    pub const GRANTS: usize = 256;

    pub fn new() -> PlanBudget {
        PlanBudget(tokio::sync::Semaphore::new(Self::GRANTS))
    }

    /// Waits until a plan for `grants` grants fits; the permit returns the room when dropped.
    pub async fn reserve(&self, grants: usize) -> tokio::sync::SemaphorePermit<'_> {
        self.0.acquire_many(Self::cost(grants)).await.expect("the plan budget is never closed")
    }

    fn cost(grants: usize) -> u32 {
        grants.clamp(1, Self::GRANTS) as u32
    }
}

impl Default for PlanBudget {
    fn default() -> Self {
        Self::new()
    }
}

/// The inputs of `desired::client::plan` for one namespace, owned.
pub struct ClientWorld {
    pub namespace: String,
    pub namespace_labels: BTreeMap<String, String>,
    pub links: Vec<ClientLink>,
    pub partners: Vec<Partner>,
    /// The home namespaces of `partners`, by the UID they are marked with.
    pub homes: BTreeMap<String, String>,
    pub grants: Vec<Arc<AccessGrant>>,
    pub roles: BTreeMap<String, Vec<PolicyRule>>,
    pub cluster_roles: BTreeMap<String, Vec<PolicyRule>>,
    /// The ceiling ClusterRole as cached (shared, not copied: aggregated, it is the largest
    /// role the rules read, and every plan reads it).
    pub ceiling: Option<Arc<ClusterRole>>,
    pub requests: Vec<Arc<AccessRequest>>,
    pub approvals: Vec<Arc<AccessApproval>>,
}

impl ClientWorld {
    /// The namespace's plan at `now`, on-request access included.
    pub fn plan(&self, now: Timestamp) -> ClientPlan {
        plan_client_with(&self.inputs(now), Requests { requests: &self.requests, approvals: &self.approvals })
    }

    pub fn inputs(&self, now: Timestamp) -> ClientInputs<'_> {
        ClientInputs {
            namespace: &self.namespace,
            namespace_labels: &self.namespace_labels,
            links: &self.links,
            partners: &self.partners,
            homes: &self.homes,
            grants: &self.grants,
            roles: &self.roles,
            cluster_roles: &self.cluster_roles,
            // A ceiling without rules exists and allows nothing; only a missing one is `None`.
            ceiling: self.ceiling.as_deref().map(|c| c.rules.as_deref().unwrap_or_default()),
            now,
        }
    }
}

impl Context {
    fn links_for_the_rules(&self, namespace: &str) -> Vec<ClientLink> {
        let mut links: Vec<ClientLink> = self
            .caches
            .by
            .links_by_namespace
            .get(namespace, &self.caches.links)
            .iter()
            .map(|l| l.for_the_rules())
            .collect();
        links.sort_by_key(|l| l.name_any());
        links
    }

    /// The grants naming `namespace`, as cached: the rules read nothing the cache leaves out of
    /// them (`crate::cache::views::Cached::trimmed`).
    pub fn grants_naming(&self, namespace: &str) -> Vec<Arc<AccessGrant>> {
        let mut grants = self.caches.by.grants_by_client.get(namespace, &self.caches.grants);
        grants.sort_by_key(|g| (g.namespace(), g.name_any()));
        grants
    }

    /// The partners claiming `home`: they decide each other's standing.
    pub fn partners_at_home(&self, home: &str) -> Vec<Partner> {
        let mut partners: Vec<Partner> = self
            .caches
            .partners
            .state()
            .iter()
            .filter(|p| p.spec.home_namespace == home)
            .map(|p| p.for_the_rules())
            .collect();
        partners.sort_by_key(|p| p.name_any());
        partners
    }

    /// The partners the rules of a namespace can consult: those its links name, and those
    /// sharing their home namespaces (which decide their standing). Copying only these keeps a
    /// reconcile's cost independent of how many partners the cluster has.
    pub fn partners_for(&self, links: &[ClientLink]) -> Vec<Partner> {
        let named: Vec<CachedPartner> =
            links.iter().filter_map(|l| self.caches.partner(&l.spec.partner)).collect();
        let homes: Vec<&str> = named.iter().map(|p| p.spec().home_namespace.as_str()).collect();
        let mut partners: Vec<Partner> = if homes.is_empty() {
            vec![]
        } else {
            self.caches
                .partners
                .state()
                .iter()
                .filter(|p| homes.contains(&p.spec.home_namespace.as_str()))
                .map(|p| p.for_the_rules())
                .collect()
        };
        partners.sort_by_key(|p| p.name_any());
        partners
    }

    /// Waits until the plan budget has room for planning `namespace`, sized by the grants
    /// naming it; planning holds the returned permit.
    pub async fn reserve_plan(&self, namespace: &str) -> tokio::sync::SemaphorePermit<'_> {
        self.plans.reserve(self.caches.by.grants_by_client.count(namespace)).await
    }

    /// Everything the rules need about one client namespace, from the caches.
    pub fn client_world(&self, namespace: &str) -> ClientWorld {
        self.world_with(namespace, self.grants_naming(namespace))
    }

    /// What the rules need to judge one grant in one client namespace: the namespace's world
    /// with that grant alone, or, once the grants naming the namespace could reach a link's
    /// `maxGrants`, with those older than it (`desired::client::judged_with`; a property test
    /// holds the planner to it). Planning all of them for each grant made a grant's reconcile
    /// cost grow with every grant sharing its clients.
    pub fn grant_world(&self, namespace: &str, grant: &Arc<AccessGrant>) -> ClientWorld {
        let links = self.caches.by.links_by_namespace.get(namespace, &self.caches.links);
        let smallest_limit = client::smallest_grant_limit(links.iter().map(AsRef::as_ref));
        if self.caches.by.grants_by_client.count(namespace) <= smallest_limit {
            return self.world_with(namespace, vec![grant.clone()]);
        }
        self.world_with(namespace, client::judged_with(grant, &self.grants_naming(namespace), smallest_limit))
    }

    fn world_with(&self, namespace: &str, grants: Vec<Arc<AccessGrant>>) -> ClientWorld {
        let links = self.links_for_the_rules(namespace);
        let namespace_labels = self.caches.namespaces.of(namespace);
        let mut roles = BTreeMap::new();
        let mut cluster_roles = BTreeMap::new();
        for level in links.iter().flat_map(|l| &l.spec.access_levels) {
            if let Some(role) = &level.role
                && !roles.contains_key(role)
                && let Some(found) = self.caches.roles.get(&ObjectRef::new(role).within(namespace))
            {
                roles.insert(role.clone(), found.rules.clone().unwrap_or_default());
            }
            if let Some(cluster_role) = &level.cluster_role
                && let Some(found) = self.caches.cluster_roles.get(&ObjectRef::new(cluster_role))
            {
                cluster_roles.insert(cluster_role.clone(), found.rules.clone().unwrap_or_default());
            }
        }
        let ceiling = self.caches.cluster_roles.get(&ObjectRef::new(&self.settings.ceiling));
        let partners = self.partners_for(&links);
        let homes = partners
            .iter()
            .filter_map(|p| {
                let home = &p.spec.home_namespace;
                Some((
                    home.clone(),
                    self.caches.namespaces.of(home).remove(crate::desired::names::HOME_OF_UID)?,
                ))
            })
            .collect();
        let requests = self.caches.by.requests_by_client.get(namespace, &self.caches.requests);
        let approvals = self.caches.by.approvals_by_namespace.get(namespace, &self.caches.approvals);
        ClientWorld {
            namespace: namespace.to_string(),
            namespace_labels,
            links,
            partners,
            homes,
            grants,
            roles,
            cluster_roles,
            ceiling,
            requests,
            approvals,
        }
    }
}

/// A copy of an object as the rules read it: metadata and spec. They never read a status, and
/// statuses are where objects grow: a link's lists every grant naming its namespace, a
/// partner's every client with its grants. Copying them for each plan made a grant's reconcile
/// copy thousands of strings once many grants shared many clients. (Grants, the many, are not
/// copied at all: the rules read them from the cache.)
trait ForTheRules {
    fn for_the_rules(&self) -> Self;
}

impl ForTheRules for Partner {
    fn for_the_rules(&self) -> Self {
        Self { metadata: self.metadata.clone(), spec: self.spec.clone(), status: None }
    }
}

/// A link's status holds two things the rules read: the Partner it accepted, and the reviews
/// counted.
impl ForTheRules for ClientLink {
    fn for_the_rules(&self) -> Self {
        let partner_uid = self.status.as_ref().and_then(|s| s.partner_uid.clone());
        let review = self.status.as_ref().and_then(|s| s.review.clone());
        let status = (partner_uid.is_some() || review.is_some()).then(|| crate::api::ClientLinkStatus {
            partner_uid,
            review,
            ..Default::default()
        });
        Self { metadata: self.metadata.clone(), spec: self.spec.clone(), status }
    }
}

#[cfg(test)]
mod tests {
    use super::PlanBudget;

    #[test]
    fn every_plan_fits_the_budget_and_large_ones_take_more_of_it() {
        assert_eq!(PlanBudget::cost(0), 1, "a namespace no grant names is still planned");
        assert_eq!(PlanBudget::cost(100), 100);
        assert_eq!(
            PlanBudget::cost(100_000),
            PlanBudget::GRANTS as u32,
            "it waits for the whole budget, not forever"
        );
    }

    #[tokio::test]
    async fn plans_wait_while_the_budget_is_spent() {
        let budget = PlanBudget::new();
        let large = budget.reserve(200).await;
        let small = budget.reserve(50).await;
        assert!(budget.0.try_acquire_many(PlanBudget::cost(50)).is_err(), "200 + 50 + 50 > 256");
        drop(large);
        assert!(budget.0.try_acquire_many(PlanBudget::cost(50)).is_ok());
        drop(small);
    }
}
