//! DESIGN.md's rules on a real control plane, each judged by the API server's own
//! authorization before and after the change.

mod support;

use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use liaison::api::{ClientLink, Partner};
use serde_json::{Value, json};
use support::fixtures::*;
use support::*;

const SECRETS: Res = res("", "secrets");
const CONFIGMAPS: Res = res("", "configmaps");

async fn setup(prefix: &str) -> (kube::Client, PartnerFixture) {
    let admin = client().await;
    shared_operator().await;
    let partner = PartnerFixture::create(&admin, prefix).await;
    (admin, partner)
}

async fn allowed(admin: &kube::Client, user: &str, ns: &str) -> bool {
    can(admin, user, &[], "list", PODS, ns).await
}

async fn until_allowed(admin: &kube::Client, user: &str, ns: &str) {
    until(&format!("{user} may list pods in {ns}"), WAIT, || allowed(admin, user, ns)).await
}

async fn until_denied(admin: &kube::Client, user: &str, ns: &str) {
    until(&format!("{user} may no longer list pods in {ns}"), WAIT, || async {
        !allowed(admin, user, ns).await
    })
    .await
}

fn seconds_from_now(seconds: i64) -> String {
    let at = Timestamp::now().as_second() + seconds;
    Timestamp::from_second(at).unwrap().to_string()
}

#[tokio::test]
async fn one_grant_serves_several_clients() {
    let (admin, p) = setup("multi").await;
    let (c1, c2) = (p.client_namespace("c1").await, p.client_namespace("c2").await);
    p.link(&c1, "link", read_level("read"), json!({})).await;
    p.link(&c2, "link", read_level("read"), json!({})).await;
    let bob = p.user("bob");
    p.grant("both", &[&c1, &c2], "read", json!([user(&bob)]), json!({})).await;
    until_allowed(&admin, &bob, &c1).await;
    until_allowed(&admin, &bob, &c2).await;
    let grant = grant_reason(&p.grants(), "both", "Granted").await;
    assert_eq!(grant.status.unwrap().granted_clients, 2);

    p.grant("both", &[&c1], "read", json!([user(&bob)]), json!({})).await;
    until_denied(&admin, &bob, &c2).await;
    assert!(allowed(&admin, &bob, &c1).await, "the remaining client keeps its access");
}

/// A link lists at most 50 of its partner's grants (its size is what deleting it, a
/// revocation, costs the API server) and counts the rest; the partner's summary and the
/// API server's own answer still know every grant in force.
#[tokio::test]
async fn a_link_lists_fifty_grants_and_counts_them_all() {
    let (admin, p) = setup("many").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    let users: Vec<String> = (0..53).map(|n| p.user(&format!("u{n:02}"))).collect();
    futures::future::join_all(users.iter().enumerate().map(|(n, who)| {
        let p = &p;
        let ns = ns.as_str();
        async move { p.grant(&format!("g{n:02}"), &[ns], "read", json!([user(who)]), json!({})).await }
    }))
    .await;
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &ns);
    let status = eventually("the link counts 53 grants", WAIT, || async {
        let status = links.get("link").await.ok()?.status?;
        (status.grant_count == 53).then_some(status)
    })
    .await;
    assert_eq!((status.grants.len(), status.grants_unlisted), (50, Some(3)), "{status:?}");
    let partners: Api<Partner> = Api::all(admin.clone());
    until("the partner's summary counts every grant and subject", WAIT, || async {
        let Some(status) = partners.get(&p.name).await.ok().and_then(|p| p.status) else { return false };
        status.clients.iter().any(|c| c.namespace == ns && c.grants.len() == 53 && c.subjects == 53)
    })
    .await;
    assert!(allowed(&admin, &users[52], &ns).await, "an unlisted grant is in force");
}

/// `Ready=True` is a promise to the user who waits for it: the access works from that instant.
/// The condition is awaited through a watch (no polling slack), then asked once, without retry.
#[tokio::test]
async fn a_grant_is_ready_only_once_its_access_works() {
    use kube::runtime::wait::await_condition;
    let (admin, p) = setup("promise").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    link_reason(&admin, &ns, "link", "Active").await;
    let names: Vec<String> = (0..6).map(|i| format!("g{i}")).collect();
    let ready = |name: &str| {
        let grants = p.grants();
        let name = name.to_string();
        async move {
            let is_ready = |g: Option<&liaison::api::AccessGrant>| {
                ready_of(g.and_then(|g| g.status.as_ref()).map(|s| &s.conditions[..]))
                    == Some(("True".into(), "Granted".into()))
            };
            tokio::time::timeout(WAIT, await_condition(grants, &name, is_ready))
                .await
                .expect("Ready in time")
                .expect("watch")
        }
    };
    let waits: Vec<_> = names.iter().map(|n| tokio::spawn(ready(n))).collect();
    let clients = [ns.as_str()];
    futures::future::join_all(
        names.iter().map(|n| p.grant(n, &clients, "read", json!([user(&p.user(n))]), json!({}))),
    )
    .await;
    for (name, wait) in names.iter().zip(waits) {
        wait.await.expect("waiter");
        assert!(allowed(&admin, &p.user(name), &ns).await, "{name} was Ready before its access worked");
    }
}

