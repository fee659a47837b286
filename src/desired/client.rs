//! What should exist in one client namespace, and why: a pure function of the declared
//! objects, the referenced roles, the ceiling and the time.
//!
//! The plan is computed per namespace because that is where the rules meet: one active link,
//! the grants that name the namespace, the levels they pick. Every reconciler that needs a
//! verdict about a namespace (the link's, a grant's, the partner's) asks this same function.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject as RbacSubject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

use super::coverage;
use super::identity::{foreign_subjects, is_dns_subdomain};
use super::names::{self, Component};
use super::request::{self, RequestPlan, Requests};
use super::review;
use super::verdict::{Reason, Verdict};
use crate::api::{
    AccessGrant, AccessLevel, AccessRule, ClientLink, Expiry, LinkGrantSummary, Partner, SubjectKind,
};

/// Everything the rules need to know about one client namespace.
pub struct ClientInputs<'a> {
    pub namespace: &'a str,
    pub namespace_labels: &'a BTreeMap<String, String>,
    /// Every ClientLink in the namespace.
    pub links: &'a [ClientLink],
    /// Every Partner (few, cluster-scoped): needed to judge home-namespace conflicts.
    pub partners: &'a [Partner],
    /// Home namespace → UID of the Partner it is marked as the home of (the namespace's
    /// `liaison.dev/home-of-uid` label, which only the operator may write). A partner whose
    /// home is not marked as its own grants nothing.
    pub homes: &'a BTreeMap<String, String>,
    /// The AccessGrants (of any namespace) whose `clients` name this namespace, shared with
    /// the cache rather than copied: a namespace that many grants name makes them many.
    pub grants: &'a [Arc<AccessGrant>],
    /// Roles of this namespace, by name.
    pub roles: &'a BTreeMap<String, Vec<PolicyRule>>,
    pub cluster_roles: &'a BTreeMap<String, Vec<PolicyRule>>,
    /// The ceiling's rules; `None` when the ceiling ClusterRole does not exist.
    pub ceiling: Option<&'a [PolicyRule]>,
    pub now: Timestamp,
}

/// The verdict on one link, with what its status shows.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkPlan {
    pub verdict: Verdict,
    /// The Partner the link accepted (`status.partnerUid`): the one it names in its spec, the
    /// one it recorded, or else the one it is in force with now.
    pub partner_uid: Option<String>,
    pub ends_at: Option<Timestamp>,
    /// The partner's grants using the link, at most [`GRANTS_LISTED_AT_MOST`]
    /// (`listed_for_the_client`).
    pub grants: Vec<LinkGrantSummary>,
    /// The partner's grants that the link puts in force, listed or not.
    pub grant_count: usize,
    /// The partner's grants using the link beyond those listed.
    pub grants_unlisted: usize,
    pub access_key_secret: Option<String>,
    /// The partner's grants refused because the link's `maxGrants` is reached.
    pub over_limit: usize,
    /// The partner's open requests for on-request levels here (never another partner's: their
    /// names are theirs to choose), at most `request::LISTED_AT_MOST`.
    pub requests: Vec<crate::api::LinkRequestSummary>,
    /// The partner's open requests beyond those listed.
    pub requests_unlisted: usize,
}

/// The verdict on one (grant, this namespace) pair.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantPlan {
    pub grant_namespace: String,
    pub grant_name: String,
    pub verdict: Verdict,
    pub role_binding: Option<String>,
    /// When this access ends by itself (the earlier of the link's and the grant's expiry).
    pub ends_at: Option<Timestamp>,
}

/// The access key to materialize: its RoleBinding here; its ServiceAccount and Secret in the
/// partner's home namespace (the materializer mints the token). The account lives outside the
/// client namespace so that it is no member of `system:serviceaccounts:<client>`: whatever the
/// client's namespace grants all of its ServiceAccounts, the key does not get. It is owned by
/// the Partner (an owner reference cannot cross namespaces) and named from the link's UID.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessKeyPlan {
    pub service_account: ServiceAccount,
    pub binding: RoleBinding,
    pub secret_namespace: String,
    pub secret_name: String,
    pub secret_labels: BTreeMap<String, String>,
    pub partner_owner: OwnerReference,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientPlan {
    /// By link name: every link of the namespace gets a verdict.
    pub links: BTreeMap<String, LinkPlan>,
    /// UID of the link that is in force, if any.
    pub active_link_uid: Option<String>,
    /// Home namespace of the partner in force, where its access key Secrets live.
    pub partner_home: Option<String>,
    pub roles: Vec<Role>,
    pub bindings: Vec<RoleBinding>,
    pub access_key: Option<AccessKeyPlan>,
    pub grants: Vec<GrantPlan>,
    /// The next instant at which the plan changes by itself (an expiry).
    pub wake_at: Option<Timestamp>,
    /// The requests for on-request levels naming the namespace, judged (while a link is in force).
    pub requests: Vec<RequestPlan>,
}

impl ClientPlan {
    pub fn grant(&self, namespace: &str, name: &str) -> Option<&GrantPlan> {
        self.grants.iter().find(|g| g.grant_namespace == namespace && g.grant_name == name)
    }
}

