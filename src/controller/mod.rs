//! Wiring: one shared watch per kind, three controllers subscribed to them.
//!
//! Each controller is re-triggered by what its verdicts depend on: a link by the grants that
//! name its namespace, its partner, its namespace's labels, the roles its levels use and the
//! ceiling; a grant by its clients' links and its partner; a partner by its links and grants.

mod shared;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::core::PartialObjectMeta;
use kube::runtime::Controller;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use self::shared::{Feed, Watched, only, paged, watched, watched_as, watched_into};
use crate::api::{AccessApproval, AccessGrant, AccessRequest, ClientLink, Partner};
use crate::compact::{GrantBindings, LevelRoles};
use crate::desired::names;
use crate::grant_statuses::GrantStatuses;
use crate::materialize::RecentWrites;
use crate::metrics::Metrics;
use crate::namespace_labels::NamespaceLabels;
use crate::reconcile::{self, Caches, Context, Indexes, Settings};
use crate::resync;
use crate::summaries::{LinkGrants, PartnerClients};

/// How long a link's list of grants, and a partner's counts of clients, grants and people,
/// lag behind the grants (each grant's own status is written as soon as it is bound). A burst
/// of grants rewrote them with each grant that landed more than this apart: at 5,000 grants
/// arriving over 45 s, 0.65 link and 0.27 partner status writes per grant with 1 s.
const SUMMARY_DELAY: std::time::Duration = std::time::Duration::from_secs(5);
/// The longest they lag while Liaison is still writing access: at 10,000 grants, links' status
/// writes fell from 0.65 to 0.44 per grant with 30 s, and every binding existed 16–25 % sooner
/// (docs/benchmarks.md, eleventh session).
const SUMMARY_LONGEST_DELAY: std::time::Duration = std::time::Duration::from_secs(30);
/// The longest a write is held back because the caches have not shown the same write yet.
const RECENT_WRITES_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// How many objects of one kind are reconciled at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Links and partners: they write and remove access.
    pub concurrency: u16,
    /// How often objects whose owner vanished are looked for.
    pub sweep_interval: std::time::Duration,
}

impl Limits {
    /// Grants only report (and hold their finalizer): links write and prune every binding, a
    /// deleted grant's included. Under a burst the API server is the bottleneck, and grants
    /// reconciled as concurrently as links kept as many writes in flight as the bindings
    /// (finalizers and statuses, `Pending` ones among them). At a quarter, bindings come first
    /// and a grant reconciled after its binding landed writes its status once: at 10,000
    /// grants every binding existed after 62 s instead of 102 s, and every grant was `Ready`
    /// after 91 s instead of 102 s (docs/benchmarks.md, tenth session).
    pub fn grant_concurrency(&self) -> u16 {
        (self.concurrency / 4).max(1)
    }
}

/// Becomes true once every cache has been filled from the API server.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
    fn set(&self) {
        self.0.store(true, Ordering::Release)
    }
}

/// Every watch the controllers share, and the caches kept from them.
struct Watches {
    partners: Watched<Partner>,
    links: Watched<ClientLink>,
    grants: Watched<AccessGrant>,
    namespaces: Feed<PartialObjectMeta<Namespace>>,
    cluster_roles: Watched<ClusterRole>,
    roles: Watched<Role>,
    level_roles: Feed<Role>,
    role_bindings: Watched<RoleBinding>,
    grant_bindings: Feed<RoleBinding>,
    service_accounts: Watched<ServiceAccount>,
    cluster_role_bindings: Watched<ClusterRoleBinding>,
    requests: Watched<AccessRequest>,
    approvals: Watched<AccessApproval>,
    caches: Caches,
    recent: Arc<RecentWrites>,
    grant_statuses: Arc<GrantStatuses>,
    link_grants: Arc<LinkGrants>,
    partner_clients: Arc<PartnerClients>,
}

