//! The periodic re-check of every object, paced over the period.
//!
//! Reconciles used to end with "again in `resync`", so kube's scheduler held an entry for
//! every object all the time: its reference twice (with UID and resourceVersion), ~0.7 KB, 8 MB
//! at 10,000 grants. A walk over the cache visits each object once per period instead, evenly
//! spaced, holding only the names of the current round. Reconciles still ask to be woken at
//! the instants their plan changes by itself (an expiry), which few objects have.

use std::collections::VecDeque;
use std::time::Duration;

use futures::Stream;
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::time::Instant;

use crate::cache::index::{member, reference};

/// Every object of `cache`, once per `period`, one at a time, evenly spaced. Each round walks
/// what the cache held when it started; objects created meanwhile are heard of through their
/// watch, and join the next round.
pub fn walk<K>(cache: Store<K>, period: Duration) -> impl Stream<Item = ObjectRef<K>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let round = Round { cache, period, names: VecDeque::new(), gap: period, next: Instant::now() };
    futures::stream::unfold(round, |mut round| async move {
        let name = round.next_name().await;
        Some((reference(&name), round))
    })
}

struct Round<K: Resource<DynamicType = ()> + Clone + 'static> {
    cache: Store<K>,
    period: Duration,
    names: VecDeque<Box<str>>,
    gap: Duration,
    next: Instant,
}

impl<K> Round<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    async fn next_name(&mut self) -> Box<str> {
        loop {
            if let Some(name) = self.names.pop_front() {
                tokio::time::sleep_until(self.next).await;
                // After a stall, carry on at the same pace rather than catching up in a burst.
                self.next = self.next.max(Instant::now() - self.gap) + self.gap;
                return name;
            }
            // Not `Store::wait_until_ready`: with several tasks waiting on one store, only one of
            // them is woken. An empty cache (not listed yet, or nothing in it) waits a period.
            self.names = self.cache.state().iter().map(|object| member(object.as_ref())).collect();
            if self.names.is_empty() {
                tokio::time::sleep(self.period).await;
                continue;
            }
            self.gap = self.period / u32::try_from(self.names.len()).unwrap_or(u32::MAX);
            self.next = self.next.max(Instant::now() + self.gap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher;

    fn config_map(name: &str) -> ConfigMap {
        let mut object = ConfigMap::default();
        object.metadata.namespace = Some("ns".into());
        object.metadata.name = Some(name.into());
        object
    }

    #[tokio::test(start_paused = true)]
    async fn every_object_is_visited_once_per_period_evenly_spaced() {
        let (cache, mut writer) = store();
        writer.apply_watcher_event(&watcher::Event::Init);
        for name in ["a", "b", "c", "d"] {
            writer.apply_watcher_event(&watcher::Event::InitApply(config_map(name)));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let started = Instant::now();
        let mut visits = Box::pin(walk(cache, Duration::from_secs(40)));
        let mut seen = Vec::new();
        for _ in 0..8 {
            let visited = visits.next().await.expect("the walk never ends");
            seen.push((visited.name.clone(), (Instant::now() - started).as_secs()));
        }
        let names: Vec<&str> = seen.iter().map(|(name, _)| name.as_str()).collect();
        let mut first_round = names[..4].to_vec();
        first_round.sort();
        assert_eq!(first_round, ["a", "b", "c", "d"]);
        assert_eq!(names[..4], names[4..], "each round visits the same objects in the same order");
        let at: Vec<u64> = seen.iter().map(|(_, at)| *at).collect();
        assert_eq!(at, [10, 20, 30, 40, 50, 60, 70, 80]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_object_created_later_joins_the_next_round() {
        let (cache, mut writer) = store();
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitApply(config_map("a")));
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let mut visits = Box::pin(walk(cache, Duration::from_secs(10)));
        assert_eq!(visits.next().await.expect("a").name, "a");
        writer.apply_watcher_event(&watcher::Event::Apply(config_map("b")));
        let mut next_round =
            vec![visits.next().await.expect("one").name, visits.next().await.expect("two").name];
        next_round.sort();
        assert_eq!(next_round, ["a", "b"]);
    }
}
