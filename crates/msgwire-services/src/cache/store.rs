//! The memory cache's table: values with their expiry, bounded in entries and bytes.
//! No lock and no clock: the time comes in as `now`.
//!
//! Three indexes over the same entries, each update O(log n):
//!
//! ```text
//!  entries    key ──► Entry { value, expires, seq }
//!  by_use     seq ──► key            oldest use first: what eviction takes
//!  by_expiry  (expires, seq)         soonest first: what pruning takes
//! ```
//!
//! `seq` grows with every insert and every hit, so `by_use` is least recently used
//! first. Making room takes the expired entries first, then the least recently used.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

/// How much a table may hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    pub(super) max_entries: usize,
    pub(super) max_bytes: usize,
}

/// What an operation removed besides what it was asked to, for the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Removed {
    pub(super) expired: u64,
    pub(super) evicted: u64,
}

#[derive(Debug)]
struct Entry {
    value: Bytes,
    expires: Instant,
    seq: u64,
}

#[derive(Debug)]
pub(super) struct Store {
    bounds: Bounds,
    entries: HashMap<Arc<str>, Entry>,
    by_use: BTreeMap<u64, Arc<str>>,
    by_expiry: BTreeSet<(Instant, u64)>,
    next_seq: u64,
    bytes: usize,
}

/// What an entry costs against `max_bytes`.
fn cost(key: &str, value: &Bytes) -> usize {
    key.len().saturating_add(value.len())
}