impl Watches {
    /// Sets up every watch; each one's driver is pushed to `drivers`.
    fn start(client: &Client, drivers: &mut Vec<BoxFuture<'static, ()>>) -> Watches {
        let all = paged();
        let managed = paged().labels(&names::managed_selector(None));
        let by = Indexes::default();
        let recent = Arc::new(RecentWrites::new(RECENT_WRITES_TTL));

        let partner_clients = Arc::new(PartnerClients::default());
        let partners = watched_as(Api::<Partner>::all(client.clone()), all.clone(), drivers, vec![], recent.clone(), {
            let lists = partner_clients.clone();
            move |event| lists.observe(event)
        });
        let link_grants = Arc::new(LinkGrants::default());
        let link_indexes = vec![by.links_by_namespace.clone(), by.links_by_partner.clone()];
        let links = watched_as(Api::<ClientLink>::all(client.clone()), all.clone(), drivers, link_indexes, recent.clone(), {
            let lists = link_grants.clone();
            move |event| lists.observe(event)
        });
        let grant_statuses = Arc::new(GrantStatuses::default());
        let grant_indexes = vec![by.grants_by_client.clone(), by.grants_by_namespace.clone()];
        let grants = watched_as(Api::<AccessGrant>::all(client.clone()), all.clone(), drivers, grant_indexes, recent.clone(), {
            let statuses = grant_statuses.clone();
            move |event| statuses.observe(event)
        });
        // Namespaces are watched as metadata only, and kept as their labels: all the rules read.
        let namespace_labels = Arc::new(NamespaceLabels::default());
        let namespaces = watched_into(Api::<PartialObjectMeta<Namespace>>::all(client.clone()), all.clone(), drivers, recent.clone(), {
            let cache = namespace_labels.clone();
            move |event| cache.apply(event)
        });
        let managed_namespaces = watched(Api::<Namespace>::all(client.clone()), managed.clone(), drivers, vec![], recent.clone());
        let cluster_roles = watched(Api::<ClusterRole>::all(client.clone()), all, drivers, vec![], recent.clone());
        // Every Role, not only Liaison's (access levels may name any Role of a client namespace),
        // but level Roles, one per link and level: those go to their compact cache.
        let not_level_roles = paged().labels(&format!("{}!={}", names::COMPONENT, names::Component::LevelRole.as_str()));
        let roles =
            watched(Api::<Role>::all(client.clone()), not_level_roles, drivers, vec![by.roles_by_namespace.clone()], recent.clone());
        let level_role_cache = Arc::new(LevelRoles::default());
        let level_roles = watched_into(Api::all(client.clone()), only(names::Component::LevelRole), drivers, recent.clone(), {
            let cache = level_role_cache.clone();
            move |event| cache.apply(event)
        });
        // Grant bindings, the bulk, go to their compact cache; the few others to kube's.
        let others = paged().labels(&names::managed_selector_except(names::Component::GrantBinding));
        let binding_indexes = vec![by.bindings_by_namespace.clone()];
        let role_bindings = watched(Api::<RoleBinding>::all(client.clone()), others, drivers, binding_indexes, recent.clone());
        let grant_binding_cache = Arc::new(GrantBindings::default());
        let grant_bindings = watched_into(Api::all(client.clone()), only(names::Component::GrantBinding), drivers, recent.clone(), {
            let cache = grant_binding_cache.clone();
            move |event| cache.apply(event)
        });
        let account_indexes = vec![by.accounts_by_client.clone()];
        let service_accounts =
            watched(Api::<ServiceAccount>::all(client.clone()), managed.clone(), drivers, account_indexes, recent.clone());
        let cluster_role_bindings = watched(Api::<ClusterRoleBinding>::all(client.clone()), managed, drivers, vec![], recent.clone());
        let requests =
            watched(Api::<AccessRequest>::all(client.clone()), paged(), drivers, vec![by.requests_by_client.clone()], recent.clone());
        let approvals =
            watched(Api::<AccessApproval>::all(client.clone()), paged(), drivers, vec![by.approvals_by_namespace.clone()], recent.clone());

        let caches = Caches {
            partners: partners.store.clone(),
            links: links.store.clone(),
            grants: grants.store.clone(),
            namespaces: namespace_labels,
            cluster_roles: cluster_roles.store.clone(),
            roles: roles.store.clone(),
            role_bindings: role_bindings.store.clone(),
            grant_bindings: grant_binding_cache,
            level_roles: level_role_cache,
            service_accounts: service_accounts.store.clone(),
            cluster_role_bindings: cluster_role_bindings.store.clone(),
            managed_namespaces: managed_namespaces.store.clone(),
            requests: requests.store.clone(),
            approvals: approvals.store.clone(),
            by,
        };
        Watches {
            partners,
            links,
            grants,
            namespaces,
            cluster_roles,
            roles,
            level_roles,
            role_bindings,
            grant_bindings,
            service_accounts,
            cluster_role_bindings,
            requests,
            approvals,
            caches,
            recent,
            grant_statuses,
            link_grants,
            partner_clients,
        }
    }

