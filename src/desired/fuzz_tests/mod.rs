//! Hostile input at the parsing boundary, then through the pure desired-state code.
//!
//! The other property suites build well-formed objects. These start one step earlier, from
//! documents: random JSON, random bytes, and valid CRD documents mutated (wrong types, missing
//! and extra fields, huge, empty and unicode strings, numbers out of range, malformed or extreme
//! timestamps, deep nesting), read as JSON (as kube reads the API server) and as YAML. Reading
//! must answer Ok or Err, never panic. Whatever reads is planned with arbitrary namespace labels,
//! Roles, ClusterRoles, ceiling and time, in three worlds:
//!
//! - raw: the objects exactly as read (duplicate names and UIDs, links of other namespaces,
//!   grants not naming the namespace), which no cluster hands over: no panic, the same plan
//!   twice, no `system:*` subject, nothing beyond the ceiling;
//! - normalized: what a cluster could hand over (unique names and UIDs, the namespace's links,
//!   the grants naming it): every rule below, checked against restatements written here;
//! - admitted: the normalized objects the CRDs' schema and CEL rules would let in: also valid
//!   names and labels on everything materialized.
//!
//! The rules: (a) only the partner's own people are bound, never `system:*`; (b) every Role is
//! covered by the ceiling; (c) nothing for a namespace outside the partner's selector, nor
//! through an expired, suspended or deleted link or grant, nor for a partner that does not
//! stand; (d) valid names and labels; (e) the same inputs give the same plan. Label selectors
//! and arbitrary PolicyRules are also thrown at kube's selector parser and at `coverage`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::rbac::v1::{PolicyRule, Subject as RbacSubject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use kube::ResourceExt;
use kube::core::{ObjectList, Selector, SelectorExt};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::client::{ClientInputs, ClientPlan, judged_with, plan as plan_client, smallest_grant_limit};
use super::coverage::{Atom, Uncovered, atoms, covers, rule_covers, uncovered};
use super::names;
use super::partner::{HomeAccess, HomeClaim, admin_rules, observer_rules, plan as plan_partner};
use super::test_builders::*;
use super::verdict::Reason;
use crate::api::{AccessGrant, AccessLevel, AccessRule, ClientLink, Expiry, Partner, Subject, SubjectKind};

const API_VERSION: &str = "liaison.dev/v1alpha1";
const RBAC: &str = "rbac.authorization.k8s.io";
const READ: &[&str] = &["get", "list", "watch"];

mod checks;
mod documents;
mod fixed;
mod mutations;
mod properties;
mod reading;
mod restated;
mod syntax;
mod values;
mod worlds;

use self::checks::*;
use self::documents::*;
use self::mutations::*;
use self::reading::*;
use self::restated::*;
use self::syntax::*;
use self::values::*;
use self::worlds::*;
