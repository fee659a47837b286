//! Wiring: one shared watch per kind, three controllers subscribed to them.
//!
//! Each controller is re-triggered by what its verdicts depend on: a link by the grants that
//! name its namespace, its partner, its namespace's labels, the roles its levels use and the
//! ceiling; a grant by its clients' links and its partner; a partner by its links and grants.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::sync::Mutex;
use tokio::sync::{mpsc, watch};

use crate::api::{AccessGrant, ClientLink, Partner};
use crate::compact::{GrantBindings, LevelRoles};
use crate::desired::names;
use crate::grant_statuses::GrantStatuses;
use crate::index::Index;
use crate::materialize::RecentWrites;
use crate::materialize::recent::hash_of;
use crate::metrics::Metrics;
use crate::namespace_labels::NamespaceLabels;
use crate::reconcile::{self, Caches, Context, Indexes, Settings};
use crate::resync;
use crate::summaries::{LinkGrants, PartnerClients};
use crate::watch_backoff::Retries;

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

/// One watch of a kind: its cache, and every change (deletions included) fanned out to each
/// subscriber. kube's shared stores forward only applied objects, and an access operator must
/// hear about a deleted binding, grant or partner as surely as about a new one.
///
/// Subscribers share one copy of each object: with four of them per kind, cloning for each
/// multiplied the memory a burst (the first list of 10,000 grants) held in their queues.
struct Watched<K: Resource + Clone + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    feed: Feed<K>,
}

/// The subscribers of one watch.
struct Feed<K>(Arc<Mutex<Vec<Subscriber<K>>>>);

impl<K> Clone for Feed<K> {
    fn clone(&self) -> Self {
        Feed(self.0.clone())
    }
}

impl<K> Default for Feed<K> {
    fn default() -> Self {
        Feed(Arc::default())
    }
}

struct Subscriber<K> {
    queue: mpsc::UnboundedSender<Arc<K>>,
    /// Hears only of creations, deletions and changes of spec or deletion state.
    spec_changes_only: bool,
}

impl<K: Send + Sync + 'static> Feed<K> {
    /// A stream of every object that changed, for one controller. Subscribing happens while
    /// the controllers are built, before the watch is first polled.
    fn subscribe(&self) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        self.subscribe_with(false)
    }

    /// Like `subscribe`, without the changes that leave an object's spec and deletion state as
    /// they were: mostly its status. Each grant's status write used to re-plan every namespace
    /// it names, for nothing.
    fn subscribe_spec_changes(&self) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        self.subscribe_with(true)
    }

    fn subscribe_with(&self, spec_changes_only: bool) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        let (queue, mut rx) = mpsc::unbounded_channel();
        self.0.lock().expect("subscriber list").push(Subscriber { queue, spec_changes_only });
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    /// Whether some subscriber hears of spec changes only.
    fn filters(&self) -> bool {
        self.0.lock().expect("subscriber list").iter().any(|s| s.spec_changes_only)
    }

    /// Hands a changed object to every subscriber that wants to hear of it.
    fn send(&self, changed: Arc<K>, spec_changed: bool) {
        for subscriber in self.0.lock().expect("subscriber list").iter() {
            if spec_changed || !subscriber.spec_changes_only {
                let _ = subscriber.queue.send(changed.clone());
            }
        }
    }
}

impl<K> Watched<K>
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Default,
{
    fn subscribe(&self) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        self.feed.subscribe()
    }

    fn subscribe_spec_changes(&self) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        self.feed.subscribe_spec_changes()
    }
}

/// What a spec change changes: the object's identity (a re-created object is new), its
/// generation (bumped by the API server on every spec change) and whether it is being deleted.
/// Kept as one digest per object of the kind, for as long as the operator runs.
#[derive(Default)]
struct SpecVersions(HashMap<u64, u64>);

