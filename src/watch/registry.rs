//! The watcher index: which watchers does a write to `key` concern?
//!
//! Exact-key watchers live in a map by key. Prefix watchers live in a map by their
//! segment-aligned directory: `/nodes/` under `/nodes/`, and a non-aligned prefix such as
//! `/nodes/n-1` under its aligned parent `/nodes/`, where the byte-wise match is checked.
//! A lookup walks the key's own directories (`/`, `/nodes/`, … — one per path segment)
//! plus the exact map, so its cost follows the key's depth and the number of watchers
//! that sit on those directories, never the total number of watchers.
//!
//! Generic over what is stored so the lookup can be tested on its own.

use std::collections::HashMap;

struct Registered<T> {
    /// The watched prefix (for an aligned prefix, the same as the bucket's directory).
    prefix: Box<str>,
    value: T,
}

/// Where a registered id is filed, so removal is a direct lookup.
enum Filed {
    Exact(Box<str>),
    Prefix(Box<str>),
}

pub struct Registry<T> {
    exact: HashMap<Box<str>, HashMap<u64, T>>,
    by_directory: HashMap<Box<str>, HashMap<u64, Registered<T>>>,
    filed: HashMap<u64, Filed>,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            exact: HashMap::new(),
            by_directory: HashMap::new(),
            filed: HashMap::new(),
        }
    }
}

/// The segment-aligned directory a prefix is filed under: up to and including its last '/'.
fn directory_of(prefix: &str) -> &str {
    match prefix.rfind('/') {
        Some(i) => &prefix[..=i],
        None => "/",
    }
}

impl<T> Registry<T> {
    pub fn len(&self) -> usize {
        self.filed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filed.is_empty()
    }

    /// Files `value` under `id` for an exact key or a prefix. `id` must be unused.
    pub fn insert(&mut self, id: u64, target: &str, prefix: bool, value: T) {
        if prefix {
            let directory: Box<str> = directory_of(target).into();
            self.by_directory
                .entry(directory.clone())
                .or_default()
                .insert(
                    id,
                    Registered {
                        prefix: target.into(),
                        value,
                    },
                );
            self.filed.insert(id, Filed::Prefix(directory));
        } else {
            self.exact
                .entry(target.into())
                .or_default()
                .insert(id, value);
            self.filed.insert(id, Filed::Exact(target.into()));
        }
    }

    /// Unfiles `id`; returns its value if it was registered.
    pub fn remove(&mut self, id: u64) -> Option<T> {
        match self.filed.remove(&id)? {
            Filed::Exact(key) => {
                let bucket = self.exact.get_mut(&key)?;
                let value = bucket.remove(&id);
                if bucket.is_empty() {
                    self.exact.remove(&key);
                }
                value
            }
            Filed::Prefix(directory) => {
                let bucket = self.by_directory.get_mut(&directory)?;
                let value = bucket.remove(&id).map(|r| r.value);
                if bucket.is_empty() {
                    self.by_directory.remove(&directory);
                }
                value
            }
        }
    }

    /// Calls `visit` with every value registered for a key or prefix that matches `key`.
    /// Returns how many registrations were examined (the lookup's cost).
    pub fn for_each_match(&self, key: &str, mut visit: impl FnMut(u64, &T)) -> usize {
        let mut examined = 0;
        if let Some(bucket) = self.exact.get(key) {
            for (&id, value) in bucket {
                examined += 1;
                visit(id, value);
            }
        }
        for (i, byte) in key.bytes().enumerate() {
            if byte != b'/' {
                continue;
            }
            let Some(bucket) = self.by_directory.get(&key[..=i]) else {
                continue;
            };
            for (&id, registered) in bucket {
                examined += 1;
                if key.starts_with(&*registered.prefix) {
                    visit(id, &registered.value);
                }
            }
        }
        examined
    }

    /// Every registered value, for shutdown.
    pub fn drain(&mut self) -> Vec<T> {
        self.filed.clear();
        let mut all: Vec<T> = self
            .exact
            .drain()
            .flat_map(|(_, b)| b.into_values())
            .collect();
        all.extend(
            self.by_directory
                .drain()
                .flat_map(|(_, b)| b.into_values().map(|r| r.value)),
        );
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(registry: &Registry<u64>, key: &str) -> (Vec<u64>, usize) {
        let mut found = Vec::new();
        let examined = registry.for_each_match(key, |id, _| found.push(id));
        found.sort_unstable();
        (found, examined)
    }

    #[test]
    fn lookup_among_100_000_watchers_examines_only_the_key_path() {
        let mut registry = Registry::default();
        let mut id = 0;
        // 99,990 unrelated watchers: exact keys and aligned prefixes spread over a tree.
        for a in 0..300 {
            for b in 0..333 {
                let prefix = b % 2 == 0;
                let target = if prefix {
                    format!("/svc{a}/node{b}/")
                } else {
                    format!("/svc{a}/node{b}")
                };
                registry.insert(id, &target, prefix, id);
                id += 1;
            }
        }
        let base = id;
        // The watchers that concern /svc7/node8/cfg, and near misses that must not match.
        let wanted = [
            ("/", true),
            ("/svc7/", true),
            ("/svc7/node8/", true),
            ("/svc7/node8/cfg", false),
            ("/sv", true),
            ("/svc7/no", true),
            ("/svc7/node8/cf", true),
        ];
        let unwanted = [
            ("/svc7/node8/cfg2", false),
            ("/svc7/node8/cfg/", true),
            ("/svc70/", true),
        ];
        for (i, (target, prefix)) in wanted.iter().chain(unwanted.iter()).enumerate() {
            registry.insert(base + i as u64, target, *prefix, base + i as u64);
        }
        assert_eq!(registry.len(), 99_900 + wanted.len() + unwanted.len());
        // /svc7/node8/ is also one of the 99,900 (b = 8 is even): it matches too.
        let (found, examined) = matches(&registry, "/svc7/node8/cfg");
        let mut expected: Vec<u64> = (0..wanted.len() as u64).map(|i| base + i).collect();
        expected.push(7 * 333 + 8);
        expected.sort_unstable();
        assert_eq!(found, expected);
        // Examined: the exact bucket of the key (1), and the buckets of its directories
        // "/" (/, /sv), "/svc7/" (/svc7/, /svc7/no), "/svc7/node8/" (the spread's
        // /svc7/node8/, ours, and /svc7/node8/cf) — never the other ~99,900.
        assert_eq!(
            examined,
            1 + 2 + 2 + 3,
            "lookup examined {examined} registrations"
        );
    }

    #[test]
    fn remove_unfiles_and_empty_buckets_disappear() {
        let mut registry = Registry::default();
        registry.insert(1, "/a/b", false, "exact");
        registry.insert(2, "/a/", true, "aligned");
        registry.insert(3, "/a/x", true, "bytewise");
        assert_eq!(registry.remove(2), Some("aligned"));
        assert_eq!(registry.remove(2), None);
        let mut seen = Vec::new();
        registry.for_each_match("/a/b", |_, v| seen.push(*v));
        assert_eq!(seen, vec!["exact"]);
        seen.clear();
        registry.for_each_match("/a/xy", |_, v| seen.push(*v));
        assert_eq!(seen, vec!["bytewise"]);
        assert_eq!(registry.remove(1), Some("exact"));
        assert_eq!(registry.remove(3), Some("bytewise"));
        assert!(registry.is_empty());
        assert!(registry.exact.is_empty() && registry.by_directory.is_empty());
    }
}
