//! Crashes at random moments: the operator is SIGKILLed while it grants many subjects at once
//! and while it revokes them, then restarted. After each trial the API server's authorization
//! must equal the declared intent, and nothing Liaison made may be left behind.
//!
//! `LIAISON_FAULT_TRIALS` sets the number of trials (CI: 5; `make test-faults`: 20).

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams};
use liaison::api::ClientLink;
use serde_json::json;
use support::fixtures::*;
use support::*;

const GRANTS: usize = 20;
const PODS: Res = res("", "pods");

fn trials() -> usize {
    std::env::var("LIAISON_FAULT_TRIALS").ok().and_then(|t| t.parse().ok()).unwrap_or(5)
}

async fn all_allowed(admin: &kube::Client, users: &[String], ns: &str, expected: bool) -> bool {
    for user in users {
        if can(admin, user, &[], "list", PODS, ns).await != expected {
            return false;
        }
    }
    true
}

/// Kills the operator after a random delay, then starts a fresh one.
async fn crash_and_restart(operator: Operator, window_ms: u64) -> Operator {
    let delay = rand::random_range(0..window_ms);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    operator.kill();
    Operator::start(&[])
}

/// These tests disturb the whole control plane: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn sigkill_during_mass_grant_and_mass_revocation_converges_to_intent() {
    let _serial = SERIAL.lock().await;
    let admin = client().await;
    install_liaison(&admin).await;
    let mut operator = Operator::start(&[]);
    operator.wait_ready().await;
    let started = Instant::now();
    for trial in 0..trials() {
        let p = PartnerFixture::create(&admin, &format!("crash{trial}")).await;
        let ns = p.client_namespace("c").await;
        p.link(&ns, "link", read_level("read"), json!({"accessKey": {"accessLevel": "read"}})).await;
        let users: Vec<String> = (0..GRANTS).map(|i| p.user(&format!("u{i}"))).collect();

        // Mass grant, interrupted.
        for (i, user_name) in users.iter().enumerate() {
            p.grant(&format!("g{i}"), &[&ns], "read", json!([user(user_name)]), json!({})).await;
        }
        operator = crash_and_restart(operator, 1500).await;
        until(&format!("trial {trial}: every subject is granted"), WAIT, || all_allowed(&admin, &users, &ns, true)).await;

        // Mass revocation (the link goes), interrupted.
        let links: Api<ClientLink> = Api::namespaced(admin.clone(), &ns);
        links.delete("link", &DeleteParams::default()).await.unwrap();
        operator = crash_and_restart(operator, 800).await;
        until(&format!("trial {trial}: every subject is revoked"), WAIT, || all_allowed(&admin, &users, &ns, false)).await;
        until(&format!("trial {trial}: the link is released"), WAIT, || {
            let links = links.clone();
            async move { links.get_opt("link").await.unwrap().is_none() }
        })
        .await;
        let managed = ListParams::default().labels("app.kubernetes.io/managed-by=liaison");
        let left = Api::<RoleBinding>::namespaced(admin.clone(), &ns).list(&managed).await.unwrap().items.len()
            + Api::<Role>::namespaced(admin.clone(), &ns).list(&managed).await.unwrap().items.len()
            + Api::<ServiceAccount>::namespaced(admin.clone(), &ns).list(&managed).await.unwrap().items.len();
        assert_eq!(left, 0, "trial {trial}: nothing is orphaned");
        let keys = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin.clone(), &p.home)
            .list(&ListParams::default().labels("liaison.dev/component=access-key"))
            .await
            .unwrap();
        assert!(keys.items.is_empty(), "trial {trial}: the access key Secret is gone");
    }
    eprintln!("{} crash trials of {GRANTS} grants each passed in {:?}", trials(), started.elapsed());
    drop(operator);
}

/// How soon after the control plane is back a new grant and a revocation must take effect.
/// Watches retry at most every five seconds (`liaison::watch_backoff`) and then list again;
/// with kube's default backoff (up to a minute) a grant once waited more than 60 s in CI.
const RECOVERY: Duration = Duration::from_secs(30);

/// A disturbance of the control plane while the operator runs; afterwards new grants are
/// still applied and a link deletion still revokes everything, within `RECOVERY`.
async fn survives(disturb: impl std::future::Future<Output = ()>, prefix: &str) {
    let admin = client().await;
    install_liaison(&admin).await;
    let operator = Operator::start(&[]);
    operator.wait_ready().await;
    let p = PartnerFixture::create(&admin, prefix).await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    let (bob, carol) = (p.user("bob"), p.user("carol"));
    p.grant("bob", &[&ns], "read", json!([user(&bob)]), json!({})).await;
    until("bob is granted", WAIT, || can(&admin, &bob, &[], "list", PODS, &ns)).await;

    disturb.await;

    let back = Instant::now();
    let admin = client().await;
    p.grant("carol", &[&ns], "read", json!([user(&carol)]), json!({})).await;
    until("carol is granted after the disturbance", RECOVERY, || can(&admin, &carol, &[], "list", PODS, &ns)).await;
    eprintln!("{prefix}: a new grant took effect {:?} after the control plane came back", back.elapsed());
    Api::<ClientLink>::namespaced(admin.clone(), &ns).delete("link", &DeleteParams::default()).await.unwrap();
    let deleted = Instant::now();
    until("both are revoked", RECOVERY, || {
        let users = vec![bob.clone(), carol.clone()];
        let (admin, ns) = (admin.clone(), ns.clone());
        async move { all_allowed(&admin, &users, &ns, false).await }
    })
    .await;
    eprintln!("{prefix}: revoked {:?} after the link's deletion", deleted.elapsed());
    drop(operator);
}

/// About as long as an API server upgrade keeps it away.
const API_SERVER_DOWN: Duration = Duration::from_secs(15);

#[tokio::test]
async fn the_operator_survives_a_kube_apiserver_restart() {
    let _serial = SERIAL.lock().await;
    survives(
        async {
            // Down long enough for kube's default backoff to have reached its longer waits.
            let status = std::process::Command::new(path_of("scripts/testenv"))
                .args(["restart", testenv().dir.to_str().unwrap(), "kube-apiserver", &API_SERVER_DOWN.as_secs().to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "restarting kube-apiserver");
        },
        "apirestart",
    )
    .await;
}

#[tokio::test]
async fn the_operator_survives_a_paused_etcd() {
    let _serial = SERIAL.lock().await;
    survives(
        async {
            let pid = std::fs::read_to_string(testenv().dir.join("etcd.pid")).unwrap().trim().to_string();
            assert!(std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
            tokio::time::sleep(Duration::from_secs(8)).await;
            assert!(std::process::Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
        },
        "etcdpause",
    )
    .await;
}