#[tokio::test]
async fn a_namespace_has_one_partner_the_oldest_link_wins() {
    let (admin, first) = setup("first").await;
    let second = PartnerFixture::create(&admin, "second").await;
    let ns = first.client_namespace("contested").await;
    first.link(&ns, "a-first", read_level("read"), json!({})).await;
    link_reason(&admin, &ns, "a-first", "Active").await;
    tokio::time::sleep(Duration::from_secs(1)).await; // creationTimestamp has second resolution
    second.link(&ns, "b-second", read_level("read"), json!({})).await;
    let (alice, mallory) = (first.user("alice"), second.user("mallory"));
    first.grant("g", &[&ns], "read", json!([user(&alice)]), json!({})).await;
    second.grant("g", &[&ns], "read", json!([user(&mallory)]), json!({})).await;

    let refused = link_reason(&admin, &ns, "b-second", "Conflict").await;
    assert!(
        refused.status.unwrap().conditions[0].message.contains(&first.name),
        "the message names the partner in place"
    );
    until_allowed(&admin, &alice, &ns).await;
    grant_reason(&second.grants(), "g", "LinkNotReady").await;
    assert!(!allowed(&admin, &mallory, &ns).await, "the second partner gets nothing");

    // The first link goes: the second takes over.
    Api::<ClientLink>::namespaced(admin.clone(), &ns)
        .delete("a-first", &DeleteParams::default())
        .await
        .unwrap();
    until_allowed(&admin, &mallory, &ns).await;
    until_denied(&admin, &alice, &ns).await;
    link_reason(&admin, &ns, "b-second", "Active").await;
}

/// A refused link carries no finalizer: granted nothing, it has nothing to revoke, and another
/// tenant's thousands of refused links then cost no write each (#26). Once put in force it gets
/// the finalizer before its access is written, and its deletion revokes as any other's.
#[tokio::test]
async fn a_refused_link_carries_no_finalizer_until_it_is_put_in_force() {
    let (admin, p) = setup("unguarded").await;
    let ns = p.client_namespace("c").await;
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &ns);
    // It holds the namespace (first by name if created in the same second) but names no
    // partner that exists; the partner's own link is outranked by it.
    let squatter = json!({
        "apiVersion": "liaison.dev/v1alpha1", "kind": "ClientLink",
        "metadata": {"name": "a-squatter", "namespace": ns},
        "spec": {"partner": format!("{}-nobody", p.name), "accessLevels": read_level("read")}
    });
    apply(&links, &squatter).await;
    // Seen by the operator before the link it outranks is created.
    let squatter = link_reason(&admin, &ns, "a-squatter", "PartnerNotFound").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    let bob = p.user("bob");
    p.grant("g", &[&ns], "read", json!([user(&bob)]), json!({})).await;
    let refused = [squatter, link_reason(&admin, &ns, "link", "Conflict").await];
    grant_reason(&p.grants(), "g", "LinkNotReady").await;
    for link in refused {
        assert_eq!(link.metadata.finalizers, None, "{} is refused: no finalizer", link.name_any());
    }
    assert!(!allowed(&admin, &bob, &ns).await);

    // The squatter goes at once (nothing held it): the partner's link is put in force.
    links.delete("a-squatter", &DeleteParams::default()).await.unwrap();
    until_allowed(&admin, &bob, &ns).await;
    let in_force = links.get("link").await.unwrap();
    assert_eq!(
        in_force.metadata.finalizers,
        Some(vec![liaison::desired::names::FINALIZER.to_string()]),
        "access is written only once the finalizer guards it"
    );
    link_reason(&admin, &ns, "link", "Active").await;

    // Its deletion revokes first, and the finalizer goes last.
    links.delete("link", &DeleteParams::default()).await.unwrap();
    until_denied(&admin, &bob, &ns).await;
    until_gone(&links, "link", "the link is gone", WAIT).await;
    let managed = ListParams::default().labels(&liaison::desired::names::managed_selector(None));
    let roles = Api::<Role>::namespaced(admin.clone(), &ns).list(&managed).await.unwrap().items;
    let bindings = Api::<RoleBinding>::namespaced(admin.clone(), &ns).list(&managed).await.unwrap().items;
    assert!(roles.is_empty() && bindings.is_empty(), "nothing of Liaison's is left in {ns}");
}

