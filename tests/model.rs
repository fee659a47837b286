//! Access truth: random operation sequences against the real control plane, and after each
//! step the API server's SubjectAccessReview answers compared with a reference model.
//!
//! The model is written from DESIGN.md, independently of `liaison::desired`, over a vocabulary
//! small enough to be obviously right: three resources, three verbs, no wildcards, so that a
//! level is within the ceiling exactly when its permissions are a subset of the ceiling's.
//!
//! `LIAISON_MODEL_SEED` and `LIAISON_MODEL_STEPS` (CI: a fixed seed, 25 steps; `make test-model
//! SEED=… STEPS=…` for long runs). A divergence prints the seed and the whole sequence.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use liaison::api::{AccessGrant, ClientLink};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::fixtures::WAIT;
use support::*;

const RESOURCES: [&str; 3] = ["pods", "configmaps", "secrets"];
const VERBS: [&str; 3] = ["get", "list", "delete"];
type Perm = (&'static str, &'static str);

fn all_perms() -> Vec<Perm> {
    RESOURCES.iter().flat_map(|r| VERBS.iter().map(move |v| (*r, *v))).collect()
}

fn rules_json(perms: &BTreeSet<Perm>) -> Value {
    Value::Array(perms.iter().map(|(r, v)| json!({"apiGroups": [""], "resources": [r], "verbs": [v]})).collect())
}

#[derive(Clone, Debug)]
enum Source {
    Inline(BTreeSet<Perm>),
    Role(String),
}

#[derive(Clone, Debug)]
struct Link {
    partner: usize,
    levels: BTreeMap<String, Source>,
    expired: bool,
    suspended: bool,
    created: (i64, String),
}

#[derive(Clone, Debug)]
struct Grant {
    clients: BTreeSet<usize>,
    level: String,
    subjects: BTreeSet<Who>,
    expired: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    User(String),
    Group(String),
    Robot(String),
}

/// The declared world, as the model sees it.
struct Model {
    tag: String,
    ceiling: BTreeSet<Perm>,
    labelled: Vec<bool>,
    roles: BTreeMap<(usize, String), BTreeSet<Perm>>,
    links: BTreeMap<usize, Vec<(String, Link)>>,
    grants: BTreeMap<(usize, String), Grant>,
}

impl Model {
    fn partner(&self, p: usize) -> String {
        format!("{}-p{p}", self.tag)
    }
    fn home(&self, p: usize) -> String {
        format!("{}-home{p}", self.tag)
    }
    fn client(&self, c: usize) -> String {
        format!("{}-c{c}", self.tag)
    }

    /// Partner 0 accepts only labelled namespaces; partner 1 any.
    fn namespace_allowed(&self, p: usize, c: usize) -> bool {
        p == 1 || self.labelled[c]
    }

    fn subject_allowed(&self, p: usize, who: &Who) -> bool {
        match who {
            Who::User(name) => name.ends_with(&format!("@p{p}.example")) && !name.starts_with('@'),
            Who::Group(group) => group == &format!("p{p}:staff"),
            Who::Robot(_) => true,
        }
    }

    fn level_perms(&self, c: usize, source: &Source) -> Option<BTreeSet<Perm>> {
        match source {
            Source::Inline(perms) => Some(perms.clone()),
            Source::Role(name) => self.roles.get(&(c, name.clone())).cloned(),
        }
    }

    /// (link index in the namespace's list, link) in force in client `c`, if any.
    fn winner(&self, c: usize) -> Option<&Link> {
        let links = self.links.get(&c)?;
        links.iter().map(|(_, l)| l).min_by(|a, b| a.created.cmp(&b.created))
    }

    /// Every (subject name as the API server sees it, groups, client, perm) that is allowed.
    fn allowed(&self) -> BTreeSet<(String, usize, Perm)> {
        let mut out = BTreeSet::new();
        for c in 0..self.labelled.len() {
            let Some(link) = self.winner(c) else { continue };
            let p = link.partner;
            if link.expired || link.suspended || !self.namespace_allowed(p, c) {
                continue;
            }
            for ((gp, _), grant) in &self.grants {
                if *gp != p || grant.expired || !grant.clients.contains(&c) || grant.subjects.is_empty() {
                    continue;
                }
                let Some(source) = link.levels.get(&grant.level) else { continue };
                let Some(perms) = self.level_perms(c, source) else { continue };
                if !perms.is_subset(&self.ceiling) || !grant.subjects.iter().all(|w| self.subject_allowed(p, w)) {
                    continue;
                }
                for who in &grant.subjects {
                    for perm in &perms {
                        out.insert((self.principal(p, who), c, *perm));
                    }
                }
            }
        }
        out
    }