    /// What every reconcile shares.
    fn context(&self, client: Client, settings: Settings, metrics: Metrics) -> Context {
        let access_writes = Arc::new(reconcile::status::AccessWrites::default());
        Context {
            events: crate::events::Publisher::new(client.clone(), "liaison", std::env::var("POD_NAME").ok()),
            client,
            caches: self.caches.clone(),
            settings,
            metrics,
            link_summaries: reconcile::status::SummaryWrites::new(SUMMARY_DELAY, SUMMARY_LONGEST_DELAY, access_writes.clone()),
            partner_summaries: reconcile::status::SummaryWrites::new(SUMMARY_DELAY, SUMMARY_LONGEST_DELAY, access_writes.clone()),
            access_writes,
            recent_writes: self.recent.clone(),
            plans: reconcile::context::PlanBudget::new(),
            grant_statuses: self.grant_statuses.clone(),
            link_grants: self.link_grants.clone(),
            partner_clients: self.partner_clients.clone(),
            failures: Default::default(),
        }
    }
}

/// Runs the three controllers until `shutdown` turns true.
pub async fn run(
    client: Client,
    settings: Settings,
    limits: Limits,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: watch::Receiver<bool>,
) {
    let mut drivers = Vec::new();
    let watches = Watches::start(&client, &mut drivers);
    drivers.push(mark_ready_when_synced(watches.caches.clone(), readiness.clone()).boxed());
    let ctx = Arc::new(watches.context(client, settings, metrics));
    let config = ControllerConfig::default().concurrency(limits.concurrency);
    let controllers = futures::future::join3(
        link_controller(&watches, ctx.clone(), config.clone(), &readiness, &shutdown),
        grant_controller(&watches, ctx.clone(), config.clone().concurrency(limits.grant_concurrency()), &readiness, &shutdown),
        // A partner's status only summarizes its links and grants, and each grant arriving
        // would rewrite it: coalesce bursts. Links and grants react at once (revocation).
        partner_controller(&watches, ctx.clone(), config.debounce(std::time::Duration::from_secs(1)), &readiness, &shutdown),
    );
    drivers.push(sweep_periodically(ctx, readiness, limits.sweep_interval).boxed());
    // The watches end only with the process; the controllers end on shutdown.
    tokio::select! {
        _ = futures::future::join_all(drivers) => {},
        _ = controllers => {},
    }
}