/// One tenant's refused links are told at a pace (#26): the first twenty at once, then a few a
/// second, so that a flood of them cannot keep the API server busy while access ends
/// elsewhere. None is forgotten on the way: each waits for its turn away from the queue.
#[tokio::test]
async fn a_namespaces_refused_links_are_all_told_at_a_bounded_pace() {
    // The pace the operator promises (`REFUSALS_PER_SECOND`, `REFUSALS_TOLD_AT_ONCE` in
    // `reconcile::client_link`), written out so that a faster pace fails here rather than
    // being followed.
    const PER_SECOND: f64 = 10.0;
    const AT_ONCE: usize = 20;
    const LINKS: usize = 100;
    let (admin, p) = setup("paced").await;
    let ns = p.client_namespace("flood").await;
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &ns);
    futures::future::join_all((0..LINKS).map(|i| {
        let link = json!({
            "apiVersion": "liaison.dev/v1alpha1", "kind": "ClientLink",
            "metadata": {"name": format!("refused-{i}"), "namespace": ns},
            "spec": {"partner": format!("{}-nobody", p.name), "accessLevels": read_level("read")}
        });
        let links = links.clone();
        async move { apply(&links, &link).await }
    }))
    .await;
    // The oldest holds the namespace and names no partner that exists; the others are outranked.
    until(&format!("all {LINKS} refused links are told"), WAIT, || async {
        let told = links.list(&ListParams::default()).await.unwrap().items.into_iter().filter(|link| {
            liaison::api::ready_condition(link.status.as_ref().map_or(&[][..], |s| &s.conditions))
                .is_some_and(|ready| {
                    ready.status == "False"
                        && ["PartnerNotFound", "Conflict"].contains(&ready.reason.as_str())
                })
        });
        told.count() == LINKS
    })
    .await;

    // When the API server received each status write, from its audit log.
    let log = std::fs::read_to_string(testenv().dir.join("audit.log")).unwrap();
    let mut written: Vec<Timestamp> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| {
            let object = &e["objectRef"];
            object["namespace"] == ns.as_str()
                && object["resource"] == "clientlinks"
                && object["subresource"] == "status"
        })
        .filter_map(|e| e["requestReceivedTimestamp"].as_str()?.parse().ok())
        .collect();
    written.sort();
    assert!(written.len() >= LINKS, "a status write per link: {} seen", written.len());
    let paced = (LINKS - AT_ONCE) as f64 / PER_SECOND;
    let spread = written[written.len() - 1].duration_since(written[0]).as_secs_f64();
    assert!(
        spread >= paced * 0.9,
        "{LINKS} refused links told within {spread:.2} s: the pace allows no less than {paced:.2} s"
    );
}

#[tokio::test]
async fn a_namespace_outside_the_selector_is_refused_until_labelled() {
    let (admin, p) = setup("selector").await;
    let ns = fresh_namespace(&admin, "unlabelled").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    let bob = p.user("bob");
    p.grant("g", &[&ns], "read", json!([user(&bob)]), json!({})).await;
    link_reason(&admin, &ns, "link", "NamespaceNotAllowed").await;
    assert!(!allowed(&admin, &bob, &ns).await);

    let label = json!({"metadata": {"labels": {ALLOWED.0: ALLOWED.1}}});
    Api::<Namespace>::all(admin.clone())
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    until_allowed(&admin, &bob, &ns).await;
    link_reason(&admin, &ns, "link", "Active").await;

    let unlabel = json!({"metadata": {"labels": {ALLOWED.0: null}}});
    Api::<Namespace>::all(admin.clone())
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&unlabel))
        .await
        .unwrap();
    until_denied(&admin, &bob, &ns).await;
}

