//! The operator as it ships: its image (`make image`), installed by its chart, running as a pod
//! on a real node of the test control plane (kubelet, containerd and runc, started by
//! `scripts/testenv start DIR --node`). `make e2e` builds the image and runs this; plain
//! `cargo test` skips it (it needs root, the node's packages and the image).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, ListParams};
use liaison::api::ClientLink;
use serde_json::json;
use support::fixtures::{PartnerFixture, read_level, user};
use support::*;

const CONFIG_MAPS: Res = res("", "configmaps");
const WAIT: Duration = Duration::from_secs(60);
const NAMESPACE: &str = "liaison-system";

fn image_archive() -> PathBuf {
    let (ok, text) = run_tool(path_of("scripts/image"), &["path"]);
    assert!(ok, "scripts/image path: {text}");
    let archive = PathBuf::from(text.trim());
    assert!(archive.is_file(), "no image at {} (make image)", archive.display());
    archive
}

/// The pods of the chart's Deployment.
async fn operator_pods(admin: &kube::Client) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NAMESPACE);
    pods.list(&ListParams::default().labels("app.kubernetes.io/name=liaison"))
        .await
        .expect("listing the operator's pods")
        .items
}

fn logs_of(pod: &str) -> String {
    run_tool(bin_dir().join("kubectl"), &["-n", NAMESPACE, "logs", pod]).1
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test]
#[ignore = "needs root, the node's packages and the image: make e2e"]
async fn the_chart_runs_the_image_on_a_node_and_the_story_works_through_it() {
    let admin = client().await;
    let env = testenv();

    // A real node, Ready, that is the kubelet's own report.
    let nodes: Api<Node> = Api::all(admin.clone());
    let node = nodes
        .get("liaison-node")
        .await
        .expect("the test control plane has a node (scripts/testenv start --node)");
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    assert_eq!(ready.map(|c| c.status.as_str()), Some("True"), "the node is Ready: {ready:?}");
    let info =
        node.status.as_ref().and_then(|s| s.node_info.as_ref()).expect("the kubelet reports its node info");
    println!(
        "node: kubelet {}, runtime {}, kernel {}",
        info.kubelet_version, info.container_runtime_version, info.kernel_version
    );

    // The image, into the node's containerd; the chart pointed at it, never pulled.
    let archive = image_archive();
    let (ok, text) = run_tool(
        path_of("scripts/testenv"),
        &["load", &env.dir.display().to_string(), &archive.display().to_string()],
    );
    assert!(ok, "loading the image into the node: {text}");
    let version = env!("CARGO_PKG_VERSION");
    let chart = path_of("charts/liaison").display().to_string();
    let tag = format!("image.tag={version}");
    let mut install = vec![
        "install",
        "liaison",
        &chart,
        "-n",
        NAMESPACE,
        "--create-namespace",
        "--wait",
        "--timeout",
        "3m",
    ];
    // Access key kubeconfigs name the API server as partners reach it: here, as this test does.
    let server = kube::config::Kubeconfig::read_from(kubeconfig_path()).unwrap().clusters[0]
        .cluster
        .as_ref()
        .unwrap()
        .server
        .clone()
        .unwrap();
    let key_server = format!("controller.accessKeyServer={server}");
    for value in ["image.repository=liaison", &tag, "image.pullPolicy=Never", &key_server] {
        install.extend(["--set", value]);
    }
    let (ok, text) = helm(&install);
    if !ok {
        let (_, pods) = run_tool(bin_dir().join("kubectl"), &["-n", NAMESPACE, "describe", "pods"]);
        let (_, logs) = run_tool(
            bin_dir().join("kubectl"),
            &["-n", NAMESPACE, "logs", "deployment/liaison", "--tail", "30"],
        );
        panic!("helm install --wait: {text}\n{pods}\n{logs}");
    }

    // Ready through its own probes, as the image's user, on the node.
    let pods = operator_pods(&admin).await;
    assert_eq!(pods.len(), 1, "one operator pod");
    let pod = &pods[0];
    assert!(pod_ready(pod), "the operator's pod is Ready: {:?}", pod.status);
    assert_eq!(pod.spec.as_ref().and_then(|s| s.node_name.as_deref()), Some("liaison-node"));
    let status = &pod.status.as_ref().unwrap().container_statuses.as_ref().expect("container statuses")[0];
    assert!(
        status.ready && status.restart_count == 0,
        "the container is ready and never restarted: {status:?}"
    );
    assert!(status.image.ends_with(&format!("liaison:{version}")), "the image is ours: {}", status.image);
    // Ready also while standing by for the lease: leading is what its log says.
    let name = pod.metadata.name.clone().unwrap();
    until("the operator in the pod leads and runs its controllers", WAIT, || {
        let (ok, logs) = run_tool(bin_dir().join("kubectl"), &["-n", NAMESPACE, "logs", &name]);
        async move { ok && logs.contains("leading; starting controllers") }
    })
    .await;

    // The story, each actor as themselves, with only the operator in the pod to act on it: the
    // platform admin makes the Partner; the client's namespace admin links it (through the
    // chart's admission policies and the pod's webhook); the partner's admin grants its user.
    let partner = PartnerFixture::create(&admin, "e2e").await;
    let client_ns = partner.client_namespace("e2e-client").await;
    let (ok, text) = run_tool(
        bin_dir().join("kubectl"),
        &[
            "-n",
            &client_ns,
            "create",
            "rolebinding",
            "beta-admin",
            "--clusterrole=admin",
            "--user=beta-admin",
        ],
    );
    assert!(ok, "{text}");
    let as_client_admin = client_as("beta-admin", &["system:authenticated"]).await;
    let link: ClientLink = serde_json::from_value(json!({
        "metadata": {"name": "link"},
        "spec": {"partner": partner.name, "accessLevels": read_level("read"), "accessKey": {"accessLevel": "read"}}
    }))
    .unwrap();
    eventually("the client's admin links the partner", WAIT, || {
        let (links, link) =
            (Api::<ClientLink>::namespaced(as_client_admin.clone(), &client_ns), link.clone());
        async move { links.create(&Default::default(), &link).await.ok() }
    })
    .await;
    let as_partner_admin = client_as(&partner.user("admin"), &["system:authenticated"]).await;
    let bob = partner.user("bob");
    let grant: liaison::api::AccessGrant = serde_json::from_value(json!({
        "metadata": {"name": "bob"},
        "spec": {"clients": [client_ns], "accessLevel": "read", "subjects": [user(&bob)]}
    }))
    .unwrap();
    eventually("the partner's admin grants bob", WAIT, || {
        let (grants, grant) = (
            Api::<liaison::api::AccessGrant>::namespaced(as_partner_admin.clone(), &partner.home),
            grant.clone(),
        );
        async move { grants.create(&Default::default(), &grant).await.ok() }
    })
    .await;
    until("bob may list pods in the client namespace", WAIT, || {
        can(&admin, &bob, &[], "list", PODS, &client_ns)
    })
    .await;
    assert!(!can(&admin, &bob, &[], "delete", PODS, &client_ns).await, "read only");

    // The access key: a kubeconfig the partner's admin reads in its home, used as is.
    let (_, key_secret) = support::fixtures::link_with_key(&admin, &client_ns, "link").await;
    let secret_name = key_secret.split_once('/').unwrap().1.to_string();
    let kubeconfig =
        eventually("the partner's admin reads the access key", WAIT, || {
            let (secrets, name) = (
                Api::<k8s_openapi::api::core::v1::Secret>::namespaced(
                    as_partner_admin.clone(),
                    &partner.home,
                ),
                secret_name.clone(),
            );
            async move {
                String::from_utf8(secrets.get(&name).await.ok()?.data?.get("kubeconfig")?.0.clone()).ok()
            }
        })
        .await;
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let key = kube::Client::try_from(config).unwrap();
    let pods = Api::<Pod>::namespaced(key.clone(), &client_ns).list(&ListParams::default()).await;
    assert!(pods.is_ok(), "the access key lists pods in the client namespace: {pods:?}");

    // A platform team's upgrade: a changed value rolls the pod, and access stays.
    let upgrade = |values: &'static [&'static str]| {
        let chart = chart.clone();
        move || {
            let mut args = vec![
                "upgrade",
                "liaison",
                chart.as_str(),
                "-n",
                NAMESPACE,
                "--reuse-values",
                "--wait",
                "--timeout",
                "3m",
            ];
            values.iter().for_each(|v| args.extend(["--set", v]));
            let (ok, text) = helm(&args);
            assert!(ok, "helm upgrade {values:?}: {text}");
        }
    };
    upgrade(&["controller.concurrency=4"])();
    let rolled = eventually("the upgrade rolled the pod", WAIT, || {
        let (admin, before) = (admin.clone(), name.clone());
        async move {
            let pods = operator_pods(&admin).await;
            let only_new =
                pods.len() == 1 && pods[0].metadata.name.as_ref() != Some(&before) && pod_ready(&pods[0]);
            only_new.then(|| pods[0].metadata.name.clone().unwrap())
        }
    })
    .await;
    let (_, args) = run_tool(
        bin_dir().join("kubectl"),
        &["-n", NAMESPACE, "get", "pod", &rolled, "-o", "jsonpath={.spec.containers[0].args}"],
    );
    assert!(args.contains("--concurrency=4"), "the new pod runs with the new value: {args}");
    assert!(can(&admin, &bob, &[], "list", PODS, &client_ns).await, "access stays through the upgrade");

    // Two replicas: one leads; killing its pod hands over, and the new leader acts.
    upgrade(&["replicaCount=2"])();
    let leader = eventually("two Ready pods, one of them leading", WAIT, || {
        let admin = admin.clone();
        async move {
            let pods = operator_pods(&admin).await;
            let ready: Vec<String> =
                pods.iter().filter(|p| pod_ready(p)).filter_map(|p| p.metadata.name.clone()).collect();
            let leading: Vec<String> = ready
                .iter()
                .filter(|p| logs_of(p).contains("leading; starting controllers"))
                .cloned()
                .collect();
            (ready.len() == 2 && leading.len() == 1).then(|| leading[0].clone())
        }
    })
    .await;
    let (ok, text) =
        run_tool(bin_dir().join("kubectl"), &["-n", NAMESPACE, "delete", "pod", &leader, "--wait=false"]);
    assert!(ok, "{text}");
    let successor = eventually("another pod takes the lease", Duration::from_secs(90), || {
        let (admin, leader) = (admin.clone(), leader.clone());
        async move {
            let pods = operator_pods(&admin).await;
            pods.iter()
                .filter_map(|p| p.metadata.name.clone())
                .find(|p| *p != leader && logs_of(p).contains("leading; starting controllers"))
        }
    })
    .await;
    println!("lease handed over from {leader} to {successor}");
    let carol = partner.user("carol");
    partner.grant("carol", &[&client_ns], "read", json!([user(&carol)]), json!({})).await;
    until("the new leader grants carol", WAIT, || can(&admin, &carol, &[], "list", PODS, &client_ns)).await;

    // Just-in-time access through the pod: the client offers a level on request and names its
    // admin as approver; the partner's admin grants dave that level (nothing yet) and asks for
    // it; the approver approves; dave reads ConfigMaps until the approved end, not after.
    let on_request = json!({"spec": {
        "accessLevels": [
            {"name": "read", "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]},
            {"name": "config", "onRequest": {"maxDuration": "1h"},
             "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}
        ],
        "approvers": ["beta-admin"]
    }});
    change_link(&as_client_admin, &client_ns, &on_request, "the client's admin offers a level on request")
        .await;
    let dave = partner.user("dave");
    partner.grant("dave", &[&client_ns], "config", json!([user(&dave)]), json!({})).await;
    support::fixtures::grant_reason(&partner.grants(), "dave", "OnRequest").await;
    assert!(
        !can(&admin, &dave, &[], "list", CONFIG_MAPS, &client_ns).await,
        "an eligible grant binds nobody"
    );
    let request: liaison::api::AccessRequest = serde_json::from_value(json!({
        "metadata": {"name": "inc-1"},
        "spec": {"grant": "dave", "client": client_ns, "duration": "20s", "reason": "INC-1",
                 "requestedBy": partner.user("admin"), "subjects": [user(&dave)]}
    }))
    .unwrap();
    eventually("the partner's admin asks for it", WAIT, || {
        let (requests, request) = (
            Api::<liaison::api::AccessRequest>::namespaced(as_partner_admin.clone(), &partner.home),
            request.clone(),
        );
        async move { requests.create(&Default::default(), &request).await.ok() }
    })
    .await;
    eventually("the approver approves", WAIT, || {
        let (as_approver, ns) = (as_client_admin.clone(), client_ns.clone());
        async move {
            liaison::reviews::approve(&as_approver, &ns, "inc-1", liaison::api::Decision::Approve, None)
                .await
                .ok()
        }
    })
    .await;
    until("dave reads ConfigMaps on the approved request", WAIT, || {
        can(&admin, &dave, &[], "list", CONFIG_MAPS, &client_ns)
    })
    .await;
    until("dave's access ends at the approved end", WAIT, || {
        let (admin, dave, ns) = (admin.clone(), dave.clone(), client_ns.clone());
        async move { !can(&admin, &dave, &[], "list", CONFIG_MAPS, &ns).await }
    })
    .await;

    // A periodic review through the pod: the client requires the link re-confirmed every 20 s
    // (5 s of grace); missed, bob's access is suspended; the client's admin reviews it in its
    // own name and access comes back.
    let review = json!({"spec": {"review": {"every": "20s", "grace": "5s"}}});
    change_link(&as_client_admin, &client_ns, &review, "the client's admin requires a review").await;
    until("a missed review suspends bob's access", WAIT, || {
        let (admin, bob, ns) = (admin.clone(), bob.clone(), client_ns.clone());
        async move { !can(&admin, &bob, &[], "list", PODS, &ns).await }
    })
    .await;
    support::fixtures::link_reason(&admin, &client_ns, "link", "ReviewOverdue").await;
    let reviewed = liaison::reviews::review::<ClientLink>(&as_client_admin, &client_ns, "link")
        .await
        .expect("the client's admin reviews the link");
    assert_eq!(reviewed.by, "beta-admin");
    until("the review restores bob's access", WAIT, || can(&admin, &bob, &[], "list", PODS, &client_ns))
        .await;

    Api::<ClientLink>::namespaced(admin.clone(), &client_ns)
        .delete("link", &DeleteParams::default())
        .await
        .expect("deleting the link");
    until("bob's access ends with the link", WAIT, || {
        let (admin, bob, ns) = (admin.clone(), bob.clone(), client_ns.clone());
        async move { !can(&admin, &bob, &[], "list", PODS, &ns).await }
    })
    .await;
    until("the access key stops working with the link", WAIT, || {
        let (key, ns) = (key.clone(), client_ns.clone());
        async move { Api::<Pod>::namespaced(key, &ns).list(&ListParams::default()).await.is_err() }
    })
    .await;
    let links: Api<ClientLink> = Api::namespaced(admin.clone(), &client_ns);
    until_gone(&links, "link", "the link's finalizer is released", WAIT).await;

    let (ok, manifest) = helm(&["get", "manifest", "liaison", "-n", NAMESPACE]);
    assert!(ok, "helm get manifest: {manifest}");
    let manifest_file = testenv().dir.join("release.yaml");
    std::fs::write(&manifest_file, manifest).expect("writing the release's manifest");
    // Not `--wait`: see the ceiling below.
    let (ok, text) = helm(&["uninstall", "liaison", "-n", NAMESPACE]);
    assert!(ok, "helm uninstall: {text}");
    let manifest = manifest_file.display().to_string();
    until("the release's objects are gone (but its CRDs and the ceiling)", WAIT, || {
        let (_, left) = run_tool(
            bin_dir().join("kubectl"),
            &["get", "-f", &manifest, "-o", "name", "--ignore-not-found"],
        );
        let left: Vec<String> = left
            .lines()
            .filter(|l| {
                !l.starts_with("customresourcedefinition")
                    && *l != "clusterrole.rbac.authorization.k8s.io/liaison-access-ceiling"
            })
            .map(String::from)
            .collect();
        async move { left.is_empty() }
    })
    .await;
    until("the operator's pods are gone", WAIT, || {
        let admin = admin.clone();
        async move { operator_pods(&admin).await.is_empty() }
    })
    .await;
    // What users declared outlives the release: the CRDs, and the objects in them.
    let (ok, text) = run_tool(bin_dir().join("kubectl"), &["get", "partner", &partner.name, "-o", "name"]);
    assert!(ok && text.contains(&partner.name), "the Partner stays after helm uninstall: {text}");
    let (ok, text) = run_tool(
        bin_dir().join("kubectl"),
        &["-n", &partner.home, "get", "accessgrant", "carol", "-o", "name"],
    );
    assert!(ok, "the grants stay after helm uninstall: {text}");

    // KNOWN BUG (chart + kube-controller-manager; seen in about 1 run of 7): helm deletes the
    // release's ClusterRoles at once; when the clusterrole-aggregation-controller still has a
    // sync of the ceiling queued (the deleted liaison-client-view matched its selector), its
    // server-side Apply re-creates `liaison-access-ceiling` (rules, no aggregationRule, no Helm
    // ownership), so `helm uninstall --wait` times out and a later `helm install` refuses the
    // stray role. Anything else left in its place fails this test; the re-created one is
    // reported and removed.
    let cluster_roles: Api<ClusterRole> = Api::all(admin.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Some(ceiling) = cluster_roles.get_opt("liaison-access-ceiling").await.expect("reading the ceiling")
    {
        let by_aggregator = ceiling.metadata.managed_fields.iter().flatten().all(|f| {
            f.manager.as_deref() == Some("clusterrole-aggregation-controller")
                && f.operation.as_deref() == Some("Apply")
        });
        assert!(
            by_aggregator && ceiling.aggregation_rule.is_none(),
            "the ceiling outlived its release: {ceiling:?}"
        );
        eprintln!(
            "KNOWN BUG: the clusterrole-aggregation-controller re-created liaison-access-ceiling after helm uninstall"
        );
        cluster_roles
            .delete("liaison-access-ceiling", &DeleteParams::default())
            .await
            .expect("removing the re-created ceiling");
    }
}

/// Merge-patches the client's link `link` as `who`, again until the API server takes it.
async fn change_link(who: &kube::Client, namespace: &str, patch: &serde_json::Value, what: &str) {
    let links = Api::<ClientLink>::namespaced(who.clone(), namespace);
    eventually(what, WAIT, || {
        let (links, patch) = (links.clone(), patch.clone());
        async move {
            links
                .patch("link", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(patch))
                .await
                .ok()
        }
    })
    .await;
}
