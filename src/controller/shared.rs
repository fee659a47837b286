//! Shared watches: one per kind, its cache, and every change fanned out to each controller
//! that subscribes. Watches retry on their own schedule (`crate::controller::backoff`).

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::cache::index::Index;
use crate::cache::keys::hash_of;
use crate::controller::backoff::Retries;
use crate::desired::names;
use crate::materialize::RecentWrites;

/// One watch of a kind: its cache, and every change (deletions included) fanned out to each
/// subscriber. kube's shared stores forward only applied objects, and an access operator must
/// hear about a deleted binding, grant or partner as surely as about a new one.
///
/// Subscribers share one copy of each object: with four of them per kind, cloning for each
/// multiplied the memory a burst (the first list of 10,000 grants) held in their queues.
pub struct Watched<K: Resource + Clone + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    pub store: Store<K>,
    feed: Feed<K>,
}

/// The subscribers of one watch.
pub struct Feed<K>(Arc<Mutex<Vec<Subscriber<K>>>>);

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
    pub fn subscribe(&self) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        self.subscribe_with(false)
    }

    /// Like `subscribe`, without the changes that leave an object's spec and deletion state as
    /// they were: mostly its status. Each grant's status write used to re-plan every namespace
    /// it names, for nothing.
    pub fn subscribe_spec_changes(&self) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        self.subscribe_with(true)
    }

    fn subscribe_with(
        &self,
        spec_changes_only: bool,
    ) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
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
    pub fn subscribe(&self) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        self.feed.subscribe()
    }

    pub fn subscribe_spec_changes(&self) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
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
pub fn watched<K>(
    api: Api<K>,
    config: watcher::Config,
    drivers: &mut Drivers,
    indexes: Vec<Arc<Index<K>>>,
    recent: Arc<RecentWrites>,
) -> Watched<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    watched_as(api, config, drivers, indexes, recent, |_| {})
}

