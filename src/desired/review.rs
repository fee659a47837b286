//! Periodic reviews: whether access is still confirmed, decided from the spec's review
//! requirement, what was counted before (the status) and the time.
//!
//! A review is counted from the earlier of the instant it claims and the instant Liaison
//! first saw it: a reviewer can date a review back (which only brings the next one closer),
//! never forward. Who may review is checked at admission (the reviewer is the user writing
//! it); who may not (the partner's own people) is checked here as well.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::identity::foreign_subjects;
use super::verdict::{Reason, Verdict};
use crate::api::{AccessGrant, ClientLink, Partner, Review, ReviewStatus, Reviewed, Subject, SubjectKind};

/// Where a review stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Reviewed; the next review is not yet announced.
    Current,
    /// Within `grace` of its due instant, before or after: announced, access goes on.
    Due,
    /// `grace` past due: access is suspended until a review.
    Overdue,
}

/// The review requirement judged at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// What the status records: the period in force, the review it runs from, its end.
    pub status: ReviewStatus,
    pub standing: Standing,
    /// When the next review is announced.
    pub announced_at: Timestamp,
    /// Why the latest review written in the spec was not counted, if it was not.
    pub ignored: Option<String>,
}

impl Judged {
    /// The next instant at which the standing changes by itself.
    pub fn next_change(&self, now: Timestamp) -> Option<Timestamp> {
        [self.announced_at, self.status.suspends_at.0].into_iter().filter(|at| *at > now).min()
    }

    /// The refusal of access, once overdue: `what` is "link" or "grant".
    pub fn overdue(&self, what: &str) -> Option<Verdict> {
        (self.standing == Standing::Overdue).then(|| {
            Verdict::new(
                Reason::ReviewOverdue,
                format!(
                    "the {what}'s review was due at {} and access was suspended at {}; a review restores it",
                    self.status.due_at.0, self.status.suspends_at.0
                ),
            )
        })
    }

    /// The `Reviewed` condition's status, reason and message.
    pub fn condition(&self) -> (bool, &'static str, String) {
        let (due, suspends) = (self.status.due_at.0, self.status.suspends_at.0);
        let last = match (&self.status.reviewed_by, &self.status.reviewed_at) {
            (Some(by), _) => format!("last reviewed by {by} at {}", self.status.since.0),
            _ => format!("not reviewed since {}", self.status.since.0),
        };
        if let Some(why) = &self.ignored {
            return (
                false,
                REVIEW_REFUSED,
                format!("{why}; {last}; due at {due}, suspended at {suspends} unless reviewed"),
            );
        }
        match self.standing {
            Standing::Current => (true, REVIEWED, format!("{last}; next review due at {due}")),
            Standing::Due => (
                false,
                REVIEW_DUE,
                format!("{last}; review due at {due}, access is suspended at {suspends} unless reviewed"),
            ),
            Standing::Overdue => (
                false,
                Reason::ReviewOverdue.as_str(),
                format!("{last}; review was due at {due}, access is suspended"),
            ),
        }
    }
}

/// Reasons of the `Reviewed` condition (`ReviewOverdue` is also `Ready`'s).
pub const REVIEWED: &str = "Reviewed";
pub const REVIEW_DUE: &str = "ReviewDue";
pub const REVIEW_REFUSED: &str = "ReviewRefused";

/// A period as `spec.review` writes it (`90d`, `1d12h`, `30s`); `None` when it is not one.
pub fn period(text: &str) -> Option<SignedDuration> {
    if text.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut rest = text;
    let mut order = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let unit = rest.as_bytes().get(digits).copied()?;
        let (rank, seconds) = match unit {
            b'd' => (1, 86_400),
            b'h' => (2, 3_600),
            b'm' => (3, 60),
            b's' => (4, 1),
            _ => return None,
        };
        if digits == 0 || rank <= order {
            return None;
        }
        order = rank;
        let count: i64 = rest[..digits].parse().ok()?;
        total = total.checked_add(count.checked_mul(seconds)?)?;
        rest = &rest[digits + 1..];
    }
    Some(SignedDuration::from_secs(total))
}

