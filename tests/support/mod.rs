//! Test support: a real control plane per test binary, clients for it (admin and impersonated),
//! the API server's own authorization answers, and the operator as a child process.
//!
//! The control plane is started once per test binary through `scripts/testenv` and stopped by
//! a watchdog process when the test binary exits, however it exits (panic, ^C, SIGKILL).
#![allow(dead_code)]

pub mod fixtures;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};

pub struct TestEnv {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub bin_dir: PathBuf,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The control plane of this test binary, started on first use.
pub fn testenv() -> &'static TestEnv {
    static ENV: OnceLock<TestEnv> = OnceLock::new();
    ENV.get_or_init(start_testenv)
}

fn start_testenv() -> TestEnv {
    let bin_dir = match std::env::var_os("LIAISON_TESTENV_BIN") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let out = Command::new(repo().join("scripts/testenv"))
                .arg("install")
                .stderr(Stdio::inherit())
                .output()
                .expect("running scripts/testenv install");
            assert!(out.status.success(), "scripts/testenv install failed");
            let text = String::from_utf8_lossy(&out.stdout);
            PathBuf::from(text.lines().last().expect("install prints the bin dir").trim())
        }
    };
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let dir = repo().join("target/testenv").join(format!("{binary}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the control plane's directory");
    // The watchdog outlives this process and stops the control plane once it is gone: it is
    // detached on purpose, never waited for.
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; '{script}' stop '{dir}' >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        script = repo().join("scripts/testenv").display(),
        dir = dir.display(),
    );
    #[allow(clippy::zombie_processes)]
    Command::new("setsid")
        .args(["bash", "-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the control plane's watchdog");
    // LIAISON_TESTENV_NODE=1 (make e2e): a node too, with kubelet, containerd and runc.
    let node = std::env::var_os("LIAISON_TESTENV_NODE").is_some_and(|v| v == "1");
    let status = Command::new(repo().join("scripts/testenv"))
        .arg("start")
        .arg(&dir)
        .args(node.then_some("--node"))
        .env("LIAISON_TESTENV_BIN", &bin_dir)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .expect("running scripts/testenv start");
    assert!(status.success(), "scripts/testenv start failed; logs in {}", dir.display());
    TestEnv { kubeconfig: dir.join("kubeconfig"), dir, bin_dir }
}

pub fn kubeconfig_path() -> PathBuf {
    testenv().kubeconfig.clone()
}

pub fn bin_dir() -> PathBuf {
    testenv().bin_dir.clone()
}

async fn config() -> Config {
    let kubeconfig = Kubeconfig::read_from(kubeconfig_path()).expect("reading the test kubeconfig");
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a usable kubeconfig")
}

/// The cluster admin (group system:masters).
pub async fn client() -> Client {
    Client::try_from(config().await).expect("building a client")
}

/// A client whose every request is made as `user` in `groups` (impersonation).
pub async fn client_as(user: &str, groups: &[&str]) -> Client {
    let mut config = config().await;
    config.auth_info.impersonate = Some(user.to_string());
    config.auth_info.impersonate_groups =
        (!groups.is_empty()).then(|| groups.iter().map(|g| g.to_string()).collect());
    Client::try_from(config).expect("building an impersonating client")
}

/// A client authenticated by a bearer token only (no client certificate).
pub async fn client_with_token(token: &str) -> Client {
    let mut config = config().await;
    config.auth_info = Default::default();
    config.auth_info.token = Some(token.to_string().into());
    Client::try_from(config).expect("building a token client")
}

/// A new namespace with a unique name starting with `prefix`.
pub async fn fresh_namespace(client: &Client, prefix: &str) -> String {
    fresh_namespace_with(client, prefix, &[]).await
}

pub async fn fresh_namespace_with(client: &Client, prefix: &str, labels: &[(&str, &str)]) -> String {
    let name = unique(prefix);
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("creating a namespace");
    name
}

/// A name unique in this test binary, usable as a namespace or object name.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id() % 100_000)
}

/// A resource as SubjectAccessReview names it.
#[derive(Clone, Copy, Debug)]
pub struct Res<'a> {
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
}

pub const fn res(group: &'static str, resource: &'static str) -> Res<'static> {
    Res { group, resource, subresource: "" }
}

/// What most tests ask the authorizer about: the client namespace's pods.
pub const PODS: Res = res("", "pods");

/// Does the API server's own authorizer allow it? (SubjectAccessReview, asked as admin.)
pub async fn can(
    client: &Client,
    user: &str,
    groups: &[&str],
    verb: &str,
    what: Res<'_>,
    namespace: &str,
) -> bool {
    can_named(client, user, groups, verb, what, namespace, "").await
}

