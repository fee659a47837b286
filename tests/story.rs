//! The seed story, end to end, judged by the API server's own authorization:
//! Beta grants TechHelp access; TechHelp's admin registers its analysts; they reach only what
//! Beta allowed; an analyst who leaves loses access; Beta deletes the link and all access ends.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use liaison::api::{AccessGrant, ClientLink, Partner};
use support::fixtures::link_with_key;
use support::*;

const SECRETS: Res = res("", "secrets");
const CONFIGMAPS: Res = res("", "configmaps");
const WAIT: Duration = Duration::from_secs(30);

fn example(name: &str) -> String {
    std::fs::read_to_string(path_of(&format!("examples/{name}"))).expect("reading an example")
}

fn ready(conditions: Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>) -> bool {
    conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test]
async fn techhelp_serves_beta_and_beta_ends_it() {
    let admin = client().await;
    let _operator = shared_operator().await;
    let analysts = ["techhelp:analysts"];

    // 1. The platform admin registers TechHelp; Beta links it.
    apply_yaml(&admin, &example("01-partner.yaml")).await;
    let partners: Api<Partner> = Api::all(admin.clone());
    eventually("the partner is ready", WAIT, || {
        let partners = partners.clone();
        async move {
            partners
                .get("techhelp")
                .await
                .ok()
                .filter(|p| ready(p.status.as_ref().map(|s| &s.conditions[..])))
        }
    })
    .await;
    apply_yaml(&admin, &example("02-client-beta.yaml")).await;

    // 2. TechHelp's admin, as herself, registers its analysts and its robot.
    let alice = client_as("alice@techhelp.example", &[]).await;
    apply_yaml(&alice, &example("03-partner-grants.yaml")).await;
    assert!(
        !can(&admin, "alice@techhelp.example", &[], "get", PODS, "beta").await,
        "the partner admin herself gets no client access"
    );

    // 3. The analysts reach exactly the support level, in beta only.
    until("bob may read pods in beta", WAIT, || {
        can(&admin, "bob@techhelp.example", &[], "list", PODS, "beta")
    })
    .await;
    assert!(
        can(&admin, "dan@techhelp.example", &analysts, "get", PODS, "beta").await,
        "the analysts group is granted"
    );
    assert!(!can(&admin, "bob@techhelp.example", &[], "delete", PODS, "beta").await, "read-only");
    assert!(!can(&admin, "bob@techhelp.example", &[], "get", SECRETS, "beta").await, "no secrets");
    assert!(!can(&admin, "bob@techhelp.example", &[], "list", PODS, "default").await, "no other namespace");
    assert!(!can(&admin, "eve@elsewhere.example", &[], "list", PODS, "beta").await, "nobody else");
    let as_bob = client_as("bob@techhelp.example", &[]).await;
    Api::<Pod>::namespaced(as_bob, "beta")
        .list(&ListParams::default())
        .await
        .expect("bob really lists pods in beta");

    // The robot gets the tickets level: one named ConfigMap, nothing more.
    let bot = service_account_user("partner-techhelp", "ticket-bot");
    let bot_groups = service_account_groups("partner-techhelp");
    let bot_groups: Vec<&str> = bot_groups.iter().map(String::as_str).collect();
    until("the robot may read the tickets", WAIT, || {
        let (admin, bot, bot_groups) = (admin.clone(), bot.clone(), bot_groups.clone());
        async move { can_named(&admin, &bot, &bot_groups, "get", CONFIGMAPS, "beta", "tickets").await }
    })
    .await;
    assert!(!can_named(&admin, &bot, &bot_groups, "get", CONFIGMAPS, "beta", "other").await);
    assert!(!can(&admin, &bot, &bot_groups, "list", PODS, "beta").await);

    // The access key: a ready kubeconfig for the partner's automation that really works.
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), "beta");
    let (link, secret_ref) = link_with_key(&admin, "beta", "techhelp").await;
    assert!(ready(link.status.as_ref().map(|s| &s.conditions[..])), "the link is Ready: {:?}", link.status);
    let (secret_ns, secret_name) = secret_ref.split_once('/').unwrap();
    assert_eq!(secret_ns, "partner-techhelp");
    let secret = Api::<Secret>::namespaced(alice.clone(), secret_ns)
        .get(secret_name)
        .await
        .expect("the partner admin reads her access key");
    let kubeconfig = String::from_utf8(secret.data.unwrap()["kubeconfig"].0.clone()).unwrap();
    let key_client = client_from_kubeconfig(&kubeconfig).await;
    Api::<Pod>::namespaced(key_client.clone(), "beta")
        .list(&ListParams::default())
        .await
        .expect("the access key lists pods in beta");

    // The grants and the partner report what they did.
    let grants: Api<AccessGrant> = Api::namespaced(admin.clone(), "partner-techhelp");
    eventually("the support grant is Ready", WAIT, || {
        let grants = grants.clone();
        async move {
            grants
                .get("beta-support")
                .await
                .ok()
                .filter(|g| ready(g.status.as_ref().map(|s| &s.conditions[..])))
        }
    })
    .await;
    let partner = eventually("the partner counts its client", WAIT, || {
        let partners = partners.clone();
        async move {
            partners.get("techhelp").await.ok().filter(|p| {
                p.status.as_ref().is_some_and(|s| {
                    s.client_count == 1 && s.clients.first().is_some_and(|c| c.subjects == 4)
                })
            })
        }
    })
    .await;
    assert_eq!(partner.status.unwrap().clients[0].namespace, "beta");

    // 4. Bob leaves TechHelp: its admin removes him; carol and the group keep their access.
    let without_bob = serde_json::json!({
        "apiVersion": "liaison.dev/v1alpha1", "kind": "AccessGrant",
        "metadata": {"name": "beta-support", "namespace": "partner-techhelp"},
        "spec": {"clients": ["beta"], "accessLevel": "support", "expiresAt": "2030-12-31T00:00:00Z",
                 "subjects": [{"kind": "User", "name": "carol@techhelp.example"}, {"kind": "Group", "name": "techhelp:analysts"}]}
    });
    Api::<AccessGrant>::namespaced(alice.clone(), "partner-techhelp")
        .patch("beta-support", &PatchParams::apply("liaison-tests").force(), &Patch::Apply(&without_bob))
        .await
        .expect("the partner admin edits her grant");
    until("bob has lost access", WAIT, || async {
        !can(&admin, "bob@techhelp.example", &[], "list", PODS, "beta").await
    })
    .await;
    assert!(can(&admin, "carol@techhelp.example", &[], "list", PODS, "beta").await, "carol keeps access");
    assert!(
        can(&admin, "dan@techhelp.example", &analysts, "list", PODS, "beta").await,
        "the group keeps access"
    );
    // The link's list of the grants using it, and the partner's count of people, follow (they
    // are summaries, written up to seconds later).
    eventually("the link lists the edited grant", WAIT, || {
        let links = links.clone();
        async move {
            links.get("techhelp").await.ok().filter(|l| {
                l.status.as_ref().is_some_and(|s| {
                    s.grants.len() == 2
                        && s.grants.iter().any(|g| {
                            g.grant == "partner-techhelp/beta-support" && g.granted && g.subjects == 2
                        })
                        && s.grants.iter().any(|g| {
                            g.grant == "partner-techhelp/beta-tickets" && g.granted && g.subjects == 1
                        })
                })
            })
        }
    })
    .await;
    eventually("the partner counts one person fewer", WAIT, || {
        let partners = partners.clone();
        async move {
            partners
                .get("techhelp")
                .await
                .ok()
                .filter(|p| p.status.as_ref().is_some_and(|s| s.clients[0].subjects == 3))
        }
    })
    .await;

    // 5. Beta ends the partnership: every subject and the access key lose access at once.
    links.delete("techhelp", &DeleteParams::default()).await.unwrap();
    until_gone(&links, "techhelp", "the link is gone", WAIT).await;
    // The finalizer is released only after revocation: no waiting needed beyond the informer.
    until("carol has lost access", Duration::from_secs(5), || async {
        !can(&admin, "carol@techhelp.example", &[], "list", PODS, "beta").await
    })
    .await;
    assert!(!can(&admin, "dan@techhelp.example", &analysts, "list", PODS, "beta").await);
    assert!(!can_named(&admin, &bot, &bot_groups, "get", CONFIGMAPS, "beta", "tickets").await);
    until("the access key is dead", Duration::from_secs(5), || {
        let key_client = key_client.clone();
        async move { Api::<Pod>::namespaced(key_client, "beta").list(&ListParams::default()).await.is_err() }
    })
    .await;
    let metrics = shared_operator().await.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("liaison_revocation_latency_seconds_count{kind=\"ClientLink\"}")
                && !l.ends_with(" 0")),
        "the revocation's latency is measured"
    );
    // Events tell the story too: the link was granted, then revoked.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(admin.clone(), "beta");
    until("the link's Events say Active and Revoked", WAIT, || {
        let events = events.clone();
        async move {
            let reasons: Vec<String> = events
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("ClientLink"))
                .filter_map(|e| e.reason)
                .collect();
            reasons.iter().any(|r| r == "Active") && reasons.iter().any(|r| r == "Revoked")
        }
    })
    .await;
    let managed = ListParams::default().labels("app.kubernetes.io/managed-by=liaison");
    assert!(
        Api::<RoleBinding>::namespaced(admin.clone(), "beta").list(&managed).await.unwrap().items.is_empty()
    );
    assert!(Api::<Role>::namespaced(admin.clone(), "beta").list(&managed).await.unwrap().items.is_empty());
    assert!(
        Api::<ServiceAccount>::namespaced(admin.clone(), "beta")
            .list(&managed)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        Api::<Secret>::namespaced(admin.clone(), "partner-techhelp")
            .get_opt(secret_name)
            .await
            .unwrap()
            .is_none()
    );
}

async fn client_from_kubeconfig(yaml: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml).expect("the access key is a kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("a usable kubeconfig");
    kube::Client::try_from(config).unwrap()
}
