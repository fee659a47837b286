//! `liaison review`: what is due, and a review made in the caller's own name; `liaison
//! approve`: an answer to a partner's request, likewise in the caller's own name.
//!
//! A review is a patch of `spec.review.reviewed` with the caller's user name (as the API server
//! authenticates them: a SelfSubjectReview asks it) and the time. The chart's admission policy
//! refuses it under any other name; Liaison records when it first saw it.

use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;

use crate::api::{AccessApproval, AccessGrant, ClientLink, Decision, Partner, RequestRef, ReviewStatus};
use crate::cli::{ApproveArgs, OutputFormat, ReviewArgs};

/// One object whose access must be reviewed, and where its review stands.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DueRow {
    pub kind: String,
    pub object: String,
    pub every: String,
    pub last_reviewed_by: String,
    pub due_at: String,
    pub suspends_at: String,
    pub state: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connecting to the cluster: {0}")]
    Connect(#[source] kube::Error),
    #[error("asking the API server who you are: {0}")]
    WhoAmI(#[source] kube::Error),
    #[error("reading {what}: {source}")]
    Read { what: String, source: kube::Error },
    #[error("{what} requires no review (it has no spec.review)")]
    NoReview { what: String },
    #[error("reviewing {what}: {source}")]
    Review { what: String, source: kube::Error },
    #[error("encoding the list: {0}")]
    Encode(String),
    #[error("no ClientLink of {namespace} lists a request {request}")]
    NoSuchRequest { namespace: String, request: String },
    #[error("answering {what}: {source}")]
    Answer { what: String, source: kube::Error },
}

pub async fn approve_command(args: ApproveArgs) -> Result<(), Error> {
    let client = Client::try_default().await.map_err(Error::Connect)?;
    let decision = if args.deny { Decision::Deny } else { Decision::Approve };
    let answer = approve(&client, &args.client, &args.request, decision, args.reason).await?;
    let asked = &answer.spec.request;
    println!(
        "{:?} AccessRequest {}/{} in {} as {} (AccessApproval {})",
        decision,
        asked.namespace,
        asked.name,
        args.client,
        answer.spec.decided_by,
        answer.name_any()
    );
    Ok(())
}

/// Answers the request the links of `namespace` list as `request` (`namespace/name` or its
/// name), in the caller's own name: an AccessApproval naming the request by its UID.
pub async fn approve(
    client: &Client,
    namespace: &str,
    request: &str,
    decision: Decision,
    reason: Option<String>,
) -> Result<AccessApproval, Error> {
    let links = list::<ClientLink>(client, namespace).await?;
    let listed = links.iter().flat_map(|l| l.status.iter().flat_map(|s| &s.requests));
    let found = listed
        .filter(|r| {
            r.request == request || r.request.rsplit_once('/').is_some_and(|(_, name)| name == request)
        })
        .min_by_key(|r| r.request.clone())
        .ok_or_else(|| Error::NoSuchRequest { namespace: namespace.into(), request: request.into() })?;
    let (home, name) = found.request.split_once('/').unwrap_or_default();
    let by = who_am_i(client).await?;
    let mut answer = AccessApproval::new(
        "",
        crate::api::AccessApprovalSpec {
            request: RequestRef { namespace: home.into(), name: name.into(), uid: found.uid.clone() },
            decision,
            decided_by: by,
            reason,
        },
    );
    answer.metadata.name = None;
    answer.metadata.generate_name = Some(format!("{}-", name.chars().take(40).collect::<String>()));
    let api: Api<AccessApproval> = Api::namespaced(client.clone(), namespace);
    let what = format!("AccessRequest {}", found.request);
    api.create(&PostParams::default(), &answer).await.map_err(|source| Error::Answer { what, source })
}

pub async fn run(args: ReviewArgs) -> Result<(), Error> {
    let client = Client::try_default().await.map_err(Error::Connect)?;
    let (kind, namespace) = match (&args.partner, &args.client) {
        (Some(partner), _) => ("AccessGrant", home_of(&client, partner).await?),
        (None, Some(namespace)) => ("ClientLink", namespace.clone()),
        (None, None) => unreachable!("clap requires --partner or --client"),
    };
    match &args.name {
        Some(name) => {
            let done = if kind == "ClientLink" {
                review::<ClientLink>(&client, &namespace, name).await?
            } else {
                review::<AccessGrant>(&client, &namespace, name).await?
            };
            println!("{kind} {namespace}/{name} reviewed by {} at {}", done.by, done.at);
        }
        None => {
            let rows = if kind == "ClientLink" {
                due_rows(&list::<ClientLink>(&client, &namespace).await?)
            } else {
                due_rows(&list::<AccessGrant>(&client, &namespace).await?)
            };
            print!("{}", render(&rows, args.output)?);
        }
    }
    Ok(())
}

async fn home_of(client: &Client, partner: &str) -> Result<String, Error> {
    let found: Partner =
        Api::all(client.clone()).get(partner).await.map_err(read(format!("Partner {partner}")))?;
    Ok(found.spec.home_namespace)
}

fn read(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Read { what, source }
}

/// The kinds that carry `spec.review`.
pub trait Reviewable:
    Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
    fn every(&self) -> Option<&str>;
    fn recorded(&self) -> Option<&ReviewStatus>;
    fn conditions(&self) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition];
}

