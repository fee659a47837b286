use super::{Expiry, Review, ReviewStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// "We accept this partner": lives in the client's namespace and says what the partner may see.
// `Default` (no partner, no levels: an invalid link) only lets code that builds a link write the
// fields it sets.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "liaison.dev",
    version = "v1alpha1",
    kind = "ClientLink",
    namespaced,
    status = "ClientLinkStatus",
    shortname = "cl",
    category = "liaison",
    annotation("helm.sh/resource-policy", "keep"),
    printcolumn(name = "Partner", type_ = "string", json_path = ".spec.partner"),
    printcolumn(name = "Grants", type_ = "integer", json_path = ".status.grantCount"),
    printcolumn(name = "Expires", type_ = "string", json_path = ".spec.expiresAt"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", priority = 1, json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 63").message("a ClientLink's name is at most 63 characters (it is used as a label value)"),
)]
#[x_kube(validation = Rule::new("!has(self.accessKey) || self.accessLevels.exists(l, l.name == self.accessKey.accessLevel)").message("accessKey.accessLevel must name one of accessLevels").field_path(".accessKey.accessLevel"))]
#[x_kube(validation = Rule::new("!has(self.accessKey) || !self.accessLevels.exists(l, l.name == self.accessKey.accessLevel && has(l.onRequest))").message("the access key's level cannot be an on-request level").field_path(".accessKey.accessLevel"))]
#[x_kube(validation = Rule::new("!self.accessLevels.exists(l, has(l.onRequest)) || (has(self.approvers) && size(self.approvers) > 0)").message("a link with on-request levels names its approvers").field_path(".approvers"))]
#[x_kube(validation = Rule::new("self.accessLevels.all(l, self.accessLevels.exists_one(m, m.name == l.name))").message("access level names must be unique").field_path(".accessLevels"))]
#[serde(rename_all = "camelCase")]
pub struct ClientLinkSpec {
    /// The Partner accepted by this namespace. Immutable: link another partner with a new link.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.partner is immutable; delete the link and create a new one"))]
    pub partner: String,
    /// What the partner may see, as named levels; grants pick one by name.
    #[schemars(length(min = 1, max = 16))]
    pub access_levels: Vec<AccessLevel>,
    /// A credential for the partner's automation, bound to one level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<AccessKey>,
    /// Access through this link ends at this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Expiry>,
    /// While true, the link grants nothing; set back to false to resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
    /// The UID of the Partner this link accepts. Optional: Liaison records the Partner it first
    /// granted through (`status.partnerUid`), and a Partner deleted and created again under the
    /// same name, which may be another organisation, grants nothing here (`PartnerReplaced`)
    /// until the client sets this to the new Partner's UID, or re-creates the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub partner_uid: Option<String>,
    /// The most AccessGrants in force through this link at once (default 250, at most 1000).
    /// Each is a RoleBinding in this namespace, counted against its quota: the partner's oldest
    /// grants are admitted first, the others refused (`GrantLimitReached`) until one goes or the
    /// limit is raised. `status.grantsOverLimit` counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub max_grants: Option<i32>,
    /// Re-confirmation the client requires of itself: unless someone the client trusts (never
    /// one of the partner's identities) reviews the link every period, it is suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// Who may approve requests for on-request levels: user names, as the API server
    /// authenticates them. Never the requester, never one of the partner's identities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 253)))]
    pub approvers: Vec<String>,
}

/// How many grants a link puts in force when `spec.maxGrants` is not set.
pub const DEFAULT_MAX_GRANTS: i32 = 250;

impl ClientLinkSpec {
    pub fn is_suspended(&self) -> bool {
        self.suspended.unwrap_or(false)
    }

    /// `spec.maxGrants`, or its default; a negative number (never admitted) admits none.
    pub fn grant_limit(&self) -> usize {
        usize::try_from(self.max_grants.unwrap_or(DEFAULT_MAX_GRANTS)).unwrap_or(0)
    }

    pub fn level(&self, name: &str) -> Option<&AccessLevel> {
        self.access_levels.iter().find(|l| l.name == name)
    }
}

