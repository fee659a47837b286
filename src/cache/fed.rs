//! A cache state kept by a watch, the way kube's stores keep theirs: events change it in
//! place, and a re-list (after a broken watch) replaces it only once complete, so that a
//! half-received list never serves reads.

use std::sync::{Mutex, RwLock, RwLockReadGuard};

use kube::runtime::watcher;

/// How a state takes in and lets go of the objects of kind `K`.
pub trait Keeps<K> {
    fn keep(&mut self, object: &K);
    fn forget(&mut self, object: &K);
}

pub struct Fed<S> {
    state: RwLock<S>,
    /// A re-list being received.
    relist: Mutex<Option<S>>,
    ready: tokio::sync::watch::Sender<bool>,
}

impl<S: Default> Default for Fed<S> {
    fn default() -> Self {
        Fed {
            state: RwLock::default(),
            relist: Mutex::default(),
            ready: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl<S: Default> Fed<S> {
    /// Takes one watch event.
    pub fn apply<K>(&self, event: &watcher::Event<K>)
    where
        S: Keeps<K>,
    {
        match event {
            watcher::Event::Apply(object) => self.state.write().expect("cache").keep(object),
            watcher::Event::Delete(object) => self.state.write().expect("cache").forget(object),
            watcher::Event::Init => *self.relist.lock().expect("relist") = Some(S::default()),
            watcher::Event::InitApply(object) => {
                self.relist.lock().expect("relist").get_or_insert_with(S::default).keep(object)
            }
            watcher::Event::InitDone => {
                let listed = self.relist.lock().expect("relist").take().unwrap_or_default();
                *self.state.write().expect("cache") = listed;
                self.ready.send_replace(true);
            }
        }
    }

    /// Takes one watch event, then lets `trim` leave out of its object what the state now
    /// keeps for it, before the object goes on to kube's cache.
    pub fn apply_and_trim<K>(&self, event: &mut watcher::Event<K>, trim: impl FnOnce(&mut K))
    where
        S: Keeps<K>,
    {
        self.apply(event);
        if let watcher::Event::InitApply(object) | watcher::Event::Apply(object) = event {
            trim(object);
        }
    }

    /// Resolves once the first list has been taken.
    pub async fn wait_until_ready(&self) {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|ready| *ready).await;
    }

    pub fn read(&self) -> RwLockReadGuard<'_, S> {
        self.state.read().expect("cache")
    }
}