impl SpecVersions {
    /// Records the event's object; true when its spec or deletion state is news.
    fn changed<K: Resource<DynamicType = ()>>(&mut self, event: &watcher::Event<K>) -> bool {
        let key = |object: &K| hash_of(&(object.meta().namespace.as_deref(), object.meta().name.as_deref()));
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                let meta = object.meta();
                let version = hash_of(&(&meta.uid, meta.generation, meta.deletion_timestamp.is_some()));
                self.0.insert(key(object), version) != Some(version)
            }
            watcher::Event::Delete(object) => {
                self.0.remove(&key(object));
                true
            }
            watcher::Event::Init | watcher::Event::InitDone => false,
        }
    }
}

/// A cached watch whose every event reaches every subscriber; the pushed future drives it.
/// Indexes are updated from each event after the cache, and before any controller hears of it.
fn watched<K>(
    api: Api<K>,
    config: watcher::Config,
    drivers: &mut Vec<BoxFuture<'static, ()>>,
    indexes: Vec<Arc<Index<K>>>,
    recent: Arc<RecentWrites>,
) -> Watched<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    watched_as(api, config, drivers, indexes, recent, |_| {})
}

/// `watched`, with `shape` seeing every event (and changing its objects) before the cache does.
fn watched_as<K>(
    api: Api<K>,
    config: watcher::Config,
    drivers: &mut Vec<BoxFuture<'static, ()>>,
    indexes: Vec<Arc<Index<K>>>,
    recent: Arc<RecentWrites>,
    mut shape: impl FnMut(&mut watcher::Event<K>) + Send + 'static,
) -> Watched<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let feed = Feed::default();
    let fan = feed.clone();
    let kind = K::kind(&()).to_string();
    let cache = store.clone();
    let mut versions = SpecVersions::default();
    let shaped = watcher(api, config).map_ok(move |mut event| {
        shape(&mut event);
        event
    });
    let driver = drive(shaped.modify(trim).reflect(writer), kind, move |event| {
        indexes.iter().for_each(|index| index.observe(&event, &cache));
        if let watcher::Event::Apply(object) | watcher::Event::InitApply(object) | watcher::Event::Delete(object) = &event {
            recent.observed(object);
        }
        // Kinds nobody filters keep no versions.
        let spec_changed = !fan.filters() || versions.changed(&event);
        if let Some(changed) = shared(event, &cache) {
            fan.send(changed, spec_changed);
        }
    });
    drivers.push(driver);
    Watched { store, feed }
}

/// The watch of a kind kept in a cache of Liaison's own (`keep` takes each event); every change
/// reaches every subscriber as the whole object, which is dropped once they have mapped it.
fn watched_into<K>(
    api: Api<K>,
    config: watcher::Config,
    drivers: &mut Vec<BoxFuture<'static, ()>>,
    recent: Arc<RecentWrites>,
    keep: impl Fn(&watcher::Event<K>) + Send + 'static,
) -> Feed<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let feed = Feed::default();
    let fan = feed.clone();
    let kind = K::kind(&()).to_string();
    let driver = drive(watcher(api, config), kind, move |event| {
        keep(&event);
        if let watcher::Event::Apply(object) | watcher::Event::InitApply(object) | watcher::Event::Delete(object) = event {
            recent.observed(&object);
            fan.send(Arc::new(object), true);
        }
    });
    drivers.push(driver);
    feed
}

/// Drives a watch: each event to `handle`; after a failure, a wait before the watch is polled
/// again (`crate::watch_backoff` says how long), which is what makes the watcher retry later.
fn drive<K>(
    events: impl futures::Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
    kind: String,
    mut handle: impl FnMut(watcher::Event<K>) + Send + 'static,
) -> BoxFuture<'static, ()>
where
    K: Send + 'static,
{
    use futures::future::{Either, ready};
    let mut retries = Retries::new();
    events
        .for_each(move |event| match event {
            Ok(event) => {
                retries.succeeded();
                handle(event);
                Either::Left(ready(()))
            }
            Err(error) => {
                let wait = retries.wait_after(&error);
                tracing::warn!(%kind, %error, ?wait, "watch failed; retrying");
                Either::Right(tokio::time::sleep(wait))
            }
        })
        .boxed()
}