/// Why a partner grants nothing at all, if it does not.
pub fn partner_standing(partner: &Partner, partners: &[Partner]) -> Result<(), Verdict> {
    if partner.metadata.deletion_timestamp.is_some() {
        return Err(Verdict::new(
            Reason::Deleting,
            format!("partner {} is being deleted", partner.name_any()),
        ));
    }
    let home = &partner.spec.home_namespace;
    let first_claimant = partners
        .iter()
        .filter(|p| &p.spec.home_namespace == home && p.metadata.deletion_timestamp.is_none())
        .min_by(|a, b| age_order(&a.metadata, &b.metadata));
    match first_claimant {
        Some(first) if first.metadata.uid != partner.metadata.uid => Err(Verdict::new(
            Reason::HomeNamespaceConflict,
            format!("home namespace {home} already belongs to partner {}", first.name_any()),
        )),
        _ => Ok(()),
    }
}

/// Oldest first, then by name: decides who wins a contested namespace.
fn age_order(a: &ObjectMeta, b: &ObjectMeta) -> std::cmp::Ordering {
    let created = |m: &ObjectMeta| m.creation_timestamp.as_ref().map(|t| t.0);
    created(a).cmp(&created(b)).then_with(|| a.name.cmp(&b.name))
}

/// `Expired` once `expiresAt` has passed, or at once when it cannot be read as an instant.
fn expiry_verdict(what: &str, expiry: Option<&Expiry>, now: Timestamp) -> Option<Verdict> {
    let expiry = expiry.filter(|e| e.has_passed(now))?;
    let message = match expiry.instant() {
        Some(_) => format!("the {what}'s expiresAt has passed"),
        None => {
            format!(
                "the {what}'s expiresAt {expiry} is not an instant Liaison can read, so access has ended; write an RFC 3339 instant"
            )
        }
    };
    Some(Verdict::new(Reason::Expired, message))
}

/// The plan with no request for an on-request level: such levels grant nothing.
pub fn plan(inputs: &ClientInputs) -> ClientPlan {
    plan_with(inputs, Requests::default())
}

/// The plan, with the requests naming the namespace and the approvals written there.
pub fn plan_with(inputs: &ClientInputs, requests: Requests) -> ClientPlan {
    let mut plan = ClientPlan::default();
    let mut live: Vec<&ClientLink> =
        inputs.links.iter().filter(|l| l.metadata.deletion_timestamp.is_none()).collect();
    live.sort_by(|a, b| age_order(&a.metadata, &b.metadata));

    for link in inputs.links.iter().filter(|l| l.metadata.deletion_timestamp.is_some()) {
        plan.links.insert(
            link.name_any(),
            link_plan(
                Verdict::new(Reason::Deleting, "the link is being deleted; access is being revoked"),
                None,
            ),
        );
    }
    let Some((winner, losers)) = live.split_first() else {
        plan.grants = refuse_all_grants(
            inputs,
            Verdict::new(Reason::LinkNotFound, format!("namespace {} holds no ClientLink", inputs.namespace)),
        );
        return plan;
    };
    for loser in losers {
        plan.links.insert(loser.name_any(), link_plan(conflict(inputs.namespace, winner), None));
    }
    plan_active_link(inputs, requests, winner, &mut plan);
    plan
}

/// The verdict on a link that another, older link of its namespace outranks.
fn conflict(namespace: &str, winner: &ClientLink) -> Verdict {
    let message = format!(
        "namespace {namespace} is already linked to partner {} by ClientLink {}; a namespace has one partner",
        winner.spec.partner,
        winner.name_any()
    );
    Verdict::new(Reason::Conflict, message)
}

/// The verdict on `link` if an older live link of its namespace (among `links`) holds the
/// namespace: what a link that loses needs to know, without planning the namespace. A
/// namespace of thousands of links is then planned once per change, by its winner, not once
/// per link.
pub fn outranked<'a>(link: &ClientLink, links: impl IntoIterator<Item = &'a ClientLink>) -> Option<Verdict> {
    outranked_by(link, holder(links)?)
}

/// The verdict on `link` if `other`, a link of its namespace, outranks it: live and older (or
/// as old and first by name). Any such link is proof enough that `link` holds nothing, so a
/// remembered holder spares a look at every link of a crowded namespace; the verdict names
/// `other`, the holder when it is the one remembered.
pub fn outranked_by(link: &ClientLink, other: &ClientLink) -> Option<Verdict> {
    let live = |l: &ClientLink| l.metadata.deletion_timestamp.is_none();
    let older = age_order(&other.metadata, &link.metadata).is_lt();
    let namespace = link.metadata.namespace.as_deref().unwrap_or_default();
    (live(link) && live(other) && older).then(|| conflict(namespace, other))
}

/// The link that holds its namespace among `links` (those of one namespace): the oldest that
/// is not being deleted.
pub fn holder<'a>(links: impl IntoIterator<Item = &'a ClientLink>) -> Option<&'a ClientLink> {
    links
        .into_iter()
        .filter(|l| l.metadata.deletion_timestamp.is_none())
        .min_by(|a, b| age_order(&a.metadata, &b.metadata))
}

/// The link that holds the namespace once `departed` (deleted, or being deleted) is gone, if
/// `departed` held it until then: the one its going may put in force. None when `departed`
/// was outranked itself (its going changes nobody's standing).
pub fn successor<'a>(
    departed: &ClientLink,
    links: impl IntoIterator<Item = &'a ClientLink>,
) -> Option<&'a ClientLink> {
    let same =
        |l: &ClientLink| l.metadata.name == departed.metadata.name && l.metadata.uid == departed.metadata.uid;
    let next = holder(links.into_iter().filter(|l| !same(l)))?;
    age_order(&departed.metadata, &next.metadata).is_lt().then_some(next)
}

