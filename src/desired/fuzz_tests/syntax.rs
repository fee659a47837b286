//! Kubernetes' syntax rules, written out here.

use super::*;

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63: namespaces, level names.
pub(super) fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && is_dns_part(s)
}

pub(super) fn is_dns_part(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// DNS-1123 subdomain: dot-separated labels, at most 253.
pub(super) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_part)
}

/// `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`, at most 63.
pub(super) fn is_label_value(s: &str) -> bool {
    let alnum = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    s.is_empty()
        || (s.len() <= 63
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && alnum(s.as_bytes().first())
            && alnum(s.as_bytes().last()))
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a non-empty name of at most 63.
pub(super) fn is_label_key(s: &str) -> bool {
    let (prefix, name) = match s.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, s),
    };
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && is_label_value(name)
}

/// A custom resource's name: a DNS subdomain, and at most 63 by the CRDs' CEL rule.
pub(super) fn is_object_name(meta: &ObjectMeta) -> bool {
    meta.name.as_deref().is_some_and(|n| n.len() <= 63 && is_dns_subdomain(n))
}