/// Drops what no controller reads before it is cached: managed fields, and the copy of the
/// whole object that client-side `kubectl apply` keeps in an annotation.
fn trim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The changed object, once for every subscriber: the cache's own copy when it holds this
/// version (a re-list fills the cache only at its end, so its objects are new copies), else a
/// new one (a deletion's last state).
fn shared<K>(event: watcher::Event<K>, cache: &Store<K>) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    match event {
        watcher::Event::Apply(object) => {
            let cached = cache.get(&ObjectRef::from_obj(&object)).filter(|c| c.resource_version() == object.resource_version());
            Some(cached.unwrap_or_else(|| Arc::new(object)))
        }
        watcher::Event::InitApply(object) | watcher::Event::Delete(object) => Some(Arc::new(object)),
        watcher::Event::Init | watcher::Event::InitDone => None,
    }
}

/// Objects per page of a watch's first list (and of any re-list). A restarted operator lists
/// every kind at once and holds each page whole while decoding it: 500 a page (kube's default,
/// as client-go's) made it peak well above the running operator.
const LIST_PAGE: u32 = 100;

fn paged() -> watcher::Config {
    watcher::Config::default().page_size(LIST_PAGE)
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
    let all = paged();
    let managed = paged().labels(&names::managed_selector(None));

    let by = Indexes::default();
    let recent = Arc::new(RecentWrites::new(RECENT_WRITES_TTL));
    let partner_clients = Arc::new(PartnerClients::default());
    let partners = watched_as(Api::<Partner>::all(client.clone()), all.clone(), &mut drivers, vec![], recent.clone(), {
        let lists = partner_clients.clone();
        move |event| lists.observe(event)
    });
    let link_grants = Arc::new(LinkGrants::default());
    let links = watched_as(
        Api::<ClientLink>::all(client.clone()),
        all.clone(),
        &mut drivers,
        vec![by.links_by_namespace.clone(), by.links_by_partner.clone()],
        recent.clone(),
        {
            let lists = link_grants.clone();
            move |event| lists.observe(event)
        },
    );
    let grant_statuses = Arc::new(GrantStatuses::default());
    let grants = watched_as(
        Api::<AccessGrant>::all(client.clone()),
        all.clone(),
        &mut drivers,
        vec![by.grants_by_client.clone(), by.grants_by_namespace.clone()],
        recent.clone(),
        {
            let statuses = grant_statuses.clone();
            move |event| statuses.observe(event)
        },
    );
    // Namespaces are watched as metadata only, and kept as their labels: all the rules read.
    let namespace_labels = Arc::new(NamespaceLabels::default());
    let namespaces = watched_into(Api::<PartialObjectMeta<Namespace>>::all(client.clone()), all.clone(), &mut drivers, recent.clone(), {
        let cache = namespace_labels.clone();
        move |event| cache.apply(event)
    });
    let managed_namespaces = watched(Api::<Namespace>::all(client.clone()), managed.clone(), &mut drivers, vec![], recent.clone());
    let cluster_roles = watched(Api::<ClusterRole>::all(client.clone()), all.clone(), &mut drivers, vec![], recent.clone());
    // Every Role, not only Liaison's (access levels may name any Role of a client namespace),
    // but level Roles, one per link and level: those go to their compact cache.
    let not_level_roles = paged().labels(&format!("{}!={}", names::COMPONENT, names::Component::LevelRole.as_str()));
    let roles =
        watched(Api::<Role>::all(client.clone()), not_level_roles, &mut drivers, vec![by.roles_by_namespace.clone()], recent.clone());
    let level_role_cache = Arc::new(LevelRoles::default());
    let level_roles = watched_into(Api::all(client.clone()), only(names::Component::LevelRole), &mut drivers, recent.clone(), {
        let cache = level_role_cache.clone();
        move |event| cache.apply(event)
    });
    // Grant bindings, the bulk, go to their compact cache; the few others to kube's.
    let others = paged().labels(&names::managed_selector_except(names::Component::GrantBinding));
    let binding_indexes = vec![by.bindings_by_namespace.clone()];
    let role_bindings = watched(Api::<RoleBinding>::all(client.clone()), others, &mut drivers, binding_indexes, recent.clone());
    let grant_binding_cache = Arc::new(GrantBindings::default());
    let grant_bindings = watched_into(Api::all(client.clone()), only(names::Component::GrantBinding), &mut drivers, recent.clone(), {
        let cache = grant_binding_cache.clone();
        move |event| cache.apply(event)
    });
    let service_accounts = watched(
        Api::<ServiceAccount>::all(client.clone()),
        managed.clone(),
        &mut drivers,
        vec![by.accounts_by_namespace.clone()],
        recent.clone(),
    );
    let cluster_role_bindings = watched(Api::<ClusterRoleBinding>::all(client.clone()), managed, &mut drivers, vec![], recent.clone());

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
        by: by.clone(),
    };
    drivers.push(mark_ready_when_synced(caches.clone(), readiness.clone()).boxed());

    let access_writes = Arc::new(reconcile::status::AccessWrites::default());
    let ctx = Arc::new(Context {
        client: client.clone(),
        caches: caches.clone(),
        settings: settings.clone(),
        events: crate::events::Publisher::new(client.clone(), "liaison", std::env::var("POD_NAME").ok()),
        metrics,
        link_summaries: reconcile::status::SummaryWrites::new(SUMMARY_DELAY, SUMMARY_LONGEST_DELAY, access_writes.clone()),
        partner_summaries: reconcile::status::SummaryWrites::new(SUMMARY_DELAY, SUMMARY_LONGEST_DELAY, access_writes.clone()),
        access_writes,
        recent_writes: recent,
        plans: reconcile::context::PlanBudget::new(),
        grant_statuses,
        link_grants,
        partner_clients,
        failures: Default::default(),
    });
    let config = ControllerConfig::default().concurrency(limits.concurrency);
    let ceiling = settings.ceiling.clone();

    let link_controller = {
        let (partner_links, cr_links) = (caches.links.clone(), caches.links.clone());
        let partner_store = caches.partners.clone();
        let (by_grant, by_ns, by_ns_role) = (caches.clone(), caches.clone(), caches.clone());
        let ceiling = ceiling.clone();
        Controller::for_shared_stream(links.subscribe(), caches.links.clone())
            .with_config(config.clone())
            .reconcile_on(resync::walk(caches.links.clone(), settings.resync))
            .owns_shared_stream(level_roles.subscribe())
            .owns_shared_stream(role_bindings.subscribe())
            .owns_shared_stream(grant_bindings.subscribe())
            .owns_shared_stream(service_accounts.subscribe())
            .watches_shared_stream(grants.subscribe_spec_changes(), move |grant| {
                // The namespaces it names now, and those where it still has bindings: a client
                // dropped from the grant must lose its binding.
                let uid = grant.uid().unwrap_or_default();
                let mut namespaces: BTreeSet<String> = grant.spec.clients.iter().cloned().collect();
                namespaces.extend(by_grant.grant_bindings.namespaces_of_grant(&uid));
                namespaces.iter().flat_map(|ns| links_in(&by_grant, ns)).collect::<Vec<_>>()
            })
            // A partner's standing comes from its spec, age and deletion, never its status:
            // each status write re-planned every namespace of its links.
            .watches_shared_stream(partners.subscribe_spec_changes(), move |partner| {
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
            .watches_shared_stream(namespaces.subscribe(), move |ns| links_in(&by_ns, &ns.name_any()))
            .watches_shared_stream(roles.subscribe(), move |role| {
                let name = role.name_any();
                let uses_role = |l: &ClientLink| l.spec.access_levels.iter().any(|lv| lv.role.as_deref() == Some(name.as_str()));
                let in_namespace = by_ns_role.by.links_by_namespace.get(&role.namespace().unwrap_or_default(), &by_ns_role.links);
                in_namespace.iter().filter(|l| uses_role(l)).map(|l| ObjectRef::from_obj(l.as_ref())).collect::<Vec<_>>()
            })
            .watches_shared_stream(cluster_roles.subscribe(), move |cr| {
                let name = cr.name_any();
                let is_ceiling = name == ceiling;
                links_where(&cr_links, |l| {
                    is_ceiling || l.spec.access_levels.iter().any(|lv| lv.cluster_role.as_deref() == Some(name.as_str()))
                })
            })
            .graceful_shutdown_on(stopped(shutdown.clone()))
            .run(gated(reconcile::client_link::reconcile, readiness.clone()), reconcile::error_policy, ctx.clone())
            .for_each(|_| futures::future::ready(()))
    };

    let grant_controller = {
        let by_home = caches.clone();
        let (by_link, by_ns, by_role, by_level, by_cr) = (caches.clone(), caches.clone(), caches.clone(), caches.clone(), caches.clone());
        let link_store = caches.links.clone();
        let ceiling = ceiling.clone();
        Controller::for_shared_stream(grants.subscribe(), caches.grants.clone())
            .with_config(config.clone().concurrency(limits.grant_concurrency()))
            .reconcile_on(resync::walk(caches.grants.clone(), settings.resync))
            .watches_shared_stream(links.subscribe_spec_changes(), move |link| {
                grants_naming(&by_link, &link.namespace().unwrap_or_default())
            })
            // A grant reports `Granted` once its binding is in place: the binding's arrival is
            // what completes it. Labels only pick which grant to look at again.
            .watches_shared_stream(grant_bindings.subscribe(), |binding| {
                let labels = binding.labels();
                let grant = labels.get(names::ACCESS_GRANT).zip(labels.get(names::GRANT_NAMESPACE));
                grant.map(|(name, namespace)| ObjectRef::new(name).within(namespace))
            })
            // Not its status: each write of it re-checked every grant of the partner's home.
            .watches_shared_stream(partners.subscribe_spec_changes(), move |partner| {
                let at_home = by_home.by.grants_by_namespace.get(&partner.spec.home_namespace, &by_home.grants);
                at_home.iter().map(|g| ObjectRef::from_obj(g.as_ref())).collect::<Vec<_>>()
            })
            .watches_shared_stream(namespaces.subscribe(), move |ns| grants_naming(&by_ns, &ns.name_any()))
            .watches_shared_stream(roles.subscribe(), move |role| grants_naming(&by_role, &role.namespace().unwrap_or_default()))
            // A grant reports `Granted` once the level Role it binds is in place too.
            .watches_shared_stream(level_roles.subscribe(), move |role| grants_naming(&by_level, &role.namespace().unwrap_or_default()))
            .watches_shared_stream(cluster_roles.subscribe(), move |cr| {
                let name = cr.name_any();
                let is_ceiling = name == ceiling;
                let using: BTreeSet<String> = link_store
                    .state()
                    .iter()
                    .filter(|l| is_ceiling || l.spec.access_levels.iter().any(|lv| lv.cluster_role.as_deref() == Some(name.as_str())))
                    .filter_map(|l| l.namespace())
                    .collect();
                using.iter().flat_map(|ns| grants_naming(&by_cr, ns)).collect::<Vec<_>>()
            })
            .graceful_shutdown_on(stopped(shutdown.clone()))
            .run(gated(reconcile::access_grant::reconcile, readiness.clone()), reconcile::error_policy, ctx.clone())
            .for_each(|_| futures::future::ready(()))
    };

    let partner_controller = {
        let (link_partners, grant_partners, ns_partners) = (caches.partners.clone(), caches.partners.clone(), caches.partners.clone());
        Controller::for_shared_stream(partners.subscribe(), caches.partners.clone())
            // A partner's status only summarizes its links and grants, and each grant arriving
            // would rewrite it: coalesce bursts. Links and grants react at once (revocation).
            .with_config(config.debounce(std::time::Duration::from_secs(1)))
            .reconcile_on(resync::walk(caches.partners.clone(), settings.resync))
            .owns_shared_stream(roles.subscribe())
            .owns_shared_stream(role_bindings.subscribe())
            .owns_shared_stream(cluster_roles.subscribe())
            .owns_shared_stream(cluster_role_bindings.subscribe())
            .watches_shared_stream(links.subscribe(), move |link| partners_where(&link_partners, |p| p.name_any() == link.spec.partner))
            .watches_shared_stream(grants.subscribe_spec_changes(), move |grant| {
                let ns = grant.namespace();
                partners_where(&grant_partners, |p| Some(&p.spec.home_namespace) == ns.as_ref())
            })
            .watches_shared_stream(managed_namespaces.subscribe(), move |ns| {
                let name = ns.name_any();
                partners_where(&ns_partners, |p| p.spec.home_namespace == name)
            })
            .graceful_shutdown_on(stopped(shutdown.clone()))
            .run(gated(reconcile::partner::reconcile, readiness.clone()), reconcile::error_policy, ctx.clone())
            .for_each(|_| futures::future::ready(()))
    };

    drivers.push(sweep_periodically(ctx.clone(), readiness.clone(), limits.sweep_interval).boxed());
    // The watches end only with the process; the controllers end on shutdown.
    let watches = futures::future::join_all(drivers);
    tokio::select! {
        _ = watches => {},
        _ = futures::future::join3(link_controller, grant_controller, partner_controller) => {},
    }
}

/// The watch of one component of what Liaison makes.
fn only(component: names::Component) -> watcher::Config {
    paged().labels(&names::managed_selector(Some(component)))
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
    use crate::api::AccessGrantSpec;

    #[test]
    fn grants_reconcile_at_a_quarter_of_the_links_concurrency_and_never_stop() {
        let limits = |concurrency| Limits { concurrency, sweep_interval: std::time::Duration::from_secs(1) };
        assert_eq!(limits(16).grant_concurrency(), 4);
        assert_eq!(limits(8).grant_concurrency(), 2);
        assert_eq!(limits(3).grant_concurrency(), 1);
        assert_eq!(limits(1).grant_concurrency(), 1);
    }

    fn grant(uid: &str, generation: i64, status: &str) -> AccessGrant {
        let mut grant = AccessGrant::new(
            "g",
            AccessGrantSpec { clients: ["beta".into()].into(), access_level: "read".into(), subjects: vec![], expires_at: None },
        );
        grant.metadata.namespace = Some("home".into());
        grant.metadata.uid = Some(uid.into());
        grant.metadata.generation = Some(generation);
        grant.metadata.resource_version = Some(status.into());
        grant
    }

    #[test]
    fn only_creation_spec_changes_deletion_and_recreation_are_spec_news() {
        use watcher::Event::{Apply, Delete, InitApply};
        let mut versions = SpecVersions::default();
        assert!(versions.changed(&InitApply(grant("u1", 1, "a"))), "first sight");
        assert!(!versions.changed(&Apply(grant("u1", 1, "b"))), "a status write");
        assert!(versions.changed(&Apply(grant("u1", 2, "c"))), "a spec change");
        let mut deleting = grant("u1", 2, "d");
        deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        assert!(versions.changed(&Apply(deleting.clone())), "deletion begins");
        assert!(!versions.changed(&Apply(deleting.clone())), "the finalizer goes");
        assert!(versions.changed(&Delete(deleting)), "gone");
        assert!(versions.changed(&Apply(grant("u2", 2, "e"))), "re-created under the same name");
        assert!(versions.changed(&Apply(grant("u3", 2, "f"))), "re-created again, same generation");
        assert!(!versions.changed(&watcher::Event::<AccessGrant>::InitDone));
    }
}
