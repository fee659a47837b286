use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use std::num::NonZeroI64;

use super::{Expiry, Review, ReviewStatus, Subject};

// The operator caches every grant, each in an allocation of its own: the lists it never grows
// are boxed slices (16 bytes, not a vector's 24) so that a cached grant takes 512 bytes rather
// than jemalloc's next size, 640 (1.2 MiB at 10,000 grants; a test below holds it). Not a doc
// comment: that would be the CRD's description.
/// "These people work for these clients": lives in the partner's home namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "liaison.dev",
    version = "v1alpha1",
    kind = "AccessGrant",
    namespaced,
    status = "AccessGrantStatus",
    shortname = "ag",
    category = "liaison",
    annotation("helm.sh/resource-policy", "keep"),
    printcolumn(name = "Clients", type_ = "string", json_path = ".spec.clients"),
    printcolumn(name = "Level", type_ = "string", json_path = ".spec.accessLevel"),
    printcolumn(name = "Subjects", type_ = "integer", json_path = ".status.subjectCount"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", priority = 1, json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 63").message("an AccessGrant's name is at most 63 characters (it is used as a label value)"),
)]
#[serde(rename_all = "camelCase")]
pub struct AccessGrantSpec {
    /// Client namespaces; each must hold a ClientLink to this partner.
    #[schemars(
        length(min = 1, max = 128),
        inner(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub clients: Box<[String]>,
    /// The name of an access level of each client's link.
    #[schemars(length(min = 1, max = 63))]
    pub access_level: String,
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub subjects: Vec<Subject>,
    /// Access through this grant ends at this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Expiry>,
    /// Re-confirmation the partner requires of itself: unless one of its admins (never one of
    /// the grant's own subjects) reviews the grant every period, it is suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Box<Review>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessGrantStatus {
    // Non-zero (generations start at 1) so that the field takes 8 bytes, not 16: room for
    // `review` in a cached grant's 512 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "generation")]
    #[schemars(with = "Option<i64>")]
    pub observed_generation: Option<NonZeroI64>,
    #[serde(default)]
    pub conditions: Box<[Condition]>,
    /// Per client namespace: granted or refused, and why.
    #[serde(default)]
    pub clients: Box<[ClientAccess]>,
    #[serde(default)]
    pub subject_count: i32,
    #[serde(default)]
    pub granted_clients: i32,
    /// The reviews counted and when the next one is due (with `spec.review`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Box<ReviewStatus>>,
}

/// A generation as written; 0, which the API server never gives, reads as none.
fn generation<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<NonZeroI64>, D::Error> {
    Ok(Option::<i64>::deserialize(deserializer)?.and_then(NonZeroI64::new))
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientAccess {
    pub namespace: String,
    pub granted: bool,
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_binding: Option<String>,
    /// When access to this client ends by itself (the link's or the grant's expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_ends_at: Option<Time>,
}

#[cfg(test)]
mod tests {
    use super::AccessGrant;

    #[test]
    fn a_cached_grant_fits_in_512_bytes() {
        // kube's cache keeps each grant behind an `Arc`: two counters, then the grant.
        let cached = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<AccessGrant>();
        assert!(cached <= 512, "{cached} bytes");
    }
}