/// Why the link grants nothing whatever else its namespace holds, if its own spec or its
/// partner's state revokes it: being deleted, suspended or expired, its partner gone, being
/// deleted or replaced. `plan` gives such a link no Role (a unit test holds the two together),
/// so its level Roles may be emptied at once, without planning the namespace and without
/// waiting behind any other work.
pub fn revoked_outright(link: &ClientLink, partner: Option<&Partner>, now: Timestamp) -> Option<Reason> {
    if link.metadata.deletion_timestamp.is_some() {
        return Some(Reason::Deleting);
    }
    if link.spec.is_suspended() {
        return Some(Reason::Suspended);
    }
    if expiry_verdict("link", link.spec.expires_at.as_ref(), now).is_some() {
        return Some(Reason::Expired);
    }
    let Some(partner) = partner else { return Some(Reason::PartnerNotFound) };
    if partner.metadata.deletion_timestamp.is_some() {
        return Some(Reason::PartnerNotReady);
    }
    accepted_partner(link)
        .filter(|accepted| partner.metadata.uid.as_ref() != Some(*accepted))
        .map(|_| Reason::PartnerReplaced)
}

/// Whether a link's reconcile must first make sure the link carries Liaison's finalizer. A
/// link that carries it keeps it until its revocation is complete: it may have been granted
/// something, even if it is refused now. One that does not carry it yet needs it only if it
/// may be put in force: a link an older one outranks, or one its own spec or partner revokes
/// outright (`revoked_outright`), is granted nothing, so it has nothing to revoke. Another
/// tenant's thousands of refused links then cost no finalizer write each (#26). Should such a
/// link be put in force later, it is given the finalizer before anything is written for it
/// (`unguarded_in_force`).
pub fn needs_finalizer(carries: bool, outranked: bool, revoked_outright: bool) -> bool {
    carries || !(outranked || revoked_outright)
}

/// The link `plan` puts in force, if it does not carry Liaison's finalizer yet: nothing may be
/// written in its name until it does, or its deletion would leave what was written behind.
pub fn unguarded_in_force<'a>(plan: &ClientPlan, links: &'a [ClientLink]) -> Option<&'a ClientLink> {
    let uid = plan.active_link_uid.as_ref()?;
    let in_force = links.iter().find(|l| l.metadata.uid.as_ref() == Some(uid))?;
    let carries = in_force.finalizers().iter().any(|f| f == names::FINALIZER);
    (!carries).then_some(in_force)
}

/// A link's plan that grants nothing.
pub fn link_plan(verdict: Verdict, ends_at: Option<Timestamp>) -> LinkPlan {
    LinkPlan {
        verdict,
        partner_uid: None,
        ends_at,
        grants: Vec::new(),
        grant_count: 0,
        grants_unlisted: 0,
        access_key_secret: None,
        over_limit: 0,
        requests: Vec::new(),
        requests_unlisted: 0,
    }
}

/// The Partner the link has accepted, if it has: its spec's word, else what it recorded.
pub fn accepted_partner(link: &ClientLink) -> Option<&String> {
    link.spec.partner_uid.as_ref().or_else(|| link.status.as_ref()?.partner_uid.as_ref())
}

fn refuse_all_grants(inputs: &ClientInputs, verdict: Verdict) -> Vec<GrantPlan> {
    inputs
        .grants
        .iter()
        .map(|g| GrantPlan {
            grant_namespace: g.namespace().unwrap_or_default(),
            grant_name: g.name_any(),
            verdict: verdict.clone(),
            role_binding: None,
            ends_at: None,
        })
        .collect()
}

/// Every partner's home marked as its own: what the operator's marks say once each Partner
/// has taken its home (for tests and tools that plan without a cluster).
pub fn marked_homes(partners: &[Partner]) -> BTreeMap<String, String> {
    let standing = partners.iter().filter(|p| partner_standing(p, partners).is_ok());
    standing.filter_map(|p| Some((p.spec.home_namespace.clone(), p.metadata.uid.clone()?))).collect()
}

/// Why the link grants nothing, if it does not.
fn link_standing<'a>(inputs: &'a ClientInputs, link: &ClientLink) -> Result<&'a Partner, Verdict> {
    let ns = inputs.namespace;
    if inputs.namespace_labels.contains_key(names::HOME_OF_UID) {
        return Err(Verdict::new(
            Reason::NamespaceNotAllowed,
            format!("{ns} is a partner's home namespace; a home holds no link"),
        ));
    }
    let partner = inputs.partners.iter().find(|p| p.name_any() == link.spec.partner).ok_or_else(|| {
        Verdict::new(Reason::PartnerNotFound, format!("no Partner named {}", link.spec.partner))
    })?;
    partner_standing(partner, inputs.partners).map_err(|v| {
        Verdict::new(
            Reason::PartnerNotReady,
            format!("partner {} grants nothing: {}", partner.name_any(), v.message),
        )
    })?;
    if let Some(accepted) = accepted_partner(link)
        && partner.metadata.uid.as_ref() != Some(accepted)
    {
        return Err(Verdict::new(
            Reason::PartnerReplaced,
            format!(
                "partner {} is not the one this link accepted (UID {accepted}): it was deleted and created again (UID {}); \
                 to accept it, set spec.partnerUid to its UID, or delete and re-create the link",
                partner.name_any(),
                partner.metadata.uid.as_deref().unwrap_or("unknown")
            ),
        ));
    }
    let home = &partner.spec.home_namespace;
    if partner.metadata.uid.is_none() || inputs.homes.get(home) != partner.metadata.uid.as_ref() {
        return Err(Verdict::new(
            Reason::PartnerNotReady,
            format!(
                "partner {} grants nothing: its home namespace {home} is not marked as its own (see the Partner's status)",
                partner.name_any()
            ),
        ));
    }
    if partner.spec.home_namespace == ns {
        return Err(Verdict::new(
            Reason::NamespaceNotAllowed,
            format!("{ns} is the partner's own home namespace"),
        ));
    }
    if let Some(selector) = &partner.spec.client_namespace_selector {
        let allowed = match Selector::try_from(selector.clone()) {
            Ok(parsed) if selector_is_valid(selector) => parsed.matches(inputs.namespace_labels),
            // A selector Kubernetes would reject cannot allow anything.
            _ => false,
        };
        if !allowed {
            return Err(Verdict::new(
                Reason::NamespaceNotAllowed,
                format!(
                    "namespace {ns} does not match partner {}'s clientNamespaceSelector",
                    partner.name_any()
                ),
            ));
        }
    }
    if let Some(verdict) = expiry_verdict("link", link.spec.expires_at.as_ref(), inputs.now) {
        return Err(verdict);
    }
    if link.spec.is_suspended() {
        return Err(Verdict::new(
            Reason::Suspended,
            "the link is suspended; set spec.suspended to false to resume",
        ));
    }
    // Revoked as a suspended link is, until someone the client trusts reviews it.
    if let Some(verdict) =
        review::of_link(link, Some(partner), inputs.now).and_then(|judged| judged.overdue("link"))
    {
        return Err(verdict);
    }
    Ok(partner)
}

