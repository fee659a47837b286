//! Access truth: random operation sequences against the real control plane, and after each
//! step the API server's SubjectAccessReview answers compared with a reference model.
//!
//! The model is written from DESIGN.md, independently of `liaison::desired`, over a vocabulary
//! small enough to be obviously right: three resources, three verbs, no wildcards, so that a
//! level is within the ceiling exactly when its permissions are a subset of the ceiling's.
//!
//! Operations are data (`Op`): generated from the RNG and the model alone, then executed against
//! the cluster and the model alike. That is what makes a failing sequence printable, replayable
//! (`LIAISON_MODEL_REPLAY='[…]'`, the JSON a failure prints) and shrinkable: on a divergence the
//! sequence is delta-debugged by replaying subsequences in fresh worlds (new names, namespaces,
//! ceiling and operator) on the same control plane.
//!
//! Time is part of the model: `expiresAt` is an instant, and the model is evaluated at the
//! instant of each observation; observations close to an expiry are not compared, since rule 7
//! gives the operator a second there (see `World::converge`).
//!
//! `LIAISON_MODEL_SEED` and `LIAISON_MODEL_STEPS` (CI: a fixed seed, 25 steps; `make test-model
//! SEED=… STEPS=…` for long runs); `LIAISON_MODEL_SHRINK_SECS` bounds the shrinking (300).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use liaison::api::{AccessApproval, AccessGrant, AccessRequest, ClientLink, Partner};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};
use support::fixtures::{ALLOWED, WAIT};
use support::*;

// ---------------------------------------------------------------------------------------------
// The vocabulary

const RESOURCES: [&str; 3] = ["pods", "configmaps", "secrets"];
const VERBS: [&str; 3] = ["get", "list", "delete"];

/// One permission: a verb on a core resource. Printed and serialized as "get pods".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Perm {
    resource: &'static str,
    verb: &'static str,
}

fn perms(list: &[(&'static str, &'static str)]) -> BTreeSet<Perm> {
    list.iter().map(|&(resource, verb)| Perm { resource, verb }).collect()
}

fn all_perms() -> Vec<Perm> {
    RESOURCES.iter().flat_map(|r| VERBS.iter().map(move |v| Perm { resource: r, verb: v })).collect()
}

impl fmt::Debug for Perm {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)
    }
}

impl Serialize for Perm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{self:?}"))
    }
}

impl<'de> Deserialize<'de> for Perm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        all_perms()
            .into_iter()
            .find(|p| format!("{p:?}") == text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown permission {text:?}")))
    }
}

