//! The Helm chart: it lints, renders what platform teams expect, installs and upgrades on a
//! real control plane, and its RBAC is least privilege as the API server itself judges it.

mod support;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use liaison::api::{AccessGrant, Partner};
use serde_json::{Value, json};
use support::*;

fn chart() -> String {
    path_of("charts/liaison").display().to_string()
}

fn render(extra: &[&str]) -> Vec<Value> {
    let chart = chart();
    let mut args =
        vec!["template", "liaison", chart.as_str(), "-n", "liaison-system", "--kube-version", "1.35.4"];
    args.extend(extra);
    let (ok, text) = helm(&args);
    assert!(ok, "helm template failed: {text}");
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|doc| serde::Deserialize::deserialize(doc).ok())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("the chart renders no {kind} {name}"))
}

#[test]
fn the_chart_lints() {
    let (ok, text) = helm(&["lint", &chart(), "--kube-version", "1.35.4"]);
    assert!(ok, "{text}");
}

#[test]
fn the_chart_renders_a_hardened_deployment_and_least_privilege_rbac() {
    let objects = render(&[]);
    let deployment = find(&objects, "Deployment", "liaison");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(container["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert!(container["args"].as_array().unwrap().iter().any(|a| a == "--leader-election"));

    let operator = find(&objects, "ClusterRole", "liaison");
    for rule in operator["rules"].as_array().unwrap() {
        for field in ["apiGroups", "resources", "verbs"] {
            assert!(!rule[field].as_array().unwrap().iter().any(|v| v == "*"), "no wildcard in {rule}");
        }
        let verbs = rule["verbs"].as_array().unwrap();
        for verb in ["escalate", "impersonate"] {
            assert!(!verbs.iter().any(|v| v == verb), "no {verb} in {rule}");
        }
        if verbs.iter().any(|v| v == "bind") {
            assert_eq!(
                rule["resourceNames"],
                json!(["liaison-home-access"]),
                "bind only the home-access role: {rule}"
            );
        }
        assert!(
            !rule["resources"].as_array().unwrap().iter().any(|r| r == "secrets"),
            "no cluster-wide Secret access: {rule}"
        );
        let mints = rule["resources"].as_array().unwrap().iter().any(|r| r == "serviceaccounts/token");
        assert!(
            !mints,
            "no token for any ServiceAccount anywhere (kube-system's): only in partner homes: {rule}"
        );
    }
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "CustomResourceDefinition").count(),
        liaison::api::crds().len()
    );
    assert!(!kinds.contains(&"PodDisruptionBudget"), "no PDB that would block drains of a single replica");

    // The ceiling the chart installs is the one the operator's own code describes.
    let ceiling: ClusterRole =
        serde_json::from_value(find(&objects, "ClusterRole", "liaison-access-ceiling").clone()).unwrap();
    let expected = liaison::ceiling::cluster_role("liaison-access-ceiling");
    assert_eq!(ceiling.aggregation_rule, expected.aggregation_rule);
}

#[test]
fn values_switch_parts_on_and_off() {
    let objects = render(&[
        "--set",
        "crds.install=false",
        "--set",
        "replicaCount=2",
        "--set",
        "metrics.serviceMonitor.enabled=true",
    ]);
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert!(!kinds.contains(&"CustomResourceDefinition"));
    assert!(kinds.contains(&"PodDisruptionBudget"));
    assert!(kinds.contains(&"ServiceMonitor"));
    assert!(
        kinds.contains(&"ValidatingAdmissionPolicy") && kinds.contains(&"ValidatingAdmissionPolicyBinding"),
        "on by default"
    );
    let without = render(&["--set", "admissionPolicies.enabled=false"]);
    let policies: Vec<&str> = without
        .iter()
        .filter(|o| o["kind"] == "ValidatingAdmissionPolicy")
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        policies,
        ["liaison-operator-bounds", "liaison-operator-links", "liaison-operator-suites"],
        "the operator's own bounds stay on"
    );
    let chart = chart();
    let (ok, text) = helm(&[
        "template",
        "liaison",
        &chart,
        "--kube-version",
        "1.35.4",
        "--set",
        "controller.logFormat=xml",
    ]);
    assert!(!ok && text.contains("logFormat"), "values.schema.json refuses bad values: {text}");
}

