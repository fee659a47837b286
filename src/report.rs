//! `liaison access`: the current-access table, read from the cluster as the caller sees it.
//!
//! The partner's view comes from its AccessGrants (what it declared and what each client
//! answered) and its access key Secrets; the client's view from what really exists in its
//! namespace: Liaison's RoleBindings. Either side needs only the rights it already has.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde::Serialize;

use crate::api::{AccessGrant, AccessRequest, ClientLink, Partner};
use crate::cli::{AccessArgs, OutputFormat};
use crate::desired::names::{self, Component};

/// One line of the table: who can reach which client, through what, until when.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub subject: String,
    pub client: String,
    pub level: String,
    pub grant: String,
    pub until: String,
    pub state: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connecting to the cluster: {0}")]
    Connect(#[source] kube::Error),
    #[error("reading {what}: {source}")]
    Read { what: String, source: kube::Error },
    #[error("encoding the report: {0}")]
    Encode(String),
}

pub async fn run(args: AccessArgs) -> Result<(), Error> {
    let client = Client::try_default().await.map_err(Error::Connect)?;
    let rows = match (&args.partner, &args.client) {
        (Some(partner), _) => partner_view(&client, partner).await?,
        (None, Some(namespace)) => client_view(&client, namespace).await?,
        (None, None) => unreachable!("clap requires --partner or --client"),
    };
    print!("{}", render(&rows, args.output)?);
    Ok(())
}

fn read(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Read { what, source }
}

async fn partner_view(client: &Client, partner: &str) -> Result<Vec<Row>, Error> {
    let partner: Partner =
        Api::all(client.clone()).get(partner).await.map_err(read(format!("Partner {partner}")))?;
    let home = partner.spec.home_namespace.clone();
    let grants = Api::<AccessGrant>::namespaced(client.clone(), &home)
        .list(&ListParams::default())
        .await
        .map_err(read(format!("AccessGrants in {home}")))?;
    let keys = Api::<Secret>::namespaced(client.clone(), &home)
        .list(&ListParams::default().labels(&names::managed_selector(Some(Component::AccessKey))))
        .await
        .map_err(read(format!("access keys in {home}")))?;
    let requests = Api::<AccessRequest>::namespaced(client.clone(), &home)
        .list(&ListParams::default())
        .await
        .map_err(read(format!("AccessRequests in {home}")))?;
    let rows = rows_from_grants(&grants.items).into_iter().chain(rows_from_keys(&keys.items));
    Ok(rows.chain(rows_from_reviews(&grants.items)).chain(rows_from_requests(&requests.items)).collect())
}

async fn client_view(client: &Client, namespace: &str) -> Result<Vec<Row>, Error> {
    let bindings = Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&names::managed_selector(None)))
        .await
        .map_err(read(format!("RoleBindings in {namespace}")))?;
    let links = Api::<ClientLink>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map_err(read(format!("ClientLinks in {namespace}")))?;
    let mut rows = rows_from_bindings(&bindings.items, &links.items);
    rows.extend(rows_from_reviews(&links.items));
    rows.extend(rows_from_link_requests(&links.items));
    Ok(rows)
}

/// A row per object whose access lapses unless reviewed: until when, and where it stands.
pub fn rows_from_reviews<K: crate::reviews::Reviewable>(objects: &[K]) -> Vec<Row> {
    crate::reviews::due_rows(objects)
        .into_iter()
        .map(|due| Row {
            subject: format!("(review by {})", due.object),
            client: "-".into(),
            level: "-".into(),
            grant: due.object.clone(),
            until: format!("suspended at {}", due.suspends_at),
            state: due.state,
        })
        .collect()
}

/// The partner's requests for on-request levels, as the partner sees them.
pub fn rows_from_requests(requests: &[AccessRequest]) -> Vec<Row> {
    requests
        .iter()
        .map(|request| {
            let status = request.status.clone().unwrap_or_default();
            Row {
                subject: format!("(request by {})", request.spec.requested_by),
                client: request.spec.client.clone(),
                level: "on request".into(),
                grant: format!("{} via {}", request.name_any(), request.spec.grant),
                until: status
                    .ends_at
                    .map(|t| t.0.to_string())
                    .unwrap_or_else(|| format!("{} once approved", request.spec.duration)),
                state: status.phase.unwrap_or_else(|| "Pending".into()),
            }
        })
        .collect()
}

/// The requests the client's links list, as its approvers see them.
pub fn rows_from_link_requests(links: &[ClientLink]) -> Vec<Row> {
    let listed = links.iter().flat_map(|l| l.status.iter().flat_map(|s| &s.requests).map(move |r| (l, r)));
    listed
        .map(|(link, request)| Row {
            subject: format!("(request by {})", request.requested_by),
            client: link.namespace().unwrap_or_default(),
            level: "on request".into(),
            grant: format!("{} via {}", request.request, request.grant),
            until: request
                .ends_at
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_else(|| format!("{} once approved", request.duration)),
            state: request.phase.clone(),
        })
        .collect()
}