/// Links write and prune access: re-planned by whatever a namespace's plan reads.
fn link_controller(
    watches: &Watches,
    ctx: Arc<Context>,
    config: ControllerConfig,
    readiness: &Readiness,
    shutdown: &watch::Receiver<bool>,
) -> BoxFuture<'static, ()> {
    let caches = &watches.caches;
    let (partner_links, cr_links) = (caches.links.clone(), caches.links.clone());
    let (partner_store, home_partners, home_links) = (caches.partners.clone(), caches.partners.clone(), caches.links.clone());
    let (by_grant, by_ns, by_ns_role) = (caches.clone(), caches.clone(), caches.clone());
    let (made_roles, made_bindings, made_grants, made_keys) = (caches.clone(), caches.clone(), caches.clone(), caches.clone());
    let ceiling = ctx.settings.ceiling.clone();
    let (asked, answered) = (caches.clone(), caches.clone());
    Controller::for_shared_stream(watches.links.subscribe(), caches.links.clone())
        .with_config(config)
        .reconcile_on(resync::walk(caches.links.clone(), ctx.settings.resync))
        // What Liaison made in a namespace brings back the namespace's links: found by the
        // namespace, not by owner references, which a client admin can remove.
        .watches_shared_stream(watches.level_roles.subscribe(), move |role| links_in(&made_roles, &role.namespace().unwrap_or_default()))
        .watches_shared_stream(watches.role_bindings.subscribe(), move |rb| links_in(&made_bindings, &rb.namespace().unwrap_or_default()))
        .watches_shared_stream(watches.grant_bindings.subscribe(), move |rb| links_in(&made_grants, &rb.namespace().unwrap_or_default()))
        // A key's account lives in the partner's home; its label names the client it serves.
        .watches_shared_stream(watches.service_accounts.subscribe(), move |sa| {
            links_in(&made_keys, &reconcile::context::client_served_by(&sa).unwrap_or_default())
        })
        .watches_shared_stream(watches.grants.subscribe_spec_changes(), move |grant| {
            // The namespaces it names now, and those where it still has bindings: a client
            // dropped from the grant must lose its binding.
            let uid = grant.uid().unwrap_or_default();
            let mut namespaces: BTreeSet<String> = grant.spec.clients.iter().cloned().collect();
            namespaces.extend(by_grant.grant_bindings.namespaces_of_grant(&uid));
            namespaces.iter().flat_map(|ns| links_in(&by_grant, ns)).collect::<Vec<_>>()
        })
        // A partner's standing comes from its spec, age and deletion, never its status:
        // each status write re-planned every namespace of its links.
        .watches_shared_stream(watches.partners.subscribe_spec_changes(), move |partner| {
            // Partners sharing a home namespace decide each other's standing.
            let home = partner.spec.home_namespace.clone();
            let affected: Vec<String> = partner_store
                .state()
                .iter()
                .filter(|p| p.spec.home_namespace == home)
                .map(|p| p.name_any())
                .chain([partner.name_any()])
                .collect();
            links_where(&partner_links, |l| affected.contains(&l.spec.partner))
        })
        // A namespace's labels decide its own links, and, marking a home, the links of the
        // partner whose home it is.
        .watches_shared_stream(watches.namespaces.subscribe(), move |ns| {
            let name = ns.name_any();
            let homed: Vec<String> = home_partners.state().iter().filter(|p| p.spec.home_namespace == name).map(|p| p.name_any()).collect();
            let mut links = links_in(&by_ns, &name);
            if !homed.is_empty() {
                links.extend(links_where(&home_links, |l| homed.contains(&l.spec.partner)));
            }
            links
        })
        .watches_shared_stream(watches.roles.subscribe(), move |role| {
            let name = role.name_any();
            let uses_role = |l: &ClientLink| l.spec.access_levels.iter().any(|lv| lv.role.as_deref() == Some(name.as_str()));
            let in_namespace = by_ns_role.by.links_by_namespace.get(&role.namespace().unwrap_or_default(), &by_ns_role.links);
            in_namespace.iter().filter(|l| uses_role(l)).map(|l| ObjectRef::from_obj(l.as_ref())).collect::<Vec<_>>()
        })
        .watches_shared_stream(watches.cluster_roles.subscribe(), move |cr| {
            let name = cr.name_any();
            let is_ceiling = name == ceiling;
            links_where(&cr_links, |l| is_ceiling || uses_cluster_role(l, &name))
        })
        // Requests for on-request levels and their answers: the client's link binds and unbinds.
        .watches_shared_stream(watches.requests.subscribe(), move |request| links_in(&asked, &request.spec.client))
        .watches_shared_stream(watches.approvals.subscribe(), move |approval| {
            links_in(&answered, &approval.namespace().unwrap_or_default())
        })
        .graceful_shutdown_on(stopped(shutdown.clone()))
        .run(gated(reconcile::client_link::reconcile, readiness.clone()), reconcile::error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .boxed()
}

