//! No tenant's backlog stands before another's revocation (#26). The links' controller is kept
//! busy elsewhere, and an unrelated client's deletion of its link still ends access at once:
//! its first write comes from a queue of its own.
//!
//! What keeps the links' controller busy here is deterministic: the operator reconciles one
//! link at a time, and every status write of the other tenant's refused links waits on a
//! validating webhook that never answers (ten seconds, then ignored). Access must end while
//! such a call, begun before the deletion, is still pending.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, ListParams, PostParams};
use liaison::api::ClientLink;
use serde_json::json;
use support::fixtures::*;
use support::*;

const SLOW: (&str, &str) = ("liaison-tests/slow-webhook", "true");
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// When each connection the webhook's address accepted was opened, and when it closed: it
/// never answers, so each is one admission call that the API server gives up on.
type Calls = Arc<Mutex<Vec<(Instant, Option<Instant>)>>>;

/// A TCP listener that accepts and never answers; returns its port and its record of calls.
async fn silent_webhook() -> (u16, Calls) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let calls: Calls = Arc::default();
    let record = calls.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let record = record.clone();
            let at = {
                let mut calls = record.lock().unwrap();
                calls.push((Instant::now(), None));
                calls.len() - 1
            };
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buffer = [0u8; 4096];
                while socket.read(&mut buffer).await.is_ok_and(|n| n > 0) {}
                record.lock().unwrap()[at].1 = Some(Instant::now());
            });
        }
    });
    (port, calls)
}

/// A call still pending that began before `instant`.
fn pending_since_before(calls: &Calls, instant: Instant) -> bool {
    calls.lock().unwrap().iter().any(|(opened, closed)| *opened < instant && closed.is_none())
}

#[tokio::test]
async fn a_revocation_does_not_wait_behind_another_tenants_links() {
    let admin = client().await;
    install_liaison(&admin).await;
    let operator = Operator::start(&["--concurrency", "1"]);
    operator.wait_ready().await;
    let partner = PartnerFixture::create(&admin, "iso").await;
    let ns = partner.client_namespace("iso").await;
    partner.link(&ns, "link", read_level("read"), json!({})).await;
    let bob = partner.user("bob");
    partner.grant("bob", &[&ns], "read", json!([user(&bob)]), json!({})).await;
    until("bob lists pods", WAIT, || {
        let (admin, bob, ns) = (admin.clone(), bob.clone(), ns.clone());
        async move { can(&admin, &bob, &[], "list", PODS, &ns).await }
    })
    .await;

    // Another tenant's namespace, where every status write of a ClientLink waits on the silent
    // webhook, and refused links there: the links' controller is stuck on them, one by one.
    let (port, calls) = silent_webhook().await;
    let webhook = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "liaison-tests-silent"},
        "webhooks": [{
            "name": "silent.liaison-tests.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Ignore", "timeoutSeconds": WEBHOOK_TIMEOUT.as_secs(),
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/")},
            "rules": [{"apiGroups": ["liaison.dev"], "apiVersions": ["*"], "operations": ["UPDATE"], "resources": ["clientlinks/status"]}],
            "namespaceSelector": {"matchLabels": {SLOW.0: SLOW.1}}
        }]
    });
    apply_yaml(&admin, &serde_json::to_string(&webhook).unwrap()).await;
    let attacker = fresh_namespace_with(&admin, "flood", &[SLOW]).await;
    let flood: Api<ClientLink> = Api::namespaced(admin.clone(), &attacker);
    for i in 0..3 {
        let link = json!({"metadata": {"name": format!("flood-{i}")}, "spec": {"partner": format!("nobody-{i}"), "accessLevels": read_level("read")}});
        flood
            .create(&PostParams::default(), &serde_json::from_value(link).unwrap())
            .await
            .expect("creating a refused link");
    }
    // Deleted while a status write of the flood has just begun waiting.
    until("the links' controller is stuck on the webhook", WAIT, || {
        let calls = calls.clone();
        async move {
            calls
                .lock()
                .unwrap()
                .iter()
                .any(|(opened, closed)| closed.is_none() && opened.elapsed() < Duration::from_secs(1))
        }
    })
    .await;
    let deleted_at = Instant::now();
    Api::<ClientLink>::namespaced(admin.clone(), &ns).delete("link", &DeleteParams::default()).await.unwrap();
    while can(&admin, &bob, &[], "list", PODS, &ns).await {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        pending_since_before(&calls, deleted_at),
        "access ended only after the links' controller was free again ({:?} after the delete)",
        deleted_at.elapsed()
    );

    // The rest of the revocation still completes through the links' queue: the link is gone,
    // its finalizer released last, nothing of Liaison's is left, and access stays gone.
    let links = Api::<ClientLink>::namespaced(admin.clone(), &ns);
    until_gone(&links, "link", "the link is gone", Duration::from_secs(180)).await;
    let bindings = Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(admin.clone(), &ns);
    let left = bindings
        .list(&ListParams::default().labels(&liaison::desired::names::managed_selector(None)))
        .await
        .unwrap()
        .items;
    assert!(
        left.is_empty(),
        "nothing of Liaison's is left in {ns}: {:?}",
        left.iter().map(|b| &b.metadata.name).collect::<Vec<_>>()
    );
    assert!(!can(&admin, &bob, &[], "list", PODS, &ns).await, "bob's access stays gone");
    let webhooks: Api<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration> =
        Api::all(admin.clone());
    webhooks.delete("liaison-tests-silent", &DeleteParams::default()).await.unwrap();
}