    /// The key under which a subject is asked about (groups are asked through a member).
    fn principal(&self, p: usize, who: &Who) -> String {
        match who {
            Who::User(name) => name.clone(),
            Who::Group(group) => format!("member-of:{group}"),
            Who::Robot(name) => format!("system:serviceaccount:{}:{name}", self.home(p)),
        }
    }
}

/// The principals the matrix asks about: every one the generator can name, and outsiders.
fn principals() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for p in 0..2 {
        for u in ["ann", "ben"] {
            out.push((format!("{u}@p{p}.example"), vec![]));
        }
        out.push((format!("member-of:p{p}:staff"), vec![format!("p{p}:staff")]));
    }
    out.push(("mallory@evil.example".into(), vec!["system:authenticated".into()]));
    out
}

async fn observed(admin: &kube::Client, model: &Model) -> BTreeSet<(String, usize, Perm)> {
    let mut out = BTreeSet::new();
    let mut asks: Vec<(String, Vec<String>)> = principals();
    for p in 0..2 {
        for robot in ["bot1", "bot2"] {
            let home = model.home(p);
            asks.push((format!("system:serviceaccount:{home}:{robot}"), service_account_groups(&home)));
        }
    }
    for (name, groups) in &asks {
        let user = if name.starts_with("member-of:") { "someone@nowhere.example".to_string() } else { name.clone() };
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        for c in 0..model.labelled.len() {
            for perm in all_perms() {
                if can(admin, &user, &groups, perm.1, res("", perm.0), &model.client(c)).await {
                    out.insert((name.clone(), c, perm));
                }
            }
        }
    }
    out
}

struct Runner {
    admin: kube::Client,
    model: Model,
    rng: StdRng,
    log: Vec<String>,
    operator: Option<Operator>,
    ceiling: String,
}

