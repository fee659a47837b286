//! Two replicas with leader election: only the lease holder reconciles; when it dies the other
//! takes over within the lease duration; when it stops cleanly it hands over at once.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::fixtures::*;
use support::*;

const LEASE_SECONDS: u64 = 5;

fn replica(lease: &str) -> Operator {
    Operator::start(&[
        "--leader-election",
        "--lease-name",
        lease,
        "--lease-duration",
        &LEASE_SECONDS.to_string(),
    ])
}

/// Starts two replicas and returns (leader, standby) once one of them leads.
async fn pair(lease: &str) -> (Operator, Operator) {
    let (a, b) = (replica(lease), replica(lease));
    a.wait_ready().await;
    b.wait_ready().await;
    let leader = eventually("one replica leads", WAIT, || async {
        let (la, lb) = (a.log_text().contains("leading;"), b.log_text().contains("leading;"));
        match (la, lb) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        }
    })
    .await;
    if leader { (a, b) } else { (b, a) }
}

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn only_the_leader_reconciles_and_the_standby_takes_over_when_it_dies() {
    let _serial = SERIAL.lock().await;
    let admin = client().await;
    install_liaison(&admin).await;
    let (leader, standby) = pair("liaison-failover").await;
    let p = PartnerFixture::create(&admin, "lead").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    let bob = p.user("bob");
    p.grant("g", &[&ns], "read", json!([user(&bob)]), json!({})).await;
    until("bob is granted", WAIT, || can(&admin, &bob, &[], "list", res("", "pods"), &ns)).await;
    assert!(metric_total(&leader.metrics().await, "liaison_reconciles_total") > 0.0, "the leader reconciles");
    assert_eq!(
        metric_total(&standby.metrics().await, "liaison_reconciles_total"),
        0.0,
        "the standby does not"
    );

    assert!(standby.metrics().await.contains("liaison_leader 0"), "the standby says it stands by");
    assert!(leader.metrics().await.contains("liaison_leader 1"), "the leader says it leads");

    // The standby's readiness, watched every 10 ms across the takeover: it never flaps.
    let watching = standby.http_port;
    let watch = tokio::spawn(async move {
        let mut not_ready = 0;
        let until = Instant::now() + Duration::from_secs(LEASE_SECONDS * 4);
        while Instant::now() < until {
            if !ready_at(watching).await {
                not_ready += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        not_ready
    });
    leader.kill();
    let killed = Instant::now();
    let carol = p.user("carol");
    p.grant("g2", &[&ns], "read", json!([user(&carol)]), json!({})).await;
    until("the standby grants carol", Duration::from_secs(LEASE_SECONDS * 4), || {
        can(&admin, &carol, &[], "list", res("", "pods"), &ns)
    })
    .await;
    let failover = killed.elapsed();
    assert_eq!(watch.await.unwrap(), 0, "the standby answered not ready at some point of the takeover");
    assert!(standby.metrics().await.contains("liaison_leader 1"), "the new leader says it leads");
    eprintln!("failover after SIGKILL of the leader: {failover:?} (lease {LEASE_SECONDS}s)");
    assert!(failover < Duration::from_secs(LEASE_SECONDS * 3), "failover took {failover:?}");
    assert!(metric_total(&standby.metrics().await, "liaison_reconciles_total") > 0.0);
}

#[tokio::test]
async fn a_clean_shutdown_hands_the_lease_over_at_once() {
    let _serial = SERIAL.lock().await;
    let admin = client().await;
    install_liaison(&admin).await;
    let (leader, standby) = pair("liaison-handover").await;
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(admin.clone(), "default");
    let holder = |lease: &k8s_openapi::api::coordination::v1::Lease| {
        lease.spec.as_ref().and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty())
    };
    let held_by = holder(&leases.get("liaison-handover").await.unwrap()).expect("the leader holds the lease");
    let stopped = Instant::now();
    assert!(leader.terminate().success());
    let after = leases.get("liaison-handover").await.unwrap();
    assert_ne!(
        holder(&after).as_deref(),
        Some(held_by.as_str()),
        "SIGTERM released the lease before exiting"
    );
    until("the standby leads", WAIT, || {
        let log = standby.log_text();
        async move { log.contains("leading;") }
    })
    .await;
    let handover = stopped.elapsed();
    eprintln!("handover after SIGTERM of the leader: {handover:?} (lease {LEASE_SECONDS}s)");
    assert!(handover < Duration::from_secs(LEASE_SECONDS * 2), "handover took {handover:?}");
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_stops_at_once() {
    let _serial = SERIAL.lock().await;
    let admin = client().await;
    install_liaison(&admin).await;
    let mut leader = replica("liaison-stolen");
    until("the replica leads", WAIT, || {
        let log = leader.log_text();
        async move { log.contains("leading;") }
    })
    .await;
    // Someone else takes the lease (as a partitioned replica's successor would).
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(admin.clone(), "default");
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(jiff::Timestamp::now());
    let theft = json!({"spec": {"holderIdentity": "thief", "acquireTime": now, "renewTime": now, "leaseDurationSeconds": 60}});
    leases
        .patch("liaison-stolen", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&theft))
        .await
        .unwrap();
    let stolen = Instant::now();
    let status = eventually("the former leader exits", Duration::from_secs(LEASE_SECONDS * 3), || {
        let exited = leader.try_wait();
        async move { exited }
    })
    .await;
    eprintln!("the former leader exited {:?} after losing the lease", stolen.elapsed());
    assert!(!status.success(), "losing the lease is an error exit, so that the pod restarts as a standby");
    assert!(leader.log_text().contains("leadership lost"), "{}", leader.log_text());
}

/// A replica told to stop the moment it starts leading, while its caches are still filling,
/// exits within its shutdown grace and hands the lease over. With each controller a task of
/// its own, kube's graceful shutdown waited here for good.
#[tokio::test]
async fn a_leader_stopped_while_its_caches_fill_exits_at_once() {
    let _serial = SERIAL.lock().await;
    let admin = client().await;
    install_liaison(&admin).await;
    for trial in 0..3 {
        let mut leader = replica(&format!("liaison-early-{trial}"));
        let started = Instant::now();
        while !leader.log_text().contains("leading;") {
            assert!(started.elapsed() < WAIT, "the replica never led: {}", leader.log_text());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = std::process::Command::new("kill").args(["-TERM", &leader.pid().to_string()]).status();
        let stopped = Instant::now();
        let status = eventually("the replica exits", Duration::from_secs(LEASE_SECONDS * 2), || {
            let exited = leader.try_wait();
            async move { exited }
        })
        .await;
        assert!(status.success(), "a requested stop is a clean exit: {}", leader.log_text());
        // The operator's grace (3 s) ends a stop that hangs; a stop that needed it is a defect:
        // kube's lost wake-up of controllers sharing a store (`controller::drive_controller`).
        assert!(
            !leader.log_text().contains("controllers still busy after the grace"),
            "trial {trial}: the controllers finished only because the grace ran out: {}",
            leader.log_text()
        );
        eprintln!("trial {trial}: exited {:?} after SIGTERM", stopped.elapsed());
    }
}
