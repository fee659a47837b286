//! Attacks from where users really stand, against the operator running under the chart's own
//! RBAC (its ServiceAccount, `--service-account`, `--home-access-role`) and the chart's
//! admission policies, each attack by the actor named. Every answer about access is the API
//! server's own (SubjectAccessReview).

mod support;

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, ResourceQuota, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use liaison::api::{ClientLink, Partner};
use serde_json::{Value, json};
use support::fixtures::*;
use support::*;

const RELEASE_NAMESPACE: &str = "liaison-system";
const OPERATOR: &str = "system:serviceaccount:liaison-system:liaison";
const SECRETS: Res = res("", "secrets");

/// The chart installed (CRDs, RBAC, ceiling, admission policies; its Deployment has no node to
/// run on here), and the operator as a process that acts as the chart's ServiceAccount.
async fn operator_under_the_charts_rbac() -> &'static Operator {
    static OPERATOR_PROCESS: tokio::sync::OnceCell<&'static Operator> = tokio::sync::OnceCell::const_new();
    OPERATOR_PROCESS
        .get_or_init(|| async {
            let chart = path_of("charts/liaison").display().to_string();
            // The chart's webhook Service has no pod behind it here (no node): the operator
            // process serves the webhook, registered by URL below.
            let install = [
                "install",
                "liaison",
                &chart,
                "-n",
                RELEASE_NAMESPACE,
                "--create-namespace",
                "--set",
                "admissionWebhook.enabled=false",
            ];
            let (ok, text) = helm(&install);
            assert!(ok, "helm install: {text}");
            let admin = client().await;
            let cluster_roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(admin.clone());
            until("the ceiling is aggregated", WAIT, || {
                let cluster_roles = cluster_roles.clone();
                async move {
                    cluster_roles
                        .get("liaison-access-ceiling")
                        .await
                        .ok()
                        .and_then(|c| c.rules)
                        .is_some_and(|r| !r.is_empty())
                }
            })
            .await;
            let mut kubeconfig = Kubeconfig::read_from(kubeconfig_path()).expect("the admin kubeconfig");
            for user in &mut kubeconfig.auth_infos {
                let auth = user.auth_info.get_or_insert_default();
                auth.impersonate = Some(OPERATOR.into());
                auth.impersonate_groups = Some(service_account_groups(RELEASE_NAMESPACE));
            }
            let path = testenv().dir.join("operator-as-chart-sa.kubeconfig");
            std::fs::write(&path, serde_yaml::to_string(&kubeconfig).unwrap()).unwrap();
            let (port, certs) = (free_port(), testenv().dir.join("webhook-certs"));
            let ca = serving_certificate(&certs);
            let (addr, cert_dir) = (format!("127.0.0.1:{port}"), certs.display().to_string());
            let args = [
                "--service-account",
                "liaison",
                "--home-access-role",
                "liaison-home-access",
                "--lease-namespace",
                RELEASE_NAMESPACE,
                "--admission-addr",
                &addr,
                "--admission-cert-dir",
                &cert_dir,
            ];
            let operator: &'static Operator = Box::leak(Box::new(Operator::start_with(&path, &args)));
            operator.wait_ready().await;
            register_webhook(&admin, port, &ca).await;
            operator
        })
        .await
}

/// A CA and a serving certificate for 127.0.0.1 in `dir` (`tls.crt`, `tls.key`); returns the
/// CA's PEM.
fn serving_certificate(dir: &std::path::Path) -> Vec<u8> {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("running openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=webhook-ca",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "tls.key",
        "-out",
        "tls.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "tls.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    std::fs::read(dir.join("ca.crt")).unwrap()
}

/// Namespaces the webhook skips, for the test that needs the operator's own defence alone.
const WITHOUT_WEBHOOK: (&str, &str) = ("liaison-tests/without-webhook", "true");

/// The chart's webhook configuration, pointed at the operator process by URL.
async fn register_webhook(admin: &kube::Client, port: u16, ca: &[u8]) {
    use base64::Engine;
    let webhook = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "liaison-link-delegation"},
        "webhooks": [{
            "name": "delegation.clientlinks.liaison.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "timeoutSeconds": 10,
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/validate-clientlink"),
                             "caBundle": base64::engine::general_purpose::STANDARD.encode(ca)},
            "rules": [{"apiGroups": ["liaison.dev"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"], "resources": ["clientlinks"]}],
            "namespaceSelector": {"matchExpressions": [{"key": WITHOUT_WEBHOOK.0, "operator": "DoesNotExist"}]},
            "matchConditions": [{"name": "spec-changed", "expression": "request.operation == 'CREATE' || object.spec != oldObject.spec"}]
        }]
    });
    apply_yaml(admin, &serde_json::to_string(&webhook).unwrap()).await;
}

fn refusal<T: std::fmt::Debug>(result: &Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 || status.code == 422 => status.message.clone(),
        other => panic!("expected the API server to refuse, got {other:?}"),
    }
}

async fn eventually_denied(admin: &kube::Client, user: &str, verb: &str, what: Res<'_>, ns: &str, why: &str) {
    let (admin, user, verb, ns) = (admin.clone(), user.to_string(), verb.to_string(), ns.to_string());
    until(why, WAIT, || {
        let (admin, user, verb, ns) = (admin.clone(), user.clone(), verb.clone(), ns.clone());
        async move { !can(&admin, &user, &[], &verb, what, &ns).await }
    })
    .await;
}

async fn eventually_allowed(
    admin: &kube::Client,
    user: &str,
    verb: &str,
    what: Res<'_>,
    ns: &str,
    why: &str,
) {
    let (admin, user, verb, ns) = (admin.clone(), user.to_string(), verb.to_string(), ns.to_string());
    until(why, WAIT, || {
        let (admin, user, verb, ns) = (admin.clone(), user.clone(), verb.clone(), ns.clone());
        async move { can(&admin, &user, &[], &verb, what, &ns).await }
    })
    .await;
}