/// What kube's parser lets through but Kubernetes rejects: keys and values that are not label
/// syntax (a `NotIn` or `DoesNotExist` on one would otherwise match every namespace), `In`/`NotIn`
/// without values (an empty `NotIn` likewise), `Exists`/`DoesNotExist` with values.
fn selector_is_valid(selector: &LabelSelector) -> bool {
    let labels =
        selector.match_labels.iter().flatten().all(|(key, value)| is_label_key(key) && is_label_value(value));
    labels
        && selector.match_expressions.iter().flatten().all(|r| {
            let values = r.values.as_deref().unwrap_or_default();
            is_label_key(&r.key)
                && values.iter().all(|v| is_label_value(v))
                && match r.operator.as_str() {
                    "In" | "NotIn" => !values.is_empty(),
                    "Exists" | "DoesNotExist" => values.is_empty(),
                    _ => false,
                }
        })
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name that is a non-empty label value.
fn is_label_key(key: &str) -> bool {
    let (prefix, name) = key.split_once('/').map_or((None, key), |(prefix, name)| (Some(prefix), name));
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && is_label_value(name)
}

/// `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`, at most 63 characters.
fn is_label_value(value: &str) -> bool {
    let alphanumeric = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    value.is_empty()
        || (value.len() <= 63
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && alphanumeric(value.as_bytes().first())
            && alphanumeric(value.as_bytes().last()))
}

/// A level whose rules passed the ceiling, and the Role that carries them.
struct UsableLevel {
    level: String,
    role: Role,
}

fn plan_active_link(inputs: &ClientInputs, requests: Requests, link: &ClientLink, plan: &mut ClientPlan) {
    let link_name = link.name_any();
    let link_ends_at = link.spec.expires_at.as_ref().and_then(Expiry::instant);
    // Known even when the link is refused: its key Secrets there may have to go.
    plan.partner_home = inputs
        .partners
        .iter()
        .find(|p| p.name_any() == link.spec.partner)
        .map(|p| p.spec.home_namespace.clone());
    let partner = match link_standing(inputs, link) {
        Ok(partner) => partner,
        Err(verdict) => {
            let grant_verdict = Verdict::new(
                Reason::LinkNotReady,
                format!("ClientLink {}/{link_name}: {}", inputs.namespace, verdict.message),
            );
            plan.grants = refuse_all_grants(inputs, grant_verdict);
            let mut refused = link_plan(verdict, link_ends_at);
            refused.partner_uid = accepted_partner(link).cloned();
            plan.links.insert(link_name, refused);
            // A refused link still turns Expired at its expiry (a suspended one, say).
            plan.wake_at = link_ends_at.filter(|at| *at > inputs.now);
            return;
        }
    };
    let link_uid = link.metadata.uid.clone().unwrap_or_default();
    plan.active_link_uid = Some(link_uid.clone());
    let owner = link_owner(link);

    let mut levels: BTreeMap<&str, Result<UsableLevel, Verdict>> = BTreeMap::new();
    for level in &link.spec.access_levels {
        let usable = resolve_level(inputs, level).map(|rules| UsableLevel {
            level: level.name.clone(),
            role: Role {
                metadata: object_meta(
                    names::level_role(&link_uid, &level.name),
                    inputs.namespace,
                    level_labels(partner, link, &level.name),
                    &owner,
                ),
                rules: Some(rules),
            },
        });
        levels.insert(level.name.as_str(), usable);
    }

    let context = request::Context {
        namespace: inputs.namespace,
        link,
        partner,
        grants: inputs.grants,
        now: inputs.now,
    };
    plan.requests = request::judge_all(&context, requests);
    let request_ends = plan.requests.iter().filter_map(RequestPlan::in_force_until).min();
    let link_review_lapses =
        review::of_link(link, Some(partner), inputs.now).and_then(|judged| judged.next_change(inputs.now));
    let in_force =
        LinkInForce { inputs, partner, link, owner: &owner, levels: &levels, requests: &plan.requests };
    let mut planned: Vec<(&AccessGrant, GrantPlan, Option<RoleBinding>)> = inputs
        .grants
        .iter()
        .map(|grant| {
            let (grant_plan, binding) = in_force.plan_grant(grant);
            (grant.as_ref(), grant_plan, binding)
        })
        .collect();
    let over_limit = hold_to_limit(inputs.namespace, link, &mut planned);
    plan.bindings.extend(planned.iter_mut().filter_map(|(_, _, binding)| binding.take()));

    let mut wake_at = earliest(earliest(link_ends_at, link_review_lapses), request_ends);
    let mut summaries = Vec::new();
    for (grant, grant_plan, _) in planned {
        let grant_ends_at =
            grant.spec.expires_at.as_ref().and_then(Expiry::instant).filter(|at| *at > inputs.now);
        let grant_review_lapses =
            review::of_grant(grant, inputs.now).and_then(|judged| judged.next_change(inputs.now));
        wake_at = earliest(earliest(wake_at, grant_ends_at), grant_review_lapses);
        // Only the linked partner's own grants reach the client's view: another partner's
        // (refused) grants naming this namespace would fill it with names they choose.
        if grant_plan.grant_namespace != partner.spec.home_namespace {
            plan.grants.push(grant_plan);
            continue;
        }
        summaries.push(LinkGrantSummary {
            grant: format!("{}/{}", grant_plan.grant_namespace, grant_plan.grant_name),
            access_level: grant.spec.access_level.clone(),
            subjects: grant.spec.subjects.len() as i32,
            granted: grant_plan.verdict.is_ok(),
            reason: (!grant_plan.verdict.is_ok()).then(|| grant_plan.verdict.reason.to_string()),
        });
        plan.grants.push(grant_plan);
    }

    let mut access_key_secret = None;
    // Never an on-request level: a key is standing access (the schema refuses it too).
    if let Some(key) = &link.spec.access_key
        && let Some(Ok(level)) = levels.get(key.access_level.as_str())
        && link.spec.level(&key.access_level).is_some_and(|l| l.on_request.is_none())
    {
        let key_plan = access_key_plan(inputs, partner, link, &owner, level);
        access_key_secret = Some(format!("{}/{}", key_plan.secret_namespace, key_plan.secret_name));
        plan.access_key = Some(key_plan);
    }

    // Only levels in use get a Role: an unused level grants nothing and needs nothing.
    let used: BTreeSet<String> = plan
        .bindings
        .iter()
        .chain(plan.access_key.as_ref().map(|k| &k.binding))
        .map(|b| b.role_ref.name.clone())
        .collect();
    plan.roles = levels
        .values()
        .filter_map(|l| l.as_ref().ok())
        .filter(|l| used.contains(l.role.metadata.name.as_deref().unwrap_or_default()))
        .map(|l| l.role.clone())
        .collect();

    let broken: Vec<&Verdict> = levels.values().filter_map(|l| l.as_ref().err()).collect();
    let verdict = match broken.first() {
        None => Verdict::new(
            Reason::Active,
            format!("namespace {} is linked to partner {}", inputs.namespace, partner.name_any()),
        ),
        Some(first) => Verdict::new(
            first.reason,
            broken.iter().map(|v| v.message.as_str()).collect::<Vec<_>>().join("; "),
        ),
    };
    let grant_count = summaries.iter().filter(|g| g.granted).count();
    let (grants, grants_unlisted) = listed_for_the_client(summaries);
    let partner_uid = accepted_partner(link).or(partner.metadata.uid.as_ref()).cloned();
    let (requests, requests_unlisted) = request::listed_for_approvers(
        plan.requests.iter().filter(|r| r.namespace == partner.spec.home_namespace),
    );
    let ends_at = link_ends_at;
    plan.links.insert(
        link_name,
        LinkPlan {
            verdict,
            partner_uid,
            ends_at,
            grants,
            grant_count,
            grants_unlisted,
            access_key_secret,
            over_limit,
            requests,
            requests_unlisted,
        },
    );
    plan.wake_at = wake_at.filter(|at| *at > inputs.now);
}

/// At most this many of the partner's grants are listed in the client's link. The link's size
/// is what every write of it costs the API server, its deletion (revocation) included: a link
/// listing 1,000 grants was 195 KB, and deleting it took 20–53 ms to serve instead of 3.
pub const GRANTS_LISTED_AT_MOST: usize = 50;

/// The grants the client finds listed in its link: the refused ones first (what may need its
/// attention), then those in force, each by name, at most [`GRANTS_LISTED_AT_MOST`]; and how
/// many more there are. Who really has access is in Liaison's RoleBindings of the namespace,
/// all of them (`liaison access --client`).
pub fn listed_for_the_client(mut summaries: Vec<LinkGrantSummary>) -> (Vec<LinkGrantSummary>, usize) {
    summaries.sort_by(|a, b| (a.granted, &a.grant).cmp(&(b.granted, &b.grant)));
    let unlisted = summaries.len().saturating_sub(GRANTS_LISTED_AT_MOST);
    summaries.truncate(GRANTS_LISTED_AT_MOST);
    (summaries, unlisted)
}

/// Each grant in force is a RoleBinding in the client's namespace, counted against its quota:
/// the link admits the partner's oldest grants up to its limit and refuses the others, so a
/// partner cannot take the client's quota unnoticed, and a new grant never displaces an older
/// one. Returns how many were refused.
fn hold_to_limit(
    namespace: &str,
    link: &ClientLink,
    planned: &mut [(&AccessGrant, GrantPlan, Option<RoleBinding>)],
) -> usize {
    let limit = link.spec.grant_limit();
    let mut granted: Vec<usize> = (0..planned.len()).filter(|&at| planned[at].1.verdict.is_ok()).collect();
    if granted.len() <= limit {
        return 0;
    }
    granted.sort_by(|&a, &b| age_order(&planned[a].0.metadata, &planned[b].0.metadata));
    let verdict = Verdict::new(
        Reason::GrantLimitReached,
        format!(
            "ClientLink {namespace}/{} puts at most {limit} grants in force (spec.maxGrants), and {limit} older grants of \
             the partner are; remove one, or ask the client to raise the limit",
            link.name_any()
        ),
    );
    for &at in &granted[limit..] {
        let (_, grant_plan, binding) = &mut planned[at];
        *binding = None;
        grant_plan.role_binding = None;
        grant_plan.verdict = verdict.clone();
        grant_plan.ends_at = None;
    }
    granted.len() - limit
}

/// The smallest `maxGrants` of a namespace's links: below it, no grant's verdict depends on
/// another's.
pub fn smallest_grant_limit<'a>(links: impl IntoIterator<Item = &'a ClientLink>) -> usize {
    links.into_iter().map(|l| l.spec.grant_limit()).min().unwrap_or(usize::MAX)
}

