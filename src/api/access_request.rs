//! Just-in-time access: a partner asks (`AccessRequest`, in its home namespace), an approver
//! the client's link names answers (`AccessApproval`, in the client namespace). Each party
//! writes only in its own namespace, and neither answers itself.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};

use super::Subject;
use serde::{Deserialize, Serialize};

/// "Let these people of ours use this on-request level in this client for a while, because":
/// lives in the partner's home namespace. Immutable: ask again with a new request.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "liaison.dev",
    version = "v1alpha1",
    kind = "AccessRequest",
    namespaced,
    status = "AccessRequestStatus",
    shortname = "areq",
    category = "liaison",
    annotation("helm.sh/resource-policy", "keep"),
    printcolumn(name = "Client", type_ = "string", json_path = ".spec.client"),
    printcolumn(name = "Grant", type_ = "string", json_path = ".spec.grant"),
    printcolumn(name = "Duration", type_ = "string", json_path = ".spec.duration"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ends", type_ = "string", json_path = ".status.endsAt"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 63").message("an AccessRequest's name is at most 63 characters (it is used as a label value)"),
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("an AccessRequest is immutable: make a new one"))]
#[serde(rename_all = "camelCase")]
pub struct AccessRequestSpec {
    /// The AccessGrant of this namespace whose subjects get the access: it names an on-request
    /// level of the client's link.
    #[schemars(length(min = 1, max = 63))]
    pub grant: String,
    /// The client namespace, one of the grant's clients.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub client: String,
    /// Who gets it: some of the grant's subjects. The approval is for these people; adding
    /// someone to the grant later gives them nothing through this request.
    #[schemars(length(min = 1, max = 32))]
    pub subjects: Vec<Subject>,
    /// For how long, from approval: `4h`, `30m` (at most the level's `onRequest.maxDuration`).
    #[schemars(
        length(min = 2, max = 32),
        regex(pattern = r"^([0-9]{1,5}d)?([0-9]{1,6}h)?([0-9]{1,8}m)?([0-9]{1,9}s)?$")
    )]
    #[x_kube(validation = Rule::new("self.matches('[1-9]')").message("duration is longer than zero, such as 4h"))]
    pub duration: String,
    /// Why, for the approver and the record.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// Who asks: the user writing the request (the chart's admission policy checks it).
    #[schemars(length(min = 1, max = 253))]
    pub requested_by: String,
}

/// Where a request stands.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessRequestStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// `Pending`, `Approved` (access until `endsAt`), `Denied`, `Ended`, or `Refused` (the
    /// request itself cannot be granted; the condition says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The approver who approved or denied it, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<String>,
    /// When the approved access ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Time>,
}

/// An approver's answer to one request: lives in the client namespace. Immutable; its time is
/// its creation, which the API server sets.
// Clippy reads the print columns' repeated `type_` as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "liaison.dev",
    version = "v1alpha1",
    kind = "AccessApproval",
    namespaced,
    shortname = "aappr",
    category = "liaison",
    annotation("helm.sh/resource-policy", "keep"),
    printcolumn(name = "Request", type_ = "string", json_path = ".spec.request.name"),
    printcolumn(name = "Decision", type_ = "string", json_path = ".spec.decision"),
    printcolumn(name = "By", type_ = "string", json_path = ".spec.decidedBy"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("an AccessApproval is immutable: make a new one"))]
#[serde(rename_all = "camelCase")]
pub struct AccessApprovalSpec {
    /// The request answered, by UID: a request deleted and made again under the same name is
    /// another request.
    pub request: RequestRef,
    pub decision: Decision,
    /// Who answers: the user writing the approval (the chart's admission policy checks it); one
    /// of the link's `approvers`, never the requester (Liaison checks it).
    #[schemars(length(min = 1, max = 253))]
    pub decided_by: String,
    /// Why, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub reason: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestRef {
    /// The partner's home namespace, where the request lives.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    #[schemars(length(min = 1, max = 64))]
    pub uid: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Decision {
    Approve,
    Deny,
}
