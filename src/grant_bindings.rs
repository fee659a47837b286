//! The grant RoleBindings as the cluster has them, each reduced to what Liaison decides on.
//!
//! One binding per grant and client namespace is the bulk of what Liaison materializes. kube's
//! cache kept each as a whole `RoleBinding` with its key and index entries, ~2.5 KB, as much
//! again as the grant itself: at 10,000 grants a quarter of the operator's memory. Here each
//! is a name, a digest of everything Liaison compares, and the few facts reconciles ask
//! (whose grant, which link owns it, which resourceVersion): ~250 bytes.
//!
//! The digest is computed the same way from the live binding and from the desired one, so
//! "does the cluster say what Liaison wants" stays an equality, with the same meaning as
//! `Materialized::is_matched_by`: Liaison's labels and annotation, its owner references,
//! roleRef and subjects; labels, annotations and owners that others add are not compared.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, RwLock};

use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::runtime::watcher;

use crate::desired::names;
use crate::materialize::Seen;
use crate::materialize::recent::hash_of;
use crate::materialize::sweep::liaison_owner;

/// A UID as 128 bits. The API server's UIDs are UUIDs; anything else (hand-built objects in
/// tests) is hashed, where a collision could only make an object look owned by a live owner
/// (and so be kept), never the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Uid(u128);

impl Uid {
    fn of(text: &str) -> Uid {
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        match u128::from_str_radix(&hex, 16) {
            Ok(bits) if hex.len() == 32 => Uid(bits),
            _ => Uid(u128::from(hash_of(&text)) << 64 | u128::from(hash_of(&(text, 1u8)))),
        }
    }
}

/// What the cache knows of one grant binding.
#[derive(Debug)]
struct Live {
    resource_version: Option<Box<str>>,
    content: u64,
    role_ref: u64,
    grant: Option<Uid>,
    /// The link that owns it by Liaison's rules (its label and a controlling owner reference).
    link_owner: Option<Uid>,
    deleting: bool,
}

impl Live {
    fn of(binding: &RoleBinding) -> Live {
        let meta = &binding.metadata;
        Live {
            resource_version: meta.resource_version.as_deref().map(Box::from),
            content: content_digest(binding),
            role_ref: role_ref_digest(binding),
            grant: meta.labels.as_ref().and_then(|l| l.get(names::GRANT_UID)).map(|uid| Uid::of(uid)),
            link_owner: liaison_owner(meta).map(Uid::of),
            deleting: meta.deletion_timestamp.is_some(),
        }
    }
}

type Names = BTreeMap<Box<str>, Live>;

#[derive(Default)]
struct State {
    /// Namespace → binding name → what it says. The namespace strings are shared with
    /// `by_grant`.
    namespaces: HashMap<Arc<str>, Names>,
    /// Grant UID → the namespaces holding a binding of it.
    by_grant: HashMap<Uid, Vec<Arc<str>>>,
}

impl State {
    fn insert(&mut self, binding: &RoleBinding) {
        let (Some(namespace), Some(name)) = (binding.metadata.namespace.as_deref(), binding.metadata.name.as_deref()) else { return };
        let live = Live::of(binding);
        let grant = live.grant;
        let namespace = match self.namespaces.get_key_value(namespace) {
            Some((shared, _)) => shared.clone(),
            None => Arc::from(namespace),
        };
        if let Some(grant) = grant {
            let holding = self.by_grant.entry(grant).or_default();
            if !holding.contains(&namespace) {
                holding.push(namespace.clone());
            }
        }
        let previous = self.namespaces.entry(namespace.clone()).or_default().insert(name.into(), live);
        // A binding relabelled to another grant (by hand) no longer counts for the first.
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

    /// Forgets that `namespace` holds a binding of `grant`, unless another one of it is there.
    fn unlink(&mut self, grant: Uid, namespace: &str) {
        let still_there = self.namespaces.get(namespace).is_some_and(|names| names.values().any(|l| l.grant == Some(grant)));
        if still_there {
            return;
        }
        if let Some(holding) = self.by_grant.get_mut(&grant) {
            holding.retain(|ns| &**ns != namespace);
            if holding.is_empty() {
                self.by_grant.remove(&grant);
            }
        }
    }

    fn get(&self, namespace: &str, name: &str) -> Option<&Live> {
        self.namespaces.get(namespace).and_then(|names| names.get(name))
    }
}

/// The cache of grant bindings, fed by their watch.
pub struct GrantBindings {
    state: RwLock<State>,
    /// A re-list being received: it replaces the state once complete, as kube's caches do.
    relist: std::sync::Mutex<Option<State>>,
    ready: tokio::sync::watch::Sender<bool>,
}

impl Default for GrantBindings {
    fn default() -> Self {
        GrantBindings { state: RwLock::default(), relist: Default::default(), ready: tokio::sync::watch::Sender::new(false) }
    }
}

impl GrantBindings {
    /// Takes one watch event.
    pub fn apply(&self, event: &watcher::Event<RoleBinding>) {
        match event {
            watcher::Event::Apply(binding) => self.write().insert(binding),
            watcher::Event::Delete(binding) => {
                let meta = &binding.metadata;
                self.write().remove(meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default());
            }
            watcher::Event::Init => *self.relist.lock().expect("relist") = Some(State::default()),
            watcher::Event::InitApply(binding) => {
                self.relist.lock().expect("relist").get_or_insert_with(State::default).insert(binding);
            }
            watcher::Event::InitDone => {
                let listed = self.relist.lock().expect("relist").take().unwrap_or_default();
                *self.write() = listed;
                self.ready.send_replace(true);
            }
        }
    }

