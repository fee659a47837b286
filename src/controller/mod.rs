//! Wiring: one shared watch per kind, four controllers subscribed to them.
//!
//! Each controller is re-triggered by what its verdicts depend on: a link by the grants that
//! name its namespace, its partner, its namespace's labels, the roles its levels use and the
//! ceiling; a grant by its clients' links and its partner; a partner by its links and grants.
//! Revocations have a queue of their own: links revoked outright (deleted, suspended, expired,
//! partner deleted) lose their Roles' rules there, whatever waits in the links' queue.

pub mod backoff;
pub mod resync;
mod shared;
pub mod triggers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::core::PartialObjectMeta;
use kube::runtime::Controller;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::{Api, Client};
use tokio::sync::watch;

use self::shared::{Drivers, Feed, Relists, Watched, only, paged, watched, watched_as, watched_into};
use crate::api::{AccessApproval, AccessGrant, AccessRequest, ClientLink, Partner};
use crate::cache::compact::{GrantBindings, LevelRoles};
use crate::cache::grant_statuses::GrantStatuses;
use crate::cache::namespace_labels::NamespaceLabels;
use crate::cache::{Caches, Indexes};
use crate::desired::names;
use crate::materialize::RecentWrites;
use crate::metrics::Metrics;
use crate::reconcile::{self, Context, Settings};

use crate::cache::summaries::{LinkGrants, PartnerClients};

/// How long a link's list of grants, and a partner's counts of clients, grants and people,
/// lag behind the grants (each grant's own status is written as soon as it is bound). A burst
/// of grants rewrote them with each grant that landed more than this apart: at 5,000 grants
/// arriving over 45 s, 0.65 link and 0.27 partner status writes per grant with 1 s.
const SUMMARY_DELAY: std::time::Duration = std::time::Duration::from_secs(5);
/// The longest they lag while Liaison is still writing access: at 10,000 grants, links' status
/// writes fell from 0.65 to 0.44 per grant with 30 s, and every binding existed 16–25 % sooner
/// (docs/benchmarks.md, eleventh session).
const SUMMARY_LONGEST_DELAY: std::time::Duration = std::time::Duration::from_secs(30);
/// How long in-flight reconciles may finish after a stop is requested (well within a pod's
/// default 30 s termination grace, and the lease duration the tests use).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);
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
    relists: Relists,
}

