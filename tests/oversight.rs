//! Periodic reviews and just-in-time access on a real control plane, each act by the actor
//! who would make it, under the chart's admission policies: a missed review suspends access,
//! a review in one's own name restores it; a request grants nothing until an approver of the
//! link approves it, and the access ends at the approved instant; nobody reviews or approves
//! in another's name, or their own access in. Access is judged by the API server
//! (SubjectAccessReview).

mod support;

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, Patch, PatchParams};
use liaison::api::{AccessApproval, AccessGrant, AccessRequest, ClientLink, Decision};
use serde_json::json;
use support::fixtures::*;
use support::*;

/// Past a 20 s period and its 5 s grace, with the operator's and the test's own delays.
const LAPSE: Duration = Duration::from_secs(60);
const REVIEW: &str = r#"{"every": "20s", "grace": "5s"}"#;

/// The operator, and the chart's review and request policies (rendered by helm, applied as
/// they are; the others expect the operator under the chart's ServiceAccount, see
/// tests/attacks.rs).
async fn setup(prefix: &str) -> (kube::Client, PartnerFixture) {
    static POLICIES: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let admin = client().await;
    shared_operator().await;
    POLICIES
        .get_or_init(|| async {
            let chart = path_of("charts/liaison").display().to_string();
            let show = [
                "template",
                "liaison",
                &chart,
                "--kube-version",
                "1.35",
                "--show-only",
                "templates/admission-policies.yaml",
            ];
            let (ok, yaml) = helm(&show);
            assert!(ok, "helm template: {yaml}");
            let authors = ["name: liaison-review-author", "name: liaison-request-author"];
            let policies: Vec<&str> =
                yaml.split("\n---").filter(|doc| authors.iter().any(|a| doc.contains(a))).collect();
            assert_eq!(policies.len(), 4, "the policies and their bindings");
            apply_yaml(&admin, &policies.join("\n---\n")).await;
        })
        .await;
    (admin.clone(), PartnerFixture::create(&admin, prefix).await)
}

async fn allowed(admin: &kube::Client, user: &str, ns: &str) -> bool {
    can(admin, user, &[], "list", PODS, ns).await
}

async fn until_allowed(admin: &kube::Client, user: &str, ns: &str, why: &str) {
    until(why, LAPSE, || allowed(admin, user, ns)).await
}

async fn until_denied(admin: &kube::Client, user: &str, ns: &str, why: &str) {
    until(why, LAPSE, || async { !allowed(admin, user, ns).await }).await
}

/// Lets `user` read and patch the ClientLinks of `ns` (what a reviewer of the client needs).
async fn may_edit_links(admin: &kube::Client, ns: &str, user: &str) {
    let name = format!("links-{}", user.replace(['@', '.'], "-"));
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns},
                      "rules": [{"apiGroups": ["liaison.dev"], "resources": ["clientlinks"], "verbs": ["get", "list", "patch", "update"]}]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]});
    apply(&Api::<Role>::namespaced(admin.clone(), ns), &role).await;
    apply_yaml(admin, &serde_json::to_string(&binding).unwrap()).await;
}

fn refusal<T: std::fmt::Debug>(result: Result<T, liaison::reviews::Error>) -> String {
    match result {
        Err(liaison::reviews::Error::Review { source: kube::Error::Api(status), .. })
            if status.code == 403 || status.code == 422 =>
        {
            status.message
        }
        other => panic!("expected the API server to refuse the review, got {other:?}"),
    }
}

/// Waits for the object's `Reviewed` condition to have `reason`, and returns it.
async fn reviewed_reason<K: Conditioned>(api: &Api<K>, name: &str, reason: &str) -> K {
    let (name, reason) = (name.to_string(), reason.to_string());
    eventually(&format!("{name}'s Reviewed condition says {reason}"), LAPSE, || {
        let (api, name, reason) = (api.clone(), name.clone(), reason.clone());
        async move {
            let object = api.get(&name).await.ok()?;
            object.conditions()?.iter().any(|c| c.type_ == "Reviewed" && c.reason == reason).then_some(object)
        }
    })
    .await
}