/// A level the API server would refuse is refused at admission; and a write the API server
/// refuses (here: every Role write in the namespace, by a policy) holds back no revocation.
#[tokio::test]
async fn a_refused_write_never_holds_back_a_revocation() {
    operator_under_the_charts_rbac().await;
    let admin = client().await;
    let partner = PartnerFixture::create(&admin, "failclosed").await;
    let ns = partner.client_namespace("fc").await;

    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &ns);
    let bad: ClientLink = serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "spec": {"partner": partner.name, "accessLevels": [{"name": "cm", "rules": [{"apiGroups": [], "resources": ["configmaps"], "verbs": ["get"]}]}]}
    }))
    .unwrap();
    let refused = links.create(&PostParams::default(), &bad).await;
    assert!(refusal(&refused).contains("at least one API group"), "{refused:?}");

    let levels = json!([
        {"name": "pods", "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
        {"name": "config", "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}
    ]);
    partner.link(&ns, "link", levels, json!({"accessKey": {"accessLevel": "pods"}})).await;
    let (bob, carol) = (partner.user("bob"), partner.user("carol"));
    partner.grant("bob-pods", &[&ns], "pods", json!([user(&bob)]), json!({})).await;
    partner.grant("carol-config", &[&ns], "config", json!([user(&carol)]), json!({})).await;
    eventually_allowed(&admin, &bob, "list", PODS, &ns, "bob lists pods").await;
    eventually_allowed(&admin, &carol, "list", res("", "configmaps"), &ns, "carol lists configmaps").await;
    let (_, key_secret) = link_with_key(&admin, &ns, "link").await;
    // The key's account lives in the partner's home namespace.
    let key_name =
        liaison::desired::names::access_key(&links.get("link").await.unwrap().metadata.uid.unwrap());
    let key_account = service_account_user(&partner.home, &key_name);
    eventually_allowed(&admin, &key_account, "list", PODS, &ns, "the access key lists pods").await;

    // From now on the API server refuses every Role write in the namespace.
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": format!("freeze-roles-{ns}")},
        "spec": {"failurePolicy": "Fail",
                 "matchConstraints": {"resourceRules": [{"apiGroups": ["rbac.authorization.k8s.io"], "apiVersions": ["v1"],
                                                          "operations": ["CREATE", "UPDATE"], "resources": ["roles"]}]},
                 "validations": [{"expression": "false", "message": "roles are frozen here"}]}
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": format!("freeze-roles-{ns}")},
        "spec": {"policyName": format!("freeze-roles-{ns}"), "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}}
    });
    apply_yaml(
        &admin,
        &format!(
            "{}\n---\n{}",
            serde_json::to_string(&policy).unwrap(),
            serde_json::to_string(&binding).unwrap()
        ),
    )
    .await;
    until("the freeze is in force", WAIT, || {
        let ns = ns.clone();
        async move {
            let (ok, _) = kubectl(&[
                "-n",
                &ns,
                "create",
                "role",
                "probe",
                "--verb=get",
                "--resource=pods",
                "--dry-run=server",
            ]);
            !ok
        }
    })
    .await;

    // The client widens one level (a Role write the API server now refuses) and, in the same
    // change, drops the other level and the access key.
    let levels = json!([{"name": "config", "rules": [{"apiGroups": [""], "resources": ["configmaps", "events"], "verbs": ["get", "list"]}]}]);
    let change = json!({"apiVersion": "liaison.dev/v1alpha1", "kind": "ClientLink", "metadata": {"name": "link", "namespace": ns},
                        "spec": {"partner": partner.name, "accessLevels": levels}});
    links
        .patch("link", &PatchParams::apply("liaison-tests").force(), &Patch::Apply(&change))
        .await
        .expect("the client's change");

    eventually_denied(
        &admin,
        &bob,
        "list",
        PODS,
        &ns,
        "bob's level is gone though another Role cannot be written",
    )
    .await;
    eventually_denied(
        &admin,
        &key_account,
        "list",
        PODS,
        &ns,
        "the access key is revoked though a Role cannot be written",
    )
    .await;
    let link = link_reason(&admin, &ns, "link", "ApplyFailed").await;
    let message = link
        .status
        .as_ref()
        .and_then(|s| liaison::api::ready_condition(&s.conditions))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("roles are frozen here"), "the link quotes the refusal: {message}");
    let bob_grant = grant_reason(&partner.grants(), "bob-pods", "LevelNotFound").await;
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &ns);
    let left =
        bindings.list(&ListParams::default().labels("liaison.dev/access-grant=bob-pods")).await.unwrap();
    assert!(left.items.is_empty(), "a grant says LevelNotFound only once its binding is gone: {bob_grant:?}");
    let (home, secret) = key_secret.split_once('/').unwrap();
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), home);
    until_gone(&secrets, secret, "the key Secret is removed", WAIT).await;
    assert!(
        can(&admin, &carol, &[], "list", res("", "configmaps"), &ns).await,
        "carol keeps the unchanged part of her level"
    );

    let (ok, text) = kubectl(&[
        "delete",
        "validatingadmissionpolicybinding,validatingadmissionpolicy",
        &format!("freeze-roles-{ns}"),
    ]);
    assert!(ok, "{text}");
    // The next retry (backing off up to 2 minutes) writes the widened level.
    until("the widened level once Roles may be written", Duration::from_secs(150), || {
        let (admin, carol, ns) = (admin.clone(), carol.clone(), ns.clone());
        async move { can(&admin, &carol, &[], "list", res("", "events"), &ns).await }
    })
    .await;
    link_reason(&admin, &ns, "link", "Active").await;
}

/// ClientLinks are namespace admins' (not `edit`'s), and a level naming a role needs `bind` on
/// it, as a RoleBinding would.
#[tokio::test]
async fn only_those_who_may_bind_a_role_delegate_it() {
    operator_under_the_charts_rbac().await;
    let admin = client().await;
    let partner = PartnerFixture::create(&admin, "holders").await;
    let ns = partner.client_namespace("holders").await;
    let bind = |user: &str, role: &str| {
        let (ok, text) = kubectl(&[
            "-n",
            &ns,
            "create",
            "rolebinding",
            &format!("{user}-{role}"),
            &format!("--clusterrole={role}"),
            &format!("--user={user}"),
        ]);
        assert!(ok, "{text}");
    };
    bind("eddie", "edit");
    bind("ada", "admin");
    let link = |levels: Value| -> ClientLink {
        serde_json::from_value(
            json!({"metadata": {"name": "link"}, "spec": {"partner": partner.name, "accessLevels": levels}}),
        )
        .unwrap()
    };
    let dry_run = PostParams { dry_run: true, ..Default::default() };

    let as_edit: Api<ClientLink> = Api::namespaced(client_as("eddie", &["system:authenticated"]).await, &ns);
    let refused = as_edit.create(&dry_run, &link(json!([{"name": "view", "clusterRole": "view"}]))).await;
    assert!(
        refusal(&refused).contains("cannot create resource \"clientlinks\""),
        "edit writes no link: {refused:?}"
    );

    let as_admin: Api<ClientLink> = Api::namespaced(client_as("ada", &["system:authenticated"]).await, &ns);
    let view = link(json!([{"name": "view", "clusterRole": "view"}]));
    let allowed = eventually("the admin may link view", WAIT, || {
        let (as_admin, view, dry_run) = (as_admin.clone(), view.clone(), dry_run.clone());
        async move { as_admin.create(&dry_run, &view).await.ok() }
    })
    .await;
    assert_eq!(allowed.spec.access_levels[0].cluster_role.as_deref(), Some("view"));
    let edit = as_admin.create(&dry_run, &link(json!([{"name": "edit", "clusterRole": "edit"}]))).await;
    assert!(refusal(&edit).contains("may not bind"), "no bind on edit: {edit:?}");

    // A user given ClientLink writes but nothing else delegates no role at all.
    let (ok, text) = kubectl(&[
        "-n",
        &ns,
        "create",
        "role",
        "linker",
        "--verb=create",
        "--resource=clientlinks.liaison.dev",
    ]);
    assert!(ok, "{text}");
    let (ok, text) =
        kubectl(&["-n", &ns, "create", "rolebinding", "lee-linker", "--role=linker", "--user=lee"]);
    assert!(ok, "{text}");
    let as_linker: Api<ClientLink> = Api::namespaced(client_as("lee", &["system:authenticated"]).await, &ns);
    let message = eventually("lee's link is judged by the policy", WAIT, || {
        let (as_linker, view, dry_run) = (as_linker.clone(), view.clone(), dry_run.clone());
        async move {
            match as_linker.create(&dry_run, &view).await {
                Err(kube::Error::Api(status)) if status.message.contains("may not bind") => {
                    Some(status.message)
                }
                _ => None,
            }
        }
    })
    .await;
    assert!(message.contains("bind"), "{message}");
}

