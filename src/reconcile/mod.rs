//! Reconcilers, one per resource, each a pipeline: read what is needed (caches) → decide
//! (`desired`, pure) → apply and prune (`materialize`) → write status and Events.

pub mod access_grant;
pub mod access_request;
pub mod client_link;
pub mod context;
pub mod failures;
pub mod pace;
pub mod partner;
pub mod review;
pub mod revocation;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use crate::cache::keys;
use crate::cache::keys::Version;
use crate::cache::views::Cached;
use crate::desired::names::FINALIZER;
use crate::materialize::{Write, said};

pub use context::{Context, Settings};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Materialize(#[from] crate::materialize::Error),
    #[error("writing status: {}", said(.0))]
    Status(#[source] kube::Error),
    #[error("managing the finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// The condition reason and metric label of this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Materialize(crate::materialize::Error::Token { .. }) => "TokenRequestFailed",
            Error::Materialize(crate::materialize::Error::Read { .. }) => "ReadFailed",
            Error::Materialize(_) => "ApplyFailed",
            Error::Status(_) => "StatusFailed",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e) => e.reason(),
                kube::runtime::finalizer::Error::CleanupFailed(_) => "RevocationFailed",
                _ => "FinalizerFailed",
            },
        }
    }

    /// What failed, as the object's `Ready` condition tells it: the step and the API server's
    /// words, without kube's wrapping of the finalizer's stages.
    pub fn description(&self) -> String {
        use kube::runtime::finalizer::Error as Stage;
        match self {
            Error::Finalizer(inner) => match inner.as_ref() {
                Stage::ApplyFailed(error) => error.description(),
                Stage::CleanupFailed(error) => format!("revoking access: {}", error.description()),
                Stage::AddFinalizer(error) => format!("adding the finalizer: {}", said(error)),
                Stage::RemoveFinalizer(error) => format!("removing the finalizer: {}", said(error)),
                other => other.to_string(),
            },
            other => other.to_string(),
        }
    }
}

/// A failed reconcile is tried again after a wait that doubles with each failure in a row
/// (`failures::retry_after`); a change of the object, or of anything it depends on, brings it
/// back sooner.
pub fn error_policy<K>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action
where
    K: Resource<DynamicType = ()>,
{
    let kind = K::kind(&());
    let failures = ctx.failures.count(keys::key::<K>(object.meta().namespace.as_deref(), &object.name_any()));
    let retry = failures::retry_after(failures);
    tracing::warn!(
        kind = %kind, namespace = ?object.namespace(), name = %object.name_any(), reason = error.reason(), error = %error.description(),
        failures, ?retry, "reconcile failed"
    );
    ctx.metrics.failed(&kind, error.reason());
    Action::requeue(retry)
}

/// Runs one reconcile under Liaison's finalizer (so that deletion always passes through
/// `Cleanup`, even after downtime), and records its duration and whether it failed.
pub async fn with_finalizer<K, Fut>(
    api: &kube::Api<K>,
    object: Arc<K>,
    ctx: &Context,
    handle: impl FnOnce(kube::runtime::finalizer::Event<K>) -> Fut,
) -> Result<Action, Error>
where
    K: status::Reported
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = Result<Action, Error>>,
{
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let kind = K::kind(&());
    let reconciled = Cached::from(object.clone());
    // Every log line of this reconcile names the object.
    let span = tracing::info_span!("reconcile", kind = %kind, namespace = object.namespace().unwrap_or_default(), name = object.name_any());
    // Without the finalizer, kube's helper only adds it; the change's own event brings the
    // object back. Adding it again from a cache that has not seen it yet would fail anyway.
    let adds_finalizer =
        object.meta().deletion_timestamp.is_none() && !object.finalizers().iter().any(|f| f == FINALIZER);
    let finalizer_write = adds_finalizer.then(|| {
        (
            keys::key::<K>(object.meta().namespace.as_deref(), &object.name_any()),
            Version::of(object.meta()),
            std::time::Instant::now(),
        )
    });
    if let Some((key, over, now)) = &finalizer_write
        && ctx.writer.recent().just_made(*key, Write::Finalizer, *over, 0, *now)
    {
        return Ok(Action::await_change());
    }
    let result = kube::runtime::finalizer::finalizer(api, FINALIZER, object, handle)
        .instrument(span)
        .await
        .map_err(|e| Error::Finalizer(Box::new(e)));
    if let Some((key, over, now)) = finalizer_write
        && result.is_ok()
    {
        ctx.writer.recent().made(key, Write::Finalizer, over, 0, now);
    }
    ctx.metrics.reconciled(&kind, started.elapsed().as_secs_f64());
    count_outcome(ctx, api, &reconciled, &result).await;
    result
}