/// Grants report whether they are in force: looked at again when a link, partner, role or
/// binding they depend on changes.
fn grant_controller(
    watches: &Watches,
    ctx: Arc<Context>,
    config: ControllerConfig,
    readiness: &Readiness,
    shutdown: &watch::Receiver<bool>,
) -> BoxFuture<'static, ()> {
    let caches = &watches.caches;
    let by_home = caches.clone();
    let (by_link, by_ns, by_role, by_level, by_cr) = (caches.clone(), caches.clone(), caches.clone(), caches.clone(), caches.clone());
    let by_failing = caches.clone();
    let link_store = caches.links.clone();
    let ceiling = ctx.settings.ceiling.clone();
    let asked_requests = caches.requests.clone();
    Controller::for_shared_stream(watches.grants.subscribe(), caches.grants.clone())
        .with_config(config)
        .reconcile_on(resync::walk(caches.grants.clone(), ctx.settings.resync))
        .watches_shared_stream(watches.links.subscribe_spec_changes(), move |link| {
            grants_naming(&by_link, &link.namespace().unwrap_or_default())
        })
        // A link whose writes keep failing says so in its status; its grants waiting for a
        // binding then say which link to ask. Other status changes of links are not news here.
        .watches_shared_stream(watches.links.subscribe(), move |link| match reconcile::failures::reported_by(&link) {
            Some(_) => grants_naming(&by_failing, &link.namespace().unwrap_or_default()),
            None => vec![],
        })
        // A grant reports `Granted` once its binding is in place: the binding's arrival is
        // what completes it. Labels only pick which grant to look at again.
        .watches_shared_stream(watches.grant_bindings.subscribe(), |binding| {
            let labels = binding.labels();
            let grant = labels.get(names::ACCESS_GRANT).zip(labels.get(names::GRANT_NAMESPACE));
            grant.map(|(name, namespace)| ObjectRef::new(name).within(namespace))
        })
        // Not its status: each write of it re-checked every grant of the partner's home.
        .watches_shared_stream(watches.partners.subscribe_spec_changes(), move |partner| {
            let at_home = by_home.by.grants_by_namespace.get(&partner.spec.home_namespace, &by_home.grants);
            at_home.iter().map(|g| ObjectRef::from_obj(g.as_ref())).collect::<Vec<_>>()
        })
        // Its clients' labels, and its own home's mark.
        .watches_shared_stream(watches.namespaces.subscribe(), move |ns| {
            let mut grants = grants_naming(&by_ns, &ns.name_any());
            let at_home = by_ns.by.grants_by_namespace.get(&ns.name_any(), &by_ns.grants);
            grants.extend(at_home.iter().map(|g| ObjectRef::from_obj(g.as_ref())));
            grants
        })
        .watches_shared_stream(watches.requests.subscribe(), |request| {
            [ObjectRef::new(&request.spec.grant).within(&request.namespace().unwrap_or_default())]
        })
        .watches_shared_stream(watches.approvals.subscribe(), move |approval| {
            // The grant of the request answered.
            let asked = &approval.spec.request;
            let request = asked_requests.get(&ObjectRef::new(&asked.name).within(&asked.namespace));
            request.map(|r| ObjectRef::new(&r.spec.grant).within(&asked.namespace))
        })
        .watches_shared_stream(watches.roles.subscribe(), move |role| grants_naming(&by_role, &role.namespace().unwrap_or_default()))
        // A grant reports `Granted` once the level Role it binds is in place too.
        .watches_shared_stream(watches.level_roles.subscribe(), move |role| grants_naming(&by_level, &role.namespace().unwrap_or_default()))
        .watches_shared_stream(watches.cluster_roles.subscribe(), move |cr| {
            let name = cr.name_any();
            let is_ceiling = name == ceiling;
            let using: BTreeSet<String> =
                link_store.state().iter().filter(|l| is_ceiling || uses_cluster_role(l, &name)).filter_map(|l| l.namespace()).collect();
            using.iter().flat_map(|ns| grants_naming(&by_cr, ns)).collect::<Vec<_>>()
        })
        .graceful_shutdown_on(stopped(shutdown.clone()))
        .run(gated(reconcile::access_grant::reconcile, readiness.clone()), reconcile::error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .boxed()
}

