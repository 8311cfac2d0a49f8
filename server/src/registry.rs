//! A weak-reference registry: one shared instance per key, built on first use, kept only while
//! someone holds it. The registry holds `Weak` references: an instance lives exactly as long
//! as some caller holds its `Arc`, concurrent callers for one key share one build (a per-key
//! async lock), and dead entries are swept. Runnable agents are its use
//! (`services::runs::runnable`): an edit is a new key, so runs in flight keep the instance
//! they started with.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

/// One key's entry: an async lock so concurrent callers wait for a single build.
type Slot<V> = Arc<tokio::sync::Mutex<Weak<V>>>;

/// Dead entries are swept on every this-many lookups (and by `sweep`).
const SWEEP_EVERY: u64 = 64;

pub struct Registry<K, V> {
    slots: Mutex<HashMap<K, Slot<V>>>,
    builds: AtomicU64,
    lookups: AtomicU64,
}

impl<K, V> Default for Registry<K, V> {
    fn default() -> Self {
        Registry {
            slots: Mutex::new(HashMap::new()),
            builds: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
        }
    }
}

impl<K: Hash + Eq, V> Registry<K, V> {
    pub fn new() -> Registry<K, V> {
        Registry::default()
    }

    /// The live instance for `key`, or the one `build` makes. Concurrent callers for one key
    /// share one build; a failed build is not remembered.
    pub async fn get_or_try_build<E>(
        &self,
        key: K,
        build: impl FnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E> {
        if self.lookups.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        let slot = Arc::clone(self.slots.lock().entry(key).or_default());
        let mut current = slot.lock().await;
        if let Some(live) = current.upgrade() {
            return Ok(live);
        }
        self.builds.fetch_add(1, Ordering::Relaxed);
        let built = Arc::new(build()?);
        *current = Arc::downgrade(&built);
        Ok(built)
    }

    /// The live instance for `key`, if there is one and nobody is building it; never builds.
    pub fn live(&self, key: &K) -> Option<Arc<V>> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::clone(self.slots.lock().get(key)?);
        let current = slot.try_lock().ok()?;
        current.upgrade()
    }

    /// Instances alive right now (held by at least one caller).
    pub fn live_instances(&self) -> usize {
        self.slots
            .lock()
            .values()
            .filter(|slot| slot.try_lock().is_ok_and(|weak| weak.strong_count() > 0))
            .count()
    }

    /// Instances built since start (a measure of reuse).
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// Forgets entries whose instance is gone and that no caller is building.
    pub fn sweep(&self) {
        self.slots.lock().retain(|_, slot| {
            Arc::strong_count(slot) > 1
                || slot.try_lock().map_or(true, |weak| weak.strong_count() > 0)
        });
    }

    /// Entries currently kept (live or being built).
    pub fn entries(&self) -> usize {
        self.slots.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    fn build(value: u32) -> impl FnOnce() -> Result<u32, Infallible> {
        move || Ok(value)
    }

    #[tokio::test]
    async fn live_finds_only_an_instance_someone_holds() {
        let registry = Registry::new();
        assert!(registry.live(&1).is_none());
        let held = registry.get_or_try_build(1, build(10)).await.unwrap();
        assert!(Arc::ptr_eq(&registry.live(&1).unwrap(), &held));
        assert!(registry.live(&2).is_none());
        drop(held);
        assert!(
            registry.live(&1).is_none(),
            "a dropped instance is not kept alive"
        );
        assert_eq!(registry.builds(), 1, "live never builds");
    }

    #[tokio::test]
    async fn equal_keys_share_one_instance_and_another_key_gets_another() {
        let registry = Registry::new();
        let a = registry.get_or_try_build(1, build(10)).await.unwrap();
        let b = registry.get_or_try_build(1, build(11)).await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!((*b, registry.builds()), (10, 1));
        let c = registry.get_or_try_build(2, build(20)).await.unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(registry.live_instances(), 2);
    }

    #[tokio::test]
    async fn an_instance_lives_exactly_as_long_as_someone_holds_it() {
        let registry = Registry::new();
        let held = registry.get_or_try_build("k", build(1)).await.unwrap();
        assert_eq!(registry.live_instances(), 1);
        drop(held);
        assert_eq!(registry.live_instances(), 0);
        registry.sweep();
        assert_eq!(registry.entries(), 0, "dead entries are swept");
        let _again = registry.get_or_try_build("k", build(1)).await.unwrap();
        assert_eq!(
            registry.builds(),
            2,
            "rebuilt after the last holder went away"
        );
    }

    #[tokio::test]
    async fn a_failed_build_is_not_remembered() {
        let registry: Registry<u8, u8> = Registry::new();
        let failed = registry.get_or_try_build(1, || Err("broken")).await;
        assert_eq!(failed.err(), Some("broken"));
        let built = registry.get_or_try_build(1, || Ok::<_, &str>(7)).await;
        assert_eq!(built.ok().as_deref(), Some(&7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[expect(
        clippy::disallowed_methods,
        reason = "concurrent callers on their own tasks"
    )]
    async fn concurrent_callers_share_one_build() {
        let registry = Arc::new(Registry::new());
        let calls: Vec<_> = (0..100)
            .map(|_| {
                let registry = Arc::clone(&registry);
                tokio::spawn(async move { registry.get_or_try_build(1, build(1)).await.unwrap() })
            })
            .collect();
        let mut instances = Vec::new();
        for call in calls {
            instances.push(call.await.unwrap());
        }
        assert_eq!(registry.builds(), 1);
        assert!(instances.iter().all(|i| Arc::ptr_eq(i, &instances[0])));
    }
}