async fn event_reasons(admin: &kube::Client, ns: &str, kind: &str, name: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(admin.clone(), ns);
    let all = events.list(&Default::default()).await.expect("listing events");
    all.items
        .into_iter()
        .filter(|e| {
            e.regarding
                .as_ref()
                .is_some_and(|r| r.kind.as_deref() == Some(kind) && r.name.as_deref() == Some(name))
        })
        .filter_map(|e| e.reason)
        .collect()
}

#[tokio::test]
async fn a_missed_link_review_suspends_access_and_the_clients_review_restores_it() {
    let (admin, p) = setup("linkreview").await;
    let ns = p.client_namespace("c").await;
    let (carol, bob) = ("carol@client.example", p.user("bob"));
    may_edit_links(&admin, &ns, carol).await;
    p.link(
        &ns,
        "link",
        read_level("read"),
        json!({"review": serde_json::from_str::<serde_json::Value>(REVIEW).unwrap()}),
    )
    .await;
    p.grant("bob", &[&ns], "read", json!([user(&bob)]), json!({})).await;
    until_allowed(&admin, &bob, &ns, "bob is granted while the link is reviewed").await;

    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &ns);
    reviewed_reason(&links, "link", "ReviewDue").await;
    assert!(allowed(&admin, &bob, &ns).await, "a review due is announced; access goes on through the grace");
    until_denied(&admin, &bob, &ns, "a missed review suspends the link").await;
    let link = link_reason(&admin, &ns, "link", "ReviewOverdue").await;
    assert!(link.status.unwrap().review.unwrap().reviewed_by.is_none());
    until("Events announced the review, then its lapse", WAIT, || async {
        let told = event_reasons(&admin, &ns, "ClientLink", "link").await;
        told.contains(&"ReviewDue".into()) && told.contains(&"ReviewOverdue".into())
    })
    .await;
    let told = event_reasons(&admin, &ns, "ClientLink", "link").await;
    assert!(
        !told.contains(&"Reviewed".into()),
        "a new requirement is no news, nor is its first record: {told:?}"
    );

    // Nobody reviews in another's name: the admission policy refuses it.
    let as_carol = client_as(carol, &[]).await;
    let forged = json!({"spec": {"review": {"reviewed": {"by": "dave@client.example", "at": "2026-01-01T00:00:00Z"}}}});
    let refused = Api::<ClientLink>::namespaced(as_carol.clone(), &ns)
        .patch("link", &PatchParams::default(), &Patch::Merge(&forged))
        .await;
    match refused {
        Err(kube::Error::Api(status)) => assert!(status.message.contains("own name"), "{}", status.message),
        other => panic!("a review in another's name must be refused: {other:?}"),
    }

    // The partner cannot review its own access back in, even where the client let it edit links.
    may_edit_links(&admin, &ns, &bob).await;
    let as_bob = client_as(&bob, &[]).await;
    liaison::reviews::review::<ClientLink>(&as_bob, &ns, "link")
        .await
        .expect("the policy lets bob write in his own name");
    let link = reviewed_reason(&links, "link", "ReviewRefused").await;
    let message = link
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Reviewed"))
        .unwrap()
        .message
        .clone();
    assert!(message.contains(&format!("{bob} is one of partner {}'s own identities", p.name)), "{message}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!allowed(&admin, &bob, &ns).await, "the partner's own review changes nothing");

    // The client's review, in its own name, restores access.
    let done = liaison::reviews::review::<ClientLink>(&as_carol, &ns, "link").await.expect("carol reviews");
    assert_eq!(done.by, carol);
    until_allowed(&admin, &bob, &ns, "the review restores access").await;
    let link = reviewed_reason(&links, "link", "Reviewed").await;
    // `liaison review --client` and `liaison access --client` show it.
    let due = liaison::reviews::due_rows(std::slice::from_ref(&link));
    assert_eq!(
        (due.len(), due[0].last_reviewed_by.as_str(), due[0].state.as_str()),
        (1, carol, "Reviewed"),
        "{due:?}"
    );
    let access = liaison::report::rows_from_reviews(std::slice::from_ref(&link));
    assert!(access[0].until.starts_with("suspended at ") && access[0].state == "Reviewed", "{access:?}");
    let recorded = link.status.unwrap().review.unwrap();
    assert_eq!(recorded.reviewed_by.as_deref(), Some(carol));
    assert!(
        recorded.since.0 <= jiff::Timestamp::now()
            && recorded.since.0 >= done.at - jiff::SignedDuration::from_secs(1)
    );
}