/// Partners keep their home's objects and summarize their links and grants.
fn partner_controller(
    watches: &Watches,
    ctx: Arc<Context>,
    config: ControllerConfig,
    readiness: &Readiness,
    shutdown: &watch::Receiver<bool>,
) -> BoxFuture<'static, ()> {
    let partners = &watches.caches.partners;
    let (link_partners, grant_partners, ns_partners) = (partners.clone(), partners.clone(), partners.clone());
    Controller::for_shared_stream(watches.partners.subscribe(), partners.clone())
        .with_config(config)
        .reconcile_on(resync::walk(partners.clone(), ctx.settings.resync))
        .owns_shared_stream(watches.roles.subscribe())
        .owns_shared_stream(watches.role_bindings.subscribe())
        .owns_shared_stream(watches.cluster_roles.subscribe())
        .owns_shared_stream(watches.cluster_role_bindings.subscribe())
        // Its links, and any link in its home, which a home must not hold.
        .watches_shared_stream(watches.links.subscribe(), move |link| {
            let ns = link.namespace().unwrap_or_default();
            partners_where(&link_partners, |p| p.name_any() == link.spec.partner || p.spec.home_namespace == ns)
        })
        .watches_shared_stream(watches.grants.subscribe_spec_changes(), move |grant| {
            let ns = grant.namespace();
            partners_where(&grant_partners, |p| Some(&p.spec.home_namespace) == ns.as_ref())
        })
        .watches_shared_stream(watches.namespaces.subscribe(), move |ns| {
            let name = ns.name_any();
            partners_where(&ns_partners, |p| p.spec.home_namespace == name)
        })
        .graceful_shutdown_on(stopped(shutdown.clone()))
        .run(gated(reconcile::partner::reconcile, readiness.clone()), reconcile::error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .boxed()
}

/// Whether one of the link's levels names ClusterRole `name`.
fn uses_cluster_role(link: &ClientLink, name: &str) -> bool {
    link.spec.access_levels.iter().any(|level| level.cluster_role.as_deref() == Some(name))
}

fn links_where(store: &Store<ClientLink>, keep: impl Fn(&ClientLink) -> bool) -> Vec<ObjectRef<ClientLink>> {
    store.state().iter().filter(|l| keep(l)).map(|l| ObjectRef::from_obj(l.as_ref())).collect()
}

fn links_in(caches: &Caches, namespace: &str) -> Vec<ObjectRef<ClientLink>> {
    caches.by.links_by_namespace.get(namespace, &caches.links).iter().map(|l| ObjectRef::from_obj(l.as_ref())).collect()
}

fn grants_naming(caches: &Caches, namespace: &str) -> Vec<ObjectRef<AccessGrant>> {
    caches.by.grants_by_client.get(namespace, &caches.grants).iter().map(|g| ObjectRef::from_obj(g.as_ref())).collect()
}

fn partners_where(store: &Store<Partner>, keep: impl Fn(&Partner) -> bool) -> Vec<ObjectRef<Partner>> {
    store.state().iter().filter(|p| keep(p)).map(|p| ObjectRef::from_obj(p.as_ref())).collect()
}

async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// A plan computed from half-filled caches would prune real access: until every cache is
/// synced, reconciles only come back later.
fn gated<K, F, Fut>(
    reconcile: F,
    readiness: Readiness,
) -> impl Fn(Arc<K>, Arc<Context>) -> BoxFuture<'static, Result<Action, reconcile::Error>>
where
    K: Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Action, reconcile::Error>> + Send + 'static,
{
    move |object, ctx| {
        if readiness.is_ready() {
            reconcile(object, ctx).boxed()
        } else {
            futures::future::ready(Ok(Action::requeue(std::time::Duration::from_millis(250)))).boxed()
        }
    }
}