#[tokio::test]
async fn install_and_upgrade_on_a_real_cluster_with_least_privilege() {
    let admin = client().await;
    let chart = chart();
    let (ok, text) = helm(&["install", "liaison", &chart, "-n", "liaison-system", "--create-namespace"]);
    assert!(ok, "helm install: {text}");
    let (ok, text) = helm(&[
        "upgrade",
        "liaison",
        &chart,
        "-n",
        "liaison-system",
        "--set",
        "replicaCount=2",
        "--set",
        "controller.concurrency=4",
    ]);
    assert!(ok, "helm upgrade: {text}");
    let (ok, text) = kubectl(&[
        "get",
        "crd",
        "clientlinks.liaison.dev",
        "partners.liaison.dev",
        "accessgrants.liaison.dev",
    ]);
    assert!(ok, "{text}");
    let (ok, text) =
        kubectl(&["-n", "liaison-system", "get", "deployment/liaison", "-o", "jsonpath={.spec.replicas}"]);
    assert!(ok && text == "2", "the upgrade applied: {text}");

    // Wait for the ceiling to be aggregated from `view`.
    let cluster_roles: Api<ClusterRole> = Api::all(admin.clone());
    until("the ceiling is aggregated", std::time::Duration::from_secs(30), || {
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

    // Act as the operator's ServiceAccount: what the chart grants it is what it can do.
    let operator = client_as(
        "system:serviceaccount:liaison-system:liaison",
        &["system:serviceaccounts", "system:serviceaccounts:liaison-system", "system:authenticated"],
    )
    .await;
    let ns = fresh_namespace(&admin, "privilege").await;
    // A home is a namespace the operator marks (here: creates marked); a partner's suite lives
    // there, labelled as Liaison's (the chart's operator-bounds policy asks for both).
    let home = unique("privilege-home");
    let marked: Namespace = serde_json::from_value(
        json!({"metadata": {"name": home, "labels": {"liaison.dev/home-of-uid": "some-partner-uid"}}}),
    )
    .unwrap();
    let home_roles: Api<Role> = Api::namespaced(operator.clone(), &home);
    let labels = |component: &str| json!({"app.kubernetes.io/managed-by": "liaison", "liaison.dev/component": component});
    let role = |name: &str, component: &str, resource: &str, verb: &str| -> Role {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels(component)},
            "rules": [{"apiGroups": [""], "resources": [resource], "verbs": [verb]}]
        }))
        .unwrap()
    };
    // The policy is enforced once the API server has loaded it.
    until("the operator-bounds policy is in force", std::time::Duration::from_secs(30), || {
        let (namespaces, marked) = (Api::<Namespace>::all(operator.clone()), marked.clone());
        async move { namespaces.create(&PostParams::default(), &marked).await.is_ok() }
    })
    .await;
    // Refused by the policy itself: before the policy is loaded the first try creates the Role,
    // and the next one's "already exists" said nothing about the policy (CI once went on with
    // the policy not yet in force).
    until("the operator-bounds policy is in force", std::time::Duration::from_secs(30), || {
        let (roles, unnamed) = (home_roles.clone(), role("unnamed", "partner-observer", "pods", "list"));
        async move {
            let refused = roles.create(&PostParams::default(), &unnamed).await;
            matches!(refused, Err(kube::Error::Api(s)) if s.message.contains("writes only its own"))
        }
    })
    .await;
    home_roles
        .create(&PostParams::default(), &role("liaison-partner-observer", "partner-observer", "pods", "list"))
        .await
        .expect("a Role within the ceiling");
    let mut partner_admin = role("liaison-partner-admin", "partner-admin", "pods", "list");
    partner_admin.rules = Some(liaison::desired::partner::admin_rules());
    // In a home namespace the operator first binds itself to the home-access role (Secrets
    // there only), which is what lets it create the Partner Admin role (that reads Secrets):
    // until then, a Role beyond the ceiling.
    let premature = home_roles.create(&PostParams::default(), &partner_admin).await;
    assert!(
        matches!(&premature, Err(kube::Error::Api(s)) if s.code == 403),
        "no Secret rights before the home binding: {premature:?}"
    );
    let home_access: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "liaison-operator", "labels": labels("operator-access")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "liaison-home-access"},
        "subjects": [{"kind": "ServiceAccount", "name": "liaison", "namespace": "liaison-system"}]
    }))
    .unwrap();
    let elsewhere = Api::<RoleBinding>::namespaced(operator.clone(), &ns)
        .create(&PostParams::default(), &home_access)
        .await;
    assert!(
        matches!(&elsewhere, Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("not marked")),
        "the home-access role is bound in homes only: {elsewhere:?}"
    );
    Api::<RoleBinding>::namespaced(operator.clone(), &home)
        .create(&PostParams::default(), &home_access)
        .await
        .expect("the operator may bind the home-access role in a home");
    until("the operator can create the Partner Admin role", std::time::Duration::from_secs(10), || {
        let (roles, partner_admin) = (home_roles.clone(), partner_admin.clone());
        async move { roles.create(&PostParams::default(), &partner_admin).await.is_ok() }
    })
    .await;
    let to_cluster_admin: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "liaison-escalate"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .unwrap();
    let bound = Api::<RoleBinding>::namespaced(operator.clone(), &home)
        .create(&PostParams::default(), &to_cluster_admin)
        .await;
    assert!(
        matches!(&bound, Err(kube::Error::Api(s)) if s.code == 403),
        "no binding to cluster-admin: {bound:?}"
    );

    foreign_grant_subjects_are_refused_at_apply_time(&admin).await;

    let (ok, text) = helm(&["uninstall", "liaison", "-n", "liaison-system"]);
    assert!(ok, "{text}");
    let (ok, _) = kubectl(&["get", "crd", "clientlinks.liaison.dev"]);
    assert!(ok, "CRDs are kept on uninstall");
}