impl Watches {
    /// Sets up every watch; each one's driver is pushed to `drivers`.
    fn start(client: &Client, drivers: &mut Drivers) -> Watches {
        let all = paged();
        let managed = paged().labels(&names::managed_selector(None));
        let by = Indexes::default();
        let recent = Arc::new(RecentWrites::new(RECENT_WRITES_TTL));

        let partner_clients = Arc::new(PartnerClients::default());
        let partners =
            watched_as(Api::<Partner>::all(client.clone()), all.clone(), drivers, vec![], recent.clone(), {
                let lists = partner_clients.clone();
                move |event| lists.observe(event)
            });
        let link_grants = Arc::new(LinkGrants::default());
        let link_indexes = vec![by.links_by_namespace.clone(), by.links_by_partner.clone()];
        let links = watched_as(
            Api::<ClientLink>::all(client.clone()),
            all.clone(),
            drivers,
            link_indexes,
            recent.clone(),
            {
                let lists = link_grants.clone();
                move |event| lists.observe(event)
            },
        );
        let grant_statuses = Arc::new(GrantStatuses::default());
        let grant_indexes = vec![by.grants_by_client.clone(), by.grants_by_namespace.clone()];
        let grants = watched_as(
            Api::<AccessGrant>::all(client.clone()),
            all.clone(),
            drivers,
            grant_indexes,
            recent.clone(),
            {
                let statuses = grant_statuses.clone();
                move |event| statuses.observe(event)
            },
        );
        // Namespaces are watched as metadata only, and kept as their labels: all the rules read.
        let namespace_labels = Arc::new(NamespaceLabels::default());
        let namespaces = watched_into(
            Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
            all.clone(),
            drivers,
            recent.clone(),
            {
                let cache = namespace_labels.clone();
                move |event| cache.apply(event)
            },
        );
        let managed_namespaces =
            watched(Api::<Namespace>::all(client.clone()), managed.clone(), drivers, vec![], recent.clone());
        let cluster_roles =
            watched(Api::<ClusterRole>::all(client.clone()), all, drivers, vec![], recent.clone());
        // Every Role, not only Liaison's (access levels may name any Role of a client namespace),
        // but level Roles, one per link and level: those go to their compact cache.
        let not_level_roles =
            paged().labels(&format!("{}!={}", names::COMPONENT, names::Component::LevelRole.as_str()));
        let roles = watched(
            Api::<Role>::all(client.clone()),
            not_level_roles,
            drivers,
            vec![by.roles_by_namespace.clone()],
            recent.clone(),
        );
        let level_role_cache = Arc::new(LevelRoles::default());
        let level_roles = watched_into(
            Api::all(client.clone()),
            only(names::Component::LevelRole),
            drivers,
            recent.clone(),
            {
                let cache = level_role_cache.clone();
                move |event| cache.apply(event)
            },
        );
        // Grant bindings, the bulk, go to their compact cache; the few others to kube's.
        let others = paged().labels(&names::managed_selector_except(names::Component::GrantBinding));
        let binding_indexes = vec![by.bindings_by_namespace.clone()];
        let role_bindings = watched(
            Api::<RoleBinding>::all(client.clone()),
            others,
            drivers,
            binding_indexes,
            recent.clone(),
        );
        let grant_binding_cache = Arc::new(GrantBindings::default());
        let grant_bindings = watched_into(
            Api::all(client.clone()),
            only(names::Component::GrantBinding),
            drivers,
            recent.clone(),
            {
                let cache = grant_binding_cache.clone();
                move |event| cache.apply(event)
            },
        );
        let account_indexes = vec![by.accounts_by_client.clone()];
        let service_accounts = watched(
            Api::<ServiceAccount>::all(client.clone()),
            managed.clone(),
            drivers,
            account_indexes,
            recent.clone(),
        );
        let cluster_role_bindings =
            watched(Api::<ClusterRoleBinding>::all(client.clone()), managed, drivers, vec![], recent.clone());
        let requests = watched(
            Api::<AccessRequest>::all(client.clone()),
            paged(),
            drivers,
            vec![by.requests_by_client.clone()],
            recent.clone(),
        );
        let approvals = watched(
            Api::<AccessApproval>::all(client.clone()),
            paged(),
            drivers,
            vec![by.approvals_by_namespace.clone()],
            recent.clone(),
        );

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
            grant_statuses,
            link_grants,
            partner_clients,
            holders: Default::default(),
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
            relists: drivers.relists(),
        }
    }

    /// What every reconcile shares.
    fn context(&self, client: Client, settings: Settings, metrics: Metrics) -> Context {
        let access_writes = Arc::new(reconcile::status::AccessWrites::default());
        Context {
            events: crate::events::Publisher::new(client.clone(), "liaison", std::env::var("POD_NAME").ok()),
            writer: crate::materialize::Writer::new(client.clone(), metrics.clone(), self.recent.clone()),
            client,
            caches: self.caches.clone(),
            settings,
            metrics,
            link_summaries: reconcile::status::SummaryWrites::new(
                SUMMARY_DELAY,
                SUMMARY_LONGEST_DELAY,
                access_writes.clone(),
            ),
            partner_summaries: reconcile::status::SummaryWrites::new(
                SUMMARY_DELAY,
                SUMMARY_LONGEST_DELAY,
                access_writes.clone(),
            ),
            access_writes,
            plans: reconcile::context::PlanBudget::new(),
            failures: Default::default(),
            refusals: tokio::sync::Semaphore::new(reconcile::client_link::REFUSALS_AT_ONCE),
            refusal_pace: reconcile::pace::Pace::new(
                reconcile::client_link::REFUSALS_PER_SECOND,
                reconcile::client_link::REFUSALS_TOLD_AT_ONCE,
            ),
        }
    }
}