/// The grants that a grant's verdict in a namespace depends on, among those naming it: the
/// grant itself and, once their number could reach a link's limit, every grant older than it
/// (admission is oldest first: newer grants never change an older one's verdict).
pub fn judged_with(
    grant: &Arc<AccessGrant>,
    naming: &[Arc<AccessGrant>],
    smallest_limit: usize,
) -> Vec<Arc<AccessGrant>> {
    if naming.len() <= smallest_limit {
        return vec![grant.clone()];
    }
    let older =
        naming.iter().filter(|g| !Arc::ptr_eq(g, grant) && age_order(&g.metadata, &grant.metadata).is_le());
    older.cloned().chain([grant.clone()]).collect()
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The level's effective rules, if they exist and stay within the ceiling.
fn resolve_level(inputs: &ClientInputs, level: &AccessLevel) -> Result<Vec<PolicyRule>, Verdict> {
    let name = &level.name;
    let rules = match (&level.rules, &level.role, &level.cluster_role) {
        (Some(rules), _, _) => {
            if let Some(why) = rules
                .iter()
                .enumerate()
                .find_map(|(at, rule)| refused_rule(rule).map(|why| format!("rule {at}: {why}")))
            {
                return Err(Verdict::new(
                    Reason::InvalidLevel,
                    format!("level {name}: {why}; the API server refuses such a Role"),
                ));
            }
            rules.iter().map(to_policy_rule).collect()
        }
        (None, Some(role), _) => inputs.roles.get(role).cloned().ok_or_else(|| {
            Verdict::new(
                Reason::RoleNotFound,
                format!("level {name}: Role {}/{role} not found", inputs.namespace),
            )
        })?,
        (None, None, Some(cluster_role)) => {
            inputs.cluster_roles.get(cluster_role).cloned().ok_or_else(|| {
                Verdict::new(
                    Reason::RoleNotFound,
                    format!("level {name}: ClusterRole {cluster_role} not found"),
                )
            })?
        }
        // The schema forbids this; should it ever reach us, it grants nothing.
        (None, None, None) => {
            return Err(Verdict::new(Reason::RoleNotFound, format!("level {name} names no rules")));
        }
    };
    let ceiling = inputs.ceiling.ok_or_else(|| {
        Verdict::new(
            Reason::CeilingNotFound,
            "the access ceiling ClusterRole is missing; nothing can be granted",
        )
    })?;
    let beyond = coverage::uncovered(ceiling, &rules);
    if !beyond.is_empty() {
        let shown: Vec<String> = beyond.first.iter().map(ToString::to_string).collect();
        let more = match beyond.count.saturating_sub(shown.len() as u64) {
            0 => String::new(),
            more => format!(" and {more} more"),
        };
        return Err(Verdict::new(
            Reason::EscalationDenied,
            format!("level {name} exceeds the access ceiling: {}{more}", shown.join(", ")),
        ));
    }
    // Only resource rules reach a namespaced Role.
    Ok(rules.into_iter().filter(|r| r.non_resource_urls.as_ref().is_none_or(|u| u.is_empty())).collect())
}

/// Why the API server would refuse this rule in a Role, if it would: a resource rule names at
/// least one API group (`""` is the core group), one resource and one verb.
pub fn refused_rule(rule: &AccessRule) -> Option<&'static str> {
    if rule.api_groups.is_empty() {
        Some("apiGroups is empty (write [\"\"] for the core group)")
    } else if rule.resources.is_empty() || rule.resources.iter().any(String::is_empty) {
        Some("resources is empty")
    } else if rule.verbs.is_empty() || rule.verbs.iter().any(String::is_empty) {
        Some("verbs is empty")
    } else {
        None
    }
}

