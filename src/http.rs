//! `/metrics`, `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::controller::Readiness;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct Health {
    pub metrics: Metrics,
    pub caches: Readiness,
    /// True while this replica waits for the lease: ready to take over, so ready.
    pub standing_by: Arc<AtomicBool>,
}

pub async fn serve(addr: SocketAddr, health: Health) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

async fn metrics(State(health): State<Health>) -> String {
    health.metrics.encode()
}

async fn ready(State(health): State<Health>) -> (StatusCode, &'static str) {
    if health.caches.is_ready() {
        (StatusCode::OK, "ok")
    } else if health.standing_by.load(Ordering::Acquire) {
        (StatusCode::OK, "standing by")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
    }
}