impl Runner {
    async fn apply(&self, api_version: &str, kind: &str, namespace: Option<&str>, body: Value) {
        let (ok, out) = {
            let file = tempfile::NamedTempFile::new().unwrap();
            let mut object = body;
            object["apiVersion"] = json!(api_version);
            object["kind"] = json!(kind);
            if let Some(ns) = namespace {
                object["metadata"]["namespace"] = json!(ns);
            }
            std::fs::write(file.path(), serde_json::to_string(&object).unwrap()).unwrap();
            kubectl(&["apply", "--server-side", "--force-conflicts", "-f", file.path().to_str().unwrap()])
        };
        assert!(ok, "apply failed: {out}");
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())].clone()
    }

    /// Mostly permissions the starting ceiling allows, sometimes anything.
    fn random_perms(&mut self) -> BTreeSet<Perm> {
        let all = all_perms();
        let usual: Vec<Perm> = vec![("pods", "get"), ("pods", "list"), ("configmaps", "get")];
        let n = self.rng.random_range(1..4);
        (0..n).map(|_| if self.rng.random_bool(0.75) { self.pick(&usual) } else { self.pick(&all) }).collect()
    }

    /// A healthy start: each partner linked to one namespace, with working grants.
    async fn seed_world(&mut self) {
        for (c, p) in [(0usize, 0usize), (2, 1)] {
            // Any other link there would hold the namespace: remove it first.
            let others: Vec<String> =
                self.model.links.get(&c).into_iter().flatten().map(|(n, _)| n.clone()).filter(|n| n != "link0").collect();
            for name in others {
                self.delete_link(c, &name).await;
                self.model.links.get_mut(&c).unwrap().retain(|(n, _)| *n != name);
            }
            let levels: BTreeMap<String, Source> = [
                ("l0".to_string(), Source::Inline([("pods", "get"), ("pods", "list")].into())),
                ("l1".to_string(), Source::Role("r".into())),
            ]
            .into();
            self.model.roles.insert((c, "r".into()), [("configmaps", "get")].into());
            self.write_role(c, "r").await;
            if self.model.links.get(&c).is_some_and(|l| l.iter().any(|(n, link)| n == "link0" && link.partner != p)) {
                self.delete_link(c, "link0").await;
            }
            self.model.links.insert(
                c,
                vec![("link0".into(), Link { partner: p, levels, expired: false, suspended: false, created: (0, "link0".into()) })],
            );
            self.write_link(c, "link0").await;
            self.record_creation(c, "link0").await;
            let subjects: BTreeSet<Who> =
                [Who::User(format!("ann@p{p}.example")), Who::Group(format!("p{p}:staff")), Who::Robot("bot1".into())].into();
            self.model.grants.insert((p, "g0".into()), Grant { clients: [c].into(), level: "l0".into(), subjects, expired: false });
            self.write_grant(p, "g0").await;
            self.model.grants.insert(
                (p, "g1".into()),
                Grant {
                    clients: [c].into(),
                    level: "l1".into(),
                    subjects: [Who::User(format!("ben@p{p}.example"))].into(),
                    expired: false,
                },
            );
            self.write_grant(p, "g1").await;
        }
    }

    fn random_subject(&mut self, p: usize) -> Who {
        match self.rng.random_range(0..10) {
            0..=4 => Who::User(format!("{}@p{p}.example", self.pick(&["ann", "ben"]))),
            5 => Who::User(format!("{}@p{}.example", self.pick(&["ann", "ben"]), 1 - p)),
            6 | 7 => Who::Group(format!("p{p}:staff")),
            _ => Who::Robot(self.pick(&["bot1".to_string(), "bot2".to_string()])),
        }
    }

    async fn write_link(&mut self, c: usize, name: &str) {
        let link = self.model.links[&c].iter().find(|(n, _)| n == name).unwrap().1.clone();
        let levels: Vec<Value> = link
            .levels
            .iter()
            .map(|(level, source)| match source {
                Source::Inline(perms) => json!({"name": level, "rules": rules_json(perms)}),
                Source::Role(role) => json!({"name": level, "role": role}),
            })
            .collect();
        let mut spec = json!({"partner": self.model.partner(link.partner), "accessLevels": levels, "suspended": link.suspended});
        if link.expired {
            spec["expiresAt"] = json!("2020-01-01T00:00:00Z");
        }
        self.apply("liaison.dev/v1alpha1", "ClientLink", Some(&self.model.client(c)), json!({"metadata": {"name": name}, "spec": spec}))
            .await;
    }

    async fn write_grant(&mut self, p: usize, name: &str) {
        let grant = self.model.grants[&(p, name.to_string())].clone();
        let subjects: Vec<Value> = grant
            .subjects
            .iter()
            .map(|w| match w {
                Who::User(n) => json!({"kind": "User", "name": n}),
                Who::Group(g) => json!({"kind": "Group", "name": g}),
                Who::Robot(r) => json!({"kind": "ServiceAccount", "name": r}),
            })
            .collect();
        let clients: Vec<String> = grant.clients.iter().map(|c| self.model.client(*c)).collect();
        let mut spec = json!({"clients": clients, "accessLevel": grant.level, "subjects": subjects});
        if grant.expired {
            spec["expiresAt"] = json!("2020-01-01T00:00:00Z");
        }
        self.apply("liaison.dev/v1alpha1", "AccessGrant", Some(&self.model.home(p)), json!({"metadata": {"name": name}, "spec": spec}))
            .await;
    }

    async fn write_ceiling(&self) {
        let body = json!({"metadata": {"name": self.ceiling}, "rules": rules_json(&self.model.ceiling)});
        self.apply("rbac.authorization.k8s.io/v1", "ClusterRole", None, body).await;
    }

    async fn write_role(&self, c: usize, name: &str) {
        let perms = &self.model.roles[&(c, name.to_string())];
        self.apply(
            "rbac.authorization.k8s.io/v1",
            "Role",
            Some(&self.model.client(c)),
            json!({"metadata": {"name": name}, "rules": rules_json(perms)}),
        )
        .await;
    }

    /// Deletes a link and waits until its finalizer has let it go (revocation done).
    async fn delete_link(&self, c: usize, name: &str) {
        let api: Api<ClientLink> = Api::namespaced(self.admin.clone(), &self.model.client(c));
        api.delete(name, &DeleteParams::default()).await.unwrap();
        let gone = name.to_string();
        until("the link is deleted", WAIT, || {
            let (api, gone) = (api.clone(), gone.clone());
            async move { api.get_opt(&gone).await.unwrap().is_none() }
        })
        .await;
    }

    /// One random operation, applied to the cluster and the model alike.
    async fn step(&mut self) {
        let c = self.rng.random_range(0..self.model.labelled.len());
        let p = self.rng.random_range(0..2);
        let op = self.rng.random_range(0..13);
        let description = match op {
            0 | 1 => {
                let name = format!("link{}", self.rng.random_range(0..2));
                let levels: BTreeMap<String, Source> = [
                    ("l0".to_string(), Source::Inline(self.random_perms())),
                    (
                        "l1".to_string(),
                        if self.rng.random_bool(0.5) { Source::Role("r".into()) } else { Source::Inline(self.random_perms()) },
                    ),
                ]
                .into();
                let links = self.model.links.entry(c).or_default();
                let existing = links.iter().position(|(n, _)| *n == name);
                let partner = existing.map(|i| links[i].1.partner).unwrap_or(p);
                let link = Link { partner, levels, expired: false, suspended: false, created: (0, name.clone()) };
                match existing {
                    Some(i) => links[i].1 = Link { created: links[i].1.created.clone(), ..link },
                    None => links.push((name.clone(), link)),
                }
                self.write_link(c, &name).await;
                self.record_creation(c, &name).await;
                format!("apply link {name} in c{c} for p{partner}")
            }
            2 => {
                let Some((name, _)) = self.model.links.get(&c).and_then(|l| l.first()).cloned() else { return };
                self.model.links.get_mut(&c).unwrap().retain(|(n, _)| *n != name);
                self.delete_link(c, &name).await;
                format!("delete link {name} in c{c}")
            }
            3 | 4 => {
                let name = format!("g{}", self.rng.random_range(0..3));
                let n = self.pick(&[0usize, 1, 1, 2, 2, 3]);
                let subjects: BTreeSet<Who> = (0..n).map(|_| self.random_subject(p)).collect();
                // Mostly the namespace the partner starts linked to (p0: c0, p1: c2).
                let home_client = if p == 0 { 0 } else { 2 };
                let mut clients: BTreeSet<usize> = [home_client].into();
                if self.rng.random_bool(0.4) {
                    clients.insert(self.rng.random_range(0..3));
                }
                let level = self.pick(&["l0".to_string(), "l0".to_string(), "l1".to_string(), "l2".to_string()]);
                self.model.grants.insert((p, name.clone()), Grant { clients, level, subjects, expired: false });
                self.write_grant(p, &name).await;
                format!("apply grant {name} of p{p}: {:?}", self.model.grants[&(p, name.clone())])
            }
            5 => {
                let Some(((gp, name), _)) = self.model.grants.iter().next().map(|(k, v)| (k.clone(), v.clone())) else { return };
                self.model.grants.remove(&(gp, name.clone()));
                let api: Api<AccessGrant> = Api::namespaced(self.admin.clone(), &self.model.home(gp));
                api.delete(&name, &DeleteParams::default()).await.unwrap();
                format!("delete grant {name} of p{gp}")
            }
            6 => {
                let Some((name, link)) = self.model.links.get_mut(&c).and_then(|l| l.first_mut()) else { return };
                link.suspended = !link.suspended;
                let (name, state) = (name.clone(), link.suspended);
                self.write_link(c, &name).await;
                format!("suspended={state} link {name} in c{c}")
            }
            7 => {
                let Some((name, link)) = self.model.links.get_mut(&c).and_then(|l| l.first_mut()) else { return };
                link.expired = !link.expired;
                let (name, state) = (name.clone(), link.expired);
                self.write_link(c, &name).await;
                format!("expired={state} link {name} in c{c}")
            }
            8 => {
                let Some(key) = self.model.grants.keys().next().cloned() else { return };
                let grant = self.model.grants.get_mut(&key).unwrap();
                grant.expired = !grant.expired;
                let state = grant.expired;
                self.write_grant(key.0, &key.1).await;
                format!("expired={state} grant {} of p{}", key.1, key.0)
            }
            9 => {
                self.model.labelled[c] = !self.model.labelled[c];
                let value = if self.model.labelled[c] { json!("true") } else { Value::Null };
                let patch = json!({"metadata": {"labels": {"liaison.dev/partners-allowed": value}}});
                Api::<Namespace>::all(self.admin.clone())
                    .patch(&self.model.client(c), &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .unwrap();
                format!("labelled={} c{c}", self.model.labelled[c])
            }
            10 => {
                self.model.ceiling = self.random_perms().union(&[("pods", "get"), ("pods", "list")].into()).cloned().collect();
                self.write_ceiling().await;
                format!("ceiling = {:?}", self.model.ceiling)
            }
            11 => {
                let perms = self.random_perms();
                self.model.roles.insert((c, "r".into()), perms);
                self.write_role(c, "r").await;
                format!("role r in c{c} = {:?}", self.model.roles[&(c, "r".to_string())])
            }
            _ => {
                if let Some(operator) = self.operator.take() {
                    operator.kill();
                }
                self.operator = Some(Operator::start(&["--ceiling", &self.ceiling]));
                "SIGKILL and restart the operator".to_string()
            }
        };
        self.log.push(description);
    }

    /// The model orders links by creation second, then name, as the API server records them.
    async fn record_creation(&mut self, c: usize, name: &str) {
        let link = Api::<ClientLink>::namespaced(self.admin.clone(), &self.model.client(c)).get(name).await.unwrap();
        let second = link.metadata.creation_timestamp.unwrap().0.as_second();
        let entry = self.model.links.get_mut(&c).unwrap().iter_mut().find(|(n, _)| n == name).unwrap();
        entry.1.created = (second, name.to_string());
    }
}

