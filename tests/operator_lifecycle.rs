//! The operator's own lifecycle on a real control plane: it finishes revocations it missed
//! while down, writes nothing when nothing changed, stops cleanly, and its conditions work
//! with `kubectl wait`. These tests start and stop operators themselves, so they run one at a
//! time in their own test binary.

mod support;

use std::time::Duration;

use kube::api::{Api, DeleteParams};
use liaison::api::{ClientLink, Partner};
use serde_json::json;
use support::fixtures::*;
use support::*;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn a_revocation_missed_while_down_completes_on_restart() {
    let _serial = SERIAL.lock().await;
    let admin = client().await;
    install_liaison(&admin).await;
    let operator = Operator::start(&[]);
    operator.wait_ready().await;
    let p = PartnerFixture::create(&admin, "down").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    let bob = p.user("bob");
    p.grant("g", &[&ns], "read", json!([user(&bob)]), json!({})).await;
    until("bob is granted", WAIT, || can(&admin, &bob, &[], "list", PODS, &ns)).await;

    operator.kill();
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &ns);
    links.delete("link", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        links.get_opt("link").await.unwrap().is_some(),
        "the finalizer holds the link while nobody revoked"
    );
    assert!(can(&admin, &bob, &[], "list", PODS, &ns).await, "nothing revoked it yet");

    let restarted = Operator::start(&[]);
    until("bob's access is revoked", WAIT, || async { !can(&admin, &bob, &[], "list", PODS, &ns).await })
        .await;
    until_gone(&links, "link", "the link is released", WAIT).await;
    drop(restarted);
}

#[tokio::test]
async fn a_fresh_operator_on_a_converged_cluster_writes_nothing() {
    let _serial = SERIAL.lock().await;
    let admin = client().await;
    install_liaison(&admin).await;
    let first = Operator::start(&[]);
    first.wait_ready().await;
    let p = PartnerFixture::create(&admin, "quiet").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({"accessKey": {"accessLevel": "read"}})).await;
    for i in 0..10 {
        p.grant(&format!("g{i}"), &[&ns], "read", json!([user(&p.user(&format!("u{i}")))]), json!({})).await;
    }
    for i in 0..10 {
        grant_reason(&p.grants(), &format!("g{i}"), "Granted").await;
    }
    link_reason(&admin, &ns, "link", "Active").await;
    // The summaries of the link and the partner are written up to 5 s after the last grant.
    until("the link and the partner count all ten grants", WAIT, || async {
        let link = Api::<ClientLink>::namespaced(admin.clone(), &ns).get("link").await.unwrap();
        let partner = Api::<Partner>::all(admin.clone()).get(&p.name).await.unwrap();
        link.status.is_some_and(|s| s.grant_count == 10)
            && partner.status.is_some_and(|s| s.grant_count == 10)
    })
    .await;
    let granted_writes = metric_total(&first.metrics().await, "liaison_api_writes_total");
    assert!(granted_writes >= 20.0, "the counter sees the writes that granted access ({granted_writes})");
    first.terminate();

    let fresh = Operator::start(&[]);
    fresh.wait_ready().await;
    // Every object is reconciled once at start; give it time to do all of it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let metrics = fresh.metrics().await;
    let reconciles = metric_total(&metrics, "liaison_reconciles_total");
    assert!(reconciles >= 12.0, "the fresh operator reconciled everything ({reconciles})");
    assert_eq!(
        metric_total(&metrics, "liaison_api_writes_total"),
        0.0,
        "a converged cluster needs no write:\n{}",
        metrics.lines().filter(|l| l.contains("writes")).collect::<Vec<_>>().join("\n")
    );
    for family in [
        "liaison_reconciles_total",
        "liaison_reconcile_duration_seconds",
        "liaison_expiry_lag_seconds",
        "liaison_active_bindings",
        "liaison_active_grants",
    ] {
        assert!(metrics.contains(family), "/metrics exposes {family}");
    }
}

#[tokio::test]
async fn sigterm_stops_the_operator_cleanly() {
    let _serial = SERIAL.lock().await;
    let admin = client().await;
    install_liaison(&admin).await;
    let operator = Operator::start(&[]);
    operator.wait_ready().await;
    let started = std::time::Instant::now();
    let status = operator.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(started.elapsed() < Duration::from_secs(10), "stopped in {:?}", started.elapsed());
}

#[tokio::test]
async fn kubectl_wait_for_ready_works_on_all_three_kinds() {
    let _serial = SERIAL.lock().await;
    let admin = client().await;
    install_liaison(&admin).await;
    let operator = Operator::start(&[]);
    operator.wait_ready().await;
    let p = PartnerFixture::create(&admin, "wait").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    p.grant("g", &[&ns], "read", json!([user(&p.user("bob"))]), json!({})).await;
    for (target, namespace) in [
        (format!("partner/{}", p.name), None),
        ("clientlink/link".to_string(), Some(ns.as_str())),
        ("accessgrant/g".to_string(), Some(p.home.as_str())),
    ] {
        let mut args = vec!["wait", "--for=condition=Ready", "--timeout=30s", target.as_str()];
        if let Some(ns) = namespace {
            args.extend(["-n", ns]);
        }
        let (ok, output) = kubectl(&args);
        assert!(ok, "kubectl wait {target}: {output}");
    }
    drop(operator);
}

#[tokio::test]
async fn reapplying_the_same_yaml_changes_nothing_and_the_kubectl_plugin_works() {
    let _serial = SERIAL.lock().await;
    let admin = client().await;
    install_liaison(&admin).await;
    let operator = Operator::start(&[]);
    operator.wait_ready().await;
    let p = PartnerFixture::create(&admin, "gitops").await;
    let ns = p.client_namespace("c").await;
    let link = p.link(&ns, "link", read_level("read"), json!({})).await;
    p.grant("g", &[&ns], "read", json!([user(&p.user("bob"))]), json!({})).await;
    link_reason(&admin, &ns, "link", "Active").await;
    grant_reason(&p.grants(), "g", "Granted").await;
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &ns);
    let settled = links.get("link").await.unwrap();
    assert_eq!(settled.spec, link.spec, "the operator never writes spec");

    // A GitOps tool applies the same YAML again: nothing changes, not even resourceVersion.
    let again = p.link(&ns, "link", read_level("read"), json!({})).await;
    assert_eq!(again.metadata.resource_version, settled.metadata.resource_version);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        links.get("link").await.unwrap().metadata.resource_version,
        settled.metadata.resource_version,
        "and the operator does not react with a write"
    );

    // `kubectl liaison access` through a kubectl plugin symlink.
    let plugins = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_liaison"), plugins.path().join("kubectl-liaison"))
        .unwrap();
    let path = format!("{}:{}", plugins.path().display(), std::env::var("PATH").unwrap_or_default());
    let out = std::process::Command::new(bin_dir().join("kubectl"))
        .args(["liaison", "access", "--client", &ns])
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig_path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("User:{}", p.user("bob"))) && text.contains("Granted"), "{text}");
    drop(operator);
}
