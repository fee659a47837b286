//! How the caches and the write side name objects and contents: 64-bit digests, the same
//! within one run of the operator, so that a cache keeps 8 bytes where it would keep a string.

use std::hash::{Hash, Hasher};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::Serialize;

/// An object (its writes, its cached state), as a digest of its kind, namespace and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(u64);

/// A resourceVersion as a digest. Writes only ask whether the cache still shows the version
/// they were decided on; 8 bytes answer that without a string per cached object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version(u64);

impl Version {
    pub fn of(meta: &ObjectMeta) -> Option<Version> {
        meta.resource_version.as_deref().map(Version::from)
    }
}

impl From<&str> for Version {
    fn from(resource_version: &str) -> Self {
        Version(hash_of(resource_version))
    }
}

/// The key of one object.
pub fn key<K: Resource<DynamicType = ()>>(namespace: Option<&str>, name: &str) -> Key {
    Key(hash_of(&(K::kind(&()), namespace.unwrap_or_default(), name)))
}

/// The key of a cached or written object.
pub fn key_of<K: Resource<DynamicType = ()>>(object: &K) -> Key {
    key::<K>(object.meta().namespace.as_deref(), object.meta().name.as_deref().unwrap_or_default())
}

/// A digest of what a write sends.
pub fn digest<T: Serialize>(sent: &T) -> u64 {
    hash_of(&serde_json::to_vec(sent).unwrap_or_default())
}

/// A 64-bit hash of a value, the same within one run of the operator.
pub fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}
