//! At rest, an access operator must be silent: with 1,000 grants in force and nothing
//! changing, the API server's own audit log records no write from the operator over several
//! resync periods, although every object is reconciled again in each of them.

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ListParams};
use liaison::api::AccessGrant;
use serde_json::json;
use support::fixtures::*;
use support::*;

const CLIENTS: usize = 10;
const GRANTS_PER_CLIENT: usize = 100;
const RESYNC_SECONDS: u64 = 5;
const OPERATOR_USER: &str = "liaison-operator";

/// Write requests the audit log attributes to the operator's identity.
fn operator_writes() -> usize {
    let log = std::fs::read_to_string(testenv().dir.join("audit.log")).unwrap_or_default();
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| e["impersonatedUser"]["username"] == OPERATOR_USER)
        .filter(|e| {
            matches!(e["verb"].as_str(), Some("create" | "update" | "patch" | "delete" | "deletecollection"))
        })
        .count()
}

#[tokio::test]
async fn a_thousand_grants_at_rest_cause_no_write() {
    let admin = client().await;
    install_liaison(&admin).await;
    let admin_config = std::fs::read_to_string(kubeconfig_path()).unwrap();
    let operator_config = admin_config.replace(
        "    client-key:",
        &format!("    as: {OPERATOR_USER}\n    as-groups: [\"system:masters\"]\n    client-key:"),
    );
    let operator_kubeconfig = testenv().dir.join("operator-kubeconfig");
    std::fs::write(&operator_kubeconfig, operator_config).unwrap();
    let operator = Operator::start_with(&operator_kubeconfig, &["--resync", &RESYNC_SECONDS.to_string()]);
    operator.wait_ready().await;

    let p = PartnerFixture::create(&admin, "steady").await;
    let started = Instant::now();
    let mut namespaces = Vec::new();
    for c in 0..CLIENTS {
        let ns = p.client_namespace(&format!("c{c}")).await;
        p.link(&ns, "link", read_level("read"), json!({})).await;
        namespaces.push(ns);
    }
    let work: Vec<(String, String)> = namespaces
        .iter()
        .flat_map(|ns| (0..GRANTS_PER_CLIENT).map(move |g| (ns.clone(), format!("{ns}-g{g}"))))
        .collect();
    futures::stream::iter(work)
        .for_each_concurrent(16, |(ns, name)| {
            let p = &p;
            async move {
                let who = p.user(&name);
                p.grant(&name, &[&ns], "read", json!([user(&who)]), json!({})).await;
            }
        })
        .await;
    let total = CLIENTS * GRANTS_PER_CLIENT;
    let grants: Api<AccessGrant> = p.grants();
    until(&format!("all {total} grants are Ready"), Duration::from_secs(600), || {
        let grants = grants.clone();
        async move {
            let listed = grants.list(&ListParams::default()).await.unwrap();
            let ready = listed
                .items
                .iter()
                .filter(|g| {
                    ready_of(g.status.as_ref().map(|s| &s.conditions[..])).is_some_and(|(s, _)| s == "True")
                })
                .count();
            ready == total
        }
    })
    .await;
    eprintln!("{total} grants converged in {:?}", started.elapsed());
    assert!(
        operator_writes() > total,
        "the audit log sees the operator's writes while it converges ({})",
        operator_writes()
    );
    // The last summaries land after the last grant: a link's list of grants up to 5 s later,
    // then the partner's counts, which read the links' statuses, up to 5 s after that (plus
    // the partner's 1 s debounce). Rest begins once the operator stops writing for longer.
    let (mut last, mut since, waiting) =
        (operator_writes(), std::time::Instant::now(), std::time::Instant::now());
    while since.elapsed() < Duration::from_secs(15) {
        assert!(waiting.elapsed() < Duration::from_secs(120), "the operator never stopped writing");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = operator_writes();
        if now != last {
            (last, since) = (now, std::time::Instant::now());
        }
    }

    let (writes_before, reconciles_before) =
        (operator_writes(), metric_total(&operator.metrics().await, "liaison_reconciles_total"));
    tokio::time::sleep(Duration::from_secs(RESYNC_SECONDS * 3 + 1)).await;
    let (writes_after, reconciles_after) =
        (operator_writes(), metric_total(&operator.metrics().await, "liaison_reconciles_total"));
    eprintln!(
        "at rest over {}s: {} writes, {} reconciles",
        RESYNC_SECONDS * 3 + 1,
        writes_after - writes_before,
        reconciles_after - reconciles_before
    );
    assert!(reconciles_after - reconciles_before >= total as f64, "every grant was reconciled again at rest");
    assert_eq!(writes_after, writes_before, "no write at rest");
}