#[tokio::test]
async fn foreign_and_system_subjects_are_refused() {
    let (admin, p) = setup("ids").await;
    let other = PartnerFixture::create(&admin, "other").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    // system:* never gets past admission; the operator's own check stays authoritative.
    for (name, subject) in [
        ("masters", json!({"kind": "Group", "name": "system:masters"})),
        ("authenticated", json!({"kind": "Group", "name": "system:authenticated"})),
        ("anonymous", user("system:anonymous")),
    ] {
        let grant = json!({"apiVersion": "liaison.dev/v1alpha1", "kind": "AccessGrant", "metadata": {"name": name, "namespace": p.home},
            "spec": {"clients": [ns], "accessLevel": "read", "subjects": [subject]}});
        let refused =
            p.grants().patch(name, &PatchParams::apply("liaison-tests"), &Patch::Apply(&grant)).await;
        assert!(
            matches!(&refused, Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("system:* identities can never be granted")),
            "{refused:?}"
        );
    }
    let cases = [
        ("other-partner", json!([user(&other.user("eve"))])),
        ("unlisted-group", json!([{"kind": "Group", "name": format!("{}:admins", p.name)}])),
        ("mixed", json!([user(&p.user("bob")), user(&other.user("eve"))])),
    ];
    for (name, subjects) in &cases {
        p.grant(name, &[&ns], "read", subjects.clone(), json!({})).await;
    }
    for (name, _) in &cases {
        let grant = grant_reason(&p.grants(), name, "SubjectNotAllowed").await;
        assert!(grant.status.unwrap().clients[0].role_binding.is_none());
    }
    assert!(!can(&admin, "someone", &["system:authenticated"], "list", PODS, &ns).await);
    assert!(!allowed(&admin, &other.user("eve"), &ns).await);
    assert!(!allowed(&admin, &p.user("bob"), &ns).await, "a grant naming a foreign subject grants nobody");
    let bindings = Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=liaison"))
        .await
        .unwrap();
    assert!(
        bindings.items.is_empty(),
        "no binding at all was made: {:?}",
        bindings.items.iter().map(|b| &b.metadata.name).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn levels_beyond_the_ceiling_are_denied_and_the_others_still_work() {
    let (admin, p) = setup("ceiling").await;
    let ns = p.client_namespace("c").await;
    let roles: Api<Role> = Api::namespaced(admin.clone(), &ns);
    let deleter = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "deleter", "namespace": ns},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "delete"]}]});
    apply(&roles, &deleter).await;
    let levels = json!([
        {"name": "read", "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]},
        {"name": "secrets", "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]},
        {"name": "deleter", "role": "deleter"},
        {"name": "admin", "clusterRole": "admin"},
    ]);
    p.link(&ns, "link", levels, json!({})).await;
    let (reader, snoop, killer, boss) = (p.user("reader"), p.user("snoop"), p.user("killer"), p.user("boss"));
    p.grant("read", &[&ns], "read", json!([user(&reader)]), json!({})).await;
    p.grant("secrets", &[&ns], "secrets", json!([user(&snoop)]), json!({})).await;
    p.grant("deleter", &[&ns], "deleter", json!([user(&killer)]), json!({})).await;
    p.grant("admin", &[&ns], "admin", json!([user(&boss)]), json!({})).await;

    until_allowed(&admin, &reader, &ns).await;
    let link = link_reason(&admin, &ns, "link", "EscalationDenied").await;
    let message = link.status.unwrap().conditions[0].message.clone();
    assert!(message.contains("level secrets") && message.contains("get secrets.core"), "{message}");
    for name in ["secrets", "deleter", "admin"] {
        grant_reason(&p.grants(), name, "EscalationDenied").await;
    }
    assert!(!can(&admin, &snoop, &[], "get", SECRETS, &ns).await);
    assert!(!can(&admin, &killer, &[], "delete", PODS, &ns).await);
    assert!(!can(&admin, &killer, &[], "get", PODS, &ns).await, "a denied level grants none of its rules");
    assert!(!allowed(&admin, &boss, &ns).await);
}

#[tokio::test]
async fn a_cluster_role_that_grows_beyond_the_ceiling_is_revoked() {
    let (admin, p) = setup("grow").await;
    let ns = p.client_namespace("c").await;
    let label = format!("liaison-test/{}", p.name);
    let cluster_roles: Api<ClusterRole> = Api::all(admin.clone());
    let aggregated = format!("{}-level", p.name);
    apply(
        &cluster_roles,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": aggregated},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label.clone(): "true"}}]}}),
    )
    .await;
    apply(
        &cluster_roles,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": format!("{}-pods", p.name), "labels": {label.clone(): "true"}},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}),
    )
    .await;
    p.link(&ns, "link", json!([{"name": "grown", "clusterRole": aggregated}]), json!({})).await;
    let bob = p.user("bob");
    p.grant("g", &[&ns], "grown", json!([user(&bob)]), json!({})).await;
    until_allowed(&admin, &bob, &ns).await;

    // The client's ClusterRole later aggregates a rule the ceiling does not cover.
    apply(
        &cluster_roles,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": format!("{}-secrets", p.name), "labels": {label: "true"}},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
    )
    .await;
    until_denied(&admin, &bob, &ns).await;
    assert!(!can(&admin, &bob, &[], "get", SECRETS, &ns).await, "the grown rule never reached the client");
    link_reason(&admin, &ns, "link", "EscalationDenied").await;
}

#[tokio::test]
async fn access_ends_at_the_instant_of_expiry() {
    let (admin, p) = setup("expiry").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    let bob = p.user("bob");
    let expires = seconds_from_now(8);
    p.grant("g", &[&ns], "read", json!([user(&bob)]), json!({"expiresAt": expires})).await;
    until_allowed(&admin, &bob, &ns).await;
    let at: Timestamp = expires.parse().unwrap();
    let started = Instant::now();
    until_denied(&admin, &bob, &ns).await;
    let lag = Timestamp::now().duration_since(at);
    eprintln!("access ended {lag:#} after expiresAt (waited {:?})", started.elapsed());
    assert!(lag.as_secs_f64() >= 0.0, "access must not end before expiresAt");
    assert!(lag.as_secs_f64() < 3.0, "access must end promptly after expiresAt, ended {lag:#} late");
    grant_reason(&p.grants(), "g", "Expired").await;
    let operator = shared_operator().await;
    until("the expiry lag is observed", WAIT, || async {
        operator
            .metrics()
            .await
            .lines()
            .any(|l| l.starts_with("liaison_expiry_lag_seconds_count") && !l.ends_with(" 0"))
    })
    .await;
}

#[tokio::test]
async fn an_expired_link_revokes_every_grant() {
    let (admin, p) = setup("linkexp").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({"expiresAt": seconds_from_now(6)})).await;
    let bob = p.user("bob");
    p.grant("g", &[&ns], "read", json!([user(&bob)]), json!({})).await;
    until_allowed(&admin, &bob, &ns).await;
    until_denied(&admin, &bob, &ns).await;
    link_reason(&admin, &ns, "link", "Expired").await;
}

