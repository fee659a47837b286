use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::Subject;

/// An outside organisation: its guest suite (home namespace), its admins, and the only
/// identities it may ever grant. Created by the platform admin; it is the access ceiling's
/// unit of trust.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "liaison.dev",
    version = "v1alpha1",
    kind = "Partner",
    status = "PartnerStatus",
    shortname = "pt",
    category = "liaison",
    annotation("helm.sh/resource-policy", "keep"),
    printcolumn(name = "Display Name", type_ = "string", json_path = ".spec.displayName"),
    printcolumn(name = "Home", type_ = "string", json_path = ".spec.homeNamespace"),
    printcolumn(name = "Clients", type_ = "integer", json_path = ".status.clientCount"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 63").message("a Partner's name is at most 63 characters (it is used as a label value)"),
)]
#[serde(rename_all = "camelCase")]
pub struct PartnerSpec {
    /// Human-readable name of the organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub display_name: Option<String>,
    /// The partner's guest suite: created if absent, labelled, never deleted.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("homeNamespace is immutable"))]
    #[x_kube(validation = Rule::new("self != 'default' && !self.startsWith('kube-')").message("default and kube-* namespaces are never a partner's home"))]
    pub home_namespace: String,
    /// Take `homeNamespace` as the home although it already exists (Liaison did not create
    /// it for this Partner). Its Secrets and ServiceAccounts then become readable by the
    /// partner's admins, so it also takes the consent of whoever administers namespaces: the
    /// namespace labelled `liaison.dev/adoptable-by: <this Partner's name>`, a label the
    /// operator cannot write. Without both, an existing namespace is refused (`HomeNotOwned`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt_existing_home: Option<bool>,
    /// The internal User or Group that owns the relationship; may read the partner's objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.kind != 'ServiceAccount'").message("the responsible party is a User or a Group"))]
    pub responsible_party: Option<Subject>,
    /// Partner Admins: manage AccessGrants and robots (ServiceAccounts) in the home namespace.
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub admins: Vec<Subject>,
    /// The only outside identities this partner may ever grant.
    #[serde(default)]
    pub identities: Identities,
    /// Which namespaces may link to this partner; absent means any namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_namespace_selector: Option<LabelSelector>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Identities {
    /// A User subject must end with one of these: `@` and a domain with a dot (for example
    /// `@techhelp.example`), so that a suffix never matches another organisation's users.
    #[serde(default)]
    #[schemars(length(max = 16), inner(length(min = 4, max = 253)))]
    #[x_kube(validation = Rule::new("self.all(s, s.matches('^@[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?([.][A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)+$'))").message("a user suffix is @ and a domain with a dot, such as @techhelp.example"))]
    pub user_suffixes: Vec<String>,
    /// A Group subject must be one of these.
    #[serde(default)]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    #[x_kube(validation = Rule::new("self.all(g, !g.startsWith('system:'))").message("system:* groups can never be granted"))]
    pub groups: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The client namespaces that link to this partner, with what is granted there: every
    /// active one, and the first few refused ones (anyone may create a link naming a partner;
    /// `refusedLinks` counts them all).
    #[serde(default)]
    pub clients: Vec<PartnerClient>,
    /// How many links naming this partner are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_links: Option<i32>,
    #[serde(default)]
    pub client_count: i32,
    #[serde(default)]
    pub grant_count: i32,
    /// True when the home namespace existed and was adopted (`spec.adoptExistingHome`) rather
    /// than created by Liaison.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_adopted: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerClient {
    pub namespace: String,
    pub link: String,
    /// Whether the link is active (Ready) for this partner.
    pub active: bool,
    /// Names of the AccessGrants in the home namespace that reach this client.
    #[serde(default)]
    pub grants: Vec<String>,
    /// Distinct subjects with access to this client.
    pub subjects: i32,
}
