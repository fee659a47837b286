//! The access key: a short-lived token of the key's ServiceAccount, delivered to the partner
//! as a ready kubeconfig in a Secret of its home namespace, and refreshed well before expiry.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};
use serde::Serialize;

use super::Error;
use crate::desired::client::AccessKeyPlan;

pub const EXPIRES_AT: &str = "liaison.dev/token-expires-at";
pub const SERVICE_ACCOUNT_UID: &str = "liaison.dev/service-account-uid";
pub const KUBECONFIG_KEY: &str = "kubeconfig";

/// Where partners reach the API server, and how long a token lives.
#[derive(Debug, Clone)]
pub struct KeySettings {
    pub server: String,
    /// PEM bundle of the CA that signs the API server's certificate.
    pub ca_pem: Option<Vec<u8>>,
    pub token_ttl: Duration,
}

/// When the key Secret must be re-minted: never, or at this instant.
/// A token is refreshed once two thirds of its life have passed, so a partner that re-reads
/// the Secret at any moment gets a token with at least a third of its life left.
pub fn refresh_at(secret: Option<&Secret>, service_account_uid: &str, ttl: Duration) -> Option<Timestamp> {
    let annotations = secret?.metadata.annotations.as_ref()?;
    if annotations.get(SERVICE_ACCOUNT_UID).map(String::as_str) != Some(service_account_uid) {
        return None;
    }
    let expires: Timestamp = annotations.get(EXPIRES_AT)?.parse().ok()?;
    let third = jiff::SignedDuration::try_from(ttl / 3).ok()?;
    expires.checked_sub(third).ok()
}

/// Mints a token and writes the Secret if it is missing, foreign, or due for refresh.
/// Returns the next instant at which it must be refreshed.
pub(super) async fn ensure_secret(
    client: &Client,
    plan: &AccessKeyPlan,
    service_account: &ServiceAccount,
    existing: Option<&Secret>,
    settings: &KeySettings,
    now: Timestamp,
    metrics: &crate::metrics::Metrics,
) -> Result<Timestamp, Error> {
    let sa_uid = service_account.metadata.uid.clone().unwrap_or_default();
    let labels_hold = existing.is_some_and(|s| {
        let have = s.metadata.labels.clone().unwrap_or_default();
        plan.secret_labels.iter().all(|(k, v)| have.get(k) == Some(v))
    });
    if labels_hold
        && let Some(at) = refresh_at(existing, &sa_uid, settings.token_ttl)
        && at > now
    {
        return Ok(at);
    }
    let sa_namespace = service_account.namespace().unwrap_or_default();
    let sa_name = service_account.name_any();
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(settings.token_ttl.as_secs() as i64),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    metrics.write("TokenRequest");
    let issued = Api::<ServiceAccount>::namespaced(client.clone(), &sa_namespace)
        .create_token_request(&sa_name, &PostParams::default(), &request)
        .await
        .map_err(|source| Error::Token { name: format!("{sa_namespace}/{sa_name}"), source })?;
    let status = issued.status.ok_or_else(|| Error::Token {
        name: format!("{sa_namespace}/{sa_name}"),
        source: kube::Error::Api(Box::new(kube::core::Status::failure(
            "TokenRequest returned no status",
            "NoStatus",
        ))),
    })?;
    let expires = status.expiration_timestamp.0;
    // The kubeconfig's namespace is the client's, where the key's access is.
    let client_namespace = plan.binding.metadata.namespace.clone().unwrap_or_default();
    let kubeconfig = render_kubeconfig(settings, &client_namespace, &sa_name, &status.token)?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(plan.secret_name.clone()),
            namespace: Some(plan.secret_namespace.clone()),
            labels: Some(plan.secret_labels.clone()),
            annotations: Some(BTreeMap::from([
                (EXPIRES_AT.to_string(), expires.to_string()),
                (SERVICE_ACCOUNT_UID.to_string(), sa_uid),
            ])),
            owner_references: Some(vec![plan.partner_owner.clone()]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(KUBECONFIG_KEY.to_string(), ByteString(kubeconfig.into_bytes()))])),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    let api = Api::<Secret>::namespaced(client.clone(), &plan.secret_namespace);
    metrics.write("Secret");
    api.patch(
        &plan.secret_name,
        &kube::api::PatchParams::apply(crate::desired::names::FIELD_MANAGER).force(),
        &kube::api::Patch::Apply(&secret),
    )
    .await
    .map_err(|source| Error::Write { kind: "Secret", name: plan.secret_name.clone(), source })?;
    let third = jiff::SignedDuration::try_from(settings.token_ttl / 3).unwrap_or_default();
    Ok(expires.checked_sub(third).unwrap_or(expires))
}