/// Grants stay silent while their client's link is revoked (the revocation's deletes go first);
/// a link that another controller's finalizer keeps must not silence them for good.
#[tokio::test]
async fn a_link_kept_by_another_finalizer_is_revoked_and_its_grants_say_so() {
    let (admin, p) = setup("kept").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    let bob = p.user("bob");
    p.grant("g", &[&ns], "read", json!([user(&bob)]), json!({})).await;
    until_allowed(&admin, &bob, &ns).await;
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &ns);
    let finalizers = |list: serde_json::Value| Patch::Merge(json!({"metadata": {"finalizers": list}}));
    links
        .patch(
            "link",
            &PatchParams::default(),
            &finalizers(json!(["liaison.dev/revoke-access", "example.com/audit"])),
        )
        .await
        .unwrap();

    links.delete("link", &DeleteParams::default()).await.unwrap();
    until_denied(&admin, &bob, &ns).await;
    let grant = grant_reason(&p.grants(), "g", "LinkNotFound").await;
    assert_eq!(grant.status.unwrap().granted_clients, 0);
    let kept = links.get("link").await.expect("the other finalizer keeps the link");
    assert_eq!(
        kept.metadata.finalizers,
        Some(vec!["example.com/audit".to_string()]),
        "Liaison's revocation is done"
    );
    links.patch("link", &PatchParams::default(), &finalizers(json!(null))).await.unwrap();
}

#[tokio::test]
async fn suspension_revokes_and_resumption_restores() {
    let (admin, p) = setup("suspend").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    let bob = p.user("bob");
    p.grant("g", &[&ns], "read", json!([user(&bob)]), json!({})).await;
    until_allowed(&admin, &bob, &ns).await;
    p.link(&ns, "link", read_level("read"), json!({"suspended": true})).await;
    until_denied(&admin, &bob, &ns).await;
    link_reason(&admin, &ns, "link", "Suspended").await;
    p.link(&ns, "link", read_level("read"), json!({"suspended": false})).await;
    until_allowed(&admin, &bob, &ns).await;
    link_reason(&admin, &ns, "link", "Active").await;
}

