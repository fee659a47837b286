//! The operator's validating admission webhook: a ClientLink's author must hold, in the link's
//! namespace, every permission its inline levels delegate (`desired::delegation`). Each
//! permission is asked of the API server's own authorizer, as the author (a
//! SubjectAccessReview with the request's user, groups and extra), so the answer is whatever
//! RBAC (or any other authorizer) the cluster has. It serves on every replica, leader or not:
//! the API server calls whichever the Service picks.
//!
//! Fails closed: a review that cannot be asked, or a request it cannot read, is refused.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::PostParams;
use kube::{Api, Client};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::api::ClientLinkSpec;
use crate::desired::delegation::{self, Question};

/// The path the webhook configuration names.
pub const PATH: &str = "/validate-clientlink";
/// Reviews asked at once for one request.
const REVIEWS_IN_FLIGHT: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the serving certificate {path}: {source}")]
    ReadCertificate { path: String, source: std::io::Error },
    #[error("the serving certificate or key in {0} is not PEM that rustls can use: {1}")]
    Certificate(String, String),
    #[error("serving on {0}: {1}")]
    Serve(SocketAddr, std::io::Error),
}

/// Binds `addr` with `tls.crt` and `tls.key` of `cert_dir`: what is wrong with either is
/// known before the operator says it is up.
pub async fn bind(addr: SocketAddr, cert_dir: &Path) -> Result<Webhook, Error> {
    let acceptor = TlsAcceptor::from(Arc::new(server_config(cert_dir)?));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| Error::Serve(addr, e))?;
    Ok(Webhook { listener: TlsListener { listener, acceptor }, addr })
}

/// A bound webhook, ready to serve.
pub struct Webhook {
    listener: TlsListener,
    addr: SocketAddr,
}

impl Webhook {
    /// Serves until the process ends.
    pub async fn serve(self, client: Client) -> Result<(), Error> {
        let app = Router::new().route(PATH, post(review)).with_state(client);
        axum::serve(self.listener, app).await.map_err(|e| Error::Serve(self.addr, e))
    }
}

fn server_config(cert_dir: &Path) -> Result<ServerConfig, Error> {
    let read = |name: &str| {
        let path = cert_dir.join(name);
        std::fs::read(&path)
            .map_err(|source| Error::ReadCertificate { path: path.display().to_string(), source })
    };
    let (certs, key) = (read("tls.crt")?, read("tls.key")?);
    let bad = |e: &dyn std::fmt::Display| Error::Certificate(cert_dir.display().to_string(), e.to_string());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&certs).collect::<Result<_, _>>().map_err(|e| bad(&e))?;
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| bad(&e))?;
    ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).map_err(|e| bad(&e))
}

