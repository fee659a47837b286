//! Secondary indexes over the watch caches: which grants name a namespace, which links and
//! materialized objects live in one. Without them every reconcile scanned every grant and
//! binding of the cluster, and the operator's cost grew with the square of its size.
//!
//! An index only narrows the search: every lookup confirms each hit against the cache, so a
//! stale entry costs a lookup, never a wrong answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

/// Objects under each key, each as one `namespace/name` string in a sorted list. Most keys
/// hold a handful of objects (a namespace's grants, a grant's bindings), where a hash set of
/// `ObjectRef`s cost ~350 bytes an entry, mostly empty buckets: 1.4 KB per grant over four
/// indexes, as much as the grant itself.
pub struct Index<K: Resource<DynamicType = ()>> {
    keys_of: fn(&K) -> Vec<String>,
    refs: Mutex<HashMap<Box<str>, Vec<Box<str>>>>,
}

impl<K> Index<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    pub fn new(keys_of: fn(&K) -> Vec<String>) -> Arc<Self> {
        Arc::new(Index { keys_of, refs: Mutex::default() })
    }

    /// Keeps the index in step with one watch event, after the cache has taken it.
    pub fn observe(&self, event: &watcher::Event<K>, cache: &Store<K>) {
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => self.record(object),
            watcher::Event::Delete(object) => self.forget(object),
            // A re-list may have dropped objects without a Delete event: start from the cache.
            watcher::Event::InitDone => self.rebuild(cache),
            watcher::Event::Init => {}
        }
    }

    /// How many objects are recorded under `key`, unconfirmed: an estimate that costs no copy.
    pub fn count(&self, key: &str) -> usize {
        self.refs.lock().expect("index").get(key).map_or(0, Vec::len)
    }

    /// The cached objects under `key`, confirmed against the cache.
    pub fn get(&self, key: &str, cache: &Store<K>) -> Vec<Arc<K>> {
        let mut refs = self.refs.lock().expect("index");
        let Some(under_key) = refs.get_mut(key) else { return vec![] };
        let mut found = Vec::with_capacity(under_key.len());
        // An object whose keys changed since it was recorded leaves its old entries behind.
        under_key.retain(|member| match cache.get(&reference(member)) {
            Some(object) if (self.keys_of)(&object).iter().any(|k| k == key) => {
                found.push(object);
                true
            }
            Some(_) => false,
            // Not in the cache yet (a re-list is filling it) or deleted: kept until the next
            // rebuild or its Delete event.
            None => true,
        });
        if under_key.is_empty() {
            refs.remove(key);
        }
        found
    }

    fn record(&self, object: &K) {
        let member = member(object);
        let mut refs = self.refs.lock().expect("index");
        for key in (self.keys_of)(object) {
            let under_key = refs.entry(key.into_boxed_str()).or_default();
            if let Err(at) = under_key.binary_search(&member) {
                insert_snug(under_key, at, member.clone());
            }
        }
    }

    fn forget(&self, object: &K) {
        let member = member(object);
        let mut refs = self.refs.lock().expect("index");
        for key in (self.keys_of)(object) {
            if let Some(under_key) = refs.get_mut(key.as_str()) {
                if let Ok(at) = under_key.binary_search(&member) {
                    under_key.remove(at);
                }
                if under_key.is_empty() {
                    refs.remove(key.as_str());
                }
            }
        }
    }

    fn rebuild(&self, cache: &Store<K>) {
        let mut fresh: HashMap<Box<str>, Vec<Box<str>>> = HashMap::new();
        for object in cache.state() {
            for key in (self.keys_of)(&object) {
                fresh.entry(key.into_boxed_str()).or_default().push(member(object.as_ref()));
            }
        }
        for under_key in fresh.values_mut() {
            under_key.sort_unstable();
            under_key.dedup();
            under_key.shrink_to_fit();
        }
        *self.refs.lock().expect("index") = fresh;
    }
}

/// Inserts `item` at `at`, growing a short list by one place only: most lists of the caches
/// hold a handful of entries, where doubling (to 4, 8, ...) left up to half of each unused.
/// Past a few entries, lists grow as vectors do, so that inserting stays amortized.
pub(crate) fn insert_snug<T>(list: &mut Vec<T>, at: usize, item: T) {
    const SNUG_UP_TO: usize = 8;
    if list.len() == list.capacity() && list.len() < SNUG_UP_TO {
        list.reserve_exact(1);
    }
    list.insert(at, item);
}

/// `namespace/name`, or `name` for a cluster-scoped object: neither part can hold a slash.
pub(crate) fn member<K: Resource>(object: &K) -> Box<str> {
    let meta = object.meta();
    let name = meta.name.as_deref().unwrap_or_default();
    match meta.namespace.as_deref() {
        Some(namespace) => format!("{namespace}/{name}").into_boxed_str(),
        None => name.into(),
    }
}

pub(crate) fn reference<K: Resource<DynamicType = ()>>(member: &str) -> ObjectRef<K> {
    match member.split_once('/') {
        Some((namespace, name)) => ObjectRef::new(name).within(namespace),
        None => ObjectRef::new(member),
    }
}