#[tokio::test]
async fn a_missed_grant_review_suspends_the_grant_and_its_partners_admin_restores_it() {
    let (admin, p) = setup("grantreview").await;
    let ns = p.client_namespace("c").await;
    let (bob, partner_admin) = (p.user("bob"), p.user("admin"));
    p.link(&ns, "link", read_level("read"), json!({})).await;
    let review: serde_json::Value = serde_json::from_str(REVIEW).unwrap();
    p.grant("bob", &[&ns], "read", json!([user(&bob)]), json!({"review": review})).await;
    p.grant("self", &[&ns], "read", json!([user(&partner_admin)]), json!({"review": review})).await;
    until_allowed(&admin, &bob, &ns, "bob is granted while his grant is reviewed").await;

    until_denied(&admin, &bob, &ns, "a missed review suspends the grant").await;
    let grant = grant_reason(&p.grants(), "bob", "ReviewOverdue").await;
    assert!(grant.status.unwrap().clients.iter().all(|c| !c.granted));
    until_denied(&admin, &partner_admin, &ns, "the admin's own grant lapses too").await;

    // The people a grant names never review it: bob may not write grants at all, and the
    // admin may not review the grant that names the admin.
    let as_bob = client_as(&bob, &[]).await;
    let refused = liaison::reviews::review::<AccessGrant>(&as_bob, &p.home, "bob").await;
    assert!(
        matches!(refused, Err(liaison::reviews::Error::Read { .. } | liaison::reviews::Error::Review { .. })),
        "{refused:?}"
    );
    let as_admin = client_as(&partner_admin, &[]).await;
    let own = refusal(liaison::reviews::review::<AccessGrant>(&as_admin, &p.home, "self").await);
    assert!(own.contains("one of the grant's own subjects"), "{own}");

    liaison::reviews::review::<AccessGrant>(&as_admin, &p.home, "bob")
        .await
        .expect("the partner's admin reviews");
    until_allowed(&admin, &bob, &ns, "the admin's review restores bob's access").await;
    let grant = reviewed_reason(&p.grants(), "bob", "Reviewed").await;
    assert_eq!(grant.status.unwrap().review.unwrap().reviewed_by.as_deref(), Some(partner_admin.as_str()));
    assert!(!allowed(&admin, &partner_admin, &ns).await, "the admin's own grant stays suspended");
}

/// Lets `user` read the links and write AccessApprovals in `ns` (what the chart's aggregated
/// `admin` role gives).
async fn may_answer(admin: &kube::Client, ns: &str, user: &str) {
    let name = format!("answers-{}", user.replace(['@', '.'], "-"));
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns},
                      "rules": [{"apiGroups": ["liaison.dev"], "resources": ["accessapprovals"], "verbs": ["get", "list", "create"]},
                                {"apiGroups": ["liaison.dev"], "resources": ["clientlinks"], "verbs": ["get", "list"]}]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]});
    apply(&Api::<Role>::namespaced(admin.clone(), ns), &role).await;
    apply_yaml(admin, &serde_json::to_string(&binding).unwrap()).await;
}

async fn answer(
    as_user: &kube::Client,
    ns: &str,
    name: &str,
    request: &AccessRequest,
    decided_by: &str,
) -> Result<AccessApproval, kube::Error> {
    let approval: AccessApproval = serde_json::from_value(json!({
        "apiVersion": "liaison.dev/v1alpha1", "kind": "AccessApproval", "metadata": {"name": name, "namespace": ns},
        "spec": {"request": {"namespace": request.metadata.namespace, "name": request.metadata.name, "uid": request.metadata.uid},
                 "decision": "Approve", "decidedBy": decided_by, "reason": "on call for INC-1"}
    }))
    .unwrap();
    Api::<AccessApproval>::namespaced(as_user.clone(), ns).create(&Default::default(), &approval).await
}

/// The link `link` of `ns` once its status lists request `name`.
async fn links_listing(admin: &kube::Client, ns: &str, name: &str) -> ClientLink {
    links_listing_in(admin, ns, "link", name).await
}

