//! `liaison run`: serve health and metrics, win the lease, run the controllers, stop cleanly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kube::{Client, Config};
use tokio::sync::watch;

use crate::cli::RunArgs;
use crate::controller::{self, Limits, Readiness};
use crate::desired::partner::HomeAccess;
use crate::http::{self, Health};
use crate::materialize::access_key::KeySettings;
use crate::metrics::Metrics;
use crate::reconcile::Settings;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no usable Kubernetes configuration: {0}")]
    Config(#[from] kube::config::InferConfigError),
    #[error("building the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    #[error("leadership lost; exiting so that no write happens without the lease")]
    LeadershipLost,
    #[error(transparent)]
    Admission(#[from] crate::admission::Error),
}

pub async fn run(args: RunArgs) -> Result<(), Error> {
    let config = Config::infer().await?;
    let settings = Settings {
        ceiling: args.ceiling.clone(),
        access_key: KeySettings {
            server: args
                .access_key_server
                .clone()
                .unwrap_or_else(|| config.cluster_url.to_string().trim_end_matches('/').to_string()),
            ca_pem: config
                .root_cert
                .as_ref()
                .map(|certs| certs.iter().flat_map(|der| der_to_pem(der).into_bytes()).collect()),
            token_ttl: args.access_key_ttl,
        },
        home_access: args.service_account.clone().zip(args.home_access_role.clone()).map(
            |(service_account, cluster_role)| HomeAccess {
                service_account,
                namespace: args.lease_namespace.clone(),
                cluster_role,
            },
        ),
        resync: args.resync.max(std::time::Duration::from_secs(1)),
        operator_namespace: Some(args.lease_namespace.clone()),
    };
    let client = Client::try_from(config).map_err(Error::Client)?;
    // On every replica, leader or not: the API server calls whichever the Service picks.
    if let Some(addr) = args.admission_addr {
        let webhook = crate::admission::bind(addr, &args.admission_cert_dir).await?;
        let client = client.clone();
        tokio::spawn(async move {
            if let Err(error) = webhook.serve(client).await {
                tracing::error!(%error, "the admission webhook stopped");
            }
        });
    }
    let metrics = Metrics::default();
    let readiness = Readiness::default();
    let standing_by = Arc::new(AtomicBool::new(args.leader_election));
    let health =
        Health { metrics: metrics.clone(), caches: readiness.clone(), standing_by: standing_by.clone() };
    let addr = args.http_addr;
    tokio::spawn(async move {
        if let Err(error) = http::serve(addr, health).await {
            tracing::error!(%error, %addr, "the health and metrics server stopped");
        }
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        terminated().await;
        tracing::info!("termination requested; finishing in-flight reconciles");
        let _ = stop_tx.send(true);
    });

    let limits = Limits {
        concurrency: args.concurrency.max(1),
        sweep_interval: args.sweep_interval.max(std::time::Duration::from_secs(1)),
    };
    if !args.leader_election {
        metrics.leader.set(1);
        controller::run(client, settings, limits, metrics, readiness, stop_rx).await;
        return Ok(());
    }

    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| format!("liaison-{}", std::process::id()));
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &args.lease_name)
        .with_namespace(&args.lease_namespace)
        .with_identity(&identity)
        .with_duration(args.lease_duration.as_secs())
        .with_grace((args.lease_duration.as_secs() / 3).max(1))
        .build()
        .await?;
    let (mut leader, lease_task) = manager.watch().await;
    tracing::info!(%identity, lease = %args.lease_name, "waiting for the lease");
    let mut stop_wait = stop_rx.clone();
    let stopped_first = tokio::select! {
        _ = leader.wait_for(|is_leader| *is_leader) => false,
        _ = stop_wait.wait_for(|stop| *stop) => true,
    };
    if stopped_first {
        drop(leader);
        let _ = lease_task.await;
        return Ok(());
    }
    metrics.leader.set(1);
    tracing::info!(%identity, "leading; starting controllers");
    // Readiness does not flap at the takeover: a standby is ready (to take over), and it stays
    // so until its caches are synced as the leader, when readiness becomes the caches'.
    let (synced, handed) = (readiness.clone(), standing_by.clone());
    tokio::spawn(async move {
        while !synced.is_ready() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        handed.store(false, Ordering::Release);
    });

    let mut lost = leader.clone();
    let outcome = tokio::select! {
        _ = controller::run(client, settings, limits, metrics, readiness, stop_rx) => Ok(()),
        _ = lost.wait_for(|is_leader| !*is_leader) => Err(Error::LeadershipLost),
    };
    // Dropping the receivers makes the lease task release the lease before it ends.
    drop(lost);
    drop(leader);
    let _ = lease_task.await;
    outcome
}

async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> =
        encoded.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}
