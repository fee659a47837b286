//! Writing the desired objects and removing the rest.
//!
//! Reads come from the shared caches, so that a reconcile with nothing to change issues no
//! request at all; writes are server-side applies owned by the `liaison` field manager,
//! forced, so that hand edits of what Liaison owns are put back. Revocation lists from the
//! API server itself: a stale cache must never hide a binding that should go.
//!
//! - `Writer`: every write and removal, with the metrics and recent writes they keep;
//! - `namespace`: a client namespace made to match its plan; `suite`: a partner's guest suite;
//! - `access_key`: the key's token and kubeconfig Secret; `orphans`: what lost its owner;
//! - `recent`: writes the caches have not shown yet.

pub mod access_key;
pub mod namespace;
pub mod orphans;
pub mod recent;
pub mod suite;

use std::fmt::Debug;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use recent::{RecentWrites, Write};

use crate::cache::compact::{Compact, CompactCache};
use crate::cache::compare::{Comparison, Materialized};
use crate::cache::index::bare_ref;
use crate::cache::keys::{self, Version};
use crate::desired::names::FIELD_MANAGER;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing {kind} {name}: {}", said(.source))]
    Write { kind: &'static str, name: String, source: kube::Error },
    #[error("deleting {kind} {name}: {}", said(.source))]
    Delete { kind: &'static str, name: String, source: kube::Error },
    #[error("reading {kind}: {}", said(.source))]
    Read { kind: &'static str, source: kube::Error },
    #[error("listing {kind}: {}", said(.source))]
    List { kind: &'static str, source: kube::Error },
    #[error("requesting a token for ServiceAccount {name}: {}", said(.source))]
    Token { name: String, source: kube::Error },
    #[error("encoding the access key's kubeconfig: {0}")]
    Kubeconfig(#[from] serde_yaml::Error),
}

/// A kube error as users read it in a condition: the API server's own words and code, without
/// the debug dump of its `Status` that kube's message appends.
pub fn said(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} ({} {})", status.message, status.code, status.reason),
        other => other.to_string(),
    }
}

/// The first failure of a pipeline whose every step runs whatever another failed: that is
/// how writes and revocations fail closed (a refused write never holds back a removal).
pub struct FirstFailure<E = Error>(Option<E>);

impl<E> Default for FirstFailure<E> {
    fn default() -> Self {
        FirstFailure(None)
    }
}

impl<E: std::fmt::Display> FirstFailure<E> {
    /// The step's value, or `None` after remembering its error (the first one is reported).
    pub fn note<T>(&mut self, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                match &self.0 {
                    None => self.0 = Some(error),
                    Some(_) => tracing::warn!(%error, "another step of the same reconcile failed"),
                }
                None
            }
        }
    }

    pub fn into_result(self) -> Result<(), E> {
        self.0.map_or(Ok(()), Err)
    }
}

/// What `ensure` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Written,
}

fn kind_of<K: Resource<DynamicType = ()>>() -> &'static str {
    // `K::kind` returns a Cow from a static str for every k8s-openapi type.
    match K::kind(&()) {
        std::borrow::Cow::Borrowed(kind) => kind,
        std::borrow::Cow::Owned(_) => "object",
    }
}

/// The API for an object of either scope, from where the object says it lives.
pub trait ScopedApi: Resource<DynamicType = ()> + Sized {
    /// The API that holds an object of this namespace (ignored for cluster-scoped kinds).
    fn api_in(client: &Client, namespace: &str) -> Api<Self>;
    /// The API to list from: one namespace, or all of them.
    fn api_over(client: &Client, namespace: Option<&str>) -> Api<Self>;
}

macro_rules! namespaced {
    ($($t:ty),*) => {$(
        impl ScopedApi for $t {
            fn api_in(client: &Client, namespace: &str) -> Api<Self> {
                Api::namespaced(client.clone(), namespace)
            }
            fn api_over(client: &Client, namespace: Option<&str>) -> Api<Self> {
                match namespace {
                    Some(ns) => Api::namespaced(client.clone(), ns),
                    None => Api::all(client.clone()),
                }
            }
        }
    )*};
}
macro_rules! cluster {
    ($($t:ty),*) => {$(
        impl ScopedApi for $t {
            fn api_in(client: &Client, _namespace: &str) -> Api<Self> {
                Api::all(client.clone())
            }
            fn api_over(client: &Client, _namespace: Option<&str>) -> Api<Self> {
                Api::all(client.clone())
            }
        }
    )*};
}
namespaced!(Role, RoleBinding, ServiceAccount, Secret);
cluster!(ClusterRole, ClusterRoleBinding, Namespace);

/// Every write and removal Liaison makes goes through one `Writer`: the client, the metrics
/// each write counts in, and the writes the caches have not shown yet. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    client: Client,
    metrics: Metrics,
    recent: Arc<RecentWrites>,
}

impl Writer {
    pub fn new(client: Client, metrics: Metrics, recent: Arc<RecentWrites>) -> Writer {
        Writer { client, metrics, recent }
    }