#[tokio::test]
async fn deleting_the_partner_revokes_everything_and_keeps_its_namespace() {
    let (admin, p) = setup("gone").await;
    let (c1, c2) = (p.client_namespace("c1").await, p.client_namespace("c2").await);
    p.link(&c1, "link", read_level("read"), json!({"accessKey": {"accessLevel": "read"}})).await;
    p.link(&c2, "link", read_level("read"), json!({})).await;
    let bob = p.user("bob");
    p.grant("g", &[&c1, &c2], "read", json!([user(&bob)]), json!({})).await;
    let admin_user = p.user("admin");
    until_allowed(&admin, &bob, &c2).await;
    until_allowed(&admin, &bob, &c1).await;
    assert!(
        can(&admin, &admin_user, &[], "create", res("liaison.dev", "accessgrants"), &p.home).await,
        "the partner admin manages grants"
    );

    Api::<Partner>::all(admin.clone()).delete(&p.name, &DeleteParams::default()).await.unwrap();
    until_denied(&admin, &bob, &c1).await;
    until_denied(&admin, &bob, &c2).await;
    until("the partner admin's role is gone", WAIT, || async {
        !can(&admin, &admin_user, &[], "create", res("liaison.dev", "accessgrants"), &p.home).await
    })
    .await;
    link_reason(&admin, &c1, "link", "PartnerNotFound").await;
    let managed = ListParams::default().labels(&format!("liaison.dev/partner={}", p.name));
    until("nothing of the partner is left", WAIT, || {
        let (admin, managed) = (admin.clone(), managed.clone());
        async move {
            Api::<RoleBinding>::all(admin.clone()).list(&managed).await.unwrap().items.is_empty()
                && Api::<k8s_openapi::api::core::v1::ServiceAccount>::all(admin.clone())
                    .list(&managed)
                    .await
                    .unwrap()
                    .items
                    .is_empty()
                && Api::<k8s_openapi::api::core::v1::Secret>::all(admin.clone())
                    .list(&managed)
                    .await
                    .unwrap()
                    .items
                    .is_empty()
        }
    })
    .await;
    assert!(
        Api::<Namespace>::all(admin.clone()).get_opt(&p.home).await.unwrap().is_some(),
        "the home namespace is kept"
    );
}

#[tokio::test]
async fn edited_and_deleted_bindings_are_put_back() {
    let (admin, p) = setup("drift").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    let (bob, mallory) = (p.user("bob"), "mallory@evil.example");
    p.grant("g", &[&ns], "read", json!([user(&bob)]), json!({})).await;
    until_allowed(&admin, &bob, &ns).await;
    let grant = grant_reason(&p.grants(), "g", "Granted").await;
    let name = grant.status.unwrap().clients[0].role_binding.clone().unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &ns);

    let mut edited = bindings.get(&name).await.unwrap();
    edited.subjects.as_mut().unwrap().push(k8s_openapi::api::rbac::v1::Subject {
        kind: "User".into(),
        name: mallory.into(),
        api_group: Some("rbac.authorization.k8s.io".into()),
        namespace: None,
    });
    edited.metadata.managed_fields = None;
    bindings.replace(&name, &Default::default(), &edited).await.unwrap();
    until_denied(&admin, mallory, &ns).await;
    assert!(allowed(&admin, &bob, &ns).await);

    bindings.delete(&name, &DeleteParams::default()).await.unwrap();
    until("the binding is re-created", WAIT, || {
        let (bindings, name) = (bindings.clone(), name.clone());
        async move { bindings.get_opt(&name).await.unwrap().is_some() }
    })
    .await;
    until_allowed(&admin, &bob, &ns).await;
}

#[tokio::test]
async fn edited_and_deleted_level_roles_are_put_back() {
    let (admin, p) = setup("role-drift").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    let bob = p.user("bob");
    p.grant("g", &[&ns], "read", json!([user(&bob)]), json!({})).await;
    until_allowed(&admin, &bob, &ns).await;
    let roles: Api<Role> = Api::namespaced(admin.clone(), &ns);
    let level_roles = ListParams::default().labels("liaison.dev/component=level-role");
    let listed = roles.list(&level_roles).await.unwrap().items;
    assert_eq!(listed.len(), 1, "one Role for the one level in use");
    let name = listed[0].metadata.name.clone().unwrap();

    // Widened by hand: the extra rule goes, the level's own stays.
    let mut widened = listed[0].clone();
    widened.rules.get_or_insert_default().push(k8s_openapi::api::rbac::v1::PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec!["secrets".into()]),
        verbs: vec!["get".into()],
        ..Default::default()
    });
    widened.metadata.managed_fields = None;
    roles.replace(&name, &Default::default(), &widened).await.unwrap();
    let own_rules = listed[0].rules.clone();
    until("the widened level Role is put back", WAIT, || {
        let (roles, name, own_rules) = (roles.clone(), name.clone(), own_rules.clone());
        async move { roles.get(&name).await.unwrap().rules == own_rules }
    })
    .await;
    until("the extra rule stops working", WAIT, || {
        let (admin, bob, ns) = (admin.clone(), bob.clone(), ns.clone());
        async move { !can(&admin, &bob, &[], "get", SECRETS, &ns).await }
    })
    .await;
    assert!(allowed(&admin, &bob, &ns).await);

    roles.delete(&name, &DeleteParams::default()).await.unwrap();
    until("the level Role is re-created", WAIT, || {
        let (roles, name) = (roles.clone(), name.clone());
        async move { roles.get_opt(&name).await.unwrap().is_some() }
    })
    .await;
    until_allowed(&admin, &bob, &ns).await;
}

