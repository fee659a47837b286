//! Liaison: delegated, revocable partner access to client namespaces.
//!
//! - `api`: the CRD types (`Partner`, `ClientLink`, `AccessGrant`);
//! - `desired`: what should exist, decided purely from what was declared;
//! - `materialize`: writing that and removing the rest;
//! - `reconcile`: one reconciler per resource, each a read → decide → apply → status pipeline;
//! - `cache`: the read side: stores, indexes and the compact forms of what Liaison watches;
//! - `controller`: the watches and controllers, their periodic re-check and watch backoff;
//! - `run`: leader election and shutdown;
//! - `report`: the current-access table of `liaison access`; `reviews`: `liaison review`;
//! - `admission`: the webhook that refuses a ClientLink whose author does not hold what it delegates.
//!
//! Public are the modules the binary and the tests use (the kinds, the pure rules, the CLI and
//! its commands); the controller's machinery is the crate's own.
mod admission;
pub mod api;
mod cache;
pub mod ceiling;
pub mod cli;
mod controller;
pub mod crdgen;
pub mod desired;
mod events;
mod http;
mod materialize;
pub mod metrics;
mod reconcile;
pub mod report;
pub mod reviews;
pub mod run;
pub mod telemetry;

/// How fast each namespace's refused links are told (#26): the benchmark waits for them by it.
pub use reconcile::client_link::REFUSALS_PER_SECOND;
