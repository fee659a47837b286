//! The custom resources of `liaison.dev/v1alpha1` and the types they share.
//!
//! Everything a malformed spec can get wrong is refused at admission by the schema and CEL
//! rules declared here; what can only be judged against other objects (identities, ceiling,
//! conflicts) is judged by the controller and reported through conditions.

mod access_grant;
mod access_request;
mod client_link;
mod common;
mod expiry;
mod partner;
mod review;

pub use access_grant::{AccessGrant, AccessGrantSpec, AccessGrantStatus, ClientAccess};
pub use access_request::{
    AccessApproval, AccessApprovalSpec, AccessRequest, AccessRequestSpec, AccessRequestStatus, Decision,
    RequestRef,
};
pub use client_link::{
    AccessKey, AccessLevel, AccessRule, ClientLink, ClientLinkSpec, ClientLinkStatus, DEFAULT_MAX_GRANTS,
    LinkGrantSummary, LinkRequestSummary, OnRequest,
};
pub use common::{READY, Subject, SubjectKind, condition_is_true, ready_condition};
pub use expiry::Expiry;
pub use partner::{Identities, Partner, PartnerClient, PartnerSpec, PartnerStatus};
pub use review::{PERIOD_PATTERN, Review, ReviewStatus, Reviewed};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group every Liaison resource lives in.
pub const GROUP: &str = "liaison.dev";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";

/// All CRDs, in the order they are printed and installed.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![Partner::crd(), ClientLink::crd(), AccessGrant::crd(), AccessRequest::crd(), AccessApproval::crd()]
}