#[derive(Serialize)]
struct Kubeconfig<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    clusters: Vec<Named<ClusterEntry>>,
    users: Vec<Named<UserEntry<'a>>>,
    contexts: Vec<Named<ContextEntry<'a>>>,
    #[serde(rename = "current-context")]
    current_context: &'a str,
}

#[derive(Serialize)]
struct Named<T> {
    name: String,
    #[serde(flatten)]
    inner: T,
}

#[derive(Serialize)]
struct ClusterEntry {
    cluster: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct UserEntry<'a> {
    user: BTreeMap<&'static str, &'a str>,
}

#[derive(Serialize)]
struct ContextEntry<'a> {
    context: BTreeMap<&'static str, &'a str>,
}

/// A kubeconfig that works as is: server, CA, token, and the client namespace as default.
pub fn render_kubeconfig(
    settings: &KeySettings,
    namespace: &str,
    user: &str,
    token: &str,
) -> Result<String, Error> {
    let mut cluster = BTreeMap::from([("server", settings.server.clone())]);
    if let Some(ca) = &settings.ca_pem {
        cluster.insert("certificate-authority-data", base64::engine::general_purpose::STANDARD.encode(ca));
    }
    let config = Kubeconfig {
        api_version: "v1",
        kind: "Config",
        clusters: vec![Named { name: "liaison".into(), inner: ClusterEntry { cluster } }],
        users: vec![Named {
            name: user.into(),
            inner: UserEntry { user: BTreeMap::from([("token", token)]) },
        }],
        contexts: vec![Named {
            name: namespace.into(),
            inner: ContextEntry {
                context: BTreeMap::from([("cluster", "liaison"), ("user", user), ("namespace", namespace)]),
            },
        }],
        current_context: namespace,
    };
    Ok(serde_yaml::to_string(&config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_with(annotations: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                annotations: Some(annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn refresh_is_due_two_thirds_into_the_token_life() {
        let ttl = Duration::from_secs(3600);
        let secret = secret_with(&[(EXPIRES_AT, "2026-01-01T01:00:00Z"), (SERVICE_ACCOUNT_UID, "sa-1")]);
        let at = refresh_at(Some(&secret), "sa-1", ttl).unwrap();
        assert_eq!(at, "2026-01-01T00:40:00Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn a_missing_or_foreign_secret_needs_a_new_token() {
        let ttl = Duration::from_secs(3600);
        assert_eq!(refresh_at(None, "sa-1", ttl), None);
        let other_sa = secret_with(&[(EXPIRES_AT, "2026-01-01T01:00:00Z"), (SERVICE_ACCOUNT_UID, "sa-0")]);
        assert_eq!(refresh_at(Some(&other_sa), "sa-1", ttl), None);
        let garbled = secret_with(&[(EXPIRES_AT, "soon"), (SERVICE_ACCOUNT_UID, "sa-1")]);
        assert_eq!(refresh_at(Some(&garbled), "sa-1", ttl), None);
    }

    #[test]
    fn the_kubeconfig_names_server_ca_token_and_namespace() {
        let settings = KeySettings {
            server: "https://127.0.0.1:6443".into(),
            ca_pem: Some(b"PEM".to_vec()),
            token_ttl: Duration::from_secs(600),
        };
        let yaml = render_kubeconfig(&settings, "beta", "liaison-key-x", "tok").unwrap();
        let parsed: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(parsed["clusters"][0]["cluster"]["server"], "https://127.0.0.1:6443");
        assert_eq!(parsed["clusters"][0]["cluster"]["certificate-authority-data"], "UEVN");
        assert_eq!(parsed["users"][0]["user"]["token"], "tok");
        assert_eq!(parsed["contexts"][0]["context"]["namespace"], "beta");
        assert_eq!(parsed["current-context"], "beta");
    }
}
