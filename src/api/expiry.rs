//! `expiresAt`, kept as written and read when used.

use std::borrow::Cow;
use std::fmt;

use jiff::Timestamp;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// RFC 3339 as jiff reads it: at most nine fraction digits and an offset within a day.
const PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";
/// Past the last instant jiff can hold (9999-12-30T22:00Z) by a margin no one will miss.
const LATEST: &str = "9999-12-30T00:00:00Z";

/// The instant access ends, as the API server stored it.
///
/// The API server's `date-time` format is looser than jiff: it admits years up to 9999-12-31,
/// any number of fraction digits and offsets up to ±99:59. The schema below now refuses those,
/// but one stored before (or through an older CRD) must still deserialize: a single unreadable
/// object fails the whole list and watch, which would stop every reconcile, revocations
/// included. So the text is kept, and an instant that cannot be read counts as passed.
///
/// Boxed once more so that it takes 8 bytes, not a `Box<str>`'s 16: the operator caches every
/// grant, and a cached grant stays within 512 bytes (a test in `access_grant.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[allow(clippy::box_collection)] // on purpose: a thin pointer, see above
pub struct Expiry(Box<String>);

impl Expiry {
    /// The instant, or `None` when the text is not one jiff can hold.
    pub fn instant(&self) -> Option<Timestamp> {
        self.0.parse().ok()
    }

    /// Whether access has ended at `now`; an unreadable expiry has (fail closed).
    pub fn has_passed(&self, now: Timestamp) -> bool {
        self.instant().is_none_or(|at| at <= now)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Timestamp> for Expiry {
    fn from(at: Timestamp) -> Self {
        Expiry(at.to_string().into())
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for Expiry {
    fn schema_name() -> Cow<'static, str> {
        "Expiry".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "pattern": PATTERN,
            "x-kubernetes-validations": [{
                "rule": format!("self <= timestamp('{LATEST}')"),
                "message": format!("must be an instant before {LATEST}"),
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expiry(text: &str) -> Expiry {
        serde_json::from_value(serde_json::Value::String(text.into())).expect("any string reads")
    }

    #[test]
    fn text_the_api_server_admits_always_reads_and_unreadable_instants_have_passed() {
        let now: Timestamp = "2026-06-01T12:00:00Z".parse().unwrap();
        for text in [
            "9999-12-31T23:59:59Z",
            "9999-12-31T00:00:00Z",
            "2026-06-01T12:00:00.1234567891Z",
            "2026-06-01T12:00:00+99:00",
            "2026-06-01T12:00:00x5Z",
        ] {
            let expiry = expiry(text);
            assert_eq!(expiry.instant(), None, "{text}");
            assert!(expiry.has_passed(now), "{text} must count as passed");
            assert_eq!(serde_json::to_value(&expiry).unwrap(), text, "kept as written");
        }
    }

    #[test]
    fn readable_instants_pass_at_their_instant() {
        let at: Timestamp = "2026-06-01T12:00:00Z".parse().unwrap();
        let expiry = expiry("2026-06-01T14:00:00+02:00");
        assert_eq!(expiry.instant(), Some(at));
        assert!(!expiry.has_passed(at - jiff::SignedDuration::from_nanos(1)));
        assert!(expiry.has_passed(at));
        assert_eq!(Expiry::from(at).instant(), Some(at));
    }

    #[test]
    fn the_pattern_admits_what_jiff_reads_and_refuses_the_rest() {
        let pattern = regex::Regex::new(PATTERN).unwrap();
        for text in [
            "2026-06-01T12:00:00Z",
            "2026-06-01T12:00:00.123456789Z",
            "2026-06-01T12:00:00-23:59",
            "9999-12-30T00:00:00Z",
        ] {
            assert!(pattern.is_match(text), "{text}");
            assert!(expiry(text).instant().is_some(), "{text}");
        }
        for text in [
            "2026-06-01T12:00:00.1234567891Z",
            "2026-06-01T12:00:00+99:00",
            "2026-06-01T12:00:00x5Z",
            "2026-06-01T12:00:00",
        ] {
            assert!(!pattern.is_match(text), "{text}");
        }
    }
}