/// Runs the four controllers until `shutdown` turns true.
pub async fn run(
    client: Client,
    settings: Settings,
    limits: Limits,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: watch::Receiver<bool>,
) {
    let mut drivers = Drivers::default();
    let watches = Watches::start(&client, &mut drivers);
    drivers.push(mark_ready_when_synced(watches.caches.clone(), readiness.clone()).boxed());
    let ctx = Arc::new(watches.context(client, settings, metrics));
    let config = ControllerConfig::default().concurrency(limits.concurrency);
    // Each controller is a task of its own, so the runtime's threads share them: in one task,
    // the links' busy queue (and the watches) held up the revocations' queue with it.
    let controllers = [
        revocation_controller(&watches, ctx.clone(), config.clone(), &readiness, &shutdown),
        link_controller(&watches, ctx.clone(), config.clone(), &readiness, &shutdown),
        grant_controller(
            &watches,
            ctx.clone(),
            config.clone().concurrency(limits.grant_concurrency()),
            &readiness,
            &shutdown,
        ),
        // A partner's status only summarizes its links and grants, and each grant arriving
        // would rewrite it: coalesce bursts. Links and grants react at once (revocation).
        partner_controller(
            &watches,
            ctx.clone(),
            config.debounce(std::time::Duration::from_secs(1)),
            &readiness,
            &shutdown,
        ),
    ];
    let controllers = futures::future::try_join_all(controllers.map(tokio::spawn));
    drivers.push(sweep_periodically(ctx, readiness, limits.sweep_interval).boxed());
    // The watches end only with the process; the controllers end on shutdown, or are left
    // after a grace. A stop in the instant after the lease was won used to hang here for good
    // (kube's lost wake-up, fixed in `drive_controller`); the grace stays as a backstop. What
    // is abandoned then is what a SIGKILL abandons: finalizers and idempotent writes finish it
    // at the next start. (Starting the controllers only once the caches were filled avoided
    // the hang too, but their subscriptions then held a copy of every listed object: a
    // restarted operator peaked at 167 MiB instead of 51 at 10,000 grants.)
    let mut stop = shutdown.clone();
    let grace_over = async move {
        let _ = stop.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        _ = drivers.run() => {},
        finished = controllers => {
            // A controller that panicked takes the process down with it, as it did in one task.
            if let Err(failed) = finished
                && failed.is_panic()
            {
                std::panic::resume_unwind(failed.into_panic());
            }
        }
        _ = grace_over => tracing::warn!(grace = ?SHUTDOWN_GRACE, "controllers still busy after the grace; stopping anyway"),
    }
}

