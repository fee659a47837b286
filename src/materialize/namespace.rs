//! A client namespace made to match its plan: what the plan wants written, the rest removed.

use std::collections::BTreeSet;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::access_key::KeySettings;
use super::{Error, FirstFailure, Outcome, Writer};
use crate::cache::Caches;
use crate::desired::ClientPlan;
use crate::desired::client::AccessKeyPlan;
use crate::desired::names::{self, Component};
use crate::desired::ownership;

/// What applying a namespace's plan did.
pub struct Applied {
    /// When the access key's token must next be refreshed.
    pub key_refresh: Option<Timestamp>,
    /// Whether a grant binding was written or removed (summaries wait for a pause in those).
    pub access_changed: bool,
}

/// Writes what the plan wants in the namespace, then removes what it no longer wants.
/// Grants go in the order role → account → key Secret → binding; removal in the reverse order.
///
/// Fails closed: a write the API server refuses (a Role it finds invalid, an admission policy)
/// is reported only after every removal has been tried, so that no failure elsewhere keeps
/// access that should go. A failed removal does not stop the others either.
pub async fn apply(
    writer: &Writer,
    caches: &Caches,
    keys: &KeySettings,
    namespace: &str,
    plan: &ClientPlan,
    now: Timestamp,
) -> (Applied, Result<(), Error>) {
    let mut failure = FirstFailure::default();
    let (key_refresh, written) = write_wanted(writer, caches, keys, plan, now, &mut failure).await;
    let pruned = prune_unwanted(writer, caches, namespace, plan, &mut failure).await;
    (Applied { key_refresh, access_changed: written || pruned }, failure.into_result())
}

/// Writes the plan's Roles, access key and bindings. Returns when the key's token must be
/// refreshed, and whether a grant binding was written.
async fn write_wanted(
    writer: &Writer,
    caches: &Caches,
    keys: &KeySettings,
    plan: &ClientPlan,
    now: Timestamp,
    failure: &mut FirstFailure,
) -> (Option<Timestamp>, bool) {
    for role in &plan.roles {
        failure.note(writer.ensure_compact(&caches.level_roles, role).await);
    }
    let mut key_refresh = None;
    if let Some(key) = &plan.access_key {
        key_refresh = failure.note(write_access_key(writer, caches, keys, key, now).await);
    }
    let mut access_written = false;
    for binding in &plan.bindings {
        let outcome = failure.note(writer.ensure_compact(&caches.grant_bindings, binding).await);
        access_written |= outcome == Some(Outcome::Written);
    }
    (key_refresh, access_written)
}

async fn write_access_key(
    writer: &Writer,
    caches: &Caches,
    keys: &KeySettings,
    key: &AccessKeyPlan,
    now: Timestamp,
) -> Result<Timestamp, Error> {
    writer.ensure(&caches.service_accounts, &key.service_account).await?;
    writer.ensure(&caches.role_bindings, &key.binding).await?;
    let account = current_service_account(writer, caches, &key.service_account).await?;
    // The operator caches no Secret: the key's is read when its account is written.
    let secrets: Api<Secret> = Api::namespaced(writer.client().clone(), &key.secret_namespace);
    let existing =
        secrets.get_opt(&key.secret_name).await.map_err(|source| Error::Read { kind: "Secret", source })?;
    writer.ensure_key_secret(key, &account, existing.as_ref(), keys, now).await
}

/// The key's ServiceAccount as the API server has it: its UID binds the token.
async fn current_service_account(
    writer: &Writer,
    caches: &Caches,
    desired: &ServiceAccount,
) -> Result<ServiceAccount, Error> {
    let namespace = desired.namespace().unwrap_or_default();
    let reference = ObjectRef::new(&desired.name_any()).within(&namespace);
    if let Some(cached) = caches.service_accounts.get(&reference) {
        return Ok((*cached).clone());
    }
    let accounts = Api::<ServiceAccount>::namespaced(writer.client().clone(), &namespace);
    accounts.get(&desired.name_any()).await.map_err(|source| Error::Read { kind: "ServiceAccount", source })
}