/// A Partner cannot take an existing namespace (here with a Secret) as its home unless it asks
/// to adopt it and whoever administers namespaces consents (`liaison.dev/adoptable-by`); loose
/// user suffixes and system homes are refused at admission.
#[tokio::test]
async fn a_home_is_the_partners_or_it_is_refused() {
    operator_under_the_charts_rbac().await;
    let admin = client().await;
    let tenant = fresh_namespace(&admin, "tenant").await;
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "db"}, "stringData": {"password": "s3cret"}}))
            .unwrap();
    Api::<Secret>::namespaced(admin.clone(), &tenant).create(&PostParams::default(), &secret).await.unwrap();
    let name = unique("squatter");
    let alice = format!("alice@{name}.example");
    let partners: Api<Partner> = Api::all(admin.clone());
    let spec = |home: &str, suffix: &str| {
        json!({"apiVersion": "liaison.dev/v1alpha1", "kind": "Partner", "metadata": {"name": name},
               "spec": {"homeNamespace": home, "admins": [{"kind": "User", "name": alice}], "identities": {"userSuffixes": [suffix]}}})
    };
    let loose: Partner = serde_json::from_value(spec(&tenant, "example")).unwrap();
    assert!(refusal(&partners.create(&PostParams::default(), &loose).await).contains("a domain with a dot"));
    let system: Partner = serde_json::from_value(spec("kube-system", &format!("@{name}.example"))).unwrap();
    assert!(
        refusal(&partners.create(&PostParams::default(), &system).await).contains("never a partner's home")
    );

    apply::<Partner>(&partners, &spec(&tenant, &format!("@{name}.example"))).await;
    let refused = eventually("the squatting partner is refused", WAIT, || {
        let partners = partners.clone();
        let name = name.clone();
        async move {
            let partner = partners.get(&name).await.ok()?;
            let (status, reason) = ready_of(partner.status.as_ref().map(|s| &s.conditions[..]))?;
            (reason == "HomeNotOwned").then_some((status, partner))
        }
    })
    .await;
    assert_eq!(refused.0, "False");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !can(&admin, &alice, &[], "get", SECRETS, &tenant).await,
        "the partner's admin reads no tenant Secret"
    );
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let labels = namespaces.get(&tenant).await.unwrap().metadata.labels.unwrap_or_default();
    assert!(!labels.contains_key("liaison.dev/home-of-uid"), "the namespace is not marked: {labels:?}");

    // Nobody but the operator may mark a namespace as a home.
    let forged = namespaces
        .patch(
            &tenant,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"liaison.dev/home-of-uid": "x"}}})),
        )
        .await;
    assert!(refusal(&forged).contains("only the Liaison operator"), "{forged:?}");

    // The Partner asks to adopt it; whoever administers namespaces has not agreed: nothing.
    let mut adopting = spec(&tenant, &format!("@{name}.example"));
    adopting["spec"]["adoptExistingHome"] = json!(true);
    apply::<Partner>(&partners, &adopting).await;
    let consent = format!("kubectl label namespace {tenant} liaison.dev/adoptable-by={name}");
    let unconsented = eventually("the partner is told what consent is missing", WAIT, || {
        let (partners, name, consent) = (partners.clone(), name.clone(), consent.clone());
        async move {
            let partner = partners.get(&name).await.ok()?;
            let ready = partner.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
            let asked = !ready.message.contains("adoptExistingHome is not true");
            (ready.reason == "HomeNotOwned" && asked && ready.message.contains(&consent)).then_some(ready)
        }
    })
    .await;
    assert_eq!(unconsented.status, "False");
    assert!(unconsented.message.contains("has no liaison.dev/adoptable-by label"), "{}", unconsented.message);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!can(&admin, &alice, &[], "get", SECRETS, &tenant).await, "no Secret without the consent");
    let as_alice = client_as(&alice, &[]).await;
    let read = Api::<Secret>::namespaced(as_alice.clone(), &tenant).get("db").await;
    assert!(refusal(&read).contains("secrets"), "alice's own read is refused: {read:?}");
    let labels = namespaces.get(&tenant).await.unwrap().metadata.labels.unwrap_or_default();
    assert!(!labels.contains_key("liaison.dev/home-of-uid"), "the namespace is not marked: {labels:?}");

    // The platform admin consents: the partner adopts it, and its admin reads the Secret.
    let consented = namespaces
        .patch(
            &tenant,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"liaison.dev/adoptable-by": name}}})),
        )
        .await;
    assert!(consented.is_ok(), "{consented:?}");
    let adopted = eventually("the partner adopts its home", WAIT, || {
        let partners = partners.clone();
        let name = name.clone();
        async move {
            let partner = partners.get(&name).await.ok()?;
            let (_, reason) = ready_of(partner.status.as_ref().map(|s| &s.conditions[..]))?;
            (reason == "Active").then_some(partner)
        }
    })
    .await;
    assert_eq!(adopted.status.unwrap().home_adopted, Some(true));
    eventually_allowed(&admin, &alice, "get", SECRETS, &tenant, "an adopted home is the partner's").await;
    let read = Api::<Secret>::namespaced(as_alice, &tenant).get("db").await;
    assert!(read.is_ok(), "alice reads the adopted home's Secret: {read:?}");
    let (ok, events) = kubectl(&[
        "get",
        "events",
        "-A",
        "--field-selector",
        &format!("involvedObject.name={name},reason=HomeAdopted"),
        "-o",
        "name",
    ]);
    assert!(ok && !events.trim().is_empty(), "a HomeAdopted Event: {events}");
    let labels = namespaces.get(&tenant).await.unwrap().metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("liaison.dev/home-adopted").map(String::as_str), Some("true"));

    // A link in a home is refused at admission; the operator's own namespace is never a home.
    let stray: ClientLink = serde_json::from_value(
        json!({"metadata": {"name": "stray"}, "spec": {"partner": name, "accessLevels": [{"name": "v", "clusterRole": "view"}]}}),
    )
    .unwrap();
    let stray =
        Api::<ClientLink>::namespaced(admin.clone(), &tenant).create(&PostParams::default(), &stray).await;
    assert!(refusal(&stray).contains("a home holds no link"), "{stray:?}");
    let operators_home = unique("operators-home");
    let mut body = spec(RELEASE_NAMESPACE, &format!("@{name}.example"));
    body["metadata"]["name"] = json!(operators_home);
    body["spec"]["adoptExistingHome"] = json!(true);
    apply::<Partner>(&partners, &body).await;
    eventually("the operator's namespace is refused as a home", WAIT, || {
        let (partners, name) = (partners.clone(), operators_home.clone());
        async move {
            let partner = partners.get(&name).await.ok()?;
            let (_, reason) = ready_of(partner.status.as_ref().map(|s| &s.conditions[..]))?;
            (reason == "HomeRefused").then_some(())
        }
    })
    .await;
}

