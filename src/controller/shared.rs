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
pub fn watched_as<K>(
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

/// Drives a watch: each event to `handle`; after a failure, a wait before the watch is polled
/// again (`crate::controller::backoff` says how long), which is what makes the watcher retry later.
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
}