pub fn to_policy_rule(rule: &AccessRule) -> PolicyRule {
    PolicyRule {
        api_groups: Some(rule.api_groups.clone()),
        resources: Some(rule.resources.clone()),
        verbs: rule.verbs.clone(),
        resource_names: (!rule.resource_names.is_empty()).then(|| rule.resource_names.clone()),
        non_resource_urls: None,
    }
}

/// The link in force in a namespace, and what every grant naming it is judged against.
struct LinkInForce<'a> {
    inputs: &'a ClientInputs<'a>,
    partner: &'a Partner,
    link: &'a ClientLink,
    owner: &'a OwnerReference,
    levels: &'a BTreeMap<&'a str, Result<UsableLevel, Verdict>>,
    /// The partner's requests for on-request levels here, judged.
    requests: &'a [RequestPlan],
}

impl LinkInForce<'_> {
    /// The grant's verdict in this namespace and, when it is in force, its binding.
    fn plan_grant(&self, grant: &AccessGrant) -> (GrantPlan, Option<RoleBinding>) {
        match plan_grant(self, grant) {
            Ok((grant_plan, binding)) => (grant_plan, Some(binding)),
            Err(verdict) => {
                let (grant_namespace, grant_name) = (grant.namespace().unwrap_or_default(), grant.name_any());
                (GrantPlan { grant_namespace, grant_name, verdict, role_binding: None, ends_at: None }, None)
            }
        }
    }
}