impl Reviewable for ClientLink {
    fn every(&self) -> Option<&str> {
        self.spec.review.as_ref().map(|r| r.every.as_str())
    }
    fn recorded(&self) -> Option<&ReviewStatus> {
        self.status.as_ref()?.review.as_ref()
    }
    fn conditions(&self) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
        self.status.as_ref().map(|s| &s.conditions[..]).unwrap_or_default()
    }
}

impl Reviewable for AccessGrant {
    fn every(&self) -> Option<&str> {
        self.spec.review.as_ref().map(|r| r.every.as_str())
    }
    fn recorded(&self) -> Option<&ReviewStatus> {
        self.status.as_ref()?.review.as_deref()
    }
    fn conditions(&self) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
        self.status.as_ref().map(|s| &s.conditions[..]).unwrap_or_default()
    }
}

async fn list<K: Reviewable>(client: &Client, namespace: &str) -> Result<Vec<K>, Error> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let what = format!("{}s in {namespace}", K::kind(&()));
    Ok(api.list(&ListParams::default()).await.map_err(read(what))?.items)
}

/// A row per object that requires reviews, the soonest due first.
pub fn due_rows<K: Reviewable>(objects: &[K]) -> Vec<DueRow> {
    let mut rows: Vec<DueRow> = objects
        .iter()
        .filter_map(|object| {
            let every = object.every()?;
            let recorded = object.recorded();
            let at = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
                t.map(|t| t.0.to_string()).unwrap_or_else(|| "-".into())
            };
            let state = object.conditions().iter().find(|c| c.type_ == crate::reconcile::review::CONDITION);
            Some(DueRow {
                kind: K::kind(&()).to_string(),
                object: format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any()),
                every: every.to_string(),
                last_reviewed_by: recorded.and_then(|r| r.reviewed_by.clone()).unwrap_or_else(|| "-".into()),
                due_at: at(recorded.map(|r| &r.due_at)),
                suspends_at: at(recorded.map(|r| &r.suspends_at)),
                state: state.map(|c| c.reason.clone()).unwrap_or_else(|| "Pending".into()),
            })
        })
        .collect();
    rows.sort_by(|a, b| (&a.due_at, &a.object).cmp(&(&b.due_at, &b.object)));
    rows
}

/// A review as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub by: String,
    pub at: Timestamp,
}

/// Who the API server says the caller is.
pub async fn who_am_i(client: &Client) -> Result<String, Error> {
    let asked = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(Error::WhoAmI)?;
    Ok(asked.status.and_then(|s| s.user_info).and_then(|u| u.username).unwrap_or_default())
}

/// Reviews `namespace/name` in the caller's own name, now.
pub async fn review<K: Reviewable>(client: &Client, namespace: &str, name: &str) -> Result<Done, Error> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let what = format!("{} {namespace}/{name}", K::kind(&()));
    let object = api.get(name).await.map_err(read(what.clone()))?;
    if object.every().is_none() {
        return Err(Error::NoReview { what });
    }
    let done = Done { by: who_am_i(client).await?, at: Timestamp::now() };
    let patch =
        serde_json::json!({"spec": {"review": {"reviewed": {"by": done.by, "at": done.at.to_string()}}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::Review { what, source })?;
    Ok(done)
}

pub fn render(rows: &[DueRow], format: OutputFormat) -> Result<String, Error> {
    match format {
        OutputFormat::Json => {
            serde_json::to_string_pretty(rows).map(|s| s + "\n").map_err(|e| Error::Encode(e.to_string()))
        }
        OutputFormat::Yaml => serde_yaml::to_string(rows).map_err(|e| Error::Encode(e.to_string())),
        OutputFormat::Table => Ok(table(rows)),
    }
}

fn table(rows: &[DueRow]) -> String {
    let header =
        ["KIND", "OBJECT", "EVERY", "LAST REVIEWED BY", "DUE", "SUSPENDED AT", "STATE"].map(String::from);
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [&r.kind, &r.object, &r.every, &r.last_reviewed_by, &r.due_at, &r.suspends_at, &r.state]
                .map(|c| crate::report::printable(c))
        })
        .collect();
    crate::report::columns(&header, &cells, "(nothing requires a review)")
}