/// TCP connections that speak TLS once their handshake is done; a client that does not finish
/// its handshake within a few seconds is dropped.
struct TlsListener {
    listener: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, peer)) = self.listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(stream)).await {
                Ok(Ok(tls)) => return (tls, peer),
                Ok(Err(error)) => tracing::debug!(%error, %peer, "a TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "a TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// The parts of an `admission.k8s.io/v1` AdmissionReview this webhook reads.
#[derive(Deserialize)]
struct AdmissionReview {
    request: Option<AdmissionRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionRequest {
    uid: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    user_info: UserInfo,
    object: Option<Value>,
    old_object: Option<Value>,
}

#[derive(Deserialize, Serialize, Default, Clone)]
struct UserInfo {
    #[serde(default)]
    username: String,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    extra: BTreeMap<String, Vec<String>>,
}

async fn review(State(client): State<Client>, Json(review): Json<AdmissionReview>) -> Json<Value> {
    let Some(request) = review.request else {
        return Json(answer("", Err("the AdmissionReview carries no request".into())));
    };
    let verdict = judge(&client, &request).await;
    if let Err(message) = &verdict {
        tracing::info!(user = %request.user_info.username, namespace = %request.namespace, %message, "refused a ClientLink");
    }
    Json(answer(&request.uid, verdict))
}

fn answer(uid: &str, verdict: Result<(), String>) -> Value {
    let response = match verdict {
        Ok(()) => json!({"uid": uid, "allowed": true}),
        Err(message) => {
            json!({"uid": uid, "allowed": false, "status": {"code": 403, "reason": "Forbidden", "message": message}})
        }
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

async fn judge(client: &Client, request: &AdmissionRequest) -> Result<(), String> {
    let spec = |object: &Option<Value>| {
        object.as_ref().map(|o| serde_json::from_value::<ClientLinkSpec>(o["spec"].clone()))
    };
    let new = match spec(&request.object) {
        Some(Ok(spec)) => spec,
        Some(Err(error)) => return Err(format!("the ClientLink's spec cannot be read: {error}")),
        None => return Err("the request carries no ClientLink".into()),
    };
    // Only a new spec delegates anything: finalizer and status writes pass.
    if let Some(Ok(old)) = spec(&request.old_object)
        && old == new
    {
        return Ok(());
    }
    let questions = delegation::questions(&new).map_err(delegation::too_many)?;
    let denied = denied(client, &request.user_info, &request.namespace, questions).await?;
    delegation::refusal(&request.namespace, &denied).map_or(Ok(()), Err)
}

/// The questions the authorizer answers no for this user, or why it could not be asked.
async fn denied(
    client: &Client,
    user: &UserInfo,
    namespace: &str,
    questions: Vec<Question>,
) -> Result<Vec<Question>, String> {
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let answers: Vec<Result<(Question, bool), String>> = futures::stream::iter(questions)
        .map(|question| {
            let reviews = reviews.clone();
            async move {
                let review =
                    SubjectAccessReview { spec: spec_for(user, namespace, &question), ..Default::default() };
                match reviews.create(&PostParams::default(), &review).await {
                    Ok(answer) => Ok((question, answer.status.is_some_and(|s| s.allowed))),
                    Err(error) => Err(format!(
                        "asking the authorizer whether you may {question}: {}",
                        crate::materialize::said(&error)
                    )),
                }
            }
        })
        .buffered(REVIEWS_IN_FLIGHT)
        .collect()
        .await;
    let mut denied = Vec::new();
    for answer in answers {
        let (question, allowed) = answer?;
        if !allowed {
            denied.push(question);
        }
    }
    Ok(denied)
}

fn spec_for(user: &UserInfo, namespace: &str, question: &Question) -> SubjectAccessReviewSpec {
    SubjectAccessReviewSpec {
        user: Some(user.username.clone()),
        uid: user.uid.clone(),
        groups: Some(user.groups.clone()),
        extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
        resource_attributes: Some(ResourceAttributes {
            namespace: Some(namespace.to_string()),
            group: Some(question.group.clone()),
            resource: Some(question.resource.clone()),
            subresource: question.subresource.clone(),
            verb: Some(question.verb.clone()),
            name: question.name.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_is_asked_as_the_author_in_the_links_namespace() {
        let user = UserInfo {
            username: "ada".into(),
            uid: Some("u-1".into()),
            groups: vec!["devs".into(), "system:authenticated".into()],
            extra: BTreeMap::from([("scopes".to_string(), vec!["x".to_string()])]),
        };
        let question = Question {
            group: "".into(),
            resource: "pods".into(),
            subresource: Some("log".into()),
            verb: "get".into(),
            name: None,
        };
        let spec = spec_for(&user, "beta", &question);
        assert_eq!(spec.user.as_deref(), Some("ada"));
        assert_eq!(spec.groups.as_deref(), Some(&user.groups[..]));
        assert_eq!(spec.extra.unwrap()["scopes"], ["x"]);
        let attributes = spec.resource_attributes.unwrap();
        assert_eq!(
            (
                attributes.namespace.as_deref(),
                attributes.resource.as_deref(),
                attributes.subresource.as_deref()
            ),
            (Some("beta"), Some("pods"), Some("log"))
        );
    }

    #[test]
    fn answers_carry_the_request_uid_and_a_refusal_its_reason() {
        let allowed = answer("abc", Ok(()));
        assert_eq!(allowed["response"], json!({"uid": "abc", "allowed": true}));
        let refused = answer("abc", Err("no".into()));
        assert_eq!(refused["response"]["allowed"], false);
        assert_eq!(refused["response"]["status"]["message"], "no");
        assert_eq!(refused["apiVersion"], "admission.k8s.io/v1");
    }
}