/// A reference by name and namespace only: `ObjectRef::from_obj` also copies the UID and
/// resourceVersion, which lookups ignore.
pub fn bare_ref<K: Resource<DynamicType = ()>>(object: &K) -> ObjectRef<K> {
    let meta = object.meta();
    let reference = ObjectRef::new(meta.name.as_deref().unwrap_or_default());
    match meta.namespace.as_deref() {
        Some(namespace) => reference.within(namespace),
        None => reference,
    }
}

/// The key of most indexes: the object's namespace.
pub fn namespace_of<K: Resource>(object: &K) -> Vec<String> {
    object.meta().namespace.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::store;

    fn config_map(namespace: &str, name: &str, owner: &str) -> ConfigMap {
        let mut object = ConfigMap::default();
        object.metadata.namespace = Some(namespace.into());
        object.metadata.name = Some(name.into());
        object.metadata.labels = Some([("owner".to_string(), owner.to_string())].into());
        object
    }

    fn owner_of(object: &ConfigMap) -> Vec<String> {
        object
            .metadata
            .labels
            .iter()
            .flatten()
            .filter(|(k, _)| *k == "owner")
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn names(found: Vec<Arc<ConfigMap>>) -> Vec<String> {
        let mut names: Vec<String> = found.iter().filter_map(|o| o.metadata.name.clone()).collect();
        names.sort();
        names
    }

    /// Feeds an event to the cache, then to the index, as the watch driver does.
    fn feed(
        writer: &mut kube::runtime::reflector::store::Writer<ConfigMap>,
        index: &Index<ConfigMap>,
        cache: &Store<ConfigMap>,
        event: watcher::Event<ConfigMap>,
    ) {
        writer.apply_watcher_event(&event);
        index.observe(&event, cache);
    }

    #[test]
    fn lookups_follow_applies_changes_and_deletes() {
        let (cache, mut writer) = store();
        let index = Index::new(owner_of);
        let (a, b) = (config_map("ns", "a", "x"), config_map("ns", "b", "x"));
        feed(&mut writer, &index, &cache, watcher::Event::Apply(a.clone()));
        feed(&mut writer, &index, &cache, watcher::Event::Apply(b.clone()));
        assert_eq!(names(index.get("x", &cache)), ["a", "b"]);
        assert_eq!(index.count("x"), 2);
        assert!(index.get("y", &cache).is_empty());
        assert_eq!(index.count("y"), 0);

        feed(&mut writer, &index, &cache, watcher::Event::Apply(config_map("ns", "a", "y")));
        assert_eq!(names(index.get("x", &cache)), ["b"], "a moved away from x");
        assert_eq!(names(index.get("y", &cache)), ["a"]);

        feed(&mut writer, &index, &cache, watcher::Event::Delete(b));
        assert!(index.get("x", &cache).is_empty());
        assert_eq!(index.count("x"), 0);
    }

    #[test]
    fn a_relist_neither_loses_new_objects_nor_keeps_vanished_ones() {
        let (cache, mut writer) = store();
        let index = Index::new(namespace_of::<ConfigMap>);
        feed(&mut writer, &index, &cache, watcher::Event::Apply(config_map("ns", "gone", "x")));
        // The watch broke; `gone` was deleted meanwhile; the re-list brings `new`.
        feed(&mut writer, &index, &cache, watcher::Event::Init);
        feed(&mut writer, &index, &cache, watcher::Event::InitApply(config_map("ns", "new", "x")));
        // Until InitDone the cache still holds the old list: a lookup must not drop `new`.
        assert_eq!(names(index.get("ns", &cache)), ["gone"]);
        feed(&mut writer, &index, &cache, watcher::Event::InitDone);
        assert_eq!(names(index.get("ns", &cache)), ["new"]);
    }

    #[test]
    fn members_name_the_object_in_either_scope() {
        let namespaced = config_map("ns", "a", "x");
        assert_eq!(reference::<ConfigMap>(&member(&namespaced)), ObjectRef::from_obj(&namespaced));
        let mut cluster_scoped = k8s_openapi::api::core::v1::Namespace::default();
        cluster_scoped.metadata.name = Some("client-a".into());
        assert_eq!(reference(&member(&cluster_scoped)), ObjectRef::from_obj(&cluster_scoped));
    }

    #[test]
    fn an_object_recorded_twice_is_found_once() {
        let (cache, mut writer) = store();
        let index = Index::new(namespace_of::<ConfigMap>);
        feed(&mut writer, &index, &cache, watcher::Event::Apply(config_map("ns", "a", "x")));
        feed(&mut writer, &index, &cache, watcher::Event::Apply(config_map("ns", "a", "y")));
        assert_eq!(names(index.get("ns", &cache)), ["a"]);
    }

    #[test]
    fn short_lists_grow_by_one_place_and_long_ones_as_vectors_do() {
        let mut list = Vec::new();
        for i in 0..8 {
            insert_snug(&mut list, 0, i);
            assert_eq!(list.capacity(), i + 1);
        }
        insert_snug(&mut list, 8, 8);
        assert!(list.capacity() >= 16, "amortized past a few entries");
        assert_eq!(list, [7, 6, 5, 4, 3, 2, 1, 0, 8]);
    }
}