/// The operator's own credentials (stolen, or a bug) cannot adopt a tenant's namespace: the API
/// server refuses to mark an existing namespace as a home unless whoever administers it had
/// labelled it adoptable by the partner the mark names, a label the operator cannot write.
#[tokio::test]
async fn the_operator_marks_an_existing_namespace_only_with_its_administrators_consent() {
    operator_under_the_charts_rbac().await;
    let admin = client().await;
    let groups = service_account_groups(RELEASE_NAMESPACE);
    let operator = client_as(OPERATOR, &groups.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let (as_admin, as_operator) = (Api::<Namespace>::all(admin.clone()), Api::<Namespace>::all(operator));
    let labels = |labels: Value| Patch::Merge(json!({"metadata": {"labels": labels}}));
    // Liaison's mark of a home, as the operator writes it (desired::partner::plan).
    let mark = |partner: &str, adopted: &str| {
        json!({"app.kubernetes.io/managed-by": "liaison", "liaison.dev/home-of": partner,
               "liaison.dev/home-of-uid": format!("uid-of-{partner}"), "liaison.dev/home-adopted": adopted})
    };
    let patch = PatchParams::default();
    // Until the API server has loaded the policy, the operator may change a tenant's label (a
    // new value each time: a label it wrote before the policy was in force stays its to keep).
    let probe = fresh_namespace(&admin, "probe").await;
    until("the operator-bounds policy is in force", WAIT, || {
        let (namespaces, probe, relabel) =
            (as_operator.clone(), probe.clone(), labels(json!({"x": unique("y")})));
        async move { namespaces.patch(&probe, &PatchParams::default(), &relabel).await.is_err() }
    })
    .await;

    let tenant = fresh_namespace(&admin, "tenant").await;
    let (acme, other) = (unique("acme"), unique("other"));
    let unlabelled = as_operator.patch(&tenant, &patch, &labels(mark(&acme, "true"))).await;
    assert!(refusal(&unlabelled).contains("liaison.dev/adoptable-by"), "{unlabelled:?}");
    let consent = json!({"liaison.dev/adoptable-by": acme});
    let self_consent = as_operator.patch(&tenant, &patch, &labels(consent.clone())).await;
    assert!(refusal(&self_consent).contains("only its own labels"), "{self_consent:?}");
    let mut at_once = mark(&acme, "true");
    at_once["liaison.dev/adoptable-by"] = json!(acme);
    let at_once = as_operator.patch(&tenant, &patch, &labels(at_once)).await;
    refusal(&at_once);
    let labels_now = as_admin.get(&tenant).await.unwrap().metadata.labels.unwrap_or_default();
    assert!(!labels_now.contains_key("liaison.dev/home-of-uid"), "not marked: {labels_now:?}");
    assert!(!labels_now.contains_key("liaison.dev/adoptable-by"), "no consent forged: {labels_now:?}");

    // Whoever administers namespaces consents, for acme: the operator may mark it for acme only.
    as_admin.patch(&tenant, &patch, &labels(consent)).await.unwrap();
    let for_other = as_operator.patch(&tenant, &patch, &labels(mark(&other, "true"))).await;
    assert!(refusal(&for_other).contains("liaison.dev/adoptable-by"), "{for_other:?}");
    let unadopted = as_operator.patch(&tenant, &patch, &labels(mark(&acme, "false"))).await;
    assert!(refusal(&unadopted).contains("only when adopted"), "{unadopted:?}");
    let adopted = as_operator.patch(&tenant, &patch, &labels(mark(&acme, "true"))).await;
    let labels_now = adopted.expect("marked with consent").metadata.labels.unwrap_or_default();
    assert_eq!(labels_now.get("liaison.dev/home-of-uid"), Some(&format!("uid-of-{acme}")));
}

/// A client admin who removes Liaison's owner reference from a grant binding does not keep it:
/// put back at once, and removed with its grant.
#[tokio::test]
async fn a_detached_binding_is_put_back_and_removed_with_its_grant() {
    operator_under_the_charts_rbac().await;
    let admin = client().await;
    let BobGranted { partner, ns, bob } = PartnerFixture::with_bob_granted(&admin, "detach", json!({})).await;
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &ns);
    let name =
        bindings.list(&ListParams::default().labels("liaison.dev/access-grant=bob")).await.unwrap().items[0]
            .metadata
            .name
            .clone()
            .unwrap();
    bindings
        .patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"ownerReferences": null}})))
        .await
        .expect("the client admin detaches the binding");
    until("the owner reference is put back", WAIT, || {
        let (bindings, name) = (bindings.clone(), name.clone());
        async move {
            bindings
                .get(&name)
                .await
                .ok()
                .and_then(|b| b.metadata.owner_references)
                .is_some_and(|o| !o.is_empty())
        }
    })
    .await;
    bindings
        .patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"ownerReferences": null}})))
        .await
        .unwrap();
    partner.grants().delete("bob", &Default::default()).await.unwrap();
    eventually_denied(&admin, &bob, "list", PODS, &ns, "a detached binding goes with its grant").await;
}