fn rules_json(perms: &BTreeSet<Perm>) -> Value {
    Value::Array(
        perms
            .iter()
            .map(|p| json!({"apiGroups": [""], "resources": [p.resource], "verbs": [p.verb]}))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// The model: the declared world, and what DESIGN.md says it allows at a given instant

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Source {
    Inline(BTreeSet<Perm>),
    Role(String),
}

/// A partner's clientNamespaceSelector, over the one label the test toggles.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum Selector {
    Any,
    Labelled,
    Unlabelled,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct PartnerSpec {
    suffixes: BTreeSet<String>,
    groups: BTreeSet<String>,
    selector: Selector,
}

impl PartnerSpec {
    /// As first declared: its own users and group; partner 0 accepts only labelled namespaces.
    fn healthy(p: usize) -> PartnerSpec {
        PartnerSpec {
            suffixes: [format!("@p{p}.example")].into(),
            groups: [format!("p{p}:staff")].into(),
            selector: if p == 0 { Selector::Labelled } else { Selector::Any },
        }
    }
}

#[derive(Clone, Debug)]
struct Link {
    partner: usize,
    levels: BTreeMap<String, Source>,
    expires_at: Option<Timestamp>,
    suspended: bool,
    created: (i64, String),
    /// The incarnation of its partner it accepted (recorded the first time it was in force,
    /// or confirmed): a partner created again grants nothing here until confirmed.
    accepted: Option<u32>,
    /// `spec.partnerUid`, once the client confirmed a partner.
    confirmed_uid: Option<String>,
    /// Levels granted on request only (`onRequest`): a grant of one binds only the people of an
    /// approved request.
    on_request: BTreeSet<String>,
}

/// The one approver every link names (`spec.approvers`).
const APPROVER: &str = "approver@client.example";

/// An AccessRequest of partner `p` for grant `grant` in client `c`, for `subjects`, approved
/// by the link's approver (for an hour: longer than any run).
#[derive(Clone, Debug)]
struct Approved {
    p: usize,
    grant: String,
    c: usize,
    subjects: BTreeSet<Who>,
}

#[derive(Clone, Debug)]
struct Grant {
    clients: BTreeSet<usize>,
    level: String,
    subjects: BTreeSet<Who>,
    expires_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Who {
    User(String),
    Group(String),
    Robot(String),
}

/// (principal as asked about, client index, permission).
type Access = (String, usize, Perm);

fn expired(at: Option<Timestamp>, now: Timestamp) -> bool {
    at.is_some_and(|at| at <= now)
}

/// The declared world, as the model sees it.
struct Model {
    tag: String,
    ceiling: BTreeSet<Perm>,
    labelled: Vec<bool>,
    /// `None`: deleted (its home namespace, and the grants in it, stay).
    partners: Vec<Option<PartnerSpec>>,
    /// How many times each partner was created: each creation is another Partner (UID).
    incarnations: Vec<u32>,
    roles: BTreeMap<(usize, String), BTreeSet<Perm>>,
    links: BTreeMap<usize, Vec<(String, Link)>>,
    grants: BTreeMap<(usize, String), Grant>,
    /// Approved requests: like the objects, never deleted by the test.
    approved: Vec<Approved>,
}

impl Model {
    fn new(tag: &str) -> Model {
        Model {
            tag: tag.to_string(),
            ceiling: perms(&[("pods", "get"), ("pods", "list"), ("configmaps", "get")]),
            labelled: vec![true, false, true],
            partners: vec![None, None],
            incarnations: vec![0, 0],
            roles: BTreeMap::new(),
            links: BTreeMap::new(),
            grants: BTreeMap::new(),
            approved: Vec::new(),
        }
    }

    fn partner(&self, p: usize) -> String {
        format!("{}-p{p}", self.tag)
    }
    fn home(&self, p: usize) -> String {
        format!("{}-home{p}", self.tag)
    }
    fn client(&self, c: usize) -> String {
        format!("{}-c{c}", self.tag)
    }

    fn link(&self, c: usize, name: &str) -> Option<&Link> {
        self.links.get(&c)?.iter().find(|(n, _)| n == name).map(|(_, l)| l)
    }
    fn link_mut(&mut self, c: usize, name: &str) -> Option<&mut Link> {
        self.links.get_mut(&c)?.iter_mut().find(|(n, _)| n == name).map(|(_, l)| l)
    }
    /// Every link, as (client, name).
    fn all_links(&self) -> Vec<(usize, String)> {
        self.links.iter().flat_map(|(c, links)| links.iter().map(move |(n, _)| (*c, n.clone()))).collect()
    }

    /// Rule 6, over the selectors the test declares.
    fn namespace_allowed(&self, partner: &PartnerSpec, c: usize) -> bool {
        match partner.selector {
            Selector::Any => true,
            Selector::Labelled => self.labelled[c],
            Selector::Unlabelled => !self.labelled[c],
        }
    }

    /// Rule 4: users by suffix (a suffix alone is no user), groups by list, robots of the home.
    fn subject_allowed(partner: &PartnerSpec, who: &Who) -> bool {
        match who {
            Who::User(name) => {
                partner.suffixes.iter().any(|s| name.len() > s.len() && name.ends_with(s.as_str()))
            }
            Who::Group(group) => partner.groups.contains(group),
            Who::Robot(_) => true,
        }
    }

    fn level_perms(&self, c: usize, source: &Source) -> Option<BTreeSet<Perm>> {
        match source {
            Source::Inline(perms) => Some(perms.clone()),
            Source::Role(name) => self.roles.get(&(c, name.clone())).cloned(),
        }
    }

    /// Rule 3: the oldest link (then by name) holds the namespace, whether or not it grants.
    fn winner(&self, c: usize) -> Option<&Link> {
        let links = self.links.get(&c)?;
        links.iter().map(|(_, l)| l).min_by(|a, b| a.created.cmp(&b.created))
    }

    /// Every (subject as the API server sees it, client, perm) that is allowed at `now`.
    fn allowed(&self, now: Timestamp) -> BTreeSet<Access> {
        let mut out = BTreeSet::new();
        for c in 0..self.labelled.len() {
            let Some(link) = self.winner(c) else { continue };
            let p = link.partner;
            // A link to a partner that is gone still holds the namespace, but grants nothing.
            let Some(partner) = &self.partners[p] else { continue };
            if expired(link.expires_at, now) || link.suspended || !self.namespace_allowed(partner, c) {
                continue;
            }
            // A partner deleted and created again is another: only an accepted one grants.
            if link.accepted.is_some_and(|accepted| accepted != self.incarnations[p]) {
                continue;
            }
            for ((gp, grant_name), grant) in &self.grants {
                if *gp != p
                    || expired(grant.expires_at, now)
                    || !grant.clients.contains(&c)
                    || grant.subjects.is_empty()
                {
                    continue;
                }
                let Some(source) = link.levels.get(&grant.level) else { continue };
                let Some(perms) = self.level_perms(c, source) else { continue };
                if !perms.is_subset(&self.ceiling)
                    || !grant.subjects.iter().all(|w| Self::subject_allowed(partner, w))
                {
                    continue;
                }
                let bound = match link.on_request.contains(&grant.level) {
                    true => self.approved_subjects(partner, *gp, grant_name, c, grant),
                    false => grant.subjects.clone(),
                };
                for who in &bound {
                    for perm in &perms {
                        out.insert((self.principal(p, who), c, *perm));
                    }
                }
            }
        }
        out
    }

    /// Of an on-request grant, the people the approved requests for it name: a request naming
    /// someone the grant does not is refused whole, and an approver who is one of the partner's
    /// own identities approves nothing.
    fn approved_subjects(
        &self,
        partner: &PartnerSpec,
        p: usize,
        grant_name: &str,
        c: usize,
        grant: &Grant,
    ) -> BTreeSet<Who> {
        if Self::subject_allowed(partner, &Who::User(APPROVER.into())) {
            return BTreeSet::new();
        }
        self.approved
            .iter()
            .filter(|a| {
                a.p == p && a.grant == grant_name && a.c == c && a.subjects.is_subset(&grant.subjects)
            })
            .flat_map(|a| a.subjects.iter().cloned())
            .collect()
    }

    /// The links in force with their partner that have not yet accepted one record the one they
    /// are in force with (the operator writes it into the link's status). Returns them.
    fn record_acceptances(&mut self, now: Timestamp) -> Vec<(usize, String)> {
        let mut recorded = Vec::new();
        for c in 0..self.labelled.len() {
            let Some(winner) = self.winner(c) else { continue };
            let p = winner.partner;
            let Some(partner) = &self.partners[p] else { continue };
            let in_force =
                !expired(winner.expires_at, now) && !winner.suspended && self.namespace_allowed(partner, c);
            if !in_force || winner.accepted.is_some() {
                continue;
            }
            let name = winner.created.1.clone();
            let incarnation = self.incarnations[p];
            self.link_mut(c, &name).unwrap().accepted = Some(incarnation);
            recorded.push((c, name));
        }
        recorded
    }

    /// The key under which a subject is asked about (groups are asked through a member).
    fn principal(&self, p: usize, who: &Who) -> String {
        match who {
            Who::User(name) => name.clone(),
            Who::Group(group) => format!("member-of:{group}"),
            Who::Robot(name) => format!("system:serviceaccount:{}:{name}", self.home(p)),
        }
    }

    /// The latest expiry in [from, to], if any: where the model's answer may change.
    fn expiry_between(&self, from: Timestamp, to: Timestamp) -> Option<Timestamp> {
        let links = self.links.values().flatten().map(|(_, l)| l.expires_at);
        let grants = self.grants.values().map(|g| g.expires_at);
        links.chain(grants).flatten().filter(|at| (from..=to).contains(at)).max()
    }
}

/// Subjects as a grant or a request writes them.
fn subjects_json(subjects: &BTreeSet<Who>) -> Vec<Value> {
    subjects
        .iter()
        .map(|w| match w {
            Who::User(n) => json!({"kind": "User", "name": n}),
            Who::Group(g) => json!({"kind": "Group", "name": g}),
            Who::Robot(r) => json!({"kind": "ServiceAccount", "name": r}),
        })
        .collect()
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

/// The API server's answers for the whole matrix (a few SubjectAccessReviews at a time, so
/// that an observation is short next to the margin around expiries).
async fn observed(admin: &kube::Client, model: &Model) -> BTreeSet<Access> {
    let mut asks: Vec<(String, Vec<String>)> = principals();
    for p in 0..2 {
        for robot in ["bot1", "bot2"] {
            let home = model.home(p);
            asks.push((format!("system:serviceaccount:{home}:{robot}"), service_account_groups(&home)));
        }
    }
    let mut questions = Vec::new();
    for (name, groups) in &asks {
        for c in 0..model.labelled.len() {
            for perm in all_perms() {
                questions.push((name, groups, c, perm));
            }
        }
    }
    stream::iter(questions)
        .map(|(name, groups, c, perm)| async move {
            let user = if name.starts_with("member-of:") { "someone@nowhere.example" } else { name.as_str() };
            let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
            let allowed =
                can(admin, user, &groups, perm.verb, res("", perm.resource), &model.client(c)).await;
            allowed.then(|| (name.clone(), c, perm))
        })
        .buffer_unordered(6)
        .filter_map(|answer| async move { answer })
        .collect()
        .await
}

/// The API server and the model disagreed for longer than the operator is given.
struct Mismatch {
    expected: BTreeSet<Access>,
    actual: BTreeSet<Access>,
    at: Timestamp,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let missing: Vec<_> = self.expected.difference(&self.actual).collect();
        let extra: Vec<_> = self.actual.difference(&self.expected).collect();
        write!(
            f,
            "observed at {}:\n  allowed by the model only: {missing:?}\n  allowed by the API server only: {extra:?}",
            self.at
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Operations as data

/// How an expiry operation sets `expiresAt`; `InSecs` is resolved when the operation runs, so
/// that a replay keeps the distance to the expiry.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Expiry {
    Never,
    Past,
    InSecs(i64),
}

impl Expiry {
    fn resolve(self) -> Option<Timestamp> {
        match self {
            Expiry::Never => None,
            Expiry::Past => Some(Timestamp::from_second(1_577_836_800).unwrap()),
            // Whole seconds, as the API server stores them: between n and n+1 seconds from now.
            Expiry::InSecs(n) => Some(Timestamp::from_second(Timestamp::now().as_second() + n + 1).unwrap()),
        }
    }
}

/// One operation with every random choice resolved. Execution skips an operation that no longer
/// applies (a replay may have dropped what it acted on).
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Op {
    ApplyLink {
        c: usize,
        name: String,
        partner: usize,
        levels: BTreeMap<String, Source>,
    },
    DeleteLink {
        c: usize,
        name: String,
    },
    SuspendLink {
        c: usize,
        name: String,
        suspended: bool,
    },
    LinkExpiry {
        c: usize,
        name: String,
        expiry: Expiry,
    },
    ApplyGrant {
        p: usize,
        name: String,
        clients: BTreeSet<usize>,
        level: String,
        subjects: BTreeSet<Who>,
    },
    DeleteGrant {
        p: usize,
        name: String,
    },
    GrantExpiry {
        p: usize,
        name: String,
        expiry: Expiry,
    },
    Label {
        c: usize,
        labelled: bool,
    },
    Ceiling {
        perms: BTreeSet<Perm>,
    },
    Role {
        c: usize,
        perms: BTreeSet<Perm>,
    },
    CreatePartner {
        p: usize,
        spec: PartnerSpec,
    },
    ChangePartner {
        p: usize,
        spec: PartnerSpec,
    },
    DeletePartner {
        p: usize,
    },
    /// The client accepts the partner its link names as it is now (`spec.partnerUid`).
    ConfirmPartner {
        c: usize,
        name: String,
    },
    Restart {
        graceful: bool,
    },
    /// Heal the world again (every RESEED_EVERY steps), so that runs keep exercising access.
    Reseed,
    /// A level of a link becomes granted on request only, or no longer.
    OnRequest {
        c: usize,
        name: String,
        level: String,
        on: bool,
    },
    /// The partner asks for a grant of an on-request level in a client, for the grant's people
    /// now, and the link's approver approves.
    Approve {
        p: usize,
        grant: String,
        c: usize,
    },
}

impl Op {
    fn kind(&self) -> &'static str {
        let expiry = |e: &Expiry, what: [&'static str; 3]| match e {
            Expiry::Never => what[0],
            Expiry::Past => what[1],
            Expiry::InSecs(_) => what[2],
        };
        match self {
            Op::ApplyLink { .. } => "apply link",
            Op::DeleteLink { .. } => "delete link",
            Op::SuspendLink { .. } => "suspend link",
            Op::LinkExpiry { expiry: e, .. } => {
                expiry(e, ["link expiry cleared", "link expired", "link expires soon"])
            }
            Op::ApplyGrant { .. } => "apply grant",
            Op::DeleteGrant { .. } => "delete grant",
            Op::GrantExpiry { expiry: e, .. } => {
                expiry(e, ["grant expiry cleared", "grant expired", "grant expires soon"])
            }
            Op::Label { .. } => "label namespace",
            Op::Ceiling { .. } => "ceiling",
            Op::Role { .. } => "role",
            Op::CreatePartner { .. } => "create partner",
            Op::ChangePartner { .. } => "change partner",
            Op::DeletePartner { .. } => "delete partner",
            Op::ConfirmPartner { .. } => "confirm partner",
            Op::Restart { graceful: false } => "restart: SIGKILL",
            Op::Restart { graceful: true } => "restart: SIGTERM",
            Op::Reseed => "re-seed",
            Op::OnRequest { on: true, .. } => "level on request",
            Op::OnRequest { on: false, .. } => "level standing",
            Op::Approve { .. } => "approve request",
        }
    }
}

fn numbered(ops: &[Op]) -> String {
    ops.iter().enumerate().map(|(i, op)| format!("  {:>3}. {op:?}", i + 1)).collect::<Vec<_>>().join("\n")
}

// ---------------------------------------------------------------------------------------------
// Generation: pure, from the RNG and the model

/// Random sequences drift towards a world of refusals (a deleted link or partner, an expiry):
/// every so many steps the seeded world is restored.
const RESEED_EVERY: usize = 12;

/// Generated kinds and their weights: the ones that restore access (apply, clear an expiry,
/// re-create a partner) outweigh the ones that take it away, so that access stays common.
const WEIGHTS: [(&str, u32); 23] = [
    ("apply link", 4),
    ("delete link", 1),
    ("suspend link", 2),
    ("link expiry cleared", 2),
    ("link expired", 1),
    ("link expires soon", 2),
    ("apply grant", 5),
    ("delete grant", 1),
    ("grant expiry cleared", 2),
    ("grant expired", 1),
    ("grant expires soon", 2),
    ("label namespace", 2),
    ("ceiling", 2),
    ("role", 2),
    ("create partner", 4),
    ("change partner", 2),
    ("delete partner", 1),
    ("confirm partner", 2),
    ("restart: SIGKILL", 1),
    ("restart: SIGTERM", 1),
    ("level on request", 2),
    ("level standing", 1),
    ("approve request", 3),
];

/// Kinds a run of 25 steps or more must contain: in the second half the generator turns to
/// those still missing first, and the test asserts that they occurred.
const MUST_OCCUR: [&str; 9] = [
    "level on request",
    "approve request",
    "link expires soon",
    "grant expires soon",
    "create partner",
    "change partner",
    "delete partner",
    "restart: SIGKILL",
    "restart: SIGTERM",
];

struct Generator {
    rng: StdRng,
}

impl Generator {
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())].clone()
    }

    /// The next operation; `wanted` lists kinds to try first (the ones that must still occur).
    fn next(&mut self, model: &Model, wanted: &[&'static str]) -> Op {
        let mut wanted = wanted.to_vec();
        while !wanted.is_empty() {
            let kind = wanted.swap_remove(self.rng.random_range(0..wanted.len()));
            // A partner can only be re-created once one is gone.
            let kind = if kind == "create partner" && model.partners.iter().all(Option::is_some) {
                "delete partner"
            } else {
                kind
            };
            if let Some(op) = self.propose(kind, model) {
                return op;
            }
        }
        let total: u32 = WEIGHTS.iter().map(|(_, w)| w).sum();
        loop {
            let mut roll = self.rng.random_range(0..total);
            let mut kind = WEIGHTS[0].0;
            for (k, w) in WEIGHTS {
                if roll < w {
                    kind = k;
                    break;
                }
                roll -= w;
            }
            if let Some(op) = self.propose(kind, model) {
                return op;
            }
        }
    }

    /// An operation of `kind`, or `None` when the model holds nothing it could act on.
    fn propose(&mut self, kind: &str, model: &Model) -> Option<Op> {
        let c = self.rng.random_range(0..model.labelled.len());
        let p = self.rng.random_range(0..2);
        let soon = Expiry::InSecs(self.rng.random_range(2..=6));
        Some(match kind {
            "apply link" => self.apply_link(model, c, p),
            "delete link" => {
                let (c, name) = self.some_link(model, |_| true)?;
                Op::DeleteLink { c, name }
            }
            "confirm partner" => {
                let (c, name) = self.some_link(model, |l| model.partners[l.partner].is_some())?;
                Op::ConfirmPartner { c, name }
            }
            "suspend link" => {
                let (c, name) = self.some_link(model, |_| true)?;
                let suspended = !model.link(c, &name).unwrap().suspended;
                Op::SuspendLink { c, name, suspended }
            }
            "link expiry cleared" => self.link_expiry(model, Expiry::Never, |l| l.expires_at.is_some())?,
            "link expired" => self.link_expiry(model, Expiry::Past, |_| true)?,
            "link expires soon" => self.link_expiry(model, soon, |_| true)?,
            "apply grant" => self.apply_grant(p),
            "delete grant" => {
                let (p, name) = self.some_grant(model, |_| true)?;
                Op::DeleteGrant { p, name }
            }
            "grant expiry cleared" => self.grant_expiry(model, Expiry::Never, |g| g.expires_at.is_some())?,
            "grant expired" => self.grant_expiry(model, Expiry::Past, |_| true)?,
            "grant expires soon" => self.grant_expiry(model, soon, |_| true)?,
            "label namespace" => Op::Label { c, labelled: !model.labelled[c] },
            "ceiling" => Op::Ceiling {
                perms: self
                    .random_perms()
                    .union(&perms(&[("pods", "get"), ("pods", "list")]))
                    .cloned()
                    .collect(),
            },
            "role" => Op::Role { c, perms: self.random_perms() },
            "create partner" => {
                let gone: Vec<usize> = (0..2).filter(|p| model.partners[*p].is_none()).collect();
                let p = *gone.get(self.rng.random_range(0..gone.len().max(1)))?;
                // Mostly as it was first declared, so that the old links and grants come back.
                let spec =
                    if self.rng.random_bool(0.6) { PartnerSpec::healthy(p) } else { self.random_partner(p) };
                Op::CreatePartner { p, spec }
            }
            "change partner" => {
                model.partners[p].as_ref()?;
                Op::ChangePartner { p, spec: self.random_partner(p) }
            }
            "delete partner" => {
                model.partners[p].as_ref()?;
                Op::DeletePartner { p }
            }
            "restart: SIGKILL" => Op::Restart { graceful: false },
            "restart: SIGTERM" => Op::Restart { graceful: true },
            "level on request" | "level standing" => {
                let on = kind == "level on request";
                let (c, name) = self.some_link(model, |_| true)?;
                let level = self.pick(&["l0", "l1"]).to_string();
                Op::OnRequest { c, name, level, on }
            }
            "approve request" => {
                let (p, grant) = self.some_grant(model, |g| !g.subjects.is_empty())?;
                let clients: Vec<usize> = model.grants[&(p, grant.clone())].clients.iter().copied().collect();
                let c = self.pick(&clients);
                Op::Approve { p, grant, c }
            }
            other => unreachable!("no generator for {other}"),
        })
    }

    fn some_link(&mut self, model: &Model, filter: impl Fn(&Link) -> bool) -> Option<(usize, String)> {
        let links: Vec<(usize, String)> =
            model.all_links().into_iter().filter(|(c, n)| filter(model.link(*c, n).unwrap())).collect();
        (!links.is_empty()).then(|| self.pick(&links))
    }

    fn some_grant(&mut self, model: &Model, filter: impl Fn(&Grant) -> bool) -> Option<(usize, String)> {
        let grants: Vec<(usize, String)> =
            model.grants.iter().filter(|(_, g)| filter(g)).map(|(k, _)| k.clone()).collect();
        (!grants.is_empty()).then(|| self.pick(&grants))
    }

    fn link_expiry(&mut self, model: &Model, expiry: Expiry, filter: impl Fn(&Link) -> bool) -> Option<Op> {
        let (c, name) = self.some_link(model, filter)?;
        Some(Op::LinkExpiry { c, name, expiry })
    }

    fn grant_expiry(&mut self, model: &Model, expiry: Expiry, filter: impl Fn(&Grant) -> bool) -> Option<Op> {
        let (p, name) = self.some_grant(model, filter)?;
        Some(Op::GrantExpiry { p, name, expiry })
    }

    fn apply_link(&mut self, model: &Model, c: usize, p: usize) -> Op {
        let name = format!("link{}", self.rng.random_range(0..2));
        let second = if self.rng.random_bool(0.5) {
            Source::Role("r".into())
        } else {
            Source::Inline(self.random_perms())
        };
        let levels: BTreeMap<String, Source> =
            [("l0".to_string(), Source::Inline(self.random_perms())), ("l1".to_string(), second)].into();
        // spec.partner is immutable: an existing link keeps its partner.
        let partner = model.link(c, &name).map_or(p, |l| l.partner);
        Op::ApplyLink { c, name, partner, levels }
    }

    fn apply_grant(&mut self, p: usize) -> Op {
        let name = format!("g{}", self.rng.random_range(0..3));
        let n = self.pick(&[0usize, 1, 1, 2, 2, 3]);
        let subjects: BTreeSet<Who> = (0..n).map(|_| self.random_subject(p)).collect();
        // Mostly the namespace the partner starts linked to (p0: c0, p1: c2).
        let mut clients: BTreeSet<usize> = [if p == 0 { 0 } else { 2 }].into();
        if self.rng.random_bool(0.4) {
            clients.insert(self.rng.random_range(0..3));
        }
        let level = self.pick(&["l0", "l0", "l1", "l2"]).to_string();
        Op::ApplyGrant { p, name, clients, level, subjects }
    }

    /// Mostly permissions the starting ceiling allows, sometimes anything.
    fn random_perms(&mut self) -> BTreeSet<Perm> {
        let all = all_perms();
        let usual: Vec<Perm> =
            perms(&[("pods", "get"), ("pods", "list"), ("configmaps", "get")]).into_iter().collect();
        let n = self.rng.random_range(1..4);
        (0..n).map(|_| if self.rng.random_bool(0.75) { self.pick(&usual) } else { self.pick(&all) }).collect()
    }

    fn random_subject(&mut self, p: usize) -> Who {
        let name = self.pick(&["ann", "ben"]);
        match self.rng.random_range(0..11) {
            0..=4 => Who::User(format!("{name}@p{p}.example")),
            5 => Who::User(format!("{name}@p{}.example", 1 - p)),
            6 | 7 => Who::Group(format!("p{p}:staff")),
            8 => Who::Group(format!("p{}:staff", 1 - p)),
            _ => Who::Robot(self.pick(&["bot1", "bot2"]).to_string()),
        }
    }

    /// Each value with its own chance.
    fn some_of<const N: usize>(&mut self, options: [(String, f64); N]) -> BTreeSet<String> {
        options
            .into_iter()
            .filter(|(_, chance)| self.rng.random_bool(*chance))
            .map(|(value, _)| value)
            .collect()
    }

    /// Identities and selector changed: mostly its own people, sometimes the other partner's,
    /// sometimes none, sometimes the client's (its approver among them, who then approves
    /// nothing of this partner's). A suffix covering everyone's users (`.example`) is refused at
    /// admission since suffixes are `@` and a domain with a dot.
    fn random_partner(&mut self, p: usize) -> PartnerSpec {
        let suffixes = self.some_of([
            (format!("@p{p}.example"), 0.8),
            (format!("@p{}.example", 1 - p), 0.2),
            ("@client.example".into(), 0.15),
        ]);
        let groups = self.some_of([(format!("p{p}:staff"), 0.8), (format!("p{}:staff", 1 - p), 0.2)]);
        let selector =
            self.pick(&[Selector::Any, Selector::Labelled, Selector::Labelled, Selector::Unlabelled]);
        PartnerSpec { suffixes, groups, selector }
    }
}

// ---------------------------------------------------------------------------------------------
// Execution: a world on the control plane, and the model kept in step with it

/// How long the operator is given to make the cluster agree with the model after a step.
const CONVERGENCE: Duration = Duration::from_secs(20);
/// Around an expiry the truth is in doubt (rule 7: "within a second"): no comparison there.
const MARGIN: SignedDuration = SignedDuration::from_millis(1500);
/// An observation's usual length, so that one is not started just before an expiry.
const OBSERVATION: SignedDuration = SignedDuration::from_millis(1000);

/// One world: its own names, client namespaces, ceiling and operator.
struct World {
    admin: kube::Client,
    model: Model,
    operator: Option<Operator>,
    ceiling: String,
}

impl World {
    /// A fresh world on the shared control plane, seeded healthy.
    async fn create(admin: &kube::Client) -> World {
        let tag = unique("m");
        let mut world = World {
            admin: admin.clone(),
            model: Model::new(&tag),
            operator: None,
            ceiling: format!("{tag}-ceiling"),
        };
        world.write_ceiling().await;
        for c in 0..world.model.labelled.len() {
            let labels = if world.model.labelled[c] { json!({ALLOWED.0: ALLOWED.1}) } else { json!({}) };
            world
                .apply(
                    "v1",
                    "Namespace",
                    None,
                    json!({"metadata": {"name": world.model.client(c), "labels": labels}}),
                )
                .await;
        }
        world.operator = Some(Operator::start(&["--ceiling", &world.ceiling]));
        world.seed().await;
        world
    }

    /// Deletes what the world declared, so that the next world's operator has little else to
    /// do; not waited for, since nothing here is compared any more.
    async fn teardown(self) {
        let delete = DeleteParams::default();
        let partners: Api<Partner> = Api::all(self.admin.clone());
        let namespaces: Api<Namespace> = Api::all(self.admin.clone());
        for p in 0..2 {
            let _ = partners.delete(&self.model.partner(p), &delete).await;
            let _ = namespaces.delete(&self.model.home(p), &delete).await;
        }
        for c in 0..self.model.labelled.len() {
            let _ = namespaces.delete(&self.model.client(c), &delete).await;
        }
        let _ = Api::<ClusterRole>::all(self.admin.clone()).delete(&self.ceiling, &delete).await;
        // The operator is killed with `self`; the next world's finishes the finalizers.
    }

    /// A healthy start: both partners as first declared, each linked to one namespace (p0: c0,
    /// p1: c2) with working grants.
    async fn seed(&mut self) {
        for p in 0..2 {
            self.model.partners[p] = Some(PartnerSpec::healthy(p));
            self.write_partner(p).await;
        }
        self.wait_for_homes().await;
        for (c, p) in [(0usize, 0usize), (2, 1)] {
            // Any other link there would hold the namespace: remove it first.
            let others: Vec<String> = self
                .model
                .links
                .get(&c)
                .into_iter()
                .flatten()
                .map(|(n, _)| n.clone())
                .filter(|n| n != "link0")
                .collect();
            for name in others {
                self.delete_link(c, &name).await;
            }
            if self.model.link(c, "link0").is_some_and(|link| link.partner != p) {
                self.delete_link(c, "link0").await;
            }
            self.model.roles.insert((c, "r".into()), perms(&[("configmaps", "get")]));
            self.write_role(c, "r").await;
            let levels: BTreeMap<String, Source> = [
                ("l0".to_string(), Source::Inline(perms(&[("pods", "get"), ("pods", "list")]))),
                ("l1".to_string(), Source::Role("r".into())),
            ]
            .into();
            // A healed world: the link accepts its partner as it is now.
            let uid = self.partner_uid(p).await;
            let accepted = Some(self.model.incarnations[p]);
            let link = Link {
                partner: p,
                levels,
                expires_at: None,
                suspended: false,
                created: (0, "link0".into()),
                accepted,
                confirmed_uid: Some(uid),
                on_request: BTreeSet::new(),
            };
            match self.model.link_mut(c, "link0") {
                Some(existing) => *existing = Link { created: existing.created.clone(), ..link },
                None => self.model.links.entry(c).or_default().push(("link0".into(), link)),
            }
            self.write_link(c, "link0").await;
            self.record_creation(c, "link0").await;
            let subjects: BTreeSet<Who> = [
                Who::User(format!("ann@p{p}.example")),
                Who::Group(format!("p{p}:staff")),
                Who::Robot("bot1".into()),
            ]
            .into();
            let g0 = Grant { clients: [c].into(), level: "l0".into(), subjects, expires_at: None };
            self.model.grants.insert((p, "g0".into()), g0);
            self.write_grant(p, "g0").await;
            let g1 = Grant {
                clients: [c].into(),
                level: "l1".into(),
                subjects: [Who::User(format!("ben@p{p}.example"))].into(),
                expires_at: None,
            };
            self.model.grants.insert((p, "g1".into()), g1);
            self.write_grant(p, "g1").await;
        }
    }

    /// The operator creates the partners' home namespaces; grants can only live there after.
    async fn wait_for_homes(&self) {
        let namespaces: Api<Namespace> = Api::all(self.admin.clone());
        for p in 0..2 {
            let home = self.model.home(p);
            until("the partner's home namespace exists", WAIT, || {
                let (namespaces, home) = (namespaces.clone(), home.clone());
                async move { namespaces.get_opt(&home).await.unwrap().is_some() }
            })
            .await;
        }
    }

    /// Applies `op` to the cluster and the model; false if it no longer applies (skipped).
    async fn execute(&mut self, op: &Op) -> bool {
        match op.clone() {
            Op::ApplyLink { c, name, partner, levels } => {
                match self.model.link_mut(c, &name) {
                    // spec.partner is immutable: a replay may meet a link made for another partner.
                    Some(link) if link.partner != partner => return false,
                    Some(link) => {
                        *link = Link {
                            levels,
                            expires_at: None,
                            suspended: false,
                            on_request: BTreeSet::new(),
                            ..link.clone()
                        }
                    }
                    None => {
                        let created = (0, name.clone());
                        let link = Link {
                            partner,
                            levels,
                            expires_at: None,
                            suspended: false,
                            created,
                            accepted: None,
                            confirmed_uid: None,
                            on_request: BTreeSet::new(),
                        };
                        self.model.links.entry(c).or_default().push((name.clone(), link));
                    }
                }
                self.write_link(c, &name).await;
                self.record_creation(c, &name).await;
            }
            Op::DeleteLink { c, name } => {
                if self.model.link(c, &name).is_none() {
                    return false;
                }
                self.delete_link(c, &name).await;
            }
            Op::SuspendLink { c, name, suspended } => {
                let Some(link) = self.model.link_mut(c, &name) else { return false };
                link.suspended = suspended;
                self.write_link(c, &name).await;
            }
            Op::LinkExpiry { c, name, expiry } => {
                let Some(link) = self.model.link_mut(c, &name) else { return false };
                link.expires_at = expiry.resolve();
                self.write_link(c, &name).await;
            }
            Op::ApplyGrant { p, name, clients, level, subjects } => {
                self.model
                    .grants
                    .insert((p, name.clone()), Grant { clients, level, subjects, expires_at: None });
                self.write_grant(p, &name).await;
            }
            Op::DeleteGrant { p, name } => {
                if self.model.grants.remove(&(p, name.clone())).is_none() {
                    return false;
                }
                let api: Api<AccessGrant> = Api::namespaced(self.admin.clone(), &self.model.home(p));
                delete_and_wait(api, &name, "the grant is deleted").await;
            }
            Op::GrantExpiry { p, name, expiry } => {
                let Some(grant) = self.model.grants.get_mut(&(p, name.clone())) else { return false };
                grant.expires_at = expiry.resolve();
                self.write_grant(p, &name).await;
            }
            Op::Label { c, labelled } => {
                self.model.labelled[c] = labelled;
                let value = if labelled { json!(ALLOWED.1) } else { Value::Null };
                let patch = json!({"metadata": {"labels": {ALLOWED.0: value}}});
                Api::<Namespace>::all(self.admin.clone())
                    .patch(&self.model.client(c), &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .unwrap();
            }
            Op::Ceiling { perms } => {
                self.model.ceiling = perms;
                self.write_ceiling().await;
            }
            Op::Role { c, perms } => {
                self.model.roles.insert((c, "r".into()), perms);
                self.write_role(c, "r").await;
            }
            Op::CreatePartner { p, spec } | Op::ChangePartner { p, spec } => {
                // Create only what is gone, change only what exists: as generated.
                if self.model.partners[p].is_some() != matches!(op, Op::ChangePartner { .. }) {
                    return false;
                }
                if self.model.partners[p].is_none() {
                    self.model.incarnations[p] += 1;
                }
                self.model.partners[p] = Some(spec);
                self.write_partner(p).await;
            }
            Op::DeletePartner { p } => {
                if self.model.partners[p].take().is_none() {
                    return false;
                }
                // Its finalizer revokes everything granted in its name before it lets go.
                let api: Api<Partner> = Api::all(self.admin.clone());
                delete_and_wait(api, &self.model.partner(p), "the partner is deleted").await;
            }
            Op::ConfirmPartner { c, name } => {
                let Some(link) = self.model.link(c, &name) else { return false };
                let p = link.partner;
                if self.model.partners[p].is_none() {
                    return false;
                }
                let uid = self.partner_uid(p).await;
                let incarnation = self.model.incarnations[p];
                let link = self.model.link_mut(c, &name).unwrap();
                (link.accepted, link.confirmed_uid) = (Some(incarnation), Some(uid));
                self.write_link(c, &name).await;
            }
            Op::Restart { graceful } => self.restart_operator(graceful).await,
            Op::Reseed => self.seed().await,
            Op::OnRequest { c, name, level, on } => {
                let Some(link) = self.model.link_mut(c, &name) else { return false };
                if on {
                    link.on_request.insert(level);
                } else {
                    link.on_request.remove(&level);
                }
                self.write_link(c, &name).await;
            }
            Op::Approve { p, grant, c } => {
                let Some(declared) = self.model.grants.get(&(p, grant.clone())) else { return false };
                let subjects = declared.subjects.clone();
                if subjects.is_empty() || !declared.clients.contains(&c) {
                    return false;
                }
                self.approve(p, &grant, c, &subjects).await;
                self.model.approved.push(Approved { p, grant, c, subjects });
            }
        }
        true
    }

    /// An AccessRequest in the partner's home and the approver's AccessApproval in the client
    /// namespace, naming it by UID.
    async fn approve(&self, p: usize, grant: &str, c: usize, subjects: &BTreeSet<Who>) {
        let (home, client) = (self.model.home(p), self.model.client(c));
        let name = unique("req");
        let request = json!({"apiVersion": "liaison.dev/v1alpha1", "kind": "AccessRequest", "metadata": {"name": name, "namespace": home},
                             "spec": {"grant": grant, "client": client, "duration": "1h", "reason": "model",
                                      "requestedBy": format!("admin@p{p}.example"), "subjects": subjects_json(subjects)}});
        let requests: Api<AccessRequest> = Api::namespaced(self.admin.clone(), &home);
        let created = requests
            .create(&Default::default(), &serde_json::from_value(request).unwrap())
            .await
            .expect("creating a request");
        let approval = json!({"apiVersion": "liaison.dev/v1alpha1", "kind": "AccessApproval", "metadata": {"name": name, "namespace": client},
                              "spec": {"request": {"namespace": home, "name": name, "uid": created.metadata.uid},
                                       "decision": "Approve", "decidedBy": APPROVER}});
        let approvals: Api<AccessApproval> = Api::namespaced(self.admin.clone(), &client);
        approvals
            .create(&Default::default(), &serde_json::from_value(approval).unwrap())
            .await
            .expect("creating an approval");
    }

    /// SIGKILL (no chance to finish anything) or SIGTERM (finish in-flight work, exit by
    /// itself), then a new operator process.
    async fn restart_operator(&mut self, graceful: bool) {
        if let Some(mut operator) = self.operator.take() {
            if graceful {
                let pid = operator.pid().to_string();
                let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
                let status = eventually("the operator exits after SIGTERM", Duration::from_secs(30), || {
                    let status = operator.try_wait();
                    async move { status }
                })
                .await;
                assert!(
                    status.success(),
                    "the operator exited with {status} after SIGTERM; its log: {}",
                    operator.log.display()
                );
            } else {
                operator.kill();
            }
        }
        self.operator = Some(Operator::start(&["--ceiling", &self.ceiling]));
    }

    /// Waits until the API server answers as the model says at the instant of the observation.
    /// An observation that comes within MARGIN of an expiry is not compared: the loop waits
    /// until the expiry has clearly passed, then gives the operator a little more time.
    async fn converge(&self) -> Result<BTreeSet<Access>, Mismatch> {
        let mut deadline = Instant::now() + CONVERGENCE;
        loop {
            let start = Timestamp::now();
            if let Some(at) = self.model.expiry_between(start - MARGIN, start + MARGIN + OBSERVATION) {
                sleep_until(at + MARGIN).await;
                deadline = deadline.max(Instant::now() + Duration::from_secs(5));
                continue;
            }
            let actual = observed(&self.admin, &self.model).await;
            if self.model.expiry_between(start - MARGIN, Timestamp::now() + MARGIN).is_some() {
                continue; // the observation straddled an expiry
            }
            let expected = self.model.allowed(start);
            if actual == expected {
                return Ok(expected);
            }
            if Instant::now() > deadline {
                return Err(Mismatch { expected, actual, at: start });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// After the last step: an expiry still ahead would otherwise never be looked at, so wait
    /// for the last one and compare once more.
    async fn settle(&self) -> Result<(), Mismatch> {
        let now = Timestamp::now();
        if let Some(at) = self.model.expiry_between(now, now + SignedDuration::from_hours(1)) {
            sleep_until(at + MARGIN).await;
            self.converge().await?;
        }
        Ok(())
    }

    async fn apply(&self, api_version: &str, kind: &str, namespace: Option<&str>, body: Value) {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut object = body;
        object["apiVersion"] = json!(api_version);
        object["kind"] = json!(kind);
        if let Some(ns) = namespace {
            object["metadata"]["namespace"] = json!(ns);
        }
        std::fs::write(file.path(), serde_json::to_string(&object).unwrap()).unwrap();
        let (ok, out) =
            kubectl(&["apply", "--server-side", "--force-conflicts", "-f", file.path().to_str().unwrap()]);
        assert!(ok, "apply failed: {out}");
    }

    async fn write_partner(&self, p: usize) {
        let partner = self.model.partners[p].as_ref().unwrap();
        // A partner re-created after a deletion takes back its old home, which still carries the
        // deleted Partner's mark: the platform admin adopts it explicitly, and consents to it
        // on the namespace (absent before the first creation: nothing to consent to).
        let consent = json!({"metadata": {"labels": {"liaison.dev/adoptable-by": self.model.partner(p)}}});
        let _ = Api::<Namespace>::all(self.admin.clone())
            .patch(&self.model.home(p), &PatchParams::default(), &Patch::Merge(&consent))
            .await;
        let mut spec = json!({
            "homeNamespace": self.model.home(p),
            "adoptExistingHome": true,
            "identities": {"userSuffixes": partner.suffixes, "groups": partner.groups},
        });
        match partner.selector {
            Selector::Any => {}
            Selector::Labelled => {
                spec["clientNamespaceSelector"] = json!({"matchLabels": {ALLOWED.0: ALLOWED.1}})
            }
            Selector::Unlabelled => {
                spec["clientNamespaceSelector"] =
                    json!({"matchExpressions": [{"key": ALLOWED.0, "operator": "DoesNotExist"}]})
            }
        }
        self.apply(
            "liaison.dev/v1alpha1",
            "Partner",
            None,
            json!({"metadata": {"name": self.model.partner(p)}, "spec": spec}),
        )
        .await;
    }

    async fn write_link(&self, c: usize, name: &str) {
        let link = self.model.link(c, name).unwrap();
        let levels: Vec<Value> = link
            .levels
            .iter()
            .map(|(level, source)| {
                let mut json = match source {
                    Source::Inline(perms) => json!({"name": level, "rules": rules_json(perms)}),
                    Source::Role(role) => json!({"name": level, "role": role}),
                };
                if link.on_request.contains(level) {
                    json["onRequest"] = json!({"maxDuration": "1h"});
                }
                json
            })
            .collect();
        let mut spec = json!({"partner": self.model.partner(link.partner), "accessLevels": levels, "suspended": link.suspended,
                              "approvers": [APPROVER]});
        if let Some(at) = link.expires_at {
            spec["expiresAt"] = json!(at.to_string());
        }
        if let Some(uid) = &link.confirmed_uid {
            spec["partnerUid"] = json!(uid);
        }
        self.apply(
            "liaison.dev/v1alpha1",
            "ClientLink",
            Some(&self.model.client(c)),
            json!({"metadata": {"name": name}, "spec": spec}),
        )
        .await;
    }

    async fn write_grant(&self, p: usize, name: &str) {
        let grant = &self.model.grants[&(p, name.to_string())];
        let subjects = subjects_json(&grant.subjects);
        let clients: Vec<String> = grant.clients.iter().map(|c| self.model.client(*c)).collect();
        let mut spec = json!({"clients": clients, "accessLevel": grant.level, "subjects": subjects});
        if let Some(at) = grant.expires_at {
            spec["expiresAt"] = json!(at.to_string());
        }
        self.apply(
            "liaison.dev/v1alpha1",
            "AccessGrant",
            Some(&self.model.home(p)),
            json!({"metadata": {"name": name}, "spec": spec}),
        )
        .await;
    }

    async fn write_ceiling(&self) {
        let body = json!({"metadata": {"name": self.ceiling}, "rules": rules_json(&self.model.ceiling)});
        self.apply("rbac.authorization.k8s.io/v1", "ClusterRole", None, body).await;
    }

    async fn write_role(&self, c: usize, name: &str) {
        let rules = rules_json(&self.model.roles[&(c, name.to_string())]);
        self.apply(
            "rbac.authorization.k8s.io/v1",
            "Role",
            Some(&self.model.client(c)),
            json!({"metadata": {"name": name}, "rules": rules}),
        )
        .await;
    }

    /// Deletes a link from the model and the cluster, waiting until its finalizer has let it go
    /// (revocation done).
    async fn delete_link(&mut self, c: usize, name: &str) {
        self.model.links.get_mut(&c).unwrap().retain(|(n, _)| n != name);
        let api: Api<ClientLink> = Api::namespaced(self.admin.clone(), &self.model.client(c));
        delete_and_wait(api, name, "the link is deleted").await;
    }

    /// The UID of partner `p` as it is now.
    async fn partner_uid(&self, p: usize) -> String {
        let partner = Api::<Partner>::all(self.admin.clone()).get(&self.model.partner(p)).await.unwrap();
        partner.metadata.uid.expect("a Partner has a UID")
    }

    /// After a step has converged: links in force that had accepted no partner yet record the
    /// one they are in force with, as the operator does in their status (waited for, so that
    /// the next step cannot outrun it).
    async fn record_acceptances(&mut self) {
        for (c, name) in self.model.record_acceptances(Timestamp::now()) {
            let links: Api<ClientLink> = Api::namespaced(self.admin.clone(), &self.model.client(c));
            until("the link records the partner it accepted", WAIT, || {
                let (links, name) = (links.clone(), name.clone());
                async move { links.get(&name).await.ok().and_then(|l| l.status?.partner_uid).is_some() }
            })
            .await;
        }
    }

    /// The model orders links by creation second, then name, as the API server records them.
    async fn record_creation(&mut self, c: usize, name: &str) {
        let link =
            Api::<ClientLink>::namespaced(self.admin.clone(), &self.model.client(c)).get(name).await.unwrap();
        let second = link.metadata.creation_timestamp.unwrap().0.as_second();
        self.model.link_mut(c, name).unwrap().created = (second, name.to_string());
    }
}

/// Deletes an object and waits until it is gone: a finalizer may hold it for a while, and a
/// re-creation with the same name must not land on the object being deleted.
async fn delete_and_wait<K>(api: Api<K>, name: &str, what: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + fmt::Debug,
{
    api.delete(name, &DeleteParams::default()).await.unwrap();
    until_gone(&api, name, what, WAIT).await;
}

async fn sleep_until(at: Timestamp) {
    let left = at.duration_since(Timestamp::now());
    if left.is_positive() {
        tokio::time::sleep(left.unsigned_abs()).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Shrinking

/// Runs `ops` in a fresh world; the first divergence, as (step, mismatch), step 0 being the
/// seeded world and step k the one after `ops[k - 1]` (the last one includes `settle`).
async fn replay(admin: &kube::Client, ops: &[Op]) -> Option<(usize, Mismatch)> {
    let mut world = World::create(admin).await;
    let mut divergence = None;
    for step in 0..=ops.len() {
        if step > 0 {
            world.execute(&ops[step - 1]).await;
        }
        if let Err(mismatch) = world.converge().await {
            divergence = Some((step, mismatch));
            break;
        }
        world.record_acceptances().await;
    }
    if divergence.is_none() {
        divergence = world.settle().await.err().map(|mismatch| (ops.len(), mismatch));
    }
    world.teardown().await;
    divergence
}

struct Shrunk {
    ops: Vec<Op>,
    step: usize,
    mismatch: Mismatch,
    replays: usize,
}

/// Delta debugging (complements only): drop one of n chunks and keep the result if it still
/// diverges (cut after the diverging step), else split finer, down to single operations.
/// `None` if the sequence does not diverge again in a fresh world (a timing-dependent failure).
async fn shrink(admin: &kube::Client, failing: &[Op], budget: Duration) -> Option<Shrunk> {
    let deadline = Instant::now() + budget;
    let (step, mismatch) = replay(admin, failing).await?;
    let mut best = Shrunk { ops: failing[..step].to_vec(), step, mismatch, replays: 1 };
    let mut n = 2;
    while best.ops.len() >= 2 && Instant::now() < deadline {
        let chunk = best.ops.len().div_ceil(n);
        let mut reduced = false;
        for start in (0..best.ops.len()).step_by(chunk) {
            if Instant::now() >= deadline {
                break;
            }
            let end = (start + chunk).min(best.ops.len());
            let candidate: Vec<Op> = best.ops[..start].iter().chain(&best.ops[end..]).cloned().collect();
            best.replays += 1;
            if let Some((step, mismatch)) = replay(admin, &candidate).await {
                best = Shrunk { ops: candidate[..step].to_vec(), step, mismatch, replays: best.replays };
                n = (n - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if n >= best.ops.len() {
                break;
            }
            n = (2 * n).min(best.ops.len());
        }
    }
    Some(best)
}

/// What a divergence prints: the seed, the sequence, and a shortened one with how to replay it.
async fn failure_report(
    admin: &kube::Client,
    origin: &str,
    ops: &[Op],
    step: usize,
    mismatch: &Mismatch,
) -> String {
    let mut report = format!(
        "divergence after step {step} ({origin}), {mismatch}\nsequence ({} operations):\n{}\n",
        ops.len(),
        numbered(ops)
    );
    let budget = Duration::from_secs(
        std::env::var("LIAISON_MODEL_SHRINK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(300),
    );
    if budget.is_zero() {
        return report + "not shrunk (LIAISON_MODEL_SHRINK_SECS=0)";
    }
    let started = Instant::now();
    match shrink(admin, &ops[..step], budget).await {
        None => report
            .push_str("shrinking: the sequence did not diverge again in a fresh world (timing-dependent?)\n"),
        Some(shrunk) => {
            report.push_str(&format!(
                "shortened to {} operations ({} replays, {:.0}s), diverging after step {}, {}\n{}\nreplay with:\n  LIAISON_MODEL_REPLAY='{}' make test-model\n",
                shrunk.ops.len(),
                shrunk.replays,
                started.elapsed().as_secs_f64(),
                shrunk.step,
                shrunk.mismatch,
                numbered(&shrunk.ops),
                serde_json::to_string(&shrunk.ops).unwrap(),
            ));
        }
    }
    report
}

// ---------------------------------------------------------------------------------------------
// The test

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

#[tokio::test]
async fn the_api_server_authorizes_exactly_what_the_model_says() {
    let admin = client().await;
    install_liaison(&admin).await;
    let seed: u64 = env_or("LIAISON_MODEL_SEED", 20261122);
    let script: Option<Vec<Op>> = std::env::var("LIAISON_MODEL_REPLAY").ok().map(|json| {
        serde_json::from_str(&json).expect("LIAISON_MODEL_REPLAY holds a JSON array of operations")
    });
    let steps: usize = script.as_ref().map_or_else(|| env_or("LIAISON_MODEL_STEPS", 25), Vec::len);
    let origin = if script.is_some() {
        "LIAISON_MODEL_REPLAY".to_string()
    } else {
        format!("seed {seed}, {steps} steps")
    };
    let started = Instant::now();
    let mut generator = Generator { rng: StdRng::seed_from_u64(seed) };
    let mut world = World::create(&admin).await;
    let mut ops: Vec<Op> = Vec::new();
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut compared, mut with_access) = (0, 0);
    // Step 0 checks the seeded world itself.
    for step in 0..=steps {
        if step > 0 {
            let op = match &script {
                Some(script) => script[step - 1].clone(),
                None if step % RESEED_EVERY == 0 => Op::Reseed,
                None => {
                    let missing: Vec<&str> =
                        MUST_OCCUR.into_iter().filter(|k| !tally.contains_key(k)).collect();
                    let wanted = if 2 * step > steps { missing } else { vec![] };
                    generator.next(&world.model, &wanted)
                }
            };
            world.execute(&op).await;
            *tally.entry(op.kind()).or_default() += 1;
            ops.push(op);
        }
        match world.converge().await {
            Ok(expected) => {
                compared += 1;
                with_access += usize::from(!expected.is_empty());
                world.record_acceptances().await;
            }
            Err(mismatch) => {
                world.teardown().await;
                panic!("{}", failure_report(&admin, &origin, &ops, step, &mismatch).await);
            }
        }
    }
    if let Err(mismatch) = world.settle().await {
        world.teardown().await;
        panic!("{}", failure_report(&admin, &origin, &ops, steps, &mismatch).await);
    }
    eprintln!(
        "model test: {origin}: {compared} comparisons ({with_access} with some access granted), 0 divergences, {:.0}s\nop kinds: {tally:?}\nsequence:\n{}",
        started.elapsed().as_secs_f64(),
        numbered(&ops)
    );
    assert!(
        with_access * 4 >= steps,
        "the sequence must exercise real access, not only refusals ({with_access} of {steps} steps)"
    );
    if script.is_none() && steps >= 25 {
        let missing: Vec<&str> = MUST_OCCUR.into_iter().filter(|k| !tally.contains_key(k)).collect();
        assert!(missing.is_empty(), "operation kinds that never occurred: {missing:?}");
        assert!(tally.len() >= 12, "only {} distinct operation kinds occurred: {tally:?}", tally.len());
    }
}