#[tokio::test]
async fn stray_objects_are_removed_but_forged_labels_adopt_nothing() {
    let (admin, p) = setup("stray").await;
    let ns = p.client_namespace("c").await;
    let link = p.link(&ns, "link", read_level("read"), json!({})).await;
    link_reason(&admin, &ns, "link", "Active").await;
    let uid = link.metadata.uid.clone().unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &ns);
    let labels = json!({"app.kubernetes.io/managed-by": "liaison", "liaison.dev/component": "grant-binding", "liaison.dev/owner-uid": uid,
                        "liaison.dev/partner": p.name, "liaison.dev/access-grant": "gone", "liaison.dev/grant-uid": "uid-of-a-gone-grant"});
    let role_ref = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"});
    let subjects =
        json!([{"kind": "User", "name": "mallory@evil.example", "apiGroup": "rbac.authorization.k8s.io"}]);
    let owner = json!([{"apiVersion": "liaison.dev/v1alpha1", "kind": "ClientLink", "name": "link", "uid": uid, "controller": true}]);
    // Made by Liaison for this link once (the name it derives for a grant), no longer wanted:
    // removed, owner reference or not.
    let leftover = liaison::desired::names::grant_binding(&uid, "uid-of-a-gone-grant", "gone");
    apply(
        &bindings,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": leftover, "namespace": ns, "labels": labels},
        "roleRef": role_ref, "subjects": subjects}),
    )
    .await;
    // A tenant's own bindings wearing Liaison's labels, and even its owner reference, under a
    // name Liaison never derives: neither adopted nor deleted.
    for (name, owner) in [("forged", Value::Null), ("forged-owned", owner)] {
        apply(
            &bindings,
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner},
            "roleRef": role_ref, "subjects": subjects}),
        )
        .await;
    }
    // Nudge the link so that it reconciles now rather than at its next resync.
    p.link(&ns, "link", read_level("read"), json!({"suspended": false})).await;
    until_gone(&bindings, &leftover, "the leftover binding is removed", WAIT).await;
    for name in ["forged", "forged-owned"] {
        let forged = bindings.get(name).await.unwrap();
        assert_eq!(
            forged.subjects.unwrap()[0].name,
            "mallory@evil.example",
            "Liaison never rewrites what it does not own: {name}"
        );
    }
}

#[tokio::test]
async fn a_recreated_link_does_not_inherit_old_objects() {
    let (admin, p) = setup("reborn").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    let bob = p.user("bob");
    p.grant("g", &[&ns], "read", json!([user(&bob)]), json!({})).await;
    until_allowed(&admin, &bob, &ns).await;
    let before =
        grant_reason(&p.grants(), "g", "Granted").await.status.unwrap().clients[0].role_binding.clone();
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &ns);
    links.delete("link", &DeleteParams::default()).await.unwrap();
    until_denied(&admin, &bob, &ns).await;
    until_gone(&links, "link", "the old link is gone", WAIT).await;
    p.link(&ns, "link", read_level("read"), json!({})).await;
    until_allowed(&admin, &bob, &ns).await;
    let after = eventually("the grant reports its new binding", WAIT, || {
        let (grants, before) = (p.grants(), before.clone());
        async move {
            let binding = grants.get("g").await.ok()?.status?.clients.first()?.role_binding.clone();
            (binding.is_some() && binding != before).then_some(binding)
        }
    })
    .await;
    assert_ne!(before, after, "binding names derive from the link's UID");
    let _ = CONFIGMAPS;
}

