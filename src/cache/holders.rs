//! Which link holds each crowded namespace, remembered. Each reconcile of a link, and each
//! link created, asks whether an older one outranks it; finding the holder means looking at
//! every link of the namespace, and another tenant's 4,000 refused links in one namespace made
//! that the operator's largest cost (half its CPU, on the cores the API server needs to end
//! access elsewhere; #26). A remembered holder that is still cached, live and older than the
//! link answers at once.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::Caches;
use crate::api::ClientLink;
use crate::desired::Verdict;
use crate::desired::client::{holder, outranked_by};

/// Namespaces with more links than this have their holder remembered; in the others a look at
/// every link costs less than remembering.
const CROWDED: usize = 8;

#[derive(Default)]
pub struct Holders(Mutex<HashMap<String, ObjectRef<ClientLink>>>);

impl Holders {
    /// `desired::client::outranked`, from the caches.
    pub fn outranked(&self, link: &ClientLink, caches: &Caches) -> Option<Verdict> {
        let namespace = link.namespace().unwrap_or_default();
        let links = &caches.by.links_by_namespace;
        if links.count(&namespace) > CROWDED {
            let remembered = self.0.lock().expect("holders").get(&namespace).cloned();
            if let Some(verdict) =
                remembered.and_then(|r| caches.links.get(&r)).and_then(|h| outranked_by(link, &h))
            {
                return Some(verdict);
            }
        }
        // Not remembered, gone, being deleted, or not older than this link: look at them all.
        let neighbours = links.get(&namespace, &caches.links);
        let found = holder(neighbours.iter().map(AsRef::as_ref));
        let mut remembered = self.0.lock().expect("holders");
        match found {
            Some(h) if neighbours.len() > CROWDED => _ = remembered.insert(namespace, ObjectRef::from_obj(h)),
            _ => _ = remembered.remove(&namespace),
        }
        drop(remembered);
        found.and_then(|h| outranked_by(link, h))
    }
}
