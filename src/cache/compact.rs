//! Liaison's bulk objects as the cluster has them, each reduced to what Liaison decides on.
//!
//! One binding per grant and client namespace, and one Role per link and level in use, are the
//! bulk of what Liaison materializes. kube's cache kept each as the whole object with its key
//! and index entries, ~2–2.5 KB: at 10,000 grants a third of the operator's memory. Here each
//! is a name, a digest of everything Liaison compares, and the few facts reconciles ask
//! (whose grant, which link owns it, which resourceVersion): a few hundred bytes a grant
//! binding with its by-grant entry (heaptrack at half size: ~525 before UIDs were kept as bytes
//! and versions as digests).
//!
//! The digest is computed the same way from the live object and from the desired one, so
//! "does the cluster say what Liaison wants" stays an equality, with the same meaning as
//! `Materialized::is_matched_by`: Liaison's labels and annotation, its owner references and
//! the payload (roleRef and subjects, rules); labels, annotations and owners that others add
//! are not compared.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher;

use crate::cache::compare::{Comparison, Materialized};
use crate::cache::fed::{Fed, Keeps};
use crate::cache::index::insert_snug;
use crate::cache::keys::Version;
use crate::cache::keys::hash_of;
use crate::desired::names;
use crate::desired::ownership;

/// A UID as 128 bits. The API server's UIDs are UUIDs; anything else (hand-built objects in
/// tests) is hashed, where a collision could only make an object look owned by a live owner
/// (and so be kept), never the reverse. Bytes rather than a `u128`, whose 16-byte alignment
/// padded every `Option<Uid>` to 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Uid([u8; 16]);

impl Uid {
    fn of(text: &str) -> Uid {
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        let bits = match u128::from_str_radix(&hex, 16) {
            Ok(bits) if hex.len() == 32 => bits,
            _ => u128::from(hash_of(&text)) << 64 | u128::from(hash_of(&(text, 1u8))),
        };
        Uid(bits.to_be_bytes())
    }
}

/// A kind whose Liaison-made objects a compact cache can hold.
pub trait Compact: Materialized {
    /// Everything `Materialized::is_matched_by` compares, as one digest.
    fn content_digest(&self) -> u64;

    /// What cannot be changed in place, as a digest: when it differs, delete and create.
    fn immutable_digest(&self) -> u64 {
        0
    }

    /// The UID of the grant the object serves, if it serves one.
    fn grant_uid(&self) -> Option<&str> {
        None
    }

    /// Whether the object, as it stands, gives nobody anything (a Role without rules).
    fn grants_nothing(&self) -> bool {
        false
    }
}

/// The cache of grant bindings: one per grant and client namespace.
pub type GrantBindings = CompactCache<RoleBinding>;
/// The cache of level Roles: one per link and level in use.
pub type LevelRoles = CompactCache<Role>;

/// What the cache knows of one object.
#[derive(Debug)]
struct Live {
    version: Option<Version>,
    content: u64,
    immutable: u64,
    grant: Option<Uid>,
    /// The link that owns it by `desired::ownership`'s rule (the name Liaison derived for it).
    link_owner: Option<Uid>,
    deleting: bool,
    grants_nothing: bool,
}

impl Live {
    fn of<K: Compact>(object: &K) -> Live {
        let meta = object.meta();
        Live {
            version: Version::of(meta),
            content: object.content_digest(),
            immutable: object.immutable_digest(),
            grant: object.grant_uid().map(Uid::of),
            link_owner: ownership::owner(meta)
                .filter(|o| o.component.is_link_component())
                .map(|o| Uid::of(o.owner_uid)),
            deleting: meta.deletion_timestamp.is_some(),
            grants_nothing: object.grants_nothing(),
        }
    }
}

/// One namespace's objects, sorted by name. Most namespaces hold a handful (a link's level
/// Roles, a binding per grant naming it), where a B-tree's first node (room for eleven, ~1 KB
/// here) cost more than its entries: 2 MB of level Roles at 2,000 links (heaptrack).
#[derive(Default)]
struct Names(Vec<(Box<str>, Live)>);