/// Removes what Liaison made in the namespace for a link and the plan no longer wants: grant
/// and key bindings first, then key Secrets and accounts, then Roles. Returns whether a grant
/// binding went.
async fn prune_unwanted(
    writer: &Writer,
    caches: &Caches,
    namespace: &str,
    plan: &ClientPlan,
    failure: &mut FirstFailure,
) -> bool {
    let wanted: BTreeSet<String> = plan
        .roles
        .iter()
        .map(|r| r.name_any())
        .chain(plan.bindings.iter().map(|b| b.name_any()))
        .chain(plan.access_key.iter().flat_map(|k| [k.service_account.name_any(), k.secret_name.clone()]))
        .collect();
    // Only what a link's reconcile made: a partner's suite in its home namespace is not a
    // link's to prune, whatever link stands there.
    let stale = |meta: &ObjectMeta| {
        meta.namespace.as_deref() == Some(namespace)
            && ownership::is_link_made(meta)
            && !wanted.contains(meta.name.as_deref().unwrap_or_default())
    };
    let unwanted = |owned: Vec<String>| {
        owned
            .into_iter()
            .filter(|name| !wanted.contains(name))
            .map(|name| (namespace.to_string(), name))
            .collect()
    };
    // Access through a level that goes ends with the first write: its Role loses its rules
    // (every binding to it, the key's included, then grants nothing), then the rest goes.
    let unwanted_roles: Vec<(String, String)> = unwanted(caches.level_roles.owned_in(namespace));
    failure.note(writer.empty_roles(unwanted_roles.clone()).await);
    let key_bindings = caches.by.bindings_by_namespace.get(namespace, &caches.role_bindings);
    failure.note(writer.prune_cached(key_bindings, |o: &RoleBinding| stale(&o.metadata)).await);
    let grant_bindings = failure
        .note(writer.prune_named::<RoleBinding>(unwanted(caches.grant_bindings.owned_in(namespace))).await);
    // An access key's Secret is written after its ServiceAccount and removed before it, so
    // only a namespace losing a key account can hold an unwanted key Secret. The operator caches
    // no Secret; listing them on every reconcile was the API server's largest cost at scale.
    // Key accounts serving this namespace (in the partner's home; an older Liaison's, here)
    // other than the one the plan wants, where it wants it.
    let wanted_account =
        plan.access_key.as_ref().map(|k| (k.service_account.namespace(), k.service_account.name_any()));
    let stale_account = |o: &ServiceAccount| {
        ownership::is_link_made(&o.metadata)
            && wanted_account.as_ref().is_none_or(|wanted| *wanted != (o.namespace(), o.name_any()))
    };
    let serving = caches.by.accounts_by_client.get(namespace, &caches.service_accounts);
    let stale_accounts: Vec<_> = serving.into_iter().filter(|o| stale_account(o)).collect();
    if !stale_accounts.is_empty()
        && let Some(home) = &plan.partner_home
    {
        let selector = format!(
            "{},{}={namespace}",
            names::managed_selector(Some(Component::AccessKey)),
            names::CLIENT_NAMESPACE
        );
        let unwanted_key = |meta: &ObjectMeta| {
            ownership::is_link_made(meta) && !wanted.contains(meta.name.as_deref().unwrap_or_default())
        };
        failure.note(writer.revoke::<Secret>(Some(home), &selector, unwanted_key).await);
    }
    // The account goes even if its Secret could not: deleting it voids every token minted for
    // it, which is what ends the key's access.
    failure.note(writer.prune_cached(stale_accounts, |_: &ServiceAccount| true).await);
    failure.note(writer.prune_named::<Role>(unwanted_roles).await);
    // A link-made Role without the level label (made by an older Liaison, or relabelled).
    let roles = caches.by.roles_by_namespace.get(namespace, &caches.roles);
    failure.note(writer.prune_cached(roles, |o: &Role| stale(&o.metadata)).await);
    grant_bindings.is_some_and(|count| count > 0)
}