/// `watched`, with `shape` seeing every event (and changing its objects) before the cache does.
pub fn watched_as<K>(
    api: Api<K>,
    config: watcher::Config,
    drivers: &mut Drivers,
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
    let driver = drive(shaped.modify(trim).reflect(writer), kind, drivers.relists(), move |event| {
        indexes.iter().for_each(|index| index.observe(&event, &cache));
        if let watcher::Event::Apply(object)
        | watcher::Event::InitApply(object)
        | watcher::Event::Delete(object) = &event
        {
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
pub fn watched_into<K>(
    api: Api<K>,
    config: watcher::Config,
    drivers: &mut Drivers,
    recent: Arc<RecentWrites>,
    keep: impl Fn(&watcher::Event<K>) + Send + 'static,
) -> Feed<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let feed = Feed::default();
    let fan = feed.clone();
    let kind = K::kind(&()).to_string();
    let driver = drive(watcher(api, config), kind, drivers.relists(), move |event| {
        keep(&event);
        if let watcher::Event::Apply(object)
        | watcher::Event::InitApply(object)
        | watcher::Event::Delete(object) = event
        {
            recent.observed(&object);
            fan.send(Arc::new(object), true);
        }
    });
    drivers.push(driver);
    feed
}

/// The futures that drive the watches (and the operator's other background work), and the
/// count of re-lists they have seen.
#[derive(Default)]
pub struct Drivers {
    futures: Vec<BoxFuture<'static, ()>>,
    relists: Relists,
}

impl Drivers {
    pub fn push(&mut self, driver: BoxFuture<'static, ()>) {
        self.futures.push(driver);
    }

    pub fn relists(&self) -> Relists {
        self.relists.clone()
    }

    /// Runs them all; they end only with the process.
    pub async fn run(self) {
        futures::future::join_all(self.futures).await;
    }
}

/// How many times a watch listed its kind again after its first list: after a watch broke for
/// longer than the API server keeps its history (an API server restart, a long partition).
///
/// A re-list replaces a cache only once complete, while its objects reach the controllers one
/// by one as they arrive: a reconcile they trigger reads the cache from before the outage, and
/// an object gone meanwhile arrives as no event at all. A grant created just after an API
/// server restart stayed unbound until the next resync (`faults::the_operator_survives_a_kube_
/// apiserver_restart`); a namespace relabelled away from its partner would have kept access as
/// long. So every controller reconciles all of its objects once a re-list is complete.
#[derive(Clone)]
pub struct Relists(Arc<tokio::sync::watch::Sender<u64>>);

impl Default for Relists {
    fn default() -> Self {
        Relists(Arc::new(tokio::sync::watch::Sender::new(0)))
    }
}

impl Relists {
    fn completed(&self) {
        self.0.send_modify(|count| *count += 1);
    }

    /// Yields once after any number of re-lists completed since it last yielded: the watches of
    /// an API server that restarts list again within a second or two of each other.
    pub fn completed_since(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        let mut count = self.0.subscribe();
        count.mark_unchanged();
        futures::stream::unfold(count, |mut count| async move {
            count.changed().await.ok()?;
            count.mark_unchanged();
            Some(((), count))
        })
    }
}

/// Drives a watch: each event to `handle`; after a failure, a wait before the watch is polled
/// again (`crate::controller::backoff` says how long), which is what makes the watcher retry later.
/// A list after the first is counted in `relists` once `handle` has taken its end.
fn drive<K>(
    events: impl futures::Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
    kind: String,
    relists: Relists,
    mut handle: impl FnMut(watcher::Event<K>) + Send + 'static,
) -> BoxFuture<'static, ()>
where
    K: Send + 'static,
{
    use futures::future::{Either, ready};
    let mut retries = Retries::new();
    let mut listed = false;
    events
        .for_each(move |event| match event {
            Ok(event) => {
                retries.succeeded();
                let list_done = matches!(event, watcher::Event::InitDone);
                handle(event);
                if list_done && std::mem::replace(&mut listed, true) {
                    tracing::info!(%kind, "listed again after a broken watch; reconciling everything");
                    relists.completed();
                }
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
            let cached = cache
                .get(&ObjectRef::from_obj(&object))
                .filter(|c| c.resource_version() == object.resource_version());
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

pub fn paged() -> watcher::Config {
    watcher::Config::default().page_size(LIST_PAGE)
}

/// The watch of one component of what Liaison makes.
pub fn only(component: names::Component) -> watcher::Config {
    paged().labels(&names::managed_selector(Some(component)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AccessGrant, AccessGrantSpec};

    fn grant(uid: &str, generation: i64, status: &str) -> AccessGrant {
        let mut grant = AccessGrant::new(
            "g",
            AccessGrantSpec {
                clients: ["beta".into()].into(),
                access_level: "read".into(),
                subjects: vec![],
                expires_at: None,
                review: None,
            },
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
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        assert!(versions.changed(&Apply(deleting.clone())), "deletion begins");
        assert!(!versions.changed(&Apply(deleting.clone())), "the finalizer goes");
        assert!(versions.changed(&Delete(deleting)), "gone");
        assert!(versions.changed(&Apply(grant("u2", 2, "e"))), "re-created under the same name");
        assert!(versions.changed(&Apply(grant("u3", 2, "f"))), "re-created again, same generation");
        assert!(!versions.changed(&watcher::Event::<AccessGrant>::InitDone));
    }

    #[tokio::test]
    async fn lists_after_the_first_are_counted_once_taken_and_told_once_per_burst() {
        use futures::FutureExt;
        use watcher::Event::{Apply, Init, InitApply, InitDone};
        let relists = Relists::default();
        let mut told = Box::pin(relists.completed_since());
        let first = [Init, InitApply(grant("u1", 1, "a")), InitDone, Apply(grant("u1", 2, "b"))];
        let again = [Init, InitApply(grant("u1", 2, "c")), InitDone];
        let events: Vec<_> = first.into_iter().chain(again.clone()).chain(again).map(Ok).collect();
        let counted_when_handled = Arc::new(Mutex::new(Vec::new()));
        let handled = counted_when_handled.clone();
        let count = relists.clone();
        drive(futures::stream::iter(events), "AccessGrant".into(), relists.clone(), move |event| {
            if matches!(event, InitDone) {
                handled.lock().unwrap().push(*count.0.borrow());
            }
        })
        .await;
        assert_eq!(*counted_when_handled.lock().unwrap(), [0, 0, 1], "counted after the cache took the list");
        assert_eq!(*relists.0.borrow(), 2, "the first list is no re-list");
        assert_eq!(told.next().now_or_never(), Some(Some(())), "two re-lists in a row: told once");
        assert_eq!(told.next().now_or_never(), None, "nothing more until the next re-list");
    }
}