    /// Resolves once the first list has been taken.
    pub async fn wait_until_ready(&self) {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|ready| *ready).await;
    }

    /// What the cache says about the binding `desired` describes; `None` if it has none.
    pub fn seen(&self, desired: &RoleBinding) -> Option<Seen> {
        let meta = &desired.metadata;
        let state = self.read();
        let live = state.get(meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default())?;
        let needs_recreate = live.role_ref != role_ref_digest(desired);
        Some(Seen {
            matches: !needs_recreate && live.content == content_digest(desired),
            needs_recreate,
            resource_version: live.resource_version.as_deref().map(String::from),
        })
    }

    /// The bindings of `namespace` that are Liaison's by its rules, by name.
    pub fn owned_in(&self, namespace: &str) -> Vec<String> {
        let state = self.read();
        let names = state.namespaces.get(namespace).into_iter().flatten();
        names.filter(|(_, live)| live.link_owner.is_some()).map(|(name, _)| name.to_string()).collect()
    }

    /// The namespaces holding a binding of the grant with this UID.
    pub fn namespaces_of_grant(&self, grant_uid: &str) -> Vec<String> {
        self.read().by_grant.get(&Uid::of(grant_uid)).into_iter().flatten().map(|ns| ns.to_string()).collect()
    }

    /// `(namespace, name)` of each binding whose owning link is not among `live_owners` and
    /// which is not already being deleted.
    pub fn orphans(&self, live_owners: &BTreeSet<String>) -> Vec<(String, String)> {
        let live: HashSet<Uid> = live_owners.iter().map(|uid| Uid::of(uid)).collect();
        let state = self.read();
        let mut orphans = Vec::new();
        for (namespace, names) in &state.namespaces {
            for (name, binding) in names {
                if binding.link_owner.is_some_and(|owner| !live.contains(&owner)) && !binding.deleting {
                    orphans.push((namespace.to_string(), name.to_string()));
                }
            }
        }
        orphans
    }

    pub fn len(&self) -> usize {
        self.read().namespaces.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.read().namespaces.is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().expect("grant bindings")
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().expect("grant bindings")
    }
}

/// Everything `Materialized::is_matched_by` compares for a grant binding. Labels are compared
/// by the fixed set Liaison writes on every grant binding (a label others add is not ours);
/// owner references by those of Liaison's own kinds.
pub fn content_digest(binding: &RoleBinding) -> u64 {
    let mut hasher = DefaultHasher::new();
    role_ref_digest(binding).hash(&mut hasher);
    let subjects = binding.subjects.as_deref().unwrap_or_default();
    subjects.len().hash(&mut hasher);
    for subject in subjects {
        (&subject.kind, &subject.name, &subject.namespace, &subject.api_group).hash(&mut hasher);
    }
    let meta = &binding.metadata;
    for key in names::GRANT_BINDING_LABELS {
        meta.labels.as_ref().and_then(|labels| labels.get(key)).hash(&mut hasher);
    }
    meta.annotations.as_ref().and_then(|annotations| annotations.get(names::ACCESS_ENDS_AT)).hash(&mut hasher);
    let liaison_owners = meta.owner_references.iter().flatten().filter(|o| o.api_version.starts_with("liaison.dev/"));
    for owner in liaison_owners {
        (&owner.api_version, &owner.kind, &owner.name, &owner.uid, owner.controller, owner.block_owner_deletion).hash(&mut hasher);
    }
    hasher.finish()
}

fn role_ref_digest(binding: &RoleBinding) -> u64 {
    let role_ref = &binding.role_ref;
    hash_of(&(&role_ref.api_group, &role_ref.kind, &role_ref.name))
}

#[cfg(test)]
#[path = "grant_bindings_tests.rs"]
mod tests;
