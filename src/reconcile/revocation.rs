//! Revocation's first write on a path of its own. A link that its own spec or its partner's
//! state revokes (deleted, suspended, expired; partner deleted, gone or replaced) has its level
//! Roles emptied from a queue that holds nothing else, so no backlog of other tenants' work
//! delays the moment access ends: 4,000 refused links in another namespace kept a deletion
//! waiting 148 s behind them in the links' one queue (#26).
//!
//! This path only ever removes rules, and nothing waits for it: the link's own reconcile still
//! revokes everything in order (Roles emptied again from the API server's list, bindings, the
//! key, the Roles) and releases the finalizer last.

use std::sync::Arc;

use jiff::Timestamp;
use kube::runtime::controller::Action;

use super::{Context, Error, requeue_at};
use crate::api::{ClientLink, Expiry};
use crate::cache::views::CachedLink;
use crate::desired::client::revoked_outright;

pub async fn reconcile(link: Arc<ClientLink>, ctx: Arc<Context>) -> Result<Action, Error> {
    let link = CachedLink::from(link);
    tracing::debug!(namespace = link.namespace(), link = link.name_any(), "revocation path: reconciling");
    let now = Timestamp::now();
    let partner = ctx.caches.partner(&link.spec().partner);
    if revoked_outright(link.trimmed(), partner.as_ref().map(|p| p.trimmed()), now).is_none() {
        // Back when it expires (a paced look at most every resync).
        let expires = link.spec().expires_at.as_ref().and_then(Expiry::instant);
        return Ok(requeue_at(expires, now, ctx.settings.resync));
    }
    let granting = ctx
        .caches
        .level_roles
        .granting_of_link(&link.namespace().unwrap_or_default(), &link.uid().unwrap_or_default());
    if !granting.is_empty() {
        let emptied = ctx.writer.empty_roles(granting).await?;
        tracing::info!(
            namespace = link.namespace(),
            link = link.name_any(),
            emptied,
            "access revoked: the link's level Roles emptied"
        );
    }
    Ok(Action::await_change())
}

/// Whether a link's change can concern this path: it is being deleted or suspended, or it
/// expires. A partner's deletion is heard from the partners' watch.
pub fn concerns(link: &ClientLink) -> bool {
    link.metadata.deletion_timestamp.is_some() || link.spec.is_suspended() || link.spec.expires_at.is_some()
}
