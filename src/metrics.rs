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

/// The kinds Liaison reconciles.
pub const RECONCILED: [&str; 3] = ["Partner", "ClientLink", "AccessGrant"];
/// The kinds of object Liaison writes (its own kinds: their statuses and finalizers).
pub const WRITTEN: [&str; 12] = [
    "Partner",
    "ClientLink",
    "AccessGrant",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "ServiceAccount",
    "Secret",
    "Namespace",
    "TokenRequest",
    "Event",
];

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
    /// 1 while this replica runs the controllers (holds the lease, or runs without election).
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("liaison");
        let reconciles = Family::<KindLabel, Counter>::default();
        let reconcile_errors = Family::<ErrorLabel, Counter>::default();
        let reconcile_duration = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        let writes = Family::<KindLabel, Counter>::default();
        let revocations = Family::<KindLabel, Counter>::default();
        let revocation_latency = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let expiry_lag = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let active_bindings = Gauge::default();
        let active_grants = Gauge::default();
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica runs the controllers (holds the lease), 0 while it stands by",
            leader.clone(),
        );
        registry.register("reconciles", "Reconciliations by kind", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Failed reconciliations by kind and reason",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconciliation time by kind",
            reconcile_duration.clone(),
        );
        registry.register(
            "api_writes",
            "Write requests sent to the API server, by kind of object",
            writes.clone(),
        );
        registry.register(
            "revocations",
            "Completed revocations (finalizer released) by kind",
            revocations.clone(),
        );
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
        registry.register(
            "active_bindings",
            "Grant RoleBindings materialized (updated at each sweep)",
            active_bindings.clone(),
        );
        registry.register(
            "active_grants",
            "AccessGrants granted in at least one client (updated at each sweep)",
            active_grants.clone(),
        );
        // Every series a dashboard or an alert reads exists from the first scrape, at zero: a
        // quiet cluster shows `rate()` 0 rather than nothing, and an absence alert means absent.
        for kind in RECONCILED {
            let label = KindLabel { kind: kind.into() };
            drop(reconciles.get_or_create(&label));
            drop(reconcile_duration.get_or_create(&label));
            drop(revocations.get_or_create(&label));
            drop(revocation_latency.get_or_create(&label));
            for reason in crate::reconcile::failures::REASONS {
                drop(
                    reconcile_errors.get_or_create(&ErrorLabel { kind: kind.into(), reason: reason.into() }),
                );
            }
        }
        for kind in WRITTEN {
            drop(writes.get_or_create(&KindLabel { kind: kind.into() }));
        }
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
            leader,
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
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_operator_exposes_every_series_at_zero() {
        let page = Metrics::default().encode();
        for kind in RECONCILED {
            for series in [
                format!("liaison_reconciles_total{{kind=\"{kind}\"}} 0"),
                format!("liaison_revocations_total{{kind=\"{kind}\"}} 0"),
                format!("liaison_reconcile_errors_total{{kind=\"{kind}\",reason=\"ApplyFailed\"}} 0"),
                format!("liaison_revocation_latency_seconds_count{{kind=\"{kind}\"}} 0"),
            ] {
                assert!(page.contains(&series), "{series} missing from:\n{page}");
            }
        }
        assert!(page.contains("liaison_api_writes_total{kind=\"RoleBinding\"} 0"), "{page}");
    }
}