/// One named level of access, from exactly one source.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.clusterRole), has(self.role), has(self.rules)].filter(x, x).size() == 1").message("an access level takes exactly one of clusterRole, role or rules"))]
pub struct AccessLevel {
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// A ClusterRole whose rules apply in this namespace only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub cluster_role: Option<String>,
    /// A Role in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub role: Option<String>,
    /// Inline rules, materialized as a Role in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub rules: Option<Vec<AccessRule>>,
    /// Granted only on request: a grant of this level makes its subjects eligible, and an
    /// `AccessRequest` approved by one of the link's `approvers` binds them until it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_request: Option<OnRequest>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnRequest {
    /// The longest a request may last: `4h`, `30m`, `1d`.
    #[schemars(
        length(min = 2, max = 32),
        regex(pattern = r"^([0-9]{1,5}d)?([0-9]{1,6}h)?([0-9]{1,8}m)?([0-9]{1,9}s)?$")
    )]
    #[x_kube(validation = Rule::new("self.matches('[1-9]')").message("maxDuration is longer than zero, such as 4h"))]
    pub max_duration: String,
}

/// An RBAC rule for namespaced resources (no nonResourceURLs: they mean nothing in a Role).
/// What the API server refuses in a Role's rule is refused here, at admission: a rule with no
/// API group, resource or verb would otherwise stop every write of its namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.apiGroups) && size(self.apiGroups) > 0").message("a rule names at least one API group: apiGroups: [\"\"] for the core group (the API server refuses a Role rule without one)"))]
pub struct AccessRule {
    // Optional for reading only: a stored link from before the rule above still parses, and
    // the planner refuses its level (`InvalidLevel`).
    #[serde(default)]
    #[schemars(length(max = 16), inner(length(max = 253)))]
    pub api_groups: Vec<String>,
    #[schemars(length(min = 1, max = 32), inner(length(min = 1, max = 253)))]
    pub resources: Vec<String>,
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 63)))]
    pub verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub resource_names: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessKey {
    /// The level the key's ServiceAccount is bound to.
    #[schemars(length(min = 1, max = 63))]
    pub access_level: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientLinkStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The partner's AccessGrants that use this link, with their subject counts: the refused
    /// ones first, then those in force, at most 50 (the RoleBindings Liaison made here show
    /// every grant in force, with its subjects).
    #[serde(default)]
    pub grants: Vec<LinkGrantSummary>,
    /// The partner's AccessGrants in force through this link.
    #[serde(default)]
    pub grant_count: i32,
    /// The partner's AccessGrants using this link beyond the 50 listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants_unlisted: Option<i32>,
    /// `namespace/name` of the Secret holding the access key's kubeconfig.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_secret: Option<String>,
    /// When access through this link ends, if it is time-bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_ends_at: Option<Time>,
    /// The UID of the Partner this link accepted: `spec.partnerUid`, or the Partner it first
    /// granted through. Another Partner under the same name grants nothing here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_uid: Option<String>,
    /// The most grants the link puts in force at once (`spec.maxGrants`, or its default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_limit: Option<i32>,
    /// The partner's grants refused because the limit is reached (`GrantLimitReached`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants_over_limit: Option<i32>,
    /// The reviews counted and when the next one is due (with `spec.review`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewStatus>,
    /// The partner's open requests for on-request levels here (pending, or approved and in
    /// force; at most 50), for the approvers: who asks what, why, and where each stands (answer
    /// one by its UID with an AccessApproval). Answered and ended ones keep their record in
    /// their own status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<LinkRequestSummary>,
    /// The partner's open requests beyond the 50 listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_unlisted: Option<i32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkRequestSummary {
    /// `namespace/name` of the AccessRequest.
    pub request: String,
    pub uid: String,
    pub requested_by: String,
    pub grant: String,
    /// Who would get the level (`Kind:name`).
    pub subjects: Vec<String>,
    pub duration: String,
    pub reason: String,
    /// `Pending`, `Approved`, `Denied`, `Ended` or `Refused`.
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Time>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkGrantSummary {
    /// `namespace/name` of the AccessGrant.
    pub grant: String,
    pub access_level: String,
    pub subjects: i32,
    pub granted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