/// Deleting a Partner completes under the chart's RBAC: every access and key goes, then the
/// Partner itself.
#[tokio::test]
async fn partner_deletion_completes_under_the_charts_rbac() {
    operator_under_the_charts_rbac().await;
    let admin = client().await;
    let BobGranted { partner, ns, bob } =
        PartnerFixture::with_bob_granted(&admin, "leaving", json!({"accessKey": {"accessLevel": "read"}}))
            .await;
    let (_, key_secret) = link_with_key(&admin, &ns, "link").await;
    let partners: Api<Partner> = Api::all(admin.clone());
    partners.delete(&partner.name, &Default::default()).await.unwrap();
    eventually_denied(&admin, &bob, "list", PODS, &ns, "bob's access goes with the partner").await;
    until_gone(&partners, &partner.name, "the Partner is gone", Duration::from_secs(60)).await;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    let keys =
        accounts.list(&ListParams::default().labels("liaison.dev/component=access-key")).await.unwrap();
    assert!(keys.items.is_empty(), "no access key account is left");
    let (home, secret) = key_secret.split_once('/').unwrap();
    until_gone(&Api::<Secret>::namespaced(admin.clone(), home), secret, "the key Secret is gone", WAIT).await;
}

/// A Partner deleted and created again under the same name (another organisation, perhaps)
/// revives none of the old links' access: each client accepts it again, or not.
#[tokio::test]
async fn a_partner_created_again_revives_nothing_until_the_client_accepts_it() {
    operator_under_the_charts_rbac().await;
    let admin = client().await;
    let BobGranted { partner, ns, bob } = PartnerFixture::with_bob_granted(&admin, "reborn", json!({})).await;
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &ns);
    let partners: Api<Partner> = Api::all(admin.clone());
    let first_uid = partners.get(&partner.name).await.unwrap().metadata.uid.unwrap();
    until("the link records the partner it accepted", WAIT, || {
        let (links, first_uid) = (links.clone(), first_uid.clone());
        async move { links.get("link").await.ok().and_then(|l| l.status?.partner_uid) == Some(first_uid) }
    })
    .await;

    partners.delete(&partner.name, &Default::default()).await.unwrap();
    until_gone(&partners, &partner.name, "the Partner is gone", Duration::from_secs(60)).await;
    eventually_denied(&admin, &bob, "list", PODS, &ns, "bob's access went with the partner").await;

    // Created again, its old home adopted with the platform admin's consent; the grant is
    // still there.
    let (ok, text) = kubectl(&[
        "label",
        "namespace",
        &partner.home,
        &format!("liaison.dev/adoptable-by={}", partner.name),
    ]);
    assert!(ok, "{text}");
    let again = json!({
        "apiVersion": "liaison.dev/v1alpha1", "kind": "Partner", "metadata": {"name": partner.name},
        "spec": {"homeNamespace": partner.home, "adoptExistingHome": true,
                 "identities": {"userSuffixes": [format!("@{}.example", partner.name)]},
                 "clientNamespaceSelector": {"matchLabels": {ALLOWED.0: ALLOWED.1}}}
    });
    let second_uid = apply::<Partner>(&partners, &again).await.metadata.uid.unwrap();
    let link = link_reason(&admin, &ns, "link", "PartnerReplaced").await;
    assert_eq!(
        link.status.and_then(|s| s.partner_uid),
        Some(first_uid),
        "the link keeps the partner it accepted"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!can(&admin, &bob, &[], "list", PODS, &ns).await, "the old grant revives nothing");

    // The client accepts the new Partner.
    let accept = json!({"spec": {"partnerUid": second_uid}});
    links.patch("link", &PatchParams::default(), &Patch::Merge(&accept)).await.unwrap();
    eventually_allowed(&admin, &bob, "list", PODS, &ns, "access once the client accepted the new partner")
        .await;
    link_reason(&admin, &ns, "link", "Active").await;
}