impl Store {
    pub(super) fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            next_seq: 0,
            bytes: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    fn seq(&mut self) -> u64 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }

    /// The live value under `key`, marked as just used; an expired one is removed
    /// (`Removed::expired` says so).
    pub(super) fn get(&mut self, key: &str, now: Instant) -> (Option<Bytes>, Removed) {
        let seq = self.seq();
        let Some((stored_key, entry)) = self.entries.get_key_value(key) else {
            return (None, Removed::default());
        };
        if entry.expires <= now {
            self.remove(key);
            return (
                None,
                Removed {
                    expired: 1,
                    evicted: 0,
                },
            );
        }
        let (old, expires, stored_key) = (entry.seq, entry.expires, Arc::clone(stored_key));
        self.by_use.remove(&old);
        self.by_use.insert(seq, stored_key);
        self.by_expiry.remove(&(expires, old));
        self.by_expiry.insert((expires, seq));
        let entry = self.entries.get_mut(key);
        (
            entry.map(|entry| {
                entry.seq = seq;
                entry.value.clone()
            }),
            Removed::default(),
        )
    }

    /// Stores `value` under `key` until `expires`, replacing what was there, after
    /// making room: expired entries first, then the least recently used. A value that
    /// could never fit is not stored (and what was under `key` is removed).
    pub(super) fn insert(
        &mut self,
        key: &str,
        value: Bytes,
        expires: Instant,
        now: Instant,
    ) -> Removed {
        self.remove(key);
        let mut removed = Removed {
            expired: self.prune(now),
            evicted: 0,
        };
        let size = cost(key, &value);
        if size > self.bounds.max_bytes || self.bounds.max_entries == 0 || expires <= now {
            return removed;
        }
        while self.entries.len() >= self.bounds.max_entries
            || self.bytes.saturating_add(size) > self.bounds.max_bytes
        {
            let Some(oldest) = self.by_use.first_key_value().map(|(_, k)| Arc::clone(k)) else {
                break;
            };
            self.remove(&oldest);
            removed.evicted += 1;
        }
        let seq = self.seq();
        let key: Arc<str> = Arc::from(key);
        self.by_use.insert(seq, Arc::clone(&key));
        self.by_expiry.insert((expires, seq));
        self.bytes = self.bytes.saturating_add(size);
        self.entries.insert(
            key,
            Entry {
                value,
                expires,
                seq,
            },
        );
        removed
    }

    /// Removes `key`; whether it was stored (live or not).
    pub(super) fn remove(&mut self, key: &str) -> bool {
        let Some((key, entry)) = self.entries.remove_entry(key) else {
            return false;
        };
        self.by_use.remove(&entry.seq);
        self.by_expiry.remove(&(entry.expires, entry.seq));
        self.bytes = self.bytes.saturating_sub(cost(&key, &entry.value));
        true
    }

    /// Removes every entry whose time has passed; how many.
    fn prune(&mut self, now: Instant) -> u64 {
        let mut pruned = 0;
        while let Some(&(expires, seq)) = self.by_expiry.first() {
            if expires > now {
                break;
            }
            let Some(key) = self.by_use.get(&seq).cloned() else {
                // Every indexed seq has its key; drop a stray one rather than loop.
                self.by_expiry.pop_first();
                continue;
            };
            self.remove(&key);
            pruned += 1;
        }
        pruned
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn store(max_entries: usize, max_bytes: usize) -> Store {
        Store::new(Bounds {
            max_entries,
            max_bytes,
        })
    }

    fn value(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    fn assert_consistent(store: &Store) {
        assert_eq!(store.by_use.len(), store.entries.len());
        assert_eq!(store.by_expiry.len(), store.entries.len());
        let bytes: usize = store.entries.iter().map(|(k, e)| cost(k, &e.value)).sum();
        assert_eq!(store.bytes, bytes);
        for (key, entry) in &store.entries {
            assert_eq!(store.by_use.get(&entry.seq).map(|k| &**k), Some(&**key));
            assert!(store.by_expiry.contains(&(entry.expires, entry.seq)));
        }
    }

    #[test]
    fn expired_entries_are_gone_and_counted() {
        let now = Instant::now();
        let mut s = store(10, 1000);
        s.insert("a:1", value("x"), now + Duration::from_secs(1), now);
        assert_eq!(s.get("a:1", now).0, Some(value("x")));
        let later = now + Duration::from_secs(1);
        assert_eq!(
            s.get("a:1", later),
            (
                None,
                Removed {
                    expired: 1,
                    evicted: 0
                }
            )
        );
        assert_eq!(s.len(), 0);
        assert_consistent(&s);
    }

    #[test]
    fn insert_prunes_expired_before_evicting_live_ones() {
        let now = Instant::now();
        let mut s = store(2, 1000);
        s.insert("a:1", value("short"), now + Duration::from_secs(1), now);
        s.insert("a:2", value("long"), now + Duration::from_secs(60), now);
        let later = now + Duration::from_secs(2);
        let removed = s.insert("a:3", value("new"), later + Duration::from_secs(60), later);
        assert_eq!(
            removed,
            Removed {
                expired: 1,
                evicted: 0
            }
        );
        assert!(s.get("a:2", later).0.is_some() && s.get("a:3", later).0.is_some());
        assert_consistent(&s);
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let now = Instant::now();
        let ttl = now + Duration::from_secs(60);
        let mut s = store(3, 1000);
        for key in ["a:1", "a:2", "a:3"] {
            s.insert(key, value("v"), ttl, now);
        }
        // a:1 is used, so a:2 is now the least recently used.
        assert!(s.get("a:1", now).0.is_some());
        let removed = s.insert("a:4", value("v"), ttl, now);
        assert_eq!(removed.evicted, 1);
        assert!(s.get("a:2", now).0.is_none());
        assert!(s.get("a:1", now).0.is_some() && s.get("a:4", now).0.is_some());
        assert_consistent(&s);
    }

    #[test]
    fn bounded_in_bytes_and_too_large_values_are_not_stored() {
        let now = Instant::now();
        let ttl = now + Duration::from_secs(60);
        let mut s = store(100, 20);
        s.insert("k:1", value("0123456"), ttl, now); // 10 bytes
        s.insert("k:2", value("0123456"), ttl, now); // 20
        assert_eq!((s.len(), s.bytes()), (2, 20));
        let removed = s.insert("k:3", value("0"), ttl, now);
        assert_eq!(removed.evicted, 1);
        assert!(s.get("k:1", now).0.is_none());
        assert!(s.bytes() <= 20);
        s.insert("k:4", value("this value is longer than twenty"), ttl, now);
        assert!(s.get("k:4", now).0.is_none());
        assert_consistent(&s);
    }

    #[test]
    fn replacing_and_removing_keep_the_indexes_consistent() {
        let now = Instant::now();
        let ttl = now + Duration::from_secs(60);
        let mut s = store(10, 1000);
        s.insert("a:1", value("one"), ttl, now);
        s.insert("a:1", value("uno"), ttl + Duration::from_secs(1), now);
        assert_eq!(s.get("a:1", now).0, Some(value("uno")));
        assert_eq!(s.len(), 1);
        assert!(s.remove("a:1"));
        assert!(!s.remove("a:1"));
        assert_eq!((s.len(), s.bytes()), (0, 0));
        assert_consistent(&s);
    }

    #[test]
    fn many_inserts_stay_within_bounds() {
        let now = Instant::now();
        let mut s = store(50, 10_000);
        for i in 0..1000u64 {
            let at = now + Duration::from_millis(i);
            let key = format!("n:{}", i % 97);
            s.insert(
                &key,
                Bytes::from(vec![0; (i % 300) as usize]),
                at + Duration::from_millis(i % 40),
                at,
            );
            assert!(s.len() <= 50 && s.bytes() <= 10_000);
        }
        assert_consistent(&s);
    }
}
