//! Prometheus metrics: what the operator did, how long it took, and how fast access went.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub kind: String,
    pub reason: String,
}

/// Cheap to clone: every field is a shared handle.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub reconciles: Family<KindLabel, Counter>,
    pub reconcile_errors: Family<ErrorLabel, Counter>,
    pub reconcile_duration: Family<KindLabel, Histogram>,
    pub writes: Family<KindLabel, Counter>,
    pub revocations: Family<KindLabel, Counter>,
    pub revocation_latency: Family<KindLabel, Histogram>,
    pub expiry_lag: Histogram,
    pub active_bindings: Gauge,
    pub active_grants: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("liaison");
        let reconciles = Family::<KindLabel, Counter>::default();
        let reconcile_errors = Family::<ErrorLabel, Counter>::default();
        let reconcile_duration =
            Family::<KindLabel, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 14)));
        let writes = Family::<KindLabel, Counter>::default();
        let revocations = Family::<KindLabel, Counter>::default();
        let revocation_latency =
            Family::<KindLabel, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 14)));
        let expiry_lag = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let active_bindings = Gauge::default();
        let active_grants = Gauge::default();
        registry.register("reconciles", "Reconciliations by kind", reconciles.clone());
        registry.register("reconcile_errors", "Failed reconciliations by kind and reason", reconcile_errors.clone());
        registry.register("reconcile_duration_seconds", "Reconciliation time by kind", reconcile_duration.clone());
        registry.register("api_writes", "Write requests sent to the API server, by kind of object", writes.clone());
        registry.register("revocations", "Completed revocations (finalizer released) by kind", revocations.clone());
        registry.register(
            "revocation_latency_seconds",
            "From deletion requested to every access removed and the finalizer released",
            revocation_latency.clone(),
        );
        registry.register(
            "expiry_lag_seconds",
            "From expiresAt to the status saying Expired (access is removed before)",
            expiry_lag.clone(),
        );
        registry.register("active_bindings", "Grant RoleBindings materialized (updated at each sweep)", active_bindings.clone());
        registry.register("active_grants", "AccessGrants granted in at least one client (updated at each sweep)", active_grants.clone());
        Metrics {
            registry: Arc::new(registry),
            reconciles,
            reconcile_errors,
            reconcile_duration,
            writes,
            revocations,
            revocation_latency,
            expiry_lag,
            active_bindings,
            active_grants,
        }
    }
}

impl Metrics {
    pub fn write(&self, kind: &str) {
        self.writes.get_or_create(&KindLabel { kind: kind.to_string() }).inc();
    }

    pub fn reconciled(&self, kind: &str, seconds: f64) {
        let label = KindLabel { kind: kind.to_string() };
        self.reconciles.get_or_create(&label).inc();
        self.reconcile_duration.get_or_create(&label).observe(seconds);
    }

    pub fn failed(&self, kind: &str, reason: &str) {
        self.reconcile_errors.get_or_create(&ErrorLabel { kind: kind.into(), reason: reason.into() }).inc();
    }

    pub fn revoked(&self, kind: &str, latency_seconds: f64) {
        let label = KindLabel { kind: kind.to_string() };
        self.revocations.get_or_create(&label).inc();
        self.revocation_latency.get_or_create(&label).observe(latency_seconds);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