/// Whatever a client namespace grants all of its ServiceAccounts, the access key does not get:
/// its account lives in the partner's home. And its kubeconfig works, in the client namespace.
#[tokio::test]
async fn the_access_key_receives_nothing_but_its_level() {
    operator_under_the_charts_rbac().await;
    let admin = client().await;
    let partner = PartnerFixture::create(&admin, "keyonly").await;
    let ns = partner.client_namespace("keyonly").await;
    // The client lets every ServiceAccount of its namespace read its Secrets (a CI robot's
    // convenience, say).
    let (ok, text) =
        kubectl(&["-n", &ns, "create", "role", "robots", "--verb=get,list", "--resource=secrets"]);
    assert!(ok, "{text}");
    let (ok, text) = kubectl(&[
        "-n",
        &ns,
        "create",
        "rolebinding",
        "robots",
        "--role=robots",
        &format!("--group=system:serviceaccounts:{ns}"),
    ]);
    assert!(ok, "{text}");
    partner.link(&ns, "link", read_level("read"), json!({"accessKey": {"accessLevel": "read"}})).await;
    let (_, key_secret) = link_with_key(&admin, &ns, "link").await;
    let (home, secret) = key_secret.split_once('/').unwrap();
    let kubeconfig = eventually("the key Secret holds a kubeconfig", WAIT, || {
        let (secrets, secret) = (Api::<Secret>::namespaced(admin.clone(), home), secret.to_string());
        async move {
            secrets
                .get_opt(&secret)
                .await
                .ok()??
                .data?
                .get("kubeconfig")
                .map(|b| String::from_utf8(b.0.clone()).unwrap())
        }
    })
    .await;
    let parsed = Kubeconfig::from_yaml(&kubeconfig).expect("the access key is a kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(parsed.clone(), &Default::default()).await.unwrap();
    let key = kube::Client::try_from(config).unwrap();
    let pods = eventually("the key lists pods in the client namespace", WAIT, || {
        let (key, ns) = (key.clone(), ns.clone());
        async move {
            Api::<k8s_openapi::api::core::v1::Pod>::namespaced(key, &ns)
                .list(&ListParams::default())
                .await
                .ok()
        }
    })
    .await;
    assert!(pods.items.is_empty());
    let secrets = Api::<Secret>::namespaced(key.clone(), &ns).list(&ListParams::default()).await;
    assert!(
        matches!(&secrets, Err(kube::Error::Api(s)) if s.code == 403),
        "the key reads no Secret of the client: {secrets:?}"
    );
    let context = parsed.contexts[0].context.as_ref().unwrap();
    assert_eq!(context.namespace.as_deref(), Some(ns.as_str()), "its kubeconfig points at the client");
}

/// A client admin's largest admitted level (every list of its rules at the schema's maximum)
/// is judged without expanding it into its millions of atoms: refused with a count, and the
/// operator stays far below the chart's memory limit.
#[tokio::test]
async fn the_largest_admitted_level_cannot_exhaust_the_operators_memory() {
    let operator = operator_under_the_charts_rbac().await;
    let admin = client().await;
    let partner = PartnerFixture::create(&admin, "huge").await;
    // The webhook refuses such a link (too many permissions to check against its author): the
    // operator's own judgement is what is tested here, as in a cluster without the webhook.
    let ns = fresh_namespace_with(&admin, "huge", &[ALLOWED, WITHOUT_WEBHOOK]).await;
    let many = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();
    let rule = json!({"apiGroups": many("g", 16), "resources": many("r", 32), "verbs": many("v", 16), "resourceNames": many("n", 64)});
    let levels: Vec<Value> =
        (0..4).map(|i| json!({"name": format!("huge{i}"), "rules": vec![rule.clone(); 4]})).collect();
    partner.link(&ns, "link", json!(levels), json!({})).await;
    let link = link_reason(&admin, &ns, "link", "EscalationDenied").await;
    let message = link
        .status
        .as_ref()
        .and_then(|s| liaison::api::ready_condition(&s.conditions))
        .map(|c| c.message.clone())
        .unwrap();
    assert!(message.contains("and 2097147 more"), "4 rules of 524,288 atoms each, five shown: {message}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", operator.pid())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    assert!(
        peak_kib < 128 * 1024,
        "the operator's peak RSS stays far below the chart's 256 MiB limit: {peak_kib} KiB"
    );
}

/// Only holders delegate: a link's author must hold, in its namespace, every permission its
/// inline levels grant (the operator's webhook asks the API server's authorizer as the author).
#[tokio::test]
async fn only_holders_delegate_inline_levels() {
    operator_under_the_charts_rbac().await;
    let admin = client().await;
    let partner = PartnerFixture::create(&admin, "inline").await;
    let ns = partner.client_namespace("inline").await;
    let grant_to = |user: &str, rules: &[(&str, &str)]| {
        for (i, (verbs, resource)) in rules.iter().enumerate() {
            let name = format!("{user}-{i}");
            let (ok, text) = kubectl(&[
                "-n",
                &ns,
                "create",
                "role",
                &name,
                &format!("--verb={verbs}"),
                &format!("--resource={resource}"),
            ]);
            assert!(ok, "{text}");
            let (ok, text) = kubectl(&[
                "-n",
                &ns,
                "create",
                "rolebinding",
                &name,
                &format!("--role={name}"),
                &format!("--user={user}"),
            ]);
            assert!(ok, "{text}");
        }
    };
    let links_write = ("create,update,patch,get", "clientlinks.liaison.dev");
    grant_to("cam", &[links_write, ("get,list", "configmaps")]);
    grant_to("ada", &[links_write, ("get,list", "configmaps"), ("get,list", "secrets")]);
    let level = |resources: &[&str], verbs: &[&str]| json!([{"name": "settings", "rules": [{"apiGroups": [""], "resources": resources, "verbs": verbs}]}]);
    let link = |levels: Value| -> ClientLink {
        serde_json::from_value(
            json!({"metadata": {"name": "link"}, "spec": {"partner": partner.name, "accessLevels": levels}}),
        )
        .unwrap()
    };
    let dry_run = PostParams { dry_run: true, ..Default::default() };
    let as_cam: Api<ClientLink> = Api::namespaced(client_as("cam", &["system:authenticated"]).await, &ns);

    let held = eventually("cam may delegate what cam holds", WAIT, || {
        let (as_cam, dry_run, body) =
            (as_cam.clone(), dry_run.clone(), link(level(&["configmaps"], &["get", "list"])));
        async move { as_cam.create(&dry_run, &body).await.ok() }
    })
    .await;
    assert_eq!(held.spec.access_levels[0].name, "settings");
    let refused = as_cam.create(&dry_run, &link(level(&["configmaps", "secrets"], &["get", "list"]))).await;
    let message = refusal(&refused);
    assert!(message.contains("you may not delegate what you may not do yourself"), "{message}");
    assert!(
        message.contains("get secrets.core") && message.contains("list secrets.core"),
        "names what cam lacks: {message}"
    );
    assert!(!message.contains("configmaps"), "and only that: {message}");
    let watch = as_cam.create(&dry_run, &link(level(&["configmaps"], &["watch"]))).await;
    assert!(refusal(&watch).contains("watch configmaps.core"), "{watch:?}");

    // Whoever holds it may delegate it (the ceiling is the operator's second line).
    let as_ada: Api<ClientLink> = Api::namespaced(client_as("ada", &["system:authenticated"]).await, &ns);
    as_ada
        .create(&dry_run, &link(level(&["configmaps", "secrets"], &["get", "list"])))
        .await
        .expect("ada holds secrets");

    // A change is judged as its own author, not as whoever created the link.
    as_cam.create(&PostParams::default(), &link(level(&["configmaps"], &["get"]))).await.expect("cam's link");
    let widen = json!({"spec": {"accessLevels": level(&["configmaps", "secrets"], &["get"])}});
    let widened = as_cam.patch("link", &PatchParams::default(), &Patch::Merge(&widen)).await;
    assert!(refusal(&widened).contains("get secrets.core"), "{widened:?}");
    as_ada.patch("link", &PatchParams::default(), &Patch::Merge(&widen)).await.expect("ada may widen it");
    // The operator's own writes (its finalizer, the status) pass: the link gets its verdict.
    link_reason(&admin, &ns, "link", "EscalationDenied").await;

    // A link too large to judge is refused, not judged in part.
    let many = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();
    let huge = json!([{"name": "huge", "rules": [{"apiGroups": many("g", 4), "resources": many("r", 32), "verbs": many("v", 8)}]}]);
    let too_large = as_ada.create(&dry_run, &link(huge)).await;
    assert!(refusal(&too_large).contains("more than the 512"), "{too_large:?}");
}

/// The operator's own credentials (stolen, or a bug) reach no further than what Liaison makes:
/// acting as its ServiceAccount, with the chart installed, the API server refuses every step
/// beyond the ceiling and outside partner homes, while the operator keeps doing its work.
#[tokio::test]
async fn the_operators_own_credentials_reach_no_further_than_liaison() {
    operator_under_the_charts_rbac().await;
    let admin = client().await;
    let partner = PartnerFixture::create(&admin, "bounded").await;
    let ns = partner.client_namespace("bounded").await;
    partner.link(&ns, "link", read_level("read"), json!({"accessKey": {"accessLevel": "read"}})).await;
    let bob = partner.user("bob");
    partner.grant("bob", &[&ns], "read", json!([user(&bob)]), json!({})).await;
    eventually_allowed(&admin, &bob, "list", PODS, &ns, "the operator still grants under its bounds").await;
    link_with_key(&admin, &ns, "link").await;
    let policy = kubectl(&[
        "get",
        "validatingadmissionpolicy",
        "liaison-operator-bounds",
        "-o",
        "jsonpath={.status.typeChecking}",
    ]);
    assert!(policy.0 && !policy.1.contains("warning"), "the policy type-checks: {}", policy.1);

    let operator = client_as(
        OPERATOR,
        &service_account_groups(RELEASE_NAMESPACE).iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let home_access = |name: &str| -> RoleBinding {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": liaisons("operator-access")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "liaison-home-access"},
            "subjects": [{"kind": "ServiceAccount", "name": "liaison", "namespace": RELEASE_NAMESPACE}]
        }))
        .unwrap()
    };
    let create = PostParams::default();
    let bind_in = |namespace: &str| Api::<RoleBinding>::namespaced(operator.clone(), namespace);
    // Secrets and tokens: the home-access role is bound in a marked home, nowhere else.
    let system = bind_in("kube-system").create(&create, &home_access("liaison-operator")).await;
    assert!(refusal(&system).contains("no rolebindings in namespace kube-system"), "{system:?}");
    let client_ns = bind_in(&ns).create(&create, &home_access("liaison-operator")).await;
    assert!(refusal(&client_ns).contains("not marked"), "{client_ns:?}");
    let other_name = bind_in(&partner.home).create(&create, &home_access("liaison-extra")).await;
    assert!(refusal(&other_name).contains("only under its own names"), "{other_name:?}");
    let mut to_mallory = home_access("liaison-operator");
    to_mallory.subjects = Some(vec![
        serde_json::from_value(
            json!({"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}),
        )
        .unwrap(),
    ]);
    let to_mallory = bind_in(&partner.home).create(&create, &to_mallory).await;
    assert!(refusal(&to_mallory).contains("only to itself"), "{to_mallory:?}");
    // The partner's suite (its admins read the access keys) is bound to its admins only.
    let suite = Api::<RoleBinding>::namespaced(admin.clone(), &partner.home)
        .get("liaison-partner-admin")
        .await
        .unwrap();
    let mut widened = suite.clone();
    widened.metadata = kube::api::ObjectMeta {
        name: suite.metadata.name.clone(),
        labels: suite.metadata.labels.clone(),
        ..Default::default()
    };
    widened.subjects.get_or_insert_default().push(
        serde_json::from_value(
            json!({"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}),
        )
        .unwrap(),
    );
    let widened = bind_in(&partner.home)
        .patch("liaison-partner-admin", &PatchParams::apply("mallory").force(), &Patch::Apply(&widened))
        .await;
    assert!(
        refusal(&widened).contains("only to the people its Partner names, not User mallory"),
        "{widened:?}"
    );
    let cluster_wide: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "liaison-partner-everywhere"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "liaison-home-access"},
        "subjects": [{"kind": "ServiceAccount", "name": "liaison", "namespace": RELEASE_NAMESPACE}]
    }))
    .unwrap();
    let cluster_wide = Api::<ClusterRoleBinding>::all(operator.clone()).create(&create, &cluster_wide).await;
    assert!(refusal(&cluster_wide).contains("only the ClusterRole of the same name"), "{cluster_wide:?}");
    let accounts = Api::<ServiceAccount>::namespaced(admin.clone(), &ns);
    accounts.create(&create, &robot_named("robot")).await.unwrap();
    let request = TokenRequest { spec: Default::default(), ..Default::default() };
    let token = Api::<ServiceAccount>::namespaced(operator.clone(), &ns)
        .create_token_request("robot", &create, &request)
        .await;
    assert!(refusal(&token).contains("serviceaccounts/token"), "no token outside homes: {token:?}");
    let secrets = Api::<Secret>::namespaced(operator.clone(), &ns).list(&ListParams::default()).await;
    assert!(refusal(&secrets).contains("secrets"), "no Secret outside homes: {secrets:?}");
    let account = Api::<ServiceAccount>::namespaced(operator.clone(), &ns)
        .create(&create, &robot_named("liaison-robot"))
        .await;
    assert!(refusal(&account).contains("only in a partner's home"), "{account:?}");

    // Roles: only its own names, nothing of what it holds beyond the ceiling.
    let roles = Api::<Role>::namespaced(operator.clone(), &ns);
    let role = |name: &str, group: &str, resource: &str, verb: &str| -> Role {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": liaisons("level-role")},
            "rules": [{"apiGroups": [group], "resources": [resource], "verbs": [verb]}]
        }))
        .unwrap()
    };
    for (group, resource, verb) in [
        ("rbac.authorization.k8s.io", "rolebindings", "create"),
        ("", "serviceaccounts", "create"),
        ("liaison.dev", "clientlinks", "patch"),
    ] {
        let beyond = roles.create(&create, &role("liaison-beyond", group, resource, verb)).await;
        assert!(refusal(&beyond).contains("beyond the access ceiling"), "{resource} {verb}: {beyond:?}");
    }
    let secrets_role = roles.create(&create, &role("liaison-secrets", "", "secrets", "get")).await;
    assert!(
        refusal(&secrets_role).contains("not currently held"),
        "RBAC: it holds no Secrets here: {secrets_role:?}"
    );
    let unnamed = roles.create(&create, &role("pods-reader", "", "pods", "list")).await;
    assert!(refusal(&unnamed).contains("liaison-*"), "{unnamed:?}");
    // (Unlabelled: a labelled one is refused by the operator-links policy first, kube-system
    // holding no link.)
    let mut unlabelled = role("liaison-x", "", "pods", "list");
    unlabelled.metadata.labels = None;
    let in_system =
        Api::<Role>::namespaced(operator.clone(), "kube-system").create(&create, &unlabelled).await;
    assert!(refusal(&in_system).contains("kube-system"), "{in_system:?}");
    let (ok, text) =
        kubectl(&["-n", &ns, "create", "rolebinding", "tenant", "--clusterrole=view", "--user=carol"]);
    assert!(ok, "{text}");
    let removed =
        Api::<RoleBinding>::namespaced(operator.clone(), &ns).delete("tenant", &Default::default()).await;
    assert!(
        refusal(&removed).contains("liaison-*"),
        "a tenant's binding is not the operator's to delete: {removed:?}"
    );
    let to_view: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "liaison-view", "labels": liaisons("grant-binding")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .unwrap();
    let to_view = bind_in(&ns).create(&create, &to_view).await;
    assert!(refusal(&to_view).contains("binds only its own Roles"), "{to_view:?}");
    // Level Roles and grant bindings exist only where a ClientLink is.
    let unlinked = fresh_namespace(&admin, "unlinked").await;
    let level = Api::<Role>::namespaced(operator.clone(), &unlinked)
        .create(&create, &role("liaison-level", "", "pods", "list"))
        .await;
    assert!(refusal(&level).contains("no params found"), "no level Role where no link is: {level:?}");
    let mut posing = role("liaison-x", "", "pods", "list");
    posing.metadata.labels = serde_json::from_value(liaisons("partner-observer")).unwrap();
    let posing = Api::<Role>::namespaced(operator.clone(), &unlinked).create(&create, &posing).await;
    assert!(
        refusal(&posing).contains("only under its own names"),
        "a level Role posing as a partner's suite: {posing:?}"
    );
    let unlabelled_here = roles.create(&create, &unlabelled).await;
    assert!(refusal(&unlabelled_here).contains("labels what it writes"), "{unlabelled_here:?}");
    Api::<Role>::namespaced(admin.clone(), &unlinked).create(&create, &unlabelled).await.unwrap();
    let grant_binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "liaison-binding", "labels": liaisons("grant-binding")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "liaison-x"},
        "subjects": [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .unwrap();
    let grant_binding = bind_in(&unlinked).create(&create, &grant_binding).await;
    assert!(
        refusal(&grant_binding).contains("no params found"),
        "no grant binding where no link is: {grant_binding:?}"
    );

    // Cluster-wide: a partner's view of its own Partner, nothing else.
    let cluster_roles = Api::<ClusterRole>::all(operator.clone());
    let wide: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "liaison-partner-wide"},
        "rules": [{"apiGroups": ["liaison.dev"], "resources": ["clientlinks"], "verbs": ["list"]}]
    }))
    .unwrap();
    assert!(refusal(&cluster_roles.create(&create, &wide).await).contains("more than reading one Partner"));
    let ceiling = cluster_roles.delete("liaison-access-ceiling", &Default::default()).await;
    assert!(refusal(&ceiling).contains("no cluster-wide"), "{ceiling:?}");

    // Namespaces: no system one; an existing one is marked as a home only when adopted, and
    // keeps every label that is not Liaison's.
    let namespaces = Api::<Namespace>::all(operator.clone());
    let label = |key: &str, value: &str| Patch::Merge(json!({"metadata": {"labels": {key: value}}}));
    let marked =
        namespaces.patch(&ns, &PatchParams::default(), &label("liaison.dev/home-of-uid", "forged")).await;
    assert!(refusal(&marked).contains("only when adopted"), "{marked:?}");
    let relabelled = namespaces.patch(&ns, &PatchParams::default(), &label(ALLOWED.0, "false")).await;
    assert!(refusal(&relabelled).contains("only its own labels"), "{relabelled:?}");
    let system_ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "kube-liaison"}})).unwrap();
    assert!(refusal(&namespaces.create(&create, &system_ns).await).contains("no system namespace"));

    // Liaison's own objects: finalizers and status, never a new spec.
    let partners = Api::<Partner>::all(operator.clone());
    let respecified = partners
        .patch(
            &partner.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"adoptExistingHome": true}})),
        )
        .await;
    assert!(refusal(&respecified).contains("never creates, deletes or respecifies"), "{respecified:?}");

    // And nothing of this stopped Liaison's own work: the grant still holds, revocation works.
    assert!(can(&admin, &bob, &[], "list", PODS, &ns).await);
    partner.grants().delete("bob", &Default::default()).await.unwrap();
    eventually_denied(&admin, &bob, "list", PODS, &ns, "revocation works under the bounds").await;
}