    /// The client, for the few reads of what no cache holds (an access key's Secret).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The metrics every write counts in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The writes the caches have not shown yet (statuses and finalizers are remembered too).
    pub fn recent(&self) -> &RecentWrites {
        &self.recent
    }

    /// Makes the object match `desired`, writing only if the cached copy differs and the same
    /// write was not just made over it.
    pub async fn ensure<K>(&self, cache: &Store<K>, desired: &K) -> Result<Outcome, Error>
    where
        K: Materialized + ScopedApi + Clone + Debug + Serialize + DeserializeOwned,
    {
        let seen = cache.get(&bare_ref(desired)).map(|existing| Comparison {
            matches: desired.is_matched_by(&existing),
            needs_recreate: desired.needs_recreate(&existing),
            version: Version::of(existing.meta()),
        });
        self.write_unless_seen(desired, seen).await
    }

    /// `ensure`, against a compact cache (grant bindings, level Roles).
    pub async fn ensure_compact<K>(&self, cache: &CompactCache<K>, desired: &K) -> Result<Outcome, Error>
    where
        K: Compact + ScopedApi + Clone + Debug + Serialize + DeserializeOwned,
    {
        self.write_unless_seen(desired, cache.seen(desired)).await
    }

    async fn write_unless_seen<K>(&self, desired: &K, seen: Option<Comparison>) -> Result<Outcome, Error>
    where
        K: Materialized + ScopedApi + Clone + Debug + Serialize + DeserializeOwned,
    {
        if seen.as_ref().is_some_and(|seen| seen.matches) {
            return Ok(Outcome::Unchanged);
        }
        let key = keys::key::<K>(desired.meta().namespace.as_deref(), &desired.name_any());
        let over = seen.as_ref().and_then(|seen| seen.version);
        let digest = keys::digest(desired);
        let now = std::time::Instant::now();
        if self.recent.just_made(key, Write::Object, over, digest, now) {
            return Ok(Outcome::Unchanged);
        }
        let outcome = self.write(desired, seen.is_some_and(|seen| seen.needs_recreate)).await?;
        self.recent.made(key, Write::Object, over, digest, now);
        Ok(outcome)
    }

    async fn write<K>(&self, desired: &K, recreate: bool) -> Result<Outcome, Error>
    where
        K: Materialized + ScopedApi + Clone + Debug + Serialize + DeserializeOwned,
    {
        let (name, namespace) = (desired.name_any(), desired.meta().namespace.clone());
        let api = K::api_in(&self.client, namespace.as_deref().unwrap_or_default());
        if recreate {
            self.delete(&api, &name).await?;
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.metrics.write(kind_of::<K>());
        match api.patch(&name, &params, &Patch::Apply(desired)).await {
            Ok(_) => Ok(Outcome::Written),
            // The cache missed an object whose immutable fields differ: replace it.
            Err(kube::Error::Api(status)) if refuses_change_of(&status, desired.immutable_fields()) => {
                self.delete(&api, &name).await?;
                self.metrics.write(kind_of::<K>());
                let written = api.patch(&name, &params, &Patch::Apply(desired)).await;
                written.map(|_| Outcome::Written).map_err(|source| Error::Write {
                    kind: kind_of::<K>(),
                    name,
                    source,
                })
            }
            Err(source) => Err(Error::Write { kind: kind_of::<K>(), name, source }),
        }
    }

    /// Deletes the object; an object already gone is fine.
    async fn delete<K>(&self, api: &Api<K>, name: &str) -> Result<(), Error>
    where
        K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
    {
        self.metrics.write(kind_of::<K>());
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(Error::Delete { kind: kind_of::<K>(), name: name.to_string(), source }),
        }
    }