impl Names {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(held, _)| held.as_ref().cmp(name))
    }

    fn get(&self, name: &str) -> Option<&Live> {
        self.find(name).ok().map(|at| &self.0[at].1)
    }

    /// Returns what was held under `name` before.
    fn insert(&mut self, name: &str, live: Live) -> Option<Live> {
        match self.find(name) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, live)),
            Err(at) => {
                insert_snug(&mut self.0, at, (name.into(), live));
                None
            }
        }
    }

    fn remove(&mut self, name: &str) -> Option<Live> {
        let removed = self.find(name).ok().map(|at| self.0.remove(at).1);
        if self.0.len() < self.0.capacity() / 4 {
            self.0.shrink_to_fit();
        }
        removed
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &Live)> {
        self.0.iter().map(|(name, live)| (name.as_ref(), live))
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Default)]
struct State {
    /// Namespace → object name → what it says. The namespace strings are shared with
    /// `by_grant`.
    namespaces: HashMap<Arc<str>, Names>,
    /// (grant UID, a namespace holding an object serving it). Pairs in one ordered set rather
    /// than a list per grant: most grants name one namespace, and a list's allocation was
    /// most of an entry.
    by_grant: BTreeSet<(Uid, Arc<str>)>,
}

impl State {
    fn insert<K: Compact>(&mut self, object: &K) {
        let meta = object.meta();
        let (Some(namespace), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else { return };
        let live = Live::of(object);
        let grant = live.grant;
        let namespace = match self.namespaces.get_key_value(namespace) {
            Some((shared, _)) => shared.clone(),
            None => Arc::from(namespace),
        };
        if let Some(grant) = grant {
            self.by_grant.insert((grant, namespace.clone()));
        }
        let previous = self.namespaces.entry(namespace.clone()).or_default().insert(name, live);
        // An object relabelled to another grant (by hand) no longer counts for the first.
        if let Some(old_grant) = previous.and_then(|p| p.grant).filter(|g| Some(*g) != grant) {
            self.unlink(old_grant, &namespace);
        }
    }

    fn remove(&mut self, namespace: &str, name: &str) {
        let Some(names) = self.namespaces.get_mut(namespace) else { return };
        let Some(live) = names.remove(name) else { return };
        if names.is_empty() {
            self.namespaces.remove(namespace);
        }
        if let Some(grant) = live.grant {
            self.unlink(grant, namespace);
        }
    }

    /// Forgets that `namespace` serves `grant`, unless another object of it is there.
    fn unlink(&mut self, grant: Uid, namespace: &str) {
        let still_there = self
            .namespaces
            .get(namespace)
            .is_some_and(|names| names.iter().any(|(_, l)| l.grant == Some(grant)));
        if still_there {
            return;
        }
        self.by_grant.remove(&(grant, Arc::from(namespace)));
    }

    fn get(&self, namespace: &str, name: &str) -> Option<&Live> {
        self.namespaces.get(namespace).and_then(|names| names.get(name))
    }
}

impl<K: Compact> Keeps<K> for State {
    fn keep(&mut self, object: &K) {
        self.insert(object);
    }

    fn forget(&mut self, object: &K) {
        let meta = object.meta();
        self.remove(meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default());
    }
}

/// A compact cache of Liaison's objects of one kind, fed by their watch.
pub struct CompactCache<K> {
    fed: Fed<State>,
    kind: PhantomData<fn(&K)>,
}

impl<K> Default for CompactCache<K> {
    fn default() -> Self {
        CompactCache { fed: Fed::default(), kind: PhantomData }
    }
}

impl<K: Compact> CompactCache<K> {
    /// Takes one watch event.
    pub fn apply(&self, event: &watcher::Event<K>) {
        self.fed.apply(event);
    }

    /// Resolves once the first list has been taken.
    pub async fn wait_until_ready(&self) {
        self.fed.wait_until_ready().await;
    }

    /// What the cache says about the object `desired` describes; `None` if it has none.
    pub fn seen(&self, desired: &K) -> Option<Comparison> {
        let meta = desired.meta();
        let state = self.read();
        let live = state
            .get(meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default())?;
        let needs_recreate = live.immutable != desired.immutable_digest();
        Some(Comparison {
            matches: !needs_recreate && live.content == desired.content_digest(),
            needs_recreate,
            version: live.version,
        })
    }

    /// The objects of `namespace` that are Liaison's by its rules, by name.
    pub fn owned_in(&self, namespace: &str) -> Vec<String> {
        let state = self.read();
        let names = state.namespaces.get(namespace).into_iter().flat_map(Names::iter);
        names.filter(|(_, live)| live.link_owner.is_some()).map(|(name, _)| name.to_string()).collect()
    }

