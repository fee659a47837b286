//! Liaison: delegated, revocable partner access to client namespaces.
//!
//! - `api`: the CRD types (`Partner`, `ClientLink`, `AccessGrant`);
//! - `desired`: what should exist, decided purely from what was declared;
//! - `materialize`: writing that and removing the rest;
//! - `reconcile`: one reconciler per resource, each a read → decide → apply → status pipeline;
//! - `index`: secondary indexes over the caches; `compact`: the compact caches of the bulk of
//!   what Liaison writes (grant bindings, level Roles); `namespace_labels`: namespaces as the
//!   labels the rules read; `grant_statuses`, `summaries`: what grants', links' and
//!   partners' statuses say, kept compactly so that their caches can leave it out; `fed`: how
//!   these caches take their watch's events;
//! - `controller`: the watches and controllers; `watch_backoff`: how soon a broken watch
//!   tries again; `resync`: their paced periodic re-check;
//!   `run`: leader election and shutdown;
//! - `report`: the current-access table of `liaison access`; `reviews`: `liaison review`;
//! - `admission`: the webhook that refuses a ClientLink whose author does not hold what it delegates.
pub mod admission;
pub mod api;
pub mod ceiling;
pub mod cli;
pub mod compact;
pub mod controller;
pub mod crdgen;
pub mod desired;
pub mod events;
pub mod fed;
pub mod grant_statuses;
pub mod http;
pub mod index;
pub mod materialize;
pub mod metrics;
pub mod namespace_labels;
pub mod reconcile;
pub mod report;
pub mod resync;
pub mod reviews;
pub mod run;
pub mod summaries;
pub mod telemetry;
pub mod watch_backoff;