/// The grant in force (its plan and binding), or why not.
fn plan_grant(in_force: &LinkInForce, grant: &AccessGrant) -> Result<(GrantPlan, RoleBinding), Verdict> {
    let LinkInForce { inputs, partner, link, owner, levels, requests } = *in_force;
    let grant_namespace = grant.namespace().unwrap_or_default();
    let grant_name = grant.name_any();
    let ns = inputs.namespace;
    if grant.metadata.deletion_timestamp.is_some() {
        return Err(Verdict::new(Reason::Deleting, "the grant is being deleted; access is being revoked"));
    }
    if grant_namespace != partner.spec.home_namespace {
        return Err(other_partners_grant(inputs, &grant_namespace));
    }
    if let Some(verdict) = expiry_verdict("grant", grant.spec.expires_at.as_ref(), inputs.now) {
        return Err(verdict);
    }
    if let Some(verdict) = review::of_grant(grant, inputs.now).and_then(|judged| judged.overdue("grant")) {
        return Err(verdict);
    }
    let level = match levels.get(grant.spec.access_level.as_str()) {
        None => {
            return Err(Verdict::new(
                Reason::LevelNotFound,
                format!(
                    "ClientLink {ns}/{} has no access level {}",
                    link.name_any(),
                    grant.spec.access_level
                ),
            ));
        }
        Some(Err(verdict)) => return Err(verdict.clone()),
        Some(Ok(level)) => level,
    };
    let foreign = foreign_subjects(&partner.spec.identities, &grant.spec.subjects);
    if !foreign.is_empty() {
        let shown: Vec<String> = foreign.iter().map(ToString::to_string).collect();
        return Err(Verdict::new(
            Reason::SubjectNotAllowed,
            format!("not partner {}'s to grant: {}", partner.name_any(), shown.join(", ")),
        ));
    }
    if grant.spec.subjects.is_empty() {
        return Err(Verdict::new(Reason::NoSubjects, "the grant names no subjects"));
    }
    let on_request = on_request_in_force(requests, link, grant, &grant_namespace)?;
    let grant_uid = grant.metadata.uid.clone().unwrap_or_default();
    let link_uid = link.metadata.uid.clone().unwrap_or_default();
    let binding_name = names::grant_binding(&link_uid, &grant_uid, &grant_name);
    let mut labels = link_labels(Component::GrantBinding, partner, link);
    labels.insert(names::ACCESS_GRANT.into(), grant_name.clone());
    labels.insert(names::GRANT_NAMESPACE.into(), grant_namespace.clone());
    labels.insert(names::GRANT_UID.into(), grant_uid);
    labels.insert(names::ACCESS_LEVEL.into(), grant.spec.access_level.clone());
    // On request, only the people an approved request names.
    let subjects = grant
        .spec
        .subjects
        .iter()
        .filter(|s| on_request.as_ref().is_none_or(|in_force| in_force.subjects.contains(*s)))
        .map(|s| RbacSubject {
            kind: s.kind.as_str().to_string(),
            name: s.name.clone(),
            namespace: (s.kind == SubjectKind::ServiceAccount).then(|| grant_namespace.clone()),
            api_group: (s.kind != SubjectKind::ServiceAccount)
                .then(|| "rbac.authorization.k8s.io".to_string()),
        })
        .collect();
    let ends_at = earliest(
        earliest(
            link.spec.expires_at.as_ref().and_then(Expiry::instant),
            grant.spec.expires_at.as_ref().and_then(Expiry::instant),
        ),
        on_request.as_ref().map(|in_force| in_force.until),
    );
    let mut metadata = object_meta(binding_name.clone(), ns, labels, owner);
    if let Some(at) = ends_at {
        metadata.annotations = Some(BTreeMap::from([(names::ACCESS_ENDS_AT.to_string(), at.to_string())]));
    }
    let binding = RoleBinding { metadata, role_ref: role_ref(&level.role), subjects: Some(subjects) };
    let granted = GrantPlan {
        grant_namespace,
        grant_name,
        verdict: Verdict::new(
            Reason::Granted,
            format!(
                "bound to level {} in {ns}{}",
                grant.spec.access_level,
                on_request.map(|in_force| in_force.why).unwrap_or_default()
            ),
        ),
        role_binding: Some(binding_name),
        ends_at,
    };
    Ok((granted, binding))
}

/// The approved requests in force for a grant of an on-request level.
struct InForce {
    /// The latest of their ends (the plan wakes at each).
    until: Timestamp,
    /// The people they name.
    subjects: BTreeSet<crate::api::Subject>,
    /// How the grant's verdict tells it.
    why: String,
}