fn subject_text(kind: &str, name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{kind}:{ns}/{name}"),
        None => format!("{kind}:{name}"),
    }
}

/// The partner's declared grants, each subject in each client, with that client's answer.
pub fn rows_from_grants(grants: &[AccessGrant]) -> Vec<Row> {
    let mut rows = Vec::new();
    for grant in grants {
        let home = grant.namespace().unwrap_or_default();
        let status = grant.status.clone().unwrap_or_default();
        for client in &grant.spec.clients {
            let answer = status.clients.iter().find(|c| &c.namespace == client);
            let state = answer.map(|a| a.reason.clone()).unwrap_or_else(|| "Pending".into());
            let until = answer
                .and_then(|a| a.access_ends_at.as_ref())
                .map(|t| t.0.to_string())
                .unwrap_or_else(|| "-".into());
            for subject in &grant.spec.subjects {
                let sa_namespace =
                    (subject.kind == crate::api::SubjectKind::ServiceAccount).then_some(home.as_str());
                rows.push(Row {
                    subject: subject_text(subject.kind.as_str(), &subject.name, sa_namespace),
                    client: client.clone(),
                    level: grant.spec.access_level.clone(),
                    grant: grant.name_any(),
                    until: until.clone(),
                    state: state.clone(),
                });
            }
        }
    }
    rows.sort();
    rows
}

/// The partner's access keys: one row per key Secret.
pub fn rows_from_keys(secrets: &[Secret]) -> Vec<Row> {
    let mut rows: Vec<Row> = secrets
        .iter()
        .map(|secret| {
            let labels = secret.labels();
            let label = |key: &str| labels.get(key).cloned().unwrap_or_else(|| "-".into());
            let expires = secret.annotations().get(crate::materialize::access_key::EXPIRES_AT);
            Row {
                subject: format!("access key (Secret {})", secret.name_any()),
                client: label(names::CLIENT_NAMESPACE),
                level: label(names::ACCESS_LEVEL),
                grant: "-".into(),
                until: expires.map(|t| format!("token until {t}")).unwrap_or_else(|| "-".into()),
                state: "Granted".into(),
            }
        })
        .collect();
    rows.sort();
    rows
}

/// The client's view: what Liaison's RoleBindings in its namespace really grant, and the
/// grants its link refused.
pub fn rows_from_bindings(bindings: &[RoleBinding], links: &[ClientLink]) -> Vec<Row> {
    let mut rows = Vec::new();
    for binding in bindings {
        let labels = binding.labels();
        let label = |key: &str| labels.get(key).cloned().unwrap_or_else(|| "-".into());
        let grant = match (labels.get(names::GRANT_NAMESPACE), labels.get(names::ACCESS_GRANT)) {
            (Some(ns), Some(name)) => format!("{ns}/{name}"),
            _ if labels.get(names::COMPONENT).map(String::as_str) == Some(Component::AccessKey.as_str()) => {
                "access key".into()
            }
            _ => "-".into(),
        };
        let until = binding.annotations().get(names::ACCESS_ENDS_AT).cloned().unwrap_or_else(|| "-".into());
        for subject in binding.subjects.iter().flatten() {
            rows.push(Row {
                subject: subject_text(&subject.kind, &subject.name, subject.namespace.as_deref()),
                client: binding.namespace().unwrap_or_default(),
                level: label(names::ACCESS_LEVEL),
                grant: grant.clone(),
                until: until.clone(),
                state: "Granted".into(),
            });
        }
    }
    for link in links {
        for refused in link.status.iter().flat_map(|s| &s.grants).filter(|g| !g.granted) {
            rows.push(Row {
                subject: format!("({} subjects)", refused.subjects),
                client: link.namespace().unwrap_or_default(),
                level: refused.access_level.clone(),
                grant: refused.grant.clone(),
                until: "-".into(),
                state: refused.reason.clone().unwrap_or_else(|| "Refused".into()),
            });
        }
        // The link lists its refused grants first, at most 50 grants in all.
        let unlisted = link.status.as_ref().and_then(|s| s.grants_unlisted).unwrap_or(0);
        if unlisted > 0 {
            rows.push(Row {
                subject: format!("({unlisted} more grants not listed by the link)"),
                client: link.namespace().unwrap_or_default(),
                level: "-".into(),
                grant: "-".into(),
                until: "-".into(),
                state: "Unlisted".into(),
            });
        }
    }
    rows.sort();
    rows
}

pub fn render(rows: &[Row], format: OutputFormat) -> Result<String, Error> {
    match format {
        OutputFormat::Json => {
            serde_json::to_string_pretty(rows).map(|s| s + "\n").map_err(|e| Error::Encode(e.to_string()))
        }
        OutputFormat::Yaml => serde_yaml::to_string(rows).map_err(|e| Error::Encode(e.to_string())),
        OutputFormat::Table => Ok(table(rows)),
    }
}

