//! The read side: what Liaison knows of the cluster between two requests.
//!
//! Stores fed by the shared watches, the indexes over them, and the compact forms the bulk of
//! them are kept in (a grant's binding, a level's Role, a grant's status, a link's summary are
//! a few digests each, not the objects). Nothing here writes to the API server; the write side
//! (`materialize`) and the decisions (`reconcile`) read from here.
//!
//! - `stores`: the stores the controllers share (`Caches`) and the indexes over them;
//! - `fed`: how a cache takes its watch's events;
//! - `keys`: the digests objects and contents are known by;
//! - `compare`: whether a cached object says what Liaison wants;
//! - `compact`: grant bindings and level Roles, compactly;
//! - `index`: secondary indexes (which links name a partner, which grants a namespace...);
//! - `holders`: which link holds each crowded namespace, remembered;
//! - `namespace_labels`: namespaces as the labels the rules read;
//! - `grant_statuses`, `summaries`: what grants', links' and partners' statuses say, kept
//!   apart so that the cached objects can leave it out;
//! - `views`: those cached objects as reconciles hold them, without the parts left out.

pub mod compact;
pub mod compare;
pub mod fed;
pub mod grant_statuses;
pub mod holders;
pub mod index;
pub mod keys;
pub mod namespace_labels;
mod stores;
pub mod summaries;
pub mod views;

pub use stores::{Caches, Indexes, client_served_by};