#[tokio::test]
async fn a_partner_admin_reaches_neither_another_partners_keys_nor_other_clients() {
    let (admin, p) = setup("mine").await;
    let other = PartnerFixture::create(&admin, "theirs").await;
    let (mine, theirs) = (p.client_namespace("c").await, other.client_namespace("c").await);
    p.link(&mine, "link", read_level("read"), json!({"accessKey": {"accessLevel": "read"}})).await;
    other.link(&theirs, "link", read_level("read"), json!({"accessKey": {"accessLevel": "read"}})).await;
    let (_, secret_ref) = link_with_key(&admin, &theirs, "link").await;
    let (secret_ns, secret_name) = secret_ref.split_once('/').unwrap();
    let my_admin = p.user("admin");
    until("my admin reads my grants", WAIT, || {
        can(&admin, &my_admin, &[], "list", res("liaison.dev", "accessgrants"), &p.home)
    })
    .await;
    let as_my_admin = client_as(&my_admin, &[]).await;
    let stolen = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(as_my_admin.clone(), secret_ns)
        .get(secret_name)
        .await;
    assert!(
        matches!(&stolen, Err(kube::Error::Api(s)) if s.code == 403),
        "another partner's key is out of reach: {stolen:?}"
    );
    assert!(
        !can(&admin, &my_admin, &[], "list", PODS, &theirs).await,
        "another client's data is out of reach"
    );
    assert!(
        !can(&admin, &my_admin, &[], "list", PODS, &mine).await,
        "the admin role itself grants no client access"
    );
    assert!(!can(&admin, &my_admin, &[], "create", res("liaison.dev", "accessgrants"), &other.home).await);
}

#[tokio::test]
async fn a_huge_spec_is_handled() {
    let (admin, p) = setup("huge").await;
    let ns = p.client_namespace("c").await;
    let levels: Vec<serde_json::Value> = (0..16)
        .map(|i| json!({"name": format!("level-{i}"), "rules": (0..32).map(|_| json!({"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list"]})).collect::<Vec<_>>()}))
        .collect();
    p.link(&ns, "link", json!(levels), json!({})).await;
    let subjects: Vec<serde_json::Value> = (0..256).map(|i| user(&p.user(&format!("u{i}")))).collect();
    p.grant("g", &[&ns], "level-15", json!(subjects), json!({})).await;
    grant_reason(&p.grants(), "g", "Granted").await;
    until_allowed(&admin, &p.user("u255"), &ns).await;
    assert!(!can(&admin, &p.user("u255"), &[], "delete", PODS, &ns).await);
}

/// The link stays and its key goes: the Secret, the account (its token with it) and the
/// account's access, while the partner's people keep theirs.
#[tokio::test]
async fn dropping_the_access_key_from_a_link_removes_its_secret_and_account() {
    use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
    let (admin, p) = setup("keydrop").await;
    let ns = p.client_namespace("c").await;
    p.link(&ns, "link", read_level("read"), json!({"accessKey": {"accessLevel": "read"}})).await;
    p.grant("g", &[&ns], "read", json!([user(&p.user("bob"))]), json!({})).await;
    let (link, secret_ref) = link_with_key(&admin, &ns, "link").await;
    let (secret_ns, secret_name) = secret_ref.split_once('/').unwrap();
    let key_account = liaison::desired::names::access_key(&link.metadata.uid.unwrap());
    // The key's account lives in the partner's home namespace.
    let key_user = service_account_user(&p.home, &key_account);
    let key_groups = service_account_groups(&p.home);
    let key_groups: Vec<&str> = key_groups.iter().map(String::as_str).collect();
    until("the key lists pods", WAIT, || can(&admin, &key_user, &key_groups, "list", PODS, &ns)).await;
    until_allowed(&admin, &p.user("bob"), &ns).await;

    p.link(&ns, "link", read_level("read"), json!({})).await;
    let (secrets, accounts) = (
        Api::<Secret>::namespaced(admin.clone(), secret_ns),
        Api::<ServiceAccount>::namespaced(admin.clone(), &p.home),
    );
    until("the key Secret and account are gone", WAIT, || async {
        secrets.get_opt(secret_name).await.unwrap().is_none()
            && accounts.get_opt(&key_account).await.unwrap().is_none()
    })
    .await;
    assert!(
        !can(&admin, &key_user, &key_groups, "list", PODS, &ns).await,
        "the key's account has no access left"
    );
    // Its status is written after the key went, from the same reconcile.
    let links = Api::<liaison::api::ClientLink>::namespaced(admin.clone(), &ns);
    until("the link no longer points at a key", WAIT, || async {
        links.get("link").await.unwrap().status.is_some_and(|s| s.access_key_secret.is_none())
    })
    .await;
    link_reason(&admin, &ns, "link", "Active").await;
    assert!(allowed(&admin, &p.user("bob"), &ns).await, "the partner's people keep their access");
}