fn grant(name: &str, namespace: &str, subjects: Value) -> AccessGrant {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clients": ["some-client"], "accessLevel": "read", "subjects": subjects}
    }))
    .unwrap()
}

fn refusal(result: &Result<AccessGrant, kube::Error>) -> Option<String> {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 || status.code == 422 => {
            Some(status.message.clone())
        }
        _ => None,
    }
}

/// The chart's ValidatingAdmissionPolicy: no operator runs here (the chart's image is not
/// built in tests), so whatever is refused is refused by the API server itself.
async fn foreign_grant_subjects_are_refused_at_apply_time(admin: &kube::Client) {
    let home = fresh_namespace(admin, "vap-home").await;
    let partner = unique("vap");
    let identities =
        |suffixes: Value| json!({"userSuffixes": suffixes, "groups": [format!("{partner}:staff")]});
    let spec = |suffixes: Value| json!({"spec": {"homeNamespace": home, "identities": identities(suffixes)}});
    let partners: Api<Partner> = Api::all(admin.clone());
    let mut body = spec(json!([format!("@{partner}.example")]));
    body["metadata"] = json!({"name": partner});
    partners.create(&PostParams::default(), &serde_json::from_value(body).unwrap()).await.expect("a Partner");

    let grants: Api<AccessGrant> = Api::namespaced(admin.clone(), &home);
    let dry_run = PostParams { dry_run: true, ..Default::default() };
    let mixed = json!([
        {"kind": "User", "name": format!("bob@{partner}.example")},
        {"kind": "User", "name": "mallory@evil.example"},
        {"kind": "Group", "name": "evil:staff"}
    ]);
    let message =
        eventually("the policy refuses foreign subjects", std::time::Duration::from_secs(30), || {
            let (grants, dry_run, body) =
                (grants.clone(), dry_run.clone(), grant("mixed", &home, mixed.clone()));
            async move { refusal(&grants.create(&dry_run, &body).await) }
        })
        .await;
    assert!(
        message.contains("User mallory@evil.example") && message.contains("Group evil:staff"),
        "names each foreign subject: {message}"
    );
    assert!(
        message.contains(&partner) && !message.contains("bob@"),
        "names the partner, not the partner's own: {message}"
    );

    let own = json!([
        {"kind": "User", "name": format!("bob@{partner}.example")},
        {"kind": "Group", "name": format!("{partner}:staff")},
        {"kind": "ServiceAccount", "name": "robot"}
    ]);
    grants
        .create(&PostParams::default(), &grant("own", &home, own))
        .await
        .expect("the partner's own people and robots pass");
    let elsewhere = fresh_namespace(admin, "vap-not-a-home").await;
    let outside = Api::<AccessGrant>::namespaced(admin.clone(), &elsewhere)
        .create(&dry_run, &grant("g", &elsewhere, mixed.clone()))
        .await;
    assert!(
        outside.is_ok(),
        "outside any partner's home the policy has no say (the operator refuses): {outside:?}"
    );

    // The partner drops bob's suffix: the grant is now foreign, yet its finalizer can still be
    // set and cleared (what the operator does on deletion); only a new spec is judged.
    partners
        .patch(&partner, &PatchParams::default(), &Patch::Merge(spec(json!(["@elsewhere.example"]))))
        .await
        .unwrap();
    let finalizers = |list: Value| Patch::Merge(json!({"metadata": {"finalizers": list}}));
    eventually("the policy sees the partner's new identities", std::time::Duration::from_secs(30), || {
        let grants = grants.clone();
        async move {
            let edit = Patch::Merge(json!({"spec": {"accessLevel": "write"}}));
            let patched =
                grants.patch("own", &PatchParams { dry_run: true, ..Default::default() }, &edit).await;
            refusal(&patched)
        }
    })
    .await;
    grants
        .patch("own", &PatchParams::default(), &finalizers(json!(["liaison.dev/revoke-access"])))
        .await
        .expect("metadata-only update passes");
    grants
        .patch("own", &PatchParams::default(), &finalizers(json!(null)))
        .await
        .expect("releasing the finalizer passes");
    grants.delete("own", &Default::default()).await.expect("deletion passes");
}