/// Like `can`, for one named object (`name` empty means any).
pub async fn can_named(
    client: &Client,
    user: &str,
    groups: &[&str],
    verb: &str,
    what: Res<'_>,
    namespace: &str,
    name: &str,
) -> bool {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_string()),
            groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_string()),
                verb: Some(verb.to_string()),
                group: Some(what.group.to_string()),
                resource: Some(what.resource.to_string()),
                subresource: (!what.subresource.is_empty()).then(|| what.subresource.to_string()),
                name: (!name.is_empty()).then(|| name.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .expect("creating a SubjectAccessReview");
    answer.status.map(|s| s.allowed).unwrap_or(false)
}

/// A ServiceAccount as an authorization subject.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{namespace}"),
        "system:authenticated".into(),
    ]
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until `check` holds; the usual form for authorization that must appear or go.
pub async fn until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually(what, timeout, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await
}

/// Polls until the object `name` is gone from `api` (a finalizer may hold it for a while).
pub async fn until_gone<K>(api: &kube::Api<K>, name: &str, what: &str, timeout: Duration)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    until(what, timeout, || {
        let (api, name) = (api.clone(), name.to_string());
        async move { api.get_opt(&name).await.unwrap().is_none() }
    })
    .await
}

/// Server-side applies YAML documents (any kinds, as the admin) and returns the objects.
pub async fn apply_yaml(client: &Client, yaml: &str) -> Vec<kube::api::DynamicObject> {
    use kube::discovery::{ApiCapabilities, ApiResource, Scope};
    let discovery = kube::Discovery::new(client.clone()).run().await.expect("API discovery");
    let mut applied = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc).expect("a YAML document");
        if value.is_null() {
            continue;
        }
        let object: kube::api::DynamicObject = serde_json::from_value(value).expect("a Kubernetes object");
        let types = object.types.clone().expect("apiVersion and kind");
        let gvk = kube::core::GroupVersionKind::try_from(&types).expect("a group/version/kind");
        let (resource, caps): (ApiResource, ApiCapabilities) =
            discovery.resolve_gvk(&gvk).expect("a known kind");
        let api: Api<kube::api::DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                &object.namespace().unwrap_or_else(|| "default".into()),
                &resource,
            ),
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let result = api
            .patch(&object.name_any(), &PatchParams::apply("liaison-tests").force(), &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("applying {} {}: {e}", types.kind, object.name_any()));
        applied.push(result);
    }
    applied
}

/// Installs Liaison's CRDs and the default ceiling once per control plane.
pub async fn install_liaison(client: &Client) {
    static INSTALLED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async {
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            let params = PatchParams::apply("liaison-tests").force();
            for crd in liaison::api::crds() {
                crds.patch(&crd.name_any(), &params, &Patch::Apply(&crd)).await.expect("installing a CRD");
            }
            for crd in liaison::api::crds() {
                let name = crd.name_any();
                until(&format!("CRD {name} established"), Duration::from_secs(30), || {
                    let crds = crds.clone();
                    let name = name.clone();
                    async move {
                        let crd = crds.get(&name).await.ok();
                        crd.and_then(|c| c.status)
                            .and_then(|s| s.conditions)
                            .unwrap_or_default()
                            .iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    }
                })
                .await;
            }
            let ceiling = liaison::ceiling::cluster_role(liaison::ceiling::DEFAULT_NAME);
            Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(client.clone())
                .patch(liaison::ceiling::DEFAULT_NAME, &params, &Patch::Apply(&ceiling))
                .await
                .expect("installing the ceiling");
        })
        .await;
}

/// The operator as a child process of the test binary, killed when dropped.
pub struct Operator {
    child: Child,
    /// Started under `LIAISON_OPERATOR_WRAPPER`, in a process group of its own.
    wrapped: bool,
    pub http_port: u16,
    pub log: PathBuf,
}

impl Operator {
    pub fn start(extra_args: &[&str]) -> Operator {
        Operator::start_with(&kubeconfig_path(), extra_args)
    }

    /// Starts the operator with its own kubeconfig (for example one that impersonates a
    /// distinct user, so that the API server's audit log can tell its requests apart).
    pub fn start_with(kubeconfig: &Path, extra_args: &[&str]) -> Operator {
        let http_port = free_port();
        let log = testenv().dir.join(format!("operator-{http_port}.log"));
        let out = std::fs::File::create(&log).expect("creating the operator log");
        // `LIAISON_OPERATOR_WRAPPER="heaptrack -o /tmp/liaison"` (say) runs it under a profiler.
        let wrapper = std::env::var("LIAISON_OPERATOR_WRAPPER").unwrap_or_default();
        let mut command: Vec<&str> = wrapper.split_whitespace().collect();
        let wrapped = !command.is_empty();
        command.push(env!("CARGO_BIN_EXE_liaison"));
        let mut launcher = Command::new(command[0]);
        if wrapped {
            // Killing only the wrapper left the operator running (and loading the machine).
            std::os::unix::process::CommandExt::process_group(&mut launcher, 0);
        }
        let child = launcher
            .args(&command[1..])
            .args(["run", "--log-format", "text", "--http-addr", &format!("127.0.0.1:{http_port}")])
            .args(extra_args)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info,liaison=debug".into()))
            .stdout(out.try_clone().expect("cloning a file handle"))
            .stderr(out)
            .spawn()
            .expect("starting the operator");
        register_child(child.id());
        Operator { child, wrapped, http_port, log }
    }

