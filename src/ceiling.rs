//! The default access ceiling: Kubernetes' own `view` (read-only, no Secrets), extended by any
//! ClusterRole the platform labels `liaison.dev/aggregate-to-access-ceiling: "true"`.
//!
//! Aggregation keeps the ceiling in step with the cluster's APIs without listing them here;
//! what the platform adds is an explicit, reviewable ClusterRole of its own.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{AggregationRule, ClusterRole};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

pub const DEFAULT_NAME: &str = "liaison-access-ceiling";
pub const AGGREGATE_LABEL: &str = "liaison.dev/aggregate-to-access-ceiling";

pub fn cluster_role(name: &str) -> ClusterRole {
    let selector = |key: &str| LabelSelector {
        match_labels: Some(BTreeMap::from([(key.to_string(), "true".to_string())])),
        ..Default::default()
    };
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([("app.kubernetes.io/part-of".to_string(), "liaison".to_string())])),
            ..Default::default()
        },
        aggregation_rule: Some(AggregationRule {
            cluster_role_selectors: Some(vec![
                selector("rbac.authorization.k8s.io/aggregate-to-view"),
                selector(AGGREGATE_LABEL),
            ]),
        }),
        rules: None,
    }
}