/// Judges `review` at `now`, given what the status recorded (`previous`). `untrusted` says why
/// a reviewer may not review this object, if they may not.
pub fn judge(
    review: &Review,
    previous: Option<&ReviewStatus>,
    untrusted: impl Fn(&str) -> Option<String>,
    now: Timestamp,
) -> Judged {
    let (since, reviewed_by, reviewed_at, ignored) =
        counted(review.reviewed.as_ref(), previous, untrusted, now);
    let grace = review.grace.as_deref().map_or(Some(SignedDuration::ZERO), period);
    let Some((every, grace)) = period(&review.every).zip(grace).filter(|(every, _)| every.is_positive())
    else {
        // Only an older CRD lets such a spec in: fail closed.
        let status = ReviewStatus {
            since: Time(since),
            reviewed_by,
            reviewed_at,
            due_at: Time(since),
            suspends_at: Time(since),
        };
        let ignored = Some(format!(
            "review.every {:?} or review.grace is not a period such as 90d or 12h",
            review.every
        ));
        return Judged { status, standing: Standing::Overdue, announced_at: since, ignored };
    };
    let due = later(since, every);
    let (announced_at, suspends_at) = (earlier(due, grace), later(due, grace));
    let standing = if now >= suspends_at {
        Standing::Overdue
    } else if now >= announced_at {
        Standing::Due
    } else {
        Standing::Current
    };
    let status = ReviewStatus {
        since: Time(since),
        reviewed_by,
        reviewed_at,
        due_at: Time(due),
        suspends_at: Time(suspends_at),
    };
    Judged { status, standing, announced_at, ignored }
}

/// The period's start and the review it runs from, and why the spec's latest review does not
/// count, if it does not.
fn counted(
    reviewed: Option<&Reviewed>,
    previous: Option<&ReviewStatus>,
    untrusted: impl Fn(&str) -> Option<String>,
    now: Timestamp,
) -> (Timestamp, Option<String>, Option<String>, Option<String>) {
    let before = previous.map(|p| (p.since.0, p.reviewed_by.clone(), p.reviewed_at.clone()));
    // Never seen before: the requirement starts now.
    let (since, by, at) = before.clone().unwrap_or((now, None, None));
    let Some(review) = reviewed else {
        return (since, by, at, None);
    };
    let already = by.as_deref() == Some(review.by.as_str()) && at.as_deref() == Some(review.at.as_str());
    if already {
        return (since, by, at, None);
    }
    if let Some(why) = untrusted(&review.by) {
        return (since, by, at, Some(format!("the review by {} does not count: {why}", review.by)));
    }
    let Some(claimed) = review.at.instant() else {
        return (
            since,
            by,
            at,
            Some(format!(
                "the review by {} does not count: its time {} is not an RFC 3339 instant",
                review.by, review.at
            )),
        );
    };
    // Seen now for the first time: it counts from now at the latest, and never moves a period
    // already recorded backwards.
    let counted_at = claimed.min(now);
    let start = match before {
        Some((recorded, _, _)) => counted_at.max(recorded),
        None => counted_at,
    };
    (start, Some(review.by.clone()), Some(review.at.as_str().to_string()), None)
}

fn later(at: Timestamp, by: SignedDuration) -> Timestamp {
    at.checked_add(by).unwrap_or(Timestamp::MAX)
}

fn earlier(at: Timestamp, by: SignedDuration) -> Timestamp {
    at.checked_sub(by).unwrap_or(Timestamp::MIN)
}

/// Why `by` may not review a link to `partner`: it is one of the partner's own identities (a
/// user it may grant, or a robot of its home). The client reviews its partner, not the reverse.
pub fn partners_own(partner: &Partner, by: &str) -> Option<String> {
    let robots = format!("system:serviceaccount:{}:", partner.spec.home_namespace);
    let as_user = [Subject::new(SubjectKind::User, by)];
    let partner_user = foreign_subjects(&partner.spec.identities, &as_user).is_empty();
    (partner_user || by.starts_with(&robots))
        .then(|| format!("{by} is one of partner {}'s own identities", partner.name_any()))
}

/// Why `by` may not review `grant`: it is one of the grant's own subjects.
pub fn grants_own(grant: &AccessGrant, by: &str) -> Option<String> {
    let namespace = grant.metadata.namespace.as_deref().unwrap_or_default();
    grant
        .spec
        .subjects
        .iter()
        .any(|s| match s.kind {
            SubjectKind::User => s.name == by,
            SubjectKind::ServiceAccount => by == format!("system:serviceaccount:{namespace}:{}", s.name),
            // Group membership is the authenticator's; the admission policy checks it.
            SubjectKind::Group => false,
        })
        .then(|| format!("{by} is one of the grant's own subjects"))
}

/// The review of `link`, judged at `now` from its spec and status; `partner` is the one it
/// names, if it exists.
pub fn of_link(link: &ClientLink, partner: Option<&Partner>, now: Timestamp) -> Option<Judged> {
    let review = link.spec.review.as_ref()?;
    let previous = link.status.as_ref().and_then(|s| s.review.as_ref());
    Some(judge(review, previous, |by| partner.and_then(|p| partners_own(p, by)), now))
}

/// The review of `grant`, judged at `now` from its spec and status.
pub fn of_grant(grant: &AccessGrant, now: Timestamp) -> Option<Judged> {
    let review = grant.spec.review.as_deref()?;
    let previous = grant.status.as_ref().and_then(|s| s.review.as_deref());
    Some(judge(review, previous, |by| grants_own(grant, by), now))
}

#[cfg(test)]
#[path = "review_tests.rs"]
mod tests;