    /// The exit status, if the process has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.child.wait().expect("waiting for the operator")
    }

    pub async fn metrics(&self) -> String {
        http_get(self.http_port, "/metrics").await.unwrap_or_default()
    }

    pub async fn wait_ready(&self) {
        let port = self.http_port;
        until("operator /readyz", Duration::from_secs(60), || async move {
            http_get(port, "/readyz").await.is_some()
        })
        .await;
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Lines of the operator's log a failing test prints: CI keeps the test's output, not the
/// control plane's directory.
const LOG_TAIL_ON_FAILURE: usize = 80;

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log_text();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_ON_FAILURE)..];
            eprintln!(
                "--- the operator's log ({}), last {} of {} lines:",
                self.log.display(),
                tail.len(),
                lines.len()
            );
            tail.iter().for_each(|line| eprintln!("{line}"));
            eprintln!("--- end of the operator's log");
        }
        if self.wrapped {
            // The operator of the group, gently: a profiler writes its last data as it ends.
            let group = self.child.id().to_string();
            let _ = Command::new("pkill")
                .args(["-TERM", "-g", &group, "-f", env!("CARGO_BIN_EXE_liaison")])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills registered children when the test binary exits abnormally (the watchdog only stops
/// the control plane).
fn register_child(pid: u32) {
    static CHILDREN: OnceLock<Mutex<Vec<u32>>> = OnceLock::new();
    CHILDREN.get_or_init(Default::default).lock().unwrap().push(pid);
    let reaper = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; kill -9 {pid} 2>/dev/null",
        me = std::process::id()
    );
    let _ = Command::new("setsid")
        .args(["bash", "-c", &reaper])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// The operator shared by the tests of one binary, started on first use.
pub async fn shared_operator() -> &'static Operator {
    static OPERATOR: tokio::sync::OnceCell<&'static Operator> = tokio::sync::OnceCell::const_new();
    let client = client().await;
    install_liaison(&client).await;
    OPERATOR
        .get_or_init(|| async {
            let operator: &'static Operator = Box::leak(Box::new(Operator::start(&[])));
            operator.wait_ready().await;
            operator
        })
        .await
}

/// The sum of every series of a metric (`liaison_api_writes_total`, …) in a /metrics page.
pub fn metric_total(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port").local_addr().unwrap().port()
}

/// Whether the operator serving on `port` answers `/readyz` with 200.
pub async fn ready_at(port: u16) -> bool {
    http_get(port, "/readyz").await.is_some()
}

async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await.ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await.ok()?;
    let ok = body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200");
    ok.then_some(body)
}

/// Runs a tool (helm, kubectl, a script) against the test control plane, with Helm's state in
/// the control plane's directory; returns (success, stdout + stderr).
pub fn run_tool(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> (bool, String) {
    let out = Command::new(program.as_ref())
        .args(args)
        .env("KUBECONFIG", kubeconfig_path())
        .env("HELM_CACHE_HOME", testenv().dir.join("helm-cache"))
        .env("HELM_CONFIG_HOME", testenv().dir.join("helm-config"))
        .env("HELM_DATA_HOME", testenv().dir.join("helm-data"))
        .output()
        .unwrap_or_else(|e| panic!("running {:?}: {e}", program.as_ref()));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Runs the test control plane's helm.
pub fn helm(args: &[&str]) -> (bool, String) {
    run_tool(bin_dir().join("helm"), args)
}

/// Runs kubectl against the test control plane; returns (success, stdout + stderr).
pub fn kubectl(args: &[&str]) -> (bool, String) {
    kubectl_as(args, None)
}

pub fn kubectl_as(args: &[&str], user: Option<&str>) -> (bool, String) {
    let mut command = Command::new(bin_dir().join("kubectl"));
    command.arg("--kubeconfig").arg(kubeconfig_path());
    if let Some(user) = user {
        command.arg("--as").arg(user);
    }
    let out = command.args(args).output().expect("running kubectl");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn path_of(relative: &str) -> PathBuf {
    repo().join(relative)
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}