/// Every metric the chart's alerts and dashboard read is one an operator exposes from its first
/// scrape: an idle operator's page names them all.
#[test]
fn every_metric_the_alerts_and_the_dashboard_read_exists() {
    let objects = render(&[
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "metrics.grafanaDashboard.enabled=true",
    ]);
    let rule = find(&objects, "PrometheusRule", "liaison");
    let dashboard = find(&objects, "ConfigMap", "liaison-dashboard");
    let text = format!("{rule}{}", dashboard["data"]["liaison.json"].as_str().unwrap());
    let page = liaison::metrics::Metrics::default().encode();
    let exposed: Vec<&str> =
        page.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
    let mut named: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("liaison_"))
        .map(String::from)
        .collect();
    named.sort();
    named.dedup();
    assert!(named.len() >= 8, "the alerts and dashboard read: {named:?}");
    for name in &named {
        let base =
            ["_total", "_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        assert!(
            exposed.contains(&base),
            "{name} is read by the chart but not exposed (exposed: {exposed:?})"
        );
    }
    for alert in
        ["LiaisonReconcilesFailing", "LiaisonRevocationSlow", "LiaisonExpiryLagging", "LiaisonNoLeader"]
    {
        assert!(rule.to_string().contains(alert), "{alert}");
    }
}