/// The labels Liaison puts on what it makes, as the operator-bounds policy asks of its writes.
fn liaisons(component: &str) -> Value {
    json!({"app.kubernetes.io/managed-by": "liaison", "liaison.dev/component": component})
}

fn robot_named(name: &str) -> ServiceAccount {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

/// A partner cannot take a client's RoleBinding quota unnoticed: the link puts at most
/// `maxGrants` of its grants in force (the oldest), refuses the others with a reason on the
/// grant, counts them on its status and says so in an Event; and a write a ResourceQuota
/// refuses is reported by the link, quoting the quota.
#[tokio::test]
async fn a_partners_grants_cannot_take_the_clients_quota_unnoticed() {
    operator_under_the_charts_rbac().await;
    let admin = client().await;
    let partner = PartnerFixture::create(&admin, "quota").await;
    let ns = partner.client_namespace("quota").await;
    partner.link(&ns, "link", read_level("read"), json!({"maxGrants": 2})).await;
    let people: Vec<String> = (1..=4).map(|n| partner.user(&format!("user{n}"))).collect();
    for (n, person) in people.iter().enumerate() {
        partner.grant(&format!("g{}", n + 1), &[&ns], "read", json!([user(person)]), json!({})).await;
        // Distinct creation seconds: the oldest are admitted.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    for person in &people[..2] {
        eventually_allowed(&admin, person, "list", PODS, &ns, "the two oldest grants are in force").await;
    }
    for name in ["g3", "g4"] {
        let refused = grant_reason(&partner.grants(), name, "GrantLimitReached").await;
        let message =
            refused.status.unwrap().conditions.into_iter().find(|c| c.type_ == "Ready").unwrap().message;
        assert!(message.contains("at most 2 grants"), "{message}");
    }
    for person in &people[2..] {
        assert!(!can(&admin, person, &[], "list", PODS, &ns).await, "{person} is beyond the link's limit");
    }
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &ns);
    let status = eventually("the link counts what it refused", WAIT, || {
        let links = links.clone();
        async move { links.get("link").await.ok()?.status.filter(|s| s.grants_over_limit == Some(2)) }
    })
    .await;
    assert_eq!((status.grant_limit, status.grant_count), (Some(2), 2));
    assert_eq!(ready_of(Some(&status.conditions)).unwrap().1, "Active", "the link itself works");
    let (ok, events) =
        kubectl(&["-n", &ns, "get", "events", "--field-selector", "reason=GrantLimitReached", "-o", "name"]);
    assert!(ok && !events.trim().is_empty(), "a GrantLimitReached Event on the link: {events}");

    // The client's own quota on RoleBindings, full: raising the limit writes nothing more, and
    // the link says why, quoting the quota. (No quota controller runs here: its status is set
    // as the controller would.)
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "bindings", "namespace": ns},
                       "spec": {"hard": {"count/rolebindings.rbac.authorization.k8s.io": "2"}}});
    let quotas: Api<ResourceQuota> = Api::namespaced(admin.clone(), &ns);
    apply(&quotas, &quota).await;
    let used = json!({"status": {"hard": {"count/rolebindings.rbac.authorization.k8s.io": "2"},
                                 "used": {"count/rolebindings.rbac.authorization.k8s.io": "2"}}});
    quotas.patch_status("bindings", &PatchParams::default(), &Patch::Merge(used)).await.unwrap();
    links
        .patch("link", &PatchParams::default(), &Patch::Merge(json!({"spec": {"maxGrants": 4}})))
        .await
        .unwrap();
    let failed = link_reason(&admin, &ns, "link", "ApplyFailed").await;
    let message = failed.status.unwrap().conditions.into_iter().find(|c| c.type_ == "Ready").unwrap().message;
    assert!(message.contains("exceeded quota: bindings"), "the link quotes the quota: {message}");
    let pending = grant_reason(&partner.grants(), "g3", "Pending").await;
    let message =
        pending.status.unwrap().conditions.into_iter().find(|c| c.type_ == "Ready").unwrap().message;
    assert!(message.contains("reports ApplyFailed"), "the grant points at the link: {message}");
    for person in &people[..2] {
        assert!(can(&admin, person, &[], "list", PODS, &ns).await, "the grants in force keep working");
    }
    assert!(!can(&admin, &people[2], &[], "list", PODS, &ns).await);
}
