//! The test control plane is real: RBAC authorizes, garbage collection collects, tokens
//! authenticate and stop authenticating.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};
use support::*;

const CONFIGMAPS: Res = res("", "configmaps");
const SECRETS: Res = res("", "secrets");

#[tokio::test]
async fn rbac_allows_exactly_what_a_role_binding_grants() {
    let admin = client().await;
    let ns = fresh_namespace(&admin, "rbac").await;
    let other = fresh_namespace(&admin, "rbac-other").await;
    let user = "carol@example.test";

    assert!(
        can(&admin, "admin", &["system:masters"], "delete", SECRETS, &ns).await,
        "the admin may do everything"
    );
    assert!(!can(&admin, user, &[], "get", CONFIGMAPS, &ns).await, "no binding, no access");
    let as_carol = client_as(user, &[]).await;
    let refused = Api::<ConfigMap>::namespaced(as_carol.clone(), &ns).list(&Default::default()).await;
    assert!(
        matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 403),
        "an impersonated request is refused: {refused:?}"
    );

    let role = Role {
        metadata: ObjectMeta { name: Some("reader".into()), ..Default::default() },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["".into()]),
            resources: Some(vec!["configmaps".into()]),
            verbs: vec!["get".into(), "list".into()],
            ..Default::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), &ns).create(&PostParams::default(), &role).await.unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta { name: Some("carol-reads".into()), ..Default::default() },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "reader".into(),
        },
        subjects: Some(vec![Subject {
            kind: "User".into(),
            name: user.into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    until("the binding authorizes", Duration::from_secs(10), || {
        can(&admin, user, &[], "list", CONFIGMAPS, &ns)
    })
    .await;
    assert!(can(&admin, user, &[], "get", CONFIGMAPS, &ns).await);
    assert!(!can(&admin, user, &[], "delete", CONFIGMAPS, &ns).await, "only the Role's verbs");
    assert!(!can(&admin, user, &[], "get", SECRETS, &ns).await, "only the Role's resources");
    assert!(!can(&admin, user, &[], "get", PODS, &ns).await);
    assert!(!can(&admin, user, &[], "get", CONFIGMAPS, &other).await, "only the binding's namespace");
    let listed = Api::<ConfigMap>::namespaced(as_carol, &ns).list(&Default::default()).await;
    assert!(listed.is_ok(), "the impersonated request now succeeds: {listed:?}");
}

#[tokio::test]
async fn deleting_an_owner_collects_its_dependents() {
    let admin = client().await;
    let ns = fresh_namespace(&admin, "gc").await;
    let maps: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
    let owner = maps
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta { name: Some("owner".into()), ..Default::default() },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let dependent = ConfigMap {
        metadata: ObjectMeta {
            name: Some("dependent".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "owner".into(),
                uid: owner.metadata.uid.clone().unwrap(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        ..Default::default()
    };
    maps.create(&PostParams::default(), &dependent).await.unwrap();
    maps.delete("owner", &DeleteParams::background()).await.unwrap();
    until_gone(&maps, "dependent", "the dependent is collected", Duration::from_secs(30)).await;
}

#[tokio::test]
async fn namespaces_get_their_default_service_account() {
    let admin = client().await;
    let ns = fresh_namespace(&admin, "sa").await;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin, &ns);
    until("the default ServiceAccount exists", Duration::from_secs(30), || {
        let accounts = accounts.clone();
        async move { accounts.get_opt("default").await.unwrap().is_some() }
    })
    .await;
}

#[tokio::test]
async fn a_token_authenticates_until_its_service_account_is_deleted() {
    let admin = client().await;
    let ns = fresh_namespace(&admin, "token").await;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    accounts
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: ObjectMeta { name: Some("robot".into()), ..Default::default() },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let request = TokenRequest {
        spec: TokenRequestSpec { audiences: vec![], expiration_seconds: Some(600), bound_object_ref: None },
        ..Default::default()
    };
    let token = accounts
        .create_token_request("robot", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;

    let as_robot = client_with_token(&token).await;
    let review = Api::<SelfSubjectReview>::all(as_robot.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    let username = review.status.and_then(|s| s.user_info).and_then(|u| u.username);
    assert_eq!(username.as_deref(), Some(format!("system:serviceaccount:{ns}:robot").as_str()));

    accounts.delete("robot", &DeleteParams::default()).await.unwrap();
    let deleted = Instant::now();
    until("the token stops authenticating", Duration::from_secs(90), || {
        let as_robot = as_robot.clone();
        async move {
            let result = Api::<SelfSubjectReview>::all(as_robot)
                .create(&PostParams::default(), &SelfSubjectReview::default())
                .await;
            matches!(result, Err(kube::Error::Api(ref s)) if s.code == 401)
        }
    })
    .await;
    eprintln!("a deleted ServiceAccount's token stopped authenticating after {:?}", deleted.elapsed());
}
