//! Builders for Liaison objects in tests: a partner with its own identities, client
//! namespaces, links and grants, each with unique names so that tests can run side by side.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use liaison::api::{AccessGrant, ClientLink, Partner};
use serde_json::{Value, json};

use super::{PODS, can, fresh_namespace_with, unique, until};

pub const WAIT: Duration = Duration::from_secs(30);
pub const ALLOWED: (&str, &str) = ("liaison.dev/partners-allowed", "true");

/// A partner whose users end with `@<name>.example` and whose group is `<name>:staff`.
/// What `PartnerFixture::with_bob_granted` set up: the link is `link`, the grant `bob`.
pub struct BobGranted {
    pub partner: PartnerFixture,
    pub ns: String,
    pub bob: String,
}

pub struct PartnerFixture {
    pub name: String,
    pub home: String,
    pub admin: Client,
}

impl PartnerFixture {
    pub async fn create(admin: &Client, prefix: &str) -> PartnerFixture {
        let name = unique(prefix);
        let home = format!("home-{name}");
        let partner = json!({
            "apiVersion": "liaison.dev/v1alpha1", "kind": "Partner",
            "metadata": {"name": name},
            "spec": {
                "homeNamespace": home,
                "admins": [{"kind": "User", "name": format!("admin@{name}.example")}],
                "identities": {"userSuffixes": [format!("@{name}.example")], "groups": [format!("{name}:staff")]},
                "clientNamespaceSelector": {"matchLabels": {ALLOWED.0: ALLOWED.1}}
            }
        });
        apply::<Partner>(&Api::all(admin.clone()), &partner).await;
        let fixture = PartnerFixture { name, home, admin: admin.clone() };
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin.clone());
        let home = fixture.home.clone();
        until("the partner's home namespace exists", WAIT, || {
            let (namespaces, home) = (namespaces.clone(), home.clone());
            async move { namespaces.get_opt(&home).await.unwrap().is_some() }
        })
        .await;
        fixture
    }

    /// The start of most revocation stories: a partner, a client namespace linked to it with
    /// the level `read` (and `link_extra` in the link's spec), and bob granted that level there,
    /// returned once the API server lets bob list the namespace's pods.
    pub async fn with_bob_granted(admin: &Client, prefix: &str, link_extra: Value) -> BobGranted {
        let partner = PartnerFixture::create(admin, prefix).await;
        let ns = partner.client_namespace(prefix).await;
        partner.link(&ns, "link", read_level("read"), link_extra).await;
        let bob = partner.user("bob");
        partner.grant("bob", &[&ns], "read", json!([user(&bob)]), json!({})).await;
        until("bob is granted", WAIT, || can(admin, &bob, &[], "list", PODS, &ns)).await;
        BobGranted { partner, ns, bob }
    }

    pub fn user(&self, who: &str) -> String {
        format!("{who}@{}.example", self.name)
    }

    pub fn group(&self) -> String {
        format!("{}:staff", self.name)
    }

    /// A client namespace that the partner's selector allows.
    pub async fn client_namespace(&self, prefix: &str) -> String {
        fresh_namespace_with(&self.admin, prefix, &[ALLOWED]).await
    }

    /// A ClientLink accepting this partner, with the given levels (JSON) and extra spec fields.
    pub async fn link(&self, namespace: &str, name: &str, levels: Value, extra: Value) -> ClientLink {
        let mut spec = json!({"partner": self.name, "accessLevels": levels});
        merge(&mut spec, extra);
        let link = json!({
            "apiVersion": "liaison.dev/v1alpha1", "kind": "ClientLink",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec
        });
        apply(&Api::<ClientLink>::namespaced(self.admin.clone(), namespace), &link).await
    }

    /// An AccessGrant in the home namespace.
    pub async fn grant(
        &self,
        name: &str,
        clients: &[&str],
        level: &str,
        subjects: Value,
        extra: Value,
    ) -> AccessGrant {
        let mut spec = json!({"clients": clients, "accessLevel": level, "subjects": subjects});
        merge(&mut spec, extra);
        let grant = json!({
            "apiVersion": "liaison.dev/v1alpha1", "kind": "AccessGrant",
            "metadata": {"name": name, "namespace": self.home},
            "spec": spec
        });
        apply(&Api::<AccessGrant>::namespaced(self.admin.clone(), &self.home), &grant).await
    }

    pub fn grants(&self) -> Api<AccessGrant> {
        Api::namespaced(self.admin.clone(), &self.home)
    }
}

/// The one level most tests use: read pods and configmaps.
pub fn read_level(name: &str) -> Value {
    json!([{"name": name, "rules": [{"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list", "watch"]}]}])
}

pub fn user(name: &str) -> Value {
    json!({"kind": "User", "name": name})
}

pub async fn apply<K>(api: &Api<K>, object: &Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = object["metadata"]["name"].as_str().expect("a name").to_string();
    api.patch(&name, &PatchParams::apply("liaison-tests").force(), &Patch::Apply(object))
        .await
        .unwrap_or_else(|e| panic!("applying {name}: {e}"))
}

fn merge(base: &mut Value, extra: Value) {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
}

/// The Ready condition's (status, reason) of a Liaison object's status.
pub fn ready_of(
    status: Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>,
) -> Option<(String, String)> {
    status?.iter().find(|c| c.type_ == "Ready").map(|c| (c.status.clone(), c.reason.clone()))
}

/// Liaison objects whose status carries conditions.
pub trait Conditioned:
    kube::Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    fn conditions(&self) -> Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>;
}

impl Conditioned for ClientLink {
    fn conditions(&self) -> Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]> {
        self.status.as_ref().map(|s| &s.conditions[..])
    }
}

impl Conditioned for AccessGrant {
    fn conditions(&self) -> Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]> {
        self.status.as_ref().map(|s| &s.conditions[..])
    }
}

/// Waits until the object's Ready condition has `reason`, and returns it.
pub async fn ready_reason<K: Conditioned>(api: &Api<K>, name: &str, reason: &str) -> K {
    let (name, reason) = (name.to_string(), reason.to_string());
    super::eventually(&format!("{} {name} has reason {reason}", K::kind(&())), WAIT, || {
        let (api, name, reason) = (api.clone(), name.clone(), reason.clone());
        async move {
            let object = api.get(&name).await.ok()?;
            let (_, r) = ready_of(object.conditions())?;
            (r == reason).then_some(object)
        }
    })
    .await
}

/// Waits until the link's Ready condition has `reason`.
pub async fn link_reason(admin: &Client, namespace: &str, name: &str, reason: &str) -> ClientLink {
    ready_reason(&Api::namespaced(admin.clone(), namespace), name, reason).await
}

/// The link once its status names its access key's Secret (`namespace/name`).
pub async fn link_with_key(admin: &Client, namespace: &str, name: &str) -> (ClientLink, String) {
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), namespace);
    super::eventually(&format!("link {namespace}/{name} reports its access key"), WAIT, || {
        let links = links.clone();
        async move {
            let link = links.get(name).await.ok()?;
            let secret = link.status.as_ref()?.access_key_secret.clone()?;
            Some((link, secret))
        }
    })
    .await
}

/// Waits until the grant's Ready condition has `reason`.
pub async fn grant_reason(grants: &Api<AccessGrant>, name: &str, reason: &str) -> AccessGrant {
    ready_reason(grants, name, reason).await
}
