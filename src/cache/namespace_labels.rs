//! Namespaces as the rules read them: by name, their labels (a partner's namespace selector
//! is matched against them). kube's cache of their metadata held ~1.4 KB a namespace, most of
//! it the B-tree node of one or two labels; here a namespace is its name and its label pairs.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;

use crate::cache::fed::{Fed, Keeps};

type Pairs = Box<[(Box<str>, Box<str>)]>;

#[derive(Default)]
pub struct Labels(HashMap<Box<str>, Pairs>);

impl Keeps<PartialObjectMeta<Namespace>> for Labels {
    fn keep(&mut self, namespace: &PartialObjectMeta<Namespace>) {
        let Some(name) = namespace.metadata.name.as_deref() else { return };
        let labels = namespace.metadata.labels.iter().flatten();
        self.0.insert(name.into(), labels.map(|(k, v)| (k.as_str().into(), v.as_str().into())).collect());
    }

    fn forget(&mut self, namespace: &PartialObjectMeta<Namespace>) {
        self.0.remove(namespace.metadata.name.as_deref().unwrap_or_default());
    }
}

/// The labels of every namespace, fed by a watch of their metadata.
pub type NamespaceLabels = Fed<Labels>;

impl NamespaceLabels {
    /// The labels of `namespace`; none if it does not exist (or is not seen yet).
    pub fn of(&self, namespace: &str) -> BTreeMap<String, String> {
        self.get(namespace).unwrap_or_default()
    }

    /// The labels of `namespace` if it exists (as far as the watch has seen).
    pub fn get(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        let labels = self.read();
        let pairs = labels.0.get(namespace)?;
        Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::watcher::Event;

    use super::*;

    fn namespace(name: &str, labels: &[(&str, &str)]) -> PartialObjectMeta<Namespace> {
        let mut namespace = PartialObjectMeta::<Namespace>::default();
        namespace.metadata.name = Some(name.into());
        namespace.metadata.labels =
            Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        namespace
    }

    #[test]
    fn labels_follow_the_namespace() {
        let cache = NamespaceLabels::default();
        cache.apply(&Event::Init);
        cache.apply(&Event::InitApply(namespace(
            "beta",
            &[("tier", "gold"), ("kubernetes.io/metadata.name", "beta")],
        )));
        cache.apply(&Event::InitDone);
        let beta = cache.of("beta");
        assert_eq!(beta.get("tier").map(String::as_str), Some("gold"));
        assert_eq!(beta.len(), 2);
        assert!(cache.of("gamma").is_empty(), "an unknown namespace has no labels");
        assert!(cache.get("gamma").is_none() && cache.get("beta").is_some(), "and only a known one exists");

        cache.apply(&Event::Apply(namespace("beta", &[("tier", "silver")])));
        assert_eq!(
            cache.of("beta"),
            BTreeMap::from([("tier".to_string(), "silver".to_string())]),
            "a relabel replaces them all"
        );
        cache.apply(&Event::Delete(namespace("beta", &[("tier", "silver")])));
        assert!(cache.of("beta").is_empty());
    }

    #[test]
    fn a_relist_replaces_the_namespaces_once_complete() {
        let cache = NamespaceLabels::default();
        cache.apply(&Event::Apply(namespace("gone", &[("a", "1")])));
        cache.apply(&Event::Init);
        cache.apply(&Event::InitApply(namespace("new", &[("b", "2")])));
        assert!(
            !cache.of("gone").is_empty() && cache.of("new").is_empty(),
            "the old state serves until the list is complete"
        );
        cache.apply(&Event::InitDone);
        assert!(cache.of("gone").is_empty() && !cache.of("new").is_empty());
    }
}