/// A cell as the terminal may show it: control characters (a carriage return or an escape
/// sequence in a subject's name, written by a partner) escaped, so that no row can hide
/// another or repaint the screen.
pub fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
        .collect()
}

fn table(rows: &[Row]) -> String {
    let header = ["SUBJECT", "CLIENT", "LEVEL", "GRANT", "UNTIL", "STATE"].map(String::from);
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| [&r.subject, &r.client, &r.level, &r.grant, &r.until, &r.state].map(|cell| printable(cell)))
        .collect();
    columns(&header, &cells, "(no access)")
}

/// Cells in aligned columns under `header`; `empty` stands for no rows.
pub fn columns<const N: usize>(header: &[String; N], cells: &[[String; N]], empty: &str) -> String {
    let mut widths = header.each_ref().map(|h| h.len());
    for row in cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |row: &[String; N]| {
        let padded: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("   ").trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    if cells.is_empty() {
        out.push_str(empty);
        out.push('\n');
    }
    for row in cells {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AccessGrantSpec, AccessGrantStatus, ClientAccess, Subject, SubjectKind};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    fn grant() -> AccessGrant {
        let mut grant = AccessGrant::new(
            "beta-support",
            AccessGrantSpec {
                clients: ["beta".into(), "gamma".into()].into(),
                access_level: "support".into(),
                subjects: vec![
                    Subject::new(SubjectKind::User, "bob@techhelp.example"),
                    Subject::new(SubjectKind::ServiceAccount, "bot"),
                ],
                expires_at: None,
                review: None,
            },
        );
        grant.metadata.namespace = Some("partner-techhelp".into());
        grant.status = Some(AccessGrantStatus {
            clients: Box::new([ClientAccess {
                namespace: "beta".into(),
                granted: true,
                reason: "Granted".into(),
                message: String::new(),
                role_binding: Some("rb".into()),
                access_ends_at: Some(Time(at("2030-01-01T00:00:00Z"))),
            }]),
            ..Default::default()
        });
        grant
    }

    #[test]
    fn the_partner_sees_each_subject_in_each_client_with_the_answer() {
        let rows = rows_from_grants(&[grant()]);
        assert_eq!(rows.len(), 4);
        let bob_beta =
            rows.iter().find(|r| r.subject == "User:bob@techhelp.example" && r.client == "beta").unwrap();
        assert_eq!((bob_beta.state.as_str(), bob_beta.until.as_str()), ("Granted", "2030-01-01T00:00:00Z"));
        let bob_gamma =
            rows.iter().find(|r| r.subject == "User:bob@techhelp.example" && r.client == "gamma").unwrap();
        assert_eq!(bob_gamma.state, "Pending");
        assert!(rows.iter().any(|r| r.subject == "ServiceAccount:partner-techhelp/bot"));
    }

    #[test]
    fn the_table_aligns_columns_and_says_when_empty() {
        let text = render(&rows_from_grants(&[grant()]), OutputFormat::Table).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("SUBJECT"));
        let client_column = lines[0].find("CLIENT").unwrap();
        assert!(
            lines[1..]
                .iter()
                .all(|l| l[client_column..].starts_with("beta") || l[client_column..].starts_with("gamma"))
        );
        assert!(render(&[], OutputFormat::Table).unwrap().contains("(no access)"));
        let json: serde_json::Value =
            serde_json::from_str(&render(&rows_from_grants(&[grant()]), OutputFormat::Json).unwrap())
                .unwrap();
        assert_eq!(json.as_array().unwrap().len(), 4);
    }

    #[test]
    fn control_characters_in_names_are_shown_escaped() {
        let mut hidden = grant();
        hidden.spec.subjects =
            vec![Subject::new(SubjectKind::User, "mallory@techhelp.example\r\u{1b}[2Kbob@techhelp.example")];
        let text = render(&rows_from_grants(&[hidden]), OutputFormat::Table).unwrap();
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
        assert!(text.contains("mallory@techhelp.example\\r\\u{1b}[2Kbob@techhelp.example"), "{text}");
    }

    #[test]
    fn the_client_is_told_how_many_grants_its_link_does_not_list() {
        let mut link = ClientLink::new(
            "techhelp",
            serde_json::from_value(serde_json::json!({
                "partner": "techhelp", "accessLevels": [{"name": "support", "clusterRole": "view"}]
            }))
            .unwrap(),
        );
        link.metadata.namespace = Some("beta".into());
        link.status = Some(crate::api::ClientLinkStatus { grants_unlisted: Some(7), ..Default::default() });
        let rows = rows_from_bindings(&[], &[link.clone()]);
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].client.as_str(), rows[0].state.as_str()), ("beta", "Unlisted"));
        assert!(rows[0].subject.contains("7 more grants"), "{}", rows[0].subject);
        link.status = Some(Default::default());
        assert!(rows_from_bindings(&[], &[link]).is_empty(), "nothing unlisted, no row");
    }
}