/// Revocation's first write, on a queue of its own (`reconcile::revocation`): only links that
/// are being deleted, are suspended or expire, and the links of a partner that goes, ever wait
/// in it, so another tenant's thousands of links never stand before a revocation. Everything
/// else about the link, its finalizer included, stays with the links' controller.
fn revocation_controller(
    watches: &Watches,
    ctx: Arc<Context>,
    config: ControllerConfig,
    readiness: &Readiness,
    shutdown: &watch::Receiver<bool>,
) -> BoxFuture<'static, ()> {
    let caches = &watches.caches;
    let concerned = watches
        .links
        .subscribe_spec_changes()
        .filter(|link| futures::future::ready(reconcile::revocation::concerns(link)));
    let controller = Controller::for_shared_stream(concerned, caches.links.clone())
        .with_config(config)
        .reconcile_all_on(watches.relists.completed_since())
        .watches_shared_stream(
            watches.partners.subscribe_spec_changes(),
            on(caches, |c, p: Arc<Partner>| triggers::links_of_departing_partner(c, &p)),
        )
        .graceful_shutdown_on(stopped(shutdown.clone()))
        .run(gated(reconcile::revocation::reconcile, readiness.clone()), reconcile::error_policy, ctx);
    drive_controller(controller, readiness.clone())
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
    let ceiling = ctx.settings.ceiling.clone();
    let controller = Controller::for_shared_stream(watches.links.subscribe(), caches.links.clone())
        .with_config(config)
        .reconcile_all_on(watches.relists.completed_since())
        .reconcile_on(resync::walk(caches.links.clone(), ctx.settings.resync))
        .watches_shared_stream(
            watches.links.subscribe_spec_changes(),
            on(caches, |c, link: Arc<ClientLink>| triggers::successor_of_departed(c, &link)),
        )
        .watches_shared_stream(
            watches.links.subscribe_spec_changes(),
            on(caches, |c, link: Arc<ClientLink>| triggers::outranked_by_newcomer(c, &link)),
        )
        .watches_shared_stream(
            watches.level_roles.subscribe(),
            on(caches, |c, role: Arc<Role>| triggers::links_of_made(c, &*role)),
        )
        .watches_shared_stream(
            watches.role_bindings.subscribe(),
            on(caches, |c, rb: Arc<RoleBinding>| triggers::links_of_made(c, &*rb)),
        )
        .watches_shared_stream(
            watches.grant_bindings.subscribe(),
            on(caches, |c, rb: Arc<RoleBinding>| triggers::links_of_made(c, &*rb)),
        )
        .watches_shared_stream(
            watches.service_accounts.subscribe(),
            on(caches, |c, sa: Arc<ServiceAccount>| triggers::links_of_key(c, &sa)),
        )
        .watches_shared_stream(
            watches.grants.subscribe_spec_changes(),
            on(caches, |c, g: Arc<AccessGrant>| triggers::links_of_grant(c, &g)),
        )
        // A partner's standing comes from its spec, age and deletion, never its status:
        // each status write re-planned every namespace of its links.
        .watches_shared_stream(
            watches.partners.subscribe_spec_changes(),
            on(caches, |c, p: Arc<Partner>| triggers::links_of_partner(c, &p)),
        )
        .watches_shared_stream(
            watches.namespaces.subscribe(),
            on(caches, |c, ns| triggers::links_of_namespace(c, &ns)),
        )
        .watches_shared_stream(
            watches.roles.subscribe(),
            on(caches, |c, role: Arc<Role>| triggers::links_using_role(c, &role)),
        )
        .watches_shared_stream(
            watches.cluster_roles.subscribe(),
            on(caches, move |c, cr: Arc<ClusterRole>| triggers::links_using_cluster_role(c, &ceiling, &cr)),
        )
        // Requests for on-request levels and their answers: the client's link binds and unbinds.
        .watches_shared_stream(
            watches.requests.subscribe(),
            on(caches, |c, r: Arc<AccessRequest>| triggers::links_of_request(c, &r)),
        )
        .watches_shared_stream(
            watches.approvals.subscribe(),
            on(caches, |c, a: Arc<AccessApproval>| triggers::links_of_approval(c, &a)),
        )
        .graceful_shutdown_on(stopped(shutdown.clone()))
        .run(gated(reconcile::client_link::reconcile, readiness.clone()), reconcile::error_policy, ctx);
    drive_controller(controller, readiness.clone())
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
    let ceiling = ctx.settings.ceiling.clone();
    let controller = Controller::for_shared_stream(watches.grants.subscribe(), caches.grants.clone())
        .with_config(config)
        .reconcile_all_on(watches.relists.completed_since())
        .reconcile_on(resync::walk(caches.grants.clone(), ctx.settings.resync))
        .watches_shared_stream(
            watches.links.subscribe_spec_changes(),
            on(caches, |c, l: Arc<ClientLink>| triggers::grants_of_link(c, &l)),
        )
        .watches_shared_stream(
            watches.links.subscribe(),
            on(caches, |c, l: Arc<ClientLink>| triggers::grants_of_failing_link(c, &l)),
        )
        .watches_shared_stream(watches.grant_bindings.subscribe(), |rb| triggers::grant_of_binding(&rb))
        // Not its status: each write of it re-checked every grant of the partner's home.
        .watches_shared_stream(
            watches.partners.subscribe_spec_changes(),
            on(caches, |c, p: Arc<Partner>| triggers::grants_of_partner(c, &p)),
        )
        .watches_shared_stream(
            watches.namespaces.subscribe(),
            on(caches, |c, ns| triggers::grants_of_namespace(c, &ns)),
        )
        .watches_shared_stream(
            watches.roles.subscribe(),
            on(caches, |c, role: Arc<Role>| triggers::grants_of_role(c, &role)),
        )
        .watches_shared_stream(watches.requests.subscribe(), |request| triggers::grant_of_request(&request))
        .watches_shared_stream(
            watches.approvals.subscribe(),
            on(caches, |c, a: Arc<AccessApproval>| triggers::grant_of_approval(c, &a).into_iter().collect()),
        )
        // A grant reports `Granted` once the level Role it binds is in place too.
        .watches_shared_stream(
            watches.level_roles.subscribe(),
            on(caches, |c, role: Arc<Role>| triggers::grants_of_role(c, &role)),
        )
        .watches_shared_stream(
            watches.cluster_roles.subscribe(),
            on(caches, move |c, cr: Arc<ClusterRole>| triggers::grants_using_cluster_role(c, &ceiling, &cr)),
        )
        .graceful_shutdown_on(stopped(shutdown.clone()))
        .run(gated(reconcile::access_grant::reconcile, readiness.clone()), reconcile::error_policy, ctx);
    drive_controller(controller, readiness.clone())
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
    let controller = Controller::for_shared_stream(watches.partners.subscribe(), partners.clone())
        .with_config(config)
        .reconcile_all_on(watches.relists.completed_since())
        .reconcile_on(resync::walk(partners.clone(), ctx.settings.resync))
        .owns_shared_stream(watches.roles.subscribe())
        .owns_shared_stream(watches.role_bindings.subscribe())
        .owns_shared_stream(watches.cluster_roles.subscribe())
        .owns_shared_stream(watches.cluster_role_bindings.subscribe())
        .watches_shared_stream(watches.links.subscribe(), move |link| {
            triggers::partners_of_link(&link_partners, &link)
        })
        .watches_shared_stream(watches.grants.subscribe_spec_changes(), move |grant| {
            triggers::partners_of_grant(&grant_partners, &grant)
        })
        .watches_shared_stream(watches.namespaces.subscribe(), move |ns| {
            triggers::partners_of_namespace(&ns_partners, &ns)
        })
        .graceful_shutdown_on(stopped(shutdown.clone()))
        .run(gated(reconcile::partner::reconcile, readiness.clone()), reconcile::error_policy, ctx);
    drive_controller(controller, readiness.clone())
}