#[tokio::test]
async fn the_api_server_authorizes_exactly_what_the_model_says() {
    let admin = client().await;
    install_liaison(&admin).await;
    let seed: u64 = std::env::var("LIAISON_MODEL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261122);
    let steps: usize = std::env::var("LIAISON_MODEL_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(25);
    let tag = unique("m");
    let ceiling = format!("{tag}-ceiling");
    let mut runner = Runner {
        admin: admin.clone(),
        model: Model {
            tag: tag.clone(),
            ceiling: [("pods", "get"), ("pods", "list"), ("configmaps", "get")].into(),
            labelled: vec![true, false, true],
            roles: BTreeMap::new(),
            links: BTreeMap::new(),
            grants: BTreeMap::new(),
        },
        rng: StdRng::seed_from_u64(seed),
        log: vec![],
        operator: None,
        ceiling: ceiling.clone(),
    };
    runner.write_ceiling().await;
    for p in 0..2 {
        let selector = if p == 0 { json!({"matchLabels": {"liaison.dev/partners-allowed": "true"}}) } else { json!(null) };
        let mut spec = json!({"homeNamespace": runner.model.home(p), "identities": {"userSuffixes": [format!("@p{p}.example")], "groups": [format!("p{p}:staff")]}});
        if !selector.is_null() {
            spec["clientNamespaceSelector"] = selector;
        }
        runner.apply("liaison.dev/v1alpha1", "Partner", None, json!({"metadata": {"name": runner.model.partner(p)}, "spec": spec})).await;
    }
    for c in 0..3 {
        let labels = if runner.model.labelled[c] { json!({"liaison.dev/partners-allowed": "true"}) } else { json!({}) };
        runner.apply("v1", "Namespace", None, json!({"metadata": {"name": runner.model.client(c), "labels": labels}})).await;
    }
    runner.operator = Some(Operator::start(&["--ceiling", &ceiling]));
    // The operator creates the partners' home namespaces; grants can only live there after.
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for p in 0..2 {
        let home = runner.model.home(p);
        until("the partner's home namespace exists", WAIT, || {
            let (namespaces, home) = (namespaces.clone(), home.clone());
            async move { namespaces.get_opt(&home).await.unwrap().is_some() }
        })
        .await;
    }
    runner.seed_world().await;

    let (mut compared, mut with_access) = (0, 0);
    for step in 0..=steps {
        // Step 0 checks the seeded world itself; every 25 steps it is healed again, so that
        // long runs keep exercising access rather than a world of refusals.
        if step > 0 && step % 25 == 0 {
            runner.seed_world().await;
            runner.log.push("re-seed the healthy world".into());
        } else if step > 0 {
            runner.step().await;
        }
        let expected = runner.model.allowed();
        with_access += usize::from(!expected.is_empty());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let actual = observed(&admin, &runner.model).await;
            if actual == expected {
                break;
            }
            if std::time::Instant::now() > deadline {
                let missing: Vec<_> = expected.difference(&actual).collect();
                let extra: Vec<_> = actual.difference(&expected).collect();
                panic!(
                    "divergence after step {step} (seed {seed}):\n  allowed by the model only: {missing:?}\n  allowed by the API server only: {extra:?}\nsequence:\n  {}",
                    runner.log.join("\n  ")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        compared += 1;
    }
    eprintln!(
        "model test: seed {seed}, {compared} steps ({with_access} with some access granted), 0 divergences; sequence:\n  {}",
        runner.log.join("\n  ")
    );
    assert!(with_access * 4 >= steps, "the sequence must exercise real access, not only refusals ({with_access} of {steps} steps)");
    let _ = (Role::default(), ClusterRole::default());
}