    /// Deletes the named objects, each given as `(namespace, name)` (the namespace is ignored
    /// for cluster-scoped kinds), a few at a time. Returns how many; stops at the first failure.
    pub async fn prune_named<K>(&self, named: Vec<(String, String)>) -> Result<usize, Error>
    where
        K: ScopedApi + Clone + Debug + DeserializeOwned,
    {
        let count = named.len();
        futures::stream::iter(named)
            .map(|(namespace, name)| async move { self.delete(&K::api_in(&self.client, &namespace), &name).await })
            .buffer_unordered(DELETIONS_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        Ok(count)
    }

    /// Deletes every cached object that `stale` selects.
    pub async fn prune_cached<K>(
        &self,
        cached: Vec<Arc<K>>,
        stale: impl Fn(&K) -> bool,
    ) -> Result<usize, Error>
    where
        K: ScopedApi + Clone + Debug + DeserializeOwned,
    {
        let named = cached.iter().filter(|o| stale(o)).map(|o| namespace_and_name(o.meta())).collect();
        self.prune_named::<K>(named).await
    }

    /// The first step of a revocation: the named Roles lose every rule, a write each, all at
    /// once. From that write no binding to them grants anything, however many there are, so
    /// access ends in one round trip whatever the number of grants; the bindings, and the Roles
    /// themselves, are removed after. The Roles keep their names meanwhile, so that nobody can
    /// create a Role under one of them and inherit its bindings. Returns how many it emptied.
    pub async fn empty_roles(&self, named: Vec<(String, String)>) -> Result<usize, Error> {
        let count = named.len();
        let nothing = Patch::Merge(serde_json::json!({"rules": []}));
        futures::stream::iter(named)
            .map(|(namespace, name)| {
                let nothing = &nothing;
                async move {
                    self.metrics.write("Role");
                    let roles = Api::<Role>::namespaced(self.client.clone(), &namespace);
                    match roles.patch(&name, &PatchParams::default(), nothing).await {
                        Ok(_) => Ok(()),
                        // Already gone: it grants nothing either.
                        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                        Err(source) => Err(Error::Write { kind: "Role", name, source }),
                    }
                }
            })
            .buffer_unordered(DELETIONS_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        Ok(count)
    }

    /// Revocation: lists from the API server (never the cache) and deletes every object the
    /// label selector finds and `owned` confirms from its metadata. Returns how many it deleted.
    pub async fn revoke<K>(
        &self,
        namespace: Option<&str>,
        selector: &str,
        owned: impl Fn(&ObjectMeta) -> bool,
    ) -> Result<usize, Error>
    where
        K: ScopedApi + Clone + Debug + DeserializeOwned,
    {
        let named = self.listed::<K>(namespace, selector, owned).await?;
        self.prune_named::<K>(named).await
    }

    /// The objects of `namespace` (all namespaces if `None`) that the label selector finds and
    /// `owned` confirms, listed from the API server (never the cache), as `(namespace, name)`:
    /// what a revocation is about to remove.
    pub async fn listed<K>(
        &self,
        namespace: Option<&str>,
        selector: &str,
        owned: impl Fn(&ObjectMeta) -> bool,
    ) -> Result<Vec<(String, String)>, Error>
    where
        K: ScopedApi + Clone + Debug + DeserializeOwned,
    {
        let listed = K::api_over(&self.client, namespace)
            .list_metadata(&ListParams::default().labels(selector))
            .await
            .map_err(|source| Error::List { kind: kind_of::<K>(), source })?;
        Ok(listed
            .items
            .iter()
            .filter(|item| owned(&item.metadata))
            .map(|item| namespace_and_name(&item.metadata))
            .collect())
    }

    /// Mints the access key's token and writes its Secret when due (`access_key`). Returns
    /// when it must next be refreshed.
    pub async fn ensure_key_secret(
        &self,
        plan: &crate::desired::client::AccessKeyPlan,
        account: &ServiceAccount,
        existing: Option<&Secret>,
        settings: &access_key::KeySettings,
        now: jiff::Timestamp,
    ) -> Result<jiff::Timestamp, Error> {
        access_key::ensure_secret(&self.client, plan, account, existing, settings, now, &self.metrics).await
    }
}

/// Whether the API server refused a write because it would change one of `fields` in place.
/// Only then is deleting and creating the object the way through: a 422 can also come from
/// an admission policy, which a deletion would not satisfy, and which would then keep the
/// object from coming back.
fn refuses_change_of(status: &kube::core::Status, fields: &[&str]) -> bool {
    let causes = status.details.as_ref().map(|d| &d.causes[..]).unwrap_or_default();
    status.code == 422 && causes.iter().any(|cause| fields.contains(&cause.field.as_str()))
}

/// How many deletions of one prune or revocation are in flight at once: a link that hundreds
/// of grants name loses its bindings in a few round trips' time, not one round trip each.
const DELETIONS_IN_FLIGHT: usize = 16;

fn namespace_and_name(meta: &ObjectMeta) -> (String, String) {
    (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(field: &str, message: &str) -> kube::core::Status {
        serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 422, "reason": "Invalid", "message": message,
            "details": {"causes": [{"reason": "FieldValueInvalid", "field": field, "message": message}]},
        }))
        .unwrap()
    }

    #[test]
    fn only_a_refused_change_of_an_immutable_field_replaces_the_object() {
        let role_ref = invalid("roleRef", "cannot change roleRef");
        assert!(refuses_change_of(&role_ref, &["roleRef"]));
        assert!(!refuses_change_of(&role_ref, &[]), "a kind without immutable fields is never replaced");
        let policy: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 422, "reason": "Invalid",
            "message": "ValidatingAdmissionPolicy 'freeze' with binding 'freeze' denied request: frozen",
        }))
        .unwrap();
        assert!(
            !refuses_change_of(&policy, &["roleRef"]),
            "an admission policy's refusal is reported, not worked around"
        );
        assert!(!refuses_change_of(&invalid("subjects[0].kind", "unsupported"), &["roleRef"]));
    }

    #[test]
    fn api_errors_read_as_the_api_server_said_them() {
        let error = kube::Error::Api(Box::new(invalid("roleRef", "cannot change roleRef")));
        assert_eq!(said(&error), "cannot change roleRef (422 Invalid)");
    }
}