async fn mark_ready_when_synced(caches: Caches, readiness: Readiness) {
    let synced = futures::future::join_all([
        caches.partners.wait_until_ready().boxed(),
        caches.links.wait_until_ready().boxed(),
        caches.grants.wait_until_ready().boxed(),
        caches.cluster_roles.wait_until_ready().boxed(),
        caches.roles.wait_until_ready().boxed(),
        caches.role_bindings.wait_until_ready().boxed(),
        async {
            caches.grant_bindings.wait_until_ready().await;
            caches.level_roles.wait_until_ready().await;
            caches.namespaces.wait_until_ready().await;
            Ok(())
        }
        .boxed(),
        caches.service_accounts.wait_until_ready().boxed(),
        caches.cluster_role_bindings.wait_until_ready().boxed(),
        caches.managed_namespaces.wait_until_ready().boxed(),
        caches.requests.wait_until_ready().boxed(),
        caches.approvals.wait_until_ready().boxed(),
    ])
    .await;
    if synced.iter().all(Result::is_ok) {
        tracing::info!("caches synced; reconciling");
        readiness.set();
    }
    // Keep this driver alive like the watches.
    futures::future::pending::<()>().await;
}

/// Removes, every `interval`, what Liaison made for owners that no longer exist.
async fn sweep_periodically(ctx: Arc<Context>, readiness: Readiness, interval: std::time::Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !readiness.is_ready() {
            continue;
        }
        if let Err(error) = sweep(&ctx).await {
            tracing::warn!(%error, "sweeping orphaned objects failed; trying again next time");
        }
    }
}

async fn sweep(ctx: &Context) -> Result<(), crate::materialize::Error> {
    use crate::materialize::{prune_cached, prune_named, sweep::is_orphan};
    let caches = &ctx.caches;
    let live: std::collections::BTreeSet<String> =
        caches.links.state().iter().filter_map(|l| l.uid()).chain(caches.partners.state().iter().filter_map(|p| p.uid())).collect();
    let (client, metrics) = (&ctx.client, &ctx.metrics);
    let removed = prune_cached(client, caches.role_bindings.state(), |o: &RoleBinding| is_orphan(&o.metadata, &live), metrics).await?
        + prune_cached(client, caches.cluster_role_bindings.state(), |o: &ClusterRoleBinding| is_orphan(&o.metadata, &live), metrics)
            .await?
        + prune_cached(client, caches.service_accounts.state(), |o: &ServiceAccount| is_orphan(&o.metadata, &live), metrics).await?
        + prune_cached(client, caches.roles.state(), |o: &Role| is_orphan(&o.metadata, &live), metrics).await?
        + prune_cached(client, caches.cluster_roles.state(), |o: &ClusterRole| is_orphan(&o.metadata, &live), metrics).await?
        + prune_named::<RoleBinding>(client, caches.grant_bindings.orphans(&live), metrics).await?
        + prune_named::<Role>(client, caches.level_roles.orphans(&live), metrics).await?;
    if removed > 0 {
        tracing::info!(removed, "removed objects whose owner no longer exists");
    }
    let grant_bindings = caches.grant_bindings.len();
    let granted = caches.grants.state().iter().filter(|g| g.status.as_ref().is_some_and(|s| s.granted_clients > 0)).count();
    metrics.active_bindings.set(grant_bindings as i64);
    metrics.active_grants.set(granted as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_reconcile_at_a_quarter_of_the_links_concurrency_and_never_stop() {
        let limits = |concurrency| Limits { concurrency, sweep_interval: std::time::Duration::from_secs(1) };
        assert_eq!(limits(16).grant_concurrency(), 4);
        assert_eq!(limits(8).grant_concurrency(), 2);
        assert_eq!(limits(3).grant_concurrency(), 1);
        assert_eq!(limits(1).grant_concurrency(), 1);
    }
}
