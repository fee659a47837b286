//! GitOps health: the Argo CD health check in `docs/argocd-health.lua` (the README's) run by
//! Lua 5.1 against real objects of the three kinds, as the API server returns them.

mod support;

use std::process::Command;

use kube::api::{Api, Patch, PatchParams};
use liaison::api::{AccessGrant, ClientLink, Partner};
use serde_json::{Value, json};
use support::fixtures::*;
use support::*;

fn health_script() -> String {
    std::fs::read_to_string(path_of("docs/argocd-health.lua")).expect("docs/argocd-health.lua")
}

/// A JSON value as a Lua table constructor.
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!("{{{}}}", items.iter().map(lua).collect::<Vec<_>>().join(", ")),
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{k:?}] = {}", lua(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// (status, message) the health check gives `object`.
fn health(object: &impl serde::Serialize) -> (String, String) {
    let object = serde_json::to_value(object).unwrap();
    let program = format!(
        "obj = {}\nlocal function check()\n{}\nend\nlocal hs = check()\nio.write(hs.status, \"\\n\", hs.message)",
        lua(&object),
        health_script()
    );
    let out = Command::new("lua5.1")
        .args(["-e", &program])
        .output()
        .expect("running lua5.1 (Debian's package lua5.1)");
    assert!(out.status.success(), "lua5.1: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, message) = text.split_once('\n').unwrap();
    (status.to_string(), message.to_string())
}

#[test]
fn the_readme_shows_the_health_check_that_is_tested() {
    let readme = std::fs::read_to_string(path_of("README.md")).unwrap();
    assert!(
        readme.contains(&health_script()),
        "README.md's Argo CD health check differs from docs/argocd-health.lua"
    );
}

#[tokio::test]
async fn argo_cd_health_follows_the_ready_condition_of_the_current_generation() {
    let admin = client().await;
    install_liaison(&admin).await;
    let operator = Operator::start(&[]);
    operator.wait_ready().await;
    let p = PartnerFixture::create(&admin, "argo").await;
    let ns = p.client_namespace("argo").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    p.grant("bob", &[&ns], "read", json!([user(&p.user("bob"))]), json!({})).await;
    p.grant("mallory", &[&ns], "read", json!([user("mallory@evil.example")]), json!({})).await;

    let link = link_reason(&admin, &ns, "link", "Active").await;
    assert_eq!(health(&link).0, "Healthy", "{:?}", health(&link));
    let bob = grant_reason(&p.grants(), "bob", "Granted").await;
    assert_eq!(health(&bob).0, "Healthy");
    let partners: Api<Partner> = Api::all(admin.clone());
    let partner = eventually("the partner is Ready", WAIT, || {
        let (partners, name) = (partners.clone(), p.name.clone());
        async move { partners.get(&name).await.ok().filter(|p| health(p).0 == "Healthy") }
    })
    .await;
    assert!(health(&partner).1.contains("guest suite"));
    let mallory: AccessGrant = grant_reason(&p.grants(), "mallory", "SubjectNotAllowed").await;
    let (status, message) = health(&mallory);
    assert_eq!(status, "Degraded");
    assert!(message.starts_with("SubjectNotAllowed: "), "{message}");

    // A new spec that Liaison has not judged yet is not Healthy on the old verdict's word.
    drop(operator);
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &ns);
    let changed = links
        .patch("link", &PatchParams::default(), &Patch::Merge(json!({"spec": {"suspended": true}})))
        .await
        .unwrap();
    assert_eq!(changed.metadata.generation, Some(2));
    let (status, message) = health(&changed);
    assert_eq!(status, "Progressing", "{message}");
    assert!(message.contains("generation 2"), "{message}");
    assert_eq!(health(&json!({"metadata": {"name": "new"}})).0, "Progressing", "no status yet");
}