async fn links_listing_in(admin: &kube::Client, ns: &str, link: &str, name: &str) -> ClientLink {
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), ns);
    eventually(&format!("link {ns}/{link} lists request {name}"), WAIT, || {
        let (links, link, name) = (links.clone(), link.to_string(), name.to_string());
        async move {
            let link = links.get(&link).await.ok()?;
            link.status
                .as_ref()?
                .requests
                .iter()
                .any(|r| r.request.ends_with(&format!("/{name}")))
                .then_some(link)
        }
    })
    .await
}

async fn request_says(p: &PartnerFixture, name: &str, phase: &str) -> AccessRequest {
    let requests: Api<AccessRequest> = Api::namespaced(p.admin.clone(), &p.home);
    let (name, phase) = (name.to_string(), phase.to_string());
    eventually(&format!("request {name} is {phase}"), WAIT, || {
        let (requests, name, phase) = (requests.clone(), name.clone(), phase.clone());
        async move {
            let request = requests.get(&name).await.ok()?;
            (request.status.as_ref()?.phase.as_deref() == Some(phase.as_str())).then_some(request)
        }
    })
    .await
}

#[tokio::test]
async fn a_request_grants_nothing_until_an_approver_approves_it_and_ends_at_the_approved_instant() {
    let (admin, p) = setup("jit").await;
    let ns = p.client_namespace("c").await;
    let (bob, alice, carol, eve) =
        (p.user("bob"), p.user("admin"), "carol@client.example", "eve@client.example");
    let levels = json!([
        {"name": "read", "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]},
        {"name": "break-glass", "onRequest": {"maxDuration": "1h"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}
    ]);
    // The client names carol, and (by mistake) the partner's own admin, as approvers.
    p.link(&ns, "link", levels, json!({"approvers": [carol, alice]})).await;
    p.grant("eligible", &[&ns], "break-glass", json!([user(&bob)]), json!({})).await;
    grant_reason(&p.grants(), "eligible", "OnRequest").await;
    assert!(!allowed(&admin, &bob, &ns).await, "a grant of an on-request level binds nobody");

    // The partner's admin asks, in its own name.
    let as_alice = client_as(&alice, &[]).await;
    let requests: Api<AccessRequest> = Api::namespaced(as_alice.clone(), &p.home);
    let asked = |by: &str| {
        serde_json::from_value::<AccessRequest>(json!({
            "apiVersion": "liaison.dev/v1alpha1", "kind": "AccessRequest", "metadata": {"name": "inc-1", "namespace": p.home},
            "spec": {"grant": "eligible", "client": ns, "duration": "20s", "reason": "INC-1: pods crash-looping", "requestedBy": by,
                     "subjects": [{"kind": "User", "name": bob}]}
        }))
        .unwrap()
    };
    let forged = requests.create(&Default::default(), &asked(&bob)).await;
    assert!(matches!(&forged, Err(kube::Error::Api(s)) if s.message.contains("must be you")), "{forged:?}");
    let request = requests.create(&Default::default(), &asked(&alice)).await.expect("alice asks");
    let pending = request_says(&p, "inc-1", "Pending").await;
    assert!(pending.status.unwrap().conditions[0].message.contains(carol));
    assert!(!allowed(&admin, &bob, &ns).await, "a request grants nothing until approved");

    // Nobody answers in another's name; a non-approver's answer and the requester's own count
    // for nothing.
    for who in [carol, eve, alice.as_str()] {
        may_answer(&admin, &ns, who).await;
    }
    let (as_eve, as_carol) = (client_as(eve, &[]).await, client_as(carol, &[]).await);
    let in_carols_name = answer(&as_eve, &ns, "forged", &request, carol).await;
    assert!(
        matches!(&in_carols_name, Err(kube::Error::Api(s)) if s.message.contains("must be you")),
        "{in_carols_name:?}"
    );
    answer(&as_eve, &ns, "by-eve", &request, eve).await.expect("the policy lets eve answer in her own name");
    answer(&as_alice, &ns, "by-alice", &request, &alice)
        .await
        .expect("the policy lets alice answer in her own name");
    let requests_seen: Api<AccessRequest> = Api::namespaced(admin.clone(), &p.home);
    until("both answers are judged and refused", WAIT, || {
        let requests_seen = requests_seen.clone();
        async move {
            let message = requests_seen
                .get("inc-1")
                .await
                .ok()
                .and_then(|r| r.status)
                .map(|s| s.conditions[0].message.clone());
            message
                .is_some_and(|m| m.contains("by-eve does not count") && m.contains("by-alice does not count"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !allowed(&admin, &bob, &ns).await,
        "a self-approval and a non-approver's approval change nothing"
    );

    // Carol, an approver, approves: bob gets the level until the approved instant, not after.
    // She finds the request in her link's status (she cannot read the partner's namespace),
    // and answers it there by its UID (`liaison approve`).
    let link = links_listing(&admin, &ns, "inc-1").await;
    let rows = liaison::report::rows_from_link_requests(&[link]);
    assert!(rows.iter().any(|r| r.state == "Pending" && r.subject.contains(&alice)), "{rows:?}");
    let approval = liaison::reviews::approve(
        &as_carol,
        &ns,
        "inc-1",
        Decision::Approve,
        Some("on call for INC-1".into()),
    )
    .await
    .expect("carol approves");
    let approved_at = approval.metadata.creation_timestamp.unwrap().0;
    until_allowed(&admin, &bob, &ns, "the approved request binds bob").await;
    let approved = request_says(&p, "inc-1", "Approved").await.status.unwrap();
    let ends_at = approved.ends_at.unwrap().0;
    assert_eq!(approved.decided_by.as_deref(), Some(carol));
    assert_eq!(
        ends_at,
        approved_at + jiff::SignedDuration::from_secs(20),
        "from the approval, for the requested 20 s"
    );
    assert_eq!(approved.decision_reason.as_deref(), Some("on call for INC-1"));
    until("the client's namespace tells of the approval", WAIT, || async {
        event_reasons(&admin, &ns, "ClientLink", "link").await.contains(&"RequestApproved".into())
    })
    .await;

    until_denied(&admin, &bob, &ns, "the approved access ends").await;
    let ended = jiff::Timestamp::now();
    assert!(ended >= ends_at, "not before the approved instant ({ended} < {ends_at})");
    assert!(
        ended <= ends_at + jiff::SignedDuration::from_secs(3),
        "at the approved instant ({ended} vs {ends_at})"
    );
    request_says(&p, "inc-1", "Ended").await;
    grant_reason(&p.grants(), "eligible", "OnRequest").await;
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &ns);
    until("the link lists open requests only", WAIT, || async {
        links.get("link").await.is_ok_and(|l| l.status.is_some_and(|s| s.requests.is_empty()))
    })
    .await;
}

/// The examples as their actors apply them: the platform admin, Beta's admin, TechHelp's admin
/// (the request); then Beta's approver answers and bob reads pods in beta until the end.
#[tokio::test]
async fn the_example_request_is_answered_by_betas_approver() {
    let (admin, _) = setup("examples").await;
    let example = |name: &str| {
        std::fs::read_to_string(path_of(&format!("examples/{name}"))).expect("reading an example")
    };
    apply_yaml(&admin, &example("01-partner.yaml")).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin.clone());
    until("TechHelp's home exists", WAIT, || {
        let namespaces = namespaces.clone();
        async move { namespaces.get_opt("partner-techhelp").await.unwrap().is_some() }
    })
    .await;
    apply_yaml(&admin, &example("02-client-beta.yaml")).await;
    let alice = client_as("alice@techhelp.example", &[]).await;
    until("alice may make requests", WAIT, || {
        can(
            &admin,
            "alice@techhelp.example",
            &[],
            "create",
            res("liaison.dev", "accessrequests"),
            "partner-techhelp",
        )
    })
    .await;
    apply_yaml(&alice, &example("04-partner-request.yaml")).await;
    let bob = "bob@techhelp.example";
    links_listing_in(&admin, "beta", "techhelp", "inc-1042").await;
    assert!(!allowed(&admin, bob, "beta").await, "nothing until Beta's approver answers");
    may_answer(&admin, "beta", "carol@beta.example").await;
    let carol = client_as("carol@beta.example", &[]).await;
    liaison::reviews::approve(&carol, "beta", "inc-1042", Decision::Approve, Some("on call".into()))
        .await
        .expect("carol approves");
    until_allowed(&admin, bob, "beta", "bob reads pods in beta on the approved request").await;
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), "beta");
    let link = links.get("techhelp").await.unwrap();
    let status = link.status.unwrap();
    let due = status.review.expect("Beta's quarterly review is recorded").due_at.0;
    assert!(due > jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 89));
}
