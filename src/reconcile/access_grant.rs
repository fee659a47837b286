//! AccessGrant: reports, per client, whether the grant is in force, and revokes its bindings
//! when it is deleted. The bindings themselves are written by the client namespace's link,
//! which sees every grant naming it.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as Finalizer;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::status::{publish, ready_condition, transitioned};
use super::{Context, Error, requeue_at, with_finalizer};
use crate::api::{AccessGrant, AccessGrantStatus, ClientAccess};
use crate::desired::names;
use crate::desired::{Reason, Verdict, plan_client};
use crate::materialize::revoke;

const KIND: &str = "AccessGrant";

pub async fn reconcile(grant: Arc<AccessGrant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<AccessGrant> = Api::namespaced(ctx.client.clone(), &grant.namespace().unwrap_or_default());
    with_finalizer(&api, grant, &ctx, |event| async {
        match event {
            Finalizer::Apply(grant) => apply(&grant, &ctx).await,
            Finalizer::Cleanup(grant) => cleanup(&grant, &ctx).await,
        }
    })
    .await
}

async fn apply(grant: &AccessGrant, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    let home = grant.namespace().unwrap_or_default();
    let name = grant.name_any();
    let mut clients = Vec::new();
    let mut wake = None;
    for client in &grant.spec.clients {
        let world = ctx.client_world(client);
        let plan = plan_client(&world.inputs(now));
        wake = [wake, plan.wake_at].into_iter().flatten().min();
        let outcome = match plan.grant(&home, &name) {
            Some(found) => ClientVerdict {
                namespace: client.clone(),
                verdict: found.verdict.clone(),
                role_binding: found.role_binding.clone(),
                ends_at: found.ends_at,
            },
            // The cache has not seen this grant yet; its own watch event brings us back.
            None => ClientVerdict {
                namespace: client.clone(),
                verdict: Verdict::new(Reason::LinkNotReady, format!("no verdict for {client} yet")),
                role_binding: None,
                ends_at: None,
            },
        };
        clients.push(outcome);
    }
    write_status(ctx, grant, &clients, now).await?;
    Ok(requeue_at(wake, now, ctx.settings.resync))
}

struct ClientVerdict {
    namespace: String,
    verdict: Verdict,
    role_binding: Option<String>,
    ends_at: Option<Timestamp>,
}

/// Ready only when granted in every client; otherwise the refusals, each client named.
fn overall(clients: &[ClientVerdict]) -> (bool, Verdict) {
    let refused: Vec<&ClientVerdict> = clients.iter().filter(|c| c.verdict.reason != Reason::Granted).collect();
    let Some(first) = refused.first() else {
        return (true, Verdict::new(Reason::Granted, format!("granted in {} client namespaces", clients.len())));
    };
    let reason = if refused.len() < clients.len() { Reason::PartiallyGranted } else { first.verdict.reason };
    let details: Vec<String> = refused.iter().map(|c| format!("{}: {} ({})", c.namespace, c.verdict.reason, c.verdict.message)).collect();
    (false, Verdict::new(reason, details.join("; ")))
}

async fn write_status(ctx: &Context, grant: &AccessGrant, verdicts: &[ClientVerdict], now: Timestamp) -> Result<(), Error> {
    let previous = grant.status.clone().unwrap_or_default();
    let (ready, verdict) = overall(verdicts);
    let clients: Vec<ClientAccess> = verdicts
        .iter()
        .map(|c| ClientAccess {
            namespace: c.namespace.clone(),
            granted: c.verdict.reason == Reason::Granted,
            reason: c.verdict.reason.to_string(),
            message: c.verdict.message.clone(),
            role_binding: c.role_binding.clone(),
            access_ends_at: c.ends_at.map(Time),
        })
        .collect();
    let status = AccessGrantStatus {
        observed_generation: grant.meta().generation,
        conditions: ready_condition(ready, &verdict, grant.meta().generation, &previous.conditions, now),
        subject_count: grant.spec.subjects.len() as i32,
        granted_clients: clients.iter().filter(|c| c.granted).count() as i32,
        clients,
    };
    if status == previous {
        return Ok(());
    }
    let api: Api<AccessGrant> = Api::namespaced(ctx.client.clone(), &grant.namespace().unwrap_or_default());
    ctx.metrics.write(KIND);
    api.patch_status(&grant.name_any(), &PatchParams::default(), &Patch::Merge(json!({ "status": status })))
        .await
        .map_err(Error::Status)?;
    if transitioned(&previous.conditions, &status.conditions) {
        if verdict.reason == Reason::Expired
            && let Some(at) = &grant.spec.expires_at
        {
            ctx.metrics.expiry_lag.observe(now.duration_since(at.0).as_secs_f64().max(0.0));
        }
        let action = if ready { "Grant" } else { "Refuse" };
        publish(ctx, grant, !ready, verdict.reason.as_str(), action, verdict.message).await;
    }
    Ok(())
}

/// Removes every binding of this grant in every client, then lets the grant go.
async fn cleanup(grant: &AccessGrant, ctx: &Context) -> Result<Action, Error> {
    let uid = grant.uid().unwrap_or_default();
    let selector = format!("{}={},{}={uid}", names::MANAGED_BY, names::MANAGER, names::GRANT_UID);
    let is_link_owned = |meta: &ObjectMeta| {
        meta.owner_references.iter().flatten().any(|o| o.kind == "ClientLink" && o.api_version.starts_with("liaison.dev/"))
    };
    let removed = revoke::<RoleBinding>(&ctx.client, None, &selector, is_link_owned, &ctx.metrics).await?;
    let latency = super::client_link::deletion_latency(grant.meta());
    ctx.metrics.revoked(KIND, latency);
    publish(ctx, grant, false, "Revoked", "Revoke", format!("removed {removed} bindings in {latency:.3}s")).await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(ns: &str, reason: Reason) -> ClientVerdict {
        ClientVerdict { namespace: ns.into(), verdict: Verdict::new(reason, "m"), role_binding: None, ends_at: None }
    }

    #[test]
    fn overall_verdicts() {
        assert!(overall(&[verdict("a", Reason::Granted), verdict("b", Reason::Granted)]).0);
        let (ready, v) = overall(&[verdict("a", Reason::Granted), verdict("b", Reason::Expired)]);
        assert!(!ready);
        assert_eq!(v.reason, Reason::PartiallyGranted);
        assert!(v.message.contains("b: Expired"));
        let (ready, v) = overall(&[verdict("a", Reason::SubjectNotAllowed)]);
        assert!(!ready);
        assert_eq!(v.reason, Reason::SubjectNotAllowed);
    }
}