/// For a grant of an on-request level: the approved requests in force for it, or why it binds
/// nobody; `Ok(None)` for other levels.
fn on_request_in_force(
    requests: &[RequestPlan],
    link: &ClientLink,
    grant: &AccessGrant,
    grant_namespace: &str,
) -> Result<Option<InForce>, Verdict> {
    let level = &grant.spec.access_level;
    if link.spec.level(level).and_then(|l| l.on_request.as_ref()).is_none() {
        return Ok(None);
    }
    let name = grant.name_any();
    let approved: Vec<(Timestamp, &RequestPlan)> = requests
        .iter()
        .filter(|r| r.namespace == grant_namespace && r.grant == name)
        .filter_map(|r| Some((r.in_force_until()?, r)))
        .collect();
    match approved.iter().max_by_key(|(until, _)| *until) {
        Some((until, _)) => {
            let told: Vec<String> = approved
                .iter()
                .map(|(until, r)| {
                    format!(
                        "{} approved by {}, until {until}",
                        r.name,
                        r.decided_by.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            let subjects = approved.iter().flat_map(|(_, r)| r.subjects.iter().cloned()).collect();
            Ok(Some(InForce {
                until: *until,
                subjects,
                why: format!(" on AccessRequest {}", told.join(", ")),
            }))
        }
        None => Err(Verdict::new(
            Reason::OnRequest,
            format!(
                "level {level} is granted on request only, and no approved AccessRequest for this grant is in force"
            ),
        )),
    }
}

/// The verdict for a grant of a partner that is not the one in force in this namespace.
fn other_partners_grant(inputs: &ClientInputs, grant_namespace: &str) -> Verdict {
    let ns = inputs.namespace;
    let own_link = inputs.links.iter().find(|l| {
        inputs
            .partners
            .iter()
            .any(|p| p.name_any() == l.spec.partner && p.spec.home_namespace == grant_namespace)
    });
    match own_link {
        // Not which partner holds the namespace instead: that is the client's business.
        Some(link) => Verdict::new(
            Reason::LinkNotReady,
            format!("ClientLink {ns}/{} is not in force; ask the client", link.name_any()),
        ),
        None => {
            Verdict::new(Reason::LinkNotFound, format!("namespace {ns} holds no ClientLink to this partner"))
        }
    }
}

fn access_key_plan(
    inputs: &ClientInputs,
    partner: &Partner,
    link: &ClientLink,
    owner: &OwnerReference,
    level: &UsableLevel,
) -> AccessKeyPlan {
    let ns = inputs.namespace;
    let link_uid = link.metadata.uid.clone().unwrap_or_default();
    let name = names::access_key(&link_uid);
    let home = partner.spec.home_namespace.clone();
    let mut labels = link_labels(Component::AccessKey, partner, link);
    labels.insert(names::CLIENT_NAMESPACE.into(), ns.to_string());
    let service_account = ServiceAccount {
        metadata: object_meta(name.clone(), &home, labels.clone(), &partner_owner(partner)),
        // The token lives in the partner's Secret; nothing should mount one in a pod here.
        automount_service_account_token: Some(false),
        ..Default::default()
    };
    let mut binding_labels = labels.clone();
    binding_labels.insert(names::ACCESS_LEVEL.into(), level.level.clone());
    let binding = RoleBinding {
        metadata: object_meta(name.clone(), ns, binding_labels, owner),
        role_ref: role_ref(&level.role),
        subjects: Some(vec![RbacSubject {
            kind: "ServiceAccount".into(),
            name,
            namespace: Some(home.clone()),
            api_group: None,
        }]),
    };
    let mut secret_labels = labels;
    secret_labels.insert(names::ACCESS_LEVEL.into(), level.level.clone());
    AccessKeyPlan {
        service_account,
        binding,
        secret_namespace: home,
        secret_name: names::access_key_secret(ns, &link_uid),
        secret_labels,
        partner_owner: partner_owner(partner),
    }
}

fn role_ref(role: &Role) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: "Role".into(),
        name: role.metadata.name.clone().unwrap_or_default(),
    }
}

fn link_labels(component: Component, partner: &Partner, link: &ClientLink) -> BTreeMap<String, String> {
    let mut labels =
        names::base_labels(component, &partner.name_any(), link.metadata.uid.as_deref().unwrap_or_default());
    labels.insert(names::CLIENT_LINK.into(), link.name_any());
    labels
}

fn level_labels(partner: &Partner, link: &ClientLink, level: &str) -> BTreeMap<String, String> {
    let mut labels = link_labels(Component::LevelRole, partner, link);
    labels.insert(names::ACCESS_LEVEL.into(), level.to_string());
    labels
}

fn object_meta(
    name: String,
    namespace: &str,
    labels: BTreeMap<String, String>,
    owner: &OwnerReference,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_string()),
        labels: Some(labels),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    }
}

pub fn link_owner(link: &ClientLink) -> OwnerReference {
    OwnerReference {
        api_version: format!("{}/{}", crate::api::GROUP, crate::api::VERSION),
        kind: "ClientLink".into(),
        name: link.name_any(),
        uid: link.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

pub fn partner_owner(partner: &Partner) -> OwnerReference {
    OwnerReference {
        api_version: format!("{}/{}", crate::api::GROUP, crate::api::VERSION),
        kind: "Partner".into(),
        name: partner.name_any(),
        uid: partner.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

#[cfg(test)]
#[path = "client_tests/mod.rs"]
mod tests;