/// A trigger as a watch's mapper: `trigger` with its own handle on the caches.
fn on<T, R, F>(caches: &Caches, trigger: F) -> impl Fn(Arc<T>) -> Vec<R> + use<T, R, F>
where
    F: Fn(&Caches, Arc<T>) -> Vec<R>,
{
    let caches = caches.clone();
    move |object| trigger(&caches, object)
}

/// How often a controller is polled again until the caches are synced (`drive_controller`).
const NUDGE: std::time::Duration = std::time::Duration::from_millis(100);

/// Drives a controller until it ends. kube holds a controller's reconciles until its store is
/// ready and learns of that through a one-shot channel, which wakes only the last task that
/// waited on it: with two controllers and the readiness check waiting on one store, the others
/// ran only when something else polled them again (their next trigger). After a stop nothing
/// did, and kube's graceful shutdown waited for them for good (`leader::a_leader_stopped_
/// while_its_caches_fill_exits_at_once`). So each is polled again until the caches are synced.
fn drive_controller<S>(controller: S, readiness: Readiness) -> BoxFuture<'static, ()>
where
    S: futures::Stream + Send + 'static,
{
    let nudges = futures::stream::unfold((readiness, false), |(readiness, synced)| async move {
        if synced {
            return None;
        }
        tokio::time::sleep(NUDGE).await;
        let synced = readiness.is_ready();
        Some(((), (readiness, synced)))
    });
    futures::stream::select(controller.map(|_| ()), nudges).for_each(|_| futures::future::ready(())).boxed()
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
    let caches = &ctx.caches;
    let removed = crate::materialize::orphans::remove(&ctx.writer, caches).await?;
    if removed > 0 {
        tracing::info!(removed, "removed objects whose owner no longer exists");
    }
    let grant_bindings = caches.grant_bindings.len();
    let granted = caches
        .grants
        .state()
        .iter()
        .filter(|g| g.status.as_ref().is_some_and(|s| s.granted_clients > 0))
        .count();
    ctx.metrics.active_bindings.set(grant_bindings as i64);
    ctx.metrics.active_grants.set(granted as i64);
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