    /// `(namespace, name)` of the objects of `namespace` that the link with this UID owns and
    /// that, as last seen, still grant something.
    pub fn granting_of_link(&self, namespace: &str, link_uid: &str) -> Vec<(String, String)> {
        let link = Some(Uid::of(link_uid));
        let state = self.read();
        let names = state.namespaces.get(namespace).into_iter().flat_map(Names::iter);
        let granting = names.filter(|(_, live)| live.link_owner == link && !live.grants_nothing);
        granting.map(|(name, _)| (namespace.to_string(), name.to_string())).collect()
    }

    /// The namespaces holding an object serving the grant with this UID.
    pub fn namespaces_of_grant(&self, grant_uid: &str) -> Vec<String> {
        let grant = Uid::of(grant_uid);
        let state = self.read();
        let from_first = state.by_grant.range((grant, Arc::from(""))..);
        from_first.take_while(|(g, _)| *g == grant).map(|(_, namespace)| namespace.to_string()).collect()
    }

    /// `(namespace, name)` of each object whose owning link is not among `live_owners` and
    /// which is not already being deleted.
    pub fn orphans(&self, live_owners: &BTreeSet<String>) -> Vec<(String, String)> {
        let live: HashSet<Uid> = live_owners.iter().map(|uid| Uid::of(uid)).collect();
        let state = self.read();
        let mut orphans = Vec::new();
        for (namespace, names) in &state.namespaces {
            for (name, object) in names.iter() {
                if object.link_owner.is_some_and(|owner| !live.contains(&owner)) && !object.deleting {
                    orphans.push((namespace.to_string(), name.to_string()));
                }
            }
        }
        orphans
    }

    pub fn len(&self) -> usize {
        self.read().namespaces.values().map(Names::len).sum()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.fed.read()
    }
}

/// Labels are compared by the fixed set Liaison writes on every object of the kind (a label
/// others add is not ours); owner references by those of Liaison's own kinds.
impl Compact for RoleBinding {
    fn content_digest(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.immutable_digest().hash(&mut hasher);
        let subjects = self.subjects.as_deref().unwrap_or_default();
        subjects.len().hash(&mut hasher);
        for subject in subjects {
            (&subject.kind, &subject.name, &subject.namespace, &subject.api_group).hash(&mut hasher);
        }
        hash_meta(&self.metadata, &names::GRANT_BINDING_LABELS, &mut hasher);
        let annotations = self.metadata.annotations.as_ref();
        annotations.and_then(|annotations| annotations.get(names::ACCESS_ENDS_AT)).hash(&mut hasher);
        hasher.finish()
    }

    /// `roleRef`.
    fn immutable_digest(&self) -> u64 {
        let role_ref = &self.role_ref;
        hash_of(&(&role_ref.api_group, &role_ref.kind, &role_ref.name))
    }

    fn grant_uid(&self) -> Option<&str> {
        self.metadata.labels.as_ref()?.get(names::GRANT_UID).map(String::as_str)
    }
}

impl Compact for Role {
    fn content_digest(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        // Absent rules and no rules are the same Role.
        let rules = self.rules.as_deref().unwrap_or_default();
        rules.len().hash(&mut hasher);
        for PolicyRule { api_groups, non_resource_urls, resource_names, resources, verbs } in rules {
            (api_groups, non_resource_urls, resource_names, resources, verbs).hash(&mut hasher);
        }
        hash_meta(&self.metadata, &names::LEVEL_ROLE_LABELS, &mut hasher);
        hasher.finish()
    }

    fn grants_nothing(&self) -> bool {
        self.rules.as_deref().unwrap_or_default().is_empty()
    }
}

fn hash_meta(meta: &ObjectMeta, labels: &[&str], hasher: &mut DefaultHasher) {
    for key in labels {
        meta.labels.as_ref().and_then(|labels| labels.get(*key)).hash(hasher);
    }
    let liaison_owners =
        meta.owner_references.iter().flatten().filter(|o| o.api_version.starts_with("liaison.dev/"));
    for owner in liaison_owners {
        (
            &owner.api_version,
            &owner.kind,
            &owner.name,
            &owner.uid,
            owner.controller,
            owner.block_owner_deletion,
        )
            .hash(hasher);
    }
}

#[cfg(test)]
#[path = "compact_tests.rs"]
mod tests;