/// Runs one reconcile of an object that carries no finalizer and needs none yet: nothing is
/// written in its name (a link refused outright, say; `desired::client::needs_finalizer`).
/// Recorded as `with_finalizer` records its reconciles.
pub async fn without_finalizer<K, Fut>(
    api: &kube::Api<K>,
    object: Cached<K>,
    ctx: &Context,
    handle: impl FnOnce(Cached<K>) -> Fut,
) -> Result<Action, Error>
where
    K: status::Reported + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    Fut: std::future::Future<Output = Result<Action, Error>>,
{
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let kind = K::kind(&());
    let span = tracing::info_span!(
        "reconcile",
        kind = %kind,
        namespace = object.namespace().unwrap_or_default(),
        name = object.name_any()
    );
    let result = handle(object.clone()).instrument(span).await;
    ctx.metrics.reconciled(&kind, started.elapsed().as_secs_f64());
    count_outcome(ctx, api, &object, &result).await;
    result
}

/// Ends the object's streak of failures, or adds to it; a failure that persists is told to
/// the object's users.
async fn count_outcome<K>(
    ctx: &Context,
    api: &kube::Api<K>,
    object: &Cached<K>,
    result: &Result<Action, Error>,
) where
    K: status::Reported + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let key = keys::key::<K>(object.meta().namespace.as_deref(), &object.name_any());
    match result {
        Ok(_) => ctx.failures.succeeded(key),
        Err(error) => {
            let (reason, description) = (error.reason(), error.description());
            if ctx.failures.failed(key, keys::hash_of(&(reason, &description))).tell {
                status::report_failure(ctx, api, object, reason, &description).await;
            }
        }
    }
}

/// Requeue at the next instant the plan changes by itself, if it does (at most `resync` ahead).
/// An object that is fine is otherwise looked at again by the paced walk of `crate::controller::resync`.
pub fn requeue_at(wake: Option<jiff::Timestamp>, now: jiff::Timestamp, resync: Duration) -> Action {
    let until = wake
        .and_then(|at| at.duration_since(now).try_into().ok())
        .map(|d: Duration| d + Duration::from_millis(50));
    match until {
        Some(until) => Action::requeue(until.min(resync)),
        None => Action::await_change(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::finalizer::Error as Stage;

    fn refused() -> kube::Error {
        let status = serde_json::json!({"status": "Failure", "code": 403, "reason": "Forbidden", "message": "no you don't"});
        kube::Error::Api(Box::new(serde_json::from_value(status).unwrap()))
    }

    fn writing() -> Error {
        Error::Materialize(crate::materialize::Error::Write {
            kind: "RoleBinding",
            name: "b".into(),
            source: refused(),
        })
    }

    #[test]
    fn failures_name_their_step_in_the_api_servers_words() {
        let cases = [
            (
                Error::Materialize(crate::materialize::Error::Read { kind: "Secret", source: refused() }),
                "ReadFailed",
                "reading Secret: no you don't (403 Forbidden)",
            ),
            (writing(), "ApplyFailed", "writing RoleBinding b: no you don't (403 Forbidden)"),
            (
                Error::Materialize(crate::materialize::Error::Token {
                    name: "key".into(),
                    source: refused(),
                }),
                "TokenRequestFailed",
                "requesting a token for ServiceAccount key: no you don't (403 Forbidden)",
            ),
            (Error::Status(refused()), "StatusFailed", "writing status: no you don't (403 Forbidden)"),
            (
                Error::Finalizer(Box::new(Stage::ApplyFailed(writing()))),
                "ApplyFailed",
                "writing RoleBinding b: no you don't (403 Forbidden)",
            ),
            (
                Error::Finalizer(Box::new(Stage::CleanupFailed(writing()))),
                "RevocationFailed",
                "revoking access: writing RoleBinding b: no you don't (403 Forbidden)",
            ),
            (
                Error::Finalizer(Box::new(Stage::AddFinalizer(refused()))),
                "FinalizerFailed",
                "adding the finalizer: no you don't (403 Forbidden)",
            ),
            (
                Error::Finalizer(Box::new(Stage::RemoveFinalizer(refused()))),
                "FinalizerFailed",
                "removing the finalizer: no you don't (403 Forbidden)",
            ),
        ];
        let readme = include_str!("../../README.md");
        for (error, reason, description) in cases {
            assert_eq!(error.reason(), reason, "{error:?}");
            assert!(failures::is_failure(reason), "{reason} is listed in failures::REASONS");
            assert_eq!(error.description(), description);
            assert!(
                readme.contains(&format!("`{reason}`")),
                "README.md's table of reasons does not explain {reason}"
            );
        }
    }
}
