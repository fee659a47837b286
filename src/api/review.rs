//! `spec.review`: access that lapses unless someone trusted re-confirms it every period.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::Expiry;

/// Days, hours, minutes and seconds, in that order, each optional: `90d`, `12h`, `1d12h`,
/// `30s`. No calendar: a day is 24 hours.
pub const PERIOD_PATTERN: &str = r"^([0-9]{1,5}d)?([0-9]{1,6}h)?([0-9]{1,8}m)?([0-9]{1,9}s)?$";

/// Access that must be re-confirmed every period: a review is announced `grace` before it is
/// due (condition `Reviewed=False`, reason `ReviewDue`, and an Event) and, once it is `grace`
/// overdue, access is suspended (`ReviewOverdue`) until someone reviews.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// How often access must be re-confirmed: `90d`, `12h`, `1d12h`, `30s` (a day is 24 hours).
    #[schemars(
        length(min = 2, max = 32),
        regex(pattern = r"^([0-9]{1,5}d)?([0-9]{1,6}h)?([0-9]{1,8}m)?([0-9]{1,9}s)?$")
    )]
    #[x_kube(validation = Rule::new("self.matches('[1-9]')").message("every is a period longer than zero, such as 90d or 12h"))]
    pub every: String,
    /// How long before it is due a review is announced, and how long after it is due access
    /// goes on; absent, none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 2, max = 32),
        regex(pattern = r"^([0-9]{1,5}d)?([0-9]{1,6}h)?([0-9]{1,8}m)?([0-9]{1,9}s)?$")
    )]
    pub grace: Option<String>,
    /// The latest review: who made it and when (`liaison review` writes it). The chart's
    /// admission policy refuses one whose `by` is not the user writing it; Liaison counts it
    /// from the earlier of `at` and the moment it first saw it, so it cannot be post-dated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed: Option<Reviewed>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reviewed {
    /// The reviewer's user name, as the API server authenticates them.
    #[schemars(length(min = 1, max = 253))]
    pub by: String,
    /// When the review was made (RFC 3339).
    pub at: Expiry,
}

/// What Liaison counted of the reviews: the period in force and when it lapses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewStatus {
    /// The instant the current period runs from: the latest review counted, or when Liaison
    /// first saw the requirement.
    pub since: Time,
    /// Who made the latest review counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_by: Option<String>,
    /// `reviewed.at` of the latest review counted, as written: it tells that review from the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<String>,
    /// When the next review is due.
    pub due_at: Time,
    /// When access is suspended unless reviewed (`dueAt` plus the grace).
    pub suspends_at: Time,
}
