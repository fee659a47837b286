//! What should exist, decided purely from what was declared: no API calls here.
//!
//! `client::plan` judges one client namespace (links, grants, levels, the ceiling, the time);
//! `partner::plan` the objects of a partner's guest suite. `coverage` and `identity` hold the
//! two security checks, `names` the naming and labelling of everything materialized,
//! `ownership` the one rule that says which objects are Liaison's and whose.

pub mod client;
pub mod coverage;
pub mod delegation;
#[cfg(test)]
mod fuzz_tests;
pub mod identity;
pub mod names;
pub mod ownership;
pub mod partner;
pub mod request;
pub mod review;
#[cfg(test)]
mod test_builders;
pub mod verdict;

pub use client::{
    ClientInputs, ClientPlan, GrantPlan, LinkPlan, partner_standing, plan as plan_client,
    plan_with as plan_client_with,
};
pub use partner::{HomeClaim, HomeFacts, PartnerPlan, home_claim, plan as plan_partner};
pub use verdict::{Reason, Verdict};
