//! Objects the API server stored under a looser schema than today's. Kubernetes' `date-time`
//! format admits instants Liaison's types could not read (year 9999-12-31, ten fraction digits,
//! a `+99:00` offset); one of them used to fail the whole list of its kind, and with it every
//! reconcile in the cluster, revocations included. Such an object must read, count as expired
//! (fail closed), and leave everything else served.

mod support;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use liaison::api::ClientLink;
use serde_json::{Value, json};
use support::fixtures::*;
use support::*;

const CRDS: [&str; 2] = ["clientlinks.liaison.dev", "accessgrants.liaison.dev"];

/// Takes the pattern and CEL bound off `expiresAt`, as an older CRD would have had it.
async fn loosen_expiry_schema(admin: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for name in CRDS {
        let crd = crds.get(name).await.unwrap();
        let mut value = serde_json::to_value(&crd).unwrap();
        let expiry = value
            .pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/expiresAt")
            .and_then(Value::as_object_mut)
            .expect("expiresAt in the schema");
        assert!(
            expiry.remove("pattern").is_some() && expiry.remove("x-kubernetes-validations").is_some(),
            "{name}"
        );
        let loose: CustomResourceDefinition = serde_json::from_value(value).unwrap();
        crds.replace(name, &PostParams::default(), &loose).await.unwrap();
    }
}

/// Puts today's CRDs back.
async fn tighten_expiry_schema(admin: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for crd in liaison::api::crds()
        .into_iter()
        .filter(|c| CRDS.contains(&c.metadata.name.as_deref().unwrap_or_default()))
    {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(&name, &PatchParams::apply("liaison-tests").force(), &Patch::Apply(&crd)).await.unwrap();
    }
}

async fn until_can(admin: &kube::Client, user: &str, ns: &str, expected: bool) {
    let what = format!("{user} {} list pods in {ns}", if expected { "may" } else { "may not" });
    until(&what, WAIT, || async { can(admin, user, &[], "list", PODS, ns).await == expected }).await;
}

#[tokio::test]
async fn an_unreadable_stored_expiry_ends_that_access_and_stalls_nothing() {
    let admin = client().await;
    install_liaison(&admin).await;
    let first = Operator::start(&[]);
    first.wait_ready().await;
    let p = PartnerFixture::create(&admin, "stored").await;
    let (stale_ns, good_ns) = (p.client_namespace("stale").await, p.client_namespace("good").await);
    let (bob, carol) = (p.user("bob"), p.user("carol"));

    p.link(&stale_ns, "link", read_level("read"), json!({})).await;
    p.link(&good_ns, "link", read_level("read"), json!({})).await;
    p.grant("bob", &[&stale_ns, &good_ns], "read", json!([user(&bob)]), json!({})).await;
    p.grant(
        "carol",
        &[&good_ns],
        "read",
        json!([user(&carol)]),
        json!({"expiresAt": "2099-01-01T00:00:00Z"}),
    )
    .await;
    until_can(&admin, &bob, &stale_ns, true).await;
    until_can(&admin, &carol, &good_ns, true).await;

    // Under the older, looser schema, a client admin and a partner admin write instants no one
    // can read (with kubectl: reading them back typed is what used to fail).
    loosen_expiry_schema(&admin).await;
    let expire = |kind: &str, ns: &str, name: &str, at: &str| {
        let patch = json!({"spec": {"expiresAt": at}}).to_string();
        let (ok, output) = kubectl(&["patch", kind, name, "-n", ns, "--type", "merge", "-p", &patch]);
        assert!(ok, "{output}");
    };
    expire("clientlink", &stale_ns, "link", "9999-12-31T23:59:59Z");
    expire("accessgrant", &p.home, "carol", "2026-06-01T12:00:00.1234567891Z");
    tighten_expiry_schema(&admin).await;

    // A fresh operator must list them all: the list is where one unreadable object stalled it,
    // and with it every link and grant of the cluster. Asked of the API server's authorization
    // first, before this test reads anything typed: that access ended, and other access goes on.
    first.kill();
    let operator = Operator::start(&[]);
    operator.wait_ready().await;
    until_can(&admin, &bob, &stale_ns, false).await;
    until_can(&admin, &carol, &good_ns, false).await;
    let new_ns = p.client_namespace("new").await;
    p.link(&new_ns, "link", read_level("read"), json!({})).await;
    p.grant("dave", &[&new_ns], "read", json!([user(&p.user("dave"))]), json!({})).await;
    until_can(&admin, &p.user("dave"), &new_ns, true).await;
    until_can(&admin, &bob, &good_ns, true).await;

    let link = link_reason(&admin, &stale_ns, "link", "Expired").await;
    let (_, message) = link
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.reason, c.message))
        .unwrap();
    assert!(
        message.contains("9999-12-31T23:59:59Z") && message.contains("RFC 3339"),
        "a message that says what to fix: {message}"
    );
    grant_reason(&p.grants(), "carol", "Expired").await;

    // And today's schema refuses such a value at the door.
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &new_ns);
    let patch = json!({"spec": {"expiresAt": "2026-06-01T12:00:00+99:00"}});
    let refused = links
        .patch("link", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("an offset of 99 hours");
    assert!(refused.to_string().contains("spec.expiresAt"), "{refused}");
    drop(operator);
}
